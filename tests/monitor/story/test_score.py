"""Impact 1–10 with reasons (consequence over coverage), money amounts, sentiment tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.config.settings import Impact as ImpactSettings
from monitor.config.settings import ImpactSignal, Topic
from monitor.models import Article, Impact, Sentiment
from monitor.story import rubric
from monitor.story.corroborate import corroborate
from monitor.story.money import money_amounts
from monitor.story.score import impact, sentiment, tier

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOPIC = Topic(id="ai-export-controls", name="AI export controls")


def art(
    i: int, outlet: str, title: str, summary: str = "", text: str = "", *, tier: str = "outlet"
) -> Article:
    return Article(
        source_id=outlet.lower(),
        outlet=outlet,
        url=f"https://example.com/{i}",
        canonical_url=f"https://example.com/{i}",
        title=title,
        summary=summary,
        text=text,
        published=T0 + timedelta(minutes=i),
        fetched=T0 + timedelta(minutes=i),
        tier=tier,
        origin=f"outlet:{outlet.lower()}",
        id=i,
    )


def score(articles: list[Article], topic: Topic = TOPIC) -> Impact:
    return impact(articles, corroborate(articles, topic.min_sources), topic)


def entity_list_filing(count: int = 12) -> list[Article]:
    """A niche regulatory filing: BIS's own notice, nobody else has picked it up yet."""
    return [
        art(
            1,
            "BIS",
            f"Commerce Adds {count} Entities to the Entity List",
            "The Bureau of Industry and Security published an interim final rule in the "
            f"Federal Register adding {count} entities in China to the Entity List.",
            tier="primary",
        )
    ]


def widely_covered_fluff(outlets: int = 8) -> list[Article]:
    return [
        art(i, f"Outlet{i}", "Nvidia CEO says AI chip demand is 'insane'", "Huang spoke on stage.")
        for i in range(outlets)
    ]


# -- impact: the analyst's rubric ------------------------------------------------------------


def test_entity_list_additions_rate_by_how_many_were_listed() -> None:
    assert score(entity_list_filing(12)) == Impact(7, ("Entity List additions (12 entities)",))
    assert score(entity_list_filing(36)).score == 8  # many firms: the rubric's "major" additions
    assert score(entity_list_filing(3)).score == 6  # a handful: "smaller Entity List additions"


def test_niche_regulatory_filing_outranks_a_story_everyone_runs() -> None:
    filing = score(entity_list_filing())
    fluff = score(widely_covered_fluff(outlets=8))
    assert fluff.score <= 3
    assert filing.score >= fluff.score + 4


def test_coverage_never_raises_impact() -> None:
    scores = {n: score(widely_covered_fluff(n)) for n in (2, 4, 40)}
    assert len({s.score for s in scores.values()}) == 1
    assert scores[2].reasons == scores[40].reasons


def test_opinion_piece_is_commentary_even_when_it_names_agencies() -> None:
    piece = art(
        1,
        "Post",
        "Opinion: America's export controls on AI chips are backfiring",
        "They push China to build its own chips.",
        "The Commerce Department keeps adding companies to the Entity List.",
    )
    question = art(2, "Blog", "How the US stumbled into using chips as a weapon", "Export controls.")
    assert score([piece]) == Impact(2, ("commentary, not a new development",))
    assert score([question]).score == 2


def test_a_broad_binding_rule_is_nine_and_its_clarification_five() -> None:
    rule = [
        art(1, "BIS", "Commerce Implements New Export Controls on Advanced Computing and Semiconductor Manufacturing Items", tier="primary"),
        art(2, "Law firm", "US tightens export controls on advanced computing", "An interim final rule."),
    ]
    rated = score(rule)
    assert rated.score == 9
    assert rated.reasons[0].startswith("binding rule with broad effect: Advanced Computing")
    clarification = [
        art(3, "BIS", "Commerce Releases Clarifications of Export Control Rules on Advanced Computing"),
        art(4, "Law firm", "Correcting and Clarifying Export Controls on Advanced Computing Items"),
        art(5, "Blog", "BIS Revises Export Controls on Semiconductor Manufacturing Items"),
    ]
    softened = score(clarification)
    assert softened.score == 5
    assert softened.reasons[0] == "clarifies or corrects earlier rules"


def test_a_licence_requirement_on_a_named_product_with_sales_at_stake() -> None:
    result = score(
        [
            art(1, "Reuters", "Nvidia halts shipments of H20 to China after license requirement", "Nvidia will take a $5.5 billion charge."),
            art(2, "Bloomberg", "Nvidia to take $5.5 billion hit as US curbs H20 sales"),
        ]
    )
    assert result.score == 8
    assert result.reasons == ("licence requirement or stop order on a named product: Nvidia, H20; $5.5 billion at stake",)


def test_penalties_rate_by_the_amount_most_reports_name() -> None:
    seagate = [
        art(1, "BIS", "BIS Hits Seagate with Record Penalty", "A $300 million settlement."),
        art(2, "Trade", "Seagate to pay $300 mn penalty", "It shipped over $1.1 billion of hard drives to Huawei."),
        art(3, "Law", "$300 Million Civil Penalty for Export Control Violations"),
    ]
    assert score(seagate) == Impact(8, ("penalty of $300 million",))
    small = [art(1, "BIS", "BIS reaches settlement of $5.8 million with TE Connectivity over exports")]
    assert score(small) == Impact(5, ("penalty of $5.8 million",))


def test_criminal_smuggling_case() -> None:
    result = score([art(1, "DOJ", "Two men charged with smuggling Nvidia chips to China", "The Justice Department said $160 million of GPUs were shipped.", tier="primary")])
    assert result.score == 6
    assert result.reasons[0].startswith("criminal enforcement: charged, smuggling")


def test_allies_controls_and_their_taking_effect() -> None:
    announced = [art(1, "AP", "Dutch government to restrict sales of processor chip tech"), art(2, "NL Times", "Netherlands confirms it will restrict more ASML exports to China")]
    assert score(announced) == Impact(7, ("allied control aligned with the US: Netherlands",))
    in_force = [art(1, "Japan Times", "Chip export curbs begin"), art(2, "Kyodo", "Japan's export curbs on chip-making equipment to China take effect")]
    assert score(in_force) == Impact(6, ("allied control taking effect or widened: Japan",))


def test_chinas_countermeasures() -> None:
    minerals = [art(1, "AP", "China bans exports to US of gallium, germanium, antimony in response to chip sanctions"), art(2, "Table", "After US embargo: China bans export of minerals for military use")]
    rated = score(minerals)
    assert rated.score == 7
    assert rated.reasons[0].startswith("China's countermeasure: export controls on gallium")
    probe = [art(1, "UPI", "China opens antitrust probe into Nvidia"), art(2, "BI", "Beijing launches investigation of Nvidia")]
    assert score(probe).score == 4


@pytest.mark.parametrize(
    ("headline", "actor"),
    [
        ("China bans exports of gallium, germanium, antimony to U.S.", "china"),
        ("After US embargo: China bans export of minerals for military use", "china"),
        ("Inspur, China's Top Server Maker, Is Blacklisted by The US Government", "us"),
        ("Japan's export curbs on chip-making equipment to China take effect", "ally"),
        ("Netherlands follows U.S. with semiconductor export restrictions", "ally"),
        ("US orders Nvidia to halt sale of $400M worth of GPUs to China", "us"),
        ("Entity List Additions", "us"),  # no actor named: the beat's default
    ],
)
def test_who_acts_is_the_headline_subject(headline: str, actor: str) -> None:
    assert rubric.dominant_actor([headline]) == actor


def test_signals_and_weights_come_from_the_topic() -> None:
    topic = Topic(
        id="cloud",
        name="Cloud",
        impact=ImpactSettings(
            signals=(ImpactSignal(name="outage", terms=("outage",), weight=6),),
            money_weight=0,
        ),
    )
    result = score([art(1, "Axios", "Region outage costs $5 billion, regulators say")], topic)
    assert result == Impact(7, ("outage: 'outage'",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a $5 billion fine", [("$5 billion", 5e9)]),
        ("€200m deal", [("€200m", 2.2e8)]),
        ("about 1.2 bn units", [("1.2 bn", 1.2e9)]),
        ("US$3.5bn charge", [("US$3.5bn", 3.5e9)]),
        ("500 million yuan", [("500 million yuan", 7e7)]),
        ("$1,200,000 settlement", [("$1,200,000", 1.2e6)]),
        ("$5 more per share", [("$5", 5.0)]),
        ("USD 5bn and HK$ 3m", [("USD 5bn", 5e9), ("HK$ 3m", 3.9e5)]),
        ("2 billion people and 7 million chips", []),
    ],
)
def test_money_amounts_with_magnitude(text: str, expected: list[tuple[str, float]]) -> None:
    found = [(m.text, m.usd) for m in money_amounts(text)]
    assert [t for t, _ in found] == [t for t, _ in expected]
    for (_, usd), (_, want) in zip(found, expected, strict=True):
        assert usd == pytest.approx(want)


def test_ten_thousand_copies_are_scored_without_reading_them_all() -> None:
    copies = [art(i, "Wire", "BIS adds 14 firms to the Entity List") for i in range(10_000)]
    assert score(copies) == Impact(7, ("Entity List additions (14 entities)",))


def test_impact_of_nothing_is_one() -> None:
    assert score([art(1, "Axios", "🚀🚀🚀")]).score <= 3
    assert score([]) == Impact(1, ())


# -- sentiment --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headline", "lead", "expected"),
    [
        (
            "Smuggling ring charged; executives arrested, face prison over fraud",
            "",
            Sentiment.VERY_NEGATIVE,
        ),
        ("Company faces losses after ban", "", Sentiment.NEGATIVE),
        ("Commerce Department publishes rule on chip exports", "", Sentiment.NEUTRAL),
        ("Chipmaker shares rise after strong quarter", "", Sentiment.POSITIVE),
        (
            "Nvidia shares soar to record high after blowout earnings, a great win",
            "",
            Sentiment.VERY_POSITIVE,
        ),
        ("Rule published", "Exporters are worried about delays.", Sentiment.NEGATIVE),
        (
            "Bureau of Industry and Security publishes advanced computing rule",
            "The Justice Department and the United States said artificial intelligence chips "
            "are covered. A second sentence full of wonderful, great joy is not read.",
            Sentiment.NEUTRAL,
        ),
    ],
)
def test_sentiment_tiers(headline: str, lead: str, expected: Sentiment) -> None:
    assert sentiment(headline, lead) is expected


def test_sentiment_of_empty_or_symbol_text_is_neutral() -> None:
    assert sentiment("", "") is Sentiment.NEUTRAL
    assert sentiment("!!!", "🇨🇳") is Sentiment.NEUTRAL


def test_tier_boundaries() -> None:
    assert [tier(x) for x in (-0.8, -0.79, -0.2, -0.19, 0.19, 0.2, 0.79, 0.8)] == [
        Sentiment.VERY_NEGATIVE,
        Sentiment.NEGATIVE,
        Sentiment.NEGATIVE,
        Sentiment.NEUTRAL,
        Sentiment.NEUTRAL,
        Sentiment.POSITIVE,
        Sentiment.POSITIVE,
        Sentiment.VERY_POSITIVE,
    ]

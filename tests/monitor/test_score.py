"""Impact 1–10 with reasons (consequence over coverage), money amounts, sentiment tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.corroborate import corroborate
from monitor.models import Article, Impact, Sentiment
from monitor.score import impact, money_amounts, sentiment, tier
from monitor.settings import Impact as ImpactSettings
from monitor.settings import ImpactSignal, Topic

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


def entity_list_filing() -> list[Article]:
    """A niche regulatory filing: BIS's own notice, nobody else has picked it up yet."""
    return [
        art(
            1,
            "BIS",
            "Commerce Adds 12 Entities to the Entity List",
            "The Bureau of Industry and Security published an interim final rule in the "
            "Federal Register adding 12 entities in China to the Entity List.",
            tier="primary",
        )
    ]


def widely_covered_fluff(outlets: int = 8) -> list[Article]:
    return [
        art(i, f"Outlet{i}", "Nvidia CEO says AI chip demand is 'insane'", "Huang spoke on stage.")
        for i in range(outlets)
    ]


def test_entity_list_rule_from_bis_means_act() -> None:
    result = score(entity_list_filing())
    assert result.score in (8, 9)
    assert result.score >= TOPIC.impact.act_threshold
    assert result.reasons == (
        "regulatory action: 'Entity List', 'interim final rule'",
        "agency: 'Bureau of Industry and Security', 'Federal Register'",
        "primary source: BIS",
    )


def test_niche_regulatory_filing_outranks_a_story_everyone_runs() -> None:
    filing = score(entity_list_filing())
    fluff = score(widely_covered_fluff(outlets=8))
    assert fluff.reasons == ("coverage: 8 independent sources (+1)",)
    assert fluff.score <= 3
    assert filing.score > fluff.score + 4


def test_coverage_is_capped() -> None:
    four, forty = score(widely_covered_fluff(4)), score(widely_covered_fluff(40))
    assert four.reasons == ("coverage: 4 independent sources (+1)",)
    assert forty.reasons == ("coverage: 40 independent sources (+1)",)
    assert four.score == forty.score
    assert score(widely_covered_fluff(2)).reasons == ()  # two sources add nothing


def test_opinion_piece_scores_low_even_when_it_names_agencies() -> None:
    piece = art(
        1,
        "Post",
        "Opinion: America's export controls on AI chips are backfiring",
        "They push China to build its own chips.",
        "The Commerce Department keeps adding companies to the Entity List.",
    )
    result = score([piece])
    assert result.score in (2, 3)
    assert "commentary: 'Opinion' (-2)" in result.reasons
    assert "regulatory action: 'Entity List' (body only)" in result.reasons


def test_enforcement_and_money() -> None:
    result = score(
        [
            art(
                1,
                "DOJ",
                "Two men charged with smuggling Nvidia chips to China",
                "The Justice Department said $160 million of GPUs were shipped.",
                tier="primary",
            )
        ]
    )
    assert "enforcement: 'charged', 'smuggling'" in result.reasons
    assert "money: $160 million" in result.reasons
    assert "agency: 'Justice Department'" in result.reasons
    assert "primary source: DOJ" in result.reasons
    assert result.score >= 8


def test_operational_effect_with_a_large_amount_means_act() -> None:
    result = score(
        [
            art(
                1,
                "Reuters",
                "Nvidia halts shipments of H20 to China after license requirement",
                "Nvidia will take a $5.5 billion charge.",
            ),
            art(2, "Bloomberg", "Nvidia to take $5.5 billion hit as US curbs H20 sales"),
        ]
    )
    assert result.score == 8  # raw 9.5; past 7 points each point counts half
    assert "operational effect: 'halts shipments'" in result.reasons
    assert "money: $5.5 billion" in result.reasons


def test_larger_amounts_score_higher() -> None:
    small = score([art(1, "Axios", "Chipmaker pays $2 million")])
    large = score([art(1, "Axios", "Chipmaker pays $5 billion")])
    assert small.reasons == ("money: $2 million",)
    assert large.reasons == ("money: $5 billion",)
    assert large.score > small.score


def test_signal_only_in_the_body_counts_half() -> None:
    headline = score([art(1, "Axios", "Chipmaker charged in smuggling case")])
    body = score([art(1, "Axios", "Chipmaker news", "An update.", "It was charged later.")])
    assert body.reasons == ("enforcement: 'charged' (body only)",)
    assert headline.score > body.score


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
    copies = [art(i, "Wire", "BIS adds firms to the Entity List") for i in range(10_000)]
    result = score(copies)
    assert result.reasons == ("regulatory action: 'Entity List'", "agency: 'BIS'")


def test_impact_of_nothing_is_one() -> None:
    assert score([art(1, "Axios", "🚀🚀🚀")]) == Impact(1, ())
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


def test_demo_style_entity_list_story_reaches_nine_not_ten() -> None:
    """A rule that also mentions penalties and an amount piles up signals; the top stays rare."""
    lead = (
        "The Bureau of Industry and Security added 14 companies to the Entity List, imposing a "
        "licence requirement; violations could draw penalties of up to $1.2 million."
    )
    articles = [
        art(1, "Reuters", "US adds 14 Chinese AI chip firms to Entity List", lead, tier="wire"),
        art(2, "PolicyWire", "Commerce blacklists 14 Chinese AI chip designers", lead),
        art(3, "BIS", "Commerce Adds 14 Entities to the Entity List", lead, tier="primary"),
    ]
    result = score(articles)
    assert result.score == 9
    assert "enforcement: 'violations', 'penalties'" in result.reasons
    assert "coverage: 3 independent sources (+0.5)" in result.reasons

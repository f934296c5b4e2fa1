"""Independent sources: reprints, wire copies and same-owner outlets count once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.models import Article, DevelopmentState
from monitor.story.corroborate import corroborate

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def art(
    id: int,
    outlet: str,
    origin: str = "",
    *,
    minute: int = 0,
    tier: str = "outlet",
    reprint_of: int | None = None,
    owner: str = "",
) -> Article:
    return Article(
        source_id=outlet.lower().replace(" ", "-"),
        outlet=outlet,
        url=f"https://example.com/{id}",
        canonical_url=f"https://example.com/{id}",
        title="US adds chipmakers to Entity List",
        summary="",
        text="",
        published=T0 + timedelta(minutes=minute),
        fetched=T0 + timedelta(minutes=minute),
        tier=tier,
        origin=origin,
        reprint_of=reprint_of,
        owner=owner,
        id=id,
    )


def test_wire_copy_is_not_an_independent_source() -> None:
    articles = [
        art(1, "Reuters", "wire:reuters", tier="wire"),
        art(2, "Yahoo Finance", "wire:reuters", minute=5, reprint_of=1),
        art(3, "Politico", "outlet:politico", minute=20),
    ]
    decision = corroborate(articles, required=2)
    assert decision.independent == 2  # "Verified by 2", not 3
    assert decision.state is DevelopmentState.CORROBORATED
    assert decision.reason == "2 independent: Reuters (+1 reprint), Politico"
    reuters = decision.origins[0]
    assert reuters.outlets == ("Reuters", "Yahoo Finance")
    assert reuters.article_ids == (1, 2)


def test_reason_lists_origins_in_order_of_first_publication_with_primary_flagged() -> None:
    articles = [
        art(10, "BIS", "outlet:bis", minute=90, tier="primary"),
        art(11, "Politico", "outlet:politico", minute=30),
        *[art(20 + i, f"Paper {i}", "wire:reuters", minute=40 + i) for i in range(4)],
        art(30, "Reuters", "wire:reuters", minute=10, tier="wire"),
    ]
    decision = corroborate(articles, required=2)
    assert decision.reason == (
        "3 independent: Reuters (+4 reprints), Politico, BIS (primary source)"
    )
    assert [o.key for o in decision.origins] == ["wire:reuters", "outlet:politico", "outlet:bis"]
    assert [o.primary for o in decision.origins] == [False, False, True]


def test_copies_of_a_wire_story_without_the_wire_itself_are_all_reprints() -> None:
    articles = [art(1, "CNBC", "wire:reuters"), art(2, "Yahoo", "wire:reuters", minute=1)]
    decision = corroborate(articles, required=2)
    assert decision.independent == 1
    assert decision.origins[0].label == "Reuters"
    assert decision.origins[0].reprints == 2
    assert decision.reason == "1 independent source (single-source): Reuters (+2 reprints)"


def test_outlets_of_one_owner_collapse_into_one_source() -> None:
    articles = [
        art(1, "The New York Times", "owner:nyt", owner="New York Times Co."),
        art(2, "Wirecutter", "owner:nyt", minute=3, owner="New York Times Co."),
        art(3, "Politico", "outlet:politico", minute=5),
    ]
    decision = corroborate(articles, required=2)
    assert decision.independent == 2
    assert decision.reason == ("2 independent: The New York Times (+1 same-owner outlet), Politico")


def test_an_owner_group_is_named_by_its_outlet_not_its_id() -> None:
    """feeds.yaml's owner id ("us-commerce") is how sources collapse, not what readers know."""
    articles = [
        art(1, "Bureau of Industry and Security", "owner:uscommerce", owner="us-commerce"),
        art(2, "Federal Register", "owner:uscommerce", minute=3, owner="us-commerce"),
        art(3, "Reuters", "wire:reuters", minute=5),
    ]
    reason = corroborate(articles, required=2).reason
    assert reason.startswith("2 independent: Bureau of Industry and Security (+1 same-owner outlet)")
    assert "us-commerce" not in reason


def test_single_source_is_labelled_as_such() -> None:
    decision = corroborate([art(1, "Politico", "outlet:politico")], required=2)
    assert decision.state is DevelopmentState.SINGLE_SOURCE
    assert decision.independent == 1
    assert decision.reason == "1 independent source (single-source): Politico"


def test_same_outlet_twice_is_still_one_source() -> None:
    articles = [
        art(1, "Politico", "outlet:politico"),
        art(2, "Politico", "outlet:politico", minute=9),
    ]
    decision = corroborate(articles, required=2)
    assert decision.independent == 1
    assert decision.origins[0].reprints == 0
    assert decision.reason == "1 independent source (single-source): Politico"


def test_missing_origin_falls_back_to_the_copied_article_then_to_the_outlet() -> None:
    articles = [
        art(1, "Reuters", "wire:reuters", tier="wire"),
        art(2, "Yahoo", "", minute=2, reprint_of=1),  # dedup left no key, but knows the copy
        art(3, "Axios", "", minute=4),
        art(4, "Axios", "", minute=6),
    ]
    decision = corroborate(articles, required=2)
    assert [o.key for o in decision.origins] == ["wire:reuters", "outlet:axios"]
    assert decision.reason == "2 independent: Reuters (+1 reprint), Axios"


def test_more_sources_required_than_found() -> None:
    articles = [art(1, "Politico", "outlet:politico"), art(2, "Axios", "outlet:axios", minute=1)]
    decision = corroborate(articles, required=3)
    assert decision.state is DevelopmentState.SINGLE_SOURCE
    assert decision.required == 3
    assert decision.reason == "2 independent (needs 3): Politico, Axios"


def test_no_articles_and_bad_required_value() -> None:
    empty = corroborate([], required=2)
    assert (empty.independent, empty.reason, empty.state) == (
        0,
        "no sources",
        DevelopmentState.SINGLE_SOURCE,
    )
    one = corroborate([art(1, "Politico", "outlet:politico")], required=0)
    assert one.state is DevelopmentState.CORROBORATED and one.required == 1


def test_the_same_article_passed_twice_counts_once() -> None:
    a = art(1, "Reuters", "wire:reuters", tier="wire")
    decision = corroborate([a, a, art(2, "Axios", "outlet:axios", minute=1)], required=2)
    assert decision.origins[0].article_ids == (1,)
    assert decision.reason == "2 independent: Reuters, Axios"


def test_long_reason_names_eight_origins_and_counts_the_rest() -> None:
    articles = [art(i, f"Outlet {i:02d}", minute=i) for i in range(1, 13)]
    decision = corroborate(articles, required=2)
    assert decision.independent == 12
    assert decision.reason.endswith("Outlet 08 and 4 more")


def test_ten_thousand_copies_of_one_press_release_are_one_source() -> None:
    articles = [art(1, "BIS", "outlet:bis", tier="primary")]
    articles += [
        art(i, f"Site {i}", "outlet:bis", minute=1, reprint_of=1) for i in range(2, 10_002)
    ]
    decision = corroborate(articles, required=2)
    assert decision.independent == 1
    assert decision.reason == (
        "1 independent source (single-source): BIS (primary source) (+10000 reprints)"
    )

"""The story engine the monitor and the evaluation share (monitor.story.analysis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from monitor.models import DevelopmentState, TopicMatch
from monitor.story.analysis import AnalysisConfig, Analyzer
from monitor.story.cluster import ClusterConfig
from tests.monitor.story.story_data import (
    EDITED_COPY,
    OWN_REPORTING,
    QUAKE_HAITI,
    QUAKE_SUMATRA,
    T0,
    WIRE_STORY,
    article,
)


def _at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def test_wire_copy_and_independent_report_make_two_sources_not_three() -> None:
    analyzer = Analyzer()
    wire = analyzer.add(article(*WIRE_STORY, outlet="Reuters", tier="wire"), _at(0))
    copy = analyzer.add(article(*EDITED_COPY, outlet="Daily Planet", minutes=20), _at(20))
    own = analyzer.add(article(*OWN_REPORTING, outlet="Politico", minutes=40), _at(40))

    assert wire.decision.state is DevelopmentState.SINGLE_SOURCE
    assert copy.decision.independent == 1  # a reprint is not a second source
    assert own.development.id == wire.development.id
    assert own.decision.state is DevelopmentState.CORROBORATED
    assert own.decision.independent == 2
    assert own.development.state is DevelopmentState.CORROBORATED
    assert own.development.independent == 2
    assert "Reuters (+1 reprint)" in own.decision.reason
    assert "Politico" in own.decision.reason


def test_outlets_of_one_owner_count_once() -> None:
    analyzer = Analyzer()
    analyzer.add(article(*QUAKE_SUMATRA[0], outlet="The Times", owner="News Corp"), _at(0))
    second = analyzer.add(article(*QUAKE_SUMATRA[1], outlet="The Sun", owner="News Corp", minutes=5), _at(5))
    assert second.article.origin == "owner:newscorp"
    assert second.decision.independent == 1
    third = analyzer.add(article(*QUAKE_SUMATRA[2], outlet="BBC", minutes=10), _at(10))
    assert third.decision.independent == 2


def test_required_sources_per_topic() -> None:
    config = AnalysisConfig(required={"quakes": 3})
    analyzer = Analyzer(config)
    topic = (TopicMatch("quakes", 1.0, "'earthquake' in title"),)
    analyzer.add(article(*QUAKE_SUMATRA[0], outlet="a.com", topics=topic), _at(0))
    out = analyzer.add(article(*QUAKE_SUMATRA[1], outlet="b.com", minutes=5, topics=topic), _at(5))
    assert out.development.topic == "quakes"
    assert out.decision.independent == 2
    assert out.decision.state is DevelopmentState.SINGLE_SOURCE
    assert "needs 3" in out.decision.reason


def test_ids_are_allocated_from_the_seeds() -> None:
    analyzer = Analyzer(next_article_id=100, next_development_id=40)
    first = analyzer.add(article(*QUAKE_SUMATRA[0], outlet="a.com"), _at(0))
    second = analyzer.add(article(*QUAKE_HAITI[0], outlet="b.com", minutes=1), _at(1))
    assert (first.article.id, first.development.id, first.created) == (100, 40, True)
    assert (second.article.id, second.development.id) == (101, 41)
    assert first.article.development_id == 40
    assert "origin outlet:acom" in first.why


def test_restore_after_restart_gives_the_same_assignments() -> None:
    stream = [
        article(*QUAKE_SUMATRA[0], outlet="a.com", minutes=0),
        article(*QUAKE_HAITI[0], outlet="b.com", minutes=5),
        article(*QUAKE_SUMATRA[1], outlet="c.com", minutes=10),
        article(*WIRE_STORY, outlet="Reuters", tier="wire", minutes=15),
    ]
    live = Analyzer()
    outcomes = [live.add(a, a.published) for a in stream]
    stored_articles = [replace(o.article) for o in outcomes]
    latest = {o.development.id: o for o in outcomes}
    stored_devs = [(replace(o.development), live.cluster.features(dev_id)) for dev_id, o in latest.items()]

    restarted = Analyzer(next_article_id=len(stream) + 1, next_development_id=max(latest) + 1)
    restarted.restore(stored_articles, stored_devs)

    for probe in (
        article(*QUAKE_HAITI[1], outlet="d.com", minutes=20),
        article(*QUAKE_SUMATRA[2], outlet="e.com", minutes=25),
        article(*EDITED_COPY, outlet="Daily Planet", minutes=30),
    ):
        expected = live.add(replace(probe), probe.published)
        got = restarted.add(replace(probe), probe.published)
        assert got.article.id == expected.article.id
        assert got.development.id == expected.development.id
        assert got.article.reprint_of == expected.article.reprint_of
        assert got.article.origin == expected.article.origin
        assert got.decision.independent == expected.decision.independent


def test_merge_is_reported_with_the_absorbed_development() -> None:
    config = AnalysisConfig(cluster=replace(ClusterConfig(), headline_threshold=0.45, merge_ratio=1.0))
    analyzer = Analyzer(config)
    one = analyzer.add(article("Acme recalls Model X toaster ovens", outlet="a.com"), _at(0))
    two = analyzer.add(article("Toaster oven fires prompt federal safety warning", outlet="b.com", minutes=60), _at(60))
    bridge = analyzer.add(
        article("Acme toaster oven recall follows fires and federal safety warning", outlet="c.com", minutes=61),
        _at(61),
    )
    assert bridge.merged_from == (two.development.id,)
    assert bridge.development.id == one.development.id
    (absorbed,) = bridge.merged
    assert absorbed.state is DevelopmentState.MERGED
    assert absorbed.merged_into == one.development.id
    # all three outlets now stand behind the one development
    assert bridge.decision.independent == 3


def test_degenerate_articles_get_a_bounded_outcome() -> None:
    analyzer = Analyzer()
    for n, (title, text) in enumerate([("", ""), ("!!!", ""), ("🚀🔥", ""), ("Breaking", ""), ("x" * 50_000, "y " * 200_000)]):
        out = analyzer.add(article(title, text, outlet=f"o{n}.com", minutes=n), _at(n))
        assert out.development.id is not None
        assert out.decision.independent >= 1


def test_a_development_that_keeps_growing_for_weeks_stays_bounded() -> None:
    """Four weeks of daily reports from 60 outlets on one running story: its index entry,
    stored features and remembered members stop growing."""
    import json

    analyzer = Analyzer()
    story = "{outlet} reports day {day} of the Padang earthquake recovery in West Sumatra, Indonesia"
    body = " ".join(QUAKE_SUMATRA[0][1].split()[:120])
    sizes = []
    for day in range(28):
        for n in range(60):
            minutes = day * 24 * 60 + n
            outlet = f"outlet{n}.com"
            out = analyzer.add(article(story.format(outlet=f"Outlet {n}", day=day), f"{body} Day {day}.", outlet=outlet, minutes=minutes), _at(minutes))
        sizes.append(len(json.dumps(out.features)))
    dev_id = out.development.id
    assert dev_id is not None
    cfg = analyzer.config.cluster
    assert len(analyzer.cluster.features(dev_id)["centroid"]) <= cfg.max_terms
    assert len(analyzer.cluster.features(dev_id)["members"]) <= cfg.link_members
    assert max(sizes[7:]) <= 1.1 * sizes[7]  # the stored features stop growing after a week
    remembered = sum(len(kept) for kept in analyzer._members[dev_id].values())
    assert remembered <= analyzer.config.members_per_origin * 60
    assert out.decision.state is DevelopmentState.CORROBORATED  # (the shared body makes most outlets copies)


# -- relevance belongs to the development ---------------------------------------------------

TOPIC = "ai-export-controls"
RULES = (TopicMatch(TOPIC, 2.0, "'Entity List' in title"),)
LISTING = (
    "US adds memory maker YMTC and 35 other Chinese firms to Entity List",
    "The Commerce Department added memory chipmaker YMTC and 35 other Chinese companies to its "
    "trade blacklist, restricting their access to American technology.",
)
# The same event worded without one term of the topic's rules.
SECOND_OUTLET = (
    "Washington blacklists YMTC and 35 more Chinese companies",
    "Memory maker YMTC and 35 other Chinese companies were put on a U.S. trade blacklist on Thursday.",
)
OTHER_STORY = ("Washington weighs new tariffs on Chinese steel", "Steel imports would face higher duties.")


def test_an_article_the_rules_miss_joins_the_development_it_reports_and_says_why() -> None:
    analyzer = Analyzer()
    first = analyzer.add(article(*LISTING, outlet="reuters.com", topics=RULES), _at(0))
    missed = article(*SECOND_OUTLET, outlet="ap.org", minutes=30)
    match = analyzer.join(missed, [TOPIC], _at(30))
    assert match is not None and match.topic_id == TOPIC
    dev_id = first.development.id
    assert match.explanation.startswith(f"joined development {dev_id} ('US adds memory maker YMTC")
    assert "which matched 'Entity List' in title" in match.explanation
    missed.topics = (match,)
    second = analyzer.add(missed, _at(30))
    assert second.development.id == dev_id
    assert second.decision.state is DevelopmentState.CORROBORATED  # it counts as a source
    assert analyzer.join(article(*OTHER_STORY, outlet="ft.com", minutes=40), [TOPIC], _at(40)) is None


def test_a_near_miss_that_came_first_joins_when_the_development_forms() -> None:
    analyzer = Analyzer()
    early = article(*SECOND_OUTLET, outlet="ap.org", minutes=0)
    assert analyzer.join(early, [TOPIC], _at(0)) is None  # nothing to join yet
    analyzer.near_misses.add(early, [TOPIC], _at(0))
    unrelated = article(*OTHER_STORY, outlet="ft.com", minutes=1)
    analyzer.near_misses.add(unrelated, [TOPIC], _at(1))
    first = analyzer.add(article(*LISTING, outlet="reuters.com", minutes=20, topics=RULES), _at(20))
    adopted = analyzer.adopt([first.development.id or 0], _at(20))
    assert adopted == [early]
    assert early.topics[0].explanation.startswith(f"joined development {first.development.id}")
    assert analyzer.add(early, _at(20)).decision.state is DevelopmentState.CORROBORATED
    assert len(analyzer.near_misses) == 1  # the unrelated item still waits, for a while


def test_near_misses_are_bounded_by_count_and_age() -> None:
    analyzer = Analyzer()
    pool = analyzer.near_misses
    pool.limit = 3
    for n in range(5):
        pool.add(article(f"YMTC blacklist item {n}", outlet=f"o{n}.com", minutes=n), [TOPIC], _at(n))
    assert len(pool) == 3
    assert pool.sharing(["ymtc"], _at(10)) and not pool.sharing(["ymtc"], _at(10) + timedelta(days=4))
    assert len(pool) == 0

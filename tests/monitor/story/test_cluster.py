"""Incremental clustering into developments (monitor.story.cluster)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from monitor.story.cluster import ClusterConfig, ClusterIndex
from tests.corpus import corpus_path
from tests.monitor.story.story_data import QUAKE_HAITI, QUAKE_SUMATRA, article


def test_same_event_joins_and_same_subject_other_event_stays_apart() -> None:
    index = ClusterIndex()
    stream = [
        (QUAKE_SUMATRA[0], "a.com", "sumatra"),
        (QUAKE_HAITI[0], "b.com", "haiti"),
        (QUAKE_SUMATRA[1], "c.com", "sumatra"),
        (QUAKE_HAITI[1], "d.com", "haiti"),
        (QUAKE_SUMATRA[2], "e.com", "sumatra"),
    ]
    devs: dict[str, set[int]] = {"sumatra": set(), "haiti": set()}
    for n, ((title, text), outlet, event) in enumerate(stream):
        a = article(title, text, outlet=outlet, minutes=5 * n)
        devs[event].add(index.assign(a, a.published, new_id=n + 1).development_id)
    assert len(devs["sumatra"]) == 1
    assert len(devs["haiti"]) == 1
    assert devs["sumatra"] != devs["haiti"]


def test_development_keeps_headline_key_terms_and_times() -> None:
    index = ClusterIndex()
    first = article(*QUAKE_SUMATRA[0], minutes=0)
    later = article(*QUAKE_SUMATRA[1], minutes=90)
    dev = index.assign(first, first.published, new_id=7).development_id
    assert index.assign(later, later.published, new_id=8).development_id == dev
    assert index.headline(dev) in (QUAKE_SUMATRA[0][0], QUAKE_SUMATRA[1][0])
    assert {"padang", "sumatra"} <= set(index.key_terms(dev))
    assert index.seen(dev) == (first.published, later.published)


def test_headline_only_articles_cluster_by_headline() -> None:
    index = ClusterIndex()
    titles = [
        "Pizza chain Sbarro files for bankruptcy",
        "Sbarro files for Chapter 11 bankruptcy protection again",
        "Malaysia Airlines jet missing over South China Sea",
        "Sbarro bankruptcy: pizza chain files for second time",
    ]
    ids = [index.assign(a, a.published, new_id=n + 1).development_id
           for n, a in enumerate(article(t, outlet=f"o{n}.com", minutes=n * 30) for n, t in enumerate(titles))]
    assert ids[0] == ids[1] == ids[3]
    assert ids[2] != ids[0]


def test_bridging_article_merges_two_developments() -> None:
    # A stricter join bar than the default, so the two fragments surely stay apart at first.
    index = ClusterIndex(replace(ClusterConfig(), headline_threshold=0.45, merge_ratio=1.0))
    # Two fragments of one story that share little, then an article naming both sides.
    a = article("Acme recalls Model X toaster ovens", outlet="a.com")
    b = article("Toaster oven fires prompt federal safety warning", outlet="b.com", minutes=60)
    bridge = article("Acme toaster oven recall follows fires and federal safety warning", outlet="c.com", minutes=61)
    first = index.assign(a, a.published, new_id=1)
    second = index.assign(b, b.published, new_id=2)
    assert first.development_id != second.development_id
    third = index.assign(bridge, bridge.published, new_id=3)
    assert [(m.kept, m.absorbed) for m in third.merges] == [(1, 2)]
    assert third.development_id == 1
    assert 2 not in index


def test_old_developments_expire_out_of_the_window() -> None:
    index = ClusterIndex(replace(ClusterConfig(), window=timedelta(days=2)))
    old = article(*QUAKE_SUMATRA[0])
    index.assign(old, old.published, new_id=1)
    much_later = article(*QUAKE_SUMATRA[1], minutes=3 * 24 * 60)
    result = index.assign(much_later, much_later.published, new_id=2)
    assert result.created
    assert 1 not in index


def test_features_restore_gives_the_same_next_assignment() -> None:
    stream = [article(t, x, outlet=f"o{n}.com", minutes=n) for n, (t, x) in enumerate(QUAKE_SUMATRA[:2] + QUAKE_HAITI[:1])]
    live = ClusterIndex()
    for n, a in enumerate(stream):
        live.assign(a, a.published, new_id=n + 1)
    restarted = ClusterIndex()
    for a in stream:
        restarted.learn(a)
    for dev_id in range(1, len(stream) + 1):
        if dev_id in live:
            restarted.restore(dev_id, live.features(dev_id))
    probe = article(*QUAKE_HAITI[1], outlet="p.com", minutes=10)
    expected = live.assign(probe, probe.published, new_id=10)
    got = restarted.assign(replace(probe), probe.published, new_id=10)
    assert (got.development_id, got.created) == (expected.development_id, expected.created)
    assert abs(got.score - expected.score) < 1e-9


def test_candidate_lists_stay_bounded_as_developments_pile_up() -> None:
    cfg = replace(ClusterConfig(), postings_cap=16)
    index = ClusterIndex(cfg)
    # 500 distinct developments that all mention "tariffs": the posting list stays capped.
    for n in range(500):
        a = article(f"Tariffs hit product{n} maker{n} in region{n}", outlet=f"o{n}.com", minutes=n * 600)
        index.assign(a, a.published, new_id=n + 1)
    assert max(len(p) for p in index._postings.values()) <= 16


def test_empty_and_punctuation_titles_get_their_own_development() -> None:
    index = ClusterIndex()
    for n, title in enumerate(["", "!!! ???", "🚀🚀🚀", "Breaking"]):
        a = article(title, outlet=f"o{n}.com", minutes=n)
        result = index.assign(a, a.published, new_id=n + 1)
        assert result.created


def test_a_backlog_polled_today_is_clustered_by_publication_time() -> None:
    # First poll of a feed: an 18-day-old story arrives together with today's news.
    index = ClusterIndex(replace(ClusterConfig(), window=timedelta(days=3)))
    now = article("x").published + timedelta(days=18)
    old_a = article(*QUAKE_SUMATRA[0], outlet="a.com")
    old_b = article(*QUAKE_SUMATRA[1], outlet="b.com", minutes=120)
    today = article(*QUAKE_SUMATRA[2], outlet="c.com", minutes=18 * 24 * 60)
    first = index.assign(old_a, now, new_id=1)
    second = index.assign(old_b, now, new_id=2)
    third = index.assign(today, now, new_id=3)
    assert second.development_id == first.development_id  # the old story stays together
    assert third.created  # today's article does not join an 18-day-old development
    assert index.seen(first.development_id) == (old_a.published, old_b.published)


def test_explicit_dates_in_the_text_tell_two_events_of_one_kind_apart() -> None:
    from monitor.story import textfeatures as tf

    assert tf.months("Published: July 28, 2004. Updated 2013 - 09 - 26; 16th September, 2013") == {
        2004 * 12 + 6,
        2013 * 12 + 8,
    }
    assert tf.months("on Tuesday, July 28, at 10am; 28 pirates") == set()  # no year: no evidence
    title, text = QUAKE_SUMATRA[0]
    index = ClusterIndex()
    first = article(title, f"September 30, 2009 - {text}", outlet="a.com")
    index.assign(first, first.published, new_id=1)
    when = first.published + timedelta(minutes=5)
    same = index.featurize(article(title, f"Oct 1, 2009 - {text}", outlet="b.com"))
    other = index.featurize(article(title, f"March 12, 2005 - {text}", outlet="c.com"))
    dev = index._devs[1]
    assert index.score(same, dev, when) > index.score(other, dev, when)
    restored = ClusterIndex()
    restored.learn(first)
    restored.restore(1, index.features(1))
    assert restored._devs[1].months == dev.months  # dates survive a restart


def test_a_headline_finds_the_full_text_development_whose_bodies_it_echoes() -> None:
    # The full texts' own headlines share one word with the headline ("Padang"); their
    # bodies share most of it. A headline about another event of the kind stays apart.
    index = ClusterIndex()
    sumatra = [article(t, x, outlet=f"s{n}.com", minutes=n) for n, (t, x) in enumerate(QUAKE_SUMATRA[:2])]
    for n, a in enumerate(sumatra):
        index.assign(a, a.published, new_id=n + 1)
    haiti = article(*QUAKE_HAITI[0], outlet="h.com", minutes=3)
    haiti_dev = index.assign(haiti, haiti.published, new_id=10).development_id
    headline = article("Padang hospitals fill after Indonesian island struck", outlet="x.com", minutes=4)
    got = index.assign(headline, headline.published, new_id=20)
    assert not got.created and got.development_id == 1
    other = article("Haiti earthquake: Port-au-Prince hospitals overwhelmed", outlet="y.com", minutes=5)
    assert index.assign(other, other.published, new_id=30).development_id in (haiti_dev, 30)


# Stocks and oil on the same export figures, reported in the same minutes: two developments.
STOCKS = ("Wall Street stocks close lower on weak China exports", "Wall Street stocks end lower after weak China exports")
OIL = ("Crude oil prices slide as Chinese exports slump", "Oil prices slide on slump in China exports")


def _two_halves(index: ClusterIndex, *, oil_minutes: float = 0.0) -> tuple[int, int]:
    stream = [(STOCKS[0], "a.com", 0.0), (OIL[0], "c.com", oil_minutes), (STOCKS[1], "b.com", 0.5), (OIL[1], "d.com", oil_minutes + 0.5)]
    ids = []
    for n, (title, outlet, minutes) in enumerate(stream):
        a = article(title, outlet=outlet, minutes=minutes)
        # Processed in one burst, whatever the publication times say.
        ids.append(index.assign(a, article("x", minutes=1).published, new_id=n + 1).development_id)
    assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]
    return ids[0], ids[1]


def test_a_similar_development_forming_in_the_same_minutes_is_found() -> None:
    index = ClusterIndex()
    stocks, oil = _two_halves(index)
    now = article("x", minutes=1).published
    found = index.forming_sibling(stocks, now)
    assert found is not None and found[0] == oil and found[1] > 0
    assert index.forming_sibling(stocks, now + timedelta(minutes=30)) is None  # the other went quiet


def test_a_backlog_published_days_apart_is_not_forming_alongside() -> None:
    index = ClusterIndex()
    stocks, _ = _two_halves(index, oil_minutes=-3 * 24 * 60)
    assert index.forming_sibling(stocks, article("x", minutes=1).published) is None


def test_an_unrelated_development_is_no_sibling() -> None:
    index = ClusterIndex()
    first = [article(t, outlet=o, minutes=0) for t, o in ((STOCKS[0], "a.com"), (STOCKS[1], "b.com"))]
    other = [article(t, outlet=o, minutes=0) for t, o in (("Pizza chain Sbarro files for bankruptcy", "c.com"),
                                                           ("Sbarro files for Chapter 11 bankruptcy again", "d.com"))]
    ids = [index.assign(a, a.published, new_id=n + 1).development_id for n, a in enumerate(first + other)]
    assert len(set(ids)) == 2
    assert index.forming_sibling(ids[0], first[0].published) is None


def test_two_events_of_one_subject_in_full_text_are_not_held_for_each_other() -> None:
    """Member texts are reliable evidence: two piracy incidents of ECB+ topic 12 reported at
    once are two stories (they never merge), and holding one for the other only delays it.
    At half the merge bar, as for headlines, they would be held."""
    import json

    corpus = corpus_path("clusters", "ecbplus.jsonl")
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    first = [r for r in rows if r["cluster"] == "12_ecb"][:2]
    second = [r for r in rows if r["cluster"] == "12_ecbplus"][:2]
    found = {}
    for share in (1.0, 0.5):
        index = ClusterIndex(replace(ClusterConfig(), forming_share_full=share))
        ids = []
        for n, row in enumerate([first[0], second[0], first[1], second[1]]):
            a = article(row["title"], row["text"], outlet=f"o{n}.com", minutes=n)
            ids.append(index.assign(a, a.published, new_id=n + 1).development_id)
        assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]
        found[share] = index.forming_sibling(ids[3], article("x", minutes=4).published)
    assert found[1.0] is None
    assert found[0.5] is not None and found[0.5][0] == ids[0]

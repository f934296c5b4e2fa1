"""Storylines: an alert lists the earlier developments of the same ongoing story, in order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.models import Development, DevelopmentState, TimelineEntry
from monitor.story.timeline import storyline_for, timeline_entries

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=60)
TOPIC_TERMS = ("export controls", "chip*", "semiconductor*", "China")


def dev(
    id: int | None,
    headline: str,
    day: int,
    *,
    key_terms: tuple[str, ...] = (),
    storyline_id: int | None = None,
    topic: str = "ai-export-controls",
    merged_into: int | None = None,
    independent: int = 2,
) -> Development:
    seen = T0 + timedelta(days=day)
    return Development(
        topic=topic,
        headline=headline,
        first_seen=seen,
        last_seen=seen + timedelta(hours=6),
        key_terms=key_terms,
        storyline_id=storyline_id,
        merged_into=merged_into,
        state=DevelopmentState.MERGED if merged_into else DevelopmentState.CORROBORATED,
        independent=independent,
        id=id,
    )


def history() -> list[Development]:
    return [
        dev(
            1, "US adds SMIC to Entity List over 7nm chips for Huawei", 0, key_terms=("smic", "7nm")
        ),
        dev(
            2,
            "Nvidia designs H20 chip for China after export controls",
            5,
            key_terms=("nvidia", "h20"),
        ),
        dev(3, "SMIC ships 7nm processors to Huawei despite curbs", 20, storyline_id=1),
        dev(4, "Dutch government restricts ASML lithography exports", 25, key_terms=("asml",)),
    ]


def test_new_development_joins_the_story_it_shares_names_with() -> None:
    new = dev(9, "Huawei's new phone uses SMIC 7nm chip, teardown shows", 40)
    assert storyline_for(new, history(), window=WINDOW, now=new.first_seen) == 1


def test_unrelated_development_starts_no_storyline() -> None:
    new = dev(9, "EU fines Google over adtech", 40, key_terms=("google", "adtech"))
    assert storyline_for(new, history(), window=WINDOW, now=new.first_seen) is None


def test_one_shared_name_is_not_enough() -> None:
    new = dev(9, "Nvidia earnings beat forecasts", 40, key_terms=("earnings", "forecast"))
    assert storyline_for(new, history(), window=WINDOW, now=new.first_seen) is None


def test_the_topic_own_words_never_link_two_developments() -> None:
    a = dev(1, "New export controls on semiconductors for China", 0)
    b = dev(2, "China responds to semiconductor export controls", 3)
    assert storyline_for(b, [a], window=WINDOW, now=b.first_seen, common_terms=TOPIC_TERMS) is None


def test_developments_outside_the_window_are_not_linked() -> None:
    new = dev(9, "Huawei's new phone uses SMIC 7nm chip, teardown shows", 200)
    assert storyline_for(new, history(), window=WINDOW, now=new.first_seen) is None


def test_merged_other_topic_later_and_itself_are_ignored() -> None:
    new = dev(9, "Huawei's new phone uses SMIC 7nm chip, teardown shows", 40)
    ignored = [
        dev(1, "SMIC 7nm Huawei chip", 0, merged_into=5),
        dev(2, "SMIC 7nm Huawei chip", 1, topic="other"),
        dev(3, "SMIC 7nm Huawei chip", 45),
        dev(9, "SMIC 7nm Huawei chip", 40),
    ]
    assert storyline_for(new, ignored, window=WINDOW, now=new.first_seen) is None


def test_a_word_every_candidate_shares_is_not_distinctive() -> None:
    pool = [dev(i, f"Tariff update {i} on trade with Vietnam", i) for i in range(1, 11)]
    new = dev(20, "Vietnam tariff trade talks resume", 15)
    assert storyline_for(new, pool, window=WINDOW, now=new.first_seen) is None


def test_timeline_lists_earlier_developments_oldest_first() -> None:
    devs = [
        dev(3, "SMIC ships 7nm processors to Huawei", 20, storyline_id=1, independent=3),
        dev(1, "US adds SMIC to Entity List", 0),
        dev(5, "SMIC 5nm rumours", 30, storyline_id=1, merged_into=3),
        dev(7, "Later development", 50, storyline_id=1),
        dev(8, "Another story", 10, storyline_id=2),
    ]
    current = dev(6, "Huawei phone uses SMIC chip", 40, storyline_id=1)
    assert timeline_entries(current, [*devs, current]) == (
        TimelineEntry(1, "US adds SMIC to Entity List", T0, 2),
        TimelineEntry(3, "SMIC ships 7nm processors to Huawei", T0 + timedelta(days=20), 3),
    )


def test_timeline_keeps_the_newest_entries() -> None:
    devs = [dev(1, "Start", 0)] + [dev(i, f"Step {i}", i, storyline_id=1) for i in range(2, 30)]
    current = dev(99, "Now", 40, storyline_id=1)
    entries = timeline_entries(current, devs)
    assert len(entries) == 10
    assert [e.development_id for e in entries] == list(range(20, 30))


def test_development_without_storyline_has_no_timeline() -> None:
    assert timeline_entries(dev(1, "Alone", 0), history()) == ()


def test_a_root_that_names_itself_as_storyline_is_followed() -> None:
    """The pipeline stores a story's first development with storyline_id = its own id."""
    root = dev(1, "US adds SMIC to Entity List over 7nm chips for Huawei", 0, storyline_id=1)
    new = dev(9, "Huawei's new phone uses SMIC 7nm chip, teardown shows", 40)
    assert storyline_for(new, [root], window=WINDOW, now=new.first_seen) == 1
    new.storyline_id = 1
    assert [e.development_id for e in timeline_entries(new, [root, new])] == [1]
    assert timeline_entries(root, [root, new]) == ()


def test_an_earlier_development_found_later_joins_the_same_storyline() -> None:
    """A backlog can deliver last month's development after today's: still one story."""
    now = datetime(2026, 3, 20, tzinfo=UTC)
    today = Development(
        topic="t", headline="Nvidia H20 exports to China halted by new BIS licence rule",
        first_seen=now - timedelta(hours=2), last_seen=now - timedelta(hours=1), id=7, storyline_id=7,
    )
    earlier = Development(
        topic="t", headline="BIS weighs licence rule for Nvidia H20 exports to China",
        first_seen=now - timedelta(days=18), last_seen=now - timedelta(days=17), id=8,
        state=DevelopmentState.CORROBORATED, independent=2,
    )
    assert storyline_for(earlier, [today], window=timedelta(days=60), now=now) == 7
    earlier.storyline_id = 7
    entries = timeline_entries(today, [earlier, today])
    assert [e.development_id for e in entries] == [8]


def test_a_single_source_item_is_never_listed_as_earlier_in_the_story() -> None:
    now = datetime(2026, 3, 20, tzinfo=UTC)
    today = Development(topic="t", headline="Nvidia H20 licence rule takes effect", first_seen=now, last_seen=now, id=7, storyline_id=1)
    rumour = Development(topic="t", headline="Nvidia H20 may face licence rule, one blog says", first_seen=now - timedelta(days=9),
                         last_seen=now - timedelta(days=9), id=5, storyline_id=1, state=DevelopmentState.SINGLE_SOURCE)
    confirmed = Development(topic="t", headline="BIS weighs licence rule for Nvidia H20", first_seen=now - timedelta(days=8),
                            last_seen=now - timedelta(days=8), id=1, storyline_id=1, state=DevelopmentState.CORROBORATED, independent=3)
    assert [e.development_id for e in timeline_entries(today, [rumour, confirmed])] == [1]


def test_a_series_kind_links_across_years_without_shared_words() -> None:
    """The October 2023 rules update the October 2022 rules: one story, by kind."""
    rules_2022 = Development(topic="t", headline="Commerce implements new export controls on advanced computing", first_seen=datetime(2022, 10, 7, tzinfo=UTC),
                             last_seen=datetime(2022, 10, 20, tzinfo=UTC), id=2, storyline_id=2, kind="us:rule",
                             state=DevelopmentState.CORROBORATED, independent=5)
    allies = Development(topic="t", headline="Japan restricts chipmaking equipment exports", first_seen=datetime(2023, 3, 31, tzinfo=UTC),
                         last_seen=datetime(2023, 4, 1, tzinfo=UTC), id=9, storyline_id=9, kind="ally:control",
                         state=DevelopmentState.CORROBORATED, independent=3)
    rules_2023 = Development(topic="t", headline="Commerce strengthens restrictions on semiconductors", first_seen=datetime(2023, 10, 17, tzinfo=UTC),
                             last_seen=datetime(2023, 10, 19, tzinfo=UTC), id=18, kind="us:rule")
    now = rules_2023.last_seen
    assert storyline_for(rules_2023, [rules_2022, allies], window=timedelta(days=1095), now=now) == 2
    assert storyline_for(rules_2023, [rules_2022, allies], window=timedelta(days=60), now=now) is None  # outside the window
    commentary = Development(topic="t", headline="How chips became a weapon", first_seen=now, last_seen=now, id=20, kind="commentary")
    assert storyline_for(commentary, [rules_2022, allies], window=timedelta(days=1095), now=now) is None


def test_names_alone_link_for_months_not_years() -> None:
    now = datetime(2026, 3, 20, tzinfo=UTC)
    old = Development(topic="t", headline="US orders Nvidia to halt A100 sales to China", first_seen=now - timedelta(days=200),
                      last_seen=now - timedelta(days=199), id=1, storyline_id=1, kind="us:licence", key_terms=("nvidia", "a100"),
                      state=DevelopmentState.CORROBORATED, independent=4)
    new = Development(topic="t", headline="Nvidia A100 successor halted for China, US orders", first_seen=now, last_seen=now, id=2,
                      kind="us:licence", key_terms=("nvidia", "a100"))
    assert storyline_for(new, [old], window=timedelta(days=1095), now=now) is None
    recent = replace(old, first_seen=now - timedelta(days=20), last_seen=now - timedelta(days=19))
    assert storyline_for(new, [recent], window=timedelta(days=1095), now=now) == 1


def test_generic_words_alone_do_not_make_one_story() -> None:
    """Shared 'licence' and 'rule' but no shared name: two stories, not one."""
    now = datetime(2026, 3, 20, tzinfo=UTC)
    chips = Development(
        topic="t", headline="BIS tightens licence rules for Nvidia chip exports to China",
        first_seen=now - timedelta(days=3), last_seen=now - timedelta(days=3), id=1, storyline_id=1,
    )
    dutch = Development(
        topic="t", headline="Netherlands extends export licence rule to servicing of ASML machines",
        first_seen=now, last_seen=now, id=2,
    )
    assert storyline_for(dutch, [chips], window=timedelta(days=60), now=now) is None

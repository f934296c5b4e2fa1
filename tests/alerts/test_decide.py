"""The decide stage: which alert rows a development's new state produces, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from alerts.decide import Hold, PreviousState, decide
from alerts.deliver import Relay
from monitor.config.settings import QuietHours, Route
from monitor.models import (
    ActiveSilence,
    AlertKind,
    AlertState,
    Article,
    Decision,
    Development,
    DevelopmentState,
    Impact,
)
from monitor.store import Store, outbox
from monitor.store.articles import insert_articles
from monitor.store.developments import upsert_development
from monitor.store.silences import active_silences, add_silence
from tests.fakeslack import FakeSlack

NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
TOPIC_ROUTE = Route(topic="export-controls", channel="#export-controls", oncall_channel="#oncall", oncall_threshold=8, mention="<!subteam^S0123>")


def development(*, impact: int = 5, independent: int = 2, dev_id: int = 7, headline: str = "US widens chip export rules") -> Development:
    state = DevelopmentState.CORROBORATED if independent >= 2 else DevelopmentState.SINGLE_SOURCE
    return Development(
        topic="export-controls",
        headline=headline,
        first_seen=NOON - timedelta(hours=1),
        last_seen=NOON,
        state=state,
        independent=independent,
        impact=Impact(impact, ("regulatory action",)),
        id=dev_id,
    )


def decision_for(dev: Development) -> Decision:
    return Decision(state=dev.state, independent=dev.independent, reason=f"{dev.independent} independent: Reuters, BIS")


def run(dev: Development, previous: PreviousState | None = None, *, routes=(TOPIC_ROUTE,), silences=(), now=NOON, **kw):
    return decide(dev, decision_for(dev), previous, list(routes), list(silences), now=now, **kw)


def keys(alerts) -> list[str]:
    return [a.dedup_key for a in alerts]


def test_single_source_development_alerts_nobody() -> None:
    assert run(development(independent=1)) == []


def test_corroboration_creates_one_parent_in_the_topic_channel_with_its_reason() -> None:
    alerts = run(development(), PreviousState(DevelopmentState.SINGLE_SOURCE, 1, 4), new_article_ids=[11])

    assert [(a.kind, a.channel, a.state) for a in alerts] == [(AlertKind.NEW, "#export-controls", AlertState.PENDING)]
    assert alerts[0].dedup_key == "dev:7:#export-controls"
    assert "corroborated: 2 independent: Reuters, BIS" in str(alerts[0].payload.reason)
    assert alerts[0].not_before is None


def test_an_already_alerted_development_gets_no_second_parent() -> None:
    dev = development()
    again = run(dev, PreviousState(DevelopmentState.CORROBORATED, 2, 5))

    assert again == []


def test_later_independent_source_updates_the_parent_with_the_new_articles() -> None:
    alerts = run(development(independent=3), PreviousState(DevelopmentState.CORROBORATED, 2, 5), new_article_ids=[21, 22])

    assert [(a.kind, a.channel) for a in alerts] == [(AlertKind.UPDATE, "#export-controls")]
    update = alerts[0]
    assert update.dedup_key == "dev:7:#export-controls:upd:3"
    assert update.payload.new_article_ids == (21, 22)
    assert update.payload.material is False
    assert "2 → 3" in str(update.payload.reason)


def test_a_reprint_that_adds_no_independent_source_changes_nothing() -> None:
    assert run(development(independent=2), PreviousState(DevelopmentState.CORROBORATED, 2, 5), new_article_ids=[30]) == []


def test_impact_crossing_the_oncall_threshold_is_material_and_opens_the_oncall_channel() -> None:
    alerts = run(development(independent=3, impact=9), PreviousState(DevelopmentState.CORROBORATED, 2, 6), new_article_ids=[40])

    by_channel = {a.channel: a for a in alerts}
    assert set(by_channel) == {"#export-controls", "#oncall"}
    update = by_channel["#export-controls"]
    assert update.kind is AlertKind.UPDATE and update.payload.material is True
    assert "crossed the on-call threshold 8" in str(update.payload.reason)
    oncall = by_channel["#oncall"]
    assert oncall.kind is AlertKind.NEW and oncall.dedup_key == "dev:7:#oncall"
    assert oncall.payload.mention == "<!subteam^S0123>"
    assert "reached the on-call threshold" in str(oncall.payload.reason)


def test_impact_crossing_without_a_new_source_still_updates_under_its_own_key() -> None:
    alerts = run(development(independent=2, impact=8), PreviousState(DevelopmentState.CORROBORATED, 2, 7))

    update = next(a for a in alerts if a.kind is AlertKind.UPDATE)
    assert update.dedup_key == "dev:7:#export-controls:upd:2:material"
    assert update.payload.material is True


def test_high_impact_at_first_corroboration_goes_to_both_channels_and_mentions_only_oncall() -> None:
    alerts = run(development(impact=9), PreviousState(DevelopmentState.SINGLE_SOURCE, 1, 9))

    assert sorted(keys(alerts)) == ["dev:7:#export-controls", "dev:7:#oncall"]
    assert all(a.kind is AlertKind.NEW for a in alerts)
    topic = next(a for a in alerts if a.channel == "#export-controls")
    assert topic.payload.mention == ""
    assert next(a for a in alerts if a.channel == "#oncall").payload.mention == "<!subteam^S0123>"


def test_mention_comes_only_from_config_even_when_the_headline_contains_one() -> None:
    alerts = run(development(impact=9, headline="<!channel> <@U123> urgent"), None, routes=[Route(topic="export-controls", channel="#ec", oncall_channel="#oncall")])

    assert all(a.payload.mention == "" for a in alerts)


def test_two_routes_for_one_topic_give_one_parent_per_channel() -> None:
    routes = [TOPIC_ROUTE, Route(topic="export-controls", channel="#policy"), Route(topic="other", channel="#other")]
    alerts = run(development(), None, routes=routes)

    assert sorted(keys(alerts)) == ["dev:7:#export-controls", "dev:7:#policy"]


def test_merge_produces_one_reconciliation_row_per_channel() -> None:
    alerts = run(development(independent=3), PreviousState(DevelopmentState.CORROBORATED, 3, 5), merged_from=[4])

    assert [(a.kind, a.dedup_key) for a in alerts] == [(AlertKind.MERGE, "merge:4:7:#export-controls")]
    assert alerts[0].payload.from_id == 4 and alerts[0].payload.into_id == 7
    assert "development 4 merged into 7" in str(alerts[0].payload.reason)


def silence(matcher: str, value: str, reason: str = "noisy") -> ActiveSilence:
    return ActiveSilence(id=3, matcher=matcher, value=value, reason=reason, expires=NOON + timedelta(hours=5))


def test_silenced_alert_is_recorded_as_silenced_with_the_silence_reason() -> None:
    alerts = run(development(), None, silences=[silence("topic", "export-controls", "known story, handled")])

    assert len(alerts) == 1
    assert alerts[0].state is AlertState.SILENCED
    assert alerts[0].payload.silence.reason == "known story, handled"
    assert "silenced by silence #3 (topic=export-controls): known story, handled" in str(alerts[0].payload.reason)


def test_silence_by_headline_text_and_by_development() -> None:
    by_text = run(development(headline="Chip EXPORT rules widened"), None, silences=[silence("match", "export rules")])
    by_dev = run(development(), None, silences=[silence("development", "7")])
    other_dev = run(development(), None, silences=[silence("development", "8")])

    assert by_text[0].state is AlertState.SILENCED
    assert by_dev[0].state is AlertState.SILENCED
    assert other_dev[0].state is AlertState.PENDING


def test_source_silence_applies_only_when_every_triggering_source_is_silenced() -> None:
    silences = [silence("source", "noisy-blog")]
    only_noisy = run(development(), None, silences=silences, source_ids=["noisy-blog"])
    mixed = run(development(), None, silences=silences, source_ids=["noisy-blog", "reuters"])

    assert only_noisy[0].state is AlertState.SILENCED
    assert mixed[0].state is AlertState.PENDING


QUIET_ROUTE = TOPIC_ROUTE.model_copy(update={"quiet_hours": QuietHours(start="22:00", end="07:00", timezone="Europe/Berlin")})
BERLIN_MIDNIGHT = datetime(2026, 6, 10, 22, 30, tzinfo=UTC)  # 00:30 in Berlin (CEST)


def test_non_urgent_alert_in_quiet_hours_waits_for_their_end() -> None:
    alerts = run(development(impact=5), None, routes=[QUIET_ROUTE], now=BERLIN_MIDNIGHT)

    assert len(alerts) == 1
    assert alerts[0].not_before == datetime(2026, 6, 11, 5, 0, tzinfo=UTC)  # 07:00 CEST
    assert alerts[0].state is AlertState.PENDING
    assert "quiet hours until" in str(alerts[0].payload.reason)


def test_urgent_alert_in_quiet_hours_goes_now_in_both_channels() -> None:
    alerts = run(development(impact=9), None, routes=[QUIET_ROUTE], now=BERLIN_MIDNIGHT)

    assert {a.channel for a in alerts} == {"#export-controls", "#oncall"}
    assert all(a.not_before is None for a in alerts)
    assert all(a.payload.urgent is True for a in alerts)


def test_outside_quiet_hours_nothing_waits() -> None:
    alerts = run(development(impact=5), None, routes=[QUIET_ROUTE], now=NOON)

    assert alerts[0].not_before is None


# --- through the outbox to a (fake) Slack -----------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    yield store
    store.close()


def seed(store: Store, dev: Development) -> None:
    """The development and one article from each of two independent outlets."""
    def article(n: int, outlet: str, owner: str) -> Article:
        return Article(
            source_id=outlet.lower(), outlet=outlet, url=f"https://{owner}.example/{n}", canonical_url=f"https://{owner}.example/{n}",
            title=dev.headline, summary="", text="", published=NOON, fetched=NOON, owner=owner,
            content_hash=f"h{n}", origin=f"owner:{owner}", development_id=dev.id, id=n,
        )

    with store.transaction() as conn:
        upsert_development(conn, dev)
        insert_articles(conn, [article(1, "Reuters", "reuters"), article(2, "BIS", "bis")])


def workspace() -> FakeSlack:
    return FakeSlack(channels={"export-controls": "C0EXPORT01", "policy": "C0POLICY01", "oncall": "C0ONCALL01"})


async def deliver(store: Store, slack: FakeSlack, now: datetime) -> None:
    relay = Relay(store, AsyncWebClient(token=slack.token, base_url=slack.base_url, timeout=5))
    await relay.deliver_due(now)


def enqueue_all(store: Store, alerts) -> list[int | None]:
    with store.transaction() as conn:
        return [outbox.enqueue(conn, a) for a in alerts]


async def test_two_routes_post_one_parent_in_each_channel_even_when_decided_twice(sqlite_store: Store) -> None:
    dev = development()
    seed(sqlite_store, dev)
    routes = [Route(topic="export-controls", channel="#export-controls"), Route(topic="export-controls", channel="#policy")]
    first = enqueue_all(sqlite_store, run(dev, PreviousState(DevelopmentState.SINGLE_SOURCE, 1, 5), routes=routes))
    # A replayed cycle (say, after a crash before the state was saved) decides the same again.
    replay = enqueue_all(sqlite_store, run(dev, PreviousState(DevelopmentState.SINGLE_SOURCE, 1, 5), routes=routes))
    with workspace() as slack:
        await deliver(sqlite_store, slack, NOON)
        await deliver(sqlite_store, slack, NOON + timedelta(minutes=1))
        assert len(slack.messages("export-controls")) == 1
        assert len(slack.messages("policy")) == 1
    assert all(first) and replay == [None, None]


async def test_silenced_alert_is_kept_in_the_outbox_and_never_posted(sqlite_store: Store) -> None:
    dev = development()
    seed(sqlite_store, dev)
    with sqlite_store.transaction() as conn:
        add_silence(conn, "topic", "export-controls", "handled by the policy team", NOON, NOON + timedelta(hours=4))
        active = active_silences(conn, NOON)
    [alert_id] = enqueue_all(sqlite_store, run(dev, None, silences=active))
    with workspace() as slack:
        await deliver(sqlite_store, slack, NOON)
        assert slack.all_messages() == []
    with sqlite_store.connect() as conn:
        stored = outbox.get_alert(conn, alert_id)  # type: ignore[arg-type]
    assert stored is not None and stored.state is AlertState.SILENCED
    assert "handled by the policy team" in str(stored.payload.reason)


async def test_quiet_hours_hold_the_parent_until_they_end(sqlite_store: Store) -> None:
    dev = development(impact=5)
    seed(sqlite_store, dev)
    [alert] = run(dev, None, routes=[QUIET_ROUTE], now=BERLIN_MIDNIGHT)
    enqueue_all(sqlite_store, [alert])
    assert alert.not_before is not None
    with workspace() as slack:
        await deliver(sqlite_store, slack, BERLIN_MIDNIGHT + timedelta(hours=1))
        assert slack.messages("export-controls") == []
        await deliver(sqlite_store, slack, alert.not_before)
        assert len(slack.messages("export-controls")) == 1


def test_a_hold_delays_the_first_parent_and_says_why() -> None:
    hold = Hold(NOON + timedelta(minutes=1), "held 1m: development 6 (similarity 0.12) is forming in the same minutes")
    [parent] = run(development(), hold=hold)
    assert parent.kind is AlertKind.NEW and parent.state is AlertState.PENDING
    assert parent.not_before == NOON + timedelta(minutes=1)
    assert parent.payload.reason.endswith("; held 1m: development 6 (similarity 0.12) is forming in the same minutes")


def test_a_hold_never_delays_an_update_to_a_message_people_already_have() -> None:
    hold = Hold(NOON + timedelta(minutes=1), "held")
    earlier = PreviousState(DevelopmentState.CORROBORATED, 2, 5)
    [update] = run(development(independent=3), earlier, hold=hold, new_article_ids=[11])
    assert update.kind is AlertKind.UPDATE and update.not_before is None


def test_quiet_hours_longer_than_the_hold_win() -> None:
    route = Route(topic="export-controls", channel="#export-controls", quiet_hours=QuietHours(start="22:00", end="07:00", timezone="UTC"))
    night = datetime(2026, 6, 10, 23, 0, tzinfo=UTC)
    [parent] = run(development(), routes=[route], now=night, hold=Hold(night + timedelta(minutes=1), "held"))
    assert parent.not_before == datetime(2026, 6, 11, 7, 0, tzinfo=UTC)
    assert "held" not in parent.payload.reason

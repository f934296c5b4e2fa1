"""The outbox relay against the fake Slack: what a channel ends up showing, and what the
outbox records, through errors, retries, ambiguous timeouts and a killed process."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from sqlalchemy import insert

from alerts.console import ConsoleSink
from alerts.deliver import Backoff, Relay
from alerts.slack import PERMANENT_ERRORS, SlackWebSink, WebhookSink, alert_metadata, make_client
from monitor.config.settings import Route, Settings, Slack, Topic
from monitor.models import (
    Alert,
    AlertKind,
    AlertState,
    Article,
    Development,
    DevelopmentState,
    DigestPayload,
    HealthPayload,
    Impact,
    MergePayload,
    NewPayload,
    Sentiment,
    SlackMessage,
    UpdatePayload,
)
from monitor.store import Store, outbox
from monitor.store.articles import insert_articles
from monitor.store.developments import upsert_development
from monitor.store.schema import alert as alert_table
from tests.fakeslack import FakeSlack
from tests.store_rows import all_alerts

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings(topics=(Topic(id="ai-export", name="AI export controls"),))
# The same topic routed with an on-call channel: only then is a material reply broadcast.
ONCALL = Settings(topics=SETTINGS.topics, routes=(Route(topic="ai-export", channel="alerts", oncall_channel="oncall"),))
HEADLINE = "US tightens AI chip export rules"


class Clock:
    """The relay's clock; starts at the wall clock so Slack ts filters line up."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


# --- seeding the store (also used by the SIGKILL subprocess) -----------------------------


def slug(outlet: str) -> str:
    return outlet.lower().replace(" ", "")


def make_articles(dev_id: int, outlets: list[str], now: datetime, *, origin_of: dict[str, str] | None = None) -> list[Article]:
    origin_of = origin_of or {}
    return [
        Article(
            source_id=f"src-{slug(o)}",
            outlet=o,
            url=f"https://{slug(o)}.example/{dev_id}/{n}",
            canonical_url=f"https://{slug(o)}.example/{dev_id}/{n}",
            title=f"{o}: US tightens AI chip export rules",
            summary="Licence requirements widened.",
            text="",
            published=now + timedelta(seconds=n),
            fetched=now + timedelta(seconds=n),
            content_hash=f"{dev_id}-{slug(o)}-{n}",
            origin=origin_of.get(o, f"outlet:{slug(o)}"),
            development_id=dev_id,
        )
        for n, o in enumerate(outlets)
    ]


def seed_development(conn: Any, now: datetime, *, dev_id: int = 1, outlets: tuple[str, ...] = ("Reuters", "Politico"),
                     headline: str = HEADLINE, impact: int = 6) -> list[Article]:
    dev = Development(
        topic="ai-export", headline=headline, first_seen=now, last_seen=now,
        state=DevelopmentState.CORROBORATED if len(outlets) > 1 else DevelopmentState.SINGLE_SOURCE,
        independent=len(outlets), impact=Impact(impact, ("regulatory action", "agency named")),
        sentiment=Sentiment.NEGATIVE, lead="The Commerce Department widened licence requirements.", id=dev_id,
    )
    upsert_development(conn, dev)
    articles = make_articles(dev_id, list(outlets), now)
    insert_articles(conn, articles)
    return articles


def new_alert(dev_id: int, channel: str, now: datetime, *, oncall: bool = False, mention: str = "") -> Alert:
    payload = NewPayload(reason="corroborated", independent=2, impact=6, oncall=oncall, article_ids=(), mention=mention)
    return Alert(AlertKind.NEW, channel, f"dev:{dev_id}:{channel}", development_id=dev_id, payload=payload, created=now)


def update_payload(ids: list[int], *, material: bool, previous_impact: int | None = None) -> UpdatePayload:
    return UpdatePayload(reason="a new source", new_article_ids=tuple(ids), independent=3, previous_independent=2,
                         impact=6, previous_impact=previous_impact, material=material, oncall=False)


def seed_and_enqueue(store: Store, now: datetime, *, dev_id: int = 1, channel: str = "alerts") -> int:
    """The state change and its alert row, in one transaction (as the pipeline does)."""
    with store.transaction() as conn:
        seed_development(conn, now, dev_id=dev_id)
        alert_id = outbox.enqueue(conn, new_alert(dev_id, channel, now))
    assert alert_id is not None
    return alert_id


def make_relay(store: Store, slack: FakeSlack, clock: Clock, *, timeout: float = 2, rate_limit_retries: int = 5,
               settings: Settings = SETTINGS) -> Relay:
    config = Slack(token=slack.token, base_url=slack.base_url, timeout=timedelta(seconds=timeout))
    # Short pauses between 5xx retries (the SDK's for safe calls, the relay's quick ones for posts) keep the suite quick.
    client = make_client(config, rate_limit_retries=rate_limit_retries, retry_interval=FixedValueRetryIntervalCalculator(0.05))
    return Relay(store, SlackWebSink(client), clock=clock, settings=settings, backoff=Backoff(base=timedelta(seconds=10)),
                 quick_pause=0.05)


def row(store: Store, alert_id: int) -> Alert:
    with store.transaction() as conn:
        found = outbox.get_alert(conn, alert_id)
    assert found is not None
    return found


# --- first alert, update, merge ------------------------------------------------------------


async def test_first_alert_posts_one_parent_and_records_its_ts(store: Store, slack: FakeSlack, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now)
    relay = make_relay(store, slack, clock)

    report = await relay.deliver_due()

    assert report.sent == 1
    [message] = slack.messages("alerts")
    assert message["blocks"][0]["text"]["text"] == f"Reuters: {HEADLINE}"  # the first origin's own headline
    assert "verified by 2 sources" in message["text"]
    assert message["metadata"] == {
        "event_type": "development_alert",
        "event_payload": {"alert_id": alert_id, "part": "parent", "development_id": 1},
    }
    [call] = slack.calls_to("chat.postMessage")
    assert call.params["unfurl_links"] is False and call.params["unfurl_media"] is False
    assert "link_names" not in call.params and "parse" not in call.params
    sent = row(store, alert_id)
    assert sent.state is AlertState.SENT
    assert (sent.slack_channel_id, sent.slack_ts) == ("C0ALERTS01", message["ts"])
    assert str(sent.delivery.permalink).startswith("https://fake.slack.test/archives/C0ALERTS01/")

    again = await relay.deliver_due(clock.advance(hours=1))
    assert again.sent == 0 and len(slack.calls_to("chat.postMessage")) == 1


async def test_a_development_with_more_sources_than_a_message_holds_lists_them_all_in_its_thread(
    store: Store, slack: FakeSlack, clock: Clock
) -> None:
    outlets = tuple(f"Outlet {n:03d} with a long name" for n in range(260))
    with store.transaction() as conn:
        seed_development(conn, clock.now, outlets=outlets)
        outbox.enqueue(conn, new_alert(1, "alerts", clock.now))

    assert (await make_relay(store, slack, clock).deliver_due()).sent == 1

    [parent] = slack.messages("alerts")
    assert "all are listed in the thread" in str(parent["blocks"])
    [listing] = slack.replies("alerts", parent["ts"])
    assert listing["text"].startswith("All 260 independent sources")
    assert "Outlet 259 with a long name" in str(listing["blocks"])


async def test_a_second_monitor_on_the_same_store_leaves_delivery_to_the_first(store: Store, slack: FakeSlack, clock: Clock) -> None:
    """Two relays (another replica, or `run --once` from cron beside the service) would both
    post a pending row; the store's lease lets one deliver and the other stand by."""
    first, second = make_relay(store, slack, clock), make_relay(store, slack, clock)
    for relay, name in ((first, "host-a:11:aaaa"), (second, "host-b:22:bbbb")):
        relay.owner, relay.stale = name, (lambda owner: False)  # two live processes on two hosts
    await first.deliver_due()  # the first holds the lease (nothing to deliver yet)
    seed_and_enqueue(store, clock.now)

    standby = await second.deliver_due()
    assert standby.held_by == "host-a:11:aaaa" and standby.sent == 0
    assert slack.messages("alerts") == []
    assert (await first.deliver_due()).sent == 1

    first.release()  # a clean stop: the other takes over at once
    seed_and_enqueue(store, clock.now, dev_id=2, channel="oncall")
    took_over = await second.deliver_due()
    assert took_over.sent == 1 and not took_over.held_by
    assert len(slack.messages("alerts")) == 1 and len(slack.messages("oncall")) == 1


async def test_a_lease_left_by_a_process_that_is_gone_is_taken_over_at_once(store: Store, slack: FakeSlack, clock: Clock) -> None:
    """A crash leaves the lease behind; a restart on the same host does not wait for it."""
    import socket

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    crashed = make_relay(store, slack, clock)
    crashed.owner = f"{socket.gethostname()}:{gone.stdout.strip()}:dead"
    await crashed.deliver_due()
    seed_and_enqueue(store, clock.now)
    assert (await make_relay(store, slack, clock).deliver_due()).sent == 1


async def deliver_parent(store: Store, slack: FakeSlack, clock: Clock) -> tuple[Relay, dict[str, Any]]:
    seed_and_enqueue(store, clock.now)
    relay = make_relay(store, slack, clock)
    await relay.deliver_due()
    [parent] = slack.messages("alerts")
    return relay, parent


def add_sources(store: Store, now: datetime, outlets: list[str], *, origin_of: dict[str, str] | None = None,
                impact: int = 6, independent: int = 3) -> list[int]:
    with store.transaction() as conn:
        articles = make_articles(1, outlets, now, origin_of=origin_of)
        for a in articles:  # distinct URLs/hashes from the first batch
            a.url = a.canonical_url = a.url + "-later"
            a.content_hash += "-later"
        insert_articles(conn, articles)
        dev = Development(topic="ai-export", headline=HEADLINE, first_seen=now, last_seen=now,
                          state=DevelopmentState.CORROBORATED, independent=independent,
                          impact=Impact(impact, ("regulatory action",)), sentiment=Sentiment.NEGATIVE, id=1)
        upsert_development(conn, dev)
    return [a.id for a in articles if a.id is not None]


def enqueue_update(store: Store, now: datetime, ids: list[int], *, material: bool = False, key: str = "upd:3") -> int:
    update = Alert(AlertKind.UPDATE, "alerts", f"dev:1:alerts:{key}", development_id=1,
                   payload=update_payload(ids, material=material, previous_impact=6), created=now)
    with store.transaction() as conn:
        alert_id = outbox.enqueue(conn, update)
    assert alert_id is not None
    return alert_id


async def test_new_source_updates_the_parent_and_adds_one_thread_reply(store: Store, slack: FakeSlack, clock: Clock) -> None:
    relay, parent = await deliver_parent(store, slack, clock)
    # A new independent source (AP) and a reprint of Reuters: one reply, for AP only.
    ids = add_sources(store, clock.advance(minutes=5), ["AP", "Daily Reprint"], origin_of={"Daily Reprint": "outlet:reuters"})
    update_id = enqueue_update(store, clock.now, ids)

    report = await relay.deliver_due()

    assert report.sent == 1
    [shown] = slack.messages("alerts")  # still one message in the channel
    assert shown["ts"] == parent["ts"]
    assert "verified by 3 sources" in shown["text"]
    assert "updated <!date^" in str(shown["blocks"])
    assert "(+1 reprint)" in str(shown["blocks"])
    [reply] = slack.replies("alerts", parent["ts"])
    assert "New independent source" in reply["text"] and "AP" in reply["text"]
    assert reply["reply_broadcast"] is False
    assert row(store, update_id).thread_ts == parent["ts"]


async def test_a_new_source_reply_names_the_outlet_not_its_owner_group(store: Store, slack: FakeSlack, clock: Clock) -> None:
    """feeds.yaml's `owner: us-commerce` is how the agency's outlets count once; the reply names
    the outlet people know ("New independent source: us-commerce" was what Slack showed)."""
    relay, parent = await deliver_parent(store, slack, clock)
    with store.transaction() as conn:
        [bis] = make_articles(1, ["Bureau of Industry and Security"], clock.advance(minutes=5),
                              origin_of={"Bureau of Industry and Security": "owner:us-commerce"})
        bis.owner, bis.tier = "us-commerce", "primary"
        insert_articles(conn, [bis])
    assert bis.id is not None
    enqueue_update(store, clock.now, [bis.id])

    await relay.deliver_due()

    [reply] = slack.replies("alerts", parent["ts"])
    assert reply["text"] == "New independent source: Bureau of Industry and Security"
    assert "us-commerce" not in str(reply["blocks"])
    [shown] = slack.messages("alerts")
    assert shown["blocks"][0]["text"]["text"] == f"Bureau of Industry and Security: {HEADLINE}"  # the primary leads
    assert "us-commerce" not in str(shown["blocks"]).split("same owner")[0]


async def test_material_update_broadcasts_its_reply(store: Store, slack: FakeSlack, clock: Clock) -> None:
    relay, parent = await deliver_parent(store, slack, clock)
    relay.settings = ONCALL
    ids = add_sources(store, clock.advance(minutes=5), ["AP"], impact=9)
    enqueue_update(store, clock.now, ids, material=True)

    await relay.deliver_due()

    [reply] = slack.replies("alerts", parent["ts"])
    assert reply["reply_broadcast"] is True
    assert len(slack.messages("alerts")) == 2  # the broadcast reply shows in the channel too


async def test_without_an_oncall_channel_a_material_reply_stays_in_the_thread(store: Store, slack: FakeSlack, clock: Clock) -> None:
    """Impact crossing the threshold of a route that has no on-call channel is news for the
    thread; broadcasting it would interrupt the whole channel for no one in particular."""
    relay, parent = await deliver_parent(store, slack, clock)
    ids = add_sources(store, clock.advance(minutes=5), ["AP"], impact=9)
    enqueue_update(store, clock.now, ids, material=True)

    await relay.deliver_due()

    [reply] = slack.replies("alerts", parent["ts"])
    assert reply["reply_broadcast"] is False
    assert len(slack.messages("alerts")) == 1


async def test_material_change_without_new_source_says_what_changed(store: Store, slack: FakeSlack, clock: Clock) -> None:
    relay, parent = await deliver_parent(store, slack, clock)
    relay.settings = ONCALL
    add_sources(store, clock.advance(minutes=5), [], impact=9, independent=2)
    enqueue_update(store, clock.now, [], material=True, key="upd:2:material")

    await relay.deliver_due()

    [reply] = slack.replies("alerts", parent["ts"])
    assert reply["reply_broadcast"] is True
    assert "*Impact now 9/10* (was 6/10)" in str(reply["blocks"])


async def test_update_waits_while_the_parent_is_undelivered(store: Store, slack: FakeSlack, clock: Clock) -> None:
    seed_and_enqueue(store, clock.now)
    ids = add_sources(store, clock.now, ["AP"])
    slack.fail_next(3, status=503, methods=("chat.postMessage",))  # one attempt: 1 post + 2 quick retries
    relay = make_relay(store, slack, clock)
    update_id = enqueue_update(store, clock.now, ids)

    first = await relay.deliver_due()

    assert first.retried == 1 and first.waiting == 1
    assert row(store, update_id).state is AlertState.PENDING
    await relay.deliver_due(clock.advance(minutes=5))
    [parent] = slack.messages("alerts")
    assert len(slack.replies("alerts", parent["ts"])) == 1
    assert row(store, update_id).state is AlertState.SENT


async def test_merge_points_the_absorbed_message_to_the_surviving_thread(store: Store, slack: FakeSlack, clock: Clock) -> None:
    relay = make_relay(store, slack, clock)
    with store.transaction() as conn:
        seed_development(conn, clock.now, dev_id=1)
        seed_development(conn, clock.now, dev_id=2, outlets=("Bloomberg", "FT"), headline="Chip curbs widened")
        outbox.enqueue(conn, new_alert(1, "alerts", clock.now))
        outbox.enqueue(conn, new_alert(2, "alerts", clock.now))
    await relay.deliver_due()
    survivor, absorbed = slack.messages("alerts")
    merge = Alert(AlertKind.MERGE, "alerts", "merge:2:1:alerts", development_id=1, payload=MergePayload(reason="development 2 merged into 1", from_id=2, into_id=1), created=clock.now)
    with store.transaction() as conn:
        outbox.enqueue(conn, merge)

    report = await relay.deliver_due(clock.advance(minutes=1))

    assert report.sent == 1
    after = {m["ts"]: m for m in slack.messages("alerts")}
    assert len(after) == 2
    pointer = str(after[absorbed["ts"]]["blocks"])
    assert "Merged" in pointer and f"p{survivor['ts'].replace('.', '')}|{HEADLINE}>" in pointer
    assert after[survivor["ts"]]["text"] == survivor["text"]


async def test_digest_posts_main_message_and_overflow_in_its_thread(store: Store, slack: FakeSlack, clock: Clock) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Digest*", "verbatim": True}}]
    thread = tuple(SlackMessage(f"part {i}", ({"type": "section", "text": {"type": "mrkdwn", "text": f"part {i}"}},)) for i in range(2))
    digest_payload = DigestPayload(reason="digest daily", digest_id="daily", period_start=None, period_end=None,
                                   text="Digest", blocks=tuple(blocks), thread=thread)
    digest = Alert(AlertKind.DIGEST, "oncall", "digest:daily:2026-11-22", payload=digest_payload, created=clock.now)
    health_payload = HealthPayload(reason="HTTP 503", source_id="feed-x", change="failing", text="Source feed-x is failing: HTTP 503 <!channel>")
    health = Alert(AlertKind.HEALTH, "ops", "health:feed-x:1", payload=health_payload, created=clock.now)
    with store.transaction() as conn:
        outbox.enqueue(conn, digest)
        outbox.enqueue(conn, health)

    report = await make_relay(store, slack, clock).deliver_due()

    assert report.sent == 2
    [main] = slack.messages("oncall")
    assert [m["text"] for m in slack.replies("oncall", main["ts"])] == ["part 0", "part 1"]
    [ops] = slack.messages("ops")
    assert "&lt;!channel&gt;" in str(ops["blocks"]) and "<!channel>" not in str(ops)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["invalid_auth", "token_revoked", "channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "invalid_blocks"]
)
async def test_permanent_error_is_recorded_logged_once_and_not_retried(
    store: Store, slack: FakeSlack, clock: Clock, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert code in PERMANENT_ERRORS
    alert_id = seed_and_enqueue(store, clock.now)
    slack.fail_next(1, error=code, methods=("chat.postMessage",))
    relay = make_relay(store, slack, clock)

    with caplog.at_level(logging.ERROR, logger="alerts.deliver"):
        first = await relay.deliver_due()
        later = await relay.deliver_due(clock.advance(days=1))

    assert (first.failed, later.failed, later.sent) == (1, 0, 0)
    failed = row(store, alert_id)
    assert (failed.state, failed.last_error) == (AlertState.FAILED, code)
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert slack.messages("alerts") == []
    assert len([r for r in caplog.records if code in r.getMessage()]) == 1
    with store.transaction() as conn:
        assert outbox.counts_by_state(conn)["failed"] == 1
        assert [a.id for a in outbox.failed_alerts(conn)] == [alert_id]


async def test_unknown_channel_fails_for_real(store: Store, slack: FakeSlack, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now, channel="no-such-channel")
    await make_relay(store, slack, clock).deliver_due()
    assert row(store, alert_id).last_error == "channel_not_found"


async def test_rate_limit_storm_is_delivered_once_honouring_retry_after(store: Store, slack: FakeSlack, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now)
    slack.fail_next(3, status=429, retry_after=1, methods=("chat.postMessage",))

    report = await make_relay(store, slack, clock).deliver_due()

    assert report.sent == 1
    assert len(slack.messages("alerts")) == 1
    calls = slack.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 429, 200]
    gaps = [later.time - earlier.time for earlier, later in zip(calls, calls[1:], strict=False)]
    assert all(gap >= 1.0 for gap in gaps), gaps  # Retry-After: 1 was waited out each time
    assert row(store, alert_id).state is AlertState.SENT


async def test_rate_limit_beyond_client_retries_waits_for_retry_after(store: Store, slack: FakeSlack, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now)
    slack.fail_next(1, status=429, retry_after=120, methods=("chat.postMessage",))
    relay = make_relay(store, slack, clock, rate_limit_retries=0)
    start = clock.now

    assert (await relay.deliver_due()).retried == 1
    pending = row(store, alert_id)
    assert pending.state is AlertState.PENDING and pending.last_error == "ratelimited"
    assert pending.not_before is not None and pending.not_before >= start + timedelta(seconds=120)
    assert (await relay.deliver_due(clock.advance(seconds=60))).sent == 0
    assert (await relay.deliver_due(clock.advance(seconds=61))).sent == 1
    assert len(slack.messages("alerts")) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_then_success(store: Store, slack: FakeSlack, clock: Clock, status: int) -> None:
    alert_id = seed_and_enqueue(store, clock.now)
    slack.fail_next(2, status=status, methods=("chat.postMessage",))

    await make_relay(store, slack, clock).deliver_due()

    assert [c.status for c in slack.calls_to("chat.postMessage")] == [status, status, 200]
    assert len(slack.calls_to("conversations.history")) == 2  # the relay looked before each retry
    assert len(slack.messages("alerts")) == 1
    assert row(store, alert_id).state is AlertState.SENT


async def test_persistent_server_errors_back_off_exponentially(store: Store, slack: FakeSlack, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now)
    slack.fail_next(9, status=500, methods=("chat.postMessage",))  # 3 attempts × (1 post + 2 quick retries)
    relay = make_relay(store, slack, clock)
    delays = []
    for _ in range(3):
        await relay.deliver_due()
        pending = row(store, alert_id)
        assert pending.not_before is not None
        delays.append(pending.not_before - clock.now)
        clock.now = pending.not_before
    assert delays == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40)]
    assert (await relay.deliver_due()).sent == 1
    assert len(slack.messages("alerts")) == 1


async def test_ambiguous_timeout_ends_with_exactly_one_message(store: Store, slack: FakeSlack, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now)
    slack.fail_next(1, timeout=3, methods=("chat.postMessage",))  # stored, answer held past the timeout
    relay = make_relay(store, slack, clock, timeout=0.5)

    first = await relay.deliver_due()
    assert first.retried == 1
    assert row(store, alert_id).state is AlertState.PENDING
    assert len(slack.messages("alerts")) == 1  # Slack did get it

    second = await relay.deliver_due(clock.advance(minutes=5))

    assert second.sent == 1
    [message] = slack.messages("alerts")
    assert row(store, alert_id).slack_ts == message["ts"]
    assert len(slack.calls_to("chat.postMessage")) == 1  # found by metadata, not re-posted
    assert slack.calls_to("conversations.history")


async def test_ambiguous_timeout_on_a_thread_reply_posts_it_once(store: Store, slack: FakeSlack, clock: Clock) -> None:
    relay, parent = await deliver_parent(store, slack, clock)
    ids = add_sources(store, clock.advance(minutes=5), ["AP"])
    update_id = enqueue_update(store, clock.now, ids)
    slack.fail_next(1, timeout=3, methods=("chat.postMessage",))
    relay = make_relay(store, slack, clock, timeout=0.5)

    await relay.deliver_due()
    await relay.deliver_due(clock.advance(minutes=5))

    assert len(slack.replies("alerts", parent["ts"])) == 1
    assert row(store, update_id).state is AlertState.SENT


# --- a killed process ----------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from datetime import UTC, datetime, timedelta
    from monitor.store import Store
    from tests.alerts import test_deliver as t

    url, mode, base_url, token = sys.argv[1:5]
    store = Store.open(url)
    t.seed_and_enqueue(store, datetime.now(UTC))
    print("committed", flush=True)
    if mode == "before_post":
        time.sleep(120)
    else:
        fake = type("Fake", (), {"token": token, "base_url": base_url})()
        asyncio.run(t.make_relay(store, fake, t.Clock(), timeout=60).deliver_due())
    print("not killed", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["before_post", "during_post"])
async def test_sigkill_between_state_change_and_delivery_loses_nothing_and_doubles_nothing(
    store: Store, store_url: str, slack: FakeSlack, clock: Clock, mode: str, tmp_path: Path
) -> None:
    kill_child(store_url, slack, mode, tmp_path)

    relay = make_relay(store, slack, clock)  # "after the restart"
    first = await relay.deliver_due(clock.advance(minutes=1))
    second = await relay.deliver_due(clock.advance(hours=1))

    assert (first.sent, second.sent) == (1, 0)
    [message] = slack.messages("alerts")
    with store.transaction() as conn:
        [delivered] = all_alerts(conn)
    assert delivered.state is AlertState.SENT and delivered.slack_ts == message["ts"]
    assert len(slack.calls_to("chat.postMessage")) == 1
    # Killed before posting: the row's record shows nothing was in flight, so no look-up.
    assert bool(slack.calls_to("conversations.history")) == (mode == "during_post")


def kill_child(store_url: str, slack: FakeSlack, mode: str, tmp_path: Path) -> None:
    """A monitor process that commits an alert row, then is SIGKILLed before posting it or
    while Slack holds the answer to its post."""
    if mode == "during_post":  # Slack stores the message, the answer never arrives
        slack.fail_next(1, timeout=60, methods=("chat.postMessage",))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(script), store_url, mode, slack.base_url, slack.token],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "committed"
        if mode == "during_post":
            deadline = time.monotonic() + 30
            while not slack.messages("alerts") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slack.messages("alerts"), "child never reached Slack"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL


# --- console sink ----------------------------------------------------------------------------


async def test_without_token_the_console_shows_the_message_and_marks_it_sent(store: Store, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now)
    out = io.StringIO()
    relay = Relay(store, ConsoleSink(out), clock=clock, settings=SETTINGS)

    assert (await relay.deliver_due()).sent == 1

    printed = out.getvalue()
    assert f"{HEADLINE}\n" + "=" * len(HEADLINE) in printed
    assert "Reuters (https://reuters.example/1/0)" in printed
    assert "AI export controls" in printed
    assert row(store, alert_id).state is AlertState.SENT


def test_relay_from_settings_picks_the_console_without_token(store: Store) -> None:
    relay = Relay.from_settings(store, Settings())
    assert isinstance(relay.sink, ConsoleSink)


# --- incoming-webhook mode ---------------------------------------------------------------------


async def test_webhook_mode_posts_parents_and_only_material_updates(store: Store, slack: FakeSlack, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now, channel="webhook")
    relay = Relay(store, WebhookSink(slack.webhook_url), clock=clock, settings=SETTINGS)
    assert (await relay.deliver_due()).sent == 1
    [parent] = slack.messages("webhook")
    assert parent["blocks"][0]["text"]["text"] == f"Reuters: {HEADLINE}"
    [call] = slack.calls_to("webhook")
    assert call.params["unfurl_links"] is False and "link_names" not in call.params

    def update(key: str, material: bool) -> Alert:
        return Alert(AlertKind.UPDATE, "webhook", f"dev:1:webhook:{key}", development_id=1,
                     payload=update_payload([], material=material), created=clock.now)

    with store.transaction() as conn:
        quiet_id = outbox.enqueue(conn, update("upd:3", False))
        loud_id = outbox.enqueue(conn, update("upd:3:material", True))
    report = await relay.deliver_due(clock.advance(minutes=1))

    assert report.sent == 2
    assert len(slack.messages("webhook")) == 2  # the material change, as a new message
    assert quiet_id is not None and loud_id is not None
    assert "webhook mode" in str(row(store, quiet_id).delivery.note)
    assert row(store, alert_id).state is AlertState.SENT


async def test_webhook_permanent_error_is_not_retried(store: Store, slack: FakeSlack, clock: Clock) -> None:
    alert_id = seed_and_enqueue(store, clock.now, channel="webhook")
    slack.fail_next(1, error="invalid_token", methods=("webhook",))
    relay = Relay(store, WebhookSink(slack.webhook_url), clock=clock, settings=SETTINGS)
    assert (await relay.deliver_due()).failed == 1
    assert (row(store, alert_id).state, row(store, alert_id).last_error) == (AlertState.FAILED, "invalid_token")


async def test_one_parent_per_routed_channel_and_mention_only_where_configured(store: Store, slack: FakeSlack, clock: Clock) -> None:
    with store.transaction() as conn:
        seed_development(conn, clock.now)
        outbox.enqueue(conn, new_alert(1, "alerts", clock.now))
        outbox.enqueue(conn, new_alert(1, "oncall", clock.now, oncall=True, mention="<!subteam^S0ONCALL>"))
        assert outbox.enqueue(conn, new_alert(1, "alerts", clock.now)) is None  # same dedup key: no second row

    assert (await make_relay(store, slack, clock).deliver_due()).sent == 2

    [topic] = slack.messages("alerts")
    [oncall] = slack.messages("oncall")
    assert "<!subteam^" not in str(topic)
    assert oncall["text"].startswith("<!subteam^S0ONCALL> ")


# --- rows queued by the version before typed payloads ---------------------------------------------


def enqueue_old(store: Store, kind: str, channel: str, key: str, payload: dict[str, Any], now: datetime, *,
                dev_id: int | None = 1, attempts: int = 0, last_error: str = "") -> int:
    """A row as the untyped version wrote it: its payload dict went into the JSON column as is."""
    with store.transaction() as conn:
        return int(conn.execute(insert(alert_table).values(
            kind=kind, channel=channel, dedup_key=key, development_id=dev_id, payload=payload, state="pending",
            attempts=attempts, last_error=last_error, not_before=None, slack_channel_id="", slack_ts="", thread_ts="",
            created=now, sent=None, updated=now,
        ).returning(alert_table.c.id)).scalar_one())


async def test_rows_queued_by_the_untyped_version_are_delivered_as_typed_rows_are(
    store: Store, slack: FakeSlack, clock: Clock
) -> None:
    """An upgrade with alerts still in the outbox: the old rows are posted, and a parent reads
    exactly as one queued now (same text and blocks)."""
    with store.transaction() as conn:
        seed_development(conn, clock.now)
        outbox.enqueue(conn, new_alert(1, "alerts", clock.now, oncall=True, mention="<!subteam^S0ONCALL>"))
    enqueue_old(store, "new", "oncall", "dev:1:oncall", {
        "reason": "corroborated (2 independent: Reuters, Politico); impact 6 ≥ on-call threshold 5", "independent": 2,
        "impact": 6, "oncall": True, "article_ids": [1, 2], "mention": "<!subteam^S0ONCALL>", "urgent": True,
    }, clock.now)
    relay = make_relay(store, slack, clock, settings=ONCALL)

    assert (await relay.deliver_due()).sent == 2

    [typed], [old] = slack.messages("alerts"), slack.messages("oncall")
    assert (old["text"], old["blocks"]) == (typed["text"], typed["blocks"])
    assert old["text"].startswith("<!subteam^S0ONCALL> ")

    ids = add_sources(store, clock.advance(minutes=5), ["AP"], impact=9)
    enqueue_old(store, "update", "oncall", "dev:1:oncall:upd:3", {
        "reason": "independent sources 2 → 3: 3 independent", "new_article_ids": ids, "independent": 3,
        "previous_independent": 2, "impact": 9, "previous_impact": 6, "material": True, "oncall": True, "urgent": True,
    }, clock.now)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Digest*", "verbatim": True}}]
    enqueue_old(store, "digest", "ops", "digest:daily:2026-11-22", {
        "reason": "digest daily", "digest_id": "daily", "period_start": "2026-11-21T08:00:00+00:00",
        "period_end": "2026-11-22T08:00:00+00:00", "text": "Digest", "blocks": blocks,
        "thread": [{"text": "part 0", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "part 0"}}]}],
    }, clock.now, dev_id=None)

    assert (await relay.deliver_due()).sent == 2

    [reply] = slack.replies("oncall", old["ts"])
    assert "AP" in reply["text"] and reply["reply_broadcast"] is True  # `material` read from the old row
    [shown] = [m for m in slack.messages("oncall") if m["ts"] == old["ts"]]
    assert shown["text"].startswith("<!subteam^S0ONCALL> ")  # the edit keeps the old parent's mention
    [digest] = slack.messages("ops")
    assert digest["blocks"] == blocks
    assert [m["text"] for m in slack.replies("ops", digest["ts"])] == ["part 0"]


async def test_an_old_row_interrupted_while_posting_is_found_in_slack_not_posted_twice(
    store: Store, slack: FakeSlack, clock: Clock
) -> None:
    """The untyped version timed out posting this parent (its in-flight mark is in the payload)
    and Slack had taken the message: after the upgrade the relay finds and adopts it."""
    with store.transaction() as conn:
        seed_development(conn, clock.now)
    alert_id = enqueue_old(store, "new", "alerts", "dev:1:alerts", {
        "reason": "corroborated: 2 independent: Reuters, Politico", "independent": 2, "impact": 6, "oncall": False,
        "article_ids": [1, 2], "urgent": False, "attempts_recorded": True, "delivered_parts": {},
        "in_flight": {"part": "parent", "error": "timeout", "answered": False},
    }, clock.now, attempts=1, last_error="timeout (may have reached Slack; will look before re-posting)")
    client = make_client(Slack(token=slack.token, base_url=slack.base_url))
    await client.chat_postMessage(channel="alerts", text="US tightens AI chip export rules",
                                  metadata=alert_metadata(alert_id, 1, "parent"))

    report = await make_relay(store, slack, clock).deliver_due(clock.advance(minutes=1))

    assert report.sent == 1
    [message] = slack.messages("alerts")
    assert len(slack.calls_to("chat.postMessage")) == 1  # the one the old version sent
    sent = row(store, alert_id)
    assert sent.state is AlertState.SENT and sent.slack_ts == message["ts"]
    assert sent.delivery.parts["parent"].ts == message["ts"] and sent.delivery.in_flight is None


# --- a 5xx answered after Slack posted ---------------------------------------------------------


async def test_a_server_error_after_the_post_leaves_one_message(store: Store, slack: FakeSlack, clock: Clock) -> None:
    """Slack posts, then answers 500. slack-sdk's own retry would post again blindly; the relay
    looks first, finds its message by metadata and adopts it."""
    alert_id = seed_and_enqueue(store, clock.now)
    slack.fail_next(1, status=500, after=True, methods=("chat.postMessage",))

    report = await make_relay(store, slack, clock).deliver_due()

    assert report.sent == 1
    [message] = slack.messages("alerts")
    assert len(slack.calls_to("chat.postMessage")) == 1  # no second post
    assert slack.calls_to("conversations.history")
    sent = row(store, alert_id)
    assert sent.state is AlertState.SENT and sent.slack_ts == message["ts"]


async def test_the_sdk_still_retries_calls_that_are_safe_to_repeat(store: Store, slack: FakeSlack, clock: Clock) -> None:
    relay, parent = await deliver_parent(store, slack, clock)
    ids = add_sources(store, clock.advance(minutes=5), ["AP"])
    enqueue_update(store, clock.now, ids)
    slack.fail_next(1, status=503, methods=("chat.update",))

    assert (await relay.deliver_due()).sent == 1
    assert [c.status for c in slack.calls_to("chat.update")] == [503, 200]


# --- an app without channels:history ----------------------------------------------------------

NO_HISTORY = ("chat:write", "channels:read")


@pytest.fixture
def narrow() -> Iterator[FakeSlack]:
    """A workspace where the app was installed with chat:write and channels:read only."""
    with FakeSlack(scopes=NO_HISTORY) as server:
        yield server


def status_of(store: Store) -> tuple[dict[str, Any], str]:
    from types import SimpleNamespace

    from monitor.ops.status import collect_status, render_status

    holder = SimpleNamespace(settings=SETTINGS, path="feeds.yaml")
    status = collect_status(holder, store, datetime.now(UTC))  # type: ignore[arg-type]
    return status, render_status(status)


async def test_no_history_rate_limit_storm_posts_once_without_looking(store: Store, narrow: FakeSlack, clock: Clock) -> None:
    """A 429 cannot have posted anything: the retry posts without a look-up it may not make."""
    alert_id = seed_and_enqueue(store, clock.now)
    narrow.fail_next(4, status=429, retry_after=1, methods=("chat.postMessage",))
    relay = make_relay(store, narrow, clock, rate_limit_retries=1)  # the storm outlasts the SDK's retries

    for _ in range(3):
        await relay.deliver_due(clock.advance(minutes=5))

    [message] = narrow.messages("alerts")
    sent = row(store, alert_id)
    assert (sent.state, sent.slack_ts) == (AlertState.SENT, message["ts"])
    assert not narrow.calls_to("conversations.history")
    status, shown = status_of(store)
    assert status["slack"]["warnings"] == [] and "WARNING" not in shown


async def test_no_history_ambiguous_timeout_ends_with_one_message_and_a_warning(
    store: Store, narrow: FakeSlack, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack took the post but the answer never came, and the app may not read the channel:
    nothing can tell. The relay does not post a second copy; the row is sent, unconfirmed,
    and `monitor status` says so and what to do."""
    alert_id = seed_and_enqueue(store, clock.now)
    narrow.fail_next(1, timeout=3, methods=("chat.postMessage",))
    relay = make_relay(store, narrow, clock, timeout=0.5)

    with caplog.at_level(logging.WARNING, logger="alerts.deliver"):
        first = await relay.deliver_due()
        second = await relay.deliver_due(clock.advance(minutes=5))
        await relay.deliver_due(clock.advance(hours=1))

    assert (first.retried, second.sent, second.failed) == (1, 1, 0)
    assert len(narrow.messages("alerts")) == 1
    assert len(narrow.calls_to("chat.postMessage")) == 1
    sent = row(store, alert_id)
    assert sent.state is AlertState.SENT and sent.slack_ts == ""
    [warning] = sent.delivery.warnings
    assert "not confirmed" in warning and "channels:history" in warning
    status, shown = status_of(store)
    assert status["slack"]["lookup"]["needed"] == "channels:history"
    assert "Slack    WARNING" in shown and "cannot look for a message" in shown
    assert f"#{alert_id} new → alerts: parent: not confirmed" in shown
    said = [r.getMessage() for r in caplog.records if "cannot look in Slack" in r.getMessage()]
    assert len(said) == 1  # said once, not per alert


async def test_no_history_sigkill_while_slack_holds_the_answer_leaves_one_message(
    store: Store, store_url: str, narrow: FakeSlack, clock: Clock, tmp_path: Path
) -> None:
    kill_child(store_url, narrow, "during_post", tmp_path)

    relay = make_relay(store, narrow, clock)
    first = await relay.deliver_due(clock.advance(minutes=1))
    await relay.deliver_due(clock.advance(hours=1))

    assert (first.sent, first.failed) == (1, 0)
    assert len(narrow.messages("alerts")) == 1
    with store.transaction() as conn:
        [delivered] = all_alerts(conn)
    assert delivered.state is AlertState.SENT
    _, shown = status_of(store)
    assert f"#{delivered.id} new → alerts: parent: not confirmed" in shown


async def test_no_history_sigkill_before_posting_posts_and_needs_no_look(
    store: Store, store_url: str, narrow: FakeSlack, clock: Clock, tmp_path: Path
) -> None:
    kill_child(store_url, narrow, "before_post", tmp_path)

    assert (await make_relay(store, narrow, clock).deliver_due(clock.advance(minutes=1))).sent == 1

    [message] = narrow.messages("alerts")
    with store.transaction() as conn:
        [delivered] = all_alerts(conn)
    assert (delivered.state, delivered.slack_ts) == (AlertState.SENT, message["ts"])
    assert not delivered.delivery.warnings


async def test_no_history_updates_of_an_unconfirmed_parent_go_out_as_new_messages(
    store: Store, narrow: FakeSlack, clock: Clock
) -> None:
    """A parent whose ts is unknown has no thread: a material change is posted anew (as in
    webhook mode) instead of failing, and a non-material one is recorded as not announced."""
    seed_and_enqueue(store, clock.now)
    narrow.fail_next(1, timeout=3, methods=("chat.postMessage",))
    relay = make_relay(store, narrow, clock, timeout=0.5, settings=ONCALL)
    await relay.deliver_due()
    await relay.deliver_due(clock.advance(minutes=5))
    ids = add_sources(store, clock.advance(minutes=5), ["AP"], impact=9)
    update_id = enqueue_update(store, clock.now, ids, material=True)

    report = await relay.deliver_due()

    assert (report.sent, report.failed) == (1, 0)
    assert row(store, update_id).state is AlertState.SENT
    assert len(narrow.messages("alerts")) == 2


async def test_a_server_error_without_history_posts_again_and_says_it_may_show_twice(
    store: Store, narrow: FakeSlack, clock: Clock
) -> None:
    """Slack answered 500: it most likely did not post, so the alert is not held back; that a
    copy may show twice is written where operators look."""
    alert_id = seed_and_enqueue(store, clock.now)
    narrow.fail_next(1, status=500, methods=("chat.postMessage",))

    assert (await make_relay(store, narrow, clock).deliver_due()).sent == 1

    [message] = narrow.messages("alerts")
    sent = row(store, alert_id)
    assert sent.slack_ts == message["ts"]
    assert "may show twice" in sent.delivery.warnings[0]


async def test_scopes_are_checked_at_start_with_a_clear_message(
    store: Store, narrow: FakeSlack, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    relay = make_relay(store, narrow, clock)
    with caplog.at_level(logging.WARNING, logger="alerts.deliver"):
        check = await relay.check_slack()
    assert check is not None and check.missing == ("channels:history",)
    [said] = [r.getMessage() for r in caplog.records]
    assert "lacks channels:history" in said and "README" in said
    _, shown = status_of(store)
    assert "the Slack app lacks channels:history" in shown and "fix: grant" in shown


async def test_a_full_set_of_scopes_passes_the_start_check(store: Store, slack: FakeSlack, clock: Clock) -> None:
    check = await make_relay(store, slack, clock).check_slack()
    assert check is not None and check.missing == () and not check.problems()
    _, shown = status_of(store)
    assert "Slack    " not in shown


async def test_a_refused_token_is_named_at_start(store: Store, slack: FakeSlack, clock: Clock) -> None:
    slack.token = "xoxb-other"  # the monitor's token is no longer accepted
    relay = make_relay(store, FakeToken(slack, "xoxb-fake-token"), clock)
    check = await relay.check_slack()
    assert check is not None and check.error == "invalid_auth"
    _, shown = status_of(store)
    assert "Slack refused the bot token at start (invalid_auth)" in shown


class FakeToken:
    """The fake's address with a token of our choosing."""

    def __init__(self, slack: FakeSlack, token: str) -> None:
        self.base_url, self.token = slack.base_url, token

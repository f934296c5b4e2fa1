"""Digests: what they choose from the store, how they render within Slack's limits, and
that a scheduled period is queued once even across a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from alerts import digest as digests
from alerts import digest_render
from monitor.config.settings import Digest as DigestSettings
from monitor.models import (
    Alert,
    AlertKind,
    Development,
    DevelopmentState,
    ErrorKind,
    Impact,
    NewPayload,
    SourceHealth,
)
from monitor.store import outbox
from monitor.store.developments import upsert_development
from monitor.store.schema import alert as alert_table
from monitor.store.sources import save_health, set_health_alerted

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "slack" / "block-kit.schema.json"
UNTIL = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(hours=24)
DAILY = DigestSettings(id="morning", cron="0 8 * * *", timezone="UTC", channel="#oncall")


@pytest.fixture(scope="module")
def block_kit() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def assert_valid_message(validator: jsonschema.protocols.Validator, blocks: list) -> None:
    assert 1 <= len(blocks) <= 50
    errors = [e.message for e in validator.iter_errors(blocks)]
    assert errors == []


def dev(dev_id: int, *, impact: int | None, independent: int = 2, headline: str | None = None, topic: str = "export-controls", hours_ago: float = 2) -> Development:
    seen = UNTIL - timedelta(hours=hours_ago)
    return Development(
        topic=topic,
        headline=headline or f"Development {dev_id}",
        first_seen=seen,
        last_seen=seen,
        state=DevelopmentState.CORROBORATED if independent >= 2 else DevelopmentState.SINGLE_SOURCE,
        independent=independent,
        impact=Impact(impact, ("regulatory action", "named agency")) if impact is not None else None,
        id=dev_id,
    )


def entries(*developments: Development) -> tuple[digests.DigestEntry, ...]:
    return tuple(digests.entry_from_development(d) for d in developments)


def posted_parent(conn, dev_id: int, channel_id: str, ts: str) -> None:
    payload = NewPayload(reason="corroborated", independent=2, impact=5, oncall=False, article_ids=())
    alert = Alert(kind=AlertKind.NEW, channel="#export-controls", dedup_key=f"dev:{dev_id}:#export-controls", development_id=dev_id,
                  payload=payload, created=SINCE)
    alert_id = outbox.enqueue(conn, alert)
    assert alert_id is not None
    outbox.mark_sent(conn, alert_id, channel_id, ts, "", SINCE + timedelta(minutes=1))


def test_digest_from_store_orders_by_impact_links_threads_and_lists_the_rest(store) -> None:
    with store.transaction() as conn:
        upsert_development(conn, dev(1, impact=4))
        upsert_development(conn, dev(2, impact=9, headline="BIS adds 12 entities"))
        upsert_development(conn, dev(3, impact=None))
        upsert_development(conn, dev(4, impact=6, independent=1, headline="Rumour: new chip cap"))
        upsert_development(conn, dev(5, impact=7, hours_ago=30))  # before the period
        posted_parent(conn, 2, "C0123ABC", "1781060000.000200")
        save_health(conn, SourceHealth("bis-press", consecutive_failures=5, last_error_kind=ErrorKind.TIMEOUT, last_error="timed out"))
        save_health(conn, SourceHealth("reuters", consecutive_failures=0, last_ok=UNTIL))
        set_health_alerted(conn, "bis-press", True)
    with store.connect() as conn:
        digest = digests.build_digest(conn, since=SINCE, until=UNTIL, settings_digest=DAILY, now=UNTIL)

    assert [e.development_id for e in digest.corroborated] == [2, 1, 3]
    assert digest.corroborated[0].thread_url == "https://slack.com/archives/C0123ABC/p1781060000000200"
    assert digest.corroborated[1].thread_url is None
    assert [e.development_id for e in digest.watch] == [4]
    assert [s.source_id for s in digest.failing] == ["bis-press"]

    text = digest_render.render_text(digest)
    assert text.index("BIS adds 12 entities") < text.index("Development 1")
    assert "Rumour: new chip cap — unverified — 1 source" in text
    assert "bis-press: 5 failures" in text


def test_slack_rendering_labels_the_watch_list_and_escapes_feed_text(block_kit) -> None:
    data = digests.DigestData(
        developments=entries(dev(1, impact=8, headline="<!channel> Chips & <@U123>"), dev(2, impact=3, independent=1, headline="Unconfirmed <b>cap</b>")),
        states={1: "corroborated", 2: "single_source"},
        failing=(digests.FailingSource("bis-press", 4, None, "HTTP 503 <!here>"),),
    )
    digest = digests.build_digest(data, since=SINCE, until=UNTIL, settings_digest=DAILY, now=UNTIL)
    messages = digest_render.render_blocks(digest)

    assert messages.thread == []
    assert_valid_message(block_kit, messages.main.blocks)
    dumped = json.dumps(messages.main.blocks, ensure_ascii=False)
    assert "<!channel>" not in dumped and "<@U123>" not in dumped and "<!here>" not in dumped
    assert "&lt;!channel&gt; Chips &amp; &lt;@U123&gt;" in dumped
    assert "unverified — 1 source" in dumped
    assert "Failing sources (1)" in dumped


def test_section_choice_follows_the_configured_include_and_topics() -> None:
    data = digests.DigestData(
        developments=entries(dev(1, impact=8), dev(2, impact=5, topic="sanctions"), dev(3, impact=2, independent=1)),
        states={1: "corroborated", 2: "corroborated", 3: "single_source"},
        failing=(digests.FailingSource("x", 3),),
    )
    only = DigestSettings(id="d", cron="0 8 * * *", channel="#c", include=("corroborated",), topics=("export-controls",))
    digest = digests.build_digest(data, since=SINCE, until=UNTIL, settings_digest=only, now=UNTIL)

    assert [e.development_id for e in digest.corroborated] == [1]
    assert digest.watch == () and digest.failing == ()


def test_more_than_fifty_blocks_overflow_into_thread_replies(block_kit) -> None:
    developments = entries(*(dev(i, impact=1 + i % 10, headline=f"Story number {i}") for i in range(1, 121)))
    data = digests.DigestData(developments, {i: "corroborated" for i in range(1, 121)})
    digest = digests.build_digest(data, since=SINCE, until=UNTIL, settings_digest=DAILY, now=UNTIL)
    messages = digest_render.render_blocks(digest)

    assert len(messages.main.blocks) == 50
    assert messages.thread, "what does not fit goes into the thread"
    assert "Continued in the thread" in json.dumps(messages.main.blocks[-1])
    for message in [messages.main, *messages.thread]:
        assert_valid_message(block_kit, message.blocks)
    everything = json.dumps([m.blocks for m in [messages.main, *messages.thread]])
    for i in range(1, 121):
        assert everything.count(f"Story number {i}*") == 1  # every development exactly once
    # Highest impact first: the first story shown has impact 10.
    assert "impact 10/10" in json.dumps(messages.main.blocks[4])


def test_an_empty_period_says_so(block_kit) -> None:
    digest = digests.build_digest(digests.DigestData(), since=SINCE, until=UNTIL, settings_digest=DAILY, now=UNTIL)
    messages = digest_render.render_blocks(digest)

    expected = "No corroborated developments between 2026-06-09 08:00 UTC and 2026-06-10 08:00 UTC."
    assert expected in json.dumps(messages.main.blocks, ensure_ascii=False)
    assert_valid_message(block_kit, messages.main.blocks)
    assert "no corroborated developments" in messages.main.text
    assert expected in digest_render.render_text(digest)
    assert expected in digest_render.render_markdown(digest)
    assert json.loads(digest_render.render_json(digest))["empty"] is True


def test_json_rendering_carries_the_label_and_iso_times() -> None:
    data = digests.DigestData(entries(dev(1, impact=3, independent=1)), {1: "single_source"})
    out = json.loads(digest_render.render_json(digests.build_digest(data, since=SINCE, until=UNTIL, settings_digest=DAILY, now=UNTIL)))

    assert out["watch"][0]["label"] == "unverified — 1 source"
    assert out["until"] == "2026-06-10T08:00:00+00:00"


def test_due_digests_in_the_digest_timezone() -> None:
    berlin = DigestSettings(id="berlin", cron="0 8 * * 1-5", timezone="Europe/Berlin", channel="#c")
    # Wednesday 10 June 2026, 06:30 UTC = 08:30 CEST: the 08:00 CEST run (06:00 UTC) is due.
    now = datetime(2026, 6, 10, 6, 30, tzinfo=UTC)
    [(digest, start, end)] = digests.due_digests([berlin], {}, now)

    assert digest is berlin
    assert end == datetime(2026, 6, 10, 6, 0, tzinfo=UTC)
    assert start == datetime(2026, 6, 9, 6, 0, tzinfo=UTC)
    assert digests.due_digests([berlin], {"berlin": end}, now) == []
    # Before 08:00 local the latest fire is yesterday's, already run.
    assert digests.due_digests([berlin], {"berlin": start}, datetime(2026, 6, 10, 5, 59, tzinfo=UTC)) == []


def test_a_digest_that_never_ran_does_not_post_a_stale_period() -> None:
    at_three = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)  # installed long after the 08:00 run
    assert digests.due_digests([DAILY], {}, at_three) == []
    [(_, _, end)] = digests.due_digests([DAILY], {}, datetime(2026, 6, 11, 8, 0, 30, tzinfo=UTC))
    assert end == datetime(2026, 6, 11, 8, 0, tzinfo=UTC)


def test_due_digest_period_across_the_dst_change_is_23_hours() -> None:
    berlin = DigestSettings(id="daily", cron="0 8 * * *", timezone="Europe/Berlin", channel="#c")
    # Sunday 29 March 2026: clocks go forward; 08:00 local is 06:00 UTC, the day before 07:00 UTC.
    [(_, start, end)] = digests.due_digests([berlin], {}, datetime(2026, 3, 29, 6, 30, tzinfo=UTC))

    assert (start, end) == (datetime(2026, 3, 28, 7, 0, tzinfo=UTC), datetime(2026, 3, 29, 6, 0, tzinfo=UTC))
    assert digests.digest_key("daily", end) == "digest:daily:2026-03-29T06:00:00+00:00"


def test_due_digest_after_downtime_covers_the_gap_and_skips_weekends() -> None:
    weekdays = DigestSettings(id="wd", cron="0 8 * * 1-5", timezone="UTC", channel="#c")
    monday = datetime(2026, 6, 8, 9, 0, tzinfo=UTC)
    last_thursday = datetime(2026, 6, 4, 8, 0, tzinfo=UTC)
    [(_, start, end)] = digests.due_digests([weekdays], {"wd": last_thursday}, monday)

    assert end == datetime(2026, 6, 8, 8, 0, tzinfo=UTC)
    assert start == last_thursday  # Friday's run was missed; its period is folded in


def test_a_restart_never_queues_one_period_twice(store, reopen) -> None:
    now = UNTIL + timedelta(minutes=3)
    with store.transaction() as conn:
        upsert_development(conn, dev(1, impact=5))
        first = digests.run_due_digests(conn, [DAILY], now=now)
    restarted = reopen()
    with restarted.transaction() as conn:
        again = digests.run_due_digests(conn, [DAILY], now=now + timedelta(seconds=40))
        # Even with its memory of runs lost, the dedup key refuses the same period.
        digest = digests.build_digest(conn, since=SINCE, until=UNTIL, settings_digest=DAILY, now=now)
        duplicate = digests.enqueue_digest(conn, digest, key=digests.digest_key("morning", UNTIL), now=now)
    with restarted.connect() as conn:
        rows = list(conn.execute(alert_table.select().where(alert_table.c.kind == "digest")))
        runs = digests.last_digest_runs(conn)

    assert len(first) == 1 and again == [] and duplicate is None
    assert [row.dedup_key for row in rows] == ["digest:morning:2026-06-10T08:00:00+00:00"]
    payload = rows[0].payload
    assert payload["period_start"] == SINCE.isoformat() and payload["period_end"] == UNTIL.isoformat()
    assert payload["blocks"] and payload["thread"] == []
    assert runs == {"morning": UNTIL}


def test_digest_command_prints_corroborated_and_the_watch_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli.main import main
    from monitor.store import Store

    config = tmp_path / "feeds.yaml"
    config.write_text("store:\n  url: sqlite:///monitor.db\ndigests:\n  - id: morning\n    cron: '0 8 * * *'\n    channel: '#oncall'\n")
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    recent = datetime.now(UTC) - timedelta(hours=1)
    with store.transaction() as conn:
        for development in (dev(1, impact=7, headline="BIS adds entities"), dev(2, impact=3, independent=1, headline="Rumoured chip cap")):
            development.first_seen = development.last_seen = recent
            upsert_development(conn, development)
    store.close()

    assert main(["--config", str(config), "digest", "--since", "24h"]) == 0
    text = capsys.readouterr().out
    assert "[1] BIS adds entities" in text and "Verified by 2 sources · impact 7/10" in text
    assert "Rumoured chip cap — unverified — 1 source" in text

    assert main(["--config", str(config), "digest", "--since", "24h", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["development_id"] for e in data["corroborated"]] == [1]
    assert data["watch"][0]["label"] == "unverified — 1 source"


def relay_for(store, slack):
    from slack_sdk.web.async_client import AsyncWebClient

    from alerts.deliver import Relay

    return Relay(store, AsyncWebClient(token=slack.token, base_url=slack.base_url, timeout=5))


async def test_scheduled_digest_with_overflow_posts_once_with_its_thread(tmp_path: Path) -> None:
    from monitor.store import Store
    from tests.fakeslack import FakeSlack

    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    store.upgrade()
    with store.transaction() as conn:
        for i in range(1, 81):
            upsert_development(conn, dev(i, impact=1 + i % 10, headline=f"Story {i} <!here>"))
    now = UNTIL + timedelta(minutes=1)
    with FakeSlack() as slack:
        relay = relay_for(store, slack)
        for attempt in range(2):  # the second round is a restart: nothing new may be posted
            with store.transaction() as conn:
                digests.run_due_digests(conn, [DAILY], now=now + timedelta(seconds=attempt))
            await relay.deliver_due(now + timedelta(seconds=attempt))
        main = slack.messages("oncall")
        assert len(main) == 1
        replies = [r for r in slack.replies("oncall", main[0]["ts"]) if r["ts"] != main[0]["ts"]]

    assert len(main[0]["blocks"]) == 50
    assert replies and all(len(r["blocks"]) <= 50 for r in replies)
    shown = json.dumps([main[0]["blocks"], *[r["blocks"] for r in replies]])
    assert all(f"Story {i} &lt;!here&gt;" in shown for i in range(1, 81))
    assert "<!here>" not in shown
    store.close()


async def test_an_empty_digest_is_posted_and_says_so(tmp_path: Path) -> None:
    from monitor.store import Store
    from tests.fakeslack import FakeSlack

    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    store.upgrade()
    with FakeSlack() as slack:
        with store.transaction() as conn:
            digests.run_due_digests(conn, [DAILY], now=UNTIL)
        await relay_for(store, slack).deliver_due(UNTIL)
        [message] = slack.messages("oncall")
    assert "No corroborated developments between 2026-06-09 08:00 UTC and 2026-06-10 08:00 UTC." in json.dumps(message["blocks"], ensure_ascii=False)
    assert "no corroborated developments" in message["text"]
    store.close()


def test_digest_command_post_delivers_to_slack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli.main import main
    from tests.fakeslack import FakeSlack

    with FakeSlack() as slack:
        config = tmp_path / "feeds.yaml"
        config.write_text(
            "store:\n  url: sqlite:///monitor.db\n"
            f"slack:\n  token: {slack.token}\n  base_url: {slack.base_url}\n"
            "digests:\n  - id: morning\n    cron: '0 8 * * *'\n    channel: '#oncall'\n"
        )
        assert main(["--config", str(config), "digest", "--since", "12h", "--post"]) == 0
        [message] = slack.messages("oncall")
    assert "No corroborated developments between" in json.dumps(message["blocks"])
    assert "No corroborated developments between" in capsys.readouterr().out

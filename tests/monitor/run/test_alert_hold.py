"""Two halves of one story reported in the same minutes reach Slack as one message.

News comes in bursts: the first reports of a story often land in two developments, and a
bridging report merges them seconds later. The first alert of a development that has a
similar development forming next to it is held (`cluster.alert_hold`), so the merge folds
the second one into the first message instead of notifying people twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.models import Alert, AlertKind, AlertState
from monitor.run.app import open_app
from monitor.run.pipeline import poll_source
from tests.fakeslack import FakeSlack
from tests.servers import LocalServer
from tests.store_rows import all_alerts
from tests.test_end_to_end import rss

NOW = datetime.now(UTC)
# Stocks and oil on the same export figures: two developments until the fifth report links them.
REPORTS = [
    ("a", "Wall Street stocks close lower on weak China exports"),
    ("c", "Crude oil prices slide as Chinese exports slump"),
    ("b", "Wall Street stocks end lower after weak China exports"),
    ("d", "Oil prices slide on slump in China exports"),
    ("e", "Stocks close lower and oil prices slide as Chinese exports slump"),
]


@pytest.fixture
def feeds() -> Iterator[LocalServer]:
    with LocalServer() as server:
        for name, headline in REPORTS:
            server.add(f"/{name}.xml", rss([(headline, server.url(f"/{name}/1"), "", NOW)]),
                       content_type="application/rss+xml")
        yield server


def write_config(path: Path, server: LocalServer, slack: FakeSlack, hold: str) -> Path:
    sources = "".join(
        f"  - id: {name}\n    name: Outlet {name.upper()}\n    url: {server.url(f'/{name}.xml')}\n" for name, _ in REPORTS
    )
    path.write_text(
        f"store:\n  url: sqlite:///{path.parent / 'monitor.db'}\n"
        f"slack:\n  token: {slack.token}\n  base_url: {slack.base_url}\n"
        "http:\n  allow_private_addresses: true\n  article_min_interval: 0s\n"
        f"cluster:\n  alert_hold: {hold}\n"
        f"sources:\n{sources}"
        "topics:\n  - id: markets\n    name: Markets\n    rules:\n      any: [stocks, oil]\n"
        "routes:\n  - topic: markets\n    channel: '#alerts'\n"
    )
    return path


async def report_all(config: Path, later: timedelta) -> list[Alert]:
    """Poll the five outlets one after another, relaying after each poll as the scheduler
    does, then relay again `later`."""
    async with open_app(config) as app:
        for name, _ in REPORTS:
            await poll_source(app.runtime.sources[name], app.runtime)
            await app.relay.deliver_due(datetime.now(UTC))
        now = datetime.now(UTC)
        for _ in range(3):  # the parent, then the update that waited for it
            await app.relay.deliver_due(now + later)
        with app.store.connect() as conn:
            return all_alerts(conn, AlertKind.NEW)


async def test_a_story_that_merges_within_the_hold_is_posted_once(tmp_path: Path, feeds: LocalServer) -> None:
    with FakeSlack(channels={"alerts": "C0ALERTS01"}) as slack:
        config = write_config(tmp_path / "feeds.yaml", feeds, slack, hold="1m")
        sent, superseded = await report_all(config, later=timedelta(minutes=2))
        posted = slack.messages("alerts")
    assert (sent.state, superseded.state) == (AlertState.SENT, AlertState.SUPERSEDED)
    assert "held 1m" in sent.payload.reason  # the row says why it waited ...
    assert superseded.last_error.startswith(f"merged into development {sent.development_id} before it was sent")  # ... and why this one never went
    assert len(posted) == 1
    assert "Verified by 5 sources" in str(posted[0]["blocks"])


async def test_without_a_hold_people_get_two_messages_for_one_story(tmp_path: Path, feeds: LocalServer) -> None:
    """What the hold prevents (and why it exists): each half posts at once."""
    with FakeSlack(channels={"alerts": "C0ALERTS01"}) as slack:
        config = write_config(tmp_path / "feeds.yaml", feeds, slack, hold="0s")
        parents = await report_all(config, later=timedelta(seconds=1))
        posted = slack.messages("alerts")
    assert [a.state for a in parents] == [AlertState.SENT, AlertState.SENT]
    assert len(posted) == 2
    assert any("merged" in str(m.get("blocks", "")).lower() or "merged" in m.get("text", "").lower() for m in posted)


async def test_run_once_sends_held_alerts_at_the_end_of_the_run(tmp_path: Path, feeds: LocalServer) -> None:
    """Under cron (`run --once`) nothing more arrives before the next run: a held alert goes
    out at the end of this one, after every merge the run made, instead of a run later."""
    from monitor.ops.status import collect_status, render_status
    from monitor.run.app import deliver_all, release_holds

    with FakeSlack(channels={"alerts": "C0ALERTS01"}) as slack:
        config = write_config(tmp_path / "feeds.yaml", feeds, slack, hold="1m")
        async with open_app(config) as app:
            for name, _ in REPORTS[:4]:  # the two halves, each corroborated and held
                await poll_source(app.runtime.sources[name], app.runtime)
            held = render_status(collect_status(app.holder, app.store, datetime.now(UTC)))
            assert held.count("waiting #") == 2 and "is forming in the same minutes and may be the same story" in held
            assert release_holds(app) == 2
            report = await deliver_all(app)
            with app.store.connect() as conn:
                parents = all_alerts(conn, AlertKind.NEW)
        posted = slack.messages("alerts")
    assert report.sent == 2 and len(posted) == 2
    assert all("sent at the end of this run" in a.payload.reason for a in parents)

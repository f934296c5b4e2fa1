"""Time to alert: from the moment a corroborating article appears in a feed to the Slack call.

Set-up: the feed farm (2 feeds per event plus fillers, 50 ms latency, 1 filler item each),
the fake Slack Web API server from ``tests/fakeslack.py`` in this process, and the real
``monitor -c feeds.yaml run`` as a child process with every source polled each ``I``
seconds (jitter 0), Slack pointed at the fake server.

Events are pairs of real articles about one event from ECB+ (different outlets' texts of
the same event). Each pair is checked first with the monitor's own ``Analyzer`` (the second
article must join the first one's development and make it corroborated), so a miss in the
measurement is a latency, not a clustering, question. The first article of every event is
published, the monitor polls it (single source: no alert), then the second articles are
published one after another, spread over one poll interval so that they land at different
phases of the poll schedule. The delay of an event is the fake Slack's arrival time of the
first ``chat.postMessage`` that names the event minus the moment the farm served the
corroborating article (both ``time.monotonic()`` in this process).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from bench.common import ROOT, child_env, corpus_file, percentile, progress
from bench.config import write_config
from bench.farm import Farm

EVENT_TERMS = ["killed", "dead", "earthquake", "police", "arrested", "fire", "shooting", "pirates", "says", "said", "new", "after"]


@dataclass(frozen=True)
class Event:
    key: str
    first: tuple[str, str]  # title, text
    second: tuple[str, str]


def candidate_events() -> list[Event]:
    by_cluster: dict[str, list[dict[str, Any]]] = {}
    with open(corpus_file("clusters", "ecbplus.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                if len(row.get("text") or "") >= 600 and row.get("title"):
                    by_cluster.setdefault(str(row["cluster"]), []).append(row)
    events = []
    for key, rows in sorted(by_cluster.items()):
        titles = {r["title"] for r in rows}
        if len(rows) >= 2 and len(titles) >= 2:
            a, b = rows[0], next(r for r in rows[1:] if r["title"] != rows[0]["title"])
            events.append(Event(key, (a["title"], a["text"][:1500]), (b["title"], b["text"][:1500])))
    return events


def verified(events: list[Event], config: Path, wanted: int, env: dict[str, str]) -> list[Event]:
    """Events the monitor's own engine corroborates from two outlets (checked offline)."""
    from monitor.config.load import load_settings
    from monitor.ingest import normalize, relevance
    from monitor.models import DevelopmentState, Item
    from monitor.story.analysis import AnalysisConfig, Analyzer

    settings = load_settings(config, env=env)
    topics = relevance.compile_topics(settings.topics)
    chosen: list[Event] = []
    now = datetime.now(UTC)
    for event in events:
        analyzer = Analyzer(AnalysisConfig.from_settings(settings))
        outcomes = []
        for k, (title, text) in enumerate((event.first, event.second)):
            when = now + timedelta(seconds=k)
            item = Item(title=title, link=f"http://check{k}.example/{event.key}", guid=f"{event.key}-{k}", summary=text, published=when)
            article = normalize.normalize_items([item], source_id=f"check{k}", outlet=f"Check outlet {k}", owner=f"check{k}", tier="outlet", fetched_at=when, now=when)[0]
            article.topics = relevance.match_topics(article, topics)
            if not article.topics:
                break
            outcomes.append(analyzer.add(article, when))
        if (
            len(outcomes) == 2
            and outcomes[0].development.id == outcomes[1].development.id
            and outcomes[0].decision.state is DevelopmentState.SINGLE_SOURCE
            and outcomes[1].decision.state is DevelopmentState.CORROBORATED
        ):
            chosen.append(event)
        if len(chosen) == wanted:
            break
    return chosen


def _wait_polls(farm: Farm, requests: int, *, timeout: float) -> None:
    """Until the farm has answered `requests` more feed requests (a full poll round)."""
    start = sum(farm.counts().values())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sum(farm.counts().values()) - start < requests:
        time.sleep(0.1)


def _mentions(params: dict[str, Any], event: Event) -> bool:
    blob = json.dumps(params, ensure_ascii=False)
    for title, _ in (event.first, event.second):
        head = title[:40]
        if head in blob or escape(head, quote=False) in blob or json.dumps(head, ensure_ascii=False)[1:-1] in blob:
            return True
    return False


def run_alert_latency(*, interval: float, events: int, workdir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    try:
        from tests.fakeslack import FakeSlack
    except Exception as exc:  # another helper's file; say so rather than fail the bench
        return {"error": f"tests/fakeslack.py unavailable: {exc}"}
    result: dict[str, Any] = {"interval": interval, "events": []}
    slack = FakeSlack().start()
    farm = Farm(2 * events + 2, latency=0.05, items_per_feed=1).start()
    monitor: subprocess.Popen[str] | None = None
    log = None
    try:
        config = write_config(
            workdir / "alerts", farm.urls, interval=f"{interval:g}s", jitter="0s",
            slack_base_url=slack.base_url, slack_token="${SLACK_BOT_TOKEN}", channel="alerts",
            topics=[{"id": "events", "name": "Events", "rules": {"any": EVENT_TERMS}, "min_sources": 2}],
        )
        env = {**child_env(), "SLACK_BOT_TOKEN": slack.token}
        chosen = verified(candidate_events(), config, events, env)
        result["verified_events"] = len(chosen)
        if not chosen:
            return {**result, "error": "no ECB+ pair is corroborated by the engine offline"}
        progress(f"alerts: {len(chosen)} events verified offline; starting `monitor run` (poll every {interval:g} s)")
        log = open(workdir / "alerts" / "monitor.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
        monitor = subprocess.Popen(
            [str(Path(sys.executable).with_name("monitor")), "-c", str(config), "run"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=config.parent, text=True,
        )
        # Start-up and the first poll of every feed.
        _wait_polls(farm, farm.n, timeout=interval + 60)
        if monitor.poll() is not None:
            return {**result, "error": f"`monitor run` exited with {monitor.returncode}; see {workdir / 'alerts' / 'monitor.log'}"}
        for k, event in enumerate(chosen):
            farm.add_item(2 * k, *event.first)
        _wait_polls(farm, farm.n, timeout=3 * interval + 10)  # every first article polled: single source
        time.sleep(0.5)  # and processed
        posted_before = len(slack.calls_to("chat.postMessage"))
        published: dict[str, float] = {}
        spread = interval / len(chosen)
        for k, event in enumerate(chosen):
            published[event.key] = farm.add_item(2 * k + 1, *event.second)
            progress(f"alerts: event {k + 1}/{len(chosen)} corroborated in the feed")
            time.sleep(spread)
        deadline = time.monotonic() + interval + 30
        found: dict[str, float] = {}
        while time.monotonic() < deadline and len(found) < len(chosen):
            for call in slack.calls_to("chat.postMessage")[posted_before:]:
                for event in chosen:
                    if event.key not in found and call.time >= published[event.key] and _mentions(call.params, event):
                        found[event.key] = call.time
            time.sleep(0.1)
        for event in chosen:
            delay = found[event.key] - published[event.key] if event.key in found else None
            result["events"].append({"event": event.key, "delay": delay})
        delays = [e["delay"] for e in result["events"] if e["delay"] is not None]
        result.update(
            alerted=len(delays),
            median=percentile(delays, 0.5),
            p95=percentile(delays, 0.95),
            max=max(delays) if delays else None,
        )
        progress(f"alerts: {len(delays)}/{len(chosen)} alerted, median {result['median'] or 0:.2f} s, p95 {result['p95'] or 0:.2f} s")
        return result
    finally:
        if monitor is not None and monitor.poll() is None:
            monitor.send_signal(signal.SIGTERM)
            try:
                monitor.wait(30)
            except subprocess.TimeoutExpired:
                monitor.kill()
                monitor.wait()
        if log is not None:
            log.close()
        farm.stop()
        slack.stop()

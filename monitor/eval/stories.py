"""`monitor eval stories FILE.jsonl`: the whole product path on labelled real-world reports.

The file is in the format of ``../shared/corpus/realworld/*.jsonl`` (one report a line:
title, text, url, source host, outlet, published date, the analyst's event, storyline,
relevance and impact). Unlike ``eval clusters``, which feeds the story engine directly, this
runs what a team would run: each outlet becomes a feed on a local server (127.0.0.1), each
report an item of its outlet's feed with an article page behind it, and the monitor polls
those feeds with the configured topics (``--config``, the bundled feeds.yaml by default)
through fetch → parse → normalise → relevance → full text → dedup → cluster → corroborate →
impact → timeline → decide, with a simulated clock that walks the publication dates in
order. Then it reads the store, as ``monitor developments`` does, and scores:

- relevance: on-topic reports kept, distractors kept;
- corroboration: events with one development holding ≥ 2 of their reports, corroborated;
- clustering: B-cubed precision, recall and F1 over the kept reports;
- impact: Spearman correlation and mean absolute error against the analyst, per event;
- timelines: events whose storyline has an earlier event that list one in their timeline,
  and timeline entries that belong to another storyline (or to none).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import re
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from aiohttp import web

from monitor.config.settings import Settings
from monitor.config.settings import Slack as SlackSettings
from monitor.config.settings import Source as SourceSettings
from monitor.eval.clusters import MAX_BAD_LINES_LOGGED, Progress, bcubed
from monitor.models import Article, DevelopmentState
from monitor.ops.server import local_site
from monitor.story import dedup

log = logging.getLogger(__name__)

POLL_DELAY = timedelta(hours=2)  # the simulated clock polls this long after a report's date


@dataclass(frozen=True, slots=True)
class Report:
    """One labelled line of the file."""

    id: str
    title: str
    text: str
    url: str
    host: str
    outlet: str
    published: datetime
    cluster: str
    storyline: str | None
    primary: bool
    kind: str  # event | commentary | distractor
    relevant: bool
    impact: int | None
    line: int

    @property
    def is_event(self) -> bool:
        return self.kind == "event" and not self.cluster.startswith("solo-")


# -- reading --------------------------------------------------------------------------


def read_reports(path: str | Path) -> list[Report]:
    """Reports in published order (file order breaks ties); bad lines logged and skipped."""
    found: list[Report] = []
    bad = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            report = _report(line, number)
            if report is None:
                bad += 1
                if bad <= MAX_BAD_LINES_LOGGED:
                    log.warning("skipped a bad line", extra={"file": str(path), "line": number})
                continue
            found.append(report)
    if bad:
        log.warning("bad lines skipped", extra={"file": str(path), "count": bad})
    return sorted(found, key=lambda r: (r.published, r.line))


def _report(line: str, number: int) -> Report | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("title"), str) or not row["title"].strip():
        return None
    published = parse_published(row.get("published"))
    if published is None:
        return None
    url = _str(row.get("url"))
    host = (_str(row.get("source")) or dedup.host(url) or "unknown").lower()
    rid = _str(row.get("id")) or f"line-{number}"
    impact = row.get("impact")
    return Report(
        id=rid,
        title=row["title"].strip(),
        text=_str(row.get("text")),
        url=url,
        host=host,
        outlet=_str(row.get("outlet")) or host.removeprefix("www."),
        published=published,
        cluster=_str(row.get("cluster")) or f"solo-{rid}",
        storyline=_str(row.get("storyline")) or None,
        primary=bool(row.get("primary")),
        kind=_str(row.get("kind")) or "event",
        relevant=bool(row.get("relevant", True)),
        impact=int(impact) if isinstance(impact, int | float) and not isinstance(impact, bool) else None,
        line=number,
    )


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?$")


def parse_published(value: Any) -> datetime | None:
    """ISO dates; a date known only to the month ("2022-10") or year ("2023") is taken at the
    middle of that period (the 15th, or July 1): its expected value, neither before every
    report of the month nor after them all."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    partial = _PARTIAL_DATE.match(text)
    try:
        if partial:
            year, month, day = partial.groups()
            if month is None:
                return datetime(int(year), 7, 1, tzinfo=UTC)
            return datetime(int(year), int(month), int(day) if day else 15, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# -- the local outlets ------------------------------------------------------------------


def outlet_slug(host: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-") or "unknown"


class Outlets:
    """One RSS feed per outlet host and one article page per report, on 127.0.0.1.

    A feed lists the reports published up to the simulated clock, newest first, each with its
    headline, its text as the teaser and a link to its page; the page carries the text again,
    as a thin article page does.
    """

    def __init__(self, reports: Sequence[Report]) -> None:
        self.reports = {r.id: r for r in reports}
        self.by_host: dict[str, list[Report]] = defaultdict(list)
        for report in reports:
            self.by_host[report.host].append(report)
        self.now = datetime.min.replace(tzinfo=UTC)
        self.base = ""

    @staticmethod
    def page_path(report: Report) -> str:
        return f"/articles/{outlet_slug(report.host)}/{_quote(report.id)}.html"

    def feed_path(self, host: str) -> str:
        return f"/feeds/{outlet_slug(host)}.xml"

    async def feed(self, request: web.Request) -> web.Response:
        host = next((h for h in self.by_host if outlet_slug(h) == request.match_info["slug"]), None)
        if host is None:
            raise web.HTTPNotFound()
        items = [r for r in self.by_host[host] if r.published <= self.now]
        return web.Response(body=self.rss(host, items), content_type="application/rss+xml")

    def rss(self, host: str, items: Sequence[Report]) -> bytes:
        outlet = escape(items[0].outlet if items else host)
        entries = "".join(
            f"<item><title>{escape(r.title)}</title><link>{escape(self.base + self.page_path(r))}</link>"
            f"<guid isPermaLink=\"false\">{escape(r.id)}</guid>"
            f"<pubDate>{format_datetime(r.published)}</pubDate>"
            f"<description>{escape(r.text)}</description></item>"
            for r in sorted(items, key=lambda r: r.published, reverse=True)
        )
        return (
            f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{outlet}</title>'
            f"<link>https://{escape(host)}/</link>{entries}</channel></rss>"
        ).encode()

    async def page(self, request: web.Request) -> web.Response:
        report = next((r for r in self.reports.values() if self.page_path(r) == request.path), None)
        if report is None:
            raise web.HTTPNotFound()
        html = (
            f"<html><head><title>{escape(report.title)}</title></head><body><article>"
            f"<h1>{escape(report.title)}</h1><p>{escape(report.text)}</p></article></body></html>"
        )
        return web.Response(text=html, content_type="text/html")


def _quote(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


@contextlib.asynccontextmanager
async def serve(outlets: Outlets) -> AsyncIterator[Outlets]:
    app = web.Application()
    app.router.add_get("/feeds/{slug}.xml", outlets.feed)
    app.router.add_get("/articles/{tail:.*}", outlets.page)
    async with local_site(app) as outlets.base:
        yield outlets


# -- running the monitor over them --------------------------------------------------------


def settings_for(settings: Settings, outlets: Outlets, store_url: str) -> Settings:
    """The operator's topics, clustering and routes; the local outlets as sources.

    An outlet the configuration already lists (by host) keeps its owner group and tier, so
    sister outlets collapse as they would in production; the others are plain outlets, or
    primary sources when the file marks their reports so (the agency's own release).
    """
    configured = {dedup.host(s.url): s for s in settings.sources}
    sources = []
    for host, reports in outlets.by_host.items():
        known = configured.get(host) or configured.get(host.removeprefix("www.")) or configured.get(f"www.{host}")
        tier = "primary" if any(r.primary for r in reports) else (known.tier if known and known.tier else "outlet")
        sources.append(
            SourceSettings.model_validate(
                {
                    "id": outlet_slug(host),
                    "name": reports[0].outlet,
                    "url": outlets.base + outlets.feed_path(host),
                    "outlet": reports[0].outlet,
                    "owner": known.owner if known else None,
                    "tier": tier,
                }
            )
        )
    return settings.model_copy(
        update={
            "sources": tuple(sources),
            "store": settings.store.model_copy(update={"url": store_url}),
            # The outlets and their pages are this process's own server: no politeness gap.
            "http": settings.http.model_copy(
                update={"allow_private_addresses": True, "article_min_interval": timedelta(0)}
            ),
            "slack": SlackSettings.model_validate({}),
            "digests": (),
            "server": settings.server.model_copy(update={"enabled": False}),
        }
    )


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def run_reports(
    reports: Sequence[Report], settings: Settings, workdir: Path, *, progress: bool = True
) -> StoryOutcome:
    """Serve the reports as outlets, poll them day by day, and read what the monitor stored."""
    from monitor.ingest.fetch import Fetcher
    from monitor.run.pipeline import build_runtime, poll_source
    from monitor.store import Store

    outlets = Outlets(reports)
    days: dict[datetime, list[Report]] = defaultdict(list)
    for report in reports:
        days[report.published].append(report)
    bar = Progress(len(reports), min_total=0) if progress else None
    done = 0
    async with serve(outlets):
        run_settings = settings_for(settings, outlets, f"sqlite:///{(workdir / 'stories.db').as_posix()}")
        store = Store.open(run_settings.store.url)
        try:
            store.upgrade()
            clock = _Clock(min(days) if days else datetime.now(UTC))
            async with Fetcher(run_settings.http) as fetcher:
                runtime = build_runtime(run_settings, store, fetcher, clock=clock)
                for day in sorted(days):
                    outlets.now, clock.now = day, day + POLL_DELAY
                    for host in dict.fromkeys(r.host for r in days[day]):
                        await poll_source(runtime.sources[outlet_slug(host)], runtime)
                    done += len(days[day])
                    if bar:
                        bar.update(done)
            return read_outcome(store, run_settings, reports)
        finally:
            store.close()
            if bar:
                bar.close()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What the monitor did with one report."""

    id: str
    kept: bool
    development: int | None = None
    why: str = ""  # the relevance explanation (or why it was dropped)


@dataclass(frozen=True, slots=True)
class DevelopmentOutcome:
    id: int
    headline: str
    state: str
    independent: int
    impact: int | None
    impact_reasons: tuple[str, ...]
    storyline: int | None
    kind: str  # the kind of action (impact rubric)
    first_seen: datetime
    timeline: tuple[int, ...]  # development ids listed under "earlier in this story"


@dataclass(frozen=True)
class StoryOutcome:
    reports: dict[str, ReportOutcome]
    developments: dict[int, DevelopmentOutcome]


def read_outcome(store: Any, settings: Settings, reports: Sequence[Report]) -> StoryOutcome:
    """What the store holds after the run: each report's article and each development."""
    from monitor.ingest import relevance
    from monitor.store import articles, developments
    from monitor.store.views import load_view

    # Each report's article is found by its page, the item link the monitor stored.
    by_page = {Outlets.page_path(r): r for r in reports}
    found: dict[str, ReportOutcome] = {}
    devs: dict[int, DevelopmentOutcome] = {}
    with store.connect() as conn:
        for article in articles.iter_recent_articles(conn, EPOCH):
            report = by_page.get(urlsplit(article.url).path)
            if report is not None:
                why = "; ".join(f"{m.topic_id}: {m.explanation}" for m in article.topics)
                found[report.id] = ReportOutcome(report.id, True, article.development_id, why)
        for dev in developments.developments_seen_since(conn, EPOCH):
            view = load_view(conn, dev.id, settings) if dev.id is not None else None
            if view is None:
                continue
            devs[view.development.id or 0] = _development_outcome(view)
    topics = relevance.compile_topics(settings.topics)
    for report in reports:
        if report.id not in found:
            article = _as_article(report)
            why = "; ".join(relevance.explain_miss(article, topics)) or "not stored"
            found[report.id] = ReportOutcome(report.id, False, None, why)
    return StoryOutcome(found, devs)


def _development_outcome(view: Any) -> DevelopmentOutcome:
    dev = view.development
    return DevelopmentOutcome(
        id=dev.id,
        headline=dev.headline,
        state=dev.state.value,
        independent=view.decision.independent,
        impact=dev.impact.score if dev.impact else None,
        impact_reasons=tuple(dev.impact.reasons) if dev.impact else (),
        storyline=dev.storyline_id,
        kind=dev.kind,
        first_seen=dev.first_seen,
        timeline=tuple(entry.development_id for entry in view.timeline),
    )


def _as_article(report: Report) -> Article:
    """The report as relevance saw it in the feed: headline and teaser."""
    return Article(
        source_id=outlet_slug(report.host), outlet=report.outlet, url=report.url, canonical_url=report.url,
        title=report.title, summary=report.text, text="", published=report.published, fetched=report.published,
    )


# -- scoring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventOutcome:
    cluster: str
    storyline: str | None
    reports: int
    kept: int
    development: int | None  # the development holding most of its kept reports
    corroborated: bool
    gold_impact: int | None
    impact: int | None
    earlier_events: tuple[str, ...]  # earlier events of its storyline
    linked_earlier: bool  # its timeline lists one of them
    foreign_entries: tuple[int, ...]  # timeline entries of another storyline (or none)


@dataclass(frozen=True)
class StoryScores:
    on_topic: int
    on_topic_kept: int
    distractors: int
    distractors_kept: int
    events: int
    events_corroborated: int
    precision: float
    recall: float
    f1: float
    impact_events: int
    spearman: float
    impact_mae: float
    timeline_events: int  # events whose storyline has an earlier event
    timeline_linked: int
    foreign_entries: int
    event_outcomes: tuple[EventOutcome, ...] = field(default=())

    @property
    def kept_share(self) -> float:
        return self.on_topic_kept / self.on_topic if self.on_topic else 0.0

    @property
    def linked_share(self) -> float:
        return self.timeline_linked / self.timeline_events if self.timeline_events else 0.0


def score(reports: Sequence[Report], outcome: StoryOutcome) -> StoryScores:
    """Every figure of the issue's table, from the labelled reports and what the monitor did."""
    kept = [r for r in reports if outcome.reports[r.id].kept]
    on_topic = [r for r in reports if r.relevant]
    distractors = [r for r in reports if not r.relevant]
    gold = [r.cluster for r in kept]
    predicted = [outcome.reports[r.id].development or -1 for r in kept]
    precision, recall, f1 = bcubed(gold, predicted) if kept else (0.0, 0.0, 0.0)
    events = _events(reports, outcome)
    rated = [e for e in events if e.gold_impact is not None and e.impact is not None]
    return StoryScores(
        on_topic=len(on_topic),
        on_topic_kept=sum(1 for r in on_topic if outcome.reports[r.id].kept),
        distractors=len(distractors),
        distractors_kept=sum(1 for r in distractors if outcome.reports[r.id].kept),
        events=len(events),
        events_corroborated=sum(e.corroborated for e in events),
        precision=precision,
        recall=recall,
        f1=f1,
        impact_events=len(rated),
        spearman=spearman([e.gold_impact or 0 for e in rated], [e.impact or 0 for e in rated]),
        impact_mae=(sum(abs((e.gold_impact or 0) - (e.impact or 0)) for e in rated) / len(rated)) if rated else 0.0,
        timeline_events=sum(1 for e in events if e.earlier_events),
        timeline_linked=sum(1 for e in events if e.earlier_events and e.linked_earlier),
        foreign_entries=sum(len(e.foreign_entries) for e in events),
        event_outcomes=tuple(events),
    )


def _events(reports: Sequence[Report], outcome: StoryOutcome) -> list[EventOutcome]:
    by_event: dict[str, list[Report]] = defaultdict(list)
    for report in reports:
        if report.is_event:
            by_event[report.cluster].append(report)
    main = {cluster: _main_development(members, outcome) for cluster, members in by_event.items()}
    storyline_of_dev = _storyline_of_developments(reports, outcome)
    first = {cluster: min(r.published for r in members) for cluster, members in by_event.items()}
    found = []
    for cluster, members in sorted(by_event.items(), key=lambda kv: (first[kv[0]], kv[0])):
        dev_id = main[cluster]
        dev = outcome.developments.get(dev_id) if dev_id is not None else None
        storyline = members[0].storyline
        earlier = tuple(
            c for c, ms in by_event.items()
            if storyline and ms[0].storyline == storyline and first[c] < first[cluster]
        )
        earlier_devs = {main[c] for c in earlier if main[c] is not None}
        timeline = dev.timeline if dev else ()
        held = sum(1 for r in members if outcome.reports[r.id].development == dev_id) if dev_id else 0
        found.append(
            EventOutcome(
                cluster=cluster,
                storyline=storyline,
                reports=len(members),
                kept=sum(1 for r in members if outcome.reports[r.id].kept),
                development=dev_id,
                corroborated=bool(dev and held >= 2 and dev.state == DevelopmentState.CORROBORATED.value),
                gold_impact=_gold_impact(members),
                impact=dev.impact if dev else None,
                earlier_events=earlier,
                linked_earlier=bool(earlier_devs & set(timeline)),
                foreign_entries=tuple(d for d in timeline if storyline_of_dev.get(d) != storyline or storyline is None),
            )
        )
    return found


def _main_development(members: Sequence[Report], outcome: StoryOutcome) -> int | None:
    """The development holding most of the event's kept reports (the earliest on a tie)."""
    held = Counter(outcome.reports[r.id].development for r in members if outcome.reports[r.id].kept)
    held.pop(None, None)
    if not held:
        return None
    return min(held, key=lambda d: (-held[d], d or 0))


def _storyline_of_developments(reports: Sequence[Report], outcome: StoryOutcome) -> dict[int, str | None]:
    """Each development's gold storyline: the one most of its reports carry (None for none)."""
    votes: dict[int, Counter[str | None]] = defaultdict(Counter)
    for report in reports:
        dev = outcome.reports[report.id].development
        if dev is not None:
            votes[dev][report.storyline if report.is_event else None] += 1
    return {dev: counts.most_common(1)[0][0] for dev, counts in votes.items()}


def _gold_impact(members: Sequence[Report]) -> int | None:
    rated = [r.impact for r in members if r.impact is not None]
    return Counter(rated).most_common(1)[0][0] if rated else None


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation with average ranks for ties (0 when undefined)."""
    if len(xs) != len(ys) or len(xs) < 2:
        return 0.0
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx and vy else 0.0


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


# -- output and the command ---------------------------------------------------------------


def render(scores: StoryScores, reports: Sequence[Report], outcome: StoryOutcome, *, verbose: bool, out: TextIO) -> None:
    s = scores
    lines = [
        f"on-topic reports kept       {s.on_topic_kept} of {s.on_topic} ({s.kept_share:.2f})",
        f"distractors kept            {s.distractors_kept} of {s.distractors}",
        f"events corroborated         {s.events_corroborated} of {s.events}",
        f"clustering of kept, B3      P {s.precision:.2f}  R {s.recall:.2f}  F1 {s.f1:.2f}",
        f"impact vs the analyst       Spearman {s.spearman:.2f}  mean abs. error {s.impact_mae:.2f} ({s.impact_events} events)",
        f"timelines                   {s.timeline_linked} of {s.timeline_events} events list an earlier event of their"
        f" storyline ({s.linked_share:.2f}); {s.foreign_entries} entries from another storyline",
    ]
    out.write("\n".join(lines) + "\n")
    if not verbose:
        return
    out.write("\nevents:\n")
    for e in s.event_outcomes:
        dev = outcome.developments.get(e.development) if e.development is not None else None
        mark = "✔" if e.corroborated else "✘"
        out.write(
            f" {mark} {e.cluster}: {e.kept}/{e.reports} kept, development {e.development}"
            f" ({dev.state if dev else '-'}, {dev.independent if dev else 0} independent),"
            f" impact {e.impact} vs {e.gold_impact}"
            + (f", timeline {'✔' if e.linked_earlier else '✘'}" if e.earlier_events else "")
            + (f", foreign entries {list(e.foreign_entries)}" if e.foreign_entries else "")
            + "\n"
        )
        if dev and dev.impact_reasons:
            out.write(f"     impact: {'; '.join(dev.impact_reasons)}\n")
    dropped = [r for r in reports if r.relevant and not outcome.reports[r.id].kept]
    wrong = [r for r in reports if not r.relevant and outcome.reports[r.id].kept]
    for title, items in (("on-topic reports dropped", dropped), ("distractors kept", wrong)):
        if items:
            out.write(f"\n{title}:\n")
            for r in items:
                out.write(f"  {r.id} {r.title!r}: {outcome.reports[r.id].why}\n")


def as_json(scores: StoryScores, outcome: StoryOutcome) -> dict[str, Any]:
    figures = {k: v for k, v in asdict(scores).items() if k != "event_outcomes"}
    figures["kept_share"], figures["linked_share"] = scores.kept_share, scores.linked_share
    return {
        "scores": figures,
        "events": [asdict(e) for e in scores.event_outcomes],
        "reports": [asdict(r) for r in outcome.reports.values()],
        "developments": [
            {**asdict(d), "first_seen": d.first_seen.isoformat()} for d in outcome.developments.values()
        ],
    }


def evaluate_stories(path: str | Path, settings: Settings, *, progress: bool = True) -> tuple[StoryScores, list[Report], StoryOutcome]:
    """Run the monitor over the file in a temporary folder and score what it did."""
    reports = read_reports(path)
    with tempfile.TemporaryDirectory(prefix="monitor-eval-stories-") as scratch:
        outcome = asyncio.run(run_reports(reports, settings, Path(scratch), progress=progress))
    return score(reports, outcome), reports, outcome


def add_eval_stories_parser(eval_subparsers: Any) -> argparse.ArgumentParser:
    parser = eval_subparsers.add_parser(
        "stories",
        help="the whole product path (topics, dedup, clustering, corroboration, impact, timelines) on labelled real-world reports",
    )
    parser.add_argument("file", metavar="FILE.jsonl", help="e.g. ../shared/corpus/realworld/ecx-dev.jsonl")
    parser.add_argument("--json", action="store_true", help="print the raw outcome as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--verbose", action="store_true", help="also list each event, dropped reports and kept distractors")
    parser.set_defaults(handler=cmd_eval_stories)
    return parser


def cmd_eval_stories(args: argparse.Namespace) -> int:
    from monitor.config.load import load_settings

    path = Path(args.file)
    if not path.is_file():
        print(f"eval stories: no such file: {path}", file=sys.stderr)
        return 2
    settings = load_settings(args.config)
    _quiet_engine_logs(args)
    scores, reports, outcome = evaluate_stories(path, settings, progress=not args.no_progress)
    if args.json:
        json.dump(as_json(scores, outcome), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(f"{path}: {len(reports)} reports, {scores.events} events; topics from {args.config}")
        render(scores, reports, outcome, verbose=args.verbose, out=sys.stdout)
    return 0


def _quiet_engine_logs(args: argparse.Namespace) -> None:
    """The monitor logs every poll and merge at INFO; an evaluation only wants its figures."""
    if getattr(args, "log_level", "INFO") == "INFO":
        for name in ("monitor", "alerts"):
            logging.getLogger(name).setLevel(logging.WARNING)

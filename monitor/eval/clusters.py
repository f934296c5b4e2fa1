"""`monitor eval clusters FILE` and `monitor replay FILE`: measure the story engine on labelled data.

Both stream the articles of a labelled file (format: ``../shared/corpus/README.md``) in
published order (file order when there are no dates) through :class:`Analyzer`, the code
the monitor runs. ``eval clusters`` prints B-cubed precision, recall and F1 and the number
of clusters; ``replay`` simulates time with a console sink and prints when each
development would have been alerted, with its sources, plus how well alerts match stories.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from alerts.decide import PreviousState, decide, hold_for
from monitor.config.settings import Route
from monitor.models import AlertKind, AlertState, Article, MergePayload
from monitor.store import Store, developments, outbox
from monitor.story import dedup
from monitor.story.analysis import AnalysisConfig, Analyzer, Outcome
from monitor.story.cluster import UNDATED
from monitor.story.corroborate import describe

log = logging.getLogger(__name__)

SYNTHETIC_START = datetime(2000, 1, 1, tzinfo=UTC)  # clock for files without dates
SYNTHETIC_STEP = timedelta(seconds=1)  # one article a second: no time decay between them
MAX_BAD_LINES_LOGGED = 10


@dataclass(frozen=True, slots=True)
class LabelledArticle:
    """One line of a labelled cluster file, turned into the Article the monitor would see."""

    id: str
    cluster: str
    article: Article
    line: int  # 1-based line number in the file


@dataclass(frozen=True, slots=True)
class ClusterScores:
    precision: float
    recall: float
    f1: float
    clusters: int
    gold_clusters: int
    articles: int

    def text(self) -> str:
        return (
            f"B3 precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}\n"
            f"clusters {self.clusters} (gold {self.gold_clusters}) over {self.articles} articles"
        )


# -- reading --------------------------------------------------------------------------


def read_cluster_file(path: str | Path) -> Iterator[LabelledArticle]:
    """Labelled articles in file order; bad lines are logged (the first few) and skipped."""
    last_time: datetime | None = None
    undated = 0
    bad = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = _parse_line(line)
            if row is None:
                bad += 1
                if bad <= MAX_BAD_LINES_LOGGED:
                    log.warning("skipped a bad line", extra={"file": str(path), "line": number})
                continue
            published = _parse_time(row.get("published"))
            dated = published is not None
            if published is None:
                undated += 1
                published = (last_time or SYNTHETIC_START) + undated * SYNTHETIC_STEP
            else:
                last_time, undated = published, 0
            yield LabelledArticle(
                str(row.get("id", number)), str(row["cluster"]), _article(row, published, dated), number
            )
    if bad:
        log.warning("bad lines skipped", extra={"file": str(path), "count": bad})


def _parse_line(line: str) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or row.get("cluster") is None:
        return None
    return row


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _article(row: dict[str, Any], published: datetime, dated: bool = True) -> Article:
    url = _text(row.get("url"))
    outlet = _text(row.get("source")).removeprefix("www.") or dedup.host(url) or "unknown"
    title, text = _text(row.get("title")), _text(row.get("text"))
    digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()
    return Article(
        source_id=outlet,
        outlet=outlet,
        url=url,
        canonical_url=url,
        title=title,
        summary="",
        text=text,
        published=published,
        fetched=published,
        guid=str(row.get("id", "")),
        content_hash=digest,
        # File order stands in for time here; tell the clusterer not to read it as time.
        warnings=() if dated else (UNDATED,),
    )


def in_published_order(items: Iterable[LabelledArticle]) -> list[LabelledArticle]:
    """Stable sort by published time: file order breaks ties (and orders undated files)."""
    return sorted(items, key=lambda x: (x.article.published, x.line))


# -- scoring --------------------------------------------------------------------------


def bcubed(gold: Sequence[Hashable], predicted: Sequence[Hashable]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 over all items (Bagga & Baldwin 1998)."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted labels differ in length")
    if not gold:
        return 0.0, 0.0, 0.0
    pair_counts = Counter(zip(gold, predicted, strict=True))
    gold_sizes, pred_sizes = Counter(gold), Counter(predicted)
    precision = recall = 0.0
    for (g, p), n in pair_counts.items():
        # each of the n items in this cell has n correct neighbours in its cluster
        precision += n * n / pred_sizes[p]
        recall += n * n / gold_sizes[g]
    precision /= len(gold)
    recall /= len(gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


class _UnionFind:
    """Final development of each id after merges."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def union(self, kept: int, absorbed: int) -> None:
        self.parent[self.find(absorbed)] = self.find(kept)

    def find(self, x: int) -> int:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(x, x) != root:
            self.parent[x], x = root, self.parent[x]
        return root


class Progress:
    """A one-line progress bar on stderr, for files long enough to wait for."""

    def __init__(self, total: int, *, out: TextIO | None = None, min_total: int = 500) -> None:
        self.total, self.out = total, out or sys.stderr
        self.enabled = total >= min_total
        # On a terminal the bar redraws in place; in a log file, a line every 25 %.
        self.step = 1 if _isatty(self.out) else 25
        self._shown = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        percent = done * 100 // self.total
        if percent // self.step != self._shown // self.step or self._shown < 0:
            self._shown = percent
            bar = "#" * (percent // 4)
            end = "" if self.step == 1 else "\n"
            self.out.write(f"\r[{bar:<25}] {percent:3d}% {done}/{self.total}{end}")
            self.out.flush()

    def close(self) -> None:
        if self.enabled and self.step == 1:
            self.out.write("\n")
            self.out.flush()


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def run_stream(
    items: Sequence[LabelledArticle], config: AnalysisConfig | None = None, *, progress: bool = True
) -> Iterator[tuple[LabelledArticle, Outcome]]:
    """Each labelled article through the Analyzer at its own (simulated) time."""
    analyzer = Analyzer(config or AnalysisConfig())
    bar = Progress(len(items)) if progress else None
    try:
        for done, item in enumerate(items, start=1):
            yield item, analyzer.add(item.article, item.article.published)
            if bar:
                bar.update(done)
    finally:
        if bar:
            bar.close()


def evaluate_clusters(
    path: str | Path, config: AnalysisConfig | None = None, *, progress: bool = True
) -> ClusterScores:
    """B-cubed scores of the engine's developments (after merges) against the gold clusters."""
    items = in_published_order(read_cluster_file(path))
    merges = _UnionFind()
    gold: list[str] = []
    assigned: list[int] = []
    for item, outcome in run_stream(items, config, progress=progress):
        for merge in outcome.merges:
            merges.union(merge.kept, merge.absorbed)
        gold.append(item.cluster)
        assigned.append(outcome.development.id or 0)
    predicted = [merges.find(d) for d in assigned]
    p, r, f = bcubed(gold, predicted)
    return ClusterScores(p, r, f, len(set(predicted)), len(set(gold)), len(gold))


# -- replay ---------------------------------------------------------------------------


@dataclass(slots=True)
class ReplayAlert:
    """One development alerted in the replay (corroborated by enough independent sources)."""

    development_id: int
    at: datetime
    headline: str
    independent: int
    reason: str
    sources: list[str]
    article_ids: list[str]  # the development's articles when the alert fired
    mixed: bool  # those articles came from more than one gold story
    story: str = ""  # the gold story most of the development's articles belong to, at the end
    merged_into: int | None = None  # folded into another alerted development's message later
    held: bool = False  # waited because a similar development was forming
    updates: int = 0  # later articles that added a new independent source


@dataclass(frozen=True, slots=True)
class ReplayMetrics:
    stories: int
    multi_host_stories: int  # gold stories reported by two or more hosts
    alerted_share: float  # of those, the share that got an alert
    alerts: int  # alerts fired (a development reaching the required independent sources)
    messages: int  # alerts left once merged developments are folded into one message
    alerts_per_story: float  # alerts / alerted stories
    messages_per_story: float  # messages / alerted stories
    mixed_share: float  # share of alerts whose articles, when it fired, mixed stories
    held: int = 0  # alerts that waited because a similar development was forming
    superseded: int = 0  # held alerts never sent: a merge folded them into another message


REPLAY_CHANNEL = "#replay"  # the one route of the replay: every topic's alerts go there
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


class _Replay:
    """The monitor's own alert rules over simulated time: `decide` queues parent messages,
    updates and merges in a real outbox (an in-memory store), holds delay first alerts,
    merges fold rows with `outbox.fold_merged`, and a row counts as sent when it falls due."""

    def __init__(self, config: AnalysisConfig) -> None:
        self.config = config
        self.store = Store.open("sqlite://")
        self.store.upgrade()
        self.previous: dict[int, PreviousState] = {}
        self.members: dict[int, list[LabelledArticle]] = defaultdict(list)
        self.merges = _UnionFind()
        self.outcomes: dict[int, Outcome] = {}  # each development's latest outcome
        self.alerts: dict[int, ReplayAlert] = {}  # by outbox row id of the parent message
        self.sent_parents: dict[int, ReplayAlert] = {}  # by development it was posted for

    def close(self) -> None:
        self.store.close()

    def observe(self, item: LabelledArticle, outcome: Outcome) -> None:
        """One article through the pipeline's alert step, as `refresh_development` runs it."""
        dev, decision = outcome.development, outcome.decision
        assert dev.id is not None
        now = item.article.published
        self.members[dev.id].append(item)
        self.outcomes[dev.id] = outcome
        with self.store.transaction() as conn:
            # Stored as the pipeline stores them: alert rows point at their development.
            for gone in outcome.merged:
                developments.upsert_development(conn, gone)
            developments.upsert_development(conn, dev)
            for merge in outcome.merges:
                self.merges.union(merge.kept, merge.absorbed)
                self.members[merge.kept].extend(self.members.pop(merge.absorbed, []))
                self.previous.pop(merge.absorbed, None)
                outbox.fold_merged(conn, merge.absorbed, merge.kept, now)
                carried = outbox.parent_for(conn, merge.kept, REPLAY_CHANNEL)
                if carried is not None and carried.id in self.alerts:  # the message goes on as kept's
                    self.sent_parents[merge.kept] = self.alerts[carried.id]
            rows = decide(
                dev,
                decision,
                self.previous.get(dev.id),
                (Route.model_validate({"topic": dev.topic, "channel": REPLAY_CHANNEL}),),
                (),
                now=now,
                new_article_ids=[outcome.article.id or 0],
                merged_from=outcome.merged_from,
                posted=outbox.parent_channels(conn, dev.id),
                hold=hold_for(outcome.forming, self.config.alert_hold, now),
            )
            for row in rows:
                outbox.enqueue(conn, row)
        self.previous[dev.id] = PreviousState(decision.state, decision.independent, None)

    def send_due(self, until: datetime | None) -> list[ReplayAlert]:
        """Send every row due by `until` (all of them when None), oldest first."""
        fired: list[ReplayAlert] = []
        with self.store.transaction() as conn:
            for row in outbox.due(conn, until or _END_OF_TIME, limit=1_000_000):
                assert row.id is not None and row.development_id is not None
                at = max(row.not_before or row.created or until or _END_OF_TIME, row.created or _END_OF_TIME)
                if row.kind is AlertKind.NEW:
                    fired.append(self._fire(row.id, row.development_id, at, bool(row.not_before)))
                elif row.kind is AlertKind.UPDATE and row.development_id in self.sent_parents:
                    self.sent_parents[row.development_id].updates += 1
                elif isinstance(row.payload, MergePayload):
                    self._fold(row.payload)
                outbox.mark_sent(conn, row.id, "CREPLAY", f"{row.id}", "", at)
        return fired

    def superseded(self) -> int:
        with self.store.connect() as conn:
            return outbox.counts_by_state(conn).get(AlertState.SUPERSEDED.value, 0)

    def _fire(self, row_id: int, dev_id: int, at: datetime, held: bool) -> ReplayAlert:
        outcome = self.outcomes[dev_id]
        members = self.members[dev_id]
        alert = ReplayAlert(
            development_id=dev_id,
            at=at,
            headline=outcome.development.headline,
            independent=outcome.decision.independent,
            reason=outcome.decision.reason,
            sources=[describe(o) for o in outcome.decision.origins],
            article_ids=[m.id for m in members],
            mixed=len(Counter(m.cluster for m in members)) > 1,
            held=held,
        )
        self.alerts[row_id] = alert
        self.sent_parents[dev_id] = alert
        return alert

    def _fold(self, payload: MergePayload) -> None:
        """A merge row: the absorbed development's message, if sent on its own, becomes a
        pointer to the surviving one (one message fewer)."""
        absorbed, kept = payload.from_id or 0, payload.into_id or 0
        alert = self.sent_parents.pop(absorbed, None)
        if alert is not None and self.sent_parents.get(kept) is not alert:
            alert.merged_into = kept


def replay(
    path: str | Path,
    config: AnalysisConfig | None = None,
    *,
    out: TextIO | None = None,
    as_json: bool = False,
    progress: bool = True,
) -> tuple[list[ReplayAlert], ReplayMetrics]:
    """Replay a labelled file with simulated time; print alerts as they would have fired."""
    out = out or sys.stdout
    items = in_published_order(read_cluster_file(path))
    config = config or AnalysisConfig()
    state = _Replay(config)
    try:
        for item, outcome in run_stream(items, config, progress=progress):
            fired = state.send_due(item.article.published)
            state.observe(item, outcome)
            if not as_json:
                for each in fired:
                    _print_alert(each, out)
        for each in state.send_due(None):
            if not as_json:
                _print_alert(each, out)
        superseded = state.superseded()
    finally:
        state.close()
    alerts = sorted(state.alerts.values(), key=lambda a: (a.at, a.development_id))
    for alert in alerts:
        root = state.merges.find(alert.development_id)
        alert.story = Counter(m.cluster for m in state.members[root]).most_common(1)[0][0]
    metrics = _replay_metrics(items, alerts, superseded=superseded)
    if as_json:
        json.dump(
            {"alerts": [_alert_json(a) for a in alerts], "metrics": asdict(metrics)}, out, indent=1
        )
        out.write("\n")
    else:
        _print_metrics(metrics, out)
    return alerts, metrics


def _replay_metrics(
    items: Sequence[LabelledArticle], alerts: Sequence[ReplayAlert], *, superseded: int = 0
) -> ReplayMetrics:
    hosts: dict[str, set[str]] = defaultdict(set)
    for item in items:
        hosts[item.cluster].add(item.article.outlet)
    multi = {story for story, h in hosts.items() if len(h) >= 2}
    alerted = {a.story for a in alerts}
    n = len(alerts)
    messages = sum(1 for a in alerts if a.merged_into is None)
    return ReplayMetrics(
        stories=len(hosts),
        multi_host_stories=len(multi),
        alerted_share=len(multi & alerted) / len(multi) if multi else 1.0,
        alerts=n,
        messages=messages,
        alerts_per_story=n / len(alerted) if alerted else 0.0,
        messages_per_story=messages / len(alerted) if alerted else 0.0,
        mixed_share=sum(a.mixed for a in alerts) / n if n else 0.0,
        held=sum(a.held for a in alerts) + superseded,
        superseded=superseded,
    )


def _alert_json(alert: ReplayAlert) -> dict[str, Any]:
    data = asdict(alert)
    data["at"] = alert.at.isoformat()
    return data


def _print_alert(alert: ReplayAlert, out: TextIO) -> None:
    out.write(
        f"{alert.at:%Y-%m-%d %H:%M:%S} ALERT development {alert.development_id}: {alert.headline}\n"
        f"    {alert.reason}\n"
    )


def _print_metrics(m: ReplayMetrics, out: TextIO) -> None:
    out.write(
        f"alerts {m.alerts} ({m.messages} messages after merges) for {m.stories} stories\n"
        f"stories reported by >= 2 hosts: {m.multi_host_stories}, alerted {m.alerted_share:.1%}\n"
        f"alerts per alerted story {m.alerts_per_story:.2f} ({m.messages_per_story:.2f} messages); "
        f"alerts mixing stories {m.mixed_share:.1%}\n"
        f"held while a similar development was forming: {m.held} ({m.superseded} merged before sending)\n"
    )


# -- command line ---------------------------------------------------------------------


def add_eval_clusters_parser(eval_subparsers: Any) -> argparse.ArgumentParser:
    parser = eval_subparsers.add_parser(
        "clusters", help="B-cubed precision/recall/F1 of developments on a labelled JSONL file"
    )
    parser.add_argument("file", type=Path, help="labelled articles, one JSON object a line")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--verbose", action="store_true", help="also log each merge the engine makes")
    parser.set_defaults(handler=cmd_eval_clusters)
    return parser


def cmd_eval_clusters(args: argparse.Namespace) -> int:
    if not Path(args.file).is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    _engine_logs(args)
    scores = evaluate_clusters(args.file, progress=not getattr(args, "no_progress", False))
    print(scores.text())
    return 0


def add_replay_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "replay", help="replay a labelled JSONL file with simulated time; print the alerts"
    )
    parser.add_argument("file", type=Path, help="labelled articles, one JSON object a line")
    parser.add_argument("--json", action="store_true", help="print alerts and metrics as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--verbose", action="store_true", help="also log each merge the engine makes")
    parser.set_defaults(handler=cmd_replay)
    return parser


def cmd_replay(args: argparse.Namespace) -> int:
    if not Path(args.file).is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    _engine_logs(args)
    replay(args.file, as_json=args.json, progress=not getattr(args, "no_progress", False))
    return 0


def _engine_logs(args: argparse.Namespace) -> None:
    """The engine logs every merge at info; over a long file that drowns the progress bar."""
    if not getattr(args, "verbose", False):
        logging.getLogger("monitor.story.analysis").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.eval.clusters")
    sub = parser.add_subparsers(dest="command", required=True)
    add_eval_clusters_parser(sub)
    add_replay_parser(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())

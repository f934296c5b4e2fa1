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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from monitor.models import Article, DevelopmentState
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


@dataclass(slots=True)
class _Replay:
    alerts: dict[int, ReplayAlert] = field(default_factory=dict)  # by current development
    folded: list[ReplayAlert] = field(default_factory=list)  # merged into another's message
    members: dict[int, list[LabelledArticle]] = field(default_factory=lambda: defaultdict(list))
    origins: dict[int, int] = field(default_factory=dict)
    merges: _UnionFind = field(default_factory=_UnionFind)
    held: dict[int, tuple[datetime, Outcome]] = field(default_factory=dict)  # due time, outcome
    superseded: int = 0  # held alerts never sent: merged into a development with a message


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
    hold = (config or AnalysisConfig()).alert_hold
    state = _Replay()
    for item, outcome in run_stream(items, config, progress=progress):
        fired = _release(state, item.article.published)
        alert = _observe(state, item, outcome, hold)
        fired += [alert] if alert is not None else []
        if not as_json:
            for each in fired:
                _print_alert(each, out)
    for each in _release(state, None):
        if not as_json:
            _print_alert(each, out)
    alerts = sorted([*state.alerts.values(), *state.folded], key=lambda a: (a.at, a.development_id))
    for alert in alerts:
        root = state.merges.find(alert.development_id)
        alert.story = Counter(m.cluster for m in state.members[root]).most_common(1)[0][0]
    metrics = _replay_metrics(items, alerts, superseded=state.superseded)
    if as_json:
        json.dump(
            {"alerts": [_alert_json(a) for a in alerts], "metrics": asdict(metrics)}, out, indent=1
        )
        out.write("\n")
    else:
        _print_metrics(metrics, out)
    return alerts, metrics


def _observe(state: _Replay, item: LabelledArticle, outcome: Outcome, hold: timedelta) -> ReplayAlert | None:
    """Track members and merges; return an alert when a development first corroborates.

    Mirrors the monitor: an alert held because a similar development is forming
    (``outcome.forming``) goes out ``hold`` later unless a merge folded it into a
    development that already has a message (then nobody is notified twice).
    """
    dev = outcome.development
    assert dev.id is not None
    for merge in outcome.merges:
        _fold(state, merge.kept, merge.absorbed)
    state.members[dev.id].append(item)
    corroborated = outcome.decision.state is DevelopmentState.CORROBORATED
    previous = state.origins.get(dev.id, 0)
    state.origins[dev.id] = outcome.decision.independent
    if dev.id in state.alerts:
        if outcome.decision.independent > previous:
            state.alerts[dev.id].updates += 1
        return None
    if not corroborated or dev.id in state.held:
        return None
    now = item.article.published
    if outcome.forming is not None and hold:
        state.held[dev.id] = (now + hold, outcome)
        return None
    return _fire(state, dev.id, now, outcome)


def _fold(state: _Replay, kept: int, absorbed: int) -> None:
    """A merge: the kept development carries the absorbed one's alert unless it has its own."""
    state.merges.union(kept, absorbed)
    state.members[kept].extend(state.members.pop(absorbed, []))
    held = state.held.pop(absorbed, None)
    if held is not None:
        if kept in state.alerts or kept in state.held:
            state.superseded += 1  # never sent: the kept development's message covers it
        else:
            state.held[kept] = held
    alert = state.alerts.pop(absorbed, None)
    if alert is None:
        return
    if kept in state.alerts:
        alert.merged_into = kept  # one message: the later one is folded in
        state.folded.append(alert)
        return
    state.alerts[kept] = alert  # the kept development carries this alert on
    if state.held.pop(kept, None) is not None:
        state.superseded += 1


def _release(state: _Replay, until: datetime | None) -> list[ReplayAlert]:
    """Send the held alerts that are due by ``until`` (all of them when None)."""
    due = sorted(
        (at, dev_id) for dev_id, (at, _) in state.held.items() if until is None or at <= until
    )
    fired = []
    for at, dev_id in due:
        _, outcome = state.held.pop(dev_id)
        fired.append(_fire(state, dev_id, at, outcome))
    return fired


def _fire(state: _Replay, dev_id: int, at: datetime, outcome: Outcome) -> ReplayAlert:
    members = state.members[dev_id]
    stories = Counter(m.cluster for m in members)
    alert = ReplayAlert(
        development_id=dev_id,
        at=at,
        headline=outcome.development.headline,
        independent=state.origins.get(dev_id, outcome.decision.independent),
        reason=outcome.decision.reason,
        sources=[describe(o) for o in outcome.decision.origins],
        article_ids=[m.id for m in members],
        mixed=len(stories) > 1,
        held=outcome.forming is not None and at > outcome.article.published,
    )
    state.alerts[dev_id] = alert
    return alert


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

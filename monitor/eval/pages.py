"""`monitor eval pages DIR`: score article extraction against labelled pages.

DIR holds `ground-truth.json` (id → {"articleBody": ..., "url": ...}) and `html/<id>.html`,
the layout of the scrapinghub article-extraction-benchmark. The headline score is that
benchmark's own method, so it compares with published numbers (trafilatura: 0.958 F1):
per page, a bag of 4-token shingles (tokens are `\\w+` runs) of the extracted text is
matched against the one of `articleBody`; true/false positives and negatives are normalised
per page so long pages weigh no more than short ones; precision and recall are averaged over
pages and F1 is taken from the two averages. A plain bag-of-whitespace-tokens F1 (averaged
the same way) is reported alongside, as the corpus README describes it.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from monitor.ingest.extract import extract_article_text

_WORD = re.compile(r"\w+")
Counts = tuple[float, float, float]  # true positives, false positives, false negatives


@dataclass(frozen=True, slots=True)
class PageScores:
    pages: int
    precision: float  # benchmark method: 4-token shingles
    recall: float
    f1: float
    token_precision: float  # bag of whitespace tokens
    token_recall: float
    token_f1: float
    missing: tuple[str, ...] = ()  # ids in ground-truth.json without an html file


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _WORD.findall(text or "")
    # A text shorter than n tokens is one (short) shingle, as in the benchmark.
    return Counter(
        tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n]
    )


def whitespace_tokens(text: str) -> Counter[str]:
    return Counter((text or "").split())


def bag_counts(true: Counter, pred: Counter) -> Counts:  # type: ignore[type-arg]
    """Overlap of two bags, normalised to sum to 1 so every page weighs the same."""
    tp = sum((true & pred).values())
    fp = sum((pred - true).values())
    fn = sum((true - pred).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return tp / (tp + fp) if tp + fp else 0.0


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return tp / (tp + fn) if tp + fn else 0.0


def aggregate(counts: list[Counts]) -> tuple[float, float, float]:
    """Mean precision over pages with a prediction, mean recall over pages with a truth, F1."""
    precisions = [_precision(*c) for c in counts if c[0] + c[1] > 0]
    recalls = [_recall(*c) for c in counts if c[0] + c[2] > 0]
    precision = statistics.fmean(precisions) if precisions else 0.0
    recall = statistics.fmean(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _progress(items: list[str], enabled: bool) -> Iterable[str]:
    """Yield items, showing "pages n/N" on stderr: in place on a terminal, every 10 % in logs."""
    tty = sys.stderr.isatty()
    step = max(1, len(items) // 10)
    for done, item in enumerate(items, 1):
        yield item
        if enabled and tty:
            print(f"\rpages {done}/{len(items)}", end="", file=sys.stderr, flush=True)
        elif enabled and (done % step == 0 or done == len(items)):
            print(f"pages {done}/{len(items)}", file=sys.stderr, flush=True)
    if enabled and tty and items:
        print(file=sys.stderr)


def evaluate_pages(
    directory: Path,
    progress: bool = True,
    extractor: Callable[[bytes, str], str] = extract_article_text,
) -> PageScores:
    """Extract every page of DIR and score it against its `articleBody`."""
    truth: dict[str, dict[str, str]] = json.loads(
        (directory / "ground-truth.json").read_text("utf-8")
    )
    shingle_counts: list[Counts] = []
    token_counts: list[Counts] = []
    missing: list[str] = []
    for page_id in _progress(sorted(truth), progress):
        path = directory / "html" / f"{page_id}.html"
        if not path.exists():
            missing.append(page_id)
            continue
        expected = truth[page_id].get("articleBody") or ""
        got = extractor(path.read_bytes(), truth[page_id].get("url") or "")
        shingle_counts.append(bag_counts(shingles(expected), shingles(got)))
        token_counts.append(bag_counts(whitespace_tokens(expected), whitespace_tokens(got)))
    p, r, f = aggregate(shingle_counts)
    tp, tr, tf = aggregate(token_counts)
    return PageScores(len(shingle_counts), p, r, f, tp, tr, tf, tuple(missing))


def format_scores(scores: PageScores) -> str:
    lines = [
        f"pages: {scores.pages}",
        f"benchmark (4-token shingles): precision={scores.precision:.3f} recall={scores.recall:.3f} F1={scores.f1:.3f}",
        f"whitespace tokens:            precision={scores.token_precision:.3f} recall={scores.token_recall:.3f} F1={scores.token_f1:.3f}",
    ]
    if scores.missing:
        lines.append(
            f"missing html for {len(scores.missing)} page(s): {', '.join(scores.missing[:5])}"
        )
    return "\n".join(lines)


def cmd_eval_pages(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not (directory / "ground-truth.json").is_file():
        print(f"error: {directory}/ground-truth.json not found", file=sys.stderr)
        return 2
    try:
        scores = evaluate_pages(directory, progress=not getattr(args, "quiet", False))
    except (OSError, ValueError) as exc:  # unreadable or malformed ground truth
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_scores(scores))
    return 0


def add_eval_pages_parser(eval_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser = eval_subparsers.add_parser(
        "pages",
        help="score article text extraction on a directory of labelled pages",
        description="Reads DIR/ground-truth.json and DIR/html/<id>.html and prints token F1.",
    )
    parser.add_argument("directory", metavar="DIR", help="e.g. ../shared/corpus/pages")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(handler=cmd_eval_pages)
    return parser

"""Medians, ratios and targets from the raw runs, and the one table `make bench` prints."""

from __future__ import annotations

from typing import Any

from bench.common import median

PEERS = ("monitor", "rss2email", "changedetection.io", "naive", "floor")


def _cycles(result: dict[str, Any], contender: str, kind: str) -> list[dict[str, Any]]:
    cycles = result.get("poll", {}).get("cycles", [])
    return [c for c in cycles if c["contender"] == contender and c["kind"] == kind and "error" not in c]


def _med(result: dict[str, Any], contender: str, kind: str, key: str) -> float | None:
    values = [c.get(key) for c in _cycles(result, contender, kind)]
    return median([v for v in values if v is not None])


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _target(name: str, value: float | None, limit: float, *, at_most: bool, unit: str = "") -> dict[str, Any]:
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return {"target": name, "value": value, "limit": limit, "at_most": at_most, "unit": unit, "met": met}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {"poll": {}, "analysis": {}, "alerts": {}, "hostile": {}, "distributed": {}, "targets": []}
    targets = summary["targets"]
    if "poll" in result:
        poll = summary["poll"]
        feeds = result["poll"]["feeds"]
        for contender in PEERS:
            for kind in ("first", "steady", "unchanged"):
                for key in ("wall", "cpu"):
                    poll[f"{contender}.{kind}.{key}"] = _med(result, contender, kind, key)
        # The naive loop has no state: its steady cycle is the same work as its first.
        for key in ("wall", "cpu"):
            if poll[f"naive.steady.{key}"] is None:
                poll[f"naive.steady.{key}"] = poll[f"naive.first.{key}"]
        poll["feeds"] = feeds
        unchanged_cpu = poll["monitor.unchanged.cpu"]
        poll["monitor.cpu_ms_per_unchanged_feed"] = 1000 * unchanged_cpu / feeds if unchanged_cpu is not None else None
        floor_cpu = poll["floor.unchanged.cpu"]
        poll["floor.cpu_ms_per_unchanged_feed"] = 1000 * floor_cpu / feeds if floor_cpu is not None else None
        poll["steady_vs_floor"] = _ratio(poll["monitor.steady.wall"], poll["floor.steady.wall"])
        poll["rss2email_vs_monitor"] = _ratio(poll["rss2email.steady.wall"], poll["monitor.steady.wall"])
        poll["changedetection_vs_monitor"] = _ratio(poll["changedetection.io.steady.wall"], poll["monitor.steady.wall"])
        poll["naive_vs_monitor"] = _ratio(poll["naive.steady.wall"], poll["monitor.steady.wall"])
        targets.append(_target("steady cycle ÷ floor (wall)", poll["steady_vs_floor"], 1.5, at_most=True, unit="×"))
        targets.append(_target("rss2email ÷ monitor, steady cycle (wall)", poll["rss2email_vs_monitor"], 20, at_most=False, unit="×"))
        targets.append(_target("CPU per unchanged feed", poll["monitor.cpu_ms_per_unchanged_feed"], 1.0, at_most=True, unit="ms"))
    if "analysis" in result:
        analysis = summary["analysis"]
        runs = [r for r in result["analysis"].get("runs", []) if "error" not in r]
        for size in result["analysis"]["sizes"]:
            mine = [r for r in runs if r["size"] == size]
            analysis[str(size)] = {
                "articles_per_s": median([r["articles_per_s"] for r in mine]),
                "cpu_ms_per_article": median([1000 * r["cpu"] / r["articles"] for r in mine]),
                "wall_ms_per_article": median([r["ms_per_article"] for r in mine]),
                "peak_rss_mb": max((r["peak_rss"] / 1e6 for r in mine), default=None),
                "restore_s": median([r["restore_seconds"] for r in mine]),
                "stage_ms_per_article": {
                    stage: median([1000 * r["stage_seconds"][stage] / r["articles"] for r in mine])
                    for stage in (mine[0]["stage_seconds"] if mine else {})
                },
            }
        sizes = result["analysis"]["sizes"]
        small, big = str(min(sizes)), str(max(sizes))
        growth = _ratio(analysis[big]["cpu_ms_per_article"], analysis[small]["cpu_ms_per_article"])
        analysis["growth"] = growth
        mid = "100000" if "100000" in analysis else big
        targets.append(_target(f"analysis articles/s at {int(mid):,}", analysis[mid]["articles_per_s"], 1000, at_most=False, unit="/s"))
        targets.append(_target(f"per-article CPU at {int(big):,} ÷ at {int(small):,}", growth, 2.0, at_most=True, unit="×"))
        targets.append(_target(f"peak RSS at {int(big):,}", analysis[big]["peak_rss_mb"], 300, at_most=True, unit="MB"))
    if "alerts" in result:
        alerts = result["alerts"]
        summary["alerts"] = {k: alerts.get(k) for k in ("interval", "median", "p95", "alerted", "verified_events", "error")}
        interval = alerts.get("interval") or 0
        targets.append(_target(f"time to alert p95 (I = {interval:g} s)", alerts.get("p95"), interval + 2, at_most=True, unit="s"))
    if "hostile" in result:
        from bench.hostile import summarize_hostile

        hostile = summary["hostile"] = summarize_hostile(result["hostile"])
        worst_rss = max((m["peak_rss_mb"] for n, m in hostile["memory"].items() if not n.startswith("baseline") and m["peak_rss_mb"]), default=None)
        targets.append(_target("peak RSS of a poll of a 10 MB hostile feed (worst of three)", worst_rss, 300, at_most=True, unit="MB"))
        targets.append(_target("/healthz delay during a feed with 48 KB authors", hostile["healthz"]["worst_ms"], 1000, at_most=True, unit="ms"))
    if "distributed" in result:
        summary["distributed"] = _distributed(result["distributed"], targets)
    return summary


def _distributed(part: dict[str, Any], targets: list[dict[str, Any]]) -> dict[str, Any]:
    if part.get("skipped"):
        return {"skipped": part["skipped"]}
    from bench.distributed import summarize as summarize_distributed

    d = summarize_distributed(part["cycles"])
    d["feeds"], d["in_flight"], d["runs"] = part["feeds"], part["in_flight"], part["runs"]
    targets.append(_target("distributed: 2 workers ÷ 1 worker (steady-cycle throughput)", d["workers2_vs_1"], 1.8, at_most=False, unit="×"))
    targets.append(_target("distributed: 4 workers ÷ 1 worker (steady-cycle throughput)", d["workers4_vs_1"], 3.0, at_most=False, unit="×"))
    targets.append(_target("distributed: 1 worker ÷ one-process install (throughput)", d["worker1_vs_one_process"], 0.9, at_most=False, unit="×"))
    # The same targets for workers of two pool children (the shape compose and Kubernetes run).
    two = d.get("children2") or {}
    if two:
        targets.append(_target("distributed, 2 children a worker: 2 workers ÷ 1 worker", two["workers2_vs_1"], 1.8, at_most=False, unit="×"))
        targets.append(_target("distributed, 2 children a worker: 4 workers ÷ 1 worker", two["workers4_vs_1"], 3.0, at_most=False, unit="×"))
        targets.append(_target("distributed, 2 children a worker: 1 worker ÷ one-process install", two["worker1_vs_one_process"], 0.9, at_most=False, unit="×"))
    # "No slower than today": today's steady cycle over this one's, side by side (≥ 1 = no slower).
    targets.append(_target("one-process steady cycle: before the distributed mode ÷ now (wall)", d["one_process_vs_base"], 1.0, at_most=False, unit="×"))
    return d


DISTRIBUTED_ORDER = (
    "one-process", "base", "workers=1", "workers=2", "workers=4",
    "workers=1, 2 children", "workers=2, 2 children", "workers=4, 2 children",
)


def render_distributed(d: dict[str, Any]) -> list[str]:
    """The throughput table (README "Running on several machines")."""
    if d.get("skipped"):
        return [f"Distributed throughput: not measured: {d['skipped']}"]
    lines = [
        f"Distributed throughput ({d['feeds']:,} feeds, 50 ms per answer, {d['in_flight']} requests in flight per process or worker, "
        f"medians of {d['runs']} side-by-side runs):",
        "",
        "| contender | first cycle: wall s | steady cycle: wall s | feeds/s | of which polling s | CPU s (roles) |",
        "|---|---|---|---|---|---|",
    ]
    for name in DISTRIBUTED_ORDER:
        wall = d["steady_wall"].get(name)
        if wall is None and d["first_wall"].get(name) is None:
            continue
        rate = d["feeds"] / wall if wall else None
        lines.append(
            f"| {name} | {_fmt(d['first_wall'].get(name))} | {_fmt(wall)} | {_fmt(rate, 0)} | "
            f"{_fmt(d['steady_polled_wall'].get(name))} | {_fmt(d['steady_cpu'].get(name))} |"
        )
    lines += [
        "",
        f"Throughput ratios (within each run, then the median): 2 workers ÷ 1: {_fmt(d['workers2_vs_1'])}×; 4 workers ÷ 1: "
        f"{_fmt(d['workers4_vs_1'])}× (polling alone: {_fmt(d['workers2_vs_1_polled'])}× and {_fmt(d['workers4_vs_1_polled'])}×); "
        f"1 worker ÷ one-process: {_fmt(d['worker1_vs_one_process'])}×; one-process before the distributed mode ÷ now: "
        f"{_fmt(d['one_process_vs_base'])}×.",
    ]
    two = d.get("children2") or {}
    if two:
        lines.append(
            f"Workers of 2 pool children (5 in flight each): 2 workers ÷ 1: {_fmt(two['workers2_vs_1'])}×; 4 workers ÷ 1: "
            f"{_fmt(two['workers4_vs_1'])}×; 1 worker ÷ one-process: {_fmt(two['worker1_vs_one_process'])}×."
        )
    return lines


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def render_table(result: dict[str, Any]) -> str:
    s = result["summary"]
    rows: list[tuple[str, ...]] = []
    if s["poll"]:
        p = s["poll"]
        n = p["feeds"]

        def row(label: str, kind: str, key: str) -> tuple[str, ...]:
            values = [p[f"{c}.{kind}.{key}"] for c in PEERS]
            return (label, *(_fmt(v) for v in values), _fmt(_ratio(values[0], values[-1])) + "× floor")

        rows.append(row(f"Poll {n:,} feeds, first cycle: wall s", "first", "wall"))
        rows.append(row("  first cycle: CPU s", "first", "cpu"))
        rows.append(row("Steady cycle (5 % changed): wall s", "steady", "wall"))
        rows.append(row("  steady cycle: CPU s", "steady", "cpu"))
        rows.append(("  peer ÷ ours (steady wall)", "", _fmt(p["rss2email_vs_monitor"], 1) + "×", _fmt(p["changedetection_vs_monitor"], 1) + "×", _fmt(p["naive_vs_monitor"], 1) + "×", "", "target ≥ 20× (rss2email)"))
        rows.append(row("Unchanged cycle: wall s", "unchanged", "wall"))
        rows.append((
            "  CPU ms per unchanged feed", _fmt(p["monitor.cpu_ms_per_unchanged_feed"]), "", "", "", _fmt(p["floor.cpu_ms_per_unchanged_feed"]),
            _fmt(_ratio(p["monitor.cpu_ms_per_unchanged_feed"], p["floor.cpu_ms_per_unchanged_feed"])) + "× floor",
        ))
        parse = result.get("poll", {}).get("parse", {})
        if parse:
            rows.append((
                "Parse one 50-item feed: CPU ms", _fmt(parse.get("monitor_ms")), "", "", _fmt(parse.get("feedparser_ms")), _fmt(parse.get("lxml_ms")),
                _fmt(_ratio(parse.get("monitor_ms"), parse.get("lxml_ms"))) + "× lxml",
            ))
    if s["analysis"]:
        a = s["analysis"]
        for size, figures in a.items():
            if not size.isdigit():
                continue
            rows.append((f"Analysis, store of {int(size):,}: articles/s", _fmt(figures["articles_per_s"], 1), "", "", "", "", ""))
            rows.append(("  CPU ms per article (peak RSS MB)", f"{_fmt(figures['cpu_ms_per_article'])} ({_fmt(figures['peak_rss_mb'], 0)})", "", "", "", "", ""))
            stages = figures.get("stage_ms_per_article") or {}
            if stages:
                rows.append((
                    "  wall ms per article: engine / decide+store", f"{_fmt(stages.get('engine'))} / {_fmt(stages.get('decide_store'))}",
                    "", "", "", "", "",
                ))
        rows.append(("  per-article CPU, largest ÷ smallest store", _fmt(a.get("growth")) + "×", "", "", "", "", "target < 2×"))
    if s["alerts"]:
        al = s["alerts"]
        if al.get("error"):
            rows.append(("Time to alert", "not measured: " + str(al["error"])[:60], "", "", "", "", ""))
        else:
            rows.append((f"Time to alert, I = {al['interval']:g} s: median s", _fmt(al["median"]), "", "", "", "", ""))
            rows.append((f"  p95 s ({al['alerted']}/{al['verified_events']} events)", _fmt(al["p95"]), "", "", "", "", f"target ≤ {al['interval'] + 2:g}"))
    if s.get("hostile"):
        h = s["hostile"]
        for name, m in h["memory"].items():
            rows.append((f"Poll of {name} ({m['mb']:g} MB): peak RSS MB (poll s)", f"{_fmt(m['peak_rss_mb'], 0)} ({_fmt(m['wall'])})", "", "", "", "",
                         f"{_fmt(m['items'], 0)} items read; worst /healthz {_fmt(m['healthz_worst_ms'], 0)} ms"))
        hz = h["healthz"]
        rows.append(("Feed with 48 KB authors: worst /healthz ms (poll s)", f"{_fmt(hz['worst_ms'], 0)} ({_fmt(hz['poll_s'])})", "", "", "", "",
                     f"feedparser alone: {_fmt(hz['feedparser_alone_s'])} s per entry"))
        for name, f in h["fulltext"].items():
            rows.append((f"Article pages, {name}: poll wall s", _fmt(f["wall"]), "", "", "", "", (f["notes"] or "")[:70]))
    header = ("figure", "ours", "rss2email", "changedetection.io", "naive loop", "floor", "ratio")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"] if rows else []
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    if s.get("distributed"):
        lines += render_distributed(s["distributed"])
        lines.append("")
    lines.append("Targets:")
    for t in s["targets"]:
        mark = "MET" if t["met"] else ("not measured" if t["met"] is None else "MISSED")
        cmp = "≤" if t["at_most"] else "≥"
        lines.append(f"- {t['target']}: {_fmt(t['value'])} {t['unit']} (target {cmp} {t['limit']:g} {t['unit']}) — {mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.report [FILE]`: print the table of a saved run again (default latest.json)."""
    import json
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path(__file__).resolve().parent / "results" / "latest.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    result["summary"] = summarize(result)
    print(render_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

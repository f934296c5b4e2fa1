"""The commands that run the monitor: `run`, `demo`, `sources`, `developments`, `status`,
`eval` and `replay`. Thin handlers: the work lives in `monitor.run`, `monitor.ops` and
`monitor.eval`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from monitor.config.holder import ConfigHolder
from monitor.config.load import load_settings
from monitor.config.settings import parse_duration
from monitor.run.app import App, check_slack, open_app, open_store, run_once_and_report


def add_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="poll the sources on schedule and alert Slack (or the console)")
    run.add_argument("--once", action="store_true", help="poll every source once, deliver alerts, and exit (for cron)")
    run.add_argument(
        "--role", choices=("all", "leader", "analysis"), default="all",
        help="all: everything in this process (default); leader or analysis: that role of the distributed mode "
        "(PostgreSQL and a broker; with --once, leader runs one round over the workers and analyses it)",
    )
    run.set_defaults(handler=cmd_run)

    worker = sub.add_parser("worker", help="a fetch worker of the distributed mode (Celery; needs PostgreSQL and a broker)")
    worker.add_argument("--concurrency", type=int, default=1, help="pool children, each with its own event loop and fetcher (default: %(default)s)")
    worker.add_argument("--pool", choices=("prefork", "solo"), default="prefork", help="Celery pool (default: %(default)s)")
    worker.set_defaults(handler=cmd_worker)

    demo = sub.add_parser("demo", help="run the whole flow against local sample feeds, no internet or Slack needed")
    demo.add_argument("--keep", metavar="DIR", help="keep the demo's feeds.yaml and store in DIR (for `monitor digest` afterwards)")
    demo.set_defaults(handler=cmd_demo)

    sources = sub.add_parser("sources", help="list sources, or test one now")
    sources_sub = sources.add_subparsers(dest="sources_command", metavar="ACTION", required=True)
    listing = sources_sub.add_parser("list", help="sources with their health")
    listing.set_defaults(handler=cmd_sources_list)
    test = sources_sub.add_parser("test", help="fetch one source now and show every item with the topics it matched and why (writes nothing)")
    test.add_argument("source_id", metavar="ID")
    test.set_defaults(handler=cmd_sources_test)

    devs = sub.add_parser("developments", help="recent developments with their sources and decision")
    devs.add_argument("--since", default="24h", type=duration_argument, help="how far back, e.g. 12h or 7d (default: %(default)s)")
    devs.add_argument("--json", action="store_true", help="print JSON")
    devs.set_defaults(handler=cmd_developments)

    status = sub.add_parser("status", help="one screen for operators: sources, alerts, silences, config; the distributed roles and backlog")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.set_defaults(handler=cmd_status)

    evaluate = sub.add_parser("eval", help="measure clustering or extraction on a labelled corpus")
    eval_sub = evaluate.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    from monitor.eval import clusters as cluster_eval
    from monitor.eval import pages as eval_pages
    from monitor.eval import stories as eval_stories

    cluster_eval.add_eval_clusters_parser(eval_sub)
    eval_pages.add_eval_pages_parser(eval_sub)
    eval_stories.add_eval_stories_parser(eval_sub)
    cluster_eval.add_replay_parser(sub)


def duration_argument(text: str) -> timedelta:
    """argparse type: '24h' → timedelta, with the config file's message on a bad value."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


async def cmd_run(args: argparse.Namespace) -> int:
    if args.role != "all":
        return await cmd_run_role(args)
    from monitor.run.roles import DistributedError, every_role_here

    async with open_app(args.config) as app:
        try:
            with every_role_here(app.store):
                return await run_every_role(app, once=args.once)
        except DistributedError as exc:
            print(exc, file=sys.stderr)
            return 2


async def run_every_role(app: App, *, once: bool) -> int:
    """`monitor run` without a role: poll, analyse, alert and relay in this process."""
    from alerts.digest import make_digest_job
    from monitor.ops.server import serve_if_enabled
    from monitor.run.retention import make_retention_job
    from monitor.run.scheduler import Service

    await check_slack(app)
    if once:
        return await run_once_and_report(app)
    service = Service(
        app.holder,
        app.runtime,
        relay=app.relay.deliver_due,
        digests=make_digest_job(app.store, app.holder, clock=app.runtime.clock),
        retention=make_retention_job(app.store, app.holder, clock=app.runtime.clock),
    )
    service.on_reload.append(lambda: setattr(app.relay, "settings", app.holder.settings))
    async with serve_if_enabled(app, service):
        await service.run()
    return 0


async def cmd_run_role(args: argparse.Namespace) -> int:
    """A role of the distributed mode (monitor.run.cluster)."""
    from monitor.run import cluster

    if args.role == "leader" and args.once:
        reports, delivered = await cluster.run_once_distributed(args.config)
        return report_once(reports, delivered)
    if args.once:
        print("--once runs with --role leader (one round over the workers) or without a role", file=sys.stderr)
        return 2
    if args.role == "leader":
        return await cluster.run_leader(args.config)
    return await cluster.run_analysis(args.config)


def report_once(reports: list, delivered) -> int:  # noqa: ANN001 - a RelayReport
    from monitor.run.app import format_report

    for report in reports:
        print(format_report(report))
    failed = [r for r in reports if r.outcome == "failed"]
    print(
        f"{len(reports)} polls analysed, {len(failed)} failed, {sum(r.new_articles for r in reports)} new articles, "
        f"{sum(r.alerts for r in reports)} alerts queued; {delivered.sent} delivered, {delivered.failed} failed, "
        f"{delivered.waiting} waiting"
    )
    return 1 if delivered.failed or (reports and len(failed) == len(reports)) else 0


def cmd_worker(args: argparse.Namespace) -> int:
    from monitor.run import cluster

    return cluster.run_worker(args.config, concurrency=args.concurrency, pool=args.pool)


async def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.cli.demo import run_demo

    return await run_demo(keep=args.keep)


def cmd_sources_list(args: argparse.Namespace) -> int:
    from monitor.ops.status import print_sources

    settings = load_settings(args.config)
    store = open_store(settings, args.config)
    try:
        print_sources(settings, store, datetime.now(UTC))
    finally:
        store.close()
    return 0


async def cmd_sources_test(args: argparse.Namespace) -> int:
    from monitor.cli.sourcetest import try_source

    settings = load_settings(args.config)
    return await try_source(settings, args.source_id, out=sys.stdout)


def cmd_developments(args: argparse.Namespace) -> int:
    from monitor.ops.status import print_developments

    settings = load_settings(args.config)
    store = open_store(settings, args.config)
    try:
        print_developments(store, datetime.now(UTC) - args.since, as_json=args.json, settings=settings)
    finally:
        store.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.ops.status import collect_status, render_status

    holder = ConfigHolder.load(args.config)
    store = open_store(holder.settings, args.config)
    now = datetime.now(UTC)
    try:
        status = collect_status(holder, store, now)
    finally:
        store.close()
    print(json.dumps(status, indent=2, default=_json_value) if args.json else render_status(status, now))
    return 0


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)

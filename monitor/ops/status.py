"""What operators read: `monitor status`, `monitor sources list`, `monitor developments`."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import Connection

from alerts.deliver import LOOKUP_META, SCOPES_META
from alerts.render import origin_name, verified_phrase
from alerts.slack import SCOPES
from monitor.clock import format_utc
from monitor.config.holder import ConfigHolder
from monitor.config.settings import Settings
from monitor.config.sources import EffectiveSource, effective_sources
from monitor.ingest.health import bounded_error, failing_reason
from monitor.models import Article, DevelopmentView, SourceHealth
from monitor.store import Store, developments, meta, outbox, silences, sources
from monitor.store import distributed as cluster
from monitor.store.views import load_view
from monitor.story.analysis import JOINED


def _when(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    text = format_utc(value)
    if now is not None:
        seconds = (value - now).total_seconds()
        ago = abs(seconds)
        unit = (
            f"{int(ago // 86400)}d"
            if ago >= 86400
            else f"{int(ago // 3600)}h"
            if ago >= 3600
            else f"{int(ago // 60)}m"
        )
        text += f" (in {unit})" if seconds > 0 else f" ({unit} ago)"
    return text


def collect_status(holder: ConfigHolder, store: Store, now: datetime) -> dict[str, Any]:
    settings = holder.settings
    with store.connect() as conn:
        health = sources.load_all_health(conn)
        alert_counts = outbox.counts_by_state(conn)
        failed = outbox.failed_alerts(conn, 20)
        waiting = outbox.waiting_alerts(conn, now, 20)
        active = silences.list_silences(conn, now)
        running = meta.get_meta(conn, "config")
        relay = meta.get_meta(conn, "lease:relay") or {}
        scopes = meta.get_meta(conn, SCOPES_META)
        lookup = meta.get_meta(conn, LOOKUP_META)
        unconfirmed = outbox.sent_with_warnings(conn)
        roles = _distributed(conn, now) if store.dialect == "postgresql" else None
    return {
        "config": {
            "path": str(holder.path),
            # What the running monitor recorded at start and at each reload (None: never started).
            "running": running,
            "sources": len(settings.sources),
            "topics": len(settings.topics),
        },
        "store": store.describe() if hasattr(store, "describe") else store.dialect,
        "sources": [
            {
                "id": s.id,
                "enabled": s.enabled,
                "last_ok": health[s.id].last_ok if s.id in health else None,
                "consecutive_failures": health[s.id].consecutive_failures if s.id in health else 0,
                "failing": _failing(health.get(s.id), s, settings, now),
                "last_error_kind": (
                    health[s.id].last_error_kind.value  # type: ignore[union-attr]  # checked just below
                    if s.id in health and health[s.id].last_error_kind
                    else None
                ),
                "last_error": bounded_error(health[s.id].last_error) if s.id in health else "",
                "next_run": health[s.id].next_due if s.id in health else None,
            }
            for s in effective_sources(settings, include_disabled=True)
        ],
        "alerts": {
            "by_state": alert_counts,
            # Which process delivers (the relay lease); empty when none holds it.
            "relay": {"holder": relay.get("owner", ""), "until": relay.get("expires")} if relay.get("owner") else None,
            "failed": [
                {"id": a.id, "channel": a.channel, "kind": a.kind.value, "error": bounded_error(a.last_error)}
                for a in failed
            ],
            # Why each waits is the last clause of its reason (held, quiet hours) or its last error.
            "waiting": [
                {
                    "id": a.id,
                    "channel": a.channel,
                    "kind": a.kind.value,
                    "until": a.not_before.isoformat() if a.not_before else None,
                    "why": a.last_error or a.payload.reason.rsplit("; ", 1)[-1],
                }
                for a in waiting
            ],
        },
        "slack": {
            # What auth.test said at the last start, and a look-up Slack refused since (None: none).
            "scopes": scopes,
            "lookup": lookup,
            "warnings": [
                {"id": a.id, "channel": a.channel, "kind": a.kind.value, "warnings": list(a.delivery.warnings)}
                for a in unconfirmed
            ],
        },
        "silences": [
            {
                "id": s.id,
                "matcher": s.matcher,
                "value": s.value,
                "reason": s.reason,
                "expires": s.expires,
            }
            for s in active
        ],
        # The distributed mode's roles and backlog; None on one process (SQLite, or a
        # PostgreSQL store no distributed role ever used): there `monitor run` is every role.
        "distributed": roles,
    }


# Roles every distributed deployment has, listed even before any process recorded itself.
EXPECTED_ROLES = (cluster.LEADER_LOCK, cluster.owner_lock(0))
RECENT = timedelta(minutes=5)


def _one_process(roles: list[cluster.RoleState]) -> bool:
    """Nobody holds a role's lock, or a `monitor run` holds them all (it takes every role's
    lock without recording itself): either way this store is run by one process."""
    return not any(r.locked for r in roles) or all(r.locked for r in roles)

def _distributed(conn: Connection, now: datetime) -> dict[str, Any] | None:
    """Each role's recorded holder and whether its advisory lock is held right now (a holder
    whose lock nobody holds is stale: that process is gone), and the backlog."""
    backlog = cluster.backlog(conn, now, recent=RECENT)
    roles = sorted(cluster.role_states(conn, EXPECTED_ROLES), key=lambda r: (r.role != cluster.LEADER_LOCK, r.role))
    if backlog.empty and not any(r.holder for r in roles) and _one_process(roles):
        return None
    return {
        "config_version": backlog.config_version,
        "config_published": backlog.config_published,
        "roles": [
            {
                "role": r.role,
                "state": "held" if r.locked and r.holder else "taking" if r.locked else "stale" if r.holder else "vacant",
                "holder": r.holder or None,
                "since": r.since,
                "heartbeat": r.heartbeat,
                "epoch": r.epoch,
                "lock": (
                    {"session_pid": r.session.pid, "client": r.session.client, "connected": r.session.connected}
                    if r.session is not None
                    else None
                ),
                "standbys": [{"session_pid": s.pid, "client": s.client, "connected": s.connected} for s in r.standbys],
            }
            for r in roles
        ],
        "backlog": {
            "scheduled": backlog.scheduled,
            "due": backlog.due,
            "oldest_due_seconds": round(backlog.oldest_due_seconds, 1),
            "claimed": backlog.claimed,
            "claims_expired": backlog.claims_expired,
            "intake_waiting": backlog.intake_waiting,
            "intake_lag_seconds": round(backlog.intake_lag_seconds, 1),
            "polls_last_5m": backlog.polls_recent,
            "last_poll": backlog.last_poll,
        },
    }


def _running(running: dict[str, Any] | None, dist: dict[str, Any] | None = None) -> str:
    if not running and dist and dist.get("config_version") is not None:
        return f"the distributed leader publishes it to the roles (configuration version {dist['config_version']}, below)"
    if not running:
        return "no monitor has run on this store yet"
    loaded = _when(datetime.fromisoformat(running["loaded_at"]))
    verdict = "ok" if running.get("last_reload_ok", True) else "REJECTED, previous file still in force"
    return f"in force since {loaded}; last load: {verdict} ({running.get('last_reload', '')})"


def render_status(status: dict[str, Any], now: datetime | None = None) -> str:
    """The status as text; with `now`, the distributed roles' times also say how long ago."""
    lines = [
        f"Config   {status['config']['path']} — {_running(status['config']['running'], status.get('distributed'))}",
        f"Store    {status['store']}",
        "",
        "Sources",
    ]
    for s in status["sources"]:
        state = _state(s["enabled"], s["failing"], s["consecutive_failures"])
        error = (
            f" · {s['consecutive_failures']} failures, last: {s['last_error_kind']} — {s['last_error']}"
            if s["consecutive_failures"]
            else ""
        )
        lines.append(
            f"  {s['id']:<28} {state:<9} last ok {_when(s['last_ok'])} · next {_when(s['next_run'])}{error}"
        )
    counts = status["alerts"]["by_state"]
    lines += [
        "",
        "Alerts   "
        + (", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none yet"),
    ]
    relay = status["alerts"].get("relay")
    if relay:
        lines.append(f"  delivered by {relay['holder']} (lease until {relay['until']})")
    for failed in status["alerts"]["failed"]:
        lines.append(
            f"  failed #{failed['id']} {failed['kind']} → {failed['channel']}: {failed['error']}"
        )
    for wait in status["alerts"]["waiting"]:
        lines.append(f"  waiting #{wait['id']} {wait['kind']} → {wait['channel']} until {wait['until']}: {wait['why']}")
    lines += _slack_lines(status.get("slack") or {})
    lines += _role_lines(status.get("distributed"), now)
    lines += ["", "Silences " + ("none active" if not status["silences"] else "")]
    for s in status["silences"]:
        lines.append(
            f"  #{s['id']} {s['matcher']}={s['value']!r} until {_when(s['expires'])}: {s['reason']}"
        )
    return "\n".join(lines)


def _role_lines(dist: dict[str, Any] | None, now: datetime | None) -> list[str]:
    """'Roles' and 'Backlog' of the distributed mode; nothing on one process."""
    if not dist:
        return []
    version = dist.get("config_version")
    head = (
        f"configuration version {version}, published {_at(_moment(dist.get('config_published')), now)}"
        if version is not None
        else "no configuration published yet (the leader publishes feeds.yaml when it takes office)"
    )
    lines = ["", f"Roles    {head}"]
    for role in dist["roles"]:
        lines.append(f"  {role['role']:<12} {_role_state(role, now)}")
        lines.append(f"  {'':<12} {_standbys(role.get('standbys') or [])}")
    b = dist["backlog"]
    expired = f" ({b['claims_expired']} expired: the sweeper sends them again)" if b["claims_expired"] else ""
    last = f" (last {_ago(_moment(b['last_poll']), now)})" if b["last_poll"] else ""
    lines += [
        f"Backlog  sources: {b['scheduled']} scheduled, {b['due']} due and not claimed"
        + (f" (oldest due {_seconds(b['oldest_due_seconds'])} ago)" if b["due"] else "")
        + f", {b['claimed']} being polled{expired}",
        f"         intake: {b['intake_waiting']} polls waiting for analysis"
        + (f" (oldest {_seconds(b['intake_lag_seconds'])})" if b["intake_waiting"] else "")
        + f"; {b['polls_last_5m']} polls committed by workers in the last 5 minutes{last}",
    ]
    return lines


def _role_state(role: dict[str, Any], now: datetime | None) -> str:
    """One role: held (by whom, since when, epoch, heartbeat, the lock's session), stale (a
    recorded holder whose lock nobody holds), held but not recorded yet, or vacant."""
    state, lock = role["state"], role["lock"]
    session = f" · lock session {lock['session_pid']} from {lock['client']}" if lock is not None else ""
    since = f"since {_at(_moment(role['since']), now)}, epoch {role['epoch']}"
    if state == "held":
        beat = _moment(role["heartbeat"])
        heartbeat = f", heartbeat {_ago(beat, now)}" if beat is not None and beat != _moment(role["since"]) else ""
        return f"held by {role['holder']} {since}{heartbeat}{session}"
    if state == "stale":
        recorded = _moment(role["since"])
        ago = f", {_ago(recorded, now)}" if now is not None else ""
        return (
            f"STALE: {role['holder']} holds no lock (holder since {_at(recorded, None)}{ago}; epoch {role['epoch']}): "
            "that process is gone, and no standby took over (a waiting one would within a second)"
        )
    if state == "taking":
        return f"held, holder not recorded yet{session}"
    return "nobody holds it (not started?)"


def _standbys(standbys: list[dict[str, Any]]) -> str:
    """The processes waiting to take a role (each holds the role's shared standby lock)."""
    if not standbys:
        return "no standby waiting"
    sessions = ", ".join(f"session {s['session_pid']} from {s['client']}" for s in standbys)
    return f"{len(standbys)} standby waiting ({sessions})" if len(standbys) == 1 else f"{len(standbys)} standbys waiting ({sessions})"


def _at(moment: datetime | None, now: datetime | None) -> str:
    """"2026-03-10 12:00 UTC (25s ago)"; without `now`, the time alone."""
    if moment is None:
        return "never"
    return format_utc(moment) + (f" ({_ago(moment, now)})" if now is not None else "")


def _moment(value: datetime | str | None) -> datetime | None:
    """A time from `collect_status` (a datetime) or from its JSON (an ISO string)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h" if seconds < 172800 else f"{seconds // 86400}d"


def _ago(moment: datetime | None, now: datetime | None) -> str:
    if moment is None:
        return "never"
    if now is None:
        return format_utc(moment, seconds=True)
    return f"{_seconds(max(0.0, (now - moment).total_seconds()))} ago"


def _slack_lines(slack: dict[str, Any]) -> list[str]:
    """'Slack' section: missing scopes (once), and sent alerts whose delivery is in doubt."""
    scopes, lookup, warnings = slack.get("scopes"), slack.get("lookup"), slack.get("warnings") or []
    problems = []
    if isinstance(scopes, dict) and scopes.get("error"):
        problems.append(f"Slack refused the bot token at start ({scopes['error']}): nothing can be delivered")
    elif isinstance(scopes, dict):
        problems += [f"the Slack app lacks {s}: {SCOPES.get(s, '')}" for s in scopes.get("missing") or []]
    if isinstance(lookup, dict):
        problems.append(
            f"cannot look for a message an interrupted attempt may have posted ({lookup.get('reason')}, since "
            f"{lookup.get('since', '?')[:16]}): alerts are still posted, but one cut off mid-post is marked unconfirmed"
        )
    if not problems and not warnings:
        return []
    lines = ["", "Slack    " + ("scopes ok" if not problems else "WARNING")]
    lines += [f"  {p}" for p in dict.fromkeys(problems)]
    if problems:
        lines.append("  fix: grant chat:write, channels:read, channels:history (groups:history for private channels), reinstall the app, restart")
    for row in warnings:
        for text in row["warnings"]:
            lines.append(f"  #{row['id']} {row['kind']} → {row['channel']}: {text}")
    return lines


def _state(enabled: bool, failing: str | None, failures: int) -> str:
    """disabled, FAILING (the health-alert rule), retrying (failed, not yet failing) or ok."""
    if not enabled:
        return "disabled"
    return "FAILING" if failing else "retrying" if failures else "ok"


def _failing(health: SourceHealth | None, source: EffectiveSource, settings: Settings, now: datetime) -> str | None:
    """Why the source counts as failing (the health-alert rule), or None."""
    if health is None:
        return None
    return failing_reason(health, expected_interval=source.interval, now=now, settings=settings.health)


def print_sources(
    settings: Settings, store: Store, now: datetime, out: TextIO = sys.stdout
) -> None:
    with store.connect() as conn:
        health = sources.load_all_health(conn)
    for s in effective_sources(settings, include_disabled=True):
        h = health.get(s.id)
        state = "new" if h is None and s.enabled else _state(s.enabled, _failing(h, s, settings, now), h.consecutive_failures if h else 0)
        print(f"{s.id:<28} {s.kind:<5} {s.tier:<10} every {s.interval} {state}", file=out)


def describe_view(view: DevelopmentView) -> list[str]:
    """A development as plain text: headline, decision, impact, sentiment, sources by origin, timeline."""
    dev, decision = view.development, view.decision
    verified = verified_phrase(view)
    impact = f"impact {dev.impact.score}/10" if dev.impact else "impact ?"
    lines = [
        f"#{dev.id} {dev.headline}",
        f"   {verified} · {impact} · {dev.sentiment.value if dev.sentiment else 'neutral'} · {dev.topic}",
    ]
    lines.append(f"   why: {decision.reason}")
    if dev.impact and dev.impact.reasons:
        lines.append("   impact: " + "; ".join(dev.impact.reasons[:4]))
    by_id = {a.id: a for a in view.articles}
    for origin in decision.origins:
        copies = (
            f" (+{origin.reprints} reprint{'s' if origin.reprints != 1 else ''})"
            if origin.reprints
            else ""
        )
        members = [by_id[i] for i in origin.article_ids if i in by_id]
        lines.append(f"   • {origin_name(origin, members)}{copies}")
        for article_id in origin.article_ids:
            article = by_id.get(article_id)
            if article is not None:
                lines.append(f"       {article.outlet}: {article.title} <{article.url}>")
                joined = joined_by_similarity(article)
                if joined:  # the topic rules did not match it: say how it came in
                    lines.append(f"         (no topic rule matched it; {joined})")
    if view.timeline:
        lines.append("   timeline:")
        for entry in view.timeline:
            lines.append(f"       {entry.first_seen:%Y-%m-%d} {entry.headline}")
    return lines


def joined_by_similarity(article: Article) -> str:
    """The reason an article the rules missed is part of a development ("joined development
    12 ..."), or "" when a topic rule matched it."""
    return next((m.explanation for m in article.topics if m.explanation.startswith(JOINED)), "")


def print_developments(
    store: Store,
    since: datetime,
    *,
    out: TextIO = sys.stdout,
    as_json: bool = False,
    settings: Settings | None = None,
) -> None:
    with store.connect() as conn:
        found = developments.developments_seen_since(conn, since)
        views = [
            v
            for v in (load_view(conn, d.id, settings) for d in found if d.id is not None)
            if v is not None
        ]
    views.sort(
        key=lambda v: (
            v.decision.independent >= v.decision.required,
            v.development.impact.score if v.development.impact else 0,
        ),
        reverse=True,
    )
    if as_json:
        json.dump([_view_json(v) for v in views], out, indent=2, default=str)
        out.write("\n")
        return
    if not views:
        print("No developments in this period.", file=out)
    for view in views:
        print("\n".join(describe_view(view)), file=out)


def _view_json(view: DevelopmentView) -> dict[str, Any]:
    dev = view.development
    return {
        "id": dev.id,
        "headline": dev.headline,
        "topic": dev.topic,
        "state": dev.state.value,
        "independent": view.decision.independent,
        "reason": view.decision.reason,
        "impact": dev.impact.score if dev.impact else None,
        "impact_reasons": list(dev.impact.reasons) if dev.impact else [],
        "sentiment": dev.sentiment.value if dev.sentiment else None,
        "first_seen": dev.first_seen,
        "last_seen": dev.last_seen,
        "origins": [
            {"label": o.label, "reprints": o.reprints, "outlets": list(o.outlets)}
            for o in view.decision.origins
        ],
        "timeline": [
            {"id": e.development_id, "headline": e.headline, "first_seen": e.first_seen}
            for e in view.timeline
        ],
        "articles": [
            {
                "id": a.id,
                "outlet": a.outlet,
                "title": a.title,
                "url": a.url,
                "published": a.published,
                "relevant_because": "; ".join(m.explanation for m in a.topics),
            }
            for a in view.articles
        ],
    }

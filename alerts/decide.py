"""The decide stage: from a development's new state to the alert rows to write.

Pure: the development, what corroborate concluded, what was known before this cycle, the
routes, the active silences and the clock come in; `Alert` values come out, each with a typed
payload (`NewPayload`, `UpdatePayload`, `MergePayload`) whose `reason` says why it exists. The
outbox stores them in the same transaction as the state change, and its unique `dedup_key`
makes every row idempotent:

- `dev:<id>:<channel>`                     one parent (NEW) per development per channel, ever;
- `dev:<id>:<channel>:upd:<independent>`   one UPDATE per independent-source count;
- `dev:<id>:<channel>:upd:<n>:material`    impact crossed the on-call threshold without a new source;
- `merge:<from>:<into>:<channel>`          one reconciliation per merge per channel.

A first alert can be *held* (`Hold`): when a similar development is forming in the same
minutes, the parent waits a little (`not_before`), because a bridging article usually merges
the two and then the store folds the held row into the other development's message.
Quiet hours delay non-urgent rows (`not_before` = end of the quiet hours); urgent rows
(impact ≥ the route's on-call threshold) go now. Silenced rows are kept with state SILENCED
and the silence in the payload, so nothing is lost and `monitor status` can show them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from alerts.routing import (
    in_quiet_hours,
    matching_silence,
    quiet_hours_end,
    routes_for,
)
from monitor.config.settings import Route, format_duration
from monitor.models import (
    ActiveSilence,
    Alert,
    AlertKind,
    AlertState,
    Decision,
    Development,
    DevelopmentState,
    MergePayload,
    NewPayload,
    SilenceNote,
    UpdatePayload,
)

# The payloads decide writes; `_settle` keeps the class it was given.
Decided = TypeVar("Decided", NewPayload, UpdatePayload, MergePayload)


@dataclass(frozen=True, slots=True)
class PreviousState:
    """What the store knew about the development before this cycle."""

    state: DevelopmentState
    independent: int
    impact: int | None = None

    @classmethod
    def from_development(cls, dev: Development | None) -> PreviousState | None:
        """The state of a development as stored before this cycle (None when new)."""
        if dev is None:
            return None
        return cls(dev.state, dev.independent, dev.impact.score if dev.impact is not None else None)


@dataclass(frozen=True, slots=True)
class Hold:
    """Why and until when a development's first message waits."""

    until: datetime
    reason: str


def hold_for(forming: tuple[int, float] | None, hold: timedelta, now: datetime) -> Hold | None:
    """Hold the first alert while a similar development forms (the engine's
    `ClusterIndex.forming_sibling`: its id and similarity), for `cluster.alert_hold`."""
    if forming is None or hold <= timedelta(0):
        return None
    sibling, similarity = forming
    return Hold(
        now + hold,
        f"held {format_duration(hold)}: development {sibling} (similarity {similarity:.2f}) is forming "
        "in the same minutes and may be the same story",
    )


@dataclass(frozen=True, slots=True)
class Target:
    """One channel a development goes to, and the route that sent it there."""

    channel: str
    route: Route
    oncall: bool  # the on-call channel of the route (urgent by definition)


@dataclass(frozen=True, slots=True)
class _Context:
    dev: Development
    decision: Decision
    previous: PreviousState | None
    silences: Sequence[ActiveSilence]
    now: datetime
    new_article_ids: tuple[int, ...]
    source_ids: tuple[str, ...]
    routes: tuple[Route, ...]
    hold: Hold | None = None


def decide(
    dev: Development,
    decision: Decision,
    previous: PreviousState | None,
    routes: Sequence[Route],
    silences: Sequence[ActiveSilence],
    *,
    now: datetime,
    new_article_ids: Sequence[int] = (),
    merged_from: Sequence[int] = (),
    source_ids: Sequence[str] = (),
    posted: Collection[str] | None = None,
    hold: Hold | None = None,
) -> list[Alert]:
    """The alert rows this cycle produces for `dev` (empty while it is single-source).

    `source_ids` are the sources of the articles that arrived this cycle; they only matter
    for `--source` silences. `posted` are the channels that already have a parent row for
    this development (from the outbox); without it they are inferred from `previous`, which
    misses developments corroborated while too old to alert and routes added by a reload.
    `hold` delays the parent (NEW) rows, never updates of a message people already have.
    """
    if dev.id is None or decision.state is not DevelopmentState.CORROBORATED:
        return []
    topic_routes = routes_for(dev.topic, routes)
    ctx = _Context(dev, decision, previous, silences, now, tuple(new_article_ids), tuple(source_ids), tuple(topic_routes), hold)
    now_targets = targets(topic_routes, _impact(dev))
    before = _previous_targets(topic_routes, previous) if posted is None else _posted_targets(topic_routes, posted)
    alerts: list[Alert] = []
    for target in now_targets:
        if target.channel in before:
            continue
        alerts.append(_new(ctx, target, crossed=bool(before) and target.oncall))
    alerts += _updates(ctx, before)
    for from_id in merged_from:
        alerts += [_merge(ctx, target, from_id) for target in _union(before, now_targets)]
    return _unique(alerts)


def targets(routes: Sequence[Route], impact: int) -> list[Target]:
    """The channels for a development with this impact: each route's channel, plus its
    on-call channel when impact ≥ the route's threshold. A channel appears once."""
    seen: dict[str, Target] = {}
    for route in routes:
        seen.setdefault(route.channel, Target(route.channel, route, oncall=False))
        if route.oncall_channel and impact >= route.oncall_threshold:
            # The on-call flavour wins when one channel is both: urgency must not be lost.
            seen[route.oncall_channel] = Target(route.oncall_channel, route, oncall=True)
    return list(seen.values())


def _impact(dev: Development) -> int:
    return dev.impact.score if dev.impact is not None else 0


def _previous_targets(routes: Sequence[Route], previous: PreviousState | None) -> dict[str, Target]:
    """Channels that already have a parent message (or a silenced one) from earlier cycles."""
    if previous is None or previous.state is not DevelopmentState.CORROBORATED:
        return {}
    return {t.channel: t for t in targets(routes, previous.impact or 0)}


def _posted_targets(routes: Sequence[Route], posted: Collection[str]) -> dict[str, Target]:
    """The posted channels that are still routed (any impact), as targets."""
    routed = {t.channel: t for t in targets(routes, 10)}
    return {channel: routed[channel] for channel in posted if channel in routed}


def _union(before: dict[str, Target], now_targets: Sequence[Target]) -> list[Target]:
    merged = dict(before)
    for target in now_targets:
        merged.setdefault(target.channel, target)
    return list(merged.values())


def _new(ctx: _Context, target: Target, *, crossed: bool) -> Alert:
    dev, decision = ctx.dev, ctx.decision
    if crossed:
        why = f"impact {_impact(dev)} reached the on-call threshold {target.route.oncall_threshold}"
    elif target.oncall:
        why = f"corroborated ({decision.reason}); impact {_impact(dev)} ≥ on-call threshold {target.route.oncall_threshold}"
    else:
        why = f"corroborated: {decision.reason}"
    payload = NewPayload(
        reason=why,
        independent=decision.independent,
        impact=_impact(dev),
        oncall=target.oncall,
        article_ids=ctx.new_article_ids,
        mention=(target.route.mention or "") if target.oncall else "",  # operator-configured, never from a feed
    )
    payload, state, not_before = _settle(ctx, target, payload)
    hold = ctx.hold
    if hold is not None and state is AlertState.PENDING and hold.until > (not_before or ctx.now):
        not_before = hold.until
        payload = replace(payload, reason=f"{payload.reason}; {hold.reason}", held_until=hold.until)
    return _row(ctx, AlertKind.NEW, target, f"dev:{dev.id}:{target.channel}", payload, state, not_before)


def _updates(ctx: _Context, before: dict[str, Target]) -> list[Alert]:
    """UPDATE rows for the channels that already have a parent: on a new independent source,
    or when impact crossed an on-call threshold (`material`: the relay broadcasts the reply)."""
    previous = ctx.previous
    if previous is None or not before:
        return []
    grew = ctx.decision.independent > previous.independent
    material = _crossed(ctx.routes, previous, _impact(ctx.dev))
    if not grew and not material:
        return []
    key_suffix = f"upd:{ctx.decision.independent}" + ("" if grew else ":material")
    return [_update(ctx, target, key_suffix, grew=grew, material=material) for target in before.values()]


def _crossed(routes: Sequence[Route], previous: PreviousState, impact: int) -> bool:
    """Whether impact rose across any route's on-call threshold (even one without an on-call
    channel: the topic channel's thread still deserves a broadcast)."""
    old = previous.impact or 0
    return any(old < route.oncall_threshold <= impact for route in routes)


def _update(ctx: _Context, target: Target, key_suffix: str, *, grew: bool, material: bool) -> Alert:
    previous = ctx.previous
    assert previous is not None  # _updates only calls this with a previous state
    parts = []
    if grew:
        parts.append(f"independent sources {previous.independent} → {ctx.decision.independent}: {ctx.decision.reason}")
    if material:
        parts.append(f"material: impact {previous.impact or 0} → {_impact(ctx.dev)} crossed the on-call threshold {target.route.oncall_threshold}")
    payload = UpdatePayload(
        reason="; ".join(parts),
        new_article_ids=ctx.new_article_ids,
        independent=ctx.decision.independent,
        previous_independent=previous.independent,
        impact=_impact(ctx.dev),
        previous_impact=previous.impact,
        material=material,
        oncall=target.oncall,
    )
    key = f"dev:{ctx.dev.id}:{target.channel}:{key_suffix}"
    return _row(ctx, AlertKind.UPDATE, target, key, *_settle(ctx, target, payload))


def _merge(ctx: _Context, target: Target, from_id: int) -> Alert:
    payload = MergePayload(reason=f"development {from_id} merged into {ctx.dev.id}", from_id=from_id, into_id=ctx.dev.id)
    key = f"merge:{from_id}:{ctx.dev.id}:{target.channel}"
    return _row(ctx, AlertKind.MERGE, target, key, *_settle(ctx, target, payload))


def _settle(ctx: _Context, target: Target, payload: Decided) -> tuple[Decided, AlertState, datetime | None]:
    """Apply silences and quiet hours: the payload saying so, the row's state and its not_before."""
    silence = matching_silence(
        ctx.silences,
        topic=ctx.dev.topic,
        development_id=ctx.dev.id,
        source_ids=ctx.source_ids,
        headline=ctx.dev.headline,
    )
    if silence is not None:
        note = SilenceNote(id=silence.id, matcher=silence.matcher, value=silence.value, reason=silence.reason)
        silenced = replace(payload, silence=note, reason=f"{payload.reason}; silenced by {silence.describe()}")
        return silenced, AlertState.SILENCED, None
    urgent = target.oncall or _impact(ctx.dev) >= target.route.oncall_threshold
    payload = replace(payload, urgent=urgent)
    if urgent or not in_quiet_hours(target.route, ctx.now):
        return payload, AlertState.PENDING, None
    until = quiet_hours_end(target.route, ctx.now)
    return replace(payload, reason=f"{payload.reason}; quiet hours until {until.isoformat()}"), AlertState.PENDING, until


def _row(
    ctx: _Context,
    kind: AlertKind,
    target: Target,
    key: str,
    payload: NewPayload | UpdatePayload | MergePayload,
    state: AlertState,
    not_before: datetime | None,
) -> Alert:
    return Alert(
        kind=kind,
        channel=target.channel,
        dedup_key=key,
        development_id=ctx.dev.id,
        payload=payload,
        state=state,
        not_before=not_before,
        created=ctx.now,
    )


def _unique(alerts: list[Alert]) -> list[Alert]:
    """Drop rows whose dedup key already appears (two routes of one topic to one channel)."""
    seen: set[str] = set()
    out = []
    for alert in alerts:
        if alert.dedup_key not in seen:
            seen.add(alert.dedup_key)
            out.append(alert)
    return out

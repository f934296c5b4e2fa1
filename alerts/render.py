"""Development → Slack Block Kit message. Pure: no clock, no network, no store.

Every string that came from a feed goes through `alerts.escape` (escape + clip) and lands in
`plain_text` or in `mrkdwn` with `verbatim: true`. Slack's limits are met by truncating with
an ellipsis, never by raising: 50 blocks, 3000 characters per text, 150 per header, 10
context elements, 2000 per field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from alerts.escape import ELLIPSIS, clip, escape, escape_clipped, link
from monitor.models import Article, DevelopmentView, Origin

log = logging.getLogger(__name__)

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_FIELD = 2000
MAX_FALLBACK = 3000

# Room kept for the blocks that follow the source list (timeline, context).
_SOURCE_SECTIONS_MAX = 10
_TIMELINE_ENTRIES_MAX = 15
_TITLE_IN_LIST = 200
_LEAD_MAX = 1500

# The only mention forms an operator may configure; anything else is shown, not parsed.
_MENTION = re.compile(r"^<(!subteam\^[A-Z0-9]+|@[UW][A-Z0-9]+|!here|!channel)>$")

Block = dict[str, Any]


class Message(NamedTuple):
    """What chat.postMessage / chat.update take: notification fallback text and blocks."""

    text: str
    blocks: list[Block]


# --- small block builders -------------------------------------------------------------


def header(text: str) -> Block:
    """Header block from already-plain text (escaped and clipped here)."""
    return {"type": "header", "text": {"type": "plain_text", "text": escape_clipped(text, MAX_HEADER) or ELLIPSIS}}


def mrkdwn(text: str) -> Block:
    """Section from text that is already safe mrkdwn; only clipped (never mid-entity)."""
    return {"type": "section", "text": _mrkdwn_object(text, MAX_TEXT)}


def context(elements: Iterable[str]) -> Block:
    """Context block from safe mrkdwn strings; at most 10 elements, extras folded into the last."""
    items = [e for e in elements if e]
    if len(items) > MAX_CONTEXT_ELEMENTS:
        items = items[: MAX_CONTEXT_ELEMENTS - 1] + [" · ".join(items[MAX_CONTEXT_ELEMENTS - 1 :])]
    return {"type": "context", "elements": [_mrkdwn_object(e, MAX_TEXT) for e in items or [ELLIPSIS]]}


def divider() -> Block:
    return {"type": "divider"}


def _mrkdwn_object(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip_markup(text, limit) or ELLIPSIS, "verbatim": True}


def clip_markup(text: str, limit: int) -> str:
    """Clip safe mrkdwn without cutting an entity (`&amp;`) or a link (`<url|label>`) in half."""
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    head = text[:cut]
    # Drop a half entity: '&' with no ';' after it in the kept part.
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    # Drop a half link: a '<' whose '>' was cut off.
    lt = head.rfind("<")
    if lt != -1 and ">" not in head[lt:]:
        head = head[:lt]
    return head.rstrip() + ELLIPSIS


def pack_lines(lines: Sequence[str], *, title: str, max_sections: int, limit: int = MAX_TEXT) -> list[Block]:
    """Put lines into as few sections as fit `limit`; say how many were left out, if any."""
    sections: list[str] = []
    current = title
    shown = 0
    for line in lines:
        line = clip_markup(line, limit - len(title) - 1)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            shown += 1
            continue
        if len(sections) + 1 >= max_sections:
            break
        sections.append(current)
        current = line
        shown += 1
    left = len(lines) - shown
    if left:
        more = f"\n_…and {left} more_"
        current = current if len(current) + len(more) <= limit else clip_markup(current, limit - len(more))
        current += more
    if current:
        sections.append(current)
    return [mrkdwn(s) for s in sections]


def fit_blocks(blocks: list[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """Keep at most `limit` blocks; the last one says how many were dropped."""
    if len(blocks) <= limit:
        return blocks
    dropped = len(blocks) - (limit - 1)
    return blocks[: limit - 1] + [context([f"…{dropped} more blocks not shown"])]


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def safe_mention(mention: str | None) -> str:
    """An operator-configured mention as markup if it has a known form, else shown as text."""
    if not mention:
        return ""
    if _MENTION.match(mention.strip()):
        return mention.strip()
    log.warning("mention %r is not a Slack mention (<!subteam^ID>, <@U…>, <!here>); shown as text", mention)
    return escape(mention)


# --- development message --------------------------------------------------------------


def render_development(
    view: DevelopmentView,
    *,
    topic_name: str,
    now: datetime,
    mention: str | None = None,
    updated: bool = False,
    thread_link: str | None = None,
) -> Message:
    """The parent message for a development (also what chat.update sends later)."""
    dev = view.development
    blocks: list[Block] = [header(dev.headline or "Untitled development")]
    summary = summary_line(view, topic_name)
    ping = safe_mention(mention)
    blocks.append(mrkdwn(f"{ping} {summary}" if ping else summary))
    if dev.lead.strip():
        blocks.append(mrkdwn(escape_clipped(dev.lead.strip(), _LEAD_MAX)))
    blocks.append(divider())
    blocks.extend(pack_lines(source_lines(view), title="*Sources*", max_sections=_SOURCE_SECTIONS_MAX))
    timeline = timeline_lines(view)
    if timeline:
        blocks.extend(pack_lines(timeline, title="*Earlier in this story*", max_sections=3))
    blocks.append(context(context_elements(view, now=now, updated=updated, thread_link=thread_link)))
    text = f"{ping} " if ping else ""
    text += escape_clipped(dev.headline, 300) + " — " + summary
    return Message(clip_markup(text, MAX_FALLBACK), fit_blocks(blocks))


def verified_phrase(view: DevelopmentView) -> str:
    """'Verified by 3 sources', 'Unverified — 1 source' or '2 sources (needs 3)': one wording
    for alerts, digests and the command line, judged against the topic's min_sources."""
    decision = view.decision
    count = decision.independent or view.development.independent
    if count >= decision.required:
        return f"Verified by {count} sources"
    if count <= 1:
        return "Unverified — 1 source"
    return f"{count} sources (needs {decision.required})"


def summary_line(view: DevelopmentView, topic_name: str) -> str:
    """'*Verified by 3 sources* · Impact 8/10 — reasons · negative · Topic' (safe mrkdwn)."""
    dev = view.development
    parts = [f"*{verified_phrase(view)}*"]
    if dev.impact is not None:
        impact = f"Impact {dev.impact.score}/10"
        if dev.impact.reasons:
            impact += " — " + escape_clipped(", ".join(dev.impact.reasons[:3]), 300)
        parts.append(impact)
    if dev.sentiment is not None:
        parts.append(escape(dev.sentiment.value))
    parts.append(escape_clipped(topic_name or dev.topic, 200))
    return " · ".join(parts)


def origins_of(view: DevelopmentView) -> tuple[Origin, ...]:
    """The decision's origins, or one per article origin/outlet when the decision has none."""
    if view.decision.origins:
        return view.decision.origins
    grouped: dict[str, list[Article]] = {}
    for article in view.articles:
        grouped.setdefault(article.origin or article.outlet, []).append(article)
    return tuple(
        Origin(
            key=key,
            label=items[0].outlet,
            article_ids=tuple(a.id for a in items if a.id is not None),
            outlets=tuple(a.outlet for a in items),
            reprints=len(items) - 1,
        )
        for key, items in grouped.items()
    )


def source_lines(view: DevelopmentView) -> list[str]:
    """One line per independent origin, its reprints on a second line."""
    by_id = {a.id: a for a in view.articles if a.id is not None}
    lines = []
    for origin in origins_of(view):
        articles = [by_id[i] for i in origin.article_ids if i in by_id]
        first = articles[0] if articles else None
        label = link(first.url, origin.label) if first else escape_clipped(origin.label, 200)
        line = f"• {label}"
        if origin.reprints:
            line += f" (+{origin.reprints} reprint{'s' if origin.reprints != 1 else ''})"
        if first is not None and first.title:
            line += ": " + escape_clipped(first.title, _TITLE_IN_LIST)
        lines.append(line + _copies_line(origin, first, articles[1:]))
    return lines


def _copies_line(origin: Origin, first: Article | None, others: list[Article]) -> str:
    """'↳ reprinted by: A, B' and 'more from Reuters: …' under an origin, or ''."""
    own = first.outlet if first else origin.label
    reprints = [link(a.url, a.outlet, limit=80) for a in others if a.outlet != own]
    more = [link(a.url, a.title or a.outlet, limit=80) for a in others if a.outlet == own]
    if not others and len(origin.outlets) > 1:
        reprints = [escape_clipped(o, 80) for o in origin.outlets[1:]]
    parts = []
    if reprints:
        parts.append("reprinted by: " + ", ".join(reprints))
    if more:
        parts.append(f"more from {escape_clipped(own, 80)}: " + ", ".join(more))
    return "".join("\n      ↳ " + clip_markup(p, 1500) for p in parts)


def timeline_lines(view: DevelopmentView) -> list[str]:
    entries = sorted(view.timeline, key=lambda e: e.first_seen)[-_TIMELINE_ENTRIES_MAX:]
    lines = []
    for entry in entries:
        line = f"• {entry.first_seen.strftime('%Y-%m-%d')} — {escape_clipped(entry.headline, _TITLE_IN_LIST)}"
        if entry.independent:
            line += f" ({entry.independent} source{'s' if entry.independent != 1 else ''})"
        lines.append(line)
    return lines


def context_elements(view: DevelopmentView, *, now: datetime, updated: bool, thread_link: str | None) -> list[str]:
    dev = view.development
    elements = [f"First seen {when(dev.first_seen)}"]
    if updated:
        elements.append(f"updated at {when(now)}")
    if view.decision.reason:
        elements.append("Why: " + escape_clipped(view.decision.reason, 500))
    if thread_link:
        elements.append(link(thread_link, "discussion thread"))
    if dev.id is not None:
        elements.append(f"development #{dev.id}")
    return elements


# --- thread replies and pointers ------------------------------------------------------


def render_source_reply(article: Article, origin_label: str, now: datetime) -> Message:
    """Thread reply announcing one new independent source."""
    label = link(article.url, origin_label or article.outlet, limit=200)
    body = f"*New independent source:* {label}"
    if article.title:
        body += "\n" + escape_clipped(article.title, 500)
    blocks = [mrkdwn(body)]
    if article.summary.strip():
        blocks.append(mrkdwn(escape_clipped(article.summary.strip(), 1000)))
    blocks.append(context([f"Published {when(article.published)}", f"seen {when(now)}"]))
    text = "New independent source: " + escape_clipped(origin_label or article.outlet, 200)
    return Message(text, blocks)


def render_merge_pointer(
    headline: str, *, surviving_headline: str, thread_link: str | None, now: datetime
) -> Message:
    """Replacement for an absorbed development's message: points to the surviving thread."""
    target = link(thread_link, surviving_headline, limit=300) if thread_link else escape_clipped(surviving_headline, 300)
    blocks = [
        header(headline or "Merged development"),
        mrkdwn(f"*Merged* into {target} — follow that thread for updates."),
        context([f"merged at {when(now)}"]),
    ]
    text = "Merged into " + escape_clipped(surviving_headline, 300)
    return Message(text, blocks)


def render_plain(text: str, *, title: str | None = None) -> Message:
    """A simple message (health, recovery) from our own text; still escaped and clipped."""
    blocks: list[Block] = []
    if title:
        blocks.append(header(title))
    lines = [line for line in escape(text).splitlines() if line.strip()]  # "\r" alone is no text
    blocks.extend(pack_lines(lines or [ELLIPSIS], title="", max_sections=MAX_BLOCKS - 1))
    fallback = escape_clipped(title or clip(text, 300), MAX_FALLBACK).strip() or "Monitor notice"
    return Message(fallback, fit_blocks(blocks))


def render_material_change(view: DevelopmentView, *, previous_impact: int | None, now: datetime) -> Message:
    """Thread reply (broadcast) when impact crosses the on-call threshold without a new source."""
    impact = view.development.impact
    score = impact.score if impact else 0
    was = f" (was {previous_impact}/10)" if previous_impact else ""
    body = f"*Impact now {score}/10*{was} — reached the on-call threshold."
    if impact and impact.reasons:
        body += "\n" + escape_clipped("Why: " + ", ".join(impact.reasons[:5]), 1000)
    blocks = [mrkdwn(body), context([f"{verified_phrase(view)}", f"at {when(now)}"])]
    text = f"Impact now {score}/10: " + escape_clipped(view.development.headline, 300)
    return Message(text, blocks)

"""Development → Slack Block Kit message. Pure: no clock, no network, no store.

This module alone decides how a message looks. Every string that came from a feed goes
through `alerts.escape` (escape + clip) and lands in `plain_text` or in `mrkdwn` with
`verbatim: true`; the only markup we write is links to article URLs, an operator's configured
mention and `<!date^…>` tokens (Slack shows them in each reader's time zone). Slack's limits
are met by cutting at a sentence or word with an ellipsis, never by raising: 50 blocks, 3000
characters per text, 150 per header, 10 context elements, 2000 per field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from alerts.escape import ELLIPSIS, clip, escape, escape_clipped, link, sentences
from monitor.clock import format_utc
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
_ALL_IN_THREAD = "all are listed in the thread"
_LEAD_MAX = 300  # "what happened" is a sentence or two, not the article

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


def pack_lines(
    lines: Sequence[str], *, title: str, max_sections: int, limit: int = MAX_TEXT, more: str = ""
) -> list[Block]:
    """Put lines into as few sections as fit `limit`; say how many were left out, if any
    (`more` is added to that note, e.g. where the rest can be found)."""
    return [mrkdwn(s) for s in _pack(lines, title=title, max_sections=max_sections, limit=limit, more=more)[0]]


def _pack(lines: Sequence[str], *, title: str, max_sections: int, limit: int, more: str = "") -> tuple[list[str], int]:
    """(section texts, lines left out)."""
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
        note = f"\n_…and {left} more{f' — {more}' if more else ''}_"
        current = current if len(current) + len(note) <= limit else clip_markup(current, limit - len(note))
        current += note
    if current:
        sections.append(current)
    return sections, left


def fit_blocks(blocks: list[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """Keep at most `limit` blocks; the last one says how many were dropped."""
    if len(blocks) <= limit:
        return blocks
    dropped = len(blocks) - (limit - 1)
    return blocks[: limit - 1] + [context([f"…{dropped} more blocks not shown"])]


def slack_date(moment: datetime, style: str = "{date_short_pretty} at {time}") -> str:
    """A `<!date^…>` token: Slack shows it in each reader's own time zone and language; the
    fallback after `|` (UTC) is what clients that cannot format dates show."""
    fallback = format_utc(moment) if "{time" in style else moment.strftime("%Y-%m-%d")
    return f"<!date^{int(moment.timestamp())}^{style}|{fallback}>"


def safe_mention(mention: str | None) -> str:
    """An operator-configured mention as markup if it has a known form, else shown as text."""
    if not mention:
        return ""
    if _MENTION.match(mention.strip()):
        return mention.strip()
    log.warning("mention %r is not a Slack mention (<!subteam^ID>, <@U…>, <!here>); shown as text", mention)
    return escape(mention)


# --- development message --------------------------------------------------------------
#
# Laid out like an analyst's note: what happened (headline and one line), why it matters
# (impact in words with the score and its reasons), who reports it (independent sources,
# primary first, copies under their origin), what came before (the storyline), and when.


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
    lead_article = lead_of(view)
    headline = headline_of(view, lead_article)
    blocks: list[Block] = [header(headline)]
    ping = safe_mention(mention)
    what = what_happened(view, lead_article)
    if what or ping:
        blocks.append(mrkdwn(" ".join(p for p in (ping, escape(what)) if p)))
    blocks.append(mrkdwn(why_it_matters(view, topic_name)))
    blocks.append(divider())
    blocks.extend(
        pack_lines(source_lines(view), title="*Who reports it*", max_sections=_SOURCE_SECTIONS_MAX, more=_ALL_IN_THREAD)
    )
    timeline = timeline_lines(view)
    if timeline:
        blocks.extend(pack_lines(timeline, title="*Before this*", max_sections=3))
    blocks.append(context(context_elements(view, now=now, updated=updated, thread_link=thread_link)))
    return Message(notification_text(view, headline, ping), fit_blocks(blocks))


def notification_text(view: DevelopmentView, headline: str, ping: str = "") -> str:
    """The `text` Slack shows in notifications and previews: plain words, no mrkdwn marks."""
    dev = view.development
    verified = verified_phrase(view)
    parts = [verified[:1].lower() + verified[1:]]
    if dev.impact is not None:
        parts.append(f"{impact_words(dev.impact.score)} impact ({dev.impact.score}/10)")
    text = f"{ping} " if ping else ""
    text += escape_clipped(headline, 300) + " — " + ", ".join(parts)
    return clip_markup(text, MAX_FALLBACK)


def impact_words(score: int) -> str:
    """1–3 low, 4–6 moderate, 7–8 high, 9–10 critical."""
    return "critical" if score >= 9 else "high" if score >= 7 else "moderate" if score >= 4 else "low"


def why_it_matters(view: DevelopmentView, topic_name: str) -> str:
    """'*Why it matters:* high impact (8/10) — reasons · tone negative' and the verification line."""
    dev = view.development
    lines = []
    if dev.impact is not None:
        impact = f"*Why it matters:* {impact_words(dev.impact.score).capitalize()} impact ({dev.impact.score}/10)"
        if dev.impact.reasons:
            impact += " — " + escape_clipped("; ".join(dev.impact.reasons[:3]), 600)
        if dev.sentiment is not None:
            impact += f" · tone {escape(dev.sentiment.value)}"
        lines.append(impact)
    lines.append(f"*{verified_phrase(view)}* · {escape_clipped(topic_name or dev.topic, 200)}")
    return "\n".join(lines)


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
            primary=any(a.tier == "primary" for a in items),
        )
        for key, items in grouped.items()
    )


def ordered_origins(view: DevelopmentView) -> list[Origin]:
    """Origins with primary sources (the agency, the company itself) first, then as reported."""
    return sorted(origins_of(view), key=lambda o: not o.primary)


def _members(origin: Origin, by_id: dict[int | None, Article]) -> list[Article]:
    return [by_id[i] for i in origin.article_ids if i in by_id]


def origin_article(origin: Origin, articles: list[Article]) -> Article | None:
    """The origin's own report, not a copy: a primary-tier article first, then one published
    under the origin's name (the wire's own story), a wire's, one that copies nothing, the first."""
    for chosen in (
        [a for a in articles if a.tier == "primary"],
        [a for a in articles if a.outlet == origin.label],
        [a for a in articles if a.tier == "wire"] if origin.key.startswith("wire:") else [],
        [a for a in articles if a.reprint_of is None],
        articles,
    ):
        if chosen:
            return chosen[0]
    return None


def origin_name(origin: Origin, articles: list[Article]) -> str:
    """What readers know the origin as: the outlet, never an owner group's id from feeds.yaml
    ("us-commerce" collapses Federal Register and BIS; people know "Bureau of Industry and Security")."""
    owner_ids = {a.owner for a in articles if a.owner}
    if origin.key.startswith("owner:") or origin.label in owner_ids:
        own = origin_article(origin, articles)
        if own is not None and own.outlet:
            return own.outlet
    return origin.label


def lead_of(view: DevelopmentView) -> Article | None:
    """The article the message leads with: the primary source's, else the first origin's own."""
    by_id: dict[int | None, Article] = {a.id: a for a in view.articles}
    for origin in ordered_origins(view):
        found = origin_article(origin, _members(origin, by_id))
        if found is not None:
            return found
    return view.articles[0] if view.articles else None


def headline_of(view: DevelopmentView, lead_article: Article | None) -> str:
    """The origin's (or primary source's) headline, not a reprint's; the development's otherwise."""
    title = lead_article.title.strip() if lead_article is not None else ""
    return title or view.development.headline.strip() or "Untitled development"


def what_happened(view: DevelopmentView, lead_article: Article | None) -> str:
    """One or two whole sentences on what happened (plain text, not yet escaped)."""
    text = ""
    if lead_article is not None:
        text = (lead_article.summary or lead_article.text).strip()
    text = text or view.development.lead.strip()
    return sentences(text, _LEAD_MAX) if text else ""


def source_lines(view: DevelopmentView) -> list[str]:
    """One line per independent origin (primary first); its copies on a line below."""
    by_id: dict[int | None, Article] = {a.id: a for a in view.articles}
    lines = []
    for origin in ordered_origins(view):
        articles = _members(origin, by_id)
        first = origin_article(origin, articles)
        name = origin_name(origin, articles)
        label = link(first.url, name) if first else escape_clipped(name, 200)
        tags = []
        if origin.primary:
            tags.append("primary source")
        if origin.reprints and not origin.key.startswith("owner:"):
            tags.append(f"+{origin.reprints} reprint{'s' if origin.reprints != 1 else ''}")
        line = f"• {label}" + (f" ({', '.join(tags)})" if tags else "")
        if first is not None and first.title:
            line += ": " + escape_clipped(first.title, _TITLE_IN_LIST)
        others = [a for a in articles if a is not first]
        lines.append(line + _copies_line(origin, name, first, others))
    return lines


def _copies_line(origin: Origin, name: str, first: Article | None, others: list[Article]) -> str:
    """'↳ reprinted by: A, B', '↳ same owner (group), counted once: C' and 'more from X: …'."""
    own = first.outlet if first else name
    copies = [link(a.url, a.outlet, limit=80) for a in others if a.outlet != own]
    more = [link(a.url, a.title or a.outlet, limit=80) for a in others if a.outlet == own]
    if not others and len(origin.outlets) > 1:
        copies = [escape_clipped(o, 80) for o in origin.outlets if o != own]
    parts = []
    if copies and origin.key.startswith("owner:"):
        group = origin.key.partition(":")[2] or origin.label
        parts.append(f"same owner ({escape_clipped(group, 80)}), counted once: " + ", ".join(copies))
    elif copies:
        parts.append("reprinted by: " + ", ".join(copies))
    if more:
        parts.append(f"more from {escape_clipped(own, 80)}: " + ", ".join(more))
    return "".join("\n      ↳ " + clip_markup(p, 1500) for p in parts)


def timeline_lines(view: DevelopmentView) -> list[str]:
    """Earlier developments of the storyline, oldest first, each with its date."""
    entries = sorted(view.timeline, key=lambda e: e.first_seen)[-_TIMELINE_ENTRIES_MAX:]
    return [
        f"• {slack_date(entry.first_seen, '{date_short}')} — {escape_clipped(entry.headline, _TITLE_IN_LIST)}"
        for entry in entries
    ]


def context_elements(view: DevelopmentView, *, now: datetime, updated: bool, thread_link: str | None) -> list[str]:
    dev = view.development
    elements = [f"First reported {slack_date(dev.first_seen)}"]
    if updated:
        elements.append(f"updated {slack_date(now)}")
    articles = len(view.articles)
    if articles > 1:
        elements.append(f"{articles} articles from {len(origins_of(view))} independent sources; new sources are added in the thread")
    if thread_link:
        elements.append(link(thread_link, "discussion thread"))
    return elements


# --- thread replies and pointers ------------------------------------------------------


def render_all_sources(view: DevelopmentView) -> Message | None:
    """Thread reply with every source, for a development whose message cannot list them all
    (None when it can): the place to see everything, linked from the message's "…and N more"."""
    lines = source_lines(view)
    if not _pack(lines, title="*Who reports it*", max_sections=_SOURCE_SECTIONS_MAX, limit=MAX_TEXT)[1]:
        return None
    title = f"*All {len(lines)} independent sources*"
    blocks = pack_lines(lines, title=title, max_sections=MAX_BLOCKS - 1)
    headline = headline_of(view, lead_of(view))
    return Message(f"All {len(lines)} independent sources: " + escape_clipped(headline, 300), fit_blocks(blocks))



def render_source_reply(article: Article, origin_label: str, now: datetime) -> Message:
    """Thread reply announcing one new independent source."""
    name = origin_label or article.outlet
    label = link(article.url, name, limit=200)
    body = f"*New independent source:* {label}"
    if article.tier == "primary":
        body += " (primary source)"
    if article.title:
        body += "\n" + escape_clipped(article.title, 500)
    blocks = [mrkdwn(body)]
    if article.summary.strip():
        blocks.append(mrkdwn(escape(sentences(article.summary, 1000))))
    blocks.append(context([f"Published {slack_date(article.published)}"]))
    text = "New independent source: " + escape_clipped(name, 200)
    return Message(text, blocks)


def render_merge_pointer(
    headline: str, *, surviving_headline: str, thread_link: str | None, now: datetime
) -> Message:
    """Replacement for an absorbed development's message: points to the surviving thread."""
    target = link(thread_link, surviving_headline, limit=300) if thread_link else escape_clipped(surviving_headline, 300)
    blocks = [
        header(headline or "Merged development"),
        mrkdwn(f"*Merged* into {target} — follow that thread for updates."),
        context([f"merged {slack_date(now)}"]),
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
    """Thread reply when impact crosses the on-call threshold without a new source."""
    impact = view.development.impact
    score = impact.score if impact else 0
    was = f" (was {previous_impact}/10)" if previous_impact else ""
    body = f"*Impact now {score}/10*{was}: {impact_words(score)}."
    if impact and impact.reasons:
        body += "\n" + escape_clipped("Why: " + "; ".join(impact.reasons[:5]), 1000)
    blocks = [mrkdwn(body), context([f"{verified_phrase(view)}", slack_date(now)])]
    text = f"Impact now {score}/10: " + escape_clipped(headline_of(view, lead_of(view)), 300)
    return Message(text, blocks)

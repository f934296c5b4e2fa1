"""How a digest looks: Slack Block Kit (its main message and thread replies, within Slack's
limits) and, for the terminal, text, Markdown and JSON. Pure: no clock, no store."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from alerts.digest import UNVERIFIED, Digest, DigestEntry, DigestMessages, FailingSource
from alerts.escape import escape, escape_clipped, link
from alerts.render import MAX_BLOCKS, Block, Message, context, divider, header, mrkdwn, pack_lines
from monitor.clock import format_utc

_HEADLINE_MAX = 300
_REASONS_SHOWN = 3

# --- rendering for Slack (pure) -------------------------------------------------------


def period(digest: Digest) -> str:
    return f"{format_utc(digest.since)} and {format_utc(digest.until)}"


def _impact_text(entry: DigestEntry) -> str:
    if entry.impact is None:
        return "impact not scored"
    reasons = ", ".join(entry.impact_reasons[:_REASONS_SHOWN])
    return f"impact {entry.impact}/10" + (f" ({reasons})" if reasons else "")


def _corroborated_block(entry: DigestEntry) -> Block:
    title = escape_clipped(entry.headline, _HEADLINE_MAX)
    thread = link(entry.thread_url, "Slack thread") if entry.thread_url else "not posted yet"
    facts = [f"Verified by {entry.independent} sources", _impact_text(entry)]
    if entry.sentiment:
        facts.append(entry.sentiment)
    facts.append(entry.topic)
    line = " · ".join(escape(f) for f in facts)
    return mrkdwn(f"*{title}*\n{line} · {thread}")


def _watch_line(entry: DigestEntry) -> str:
    title = escape_clipped(entry.headline, _HEADLINE_MAX)
    return f"• {title} — _{UNVERIFIED}_ · {escape(entry.topic)} · first seen {format_utc(entry.first_seen)}"


def _failing_line(source: FailingSource) -> str:
    last_ok = format_utc(source.last_ok) if source.last_ok else "never"
    error = f": {escape_clipped(source.last_error, 300)}" if source.last_error else ""
    return f"• `{escape(source.source_id)}` — {source.consecutive_failures} failures in a row, last ok {last_ok}{error}"


def digest_blocks(digest: Digest) -> list[Block]:
    """Every block of the digest in order, before splitting into messages."""
    blocks: list[Block] = [
        header(f"Digest {digest.digest_id}"),
        context([f"Between {period(digest)}", counts(digest)]),
    ]
    if digest.corroborated:
        blocks.append(divider())
        blocks.append(mrkdwn(f"*Corroborated developments ({len(digest.corroborated)})*, highest impact first"))
        blocks += [_corroborated_block(e) for e in digest.corroborated]
    elif "corroborated" in digest.include or digest.empty:
        # An empty period says so, rather than posting a header with nothing under it.
        blocks.append(divider())
        blocks.append(mrkdwn(f"No corroborated developments between {period(digest)}."))
    if digest.watch:
        blocks.append(divider())
        title = f"*Watch list ({len(digest.watch)}) — {UNVERIFIED} each*"
        blocks += pack_lines([_watch_line(e) for e in digest.watch], title=title, max_sections=len(digest.watch) + 1)
    if digest.failing:
        blocks.append(divider())
        title = f"*Failing sources ({len(digest.failing)})*"
        blocks += pack_lines([_failing_line(s) for s in digest.failing], title=title, max_sections=len(digest.failing) + 1)
    return blocks


def counts(digest: Digest) -> str:
    return (
        f"{len(digest.corroborated)} corroborated · {len(digest.watch)} unverified (1 source) · "
        f"{len(digest.failing)} failing sources"
    )


def fallback_text(digest: Digest) -> str:
    """Notification text (what phones and screen readers show)."""
    if digest.empty:
        return f"Digest {digest.digest_id}: no corroborated developments between {period(digest)}."
    return f"Digest {digest.digest_id}: {counts(digest)}"


def render_blocks(digest: Digest) -> DigestMessages:
    """One main message (≤ 50 blocks) and thread replies (≤ 50 blocks each) for the rest."""
    blocks = digest_blocks(digest)
    text = escape(fallback_text(digest))
    if len(blocks) <= MAX_BLOCKS:
        return DigestMessages(Message(text, blocks), [])
    main, rest = blocks[: MAX_BLOCKS - 1], blocks[MAX_BLOCKS - 1 :]
    chunks = [rest[i : i + MAX_BLOCKS] for i in range(0, len(rest), MAX_BLOCKS)]
    main.append(context([f"Continued in the thread: {len(rest)} more blocks in {len(chunks)} replies."]))
    thread = [
        Message(f"Digest {escape(digest.digest_id)} (continued {n}/{len(chunks)})", chunk)
        for n, chunk in enumerate(chunks, start=1)
    ]
    return DigestMessages(Message(text, main), thread)


# --- rendering for the terminal (pure) ------------------------------------------------


def render_text(digest: Digest) -> str:
    lines = [f"Digest {digest.digest_id}: between {period(digest)}", counts(digest), ""]
    if not digest.corroborated:
        lines.append(f"No corroborated developments between {period(digest)}.")
    else:
        lines.append("Corroborated developments (highest impact first):")
        for e in digest.corroborated:
            lines.append(f"  [{e.development_id}] {e.headline}")
            lines.append(f"      Verified by {e.independent} sources · {_impact_text(e)} · {e.topic}")
            lines.append(f"      thread: {e.thread_url or 'not posted yet'}")
    if digest.watch:
        lines += ["", f"Watch list ({UNVERIFIED} each):"]
        lines += [f"  [{e.development_id}] {e.headline} — {UNVERIFIED} · {e.topic}" for e in digest.watch]
    if digest.failing:
        lines += ["", "Failing sources:"]
        for s in digest.failing:
            last_ok = format_utc(s.last_ok) if s.last_ok else "never"
            lines.append(f"  {s.source_id}: {s.consecutive_failures} failures, last ok {last_ok} {s.last_error}".rstrip())
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Keep feed text from becoming Markdown links or emphasis."""
    return "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in text)


def render_markdown(digest: Digest) -> str:
    lines = [f"# Digest {_md(digest.digest_id)}", "", f"Between {period(digest)} — {counts(digest)}", ""]
    lines.append("## Corroborated developments")
    if not digest.corroborated:
        lines.append(f"No corroborated developments between {period(digest)}.")
    for e in digest.corroborated:
        thread = f" ([thread]({e.thread_url}))" if e.thread_url else ""
        lines.append(f"- **{_md(e.headline)}**{thread} — Verified by {e.independent} sources · {_md(_impact_text(e))} · {_md(e.topic)}")
    if digest.watch:
        lines += ["", f"## Watch list ({UNVERIFIED} each)"]
        lines += [f"- {_md(e.headline)} — *{UNVERIFIED}* · {_md(e.topic)}" for e in digest.watch]
    if digest.failing:
        lines += ["", "## Failing sources"]
        lines += [f"- `{s.source_id}`: {s.consecutive_failures} failures, {_md(s.last_error)}" for s in digest.failing]
    return "\n".join(lines) + "\n"


def digest_dict(digest: Digest) -> dict[str, Any]:
    """The digest as JSON-ready data (ISO 8601 times), with each entry's label."""
    data = asdict(digest)
    data["empty"] = digest.empty
    for entry in data["watch"]:
        entry["label"] = UNVERIFIED
    return json.loads(json.dumps(data, default=_json_default))


def render_json(digest: Digest) -> str:
    return json.dumps(digest_dict(digest), indent=2, ensure_ascii=False) + "\n"


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

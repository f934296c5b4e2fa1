"""Console sink: without a token or webhook, alerts are printed instead of posted.

The rendered Block Kit is shown as a person would read it in Slack: the header underlined,
links as `label (url)`, entities decoded, context lines dimmed with `  ·`. Updates and
thread replies are printed too, so `monitor demo` shows the whole life of a message.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

from alerts.render import Block, Message
from alerts.slack import Posted

_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")
_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")


def readable(text: str) -> str:
    """Slack mrkdwn → terminal text: `<url|label>` → `label (url)`, a `<!date^…|fallback>`
    token → its fallback (UTC), entities decoded."""
    text = _DATE.sub(lambda m: m.group(1), text)
    return html.unescape(_LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text))


def block_lines(block: Block) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        title = readable(block["text"]["text"])
        return [title, "=" * min(len(title), 80)]
    if kind == "divider":
        return ["-" * 40]
    if kind == "context":
        return ["  · " + " · ".join(readable(e.get("text", "")) for e in block.get("elements", []))]
    if kind == "section":
        lines = readable(block.get("text", {}).get("text", "")).splitlines()
        for field in block.get("fields", []):
            lines.extend(readable(field.get("text", "")).splitlines())
        return lines
    return [f"[{kind} block]"]


def format_message(message: Message) -> str:
    lines: list[str] = []
    for block in message.blocks:
        lines.extend(block_lines(block))
    return "\n".join(lines) if lines else readable(message.text)


class ConsoleSink:
    """Prints each post and update; behaves like a workspace that always accepts."""

    supports_updates = True

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out
        self._count = 0

    def _write(self, heading: str, message: Message, *, indent: str = "") -> None:
        stream = self.out or sys.stdout
        body = "\n".join(indent + line for line in format_message(message).splitlines())
        print(f"{indent}── {heading} ──\n{body}\n", file=stream, flush=True)

    def _next_ts(self) -> str:
        self._count += 1
        return f"{int(datetime.now().timestamp())}.{self._count:06d}"

    async def post(
        self,
        channel: str,
        message: Message,
        *,
        metadata: Mapping[str, Any] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
    ) -> Posted:
        ts = self._next_ts()
        where = f"#{channel.lstrip('#')} " if channel else ""
        if thread_ts:
            also = " (also sent to the channel)" if reply_broadcast else ""
            self._write(f"{where}thread reply{also}", message, indent="    ")
        else:
            self._write(f"{where}new message", message)
        # No channel id: nothing was posted anywhere a link could point to.
        return Posted("", ts)

    async def update(self, channel_id: str, ts: str, message: Message, *, metadata: Mapping[str, Any] | None = None) -> Posted:
        self._write("message updated", message)
        return Posted(channel_id, ts)

    async def find_own_message(
        self, channel: str, match: Mapping[str, Any], *, since: datetime, thread_ts: str | None = None
    ) -> Posted | None:
        return None  # printing cannot half-happen: nothing to look for

    async def permalink(self, channel_id: str, ts: str) -> str | None:
        return None

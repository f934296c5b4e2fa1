"""The one clock and the one way times are written for people in this package.

Stages take the clock as an argument (`clock: Callable[[], datetime]`); this is the real one.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def format_utc(moment: datetime, *, seconds: bool = False) -> str:
    """"2026-03-10 12:00 UTC" (with ":05" seconds when asked): how logs, the command line and
    fallback texts write a time. Slack messages use `<!date^…>` so each reader sees local time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")

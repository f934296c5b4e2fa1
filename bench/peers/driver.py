"""The line protocol of long-lived contenders (the monitor and the floor).

The bench starts a contender once per run, then writes ``cycle`` on its stdin for each poll
cycle; the contender answers one JSON line on stdout with its own wall time, CPU seconds
(getrusage of the whole process, every thread) and what it saw. ``quit`` ends it. Start-up
(imports, opening the store) is outside the cycles, as it is for a long-running service.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

Cycle = Callable[[], Awaitable[dict[str, Any]]]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve(cycle: Cycle) -> None:
    """Answer `cycle` commands until `quit` or end of input."""
    loop = asyncio.get_running_loop()
    say({"ready": True})
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command = line.strip()
        if command in ("", "quit"):
            return
        started, cpu = time.monotonic(), cpu_seconds()
        try:
            detail = await cycle()
        except Exception as exc:  # reported to the bench, which records the contender as broken
            say({"error": f"{type(exc).__name__}: {exc}"})
            continue
        say({"wall": time.monotonic() - started, "cpu": cpu_seconds() - cpu, **detail})

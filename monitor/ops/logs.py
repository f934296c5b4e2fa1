"""Logging: human-readable lines by default, JSON lines for log shippers (structlog).

Modules log through the standard library with `extra={...}` fields (source, development,
alert ids); structlog renders them. Slack tokens never reach a log line: any value that looks
like one, and any field named like a secret, is redacted here, in one place.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_VALUE = re.compile(r"(?:xox[a-z]|xapp)-[A-Za-z0-9-]+|https://hooks\.slack\.com/services/[A-Za-z0-9/]+")
_SECRET_KEYS = {"token", "authorization", "password", "webhook_url", "secret"}


def redact(value: str) -> str:
    return _SECRET_VALUE.sub("[redacted]", value)


def _redact_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


def configure_logging(level: str = "INFO", fmt: str = "text", stream: Any = None) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become text first, so the redaction below covers them too.
            structlog.processors.format_exc_info,
            _redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries are chatty at INFO; their warnings still come through.
    for noisy in ("alembic", "watchfiles", "apscheduler", "aiohttp.access", "slack_sdk", "trafilatura", "htmldate", "courlan"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


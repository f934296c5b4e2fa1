"""Slack secrets never reach a log line, in messages, fields or tracebacks."""

from __future__ import annotations

import io
import logging

import pytest

from monitor.ops.logs import configure_logging

TOKEN = "xoxb-1234-5678-abcdefSECRET"
HOOK = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_tokens_are_redacted_everywhere(fmt: str) -> None:
    out = io.StringIO()
    configure_logging("INFO", fmt, stream=out)
    log = logging.getLogger("test.secrets")
    log.info("posting with %s", TOKEN, extra={"token": "anything", "url": HOOK})
    try:
        raise RuntimeError(f"slack said no to {TOKEN} at {HOOK}")
    except RuntimeError:
        log.exception("delivery failed")
    text = out.getvalue()
    assert "SECRET" not in text
    assert "[redacted]" in text and "RuntimeError" in text
    logging.getLogger().handlers.clear()

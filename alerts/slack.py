"""The ways an alert leaves the process: Slack Web API, incoming webhook, or the console.

All three implement `Sink`, which is all the relay (`alerts.deliver`) knows about:

- `SlackWebSink` — bot token with slack-sdk's AsyncWebClient and its retry handlers. Full
  feature set: one living parent message per development, `chat.update`, thread replies,
  message metadata, permalinks, and finding its own message after an ambiguous failure.
  Scopes (`SCOPES`; `check_scopes` reads them at start from auth.test's `x-oauth-scopes`):
  `chat:write` to post at all; `channels:read` to turn channel names into ids and
  `channels:history` (`groups:history` for private channels) to look for a message an
  interrupted attempt may have posted. Without the last two a look-up raises `CannotLook`
  and the relay decides from its own records instead (see alerts.deliver).
- `WebhookSink` — an incoming webhook, for teams that cannot install an app. A webhook can
  only post: **no updates, no threads, no metadata, no lookups**. A new source that is not
  material is not announced at all; a material one is posted as a fresh message.
- `ConsoleSink` (alerts/console.py) — no token and no webhook: print what would be posted.

What is never sent: `link_names`, `parse=full`; unfurling is always off.

Errors come out as `DeliveryError`, which says whether retrying can help (`permanent`) and
whether the request may have taken effect in Slack (`ambiguous`: a timeout after sending, or
an HTTP 5xx — Slack sometimes posts and then fails to answer). slack-sdk's own retries never
repeat `chat.postMessage` after a 5xx: that retry would post again without looking first, so
it is left to the relay, which looks before it re-posts.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from alerts.render import Message
from monitor.config.settings import Slack

log = logging.getLogger(__name__)

EVENT_TYPE = "development_alert"

# Retrying cannot fix these; the row is marked failed and an operator has to act.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "token_revoked",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "invalid_blocks",
        # Not in the list, but just as hopeless to retry:
        "not_authed",
        "account_inactive",
        "token_expired",
        "missing_scope",
        "no_text",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "thread_not_found",
        "restricted_action",
        "invalid_arguments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "channel_is_archived",
    }
)

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")

# The scopes the bot token should have, and what each is for (README "Slack app"). Only
# chat:write is indispensable; the others let the relay check before it re-posts.
SCOPES: dict[str, str] = {
    "chat:write": "post and update alerts (without it nothing can be delivered)",
    "channels:read": "turn channel names into ids, to look for an earlier message",
    "channels:history": "look in a channel for a message an interrupted attempt may already have posted",
}
OPTIONAL_SCOPES: dict[str, str] = {
    "groups:history": "the same look-up in private channels",
    "chat:write.public": "post to public channels the bot was not invited to",
}
# Methods that change nothing when repeated; only these may be retried by slack-sdk after a 5xx.
IDEMPOTENT_METHODS = frozenset(
    {"chat.update", "chat.getPermalink", "conversations.history", "conversations.replies", "conversations.list", "auth.test"}
)
# Answers to a look-up that mean "not allowed to look", not "try again".
_CANNOT_LOOK = frozenset({"missing_scope", "not_in_channel", "channel_not_found", "not_allowed_token_type", "no_permission"})


class DeliveryError(Exception):
    """A failed Slack call, classified for the relay.

    `ambiguous`: the call may have taken effect (no answer after sending, or a 5xx);
    `answered`: Slack did answer (a 5xx), which makes "it took effect" the less likely case.
    """

    def __init__(
        self,
        code: str,
        *,
        permanent: bool = False,
        ambiguous: bool = False,
        retry_after: float | None = None,
        answered: bool = False,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent
        self.ambiguous = ambiguous
        self.retry_after = retry_after
        self.answered = answered


class CannotLook(Exception):
    """A look-up for our own message that the token may not make (a scope, or not a member)."""

    def __init__(self, reason: str, *, needed: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.needed = needed


@dataclass(frozen=True, slots=True)
class ScopeCheck:
    """What `auth.test` said about the token at start."""

    granted: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # from SCOPES
    error: str = ""  # auth.test failed (invalid_auth, ...): nothing can be delivered
    known: bool = True  # False when Slack did not name the scopes (no x-oauth-scopes header)

    def problems(self) -> list[str]:
        """Sentences for the log and `monitor status`; empty when all is well."""
        if self.error:
            return [f"Slack refused the bot token ({self.error}): no alert can be delivered until it is fixed"]
        return [f"the Slack app lacks {scope}, needed to {SCOPES[scope]}" for scope in self.missing]


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a message landed."""

    channel_id: str
    ts: str


class Sink(Protocol):
    """What the relay needs from a destination."""

    supports_updates: bool  # chat.update, threads, metadata and lookups work

    async def post(
        self,
        channel: str,
        message: Message,
        *,
        metadata: Mapping[str, Any] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
    ) -> Posted: ...

    async def update(self, channel_id: str, ts: str, message: Message, *, metadata: Mapping[str, Any] | None = None) -> Posted: ...

    async def find_own_message(
        self, channel: str, match: Mapping[str, Any], *, since: datetime, thread_ts: str | None = None
    ) -> Posted | None: ...

    async def permalink(self, channel_id: str, ts: str) -> str | None: ...


def alert_metadata(alert_id: int | None, development_id: int | None, part: str = "parent") -> dict[str, Any]:
    """Message metadata that lets us recognise our own message later.

    `part` tells apart the several messages one outbox row can produce (the parent, a thread
    reply per new source, a digest's overflow replies).
    """
    payload: dict[str, Any] = {"alert_id": alert_id, "part": part}
    if development_id is not None:
        payload["development_id"] = development_id
    return {"event_type": EVENT_TYPE, "event_payload": payload}


def make_client(
    slack: Slack,
    *,
    rate_limit_retries: int = 5,
    server_error_retries: int = 2,
    retry_interval: RetryIntervalCalculator | None = None,
) -> AsyncWebClient:
    """AsyncWebClient for `slack.base_url` with slack-sdk's retry handlers.

    - 429: wait Retry-After and try again, up to `rate_limit_retries` times.
    - HTTP 500/503: back off (`retry_interval`, default 0.5 s · 2^n with jitter) and try again,
      for calls that change nothing when repeated. Never for chat.postMessage: Slack may have
      posted before failing to answer, and only the relay looks before posting again.
    - Connection errors: only a refused/unreachable connect is retried here, because the
      request never left. A timeout or a dropped connection *after* sending is ambiguous:
      it is left to the relay, which first looks for the message in the channel.
    """
    interval = retry_interval or BackoffRetryIntervalCalculator(backoff_factor=0.5)
    handlers: list[AsyncRetryHandler] = [
        AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        IdempotentServerErrorRetryHandler(max_retry_count=server_error_retries, interval_calculator=interval),
        AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval, error_types=[aiohttp.ClientConnectorError]),
    ]
    timeout = max(slack.timeout.total_seconds(), 0.1)
    return AsyncWebClient(
        token=slack.token,
        base_url=slack.base_url,
        timeout=timeout,  # type: ignore[arg-type]  # aiohttp takes float seconds
        retry_handlers=handlers,
    )


class IdempotentServerErrorRetryHandler(AsyncServerErrorRetryHandler):
    """slack-sdk's 5xx retry, limited to methods that are safe to repeat (`IDEMPOTENT_METHODS`)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        if method not in IDEMPOTENT_METHODS:
            return False
        return await super()._can_retry_async(state=state, request=request, response=response, error=error)


def classify(exc: BaseException) -> DeliveryError:
    """Turn what slack-sdk/aiohttp raised into a DeliveryError."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, SlackApiError):
        response = exc.response
        code = str(response.get("error") or f"http_{response.status_code}")
        if response.status_code == 429:
            return DeliveryError("ratelimited", retry_after=_retry_after(response.headers))
        if response.status_code >= 500:  # Slack may have acted before failing to answer
            return DeliveryError(f"http_{response.status_code}", ambiguous=True, answered=True)
        return DeliveryError(code, permanent=code in PERMANENT_ERRORS)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return DeliveryError(f"connect: {exc}")  # never reached Slack
    if isinstance(exc, asyncio.TimeoutError | TimeoutError | aiohttp.ClientError | OSError):
        return DeliveryError(f"{type(exc).__name__}: {exc}".rstrip(": "), ambiguous=True)
    return DeliveryError(f"{type(exc).__name__}: {exc}")


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                return None
    return None


def slack_ts(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"


class SlackWebSink:
    """Bot-token delivery through the Web API."""

    supports_updates = True

    def __init__(self, client: AsyncWebClient, *, history_limit: int = 200) -> None:
        self.client = client
        self.history_limit = history_limit
        self._channel_ids: dict[str, str] = {}

    async def post(
        self,
        channel: str,
        message: Message,
        *,
        metadata: Mapping[str, Any] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
    ) -> Posted:
        args: dict[str, Any] = {
            "channel": channel,
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if metadata is not None:
            args["metadata"] = dict(metadata)
        if thread_ts:
            args["thread_ts"] = thread_ts
            if reply_broadcast:
                args["reply_broadcast"] = True
        try:
            response = await self.client.chat_postMessage(**args)
        except Exception as exc:  # classified: the relay decides retry/fail
            raise classify(exc) from exc
        posted = Posted(str(response["channel"]), str(response["ts"]))
        self._channel_ids[channel.lstrip("#")] = posted.channel_id
        return posted

    async def update(self, channel_id: str, ts: str, message: Message, *, metadata: Mapping[str, Any] | None = None) -> Posted:
        args: dict[str, Any] = {"channel": channel_id, "ts": ts, "text": message.text, "blocks": message.blocks}
        if metadata is not None:
            args["metadata"] = dict(metadata)
        try:
            response = await self.client.chat_update(**args)
        except Exception as exc:
            raise classify(exc) from exc
        return Posted(str(response["channel"]), str(response["ts"]))

    async def find_own_message(
        self, channel: str, match: Mapping[str, Any], *, since: datetime, thread_ts: str | None = None
    ) -> Posted | None:
        """Our message whose metadata payload contains `match`, posted after `since`.

        Looks at one page (`history_limit`) of the channel, or of the thread when
        `thread_ts` is given. None when not found; `CannotLook` when the token may not read
        the channel (a missing scope, not a member, an id it cannot learn).
        """
        channel_id = await self.resolve_channel(channel)
        if channel_id is None:
            raise CannotLook(f"the id of channel {channel} is unknown (channels:read turns names into ids)", needed="channels:read")
        try:
            if thread_ts:
                response = await self.client.conversations_replies(
                    channel=channel_id, ts=thread_ts, include_all_metadata=True, limit=self.history_limit
                )
            else:
                response = await self.client.conversations_history(
                    channel=channel_id, oldest=slack_ts(since), include_all_metadata=True, limit=self.history_limit
                )
        except SlackApiError as exc:
            code = str(exc.response.get("error") or "")
            if code in _CANNOT_LOOK:
                needed = str(exc.response.get("needed") or "")
                raise CannotLook(f"{code}{f' ({needed})' if needed else ''} reading {channel}", needed=needed) from exc
            raise classify(exc) from exc
        except Exception as exc:
            raise classify(exc) from exc
        for item in response.get("messages") or []:
            if _metadata_matches(item.get("metadata"), match):
                return Posted(channel_id, str(item["ts"]))
        return None

    async def permalink(self, channel_id: str, ts: str) -> str | None:
        try:
            response = await self.client.chat_getPermalink(channel=channel_id, message_ts=ts)
        except Exception as exc:  # a link is a nicety; delivery does not depend on it
            log.info("no permalink for %s/%s: %s", channel_id, ts, classify(exc).code)
            return None
        link = response.get("permalink")
        return str(link) if link else None

    async def check_scopes(self) -> ScopeCheck:
        """auth.test: is the token valid, and which of `SCOPES` does it lack (x-oauth-scopes)?"""
        try:
            response = await self.client.auth_test()
        except Exception as exc:
            error = classify(exc)
            if error.permanent:
                return ScopeCheck(error=error.code)
            log.warning("could not check the Slack token's scopes at start: %s", error.code)
            return ScopeCheck(known=False)
        header = next((str(v) for k, v in (response.headers or {}).items() if k.lower() == "x-oauth-scopes"), None)
        if header is None:
            return ScopeCheck(known=False)
        granted = tuple(s.strip() for s in header.split(",") if s.strip())
        return ScopeCheck(granted=granted, missing=tuple(s for s in SCOPES if s not in granted))

    def remember_channel(self, channel: str, channel_id: str) -> None:
        """Seed the name → id cache (the relay knows ids from earlier deliveries)."""
        if channel_id:
            self._channel_ids[channel.lstrip("#")] = channel_id

    async def resolve_channel(self, channel: str) -> str | None:
        """Channel id for a name or id; names are looked up once via conversations.list."""
        name = channel.lstrip("#")
        if _CHANNEL_ID.match(name):
            return name
        if name not in self._channel_ids:
            await self._load_channels()
        return self._channel_ids.get(name)

    async def _load_channels(self) -> None:
        cursor = None
        try:
            for _ in range(20):  # bounded: 20 pages of 1000 channels
                response = await self.client.conversations_list(limit=1000, cursor=cursor, exclude_archived=True)
                for item in response.get("channels") or []:
                    self._channel_ids.setdefault(str(item.get("name")), str(item.get("id")))
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except Exception as exc:  # e.g. missing_scope (channels:read): lookups just fail
            log.warning("conversations.list failed: %s", classify(exc).code)


def _metadata_matches(metadata: object, match: Mapping[str, Any]) -> bool:
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, Mapping) and all(payload.get(k) == v for k, v in match.items())


class WebhookSink:
    """Incoming-webhook delivery: posting only (no updates, threads, metadata or lookups)."""

    supports_updates = False

    def __init__(self, url: str, *, timeout: float = 15) -> None:
        self.webhook = AsyncWebhookClient(url, timeout=int(max(timeout, 1)))
        self._count = 0

    async def post(
        self,
        channel: str,
        message: Message,
        *,
        metadata: Mapping[str, Any] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
    ) -> Posted:
        try:
            response = await self.webhook.send(
                text=message.text, blocks=list(message.blocks), unfurl_links=False, unfurl_media=False
            )
        except Exception as exc:
            raise classify(exc) from exc
        if response.status_code != 200:
            body = (response.body or "").strip()
            code = body if body and " " not in body else f"http_{response.status_code}"
            if response.status_code == 429:
                raise DeliveryError("ratelimited", retry_after=_retry_after(response.headers))
            raise DeliveryError(code, permanent=response.status_code < 500 and code in PERMANENT_ERRORS | _WEBHOOK_PERMANENT)
        self._count += 1
        # A webhook answers "ok" and nothing else: no channel id, no real ts. The placeholder
        # ts marks the row delivered; the empty channel id keeps digests from linking to it.
        return Posted("", f"webhook-{self._count}")

    async def update(self, channel_id: str, ts: str, message: Message, *, metadata: Mapping[str, Any] | None = None) -> Posted:
        raise DeliveryError("webhook mode cannot update messages", permanent=True)

    async def find_own_message(
        self, channel: str, match: Mapping[str, Any], *, since: datetime, thread_ts: str | None = None
    ) -> Posted | None:
        return None

    async def permalink(self, channel_id: str, ts: str) -> str | None:
        return None


_WEBHOOK_PERMANENT = frozenset({"invalid_token", "no_service", "no_service_id", "channel_is_archived", "action_prohibited", "posting_to_general_channel_denied", "invalid_payload", "no_text"})


def make_sink(slack: Slack) -> Sink:
    """The sink the configuration asks for: token → Web API, webhook → webhook, else console."""
    if slack.token:
        return SlackWebSink(make_client(slack))
    if slack.webhook_url:
        return WebhookSink(slack.webhook_url, timeout=slack.timeout.total_seconds())
    from alerts.console import ConsoleSink

    return ConsoleSink()

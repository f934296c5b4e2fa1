"""A fake Slack Web API server for tests: real HTTP on 127.0.0.1, strict where Slack is.

    with FakeSlack() as slack:               # or: slack = FakeSlack().start(); ...; slack.stop()
        client = AsyncWebClient(token=slack.token, base_url=slack.base_url)
        slack.fail_next(2, status=429, retry_after=1)
        ...
        assert slack.messages("alerts")      # what the channel shows now

It runs its own event loop in a background thread, so sync and async tests can use it alike.
Implemented methods: auth.test, chat.postMessage, chat.update, chat.getPermalink,
conversations.history, conversations.replies, conversations.list. Bodies are read as slack-sdk
sends them (JSON for chat.*, form or query string for the rest); `blocks` and `metadata` may be
JSON strings or already decoded. Every `blocks` array is validated against
tests/fixtures/slack/block-kit.schema.json (vendored, MIT) plus the 50-block message limit, answering
`invalid_blocks` as Slack does. Every call is recorded in `calls`.

Scopes are enforced as Slack does for a bot token: every answer carries the granted scopes in
the `x-oauth-scopes` header, and a method called without one of the scopes it needs answers
`{"ok": false, "error": "missing_scope", "needed": ..., "provided": ...}`. `FakeSlack(scopes=...)`
installs an app with fewer scopes (default: everything the monitor documents). Channels named in
`private` need `groups:*` scopes instead of `channels:*`.

Scripting (`fail_next`) applies to the next N calls of the given methods (default: all):
HTTP 429 with Retry-After, HTTP 500/503 (before doing anything, or with `after=True` once the
call has taken effect, as when Slack posts and then fails to answer), a permanent Slack error
code, or a timeout *after* accepting the call (the message is stored, then the answer is held
past the client timeout).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent / "fixtures" / "slack" / "block-kit.schema.json"
MAX_MESSAGE_BLOCKS = 50
MAX_TEXT = 40_000  # chat.postMessage truncates past 40k; we answer msg_too_long instead
PERMANENT_ERRORS = (
    "invalid_auth",
    "token_revoked",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "msg_too_long",
    "invalid_blocks",
)
# Everything the monitor's README asks for; an app installed with the full list.
ALL_SCOPES = ("chat:write", "channels:read", "channels:history", "groups:read", "groups:history")
# Which scope each method needs (one of), as in Slack's Web API spec; `*` = the channel's kind:
# "channels" for public channels, "groups" for private ones.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "conversations.history": ("*:history",),
    "conversations.replies": ("*:history",),
    "conversations.list": ("channels:read", "groups:read"),
}

_validator: Draft202012Validator | None = None


def block_validator() -> Draft202012Validator:
    global _validator
    if _validator is None:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        _validator = Draft202012Validator(schema)
    return _validator


def blocks_error(blocks: object) -> str | None:
    """None if `blocks` is acceptable in a message, else the schema/limit problem in words."""
    if isinstance(blocks, list) and len(blocks) > MAX_MESSAGE_BLOCKS:
        return f"{len(blocks)} blocks, more than {MAX_MESSAGE_BLOCKS}"
    error = next(iter(block_validator().iter_errors(blocks)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        return f"{where}: {error.message[:300]}"
    return None


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    time: float  # time.monotonic() when the request arrived
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    kind: str  # "status" | "status_after" | "error" | "timeout"
    methods: frozenset[str] | None
    status: int = 200
    retry_after: int | None = None
    error: str = ""
    delay: float = 0.0


class FakeSlack:
    """A Slack workspace with a few channels, one bot, and a script of failures."""

    def __init__(
        self,
        token: str = "xoxb-fake-token",
        channels: dict[str, str] | None = None,
        *,
        archived: tuple[str, ...] = (),
        not_member: tuple[str, ...] = (),
        ts_base: int | None = None,
        scopes: tuple[str, ...] = ALL_SCOPES,
        private: tuple[str, ...] = (),
    ) -> None:
        self.token = token
        self.scopes = tuple(scopes)
        self.private = set(private)
        # Slack ts values are Unix seconds + a sequence; by default they follow the wall clock
        # so `oldest=` history filters behave as they do on Slack.
        self.ts_base = int(time.time()) if ts_base is None else ts_base
        self.channels = dict(channels or {"alerts": "C0ALERTS01", "oncall": "C0ONCALL01", "ops": "C0OPS00001"})
        self.archived = set(archived)
        self.not_member = set(not_member)
        self.calls: list[Call] = []
        self.channels.setdefault("webhook", "C0WEBHOOK1")
        self._messages: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self.channels.values()}
        self._faults: deque[Fault] = deque()
        self._seq = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        """An incoming webhook that posts to the `webhook` channel (calls recorded as method "webhook")."""
        return f"http://127.0.0.1:{self.port}/services/T0FAKE/B0HOOK/secret"

    def start(self) -> FakeSlack:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-slack", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake Slack did not start")
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/services/{hook:.*}", self._handle_webhook)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Handlers still holding a scripted timeout are cancelled, not left dangling.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting and inspection --------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        error: str | None = None,
        timeout: float | None = None,
        methods: tuple[str, ...] | None = None,
        after: bool = False,
    ) -> None:
        """Script the next `n` matching calls: status=429/500/503 (`after=True`: answered once
        the call took effect), error="invalid_auth", or timeout=seconds (accept and store, then
        hold the answer that long)."""
        only = frozenset(methods) if methods else None
        if timeout is not None:
            fault = Fault("timeout", only, delay=timeout)
        elif error is not None:
            fault = Fault("error", only, error=error)
        elif status is not None:
            fault = Fault("status_after" if after else "status", only, status=status, retry_after=retry_after)
        else:
            raise ValueError("say what should fail: status, error or timeout")
        with self._lock:
            self._faults.extend(fault for _ in range(n))

    def channel_id(self, channel: str) -> str:
        return self.channels.get(channel.lstrip("#"), channel)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages in the channel, oldest first (what a person scrolls through)."""
        with self._lock:
            msgs = self._messages.get(self.channel_id(channel), [])
            return [dict(m) for m in msgs if not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("reply_broadcast")]

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies in the thread under `ts` (the parent excluded), oldest first."""
        with self._lock:
            msgs = self._messages.get(self.channel_id(channel), [])
            return [dict(m) for m in msgs if m.get("thread_ts") == ts and m["ts"] != ts]

    def all_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for msgs in self._messages.values() for m in msgs]

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    # --- HTTP ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        call = Call(method, params, time.monotonic())
        fault = self._take_fault(method)
        with self._lock:
            self.calls.append(call)
        if fault is not None and fault.kind == "status":
            body = {"ok": False, "error": "ratelimited" if fault.status == 429 else "fatal_error"}
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return self._answer(call, body, fault.status, headers)
        auth_error = self._auth_error(request, params)
        if auth_error:
            return self._answer(call, {"ok": False, "error": auth_error})
        if fault is not None and fault.kind == "error":
            return self._answer(call, {"ok": False, "error": fault.error})
        needed = self._missing_scope(method, params)
        if needed:
            return self._answer(call, {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(self.scopes)})
        handler = _METHODS.get(method)
        with self._lock:
            body = handler(self, params) if handler else {"ok": False, "error": "unknown_method"}
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.delay)  # the message is stored; the client gives up first
        if fault is not None and fault.kind == "status_after":  # it happened, the answer says it failed
            return self._answer(call, {"ok": False, "error": "fatal_error"}, fault.status)
        return self._answer(call, body)

    async def _handle_webhook(self, request: web.Request) -> web.Response:
        """Incoming webhook: JSON body, plain-text answers ("ok", "invalid_blocks", ...)."""
        params = await _read_params(request)
        call = Call("webhook", params, time.monotonic())
        fault = self._take_fault("webhook")
        with self._lock:
            self.calls.append(call)
            if fault is not None and fault.kind == "status":
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return self._answer_text(call, "rate_limited" if fault.status == 429 else "server_error", fault.status, headers)
            if fault is not None and fault.kind == "error":
                return self._answer_text(call, fault.error, 400)
            error = self._content_error(params)
            if error:
                return self._answer_text(call, error, 400)
            message = {"type": "message", "bot_id": "B0HOOK", "ts": self._next_ts(), "text": params.get("text", ""),
                       "blocks": params.get("blocks")}
            self._messages[self.channels["webhook"]].append(message)
        return self._answer_text(call, "ok")

    def _answer_text(self, call: Call, body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        call.status, call.response, call.headers = status, {"body": body}, dict(headers or {})
        return web.Response(text=body, status=status, headers=headers)

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.methods is None or method in fault.methods:
                    self._faults.remove(fault)
                    return fault
        return None

    def _auth_error(self, request: web.Request, params: dict[str, Any]) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else params.get("token")
        if not token:
            return "not_authed"
        return None if token == self.token else "invalid_auth"

    def _answer(self, call: Call, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        # Slack names the token's scopes on every Web API answer.
        headers = {**(headers or {}), "x-oauth-scopes": ",".join(self.scopes)}
        call.status, call.response, call.headers = status, body, dict(headers)
        return web.json_response(body, status=status, headers=headers)

    def _missing_scope(self, method: str, params: dict[str, Any]) -> str | None:
        """The scope Slack would name in `needed`, or None when the token may call `method`."""
        wanted = METHOD_SCOPES.get(method, ())
        if not wanted:
            return None
        if any(w.startswith("*:") for w in wanted):
            name = next((n for n, i in self.channels.items() if i == params.get("channel")), "")
            kind = "groups" if name in self.private else "channels"
            wanted = tuple(w.replace("*", kind) for w in wanted)
        return None if any(w in self.scopes for w in wanted) else wanted[0]

    # --- methods (called with the lock held) ----------------------------------------------

    def _next_ts(self) -> str:
        self._seq += 1
        return f"{self.ts_base + self._seq // 10000}.{(self._seq % 10000) * 100:06d}"

    def _resolve(self, channel: object, *, by_name: bool) -> tuple[str | None, str | None]:
        """(channel id, error). chat.postMessage accepts names; the other methods need ids."""
        if not isinstance(channel, str) or not channel:
            return None, "channel_not_found"
        cid = channel if channel in self._messages else None
        if cid is None and by_name:
            cid = self.channels.get(channel.lstrip("#"))
        if cid is None:
            return None, "channel_not_found"
        name = next(n for n, i in self.channels.items() if i == cid)
        if name in self.archived:
            return None, "is_archived"
        if name in self.not_member:
            return None, "not_in_channel"
        return cid, None

    def _content_error(self, params: dict[str, Any]) -> str | None:
        blocks = params.get("blocks")
        text = params.get("text")
        if blocks is None and not text:
            return "no_text"
        if isinstance(text, str) and len(text) > MAX_TEXT:
            return "msg_too_long"
        if blocks is not None and blocks_error(blocks) is not None:
            return "invalid_blocks"
        return None

    def _find(self, cid: str, ts: object) -> dict[str, Any] | None:
        return next((m for m in self._messages[cid] if m["ts"] == ts), None)

    def auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "monitor",
                "team_id": "T0FAKE", "user_id": "U0BOT", "bot_id": "B0BOT"}

    def post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._resolve(params.get("channel"), by_name=True)
        error = error or self._content_error(params)
        if error:
            return {"ok": False, "error": error}
        assert cid is not None
        thread_ts = params.get("thread_ts")
        if thread_ts and self._find(cid, thread_ts) is None:
            return {"ok": False, "error": "thread_not_found"}
        message = {
            "type": "message", "user": "U0BOT", "bot_id": "B0BOT", "ts": self._next_ts(),
            "text": params.get("text", ""), "blocks": params.get("blocks"),
            "metadata": params.get("metadata"),
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
            message["reply_broadcast"] = _truthy(params.get("reply_broadcast"))
            parent = self._find(cid, thread_ts)
            assert parent is not None
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = parent.get("reply_count", 0) + 1
        self._messages[cid].append(message)
        return {"ok": True, "channel": cid, "ts": message["ts"], "message": _public(message, True)}

    def update(self, params: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._resolve(params.get("channel"), by_name=False)
        error = error or self._content_error(params)
        if error:
            return {"ok": False, "error": error}
        assert cid is not None
        message = self._find(cid, params.get("ts"))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message["text"] = params.get("text", "")
        message["blocks"] = params.get("blocks")
        if params.get("metadata") is not None:
            message["metadata"] = params["metadata"]
        message["edited"] = {"user": "U0BOT", "ts": self._next_ts()}
        return {"ok": True, "channel": cid, "ts": message["ts"], "text": message["text"], "message": _public(message, True)}

    def history(self, params: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._resolve(params.get("channel"), by_name=False)
        if error:
            return {"ok": False, "error": error}
        assert cid is not None
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or 1e12)
        limit = int(params.get("limit") or 100)
        with_meta = _truthy(params.get("include_all_metadata"))
        top = [m for m in self._messages[cid] if not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("reply_broadcast")]
        chosen = [m for m in reversed(top) if oldest < float(m["ts"]) < latest][:limit]
        return {"ok": True, "messages": [_public(m, with_meta) for m in chosen], "has_more": False}

    def replies_method(self, params: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._resolve(params.get("channel"), by_name=False)
        if error:
            return {"ok": False, "error": error}
        assert cid is not None
        parent = self._find(cid, params.get("ts"))
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        with_meta = _truthy(params.get("include_all_metadata"))
        thread = [parent] + [m for m in self._messages[cid] if m.get("thread_ts") == parent["ts"] and m is not parent]
        return {"ok": True, "messages": [_public(m, with_meta) for m in thread], "has_more": False}

    def permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._resolve(params.get("channel"), by_name=False)
        if error:
            return {"ok": False, "error": error}
        assert cid is not None
        ts = str(params.get("message_ts", ""))
        if self._find(cid, ts) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": cid, "permalink": f"https://fake.slack.test/archives/{cid}/p{ts.replace('.', '')}"}

    def conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        # Private channels are listed only when asked for and readable (groups:read).
        types = str(params.get("types") or "public_channel").split(",")
        show_private = "private_channel" in types and "groups:read" in self.scopes
        show_public = "public_channel" in types and "channels:read" in self.scopes
        channels = [{"id": cid, "name": name, "is_channel": True, "is_private": name in self.private,
                     "is_archived": name in self.archived, "is_member": name not in self.not_member}
                    for name, cid in self.channels.items() if (show_private if name in self.private else show_public)]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}


_METHODS = {
    "auth.test": FakeSlack.auth_test,
    "chat.postMessage": FakeSlack.post_message,
    "chat.update": FakeSlack.update,
    "conversations.history": FakeSlack.history,
    "conversations.replies": FakeSlack.replies_method,
    "chat.getPermalink": FakeSlack.permalink,
    "conversations.list": FakeSlack.conversations_list,
}


def _public(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    shown = {k: v for k, v in message.items() if v is not None and k != "metadata"}
    if with_metadata and message.get("metadata"):
        shown["metadata"] = message["metadata"]
    return shown


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string + body (JSON or form), with JSON-string arguments decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.body_exists:
        if request.content_type == "application/json":
            data = await request.json()
            if isinstance(data, dict):
                params.update(data)
        else:
            params.update(dict(await request.post()))
    for key in ("blocks", "metadata", "attachments"):
        value = params.get(key)
        if isinstance(value, str):
            try:
                params[key] = json.loads(value)
            except json.JSONDecodeError:
                params[key] = value  # left as a string; blocks validation then rejects it
    return params

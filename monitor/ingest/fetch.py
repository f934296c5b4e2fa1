"""Conditional, bounded HTTP GETs of feeds, listing pages and article pages.

`Fetcher.fetch` never raises: every failure comes back as a `FetchResult` with an
`ErrorKind` and a sentence a human can act on. What bounds each request:

- global and per-host concurrency (semaphores), and for article pages a minimum interval
  between two requests to one host;
- connect and read timeouts from aiohttp, plus a total deadline (`asyncio.timeout`) so a
  server that dribbles one byte a second cannot hold a worker;
- a body cap applied to the *decompressed* bytes as they stream in (we decode gzip, deflate
  and brotli ourselves, in bounded steps, so a compression bomb stops at the cap);
- redirects followed by hand, each hop checked: http/https only, robots.txt for pages, and
  the address guard.

The address guard checks every connection of every request — feeds, pages, robots.txt,
article pages and each redirect hop — against the source's `AddressPolicy` (public
addresses only, unless the operator allowed more for that source), at connect time, as
Miniflux does in its dialer's Control hook: the connector's socket factory refuses to hand
out a socket for an address the policy does not allow, so the address checked is the address
connected to, whether it came from DNS, from an IP literal, or from a host that yarl's IDNA
handling turned into one (`http://１２７.０.０.１/` is 127.0.0.1). The resolver
(`GuardedResolver`) also drops refused addresses from DNS answers, so a name with one public
and one private address connects to the public one. Each policy gets its own connection
pool: a connection opened for a source allowed to reach 10.0.0.5 is never reused by a
source that is not. Hosts are taken from the URL exactly as aiohttp will (yarl), and that
parsed URL is what is requested.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import ipaddress
import logging
import socket
import ssl
import time
import zlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, Protocol
from urllib.parse import urljoin

import aiohttp
import brotli
from aiohttp.abc import AbstractResolver, ResolveResult
from protego import Protego
from yarl import URL

from monitor.config.addresses import (
    PUBLIC_ONLY,
    UNRESTRICTED,
    AddressPolicy,
    IPAddress,
    address_kind,
    is_public_address,
)
from monitor.config.settings import Http
from monitor.models import ErrorKind, FetchResult

log = logging.getLogger(__name__)

Kind = Literal["feed", "page", "article"]

ROBOTS_TTL = 3600.0  # seconds a robots.txt answer is trusted
ROBOTS_MAX_BODY = 512_000
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
REFUSED = "refusing to connect"  # how every address-guard message starts
ALLOW_HINT = "(a source may reach it only with allow_private or allow_networks)"
MAX_ERROR_CHARS = 300  # an error is a sentence for an operator, never a dump of server bytes
MAX_VALIDATOR_CHARS = 1024  # an ETag or Last-Modified longer than this is not one

# Sockets made for the request in progress: after a connect timeout on https, one that is
# still connected means TCP worked and the TLS handshake is what stalled.
_SOCKETS: contextvars.ContextVar[list[socket.socket] | None] = contextvars.ContextVar("sockets", default=None)

__all__ = ["AddressPolicy", "BlockedAddressError", "Fetcher", "GuardedResolver", "is_public_address"]


class BlockedAddressError(OSError):
    """The address guard refused every address a connection could go to."""


def _guarded_socket_factory(allowed: Callable[[IPAddress], bool]) -> Callable[[Any], socket.socket]:
    """aiohttp's socket factory, called with the address a socket is about to connect to:
    refuse it there (Miniflux's dialer Control), whatever the host looked like in the URL."""

    def make_socket(addr_info: Any) -> socket.socket:
        family, type_, proto, _canonname, sockaddr = addr_info
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not allowed(ip):
            raise BlockedAddressError(f"{REFUSED} to {ip}: {address_kind(ip)}, not a public one {ALLOW_HINT}")
        return _tracked(socket.socket(family=family, type=type_, proto=proto))

    return make_socket


def _tracked(sock: socket.socket) -> socket.socket:
    made = _SOCKETS.get()
    if made is not None:
        made.append(sock)
    return sock


def _plain_socket_factory() -> Callable[[Any], socket.socket]:
    def make_socket(addr_info: Any) -> socket.socket:
        family, type_, proto, _canonname, _sockaddr = addr_info
        return _tracked(socket.socket(family=family, type=type_, proto=proto))


    return make_socket


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and drops every address `allowed` refuses, at connect time."""

    def __init__(self, inner: AbstractResolver, allowed: Callable[[IPAddress], bool]) -> None:
        self._inner = inner
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        kept = [a for a in answers if self._allowed(ipaddress.ip_address(a["host"].split("%")[0]))]
        if not kept:
            shown = ", ".join(sorted({a["host"] for a in answers}))
            raise BlockedAddressError(f"{REFUSED}: {host} resolves only to non-public addresses ({shown})")
        return kept

    async def close(self) -> None:
        await self._inner.close()


class _Failure(Exception):
    """A classified failure inside one fetch; turned into a FetchResult at the top."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind, self.message, self.status, self.retry_after = kind, message, status, retry_after


@dataclass(slots=True)
class _Response:
    url: str
    status: int
    body: bytes
    content_type: str | None
    etag: str | None = None
    last_modified: str | None = None
    retry_after: str | None = None  # raw header, on 429/503


class _Decoder:
    """Incremental decoding of a Content-Encoding that never yields more than asked for."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._zlib: Any = None
        self._brotli: Any = None
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = None  # zlib-wrapped or raw: decided on the first bytes
        elif encoding == "br":
            self._brotli = brotli.Decompressor()
        elif encoding not in ("", "identity"):
            raise _Failure(ErrorKind.OTHER, f"unsupported content encoding {encoding!r}")

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode `data`; returns at most `limit` bytes (more input left means over the cap)."""
        if self.encoding == "deflate" and self._zlib is None:
            # RFC says zlib-wrapped, many servers send raw deflate: look at the header byte.
            raw = not data or (data[0] & 0x0F) != 8
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        try:
            if self._zlib is not None:
                return self._zlib.decompress(data, limit)
            if self._brotli is not None:
                return self._brotli.process(data, output_buffer_limit=limit)
        except (zlib.error, brotli.error) as exc:
            raise _Failure(ErrorKind.OTHER, f"the {self.encoding} body is corrupt: {exc}") from exc
        return data

    def finished(self) -> bool:
        """True when the compressed stream reached its end marker (always, for identity)."""
        if self._zlib is not None:
            return bool(self._zlib.eof)
        if self._brotli is not None:
            return bool(self._brotli.is_finished())
        return self.encoding in ("", "identity")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value[:20])  # more digits than that is 'forever' anyway: capped later
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _mb(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


def request_host(url: str) -> str:
    """The host a request to `url` is counted against (`http.per_host`, a gate's slots); ""
    for a URL the fetch will refuse."""
    try:
        return URL(url).raw_host or ""
    except (ValueError, UnicodeError):
        return ""


class HostGate(Protocol):
    """Politeness shared with other processes (the distributed mode's fetch workers): the
    Fetcher's own limits hold within one process, a gate holds them over all of them."""

    def slot(self, host: str) -> AbstractAsyncContextManager[object]:
        """One of the host's `http.per_host` request slots, over every process."""
        ...

    async def article_pause(self, host: str) -> None:
        """Wait for this host's next article-page time, over every process (the caller holds
        one of the host's slots, so the page goes out right after)."""
        ...


class Fetcher:
    """One per process (or per cycle). Use as `async with Fetcher(settings.http) as f:`."""

    def __init__(
        self,
        http: Http,
        *,
        resolver: AbstractResolver | None = None,
        public_address: Callable[[IPAddress], bool] = is_public_address,
        gate: HostGate | None = None,
    ) -> None:
        # `public_address` is a test seam: which resolved addresses count as public.
        self.http = http
        self.gate = gate
        self._resolver = resolver
        self._public_address = public_address
        self._global = asyncio.Semaphore(http.concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._next_article_slot: dict[str, float] = {}
        self._robots: dict[str, tuple[float, Protego | None]] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._base_resolver: AbstractResolver | None = None
        # One session (one connection pool) per address policy: a connection opened under a
        # wider policy must never carry a request that policy does not cover.
        self._sessions: dict[AddressPolicy, aiohttp.ClientSession] = {}
        self._open = False

    async def __aenter__(self) -> Fetcher:
        self._base_resolver = self._resolver or aiohttp.ThreadedResolver()
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    def policy(self, allow: AddressPolicy | None) -> AddressPolicy:
        """The policy a request runs under: the source's, or none at all when the operator
        switched the guard off for the whole process (http.allow_private_addresses)."""
        if self.http.allow_private_addresses:
            return UNRESTRICTED
        return allow or PUBLIC_ONLY

    def _session_for(self, policy: AddressPolicy) -> aiohttp.ClientSession:
        session = self._sessions.get(policy)
        if session is None:
            if not self._open or self._base_resolver is None:
                raise RuntimeError("Fetcher used outside 'async with'")
            session = self._sessions[policy] = self._make_session(policy)
        return session

    def _make_session(self, policy: AddressPolicy) -> aiohttp.ClientSession:
        assert self._base_resolver is not None
        resolver: AbstractResolver = self._base_resolver
        socket_factory = _plain_socket_factory()
        if not policy.unrestricted:

            def allowed(ip: IPAddress) -> bool:
                return policy.allows(ip, self._public_address)

            resolver = GuardedResolver(resolver, allowed)
            socket_factory = _guarded_socket_factory(allowed)
        connector = aiohttp.TCPConnector(
            resolver=resolver,
            limit=self.http.concurrency,
            limit_per_host=0,
            # Cached answers are safe: the socket factory checks the address at every connect.
            use_dns_cache=True,
            socket_factory=socket_factory,
        )
        timeout = aiohttp.ClientTimeout(
            total=None,  # the deadline is ours (asyncio.timeout), so it also covers our own waits
            sock_connect=self.http.connect_timeout.total_seconds(),
            sock_read=self.http.read_timeout.total_seconds(),
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,  # we decode ourselves, bounded by max_body
            trust_env=False,  # no proxies from the environment: the guard must see real hosts
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": self.http.user_agent, "Accept-Encoding": "gzip, deflate, br"},
        )

    # ------------------------------------------------------------------ public

    async def fetch(
        self,
        source_id: str,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        body_hash: str | None = None,
        kind: Kind = "feed",
        now: datetime | None = None,
        allow: AddressPolicy | None = None,
    ) -> FetchResult:
        """Conditional GET of `url`; a FetchResult for every outcome, never an exception.

        `allow` is the source's address policy (public addresses only when None); it
        covers every hop and the robots.txt of every origin on the way."""
        now = now or datetime.now(UTC)
        started = time.monotonic()
        result = FetchResult(source_id=source_id, url=url, final_url=url, fetched_at=now)
        try:
            response = await self._follow(url, kind, etag, last_modified, now, self.policy(allow))
            result = self._success(result, response, etag, last_modified, body_hash)
        except _Failure as failure:
            result = replace(
                result,
                error_kind=failure.kind,
                error=failure.message,
                status=failure.status,
                retry_after=failure.retry_after,
            )
        except Exception as exc:  # a bug or an exotic library error: keep the cycle alive
            log.warning("unexpected error fetching %s: %s", _short(url), _short(repr(exc)), exc_info=True)
            result = replace(result, error_kind=ErrorKind.OTHER, error=f"unexpected error: {exc!r}")
        if result.error is not None:
            result = replace(result, error=bounded(result.error))
        if result.error_kind is not None:
            log.info(
                "fetch %s %s failed: %s: %s", source_id, url, result.error_kind.value, result.error
            )
        return replace(result, elapsed=time.monotonic() - started)

    # --------------------------------------------------------------- internals

    def _success(
        self,
        result: FetchResult,
        response: _Response,
        etag: str | None,
        last_modified: str | None,
        body_hash: str | None,
    ) -> FetchResult:
        common = dict(
            final_url=response.url,
            status=response.status,
            content_type=response.content_type,
            etag=_validator(response.etag, "ETag", response.url) or etag,
            last_modified=_validator(response.last_modified, "Last-Modified", response.url) or last_modified,
        )
        if response.status == 304:
            return replace(result, not_modified=True, body_hash=body_hash, **common)  # type: ignore[arg-type]
        digest = hashlib.sha256(response.body).hexdigest()
        if body_hash is not None and digest == body_hash:
            return replace(result, not_modified=True, body_hash=digest, **common)  # type: ignore[arg-type]
        return replace(result, body=response.body, body_hash=digest, **common)  # type: ignore[arg-type]

    async def _follow(
        self,
        url: str,
        kind: Kind,
        etag: str | None,
        last_modified: str | None,
        now: datetime,
        policy: AddressPolicy,
    ) -> _Response:
        """Request `url`, following redirects by hand so every hop is checked."""
        budget = [self.http.deadline.total_seconds()]  # active time left, shared by all hops
        for _hop in range(self.http.max_redirects + 1):
            target = self._check_url(url, policy)
            host = target.raw_host or ""
            if kind == "page" and not await self._robots_allow(target, policy):
                raise _Failure(ErrorKind.ROBOTS, f"robots.txt of {host} disallows {url}")
            response = await self._request(
                target, policy, etag, last_modified, budget, self.http.max_body,
                article=kind == "article",
            )
            if response.status not in REDIRECT_STATUSES:
                return self._check_status(
                    response, sent_validators=bool(etag or last_modified), now=now
                )
            url = response.url  # _request put the resolved Location here
        raise _Failure(
            ErrorKind.TOO_MANY_REDIRECTS,
            f"more than {self.http.max_redirects} redirects, last to {url}",
        )

    def _check_url(self, url: str, policy: AddressPolicy) -> URL:
        """The URL as aiohttp will see it (yarl, with its IDNA mapping), checked: http(s), a
        host, and an IP-literal host the policy allows (a name is checked at connect time)."""
        shown = _short(url)
        try:
            target = URL(url)
            host = target.raw_host or ""
            _ = target.port  # raises on a malformed port
        except (ValueError, UnicodeError) as exc:
            raise _Failure(ErrorKind.BAD_URL, f"malformed URL {shown}: {_short(str(exc), 120)}") from exc
        if target.scheme not in ("http", "https"):
            raise _Failure(
                ErrorKind.BAD_URL,
                f"only http and https URLs are fetched, not {_short(target.scheme, 20) or 'a scheme-less'} URL {shown}",
            )
        if not host:
            raise _Failure(ErrorKind.BAD_URL, f"URL {shown} has no host")
        self._check_literal_address(host, policy)
        return target

    def _check_literal_address(self, host: str, policy: AddressPolicy) -> None:
        """Refuse a private IP literal before anything is sent. The socket factory would
        refuse it too; this gives the clearer message and opens no socket at all."""
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return  # a name: the guarded resolver and socket factory check what it resolves to
        if not policy.allows(ip, self._public_address):
            raise _Failure(
                ErrorKind.BLOCKED_ADDRESS,
                f"{REFUSED} to {ip}: {address_kind(ip)}, not a public one {ALLOW_HINT}",
            )

    async def _article_pause(self, host: str) -> None:
        """Space article requests to one host by `article_min_interval` (reserve, then sleep)."""
        if self.gate is not None:
            await self.gate.article_pause(host)
            return
        interval = self.http.article_min_interval.total_seconds()
        now = time.monotonic()
        slot = max(now, self._next_article_slot.get(host, now))
        self._next_article_slot[host] = slot + interval
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _request(
        self,
        target: URL,
        policy: AddressPolicy,
        etag: str | None,
        last_modified: str | None,
        budget: list[float],
        cap: int,
        *,
        article: bool = False,
    ) -> _Response:
        host = target.raw_host or ""
        per_host = self._per_host.setdefault(host, asyncio.Semaphore(self.http.per_host))
        shared = self.gate.slot(host) if self.gate is not None else contextlib.nullcontext()
        async with per_host, shared:
            if article:
                # Paced holding the host's slot: an article page that waited for a slot (a slow
                # request held it) would otherwise go out right behind another one, its turn
                # long past. The global slot is taken after the pause, so no host's pause
                # holds up the others.
                await self._article_pause(host)
            async with self._global:
                return await self._exchange_within_deadline(target, policy, etag, last_modified, budget, cap)

    async def _exchange_within_deadline(
        self,
        target: URL,
        policy: AddressPolicy,
        etag: str | None,
        last_modified: str | None,
        budget: list[float],
        cap: int,
    ) -> _Response:
        """One request, holding its slots, within what is left of the deadline."""
        host = target.raw_host or ""
        # The deadline counts only time spent holding a slot: waiting in line is not the
        # server's fault, and a slow server then cannot hold the slot beyond the deadline.
        started = time.monotonic()
        sockets: list[socket.socket] = []
        token = _SOCKETS.set(sockets)
        try:
            async with asyncio.timeout(max(budget[0], 0.001)):
                return await self._exchange(target, policy, etag, last_modified, cap)
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ServerTimeoutError):
                phase = _timeout_phase(exc, target.scheme == "https" and any(map(_connected, sockets)))
                raise _Failure(ErrorKind.TIMEOUT, f"{host} {phase}") from exc
            raise _Failure(
                ErrorKind.TIMEOUT,
                f"{host} did not finish within the {self.http.deadline.total_seconds():g} s deadline",
            ) from exc
        except aiohttp.ClientError as exc:
            raise _classify(exc, host) from exc
        except (ssl.SSLError, OSError) as exc:
            raise _classify(exc, host) from exc
        finally:
            _SOCKETS.reset(token)
            budget[0] -= time.monotonic() - started

    async def _exchange(
        self, target: URL, policy: AddressPolicy, etag: str | None, last_modified: str | None, cap: int
    ) -> _Response:
        session = self._session_for(policy)
        url = str(target)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with session.get(target, headers=headers, allow_redirects=False) as resp:
            if resp.status in REDIRECT_STATUSES:
                return _Response(_redirect_target(resp, url), resp.status, b"", None)
            if not 200 <= resp.status < 300:  # error bodies are not read
                return _Response(
                    url, resp.status, b"", None, retry_after=resp.headers.get("Retry-After")
                )
            body = await self._read_body(resp, cap)
            return _Response(
                url,
                resp.status,
                body,
                resp.headers.get("Content-Type"),
                resp.headers.get("ETag"),
                resp.headers.get("Last-Modified"),
            )

    async def _read_body(self, resp: aiohttp.ClientResponse, cap: int) -> bytes:
        if resp.content_length is not None and resp.content_length > cap:
            raise _Failure(
                ErrorKind.TOO_LARGE,
                f"body of {_mb(resp.content_length)} announced, over the {_mb(cap)} limit",
                status=resp.status,
            )
        decoder = _Decoder(resp.headers.get("Content-Encoding", "").strip().lower())
        parts: list[bytes] = []
        size = 0

        def keep(out: bytes) -> None:
            nonlocal size
            size += len(out)
            if size > cap:
                raise _Failure(ErrorKind.TOO_LARGE, f"body exceeds {_mb(cap)} after decompression", status=resp.status)
            parts.append(out)

        def room() -> int:
            return cap - size + 1  # one byte more than allowed proves overflow

        async for chunk in resp.content.iter_chunked(65536):
            keep(decoder.feed(chunk, room()))
            # A decoder holding back output (limit reached exactly) must be drained too.
            while decoder.encoding not in ("", "identity") and _has_pending(decoder):
                out = decoder.feed(b"", room())
                if not out:
                    break
                keep(out)
        if not decoder.finished():
            # The body stopped inside the compressed stream (a cut that Content-Length agrees
            # with): what was decoded is a fragment, not the document.
            raise _Failure(
                ErrorKind.OTHER,
                f"the {decoder.encoding} body ends before its compressed stream does (truncated)",
                status=resp.status,
            )
        return b"".join(parts)

    def _check_status(
        self, response: _Response, *, sent_validators: bool, now: datetime
    ) -> _Response:
        status = response.status
        if status == 304 and not sent_validators:
            raise _Failure(
                ErrorKind.HTTP_STATUS,
                "server answered 304 Not Modified although we sent no validators",
                status=304,
            )
        if status == 304 or 200 <= status < 300:
            return response
        retry_after = (
            retry_after_seconds(response.retry_after, now) if status in (429, 503) else None
        )
        reason = f"HTTP {status}"
        if retry_after is not None:
            longest = self.http.backoff_max.total_seconds()
            if retry_after > longest:
                # A server may ask for a pause, not for silence: 'Fri, 31 Dec 9999' or 10^12 s
                # would stop the source for good (and across restarts, from the stored state).
                reason += f" (asked to wait {_wait(retry_after)}; waiting http.backoff_max, {_wait(longest)})"
                retry_after = longest
            else:
                reason += f" (retry after {retry_after:g} s)"
        raise _Failure(
            ErrorKind.HTTP_STATUS,
            f"{reason} from {response.url}",
            status=status,
            retry_after=retry_after,
        )

    async def _robots_allow(self, target: URL, policy: AddressPolicy) -> bool:
        origin = str(target.origin())
        async with self._robots_locks.setdefault(origin, asyncio.Lock()):
            cached = self._robots.get(origin)
            if cached is None or cached[0] < time.monotonic():
                cached = (time.monotonic() + ROBOTS_TTL, await self._load_robots(origin, policy))
                self._robots[origin] = cached
        rules = cached[1]
        return rules is None or rules.can_fetch(str(target), self.http.user_agent)

    async def _load_robots(self, origin: str, policy: AddressPolicy) -> Protego | None:
        """Parsed robots.txt, or None (allow everything) when it is missing or unreadable."""
        try:
            response = await self._robots_response(origin + "/robots.txt", policy)
        except _Failure as failure:
            log.info("robots.txt of %s unavailable (%s): allowing", origin, failure.message)
            return None
        if response.status != 200:
            return None
        try:
            return Protego.parse(response.body.decode("utf-8", errors="replace"))
        except Exception as exc:  # protego is lenient, but a parser bug must not block a source
            log.warning("robots.txt of %s unreadable (%s): allowing", origin, exc)
            return None

    async def _robots_response(self, url: str, policy: AddressPolicy) -> _Response:
        budget = [self.http.deadline.total_seconds()]
        for _hop in range(self.http.max_redirects + 1):
            target = self._check_url(url, policy)
            response = await self._request(
                target, policy, None, None, budget, min(self.http.max_body, ROBOTS_MAX_BODY)
            )
            if response.status not in REDIRECT_STATUSES:
                return response
            url = response.url
        raise _Failure(ErrorKind.TOO_MANY_REDIRECTS, "robots.txt redirects too often")


def _has_pending(decoder: _Decoder) -> bool:
    if decoder._zlib is not None:
        return bool(decoder._zlib.unconsumed_tail)
    if decoder._brotli is not None:
        return not decoder._brotli.can_accept_more_data()
    return False


def _redirect_target(resp: aiohttp.ClientResponse, url: str) -> str:
    location = resp.headers.get("Location")
    if not location:
        raise _Failure(
            ErrorKind.HTTP_STATUS,
            f"HTTP {resp.status} redirect without a Location from {_short(url)}",
            status=resp.status,
        )
    try:
        return urljoin(url, location)
    except ValueError as exc:  # 'http://[::1/x': an unclosed IPv6 bracket, a bad port
        raise _Failure(
            ErrorKind.BAD_URL,
            f"HTTP {resp.status} redirect to a malformed address {_short(location)} from {_short(url)}",
            status=resp.status,
        ) from exc


def _short(text: str, limit: int = 200) -> str:
    """Server-chosen text (a URL, a header) as it goes into a message: bounded, repr-quoted."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _timeout_phase(exc: aiohttp.ServerTimeoutError, tcp_connected: bool) -> str:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        if tcp_connected:
            return "accepted the connection but the TLS handshake stalled (no answer in time)"
        return "did not accept a connection in time"
    return "stopped sending data (read timeout)"


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def _wait(seconds: float) -> str:
    if seconds >= 86400 * 365:
        return "more than a year"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:g} s"


def bounded(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One line of at most `limit` characters: what is stored and printed as an error."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _validator(value: str | None, name: str, url: str) -> str | None:
    """An ETag or Last-Modified we can store and send back, else None (the body hash still
    tells an unchanged feed). Bytes that are not UTF-8 arrive as surrogates, which neither
    the store nor the next request's headers can encode."""
    if not value:
        return None
    if len(value) > MAX_VALIDATOR_CHARS or not value.isprintable() or _has_surrogates(value):
        log.info("ignoring an unusable %s header from %s (%d characters)", name, _short(url), len(value))
        return None
    return value


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _classify(exc: BaseException, host: str) -> _Failure:
    """Map an aiohttp/socket error to the ErrorKind an operator can act on."""
    if isinstance(exc, aiohttp.ClientConnectorError) and (
        isinstance(exc.os_error, BlockedAddressError) or REFUSED in str(exc.os_error)
    ):
        # From the resolver (a name) or the socket factory (any address, at connect time;
        # several refused addresses arrive as one OSError naming them all).
        return _Failure(ErrorKind.BLOCKED_ADDRESS, str(exc.os_error))
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return _Failure(ErrorKind.DNS, f"the name {host} could not be resolved")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return _Failure(
            ErrorKind.TLS,
            f"the TLS certificate of {host} was not accepted: {exc.certificate_error}",
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError | ssl.SSLError):
        reason = str(getattr(exc, "os_error", None) or exc)
        if any(sign in reason.upper() for sign in _PLAIN_HTTP_SIGNS):
            return _Failure(ErrorKind.TLS, f"{host}: this port speaks plain HTTP, not TLS (try http://)")
        return _Failure(ErrorKind.TLS, f"TLS handshake with {host} failed: {bounded(reason, 160)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _Failure(
            ErrorKind.CONNECT,
            f"could not connect to {host}: {exc.os_error.strerror or exc.os_error}",
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return _Failure(ErrorKind.BAD_URL, f"invalid URL for {host}: {exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return _Failure(
            ErrorKind.OTHER, f"{host} closed the connection before the body was complete"
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp's parser refused the status line or headers; its message quotes them.
        return _Failure(ErrorKind.OTHER, f"the server's response was not valid HTTP ({host})")
    return _Failure(ErrorKind.OTHER, f"request to {host} failed: {bounded(repr(exc), 200)}")


# What OpenSSL says when the other end answered a ClientHello with plain-text HTTP.
_PLAIN_HTTP_SIGNS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG")

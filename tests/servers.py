"""A real HTTP server on 127.0.0.1 for tests: routes of bytes or aiohttp handlers.

The server runs its own event loop in a background thread, so it serves sync and async
tests alike and a handler that sleeps never blocks the code under test::

    with LocalServer() as server:
        server.add("/feed.xml", b"<rss/>", content_type="application/rss+xml")
        server.add("/slow", slow_handler)           # async def slow_handler(request) -> Response
        url = server.url("/feed.xml")
        ...
        assert server.hits["/feed.xml"] == 1

Or as a pytest fixture: `from tests.servers import local_server` in a test module, then
take `local_server` as an argument. Handlers run in the server thread; keep shared state
simple (counters, lists) and read it after the requests are done.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType

import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LocalServer:
    """aiohttp.web on 127.0.0.1 (or another loopback address), port chosen by the OS, in a
    background thread."""

    def __init__(
        self,
        routes: Mapping[str, bytes | str | Handler] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        assert host.startswith("127."), "test servers listen on loopback only"
        self.host = host  # another 127.x address plays an internal host in address-guard tests
        self._ssl = ssl_context  # serve https with this context (e.g. a self-signed cert)
        self._routes: dict[str, Handler] = {}
        self.hits: Counter[str] = Counter()  # path → number of requests
        self.requests: list[web.Request] = []  # every request, in arrival order
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        for path, target in (routes or {}).items():
            self.add(path, target)

    # -------------------------------------------------------------- routes

    def add(
        self,
        path: str,
        target: bytes | str | Handler,
        *,
        status: int = 200,
        content_type: str = "text/plain",
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Serve `target` at `path` (replacing any earlier route); returns the full URL."""
        if isinstance(target, bytes | str):
            self._routes[path] = _static(target, status, content_type, headers or {})
        else:
            self._routes[path] = target
        return self.url(path)

    def url(self, path: str = "/") -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{self.host}:{self.port}{path}"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        self.requests.append(request)
        handler = self._routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not found")
        return await handler(request)

    # ----------------------------------------------------------- lifecycle

    def start(self) -> LocalServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        ready.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # A short shutdown timeout: slow-drip handlers must not hold the test run.
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self._ssl)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _static(
    body: bytes | str, status: int, content_type: str, headers: Mapping[str, str]
) -> Handler:
    data = body.encode("utf-8") if isinstance(body, str) else body

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=data, status=status, headers={"Content-Type": content_type, **headers}
        )

    return handler


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A started LocalServer with no routes; add them in the test."""
    with LocalServer() as server:
        yield server


class RawServer:
    """A TCP server on 127.0.0.1 that answers every connection with fixed bytes, for
    responses aiohttp's server would refuse to send (non-UTF-8 headers, broken HTTP, a
    Content-Length that matches a cut gzip stream) or no answer at all (`reply=None`: it
    accepts and stays silent, as a stalled TLS server does).

        with RawServer(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi") as raw:
            url = raw.url("/feed")
    """

    def __init__(self, reply: bytes | None, *, hold: float = 5.0) -> None:
        self.reply = reply
        self.hold = hold  # seconds a silent connection is kept open
        self.connections = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.reply is None:
                await asyncio.sleep(self.hold)
                return
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(self.reply)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except asyncio.CancelledError:
            return
        finally:
            writer.close()

    def __enter__(self) -> RawServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("raw test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None and self._server is not None
        loop, server = self._loop, self._server

        async def shut() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shut(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()

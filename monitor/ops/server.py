"""The monitor's own small HTTP server: `/metrics`, `/healthz`, `/readyz`.

Off by default (`server.enabled`), bound to 127.0.0.1 unless `server.host` says otherwise:
the endpoints carry no secrets, but source ids and channel names are nobody else's business.

- `/healthz`: the process and its event loop answer → 200. For liveness probes: a monitor
  whose loop is blocked does not answer and gets restarted.
- `/readyz`: 200 when the store answers a query, the scheduler is running and a
  configuration is loaded; otherwise 503 with `{"ready": false, "reasons": [...]}`. For
  readiness probes and the container HEALTHCHECK's stricter sibling.
- `/metrics`: Prometheus text from `monitor.ops.metrics.REGISTRY`. The gauges that describe the
  store (outbox depth, developments by state, each configured source's last success) are
  refreshed from it at scrape time, so they are right even right after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from monitor.config.holder import ConfigHolder
from monitor.config.load import ConfigError, ConfigProblem
from monitor.ops import metrics
from monitor.store import Store, stats

log = logging.getLogger(__name__)

PING_TIMEOUT_SECONDS = 5.0
HEALTH_PATHS = ("/healthz", "/readyz", "/metrics")

class AppLike(Protocol):
    """What the server reads from `monitor.run.app.App`."""

    holder: ConfigHolder
    store: Store


class ServiceLike(Protocol):
    """What the server reads from `monitor.run.scheduler.Service`."""

    ready: bool


@dataclass
class RunningServer:
    """A started server; `url` is where it listens (the real port when 0 was asked for)."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextlib.asynccontextmanager
async def serve_if_enabled(
    app: AppLike, service: ServiceLike, *, port: int | None = None
) -> AsyncIterator[RunningServer | None]:
    """Serve the endpoints for the body of the `async with` when `server.enabled` is set.

    `port` overrides `server.port` (tests pass 0 for a free port). Yields None when disabled.
    """
    settings = app.holder.settings.server
    if not settings.enabled:
        yield None
        return
    try:
        server = await start_server(app, service, settings.host, settings.port if port is None else port)
    except OSError as exc:
        # A port in use or an address not on this host: one clear line naming the setting.
        problem = ConfigProblem(str(app.holder.path), None, "server", exc.strerror or str(exc))
        raise ConfigError([problem]) from exc
    try:
        yield server
    finally:
        await server.runner.cleanup()


async def start_server(app: AppLike, service: ServiceLike, host: str, port: int) -> RunningServer:
    runner = web.AppRunner(build_web_app(app, service), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from exc
    bound = _bound_port(site) or port
    log.info("metrics and health endpoints listening", extra={"url": f"http://{host}:{bound}"})
    return RunningServer(runner, host, bound)


def build_web_app(app: AppLike, service: ServiceLike) -> web.Application:
    web_app = web.Application()

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(_request: web.Request) -> web.Response:
        reasons = await readiness_problems(app, service)
        status = 503 if reasons else 200
        return web.json_response({"ready": not reasons, "reasons": reasons}, status=status)

    async def metrics_page(_request: web.Request) -> web.Response:
        await asyncio.to_thread(refresh_store_gauges, app.store, _source_ids(app))
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics_page)
    return web_app


async def readiness_problems(app: AppLike, service: ServiceLike) -> list[str]:
    """Why the monitor is not ready; empty when it is."""
    reasons: list[str] = []
    if getattr(app.holder, "settings", None) is None:
        reasons.append("configuration not loaded")
    if not service.ready:
        reasons.append("scheduler not running")
    try:
        # ping() blocks (a driver call); a hung database must not hang the probe as well.
        reachable = await asyncio.wait_for(asyncio.to_thread(app.store.ping), PING_TIMEOUT_SECONDS)
    except TimeoutError:
        reachable = False
    if not reachable:
        reasons.append(f"store not reachable ({app.store.url})")
    return reasons


def _source_ids(app: AppLike) -> set[str]:
    settings = getattr(app.holder, "settings", None)
    return {source.id for source in settings.sources} if settings is not None else set()


def refresh_store_gauges(store: Store, source_ids: set[str] | None = None) -> None:
    """Outbox depth, developments by state and the configured sources' last success, read
    from the store (never raises)."""
    try:
        with store.connect() as conn:
            read = stats.gauges(conn)
    except Exception as exc:  # an unreachable store shows on /readyz; keep the last values here
        log.warning("metrics: cannot read the store: %s", exc)
        return
    metrics.set_outbox_depth(read.waiting_alerts)
    metrics.set_developments(read.developments_by_state)
    for source_id, when in read.last_ok.items():
        if source_ids is None or source_id in source_ids:
            metrics.set_last_success(source_id, when)


def _bound_port(site: web.TCPSite) -> int | None:
    server: Any = site._server  # aiohttp keeps the asyncio server here; no public accessor
    sockets = getattr(server, "sockets", None) or ()
    for sock in sockets:
        return int(sock.getsockname()[1])
    return None


__all__ = ["RunningServer", "build_web_app", "readiness_problems", "serve_if_enabled", "start_server"]


@contextlib.asynccontextmanager
async def local_site(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 at a free port for the duration; yields its base URL. For the
    demo's sample feeds and the evaluation's outlets: only this machine can reach it."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{_bound_port(site)}"
    finally:
        await runner.cleanup()

"""Distributed throughput: the one-process install beside 1, 2 and 4 fetch workers, one farm.

Contenders, each with its own state, all against the same feed farm (2,000 feeds, 50 ms per
answer, each feed on a loopback host of its own), every one with `http.concurrency: 10`
(10 requests in flight per process):

- ``one-process``: `monitor run` on SQLite (`bench.peers.monitor_driver`, the code of
  `run --once`);
- ``base``: the same, from the last commit before the distributed mode (``BASE_REV``, the
  "no slower than today" check), extracted with `git archive`; skipped when that is not possible;
- ``workers=N``: `monitor worker --concurrency 1` × N (one pool child each, so 10 in flight per
  worker), `monitor run --role analysis`, and a leader in `bench.peers.cluster_driver`, on a
  PostgreSQL schema of their own and a RabbitMQ queue of their own;
- ``workers=N, 2 children``: the same with `monitor worker --concurrency 2` (the shape compose
  and Kubernetes deploy) and `http.concurrency: 5`, so still 10 in flight per worker. A pool
  child runs one batch at a time and a batch ends with its slowest poll; two children fill
  each other's tails.

Each contender's first cycle (every feed new) fills its state; then, ``runs`` times, the farm
changes 5 % of its feeds and every contender runs one steady cycle, in an order that rotates
from run to run. A distributed cycle lasts until every source was polled *and* the analysis
owner analysed every poll (the one-process cycle does both too). Ratios are taken within each
run (side by side) and the median over runs is reported.

PostgreSQL and the broker: ``MONITOR_BENCH_POSTGRES_URL`` and ``MONITOR_BENCH_BROKER_URL``,
else the test variables (``MONITOR_TEST_POSTGRES_URL``, ``MONITOR_TEST_BROKER_URL``), else the
local services (127.0.0.1:5432 database ``test``, 127.0.0.1:5672 guest). Only loopback
addresses are used; without the services the part is skipped and the table says why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import PYTHON, ROOT, LongLived, child_env, median, progress, tree_cpu
from bench.config import write_config
from bench.farm import Farm
from bench.poll import STEADY_FRACTION

# The last commit before the distributed mode (issue 15): "the one-process install's steady
# cycle no slower than today" compares against it.
BASE_REV = "ac03ae3d364367cfa4ca185aa39a155e7eaa8030"
IN_FLIGHT = 10  # requests in flight per contender: the one process, or each worker (over its children)
WORKER_COUNTS = (1, 2, 4)
CHILD_LAYOUTS = (1, 2)  # pool children per worker; IN_FLIGHT is split among them
CYCLE_TIMEOUT = 1800.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def services() -> tuple[str, str] | str:
    """(PostgreSQL URL, broker URL), or why the part cannot run here."""
    pg = os.environ.get("MONITOR_BENCH_POSTGRES_URL") or os.environ.get("MONITOR_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    broker = os.environ.get("MONITOR_BENCH_BROKER_URL") or os.environ.get("MONITOR_TEST_BROKER_URL") or DEFAULT_BROKER
    for url in (pg, broker):
        host = urlsplit(url.replace("+psycopg", "")).hostname or ""
        if host not in LOOPBACK:
            return f"{host} is not a loopback address: the bench only sends traffic to this machine"
    try:
        import celery  # noqa: F401
        from kombu import Connection
        from sqlalchemy import create_engine, text

        engine = create_engine(pg)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        with Connection(broker, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install '.[distributed]')"
    except Exception as exc:
        return f"PostgreSQL or the broker is not reachable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return pg, broker


@contextlib.contextmanager
def postgres_schema(base_url: str, name: str) -> Iterator[str]:
    """A schema of the contender's own; the URL that uses it. Dropped afterwards."""
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={name}", "application_name": name})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def service_cpu(names: tuple[str, ...]) -> dict[int, float]:
    """CPU seconds so far of every process with one of these names (PostgreSQL's backends,
    RabbitMQ's VM), by pid: where the distributed mode's extra work lands."""
    import psutil

    found: dict[int, float] = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] in names and proc.info["cpu_times"] is not None:
            found[proc.pid] = proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return found


def cpu_since(before: dict[int, float], names: tuple[str, ...]) -> float:
    """CPU spent since `before` by these processes: those alive at both times, and all of
    those started since (the backends of the roles' connections). A process that ended in
    between is not counted: an undercount, never a negative figure."""
    now = service_cpu(names)
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())


class _Background:
    """A `monitor` command running in its own process group, output in a log file."""

    def __init__(self, config: Path, args: list[str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop(); the last cycle's log stays
        self.popen = subprocess.Popen(
            [PYTHON, "-m", "monitor.cli.main", "--config", str(config), *args],
            stdout=self._out, stderr=subprocess.STDOUT, cwd=ROOT, env=child_env(), start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._out.close()


class Contender:
    name = ""
    error: str | None = None

    def start(self, run_dir: Path, urls: list[str]) -> None: ...

    def cycle(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None: ...


class OneProcess(Contender):
    """`monitor run` on SQLite: this checkout, or (``tree``) an older one."""

    def __init__(self, name: str = "one-process", tree: Path | None = None, why_not: str | None = None) -> None:
        self.name, self.tree, self.error = name, tree, why_not
        self.process: LongLived | None = None

    def start(self, run_dir: Path, urls: list[str]) -> None:
        if self.error:
            return
        config = write_config(run_dir / self.name, urls, concurrency=IN_FLIGHT)
        root = self.tree or ROOT
        env = {"PYTHONPATH": str(root)} if self.tree else None
        self.process = LongLived([PYTHON, "-m", "bench.peers.monitor_driver", str(config)], cwd=run_dir / self.name, env=env)
        if self.process.error:
            self.error = self.process.error

    def cycle(self) -> dict[str, Any]:
        if self.error or self.process is None:
            return {"error": self.error or "not started"}
        return self.process.cycle(CYCLE_TIMEOUT)

    def close(self) -> None:
        if self.process is not None:
            self.process.close()


class Cluster(Contender):
    """N fetch workers, the analysis owner and the bench's leader, on PostgreSQL and RabbitMQ.

    The schema lives from `start` to `close`; the processes run only around this contender's
    own cycles (started and ready before the clock starts, stopped after), so idle clusters
    neither take CPU from the one being measured nor hold PostgreSQL connections (a worker
    holds up to `http.concurrency` for its host slots, plus its pool)."""

    def __init__(self, workers: int, pg: str, broker: str, *, children: int = 1) -> None:
        self.workers, self.pg, self.broker, self.children = workers, pg, broker, children
        self.name = f"workers={workers}" if children == 1 else f"workers={workers}, {children} children"
        self.processes: list[_Background] = []
        self.driver: LongLived | None = None
        self.queue = f"monitor.bench.{uuid.uuid4().hex[:10]}"
        self._schema: contextlib.AbstractContextManager[str] | None = None
        self.config: Path | None = None
        self.directory: Path | None = None

    def start(self, run_dir: Path, urls: list[str]) -> None:
        self.directory = run_dir / f"workers-{self.workers}-{self.children}"
        self._schema = postgres_schema(self.pg, f"bench_w{self.workers}c{self.children}_{uuid.uuid4().hex[:8]}")
        store_url = self._schema.__enter__()
        self.config = write_config(
            self.directory, urls, concurrency=IN_FLIGHT // self.children, store_url=store_url,
            distributed={"broker_url": self.broker, "queue": self.queue, "batch_size": 50, "claim_timeout": "10m"},
        )
        done = subprocess.run(
            [PYTHON, "-m", "monitor.cli.main", "--config", str(self.config), "db", "upgrade"],
            capture_output=True, text=True, cwd=ROOT, env=child_env(), timeout=120,
        )
        if done.returncode != 0:
            self.error = f"db upgrade failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"

    def _up(self) -> None:
        """Leader (publishes the configuration), then the owner and workers; back when every
        worker child and the owner are ready with it (the state a running cluster is in)."""
        assert self.config is not None and self.directory is not None
        self.driver = LongLived([PYTHON, "-m", "bench.peers.cluster_driver", str(self.config)], cwd=self.directory, log=self.directory / "leader.log")
        if self.driver.error:
            raise RuntimeError(self.driver.error)
        self.processes = [_Background(self.config, ["run", "--role", "analysis"], self.directory / "analysis.log")]
        self.processes += [
            _Background(self.config, ["worker", "--concurrency", str(self.children)], self.directory / f"worker{n}.log")
            for n in range(self.workers)
        ]
        owner, workers = self.processes[0], self.processes[1:]
        deadline = time.monotonic() + 120
        while not ("config_version=" in owner.output() and all(p.output().count("fetch worker child ready") >= self.children for p in workers)):
            if time.monotonic() > deadline or any(p.popen.poll() is not None for p in self.processes):
                raise RuntimeError("the roles did not start: " + " | ".join(p.output()[-300:] for p in self.processes))
            time.sleep(0.1)

    def _down(self) -> None:
        if self.driver is not None:
            self.driver.close()
            self.driver = None
        for process in self.processes:
            process.stop()
        self.processes = []

    def cycle(self) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        try:
            self._up()
            pids = [p.popen.pid for p in self.processes]
            before = [tree_cpu(pid) for pid in pids]
            db, broker = service_cpu(("postgres",)), service_cpu(("beam.smp",))
            assert self.driver is not None
            answer = self.driver.cycle(CYCLE_TIMEOUT)
            spent = [tree_cpu(pid) - cpu for pid, cpu in zip(pids, before, strict=True)]
            roles_cpu = sum(spent)
            answer["cpu_by_role"] = {"leader": answer.get("cpu"), "analysis": spent[0], "workers": sum(spent[1:])}
            # Before the roles stop: their backends end with their connections.
            answer["db_cpu"] = cpu_since(db, ("postgres",))
            answer["broker_cpu"] = cpu_since(broker, ("beam.smp",))
        except RuntimeError as exc:
            return {"error": str(exc)}
        finally:
            self._down()
        answer["cpu"] = (answer.get("cpu") or 0.0) + roles_cpu  # the leader's own + workers' + owner's
        return answer

    def close(self) -> None:
        self._down()
        with contextlib.suppress(Exception):
            from kombu import Connection

            with Connection(self.broker, connect_timeout=5) as connection:
                connection.default_channel.queue_delete(self.queue)
        if self._schema is not None:
            with contextlib.suppress(Exception):
                self._schema.__exit__(None, None, None)


def base_tree(workdir: Path, rev: str) -> tuple[Path | None, str | None]:
    """The files of commit `rev` (git archive), or why they are not available."""
    target = workdir / "base"
    archive = workdir / "base.tar"
    try:
        with open(archive, "wb") as out:
            subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], stdout=out, stderr=subprocess.PIPE, check=True, timeout=120)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as exc:
        return None, f"commit {rev[:10]} not available ({type(exc).__name__}): run from a git clone with its history"
    finally:
        archive.unlink(missing_ok=True)
    return target, None


def _measure(farm: Farm, contender: Contender, run: int, kind: str) -> dict[str, Any]:
    cpu = farm.cpu_seconds()
    result = contender.cycle()
    farm_cpu = farm.cpu_seconds() - cpu
    record = {"run": run, "kind": kind, "contender": contender.name, "farm_cpu": farm_cpu, **result}
    if "error" in result:
        progress(f"distributed:   {contender.name} {kind}: {result['error']}")
    else:
        polled = f", polled in {result['polled_wall']:.2f} s" if "polled_wall" in result else ""
        progress(f"distributed:   {contender.name} {kind}: {result['wall']:.2f} s wall{polled}, {result.get('cpu', 0):.2f} s CPU")
    return record


def run_distributed(*, feeds: int, runs: int, latency: float, workdir: Path, base_rev: str | None = BASE_REV) -> dict[str, Any]:
    ready = services()
    if isinstance(ready, str):
        progress(f"distributed: skipped: {ready}")
        return {"skipped": ready}
    pg, broker = ready
    tree, why_not = base_tree(workdir, base_rev) if base_rev else (None, "no base commit asked for")
    contenders: list[Contender] = [OneProcess(), OneProcess("base", tree, why_not) if base_rev else OneProcess("base", None, why_not)]
    contenders += [Cluster(n, pg, broker, children=c) for c in CHILD_LAYOUTS for n in WORKER_COUNTS]
    raw: list[dict[str, Any]] = []
    progress(f"distributed: starting the farm ({feeds} feeds, {latency * 1000:g} ms latency)")
    with Farm(feeds, latency=latency, workers=1) as farm:
        run_dir = workdir / "distributed"
        try:
            for contender in contenders:
                progress(f"distributed: starting {contender.name}")
                contender.start(run_dir, farm.urls)
                if contender.error:
                    progress(f"distributed:   {contender.name}: {contender.error}")
            for contender in contenders:  # the first cycle fills each contender's state
                progress(f"distributed: first cycle (every feed new), {contender.name}")
                raw.append(_measure(farm, contender, 0, "first"))
            for run in range(runs):
                farm.change(STEADY_FRACTION)
                order = contenders[run % len(contenders):] + contenders[: run % len(contenders)]
                for contender in order:
                    progress(f"distributed: run {run + 1}/{runs}, steady cycle, {contender.name}")
                    raw.append(_measure(farm, contender, run, "steady"))
        finally:
            for contender in contenders:
                contender.close()
            shutil.rmtree(workdir / "base", ignore_errors=True)
    return {
        "feeds": feeds, "runs": runs, "latency": latency, "in_flight": IN_FLIGHT, "base_rev": base_rev,
        "errors": {c.name: c.error for c in contenders if c.error}, "cycles": raw, "summary": summarize(raw),
    }


def summarize(raw: list[dict[str, Any]]) -> dict[str, Any]:
    """Median steady wall per contender; throughput ratios taken within each run, then the median."""
    steady = [r for r in raw if r["kind"] == "steady" and "error" not in r]
    runs = sorted({r["run"] for r in steady})
    by_run = {run: {r["contender"]: r for r in steady if r["run"] == run} for run in runs}

    def ratios(faster: str, slower: str, key: str = "wall") -> float | None:
        values = [cycles[slower][key] / cycles[faster][key] for cycles in by_run.values() if faster in cycles and slower in cycles and cycles[faster].get(key)]
        return median(values)

    names = sorted({r["contender"] for r in raw})
    out: dict[str, Any] = {
        "steady_wall": {n: median([r["wall"] for r in steady if r["contender"] == n]) for n in names},
        "steady_polled_wall": {n: median([r["polled_wall"] for r in steady if r["contender"] == n and "polled_wall" in r]) for n in names},
        "steady_cpu": {n: median([r["cpu"] for r in steady if r["contender"] == n and r.get("cpu") is not None]) for n in names},
        "first_wall": {n: median([r["wall"] for r in raw if r["kind"] == "first" and r["contender"] == n and "error" not in r]) for n in names},
        # Throughput ratios (the faster one's cycles per the slower one's): > 1 = faster.
        "workers2_vs_1": ratios("workers=2", "workers=1"),
        "workers4_vs_1": ratios("workers=4", "workers=1"),
        "workers2_vs_1_polled": ratios("workers=2", "workers=1", "polled_wall"),
        "workers4_vs_1_polled": ratios("workers=4", "workers=1", "polled_wall"),
        "worker1_vs_one_process": ratios("workers=1", "one-process"),
        "children2": {
            "workers2_vs_1": ratios("workers=2, 2 children", "workers=1, 2 children"),
            "workers4_vs_1": ratios("workers=4, 2 children", "workers=1, 2 children"),
            "worker1_vs_one_process": ratios("workers=1, 2 children", "one-process"),
        },
        "one_process_vs_base": ratios("one-process", "base"),
    }
    return out

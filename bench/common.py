"""Helpers shared by the bench parts: progress on stderr, timing child processes, medians."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def corpus_dir() -> Path:
    """The evaluation corpora: `$MONITOR_CORPUS_DIR`, else `../shared/corpus` beside the repo.

    The benchmarks stream real headlines and articles from them; they are not in the
    repository (see tests/corpus.py for the tests' side of the same rule).
    """
    configured = os.environ.get("MONITOR_CORPUS_DIR")
    return Path(configured).expanduser() if configured else ROOT.parent / "shared" / "corpus"


def corpus_file(*parts: str) -> Path:
    """A corpus file the benchmark needs; a clear message instead of a traceback when absent."""
    path = corpus_dir().joinpath(*parts)
    if not path.is_file():
        raise SystemExit(f"bench: corpus file not found at {path} (set MONITOR_CORPUS_DIR)")
    return path


def progress(message: str) -> None:
    """One line on stderr per step, with the time, so a long run shows where it is."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def run_timed(command: Sequence[str], *, timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a one-shot process; wall time, CPU of it and its children (wait4 rusage), its output."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**child_env(), **(env or {})}, cwd=cwd, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {"error": f"timed out after {timeout:g} s", "wall": time.monotonic() - started}
    wall = time.monotonic() - started
    # communicate() reaped the child; its CPU (with its own reaped children) is in RUSAGE_CHILDREN.
    result: dict[str, Any] = {"wall": wall, "returncode": proc.returncode}
    if proc.returncode != 0:
        result["error"] = (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if last.startswith("{"):
        with contextlib.suppress(ValueError):
            result.update(json.loads(last))
    return result


class ChildCPU:
    """CPU seconds of reaped children, as a difference around one `run_timed` call."""

    def __init__(self) -> None:
        import resource

        self._resource = resource
        self.start = self._now()

    def _now(self) -> float:
        usage = self._resource.getrusage(self._resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def elapsed(self) -> float:
        return self._now() - self.start


class LongLived:
    """A contender process speaking the `bench.peers.driver` protocol."""

    def __init__(
        self, command: Sequence[str], *, cwd: Path | None = None, start_timeout: float = 180, env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self._log = open(log, "wb") if log else None  # noqa: SIM115 - the process writes it until it ends
        self.proc = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log or subprocess.DEVNULL,
            env={**child_env(), **(env or {})}, cwd=cwd, text=True, bufsize=1,
        )
        first = self._read(start_timeout)
        self.error: str | None = None if first.get("ready") else first.get("error", "did not start")

    def _read(self, timeout: float) -> dict[str, Any]:
        import select

        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return {"error": f"no answer within {timeout:g} s"}
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"exited with code {self.proc.wait()}"}
        try:
            return dict(json.loads(line))
        except ValueError:
            return {"error": f"unreadable answer {line[:200]!r}"}

    def cycle(self, timeout: float) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        import psutil

        assert self.proc.stdin is not None
        tree = psutil.Process(self.proc.pid)
        before = _tree_cpu(tree)
        started = time.monotonic()
        self.proc.stdin.write("cycle\n")
        self.proc.stdin.flush()
        answer = self._read(timeout)
        answer["outer_wall"] = time.monotonic() - started
        # The driver reports its own getrusage; psutil over the process tree is the cross-check.
        answer["tree_cpu"] = _tree_cpu(tree) - before
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()


def tree_cpu(pid: int) -> float:
    """CPU seconds so far of a process and its descendants (0 when it is gone)."""
    import psutil

    try:
        return _tree_cpu(psutil.Process(pid))
    except psutil.Error:
        return 0.0


def _tree_cpu(proc: Any) -> float:
    import psutil

    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def median(values: Sequence[float]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def percentile(values: Sequence[float], q: float) -> float | None:
    clean = sorted(v for v in values if v is not None)
    if not clean:
        return None
    k = (len(clean) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(clean) - 1)
    return clean[lo] + (clean[hi] - clean[lo]) * (k - lo)

"""changedetection.io as a poll-cycle contender, run as its own cron-style batch job.

It installs from PyPI into a venv of its own (``python -m bench.peers.changedetection
install`` puts one in ``$BENCH_CACHE/cdvenv``; ``CHANGEDETECTION_BIN`` may name another
``changedetection.io`` executable). It refuses loopback and private targets by default; its
documented switch ``ALLOW_IANA_RESTRICTED_ADDRESSES=true`` allows them — no patching.
A cycle is one batch run (``-b``): the first adds every feed (``-u URL`` …), later ones
recheck all watches (``-r all``). ``FETCH_WORKERS`` is the monitor's concurrency (50).
It sends no conditional requests: every check downloads and diffs the whole feed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VERSION_SPEC = "changedetection.io"


def venv_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE", "/tmp/exportwatch-bench-cache")) / "cdvenv"


def executable() -> Path | None:
    named = os.environ.get("CHANGEDETECTION_BIN")
    candidate = Path(named) if named else venv_dir() / "bin" / "changedetection.io"
    return candidate if candidate.exists() else None


def environment() -> dict[str, str]:
    return {**os.environ, "ALLOW_IANA_RESTRICTED_ADDRESSES": "true", "FETCH_WORKERS": "50", "LOGGER_LEVEL": "WARNING"}


def commands(directory: Path, urls: list[str]) -> tuple[list[str], list[str]]:
    """(first cycle, later cycles) command lines; raises FileNotFoundError when not installed."""
    binary = executable()
    if binary is None:
        raise FileNotFoundError(f"changedetection.io is not installed: run `python -m bench.peers.changedetection install` (→ {venv_dir()})")
    data = directory / "datastore"
    base = [str(binary), "-d", str(data), "-h", "127.0.0.1", "-p", "0"]
    first = [*base, "-C", *[arg for url in urls for arg in ("-u", url)], "-b"]
    return first, [*base, "-r", "all", "-b"]


def install() -> int:
    target = venv_dir()
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    return subprocess.run([str(target / "bin" / "pip"), "install", "-q", VERSION_SPEC], check=False).returncode


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        raise SystemExit(install())
    print(executable() or "not installed")

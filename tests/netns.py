"""Run tests inside a network namespace that has nothing but loopback.

Tests that aim at a non-loopback address (169.254.169.254, 10.x) to prove the address guard
refuses it are marked `netns`. They run only inside a namespace made here with `unshare
--net` (root, or unprivileged user namespaces), whose one interface is `lo`: even a guard
that failed could send no packet off the machine — the connect would fail with "network
unreachable" instead, and the test would fail on the error kind. Outside the namespace
they skip; `run_marked_tests_in_namespace` runs them inside it from the ordinary suite.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ENV = "MONITOR_TEST_NETNS"
IN_NAMESPACE = os.environ.get(ENV) == "1"

only_in_namespace = pytest.mark.skipif(
    not IN_NAMESPACE,
    reason="aims at a non-loopback address: runs inside a loopback-only network namespace "
    "(see the *_in_a_loopback_only_namespace test of the same file)",
)


def namespace_problem() -> str | None:
    """Why no namespace can be made here, or None."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare and ip (util-linux, iproute2) are needed to make a network namespace"
    probe = subprocess.run(
        ["unshare", "--net", "--", "ip", "link", "set", "lo", "up"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"cannot make a network namespace here: {probe.stderr.strip() or probe.returncode}"
    return None


def run_marked_tests_in_namespace(test_file: Path) -> str:
    """Run the `netns` tests of `test_file` in a new namespace with only `lo` (brought up);
    fail with pytest's output unless they all passed. Returns that output."""
    problem = namespace_problem()
    if problem:
        pytest.skip(problem)
    root = Path(__file__).resolve().parents[1]
    script = 'ip link set lo up && exec "$0" -m pytest -q -p no:cacheprovider -m netns "$1"'
    done = subprocess.run(
        ["unshare", "--net", "--", "sh", "-c", script, sys.executable, str(test_file)],
        capture_output=True, text=True, check=False, cwd=root, timeout=600,
        env={**os.environ, ENV: "1"},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert re.search(r"\b[1-9]\d* passed\b", output) and " skipped" not in output, output[-4000:]
    return output

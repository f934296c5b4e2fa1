"""What the pipeline costs in memory before it has read anything: no scipy for datasketch."""

from __future__ import annotations

import subprocess
import sys

from monitor.story import dedup


def test_the_pipeline_loads_without_scipy_integrate() -> None:
    code = (
        "import sys, monitor.run.pipeline\n"
        "from monitor.story import dedup\n"
        "index = dedup.ReprintIndex()\n"
        "print('scipy.integrate' in sys.modules, index._lsh.b, index._lsh.r)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "14", "4"]


def test_the_lsh_parameters_are_those_datasketch_would_pick() -> None:
    from datasketch.lsh import _optimal_param

    for (threshold, num_perm), params in dedup.LSH_PARAMS.items():
        assert _optimal_param(threshold, num_perm, 0.5, 0.5) == params


def test_other_lsh_settings_still_use_datasketchs_optimiser() -> None:
    from datasketch import MinHashLSH

    index = dedup.ReprintIndex(threshold=0.8, num_perm=32)
    expected = MinHashLSH(threshold=0.8, num_perm=32)
    assert (index._lsh.b, index._lsh.r) == (expected.b, expected.r)

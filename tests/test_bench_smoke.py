"""The bench still runs: ``python -m bench --smoke`` (tiny sizes, SQLite) exits 0 with ratios.

No timing assertions: the figures are for humans and bench/results/*.json.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_smoke_runs_and_prints_ratios():
    out = subprocess.run([sys.executable, "-m", "bench", "--smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "me vs plain JSON" in out.stdout
    assert "sharedMembers(first:100) vs plain JSON" in out.stdout
    rows = re.findall(r"^graphql \(app\)\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+"
                      r"(?:([\d.]+)-([\d.]+)\s+)?0$", out.stdout, re.MULTILINE)
    assert len(rows) >= 2, out.stdout  # every scenario answered, with no bad responses
    # interleaved scenarios also print the spread of their rounds' own ratios
    assert any(low and float(low) <= float(high) for _, low, high in rows), out.stdout
    assert "results: " in out.stdout

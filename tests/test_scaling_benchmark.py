"""benchmarks/scaling.py --quick runs end to end (part B; part A needs a Dask cluster and is covered
by tests/test_scaling_dask.py) and writes its results with the command that produced them."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_scaling_benchmark_quick(tmp_path):
    cmd = [sys.executable, "benchmarks/scaling.py", "--quick", "--no-dask", "--reps", "1", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (tmp_path / "scaling.md").read_text()
    assert f"Command: `python benchmarks/scaling.py --quick --no-dask --reps 1 --out {tmp_path}`" in text
    assert "Load average (1 min) at start" in text
    with open(tmp_path / "scaling.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["part"], r["order"], r["method"]) for r in rows] == [
        ("windows", "in order", "lazy"), ("windows", "in order", "in-memory"), ("windows", "shuffled", "lazy"),
        ("windows", "shuffled", "in-memory"), ("training", "in order", "lazy"), ("training", "in order", "in-memory")]
    for r in rows:
        assert float(r["windows_per_s"]) > 0
    assert int(rows[0]["windows"]) > 40_000 and int(rows[-1]["windows"]) == 3200
    assert float(rows[1]["ratio_to_in_memory"]) == float(rows[-1]["ratio_to_in_memory"]) == 1.0
    assert "### Training throughput" in text

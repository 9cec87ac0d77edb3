"""Fixtures shared by the whole test suite (keep this file small and generic)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# (param, value, error, message) that the estimators and the forecaster reject alike at fit
BAD_SHARED_PARAMETERS = [
    ("device", "tpu", ValueError, r"device: expected 'auto', 'cpu', 'cuda'.*got 'tpu'"),
    # one past the last GPU (none here): torch's "Torch not compiled with CUDA enabled" at the first move
    ("device", f"cuda:{torch.cuda.device_count()}", ValueError,
     rf"device: expected a device this machine has, got 'cuda:{torch.cuda.device_count()}', but it has "
     rf"{torch.cuda.device_count()} CUDA device\(s\) \(torch .*\); use device='auto' or 'cpu'"),
    ("random_state", "x", TypeError, r"random_state: expected an int, a numpy RandomState or None, got str 'x'"),
    ("checkpoint_dir", 5, TypeError, r"checkpoint_dir: expected a folder path .*got int 5"),
]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real data sets laid out as <dataset>/<file> (ett/ETTh1.csv.gz, ...).

    $QLTS_DATA when set, else <repo root>/../shared/data (where CI's fresh clone finds it);
    the test is skipped when neither exists.
    """
    candidates = []
    if os.environ.get("QLTS_DATA"):
        candidates.append(Path(os.environ["QLTS_DATA"]).expanduser())
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    pytest.skip("real data not found: set QLTS_DATA or provide ../shared/data beside the repo "
                f"(looked in {', '.join(map(str, candidates))})")

"""Fixtures shared by the whole test suite (keep this file small and generic)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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

"""Reliability of the compiled kernels (issue #9).

- The numba agreement tests (tests/test_backend_numba.py, the whole file; the windowing tests
  too under ``-m slow``) run once more in a subprocess with ``NUMBA_BOUNDSCHECK=1`` and a fresh
  ``NUMBA_CACHE_DIR``, so every kernel is recompiled with bounds checks instead of loading
  the unchecked machine code from the cache. A canary test in the same subprocess indexes
  past the end of an array in a tiny njit function and must get an IndexError: proof that
  the checks really are on in that process.
- Four threads calling ``predict`` on one fitted estimator at once get exactly the results of
  serial calls (the numba scan runs batch chunks on its own thread pool, and the estimators
  share their module between calls).
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from qlts import QLLSTMClassifier, QLLSTMForecaster, kernels

REPO_ROOT = Path(__file__).resolve().parents[1]

CANARY = '''
import numba
import numpy as np
import pytest


def test_boundscheck_is_on():
    assert numba.config.BOUNDSCHECK == 1

    @numba.njit
    def at(a, i):
        return a[i]

    with pytest.raises(IndexError):
        at(np.arange(3.0), 5)  # without bounds checks this reads past the buffer silently
'''


def _run_with_boundscheck(tmp_path, test_files):
    """pytest ``test_files`` plus the canary in one subprocess with bounds checks on and an empty
    numba cache; returns {test id: [junit child tags]} after checking that everything passed."""
    canary = tmp_path / "test_boundscheck_canary.py"
    canary.write_text(CANARY)
    report = tmp_path / "junit.xml"
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
           *test_files, str(canary)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    cases = ET.parse(report).getroot().iter("testcase")
    outcome = {f"{c.get('classname')}.{c.get('name')}": [child.tag for child in c] for c in cases}
    assert any(name.endswith(".test_boundscheck_is_on") for name in outcome), sorted(outcome)
    not_passed = {name: tags for name, tags in outcome.items() if set(tags) & {"failure", "error", "skipped"}}
    assert not not_passed, not_passed
    # the new cache dir was really used: the kernels were compiled into it, not read from __pycache__
    assert any((tmp_path / "numba_cache").rglob("*.nbi"))
    return outcome


def test_numba_agreement_tests_pass_with_boundscheck(tmp_path):
    """All of tests/test_backend_numba.py: forward and backward against the reference, both skip
    modes, K > 1, variable lengths, float32 and float64, layers, gradcheck (about 20 s alone)."""
    outcome = _run_with_boundscheck(tmp_path, ["tests/test_backend_numba.py"])
    assert sum(name.startswith("tests.test_backend_numba") for name in outcome) >= 10, sorted(outcome)


@pytest.mark.slow  # extra (about 20 s more of compiling): the windowing kernels under bounds checks too
def test_windowing_tests_pass_with_boundscheck(tmp_path):
    outcome = _run_with_boundscheck(tmp_path, ["tests/test_preprocessing_windows.py"])
    assert sum(name.startswith("tests.test_preprocessing_windows") for name in outcome) >= 20, sorted(outcome)


def _concurrent_matches_serial(predict, n_calls=48, n_threads=4):
    expected = predict(0)
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        results = list(pool.map(predict, range(n_calls)))
    for k, got in enumerate(results):
        np.testing.assert_array_equal(got, expected, err_msg=f"concurrent call {k} differs from the serial result")


def test_concurrent_predict_classifier():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 30, 3)).astype(np.float32)
    y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    clf = QLLSTMClassifier(hidden_size=16, max_epochs=2, batch_size=32, random_state=0).fit(X, y)
    assert kernels.resolve(clf.backend, "cpu", torch.float32) == "numba"  # the threaded scan is under test
    serial = [clf.predict_proba(X) for _ in range(2)]
    np.testing.assert_array_equal(serial[0], serial[1])
    assert np.ptp(serial[0][:, 0]) > 1e-3  # the outputs differ between rows, so a mix-up would show
    _concurrent_matches_serial(lambda _: clf.predict_proba(X))
    _concurrent_matches_serial(lambda _: clf.predict(X).astype(str))


def test_concurrent_predict_forecaster():
    t = np.arange(400)
    y = np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(1).normal(size=len(t))
    fc = QLLSTMForecaster(lookback=48, horizon=12, segment_length=12, hidden_size=16, max_epochs=2, verbose=0,
                          random_state=0).fit(y)
    contexts = [y[: 200 + 17 * k] for k in range(4)]
    expected = [fc.predict(24, y=c).to_numpy() for c in contexts]  # 24 > horizon: recursive passes too
    assert np.ptp(np.stack(expected)) > 1e-3
    _concurrent_matches_serial(lambda k: np.stack([fc.predict(24, y=c).to_numpy() for c in contexts]))
    windows = np.stack([y[i:i + 48, None] for i in range(0, 300, 5)])
    _concurrent_matches_serial(lambda _: fc.predict_windows(windows))

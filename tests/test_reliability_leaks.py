"""No leaks (issue #9): 30 consecutive small fits in one process (a classifier and a forecaster,
alternating, each fit followed by a predict) keep the peak RSS within 10% of the peak after the
third fit. Four more fits that each keep 30 MiB alive follow in the same process: that control
must push the ratio over the limit, so the test could fail.

The fits run in a fresh subprocess (this file run as a script), so the test process's own
history (other tests, imports) does not matter. The first fits are excluded from the baseline
because they load the numba kernels and warm up torch's and the allocator's caches. The
numbers for benchmarks/results/reliability.md come from the same script:

    python tests/test_reliability_leaks.py 30
"""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

LIMIT = 1.10  # peak RSS after the last fit <= 1.10 x peak RSS after the third


def _fit_once(kind, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    if kind == "classifier":
        from qlts import QLLSTMClassifier

        X = rng.normal(size=(128, 30, 4)).astype(np.float32)
        y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
        est = QLLSTMClassifier(hidden_size=16, max_epochs=2, batch_size=32, random_state=seed).fit(X, y)
        return est.predict_proba(X)
    from qlts import QLLSTMForecaster

    t = np.arange(600)
    y = np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=len(t))
    est = QLLSTMForecaster(lookback=48, horizon=12, segment_length=12, hidden_size=16, max_epochs=2, verbose=0,
                           random_state=seed).fit(y)
    return est.predict().to_numpy()


def _peak_rss_mib():
    """This process's peak RSS: VmHWM, the high-water mark of the current process image.
    (getrusage's ru_maxrss would not do: exec keeps the maximum, so it includes the RSS of the
    forked copy of the parent, the whole pytest process.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("VmHWM not found in /proc/self/status")


def measure(n_fits, control_fits=4, leak_mib=30):
    """Peak RSS (MiB) after each of ``n_fits`` fits in this process (classifier
    and forecaster alternating), then after ``control_fits`` more fits that each also keep
    ``leak_mib`` MiB alive: the control, a leak the same measurement must see."""
    import numpy as np
    import psutil

    warnings.simplefilter("ignore")
    peaks, current, hoard = [], [], []
    for k in range(n_fits + control_fits):
        out = _fit_once(("classifier", "forecaster")[k % 2], seed=k)
        assert out.size and (out == out).all()
        if k >= n_fits:
            hoard.append(np.ones(leak_mib * 2**20 // 8))
        peaks.append(_peak_rss_mib())
        current.append(psutil.Process().memory_info().rss / 2**20)
    return {"fits": n_fits, "peak_rss_mib": peaks[:n_fits], "rss_mib": current[:n_fits],
            "peak_after_3": peaks[2], "max_peak_after_3": max(peaks[2:n_fits]),
            "ratio": max(peaks[2:n_fits]) / peaks[2],
            "control": {"fits": control_fits, "leak_mib_per_fit": leak_mib, "ratio": peaks[-1] / peaks[2]}}


def test_thirty_fits_keep_peak_rss():
    if sys.platform != "linux":
        pytest.skip("the peak RSS is read from /proc/self/status (VmHWM), which only Linux has")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "30"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["peak_rss_mib"]) == 30
    print(f"peak RSS after fit 3 {result['peak_after_3']:.1f} MiB, max after {result['max_peak_after_3']:.1f} MiB, "
          f"ratio {result['ratio']:.3f}; control (4 fits leaking 30 MiB each): ratio {result['control']['ratio']:.3f}")
    assert result["ratio"] <= LIMIT, result
    assert result["control"]["ratio"] > LIMIT, result  # the measurement does see a leak


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))

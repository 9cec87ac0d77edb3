"""The vectorisable exp / sigmoid / tanh of qlts.kernels._numba_math against float64 numpy, over
the whole finite range (the scan's accuracy rests on them)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba", reason="the numba CPU kernels need numba")
from numba import njit  # noqa: E402

from qlts.kernels._numba_math import fast_exp, fast_sigmoid, fast_tanh  # noqa: E402


@njit(cache=True)
def _apply(x, which):
    out = np.empty_like(x)
    for i in range(x.size):
        if which == 0:
            out[i] = fast_exp(x[i])
        elif which == 1:
            out[i] = fast_sigmoid(x[i])
        else:
            out[i] = fast_tanh(x[i])
    return out


def _grid(dtype, lo, hi):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(lo, hi, 200_001), rng.uniform(lo, hi, 100_000), rng.normal(0, 2, 100_000)])
    return np.clip(x, lo, hi).astype(dtype)


@pytest.mark.parametrize("dtype, lo, hi, rel", [(np.float32, -87.0, 88.0, 3e-7), (np.float64, -708.0, 709.0, 1e-15)])
def test_exp_relative_error(dtype, lo, hi, rel):
    x = _grid(dtype, lo, hi)
    got = _apply(x, 0)
    assert got.dtype == dtype
    want = np.exp(x.astype(np.float64))
    assert np.max(np.abs(got / want - 1)) <= rel


@pytest.mark.parametrize("dtype, atol", [(np.float32, 3e-7), (np.float64, 1e-15)])
def test_sigmoid_and_tanh_absolute_error(dtype, atol):
    x = _grid(dtype, -200.0, 200.0)
    x64 = x.astype(np.float64)
    assert np.max(np.abs(_apply(x, 1) - 1 / (1 + np.exp(-x64)))) <= atol
    assert np.max(np.abs(_apply(x, 2) - np.tanh(x64))) <= 2 * atol  # 1 - 2/(1+e^2x): one more rounding


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturation_and_nan(dtype):
    x = np.array([-np.inf, -1e30, 1e30, np.inf, np.nan], dtype=dtype)
    e = _apply(x, 0)
    assert e[0] >= 0 and e[0] < 1e-37 and np.isfinite(e[2]) and e[2] > 1e38 and np.isnan(e[4])
    s = _apply(x, 1)
    assert np.all((s[:2] >= 0) & (s[:2] < 1e-37)) and np.all(s[2:4] == 1)  # exp is clamped: tiny, not 0
    np.testing.assert_array_equal(_apply(x, 2)[:4], [-1, -1, 1, 1])
    assert np.isnan(_apply(x, 1)[4]) and np.isnan(_apply(x, 2)[4])

"""Windowing for the forecaster.

TEMPORARY: a numpy stand-in until ``qlts.preprocessing.make_windows`` (numba) lands; then this
module goes and the forecaster imports that one.
"""
from __future__ import annotations

import numpy as np


def make_windows(data, lookback, horizon, *, target=None):
    """(X, y): X (n, lookback, F) every column, y (n, horizon, len(target)); windows touching NaN dropped."""
    data = np.asarray(data)
    target = np.arange(data.shape[1]) if target is None else np.asarray(target)
    n = len(data) - lookback - horizon + 1
    if n <= 0:
        return np.empty((0, lookback, data.shape[1]), data.dtype), np.empty((0, horizon, len(target)), data.dtype)
    starts = np.arange(n)[:, None]
    X = data[starts + np.arange(lookback)]
    y = data[starts + lookback + np.arange(horizon)][:, :, target]
    keep = ~(np.isnan(X).any(axis=(1, 2)) | np.isnan(y).any(axis=(1, 2)))
    return np.ascontiguousarray(X[keep]), np.ascontiguousarray(y[keep])

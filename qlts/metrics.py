"""Forecast accuracy metrics: MSE, MAE, MASE and the pinball (quantile) loss.

Every metric takes ``y_true`` and ``y_pred`` of the same shape (arrays, Series or DataFrames)
and averages over all elements. NaN in either argument is an error, never silently skipped.
"""
from __future__ import annotations

import numpy as np

from ._validation import as_array, check_float, check_int

__all__ = ["mean_squared_error", "mean_absolute_error", "mean_absolute_scaled_error", "pinball_loss", "METRICS",
           "get_metric"]


def _floats(name, values):
    return as_array(name, values, "numbers (an array, Series or DataFrame)", dtype=np.float64)


def _pair(y_true, y_pred):
    a = _floats("y_true", y_true)
    b = _floats("y_pred", y_pred)
    if a.shape != b.shape:
        raise ValueError(f"y_pred: expected the shape of y_true {a.shape}, got {b.shape}")
    if a.size == 0:
        raise ValueError("y_true: expected at least one value, got an empty array")
    for name, v in (("y_true", a), ("y_pred", b)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: expected finite values, got {int((~np.isfinite(v)).sum())} NaN/inf")
    return a, b


def mean_squared_error(y_true, y_pred):
    a, b = _pair(y_true, y_pred)
    return float(np.mean((a - b) ** 2))


def mean_absolute_error(y_true, y_pred):
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def mean_absolute_scaled_error(y_true, y_pred, *, y_train, seasonality=1):
    """MAE of the forecast divided by the in-sample MAE of the seasonal naive forecast on ``y_train``
    (Hyndman & Koehler 2006). ``y_train`` is (T,) or (T, k) with the columns of ``y_true``."""
    a, b = _pair(y_true, y_pred)
    m = check_int("seasonality", seasonality, min_value=1)
    train = _floats("y_train", y_train)
    if train.ndim == 0 or train.shape[0] <= m:
        got = "a scalar" if train.ndim == 0 else train.shape[0]
        raise ValueError(f"y_train: expected more than seasonality={m} rows, got {got}")
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    if not np.isfinite(scale) or scale == 0:
        raise ValueError(f"y_train: expected a series whose seasonal naive in-sample MAE is finite and > 0, "
                         f"got {scale!r}")
    return float(np.mean(np.abs(a - b)) / scale)


def pinball_loss(y_true, y_pred, quantile):
    """Mean pinball loss of the ``quantile`` forecast: q*(y - p) when under-forecast, (1-q)*(p - y) when over."""
    q = check_float("quantile", quantile, low=0.0, high=1.0, low_open=True, high_open=True)
    a, b = _pair(y_true, y_pred)
    diff = a - b
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


METRICS = {"mse": mean_squared_error, "mae": mean_absolute_error, "mase": mean_absolute_scaled_error}


def get_metric(name):
    """The metric function called ``name`` ("mse", "mae", "mase"), or ``name`` itself when callable."""
    if callable(name):
        return name
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"metrics: expected a callable or one of {sorted(METRICS)!r}, got {name!r}")
    return METRICS[name]

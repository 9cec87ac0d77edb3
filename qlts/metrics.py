"""Forecast accuracy metrics: MSE, MAE, MASE, the pinball (quantile) loss and interval coverage.

Every metric takes ``y_true`` and ``y_pred`` of the same shape (arrays, Series or DataFrames)
and averages over all elements. NaN in either argument is an error, never silently skipped.
"""
from __future__ import annotations

import numpy as np

from ._validation import as_array, check_float, check_int

__all__ = ["mean_squared_error", "mean_absolute_error", "mean_absolute_scaled_error", "pinball_loss",
           "mean_pinball_loss", "interval_coverage", "METRICS", "QUANTILE_METRICS", "get_metric"]


def _floats(name, values):
    return as_array(name, values, "numbers (an array, Series or DataFrame)", dtype=np.float64)


def _pair(y_true, y_pred, pred_name="y_pred"):
    a = _floats("y_true", y_true)
    b = _floats(pred_name, y_pred)
    if a.shape != b.shape:
        raise ValueError(f"{pred_name}: expected the shape of y_true {a.shape}, got {b.shape}")
    if a.size == 0:
        raise ValueError("y_true: expected at least one value, got an empty array")
    for name, v in (("y_true", a), (pred_name, b)):
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


def _quantile_forecasts(y_true, y_quantiles, quantiles):
    """y_true (...) and its quantile forecasts (..., Q) for the increasing ``quantiles`` (Q,)."""
    levels = [check_float("quantiles", q, low=0.0, high=1.0, low_open=True, high_open=True)
              for q in np.atleast_1d(quantiles)]
    a = _floats("y_true", y_true)
    b = _floats("y_quantiles", y_quantiles)
    if b.shape != a.shape + (len(levels),):
        raise ValueError(f"y_quantiles: expected shape y_true.shape + (len(quantiles),) = "
                         f"{a.shape + (len(levels),)}, got {b.shape}")
    _pair(np.broadcast_to(a[..., None], b.shape), b, "y_quantiles")  # finite and not empty
    return a, b, levels


def mean_pinball_loss(y_true, y_quantiles, quantiles):
    """Pinball loss averaged over the quantile levels: ``y_quantiles[..., j]`` forecasts level
    ``quantiles[j]`` of ``y_true``."""
    a, b, levels = _quantile_forecasts(y_true, y_quantiles, quantiles)
    return float(np.mean([pinball_loss(a, b[..., j], q) for j, q in enumerate(levels)]))


def interval_coverage(y_true, y_quantiles, quantiles):
    """Share of ``y_true`` inside the band from the lowest to the highest quantile forecast; a
    calibrated band covers max(quantiles) - min(quantiles) of the values."""
    a, b, levels = _quantile_forecasts(y_true, y_quantiles, quantiles)
    lo, hi = b[..., int(np.argmin(levels))], b[..., int(np.argmax(levels))]
    return float(np.mean((lo <= a) & (a <= hi)))


METRICS = {"mse": mean_squared_error, "mae": mean_absolute_error, "mase": mean_absolute_scaled_error}
# scored on quantile forecasts (a forecaster with ``quantiles``): f(y_true, y_quantiles, quantiles)
QUANTILE_METRICS = {"pinball": mean_pinball_loss, "coverage": interval_coverage}


def get_metric(name):
    """The metric function called ``name`` ("mse", "mae", "mase"; "pinball", "coverage" on quantile
    forecasts), or ``name`` itself when callable."""
    if callable(name):
        return name
    if not isinstance(name, str) or name not in {**METRICS, **QUANTILE_METRICS}:
        raise ValueError(f"metrics: expected a callable or one of {sorted({**METRICS, **QUANTILE_METRICS})!r}, "
                         f"got {name!r}")
    return METRICS.get(name) or QUANTILE_METRICS[name]

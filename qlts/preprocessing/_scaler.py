"""Per-channel scaling of 3-D sequence batches: :class:`SequenceScaler`."""
from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import as_array, check_choice, check_float

METHODS = ("standard", "minmax", "robust")


def _as_sequences(X, name="X"):
    """(n, T, F) float view of X; a 2-D X is (n, T) univariate. Returns (X3, was_2d).

    Messages reuse scikit-learn's wording where its estimator checks look for it."""
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(f"{name}: expected a dense array, got sparse {type(X).__name__}; sparse input is "
                        "not supported, convert it with X.toarray()")
    if not (hasattr(X, "__array__") or isinstance(X, (list, tuple))):
        raise TypeError(f"{name}: expected an array-like (n, T, F) or (n, T), got {type(X).__name__}")
    arr = as_array(name, X, "an array-like (n, T, F) or (n, T)")
    if arr.dtype.kind == "c":
        raise ValueError(f"{name}: expected real values, got dtype {arr.dtype} (Complex data not supported)")
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name}: expected numeric values, got an object array that is not numeric ({err})") \
                from None
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name}: expected a 3-D array (n, T, F), or 2-D (n, T) for one channel, "
                         f"got ndim={arr.ndim} with shape {arr.shape}. Reshape your data to (n, T, F).")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float64)
    for axis, what in ((0, "sample"), (1, "feature"), (2, "feature")):
        if axis < arr.ndim and arr.shape[axis] < 1:
            raise ValueError(f"{name}: expected at least 1 sample, step and channel, found array with "
                             f"0 {what}(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if np.isinf(arr).any():
        raise ValueError(f"{name}: expected finite values (NaN is allowed and ignored), got inf")
    was_2d = arr.ndim == 2
    return (arr[:, :, None] if was_2d else arr), was_2d


class SequenceScaler(TransformerMixin, BaseEstimator):
    """Scale each channel of (n, T, F) sequence batches with statistics fitted on all
    samples and time steps of the training windows.

    A 2-D X is read as (n, T) univariate sequences and comes back 2-D. NaNs are ignored
    when fitting and kept as NaN by :meth:`transform`. A channel with zero spread is only
    centred (its scale is 1), as in scikit-learn's scalers. float32 input stays float32.

    Parameters
    ----------
    method : {"standard", "minmax", "robust"}
        standard: (x - mean) / std. minmax: maps [min, max] to ``feature_range``.
        robust: (x - median) / (q_high - q_low) over ``quantile_range``.
    feature_range : (float, float), default (0, 1)
        Target range for "minmax".
    quantile_range : (float, float), default (25.0, 75.0)
        Percentiles for "robust".

    Attributes
    ----------
    center_, scale_ : ndarray (F,)
        ``transform(x) = (x - center_) / scale_`` per channel (plus ``feature_range[0]``
        for "minmax", folded into ``center_``).
    n_features_in_ : int
        Number of channels F (1 for 2-D input).
    """

    def __init__(self, method="standard", *, feature_range=(0.0, 1.0), quantile_range=(25.0, 75.0)):
        self.method = method
        self.feature_range = feature_range
        self.quantile_range = quantile_range

    def _check_params(self):
        check_choice("method", self.method, METHODS)
        for name, value in (("feature_range", self.feature_range), ("quantile_range", self.quantile_range)):
            if (not isinstance(value, (tuple, list)) or len(value) != 2
                    or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
                    or not value[0] < value[1]):
                raise ValueError(f"{name}: expected a pair (low, high) of numbers with low < high, got {value!r}")
        check_float("quantile_range[0]", self.quantile_range[0], low=0, high=100)
        check_float("quantile_range[1]", self.quantile_range[1], low=0, high=100)
        inf = float("inf")  # an infinite range made the scale 0 (then 1): the output ignored it
        check_float("feature_range[0]", self.feature_range[0], low=-inf, high=inf, low_open=True, high_open=True)
        check_float("feature_range[1]", self.feature_range[1], low=-inf, high=inf, low_open=True, high_open=True)

    def fit(self, X, y=None):
        """Fit per-channel statistics over every sample and time step of X."""
        self._check_params()
        X3, _ = _as_sequences(X)
        flat = X3.reshape(-1, X3.shape[2])
        if np.isnan(flat).all(axis=0).any():
            raise ValueError("X: expected at least one non-NaN value per channel, got an all-NaN channel")
        if self.method == "standard":
            center, scale = standard_statistics(flat)
        elif self.method == "minmax":
            lo, hi = np.nanmin(flat, axis=0), np.nanmax(flat, axis=0)
            width = self.feature_range[1] - self.feature_range[0]
            scale = _safe((hi - lo) / width)
            center = lo - self.feature_range[0] * scale
        else:
            q_lo, med, q_hi = np.nanpercentile(flat, [self.quantile_range[0], 50.0, self.quantile_range[1]], axis=0)
            center, scale = med, _safe(q_hi - q_lo)
        self.center_ = np.asarray(center, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        overflow = overflowed(self.center_, self.scale_)
        if overflow.size:
            raise ValueError(f"X: expected values whose per-channel statistics fit in float64, got an overflow "
                             f"(values too large) in channel(s) {overflow.tolist()}")
        self.n_features_in_ = X3.shape[2]
        return self

    def _checked(self, X):
        check_is_fitted(self, ("center_", "scale_"))
        X3, was_2d = _as_sequences(X)
        if X3.shape[2] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} channels (last axis; 2-D X is one channel), "
                             f"got {X3.shape[2]}")
        return X3, was_2d

    def _apply(self, X, inverse):
        X3, was_2d = self._checked(X)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            center, scale = self.center_.astype(X3.dtype), self.scale_.astype(X3.dtype)
            out = X3 * scale + center if inverse else (X3 - center) / scale
        if not np.isfinite(out).all() and (~np.isfinite(out) & ~np.isnan(X3)).any():
            # finite in, non-finite out: the statistics or the result do not fit X's dtype
            raise ValueError(f"X: expected values that stay within the {X3.dtype} range when "
                             f"{'un' if inverse else ''}scaled, got an overflow; pass float64 values")
        return out[:, :, 0] if was_2d else out

    def transform(self, X):
        """Scale X; returns a new array of X's shape (float32 stays float32)."""
        return self._apply(X, inverse=False)

    def inverse_transform(self, X):
        """Undo :meth:`transform`."""
        return self._apply(X, inverse=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def standard_statistics(values):
    """Per-column mean and scale of a 2-D array, in float64 with NaN ignored. The scale is the
    standard deviation, or 1 for a constant column: one whose std is within the rounding error of
    its mean (a column of 0.1 has a computed std of 1e-17, which would turn rounding into z-scores
    of +-1; the bound is the one scikit-learn's StandardScaler uses). Check the result with
    :func:`overflowed`: values too large make a statistic inf or NaN."""
    values = np.asarray(values, dtype=np.float64)  # float32 squares overflow beyond ~1e19
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        count = np.count_nonzero(~np.isnan(values), axis=0)
        constant = ~(std > count * np.finfo(np.float64).eps * np.abs(mean))
    return mean, np.where(constant, 1.0, std)


def overflowed(center, scale):
    """Indices of the columns whose center or scale is not finite."""
    return np.flatnonzero(~(np.isfinite(center) & np.isfinite(scale)))


def _safe(spread):
    """Zero (or tiny) spread means a constant channel: scale by 1 instead of dividing by 0."""
    spread = np.array(spread, dtype=np.float64)
    spread[~(np.abs(spread) > 10 * np.finfo(np.float64).eps)] = 1.0
    return spread

"""Windowing of multivariate streams: :func:`make_windows` and its result type :class:`Windows`."""
from __future__ import annotations

import numbers
from typing import NamedTuple, Optional

import numpy as np
import pandas as pd

from .._validation import as_array, check_choice, check_int
from ..utils import numba_threads_like_torch
from . import _kernels

NAN_POLICIES = ("drop", "mask", "raise")
NORMALIZE = (None, "last")


def check_normalize(normalize):
    # check_choice sorts its choices, which cannot mix None and str
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize: expected one of {list(NORMALIZE)!r}, got {normalize!r}")
    return normalize


class Windows(NamedTuple):
    """Result of :func:`make_windows`. Unpack it (``X, y, *_ = make_windows(...)``) or use the fields.

    X : float32 (n, lookback, F_in), C-contiguous. Input columns, in this order: the data
        columns that are inputs (in the data's column order), then the columns of a
        ``past_covariates`` array.
    y : float32 (n, horizon, F_target), C-contiguous. The target columns, in the order given.
    future : float32 (n, horizon, F_future) or None. Future-known covariates over each
        window's horizon rows.
    mask : bool (n,) or None. Only with ``nan_policy="mask"``: True where the window has no
        NaN in its inputs, targets or future covariates.
    index : (n, 2) array or None. Only with ``return_index=True``: for each window, the
        first input row and the last target row (inclusive). Row positions (int64) for
        numpy input, index labels (e.g. datetime64) for pandas input.
    x_offset : float32 (n, F_in) or None. Only with ``normalize="last"``: each window's
        last input row, subtracted from X.
    y_offset : float32 (n, F_target) or None. Only with ``normalize="last"``: the targets'
        values at each window's last input row, subtracted from y. Add it back to a
        forecast: ``pred + y_offset[:, None, :]``.
    """

    X: np.ndarray
    y: np.ndarray
    future: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None
    index: Optional[np.ndarray] = None
    x_offset: Optional[np.ndarray] = None
    y_offset: Optional[np.ndarray] = None


class _Table(NamedTuple):
    """A stream as a 2-D float view plus its column names and (pandas) index."""

    values: np.ndarray  # (T, F) float32/float64, the user's memory when possible
    columns: list
    index: Optional[pd.Index]


def _numeric_values(arr, name, columns):
    """Float view of a numpy array; other numeric kinds are converted once (a copy)."""
    if arr.dtype.kind == "f" and arr.dtype.itemsize in (4, 8):
        return arr
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    if arr.dtype.kind == "O":
        bad = []
        for j in range(arr.shape[1]):
            try:
                np.asarray(arr[:, j], dtype=np.float64)
            except (TypeError, ValueError):
                bad.append(columns[j])
        if not bad:
            return arr.astype(np.float64)
        raise TypeError(f"{name}: expected numeric columns, got non-numeric columns {bad!r}")
    raise TypeError(f"{name}: expected numeric values, got dtype {arr.dtype}")


def _check_index(index, name):
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"{name}: expected a time index without duplicates, got duplicated labels {dup!r}")
    if not index.is_monotonic_increasing:
        values = index.to_numpy()
        pos = int(np.flatnonzero(values[1:] < values[:-1])[0]) + 1
        raise ValueError(f"{name}: expected a time index sorted in increasing order, got an unsorted index "
                         f"(label {index[pos]!r} at position {pos} comes after {index[pos - 1]!r})")


def _as_table(data, name) -> _Table:
    """Accept a (T,) / (T, F) array, a Series or a DataFrame; never copies float data."""
    if isinstance(data, pd.DataFrame):
        _check_index(data.index, name)
        columns = list(data.columns)
        bad = [c for c, dt in data.dtypes.items()
               if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))]
        if bad:
            raise TypeError(f"{name}: expected numeric columns, got non-numeric columns {bad!r}")
        if set(data.dtypes) <= {np.dtype(np.float32)} or set(data.dtypes) <= {np.dtype(np.float64)}:
            values = data.to_numpy()  # one float dtype: a view of the frame's block, no copy
        else:
            values = data.to_numpy(dtype=np.float64, na_value=np.nan)
        return _Table(values, columns, data.index)
    if isinstance(data, pd.Series):
        _check_index(data.index, name)
        col = data.name if data.name is not None else 0
        if not (pd.api.types.is_numeric_dtype(data.dtype) or pd.api.types.is_bool_dtype(data.dtype)):
            raise TypeError(f"{name}: expected numeric columns, got non-numeric columns {[col]!r}")
        if isinstance(data.dtype, np.dtype) and data.dtype in (np.float32, np.float64):
            values = data.to_numpy()
        else:
            values = data.to_numpy(dtype=np.float64, na_value=np.nan)
        return _Table(values.reshape(-1, 1), [col], data.index)
    if isinstance(data, (str, bytes)) or not (hasattr(data, "__len__") or hasattr(data, "__array__")):
        raise TypeError(f"{name}: expected a numpy array, pandas Series or DataFrame, got {type(data).__name__}")
    arr = as_array(name, data, "a 1-D (T,) or 2-D (T, F) array")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name}: expected a 1-D (T,) or 2-D (T, F) array, got ndim={arr.ndim} "
                         f"with shape {arr.shape}")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    columns = list(range(arr.shape[1]))
    return _Table(_numeric_values(arr, name, columns), columns, None)


def _is_selector(value):
    """Column names/positions (as opposed to a covariate array)."""
    if isinstance(value, (str, numbers.Integral)) and not isinstance(value, bool):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (str, numbers.Integral)) and not isinstance(v, bool) for v in value)


def _select(table, selector, name):
    """Positions of the columns ``selector`` names (labels first, then integer positions)."""
    if isinstance(selector, (str, numbers.Integral)) and not isinstance(selector, bool):
        items = [selector]
    elif isinstance(selector, (list, tuple, np.ndarray, pd.Index)):
        items = list(selector)
    else:  # a float or None inside would be read as a column further down; a bare one is refused here
        raise TypeError(f"{name}: expected a column name or position, or a list of them, got "
                        f"{type(selector).__name__} {selector!r}")
    if not items:
        raise ValueError(f"{name}: expected at least one column, got an empty selection")
    n_cols = len(table.columns)
    positions = []
    for item in items:
        if item in table.columns and (table.index is not None or isinstance(item, str)):
            positions.append(table.columns.index(item))
        elif isinstance(item, numbers.Integral) and -n_cols <= item < n_cols:
            positions.append(int(item) % n_cols)
        else:
            raise ValueError(f"{name}: column {item!r} is not in data; expected one of {table.columns!r} "
                             f"or a position in [{-n_cols}, {n_cols}), got {item!r}")
    if len(set(positions)) != len(positions):
        raise ValueError(f"{name}: expected distinct columns, got {items!r}")
    return positions


def _covariate_table(value, name, data_table, min_rows, exact):
    """An external covariate array, aligned row for row with ``data``."""
    table = _as_table(value, name)
    n, t = len(table.values), len(data_table.values)
    if exact and n != t:
        raise ValueError(f"{name}: expected {t} rows (one per row of data), got {n}")
    if n < min_rows:
        raise ValueError(f"{name}: expected at least {min_rows} rows to cover the horizon of the last window "
                         f"(rows 0..{min_rows - 1}), got {n}")
    if table.index is not None and data_table.index is not None:
        common = min(n, t)
        if not table.index[:common].equals(data_table.index[:common]):
            raise ValueError(f"{name}: expected an index aligned with data's (starting at "
                             f"{data_table.index[0]!r}), got one starting at {table.index[0]!r}")
    return table


def _prefix(groups, n_rows):
    """Prefix sum over "row has a NaN in these columns" for a list of (values, cols)."""
    flags = np.zeros(n_rows, dtype=np.uint8)
    for values, cols in groups:
        if len(cols):
            _kernels.mark_nan_rows(values, np.asarray(cols, dtype=np.int64), flags)
    out = np.empty(n_rows + 1, dtype=np.int32 if n_rows < 2**31 - 1 else np.int64)
    _kernels.prefix_sum(flags, out)
    return out


def _first_used_nan(checks, n_total, stride):
    """The smallest (row, argument, column) NaN that some window uses, for nan_policy="raise"."""
    best = None
    for (lo, hi, prefix, groups) in checks:
        rows = np.flatnonzero(np.diff(prefix))
        # window k uses row r when k*stride + lo <= r < k*stride + hi
        k_max = np.minimum((rows - lo) // stride, n_total - 1)
        k_min = np.maximum(-((hi - 1 - rows) // stride), 0)
        used = rows[(k_max >= k_min) & (rows >= lo)]
        if used.size and (best is None or used[0] < best[0]):
            r = int(used[0])
            for arg, table, cols in groups:
                nan_cols = [c for c in cols if not abs(table.values[r, c]) <= _kernels.F32_MAX]
                if nan_cols:
                    best = (r, arg, table, nan_cols[0])
                    break
    return best


@numba_threads_like_torch()
def make_windows(data, lookback, horizon, *, stride=1, target=None, past_covariates=None,
                 future_covariates=None, nan_policy="drop", return_index=False,
                 target_history=True, normalize=None) -> Windows:
    """Cut a multivariate stream into (input, target) windows, in parallel, in one pass.

    Window ``k`` starts at row ``s = k * stride``: its inputs are rows ``[s, s + lookback)``
    and its targets rows ``[s + lookback, s + lookback + horizon)``. There are
    ``(T - lookback - horizon) // stride + 1`` windows before NaN handling.

    Parameters
    ----------
    data : array (T,) or (T, F), pandas Series or DataFrame
        The stream. A pandas index must be sorted and free of duplicates. float32/float64
        data is read in place (never copied); other numeric dtypes are converted once.
    lookback, horizon : int >= 1
    stride : int >= 1
        Rows between consecutive window starts.
    target : None, column name/position or a list of them
        The target columns (y), in the order given. None means every column of ``data``.
        A value that is a column label is a name; other integers are positions
        (negative ones count from the end).
    past_covariates : None, column selection (list or scalar), or array/DataFrame with T rows
        A column selection restricts the non-target input columns of ``data`` to those
        (default: every non-target column is an input). An array adds its columns to the
        inputs after the data columns.
    future_covariates : None, column selection, or array/DataFrame
        Covariates known in advance; returned in ``Windows.future`` over each window's
        horizon rows. A column selection takes them from ``data``; an array must be aligned
        with ``data`` from row 0 and long enough to cover the last window's horizon. A
        list/tuple/str/int is a column selection; a numpy array or pandas object is data.
    nan_policy : {"drop", "mask", "raise"}
        NaN here means any value that is not a finite float32: NaN, inf, and float64 values beyond
        +-3.4e38 (they would become inf in the float32 windows, and NaN once normalised).
        "drop" skips windows with a NaN in their inputs, targets or future covariates;
        "mask" keeps all windows and returns ``Windows.mask``; "raise" raises a ValueError
        naming the row and column of the first NaN any window uses.
    return_index : bool
        Also return each window's first input row and last target row (``Windows.index``).
    target_history : bool
        Include the targets' own past values in X (default). False excludes them.
    normalize : None or "last"
        "last" subtracts each window's last input row from X, and the targets' values at
        that row from y, fused into the copy. The subtracted values come back in
        ``Windows.x_offset`` and ``Windows.y_offset``. Future covariates are not normalised.

    Returns
    -------
    Windows
        A named tuple ``(X, y, future, mask, index, x_offset, y_offset)`` of C-contiguous
        float32 arrays (see :class:`Windows`); fields that were not asked for are None.
    """
    lookback = check_int("lookback", lookback, min_value=1)
    horizon = check_int("horizon", horizon, min_value=1)
    stride = check_int("stride", stride, min_value=1)
    check_choice("nan_policy", nan_policy, NAN_POLICIES)
    check_normalize(normalize)
    if not isinstance(target_history, (bool, np.bool_)):
        raise TypeError(f"target_history: expected a bool, got {type(target_history).__name__} {target_history!r}")
    if not isinstance(return_index, (bool, np.bool_)):
        raise TypeError(f"return_index: expected a bool, got {type(return_index).__name__} {return_index!r}")

    table = _as_table(data, "data")
    n_rows, span = len(table.values), lookback + horizon
    if not table.columns:
        raise ValueError(f"data: expected at least one column, got shape {table.values.shape}")
    if n_rows < span:
        raise ValueError(f"data: expected at least lookback + horizon = {span} rows, got {n_rows}")
    n_total = (n_rows - span) // stride + 1

    tgt_cols = (list(range(len(table.columns))) if target is None else _select(table, target, "target"))
    if past_covariates is None or not _is_selector(past_covariates):
        other = [c for c in range(len(table.columns)) if c not in tgt_cols]
        past_table = None if past_covariates is None else _covariate_table(
            past_covariates, "past_covariates", table, n_rows, exact=True)
    else:
        other = [c for c in _select(table, past_covariates, "past_covariates") if c not in tgt_cols]
        past_table = None
    in_cols = sorted(set(other) | (set(tgt_cols) if target_history else set()))
    past_cols = [] if past_table is None else list(range(len(past_table.columns)))
    if not in_cols and not past_cols:
        raise ValueError("target_history: expected True when data has no other input columns "
                         "and no past_covariates are given, got False")

    fut_table, fut_cols = None, []
    if future_covariates is not None:
        if _is_selector(future_covariates):
            fut_table, fut_cols = table, _select(table, future_covariates, "future_covariates")
        else:
            fut_table = _covariate_table(future_covariates, "future_covariates", table,
                                         (n_total - 1) * stride + span, exact=False)
            fut_cols = list(range(len(fut_table.columns)))

    # NaN bookkeeping: one prefix sum per group of columns, each checked over its own span.
    in_groups = [("data", table, in_cols)] + ([("past_covariates", past_table, past_cols)] if past_cols else [])
    checks = [(0, lookback, _prefix([(t.values, c) for _, t, c in in_groups], n_rows), in_groups)]
    tgt_lo = lookback - 1 if normalize else lookback  # y's offset row must be finite too
    if in_cols == tgt_cols and not past_cols:
        checks.append((tgt_lo, span, checks[0][2], [("data", table, tgt_cols)]))
    else:
        checks.append((tgt_lo, span, _prefix([(table.values, tgt_cols)], n_rows), [("data", table, tgt_cols)]))
    if fut_cols:
        arg = "data" if fut_table is table else "future_covariates"
        checks.append((lookback, span, _prefix([(fut_table.values, fut_cols)], len(fut_table.values)),
                       [(arg, fut_table, fut_cols)]))
    padded = checks + [(0, 0, np.empty(0, np.int32), [])] * (3 - len(checks))
    ok = _kernels.valid_windows(n_total, stride, *[a for lo, hi, pre, _ in padded for a in (lo, hi, pre)])

    if nan_policy == "raise" and not ok.all():
        r, arg, t, c = _first_used_nan(checks, n_total, stride)
        label = "" if t.index is None else f" (index {t.index[r]!r})"
        value = t.values[r, c]
        got = "NaN" if np.isnan(value) else f"{float(value)!r}, which is not a finite float32,"
        raise ValueError(f"{arg}: expected no NaN (nan_policy='raise'), got {got} at row {r}{label}, "
                         f"column {t.columns[c]!r}")
    keep = np.flatnonzero(ok) if nan_policy == "drop" else np.arange(n_total)
    starts = (keep * stride).astype(np.int64)
    n = len(starts)

    n_in = len(in_cols) + len(past_cols)
    X = np.empty((n, lookback, n_in), dtype=np.float32)
    y = np.empty((n, horizon, len(tgt_cols)), dtype=np.float32)
    norm_row = lookback - 1 if normalize else -1
    x_off = np.empty((n, n_in) if normalize else (0, 0), dtype=np.float32)
    y_off = np.empty((n, len(tgt_cols)) if normalize else (0, 0), dtype=np.float32)
    if in_cols:
        _kernels.fill_windows(table.values, np.asarray(in_cols, np.int64), starts, 0, X, 0, norm_row, x_off)
    if past_cols:
        _kernels.fill_windows(past_table.values, np.asarray(past_cols, np.int64), starts, 0, X,
                              len(in_cols), norm_row, x_off)
    _kernels.fill_windows(table.values, np.asarray(tgt_cols, np.int64), starts, lookback, y, 0, norm_row, y_off)
    future = None
    if fut_cols:
        future = np.empty((n, horizon, len(fut_cols)), dtype=np.float32)
        _kernels.fill_windows(fut_table.values, np.asarray(fut_cols, np.int64), starts, lookback, future, 0,
                              -1, np.empty((0, 0), np.float32))

    index = None
    if return_index:
        bounds = np.stack([starts, starts + span - 1], axis=1)
        index = bounds if table.index is None else table.index.to_numpy()[bounds]
    return Windows(X, y, future, ok if nan_policy == "mask" else None, index,
                   x_off if normalize else None, y_off if normalize else None)

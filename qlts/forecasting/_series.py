"""Series input handling shared by every forecaster: validation, NaN policy and future indexes.

A series is a pd.Series / DataFrame with a DatetimeIndex or an integer (Range) index, or a
(T,) / (T, k) array (which gets a RangeIndex). Internally it is always a float64 DataFrame;
the caller's object is never modified.
"""
from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from .._validation import as_array, check_choice

NAN_POLICIES = ("interpolate", "drop", "raise")


def as_frame(y, name="y", *, columns=None):
    """``y`` as a new float64 DataFrame with a validated, regular, unique, increasing index."""
    if isinstance(y, pd.Series):
        frame = y.to_frame(name=y.name if y.name is not None else name)
    elif isinstance(y, pd.DataFrame):
        frame = y.copy()
    elif isinstance(y, (np.ndarray, list, tuple)):
        arr = as_array(name, y, "a (T,) or (T, k) array")
        if arr.ndim not in (1, 2):
            raise ValueError(f"{name}: expected a (T,) or (T, k) array, got shape {arr.shape}")
        if arr.ndim == 1:
            arr = arr[:, None]
        cols = [name] if arr.shape[1] == 1 else [f"{name}{j}" for j in range(arr.shape[1])]
        frame = pd.DataFrame(arr, columns=cols if columns is None else list(columns))
    else:
        raise TypeError(f"{name}: expected a pandas Series/DataFrame or a numpy array, got {type(y).__name__}")
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one row and one column, got shape {frame.shape}")
    try:
        frame = frame.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected numeric values, got dtypes {dict(frame.dtypes.astype(str))}") from exc
    check_index(frame.index, name)
    return frame


def inferred_freq(index):
    """The DateOffset a DatetimeIndex keeps (None for fewer than 3 stamps or irregular steps).
    Not ``pd.infer_freq``: pandas 3 warns on every call that its return type will change."""
    return pd.DatetimeIndex(index, freq="infer").freq


def is_irregular(index):
    """A DatetimeIndex of 3 or more stamps whose frequency cannot be inferred."""
    return len(index) >= 3 and index.freq is None and inferred_freq(index) is None


def irregular_steps(index):
    """The three most common steps of a DatetimeIndex, for error messages."""
    return ", ".join(str(step) for step in pd.Series(index[1:] - index[:-1]).value_counts().index[:3])


def suggested_freq(index):
    """The frequency an irregular DatetimeIndex most likely means, as a string: 'B' for trading days
    (daily weekdays, holidays missing), the most common step where every step is a multiple of it,
    else None."""
    steps = pd.Series(index[1:] - index[:-1]).value_counts().index
    common = steps[0]
    if common == pd.Timedelta(days=1) and (index.day_of_week < 5).all():
        return "B"
    if common > pd.Timedelta(0) and all(step % common == pd.Timedelta(0) for step in steps):
        return inferred_freq(index[0] + common * np.arange(3)).freqstr
    return None


def check_index(index, name="y"):
    """A DatetimeIndex with an inferable frequency, or an integer index with a constant step."""
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise ValueError(f"{name}: expected a unique index, got duplicated label {dup!r}")
    if isinstance(index, pd.DatetimeIndex):
        if not index.is_monotonic_increasing:
            raise ValueError(f"{name}: expected an increasing DatetimeIndex, got an unsorted one")
        if is_irregular(index):
            freq = suggested_freq(index)
            raise ValueError(f"{name}: expected a regular DatetimeIndex (one frequency), got irregular steps "
                             f"{irregular_steps(index)}. Put it on one frequency first with "
                             f"{name}.asfreq({'freq' if freq is None else repr(freq)}): the missing steps become "
                             "NaN, which nan_policy fills or drops")
        return
    if isinstance(index, pd.PeriodIndex):
        raise TypeError(f"{name}: expected a DatetimeIndex or an integer/RangeIndex, got a PeriodIndex "
                        f"(freq {index.freqstr}); convert it with {name}.to_timestamp()")
    if not pd.api.types.is_integer_dtype(index):
        raise TypeError(f"{name}: expected a DatetimeIndex or an integer/RangeIndex, got {type(index).__name__} "
                        f"of dtype {index.dtype}")
    steps = np.diff(index.to_numpy())
    if len(steps) and (steps[0] <= 0 or np.any(steps != steps[0])):
        raise ValueError(f"{name}: expected an increasing integer index with a constant step, got steps "
                         f"{sorted(set(steps.tolist()))[:3]}")


def index_step(index):
    """The frequency (DateOffset) of a DatetimeIndex, or the integer step of an integer index."""
    if isinstance(index, pd.DatetimeIndex):
        freq = index.freq or inferred_freq(index)
        if freq is None:
            if len(index) < 2:
                raise ValueError("y: expected at least 2 timestamps to infer the frequency, got 1")
            return pd.tseries.frequencies.to_offset(index[1] - index[0])
        return pd.tseries.frequencies.to_offset(freq)
    return int(index[1] - index[0]) if len(index) > 1 else 1


def future_index(index, horizon, step=None):
    """The ``horizon`` labels that follow ``index`` at its frequency."""
    step = index_step(index) if step is None else step
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(index[-1] + step, periods=horizon, freq=step, tz=index.tz)
    start = int(index[-1]) + step
    return pd.RangeIndex(start, start + step * horizon, step)


def apply_nan_policy(frame, policy, name="y"):
    """``frame`` with NaN handled per ``policy`` (a new frame):

    - "interpolate": linear interpolation in time; leading/trailing gaps take the nearest value;
    - "drop": NaN stay (the windowing drops every window that touches one);
    - "raise": any NaN is an error.
    A column that is entirely NaN is always an error.
    """
    check_choice("nan_policy", policy, NAN_POLICIES)
    nan = frame.isna()
    if not nan.values.any():
        return frame
    empty = nan.all()
    if empty.any():
        raise ValueError(f"{name}: expected some observed values in every column, got all-NaN column(s) "
                         f"{list(frame.columns[empty])}")
    if policy == "raise":
        first = frame.index[nan.any(axis=1).to_numpy()][0]
        raise ValueError(f"{name}: expected no NaN with nan_policy='raise', got {int(nan.values.sum())} NaN "
                         f"(first at {first!r}); use nan_policy='interpolate' or 'drop'")
    if policy == "drop":
        return frame
    return frame.interpolate(method="linear", limit_direction="both")


def check_horizon(horizon, name="horizon"):
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral):
        raise TypeError(f"{name}: expected an int >= 1, got {type(horizon).__name__} {horizon!r}")
    if horizon < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {horizon!r}")
    return int(horizon)


def align_covariates(X, y_frame, name="X"):
    """Covariates as a float frame on ``y_frame``'s index. Pandas X is aligned by label and must
    cover every row of y; an array must have exactly len(y) rows."""
    if X is None:
        return None
    if isinstance(X, (pd.Series, pd.DataFrame)):
        Xf = as_frame(X, name)
        missing = y_frame.index.difference(Xf.index)
        if len(missing):
            raise ValueError(f"{name}: expected covariates covering every row of y from {y_frame.index[0]!r} to "
                             f"{y_frame.index[-1]!r}, got {len(missing)} rows missing (first {missing[0]!r})")
        return Xf.loc[y_frame.index]
    arr = as_array(name, X, "a (T,) or (T, k) array")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != len(y_frame):
        raise ValueError(f"{name}: expected an array with {len(y_frame)} rows (one per row of y), got shape "
                         f"{arr.shape}")
    return as_frame(pd.DataFrame(arr, index=y_frame.index, columns=[f"x{j}" for j in range(arr.shape[1])]), name)

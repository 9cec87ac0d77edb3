"""What every fuzz test shares: the settings per profile, input strategies (dtypes, odd
values, pandas indexes) and the outcome check (finite result or a documented error)."""
from __future__ import annotations

import contextlib
import copy
import os
import re
import warnings

import numpy as np
import pandas as pd
from hypothesis import event, settings
from hypothesis import strategies as st

PROFILE = os.environ.get("QLTS_FUZZ_PROFILE", "ci")

# A float value the user may hand us: ordinary, a gap, an overflow, or huge but finite.
SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 1e30, -1e30, 1e300, -1e300, 0.0, -0.0, 5e-324]
DTYPES = ["float64", "float32", "float16", "int64", "int32", "uint8", "bool", "object"]


def fuzz_settings(ci_examples):
    """The "qlts-fuzz" profile (tests/fuzz/conftest.py); CI runs ``ci_examples`` examples."""
    base = settings.get_profile("qlts-fuzz")
    return settings(base, max_examples=ci_examples) if PROFILE == "ci" else base


@st.composite
def arrays(draw, shape, *, dtypes=DTYPES, specials=True, max_specials=3):
    """A float64 array of ``shape`` with a few special values at drawn places, converted to a
    drawn dtype (object arrays may also hold a None or a string)."""
    n = int(np.prod(shape))
    values = draw(st.lists(st.floats(-10, 10, width=32), min_size=n, max_size=n))
    arr = np.array(values, dtype=np.float64).reshape(shape)
    dtype = draw(st.sampled_from(dtypes))
    if specials and n:
        for _ in range(draw(st.integers(0, max_specials))):
            arr.flat[draw(st.integers(0, n - 1))] = draw(st.sampled_from(SPECIAL_VALUES))
    if dtype == "object":
        obj = arr.astype(object)
        if n and draw(st.integers(0, 5)) == 0:
            obj.flat[draw(st.integers(0, n - 1))] = draw(st.sampled_from([None, "x", "1.5", b"2"]))
        return obj
    if dtype[0] in "iub":  # an integer column cannot hold NaN or inf; saturate huge values
        with np.errstate(invalid="ignore"):
            arr = np.nan_to_num(np.round(arr), nan=0, posinf=1e9, neginf=-1e9).clip(-1e9, 1e9)
        return (arr > 0) if dtype == "bool" else arr.astype(np.int64).clip(
            np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
    with np.errstate(over="ignore"):
        return arr.astype(dtype)


@st.composite
def time_indexes(draw, n):
    """An index of n labels: a range, dates, or an unsorted / duplicated / irregular one."""
    kind = draw(st.sampled_from(["none", "range", "dates", "step2", "unsorted", "duplicated", "irregular",
                                 "strings"]))
    if kind == "none":
        return None
    if kind == "range":
        return pd.RangeIndex(n)
    if kind == "dates":
        return pd.date_range("2020-01-01", periods=n, freq=draw(st.sampled_from(["h", "D", "15min"])))
    if kind == "step2":
        return pd.Index(np.arange(n) * 2 + 5)
    if kind == "strings":
        return pd.Index([f"t{i}" for i in range(n)])
    base = pd.date_range("2020-01-01", periods=n, freq="h")
    if n < 2:
        return base
    i = draw(st.integers(0, n - 2))
    labels = list(base)
    if kind == "unsorted":
        labels[i], labels[i + 1] = labels[i + 1], labels[i]
    elif kind == "duplicated":
        labels[i + 1] = labels[i]
    else:  # irregular: one step twice as long
        labels = labels[: i + 1] + [t + pd.Timedelta(hours=1) for t in labels[i + 1:]]
    return pd.DatetimeIndex(labels)


@st.composite
def series_inputs(draw, n, k, *, allow_1d=True, max_specials=3):
    """A (n,) / (n, k) array, a Series or a DataFrame of n rows (k columns), any dtype, odd index."""
    one_d = allow_1d and k == 1 and draw(st.booleans())
    values = draw(arrays((n,) if one_d else (n, k), max_specials=max_specials))
    container = draw(st.sampled_from(["array", "pandas", "list"]))
    if container == "array":
        return values
    if container == "list":
        return values.tolist()
    index = draw(time_indexes(n))
    if one_d:
        return pd.Series(values, index=index, name=draw(st.sampled_from([None, "target"])))
    return pd.DataFrame(values, index=index, columns=[f"c{j}" for j in range(k)])


def to_float(data):
    """The values of user input as float64 (None when they are not all numbers)."""
    values = data.to_numpy() if hasattr(data, "to_numpy") else data
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def all_finite(data, *, float32=False):
    """Whether user input is all numbers and finite (also once cast to float32, if asked)."""
    values = to_float(data)
    if values is None:
        return False
    with np.errstate(over="ignore"):
        return bool(np.isfinite(values.astype(np.float32) if float32 else values).all())


def has_nan(data):
    values = to_float(data)
    return values is None or bool(np.isnan(values).any())


def snapshot(data):
    """A deep copy of user input, to prove a call did not modify it."""
    if isinstance(data, (pd.Series, pd.DataFrame)):
        return data.copy(deep=True)
    if isinstance(data, np.ndarray):
        return data.copy()
    return None if data is None else copy.deepcopy(data)


def assert_unchanged(before, after):
    if isinstance(before, (pd.Series, pd.DataFrame)):
        (pd.testing.assert_frame_equal if isinstance(before, pd.DataFrame) else pd.testing.assert_series_equal)(
            before, after, check_exact=True)
    elif isinstance(before, np.ndarray):
        assert before.dtype == after.dtype and before.shape == after.shape
        if before.dtype.kind == "O":
            assert all(a is b or a == b or (a != a and b != b) for a, b in zip(before.flat, after.flat))
        else:
            np.testing.assert_array_equal(before, after)
    elif before is not None:
        assert repr(before) == repr(after)


class Documented(Exception):
    """Raised by :func:`outcome` when the call failed with a documented error (caught by tests)."""


def names_argument(message, names):
    """Whether an error message starts with one of the argument names (``"X: ..."``,
    ``"initial/horizon: ..."``, ``"X has 2 features ..."``)."""
    pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.match(rf"(?:{pattern})(?![\w])", message) is not None


@contextlib.contextmanager
def documented_errors(names, *, divergence=False):
    """Let a ValueError / TypeError through as a documented failure when its message names one
    of ``names``; any other exception fails the test. With ``divergence``, training's divergence
    guard (a FloatingPointError naming the epoch and the batch, see ``on_nan``) is documented
    too: a finite input that overflows the loss (y = 1e30 squared in float32) must stop there
    rather than return NaN predictions. Warnings are ignored (odd inputs legitimately warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except (ValueError, TypeError) as exc:
            message = str(exc)
            assert names_argument(message, names), (
                f"{type(exc).__name__} does not name the argument (expected one of {sorted(names)}): {message!r}")
            event(f"documented {type(exc).__name__}: {message.split(':')[0][:40]}")
            raise Documented(message) from exc
        except FloatingPointError as exc:
            if not divergence:
                raise
            message = str(exc)
            assert re.search(r"\bepoch\b", message) and re.search(r"\bbatch\b", message), message
            event(f"documented {type(exc).__name__} (divergence guard)")
            raise Documented(message) from exc
        event("succeeded")

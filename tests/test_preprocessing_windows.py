"""make_windows and WindowStream against a plain-Python reference loop."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qlts.preprocessing import WindowStream, Windows, make_windows


def reference(values, lookback, horizon, stride, in_cols, tgt_cols, past=None, fut=None,
              nan_policy="drop", normalize=False):
    """The windows, written as the definition: one window at a time, one value at a time.

    ``values``, ``past`` and ``fut`` are lists of rows (numpy scalars of the source dtype,
    so a subtraction happens in the source precision, as documented)."""
    X, Y, F, M, IDX, XO, YO = [], [], [], [], [], [], []
    n_rows = len(values)
    for s in range(0, n_rows - lookback - horizon + 1, stride):
        x = [[values[s + t][c] for c in in_cols] + (list(past[s + t]) if past is not None else [])
             for t in range(lookback)]
        y = [[values[s + lookback + h][c] for c in tgt_cols] for h in range(horizon)]
        f = [list(fut[s + lookback + h]) for h in range(horizon)] if fut is not None else []
        y_last = [values[s + lookback - 1][c] for c in tgt_cols]
        cells = [v for row in x + y + f for v in row] + (y_last if normalize else [])
        has_nan = any(math.isnan(v) for v in cells)
        if has_nan and nan_policy == "drop":
            continue
        if has_nan and nan_policy == "raise":
            raise AssertionError("reference does not model raise")
        if normalize:
            x_last = list(x[-1])
            x = [[v - o for v, o in zip(row, x_last)] for row in x]
            y = [[v - o for v, o in zip(row, y_last)] for row in y]
            XO.append(x_last)
            YO.append(y_last)
        X.append(x)
        Y.append(y)
        F.append(f)
        M.append(not has_nan)
        IDX.append([s, s + lookback + horizon - 1])
    as32 = lambda rows, steps, width: np.array(rows, dtype=np.float32).reshape(len(rows), steps, width)
    n_in = len(in_cols) + (0 if past is None else len(past[0]))
    return dict(X=as32(X, lookback, n_in), y=as32(Y, horizon, len(tgt_cols)),
                future=None if fut is None else as32(F, horizon, len(fut[0])), mask=np.array(M, dtype=bool),
                index=np.array(IDX, dtype=np.int64).reshape(-1, 2),
                x_offset=np.array(XO, dtype=np.float32), y_offset=np.array(YO, dtype=np.float32))


def random_stream(rng, n_rows, n_cols, dtype=np.float64, nan_frac=0.03):
    values = rng.standard_normal((n_rows, n_cols)).astype(dtype)
    values[rng.random((n_rows, n_cols)) < nan_frac] = np.nan
    return values


def assert_equal_arrays(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def check(result, ref, *, mask=False, index=False, normalize=False, future=False):
    assert isinstance(result, Windows)
    for name in ("X", "y"):
        arr = getattr(result, name)
        assert arr.flags.c_contiguous
        assert_equal_arrays(arr, ref[name])
    if future:
        assert result.future.flags.c_contiguous
        assert_equal_arrays(result.future, ref["future"])
    else:
        assert result.future is None
    if mask:
        assert_equal_arrays(result.mask, ref["mask"])
    else:
        assert result.mask is None
    if index:
        assert_equal_arrays(result.index, ref["index"])
    else:
        assert result.index is None
    if normalize:
        assert_equal_arrays(result.x_offset, ref["x_offset"].reshape(result.x_offset.shape))
        assert_equal_arrays(result.y_offset, ref["y_offset"].reshape(result.y_offset.shape))
    else:
        assert result.x_offset is None and result.y_offset is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("nan_policy", ["drop", "mask"])
@pytest.mark.parametrize("normalize", [None, "last"])
def test_all_columns_match_reference(dtype, stride, nan_policy, normalize):
    rng = np.random.default_rng(stride * 7 + (dtype == np.float32))
    values = random_stream(rng, 60, 3, dtype)
    before = values.copy()
    res = make_windows(values, 5, 2, stride=stride, nan_policy=nan_policy, return_index=True, normalize=normalize)
    ref = reference(list(values), 5, 2, stride, [0, 1, 2], [0, 1, 2], nan_policy=nan_policy,
                    normalize=normalize is not None)
    assert len(ref["X"]) > 0 and (nan_policy == "drop" or not ref["mask"].all())  # the test sees gaps
    check(res, ref, mask=nan_policy == "mask", index=True, normalize=normalize is not None)
    np.testing.assert_array_equal(values, before)  # never modified


@pytest.mark.parametrize("target", [[2, 0], 1, [-1]])
@pytest.mark.parametrize("target_history", [True, False])
@pytest.mark.parametrize("normalize", [None, "last"])
def test_target_subsets(target, target_history, normalize):
    rng = np.random.default_rng(3)
    values = random_stream(rng, 50, 4)
    res = make_windows(values, 4, 3, stride=2, target=target, target_history=target_history, normalize=normalize)
    tgt = [c % 4 for c in (target if isinstance(target, list) else [target])]
    in_cols = [c for c in range(4) if target_history or c not in tgt]
    ref = reference(list(values), 4, 3, 2, in_cols, tgt, normalize=normalize is not None)
    check(res, ref, normalize=normalize is not None)


def test_past_covariate_selection_restricts_inputs():
    rng = np.random.default_rng(4)
    values = random_stream(rng, 40, 5)
    res = make_windows(values, 3, 2, target=[4], past_covariates=[1, 3])
    check(res, reference(list(values), 3, 2, 1, [1, 3, 4], [4]))


@pytest.mark.parametrize("normalize", [None, "last"])
def test_external_covariates(normalize):
    rng = np.random.default_rng(5)
    values = random_stream(rng, 45, 2)
    past = random_stream(rng, 45, 3, np.float32)
    fut = random_stream(rng, 52, 2)  # longer than the data: it extends into the future
    res = make_windows(values, 6, 3, stride=2, target=0, past_covariates=past, future_covariates=fut,
                       normalize=normalize)
    ref = reference(list(values), 6, 3, 2, [0, 1], [0], past=list(past), fut=list(fut),
                    normalize=normalize is not None)
    check(res, ref, future=True, normalize=normalize is not None)


def test_future_covariates_from_data_columns():
    rng = np.random.default_rng(6)
    values = random_stream(rng, 40, 3)
    res = make_windows(values, 4, 2, target=0, future_covariates=[2], nan_policy="mask")
    ref = reference(list(values), 4, 2, 1, [0, 1, 2], [0], fut=[row[[2]] for row in values], nan_policy="mask")
    check(res, ref, mask=True, future=True)


def test_dataframe_input_with_time_index():
    rng = np.random.default_rng(7)
    values = random_stream(rng, 48, 3)
    idx = pd.date_range("2024-01-01", periods=48, freq="h")
    df = pd.DataFrame(values, columns=["load", "temp", "price"], index=idx)
    before = df.copy()
    res = make_windows(df, 6, 3, stride=2, target=["price", "load"], past_covariates=["temp"],
                       nan_policy="mask", return_index=True)
    ref = reference(list(values), 6, 3, 2, [0, 1, 2], [2, 0], nan_policy="mask")
    check(res, {**ref, "index": idx.to_numpy()[ref["index"]]}, mask=True, index=True)
    assert res.index.dtype.kind == "M"
    pd.testing.assert_frame_equal(df, before)


def test_mixed_dtype_dataframe_and_series():
    rng = np.random.default_rng(8)
    values = random_stream(rng, 30, 2)
    df = pd.DataFrame({"a": values[:, 0].astype(np.float32), "b": values[:, 1], "n": np.arange(30)})
    res = make_windows(df, 3, 2, target="b")
    ref = reference(list(df.to_numpy(dtype=np.float64)), 3, 2, 1, [0, 1, 2], [1])
    check(res, ref)

    series = pd.Series(values[:, 1], index=pd.RangeIndex(100, 130), name="b")
    res = make_windows(series, 4, 1, stride=2, return_index=True)
    ref = reference(list(values[:, [1]]), 4, 1, 2, [0], [0])
    check(res, {**ref, "index": ref["index"] + 100}, index=True)


def test_one_dimensional_array_and_non_contiguous_view():
    rng = np.random.default_rng(9)
    values = random_stream(rng, 40, 4)
    view = values[::2, 1:]  # strided rows and an offset: read in place, not copied
    res = make_windows(view, 3, 2, target=[0])
    check(res, reference(list(view), 3, 2, 1, [0, 1, 2], [0]))
    res = make_windows(values[:, 2], 3, 2)
    check(res, reference(list(values[:, [2]]), 3, 2, 1, [0], [0]))


def test_raise_names_the_first_used_nan():
    values = np.arange(60, dtype=np.float64).reshape(20, 3)
    values[15, 2] = np.nan
    values[9, 1] = np.nan
    with pytest.raises(ValueError, match=r"row 9.*column 1"):
        make_windows(values, 3, 2, nan_policy="raise")
    # with stride 5 no window uses row 9: windows are rows 0-4, 5-9 (9 is a target row) ...
    with pytest.raises(ValueError, match=r"row 9.*column 1"):
        make_windows(values, 3, 2, stride=5, nan_policy="raise")
    # ... but when only column 0 is an input and target, neither NaN is used
    res = make_windows(values, 3, 2, stride=5, target=0, past_covariates=[0], nan_policy="raise")
    assert res.X.shape == (4, 3, 1)
    df = pd.DataFrame(values, columns=["a", "b", "c"], index=pd.date_range("2020", periods=20, freq="D"))
    with pytest.raises(ValueError, match=r"row 9 \(index Timestamp\('2020-01-10.*column 'b'"):
        make_windows(df, 3, 2, nan_policy="raise")


def test_nan_outside_every_window_is_ignored():
    values = np.arange(40, dtype=np.float64).reshape(20, 2)
    values[19, 0] = np.nan  # stride 4: the last window ends at row 16
    res = make_windows(values, 3, 2, stride=4, nan_policy="raise")
    assert res.X.shape[0] == 4


def test_all_windows_dropped_gives_empty_arrays():
    values = np.full((10, 2), np.nan)
    res = make_windows(values, 3, 2)
    assert res.X.shape == (0, 3, 2) and res.y.shape == (0, 2, 2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_rows=st.integers(1, 40), n_cols=st.integers(1, 3), lookback=st.integers(1, 8),
       horizon=st.integers(1, 5), stride=st.integers(1, 6), seed=st.integers(0, 2**16),
       nan_policy=st.sampled_from(["drop", "mask"]), normalize=st.sampled_from([None, "last"]))
def test_shapes_property(n_rows, n_cols, lookback, horizon, stride, seed, nan_policy, normalize):
    values = random_stream(np.random.default_rng(seed), n_rows, n_cols, np.float32, nan_frac=0.05)
    if n_rows < lookback + horizon:
        with pytest.raises(ValueError, match=rf"data: expected at least lookback \+ horizon = "
                                             rf"{lookback + horizon} rows, got {n_rows}"):
            make_windows(values, lookback, horizon, stride=stride)
        return
    res = make_windows(values, lookback, horizon, stride=stride, nan_policy=nan_policy, normalize=normalize,
                       return_index=True)
    cols = list(range(n_cols))
    ref = reference(list(values), lookback, horizon, stride, cols, cols, nan_policy=nan_policy,
                    normalize=normalize is not None)
    check(res, ref, mask=nan_policy == "mask", index=True, normalize=normalize is not None)
    if nan_policy == "mask":
        assert len(res.X) == (n_rows - lookback - horizon) // stride + 1


def test_exactly_one_window():
    values = np.arange(14, dtype=np.float64).reshape(7, 2)
    res = make_windows(values, 4, 3, stride=5, return_index=True)
    np.testing.assert_array_equal(res.X[0], values[:4].astype(np.float32))
    np.testing.assert_array_equal(res.y[0], values[4:].astype(np.float32))
    np.testing.assert_array_equal(res.index, [[0, 6]])


def test_unpackable():
    X, y, future, mask, index, x_offset, y_offset = make_windows(np.arange(10.0), 3, 1)
    assert X.shape == (7, 3, 1) and y.shape == (7, 1, 1) and future is None


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(lookback=0), ValueError, r"lookback: expected an int >= 1, got 0"),
    (dict(horizon=0), ValueError, r"horizon: expected an int >= 1, got 0"),
    (dict(lookback=2.5), TypeError, r"lookback: expected an int"),
    (dict(stride=0), ValueError, r"stride: expected an int >= 1, got 0"),
    (dict(lookback=10, horizon=3), ValueError, r"data: expected at least lookback \+ horizon = 13 rows, got 12"),
    (dict(target="nope"), ValueError, r"target: column 'nope' is not in data; expected one of \['a', 'b', 'c'\]"),
    (dict(target=7), ValueError, r"target: column 7 is not in data"),
    (dict(nan_policy="fill"), ValueError, r"nan_policy: expected one of \['drop', 'mask', 'raise'\], got 'fill'"),
    (dict(normalize="mean"), ValueError, r"normalize: expected one of"),
    (dict(future_covariates=np.ones((8, 1))), ValueError,
     r"future_covariates: expected at least 12 rows to cover the horizon of the last window .*got 8"),
    (dict(past_covariates=np.ones((11, 1))), ValueError, r"past_covariates: expected 12 rows .*got 11"),
    (dict(target="a", target_history=False, past_covariates=[]), ValueError, r"past_covariates: expected at least one"),
])
def test_bad_arguments(kwargs, exc, pattern):
    df = pd.DataFrame(np.random.default_rng(0).standard_normal((12, 3)), columns=["a", "b", "c"])
    args = dict(lookback=3, horizon=2)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        make_windows(df, **args)


def test_bad_data():
    idx = pd.date_range("2024", periods=10, freq="D")
    with pytest.raises(TypeError, match=r"data: expected numeric columns, got non-numeric columns \['name'\]"):
        make_windows(pd.DataFrame({"x": np.arange(10.0), "name": list("abcdefghij")}), 3, 1)
    with pytest.raises(ValueError, match=r"data: expected a time index sorted in increasing order.*position 6 comes after"):
        make_windows(pd.Series(np.arange(10.0), index=idx[[0, 1, 2, 3, 4, 6, 5, 7, 8, 9]]), 3, 1)
    with pytest.raises(ValueError, match=r"data: expected a time index without duplicates"):
        make_windows(pd.Series(np.arange(10.0), index=idx[[0, 1, 2, 3, 4, 5, 5, 7, 8, 9]]), 3, 1)
    with pytest.raises(ValueError, match=r"data: expected a 1-D \(T,\) or 2-D \(T, F\) array, got ndim=3"):
        make_windows(np.ones((10, 2, 2)), 3, 1)
    with pytest.raises(TypeError, match=r"data: expected numeric columns, got non-numeric columns \[1\]"):
        make_windows(np.array([[1.0, "x"]] * 10, dtype=object), 3, 1)
    with pytest.raises(TypeError, match=r"data: expected numeric values, got dtype <U"):
        make_windows(np.array(["1"] * 10), 3, 1)
    with pytest.raises(ValueError, match=r"data: expected at least one column, got shape \(10, 0\)"):
        make_windows(np.ones((10, 0)), 3, 1)
    with pytest.raises(ValueError, match=r"target_history: expected True"):
        make_windows(np.ones((10, 2)), 3, 1, target_history=False)
    future = pd.DataFrame({"f": np.ones(12)}, index=pd.date_range("2023", periods=12, freq="D"))
    with pytest.raises(ValueError, match=r"future_covariates: expected an index aligned with data's"):
        make_windows(pd.Series(np.arange(10.0), index=idx), 3, 1, future_covariates=future)


def test_ragged_data_and_target_that_is_not_a_column():
    """Bug: a ragged nested list leaked numpy's "setting an array element with a sequence", and
    target=0.0 Python's "'float' object is not iterable" (target=True was read as column 1)."""
    with pytest.raises(ValueError, match=r"data: expected a 1-D \(T,\) or 2-D \(T, F\) array, got list that does not convert"):
        make_windows([[1.0, 2.0], [3.0]] * 5, 1, 1)
    with pytest.raises(ValueError, match=r"past_covariates: expected a 1-D .*got list that does not convert"):
        make_windows(np.ones((10, 2)), 1, 1, past_covariates=[[1.0, 2.0], [3.0]] * 5)
    for target in (0.0, True, {0}):
        with pytest.raises(TypeError, match=r"target: expected a column name or position, or a list of them, got"):
            make_windows(np.ones((10, 2)), 1, 1, target=target)
    assert make_windows(np.ones((10, 2)), 1, 1, target=np.array([1])).y.shape == (9, 1, 1)


@pytest.mark.parametrize("stride", [1, 4])
@pytest.mark.parametrize("normalize", [None, "last"])
def test_window_stream_equals_batch(stride, normalize):
    rng = np.random.default_rng(stride)
    values = random_stream(rng, 50, 3, np.float32)
    batch = make_windows(values, 6, 2, stride=stride, nan_policy="mask", normalize=normalize).X
    stream = WindowStream(6, 3, stride=stride, normalize=normalize)
    got = [w for row in values for w in stream.push(row)]
    assert len(got) == (50 - 6) // stride + 1  # the batch plus the windows whose targets are unknown
    np.testing.assert_array_equal(np.stack(got[:len(batch)]), batch)
    np.testing.assert_array_equal(stream.latest(), got[-1])  # row 50 completes a window for both strides
    if normalize is None:
        np.testing.assert_array_equal(stream.latest(), values[-6:])
    # pushing rows in blocks gives the same windows
    blocks = WindowStream(6, 3, stride=stride, normalize=normalize)
    chunks = [blocks.push(values[i:i + 7]) for i in range(0, 50, 7)]
    np.testing.assert_array_equal(np.concatenate(chunks), np.stack(got))


def test_window_stream_bad_input():
    stream = WindowStream(4, 2)
    assert stream.latest() is None and not stream.ready
    with pytest.raises(ValueError, match=r"rows: expected shape \(2,\) or \(k, 2\), got \(3,\)"):
        stream.push(np.ones(3))
    with pytest.raises(ValueError, match=r"lookback: expected an int >= 1, got 0"):
        WindowStream(0, 2)

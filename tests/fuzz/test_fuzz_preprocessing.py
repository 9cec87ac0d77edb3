"""Fuzzing make_windows, SequenceScaler (issue #9) and TextEncoder."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from qlts.preprocessing import SequenceScaler, TextEncoder, Vocabulary, make_windows

from ._fuzz import (Documented, all_finite, arrays, assert_unchanged, documented_errors, fuzz_settings,
                    series_inputs, snapshot, to_float)

WINDOW_ARGS = {"data", "lookback", "horizon", "stride", "target", "past_covariates", "future_covariates",
               "nan_policy", "normalize", "return_index", "target_history"}


@fuzz_settings(150)
@given(st.data())
def test_make_windows(data):
    n, k = data.draw(st.integers(0, 12), "T"), data.draw(st.integers(1, 3), "F")
    stream = data.draw(series_inputs(n, k), "data")
    kwargs = data.draw(st.fixed_dictionaries({}, optional={
        "stride": st.sampled_from([1, 2, 5]),
        "target": st.sampled_from([0, -1, [0], "c0", None] + ([[1, 0], 1] if k > 1 else [])),
        "nan_policy": st.sampled_from(["drop", "mask", "raise"]),
        "normalize": st.sampled_from([None, "last"]),
        "return_index": st.booleans(),
        "target_history": st.booleans(),
        "future_covariates": st.sampled_from([0, [0], -1]),
    }), "kwargs")
    lookback = data.draw(st.integers(1, 4), "lookback")
    horizon = data.draw(st.integers(1, 3), "horizon")
    if data.draw(st.integers(0, 4), "break an argument") == 0:  # one invalid argument in five cases
        name, value = data.draw(st.sampled_from([
            ("lookback", 0), ("lookback", -2), ("lookback", 2.0), ("lookback", "3"), ("horizon", None),
            ("horizon", 0), ("stride", 0), ("stride", 1.5), ("stride", True), ("target", [0, 0]), ("target", 7),
            ("target", "nope"), ("target", []), ("nan_policy", "bogus"), ("nan_policy", None),
            ("normalize", "mean"), ("return_index", 1), ("future_covariates", 9)]), "bad argument")
        if name in ("lookback", "horizon"):
            lookback, horizon = (value, horizon) if name == "lookback" else (lookback, value)
        else:
            kwargs[name] = value
    before = snapshot(stream)
    try:
        with documented_errors(WINDOW_ARGS):
            out = make_windows(stream, lookback, horizon, **kwargs)
    except Documented:
        assert_unchanged(before, stream)
        return
    assert_unchanged(before, stream)

    values = to_float(stream).reshape(n, -1)
    policy = kwargs.get("nan_policy", "drop")
    stride = kwargs.get("stride", 1)
    n_total = (n - lookback - horizon) // stride + 1
    n_win = len(out.X)
    assert out.X.dtype == np.float32 and out.y.dtype == np.float32
    assert out.X.flags.c_contiguous and out.y.flags.c_contiguous
    assert out.X.shape[:2] == (n_win, lookback) and out.y.shape[:2] == (n_win, horizon)
    assert (n_win == n_total) if policy in ("mask", "raise") else (n_win <= n_total)
    assert (out.mask is not None) == (policy == "mask")
    keep = np.ones(n_win, bool) if out.mask is None else out.mask
    if all_finite(values, float32=True):
        assert keep.all()
    # every window returned as valid is finite: NaN, inf and values beyond float32 are gaps that
    # nan_policy drops, masks or refuses (never inf from 1e300, never NaN from inf - inf)
    for field in (out.X, out.y, out.future, out.x_offset, out.y_offset):
        assert field is None or np.isfinite(field[keep]).all(), "non-finite values in a valid window"
    if all_finite(values, float32=True) and kwargs.get("normalize") is None and n_win:
        # the first window is rows [0, lookback) of the (float32) stream
        start = 0 if out.index is None or isinstance(stream, pd.DataFrame | pd.Series) else int(out.index[0, 0])
        first_in = values[start:start + lookback].astype(np.float32)
        assert np.isin(out.X[0], first_in).all()


SCALER_ARGS = {"X", "method", "feature_range", "quantile_range", "quantile_range[0]", "quantile_range[1]"}


@fuzz_settings(150)
@given(st.data())
def test_sequence_scaler(data):
    shape = data.draw(st.one_of(st.tuples(st.integers(0, 4), st.integers(0, 5)),
                                st.tuples(st.integers(0, 4), st.integers(0, 5), st.integers(0, 3))), "shape")
    X = data.draw(arrays(shape), "X")
    container = data.draw(st.sampled_from(["array", "list", "frame"]), "container")
    if container == "list":
        X = X.tolist()
    elif container == "frame" and len(shape) == 2:
        X = pd.DataFrame(X)
    method = data.draw(st.sampled_from(["standard", "minmax", "robust"]), "method")
    params = data.draw(st.fixed_dictionaries({}, optional={
        "feature_range": st.sampled_from([(0, 1), (-1, 1), (0.0, 1e-3)]),
        "quantile_range": st.sampled_from([(25.0, 75.0), (5, 95), (0, 100)]),
    }), "params")
    if data.draw(st.integers(0, 4), "break an argument") == 0:
        name, value = data.draw(st.sampled_from([
            ("method", "zscore"), ("feature_range", (1, 0)), ("feature_range", (0,)), ("feature_range", "ab"),
            ("quantile_range", (75, 25)), ("quantile_range", (-1, 50)), ("quantile_range", (10, 200))]))
        method, params = (value, params) if name == "method" else (method, {**params, name: value})
    X_new = data.draw(st.one_of(st.none(), arrays(shape)), "X_new")  # transform other data than the fit's
    before, before_new = snapshot(X), snapshot(X_new)
    scaler = SequenceScaler(method, **params)
    try:
        with documented_errors(SCALER_ARGS):
            Xt = scaler.fit(X).transform(X if X_new is None else X_new)
            back = scaler.inverse_transform(Xt)
    except Documented:
        assert_unchanged(before, X)
        assert_unchanged(before_new, X_new)
        return
    assert_unchanged(before, X)
    assert_unchanged(before_new, X_new)
    source = to_float(X if X_new is None else X_new)
    assert Xt.shape == source.shape and back.shape == source.shape
    assert np.isfinite(scaler.center_).all() and np.isfinite(scaler.scale_).all() and (scaler.scale_ > 0).all()
    finite = np.isfinite(source)
    assert np.array_equal(np.isnan(Xt), ~finite), "NaN exactly where the input has NaN"
    if all_finite(to_float(X)) and finite.all():
        assert np.isfinite(Xt).all() and np.isfinite(back).all(), "non-finite output from finite input"


TEXT_ENCODER_ARGS = {"X", "max_len", "max_size", "min_freq", "truncate"}
# a document as a user may pass it: text in any script, empty, whitespace, markup, or not a text at all
DOCUMENTS = st.one_of(st.text(max_size=30), st.sampled_from(["", "  ", "<br /><br />", "don't 10/10", "ÉCOLE école"]),
                      st.lists(st.sampled_from(["a", "b", "ok"]), max_size=4),
                      st.sampled_from([None, 3, 2.5, b"bytes", ["a", 1], {"a": 1}]))


@fuzz_settings(150)
@given(st.data())
def test_text_encoder(data):
    docs = data.draw(st.lists(DOCUMENTS, max_size=6), "docs")
    container = data.draw(st.sampled_from(["list", "tuple", "series", "object array", "one str"]), "container")
    X = {"list": lambda d: d, "tuple": tuple, "series": lambda d: pd.Series(d, dtype=object),
         "object array": lambda d: np.array(d + [None], dtype=object)[:-1],
         "one str": lambda d: "one document"}[container](docs)
    params = data.draw(st.fixed_dictionaries({}, optional={
        "max_len": st.sampled_from([1, 3, 50, 0, -1, 2.5, "3", None]),
        "max_size": st.sampled_from([1, 2, 100, None, 0, 1.5]),
        "min_freq": st.sampled_from([1, 2, 0]),
        "truncate": st.sampled_from(["head", "tail", "middle", None])}), "params")
    before = snapshot(X)
    encoder = TextEncoder(**params)
    try:
        with documented_errors(TEXT_ENCODER_ARGS):
            ids = encoder.fit_transform(X)
    except Documented:
        assert_unchanged(before, X)
        return
    assert_unchanged(before, X)
    n_ids = len(encoder.vocabulary_)
    assert ids.dtype == np.int32 and ids.shape == (len(docs), encoder.max_len)
    assert ids.min(initial=0) >= 0 and ids.max(initial=0) < n_ids
    if encoder.max_size is not None:
        assert n_ids <= encoder.max_size + 2
    # padding only at the end of a row: the classifier reads trailing zeros as the row's length
    for row in ids:
        length = int(np.count_nonzero(row))
        assert (row[:length] != Vocabulary.PAD).all() and (row[length:] == Vocabulary.PAD).all()


# Bugs the fuzzer found, kept as plain regression tests.

def test_scaler_overflowing_statistics_raise():
    """Bug: a float64 spread beyond the float range gave scale_=inf and NaN from inverse_transform."""
    X = np.array([[1e300, -1e300, 0.0, 0.0]])
    try:
        SequenceScaler().fit(X)
    except ValueError as exc:
        assert str(exc).startswith("X: ") and "overflow" in str(exc)
    else:
        raise AssertionError("no error for a std beyond float64")


def test_scaler_float32_huge_values_scale_finitely():
    """Bug: float32 input of 1e30 squared in float32 (inf std), so transform gave zeros and inverse NaN."""
    X = np.array([[1e30, -1e30, 0.0, 0.0]], dtype=np.float32)
    scaler = SequenceScaler().fit(X)
    Xt = scaler.transform(X)
    assert Xt.dtype == np.float32 and np.isfinite(Xt).all()
    np.testing.assert_allclose(scaler.inverse_transform(Xt), X, rtol=1e-6)


def test_scaler_statistics_beyond_float32_refuse_float32_input():
    """Bug: stats fitted on float64 data (scale 1e300) were cast to float32 (inf): NaN out of zeros in."""
    scaler = SequenceScaler("minmax").fit(np.array([[1e300, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=object))
    zeros = np.zeros((2, 4), dtype=np.float32)
    try:
        scaler.inverse_transform(zeros)
    except ValueError as exc:
        assert str(exc).startswith("X: ") and "float32" in str(exc)
    else:
        raise AssertionError("no error for a float32 result beyond the float32 range")
    assert np.isfinite(scaler.inverse_transform(zeros.astype(np.float64))).all()  # float64 works


def test_make_windows_values_beyond_float32_are_gaps():
    """Bug: a float64 1e300 became inf in the float32 windows, and an inf became NaN with
    normalize="last" (inf - inf), in windows reported as valid."""
    data = np.arange(10.0)
    data[3] = 1e300
    assert np.isfinite(make_windows(data, 2, 1).X).all()
    data[3] = np.inf
    out = make_windows(data, 2, 1, normalize="last", nan_policy="mask")
    assert out.mask.tolist() == [True, False, False, False, True, True, True, True]
    assert np.isfinite(out.X[out.mask]).all() and np.isfinite(out.y[out.mask]).all()
    try:
        make_windows(data, 2, 1, nan_policy="raise")
    except ValueError as exc:
        assert str(exc).startswith("data: ") and "row 3" in str(exc)
    else:
        raise AssertionError("inf accepted with nan_policy='raise'")

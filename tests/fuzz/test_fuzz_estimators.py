"""Fuzzing QLLSTMClassifier and QLLSTMRegressor fit/predict with tiny networks (issue #9)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from qlts import QLLSTMClassifier, QLLSTMRegressor
from qlts.estimators._base import QLLSTMEstimatorBase

from ._fuzz import (Documented, all_finite, arrays, assert_unchanged, documented_errors, fuzz_settings, snapshot,
                    to_float)

# a failure must name X, y or the hyper-parameter at fault
ESTIMATOR_ARGS = {"X", "y", "X, y", "y.shape[1]", *QLLSTMEstimatorBase._top_level_params()}

TINY = dict(hidden_size=4, max_epochs=1, random_state=0)
BAD_PARAMS = [("hidden_size", 0), ("max_epochs", -1), ("cell", "rnn"), ("alpha", 1.5), ("skip", 0), ("lr", 0.0),
              ("batch_size", 0), ("pooling", "sum"), ("num_layers", 0), ("hidden_size", 2.5)]


@st.composite
def sequence_batches(draw, n, n_features):
    """X as users pass it: (n, T, F), (n, T), a DataFrame, or a list of variable-length sequences."""
    kind = draw(st.sampled_from(["3d", "2d", "list", "frame"]))
    T = draw(st.integers(0, 5))
    odd = dict(max_specials=draw(st.sampled_from([0, 0, 1, 3])))  # most batches are clean: fits must run
    if kind == "3d":
        return draw(arrays((n, T, n_features), **odd))
    if kind == "2d":
        return draw(arrays((n, T), **odd))
    if kind == "frame":
        return pd.DataFrame(draw(arrays((n, T), **odd)))
    lengths = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    one_d = n_features == 1 and draw(st.booleans())
    return [draw(arrays((L,) if one_d else (L, n_features), **odd)) for L in lengths]


def batch_finite(X):
    """Whether every value of a batch (array, frame or list of sequences) is a finite float32."""
    if isinstance(X, list):
        return all(all_finite(x, float32=True) for x in X)
    return all_finite(X, float32=True)


def n_rows(X):
    return len(X)


@st.composite
def estimator_params(draw):
    params = dict(TINY, cell=draw(st.sampled_from(["qllstm", "lstm", "gru", "bilstm"])),
                  pooling=draw(st.sampled_from(["last", "mean", "max"])),
                  batch_size=draw(st.sampled_from([2, 64])), skip=draw(st.sampled_from([1, 2])),
                  bucket_by_length=draw(st.booleans()))
    if draw(st.integers(0, 5)) == 0:
        name, value = draw(st.sampled_from(BAD_PARAMS))
        params[name] = value
    return params


def draw_predict_input(data, X, F):
    """The X to predict on: the fit's own X, or a new small batch (sometimes with one feature too many)."""
    if data.draw(st.booleans(), "predict on fit X"):
        return X
    return data.draw(sequence_batches(data.draw(st.integers(1, 3)), data.draw(st.sampled_from([F, F, F + 1]))),
                     "X_new")


def fit_predict(est, X, y, X_new, *, divergence=True):
    before = [snapshot(v) for v in (X, y, X_new)]
    try:
        with documented_errors(ESTIMATOR_ARGS, divergence=divergence):
            est.fit(X, y)
            return est.predict(X_new), (est.predict_proba(X_new) if hasattr(est, "classes_") else None)
    except Documented:
        return None
    finally:
        for b, v in zip(before, (X, y, X_new)):
            assert_unchanged(b, v)


@fuzz_settings(40)
@given(st.data())
def test_classifier(data):
    n, F = data.draw(st.integers(0, 6), "n"), data.draw(st.integers(1, 3), "F")
    X = data.draw(sequence_batches(n, F), "X")
    kind = data.draw(st.sampled_from(["int", "str", "float", "bool", "mixed"]), "label kind")
    codes = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n), "codes")
    y = {"int": np.array(codes, dtype=np.int64), "str": np.array(["a", "b", "c"])[codes].astype(object),
         "float": np.array(codes, dtype=np.float64), "bool": np.array(codes) > 0,
         "mixed": np.array([[0, "b", 2.5][c] for c in codes], dtype=object)}[kind]
    if kind == "float" and n and data.draw(st.booleans(), "nan label"):
        y[data.draw(st.integers(0, n - 1))] = data.draw(st.sampled_from([np.nan, np.inf]))
    if data.draw(st.integers(0, 9), "wrong length") == 0:
        y = np.append(y, y[:1])
    X_new = draw_predict_input(data, X, F)
    est = QLLSTMClassifier(**data.draw(estimator_params(), "params"))
    out = fit_predict(est, X, y, X_new)
    if out is None:
        return
    pred, proba = out
    m = n_rows(X_new)
    assert pred.shape == (m,) and set(pred.tolist()) <= set(est.classes_.tolist())
    assert proba.shape == (m, len(est.classes_)) and proba.dtype == np.float64
    if batch_finite(X) and batch_finite(X_new):
        assert np.isfinite(proba).all(), "non-finite probabilities from finite input"
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@fuzz_settings(40)
@given(st.data())
def test_regressor(data):
    n, F = data.draw(st.integers(0, 6), "n"), data.draw(st.integers(1, 3), "F")
    X = data.draw(sequence_batches(n, F), "X")
    k = data.draw(st.sampled_from([None, 1, 2]), "targets")
    y = data.draw(arrays((n,) if k is None else (n, k), max_specials=data.draw(st.sampled_from([0, 1, 3]))), "y")
    if data.draw(st.integers(0, 9), "wrong length") == 0:
        y = y[1:]
    X_new = draw_predict_input(data, X, F)
    est = QLLSTMRegressor(**data.draw(estimator_params(), "params"))
    out = fit_predict(est, X, y, X_new)
    if out is None:
        return
    pred, _ = out
    m = n_rows(X_new)
    assert pred.shape == ((m,) if k is None else (m, k)) and pred.dtype == np.float64
    if batch_finite(X) and batch_finite(X_new) and all_finite(to_float(y), float32=True):
        assert np.isfinite(pred).all(), "non-finite predictions from finite input"


def test_classifier_mixed_label_types_name_y():
    """Bug: labels mixing ints and strings leaked numpy's TypeError ("'<' not supported ...")
    from np.unique instead of an error naming y."""
    X = np.zeros((3, 3, 2))
    try:
        QLLSTMClassifier(**TINY).fit(X, np.array(["b", 0, 0], dtype=object))
    except TypeError as exc:
        assert str(exc).startswith("y: ")
    else:
        raise AssertionError("mixed label types were accepted")

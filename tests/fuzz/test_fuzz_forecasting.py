"""Fuzzing QLLSTMForecaster fit/predict and qlts.model_selection.backtest with tiny networks (issue #9)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from qlts import QLLSTMForecaster
from qlts.model_selection import backtest

from ._fuzz import (Documented, arrays, assert_unchanged, documented_errors, fuzz_settings, series_inputs, snapshot,
                    to_float)

FORECASTER_ARGS = {"y", "X", "horizon", "lookback", "segment_length", "hidden_size", "cell", "norm", "loss",
                   "dropout", "lr", "lr_decay", "weight_decay", "max_epochs", "batch_size", "patience",
                   "validation_fraction", "nan_policy", "quantiles", "on_nan", "checkpoint_dir"}
BACKTEST_ARGS = FORECASTER_ARGS | {"initial", "step", "window", "refit", "metrics", "cv", "initial/horizon"}
BAD_PARAMS = [("lookback", 0), ("horizon", 0), ("segment_length", 0), ("hidden_size", 1), ("cell", "rnn"),
              ("norm", "zscore"), ("lr", -1.0), ("max_epochs", 0), ("nan_policy", "ffill"), ("quantiles", [1.5]),
              ("validation_fraction", 1.0), ("horizon", 2.5)]


@st.composite
def forecaster_params(draw):
    params = dict(hidden_size=4, max_epochs=1, verbose=0, random_state=0,
                  lookback=draw(st.integers(1, 6)), horizon=draw(st.integers(1, 3)),
                  segment_length=draw(st.integers(1, 3)), cell=draw(st.sampled_from(["qllstm", "lstm", "gru"])),
                  norm=draw(st.sampled_from(["last", "revin", None])),
                  validation_fraction=draw(st.sampled_from([0.0, 0.2])),
                  nan_policy=draw(st.sampled_from(["interpolate", "drop", "raise"])),
                  quantiles=draw(st.sampled_from([None, None, (0.1, 0.9)])),
                  channel_independent=draw(st.booleans()))
    if draw(st.integers(0, 5)) == 0:
        name, value = draw(st.sampled_from(BAD_PARAMS))
        params[name] = value
    return params


def finite_or_nan(data):
    """Numbers that are finite where they are not NaN (a NaN gap is interpolated or refused)."""
    values = to_float(data)
    if values is None:
        return False
    return bool(np.isfinite(values[~np.isnan(values)]).all())


@fuzz_settings(40)
@given(st.data())
def test_forecaster(data):
    n, k = data.draw(st.integers(0, 30), "T"), data.draw(st.integers(1, 2), "targets")
    y = data.draw(series_inputs(n, k), "y")
    X = None
    if data.draw(st.integers(0, 3), "covariates") == 0:
        X = data.draw(arrays((data.draw(st.sampled_from([n, n, n + 1])), 1), max_specials=1), "X")
    params = data.draw(forecaster_params(), "params")
    h = data.draw(st.integers(1, 6), "predict horizon")
    before_y, before_X = snapshot(y), snapshot(X)
    fc = QLLSTMForecaster(**params)
    try:
        with documented_errors(FORECASTER_ARGS, divergence=True):
            pred = fc.fit(y, X).predict(h, X=X)
    except Documented:
        return
    finally:
        assert_unchanged(before_y, y)
        assert_unchanged(before_X, X)
    assert isinstance(pred, pd.DataFrame) and pred.shape == (h, k)
    assert len(pred.index) == h and pred.index.is_monotonic_increasing and pred.index.is_unique
    if finite_or_nan(y) and (X is None or finite_or_nan(X)):
        assert np.isfinite(pred.to_numpy()).all(), "non-finite forecast from finite input"


@fuzz_settings(30)
@given(st.data())
def test_backtest(data):
    n = data.draw(st.integers(0, 40), "T")
    y = data.draw(series_inputs(n, 1, max_specials=data.draw(st.sampled_from([0, 0, 1]))), "y")
    params = dict(hidden_size=4, max_epochs=1, verbose=0, random_state=0, validation_fraction=0.0,
                  lookback=data.draw(st.integers(1, 4)), horizon=data.draw(st.integers(1, 3)), segment_length=2)
    kwargs = dict(initial=data.draw(st.integers(1, max(1, n - 1)), "initial"),
                  horizon=data.draw(st.integers(1, 4), "horizon"),
                  step=data.draw(st.sampled_from([None, 1, 5]), "step"),
                  window=data.draw(st.sampled_from(["expanding", "sliding"]), "window"),
                  refit=data.draw(st.sampled_from([True, False, 2]), "refit"),
                  metrics=data.draw(st.sampled_from([("mse", "mae"), ("mase",)]), "metrics"))
    if data.draw(st.integers(0, 4), "break an argument") == 0:
        name, value = data.draw(st.sampled_from([("initial", 0), ("initial", n + 5), ("horizon", 0), ("step", 0),
                                                 ("window", "rolling"), ("refit", 0), ("refit", 1.5),
                                                 ("metrics", ("rmse",)), ("initial", 2.5)]), "bad argument")
        kwargs[name] = value
    before = snapshot(y)
    try:
        with documented_errors(BACKTEST_ARGS, divergence=True):
            scores, forecasts = backtest(QLLSTMForecaster(**params), y, **kwargs)
    except Documented:
        return
    finally:
        assert_unchanged(before, y)
    step = kwargs["step"] or kwargs["horizon"]
    n_folds = len(range(kwargs["initial"], n - kwargs["horizon"] + 1, step))
    assert len(scores) == n_folds and len(forecasts) == n_folds * kwargs["horizon"]
    metric_cols = [c for c in scores.columns if c not in ("fold", "cutoff", "n_train", "fit_time")]
    assert len(metric_cols) == len(kwargs["metrics"])
    values = to_float(y)
    # (an MSE of values beyond 1e154 overflows float64 honestly: inf, never NaN)
    if finite_or_nan(y) and not np.isnan(values).any() and np.abs(values).max(initial=0) < 1e150:
        assert np.isfinite(scores[metric_cols].to_numpy(dtype=np.float64)).all(), \
            f"non-finite scores from finite input:\n{scores}"


def test_backtest_mase_on_constant_history_names_metrics():
    """Bug: MASE on a fold with a constant (or one-row) training part raised the metric's internal
    "y_train: ..." error, an argument the backtest's caller never passed."""
    y = np.r_[np.ones(8), np.arange(6.0)]
    try:
        backtest(QLLSTMForecaster(lookback=2, horizon=1, segment_length=1, hidden_size=4, max_epochs=1, verbose=0,
                                  validation_fraction=0.0), y, initial=6, horizon=2, metrics=("mase",))
    except ValueError as exc:
        assert str(exc).startswith("metrics: 'mase'")
    else:
        raise AssertionError("MASE on a constant history was accepted")


def test_forecaster_overflowing_scale_names_y_or_X():
    """Bug: y holding 1e300 (or inf) gave an infinite standard deviation, NaN z-scores and inf/NaN
    forecasts (or a divergence error mid-training) instead of an error naming y (or X)."""
    base = np.sin(np.arange(30.0))
    huge = base.copy()
    huge[5] = 1e300
    tiny = dict(lookback=4, horizon=2, segment_length=2, hidden_size=4, max_epochs=1, verbose=0, random_state=0)
    for y, X, name in ((huge, None, "y"), (base, huge[:, None], "X"), (np.where(base > 0.9, np.inf, base), None, "y")):
        try:
            QLLSTMForecaster(**tiny).fit(y, X)
        except ValueError as exc:
            assert str(exc).startswith(f"{name}: ") and "too large" in str(exc)
        else:
            raise AssertionError(f"{name} with 1e300/inf was accepted")
    pred = QLLSTMForecaster(**tiny).fit(base * 1e30).predict(3)  # huge but representable: fine
    assert np.isfinite(pred.to_numpy()).all()


def test_backtest_gap_in_a_scored_fold_names_y():
    """Bug: a NaN in y where a fold is scored leaked the metric's "y_true: expected finite values"
    (an argument the caller never passed); with "mase", a NaN in the training rows its "y_train: ..."."""
    tiny = QLLSTMForecaster(lookback=2, horizon=1, segment_length=1, hidden_size=4, max_epochs=1, verbose=0,
                            validation_fraction=0.0)
    cases = ((np.r_[np.arange(8.0), np.nan, 1.0], ("mse",)), (np.r_[1.0, np.nan, np.arange(8.0)], ("mase",)))
    for y, metrics in cases:
        try:
            backtest(tiny, y, initial=6, horizon=2, metrics=metrics)
        except ValueError as exc:
            assert str(exc).startswith("y: "), str(exc)
        else:
            raise AssertionError("a NaN in a scored fold was accepted")


def test_forecaster_context_beyond_the_fitted_scale_names_y():
    """Bug: predicting from a context y holding 1e300 (or inf) after fitting on small values gave
    float32 z-scores of inf and an inf/NaN forecast (backtest with refit=False hit it)."""
    fc = QLLSTMForecaster(lookback=4, horizon=2, segment_length=2, hidden_size=4, max_epochs=1, verbose=0,
                          random_state=0).fit(np.sin(np.arange(30.0)))
    for bad in (1e300, np.inf):
        context = np.sin(np.arange(10.0))
        context[-2] = bad
        try:
            fc.predict(2, y=context)
        except ValueError as exc:
            assert str(exc).startswith("y: "), str(exc)
        else:
            raise AssertionError(f"a context holding {bad} was accepted")
        try:
            fc.predict_windows(context[-4:].reshape(1, 4, 1))
        except ValueError as exc:
            assert str(exc).startswith("windows: "), str(exc)
        else:
            raise AssertionError(f"a window holding {bad} was accepted")

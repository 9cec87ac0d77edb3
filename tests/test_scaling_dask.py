"""Dask: grid searches and backtests run on a 2-process LocalCluster through joblib's Dask backend,
with no change to user code, and give exactly the serial results; torch threads are capped in workers."""
from __future__ import annotations

import contextlib

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from qlts import QLLSTMClassifier, QLLSTMForecaster, QLLSTMRegressor
from qlts.model_selection import BacktestFolds, ForecasterGridSearch, backtest
from qlts.parallel import limit_threads_in_worker

distributed = pytest.importorskip("distributed", reason="dask[distributed] is the optional 'dask' extra")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@contextlib.contextmanager
def torch_threads(n):
    """Run the serial reference with the workers' thread count (results then agree bit for bit)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _search_both_ways(search, *fit_args):
    with torch_threads(1):
        serial = search.fit(*fit_args)
        serial_results, serial_best = serial.cv_results_, serial.best_params_
    with joblib.parallel_backend("dask"):
        search.fit(*fit_args)
    return serial_results, serial_best, search


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_grid_search_on_dask_equals_serial(client, estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 10, 2)).astype(np.float32)
    if estimator == "classifier":
        est, y = QLLSTMClassifier(hidden_size=4, max_epochs=3, random_state=0), (X[:, :, 0].sum(1) > 0).astype(int)
    else:
        est, y = QLLSTMRegressor(hidden_size=4, max_epochs=3, random_state=0), X[:, -3:, 0].sum(1)
    search = GridSearchCV(est, {"alpha": [0.0, 0.3], "hidden_size": [4, 6]}, cv=2)
    serial_results, serial_best, search = _search_both_ways(search, X, y)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score", "rank_test_score"):
        np.testing.assert_array_equal(search.cv_results_[key], serial_results[key])
    assert search.best_params_ == serial_best
    assert np.ptp(serial_results["mean_test_score"]) > 0  # the candidates really differ


def _series():
    t = np.arange(160)
    values = np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(1).normal(size=len(t))
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=len(t), freq="h"), name="load")


def _forecaster():
    return QLLSTMForecaster(lookback=24, horizon=6, segment_length=6, hidden_size=8, max_epochs=2,
                            validation_fraction=0.0, lr=1e-2, verbose=0, random_state=0)


def test_forecaster_grid_search_and_backtest_on_dask_equal_serial(client):
    y = _series()
    cv = BacktestFolds(initial=120, step=12, horizon=6)
    search = ForecasterGridSearch(_forecaster(), {"alpha": [0.0, 0.3]}, cv=cv, refit=False)
    serial_results, serial_best, search = _search_both_ways(search, y)
    for key in ("split0_test_score", "split2_test_score", "mean_test_score", "rank_test_score"):
        np.testing.assert_array_equal(search.cv_results_[key], serial_results[key])
    assert search.best_params_ == serial_best

    with torch_threads(1):
        serial_scores, serial_forecasts = backtest(_forecaster(), y, cv=cv)
    with joblib.parallel_backend("dask"):
        scores, forecasts = backtest(_forecaster(), y, cv=cv)
    pd.testing.assert_frame_equal(scores.drop(columns="fit_time"), serial_scores.drop(columns="fit_time"))
    pd.testing.assert_frame_equal(forecasts, serial_forecasts)
    assert len(scores) == 3 and (scores["fit_time"] > 0).all()  # every fold fit its own model


def test_backtest_refit_blocks_on_dask_equal_serial(client):
    """With refit=n one model forecasts n folds; the blocks run on the workers give the same folds."""
    y = _series()
    with torch_threads(1):
        serial, _ = backtest(_forecaster(), y, initial=120, step=6, horizon=6, refit=2)
    with joblib.parallel_backend("dask"):
        scores, _ = backtest(_forecaster(), y, initial=120, step=6, horizon=6, refit=2)
    assert list(serial["fit_time"] > 0) == list(scores["fit_time"] > 0) == [True, False] * 3
    pd.testing.assert_frame_equal(scores.drop(columns="fit_time"), serial.drop(columns="fit_time"))


def test_worker_threads_are_capped(client):
    def fit_in_worker():
        torch.set_num_threads(2)  # as in a worker started without Dask's nanny (no OMP_NUM_THREADS=1)
        X = np.random.default_rng(0).normal(size=(16, 5, 2)).astype(np.float32)
        QLLSTMRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, X[:, -1, 0])
        return torch.get_num_threads()

    assert client.submit(fit_in_worker, pure=False).result() == 1

    def forecast_in_worker():
        torch.set_num_threads(2)
        _forecaster().fit(_series())
        return torch.get_num_threads()

    assert client.submit(forecast_in_worker, pure=False).result() == 1


def test_threads_untouched_outside_a_worker():
    before = torch.get_num_threads()
    assert limit_threads_in_worker() is None
    assert torch.get_num_threads() == before

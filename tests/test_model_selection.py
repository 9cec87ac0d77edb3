"""backtest, ForecasterGridSearch and NaiveForecaster."""
import numpy as np
import pandas as pd
import pytest
from joblib import parallel_backend
from sklearn.base import BaseEstimator

from qlts.forecasting import QLLSTMForecaster
from qlts.model_selection import BacktestFolds, ForecasterGridSearch, NaiveForecaster, backtest


def daily(values, start="2024-01-01"):
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range(start, periods=len(values), freq="D"),
                     name="v")


def test_naive_forecaster_equals_hand_computation():
    y = daily([3, 1, 4, 1, 5, 9, 2, 6])
    last = NaiveForecaster(horizon=3).fit(y).predict()
    assert last["v"].tolist() == [6, 6, 6]
    pd.testing.assert_index_equal(last.index, pd.date_range("2024-01-09", periods=3, freq="D"))
    # season 3: the last season is (9, 2, 6); h = 1..5 -> 9, 2, 6, 9, 2
    seasonal = NaiveForecaster("seasonal", season_length=3).fit(y).predict(5)
    assert seasonal["v"].tolist() == [9, 2, 6, 9, 2]
    ctx = NaiveForecaster().fit(y).predict(2, y=y.iloc[:4])  # from a given context
    assert ctx["v"].tolist() == [1, 1] and ctx.index[0] == pd.Timestamp("2024-01-05")
    two = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": [4.0, 5.0, 6.0]})  # NaN at the end: nearest value
    assert NaiveForecaster().fit(two).predict(1).to_numpy().tolist() == [[2.0, 6.0]]


class Memorizer(BaseEstimator):
    """Remembers every (time, value) it was fit on or given as context, and 'forecasts' by looking the
    future up in that memory (0 when unknown). It scores perfectly only if the future leaked."""

    seen_max = []

    def __init__(self, horizon=1):
        self.horizon = horizon

    def fit(self, y, X=None):
        self.memory_ = y.copy()
        Memorizer.seen_max.append(y.index.max())
        return self

    def predict(self, horizon=None, X=None, y=None):
        memory = self.memory_ if y is None else pd.concat([self.memory_, y[~y.index.isin(self.memory_.index)]])
        Memorizer.seen_max.append(memory.index.max())
        future = pd.date_range(memory.index.max(), periods=horizon + 1, freq="D")[1:]
        return pd.DataFrame({"v": memory.reindex(future).fillna(0.0).to_numpy()}, index=future)


@pytest.mark.parametrize("window,refit", [("expanding", True), ("sliding", True), ("expanding", False)])
def test_backtest_never_trains_on_data_after_the_cutoff(window, refit):
    y = daily(np.random.default_rng(0).standard_normal(100) + 10)
    Memorizer.seen_max = []
    scores, forecasts = backtest(Memorizer(), y, initial=60, step=10, horizon=7, window=window, refit=refit)
    cutoffs = [60, 70, 80, 90]  # 90 + 7 <= 100; 100 + 7 is not
    assert scores["cutoff"].tolist() == [y.index[c] for c in cutoffs]
    assert scores["n_train"].tolist() == ([60, 70, 80, 90] if window == "expanding" else [60] * 4)
    # a leak would let the memorizer look the answers up: its MSE would be 0, not ~ 10^2
    assert (scores["mse"] > 50).all()
    # every fit / context ended strictly before its fold's cutoff
    fold_cutoffs = iter([y.index[c] for c in cutoffs])
    calls = Memorizer.seen_max
    assert len(calls) == (8 if refit else 5)
    for i, cutoff in enumerate(fold_cutoffs):
        assert calls[(2 * i + 1) if refit else (i + 1)] < cutoff
    assert (forecasts.groupby("fold")["time"].min() == scores["cutoff"]).all()
    truth = forecasts["v_actual"].to_numpy()
    np.testing.assert_array_equal(truth, y.loc[forecasts["time"]].to_numpy())


def test_backtest_metrics_match_a_hand_computation():
    y = daily(np.arange(30.0) ** 1.5)
    scores, forecasts = backtest(NaiveForecaster(), y, initial=20, step=5, horizon=4, metrics=("mse", "mae", "mase"))
    for fold, cutoff in enumerate([20, 25]):
        truth, last = y.iloc[cutoff:cutoff + 4].to_numpy(), y.iloc[cutoff - 1]
        assert scores.loc[fold, "mse"] == pytest.approx(np.mean((truth - last) ** 2))
        assert scores.loc[fold, "mae"] == pytest.approx(np.mean(np.abs(truth - last)))
        naive_in_sample = np.mean(np.abs(np.diff(y.iloc[:cutoff].to_numpy())))
        assert scores.loc[fold, "mase"] == pytest.approx(np.mean(np.abs(truth - last)) / naive_in_sample)


class Scaled(BaseEstimator):
    """Forecasts alpha * last value: on a series far from 0, alpha=1 clearly wins."""

    def __init__(self, alpha=0.5, horizon=1):
        self.alpha, self.horizon = alpha, horizon

    def fit(self, y, X=None):
        self.naive_ = NaiveForecaster().fit(y)
        return self

    def predict(self, horizon=None, X=None, y=None):
        return self.alpha * self.naive_.predict(horizon, y=y)


class NaiveBand(BaseEstimator):
    """The last value, with the quantiles last -/+ width (a band of fixed width)."""

    def __init__(self, width=1.0, quantiles=(0.1, 0.9), horizon=1):
        self.width, self.quantiles, self.horizon = width, quantiles, horizon

    def fit(self, y, X=None):
        self.naive_ = NaiveForecaster().fit(y)
        return self

    def predict(self, horizon=None, X=None, y=None):
        return self.naive_.predict(horizon, y=y)

    def predict_quantiles(self, horizon=None, X=None, y=None):
        point = self.predict(horizon, y=y)
        columns = pd.MultiIndex.from_product([point.columns, [0.1, 0.9]], names=["column", "quantile"])
        return pd.DataFrame(np.hstack([point - self.width, point + self.width]), index=point.index, columns=columns)


def test_backtest_scores_quantile_forecasts_by_hand():
    y = daily(np.arange(30.0) ** 1.5)
    scores, forecasts = backtest(NaiveBand(width=10.0), y, initial=20, step=5, horizon=4,
                                 metrics=("mae", "pinball", "coverage"))
    for fold, cutoff in enumerate([20, 25]):
        truth, last = y.iloc[cutoff:cutoff + 4].to_numpy(), y.iloc[cutoff - 1]
        lo, hi = last - 10.0, last + 10.0
        pinball = (np.mean(np.maximum(0.1 * (truth - lo), -0.9 * (truth - lo)))
                   + np.mean(np.maximum(0.9 * (truth - hi), -0.1 * (truth - hi)))) / 2
        assert scores.loc[fold, "pinball"] == pytest.approx(pinball)
        assert scores.loc[fold, "coverage"] == pytest.approx(np.mean((lo <= truth) & (truth <= hi)))
        rows = forecasts[forecasts["fold"] == fold]
        np.testing.assert_allclose(rows[["v_q0.1", "v_q0.9"]].to_numpy(), np.c_[[lo] * 4, [hi] * 4])
    assert 0 < scores["coverage"].min() < 1  # the series outgrows the band within some folds
    search = ForecasterGridSearch(NaiveBand(), {"width": [0.1, 10.0, 500.0]}, cv=BacktestFolds(20, 5, 4),
                                  scoring="pinball").fit(y)
    assert search.best_params_ == {"width": 10.0}  # too narrow and too wide both cost pinball loss
    with pytest.raises(ValueError, match=r"scoring: expected a loss to minimise, got 'coverage'"):
        ForecasterGridSearch(NaiveBand(), {"width": [1.0]}, cv=BacktestFolds(20, 5, 4), scoring="coverage").fit(y)
    with pytest.raises(ValueError, match=r"metrics: 'pinball' scores quantile forecasts, so it expects a forecaster "
                                         r"with quantiles \(such as QLLSTMForecaster\(quantiles=\[0.1, 0.9\]\)\), got "
                                         r"NaiveForecaster\(\)"):
        backtest(NaiveForecaster(), y, initial=20, horizon=4, metrics=("mse", "pinball"))


def test_backtest_quantile_columns_follow_the_forecasters_columns():
    from qlts.metrics import mean_pinball_loss

    t = np.arange(160)
    y = pd.DataFrame({"a": np.sin(t / 4), "b": 10 + np.cos(t / 3)}, index=pd.date_range("2024", periods=160, freq="h"))
    model = QLLSTMForecaster(24, 6, segment_length=6, hidden_size=8, max_epochs=2, quantiles=[0.2, 0.8], verbose=0,
                             random_state=0, backend="torch")
    scores, forecasts = backtest(model, y, initial=140, horizon=6, metrics=("pinball",))
    fitted = QLLSTMForecaster(**model.get_params()).fit(y.iloc[:140])
    bands = fitted.predict_quantiles(6)
    for col in ("a", "b"):
        first = forecasts[forecasts["fold"] == 0]
        np.testing.assert_allclose(first[[f"{col}_q0.2", f"{col}_q0.8"]].to_numpy(), bands[col].to_numpy(), rtol=1e-6)
    truth = y.iloc[140:146].to_numpy()
    by_hand = mean_pinball_loss(truth, np.stack([bands["a"].to_numpy(), bands["b"].to_numpy()], axis=1), [0.2, 0.8])
    assert scores.loc[0, "pinball"] == pytest.approx(by_hand)


def test_grid_search_mechanics():
    y = daily(50 + np.random.default_rng(1).standard_normal(80))
    with parallel_backend("threading"):  # n_jobs goes through joblib (threads: no process start-up in a test)
        search = ForecasterGridSearch(Scaled(), {"alpha": [0.5, 1.0, 0.9]}, cv=BacktestFolds(40, 10, 5),
                                      n_jobs=2).fit(y)
    assert search.best_params_ == {"alpha": 1.0}
    assert search.cv_results_["rank_test_score"].tolist() == [3, 1, 2]
    assert len([k for k in search.cv_results_ if k.startswith("split")]) == 4
    assert search.best_score_ == pytest.approx(backtest(Scaled(1.0), y, cv=BacktestFolds(40, 10, 5))[0]["mse"].mean())
    assert search.predict(3).shape == (3, 1)


def test_grid_search_takes_a_list_of_grids():
    # as in scikit-learn: one grid per kind of candidate, so parameters that do not apply are not crossed
    y = daily(np.tile([0.0, 5, 1, 4, 2, 8, 3], 12) + 0.1 * np.random.default_rng(2).standard_normal(84))
    grids = [{"strategy": ["last"]}, {"strategy": ["seasonal"], "season_length": [7, 3]}]
    search = ForecasterGridSearch(NaiveForecaster(), grids, cv=BacktestFolds(56, 7, 7), refit=False).fit(y)
    assert search.cv_results_["params"] == [{"strategy": "last"}, {"strategy": "seasonal", "season_length": 7},
                                            {"strategy": "seasonal", "season_length": 3}]
    assert search.cv_results_["param_season_length"].tolist() == [None, 7, 3]
    assert search.best_params_ == {"strategy": "seasonal", "season_length": 7}


def test_grid_search_picks_the_better_alpha_for_qllstm():
    # on a clean seasonal series, alpha=0 learns it within the budget; alpha=0.95 keeps 95% of the old state
    # at every step, so the same budget leaves it far behind (MSE ~0.55 vs ~0.25 in a 2-seed probe)
    t = np.arange(800)
    rng = np.random.default_rng(0)
    y = pd.Series(np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(800),
                  index=pd.date_range("2024-01-01", periods=800, freq="h"), name="load")
    base = QLLSTMForecaster(48, 24, segment_length=12, hidden_size=32, max_epochs=20, lr=3e-3, batch_size=256,
                            loss="mse", random_state=0, verbose=0, backend="torch")
    search = ForecasterGridSearch(base, {"alpha": [0.95, 0.0]}, cv=BacktestFolds(752, 24, 24), refit_folds=False,
                                  refit=False).fit(y)
    assert search.best_params_ == {"alpha": 0.0}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] < 0.7 * scores[0], scores


def test_bad_input():
    y = daily(np.arange(20.0))
    with pytest.raises(ValueError, match=r"initial: expected <= len\(y\) - horizon = 20 - 5 = 15"):
        backtest(NaiveForecaster(), y, initial=18, horizon=5)
    with pytest.raises(ValueError, match=r"window: expected one of \['expanding', 'sliding'\], got 'rolling'"):
        BacktestFolds(5, 1, 1, "rolling")
    with pytest.raises(ValueError, match="horizon: expected an int >= 1, got 0"):
        BacktestFolds(5, 1, 0)
    with pytest.raises(TypeError, match="cv: expected a BacktestFolds, got dict"):
        ForecasterGridSearch(NaiveForecaster(), {"strategy": ["last"]}, cv={"initial": 5}).fit(y)
    with pytest.raises(ValueError, match=r"strategy: expected one of \['last', 'seasonal'\], got 'mean'"):
        NaiveForecaster("mean").fit(y)
    with pytest.raises(ValueError, match="y: expected at least season_length=30 rows, got 20"):
        NaiveForecaster("seasonal", 30).fit(y)


def test_bad_metrics_cv_and_forecaster_arguments():
    """Bug: metrics="mse" was read letter by letter ("got 'm'"), metrics=None raised "'NoneType'
    object is not iterable", cv given with initial/horizon silently ignored them, and a forecaster
    that is a class or None leaked sklearn's "Cannot clone object ..."."""
    y = daily(np.arange(30.0))
    with pytest.raises(TypeError, match=r"metrics: expected a list or tuple .*got str 'mse'; use metrics=\('mse',\)"):
        backtest(NaiveForecaster(), y, initial=20, horizon=2, metrics="mse")
    with pytest.raises(TypeError, match=r"metrics: expected a list or tuple .*got NoneType None"):
        backtest(NaiveForecaster(), y, initial=20, horizon=2, metrics=None)
    with pytest.raises(ValueError, match=r"cv: expected either cv or initial/step/horizon, got both"):
        backtest(NaiveForecaster(), y, initial=20, horizon=2, cv=BacktestFolds(10, 2, 2))
    with pytest.raises(TypeError, match=r"forecaster: expected a forecaster instance .*got the class NaiveForecaster"):
        backtest(NaiveForecaster, y, initial=20, horizon=2)
    with pytest.raises(TypeError, match=r"forecaster: expected a forecaster instance .*got NoneType"):
        ForecasterGridSearch(None, {"strategy": ["last"]}, cv=BacktestFolds(20, 2, 2)).fit(y)
    with pytest.raises(ValueError, match=r"metrics: expected a callable or one of .*got \['mse'\]"):
        ForecasterGridSearch(NaiveForecaster(), {"strategy": ["last"]}, cv=BacktestFolds(20, 2, 2),
                             scoring=["mse"]).fit(y)

"""Backtest QL-LSTM against the naive forecasters, then grid-search alpha and the cell on backtest folds.

    python examples/backtest_grid_search.py        # a few minutes on 2 CPU cores

Every fold trains only on the rows before its cutoff. `n_jobs` runs candidates through joblib, so
`with joblib.parallel_backend("dask"): search.fit(y)` spreads them over a cluster unchanged.
"""
from qlts.datasets import make_sensor_stream
from qlts.forecasting import NaiveForecaster, QLLSTMForecaster
from qlts.model_selection import BacktestFolds, ForecasterGridSearch, backtest

TRAIN_WEEKS, TEST_WEEKS, MAX_EPOCHS, N_JOBS = 8, 2, 10, 2


def main():
    week = 24 * 7
    y = make_sensor_stream(n_steps=week * (TRAIN_WEEKS + TEST_WEEKS), n_channels=2, seed=3)  # hourly, with gaps
    y = y.interpolate(limit_direction="both")  # score against complete values
    folds = BacktestFolds(initial=week * TRAIN_WEEKS, step=24, horizon=24)  # a cutoff every day of the test weeks

    model = QLLSTMForecaster(lookback=96, horizon=24, segment_length=24, hidden_size=64, max_epochs=MAX_EPOCHS,
                             random_state=0, verbose=0)
    for name, forecaster in (("QL-LSTM", model), ("naive (last)", NaiveForecaster()),
                             ("naive (daily season)", NaiveForecaster("seasonal", season_length=24))):
        scores, _ = backtest(forecaster, y, cv=folds, refit=False, metrics=("mse", "mae", "mase"))
        print(f"{name:<22} " + "  ".join(f"{m.upper()} {scores[m].mean():.3f}" for m in ("mse", "mae", "mase")))

    grid = [{"cell": ["qllstm"], "alpha": [0.0, 0.1, 0.3]}, {"cell": ["gru"]}]  # a GRU has no alpha
    search = ForecasterGridSearch(model, grid, cv=folds, refit_folds=False, n_jobs=N_JOBS)
    search.fit(y)
    for params, score, rank in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                                   search.cv_results_["rank_test_score"]):
        print(f"rank {rank}  MSE {score:.3f}  {params}")
    print("best:", search.best_params_)
    print(search.predict().head())


if __name__ == "__main__":
    main()

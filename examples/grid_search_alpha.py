"""Grid-search the QL-LSTM skip weight alpha on ETTh1 with scikit-learn's tools.

Task: from the last 48 hours of the seven ETTh1 channels, forecast the oil temperature (OT)
for the next 12 hours. Windows come from ``qlts.preprocessing.make_windows`` with
``normalize="last"`` (each window's last value is subtracted, so the model forecasts the
change from now); a ``SequenceScaler`` scales the inputs inside the pipeline, and
``GridSearchCV`` with ``TimeSeriesSplit`` picks alpha, always validating on data after the
training folds. The last 20% of the windows are a test set the search never sees.

Run:  python examples/grid_search_alpha.py     (about a minute on 2 CPU cores)
Data: $QLTS_DATA/ett/ETTh1.csv.gz, or ../shared/data beside the repository.
"""
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.pipeline import make_pipeline

from qlts import QLLSTMRegressor
from qlts.datasets import load_ett
from qlts.preprocessing import SequenceScaler, make_windows

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "QLTS_DATA" not in os.environ and SHARED.is_dir():
    os.environ["QLTS_DATA"] = str(SHARED)  # the data sets checked out beside the repository

LOOKBACK, HORIZON, STRIDE, MAX_EPOCHS = 48, 12, 4, 6
ALPHAS = [0.0, 0.1, 0.3]


def main():
    start = time.perf_counter()
    df = load_ett("ETTh1").iloc[: 12 * 30 * 24]  # the standard training year
    w = make_windows(df, LOOKBACK, HORIZON, stride=STRIDE, target="OT", normalize="last")
    X, y = w.X, w.y[:, :, 0]  # (n, 48, 7) inputs, (n, 12) future OT minus OT now
    n_test = len(X) // 5
    X_train, y_train, X_test, y_test = X[:-n_test], y[:-n_test], X[-n_test:], y[-n_test:]
    print(f"ETTh1: {len(X)} windows of {LOOKBACK} h x {X.shape[2]} channels -> next {HORIZON} h of OT; "
          f"{len(X_train)} for the search, {n_test} held out")

    model = QLLSTMRegressor(hidden_size=32, max_epochs=MAX_EPOCHS, lr=5e-3, batch_size=64, random_state=0)
    search = GridSearchCV(make_pipeline(SequenceScaler(), model), {"qllstmregressor__alpha": ALPHAS},
                          cv=TimeSeriesSplit(n_splits=3), scoring="neg_mean_squared_error")
    search.fit(X_train, y_train)

    results = pd.DataFrame(search.cv_results_)
    table = pd.DataFrame({
        "alpha": results["param_qllstmregressor__alpha"],
        "cv MSE (mean)": -results["mean_test_score"],
        "cv MSE (std)": results["std_test_score"],
        **{f"fold {k}": -results[f"split{k}_test_score"] for k in range(3)},
        "fit s": results["mean_fit_time"],
        "rank": results["rank_test_score"],
    })
    print("\nTimeSeriesSplit(3) cross-validation, MSE of the 12-hour OT change (lower is better):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    best = search.best_params_["qllstmregressor__alpha"]
    print(f"\nbest alpha: {best}")

    test_mse = mean_squared_error(y_test, search.predict(X_test))
    naive_mse = mean_squared_error(y_test, np.zeros_like(y_test))  # "OT stays as it is now"
    print(f"held-out test MSE with alpha={best}: {test_mse:.4f}  (repeat-last-value baseline: {naive_mse:.4f})")
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

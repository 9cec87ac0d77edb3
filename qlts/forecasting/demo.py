"""``qlts demo``: the main job. Forecast ETTh1 (or a synthetic sensor stream) with QL-LSTM and
compare against repeating the last value, on held-out data, in a few minutes on 2 CPU cores."""
from __future__ import annotations

import os
import time

import numpy as np
import torch

from ..metrics import mean_absolute_error, mean_squared_error
from ..preprocessing import make_windows
from .forecaster import QLLSTMForecaster
from .plot import plot_forecast

# ETTh1's standard split: 12 months train, 4 validation, 4 test (hourly rows)
ETT_TRAIN, ETT_VAL, ETT_TEST = 8640, 2880, 2880


def load_demo_data():
    """(frame, name, target column, rows to fit on): ETTh1 when found, else the synthetic stream."""
    from ..datasets import DatasetNotFoundError, load_ett, make_sensor_stream

    try:
        frame = load_ett("ETTh1").iloc[: ETT_TRAIN + ETT_VAL + ETT_TEST]
        return frame, "ETTh1", "OT", ETT_TRAIN + ETT_VAL
    except (DatasetNotFoundError, OSError) as exc:
        print(f"ETTh1 not found ({type(exc).__name__}); using the built-in synthetic sensor stream "
              f"(set QLTS_DATA to a folder with ett/ETTh1.csv.gz for the real data)")
    frame = make_sensor_stream(n_steps=24 * 7 * 20, n_channels=4, seed=0)
    return frame, "synthetic sensor stream", "sensor_0", int(len(frame) * 0.8)


def run_forecast_demo(out_dir="qlts_demo_output", *, lookback=96, horizon=96, max_epochs=8, hidden_size=128,
                      segment_length=24, seed=0, verbose=1):
    """Fit on the first rows, forecast from every cutoff of the held-out tail (the standard protocol's
    stride-1 windows), print MSE/MAE against the naive forecaster and write a forecast plot."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    frame, name, target, n_fit = load_demo_data()
    # z-scores from the training rows only: errors are on the usual normalised scale
    mean, std = frame.iloc[:n_fit].mean(), frame.iloc[:n_fit].std()
    data = (frame - mean) / std
    print(f"{name}: {len(frame)} rows x {frame.shape[1]} channels; fit on the first {n_fit}, then forecast "
          f"{horizon} steps from every step of the {len(frame) - n_fit} held-out rows (lookback {lookback})")
    model = QLLSTMForecaster(lookback, horizon, segment_length=segment_length, hidden_size=hidden_size,
                             quantiles=(0.1, 0.9), max_epochs=max_epochs, lr=1e-3, batch_size=256, patience=3,
                             validation_fraction=0.2,
                             random_state=seed, verbose=verbose)
    start = time.perf_counter()
    model.fit(data.iloc[:n_fit])
    # every stride-1 window of the held-out rows (windows touching a gap are skipped), in one batch
    held_out = data.iloc[n_fit - lookback:].to_numpy()
    X, y = make_windows(held_out, lookback, horizon)[:2]
    pred, naive = model.predict_windows(X), np.repeat(X[:, -1:, :], horizon, axis=1)
    seconds = time.perf_counter() - start
    mse, mae = mean_squared_error(y, pred), mean_absolute_error(y, pred)
    naive_mse, naive_mae = mean_squared_error(y, naive), mean_absolute_error(y, naive)
    counts = model.parameter_counts_
    print(f"\n{'model':<28} {'recurrent params':>16} {'total params':>13} {'MSE':>7} {'MAE':>7}")
    print(f"{'QL-LSTM (SegRNN network)':<28} {counts['recurrent']:>16,} {counts['total']:>13,} {mse:>7.4f} {mae:>7.4f}")
    print(f"{'repeat the last value':<28} {'-':>16} {'-':>13} {naive_mse:>7.4f} {naive_mae:>7.4f}")
    print(f"MSE ratio to naive: {mse / naive_mse:.3f}  (fit + forecast {seconds:.0f} s)")
    cutoff = len(data) - horizon
    context = data.iloc[:cutoff]
    point = model.predict(y=context)
    q = model.predict_quantiles(y=context)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "forecast.png")
    plot_forecast(context.iloc[-3 * lookback:], point, path, column=target,
                  band=(q[(target, 0.1)].rename(0.1), q[(target, 0.9)].rename(0.9)), actual=data.iloc[cutoff:],
                  title=f"{name}: {target}, {horizon}-step QL-LSTM forecast (normalised)")
    print(f"forecast plot: {path}")
    return {"mse": float(mse), "mae": float(mae), "naive_mse": float(naive_mse), "naive_mae": float(naive_mae)}

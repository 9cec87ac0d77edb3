"""QLLSTMRegressor with and without ``normalize_y`` on targets in their own units.

Every fit is ``make_pipeline(SequenceScaler(), QLLSTMRegressor(normalize_y=...))`` at the defaults
(hidden 64, 20 epochs, Adam 5e-3, batch 64): the inputs are scaled either way, only the targets
differ. Splits are in time order; each task reports R² on its test part (1 is perfect, 0 is
predicting the training mean, below 0 is worse than that) and the MSE over a naive forecast's.

- ETTh1 oil temperature (°C): the next 24 hours from the past 96 hours of the 7 channels, windows
  every 12 h from the first 12 months; tested every 24 h on the last 4 months; naive: the last value.
- Air-quality temperature (°C): the next 24 hours from the past 72 hours of the 8 sensor channels
  (gaps filled forward), windows every 6 h over the first 70% of the year; tested on the last 30%.
- AAPL next-day log return (about 0.02 a day): 30 days of (log return, log high/low, log
  close/open, change in log volume), 70/30 split; naive: zero return.
- Synthetic level: 1000 + 100 · (sum of 20 Gaussian steps), 1,000 training sequences, 1,000 test;
  naive: the training mean.

    python benchmarks/target_scaling.py
CI (the synthetic task, one seed, a tiny model):
    python benchmarks/target_scaling.py --quick --out /tmp/results
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import sequences  # noqa: E402

from qlts import QLLSTMRegressor  # noqa: E402
from qlts.datasets import load_air_quality, load_ett  # noqa: E402
from qlts.preprocessing import SequenceScaler, make_windows  # noqa: E402

TASKS = ("etth1_ot", "air_temperature", "aapl_return", "synthetic_level")


# --- tasks: each returns X_train, y_train, X_test, y_test, naive test forecast, unit ------------
def etth1_ot():
    df = load_ett("ETTh1")
    values, ot = df.to_numpy(np.float32), df.columns.get_loc("OT")
    train_end, test_start = 12 * 30 * 24, 16 * 30 * 24
    train = make_windows(values[:train_end], 96, 24, stride=12, target=[ot])
    test = make_windows(values[test_start - 96:test_start + 4 * 30 * 24], 96, 24, stride=24, target=[ot])
    return train.X, train.y[:, :, 0], test.X, test.y[:, :, 0], np.repeat(test.X[:, -1:, ot], 24, axis=1), "°C"


def air_temperature():
    df = load_air_quality()
    cols = [c for c in df.columns if c.startswith("PT08")] + ["T", "RH", "AH"]
    values = df[cols].ffill().bfill().to_numpy(np.float32)
    t = cols.index("T")
    cut = int(0.7 * len(values))
    train = make_windows(values[:cut], 72, 24, stride=6, target=[t])
    test = make_windows(values[cut - 72:], 72, 24, stride=24, target=[t])
    return train.X, train.y[:, :, 0], test.X, test.y[:, :, 0], np.repeat(test.X[:, -1:, t], 24, axis=1), "°C"


def aapl_return():
    data, _, _ = sequences.stock_data("AAPL", argparse.Namespace(stock_lookback=30, stock_max_days=0))
    (Xtr, ytr, _), (Xva, yva, _), (Xte, yte, _) = data["train"], data["valid"], data["test"]
    return np.concatenate([Xtr, Xva]), np.concatenate([ytr, yva]), Xte, yte, np.zeros_like(yte), "log return"


def synthetic_level(n=1000, T=20):
    rng = np.random.default_rng(12345)
    X = rng.normal(size=(2 * n, T, 2)).astype(np.float32)
    y = 1000 + 100 * X[:, :, 0].sum(1)
    return X[:n], y[:n], X[n:], y[n:], np.full(n, y[:n].mean()), "level"


LOADERS = {name: globals()[name] for name in TASKS}


def parse_args(argv):
    p = _common.base_parser(__doc__)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--max-epochs", type=int, default=20)
    args = p.parse_args(argv)
    if args.quick:
        args.tasks, args.hidden_size, args.max_epochs, args.seeds = ["synthetic_level"], 8, 3, [0]
    args.seeds = args.seeds or [0, 1, 2]
    return args


def run_task(task, args, device):
    Xtr, ytr, Xte, yte, naive, unit = LOADERS[task]()
    naive_mse = float(np.mean((naive - yte) ** 2))
    rows = []
    for seed in args.seeds:
        for normalize in (False, True):
            start = time.perf_counter()
            model = make_pipeline(SequenceScaler(), QLLSTMRegressor(
                hidden_size=args.hidden_size, max_epochs=args.max_epochs, normalize_y=normalize, device=device,
                random_state=seed)).fit(Xtr, ytr)
            pred = model.predict(Xte)
            rows.append(dict(task=task, unit=unit, n_train=len(Xtr), n_test=len(Xte), seed=seed, normalize_y=normalize,
                             r2=float(r2_score(yte, pred)), mse_over_naive=float(np.mean((pred - yte) ** 2)) / naive_mse,
                             y_mean=float(np.mean(ytr)), y_std=float(np.std(ytr)),
                             seconds=round(time.perf_counter() - start, 1)))
            print(f"{task:16s} seed {seed} normalize_y={normalize!s:5s} R2 {rows[-1]['r2']:8.4f}  "
                  f"MSE/naive {rows[-1]['mse_over_naive']:.4f}", flush=True)
    return rows


def report(rows, args, device, seconds):
    frame = pd.DataFrame(rows)
    table = []
    for task, group in frame.groupby("task", sort=False):
        raw, scaled = (group[group["normalize_y"] == flag].set_index("seed") for flag in (False, True))
        table.append([task, group["unit"].iloc[0], f"{group['y_mean'].iloc[0]:.4g} ± {group['y_std'].iloc[0]:.3g}",
                      int(group["n_train"].iloc[0]),
                      _common.mean_std(list(raw["r2"]), "{:.3f}"), _common.mean_std(list(scaled["r2"]), "{:.3f}"),
                      _common.mean_std(list(raw["mse_over_naive"]), "{:.3f}"),
                      _common.mean_std(list(scaled["mse_over_naive"]), "{:.3f}"),
                      f"{int((scaled['r2'] > raw['r2']).sum())}/{len(raw)}"])
    header = ["task", "unit", "train y mean ± std", "train n", "R², raw y", "R², normalize_y", "MSE / naive, raw y",
              "MSE / naive, normalize_y", "seeds where normalize_y has the higher R²"]
    return "\n".join([
        "# QLLSTMRegressor: normalize_y on targets in their own units", "",
        f"Command: `{args.command}`  ",
        f"Environment: {_common.environment(device)}  ",
        f"Settings: `make_pipeline(SequenceScaler(), QLLSTMRegressor(...))`, hidden {args.hidden_size}, "
        f"{args.max_epochs} epochs, Adam 5e-3, batch 64; seeds {args.seeds}. Wall time {seconds / 60:.1f} min.", "",
        "R² and MSE / naive on the test part: mean ± std over seeds.", "",
        _common.md_table(header, table)])


def main(argv=None):
    args = parse_args(argv)
    args.command = _common.command_line("target_scaling.py", argv)
    device = _common.setup(args)
    start = time.perf_counter()
    rows = [row for task in args.tasks for row in run_task(task, args, device)]
    markdown = report(rows, args, device, time.perf_counter() - start)
    print(markdown)
    _common.write_results(args.out, "target_scaling", markdown, rows)


if __name__ == "__main__":
    main()

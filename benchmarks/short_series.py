"""The forecaster's epoch budget on short series: ``max_epochs=30`` against the default (None: 30
epochs, or as many as make 1,000 optimizer steps where 30 would make fewer).

A series of 100 monthly values gives one batch of windows per epoch, so 30 epochs are 30 steps.
Each series is forecast from three origins (its last ``H`` values held out, then ``2H`` and
``3H``); every fit uses the forecaster's defaults apart from lookback, horizon and segment length
(early stopping on the last 20% of the training rows where the series is long enough for it).
Reported per series: the test MSE as a ratio to the last-value naive forecast's (geometric mean over
origins, then median over seeds), and the median epochs run, for each budget.

Series: synthetic monthly (trend, a season growing with it, Gaussian noise; the seed draws the
noise) at 72, 100, 156 and 300 values (72: 36-60 training values, the shorter ones too few for a
validation tail); and short real series resampled from the shared data
(ETTh1 oil temperature daily and weekly, air-quality temperature daily and CO weekly, AAPL and
IBM monthly log closes, two exchange rates monthly). The seed also seeds the model.

    python benchmarks/short_series.py
CI (one synthetic series, one seed, one origin, a small model):
    python benchmarks/short_series.py --quick --out /tmp/results
"""
from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

from qlts import QLLSTMForecaster  # noqa: E402
from qlts.datasets import load_air_quality, load_ett, load_exchange_rate, load_stock  # noqa: E402
from qlts.forecasting import NaiveForecaster  # noqa: E402

BUDGETS = {"30 epochs": 30, "default": None}


def synthetic(n, seed):
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 5, n)
    return pd.Series(100 + 2 * t + 30 * np.sin(2 * np.pi * t / 12) * (1 + t / 144) + noise,
                     index=pd.date_range("2000-01-01", periods=n, freq="MS"))


def real_series():
    """name -> (series, lookback, horizon, segment length): short resamples of the shared data."""
    ett = load_ett("ETTh1")["OT"]
    air = load_air_quality()
    rates = load_exchange_rate()
    rates.index = pd.date_range("1990-01-01", periods=len(rates), freq="D")  # the file has no dates
    monthly_log = {t: np.log(load_stock(t)["close"].resample("MS").last()).iloc[-120:] for t in ("AAPL", "IBM")}
    return {
        "ETTh1 OT, daily": (ett.resample("D").mean(), 56, 7, 7),
        "ETTh1 OT, weekly": (ett.resample("W").mean(), 24, 4, 4),
        "air quality T, daily": (air["T"].resample("D").mean(), 28, 7, 7),
        "air quality CO, weekly": (air["CO(GT)"].resample("W").mean(), 16, 4, 4),
        "AAPL log close, monthly": (monthly_log["AAPL"], 24, 6, 6),
        "IBM log close, monthly": (monthly_log["IBM"], 24, 6, 6),
        "exchange rate 0, monthly": (rates.iloc[:, 0].resample("MS").last(), 24, 6, 6),
        "exchange rate 3, monthly": (rates.iloc[:, 3].resample("MS").last(), 24, 6, 6),
    }


def parse_args(argv):
    p = _common.base_parser(__doc__)
    p.add_argument("--lengths", type=int, nargs="+", default=[72, 100, 156, 300], help="synthetic series lengths")
    p.add_argument("--origins", type=int, default=3, help="forecast origins per series")
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--no-real", action="store_true", help="synthetic series only")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.origins, args.hidden_size, args.no_real, args.seeds = [100], 1, 32, True, [0]
    args.seeds = args.seeds or [0, 1, 2]
    return args


def run_series(name, y, lookback, horizon, segment, seed, args):
    """One row per budget: the MSE ratio to naive over the origins, and the epochs run."""
    y = y.interpolate().dropna()
    splits = []  # (train, test, naive forecast) per origin, shared by both budgets
    for origin in range(args.origins):
        end = len(y) - origin * horizon
        train, test = y.iloc[:end - horizon], y.iloc[end - horizon:end].to_numpy()
        splits.append((train, test, NaiveForecaster(horizon=horizon).fit(train).predict().to_numpy()[:, 0]))
    rows = []
    for label, max_epochs in BUDGETS.items():
        ratios, epochs, budgets, validated, start = [], [], [], 0, time.perf_counter()
        for train, test, naive in splits:
            model = QLLSTMForecaster(lookback, horizon, segment_length=segment, hidden_size=args.hidden_size,
                                     max_epochs=max_epochs, device=args.device, random_state=seed, verbose=0)
            with warnings.catch_warnings():  # the shortest series have no validation tail; said in the table
                warnings.simplefilter("ignore", UserWarning)
                model.fit(train)
            forecast = model.predict().to_numpy()[:, 0]
            ratios.append(np.mean((forecast - test) ** 2) / np.mean((naive - test) ** 2))
            epochs.append(len(model.history_))
            budgets.append(model.max_epochs_)
            validated += "early_stopping" in dict(model.net_.callbacks_)
        rows.append(dict(series=name, rows=len(y), seed=seed, budget=label,
                         mse_ratio=float(np.exp(np.mean(np.log(ratios)))), epochs=float(np.median(epochs)),
                         max_epochs=int(np.median(budgets)), origins=args.origins, validated=validated,
                         seconds=time.perf_counter() - start))
        print(f"{name:28s} seed {seed} {label:10s} mse/naive {rows[-1]['mse_ratio']:.3f} "
              f"epochs {rows[-1]['epochs']:.0f} of {rows[-1]['max_epochs']}", flush=True)
    return rows


def report(rows, args, device, seconds):
    frame = pd.DataFrame(rows)
    table = []
    for name, group in frame.groupby("series", sort=False):
        validated = group["validated"].sum() / group["origins"].sum()
        cells = [name, int(group["rows"].iloc[0]), {0: "none", 1: "all"}.get(validated, f"{validated:.0%} of fits")]
        for label in BUDGETS:
            g = group[group["budget"] == label]
            cells += [f"{g['mse_ratio'].median():.3f}", f"{g['epochs'].median():.0f} of {g['max_epochs'].median():.0f}"]
        table.append(cells)
    header = ["series", "values", "validation tail"]
    for label in BUDGETS:
        header += [f"MSE / naive, {label}", f"epochs run, {label}"]
    return "\n".join([
        "# Short series: the forecaster's epoch budget", "",
        f"Command: `{args.command}`  ",
        f"Environment: {_common.environment(device)}  ",
        f"Settings: forecaster defaults (hidden {args.hidden_size}), {args.origins} forecast origin(s), seeds "
        f"{args.seeds}. Wall time {seconds / 60:.1f} min.", "",
        "MSE / naive: the test MSE over the last-value forecast's (geometric mean over origins, median over "
        "seeds; below 1 beats naive). Epochs run: median over origins and seeds, of the budget (`max_epochs_`).",
        "", _common.md_table(header, table)])


def main(argv=None):
    args = parse_args(argv)
    args.command = _common.command_line("short_series.py", argv)
    device = _common.setup(args)
    start = time.perf_counter()
    cases = [(f"synthetic monthly, {n}", synthetic(n, seed), 24, 12, 12, seed) for n in args.lengths
             for seed in args.seeds]
    if not args.no_real:
        cases += [(name, *spec, seed) for name, spec in real_series().items() for seed in args.seeds]
    rows = [row for name, y, lookback, horizon, segment, seed in cases
            for row in run_series(name, y, lookback, horizon, segment, seed, args)]
    markdown = report(rows, args, device, time.perf_counter() - start)
    print(markdown)
    _common.write_results(args.out, "short_series", markdown, rows)


if __name__ == "__main__":
    main()

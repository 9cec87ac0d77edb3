"""Is QLLSTMForecaster's quantile band calibrated on data it has not seen?

`qlts forecast` draws a 0.1-0.9 band by default, and `predict_quantiles` gives it in Python. A
calibrated band holds 80% of the test values. This fits `QLLSTMForecaster(quantiles=[0.1, 0.9])`
at its defaults on the standard long-term protocol of `forecasting.py` (lookback 96; ETT 12/4/4
months, Exchange 7:1:2; z-scores from the training split; every channel, channel-independent;
early stopping on the validation split) and scores every stride-1 test window:

- coverage: the share of test values inside [q0.1, q0.9], overall and in the first and last
  quarter of the horizon (bands often narrow too little with lead time);
- the band's mean width, and the pinball loss averaged over the two levels;
- the median's MSE against repeating the last value (the point forecast trained with the pinball
  loss rather than the MAE of forecasting.md).

    python benchmarks/quantile_calibration.py
CI (ETTh1 at H=24, a tiny model, 1 epoch):
    python benchmarks/quantile_calibration.py --quick --out /tmp/results
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import forecasting  # noqa: E402

from qlts import QLLSTMForecaster  # noqa: E402
from qlts.metrics import interval_coverage, mean_pinball_loss  # noqa: E402

LEVELS = (0.1, 0.9)


def parse_args(argv):
    p = _common.base_parser(__doc__)
    p.add_argument("--datasets", nargs="+", default=["etth1", "etth2", "exchange"],
                   choices=[*forecasting.ETT, "exchange"])
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--max-epochs", type=int, default=None, help="default: the forecaster's")
    args = p.parse_args(argv)
    if args.quick:
        args.datasets, args.horizon, args.hidden_size, args.max_epochs, args.seeds = ["etth1"], 24, 16, 1, [0]
    args.seeds = args.seeds or [0, 1]
    return args


def run_one(dataset, seed, args, device, splits):
    fit_rows, n_val, X_test, y_test = splits
    start = time.perf_counter()
    model = QLLSTMForecaster(forecasting.LOOKBACK, args.horizon, hidden_size=args.hidden_size, quantiles=list(LEVELS),
                             max_epochs=args.max_epochs, validation_fraction=n_val / len(fit_rows), device=device,
                             random_state=seed, verbose=0).fit(fit_rows)
    seconds = time.perf_counter() - start
    bands = model.predict_windows(X_test, quantiles=True)  # (n, H, channels, 2)
    median = model.predict_windows(X_test)
    naive = np.repeat(X_test[:, -1:, :], args.horizon, axis=1)
    quarter = max(1, args.horizon // 4)
    return dict(dataset=dataset, horizon=args.horizon, seed=seed, test_windows=len(X_test),
                coverage=interval_coverage(y_test, bands, LEVELS),
                coverage_first_quarter=interval_coverage(y_test[:, :quarter], bands[:, :quarter], LEVELS),
                coverage_last_quarter=interval_coverage(y_test[:, -quarter:], bands[:, -quarter:], LEVELS),
                width=float(np.mean(bands[..., 1] - bands[..., 0])),
                pinball=mean_pinball_loss(y_test, bands, LEVELS),
                median_mse=float(np.mean((median - y_test) ** 2)), naive_mse=float(np.mean((naive - y_test) ** 2)),
                hidden_size=args.hidden_size, epochs_run=len(model.history_), fit_seconds=round(seconds, 1))


def report(rows, args, device, seconds):
    frame = pd.DataFrame(rows)
    cells = ["coverage", "coverage_first_quarter", "coverage_last_quarter", "width", "pinball", "median_mse"]
    table = [[dataset, int(group["test_windows"].iloc[0]), len(group),
              *[_common.mean_std(list(group[c]), "{:.3f}") for c in cells], f"{group['naive_mse'].iloc[0]:.3f}"]
             for dataset, group in frame.groupby("dataset", sort=False)]
    header = ["dataset", "test windows", "seeds", "coverage (nominal 0.8)", "first quarter of H", "last quarter of H",
              "band width (z)", "pinball", "median MSE", "naive MSE"]
    return "\n".join([
        "# QLLSTMForecaster: calibration of the 0.1-0.9 quantile band", "",
        f"Command: `{args.command}`  ",
        f"Environment: {_common.environment(device)}  ",
        f"Settings: `QLLSTMForecaster(96, {args.horizon}, quantiles=[0.1, 0.9])`, hidden {args.hidden_size}, the "
        f"forecaster's other defaults (epochs: {args.max_epochs or 'default'}), early stopping on the protocol's "
        f"validation split; seeds {args.seeds}. Wall time {seconds / 60:.1f} min.", "",
        "Values on the test split's z-scores (the training split's statistics), every stride-1 window and "
        "channel; mean ± std over seeds.", "",
        _common.md_table(header, table)])


def main(argv=None):
    args = parse_args(argv)
    args.command = _common.command_line("quantile_calibration.py", argv)
    device = _common.setup(args)
    forecasting.use_shared_data()
    start = time.perf_counter()
    rows = []
    for dataset in args.datasets:
        splits = forecasting.load_splits(dataset, args.horizon)
        for seed in args.seeds:
            rows.append(run_one(dataset, seed, args, device, splits))
            r = rows[-1]
            print(f"{dataset} seed {seed}: coverage {r['coverage']:.3f} (first/last quarter "
                  f"{r['coverage_first_quarter']:.3f}/{r['coverage_last_quarter']:.3f}), pinball {r['pinball']:.4f}, "
                  f"median MSE {r['median_mse']:.4f} (naive {r['naive_mse']:.4f}), {r['fit_seconds']:.0f} s", flush=True)
    markdown = report(rows, args, device, time.perf_counter() - start)
    print(markdown)
    _common.write_results(args.out, "quantile_calibration", markdown, rows)


if __name__ == "__main__":
    main()

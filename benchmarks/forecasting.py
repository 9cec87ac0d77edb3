"""Forecasting accuracy on the standard long-term protocol: QL-LSTM, LSTM and GRU in the same SegRNN
network against "repeat the last value", with published numbers quoted beside.

Protocol (Informer/Autoformer code): ETT splits 12/4/4 months (hourly rows 8640/2880/2880), other
sets 7:1:2; the validation and test windows start ``lookback`` rows before their split; z-scores
fitted on the training split; multivariate, channel-independent; MSE/MAE on the normalised test
split over every stride-1 test window. The validation split drives early stopping only.

Every (dataset, horizon, seed) runs all cells back to back in one process, so the cells share the
same machine conditions. Rows are appended to ``<out>/forecasting.csv`` (``--fresh`` starts it
over) and ``forecasting.md`` is rebuilt from the whole CSV, with the command of each row.

    python benchmarks/forecasting.py --quick --out /tmp/bench      # CI: < 3 min on 2 cores
    python benchmarks/forecasting.py --datasets etth1 --horizons 96 336 --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

from qlts.datasets import load_ett, load_exchange_rate  # noqa: E402
from qlts.forecasting import QLLSTMForecaster  # noqa: E402
from qlts.preprocessing import make_windows  # noqa: E402
from qlts.utils import atomic_write  # noqa: E402

LOOKBACK = 96
ETT = {"etth1": ("ETTh1", 1), "etth2": ("ETTh2", 1), "ettm1": ("ETTm1", 4)}
# Published MSE / MAE at lookback 96 where the papers report it (SegRNN: Lin et al. 2023, Table at
# L=96 as quoted in the issue; DLinear and PatchTST as tabulated by iTransformer, Liu et al. 2024).
PUBLISHED = {
    ("etth1", 96): {"SegRNN": 0.368, "DLinear": 0.386, "iTransformer": 0.386, "PatchTST": 0.414},
    ("etth1", 336): {"SegRNN": 0.444, "DLinear": 0.481, "iTransformer": 0.487, "PatchTST": 0.501},
    ("exchange", 96): {"DLinear": 0.088, "iTransformer": 0.086, "PatchTST": 0.088},
}
TARGETS = {("etth1", 96): 0.368, ("etth1", 336): 0.444, ("exchange", 96): 0.081}


def use_shared_data():
    """Read the real sets from ../shared/data beside the repo unless QLTS_DATA says otherwise."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if "QLTS_DATA" not in os.environ and shared.is_dir():
        os.environ["QLTS_DATA"] = str(shared)


def load_splits(name, horizon, lookback=LOOKBACK):
    """(fit rows = train + validation, validation rows, test windows X, y), all z-scored with
    statistics of the training split."""
    if name in ETT:
        file, per_hour = ETT[name]
        data = load_ett(file).to_numpy(np.float64)
        month = 30 * 24 * per_hour
        n_train, n_val, n_test = 12 * month, 4 * month, 4 * month
    elif name == "exchange":
        data = load_exchange_rate().to_numpy(np.float64)
        n_train, n_test = int(len(data) * 0.7), int(len(data) * 0.2)
        n_val = len(data) - n_train - n_test
    else:
        raise ValueError(f"--datasets: expected names from {sorted([*ETT, 'exchange'])}, got {name!r}")
    train = data[:n_train]
    z = (data - train.mean(0)) / train.std(0)
    fit_rows = z[: n_train + n_val]
    test = z[n_train + n_val - lookback: n_train + n_val + n_test]
    X_test, y_test = make_windows(test, lookback, horizon)[:2]
    return fit_rows, n_val, X_test, y_test


def run_one(args, dataset, horizon, seed, cell, splits):
    fit_rows, n_val, X_test, y_test = splits
    model = QLLSTMForecaster(LOOKBACK, horizon, segment_length=args.segment_length, hidden_size=args.hidden_size,
                             cell=cell, alpha=args.alpha, norm=args.norm, zero_head=args.zero_head, loss=args.loss,
                             dropout=args.dropout, lr=args.lr, lr_decay=args.lr_decay, weight_decay=args.weight_decay,
                             max_epochs=args.max_epochs, batch_size=args.batch_size,
                             patience=args.patience, validation_fraction=n_val / len(fit_rows),
                             random_state=seed, verbose=0)
    start = time.perf_counter()
    model.fit(fit_rows)
    seconds = time.perf_counter() - start
    pred = model.predict_windows(X_test)
    naive = np.repeat(X_test[:, -1:, :], horizon, axis=1)
    history = model.history_
    stopper = dict(model.net_.callbacks_).get("early_stopping")
    # the epoch whose weights early stopping restored (its threshold can skip a tiny improvement)
    best_epoch = stopper.best_epoch_ if stopper is not None else int(np.argmin(history[:, "valid_loss"])) + 1
    return {"dataset": dataset, "horizon": horizon, "cell": cell, "seed": seed,
            "mse": float(((pred - y_test) ** 2).mean()), "mae": float(np.abs(pred - y_test).mean()),
            "naive_mse": float(((naive - y_test) ** 2).mean()), "naive_mae": float(np.abs(naive - y_test).mean()),
            "recurrent_params": model.parameter_counts_["recurrent"], "total_params": model.parameter_counts_["total"],
            "hidden_size": args.hidden_size, "segment_length": args.segment_length, "loss": args.loss,
            "lr": model.lr_, "dropout": args.dropout, "norm": args.norm, "alpha": args.alpha,
            "zero_head": args.zero_head, "lr_decay": args.lr_decay, "weight_decay": args.weight_decay,
            "max_epochs": args.max_epochs, "patience": args.patience, "batch_size": args.batch_size,
            "epochs_run": len(history), "best_epoch": best_epoch,
            "best_valid": float(np.min(history[:, "valid_loss"])), "fit_seconds": seconds,
            "test_windows": len(X_test), "tag": args.tag, "command": args.command}


def summarise(frame):
    """Mean (std) over seeds per configuration and cell."""
    keys = ["dataset", "horizon", "hidden_size", "segment_length", "loss", "lr", "lr_decay", "batch_size", "dropout",
            "weight_decay", "norm", "max_epochs", "zero_head", "cell"]
    g = frame.groupby(keys, dropna=False)
    out = g.agg(seeds=("seed", "nunique"), mse=("mse", "mean"), mse_std=("mse", "std"), mae=("mae", "mean"),
                naive_mse=("naive_mse", "mean"), recurrent_params=("recurrent_params", "first"),
                total_params=("total_params", "first"), epochs=("best_epoch", "mean"),
                fit_s=("fit_seconds", "median")).reset_index()
    return out


def write_markdown(frame, path):
    """Tables from the CSV; a hand-written analysis after the notes marker is kept (_common.write_markdown)."""
    s = summarise(frame)
    lines = ["# Forecasting accuracy: SegRNN network with QL-LSTM, LSTM and GRU cells", "",
             "Standard long-term protocol (lookback 96; ETT 12/4/4 months, Exchange 7:1:2; z-scores from the "
             "training split; multivariate, channel-independent; MSE/MAE on the normalised test split over every "
             "stride-1 window). Written by `benchmarks/forecasting.py`; every row of `forecasting.csv` carries "
             "the command that produced it. Mean over seeds, (std) where more than one seed ran.", ""]
    lines += ["| dataset | H | d_model | w | loss | lr | lr decay | batch | dropout | weight decay | norm | "
              "zero head | cell | seeds | MSE | MAE | naive MSE | recurrent params | total params | best epoch | "
              "fit s |", "|" + "---|" * 21]
    for _, r in s.iterrows():
        std = f" ({r.mse_std:.3f})" if r.seeds > 1 else ""
        lines.append(f"| {r.dataset} | {r.horizon} | {r.hidden_size} | {r.segment_length} | {r.loss} | {r.lr:g} | "
                     f"{r.lr_decay:g} | {r.batch_size} | {r.dropout:g} | {r.weight_decay:g} | {r.norm} | "
                     f"{'yes' if r.zero_head else 'no'} | {r.cell} | {r.seeds} | {r.mse:.4f}{std} | {r.mae:.4f} | "
                     f"{r.naive_mse:.4f} | {r.recurrent_params:,} | {r.total_params:,} | {r.epochs:.1f} | {r.fit_s:.0f} |")
    lines += ["", "Published MSE at lookback 96 (quoted, not rerun here):", ""]
    for (ds, h), pub in PUBLISHED.items():
        lines.append(f"- {ds} H={h}: " + ", ".join(f"{k} {v:.3f}" for k, v in pub.items())
                     + (f"; target {TARGETS[(ds, h)]:.3f}" if (ds, h) in TARGETS else ""))
    lines += ["", "Commands:", ""] + [f"- `{c}`" for c in frame["command"].drop_duplicates()]
    _common.write_markdown(path, "\n".join(lines))


def write_plot(frame, path):
    """Best test MSE per cell for each (dataset, horizon), its setup under the bar; naive as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summarise(frame)
    cases = s[["dataset", "horizon"]].drop_duplicates().to_numpy().tolist()
    fig, axes = plt.subplots(1, len(cases), figsize=(3.2 * len(cases), 3.2), squeeze=False)
    for ax, (dataset, horizon) in zip(axes[0], cases):
        rows = s[(s.dataset == dataset) & (s.horizon == horizon)]
        rows = rows.loc[rows.groupby("cell")["mse"].idxmin()]
        labels = [f"{r.cell}\nw{r.segment_length} lr{r.lr:g}\nbatch {r.batch_size}" for r in rows.itertuples()]
        ax.bar(labels, rows["mse"], yerr=rows["mse_std"].fillna(0), color="tab:blue")
        ax.tick_params(axis="x", labelsize=7)
        ax.axhline(rows["naive_mse"].iloc[0], color="gray", linestyle="--", label="repeat last")
        ax.set(title=f"{dataset} H={horizon}", ylabel="test MSE (normalised)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny CI run: ETTh1 H=96, 1 seed, d_model 32, 2 epochs")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--fresh", action="store_true", help="start the CSV over instead of appending")
    p.add_argument("--datasets", nargs="+", default=["etth1", "exchange"])
    p.add_argument("--horizons", nargs="+", type=int, default=[96, 336])
    p.add_argument("--cells", nargs="+", default=["qllstm", "lstm", "gru"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--segment-length", type=int, default=24)
    p.add_argument("--loss", default="mae")
    p.add_argument("--lr", type=float, default=None,
                   help="default: the forecaster's (3e-4)")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--norm", default="last")
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--zero-head", action="store_true", help="start the output layer at zero (= the naive forecast)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--lr-decay", type=float, default=1.0, help="learning-rate factor per epoch")
    p.add_argument("--max-epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    args.command = "python benchmarks/forecasting.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.quick:
        args.datasets, args.horizons, args.seeds, args.cells = ["etth1"], [96], [0], ["qllstm", "gru"]
        args.hidden_size, args.max_epochs, args.batch_size, args.tag = 32, 2, 256, args.tag or "quick"
    if args.threads:
        torch.set_num_threads(args.threads)
    use_shared_data()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "forecasting.csv"
    frame = pd.read_csv(csv) if csv.exists() and not args.fresh else pd.DataFrame()
    for dataset in args.datasets:
        for horizon in args.horizons:
            splits = load_splits(dataset, horizon)
            for seed in args.seeds:
                for cell in args.cells:  # interleaved: every cell under the same conditions
                    row = run_one(args, dataset, horizon, seed, cell, splits)
                    print(f"{dataset} H={horizon} seed={seed} {cell:<7} MSE {row['mse']:.4f} MAE {row['mae']:.4f} "
                          f"(naive {row['naive_mse']:.4f}) params {row['recurrent_params']:,}/"
                          f"{row['total_params']:,} best epoch {row['best_epoch']} {row['fit_seconds']:.0f}s",
                          flush=True)
                    frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
                    with atomic_write(csv, "w") as fh:  # after every run: a long sweep keeps what it finished
                        frame.to_csv(fh, index=False)
                    write_markdown(frame, out / "forecasting.md")
    write_plot(frame, out / "forecasting.png")
    print(summarise(frame).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())

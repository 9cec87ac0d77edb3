"""The classifier's and regressor's epoch budget on small training sets: is ``max_epochs=20`` enough?

500 sequences in batches of 64 are 8 batches an epoch, so 20 epochs are 160 optimizer steps. Each task
is fit three ways, everything else at the estimator defaults (hidden 64, Adam at 5e-3, batch 64,
shuffled batches, no early stopping):

- ``20 epochs``: the default;
- ``1,000 steps``: as many epochs as make 1,000 optimizer steps, at least 20 (the forecaster's
  rule for short series);
- ``1,000 steps + ES``: the same cap with ``early_stopping=True`` (patience 5 on 10% held out).

Tasks (the seed draws the training subsample where there is one, and seeds the model):

- IMDB, 500 and 2,000 training reviews (first 200 tokens, 5,000-word vocabulary, through
  ``TextEncoder``); accuracy on 2,000 test reviews.
- Noisy sign: 40 steps of 2 Gaussian channels, label = sign(sum of channel 0 + N(0, 3²)) (Bayes
  accuracy about 0.86); 500 and 2,000 training sequences, accuracy on 4,000.
- Air quality, high-CO day ahead (``benchmarks/sequences.py``'s sensor task: 72 h of 9 channels every
  6 h, time-ordered 60/20/20 split); accuracy on the test windows.
- ETTh1 oil temperature, next 24 h from the past 96 h of all 7 channels (z-scored on the first 12
  months), 500 and 2,000 training windows drawn from the first 12 months; MSE / the last-value
  forecast's MSE on the last 4 months (every 24 h).
- AAPL next-day log return (``sequences.py``'s financial task, 30 days of 4 features); MSE / the
  zero-return MSE on the last 20% of days: below 1 only if the model predicts anything.

    python benchmarks/epoch_budget.py
CI (one seed, the noisy-sign task at 200 sequences, tiny model):
    python benchmarks/epoch_budget.py --quick --out /tmp/results
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import sequences  # noqa: E402

from qlts import QLLSTMClassifier, QLLSTMRegressor  # noqa: E402
from qlts.datasets import load_ett, load_imdb  # noqa: E402
from qlts.preprocessing import TextEncoder, make_windows  # noqa: E402

MIN_STEPS, DEFAULT_EPOCHS = 1000, 20
ARMS = ("20 epochs", "1,000 steps", "1,000 steps + ES")
TASKS = ("imdb", "noisy_sign", "air_quality", "etth1", "aapl")


def budget(n_train, batch_size):
    batches = -(-n_train // batch_size)
    return max(DEFAULT_EPOCHS, -(-MIN_STEPS // batches))


# --- tasks: each returns (kind, X_train, y_train, X_test, score(est) -> (metric, value)) ----------
@functools.lru_cache(maxsize=1)
def _imdb():
    return load_imdb()  # 50,000 reviews: read once, sampled by every (size, seed)


def imdb(n, seed):
    data = _imdb()
    train = data["train"].sample(n, random_state=seed)
    test = data["test"].sample(2000, random_state=12345)
    enc = TextEncoder(max_len=200, max_size=5000).fit(train["text"])
    Xte, yte = enc.transform(test["text"]), test["label"].to_numpy()
    return ("classifier", enc.transform(train["text"]), train["label"].to_numpy(), dict(vocab_size=5002),
            lambda est: ("accuracy", float(np.mean(est.predict(Xte) == yte))))


def noisy_sign(n, seed, T=40):
    def draw(m, rng):
        X = rng.normal(size=(m, T, 2)).astype(np.float32)
        return X, (X[:, :, 0].sum(1) + rng.normal(0, 3, m) > 0).astype(int)

    Xtr, ytr = draw(n, np.random.default_rng(seed))
    Xte, yte = draw(4000, np.random.default_rng(12345))
    return ("classifier", Xtr, ytr, {}, lambda est: ("accuracy", float(np.mean(est.predict(Xte) == yte))))


def air_quality(n, seed):
    args = argparse.Namespace(aq_lookback=72, aq_stride=6)
    data, _ = sequences.air_quality_data(args)
    (Xtr, ytr, _, _), (Xte, yte, _, _) = data["train"], data["test"]
    return ("classifier", Xtr, ytr, {}, lambda est: ("accuracy", float(np.mean(est.predict(Xte) == yte))))


def etth1(n, seed, lookback=96, horizon=24):
    df = load_ett("ETTh1")
    train_end, test_start = 12 * 30 * 24, 16 * 30 * 24
    z = ((df - df.iloc[:train_end].mean()) / df.iloc[:train_end].std()).to_numpy(np.float32)
    ot = df.columns.get_loc("OT")
    w = make_windows(z[:train_end], lookback, horizon, target=[ot])
    pick = np.sort(np.random.default_rng(seed).choice(len(w.X), n, replace=False))
    test = make_windows(z[test_start - lookback:test_start + 4 * 30 * 24], lookback, horizon, stride=24, target=[ot])
    yte = test.y[:, :, 0]
    naive = np.mean((test.X[:, -1:, ot] - yte) ** 2)
    return ("regressor", w.X[pick], w.y[pick, :, 0], {},
            lambda est: ("MSE / naive", float(np.mean((est.predict(test.X) - yte) ** 2) / naive)))


def aapl(n, seed):
    args = argparse.Namespace(stock_lookback=30, stock_max_days=0)
    data, y_scale, _ = sequences.stock_data("AAPL", args)
    (Xtr, ytr, _), (Xte, yte, _) = data["train"], data["test"]
    zero = np.mean(yte ** 2)
    return ("regressor", Xtr, ytr / y_scale, {},
            lambda est: ("MSE / zero", float(np.mean((est.predict(Xte) * y_scale - yte) ** 2) / zero)))


LOADERS = {"imdb": imdb, "noisy_sign": noisy_sign, "air_quality": air_quality, "etth1": etth1, "aapl": aapl}
SIZES = {"imdb": [500, 2000], "noisy_sign": [500, 2000], "air_quality": [None], "etth1": [500, 2000],
         "aapl": [None]}


def parse_args(argv):
    p = _common.base_parser(__doc__)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--hidden-size", type=int, default=64)
    args = p.parse_args(argv)
    args.sizes = dict(SIZES)
    if args.quick:
        args.tasks, args.sizes["noisy_sign"], args.hidden_size, args.seeds = ["noisy_sign"], [200], 8, [0]
    args.seeds = args.seeds or [0, 1, 2]
    return args


def run_case(task, n, seed, args, device):
    kind, Xtr, ytr, extra, score = LOADERS[task](n, seed)
    estimator = QLLSTMClassifier if kind == "classifier" else QLLSTMRegressor
    cap = budget(len(Xtr), 64)
    rows = []
    for arm, max_epochs, early in zip(ARMS, (DEFAULT_EPOCHS, cap, cap), (False, False, True)):
        if arm == ARMS[1] and cap == DEFAULT_EPOCHS:  # the default's fit again, bit for bit: reuse it
            rows.append({**rows[0], "arm": arm})
            continue
        start = time.perf_counter()
        est = estimator(hidden_size=args.hidden_size, max_epochs=max_epochs, early_stopping=early, device=device,
                        random_state=seed, **extra).fit(Xtr, ytr)
        metric, value = score(est)
        rows.append(dict(task=task, n_train=len(Xtr), seed=seed, arm=arm, max_epochs=max_epochs,
                         epochs_run=len(est.history), metric=metric, value=value,
                         seconds=round(time.perf_counter() - start, 1)))
        print(f"{task:12s} n={len(Xtr):5d} seed {seed} {arm:17s} {metric} {value:.4f}  "
              f"epochs {len(est.history)} of {max_epochs}", flush=True)
    return rows


def report(rows, args, device, seconds):
    frame = pd.DataFrame(rows)
    table = []
    for (task, n), group in frame.groupby(["task", "n_train"], sort=False):
        metric = group["metric"].iloc[0]
        cells = [task, n, metric]
        by_arm = {arm: group[group["arm"] == arm].set_index("seed")["value"] for arm in ARMS}
        for arm in ARMS:
            g = group[group["arm"] == arm]
            cells += [_common.mean_std(list(g["value"]), "{:.4f}"), f"{g['epochs_run'].median():.0f} of "
                      f"{g['max_epochs'].iloc[0]}"]
        better = 1 if metric == "accuracy" else -1
        for arm in ARMS[1:]:
            diff = (by_arm[arm] - by_arm[ARMS[0]]) * better
            cells.append(f"{int((diff > 0).sum())}/{len(diff)}")
        table.append(cells)
    header = ["task", "train n", "metric"]
    for arm in ARMS:
        header += [arm, f"epochs, {arm}"]
    header += [f"seeds better than 20 epochs: {arm}" for arm in ARMS[1:]]
    return "\n".join([
        "# Epoch budget of QLLSTMClassifier / QLLSTMRegressor on small training sets", "",
        f"Command: `{args.command}`  ",
        f"Environment: {_common.environment(device)}  ",
        f"Settings: estimator defaults (hidden {args.hidden_size}, Adam 5e-3, batch 64, shuffled), seeds "
        f"{args.seeds}. Wall time {seconds / 60:.1f} min.", "",
        "Value: mean ± std over seeds (accuracy: higher is better; MSE ratios: lower). Epochs: median run, of "
        "the cap. The last columns count the seeds on which the arm beat the 20-epoch default.", "",
        _common.md_table(header, table)])


def main(argv=None):
    args = parse_args(argv)
    args.command = _common.command_line("epoch_budget.py", argv)
    device = _common.setup(args)
    start = time.perf_counter()
    rows = [row for task in args.tasks for n in args.sizes[task] for seed in args.seeds
            for row in run_case(task, n, seed, args, device)]
    markdown = report(rows, args, device, time.perf_counter() - start)
    print(markdown)
    _common.write_results(args.out, "epoch_budget", markdown, rows)


if __name__ == "__main__":
    main()

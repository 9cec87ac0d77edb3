"""The ablation that picks QL-LSTM's default skip distance K and skip weight alpha (DESIGN §1).

Grid: skip K in {1, 4, 16} x alpha in {0, 0.1, 0.3}, skip_mode="convex", on three tasks:

- imdb:   ``QLLSTMClassifier`` on IMDB (5,000 train / 5,000 test documents of the original
          split, first 1,000 tokens), test accuracy; early stopping on the last 10% of train.
- adding: ``QLLSTMRegressor`` on the adding problem at T = 400 (``qlts.demo.make_adding_problem``;
          fixed training set, fresh validation and test sets), test MSE; predicting the mean
          scores 1/6 = 0.167.
- etth1:  ``QLLSTMForecaster`` (SegRNN network) on ETTh1, lookback 96 -> horizon 96, all 7
          channels, standard 12/4/4-month split, z-scored on train; test MSE / MAE on forecasts
          made every ``--ett-stride`` hours over the test months, against repeating the last value.

Every seed trains all nine configurations; for imdb and adding they train round robin (one
epoch each in turn). The adding task trains for all ``--epochs`` (no early stopping; the best
epoch is restored): its loss plateaus before it learns. A configuration is called better than
another only when its mean beats the other's by more than the larger of their seed standard
deviations.

    python benchmarks/ablation.py                                   # full grid, 3 seeds
    python benchmarks/ablation.py --tasks adding --seeds 0 1        # a selection
    python benchmarks/ablation.py --quick --out /tmp/results        # CI
    python benchmarks/ablation.py --add-runs A/ablation.csv B/ablation.csv --report-only   # join runs

Every row carries its task's settings and the command that made it, so runs made apart (a seed
or a task at a time) join into one report; rows of one task must share their settings.
"""
from __future__ import annotations

import itertools
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

from qlts.utils import seed_everything  # noqa: E402

TASKS = ("imdb", "adding", "etth1")
SKIPS, ALPHAS = (1, 4, 16), (0.0, 0.1, 0.3)
DEFAULT = (1, 0.1)  # (K, alpha) in the code today
METRIC = {"imdb": ("test accuracy %", True), "adding": ("test MSE", False), "etth1": ("test MSE", False)}
ETT_TRAIN, ETT_VAL, ETT_TEST = 8640, 2880, 2880
QUICK = dict(seeds=[0], imdb_train_docs=400, imdb_test_docs=400, imdb_max_len=64, imdb_vocab=2000, hidden_size=16,
             epochs=1, adding_T=50, adding_train=256, ett_epochs=1, ett_hidden=16, ett_stride=480, ett_rows=4000)


def parse_args(argv):
    p = _common.base_parser(__doc__)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--skips", type=int, nargs="+", default=list(SKIPS))
    p.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    p.add_argument("--hidden-size", type=int, default=64, help="imdb and adding")
    p.add_argument("--epochs", type=int, default=10, help="most epochs for imdb and adding")
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--imdb-train-docs", type=int, default=5000)
    p.add_argument("--imdb-test-docs", type=int, default=5000)
    p.add_argument("--imdb-max-len", type=int, default=1000)
    p.add_argument("--imdb-vocab", type=int, default=20000)
    p.add_argument("--adding-T", type=int, default=400)
    p.add_argument("--adding-train", type=int, default=10000, help="training sequences (validation: 10%% more)")
    p.add_argument("--ett-epochs", type=int, default=30)
    p.add_argument("--ett-hidden", type=int, default=256)
    p.add_argument("--ett-segment", type=int, default=24, help="segment length: 96/24 = 4 recurrent steps")
    p.add_argument("--ett-stride", type=int, default=24, help="hours between forecast origins in the test months")
    p.add_argument("--ett-rows", type=int, default=0, help="use only the first N rows of the standard split "
                                                          "(scaled 12/4/4 proportions; 0: all)")
    p.add_argument("--add-runs", nargs="+", default=[], metavar="CSV",
                   help="ablation.csv files of earlier invocations: their rows join this report")
    p.add_argument("--report-only", action="store_true", help="train nothing: the report from --add-runs alone")
    args = p.parse_args(argv)
    if args.report_only and not args.add_runs:
        p.error("--report-only: expected --add-runs with at least one ablation.csv, got none")
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.seeds = args.seeds or [0, 1, 2]
    return args


def task_settings(args, task):
    """What ran for a task, exactly: everything that must match for runs to share a table."""
    return {
        "imdb": f"IMDB, {args.imdb_train_docs:,} train (last 10% = validation) / {args.imdb_test_docs:,} test docs, "
                f"first {args.imdb_max_len} tokens, vocabulary {args.imdb_vocab:,}, embedding = hidden = "
                f"{args.hidden_size}, max pooling, Adam 2e-3, at most {args.epochs} epochs, patience {args.patience}",
        "adding": f"adding problem T={args.adding_T}, {args.adding_train:,} training sequences, hidden "
                  f"{args.hidden_size}, Adam 1e-2, batch 64, {args.epochs} epochs (no early stopping; best epoch kept)",
        "etth1": f"ETTh1 96->96 via QLLSTMForecaster (hidden {args.ett_hidden}, segment {args.ett_segment}, i.e. "
                 f"{recurrent_steps(args)} recurrent steps), at most {args.ett_epochs} epochs, early stopping on "
                 f"the validation months; forecasts every {args.ett_stride} h over the test months"
                 + (f"; first {args.ett_rows} rows only" if args.ett_rows else ""),
    }[task]


def recurrent_steps(args):
    return -(-96 // args.ett_segment)


TEXT_FIELDS = ("task", "settings", "command")
INT_FIELDS = ("seed", "skip", "epochs_run", "recurrent_steps")


def read_runs(paths):
    """Rows of earlier ablation.csv files (empty cells dropped: each task has its own columns)."""
    rows = []
    for path in paths:
        for row in _common.read_rows(path, TEXT_FIELDS, INT_FIELDS):
            if "settings" not in row:
                raise ValueError(f"--add-runs: {path} has rows without settings; expected an ablation.csv "
                                 "written by this version of ablation.py")
            rows.append(row)
    return rows


def check_joinable(rows):
    """Every task's rows share one settings text, and no (task, seed, K, alpha) appears twice."""
    for task in TASKS:
        settings = {r["settings"] for r in rows if r["task"] == task}
        if len(settings) > 1:
            raise ValueError(f"--add-runs: the {task} rows were run with different settings: "
                             + " | ".join(sorted(settings)))
    seen = set()
    for r in rows:
        key = (r["task"], r["seed"], r["skip"], r["alpha"])
        if key in seen:
            raise ValueError(f"--add-runs: {r['task']} seed {r['seed']} {label(r['skip'], r['alpha'])} appears twice")
        seen.add(key)


def grid(args):
    return list(itertools.product(args.skips, args.alphas))


def label(K, alpha):
    return f"K={K} a={alpha:g}"


# --- tasks: each returns rows {task, seed, skip, alpha, value, extra...} ----------------------
def interleaved_row(args, task, seed, K, a, value, rec):
    """The result row of one configuration of a task whose grid trains interleaved (IMDB, adding)."""
    return dict(task=task, settings=task_settings(args, task), seed=seed, skip=K, alpha=a, value=value,
                epochs_run=len(rec["epoch_seconds"]), median_epoch_s=round(statistics.median(rec["epoch_seconds"]), 2))


def run_imdb(args, device):
    from qlts.datasets import load_imdb
    from qlts.estimators import QLLSTMClassifier
    from qlts.preprocessing import Vocabulary, texts_to_ids

    imdb = load_imdb()
    train = imdb["train"].iloc[np.random.default_rng(0).permutation(25000)[:args.imdb_train_docs]]
    test = imdb["test"].iloc[np.random.default_rng(1).permutation(25000)[:args.imdb_test_docs]]
    vocab = Vocabulary(args.imdb_vocab).fit(train["text"])
    X, _ = texts_to_ids(train["text"], args.imdb_max_len, vocab=vocab)
    Xte, _ = texts_to_ids(test["text"], args.imdb_max_len, vocab=vocab)
    y, yte = train["label"].to_numpy(), test["label"].to_numpy()
    n_valid = max(1, len(X) // 10)
    rows = []
    for seed in args.seeds:
        print(f"imdb seed {seed}: {len(X) - n_valid} train / {n_valid} valid / {len(Xte)} test docs", flush=True)
        seed_everything(seed)
        ests = {label(K, a): QLLSTMClassifier(cell="qllstm", skip=K, alpha=a, skip_mode="convex",
                                              hidden_size=args.hidden_size, vocab_size=len(vocab),
                                              embedding_dim=args.hidden_size, pooling="max", lr=2e-3, max_epochs=1,
                                              device=device, random_state=seed, iterator_train__shuffle=True)
                for K, a in grid(args)}
        record = _common.train_interleaved(ests, X[:-n_valid], y[:-n_valid], X[-n_valid:], y[-n_valid:],
                                           epochs=args.epochs, patience=args.patience, valid_loss=_common.log_loss)
        for (K, a), (name, est) in zip(grid(args), ests.items()):
            acc = 100.0 * float(np.mean(est.predict(Xte) == yte))
            rows.append(interleaved_row(args, "imdb", seed, K, a, round(acc, 3), record[name]))
            print(f"  {name:<11} accuracy {acc:.2f}%", flush=True)
    return rows


def run_adding(args, device):
    from qlts.demo import BASELINE_MSE, make_adding_problem
    from qlts.estimators import QLLSTMRegressor

    T, n = args.adding_T, args.adding_train
    rows = []
    for seed in args.seeds:
        rng = np.random.default_rng(1000 + seed)
        X, y = (a.numpy() for a in make_adding_problem(n, T, rng))
        Xva, yva = (a.numpy() for a in make_adding_problem(max(64, n // 10), T, rng))
        Xte, yte = (a.numpy() for a in make_adding_problem(1000, T, rng))
        print(f"adding T={T} seed {seed}: {n} train / {len(Xva)} valid / 1000 test sequences "
              f"(predict-the-mean MSE {BASELINE_MSE:.3f})", flush=True)
        seed_everything(seed)
        ests = {label(K, a): QLLSTMRegressor(cell="qllstm", skip=K, alpha=a, skip_mode="convex",
                                             hidden_size=args.hidden_size, lr=1e-2, max_epochs=1, device=device,
                                             random_state=seed, iterator_train__shuffle=True)
                for K, a in grid(args)}
        # No early stopping here (the best epoch is still restored): the task sits on the
        # predict-the-mean plateau for epochs before it learns, and with --patience 2 every
        # configuration stopped there at T=400 (validation 0.1665 -> 0.172 -> 0.1667).
        record = _common.train_interleaved(ests, X, y[:, 0], Xva, yva[:, 0], epochs=args.epochs,
                                           patience=args.epochs, valid_loss=_common.mse_loss)
        for (K, a), (name, est) in zip(grid(args), ests.items()):
            mse = float(np.mean((est.predict(Xte) - yte[:, 0]) ** 2))
            rows.append(interleaved_row(args, "adding", seed, K, a, round(mse, 5), record[name]))
            print(f"  {name:<11} test MSE {mse:.4f}", flush=True)
    return rows


def run_etth1(args, device):
    from qlts.datasets import load_ett
    from qlts.forecasting import QLLSTMForecaster
    from qlts.metrics import mean_absolute_error, mean_squared_error

    n_train, n_val, n_test = ETT_TRAIN, ETT_VAL, ETT_TEST
    if args.ett_rows:
        scale = args.ett_rows / (ETT_TRAIN + ETT_VAL + ETT_TEST)
        n_train, n_val, n_test = (int(v * scale) for v in (ETT_TRAIN, ETT_VAL, ETT_TEST))
    frame = load_ett("ETTh1").iloc[:n_train + n_val + n_test]
    mean, std = frame.iloc[:n_train].mean(), frame.iloc[:n_train].std()
    data = (frame - mean) / std
    L = H = 96
    cutoffs = list(range(n_train + n_val, len(data) - H + 1, args.ett_stride))
    truth = np.stack([data.iloc[c:c + H].to_numpy() for c in cutoffs])
    naive = np.stack([np.repeat(data.iloc[c - 1:c].to_numpy(), H, axis=0) for c in cutoffs])
    naive_mse = mean_squared_error(truth, naive)
    rows = []
    for seed in args.seeds:
        print(f"etth1 seed {seed}: fit on {n_train} + {n_val} (validation tail) rows, {len(cutoffs)} test "
              f"forecasts; repeat-last MSE {naive_mse:.4f}", flush=True)
        for K, a in grid(args):
            start = time.perf_counter()
            model = QLLSTMForecaster(L, H, segment_length=args.ett_segment, hidden_size=args.ett_hidden,
                                     cell="qllstm", skip=K, alpha=a, skip_mode="convex",
                                     max_epochs=args.ett_epochs, validation_fraction=n_val / (n_train + n_val),
                                     device=device, random_state=seed, verbose=0)
            model.fit(data.iloc[:n_train + n_val])
            pred = np.stack([model.predict(H, y=data.iloc[:c]).to_numpy() for c in cutoffs])
            mse, mae = mean_squared_error(truth, pred), mean_absolute_error(truth, pred)
            rows.append(dict(task="etth1", settings=task_settings(args, "etth1"), seed=seed, skip=K, alpha=a,
                             value=round(mse, 5), mae=round(mae, 5), baseline_mse=round(naive_mse, 5),
                             recurrent_steps=recurrent_steps(args), epochs_run=len(model.history_),
                             fit_s=round(time.perf_counter() - start, 1)))
            print(f"  {label(K, a):<11} test MSE {mse:.4f}  MAE {mae:.4f}", flush=True)
    return rows


# --- analysis ------------------------------------------------------------------------------
def tasks_in(rows):
    return [t for t in TASKS if any(r["task"] == t for r in rows)]


def summarise(rows):
    """Per (task, K, alpha): mean, std and n over seeds."""
    out = []
    for task in tasks_in(rows):
        for K, a in sorted({(r["skip"], r["alpha"]) for r in rows if r["task"] == task}):
            vals = [r["value"] for r in rows if r["task"] == task and r["skip"] == K and r["alpha"] == a]
            if vals:
                out.append(dict(task=task, skip=K, alpha=a, mean=statistics.mean(vals),
                                std=statistics.stdev(vals) if len(vals) > 1 else float("nan"), n=len(vals)))
    return out


def verdict(summary, task):
    """Best configuration of a task and whether it beats the default beyond the seed spread."""
    higher = METRIC[task][1]
    cells = [s for s in summary if s["task"] == task]
    if not cells:
        return None
    best = max(cells, key=lambda s: s["mean"] if higher else -s["mean"])
    default = next((s for s in cells if (s["skip"], s["alpha"]) == DEFAULT), None)
    if default is None or best is default:
        return best, default, False
    spread = max(best["std"], default["std"])
    gap = (best["mean"] - default["mean"]) if higher else (default["mean"] - best["mean"])
    clear = best["n"] > 1 and default["n"] > 1 and np.isfinite(spread) and gap > spread
    return best, default, clear


def clearly_worse(summary, task):
    """Configurations whose mean trails the default's by more than the larger seed std."""
    higher = METRIC[task][1]
    cells = [s for s in summary if s["task"] == task]
    default = next((s for s in cells if (s["skip"], s["alpha"]) == DEFAULT), None)
    if default is None or default["n"] < 2:
        return []
    out = []
    for s in cells:
        gap = (default["mean"] - s["mean"]) if higher else (s["mean"] - default["mean"])
        if s["n"] > 1 and gap > max(s["std"], default["std"]):
            out.append(label(s["skip"], s["alpha"]))
    return out


def report(rows, summary, env, seconds):
    fmt = {"imdb": "{:.2f}", "adding": "{:.4f}", "etth1": "{:.4f}"}
    commands = list(dict.fromkeys(r["command"] for r in rows))
    lines = ["# Ablation: skip distance K and skip weight alpha (convex mode)", "",
             "Command: " + "; ".join(f"`{c}`" for c in commands) + "  ", f"Environment: {env}  ",
             (f"Wall time: {seconds / 60:.1f} min." if seconds else "Wall time: see the runs (joined with "
              "--add-runs --report-only)."), "", "What ran (exactly):", ""]
    by_task = {t: [r for r in rows if r["task"] == t] for t in tasks_in(rows)}
    # cells of one task that ran different numbers of seeds show their n
    uneven = {t: len({c["n"] for c in summary if c["task"] == t}) > 1 for t in by_task}
    skips = {t: sorted({r["skip"] for r in mine}) for t, mine in by_task.items()}
    alphas = {t: sorted({r["alpha"] for r in mine}) for t, mine in by_task.items()}
    for task, mine in by_task.items():
        lines.append(f"- {task}: {mine[0]['settings']}; seeds {sorted({r['seed'] for r in mine})}"
                     + (" (not every cell ran every seed: n in the table)" if uneven[task] else "")
                     + f"; grid K {skips[task]} x alpha {alphas[task]}.")
    lines.append("")
    recommendations = []
    for task, mine in by_task.items():
        name, higher = METRIC[task]
        header = ["K \\ alpha", *[f"{a:g}" for a in alphas[task]]]
        body = []
        for K in skips[task]:
            cells = []
            for a in alphas[task]:
                vals = [r["value"] for r in mine if r["skip"] == K and r["alpha"] == a]
                cells.append(_common.mean_std(vals, fmt[task]) + (f" (n={len(vals)})" if uneven[task] and vals else ""))
            body.append([f"K={K}", *cells])
        extra = ""
        if task == "etth1":
            base, steps = mine[0]["baseline_mse"], mine[0]["recurrent_steps"]
            extra = (f" Repeat-the-last-value MSE: {base:.4f}. The recurrence runs {steps} steps here, so with "
                     f"K >= {steps} the skip term only ever reads h_0 = 0 and alpha just scales the update by "
                     f"(1 - alpha).")
        if task == "adding":
            extra = " Predicting the mean scores 0.1667."
        lines += [f"## {task}: {name} ({'higher' if higher else 'lower'} is better), mean ± std over seeds", "",
                  _common.md_table(header, body), "", extra.strip(), ""]
        cells = [c for c in summary if c["task"] == task]
        if task == "adding" and cells and min(c["mean"] for c in cells) > 1 / 6 - 0.01:
            lines += ["**No configuration learned the task in this budget** (every mean is within 0.01 of the "
                      "0.1667 of predicting the mean), so this run says nothing about K and alpha.", ""]
        worse = clearly_worse(summary, task)
        if worse:
            lines += ["Worse than the default by more than the seed spread: " + ", ".join(worse) + ".", ""]
            recommendations.append(f"- {task}: avoid {', '.join(worse)} (worse than the default beyond the seed "
                                   "spread).")
        v = verdict(summary, task)
        if v:
            best, default, clear = v
            d = f"{fmt[task].format(default['mean'])}" if default else "not run"
            recommendations.append(
                f"- {task}: best K={best['skip']}, alpha={best['alpha']:g} ({fmt[task].format(best['mean'])}); "
                f"default K={DEFAULT[0]}, alpha={DEFAULT[1]:g}: {d}. "
                + ("**Better beyond the seed spread.**" if clear else "Not better beyond the seed spread "
                   "(or too few seeds to tell)."))
    clear_tasks = [t for t in by_task if verdict(summary, t) and verdict(summary, t)[2]]
    lines += ["## Recommendation", "", *recommendations, "",
              ("The evidence is clear on " + ", ".join(clear_tasks) + "; check that the same setting wins on the "
               "other tasks before changing the default." if clear_tasks else
               f"**Keep the defaults (K={DEFAULT[0]}, alpha={DEFAULT[1]:g}).** No configuration beat them beyond "
               "the seed spread in what ran; the rule in DESIGN §1 is to change a default only on clear evidence.")]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    device = _common.setup(args)
    start = time.perf_counter()
    command = _common.command_line("ablation.py", argv)
    env = _common.environment(device)  # at the start: the commit the run's code came from
    runners = {"imdb": run_imdb, "adding": run_adding, "etth1": run_etth1}
    rows = read_runs(args.add_runs)
    tasks = [] if args.report_only else args.tasks
    # refuse a clash before hours of training, not after
    check_joinable(rows + [dict(task=t, settings=task_settings(args, t), seed=seed, skip=K, alpha=a)
                           for t in tasks for seed in args.seeds for K, a in grid(args)])
    for task in tasks:
        rows += [{**r, "command": command} for r in runners[task](args, device)]
    seconds = 0 if args.report_only else time.perf_counter() - start
    text = report(rows, summarise(rows), env, seconds)
    _common.write_results(args.out, "ablation", text, rows)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Length bucketing (the estimators' ``bucket_by_length=True``): how much shorter an epoch is, and
whether accuracy moves.

Data: IMDB documents and tokenisation as in ``paper_table.py`` (the same fixed random subset for
every model and seed, a vocabulary of the most frequent training tokens, the first ``--max-len``
tokens, early stopping on the last ``--valid-fraction`` of the training documents). Every cell in
``--models`` is trained twice per seed, on plain shuffled batches and on length-bucketed ones,
with everything else equal; all of them train one epoch each in turn (round robin), so each
bucketed epoch is timed against the plain epoch of the same cell in the same round.

Reported per cell and mode: steps per batch (the mean over one epoch's batches of the longest row,
which is what a batch costs), the median epoch time, the median per-round ratio bucketed / plain,
and test accuracy (mean ± std over seeds, best epoch's weights).

Default: 5,000 training and 5,000 test documents at 1,000 tokens, embedding and hidden 128,
pooling max, Adam lr 0.002, batch 64, at most 3 epochs, patience 2, seeds 0-2, LSTM and QL-LSTM.
    python benchmarks/bucketing.py
CI (800 documents at 128 tokens, a small model, 1 epoch, 1 seed):
    python benchmarks/bucketing.py --quick --out /tmp/results
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import paper_table  # noqa: E402

from qlts.estimators import QLLSTMClassifier  # noqa: E402
from qlts.estimators._data import LengthBucketSampler  # noqa: E402
from qlts.utils import seed_everything  # noqa: E402

MODES = ("plain", "bucketed")
QUICK = dict(train_docs=400, test_docs=400, max_len=[128], vocab=5000, embedding_dim=32, hidden_size=32, epochs=1,
             seeds=[0])


def parse_args(argv):
    p = _common.base_parser(__doc__)
    p.add_argument("--train-docs", type=int, default=5000, help="training documents, validation tail included")
    p.add_argument("--test-docs", type=int, default=5000)
    p.add_argument("--max-len", type=int, nargs=1, default=[1000], help="document length in tokens")
    p.add_argument("--vocab", type=int, default=20000)
    p.add_argument("--embedding-dim", type=int, default=128)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--models", nargs="+", default=["lstm", "qllstm"], choices=paper_table.MODELS)
    return _common.parse_model_args(p, argv, QUICK)


def steps_per_batch(lengths, batch_size, bucketed, seed=0):
    """The mean over one epoch's batches of the batch's longest row."""
    torch.manual_seed(seed)
    if bucketed:
        batches = list(LengthBucketSampler(lengths, batch_size))
    else:
        order = torch.randperm(len(lengths)).numpy()
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return float(np.mean([lengths[b].max() for b in batches]))


def make_estimator(cell, args, vocab_size, seed, device, bucketed):
    return QLLSTMClassifier(cell=cell, hidden_size=args.hidden_size, vocab_size=vocab_size,
                            embedding_dim=args.embedding_dim, pooling="max", lr=args.lr, max_epochs=1,
                            batch_size=args.batch_size, device=device, random_state=seed,
                            iterator_train__shuffle=True, bucket_by_length=bucketed)


def main(argv=None):
    args = parse_args(argv)
    device = _common.setup(args)
    start = time.perf_counter()
    data, vocab_size = paper_table.load_data(args)
    Xtr, ytr, Xva, yva, Xte, yte = data[args.max_len[0]]
    lengths = np.maximum((Xtr != 0).sum(axis=1), 1)  # id 0 is padding only (unknown words are 1)
    steps = {mode: steps_per_batch(lengths, args.batch_size, mode == "bucketed") for mode in MODES}
    print(f"{len(Xtr)} training documents at {args.max_len[0]} tokens: mean length {lengths.mean():.0f}; "
          f"steps per batch plain {steps['plain']:.0f}, bucketed {steps['bucketed']:.0f}")
    runs = []
    for seed in args.seeds:
        seed_everything(seed)
        estimators = {(cell, mode): make_estimator(cell, args, vocab_size, seed, device, mode == "bucketed")
                      for cell in args.models for mode in MODES}
        named = {f"{cell} {mode}": est for (cell, mode), est in estimators.items()}
        record = _common.train_interleaved(named, Xtr, ytr, Xva, yva, epochs=args.epochs, patience=args.patience,
                                           valid_loss=_common.log_loss)
        for (cell, mode), est in estimators.items():
            rec, plain = record[f"{cell} {mode}"], record[f"{cell} plain"]
            ratios = [b / a for a, b in zip(plain["epoch_seconds"], rec["epoch_seconds"])]
            runs.append({"seed": seed, "model": cell, "mode": mode, "epoch_seconds": rec["epoch_seconds"],
                         "ratio_to_plain": ratios, "best_epoch": rec["best_epoch"],
                         "test_accuracy": 100.0 * float(np.mean(est.predict(Xte) == yte))})
            print(f"seed {seed} {cell:<7} {mode:<9} test accuracy {runs[-1]['test_accuracy']:.2f}%  "
                  f"epochs {', '.join(f'{s:.1f}' for s in rec['epoch_seconds'])} s")
    rows = summarise(runs, steps, args)
    markdown = report(rows, args, device, time.perf_counter() - start)
    md_path, _ = _common.write_results(args.out, "bucketing", markdown, rows)
    print(f"wrote {md_path}")


def summarise(runs, steps, args):
    rows = []
    for cell in args.models:
        for mode in MODES:
            mine = [r for r in runs if r["model"] == cell and r["mode"] == mode]
            acc = [r["test_accuracy"] for r in mine]
            rows.append({
                "model": paper_table.LABELS[cell], "mode": mode, "max_len": args.max_len[0],
                "steps_per_batch": round(steps[mode], 1),
                "median_epoch_s": statistics.median(s for r in mine for s in r["epoch_seconds"]),
                "epoch_time_ratio_to_plain": statistics.median(x for r in mine for x in r["ratio_to_plain"]),
                "accuracy_mean": statistics.mean(acc), "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "accuracy": _common.mean_std(acc), "seeds": len(mine),
                "accuracy_by_seed": " ".join(f"{a:.2f}" for a in acc),
                "best_epochs": " ".join(str(r["best_epoch"]) for r in mine),
            })
    return rows


def report(rows, args, device, wall):
    table = _common.md_table(
        ["model", "batches", "steps per batch", "s / epoch", "epoch time / plain", "test accuracy %", "by seed",
         "best epochs"],
        [[r["model"], r["mode"], f"{r['steps_per_batch']:.0f}", f"{r['median_epoch_s']:.1f}",
          f"{r['epoch_time_ratio_to_plain']:.3f}", r["accuracy"], r["accuracy_by_seed"], r["best_epochs"]]
         for r in rows])
    return f"""# Length bucketing: epoch time and accuracy

Command: `{_common.command_line("bucketing.py", None)}`  
Environment: {_common.environment(device)}  
Settings: IMDB, {args.train_docs:,} training documents (the last {args.valid_fraction:.0%} held out for early
stopping) and {args.test_docs:,} test documents, the first {args.max_len[0]} tokens, vocabulary {args.vocab:,};
embedding {args.embedding_dim}, hidden {args.hidden_size}, pooling max; Adam lr {args.lr}, batch {args.batch_size},
at most {args.epochs} epoch(s), patience {args.patience}; seeds {args.seeds}. Wall time {wall / 60:.1f} min.

Each cell trains on plain shuffled batches and on length-bucketed ones (`bucket_by_length=True`), all
models one epoch each in turn. Steps per batch: the mean over one epoch's batches of the longest row
(each batch runs that many steps). Epoch time / plain: the median over rounds and seeds of the bucketed
epoch divided by the same cell's plain epoch in the same round.

{table}
"""


if __name__ == "__main__":
    main()

"""Pick the demo's sequence length: train QL-LSTM and LSTM on the adding problem at several T
with the demo's settings, and report test MSE and training time for each.

The demo uses the longest T at which both models clearly beat the 0.167 baseline (test MSE
<= 0.05, under a third of it) for every seed while both fits together take under 100 s on this
machine (the demo must finish within 2 minutes on 2 cores).

    python benchmarks/adding_demo.py [--quick] [--out DIR]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

import torch

from qlts.demo import BASELINE_MSE, train_adding
from qlts.nn import qllstm_parameter_count, lstm_parameter_count
from qlts.utils import atomic_write

CLEAR_MSE = 0.05
BUDGET_S = 100.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T in {50, 100}, one seed, 60 steps")
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.lengths, args.seeds, args.steps = [50, 100], [0], 60
    rows = []
    for T in args.lengths:
        for seed in args.seeds:
            for cell in ("qllstm", "lstm"):  # interleaved: both cells at every (T, seed)
                _, _, mse, seconds = train_adding(cell, T, hidden_size=args.hidden_size, steps=args.steps, seed=seed)
                rows.append((T, seed, cell, mse, seconds))
                print(f"T={T:4d} seed={seed} {cell:7s} test MSE {mse:.4f}  {seconds:6.1f} s", flush=True)
    summary, chosen = [], None
    for T in args.lengths:
        worst = {c: max(r[3] for r in rows if r[0] == T and r[2] == c) for c in ("qllstm", "lstm")}
        secs = {c: statistics.median(r[4] for r in rows if r[0] == T and r[2] == c) for c in ("qllstm", "lstm")}
        ok = all(v <= CLEAR_MSE for v in worst.values()) and sum(secs.values()) <= BUDGET_S
        chosen = T if ok else chosen
        summary.append((T, worst["qllstm"], worst["lstm"], secs["qllstm"], secs["lstm"], ok))
    command = "python benchmarks/adding_demo.py " + " ".join(argv if argv is not None else sys.argv[1:])
    H = args.hidden_size
    lines = [
        "# Adding problem: choosing the demo's T", "",
        f"Command: `{command.strip()}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads  ",
        f"Settings: hidden_size={H}, {args.steps} Adam steps (lr 1e-2, batch 64), seeds {args.seeds}; "
        f"recurrent params QL-LSTM {qllstm_parameter_count(2, H)}, LSTM {lstm_parameter_count(2, H)}.  ",
        f"Baseline (predict the mean): MSE {BASELINE_MSE:.3f}. 'Clearly beats' = worst seed <= {CLEAR_MSE}; "
        f"budget: both fits <= {BUDGET_S:.0f} s.", "",
        "| T | QL-LSTM worst MSE | LSTM worst MSE | QL-LSTM s | LSTM s | within criteria |",
        "|---|---|---|---|---|---|",
        *[f"| {T} | {q:.4f} | {l:.4f} | {qs:.1f} | {ls:.1f} | {'yes' if ok else 'no'} |"
          for T, q, l, qs, ls, ok in summary],
        "", f"Longest T within the criteria: **{chosen}**" if chosen else "No T met the criteria.", "",
        "## Every run", "", "| T | seed | cell | test MSE | seconds |", "|---|---|---|---|---|",
        *[f"| {T} | {s} | {c} | {m:.4f} | {sec:.1f} |" for T, s, c, m, sec in rows],
    ]
    os.makedirs(args.out, exist_ok=True)
    with atomic_write(os.path.join(args.out, "adding_demo.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines[9:9 + len(summary) + 3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

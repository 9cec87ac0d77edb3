"""Helpers shared by the benchmark scripts: arguments, thread discipline, the environment line,
interleaved epoch-by-epoch training with early stopping, and result files written atomically
with the command line that produced them."""
from __future__ import annotations

import argparse
import copy
import csv
import io
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from qlts.utils import atomic_write, resolve_device

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def base_parser(description):
    """An ArgumentParser with the options every benchmark has: --quick, --out, --seeds, --threads, --device."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the small CI configuration (see the script docstring)")
    parser.add_argument("--out", default=RESULTS_DIR,
                        help="folder for the .md/.csv/.png results (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="random seeds")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS threads (default 1; see setup())")
    parser.add_argument("--device", default="auto", help='"auto" (CUDA when present), "cpu", "cuda"')
    return parser


def parse_model_args(parser, argv, quick_overrides):
    """Parse, apply the --quick overrides, default to seeds 0-2, and always include the LSTM (the ratios' baseline)."""
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in quick_overrides.items():
            setattr(args, key, value)
    args.seeds = args.seeds or [0, 1, 2]
    if "lstm" not in args.models:
        args.models = ["lstm", *args.models]
    return args


_BLAS_LIMIT = None


def setup(args):
    """Apply the thread limit and make the output folder; returns the resolved device.

    One thread by default: a recurrence synchronises its threads at every time step, and on a
    shared, oversubscribed 2-core machine 2 OpenMP threads made an LSTM step 10-40x slower than
    1 thread (they spin at each barrier waiting for a core). Use more on a dedicated machine.
    """
    global _BLAS_LIMIT
    from threadpoolctl import threadpool_limits

    import numba

    torch.set_num_threads(args.threads)
    # numba's parallel loops (windowing) would otherwise reset the shared OpenMP thread count
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    _BLAS_LIMIT = threadpool_limits(limits=args.threads)  # numpy/numba BLAS too; kept for the process
    os.makedirs(args.out, exist_ok=True)
    return resolve_device(args.device)


def command_line(script, argv):
    """The exact command that reproduces this run, relative to the repository root."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"benchmarks/{script}", *map(shlex.quote, map(str, argv))])


def environment(device):
    """One line describing where the numbers were measured."""
    from qlts.kernels import get_scan

    dev = torch.device(device)
    try:
        scan = get_scan("auto", dev, torch.float32)
        backend = f"{scan.__module__}.{scan.__name__}"
    except Exception as exc:  # a missing backend must not stop the benchmark; name it instead
        backend = f"unavailable ({type(exc).__name__})"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    gpu = f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else ""
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; git {commit or '?'} (plus uncommitted work "
            f"where present); {platform.machine()}, {os.cpu_count()} CPU cores{gpu}; device {device}; torch "
            f"{torch.__version__}, {torch.get_num_threads()} thread(s); QL-LSTM scan for 'auto': {backend}")


NOTES_MARKER = "<!-- notes: text below this line is kept when the tables are regenerated -->"


def write_markdown(path, text):
    """Write a generated results page atomically. Hand-written notes below NOTES_MARKER in the
    file already there are kept below the new text, so a rerun never loses the analysis."""
    notes = "\n"
    if os.path.exists(path):
        with open(path) as fh:
            old = fh.read()
        if NOTES_MARKER in old:
            notes = old[old.index(NOTES_MARKER) + len(NOTES_MARKER):]
    with atomic_write(path, "w") as fh:
        fh.write(text.rstrip() + "\n\n" + NOTES_MARKER + notes)


def write_results(out_dir, name, markdown, rows):
    """Write ``<name>.md`` (the text as given, keeping hand-written notes: see write_markdown;
    skipped when None) and ``<name>.csv`` (rows: a list of dicts) into ``out_dir``, each
    atomically. Returns the two paths."""
    md_path, csv_path = os.path.join(out_dir, f"{name}.md"), os.path.join(out_dir, f"{name}.csv")
    if markdown is not None:
        write_markdown(md_path, markdown)
    buf = io.StringIO()
    fields = list(rows[0]) if rows else []
    for row in rows:  # keep every key, in first-seen order
        fields += [k for k in row if k not in fields]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(csv_path, "w") as fh:
        fh.write(buf.getvalue())
    return md_path, csv_path


def read_rows(path, text_fields, int_fields):
    """The rows of a results CSV written by write_results, typed back: text_fields stay str,
    int_fields become int, the rest float; empty cells are dropped."""
    with open(path, newline="") as fh:
        return [{k: v if k in text_fields else int(v) if k in int_fields else float(v)
                 for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def md_table(header, rows):
    """A GitHub markdown table from a header list and rows of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mean_std(values, fmt="{:.2f}"):
    """"m ± s" over seeds (s is the sample std; just "m" for one value)."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.replace('+', '').format(statistics.stdev(values))}"


def train_interleaved(estimators, X_train, y_train, X_valid, y_valid, *, epochs, patience, valid_loss, log=print):
    """Train several skorch-based estimators one epoch at a time, round robin, so that every
    model's epoch is timed under the same machine load (the order alternates each epoch).

    Early stopping: after each epoch ``valid_loss(est, X_valid, y_valid)`` is computed (lower is
    better); a model stops after ``patience`` epochs without improvement, and its best epoch's
    weights are restored at the end. The validation rows are never trained on.

    Returns {name: {"epoch_seconds": [...], "valid_loss": [...], "best_epoch": int (1-based)}}.
    Epoch seconds are skorch's own training time per epoch (``history[-1]["dur"]``).
    """
    names = list(estimators)
    warm_up({est.cell for est in estimators.values()}, estimators[names[0]].device)
    record = {n: {"epoch_seconds": [], "valid_loss": [], "best_epoch": 0, "best": np.inf, "state": None,
                  "misses": 0} for n in names}
    for epoch in range(1, epochs + 1):
        order = names if epoch % 2 else names[::-1]
        for name in order:
            rec, est = record[name], estimators[name]
            if rec["misses"] >= patience:
                continue
            est.set_params(max_epochs=1)
            est.partial_fit(X_train, y_train)
            rec["epoch_seconds"].append(float(est.history[-1]["dur"]))
            loss = float(valid_loss(est, X_valid, y_valid))
            rec["valid_loss"].append(loss)
            if loss < rec["best"]:
                rec.update(best=loss, best_epoch=epoch, misses=0, state=copy.deepcopy(est.module_.state_dict()))
            else:
                rec["misses"] += 1
            log(f"  epoch {epoch} {name:<8} {rec['epoch_seconds'][-1]:8.1f} s  valid loss {loss:.4f}"
                + ("  (stops: no improvement)" if rec["misses"] >= patience else ""))
    for name in names:
        rec = record[name]
        if rec["state"] is not None:
            estimators[name].module_.load_state_dict(rec.pop("state"))
        for key in ("best", "misses", "state"):
            rec.pop(key, None)
    return record


def warm_up(cells, device):
    """One tiny forward and backward pass per cell, with and without lengths, so that JIT
    compilation (numba, triton) happens here and not inside the first timed epoch."""
    from qlts.nn import SequenceModel

    for cell in sorted(cells):
        model = SequenceModel(3, 2, 8, cell=cell).to(device)
        x = torch.randn(4, 6, 3, device=device)
        for lengths in (None, torch.tensor([6, 5, 3, 2])):
            model(x, lengths).sum().backward()


def epoch_time_ratios(record, baseline):
    """Each model's median over epochs of (its epoch time / the baseline's epoch time in the same
    epoch). Only epochs both trained are paired."""
    base = record[baseline]["epoch_seconds"]
    out = {}
    for name, rec in record.items():
        pairs = [a / b for a, b in zip(rec["epoch_seconds"], base) if b > 0]
        out[name] = statistics.median(pairs) if pairs else float("nan")
    return out


def log_loss(est, X, y):
    """Mean cross-entropy of a fitted classifier (labels in ``est.classes_``)."""
    proba = np.clip(est.predict_proba(X), 1e-12, 1.0)
    index = np.searchsorted(est.classes_, y)
    return float(-np.mean(np.log(proba[np.arange(len(y)), index])))


def mse_loss(est, X, y):
    return float(np.mean((est.predict(X) - np.asarray(y, dtype=np.float64)) ** 2))

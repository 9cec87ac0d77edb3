"""Kill/resume trials and corrupted-file cases (issue 9, part A).

Kill/resume: for each model (classifier: 2 layers, dropout, early stopping; regressor: SGD with
momentum, 2 outputs; forecaster: lr decay, early stopping), ``--trials`` times: a fit with
``checkpoint_dir`` runs in a child process, is killed with SIGKILL at a random point (a uniform
fraction in [0.05, 1.6) of an epoch after the epoch-2 checkpoint, so mid-epoch 3 or 4 of 4, or
while a checkpoint is being written), is rerun with the same arguments, and is compared with an
uninterrupted run (torch.equal on every parameter, np.array_equal on the predictions). The
trial itself is tests/_kill_resume.py, the one the CI test runs once.

Corruption: a saved classifier, a saved forecaster and a training checkpoint are
- truncated at ``--cuts`` offsets spread over the file,
- damaged by ``--flips`` random XORs of 1-3 bytes,
- replaced by a pickle whose ``__reduce__`` opens a marker file for writing (plain pickle and a
  torch.save archive),
- re-saved with format_version + 1, and loaded as another kind of file.
Each load must raise a ValueError naming the path, or (for bytes the format never reads) load a
model whose predictions are identical; anything else is a failure and is listed.

Usage: python benchmarks/reliability_resume.py [--quick] [--out DIR] [--trials N] [--cuts N] [--flips N]
(--quick: 1 trial per model, 10 cuts, 20 flips).
"""
from __future__ import annotations

import argparse
import builtins
import os
import pickle
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from _common import RESULTS_DIR, command_line, environment, md_table, write_results

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from _kill_resume import MAX_EPOCHS, trial  # noqa: E402  (the same trial the CI test runs)

from qlts import QLLSTMClassifier, QLLSTMForecaster  # noqa: E402
from qlts.estimators import _persist  # noqa: E402

KINDS = ("classifier", "regressor", "forecaster")


class WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def kill_trials(n, seed, log):
    rows = []
    rng = np.random.default_rng(seed)
    for kind in KINDS:
        for i in range(n):
            fraction = float(rng.uniform(0.05, 1.6))
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                result = trial(tmp, kind, fraction)
            row = {"kind": kind, "trial": i, "kill_fraction": round(fraction, 3),
                   "seconds": round(time.perf_counter() - start, 1)}
            row.update(result or {"ended_before_kill": True})
            log(row)
            rows.append(row)
    return rows


def saved_files(root):
    """A saved classifier, a saved forecaster and a checkpoint, with what each load must give back."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8, 2)).astype("float32")
    clf = QLLSTMClassifier(hidden_size=8, max_epochs=2, random_state=0,
                           checkpoint_dir=os.path.join(root, "ckpt")).fit(X, X[:, 0, 0] > 0)
    clf.save(os.path.join(root, "clf.qlts"))
    t = np.arange(200.0)
    y = pd.Series(np.sin(t / 6), index=pd.date_range("2022-03-01", periods=t.size, freq="h"))
    fc = QLLSTMForecaster(lookback=24, horizon=6, segment_length=6, hidden_size=8, max_epochs=2,
                          random_state=0, verbose=0).fit(y)
    fc.save(os.path.join(root, "fc.qlts"))
    (ckpt,) = os.listdir(os.path.join(root, "ckpt"))
    loaders = {
        "estimator": (os.path.join(root, "clf.qlts"), lambda p: QLLSTMClassifier.load(p).predict_proba(X)),
        "forecaster": (os.path.join(root, "fc.qlts"), lambda p: QLLSTMForecaster.load(p).predict().to_numpy()),
        "checkpoint": (os.path.join(root, "ckpt", ckpt),
                       lambda p: _persist._digest(_persist.read_payload(p, "qlts.checkpoint", 1, "checkpoint"))),
    }
    return {name: (path, load, load(path)) for name, (path, load) in loaders.items()}


def outcome(load, path, reference):
    """What loading ``path`` gave: a ValueError (by reason), an identical model, or a failure."""
    try:
        got = load(path)
    except ValueError as exc:
        text = str(exc)
        if path not in text:
            return "FAIL: ValueError without the path"
        if "checksum" in text:
            return "ValueError: checksum"
        if "format version" in text:
            return "ValueError: newer version"
        if "weights-only loading cannot read" in text:
            return "ValueError: unreadable"
        return "ValueError: other format/class"
    except Exception as exc:  # anything else is a leak of internals
        return f"FAIL: {type(exc).__name__}"
    same = got == reference if isinstance(got, str) else np.array_equal(got, reference)
    return "loaded, identical" if same else "FAIL: loaded, different"


def corruption_cases(n_cuts, n_flips, seed, root):
    rng = np.random.default_rng(seed)
    files = saved_files(root)
    counts = []
    for name, (path, load, reference) in files.items():
        data = open(path, "rb").read()
        cases = {"truncated": [data[:int(c)] for c in np.linspace(0, len(data) - 1, n_cuts)]}
        flips = []
        for _ in range(n_flips):
            damaged = bytearray(data)
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
                damaged[pos] ^= int(rng.integers(1, 256))
            flips.append(bytes(damaged))
        cases["bytes flipped"] = flips
        payload = torch.load(path, weights_only=True)
        payload["format_version"] += 1
        newer = os.path.join(root, "newer.bin")
        torch.save(payload, newer)
        cases["newer format_version"] = [open(newer, "rb").read()]
        marker = os.path.join(root, "pwned")
        evil = []
        for dump in (pickle.dump, torch.save):
            evil_path = os.path.join(root, "evil.bin")
            with open(evil_path, "wb") as fh:
                dump({"format": "qlts.estimator", "x": WritesMarker(marker)}, fh)
            evil.append(open(evil_path, "rb").read())
        cases["code-running pickle"] = evil
        other = {"estimator": files["forecaster"][0], "forecaster": files["estimator"][0],
                 "checkpoint": files["estimator"][0]}[name]
        cases["another kind of file"] = [open(other, "rb").read()]
        for case, blobs in cases.items():
            tally = {}
            for i, blob in enumerate(blobs):
                target = os.path.join(root, f"case-{i}.bin")
                with open(target, "wb") as fh:
                    fh.write(blob)
                result = outcome(load, target, reference)
                if case == "code-running pickle" and os.path.exists(marker):
                    result = "FAIL: the pickle ran code"
                    os.unlink(marker)
                tally[result] = tally.get(result, 0) + 1
            counts.append({"file": name, "case": case, "n": len(blobs), **tally})
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 trial per model, 10 cuts, 20 flips")
    parser.add_argument("--out", default=RESULTS_DIR, help="folder for the results (default: %(default)s)")
    parser.add_argument("--trials", type=int, default=10, help="kill/resume trials per model")
    parser.add_argument("--cuts", type=int, default=100, help="truncation offsets per file")
    parser.add_argument("--flips", type=int, default=300, help="random byte-flip cases per file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.cuts, args.flips = 1, 10, 20
    os.makedirs(args.out, exist_ok=True)
    command = command_line("reliability_resume.py", argv)
    env = environment("cpu")

    trials = kill_trials(args.trials, args.seed, print)
    with tempfile.TemporaryDirectory() as root:
        corruption = corruption_cases(args.cuts, args.flips, args.seed, root)

    summary = []
    for kind in KINDS:
        rows = [r for r in trials if r["kind"] == kind]
        killed = [r for r in rows if not r.get("ended_before_kill")]
        summary.append([kind, len(rows), sum(not r["finished_before_kill"] for r in killed),
                        sum(r["finished_before_kill"] for r in killed), len(rows) - len(killed),
                        ", ".join(str(e) for e in sorted({r["checkpoint_epoch"] for r in killed})) or "-",
                        sum(r["weights_equal"] for r in killed), sum(r["predictions_equal"] for r in killed),
                        sum(r["resumed_from_checkpoint"] for r in killed), sum(r["temp_files_left"] for r in killed),
                        f"{np.median([r['seconds'] for r in rows]):.1f}"])
    outcomes = sorted({k for row in corruption for k in row if k not in ("file", "case", "n")})
    corruption_table = [[row["file"], row["case"], row["n"], *(row.get(k, 0) for k in outcomes)] for row in corruption]
    failures = [row for row in corruption if any(k.startswith("FAIL") for k in row)]
    text = "\n\n".join([
        "# Reliability: kill/resume trials and corrupted files",
        f"Command: `{command}`",
        f"Environment: {env}",
        f"## Kill/resume (SIGKILL, then rerun with the same checkpoint_dir; {MAX_EPOCHS} epochs)",
        md_table(["model", "trials", "killed mid-training", "killed after the final checkpoint", "ended before the kill",
                  "checkpoint epochs at the kills", "weights bit-identical", "predictions identical",
                  "resumed from the checkpoint", "temp files left", "median s/trial"], summary),
        "Killed mid-training: the last checkpoint was an epoch end before the last epoch, so the rerun trained "
        "the remaining epochs. Killed after the final checkpoint: training had finished (the process was "
        "predicting or saving), so the rerun returned at once with the final state.",
        "Bit-identical means torch.equal on every parameter and np.array_equal on the predictions, against an "
        "uninterrupted run with the same random_state. 'Resumed from the checkpoint' checks that the epochs before "
        "the kill were restored (their recorded durations are the killed run's), not retrained.",
        "## Corrupted and hostile files (each load: ValueError naming the path, or an identical model)",
        md_table(["file", "case", "n", *outcomes], corruption_table),
        "Failures: none." if not failures else f"Failures: {failures}",
    ])
    print(text)
    write_results(args.out, "reliability_resume", text, trials)
    write_results(args.out, "reliability_corruption", None,
                  [{"file": r["file"], "case": r["case"], "n": r["n"], **{k: r.get(k, 0) for k in outcomes}}
                   for r in corruption])
    return 0 if not failures and all(r.get("weights_equal", True) and r.get("predictions_equal", True)
                                     for r in trials) else 1


if __name__ == "__main__":
    sys.exit(main())

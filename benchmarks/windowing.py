"""Windowing benchmark: qlts.preprocessing.make_windows against numpy recipes and loop builders.

Cases (lookback 96, horizon 24, nan_policy="drop", float32 streams of 8 channels with 0.1% NaN
in short per-channel gaps), each with and without per-window normalisation (subtract each
window's last input row from X and y):
  A. stride 24 on a 10,000,000-row stream (1,000,000 rows with --quick)
  B. stride 1 on a 1,000,000-row stream (100,000 rows with --quick)

Methods:
  qlts        make_windows (numba, parallel, fused)
  np_common   sliding_window_view + NaN filter + ascontiguousarray (the common recipe)
  np_best     as_strided (n, L, F) views + prefix-sum NaN filter + fancy index on axis 0
  loop        python loop over numpy slices + np.stack (dataset __getitem__ style), on a subset
  pandas      python loop over DataFrame.iloc windows + isna filter, on a subset
The subset methods run on the first 100,000 rows (10,000 with --quick) and their time is
scaled by (candidate windows of the full stream) / (candidate windows of the subset).

Timing: all methods run interleaved in one process, ``--reps`` rounds, in a rotating order;
the table reports the median time and the median of the per-round ratios method / qlts.
Every method's output is checked equal to qlts's before timing.

Peak memory: each full-size method runs once more in its own subprocess. After imports and a
JIT warm-up the resident set (VmRSS) is read, the stream is created, the kernel's peak-RSS
counter is reset (/proc/self/clear_refs), the method runs, and its peak is VmHWM - that
baseline: everything the call holds at its peak, the input stream included. It is compared
with (returned arrays + input).

JIT: the first call's compile time is measured in a fresh process with an empty
NUMBA_CACHE_DIR, then the first call of a second fresh process that loads the cache.

Text: tokenize once + Vocabulary(20000).fit + texts_to_ids(max_len=1000) on the 25,000 IMDB training reviews
(read from $QLTS_DATA/imdb/train.jsonl.gz, default /work/shared/data), median of 3 runs.

Usage: python benchmarks/windowing.py [--quick] [--out DIR] [--reps N] [--no-memory] [--no-text]
"""
from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from qlts.utils import atomic_write

LOOKBACK, HORIZON, CHANNELS = 96, 24, 8
FULL_METHODS = ("qlts", "np_common", "np_best")
SUBSET_METHODS = ("loop", "pandas")


def make_stream(n_rows, seed=0, nan_frac=0.001, chunk=1_000_000):
    """float32 (n_rows, 8) random walk-ish sensor data with 0.1% NaN in gaps of 1-20 rows in one
    channel each. Built chunk by chunk so generation never holds more than the stream plus a chunk."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_rows, CHANNELS), dtype=np.float32)
    for s in range(0, n_rows, chunk):
        e = min(s + chunk, n_rows)
        out[s:e] = rng.standard_normal((e - s, CHANNELS), dtype=np.float32)
        out[s:e] += np.sin(np.arange(s, e, dtype=np.float32) / 50.0)[:, None]
    n_gaps = int(n_rows * CHANNELS * nan_frac / 10.5)  # gap length 1..20, mean 10.5
    starts = rng.integers(0, n_rows - 20, n_gaps)
    lengths = rng.integers(1, 21, n_gaps)
    cols = rng.integers(0, CHANNELS, n_gaps)
    for s, n, c in zip(starts, lengths, cols):
        out[s:s + n, c] = np.nan
    return out


def n_candidates(n_rows, stride):
    return (n_rows - LOOKBACK - HORIZON) // stride + 1


# ---------------------------------------------------------------- methods
def run_qlts(a, stride, norm):
    from qlts.preprocessing import make_windows
    res = make_windows(a, LOOKBACK, HORIZON, stride=stride, normalize="last" if norm else None)
    return res.X, res.y


def run_np_common(a, stride, norm):
    win = sliding_window_view(a, LOOKBACK + HORIZON, axis=0)[::stride]  # (n, F, L+H) view
    win = win.transpose(0, 2, 1)
    keep = ~np.isnan(win).any(axis=(1, 2))
    win = win[keep]
    X = np.ascontiguousarray(win[:, :LOOKBACK])
    y = np.ascontiguousarray(win[:, LOOKBACK:])
    del win
    if norm:
        last = X[:, -1:, :].copy()
        X -= last
        y -= last
    return X, y


def run_np_best(a, stride, norm):
    n = n_candidates(len(a), stride)
    bad = np.isnan(a).any(axis=1)
    csum = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(bad, out=csum[1:])
    starts = np.arange(n) * stride
    keep = np.flatnonzero(csum[starts + LOOKBACK + HORIZON] == csum[starts])
    rs, cs = a.strides
    X = as_strided(a, (n, LOOKBACK, CHANNELS), (stride * rs, rs, cs), writeable=False)[keep]
    y = as_strided(a[LOOKBACK:], (n, HORIZON, CHANNELS), (stride * rs, rs, cs), writeable=False)[keep]
    if norm:
        last = X[:, -1:, :].copy()
        X -= last
        y -= last
    return X, y


def run_loop(a, stride, norm):
    xs, ys = [], []
    for s in range(0, len(a) - LOOKBACK - HORIZON + 1, stride):
        w = a[s:s + LOOKBACK + HORIZON]
        if np.isnan(w).any():
            continue
        x, y = w[:LOOKBACK], w[LOOKBACK:]
        if norm:
            x, y = x - x[-1], y - x[-1]
        xs.append(x)
        ys.append(y)
    return np.stack(xs), np.stack(ys)


def run_pandas(df, stride, norm):
    xs, ys = [], []
    for s in range(0, len(df) - LOOKBACK - HORIZON + 1, stride):
        w = df.iloc[s:s + LOOKBACK + HORIZON]
        if w.isna().to_numpy().any():
            continue
        x, y = w.iloc[:LOOKBACK].to_numpy(), w.iloc[LOOKBACK:].to_numpy()
        if norm:
            x, y = x - x[-1], y - x[-1]
        xs.append(x)
        ys.append(y)
    return np.stack(xs), np.stack(ys)


RUNNERS = {"qlts": run_qlts, "np_common": run_np_common, "np_best": run_np_best, "loop": run_loop,
           "pandas": run_pandas}


# ---------------------------------------------------------------- timing
def time_case(case, a, stride, norm, subset_rows, reps):
    """Interleaved rounds; returns rows of the results table (without memory)."""
    sub = a[:subset_rows]
    inputs = {m: a for m in FULL_METHODS}
    inputs.update(loop=sub, pandas=pd.DataFrame(sub))
    # correctness first: everyone equals qlts on the same input
    ref = run_qlts(a, stride, norm)
    ref_sub = run_qlts(sub, stride, norm)
    for m in RUNNERS:
        if m == "qlts":
            continue
        X, y = RUNNERS[m](inputs[m], stride, norm)
        want = ref if m in FULL_METHODS else ref_sub
        np.testing.assert_array_equal(X, want[0], err_msg=m)
        np.testing.assert_array_equal(y, want[1], err_msg=m)
        del X, y
    n_windows, out_bytes = len(ref[0]), ref[0].nbytes + ref[1].nbytes
    del ref, ref_sub
    gc.collect()
    methods = list(RUNNERS)
    times = {m: [] for m in methods}
    for r in range(reps):
        order = methods[r % len(methods):] + methods[:r % len(methods)]  # rotate who goes first
        for m in order:
            if m in SUBSET_METHODS and r >= max(1, reps // 3):
                continue  # loop builders are 100x slower: fewer rounds, still interleaved
            t0 = time.perf_counter()
            out = RUNNERS[m](inputs[m], stride, norm)
            times[m].append(time.perf_counter() - t0)
            del out
            gc.collect()
    scale = n_candidates(len(a), stride) / n_candidates(subset_rows, stride)
    rows = []
    for m in methods:
        t = np.array(times[m]) * (scale if m in SUBSET_METHODS else 1.0)
        q = np.array(times["qlts"][:len(t)])
        rows.append(dict(case=case, stride=stride, normalize=norm, method=m, rows=len(inputs[m]),
                         windows=n_windows, out_MB=out_bytes / 2**20, reps=len(t), median_s=float(np.median(t)),
                         ratio_vs_qlts=float(np.median(t / q)), scaled=m in SUBSET_METHODS))
    return rows


# ---------------------------------------------------------------- memory (one subprocess per method)
def _status_bytes(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss():
    """Linux: writing 5 to clear_refs resets the peak resident set (VmHWM) to the current one,
    so the peak that follows belongs to the measured call, not to imports or set-up."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def memory_child(method, n_rows, stride, norm):
    run_qlts(make_stream(2000, seed=1), stride, norm)  # load the JIT cache before the baseline
    gc.collect()
    base = _status_bytes("VmRSS")
    a = make_stream(n_rows)
    reset_peak_rss()  # the stream's own generation transients are not the method's
    X, y = RUNNERS[method](a, stride, norm)
    peak = _status_bytes("VmHWM")
    print(json.dumps(dict(peak_extra=peak - base, out=X.nbytes + y.nbytes, inp=a.nbytes)))


def measure_memory(method, n_rows, stride, norm):
    cmd = [sys.executable, __file__, "--_memory-child", method, str(n_rows), str(stride), str(int(norm))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------- JIT compile time
def jit_child():
    t0 = time.perf_counter()
    from qlts.preprocessing import make_windows
    t1 = time.perf_counter()
    a = make_stream(5000, seed=2)
    t2 = time.perf_counter()
    make_windows(a, LOOKBACK, HORIZON, stride=24)
    t3 = time.perf_counter()
    make_windows(a, LOOKBACK, HORIZON, stride=24, normalize="last")
    t4 = time.perf_counter()
    make_windows(a, LOOKBACK, HORIZON, stride=24)
    t5 = time.perf_counter()
    print(json.dumps(dict(import_s=t1 - t0, first_call_s=t3 - t2, first_normalize_call_s=t4 - t3, later_call_s=t5 - t4)))


def measure_jit():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = {}
        for label in ("cold (empty cache)", "cached"):
            out = subprocess.run([sys.executable, __file__, "--_jit-child"], env=env, check=True,
                                 capture_output=True, text=True).stdout
            runs[label] = json.loads(out.strip().splitlines()[-1])
    return runs


# ---------------------------------------------------------------- text
def time_text(reps=3):
    from qlts.preprocessing import Vocabulary, texts_to_ids, tokenize
    path = Path(os.environ.get("QLTS_DATA", "/work/shared/data")) / "imdb" / "train.jsonl.gz"
    if not path.exists():
        return None
    texts = pd.read_json(path, lines=True)["text"].tolist()
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        tokens = [tokenize(text) for text in texts]
        t1 = time.perf_counter()
        vocab = Vocabulary(20000).fit(tokens)
        t2 = time.perf_counter()
        ids, lengths = texts_to_ids(tokens, 1000, vocab=vocab)
        t3 = time.perf_counter()
        runs.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
        del tokens
    tok, fit, ids_s, total = np.median(np.array(runs), axis=0)
    return dict(n_texts=len(texts), vocab=len(vocab), max_len=1000, mean_length=float(lengths.mean()),
                tokenize_s=float(tok), fit_s=float(fit), texts_to_ids_s=float(ids_s), total_s=float(total),
                total_max_s=float(max(r[3] for r in runs)), reps=reps, load=os.getloadavg()[0])


# ---------------------------------------------------------------- report
def write_report(out_dir, rows, memory, jit, text, command, meta):
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0]) + ["peak_extra_MB", "peak_over_out_plus_input"]
    for r in rows:
        mem = memory.get((r["case"], r["normalize"], r["method"]))
        r["peak_extra_MB"] = None if mem is None else mem["peak_extra"] / 2**20
        r["peak_over_out_plus_input"] = None if mem is None else mem["peak_extra"] / (mem["out"] + mem["inp"])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out_dir / "windowing.csv", "w") as fh:
        fh.write(buf.getvalue())

    fmt = lambda v, f: "n/a" if v is None else format(v, f)
    lines = ["# Windowing benchmark (qlts.preprocessing)", "", f"Command: `{command}`", "",
             f"Machine: {meta}", "",
             "lookback 96, horizon 24, 8 float32 channels, 0.1% NaN in gaps of 1-20 rows, nan_policy='drop'. "
             "`ratio` = median over rounds of (method time / qlts time): above 1 means qlts is faster. "
             "`peak/(out+in)` = peak resident memory added by the call (stream included) over the size of the "
             "returned X, y plus the input stream. loop/pandas ran on a subset and their times are scaled "
             "to the full stream (marked *).", "",
             "| case | stride | normalise | method | rows | windows | output MB | rounds | median s | ratio | "
             "peak extra MB | peak/(out+in) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['stride']} | {'yes' if r['normalize'] else 'no'} | {r['method']}"
                     f"{'*' if r['scaled'] else ''} | {r['rows']:,} | {r['windows']:,} | {r['out_MB']:.0f} | "
                     f"{r['reps']} | {r['median_s']:.3f} | {r['ratio_vs_qlts']:.2f} | "
                     f"{fmt(r['peak_extra_MB'], '.0f')} | {fmt(r['peak_over_out_plus_input'], '.2f')} |")
    lines += ["", "## Targets", ""]
    for line in target_lines(rows):
        lines.append(f"- {line}")
    lines += ["", "## First-call JIT compile (stride 24 on a 5,000-row stream; `cache=True`)", "",
              "| process | import s | first call s | first normalise call s | later call s |", "|---|---|---|---|---|"]
    for label, j in jit.items():
        lines.append(f"| {label} | {j['import_s']:.2f} | {j['first_call_s']:.2f} | "
                     f"{j['first_normalize_call_s']:.2f} | {j['later_call_s']:.4f} |")
    lines += ["", "## Text (IMDB train, 25,000 reviews)", ""]
    if text is None:
        lines.append("IMDB not found: skipped.")
    else:
        lines += [f"tokenize each review once, Vocabulary({text['vocab'] - 2}).fit(tokens), "
                  f"texts_to_ids(tokens, max_len={text['max_len']}); median of {text['reps']} runs: tokenize "
                  f"{text['tokenize_s']:.2f} s, fit {text['fit_s']:.2f} s, texts_to_ids {text['texts_to_ids_s']:.2f} s, "
                  f"total **{text['total_s']:.2f} s** (slowest run {text['total_max_s']:.2f} s; target <= 10 s). "
                  f"Mean length {text['mean_length']:.0f} tokens; JSON loading not included; load average "
                  f"{text['load']:.1f} when it finished."]
    with atomic_write(out_dir / "windowing.md", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def target_lines(rows):
    get = {(r["case"], r["normalize"], r["method"]): r for r in rows}
    out = []
    for case in sorted({r["case"] for r in rows}):
        for norm in (False, True):
            c1 = get[(case, norm, "np_common")]["ratio_vs_qlts"]
            c2 = get[(case, norm, "np_best")]["ratio_vs_qlts"]
            need2 = 1.5 if norm else 1.0
            out.append(f"{case}, normalise={'yes' if norm else 'no'}: {c1:.2f}x vs np_common (target >= 3: "
                       f"{'met' if c1 >= 3 else 'MISSED'}), {c2:.2f}x vs np_best (target >= {need2}: "
                       f"{'met' if c2 >= need2 else 'MISSED'})")
            peak = get[(case, norm, "qlts")].get("peak_over_out_plus_input")
            if peak is not None:
                out.append(f"{case}, normalise={'yes' if norm else 'no'}: qlts peak = {peak:.2f} x (output + input) "
                           f"(target <= 1.2: {'met' if peak <= 1.2 else 'MISSED'})")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M-row stride-24 and 100k-row stride-1 streams")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="results directory")
    parser.add_argument("--reps", type=int, default=None, help="interleaved rounds (default 7, 3 with --quick)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-method peak-memory subprocesses")
    parser.add_argument("--no-text", action="store_true", help="skip the IMDB text timing")
    parser.add_argument("--_memory-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--_jit-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._memory_child:
        m, n, s, norm = args._memory_child
        return memory_child(m, int(n), int(s), bool(int(norm)))
    if args._jit_child:
        return jit_child()

    command = " ".join(["python benchmarks/windowing.py", *(argv if argv is not None else sys.argv[1:])])
    reps = args.reps or (3 if args.quick else 7)
    cases = [("A", 1_000_000 if args.quick else 10_000_000, 24), ("B", 100_000 if args.quick else 1_000_000, 1)]
    subset = 10_000 if args.quick else 100_000
    import numba
    meta = (f"{os.cpu_count()} CPUs, numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads), "
            f"numpy {np.__version__}, pandas {pd.__version__}, load average at start "
            f"{os.getloadavg()[0]:.1f} (shared machine)")
    print(meta, flush=True)
    jit = measure_jit()
    print("JIT:", jit, flush=True)
    rows, memory = [], {}
    for case, n_rows, stride in cases:
        a = make_stream(n_rows)
        for norm in (False, True):
            case_rows = time_case(case, a, stride, norm, min(subset, n_rows), reps)
            for r in case_rows:
                print(f"{case} stride={stride} norm={norm} {r['method']:>9}: {r['median_s']:.3f} s, "
                      f"ratio {r['ratio_vs_qlts']:.2f}", flush=True)
            rows += case_rows
        del a
        gc.collect()
        if not args.no_memory:
            for norm in (False, True):
                for m in FULL_METHODS:
                    memory[(case, norm, m)] = mem = measure_memory(m, n_rows, stride, norm)
                    print(f"{case} norm={norm} {m:>9}: peak extra {mem['peak_extra'] / 2**20:.0f} MB = "
                          f"{mem['peak_extra'] / (mem['out'] + mem['inp']):.2f} x (out + in)", flush=True)
    text = None if args.no_text else time_text()
    print("text:", text, flush=True)
    print(write_report(Path(args.out), rows, memory, jit, text, command, meta))


if __name__ == "__main__":
    main()

"""Scale-out benchmark: grid search serially and on a 2-worker Dask LocalCluster, and the
throughput of lazily cut windows (qlts.preprocessing.LazyWindows over a memory-mapped .npy)
against windows made in memory.

A. Grid search. ``GridSearchCV(QLLSTMClassifier(...), grid, cv)`` on synthetic sequences,
   run three ways, interleaved round by round (the order rotates):
     serial-1t   n_jobs=None, torch 1 thread
     serial-2t   n_jobs=None, torch 2 threads (the whole 2-core machine to one fit at a time)
     dask-2w     ``with joblib.parallel_backend("dask")``, LocalCluster(n_workers=2,
                 threads_per_worker=1, processes=True): two fits at a time, 1 thread each
   The cluster's start-up and the first (cold) dask search, which imports qlts and loads the
   numba cache in the workers, are timed separately; the table reports warm medians and
   the median per-round ratio to serial-1t. Every run's cv_results_ is checked equal.
   Full: 1536 sequences x 100 steps x 4 channels, 8 candidates x 2 folds, 4 epochs (a fit takes
   seconds, as a real search's would). --quick: 128 x 20 x 2, 4 candidates x 2 folds, 2 epochs.

B. Windows per second reaching the training loop (a torch DataLoader, batch 64) from
     lazy        LazyWindows over a float32 .npy opened with mmap_mode="r" (the file is read
                 from the page cache; a cold read from disk is slower)
     in-memory   make_windows once, then a TensorDataset
   in order (skorch's default) and shuffled, interleaved round by round. The one-off costs
   (LazyWindows' NaN scan; make_windows) and the bytes each holds are reported too. Then the
   training throughput: QLLSTMRegressor(hidden_size=64) fitting one pass over the same first
   windows from each dataset (12,800; 3,200 with --quick).
   Full: 2,000,000 rows x 8 channels, lookback 96, horizon 24, stride 4 (500k windows, 1.8 GB
   of windows in memory). --quick: 200,000 rows.

Usage: python benchmarks/scaling.py [--quick] [--out DIR] [--reps N] [--no-dask]
"""
from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import base_parser, command_line, environment, md_table, setup, write_results  # noqa: E402

LOOKBACK, HORIZON, CHANNELS, STRIDE, BATCH = 96, 24, 8, 4, 64


# --- A. grid search -------------------------------------------------------------------------------

def grid_search(quick):
    from sklearn.model_selection import GridSearchCV

    from qlts import QLLSTMClassifier

    n, t, f = (128, 20, 2) if quick else (1536, 100, 4)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, t, f)).astype(np.float32)
    y = (X[:, -5:, 0].sum(1) > 0).astype(int)
    grid = {"alpha": [0.0, 0.3], "hidden_size": [8, 16] if quick else [16, 32]}
    if not quick:
        grid["lr"] = [5e-3, 1e-2]
    est = QLLSTMClassifier(max_epochs=2 if quick else 4, batch_size=32, random_state=0)
    return (lambda: GridSearchCV(est, grid, cv=2)), X, y


def run_search(make, X, y, how):
    import joblib

    before = torch.get_num_threads()
    torch.set_num_threads(2 if how == "serial-2t" else 1)
    try:
        t0 = time.perf_counter()
        if how == "dask-2w":
            with joblib.parallel_backend("dask"):
                search = make().fit(X, y)
        else:
            search = make().fit(X, y)
        return time.perf_counter() - t0, search
    finally:
        torch.set_num_threads(before)


def bench_grid(quick, reps, log):
    import distributed

    make, X, y = grid_search(quick)
    n_fits = len(list(itertools.product(*make().param_grid.values()))) * make().cv
    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    startup = time.perf_counter() - t0
    try:
        cold, reference = run_search(make, X, y, "dask-2w")
        log(f"cluster start {startup:.1f} s, first (cold) dask search {cold:.1f} s")
        ref = reference.cv_results_["mean_test_score"]
        ways = ["serial-1t", "serial-2t", "dask-2w"]
        times = {w: [] for w in ways}
        for r in range(reps):
            order = ways[r % 3:] + ways[:r % 3]
            for how in order:
                seconds, search = run_search(make, X, y, how)
                if not np.array_equal(search.cv_results_["mean_test_score"], ref):
                    raise AssertionError(f"{how}: cv_results_ differ from the first dask run")
                times[how].append(seconds)
                log(f"  round {r + 1} {how:<10} {seconds:6.2f} s")
    finally:
        client.close()
        cluster.close()
    rows = []
    for how in ways:
        ratios = [a / b for a, b in zip(times[how], times["serial-1t"])]
        rows.append({"part": "grid_search", "method": how, "fits": n_fits, "median_s": statistics.median(times[how]),
                     "ratio_to_serial_1t": statistics.median(ratios), "reps": reps,
                     "cluster_start_s": startup if how == "dask-2w" else "",
                     "cold_first_s": cold if how == "dask-2w" else ""})
    return rows


# --- B. lazy windows --------------------------------------------------------------------------------

def iterate(dataset, shuffle, max_batches):
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=shuffle,
                                         generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    n = 0
    for i, (xb, yb) in enumerate(loader):
        n += len(xb)
        if i + 1 >= max_batches:
            break
    return n / (time.perf_counter() - t0)


def bench_lazy(quick, reps, log):
    from qlts.preprocessing import LazyWindows, make_windows

    n_rows = 200_000 if quick else 2_000_000
    rng = np.random.default_rng(0)
    stream = rng.normal(size=(n_rows, CHANNELS)).astype(np.float32)
    stream[rng.integers(0, n_rows, size=n_rows // 1000), rng.integers(0, CHANNELS, size=n_rows // 1000)] = np.nan
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "stream.npy")
        np.save(path, stream)
        t0 = time.perf_counter()
        w = make_windows(stream, LOOKBACK, HORIZON, stride=STRIDE, target=[0])
        make_s = time.perf_counter() - t0
        eager = torch.utils.data.TensorDataset(torch.from_numpy(w.X), torch.from_numpy(w.y.reshape(len(w.y), -1)))
        del stream
        t0 = time.perf_counter()
        lazy = LazyWindows(path, LOOKBACK, HORIZON, stride=STRIDE, target=[0])
        scan_s = time.perf_counter() - t0
        assert len(lazy) == len(eager)
        log(f"{len(lazy)} windows; make_windows {make_s:.2f} s, LazyWindows scan {scan_s:.2f} s")
        max_batches = 300 if quick else 2000
        iterate(lazy, False, 5), iterate(eager, False, 5)  # warm-up (JIT, page cache)
        rows = []
        for shuffle in (False, True):
            rates = {"lazy": [], "in-memory": []}
            for r in range(reps):
                for name in (("lazy", "in-memory") if r % 2 == 0 else ("in-memory", "lazy")):
                    rates[name].append(iterate(lazy if name == "lazy" else eager, shuffle, max_batches))
            for name in ("lazy", "in-memory"):
                ratios = [a / b for a, b in zip(rates[name], rates["in-memory"])]
                rows.append({"part": "windows", "method": name, "order": "shuffled" if shuffle else "in order",
                             "windows": len(lazy), "batches_timed": max_batches,
                             "windows_per_s": statistics.median(rates[name]),
                             "ratio_to_in_memory": statistics.median(ratios), "reps": reps,
                             "setup_s": scan_s if name == "lazy" else make_s,
                             "held_mb": (lazy._bad.nbytes if name == "lazy" else w.X.nbytes + w.y.nbytes) / 2**20})
                log(f"  {rows[-1]['order']:<9} {name:<10} {rows[-1]['windows_per_s']:>10,.0f} windows/s")
        rows += bench_training(lazy, eager, reps, quick, log)
    return rows


def bench_training(lazy, eager, reps, quick, log):
    """Windows/s of QLLSTMRegressor fitting one pass over the same leading windows from each dataset."""
    from qlts import QLLSTMRegressor

    n = BATCH * (50 if quick else 200)
    subsets = {"lazy": torch.utils.data.Subset(lazy, range(n)), "in-memory": torch.utils.data.Subset(eager, range(n))}

    def fit(name):
        t0 = time.perf_counter()
        QLLSTMRegressor(hidden_size=64, max_epochs=1, batch_size=BATCH, random_state=0).fit(subsets[name], None)
        return n / (time.perf_counter() - t0)

    fit("lazy"), fit("in-memory")  # warm-up (JIT)
    rates = {"lazy": [], "in-memory": []}
    for r in range(reps):
        for name in (("lazy", "in-memory") if r % 2 == 0 else ("in-memory", "lazy")):
            rates[name].append(fit(name))
    rows = []
    for name in ("lazy", "in-memory"):
        ratios = [a / b for a, b in zip(rates[name], rates["in-memory"])]
        rows.append({"part": "training", "method": name, "order": "in order", "windows": n,
                     "windows_per_s": statistics.median(rates[name]),
                     "ratio_to_in_memory": statistics.median(ratios), "reps": reps})
        log(f"  training  {name:<10} {rows[-1]['windows_per_s']:>10,.0f} windows/s")
    return rows


# --- report -------------------------------------------------------------------------------------------

def markdown(args, argv, env, load_start, load_end, grid_rows, lazy_rows):
    lines = ["# Scale-out: Dask grid search and lazy windows", "",
             f"Command: `{command_line('scaling.py', argv)}`", "",
             f"Environment: {env}", "",
             f"Load average (1 min) at start {load_start:.2f}, at end {load_end:.2f} (the machine is shared; "
             "timings interleave the methods round by round and report medians and median ratios).", ""]
    cores = os.cpu_count()
    busy = max(load_start, load_end) > cores - 0.5
    if grid_rows:
        g = grid_rows[-1]
        lines += ["## A. GridSearchCV over QLLSTMClassifier", "",
                  f"{g['fits']} fits per search; warm medians over {g['reps']} rounds. Cluster start "
                  f"{g['cluster_start_s']:.1f} s; first (cold) dask search {g['cold_first_s']:.1f} s (the workers "
                  "import torch and qlts and load the numba cache). All runs gave identical cv_results_.", "",
                  md_table(["method", "median s", "ratio to serial-1t"],
                           [[r["method"], f"{r['median_s']:.2f}", f"{r['ratio_to_serial_1t']:.2f}"] for r in grid_rows]),
                  ""]
        if busy:
            lines += [f"This run cannot show the cluster's speed-up. The load average was {load_start:.1f}-"
                      f"{load_end:.1f} on {cores} cores, so the cores were not free: other processes were running, "
                      "and the two workers shared the cores with them. Run it again on an idle machine. The ideal "
                      "there is 0.5x, plus the cluster's per-task overhead.", ""]
        lines += ["serial-2t gives one fit 2 torch threads. On a busy machine, a recurrent step's threads wait "
                  "for a core at every barrier, which is the oversubscription that the worker thread cap "
                  "(qlts.parallel) prevents.", ""]
    windows = [r for r in lazy_rows if r["part"] == "windows"]
    training = [r for r in lazy_rows if r["part"] == "training"]
    if windows:
        r0 = windows[0]
        lines += ["## B. Windows per second into a DataLoader (batch 64)", "",
                  f"{r0['windows']:,} windows (lookback {LOOKBACK}, horizon {HORIZON}, stride {STRIDE}, {CHANNELS} "
                  f"channels, 0.1% NaN cells); the first {r0['batches_timed']} batches per run; medians over "
                  f"{r0['reps']} rounds.", "",
                  md_table(["order", "method", "windows/s", "ratio to in-memory", "setup s", "held MB"],
                           [[r["order"], r["method"], f"{r['windows_per_s']:,.0f}", f"{r['ratio_to_in_memory']:.2f}",
                             f"{r['setup_s']:.2f}", f"{r['held_mb']:.3g}"] for r in windows]),
                  "",
                  "setup is LazyWindows' one NaN scan of the file, against make_windows. held is what stays in "
                  "memory besides the file's page cache: LazyWindows keeps only the dropped windows' indices.", ""]
    if training:
        lines += ["### Training throughput", "",
                  f"QLLSTMRegressor(hidden_size=64, batch_size={BATCH}), one pass over the first "
                  f"{training[0]['windows']:,} windows of each dataset. Medians over {training[0]['reps']} "
                  "interleaved rounds.", "",
                  md_table(["method", "windows/s", "ratio to in-memory"],
                           [[r["method"], f"{r['windows_per_s']:,.0f}", f"{r['ratio_to_in_memory']:.2f}"]
                            for r in training]),
                  ""]
    return "\n".join(lines)


def main(argv=None):
    parser = base_parser(__doc__)
    parser.add_argument("--reps", type=int, default=None, help="interleaved rounds (default 3, 2 with --quick)")
    parser.add_argument("--no-dask", action="store_true", help="skip part A (needs dask[distributed])")
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 3)
    device = setup(args)
    load_start = os.getloadavg()[0]
    env = environment(device)
    print(env, flush=True)
    grid_rows = [] if args.no_dask else bench_grid(args.quick, reps, print)
    lazy_rows = bench_lazy(args.quick, reps, print)
    text = markdown(args, argv, env, load_start, os.getloadavg()[0], grid_rows, lazy_rows)
    md, csv_path = write_results(args.out, "scaling", text, grid_rows + lazy_rows)
    print(text)
    print(f"wrote {md} and {csv_path}")


if __name__ == "__main__":
    main()

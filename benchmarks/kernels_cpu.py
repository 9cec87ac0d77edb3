"""CPU kernels: the fused numba QL-LSTM scan against torch.nn.LSTM (oneDNN), torch.nn.GRU and
the QL-LSTM torch reference (at the first size and thread count only: it is slow).

For each (B, T, d, H) and thread count, every model is timed interleaved in one process
(round robin over models within each repeat, so load on a shared machine hits all of them
alike): forward under ``torch.no_grad()``, and forward + backward of ``out.sum()`` w.r.t. the
input and every parameter. Reported: the median of ``--repeats`` runs after two warm-up runs,
and its ratio to nn.LSTM's median. Also: the cold first-call compile time of the numba kernels
(fresh subprocess, empty NUMBA_CACHE_DIR), and where the numba scan's time goes at the first size.

    python benchmarks/kernels_cpu.py                 # full run, 1 and 2 threads
    python benchmarks/kernels_cpu.py --quick         # < 1 minute: T / 8, 1 thread, 5 repeats
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from qlts.nn import QLLSTM
from qlts.utils import atomic_write

SIZES = [(32, 512, 64, 128), (8, 2048, 16, 64), (128, 128, 128, 256), (1, 4096, 32, 64)]
MODELS = ["nn.LSTM", "nn.GRU", "QL reference", "QL numba"]
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

_COMPILE_SCRIPT = """
import time, torch
t0 = time.perf_counter()
from qlts.kernels import numba_cpu
x = torch.randn(3, 2, 2, requires_grad=True)
args = [x, torch.zeros(2, 3), torch.zeros(2, 3), torch.randn(6, 2), torch.randn(6, 3), torch.zeros(3),
        torch.ones(3, 3), torch.zeros(3, 3), torch.tensor(0.1)]
numba_cpu.scan(*args)[0].sum().backward()  # float32 forward + backward
t1 = time.perf_counter()
args = [a.detach().double().requires_grad_(a.requires_grad) for a in args]
numba_cpu.scan(*args)[0].sum().backward()  # float64
print(t1 - t0, time.perf_counter() - t1)
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="T / 8, 1 thread, 5 repeats (CI)")
    parser.add_argument("--out", default=RESULTS_DIR, help="folder for kernels_cpu.md/.csv (default: %(default)s)")
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="thread counts (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per cell (default 7; quick 5)")
    args = parser.parse_args(argv)
    args.threads = args.threads or ([1] if args.quick else [1, 2])
    args.repeats = args.repeats or (5 if args.quick else 7)
    if args.repeats < 5:
        parser.error(f"--repeats: expected at least 5 (medians of >= 5 runs), got {args.repeats}")
    return args


def build(name, d, H):
    if name == "nn.LSTM":
        return torch.nn.LSTM(d, H)
    if name == "nn.GRU":
        return torch.nn.GRU(d, H)
    return QLLSTM(d, H, backend="torch" if name == "QL reference" else "numba")


def timed(fn):
    """(wall seconds, process CPU seconds summed over threads) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def bench_size(size, threads, repeats, with_reference):
    """Median (wall, CPU) seconds per (model, mode) at one size, models interleaved within each repeat."""
    B, T, d, H = size
    torch.manual_seed(0)
    names = [m for m in MODELS if with_reference or m != "QL reference"]
    models = {m: build(m, d, H) for m in names}
    x = torch.randn(T, B, d)
    xg = x.clone().requires_grad_(True)

    def forward(m):
        with torch.no_grad():
            m(x)

    def forward_backward(m):
        m.zero_grad(set_to_none=True)
        m(xg)[0].sum().backward()

    times = {(m, mode): [] for m in names for mode in ("fwd", "fwd+bwd")}
    for _ in range(2):  # warm-up (and numba's compile or cache load)
        for m in names:
            forward(models[m])
            forward_backward(models[m])
    for _ in range(repeats):
        for m in names:
            times[m, "fwd"].append(timed(lambda: forward(models[m])))
            times[m, "fwd+bwd"].append(timed(lambda: forward_backward(models[m])))
    return {key: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for key, v in times.items()}


def profile_numba(size, repeats):
    """Where the numba scan's time goes (one thread): medians of each piece, timed interleaved."""
    from qlts.kernels import numba_cpu
    from qlts.kernels._numba_scan import gemm_steps

    B, T, d, H = size
    torch.manual_seed(0)
    layer = QLLSTM(d, H, backend="numba")
    x = torch.randn(T, B, d, requires_grad=True)
    w_ih, w_hh, b_u, gamma, beta, alpha = layer._direction_params("l0")
    h0 = torch.zeros(B, H)
    args = (x.detach(), h0, h0, w_ih.detach(), w_hh.detach(), b_u.detach(), gamma.detach(), beta.detach(), alpha)
    hn, wt, z = np.zeros((B, H), np.float32), np.ascontiguousarray(w_hh.detach().numpy().T), np.zeros((B, 2 * H),
                                                                                                     np.float32)
    xh = np.zeros((B, d + H), np.float32)
    w_cat_t = np.ascontiguousarray(torch.cat([w_ih, w_hh], 1).detach().numpy().T)
    dz, w, dh = np.zeros((B, 2 * H), np.float32), w_hh.detach().numpy().copy(), np.zeros((B, H), np.float32)
    zz = torch.randn(T * B, 2 * H)
    pieces = {
        "input GEMM W_x x (torch)": lambda: x.detach() @ w_ih.detach().t(),
        "training forward total (GEMM + loop)": lambda: numba_cpu._forward(*args, None, 1, True),
        "T recurrent GEMMs h W_h^T alone (numba, ?gemm)": lambda: gemm_steps(hn, wt, z, T),
        "inference forward total (no_grad: one product per step)": lambda: numba_cpu._infer(*args, None, 1, True),
        "T fused products [x | h] [W_x | W_h]^T alone (numba, ?gemm)": lambda: gemm_steps(xh, w_cat_t, z, T),
        "T recurrent GEMMs dz W_h alone (numba, ?gemm)": lambda: gemm_steps(dz, w, dh, T),
        "backward GEMMs dx, dW_x, dW_h (torch)": lambda: (zz @ w_ih.detach(), zz.t() @ x.detach().view(-1, d),
                                                          zz.t() @ torch.zeros(T * B, H)),
        "forward + backward total": lambda: layer(x)[0].sum().backward(),
    }
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        times = {k: [] for k in pieces}
        for fn in pieces.values():
            fn()
        for _ in range(repeats):
            for k, fn in pieces.items():
                times[k].append(timed(fn)[1])  # CPU time: one thread, robust to preemption
    return {k: statistics.median(v) for k, v in times.items()}


def compile_time():
    """Seconds for the first float32 fwd+bwd call (import + compile) and then float64, in a fresh
    process with an empty numba cache; then the same with the cache it left (load only)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], env=env, capture_output=True, text=True,
                                 check=True).stdout.split()
            runs.append([float(v) for v in out])
    return {"cold_f32": runs[0][0], "cold_f64": runs[0][1], "cached_f32": runs[1][0], "cached_f64": runs[1][1]}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    command = " ".join(["python", "benchmarks/kernels_cpu.py"] + [shlex.quote(a) for a in argv])
    load_before = os.getloadavg()
    sizes = [(B, max(T // 8, 16), d, H) for B, T, d, H in SIZES] if args.quick else SIZES
    rows = []
    original_threads = torch.get_num_threads()
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for size in sizes:
                first = size == sizes[0] and threads == args.threads[0]  # the reference is slow: one cell
                med = bench_size(size, threads, args.repeats, with_reference=first)
                for (model, mode), (sec, cpu) in med.items():
                    base, base_cpu = med["nn.LSTM", mode]
                    rows.append({"threads": threads, "B": size[0], "T": size[1], "d": size[2], "H": size[3],
                                 "model": model, "mode": mode, "median_ms": round(sec * 1e3, 3),
                                 "ratio_to_lstm": round(sec / base, 3), "cpu_ms": round(cpu * 1e3, 3),
                                 "cpu_ratio_to_lstm": round(cpu / base_cpu, 3)})
                    print(f"threads={threads} {size} {model:13s} {mode:8s} {sec * 1e3:9.1f} ms x{sec / base:.2f} "
                          f"(CPU {cpu * 1e3:9.1f} ms x{cpu / base_cpu:.2f})", flush=True)
        torch.set_num_threads(1)
        profile = profile_numba(sizes[0], args.repeats)
    finally:
        torch.set_num_threads(original_threads)
    compile_s = None if args.quick else compile_time()  # two fresh processes: ~40 s, too slow for --quick
    load_after = os.getloadavg()
    markdown = render(args, command, rows, profile, compile_s, sizes, load_before, load_after)
    write(args.out, markdown, rows)
    print(markdown)


def render(args, command, rows, profile, compile_s, sizes, load_before, load_after):
    lines = ["# CPU kernels: fused numba QL-LSTM vs nn.LSTM (oneDNN)", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; load average "
             f"{load_before[0]:.1f} at the start and {load_after[0]:.1f} at the end (a shared machine: all "
             f"models are timed interleaved, medians of {args.repeats} runs after 2 warm-ups).", "",
             "Ratios are QL-LSTM (or GRU) time / nn.LSTM time in the same run; below 1 is faster than nn.LSTM. "
             "fwd: forward under torch.no_grad(); fwd+bwd: forward and backward w.r.t. input and parameters. "
             "The last column is the same ratio in process CPU time (summed over threads): with 1 thread it is "
             "immune to the machine's other jobs preempting the process.", ""]
    if args.quick:
        lines += ["**Quick mode**: T divided by 8, so these are not the issue's sizes.", ""]
    for threads in args.threads:
        lines += [f"## {threads} thread(s)", "",
                  "| B, T, d, H | mode | nn.LSTM ms | nn.GRU | QL reference | QL numba | QL numba ms "
                  "| QL numba, CPU-time ratio |",
                  "|---|---|---|---|---|---|---|---|"]
        for size in sizes:
            for mode in ("fwd", "fwd+bwd"):
                cell = {r["model"]: r for r in rows if r["threads"] == threads and r["mode"] == mode
                        and (r["B"], r["T"], r["d"], r["H"]) == size}
                ref = f"x{cell['QL reference']['ratio_to_lstm']:.2f}" if "QL reference" in cell else "-"
                lines.append(f"| {size} | {mode} | {cell['nn.LSTM']['median_ms']:.1f} | "
                             f"x{cell['nn.GRU']['ratio_to_lstm']:.2f} | {ref} | "
                             f"**x{cell['QL numba']['ratio_to_lstm']:.2f}** | {cell['QL numba']['median_ms']:.1f} | "
                             f"x{cell['QL numba']['cpu_ratio_to_lstm']:.2f} |")
        lines.append("")
    from qlts.kernels._numba_blas import BLAS

    lines += [f"## Where the numba scan's time goes, {sizes[0]}, 1 thread", "",
              "Medians of CPU ms of each piece timed alone, interleaved. The recurrent GEMMs are the per-step BLAS "
              f"products ({BLAS}, called from numba) with nothing else in the loop.", "",
              "| piece | ms |", "|---|---|"]
    lines += [f"| {k} | {v * 1e3:.1f} |" for k, v in profile.items()]
    if compile_s is None:
        return "\n".join(lines + ["", "Compile time: not measured in --quick mode.", ""])
    lines += ["", "## Compile time (numba, cache=True)", "",
              "First call in a fresh process with an empty NUMBA_CACHE_DIR (import + compile + a tiny run), "
              "then a second process reusing that cache.", "",
              "| | float32 fwd+bwd (first) | float64 fwd+bwd (after float32) |", "|---|---|---|",
              f"| cold cache | {compile_s['cold_f32']:.1f} s | {compile_s['cold_f64']:.1f} s |",
              f"| warm cache | {compile_s['cached_f32']:.1f} s | {compile_s['cached_f64']:.1f} s |", ""]
    return "\n".join(lines)


def write(out_dir, markdown, rows):
    notes_marker = "<!-- notes: kept across runs -->"
    md_path = os.path.join(out_dir, "kernels_cpu.md")
    if os.path.exists(md_path):  # keep hand-written analysis below the marker
        old = open(md_path).read()
        if notes_marker in old:
            markdown = markdown.rstrip() + "\n\n" + notes_marker + old.split(notes_marker, 1)[1]
    with atomic_write(md_path, "w") as fh:
        fh.write(markdown.rstrip() + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(os.path.join(out_dir, "kernels_cpu.csv"), "w") as fh:
        fh.write(buf.getvalue())


if __name__ == "__main__":
    main()

"""GPU kernels: QL-LSTM's fused Triton scan against cuDNN's LSTM and GRU, in fp32, bf16 and fp16.

    python benchmarks/kernels_gpu.py --quick            # ~2-3 min on one H100/H200
    python benchmarks/kernels_gpu.py                    # more repetitions
    python benchmarks/kernels_gpu.py --out /tmp/res --sizes 0 3 --dtypes bf16

First it checks that ``QLLSTM(backend="triton")`` matches the torch reference (float64) on the
GPU: outputs and every gradient, in each dtype. Then, for every size of the grid and every dtype,
it times cuDNN LSTM, cuDNN GRU and QL-LSTM (triton) interleaved in one process (and the QL torch
reference at one size), forward under no_grad and forward+backward, with CUDA events: the median
of >= 10 runs after warm-up. It prints ratios to cuDNN LSTM and writes kernels_gpu.md and .csv
(device, versions, command) after every size, so a run cut short still leaves its numbers.

Without CUDA it exits with status 2 and says so. ``--cpu-smoke`` runs the same code on CPU under
triton's interpreter at toy sizes, to test this script without a GPU (its timings mean nothing).
Exit status 1 when an agreement check fails or the triton backend errors.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

SIZES = [(64, 1024, 128, 256), (256, 512, 128, 512), (16, 4096, 32, 128), (1024, 256, 64, 256),
         (16, 1024, 768, 768)]  # (B, T, d, H), DESIGN §7 / issue #4
REFERENCE_SIZE = (1024, 256, 64, 256)  # the torch reference is timed here only (it is ~100x slower)
SMOKE_SIZES = [(3, 6, 4, 16), (17, 5, 6, 20)]
DTYPE_NAMES = ("fp32", "bf16", "fp16")
MODES = ("fwd", "fwd+bwd")
MODELS = ("lstm", "gru", "ql_triton", "ql_torch")
LABELS = {"lstm": "cuDNN LSTM", "gru": "cuDNN GRU", "ql_triton": "QL triton", "ql_torch": "QL torch ref"}
# rel error (max |a-b| / max |b|) against the float64 reference: DESIGN §2 (fp32 ieee: the brief's 1e-4)
TOLERANCES = {("fp32", "ieee"): 1e-4, ("fp32", "tf32"): 1e-3, ("bf16", "-"): 1e-2, ("fp16", "-"): 1e-2}
AGREEMENT_CONFIGS = [
    # H=200: four 64-wide hidden blocks, the last one masked; B=24: two batch tiles, the second masked
    dict(name="H=200, 2 layers, bidirectional, packed, K=3, convex, learned alpha",
         model=dict(input_size=40, hidden_size=200, num_layers=2, bidirectional=True, skip=3, alpha=0.2,
                    learn_alpha=True), T=48, B=24, packed=True),
    # additive at alpha=0.1: at 0.3 the state grows past fp16's range within T=64 (DESIGN §1)
    dict(name="H=64, K=1, additive, alpha=0.1, h0/c0 given",
         model=dict(input_size=16, hidden_size=64, skip=1, alpha=0.1, skip_mode="additive"), T=64, B=16,
         packed=False),
]

# launch configurations (triton_gpu._OVERRIDE) checked for agreement besides the default, which
# splits the hidden units across SMs on a GPU whenever the batch leaves half the SMs idle: the
# unsplit kernel, and 3 splits of 7 hidden blocks (H=200 in blocks of 32), so a program owns
# several strided blocks. Checked in fp32 (full-precision dot) and bf16.
LAUNCH_CHECKS = [("default launch", {}), ("1 program per batch tile", {"SPLITS": 1, "BLOCK_H": 64}),
                 ("3 hidden splits, strided blocks", {"SPLITS": 3, "BLOCK_H": 32})]

# --sweep: launch configurations of the triton kernels (triton_gpu._OVERRIDE), for tuning on a GPU
SWEEP_CONFIGS = {
    "default": {},
    "bb16_bh32": {"BLOCK_B": 16, "BLOCK_H": 32},  # the default before the first sweep
    "nosplit": {"SPLITS": 1, "BLOCK_H": 64},
    "bb32": {"BLOCK_B": 32},
    "stages1": {"num_stages": 1},
    "stages2": {"num_stages": 2},
}

DESIGN_NOTES = """\
## Kernel design

- The grid is (batch tiles, hidden splits). Tiles have 16 rows, or 64 when 16-row tiles would fill
  more than a quarter of the SMs. With one split, a program owns every hidden unit of its rows and
  runs the whole time loop (forward and backward), looping over 64-wide blocks of hidden units and
  accumulating `h_{t-1} W_h^T` with `tl.dot` over 64-wide chunks of `h_{t-1}`; a CTA barrier ends
  each step. State, gates and accumulators are fp32; the per-step h and c go to global buffers (the
  backward and the K-step skip need them).
- When the batch tiles leave at least half the SMs idle, the hidden units are split in blocks of
  32 or 64 (about one per program) over the idle SMs: `SPLITS` programs per batch tile, launched
  cooperatively (co-resident), meeting once per step at a barrier in global memory (a release
  atomic and an acquire poll per program, as CUDA's grid sync does). Each program reads only its
  slice of W_h, which stays in L1, and loads the other programs' h (forward) or dz (backward)
  from L2. The backward needs one barrier per step, between the element-wise phase and
  `dh_{t-1} = dz_t W_h`.
- `W_x x` for all t is one GEMM before the kernel; `dx`, `dW_x`, `dW_h` are one GEMM each over the
  stored `dz` after the backward kernel.
- `python benchmarks/kernels_gpu.py --sweep --quick --dtypes bf16` times the kernels under other
  launch configurations (block sizes, warps, split or not) against cuDNN LSTM.
"""


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10 timed runs after 2 warm-ups, time budget 150 s")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--sizes", type=int, nargs="+", help=f"indices into the grid {SIZES}")
    p.add_argument("--dtypes", nargs="+", choices=DTYPE_NAMES, default=list(DTYPE_NAMES))
    p.add_argument("--reps", type=int, help="timed runs per measurement (>= 10; default 10 quick, 30 full)")
    p.add_argument("--warmup", type=int, help="untimed runs first (default 2 quick, 5 full)")
    p.add_argument("--budget-s", type=float, help="stop starting new sizes after this many seconds "
                   "(default 150 quick, 480 full); the rest is listed as not measured")
    p.add_argument("--sweep", action="store_true", help="instead of the comparison: time QL triton under each "
                   f"launch configuration of {list(SWEEP_CONFIGS)} against cuDNN LSTM; writes kernels_gpu_sweep.md/.csv")
    p.add_argument("--launch", type=json.loads, help="a launch configuration for QL triton, as JSON (keys "
                   "BLOCK_B, BLOCK_H, BLOCK_K, num_warps, num_stages, SPLITS), instead of the default; the agreement checks "
                   "then run under it alone")
    p.add_argument("--cpu-smoke", action="store_true", help="test this script on CPU under TRITON_INTERPRET=1 "
                   "at toy sizes; the timings mean nothing")
    args = p.parse_args(argv)
    quick = args.quick or args.cpu_smoke
    args.reps = args.reps if args.reps is not None else (10 if quick else 30)
    args.warmup = args.warmup if args.warmup is not None else (2 if quick else 5)
    args.budget_s = args.budget_s if args.budget_s is not None else (150.0 if quick else 480.0)
    if args.reps < 10 and not args.cpu_smoke:
        p.error(f"--reps: expected >= 10 (medians of at least 10 runs), got {args.reps}")
    grid = SMOKE_SIZES if args.cpu_smoke else SIZES
    if args.sizes is not None:
        bad = [i for i in args.sizes if not 0 <= i < len(grid)]
        if bad:
            p.error(f"--sizes: expected indices in [0, {len(grid) - 1}], got {bad}")
    args.grid = [grid[i] for i in args.sizes] if args.sizes is not None else list(grid)
    args.reference_size = SMOKE_SIZES[0] if args.cpu_smoke else REFERENCE_SIZE
    return args


# -- measurement ---------------------------------------------------------------------------------

class Timer:
    """Milliseconds of one call: CUDA events on a GPU, wall clock on CPU (smoke runs only)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn):
        import torch

        if not self.cuda:
            start = time.perf_counter()
            fn()
            return 1e3 * (time.perf_counter() - start)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)


def _rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _run_layer(model, cfg, x, state, lengths, weights, autocast=None):
    """Outputs and every gradient of ``model`` under the loss sum(weights * outputs), by name;
    the forward under ``torch.autocast(dtype=autocast)`` when given."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    dtype = next(model.parameters()).dtype
    leaves = [t.detach().to(dtype).clone().requires_grad_() for t in [x] + state]
    inp = pack_padded_sequence(leaves[0], lengths, enforce_sorted=False) if cfg["packed"] else leaves[0]
    with torch.autocast(x.device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        out, (h_n, c_n) = model(inp, None if cfg["packed"] else tuple(leaves[1:]))
    outs = [out.data if cfg["packed"] else out, h_n, c_n]
    if autocast is not None and model.backend == "triton":  # as nn.LSTM: outputs in the autocast dtype
        if outs[0].dtype != autocast:
            raise AssertionError(f"under autocast({autocast}) the output dtype is {outs[0].dtype}")
    sum((o.double() * w).sum() for o, w in zip(outs, weights)).backward()
    named = {n: o.detach() for n, o in zip(("out", "h_n", "c_n"), outs)}
    named.update({f"d_{n}": t.grad for n, t in zip(("input", "h0", "c0"), leaves) if t.grad is not None})
    named.update({f"d_{n}": p.grad for n, p in model.named_parameters()})
    wrong = [n for n, p in model.named_parameters() if p.grad.dtype != p.dtype]
    if wrong:
        raise AssertionError(f"gradients not in their parameter's dtype: {wrong}")
    with torch.no_grad():
        model.zero_grad(set_to_none=True)
    return named


def check_agreement(cfg, device, dtype, tol, smoke, autocast=None):
    """QLLSTM(backend="triton") in ``dtype`` against the torch reference in float64, with the same
    (rounded) weights and inputs: outputs and every gradient. With ``autocast`` (a dtype), the
    triton model and the same-dtype reference run in ``dtype`` under ``torch.autocast``.

    A tensor passes when its rel error is <= ``tol``, or at most 2x the error of the torch
    reference run in the same dtype: some gradients are sums of ~10^5 terms of both signs (alpha's
    is one number), and no implementation in that dtype gets them closer. Returns the worst
    tensor (by error / allowed), its error, the reference's error on it, how many tensors, ok.
    """
    import copy

    import torch

    from qlts.nn import QLLSTM

    T, B, kwargs = cfg["T"], cfg["B"], dict(cfg["model"])
    if smoke:  # the interpreter is slow: toy sizes (the kernels' own tests cover the block logic)
        T, B, kwargs["input_size"], kwargs["hidden_size"] = 6, 5, 6, 20
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # additive mode warns by design
        tri = QLLSTM(backend="triton", **kwargs).to(device)
    with torch.no_grad():  # off the init, so gamma, beta, b_u, alpha all matter
        for p in tri.parameters():
            # matrices by 0.3x their init scale 1/sqrt(H): noise of 0.3 per entry would give W_h a gain
            # of ~8, chaotic dynamics in which even torch's own bf16 run is 10% off float64
            p.add_(0.3 * torch.randn_like(p) / (tri.hidden_size ** 0.5 if p.dim() == 2 else 1.0))
    tri.to(dtype)
    ref = copy.deepcopy(tri)
    ref.backend = "torch"
    ref_same = copy.deepcopy(ref)  # the reference in the same dtype: that dtype's own error
    ref.to(torch.float64)  # same rounded weights, upcast
    layers = tri.num_layers * tri.num_directions
    x = torch.randn(T, B, tri.input_size, device=device).to(dtype)
    state = [(0.5 * torch.randn(layers, B, tri.hidden_size, device=device)).to(dtype) for _ in range(2)]
    lengths = torch.randint(1, T + 1, (B,))
    lengths[0] = T
    gen = torch.Generator(device="cpu").manual_seed(1)
    width = tri.hidden_size * tri.num_directions
    shapes = [(int(lengths.sum()), width) if cfg["packed"] else (T, B, width)] + [(layers, B, tri.hidden_size)] * 2
    # one random linear functional of (out, h_n, c_n), shared by the three runs
    weights = [torch.randn(shape, generator=gen, dtype=torch.float64).to(device) for shape in shapes]
    results = [_run_layer(model, cfg, x, state, lengths, weights, cast)
               for model, cast in ((ref, None), (tri, autocast), (ref_same, autocast))]
    ref64, got, same = results
    best, errors = None, {}
    for name in ref64:
        rel, rel_same = _rel(got[name], ref64[name]), _rel(same[name], ref64[name])
        errors[name] = (rel, rel_same)
        allowed = max(tol, 2 * rel_same)
        if best is None or rel / allowed > best[0]:
            best = (rel / allowed, name, rel, rel_same)
    return dict(worst=best[1], rel=best[2], rel_same=best[3], n=len(ref64), ok=best[0] <= 1.0, errors=errors)


@contextlib.contextmanager
def launch_override(override):
    """QL triton launches under ``override`` (triton_gpu._OVERRIDE) inside the block, the default after."""
    from qlts.kernels import triton_gpu

    triton_gpu._OVERRIDE = override
    try:
        yield
    finally:
        triton_gpu._OVERRIDE = None


def build(kind, size, device, dtype):
    from torch import nn

    from qlts.nn import QLLSTM

    B, T, d, H = size
    if kind == "lstm":
        model = nn.LSTM(d, H)
    elif kind == "gru":
        model = nn.GRU(d, H)
    else:
        model = QLLSTM(d, H, backend="triton" if kind == "ql_triton" else "torch")
    model = model.to(device, dtype)
    if isinstance(model, nn.RNNBase):
        model.flatten_parameters()  # one contiguous weight buffer, or cuDNN compacts it at every call
    return model


def runner(model, x, mode, grad_out):
    import torch

    if mode == "fwd":
        def run():
            with torch.no_grad():
                model(x)
    else:
        def run():
            model.zero_grad(set_to_none=True)
            out = model(x)[0]
            out.backward(grad_out)
    return run


def measure(size, dtype_name, args, device, timer, log):
    """Rows (model, mode, times or error) for one size and dtype, models interleaved per repetition."""
    import torch

    dtype = getattr(torch, {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype_name])
    B, T, d, H = size
    kinds = ["lstm", "gru", "ql_triton"] + (["ql_torch"] if size == args.reference_size else [])
    rows, models = [], {}
    for kind in kinds:
        try:
            models[kind] = build(kind, size, device, dtype)
        except Exception as exc:
            rows.append(dict(model=kind, mode="*", error=f"{type(exc).__name__}: {exc}"))
    x = torch.randn(T, B, d, device=device, dtype=dtype)
    grad_out = torch.randn(T, B, H, device=device, dtype=dtype)
    for mode in MODES:
        fns = {}
        for kind, model in models.items():
            fn = runner(model, x, mode, grad_out)
            try:
                for _ in range(args.warmup):
                    fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                fns[kind] = fn
            except Exception as exc:  # compile error, OOM, ...: record it and time the others
                rows.append(dict(model=kind, mode=mode, error=f"{type(exc).__name__}: {str(exc)[:300]}"))
                log(f"  {LABELS[kind]} {mode} failed: {type(exc).__name__}: {str(exc)[:300]}")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        times = {kind: [] for kind in fns}
        for _ in range(args.reps):
            for kind, fn in fns.items():  # interleaved: every model once per repetition
                times[kind].append(timer(fn))
        for kind, ts in times.items():
            rows.append(dict(model=kind, mode=mode, median_ms=statistics.median(ts), min_ms=min(ts), n=len(ts)))
    params = {kind: sum(p.numel() for p in m.parameters()) for kind, m in models.items()}
    del models, x, grad_out
    if device.type == "cuda":
        torch.cuda.empty_cache()
    for row in rows:
        row.update(B=B, T=T, d=d, H=H, dtype=dtype_name, params=params.get(row["model"], ""))
    return rows


# -- report ----------------------------------------------------------------------------------------

def target(dtype_name, mode, H):
    """Issue #4's target for QL triton / cuDNN LSTM in the same dtype."""
    if dtype_name == "fp16":
        return 0.7 if H <= 256 else 1.0
    return 0.5 if mode == "fwd" else 0.6


def _ms(rows, key, model, mode):
    for r in rows:
        if (r["B"], r["T"], r["d"], r["H"], r["dtype"]) == key and r["model"] == model and r["mode"] in (mode, "*"):
            return r.get("median_ms"), r.get("error")
    return None, None


def _fmt(v, err=None, digits=2):
    if err:
        return "error"
    return "-" if v is None else f"{v:.{digits}f}"


def summary_lines(rows, keys):
    lines = ["| B, T, d, H | dtype | mode | cuDNN LSTM ms | cuDNN GRU ms | QL triton ms | QL torch ms | "
             "QL/LSTM | QL/GRU | GRU/LSTM | target QL/LSTM | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    missed = []
    for key in keys:
        B, T, d, H, dt = key
        for mode in MODES:
            (lstm, le), (gru, ge), (ql, qe), (ref, re_) = (_ms(rows, key, m, mode) for m in MODELS)
            ratio = ql / lstm if ql and lstm else None
            tgt = target(dt, mode, H)
            met = "-" if ratio is None else ("yes" if ratio <= tgt else "no")
            if met == "no":
                missed.append(f"- {B}, {T}, {d}, {H} {dt} {mode}: QL/LSTM {ratio:.2f} against a target of {tgt} "
                              f"(missed by {ratio / tgt:.2f}x)")
            lines.append(f"| {B}, {T}, {d}, {H} | {dt} | {mode} | {_fmt(lstm, le)} | {_fmt(gru, ge)} | "
                         f"{_fmt(ql, qe)} | {_fmt(ref, re_)} | "
                         f"{_fmt(ratio)} | {_fmt(ql / gru if ql and gru else None)} | "
                         f"{_fmt(gru / lstm if gru and lstm else None)} | {tgt} | {met} |")
    return lines, missed


def write_report(args, env, agreement, rows, keys, skipped, status, command):
    lines, missed = summary_lines(rows, keys)
    errors = [f"- {r['B']}, {r['T']}, {r['d']}, {r['H']} {r['dtype']} {LABELS[r['model']]} {r['mode']}: {r['error']}"
              for r in rows if r.get("error")]
    md = [
        "# GPU kernels: fused Triton QL-LSTM against cuDNN LSTM and GRU", "",
        f"Status: **{status}**  ",
        f"Command: `{command}`  ",
        f"Device: {env['device']}  ",
        f"Versions: {env['versions']}  ",
        f"Date: {env['date']}  ",
        f"Timing: CUDA events around one call; median of {args.reps} runs after {args.warmup} warm-up runs; "
        "all models interleaved in one process (each model once per repetition). `fwd` = forward under "
        "`torch.no_grad()`; `fwd+bwd` = forward, then backward of the output with a fixed random gradient "
        "(no input gradient), one layer, time-major input, no lengths. Only ratios within this run count.  ",
        f"Precision: {env['precision']}  ",
        "QL triton launch: " + ("default (`qlts.kernels.triton_gpu._launch_config`)" if args.launch is None
                                else f"`{json.dumps(args.launch)}`") + "  ",
        "Parameters (one layer): " + env.get("params", "-"), "",
        "## Agreement with the reference, checked before timing", "",
        "QLLSTM(backend=\"triton\") in each dtype against QLLSTM(backend=\"torch\") in float64 with the same "
        "(rounded) weights and inputs: outputs, h_n, c_n and the gradients of the input, h0, c0 and every "
        "parameter under a random linear loss. rel = max |triton - ref| / max |ref|. A tensor passes when "
        "rel <= tolerance, or rel <= 2x the error of the torch reference run in the same dtype (some "
        "gradients, alpha's above all, are sums of ~10^5 terms of both signs, ill-conditioned in low "
        "precision). Shown: the worst tensor relative to what it is allowed.", "",
        "| configuration | launch | dtype | in-kernel dot | tensors | worst tensor | rel error | "
        "torch ref same dtype | tolerance | ok |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {a['config']} | {a['launch']} | {a['dtype']} | {a['dot']} | {a['n']} | {a['worst']} | {a['rel']:.2e} | "
          f"{a['rel_same']:.2e} | {a['tol']:g} | {'yes' if a['ok'] else 'NO'} |" if "rel" in a else
          f"| {a['config']} | {a['launch']} | {a['dtype']} | {a['dot']} | - | - | {a['error']} | - | {a['tol']:g} | NO |"
          for a in agreement],
        "", "## Times (median ms) and ratios", "", *lines, "",
        "## Targets missed", "", *(missed or ["- none among the measured rows"]), "",
    ]
    if errors:
        md += ["## Errors", "", *errors, ""]
    if skipped:
        md += ["## Not measured (time budget)", "", *[f"- {s}" for s in skipped], ""]
    md += [DESIGN_NOTES]
    os.makedirs(args.out, exist_ok=True)
    from qlts.utils import atomic_write

    _common.write_markdown(os.path.join(args.out, "kernels_gpu.md"), "\n".join(md))
    fields = ["B", "T", "d", "H", "dtype", "mode", "model", "params", "median_ms", "min_ms", "n", "ratio_to_lstm",
              "error"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        key = (r["B"], r["T"], r["d"], r["H"], r["dtype"])
        lstm, _ = _ms(rows, key, "lstm", r["mode"])
        ratio = r.get("median_ms") / lstm if r.get("median_ms") and lstm else ""
        writer.writerow({**r, "ratio_to_lstm": ratio})
    with atomic_write(os.path.join(args.out, "kernels_gpu.csv"), "w") as fh:
        fh.write(buf.getvalue())
    return lines, missed


def environment(device):
    import torch

    try:
        import triton
        triton_version = triton.__version__
    except Exception as exc:
        triton_version = f"not importable ({type(exc).__name__})"
    versions = (f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
                f"triton {triton_version}, Python {platform.python_version()}")
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        name = f"{prop.name} (sm_{prop.major}{prop.minor}, {prop.multi_processor_count} SMs, " \
               f"{prop.total_memory / 2**30:.0f} GiB)"
    else:
        name = f"CPU {platform.machine()} (--cpu-smoke: TRITON_INTERPRET=1, timings meaningless)"
    precision = (f"torch.backends.cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} (cuDNN fp32 LSTM/GRU and the "
                 f"QL kernel's fp32 recurrent dot follow it), torch.backends.cuda.matmul.allow_tf32="
                 f"{torch.backends.cuda.matmul.allow_tf32} (the QL input and weight-gradient GEMMs)")
    return {"device": name, "versions": versions, "precision": precision,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# -- main ------------------------------------------------------------------------------------------

def run_sweep(args, device, timer, log, env, command):
    """Time QL triton under each launch configuration (each first checked against the reference)
    against cuDNN LSTM, interleaved; write kernels_gpu_sweep.md/.csv. Returns the exit status."""
    import torch

    from qlts.utils import atomic_write

    configs, checks = {}, []
    for name, override in SWEEP_CONFIGS.items():
        torch.backends.cudnn.allow_tf32, tf32 = False, torch.backends.cudnn.allow_tf32
        try:
            with launch_override(override):
                entry = check_agreement(AGREEMENT_CONFIGS[0], device, torch.float32, TOLERANCES[("fp32", "ieee")],
                                        args.cpu_smoke)
        except Exception as exc:
            entry = dict(ok=False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
        checks.append(f"- {name} {override}: " + (f"worst {entry['worst']} rel {entry['rel']:.2e} "
                                                   f"({'ok' if entry['ok'] else 'FAIL'})" if "rel" in entry
                                                   else entry["error"]))
        log(checks[-1][2:])
        if entry["ok"]:
            configs[name] = override
    rows = []
    for size in args.grid:
        for dtype_name in args.dtypes:
            if time.monotonic() - args.started > args.budget_s:
                log("time budget spent; stopping the sweep")
                break
            log(f"sweep B,T,d,H={size} {dtype_name}")
            dtype = getattr(torch, {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype_name])
            B, T, d, H = size
            lstm, ql = build("lstm", size, device, dtype), build("ql_triton", size, device, dtype)
            x = torch.randn(T, B, d, device=device, dtype=dtype)
            grad_out = torch.randn(T, B, H, device=device, dtype=dtype)
            for mode in MODES:
                fns = {"lstm": runner(lstm, x, mode, grad_out)}
                for name, override in configs.items():
                    def run(fn=runner(ql, x, mode, grad_out), override=override):
                        with launch_override(override):
                            fn()
                    fns[name] = run
                times = {}
                for name, fn in fns.items():
                    try:
                        for _ in range(args.warmup):
                            fn()
                        times[name] = []
                    except Exception as exc:
                        rows.append(dict(B=B, T=T, d=d, H=H, dtype=dtype_name, mode=mode, config=name,
                                         error=f"{type(exc).__name__}: {str(exc)[:200]}"))
                for _ in range(args.reps):
                    for name in times:
                        times[name].append(timer(fns[name]))
                base = statistics.median(times["lstm"]) if times.get("lstm") else None
                for name, ts in times.items():
                    med = statistics.median(ts)
                    rows.append(dict(B=B, T=T, d=d, H=H, dtype=dtype_name, mode=mode, config=name, median_ms=med,
                                     ratio_to_lstm=med / base if base else "", error=""))
            del lstm, ql, x, grad_out
            if device.type == "cuda":
                torch.cuda.empty_cache()
    lines = ["# QL triton launch-configuration sweep", "",
             f"Command: `{command}`  ", f"Device: {env['device']}  ", f"Versions: {env['versions']}  ",
             f"Date: {env['date']}  ", f"Median of {args.reps} CUDA-event timings after {args.warmup} warm-up runs, "
             "interleaved with cuDNN LSTM in the same dtype.", "", "## Agreement (fp32, full-precision dot)", "",
             *checks, "", "| B, T, d, H | dtype | mode | config | median ms | ratio to cuDNN LSTM |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['B']}, {r['T']}, {r['d']}, {r['H']} | {r['dtype']} | {r['mode']} | {r['config']} | "
                     + (f"{r['median_ms']:.2f} | {r['ratio_to_lstm']:.2f} |" if not r["error"] else
                        f"error | {r['error']} |"))
    os.makedirs(args.out, exist_ok=True)
    _common.write_markdown(os.path.join(args.out, "kernels_gpu_sweep.md"), "\n".join(lines))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["B", "T", "d", "H", "dtype", "mode", "config", "median_ms",
                                             "ratio_to_lstm", "error"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(os.path.join(args.out, "kernels_gpu_sweep.csv"), "w") as fh:
        fh.write(buf.getvalue())
    print("\n".join(lines), flush=True)
    return 0 if len(configs) == len(SWEEP_CONFIGS) and not any(r["error"] for r in rows) else 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.cpu_smoke:
        os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton
    import torch

    if args.cpu_smoke:
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        print("kernels_gpu.py: no CUDA device is available (torch.cuda.is_available() is False); this benchmark "
              "times GPU kernels and needs an NVIDIA GPU. Use --cpu-smoke to test the script on CPU.",
              file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda", torch.cuda.current_device())
    started = args.started = time.monotonic()
    command = "python benchmarks/kernels_gpu.py " + shlex.join(argv)
    env = environment(device)
    timer = Timer(device)

    def log(msg):
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True)

    log(f"{env['device']}; {env['versions']}")
    if args.sweep:
        return run_sweep(args, device, timer, log, env, command)
    # 1. agreement with the reference, before any timing
    agreement, failed = [], False
    tf32_default, matmul_tf32_default = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    # (dtype label, dtype, in-kernel dot, autocast dtype): fp32 with and without TF32, bf16, fp16, and an
    # fp32 model under autocast(bf16)
    variants = [(n, n, dot, None) for n in args.dtypes
                for dot in (["ieee", "tf32"] if n == "fp32" and device.type == "cuda" else
                            ["ieee"] if n == "fp32" else ["-"])]
    if "bf16" in args.dtypes:
        variants.append(("fp32 model, autocast bf16", "bf16", "-", "bf16"))
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    from qlts.kernels import triton_gpu

    launches = [(f"--launch {json.dumps(args.launch)}", args.launch)] if args.launch is not None else LAUNCH_CHECKS
    checks = [(cfg, variant, launch) for cfg in AGREEMENT_CONFIGS for launch in launches for variant in variants
              if launch is launches[0] or (variant[0] in ("fp32", "bf16") and variant[2] != "tf32")]
    if args.cpu_smoke:  # the interpreter runs one program at a time: no split launch
        checks = [c for c in checks if c[2][1].get("SPLITS", 1) == 1]
    for cfg, (label, dtype_name, dot, autocast), (launch, override) in checks:
        tol = TOLERANCES[(dtype_name, "tf32" if dot == "tf32" else "ieee" if dot == "ieee" else "-")]
        name = cfg["name"] + (" (toy size T=6, B=5, d=6, H=20 in --cpu-smoke)" if args.cpu_smoke else "")
        entry = dict(config=name, launch=launch, dtype=label, dot=dot, tol=tol)
        torch.backends.cudnn.allow_tf32 = dot == "tf32" if dtype_name == "fp32" else tf32_default
        # with a TF32 kernel, the same-dtype torch reference runs its matmuls in TF32 too
        torch.backends.cuda.matmul.allow_tf32 = dot == "tf32" or matmul_tf32_default
        try:
            with launch_override(override):
                if autocast:
                    entry.update(check_agreement(cfg, device, torch.float32, tol, args.cpu_smoke,
                                                 autocast=dtypes[autocast]))
                else:
                    entry.update(check_agreement(cfg, device, dtypes[dtype_name], tol, args.cpu_smoke))
        except Exception as exc:
            entry.update(error=f"{type(exc).__name__}: {str(exc)[:300]}", ok=False)
        finally:
            torch.backends.cudnn.allow_tf32 = tf32_default
            torch.backends.cuda.matmul.allow_tf32 = matmul_tf32_default
        failed |= not entry["ok"]
        agreement.append(entry)
        log(f"agreement {label} dot={dot} {launch} {cfg['name']}: "
            + (f"worst {entry['worst']} rel {entry['rel']:.2e} (torch ref in {dtype_name} {entry['rel_same']:.2e}, "
               f"tol {tol:g}) {'ok' if entry['ok'] else 'FAIL'}"
               if "rel" in entry else f"ERROR {entry['error']}"))
        if "errors" in entry and not entry["ok"]:
            log("  every tensor, rel error (torch ref same dtype): " + ", ".join(
                f"{n} {r:.1e} ({r_same:.1e})" for n, (r, r_same) in entry["errors"].items()))
    # 2. timings, one size and dtype at a time; the report is rewritten after each
    triton_gpu._OVERRIDE = args.launch
    rows, keys, skipped = [], [], []
    todo = [(size, dt) for size in args.grid for dt in args.dtypes]
    for index, (size, dtype_name) in enumerate(todo):
        if time.monotonic() - started > args.budget_s:
            skipped = [f"{s[0]}, {s[1]}, {s[2]}, {s[3]} {dt}" for s, dt in todo[index:]]
            log(f"time budget of {args.budget_s:.0f} s spent: {len(skipped)} size/dtype pairs not measured")
            break
        log(f"timing B,T,d,H={size} {dtype_name}")
        new = measure(size, dtype_name, args, device, timer, log)
        rows += new
        keys.append((*size, dtype_name))
        failed |= any(r.get("error") and r["model"].startswith("ql") for r in new)
        if "params" not in env:
            env["params"] = ", ".join(f"{LABELS[r['model']]} {r['params']}" for r in new
                                      if r["mode"] == "fwd" and r["params"] != "") + f" at B,T,d,H={size}"
        status = f"partial ({len(keys)}/{len(todo)} size/dtype pairs so far)"
        lines, _ = write_report(args, env, agreement, rows, keys, skipped, status, command)
        print("\n".join([lines[0]] + lines[2:][-len(MODES):]), flush=True)
    status = "complete" if not skipped else f"incomplete: {len(skipped)} size/dtype pairs not measured (budget)"
    if failed:
        status += "; an agreement check failed or the triton backend errored (see below)"
    lines, missed = write_report(args, env, agreement, rows, keys, skipped, status, command)
    print("\n".join(lines), flush=True)
    print("\n".join(missed), flush=True)
    log(f"wrote {os.path.join(args.out, 'kernels_gpu.md')} and .csv; status: {status}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

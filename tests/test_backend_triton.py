"""The Triton backend against the torch reference, on CPU through triton's interpreter.

``TRITON_INTERPRET=1`` must be set before triton is imported and would leak into every other
test in this process, so the kernel checks run in ONE child process: this file executed as a
script (``python tests/test_backend_triton.py OUT.json``) computes every case and writes the
relative errors; the tests below assert on them, one test per case. The rest runs in-process
without launching a kernel: dispatch, input errors, the autocast dtype, an ahead-of-time compile
of the kernels for sm_90, and benchmarks/kernels_gpu.py (no-CUDA exit, and its --cpu-smoke flow).

Relative error of a tensor: max |triton - reference| / max |reference| (random inputs and random
output gradients, so every gradient is non-zero; the scale is checked too). fp32 cases: <= 1e-4;
the autocast-bf16 case: <= 1e-2.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
import torch

try:
    import triton  # noqa: F401
    TRITON_ERROR = None
except Exception as exc:  # ImportError, or a broken install
    TRITON_ERROR = exc
needs_triton = pytest.mark.skipif(TRITON_ERROR is not None, reason=f"triton does not import: {TRITON_ERROR!r}")

RTOL = 1e-4    # fp32 (brief / issue #4)
RTOL_BF16 = 1e-2  # DESIGN §2 bf16 tolerance (autocast case: bf16 GEMMs, fp32 state)


# -- cases, run in the child process ---------------------------------------------------------

def _rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)), float(b.abs().max())


def _loss(tensors, seed):
    """A random linear functional of the outputs: every output gradient is random and non-zero."""
    gen = torch.Generator().manual_seed(seed)
    return sum((t.float() * torch.randn(t.shape, generator=gen)).sum() for t in tensors)


def _scan_inputs(T, B, d, H, seed):
    gen = torch.Generator().manual_seed(seed)
    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale
    # x, h0, c0, W_ih, W_hh, b_u, gamma, beta, rho (alpha = sigmoid(rho))
    return [rnd(T, B, d), rnd(B, H, scale=0.5), rnd(B, H, scale=0.5), rnd(2 * H, d, scale=0.4),
            rnd(2 * H, H, scale=0.4), rnd(H, scale=0.3), rnd(3, H), rnd(3, H, scale=0.5), torch.tensor(-0.7)]


SCAN_NAMES = ("out", "h_n", "c_n", "d_x", "d_h0", "d_c0", "d_weight_ih", "d_weight_hh", "d_bias_u", "d_gamma",
              "d_beta", "d_alpha")


def _scan_case(T, B, d, H, *, skip, convex, lengths=None, learn_alpha=False, blocks=None, grad=True, seed=0):
    from qlts.kernels import reference, triton_gpu

    triton_gpu._OVERRIDE = None if blocks is None else dict(zip(("BLOCK_B", "BLOCK_H", "BLOCK_K"), blocks))
    lengths = None if lengths is None else torch.tensor(lengths)
    inputs = _scan_inputs(T, B, d, H, seed)
    results = []
    for module in (reference, triton_gpu):
        leaves = [t.clone().requires_grad_(grad and (learn_alpha or i < 8)) for i, t in enumerate(inputs)]
        with torch.set_grad_enabled(grad):
            outs = module.scan(*leaves[:8], torch.sigmoid(leaves[8]), lengths, skip=skip, convex=convex)
        if grad:
            _loss(outs, seed + 1).backward()
            outs = list(outs) + [leaf.grad for leaf in leaves]
        results.append(outs)
    triton_gpu._OVERRIDE = None
    names = SCAN_NAMES if (grad and learn_alpha) else SCAN_NAMES[:-1] if grad else SCAN_NAMES[:3]
    return {name: _rel(tri, ref) for name, tri, ref in zip(names, results[1], results[0])}


def _layer_case(*, packed, hx, seed=0, autocast=None, **kwargs):
    from torch.nn.utils.rnn import pack_padded_sequence

    from qlts.nn import QLLSTM

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # skip_mode="additive" warns by design
        ref = QLLSTM(backend="torch", **kwargs)
        tri = QLLSTM(backend="triton", **kwargs)
    with torch.no_grad():  # move gamma, beta, b_u, alpha off their init so every term matters
        for p in ref.parameters():
            p.add_(0.3 * torch.randn_like(p))
    tri.load_state_dict(ref.state_dict())
    T, B, layers = 6, 3, ref.num_layers * ref.num_directions
    x = torch.randn(B, T, ref.input_size) if ref.batch_first else torch.randn(T, B, ref.input_size)
    state = [0.5 * torch.randn(layers, B, ref.hidden_size) for _ in range(2)]
    lengths = torch.tensor([4, 6, 2])
    results = []
    for model, cast in ((ref, None), (tri, autocast)):
        leaves = [t.clone().requires_grad_() for t in [x] + state]
        inp = pack_padded_sequence(leaves[0], lengths, batch_first=ref.batch_first, enforce_sorted=False) \
            if packed else leaves[0]
        with torch.autocast("cpu", dtype=cast, enabled=cast is not None):
            out, (h_n, c_n) = model(inp, tuple(leaves[1:]) if hx else None)
        out = out.data if packed else out
        _loss([out, h_n, c_n], seed + 1).backward()
        grads = {f"d_{n}": leaf.grad for n, leaf in zip(("input", "h0", "c0"), leaves) if leaf.grad is not None}
        grads.update({f"d_{n}": p.grad for n, p in model.named_parameters()})
        results.append({"out": out, "h_n": h_n, "c_n": c_n, **grads})
        if cast is not None:  # dtype plumbing: outputs in the autocast dtype, gradients in each parameter's
            assert out.dtype == cast, out.dtype
            assert all(p.grad.dtype == p.dtype for p in model.parameters())
    ref_res, tri_res = results
    assert set(ref_res) == set(tri_res), set(ref_res) ^ set(tri_res)
    return {name: _rel(tri_res[name], ref_res[name]) for name in ref_res}


if TRITON_ERROR is None:
    import triton.language as tl

    from qlts.kernels._triton_kernels import round_tf32

    @triton.jit
    def _round_kernel(x_ptr, y_ptr, N: tl.constexpr):
        r = tl.arange(0, N)
        tl.store(y_ptr + r, round_tf32(tl.load(x_ptr + r)))


def _round_tf32_case(seed=0):
    """The kernels' round_tf32 (run in a one-line kernel) against the host twin, on random values,
    exact ties (both parities) and values that carry into the exponent."""
    from qlts.kernels import triton_gpu

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4096, generator=gen) * 10.0 ** torch.randint(-6, 6, (4096,), generator=gen)
    bits = x.view(torch.int32)
    bits[:8] = (bits[:8] & -8192) | 0x1000  # halfway: ties to even, both parities below
    bits[4:8] |= 0x2000
    bits[8:16] |= 0x1FFF  # all dropped bits set: rounds up, carrying into the mantissa/exponent
    y = torch.empty_like(x)
    _round_kernel[(1,)](x, y, N=x.numel())
    host = triton_gpu.round_tf32(x)
    exact = torch.where(x.abs() > 0, (host - x).abs() / x.abs(), torch.zeros_like(x))
    # the kernel matches the host bit for bit; the host keeps 10 mantissa bits, within half a TF32 ulp
    return {"kernel_vs_host": (float((y.view(torch.int32) != host.view(torch.int32)).sum()), 1.0),
            "low_bits_set": (float((host.view(torch.int32) & 0x1FFF).ne(0).sum()), 1.0),
            "rounding_error_over_half_ulp": (float((exact > 2.0 ** -11).sum()), 1.0)}


LENGTHS_19 = [7, 1, 3, 5, 7, 2, 6, 4, 7, 7, 1, 2, 3, 4, 5, 6, 7, 6, 5]
CASES = {
    # name: (function, kwargs, tolerance)
    "k1_convex": (_scan_case, dict(T=5, B=3, d=4, H=8, skip=1, convex=True), RTOL),
    "k2_additive_lengths_learned_alpha": (
        _scan_case, dict(T=6, B=3, d=4, H=8, skip=2, convex=False, lengths=[6, 2, 4], learn_alpha=True), RTOL),
    # B=19 and H=20 with 16-wide blocks: two programs, two hidden blocks, two k-blocks, masked edges
    "k3_multiblock_lengths": (
        _scan_case, dict(T=7, B=19, d=5, H=20, skip=3, convex=True, lengths=LENGTHS_19, learn_alpha=True,
                         blocks=(16, 16, 16)), RTOL),
    "skip_longer_than_sequence": (
        _scan_case, dict(T=5, B=2, d=3, H=8, skip=2 ** 31 + 5, convex=True, learn_alpha=True), RTOL),
    "inference_no_grad_lengths": (
        _scan_case, dict(T=7, B=3, d=4, H=20, skip=2, convex=True, lengths=[3, 7, 1], grad=False,
                         blocks=(16, 16, 16)), RTOL),
    "layer_bidirectional_2layers_packed_learned_alpha": (
        _layer_case, dict(input_size=4, hidden_size=8, num_layers=2, bidirectional=True, skip=2,
                          learn_alpha=True, packed=True, hx=True), RTOL),
    "layer_additive_batch_first": (
        _layer_case, dict(input_size=4, hidden_size=8, batch_first=True, alpha=0.3, skip=1,
                          skip_mode="additive", packed=False, hx=True), RTOL),
    # counts of mismatching elements: 0 allowed
    "round_tf32": (_round_tf32_case, {}, 0.0),
    # bf16 input GEMMs, bf16 outputs and dz; in the interpreter the in-kernel dot runs in fp32
    "autocast_bf16_packed": (
        _layer_case, dict(input_size=4, hidden_size=8, skip=2, packed=True, hx=False, autocast=torch.bfloat16),
        RTOL_BF16),
}


def _child(path):
    from qlts.kernels import triton_gpu

    assert triton_gpu.interpreting(), "the child must run with TRITON_INTERPRET=1"
    report = {}
    for name, (fn, kwargs, _) in CASES.items():
        try:
            report[name] = {"errors": fn(**kwargs)}
        except Exception as exc:  # report per case, so one failure does not hide the others
            report[name] = {"exception": f"{type(exc).__name__}: {exc}"}
    with open(path, "w") as fh:
        json.dump(report, fh)


# -- tests (parent process) ------------------------------------------------------------------

@pytest.fixture(scope="module")
def interpreter_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("triton") / "report.json"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, __file__, str(path)], env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0 or not path.exists():
        pytest.fail(f"interpreter child failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(path.read_text())


@needs_triton
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference_under_interpreter(interpreter_report, case):
    entry = interpreter_report[case]
    assert "exception" not in entry, entry.get("exception")
    errors, tol = entry["errors"], CASES[case][2]
    fn, kwargs = CASES[case][:2]
    if fn is _round_tf32_case:
        assert set(errors) == {"kernel_vs_host", "low_bits_set", "rounding_error_over_half_ulp"}
    elif fn is _scan_case:
        grad, learn = kwargs.get("grad", True), kwargs.get("learn_alpha", False)
        expected = SCAN_NAMES if (grad and learn) else SCAN_NAMES[:-1] if grad else SCAN_NAMES[:3]
        assert set(errors) == set(expected)
    else:  # outputs, input/state gradients and one gradient per parameter
        assert {"out", "h_n", "c_n", "d_input"} <= set(errors) and any(n.startswith("d_weight_hh") for n in errors)
        if kwargs.get("learn_alpha"):
            assert any(n.startswith("d_alpha_logit") for n in errors)
    for name, (rel, scale) in errors.items():
        assert scale > 0, f"{name}: reference is all zeros, the comparison proves nothing"
        assert rel <= tol, f"{case}: {name} rel error {rel:.3g} > {tol}"


def test_auto_never_picks_triton_on_cpu():
    from qlts import kernels

    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
        assert kernels.resolve("auto", "cpu", dtype) != "triton"
        assert kernels.resolve("auto", torch.device("cpu"), dtype) != "triton"


@needs_triton
def test_auto_picks_triton_on_cuda():
    from qlts import kernels
    from qlts.kernels import triton_gpu

    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        assert kernels.resolve("auto", "cuda", dtype) == "triton"
        assert kernels.get_scan("auto", torch.device("cuda", 0), dtype) is triton_gpu.scan
    assert kernels.resolve("auto", "cuda", torch.float64) == "torch"  # the kernels have no float64 path


@needs_triton
def test_rejects_bad_input():
    from qlts.kernels import triton_gpu

    B, d, H = 2, 3, 4
    args = [torch.zeros(B, H), torch.zeros(B, H), torch.zeros(2 * H, d), torch.zeros(2 * H, H), torch.zeros(H),
            torch.ones(3, H), torch.zeros(3, H), torch.tensor(0.1)]
    with pytest.raises(TypeError, match="x: .*float64"):
        triton_gpu.scan(torch.zeros(5, B, d, dtype=torch.float64), *args)
    if not triton_gpu.interpreting():
        with pytest.raises(ValueError, match="x: .*CUDA tensor.*cpu"):
            triton_gpu.scan(torch.zeros(5, B, d), *args)


@needs_triton
def test_compute_dtype_follows_autocast():
    from qlts.kernels.triton_gpu import _compute_dtype

    x = torch.zeros(2, 2, 2)
    assert _compute_dtype(x) == torch.float32
    assert _compute_dtype(x.half()) == torch.float16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _compute_dtype(x) == torch.bfloat16


@needs_triton
@pytest.mark.parametrize("split", [False, True], ids=["one-program-per-tile", "split-hidden"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_kernels_compile_for_h100(dtype, split):
    """Ahead-of-time compile both kernels for sm_90 (no GPU needed): what the interpreter cannot
    check, that the kernels lower to PTX and assemble, with the launch's constexprs. The split
    variant's step barrier (which the interpreter cannot run) must be one release atomic per
    program, predicated to a single thread, then an acquire poll."""
    import re

    import triton
    import triton.language as tl

    from qlts.kernels import _triton_kernels as k
    from qlts.kernels import triton_gpu

    if triton_gpu.interpreting():
        pytest.skip("TRITON_INTERPRET is set in this process: kernels are interpreted, not compiled")
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:
        pytest.skip(f"this triton has no ahead-of-time compile API: {exc!r}")
    low = {"xw_ptr", "wt_ptr", "out_ptr", "w_ptr", "dout_ptr", "dz_ptr"}  # pointers in the compute dtype
    consts = {"CONVEX": True, "SAVE": True, "DOT_PRECISION": "tf32" if dtype == "fp32" else "ieee",
              "BLOCK_B": 16, "BLOCK_H": 32, "BLOCK_K": 64,
              "DOT_DTYPE": {"fp32": tl.float32, "bf16": tl.bfloat16}[dtype], "SPLIT": split}
    for kernel in (k.qllstm_fwd_kernel, k.qllstm_bwd_kernel):
        names = kernel.arg_names
        signature = {n: "constexpr" if n in consts else f"*{dtype}" if n in low
                     else "*i32" if n in ("len_ptr", "sync_ptr") else "*fp32" if n.endswith("_ptr") else "i32"
                     for n in names}
        try:
            compiled = triton.compile(ASTSource(kernel, signature, {n: consts[n] for n in names if n in consts}),
                                      target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
        except RuntimeError as exc:
            if "ptxas" in str(exc).lower() and "not found" in str(exc).lower():
                pytest.skip(f"triton's ptxas is missing: {exc}")
            raise
        ptx = compiled.asm["ptx"]
        assert "bar.sync" in ptx or "barrier.sync" in ptx
        # an atomic whose result is unused lowers to red.* (triton >= 3.7) or atom.*
        atomics = re.findall(r"^\s*(@%p\d+ )?(?:atom|red)\.\S+", ptx, flags=re.MULTILINE)
        if split:
            assert len(atomics) == 1 and atomics[0], f"expected one predicated atomic, got {atomics}"
            assert re.search(r"(atom|red)\.global\.gpu\.release\.add", ptx)
            assert re.search(r"ld\.global\.gpu\.acquire|atom\.global\.gpu\.acquire", ptx)
        else:
            assert not atomics


BENCHMARK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "kernels_gpu.py")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path; this machine has CUDA")
def test_gpu_benchmark_without_cuda_says_so(tmp_path):
    proc = subprocess.run([sys.executable, BENCHMARK, "--quick", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "no CUDA device" in proc.stderr
    assert not list(tmp_path.iterdir())


@needs_triton
def test_gpu_benchmark_cpu_smoke_writes_report(tmp_path):
    """The GPU benchmark's whole flow (agreement check, interleaved timing, md/csv report) on CPU
    under the interpreter at toy sizes, so a blind GPU run does not die on a script bug."""
    import csv

    marker = "<!-- notes: text below this line is kept when the tables are regenerated -->"
    (tmp_path / "kernels_gpu.md").write_text(f"an old table\n{marker}\n## Reading (hand-written)\n")
    cmd = [sys.executable, BENCHMARK, "--cpu-smoke", "--dtypes", "fp32", "--sizes", "0", "--reps", "2",
           "--warmup", "1", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    md = (tmp_path / "kernels_gpu.md").read_text()
    assert "Status: **complete**" in md and "--cpu-smoke" in md
    assert "an old table" not in md and md.endswith(f"{marker}\n## Reading (hand-written)\n")  # notes kept
    agreement = [line for line in md.splitlines() if line.startswith("| H=")]
    # 2 configurations x (default launch, 1 program per batch tile); split launches need a GPU
    assert len(agreement) == 4 and all(line.endswith("| yes |") for line in agreement), agreement
    assert sum("| 1 program per batch tile |" in line for line in agreement) == 2
    with open(tmp_path / "kernels_gpu.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["model"], r["mode"]) for r in rows} == {(m, mode) for m in ("lstm", "gru", "ql_triton", "ql_torch")
                                                       for mode in ("fwd", "fwd+bwd")}
    assert all(float(r["median_ms"]) > 0 and r["error"] == "" for r in rows)


if __name__ == "__main__":
    _child(sys.argv[1])

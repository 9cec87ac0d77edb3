"""The Triton scan: the QL-LSTM time loop fused into one kernel for the forward and one for the backward.

Contract: ``scan(...)`` of :mod:`qlts.kernels.reference` (DESIGN §1-2). CUDA tensors, or CPU
tensors when ``TRITON_INTERPRET=1`` was set before triton was imported (tests, fp32 only).

Data flow of one call (x is (T, B, d), time-major):

- forward: ``xw = x @ W_x^T`` for all t as one GEMM (torch), then ``qllstm_fwd_kernel`` runs
  the time loop. It writes the outputs and, when a gradient is needed, the per-step state
  (h, c, fp32) and pre-activations z = (a, u) (fp32) for the backward.
- backward: ``qllstm_bwd_kernel`` runs the time loop in reverse and writes dz_t for every t,
  plus per-program partial sums for gamma, beta, b_u and alpha. Then one GEMM each gives
  ``dx = dz W_x``, ``dW_x = dz^T x`` and ``dW_h = dz^T h_{t-1}`` (torch).

Precision: the input GEMMs and the in-kernel recurrent ``tl.dot`` run in the compute dtype
(fp32, bf16 or fp16: x's dtype, or the autocast dtype when ``torch.autocast`` is on for x's
device); state, gates and every accumulation are fp32. In fp32 the recurrent dot uses TF32
exactly when ``torch.backends.cudnn.allow_tf32`` is set (torch's default, and what cuDNN's LSTM
uses), otherwise full fp32. TF32 operands are rounded to nearest (``round_tf32``), as cuBLAS does;
the tensor cores alone would truncate them.

Parallelism: one program per 16 batch rows (64 at large batch) and, when that leaves at least half the SMs idle,
the hidden units split across the idle SMs (``SPLITS`` programs per batch tile, launched
co-resident, one step barrier in global memory per step; see :mod:`._triton_kernels`). A split
program reads only its slice of W_h each step, so the slice stays in L1, and B=16 no longer runs
on one SM. The per-step state round-trips through L2 (``hs``/``cs`` buffers); the buffers are
needed by the backward and by the K-step skip anyway.
"""
from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

from .._validation import check_int
from ._triton_kernels import qllstm_bwd_kernel, qllstm_fwd_kernel

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_TL_DTYPES = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}
_MIN_BLOCK = 16  # tl.dot needs every block dimension >= 16
_MAX_BLOCK_H = 64
_MAX_BLOCK_K = 64
_NUM_WARPS = 4
_SPLIT_BLOCK_H = 32
_LARGE_BLOCK_B = 64
# Launch configuration override, a dict with any of BLOCK_B, BLOCK_H, BLOCK_K, num_warps, num_stages, SPLITS: the
# tests force small blocks to exercise the multi-block paths; benchmarks/kernels_gpu.py --sweep tries others.
_OVERRIDE = None


def interpreting() -> bool:
    """Whether triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1`` at import time)."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.lru_cache(maxsize=None)
def _sm_count(device):
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


def _launch_config(batch, hidden, device):
    """Block sizes, warps and SPLITS (programs per batch tile, each owning every SPLITS-th block of
    hidden units), chosen by the launch sweep in benchmarks/results/kernels_gpu_sweep.md:

    - batch tiles of 16 rows (the tl.dot minimum, so the most programs), or of 64 rows when
      16-row tiles would fill more than a quarter of the SMs (bf16 forward on an H200, ratio to
      cuDNN LSTM: B=1024, 0.60x against 0.90x with 16-row tiles; B=256, 64-row tiles 0.60x
      against 0.47x, first sweep);
    - when the tiles leave at least half the SMs idle, the hidden units split over the idle SMs
      (one program per SM at most: a step barrier needs them all resident), in blocks of 32 or
      64 sized so that each program owns about one block (B=256, H=512: 64-wide blocks 0.46x,
      32-wide 0.56x; unsplit, 2.38x).
    """
    override = dict(_OVERRIDE or {})
    width = max(_MIN_BLOCK, triton.next_power_of_2(hidden))
    sms = _sm_count(device)
    large = 4 * triton.cdiv(batch, _MIN_BLOCK) > sms and not interpreting()
    block_b = override.pop("BLOCK_B", _LARGE_BLOCK_B if large else _MIN_BLOCK)
    tiles = triton.cdiv(batch, block_b)
    split = 2 * tiles <= sms and not interpreting()
    block_h = _MAX_BLOCK_H
    if split:
        per_program = triton.next_power_of_2(triton.cdiv(hidden, sms // tiles))
        block_h = min(max(per_program, _SPLIT_BLOCK_H), _MAX_BLOCK_H)
    config = {"BLOCK_B": block_b, "BLOCK_H": min(width, block_h), "BLOCK_K": min(width, _MAX_BLOCK_K),
              "num_warps": _NUM_WARPS}
    splits = override.pop("SPLITS", None)
    config.update(override)
    blocks = triton.cdiv(hidden, config["BLOCK_H"])
    if splits is None:
        splits = min(blocks, sms // tiles) if split else 1
    splits = max(1, min(splits, blocks))
    if splits > 1 and (interpreting() or tiles * splits > sms):
        # the interpreter runs programs one after another, and a barrier needs them all resident
        raise ValueError(f"SPLITS: expected at most {sms} resident programs (batch tiles x SPLITS) on "
                         f"{'the interpreter' if interpreting() else device}, got {tiles} x {splits}")
    config["SPLITS"] = splits
    return config


def _launch(kernel, config, tiles, device, *args, **constexprs):
    """Launch ``kernel`` over (batch tiles, hidden splits); split programs get step-barrier
    counters and a cooperative launch (which fails instead of hanging if they cannot all be resident)."""
    config = dict(config)
    splits = config.pop("SPLITS")
    # the counters are read only when split: an unsplit launch gets a placeholder, and no memset on its path
    sync = torch.zeros(tiles, dtype=torch.int32, device=device) if splits > 1 else \
        torch.empty(1, dtype=torch.int32, device=device)
    extra = {"launch_cooperative_grid": True} if splits > 1 else {}
    kernel[(tiles, splits)](*args, sync, SPLIT=splits > 1, **constexprs, **config, **extra)


def _dot_options(device, dtype):
    """(DOT_PRECISION, DOT_DTYPE) for the kernels' recurrent ``tl.dot``."""
    if device.type != "cuda":  # the interpreter: its low-precision dot is broken, so dot in fp32
        return {"DOT_PRECISION": "ieee", "DOT_DTYPE": tl.float32}
    # input_precision matters for fp32 operands only; bf16/fp16 operands go to the tensor cores as they are
    precision = "tf32" if dtype == torch.float32 and torch.backends.cudnn.allow_tf32 else "ieee"
    return {"DOT_PRECISION": precision, "DOT_DTYPE": _TL_DTYPES[dtype]}


def round_tf32(t):
    """fp32 ``t`` rounded to TF32 (10-bit mantissa, to nearest even); the host twin of the
    kernels' ``round_tf32``, applied once to W_h instead of at every step."""
    bits = t.contiguous().view(torch.int32)
    return ((bits + 0xFFF + ((bits >> 13) & 1)) & -8192).view(torch.float32)


def _recurrent_weight(w, dot):
    return round_tf32(w.contiguous()) if dot["DOT_PRECISION"] == "tf32" else w.contiguous()


def _compute_dtype(x):
    """x's dtype, or the autocast dtype when autocast is on for x's device (as nn.LSTM does)."""
    device_type = x.device.type
    try:
        enabled, dtype = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError):  # torch < 2.4: per-device functions
        if device_type == "cuda":
            enabled, dtype = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
        else:
            enabled, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
    return dtype if enabled else x.dtype


def _check(x, h0, weight_ih, weight_hh, lengths, dtype):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"x: backend='triton' expected dtype float32, bfloat16 or float16, got {dtype} "
                        "(use backend='torch' for other dtypes)")
    if x.device.type != "cuda" and not interpreting():
        raise ValueError(f"x: backend='triton' expected a CUDA tensor, got device {x.device} "
                         "(CPU tensors run only under TRITON_INTERPRET=1, for testing)")
    if x.dim() != 3 or x.shape[0] < 1:
        raise ValueError(f"x: expected shape (T, B, d) with T >= 1, got {tuple(x.shape)}")
    T, B, d = x.shape
    H = weight_hh.shape[1]
    if tuple(weight_ih.shape) != (2 * H, d) or tuple(weight_hh.shape) != (2 * H, H):
        raise ValueError(f"weight_ih, weight_hh: expected shapes {(2 * H, d)} and {(2 * H, H)}, got "
                         f"{tuple(weight_ih.shape)} and {tuple(weight_hh.shape)}")
    if tuple(h0.shape) != (B, H):
        raise ValueError(f"h0: expected shape {(B, H)}, got {tuple(h0.shape)}")
    if (T + 1) * B * 2 * H >= 2 ** 31:
        raise ValueError(f"x: (T+1)*B*2H must be < 2**31 for the kernel's int32 offsets, got T={T}, B={B}, H={H}; "
                         "split the batch")
    if lengths is not None:
        if tuple(lengths.shape) != (B,):
            raise ValueError(f"lengths: expected shape {(B,)}, got {tuple(lengths.shape)}")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"lengths: expected values in [1, {T}], got min {lo} and max {hi}")


class _QLScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths, skip, convex,
                save):
        T, B, _ = x.shape
        H = weight_hh.shape[1]
        dev = x.device
        f32 = {"device": dev, "dtype": torch.float32}
        xw = (x.reshape(T * B, -1) @ weight_ih.t()).view(T, B, 2 * H)
        hs = torch.empty(T + 1, B, H, **f32)
        hs[0] = h0
        cs = torch.empty(T + 1 if save else 2, B, H, **f32)  # inference: c ping-pongs between 2 slots
        cs[0] = c0
        z = torch.empty(T, B, 2 * H, **f32) if save else hs  # hs: a placeholder pointer, never written
        out = torch.empty(T, B, H, device=dev, dtype=x.dtype)
        lens = _lengths(lengths, T, B, dev)
        params = [p.detach().to(torch.float32).contiguous() for p in (bias_u, gamma, beta, alpha)]
        config, dot = _launch_config(B, H, dev), _dot_options(dev, x.dtype)
        _launch(qllstm_fwd_kernel, config, triton.cdiv(B, config["BLOCK_B"]), dev,
                xw, _recurrent_weight(weight_hh.t(), dot), *params, lens, hs, cs, z, out,
                T, B, H, skip, cs.shape[0],
                CONVEX=convex, SAVE=save, **dot)
        if save:
            ctx.save_for_backward(x, weight_ih, weight_hh, gamma, beta, alpha, lens, hs, cs, z)
            ctx.skip, ctx.convex, ctx.h0_dtype, ctx.c0_dtype = skip, convex, h0.dtype, c0.dtype
        # copies: the outputs must not alias the buffers saved for the backward
        return out, hs[-1].to(x.dtype, copy=True), cs[T % cs.shape[0]].to(x.dtype, copy=True)

    @staticmethod
    def backward(ctx, d_out, d_hn, d_cn):
        x, weight_ih, weight_hh, gamma, beta, alpha, lens, hs, cs, z = ctx.saved_tensors
        T, B, d = x.shape
        H = weight_hh.shape[1]
        dev = x.device
        dtype = x.dtype
        f32 = {"device": dev, "dtype": torch.float32}
        d_out = torch.zeros(T, B, H, device=dev, dtype=dtype) if d_out is None else d_out.contiguous()
        dh = torch.zeros(2, B, H, **f32)  # ping-pong carries, slot 0 = (dh_n, dc_n)
        dc = torch.zeros(2, B, H, **f32)
        if d_hn is not None:
            dh[0] = d_hn
        if d_cn is not None:
            dc[0] = d_cn
        s = torch.empty(T, B, H, **f32)
        dz = torch.empty(T, B, 2 * H, device=dev, dtype=dtype)
        config, dot = _launch_config(B, H, dev), _dot_options(dev, dtype)
        tiles = triton.cdiv(B, config["BLOCK_B"])
        part = torch.zeros(tiles, 8, H, **f32)
        gamma32, beta32, alpha32 = (p.to(torch.float32).contiguous() for p in (gamma, beta, alpha))
        _launch(qllstm_bwd_kernel, config, tiles, dev,
                z, hs, cs, _recurrent_weight(weight_hh, dot), gamma32, beta32, alpha32, lens, d_out, dh, dc, s, dz,
                part, T, B, H, ctx.skip,
                CONVEX=ctx.convex, **dot)
        # h_{t-K} = h_0 for t < K: those steps' skip gradients land on h_0
        dh0 = dh[T % 2] + alpha32 * s[:min(ctx.skip, T)].sum(0)
        sums = part.sum(0)
        dz2 = dz.view(T * B, 2 * H)
        need = ctx.needs_input_grad
        with torch.autocast(dev.type, enabled=False):
            dx = (dz2 @ weight_ih).view(T, B, d) if need[0] else None
            d_wih = dz2.t() @ x.reshape(T * B, d) if need[3] else None
            d_whh = dz2.t() @ hs[:T].reshape(T * B, H).to(dtype) if need[4] else None
        return (dx, dh0.to(ctx.h0_dtype), dc[T % 2].to(ctx.c0_dtype), d_wih, d_whh, sums[6], sums[0:3], sums[3:6],
                sums[7].sum().to(alpha.dtype), None, None, None, None)


def _lengths(lengths, T, B, device):
    if lengths is None:
        return torch.full((B,), T, dtype=torch.int32, device=device)
    return lengths.to(device=device, dtype=torch.int32, non_blocking=True)


def scan(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths=None, *, skip=1, convex=True):
    """Fused QL-LSTM scan; same contract as :func:`qlts.kernels.reference.scan`."""
    dtype = _compute_dtype(x) if isinstance(x, torch.Tensor) else None
    _check(x, h0, weight_ih, weight_hh, lengths, dtype)
    if not torch.is_tensor(alpha):
        alpha = torch.tensor(float(alpha), device=x.device)
    # casts happen here, outside the autograd.Function, so autograd returns each gradient in its
    # parameter's own dtype
    tensors = (x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha)
    save = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    x, weight_ih, weight_hh = (t.to(dtype).contiguous() for t in (x, weight_ih, weight_hh))
    # K >= T reads h_0 at every step; clamping keeps t + K inside int32 in the kernels
    skip = min(check_int("skip", skip, min_value=1), x.shape[0])
    with torch.autocast(x.device.type, enabled=False):
        return _QLScan.apply(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha.to(torch.float32),
                             lengths, skip, bool(convex), save)

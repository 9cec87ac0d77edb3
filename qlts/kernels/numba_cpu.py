"""The fused CPU backend (``backend="numba"``): the QL-LSTM scan as numba loops inside a
``torch.autograd.Function``. Contract: :mod:`qlts.kernels.reference`.

Forward: W_x x for all t is one torch GEMM; then a compiled time loop makes, per step, one
BLAS product h W_h^T and one fused element-wise pass (gates, state, skip). Backward: a
compiled reverse loop stores dz_t for every t (one BLAS product dz W_h per step carries
dh back), accumulates the gradients of gamma, beta, b_u and alpha on the way, and then
dW_x, dW_h and dx are one torch GEMM each. Under ``torch.no_grad()``, or when no input
requires grad, nothing is saved for backward and the input projection is folded into the
per-step product instead ([x_t | h_{t-1}] @ [W_x | W_h]^T): with no (a, u) to keep, a
separate GEMM over all t would only write and re-read a (T, B, 2H) buffer. float32 and float64 only; any other dtype,
or a non-CPU tensor, raises.

Threads. The batch is cut into ``min(torch.get_num_threads(), batch)`` chunks of rows
that run the whole time loop on their own Python thread (the kernels release the GIL),
with no synchronisation between steps. numba's own threading layer is not used. The
per-step products call a Fortran ?gemm (:mod:`._numba_blas`: the MKL inside torch when
torch exports it, else scipy's OpenBLAS) that is kept at one thread per chunk thread:
MKL through its thread-local setting, OpenBLAS through threadpoolctl while any scan runs.
So chunks x BLAS threads never exceeds the torch thread count, and the limits are
restored when the scan returns. The GEMMs outside the loops are torch's and use torch's
threads. ``torch.set_num_threads(n)`` therefore sets the parallelism of the whole scan; a
batch of 1 runs its time loop on one core.

Vectorisation. exp/sigmoid/tanh are branch-free numba code (:mod:`._numba_math`) so the
element-wise loops compile to SIMD. Importing this module raises two LLVM vectoriser limits
(runtime alias checks) for the whole process, for numba code compiled after the import;
this changes which loops are vectorised, never results.

Compilation. The kernels are compiled on first use per dtype and cached on disk
(``cache=True``; numba's cache directory, ``NUMBA_CACHE_DIR`` to move it). A cold first
call compiles for several seconds (see benchmarks/results/kernels_cpu.md); later
processes load the cache.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from . import _numba_blas as _blas_calls
from . import _numba_scan as _k

_DTYPES = (torch.float32, torch.float64)
_lock = threading.Lock()
_pool, _pool_size = None, 0
_blas, _limiter, _active = None, None, 0  # BLAS libraries, their thread limit, scans running under it


def _check_inputs(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths, skip):
    named = {"x": x, "h0": h0, "c0": c0, "weight_ih": weight_ih, "weight_hh": weight_hh, "bias_u": bias_u,
             "gamma": gamma, "beta": beta, "alpha": alpha}
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
        if value.device.type != "cpu":
            raise ValueError(f"{name}: the numba backend runs on the CPU only, got a tensor on {value.device}; "
                             "use backend='triton' or 'torch' on other devices")
    if x.dtype not in _DTYPES:
        raise TypeError(f"x: the numba backend supports float32 and float64, got dtype {x.dtype}; "
                        "use backend='torch' for other dtypes")
    for name, value in named.items():
        if value.dtype != x.dtype:
            raise TypeError(f"{name}: expected dtype {x.dtype} (the dtype of x), got {value.dtype}")
    if x.dim() != 3:
        raise ValueError(f"x: expected a 3-D (T, B, d) tensor, got shape {tuple(x.shape)}")
    T, B, d = x.shape
    H = weight_hh.shape[1]
    shapes = {"h0": (B, H), "c0": (B, H), "weight_ih": (2 * H, d), "weight_hh": (2 * H, H), "bias_u": (H,),
              "gamma": (3, H), "beta": (3, H), "alpha": ()}
    for name, shape in shapes.items():
        if tuple(named[name].shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(named[name].shape)}")
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 1:
        raise ValueError(f"skip: expected an int >= 1, got {skip!r}")
    if lengths is not None:
        if not isinstance(lengths, torch.Tensor) or lengths.dtype != torch.int64 or tuple(lengths.shape) != (B,):
            raise TypeError(f"lengths: expected None or an int64 tensor of shape ({B},), got {lengths!r}")
        if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
            raise ValueError(f"lengths: expected values in [1, {T}], got min {int(lengths.min())} "
                             f"and max {int(lengths.max())}")


def _numpy(t):
    return t.detach().contiguous().numpy()


def _n_chunks(batch):
    return max(1, min(torch.get_num_threads(), batch))


def _run_chunks(kernel, batch, args_for):
    """Run ``kernel(*args_for(b0, b1, k))`` for the k-th chunk of rows [b0, b1), one chunk per
    thread (see the module docstring)."""
    n = _n_chunks(batch)
    bounds = [(batch * k // n, batch * (k + 1) // n, k) for k in range(n)]
    pool = _enter(n - 1)
    try:
        futures = [pool.submit(_single_threaded, kernel, *args_for(*bound)) for bound in bounds[1:]]
        _single_threaded(kernel, *args_for(*bounds[0]))
        for future in futures:
            future.result()
    finally:
        _exit()


def _single_threaded(kernel, *args):
    previous = _blas_calls.set_local_threads(1)  # MKL: this thread only
    try:
        kernel(*args)
    finally:
        _blas_calls.set_local_threads(previous)


def _enter(workers):
    """Limit the BLAS numba calls to one thread (while any scan runs) and return a pool with
    at least ``workers`` threads."""
    global _pool, _pool_size, _blas, _limiter, _active
    with _lock:
        if _blas is None:  # listing the loaded libraries is slow (~1 ms): do it once
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba's np.dot calls: load it to limit it)
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController().select(user_api="blas")
        if _active == 0:
            _limiter = _blas.limit(limits=1)
        _active += 1
        if workers > _pool_size:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qlts-numba")
            _pool_size = workers
        return _pool


def _exit():
    global _active
    with _lock:
        _active -= 1
        if _active == 0:
            _limiter.restore_original_limits()


def _forward(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths, skip, convex):
    """out, h_n, c_n and what backward needs: (a, u) per step (T, B, 2, H) and c per step."""
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    a, kappa = _alpha_kappa(alpha, convex)
    xw = (x.detach() @ weight_ih.detach().t()).contiguous().view(T, B, 2, H)  # becomes (a, u) in place
    out, h_n, c_n = _outputs(T, B, H, x.dtype)
    c_all = torch.empty(T, B, H, dtype=x.dtype)
    fixed = (xw.numpy(), _numpy(h0), _numpy(c0), _numpy(weight_hh.t()), _numpy(bias_u), _numpy(gamma),
             _numpy(beta), a, kappa, _lengths(lengths, T, B), skip)
    outputs = (out.numpy(), h_n.numpy(), c_n.numpy(), c_all.numpy())
    _run_chunks(_k.forward_chunk, B, lambda b0, b1, k: fixed + (b0, b1) + outputs)
    return out, h_n, c_n, xw, c_all


def _infer(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths, skip, convex):
    """out, h_n, c_n with nothing saved: one product per step against [W_x | W_h]^T."""
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    a, kappa = _alpha_kappa(alpha, convex)
    w_cat_t = torch.cat([weight_ih.detach(), weight_hh.detach()], 1).t()
    out, h_n, c_n = _outputs(T, B, H, x.dtype)
    fixed = (_numpy(x), _numpy(h0), _numpy(c0), _numpy(w_cat_t), _numpy(bias_u), _numpy(gamma), _numpy(beta), a,
             kappa, _lengths(lengths, T, B), skip)
    outputs = (out.numpy(), h_n.numpy(), c_n.numpy())
    _run_chunks(_k.infer_chunk, B, lambda b0, b1, k: fixed + (b0, b1) + outputs)
    return out, h_n, c_n


def _alpha_kappa(alpha, convex):
    """alpha as a float and the gated update's weight kappa (DESIGN section 1)."""
    a = float(alpha)
    return a, (1.0 - a if convex else 1.0)


def _outputs(T, B, H, dtype):
    return torch.empty(T, B, H, dtype=dtype), torch.empty(B, H, dtype=dtype), torch.empty(B, H, dtype=dtype)


def _lengths(lengths, T, B):
    return np.full(B, T, dtype=np.int64) if lengths is None else _numpy(lengths)


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths, skip, convex):
        out, h_n, c_n, au, c_all = _forward(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths,
                                            skip, convex)
        ctx.save_for_backward(x, h0, c0, weight_ih, weight_hh, gamma, beta, alpha, out, au, c_all)
        ctx.lengths, ctx.skip, ctx.convex = lengths, skip, convex
        return out, h_n, c_n

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, dh_n, dc_n):
        x, h0, c0, weight_ih, weight_hh, gamma, beta, alpha, out, au, c_all = ctx.saved_tensors
        T, B, d = x.shape
        H = weight_hh.shape[1]
        a, kappa = _alpha_kappa(alpha, ctx.convex)
        d_z = torch.empty(T, B, 2 * H, dtype=x.dtype)
        dh0 = torch.empty(B, H, dtype=x.dtype)
        dc0 = torch.empty(B, H, dtype=x.dtype)
        n = _n_chunks(B)
        acc = [np.zeros((n,) + shape) for shape in ((3, H), (3, H), (H,), (H,))]  # float64 partial sums
        fixed = (_numpy(d_out), _numpy(dh_n), _numpy(dc_n), au.numpy(), c_all.numpy(), out.numpy(), _numpy(h0),
                 _numpy(c0), _numpy(weight_hh), _numpy(gamma), _numpy(beta), a, kappa, ctx.convex,
                 _lengths(ctx.lengths, T, B), ctx.skip)
        outputs = (d_z.numpy(), dh0.numpy(), dc0.numpy())
        _run_chunks(_k.backward_chunk, B,
                    lambda b0, b1, k: fixed + (b0, b1) + outputs + tuple(part[k] for part in acc))
        d_gamma, d_beta, d_bias_u, d_alpha = (torch.from_numpy(part.sum(0)).to(x.dtype) for part in acc)
        need = ctx.needs_input_grad
        z2 = d_z.view(T * B, 2 * H)
        dx = (z2 @ weight_ih).view(T, B, d) if need[0] else None
        dw_ih = z2.t() @ x.reshape(T * B, d) if need[3] else None
        dw_hh = None
        if need[4]:  # h_{t-1} is h0 at t = 0 and out[t-1] after (valid wherever dz_t is nonzero)
            dw_hh = d_z[0].t() @ h0
            if T > 1:
                dw_hh = dw_hh.addmm_(d_z[1:].reshape(-1, 2 * H).t(), out[:-1].reshape(-1, H))
        d_alpha = d_alpha.sum().reshape(()) if need[8] else None
        return (dx, dh0, dc0, dw_ih, dw_hh, d_bias_u, d_gamma, d_beta, d_alpha, None, None, None)


def scan(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths=None, *, skip=1, convex=True):
    """The QL-LSTM scan, fused in numba (contract: :mod:`qlts.kernels.reference`)."""
    _check_inputs(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths, skip)
    inputs = (x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        return _Scan.apply(*inputs, lengths, skip, bool(convex))
    return _infer(*inputs, lengths, skip, bool(convex))

"""The fused QL-LSTM time loops (forward and backward) for :mod:`qlts.kernels.numba_cpu`.

Each kernel runs the whole sequence for one chunk of batch rows [b0, b1). Rows never
interact in the recurrence, so chunks run on separate threads with no synchronisation.
Per step: one BLAS product on a contiguous per-chunk state buffer, then one fused
element-wise pass. All buffers are allocated once per call, never per step.

Layouts (time-major, C-contiguous): xw (T, B, 2, H) = W_x x (rows a, u); d_z (T, B, 2H);
out and c_all (T, B, H); lengths (B,) int64 (T where there are no lengths). Steps
t >= lengths[b] keep row b's state and output zeros.

Vectorisation: LLVM runs the SIMD version of a loop only when its runtime alias checks
pass. Storing d_a and d_u into the two halves of one dz row made them fail at run time
(the scalar loop ran; the backward loop was 2.7x slower), so d_u has its own array.
"""
from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from numba import njit

from ._numba_blas import gemm_args, matmul
from ._numba_math import fast_sigmoid, fast_tanh

# The fused loops touch ~15 arrays; with LLVM's default budget of 8 runtime alias checks
# they stay scalar (the forward pass ran 1.7x slower). Raising it only lets more loops
# vectorise: the checks still run, so results are unchanged. Process-wide, for numba code
# compiled after this import.
llvm.set_option("qlts", "-runtime-memory-check-threshold=256")
llvm.set_option("qlts", "-vectorize-memory-check-threshold=1024")

_JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})


@njit(**_JIT)
def _as_dtype(like, alpha, kappa):
    """1, alpha and kappa in the arrays' dtype: a float64 scalar would promote float32 math."""
    cast = like.dtype.type
    return cast(1), cast(alpha), cast(kappa)


@njit(inline="always", **_JIT)
def _cell(a, u, c_prev, h_prev, h_skip, g_i, g_f, g_o, b_i, b_f, b_o, one, al, kp):
    """One unit of DESIGN section 1 from its pre-activations a, u: returns (c_t, h_t).

    Inlined in numba's IR and given scalars only: as a call, or with array arguments, the
    calling loops stopped vectorising (3x slower)."""
    ig = fast_sigmoid(g_i * a + b_i)
    fg = fast_sigmoid(g_f * a + b_f)
    og = fast_sigmoid(g_o * a + b_o)
    c = fg * c_prev + ig * fast_tanh(u)
    h = kp * (fg * h_prev + (one - fg) * (og * fast_tanh(c))) + al * h_skip
    return c, h


@njit(**_JIT)
def forward_chunk(xw, h0, c0, w_hh_t, bias_u, gamma, beta, alpha, kappa, lengths, skip, b0, b1,
                  out, h_n, c_n, c_all):
    """Training forward loop for rows [b0, b1).

    xw[t, b] (rows a, u of a (2, H) array) holds W_x x_t and is overwritten in place with
    (a_t, u_t); c_all[t, b] receives c_t. With out, that is all the backward pass needs (it
    recomputes the gates).
    """
    T = xw.shape[0]
    H = h0.shape[1]
    n = b1 - b0
    one, al, kp = _as_dtype(h0, alpha, kappa)
    ints, scalars = gemm_args(h0)
    hb = h0[b0:b1].copy()  # h_{t-1}, updated in place (the GEMM reads it before the update)
    cb = c0[b0:b1].copy()
    zh = np.empty((n, 2 * H), dtype=h0.dtype)
    for t in range(T):
        matmul(hb, w_hh_t, zh, ints, scalars)
        for bb in range(n):
            b = b0 + bb
            o_row = out[t, b]
            if t >= lengths[b]:  # past the end: state unchanged, output zero
                o_row[:] = 0
                continue
            hp = hb[bb]
            cp = cb[bb]
            hs = out[t - skip, b] if t >= skip else h0[b]
            x_row = xw[t, b]  # (2, H)
            z_row = zh[bb]
            c_row = c_all[t, b]
            for j in range(H):
                a = x_row[0, j] + z_row[j]
                u = x_row[1, j] + z_row[H + j] + bias_u[j]
                c, h = _cell(a, u, cp[j], hp[j], hs[j], gamma[0, j], gamma[1, j], gamma[2, j], beta[0, j], beta[1, j],
                             beta[2, j], one, al, kp)
                x_row[0, j] = a
                x_row[1, j] = u
                cp[j] = c
                c_row[j] = c
                hp[j] = h
                o_row[j] = h
    h_n[b0:b1] = hb
    c_n[b0:b1] = cb


@njit(**_JIT)
def infer_chunk(x, h0, c0, w_cat_t, bias_u, gamma, beta, alpha, kappa, lengths, skip, b0, b1, out, h_n, c_n):
    """Inference forward loop for rows [b0, b1): nothing is kept for backward.

    Each step makes ONE product [x_t | h_{t-1}] @ [W_x | W_h]^T (w_cat_t is (d + H, 2H)).
    With no (a, u) to keep, folding the input projection into the recurrent product saves
    writing and re-reading a (T, B, 2H) buffer: 1.1-1.2x faster than a separate GEMM over
    all t (benchmarks/results/kernels_cpu.md).
    """
    T, _, d = x.shape
    H = h0.shape[1]
    n = b1 - b0
    one, al, kp = _as_dtype(h0, alpha, kappa)
    ints, scalars = gemm_args(h0)
    xh = np.empty((n, d + H), dtype=h0.dtype)  # [x_t | h_{t-1}]; the h half is updated in place
    xh[:, d:] = h0[b0:b1]
    cb = c0[b0:b1].copy()
    zh = np.empty((n, 2 * H), dtype=h0.dtype)
    for t in range(T):
        xh[:, :d] = x[t, b0:b1]
        matmul(xh, w_cat_t, zh, ints, scalars)
        for bb in range(n):
            b = b0 + bb
            o_row = out[t, b]
            if t >= lengths[b]:
                o_row[:] = 0
                continue
            hp = xh[bb, d:]
            cp = cb[bb]
            hs = out[t - skip, b] if t >= skip else h0[b]
            z_row = zh[bb]
            for j in range(H):
                c, h = _cell(z_row[j], z_row[H + j] + bias_u[j], cp[j], hp[j], hs[j], gamma[0, j], gamma[1, j],
                             gamma[2, j], beta[0, j], beta[1, j], beta[2, j], one, al, kp)
                cp[j] = c
                hp[j] = h
                o_row[j] = h
    h_n[b0:b1] = xh[:, d:]
    c_n[b0:b1] = cb


@njit(**_JIT)
def backward_chunk(d_out, dh_n, dc_n, au_all, c_all, out, h0, c0, w_hh, gamma, beta, alpha, kappa, convex,
                   lengths, skip, b0, b1, d_z, dh0, dc0, d_gamma, d_beta, d_bias_u, d_alpha):
    """Reverse loop for rows [b0, b1); recomputes the gates from the saved (a, u) and c.

    Writes d_z (T, B, 2H) = dL/dz_t, dh0, dc0, and this chunk's partial sums d_gamma (3, H),
    d_beta (3, H), d_bias_u (H,), d_alpha (H,) (float64; the caller sums them). Each step
    first sums over the chunk's rows in the input dtype (``part``), then adds that to the
    float64 sums: float64 inside the fused loop would make LLVM vectorise it 4 wide instead
    of 8 (float32: the reverse loop ran 1.3x slower).
    The skip path's gradient (alpha dh_t flows to h_{t-K}) waits in a ring of K slots:
    step t reads slot t % K (what step t + K sent) and refills it for step t - K.
    """
    T = d_out.shape[0]
    H = h0.shape[1]
    n = b1 - b0
    dh = dh_n[b0:b1].copy()
    dc = dc_n[b0:b1].copy()
    dh_direct = np.empty((n, H), dtype=h0.dtype)
    dh_rec = np.empty((n, H), dtype=h0.dtype)
    ring = np.zeros((min(skip, T), n, H), dtype=h0.dtype)
    dz = np.empty((n, 2 * H), dtype=h0.dtype)
    # d_u goes to its own array and is copied into dz after the loop: storing to two
    # regions of one array in the fused loop makes LLVM's alias checks fail (scalar code)
    d_us = np.empty((n, H), dtype=h0.dtype)
    one, al, kp = _as_dtype(h0, alpha, kappa)
    ints, scalars = gemm_args(h0)
    cvx = one if convex else one - one
    part = np.empty((8, H), dtype=h0.dtype)  # rows: d_gamma (3), d_beta (3), d_bias_u, d_alpha
    for t in range(T - 1, -1, -1):
        slot = ring[t % skip]
        part[:] = 0
        for bb in range(n):
            b = b0 + bb
            dz_row = dz[bb]
            du_row = d_us[bb]
            if t >= lengths[b]:  # identity step: gradients pass through unchanged
                dz_row[:] = 0
                du_row[:] = 0
                slot[bb] = 0
                dh_direct[bb] = dh[bb]
                continue
            au = au_all[t, b]
            c_row = c_all[t, b]
            hp = out[t - 1, b] if t > 0 else h0[b]
            cp = c_all[t - 1, b] if t > 0 else c0[b]
            hs = out[t - skip, b] if t >= skip else h0[b]
            d_o = d_out[t, b]
            d_s = slot[bb]
            dh_row = dh[bb]
            dc_row = dc[bb]
            dd_row = dh_direct[bb]
            for j in range(H):
                a = au[0, j]
                ig = fast_sigmoid(gamma[0, j] * a + beta[0, j])
                fg = fast_sigmoid(gamma[1, j] * a + beta[1, j])
                og = fast_sigmoid(gamma[2, j] * a + beta[2, j])
                gg = fast_tanh(au[1, j])
                tc = fast_tanh(c_row[j])
                g_h = dh_row[j] + d_o[j] + d_s[j]
                ht = og * tc
                part[7, j] += g_h * (hs[j] - cvx * (fg * hp[j] + (one - fg) * ht))
                d_s[j] = al * g_h
                d_ht = kp * (one - fg) * g_h
                dcur = dc_row[j] + d_ht * og * (one - tc * tc)
                p_i = dcur * gg * ig * (one - ig)
                p_f = (kp * (hp[j] - ht) * g_h + dcur * cp[j]) * fg * (one - fg)
                p_o = d_ht * tc * og * (one - og)
                d_u = dcur * ig * (one - gg * gg)
                part[0, j] += p_i * a
                part[1, j] += p_f * a
                part[2, j] += p_o * a
                part[3, j] += p_i
                part[4, j] += p_f
                part[5, j] += p_o
                part[6, j] += d_u
                dz_row[j] = gamma[0, j] * p_i + gamma[1, j] * p_f + gamma[2, j] * p_o
                du_row[j] = d_u
                dd_row[j] = kp * fg * g_h
                dc_row[j] = dcur * fg
        for j in range(H):  # a loop, not array +=, which would allocate a temporary each step
            for k in range(3):
                d_gamma[k, j] += part[k, j]
                d_beta[k, j] += part[3 + k, j]
            d_bias_u[j] += part[6, j]
            d_alpha[j] += part[7, j]
        # dh_{t-1} = direct path + W_h^T dz_t: one BLAS product for the chunk
        dz[:, H:] = d_us
        matmul(dz, w_hh, dh_rec, ints, scalars)
        d_z[t, b0:b1] = dz
        dh[:] = dh_direct
        dh += dh_rec
    dh0[b0:b1] = dh
    for k in range(ring.shape[0]):  # slots k < K last held the gradient sent to h_0 by step k
        dh0[b0:b1] += ring[k]
    dc0[b0:b1] = dc


@njit(**_JIT)
def gemm_steps(a, b, out, steps):
    """``steps`` BLAS products a @ b -> out: the per-step GEMM's cost alone (for profiling)."""
    ints, scalars = gemm_args(a)
    for _ in range(steps):
        matmul(a, b, out, ints, scalars)

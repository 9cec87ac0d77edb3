"""Triton kernels of the QL-LSTM scan (forward and backward), used by :mod:`qlts.kernels.triton_gpu`.

The grid is (batch tiles, hidden splits). Program (b, j) owns ``BLOCK_B`` batch rows and the
hidden blocks j, j + SPLITS, j + 2 SPLITS, ... (``BLOCK_H`` units each), and runs the whole time
loop. For each of its blocks it accumulates the recurrent product ``h_{t-1} W_h^T`` over
``BLOCK_K`` chunks of ``h_{t-1}`` with ``tl.dot`` (tensor cores), reading its slice of W_h from
L1/L2, then applies the cell element-wise in fp32.

With one split (``SPLIT=False``) a program owns every hidden unit of its rows, and a CTA barrier
ends each step. With several, the programs of a batch tile are launched co-resident (a cooperative
launch) and meet at a barrier in global memory once per step (``_sync_peers``): each reads only its
slice of W_h, so the slice stays in L1, and a small batch still spreads over many SMs (the
persistent-RNN design). Values another program wrote are loaded with ``.cg`` (from L2, not a
possibly stale L1 line).

The per-step hidden states live in a global buffer ``hs`` of shape (T+1, B, H), fp32, with
``hs[0] = h_0`` and ``hs[t+1]`` the state after step t. The next step reads its chunks of
h_{t-1} back from there (they are still in L1/L2), and the skip path reads ``hs[max(t+1-K, 0)]``,
which is exactly "h_s = h_0 for s <= 0". A barrier at the end of each step makes the step's stores
visible to every thread (and every program) before the next step reads.
Rows past their length keep their state (``hs[t+1] = hs[t]``) and write zero outputs.

No buffer is read and written at the same address in the same step where the value read also
feeds other results (the carries ping-pong between two slots): when a layout holds an element in
several threads, one of them may read it after another has stored the new value.

``tl.dot`` runs in the compute dtype on a GPU (``DOT_DTYPE``). The CPU interpreter's bf16/fp16
``tl.dot`` returns garbage, so there the operands are upcast to fp32 and the rest of the
low-precision path (loads, stores, buffers) is still exercised.

The math is DESIGN §1 (``qlts.nn.functional.qllstm_cell``); the backward pass is its hand
derivation, checked against torch autograd by tests/test_backend_triton.py.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _tanh(x):
    # exp(-2|x|) never overflows; tl has no portable tanh (libdevice is GPU-only, not in the interpreter).
    e = tl.exp(-2.0 * tl.abs(x))
    y = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -y, y)


@triton.jit
def round_tf32(x):
    """fp32 x rounded to TF32's 10-bit mantissa, to nearest even, as cuBLAS rounds its operands:
    the tensor cores would truncate them, an error 2-3x that of torch's own TF32 matmuls."""
    bits = x.to(tl.int32, bitcast=True)
    bits = (bits + 0xFFF + ((bits >> 13) & 1)) & -8192  # -8192 = ~0x1FFF: clear the 13 dropped bits
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def _dot_operand(x, DOT_DTYPE: tl.constexpr, DOT_PRECISION: tl.constexpr):
    if DOT_PRECISION == "tf32":
        return round_tf32(x.to(tl.float32))
    return x.to(DOT_DTYPE)


@triton.jit
def _gate_params(gamma_ptr, beta_ptr, rj, col_ok, H):
    """Rows i, f, o of gamma and beta for the hidden units rj, each (1, BLOCK_H)."""
    gi = tl.load(gamma_ptr + rj, mask=col_ok, other=0.0)[None, :]
    gf = tl.load(gamma_ptr + H + rj, mask=col_ok, other=0.0)[None, :]
    go = tl.load(gamma_ptr + 2 * H + rj, mask=col_ok, other=0.0)[None, :]
    bi = tl.load(beta_ptr + rj, mask=col_ok, other=0.0)[None, :]
    bf = tl.load(beta_ptr + H + rj, mask=col_ok, other=0.0)[None, :]
    bo = tl.load(beta_ptr + 2 * H + rj, mask=col_ok, other=0.0)[None, :]
    return gi, gf, go, bi, bf, bo


@triton.jit
def _gates(a, u, gi, gf, go, bi, bf, bo):
    """i, f, o = sigmoid(gamma * a + beta) and g = tanh(u)."""
    return tl.sigmoid(gi * a + bi), tl.sigmoid(gf * a + bf), tl.sigmoid(go * a + bo), _tanh(u)


@triton.jit
def _accumulate(ptr, values, col_ok):
    """ptr[:] += values summed over the batch rows (a per-program partial sum, so no atomics)."""
    tl.store(ptr, tl.load(ptr, mask=col_ok, other=0.0) + tl.sum(values, axis=0), mask=col_ok)


@triton.jit
def _sync_peers(counter_ptr, target):
    """Barrier among the programs of one batch tile, as CUDA's cooperative-groups grid sync does it:
    a CTA barrier, then one thread per program adds its arrival with release semantics (which
    publishes the whole program's stores, ordered before it by the CTA barrier) and polls with
    acquire until all have arrived. The counter never resets: step n waits for n * programs."""
    tl.debug_barrier()
    tl.atomic_add(counter_ptr, 1, sem="release", scope="gpu")  # a scalar atomic: one thread per program
    while tl.atomic_add(counter_ptr, 0, sem="acquire", scope="gpu") < target:
        pass
    tl.debug_barrier()


@triton.jit
def _program_rows(len_ptr, alpha_ptr, B, CONVEX: tl.constexpr, BLOCK_B: tl.constexpr):
    """This program's batch tile and hidden split: (pid, pid_j, n_split, rows, row mask, row lengths,
    alpha, kappa), kappa = 1 - alpha in convex mode and 1 in additive mode."""
    pid = tl.program_id(0)
    rb = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rb < B
    lens = tl.load(len_ptr + rb, mask=row_ok, other=0)
    alpha = tl.load(alpha_ptr)
    if CONVEX:
        kappa = 1.0 - alpha
    else:
        kappa = 1.0
    return pid, tl.program_id(1), tl.num_programs(1), rb, row_ok, lens, alpha, kappa


@triton.jit
def _end_step(sync_ptr, pid_b, n_split, step, SPLIT: tl.constexpr):
    if SPLIT:
        _sync_peers(sync_ptr + pid_b, n_split * (step + 1))
    else:
        tl.debug_barrier()


@triton.jit
def qllstm_fwd_kernel(
    xw_ptr,      # (T, B, 2H) W_x x_t, compute dtype
    wt_ptr,      # (H, 2H) W_h^T, compute dtype
    bu_ptr, gamma_ptr, beta_ptr,  # (H,), (3, H), (3, H) fp32
    alpha_ptr,   # () fp32
    len_ptr,     # (B,) int32
    hs_ptr,      # (T+1, B, H) fp32, hs[0] = h0 on entry
    cs_ptr,      # (C_SLOTS, B, H) fp32; cs[0] = c0. c_t goes to slot t % C_SLOTS: T+1 slots when SAVE, else 2
    z_ptr,       # (T, B, 2H) fp32: pre-activations (a, u + b_u), written when SAVE
    out_ptr,     # (T, B, H) compute dtype
    T, B, H, SKIP, C_SLOTS,
    sync_ptr,    # (batch tiles,) int32 zeros: the step barrier's counters, used when SPLIT
    CONVEX: tl.constexpr, SAVE: tl.constexpr, DOT_PRECISION: tl.constexpr, DOT_DTYPE: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT: tl.constexpr,
):
    pid, pid_j, n_split, rb, row_ok, lens, alpha, kappa = _program_rows(len_ptr, alpha_ptr, B, CONVEX, BLOCK_B)
    H2 = 2 * H
    for t in range(T):
        valid = (row_ok & (t < lens))[:, None]
        h_prev_ptr = hs_ptr + t * B * H + rb[:, None] * H
        h_skip_ptr = hs_ptr + tl.maximum(t + 1 - SKIP, 0) * B * H + rb[:, None] * H
        xw_row = xw_ptr + t * B * H2 + rb[:, None] * H2
        for j0 in range(pid_j * BLOCK_H, H, n_split * BLOCK_H):
            rj = j0 + tl.arange(0, BLOCK_H)
            col_ok = rj < H
            m2 = row_ok[:, None] & col_ok[None, :]
            # every load that does not need the product goes first, so its latency hides behind the dot
            acc_a = tl.load(xw_row + rj[None, :], mask=m2, other=0.0).to(tl.float32)
            acc_u = tl.load(xw_row + H + rj[None, :], mask=m2, other=0.0).to(tl.float32)
            state = rb[:, None] * H + rj[None, :]
            c_prev = tl.load(cs_ptr + (t % C_SLOTS) * B * H + state, mask=m2, other=0.0)
            h_prev = tl.load(h_prev_ptr + rj[None, :], mask=m2, other=0.0)
            h_skip = tl.load(h_skip_ptr + rj[None, :], mask=m2, other=0.0)
            b_u = tl.load(bu_ptr + rj, mask=col_ok, other=0.0)[None, :]
            gi, gf, go, bi, bf, bo = _gate_params(gamma_ptr, beta_ptr, rj, col_ok, H)
            for k0 in range(0, H, BLOCK_K):
                rk = k0 + tl.arange(0, BLOCK_K)
                k_ok = rk < H
                hk = tl.load(h_prev_ptr + rk[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0,
                             cache_modifier=".cg")
                hk = _dot_operand(hk, DOT_DTYPE, DOT_PRECISION)
                w_mask = k_ok[:, None] & col_ok[None, :]
                w_rows = wt_ptr + rk[:, None] * H2 + rj[None, :]
                wa = tl.load(w_rows, mask=w_mask, other=0.0).to(DOT_DTYPE)
                wu = tl.load(w_rows + H, mask=w_mask, other=0.0).to(DOT_DTYPE)
                acc_a = tl.dot(hk, wa, acc_a, input_precision=DOT_PRECISION)
                acc_u = tl.dot(hk, wu, acc_u, input_precision=DOT_PRECISION)
            u = acc_u + b_u
            i, f, o, g = _gates(acc_a, u, gi, gf, go, bi, bf, bo)
            c_new = f * c_prev + i * g
            h_new = kappa * (f * h_prev + (1.0 - f) * (o * _tanh(c_new))) + alpha * h_skip
            tl.store(hs_ptr + (t + 1) * B * H + state, tl.where(valid, h_new, h_prev), mask=m2)
            tl.store(cs_ptr + ((t + 1) % C_SLOTS) * B * H + state, tl.where(valid, c_new, c_prev), mask=m2)
            tl.store(out_ptr + t * B * H + state, tl.where(valid, h_new, 0.0).to(out_ptr.dtype.element_ty),
                     mask=m2)
            if SAVE:
                z_row = z_ptr + t * B * H2 + rb[:, None] * H2 + rj[None, :]
                tl.store(z_row, acc_a, mask=m2)
                tl.store(z_row + H, u, mask=m2)
        # the next step reads this step's h (other columns, other threads and programs) from hs
        _end_step(sync_ptr, pid, n_split, t, SPLIT)


@triton.jit
def qllstm_bwd_kernel(
    z_ptr, hs_ptr, cs_ptr,        # saved by the forward: (T, B, 2H), (T+1, B, H), (T+1, B, H) fp32
    w_ptr,                        # (2H, H) W_h, compute dtype
    gamma_ptr, beta_ptr, alpha_ptr, len_ptr,
    dout_ptr,                     # (T, B, H) gradient of the outputs (any float dtype)
    dh_ptr, dc_ptr,               # (2, B, H) fp32 carries, ping-pong: dh_n, dc_n in slot 0 on entry; dh_0 (less
                                  # the skip part) and dc_0 in slot T % 2 on exit
    s_ptr,                        # (T, B, H) fp32 out: total dL/dh_t at valid steps, 0 elsewhere (feeds the skip path)
    dz_ptr,                       # (T, B, 2H) compute dtype out: dL/dz_t
    part_ptr,                     # (batch tiles, 8, H) fp32 zeros: per-tile sums d gamma(3), d beta(3), d b_u, d alpha
    T, B, H, SKIP,
    sync_ptr,                     # (batch tiles,) int32 zeros: the step barrier's counters, used when SPLIT
    CONVEX: tl.constexpr, DOT_PRECISION: tl.constexpr, DOT_DTYPE: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT: tl.constexpr,
):
    pid, pid_j, n_split, rb, row_ok, lens, alpha, kappa = _program_rows(len_ptr, alpha_ptr, B, CONVEX, BLOCK_B)
    H2 = 2 * H
    part = part_ptr + pid * 8 * H
    for step in range(T):
        t = T - 1 - step
        valid = (row_ok & (t < lens))[:, None]
        dh_cur = dh_ptr + (step % 2) * B * H
        dh_nxt = dh_ptr + ((step + 1) % 2) * B * H
        dc_cur = dc_ptr + (step % 2) * B * H
        dc_nxt = dc_ptr + ((step + 1) % 2) * B * H
        # phase 1: element-wise backward of step t, one block of hidden units at a time
        for j0 in range(pid_j * BLOCK_H, H, n_split * BLOCK_H):
            rj = j0 + tl.arange(0, BLOCK_H)
            col_ok = rj < H
            m2 = row_ok[:, None] & col_ok[None, :]
            state = rb[:, None] * H + rj[None, :]
            z_row = z_ptr + t * B * H2 + rb[:, None] * H2 + rj[None, :]
            a = tl.load(z_row, mask=m2, other=0.0)
            u = tl.load(z_row + H, mask=m2, other=0.0)
            gi, gf, go, bi, bf, bo = _gate_params(gamma_ptr, beta_ptr, rj, col_ok, H)
            i, f, o, g = _gates(a, u, gi, gf, go, bi, bf, bo)
            c = tl.load(cs_ptr + (t + 1) * B * H + state, mask=m2, other=0.0)
            c_prev = tl.load(cs_ptr + t * B * H + state, mask=m2, other=0.0)
            h_prev = tl.load(hs_ptr + t * B * H + state, mask=m2, other=0.0)
            h_skip = tl.load(hs_ptr + tl.maximum(t + 1 - SKIP, 0) * B * H + state, mask=m2, other=0.0)
            dh_carry = tl.load(dh_cur + state, mask=m2, other=0.0)
            dc_carry = tl.load(dc_cur + state, mask=m2, other=0.0)
            d_out = tl.load(dout_ptr + t * B * H + state, mask=m2 & valid, other=0.0).to(tl.float32)
            # alpha * dL/dh_{t+K}: step t+K read h_t (this step's output) as its skip state
            d_skip = tl.load(s_ptr + tl.minimum(t + SKIP, T - 1) * B * H + state, mask=m2, other=0.0)
            dh = dh_carry + d_out + alpha * tl.where(t + SKIP < T, d_skip, 0.0)

            tc = _tanh(c)
            h_tilde = o * tc
            mix = f * h_prev + (1.0 - f) * h_tilde
            d_ht = dh * kappa * (1.0 - f)
            d_f = dh * kappa * (h_prev - h_tilde)
            d_o = d_ht * tc
            dc = dc_carry + d_ht * o * (1.0 - tc * tc)
            d_f += dc * c_prev
            d_i = dc * g
            d_g = dc * i
            dp_i = tl.where(valid, d_i * i * (1.0 - i), 0.0)
            dp_f = tl.where(valid, d_f * f * (1.0 - f), 0.0)
            dp_o = tl.where(valid, d_o * o * (1.0 - o), 0.0)
            d_u = tl.where(valid, d_g * (1.0 - g * g), 0.0)
            d_a = dp_i * gi + dp_f * gf + dp_o * go
            if CONVEX:
                d_alpha = dh * (h_skip - mix)
            else:
                d_alpha = dh * h_skip
            d_alpha = tl.where(valid, d_alpha, 0.0)

            dz_row = dz_ptr + t * B * H2 + rb[:, None] * H2 + rj[None, :]
            tl.store(dz_row, d_a.to(dz_ptr.dtype.element_ty), mask=m2)
            tl.store(dz_row + H, d_u.to(dz_ptr.dtype.element_ty), mask=m2)
            tl.store(s_ptr + t * B * H + state, tl.where(valid, dh, 0.0), mask=m2)
            # a row past its length kept its state: the gradient passes through unchanged
            tl.store(dh_nxt + state, tl.where(valid, dh * kappa * f, dh), mask=m2)
            tl.store(dc_nxt + state, tl.where(valid, dc * f, dc_carry), mask=m2)

            _accumulate(part + rj, dp_i * a, col_ok)
            _accumulate(part + H + rj, dp_f * a, col_ok)
            _accumulate(part + 2 * H + rj, dp_o * a, col_ok)
            _accumulate(part + 3 * H + rj, dp_i, col_ok)
            _accumulate(part + 4 * H + rj, dp_f, col_ok)
            _accumulate(part + 5 * H + rj, dp_o, col_ok)
            _accumulate(part + 6 * H + rj, d_u, col_ok)
            _accumulate(part + 7 * H + rj, d_alpha, col_ok)
        # phase 2 reads every column of dz_t, written by every program of this batch tile
        _end_step(sync_ptr, pid, n_split, step, SPLIT)
        # phase 2: dh_{t-1} += dz_t W_h
        for j0 in range(pid_j * BLOCK_H, H, n_split * BLOCK_H):
            rj = j0 + tl.arange(0, BLOCK_H)
            col_ok = rj < H
            m2 = row_ok[:, None] & col_ok[None, :]
            state = rb[:, None] * H + rj[None, :]
            acc = tl.load(dh_nxt + state, mask=m2, other=0.0)
            for n0 in range(0, H2, BLOCK_K):
                rn = n0 + tl.arange(0, BLOCK_K)
                n_ok = rn < H2
                dzk = tl.load(dz_ptr + t * B * H2 + rb[:, None] * H2 + rn[None, :],
                              mask=row_ok[:, None] & n_ok[None, :], other=0.0, cache_modifier=".cg")
                dzk = _dot_operand(dzk, DOT_DTYPE, DOT_PRECISION)
                w = tl.load(w_ptr + rn[:, None] * H + rj[None, :], mask=n_ok[:, None] & col_ok[None, :],
                            other=0.0).to(DOT_DTYPE)
                acc = tl.dot(dzk, w, acc, input_precision=DOT_PRECISION)
            tl.store(dh_nxt + state, acc, mask=m2)
        # the next step's phase 1 reads only this program's own columns: a CTA barrier is enough
        tl.debug_barrier()

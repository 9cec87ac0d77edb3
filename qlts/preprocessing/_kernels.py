"""Numba kernels behind :func:`qlts.preprocessing.make_windows`.

They read the user's stream in place (any float dtype, any memory layout) through a
column map, so no intermediate copy of the stream is ever made. When the columns are a
contiguous range the kernels index them affinely (``c0 + j``), which lets LLVM vectorise
the row copy; otherwise they gather through the index array.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def _column_range(cols):
    """``(c0, m)`` when ``cols`` is ``c0 .. c0 + m - 1``, else None."""
    cols = np.asarray(cols, dtype=np.int64)
    if len(cols) and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
        return int(cols[0]), len(cols)
    return None


# A value is a gap when it is not a finite float32 (NaN, inf, or a float64 beyond the float32 range):
# it would turn into inf in the float32 windows, and into NaN once normalised (inf - inf).
F32_MAX = float(np.finfo(np.float32).max)


@njit(parallel=True, cache=True)
def _mark_range(src, c0, m, flags):
    for t in prange(src.shape[0]):
        bad = False
        for j in range(m):  # no early exit: the short row test vectorises
            bad |= not abs(src[t, c0 + j]) <= F32_MAX
        if bad:
            flags[t] = 1


@njit(parallel=True, cache=True)
def _mark_gather(src, cols, flags):
    for t in prange(src.shape[0]):
        bad = False
        for j in range(cols.shape[0]):
            bad |= not abs(src[t, cols[j]]) <= F32_MAX
        if bad:
            flags[t] = 1


def mark_nan_rows(src, cols, flags):
    """``flags[t] = 1`` where row ``t`` of ``src`` has a gap (NaN, inf or a value beyond float32) in any
    of ``cols`` (ORs into ``flags``)."""
    rng = _column_range(cols)
    if rng is not None:
        _mark_range(src, rng[0], rng[1], flags)
    else:
        _mark_gather(src, np.asarray(cols, dtype=np.int64), flags)


@njit(cache=True)
def prefix_sum(flags, out):
    """``out[t] = flags[:t].sum()``; ``out`` has ``len(flags) + 1`` entries."""
    acc = 0
    out[0] = 0
    for t in range(flags.shape[0]):
        acc += flags[t]
        out[t + 1] = acc


@njit(parallel=True, cache=True)
def valid_windows(n, stride, lo_a, hi_a, pre_a, lo_b, hi_b, pre_b, lo_c, hi_c, pre_c):
    """Window ``k`` (start ``k * stride``) is valid when every prefix-sum group has no NaN
    row in its span ``[start + lo, start + hi)``. An empty prefix array means "no check"."""
    ok = np.empty(n, dtype=np.bool_)
    for k in prange(n):
        s = k * stride
        good = True
        if pre_a.shape[0] > 0 and pre_a[s + hi_a] - pre_a[s + lo_a] != 0:
            good = False
        if pre_b.shape[0] > 0 and pre_b[s + hi_b] - pre_b[s + lo_b] != 0:
            good = False
        if pre_c.shape[0] > 0 and pre_c[s + hi_c] - pre_c[s + lo_c] != 0:
            good = False
        ok[k] = good
    return ok


@njit(parallel=True, cache=True)
def _fill_block(flat, width, starts, row0, out2, norm_row, offsets):
    """Whole rows of a C-contiguous stream: each window is one contiguous block in both
    ``flat`` (the stream raveled) and ``out2`` (the output as (n, length * width))."""
    size = out2.shape[1]
    steps = size // width
    for k in prange(starts.shape[0]):
        base = (starts[k] + row0) * width
        dst = out2[k]
        src = flat[base:base + size]  # 1-D views: simple indexing the vectoriser handles
        if norm_row >= 0:
            last = (starts[k] + norm_row) * width
            ref = flat[last:last + width]  # subtract in the source precision, store as float32
            for j in range(width):
                offsets[k, j] = ref[j]
            for t in range(steps):  # range(steps) * width, not range(0, size, width): ~1.7x faster
                tw = t * width
                for j in range(width):
                    dst[tw + j] = src[tw + j] - ref[j]
        else:
            for i in range(size):
                dst[i] = src[i]


@njit(parallel=True, cache=True)
def _fill_range(src, c0, m, starts, row0, out, col0, norm_row, offsets):
    length = out.shape[1]
    if norm_row >= 0:
        for k in prange(starts.shape[0]):
            s = starts[k]
            for j in range(m):
                offsets[k, col0 + j] = src[s + norm_row, c0 + j]
            for t in range(length):
                r = s + row0 + t
                for j in range(m):
                    out[k, t, col0 + j] = src[r, c0 + j] - src[s + norm_row, c0 + j]
    else:
        for k in prange(starts.shape[0]):
            s = starts[k]
            for t in range(length):
                r = s + row0 + t
                for j in range(m):
                    out[k, t, col0 + j] = src[r, c0 + j]


@njit(parallel=True, cache=True)
def _fill_gather(src, cols, starts, row0, out, col0, norm_row, offsets):
    length = out.shape[1]
    m = cols.shape[0]
    for k in prange(starts.shape[0]):
        s = starts[k]
        if norm_row >= 0:
            for j in range(m):
                offsets[k, col0 + j] = src[s + norm_row, cols[j]]
        for t in range(length):
            r = s + row0 + t
            for j in range(m):
                v = src[r, cols[j]]
                if norm_row >= 0:
                    v = v - src[s + norm_row, cols[j]]
                out[k, t, col0 + j] = v


def fill_windows(src, cols, starts, row0, out, col0, norm_row, offsets):
    """``out[k, t, col0 + j] = src[starts[k] + row0 + t, cols[j]]``, in parallel over windows.

    With ``norm_row >= 0`` each window's value at row ``starts[k] + norm_row`` is subtracted
    (in the source precision) and stored in ``offsets[k, col0 + j]``: one fused pass
    instead of a copy followed by a subtraction.
    """
    rng = _column_range(cols)
    n, length, width = out.shape
    if rng == (0, src.shape[1]) and src.flags.c_contiguous and col0 == 0 and width == src.shape[1]:
        _fill_block(src.reshape(-1), width, starts, row0, out.reshape(n, length * width), norm_row, offsets)
    elif rng is not None:
        _fill_range(src, rng[0], rng[1], starts, row0, out, col0, norm_row, offsets)
    else:
        _fill_gather(src, np.asarray(cols, dtype=np.int64), starts, row0, out, col0, norm_row, offsets)

"""The per-step matrix product of the numba scan: a Fortran ``?gemm`` called from numba.

numba's ``np.dot`` calls scipy's OpenBLAS. For the small products of one time step
(e.g. 32x128 @ 128x256) the MKL inside torch's CPU library is ~1.7x faster (15 vs 26 us
measured), so when torch exports MKL's ``sgemm_``/``dgemm_`` the kernels call those;
otherwise the same Fortran interface from scipy's OpenBLAS. The choice is made once at
import by registering the symbols ``qlts_sgemm``/``qlts_dgemm`` with LLVM, so cached
kernels link against whichever this process has.

``set_local_threads(1)`` keeps MKL single-threaded in the calling thread (the scan runs one
row chunk per thread); it is a no-op without MKL (threadpoolctl limits OpenBLAS instead).
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np
import torch
from llvmlite import binding as llvm
from numba import njit, types
from numba.extending import get_cython_function_address


def _torch_mkl():
    """(sgemm_, dgemm_, MKL_Set_Num_Threads_Local) from torch's CPU library, or None."""
    for path in glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.*")):
        try:
            lib = ctypes.CDLL(path)
            found = lib.sgemm_, lib.dgemm_, lib.MKL_Set_Num_Threads_Local
        except (OSError, AttributeError):
            continue
        if torch.backends.mkl.is_available():
            return found
    return None


_mkl = _torch_mkl()
if _mkl is not None:
    BLAS = "MKL (inside torch)"
    _set_local = _mkl[2]
    _set_local.argtypes, _set_local.restype = [ctypes.c_int], ctypes.c_int
    llvm.add_symbol("qlts_sgemm", ctypes.cast(_mkl[0], ctypes.c_void_p).value)
    llvm.add_symbol("qlts_dgemm", ctypes.cast(_mkl[1], ctypes.c_void_p).value)
else:
    BLAS = "OpenBLAS (scipy)"
    _set_local = None
    llvm.add_symbol("qlts_sgemm", get_cython_function_address("scipy.linalg.cython_blas", "sgemm"))
    llvm.add_symbol("qlts_dgemm", get_cython_function_address("scipy.linalg.cython_blas", "dgemm"))


def set_local_threads(n):
    """Set MKL's thread count for the calling thread; returns the previous one (0 without MKL)."""
    return _set_local(n) if _set_local is not None else 0


# Fortran ?gemm: every argument by address (passed as intp: same ABI as a pointer)
_SIG = types.void(*([types.intp] * 13))
_sgemm = types.ExternalFunction("qlts_sgemm", _SIG)
_dgemm = types.ExternalFunction("qlts_dgemm", _SIG)


@njit(cache=True, nogil=True)
def gemm_args(like):
    """Scratch for :func:`matmul`: int32 [m, n, k, 'N'] and [1, 0] in ``like``'s dtype."""
    ints = np.empty(4, dtype=np.int32)
    ints[3] = ord("N")
    scalars = np.zeros(2, dtype=like.dtype)
    scalars[0] = 1
    return ints, scalars


@njit(cache=True, nogil=True)
def matmul(a, b, out, ints, scalars):
    """out = a @ b for C-contiguous 2-D arrays (as column-major: out^T = b^T a^T)."""
    m, k = a.shape
    n = b.shape[1]
    ints[0] = n
    ints[1] = m
    ints[2] = k
    p = ints.ctypes.data
    s = scalars.ctypes.data
    size = scalars.itemsize
    if size == 4:
        _sgemm(p + 12, p + 12, p, p + 4, p + 8, s, b.ctypes.data, p, a.ctypes.data, p + 8, s + size,
               out.ctypes.data, p)
    else:
        _dgemm(p + 12, p + 12, p, p + 4, p + 8, s, b.ctypes.data, p, a.ctypes.data, p + 8, s + size,
               out.ctypes.data, p)

"""Backends for the QL-LSTM scan. Each module exposes ``scan`` with the contract in
:mod:`qlts.kernels.reference`.

- ``"torch"``:  :mod:`qlts.kernels.reference`, any device and dtype (the oracle)
- ``"numba"``:  :mod:`qlts.kernels.numba_cpu`, CPU, float32/float64
- ``"triton"``: :mod:`qlts.kernels.triton_gpu`, CUDA (or CPU under ``TRITON_INTERPRET=1``)
- ``"auto"``:   triton on CUDA (float32/bfloat16/float16) when it imports, numba on CPU for
  float32/float64, torch otherwise
"""
from __future__ import annotations

import functools
import importlib

BACKENDS = ("auto", "torch", "numba", "triton")
_MODULES = {"torch": "reference", "numba": "numba_cpu", "triton": "triton_gpu"}
_import_errors: dict[str, Exception] = {}


@functools.cache  # called on every forward: a failed optional import must not be retried each time
def _load(name):
    try:
        return importlib.import_module(f"{__name__}.{_MODULES[name]}")
    except ImportError as exc:  # optional dependency missing, or backend not built
        _import_errors[name] = exc
        return None


def available(name) -> bool:
    """Whether backend ``name`` imports on this machine."""
    return _load(name) is not None


def resolve(backend, device, dtype) -> str:
    """The concrete backend name that ``backend`` means for tensors on ``device`` of ``dtype``."""
    import torch

    if backend != "auto":
        return backend
    device = torch.device(device)
    if device.type == "cuda" and dtype in (torch.float32, torch.bfloat16, torch.float16) and available("triton"):
        return "triton"
    if device.type == "cpu" and dtype in (torch.float32, torch.float64) and available("numba"):
        return "numba"
    return "torch"


def get_scan(backend, device, dtype):
    """The ``scan`` function of the backend that ``backend`` resolves to."""
    name = resolve(backend, device, dtype)
    module = _load(name)
    if module is None:
        raise ImportError(f"backend={name!r} is not available: {_import_errors.get(name)}")
    return module.scan

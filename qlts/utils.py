"""Small helpers shared by the estimators, the forecaster, the demo and the benchmarks."""
from __future__ import annotations

import numbers
import os
import random
import tempfile
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state


def resolve_device(device="auto") -> str:
    """"auto" means CUDA when available, else CPU; any other torch device passes through (as a str)."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda', 'cuda:<index>' or another torch device, "
                         f"got {device!r}") from None
    return str(device)


def check_device(device):
    """:func:`resolve_device`, for a device that exists here. Else a CUDA device on a machine
    without one fails at the first tensor move, with torch's "Torch not compiled with CUDA enabled"."""
    name = resolve_device(device)
    resolved = torch.device(name)
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            build = "" if torch.version.cuda else ", a build without CUDA"
            raise ValueError(f"device: expected a device this machine has, got {device!r}, but it has {count} "
                             f"CUDA device(s) (torch {torch.__version__}{build}); use device='auto' or 'cpu'")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: expected a device this machine has, got {device!r}, but MPS is not available; "
                         "use device='auto' or 'cpu'")
    return name


def int_seed(random_state):
    """An int seed from ``random_state``: an int, a numpy RandomState (one draw from it) or None."""
    if random_state is None or isinstance(random_state, numbers.Integral):
        return None if random_state is None else int(random_state)
    if not isinstance(random_state, np.random.RandomState):
        raise TypeError(f"random_state: expected an int, a numpy RandomState or None, got "
                        f"{type(random_state).__name__} {random_state!r}")
    return int(check_random_state(random_state).randint(2**31 - 1))


@contextmanager
def private_torch_rng(device, seed=None, state=None):
    """Run the body on a torch RNG stream of its own, started from ``state`` (a (cpu, cuda) pair
    from an earlier exit) or else ``seed``, and restore the caller's RNG after. Yields a dict
    whose "state" holds the stream's (cpu, cuda) state at exit, to continue it later. With
    neither seed nor state the body runs on the caller's RNG as it is (and "state" is None)."""
    out = {"state": None}
    if seed is None and state is None:
        yield out
        return
    cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if cuda else []):
        if state is None:
            torch.manual_seed(int(seed) % (2**32))
        else:
            torch.set_rng_state(state[0])
            if cuda and state[1] is not None:
                torch.cuda.set_rng_state_all(state[1])
        yield out
        out["state"] = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if cuda else None)


def seed_everything(random_state) -> None:
    """Seed python, numpy and torch so that a CPU run is reproducible bit for bit."""
    if random_state is None:
        return
    seed = int(random_state) % (2**32)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def numba_threads_like_torch():
    """Run numba parallel code with torch's thread count, and leave torch's count as it was.

    Usable as a decorator. numba's OpenMP layer resets the process-wide OpenMP thread count
    (which torch shares) when its pool starts, so without this a ``torch.set_num_threads(1)``
    would silently become 2 after the first parallel numba call.
    """
    import numba

    n = torch.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


@contextmanager
def atomic_write(path, mode="wb"):
    """Open a temp file beside ``path`` and rename it over ``path`` only on success,
    so a crash never leaves a half-written file."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

"""Small helpers shared by the estimators, the forecaster, the demo and the benchmarks."""
from __future__ import annotations

import os
import random
import tempfile
from contextlib import contextmanager

import numpy as np
import torch


def resolve_device(device="auto") -> str:
    """"auto" means CUDA when available, else CPU; anything else passes through."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def seed_everything(random_state) -> None:
    """Seed python, numpy and torch so that a CPU run is reproducible bit for bit."""
    if random_state is None:
        return
    seed = int(random_state) % (2**32)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

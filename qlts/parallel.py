"""Thread discipline when qlts runs inside a distributed worker (Dask through joblib).

Grid searches and backtests scale out through joblib's backends (``with
joblib.parallel_backend("dask"): search.fit(X, y)``); qlts writes no cluster code. What a worker
needs is a thread budget: torch (and numba, which follows torch, see
:func:`qlts.utils.numba_threads_like_torch`) would otherwise start one thread per core in every
worker process, so N workers on N cores would run N x N threads that spin at each recurrent
step's barrier.

- Dask: every ``fit`` calls :func:`limit_threads_in_worker`. Inside a Dask worker it sets torch
  to one thread per task slot: a worker with ``nthreads=k`` runs up to k tasks at once, sharing
  one process-wide torch thread pool, so 1 thread each keeps the worker on its k cores. (Dask's
  nanny also starts workers with ``OMP_NUM_THREADS=1``; this covers workers started without a
  nanny and code that raised the count since.) The setting is left in place: the worker process
  belongs to the cluster, and restoring it while another task of the same worker still runs
  would oversubscribe that task.
- joblib's own process backend (loky, ``n_jobs=k``) already limits every child to
  ``cpu_count // k`` threads through the OpenMP environment; nothing to do there.
- Outside a worker nothing changes.
"""
from __future__ import annotations

import sys

import torch

__all__ = ["dask_worker", "limit_threads_in_worker"]

# Threads per running task inside a Dask worker (see the module docstring).
WORKER_THREADS_PER_TASK = 1


def dask_worker():
    """The Dask worker running this code, or None (also when distributed is not installed).

    Only looks: distributed is never imported here, so code that does not use Dask pays nothing.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.get_worker()
    except ValueError:  # "No worker found": not running in a worker's task thread
        return None


def limit_threads_in_worker():
    """Inside a Dask worker, set torch to :data:`WORKER_THREADS_PER_TASK` thread(s); returns the
    thread count set, or None outside a worker (nothing changed)."""
    if dask_worker() is None:
        return None
    if torch.get_num_threads() != WORKER_THREADS_PER_TASK:
        torch.set_num_threads(WORKER_THREADS_PER_TASK)
    return WORKER_THREADS_PER_TASK

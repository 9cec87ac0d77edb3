"""Windows of a stream larger than memory: :class:`LazyWindows`, a torch Dataset that cuts
each batch on the fly with :func:`make_windows`.

The stream stays on disk: a memory-mapped ``.npy`` (``np.load(path, mmap_mode="r")``) or a
Parquet file read row group by row group (:class:`ParquetRows`). Each batch gathers the rows
of its windows (one ``lookback + horizon`` block per window, laid end to end) and hands that
small stream to ``make_windows(..., stride=lookback + horizon)``, which cuts exactly one
window per block. So a lazy window is the same as the in-memory one, with every option and
error message of ``make_windows``, and the windowing code exists once.
"""
from __future__ import annotations

import mmap
import os
import re

import numpy as np
import pandas as pd
import torch

from .._validation import check_int
from ._windows import _is_selector, make_windows

__all__ = ["LazyWindows", "ParquetRows"]

# Bytes of the stream read per step of the NaN scan, and of file pages a memory map may keep
# resident before they are handed back (see _release): both bound the process's RSS.
CHUNK_BYTES = 64 * 2**20
RELEASE_BYTES = 128 * 2**20
_FAULT_BYTES = 128 * 2**10  # the least a window's read can map: 16 pages of fault-around, twice
_CHECK_BYTES = 16 * 2**20  # estimated reads between two looks at the resident pages
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_CHECK_BATCH = 4096  # windows per make_windows call when checking windows near a NaN


class ParquetRows:
    """A Parquet file as a read-only (T, F) float array that reads row groups on demand.

    Supports ``shape``, ``dtype``, ``len`` and row indexing with a slice or an integer array
    (``rows[a:b]``, ``rows[idx]``); the last row groups read stay cached, so reading rows in
    order decodes each group once. Random access across the file decodes many groups per
    batch: train from Parquet in order (skorch's default, ``iterator_train__shuffle=False``)
    or convert the file to ``.npy`` once. Needs pyarrow (the ``parquet`` extra).
    """

    def __init__(self, path, columns=None, *, cache_groups=2):
        import pyarrow.parquet as pq

        self.path = os.fspath(path)
        self._file = pq.ParquetFile(self.path)
        names = self._file.schema_arrow.names
        self.columns = list(names if columns is None else columns)
        missing = [c for c in self.columns if c not in names]
        if missing:
            raise ValueError(f"columns: expected columns of {self.path} ({names}), got unknown {missing}")
        meta = self._file.metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        self._bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.shape = (int(self._bounds[-1]), len(self.columns))
        self.dtype = np.dtype(np.float64)
        self.cache_groups = check_int("cache_groups", cache_groups, min_value=1)
        self._cache = {}

    def __len__(self):
        return self.shape[0]

    def __getstate__(self):  # the open file handle does not pickle; reopen where unpickled
        return {"path": self.path, "columns": self.columns, "cache_groups": self.cache_groups}

    def __setstate__(self, state):
        self.__init__(state["path"], state["columns"], cache_groups=state["cache_groups"])

    def _group(self, g):
        if g not in self._cache:
            if len(self._cache) >= self.cache_groups:
                self._cache.pop(next(iter(self._cache)))  # the oldest
            table = self._file.read_row_group(g, columns=self.columns)
            self._cache[g] = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                                              for c in self.columns])
        return self._cache[g]

    def __getitem__(self, key):
        if isinstance(key, slice):
            rows = np.arange(*key.indices(self.shape[0]), dtype=np.int64)
        else:
            rows = np.asarray(key, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        groups = np.searchsorted(self._bounds, rows, side="right") - 1
        for g in np.unique(groups):
            sel = groups == g
            out[sel] = self._group(int(g))[rows[sel] - self._bounds[g]]
        return out


def _open(data):
    """(array-like (T, F), path or None): a path to .npy is memory-mapped, .parquet read lazily."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if path.endswith(".npy"):
            return np.load(path, mmap_mode="r"), path
        if path.endswith((".parquet", ".pq")):
            return ParquetRows(path), path
        raise ValueError(f"data: expected a path to a .npy or .parquet file, got {path!r}")
    if isinstance(data, ParquetRows) or (isinstance(data, np.ndarray) and data.ndim == 2):
        return data, None
    raise TypeError(f"data: expected a 2-D numpy array or memmap (T, F), a ParquetRows or a path to a .npy/.parquet "
                    f"file, got {type(data).__name__}" + (f" with shape {data.shape}" if hasattr(data, "shape") else ""))


def _resident_file_bytes():
    """Resident file-backed pages of this process in bytes (Linux /proc/self/statm), or None."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[2]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _release(arr):
    """Hand a read-only memory map's resident pages back to the kernel (they are re-read from the
    page cache when touched again), so reading a large file does not grow the RSS without bound."""
    mm = getattr(arr, "_mmap", None)
    if isinstance(mm, mmap.mmap) and hasattr(mm, "madvise"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # not supported here: the kernel still reclaims clean pages
            pass


class LazyWindows(torch.utils.data.Dataset):
    """The windows of ``make_windows(data, lookback, horizon, ...)`` without materialising them.

    Item ``i`` is ``(X_i, y_i)``, float32 tensors: X_i (lookback, F_in) and y_i (horizon * F_target,),
    the flattened targets (the regressor's (n, k) layout). Pass it to
    :meth:`qlts.QLLSTMRegressor.fit` as X (without y); skorch batches it with its DataLoader.

    Parameters
    ----------
    data : path to a .npy or .parquet file, a 2-D numpy array or memmap (T, F), or a ParquetRows
        A ``.npy`` path is opened with ``np.load(path, mmap_mode="r")``.
    lookback, horizon, stride, target, target_history, normalize
        As in :func:`make_windows`. ``target`` and ``past_covariates`` are column positions
        (a Parquet file's columns in the order of ``ParquetRows.columns``).
    past_covariates : None or column selection
        Restricts the non-target input columns, as in ``make_windows`` (arrays are not taken:
        put the covariates in the stream).
    nan_policy : {"drop", "raise"}
        As in ``make_windows``: the windows with a NaN in their inputs or targets are left out,
        or the first one is an error. ("mask" would train on NaN, so it is not offered.) The
        stream is scanned once, in chunks, when the dataset is made; only windows near a NaN
        row are kept in memory, as a sorted list.

    Memory: a chunk of the stream while scanning, plus the resident pages of the memory map, which
    are handed back whenever they grow by ``RELEASE_BYTES``. Shuffling (``iterator_train__shuffle=True``)
    works, but torch's RandomSampler holds a permutation of all windows (about 40 bytes per
    window); for billions of windows keep the default in-order batches or a larger stride.
    """

    def __init__(self, data, lookback, horizon, *, stride=1, target=None, past_covariates=None,
                 target_history=True, normalize=None, nan_policy="drop"):
        if past_covariates is not None and not _is_selector(past_covariates):
            raise TypeError(f"past_covariates: expected column positions of data for lazy windows (put the "
                            f"covariates in the stream), got a {type(past_covariates).__name__}")
        if nan_policy not in ("drop", "raise"):
            raise ValueError(f"nan_policy: expected one of ['drop', 'raise'] for lazy windows, got {nan_policy!r}")
        lookback = check_int("lookback", lookback, min_value=1)
        horizon = check_int("horizon", horizon, min_value=1)
        self.data, self._path = _open(data)
        self.stride = check_int("stride", stride, min_value=1)
        self.nan_policy = nan_policy
        self._options = dict(target=target, past_covariates=past_covariates, target_history=target_history,
                             normalize=normalize)
        self.lookback, self.horizon = lookback, horizon
        # make_windows on the first window checks every argument, with its messages, and gives the shapes
        first = make_windows(np.asarray(self.data[:lookback + horizon]), lookback, horizon, nan_policy="mask",
                             **self._options)
        self.span = lookback + horizon
        self.n_features = first.X.shape[2]
        self.target_shape = first.y.shape[1:]
        self.n_outputs = int(np.prod(self.target_shape))
        self.n_windows = (len(self.data) - self.span) // self.stride + 1
        self._read, self._resident_after_release = 0, _resident_file_bytes() or 0
        self._bad = self._scan()
        self._bad_shift = self._bad - np.arange(len(self._bad))

    # --- pickling (DataLoader workers, Dask): reopen the file instead of copying the stream ---
    def __getstate__(self):
        state = self.__dict__.copy()
        if self._path is not None:
            state["data"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.data is None:
            self.data = _open(self._path)[0]

    # --- the NaN scan ---------------------------------------------------------------------------
    def _cut(self, starts, nan_policy="raise"):
        """make_windows over the rows of the windows starting at ``starts``: one slice when they are
        consecutive windows (in-order batches), else the blocks [s, s + span) laid end to end."""
        starts = np.asarray(starts, dtype=np.int64)
        if len(starts) > 1 and (np.diff(starts) == self.stride).all():
            block, step = np.asarray(self.data[starts[0]:starts[-1] + self.span]), self.stride
        else:
            rows = (starts[:, None] + np.arange(self.span)).reshape(-1)
            block, step = np.asarray(self.data[rows]), self.span  # a copy of just these rows
        self._bound_resident(max(block.nbytes, len(starts) * _FAULT_BYTES))
        return make_windows(block, self.lookback, self.horizon, stride=step, nan_policy=nan_policy, **self._options)

    def _bound_resident(self, nbytes):
        """Hand the map's pages back once they hold RELEASE_BYTES more than after the last release.

        A fault maps more than the rows asked for (fault-around, large page-cache folios: from
        64 KiB to megabytes), so the process's resident file pages are read from /proc/self/statm
        every ~16 MB of estimated reads; where that is unavailable, the estimate alone decides."""
        self._read += nbytes
        if self._read < _CHECK_BYTES:
            return
        self._read = 0
        resident = _resident_file_bytes()
        if resident is None or resident - self._resident_after_release > RELEASE_BYTES:
            _release(self.data)
            self._resident_after_release = _resident_file_bytes() or 0

    def _near_nan(self, lo, hi):
        """Windows whose rows meet a NaN in rows [lo, hi) (of any column: a superset of the invalid ones)."""
        chunk = np.asarray(self.data[lo:hi])
        if chunk.dtype.kind != "f":  # integer streams hold no NaN
            return np.empty(0, dtype=np.int64)
        nan_rows = np.flatnonzero(np.isnan(chunk).any(axis=1)) + lo
        if not len(nan_rows):
            return nan_rows
        first = np.maximum(-((self.span - 1 - nan_rows) // self.stride), 0)  # ceil((r - span + 1) / stride)
        last = np.minimum(nan_rows // self.stride, self.n_windows - 1)
        keep = first <= last
        first, last = first[keep], last[keep]
        if not len(first):
            return first
        base = first.min()
        hits = np.zeros(last.max() - base + 2, dtype=np.int64)
        np.add.at(hits, first - base, 1)
        np.add.at(hits, last - base + 1, -1)
        return np.flatnonzero(np.cumsum(hits)[:-1] > 0) + base

    def _scan(self):
        """Sorted indices of the windows make_windows would drop (nan_policy="drop")."""
        row_bytes = max(1, self.data.shape[1] * np.dtype(self.data.dtype).itemsize)
        step = max(self.span, CHUNK_BYTES // row_bytes)
        bad = []
        for lo in range(0, len(self.data), step):
            near = self._near_nan(lo, min(lo + step, len(self.data)))
            for i in range(0, len(near), _CHECK_BATCH):
                ks = near[i:i + _CHECK_BATCH]
                ok = self._cut(ks * self.stride, nan_policy="mask").mask
                if not ok.all() and self.nan_policy == "raise":
                    self._raise(int(ks[np.argmin(ok)]))
                bad.append(ks[~ok])
            _release(self.data)
            self._resident_after_release = _resident_file_bytes() or 0
        return np.unique(np.concatenate(bad)) if bad else np.empty(0, dtype=np.int64)

    def _raise(self, k):
        s = k * self.stride
        frame = pd.DataFrame(np.asarray(self.data[s:s + self.span]), index=pd.RangeIndex(s, s + self.span))
        try:
            make_windows(frame, self.lookback, self.horizon, nan_policy="raise", **self._options)
        except ValueError as exc:  # name the stream's row, as make_windows on the whole stream does
            raise ValueError(re.sub(r"at row \d+ \(index (\d+)\)", r"at row \1", str(exc))) from None

    # --- Dataset --------------------------------------------------------------------------------
    def __len__(self):
        return self.n_windows - len(self._bad)

    def window_starts(self, indices):
        """First stream row of each window (dataset index -> row), skipping dropped windows."""
        idx = np.asarray(indices, dtype=np.int64)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"index: expected values in [{-n}, {n}), got {idx.min()}..{idx.max()}")
        idx = np.where(idx < 0, idx + n, idx)
        return (idx + np.searchsorted(self._bad_shift, idx, side="right")) * self.stride

    def __getitems__(self, indices):
        """A batch at once (torch's DataLoader calls this): one gather, one make_windows call."""
        w = self._cut(self.window_starts(indices))
        # tensor views: the DataLoader's collate then stacks them as fast as a TensorDataset's items
        X, y = torch.from_numpy(w.X), torch.from_numpy(w.y.reshape(len(w.y), -1))
        return list(zip(X.unbind(0), y.unbind(0)))

    def __getitem__(self, index):
        return self.__getitems__([index])[0]

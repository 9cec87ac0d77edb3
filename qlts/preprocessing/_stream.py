"""Online window buffer for inference: :class:`WindowStream`."""
from __future__ import annotations

import numpy as np

from .._validation import check_int
from ._windows import check_normalize


class WindowStream:
    """Keep the latest ``lookback`` rows of a live stream and hand out model windows.

    Rows go in with :meth:`push` as they arrive. Every ``stride`` rows, once ``lookback``
    rows have been seen, a window is complete; :meth:`push` returns the windows its rows
    completed and :meth:`latest` returns the newest one. Fed a (T, F) stream row by row,
    the windows are those of ``make_windows(stream, lookback, horizon, stride=stride,
    nan_policy="mask").X`` (plus the trailing windows whose targets are not known yet),
    including ``normalize="last"``. Windows with NaN are returned as they are.

    The buffer holds ``2 * lookback`` rows and writes each row twice, so the newest window
    is always one contiguous slice: a push costs O(F), never a shift of the buffer.

    Parameters
    ----------
    lookback : int >= 1
    n_features : int >= 1
        Columns per row (the model's input columns, in order).
    stride : int >= 1
    normalize : None or "last"
        "last" subtracts each window's last row, as ``make_windows(normalize="last")``.
    """

    def __init__(self, lookback, n_features, *, stride=1, normalize=None):
        self.lookback = check_int("lookback", lookback, min_value=1)
        self.n_features = check_int("n_features", n_features, min_value=1)
        self.stride = check_int("stride", stride, min_value=1)
        self.normalize = check_normalize(normalize)
        self._buf = np.empty((2 * self.lookback, self.n_features), dtype=np.float32)
        self.n_seen = 0

    def _window(self):
        end = self.n_seen % self.lookback + self.lookback  # newest row sits at end - 1
        window = self._buf[end - self.lookback:end].copy()
        if self.normalize == "last":
            window -= window[-1]
        return window

    def push(self, rows):
        """Append one row (F,) or several (k, F); return the windows they completed as a
        float32 array (m, lookback, F), m = 0 when none."""
        rows = np.asarray(rows)
        shape = rows.shape
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"rows: expected shape ({self.n_features},) or (k, {self.n_features}), "
                             f"got {shape}")
        if rows.dtype.kind not in "fiub":
            raise TypeError(f"rows: expected numeric values, got dtype {rows.dtype}")
        done = []
        for row in rows:
            pos = self.n_seen % self.lookback
            self._buf[pos] = row
            self._buf[pos + self.lookback] = row
            self.n_seen += 1
            if self.ready and (self.n_seen - self.lookback) % self.stride == 0:
                done.append(self._window())
        if not done:
            return np.empty((0, self.lookback, self.n_features), dtype=np.float32)
        return np.stack(done)

    @property
    def ready(self):
        """True once ``lookback`` rows have been pushed."""
        return self.n_seen >= self.lookback

    def latest(self):
        """The newest ``lookback`` rows (a (lookback, F) float32 copy), or None before
        ``lookback`` rows have arrived. Unlike :meth:`push` it ignores ``stride``."""
        return self._window() if self.ready else None

    def reset(self):
        """Forget every row seen."""
        self.n_seen = 0

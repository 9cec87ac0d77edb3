"""``NaiveForecaster``: the reference every forecasting report compares against."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import check_choice, check_int
from ._series import apply_nan_policy, as_frame, check_horizon, future_index

STRATEGIES = ("last", "seasonal")


class NaiveForecaster(BaseEstimator):
    """Repeat the last value (``strategy="last"``) or the last season (``"seasonal"``, period
    ``season_length``): the forecast h steps ahead is ``y[T - m + ((h - 1) mod m)]``.

    Same interface as :class:`qlts.QLLSTMForecaster`: ``fit(y, X=None)`` and
    ``predict(horizon=None, X=None, y=None)``; ``X`` is accepted and ignored. NaN in y are
    interpolated first (``nan_policy="interpolate"``).
    """

    def __init__(self, strategy="last", season_length=1, horizon=1, nan_policy="interpolate"):
        self.strategy = strategy
        self.season_length = season_length
        self.horizon = horizon
        self.nan_policy = nan_policy

    def _period(self):
        check_choice("strategy", self.strategy, STRATEGIES)
        m = check_int("season_length", self.season_length, min_value=1)
        return 1 if self.strategy == "last" else m

    def fit(self, y, X=None):
        self._period()
        check_horizon(self.horizon)
        frame = self._context(y, "y")
        self.columns_ = list(frame.columns)
        self.last_ = frame
        return self

    def _context(self, y, name):
        m = self._period()
        frame = apply_nan_policy(as_frame(y, name), "interpolate" if self.nan_policy == "drop" else self.nan_policy,
                                 name)
        if len(frame) < max(m, 2 if isinstance(frame.index, pd.DatetimeIndex) else 1):
            raise ValueError(f"{name}: expected at least season_length={m} rows, got {len(frame)}")
        return frame.iloc[-max(m, 3):]  # 3 rows keep the frequency inferable

    def predict(self, horizon=None, X=None, y=None):
        check_is_fitted(self, "last_")
        h = check_horizon(self.horizon if horizon is None else horizon)
        context = self.last_ if y is None else self._context(y, "y")
        if list(context.columns) != self.columns_:
            raise ValueError(f"y: expected columns {self.columns_}, got {list(context.columns)}")
        m = self._period()
        values = context.to_numpy()[-m:]
        forecast = values[np.arange(h) % m]
        return pd.DataFrame(forecast, index=future_index(context.index, h), columns=self.columns_)

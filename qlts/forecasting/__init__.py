"""Series-level forecasting: :class:`QLLSTMForecaster` and the :class:`NaiveForecaster` reference."""
from .forecaster import QLLSTMForecaster
from .naive import NaiveForecaster

__all__ = ["QLLSTMForecaster", "NaiveForecaster"]

"""scikit-learn estimators on skorch: :class:`QLLSTMClassifier` and :class:`QLLSTMRegressor`."""
from ._callbacks import DivergenceError
from ._persist import FORMAT_VERSION
from .classifier import QLLSTMClassifier
from .regressor import QLLSTMRegressor

__all__ = ["DivergenceError", "FORMAT_VERSION", "QLLSTMClassifier", "QLLSTMRegressor"]

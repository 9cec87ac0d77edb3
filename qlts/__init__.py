"""qlts: QL-LSTM for sequence classification and time-series forecasting."""
__version__ = "0.1.0"

# The estimators import torch and skorch: load them on first use, so `import qlts` stays light.
_LAZY = {"QLLSTMClassifier": "qlts.estimators", "QLLSTMRegressor": "qlts.estimators",
         "QLLSTMForecaster": "qlts.forecasting", "NaiveForecaster": "qlts.forecasting",
         "DivergenceError": "qlts.estimators"}
__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qlts' has no attribute {name!r}")

"""qlts: QL-LSTM for sequence classification and time-series forecasting."""
__version__ = "0.1.0"

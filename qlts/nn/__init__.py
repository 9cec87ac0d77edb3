"""Torch modules: the QL-LSTM layer, its cell, the encoder factory and parameter counts."""
from .qllstm import QLLSTM, QLLSTMCell
from .encoder import CELLS, POOLINGS, RecurrentEncoder, SequenceModel, make_rnn
from .params import count_parameters, lstm_parameter_count, qllstm_parameter_count

__all__ = ["QLLSTM", "QLLSTMCell", "CELLS", "POOLINGS", "RecurrentEncoder", "SequenceModel", "make_rnn",
           "count_parameters", "lstm_parameter_count", "qllstm_parameter_count"]

"""Parameter counts, so every table can report QL-LSTM beside nn.LSTM at the same size."""
from __future__ import annotations

import torch
from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters of ``module`` (only those with ``requires_grad`` by default)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def lstm_parameter_count(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False) -> int:
    """Parameters of ``torch.nn.LSTM`` at this size: 4H(d+H) + 8H per layer and direction."""
    with torch.device("meta"):
        lstm = nn.LSTM(input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional)
    return count_parameters(lstm)


def qllstm_parameter_count(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False,
                           learn_alpha=False) -> int:
    """Parameters of :class:`qlts.nn.QLLSTM`: 2H(d+H) + 7H per layer and direction (+1 learned alpha).

    Without bias, b_u and beta are gone: 2H(d+H) + 3H.
    """
    H, directions = hidden_size, 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        d = input_size if layer == 0 else H * directions
        total += directions * (2 * H * (d + H) + (7 if bias else 3) * H + int(learn_alpha))
    return total

"""One encoder for every model; ``cell=`` picks the recurrence.

The baselines in every benchmark are the same network with another cell, so a comparison
changes one argument and nothing else.
"""
from __future__ import annotations

import torch
from torch import nn

from .._validation import check_choice, check_float, check_int
from .qllstm import QLLSTM, reverse_padded

CELLS = ("qllstm", "lstm", "gru", "bilstm")
POOLINGS = ("last", "mean", "max")


def make_rnn(cell, input_size, hidden_size, num_layers=1, *, dropout=0.0, bidirectional=False, batch_first=True,
             alpha=0.1, skip=1, skip_mode="convex", learn_alpha=False, backend="auto"):
    """A recurrent block with the ``nn.LSTM`` interface for ``cell`` in :data:`CELLS`.

    "bilstm" is an LSTM with ``bidirectional=True``. The QL-LSTM keywords are ignored by the
    other cells. ``nn.GRU`` returns ``(output, h_n)``; the others ``(output, (h_n, c_n))``.
    """
    check_choice("cell", cell, CELLS)
    check_int("hidden_size", hidden_size, min_value=1)
    check_float("dropout", dropout, low=0.0, high=1.0)  # checked even where one layer leaves it unused
    common = dict(num_layers=num_layers, batch_first=batch_first, dropout=dropout if num_layers > 1 else 0.0)
    if cell == "qllstm":
        return QLLSTM(input_size, hidden_size, bidirectional=bidirectional, alpha=alpha, skip=skip,
                      skip_mode=skip_mode, learn_alpha=learn_alpha, backend=backend, **common)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, bidirectional=bidirectional, **common)
    return nn.LSTM(input_size, hidden_size, bidirectional=bidirectional or cell == "bilstm", **common)


def _bidirectional_padded(rnn, x, lengths):
    """A bidirectional nn.LSTM / nn.GRU over a padded batch-first ``x`` with ``lengths``:
    (output (B, T, 2H), the top layer's final states (B, 2H)).

    Each layer and direction runs on its own through the op nn.LSTM itself calls
    (``torch.lstm`` / ``torch.gru``), the reverse one on every row reversed within its length.
    That is what a packed batch computes, but a packed batch leaves oneDNN for a per-step
    loop (~10x slower on a CPU).
    """
    op = torch.lstm if isinstance(rnn, nn.LSTM) else torch.gru
    layer_input = x.transpose(0, 1)  # time-major, as reverse_padded expects
    zeros = layer_input.new_zeros(1, x.shape[0], rnn.hidden_size)
    hx = (zeros, zeros) if isinstance(rnn, nn.LSTM) else zeros
    names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if rnn.bias else ())
    for layer in range(rnn.num_layers):
        outs = []
        for suffix in ("", "_reverse"):
            params = [getattr(rnn, f"{name}_l{layer}{suffix}") for name in names]
            seq = layer_input if not suffix else reverse_padded(layer_input, lengths)
            out = op(seq, hx, params, rnn.bias, 1, 0.0, rnn.training, False, False)[0]
            outs.append(out if not suffix else reverse_padded(out, lengths))
        layer_input = torch.cat(outs, dim=-1)
        if rnn.dropout and rnn.training and layer < rnn.num_layers - 1:
            layer_input = nn.functional.dropout(layer_input, p=rnn.dropout, training=True)
    H = rnn.hidden_size
    rows = torch.arange(x.shape[0], device=x.device)
    last = torch.cat([layer_input[(lengths - 1).to(x.device), rows, :H], layer_input[0, :, H:]], dim=-1)
    return layer_input.transpose(0, 1), last


class RecurrentEncoder(nn.Module):
    """Optional token embedding -> recurrent stack -> pooling over valid steps.

    ``forward(x, lengths=None) -> (B, output_size)``. ``x`` is (B, T, F) float, or (B, T)
    integer token ids when ``vocab_size`` is set (id 0 is padding). ``lengths`` (B,) marks
    the valid prefix of each row; padded steps never reach the result (QL-LSTM stops each
    row at its length; the torch cells run them and discard them), and the steps past the
    longest row are cut off before the embedding.

    Pooling: "last" is the final hidden state of the top layer (for a reverse direction,
    the state after reading the whole sequence), "mean" and "max" pool the outputs over
    valid steps.

    ``input_dropout`` drops elements of the recurrent stack's input (the embedded tokens, or
    the features) in training; ``dropout`` acts between recurrent layers only, as in torch.
    """

    def __init__(self, input_size, hidden_size=64, num_layers=1, *, cell="qllstm", bidirectional=False, dropout=0.0,
                 input_dropout=0.0, pooling="last", vocab_size=None, embedding_dim=None, **ql_kwargs):
        super().__init__()
        check_choice("pooling", pooling, POOLINGS)
        check_float("input_dropout", input_dropout, low=0.0, high=1.0, high_open=True)
        self.input_dropout = nn.Dropout(input_dropout) if input_dropout else None
        self.pooling = pooling
        if vocab_size is not None:
            check_int("vocab_size", vocab_size, min_value=2)
            embedding_dim = check_int("embedding_dim", embedding_dim or 64, min_value=1)
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
            input_size = embedding_dim
        else:
            self.embedding = None
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, dropout=dropout, bidirectional=bidirectional,
                            batch_first=True, **ql_kwargs)
        directions = 2 if (bidirectional or cell == "bilstm") else 1
        self.output_size = hidden_size * directions

    def forward(self, x, lengths=None):
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
            if lengths.numel():
                # Steps past the longest row are padding in every row and never reach the
                # result: drop them (exact). Short documents padded to max_len stop paying for it.
                x = x[:, :int(lengths.max())]
        if self.embedding is not None:
            x = self.embedding(x)
        if self.input_dropout is not None:
            x = self.input_dropout(x)
        last = None  # the top layer's state after each row's last valid step, when not in h_n
        if lengths is None:
            out, state = self.rnn(x)
        else:
            if isinstance(self.rnn, QLLSTM):
                out, state = self.rnn(x, lengths=lengths)  # padded in and out: no packing
            elif self.rnn.bidirectional:
                out, last = _bidirectional_padded(self.rnn, x, lengths)
            else:
                # A forward-only torch RNN's outputs at valid steps never see the padding after
                # them, and a packed batch would leave oneDNN for a per-step loop (~10x slower).
                out, state = self.rnn(x)
                last = out[torch.arange(out.shape[0], device=out.device), (lengths - 1).to(out.device)]
        if self.pooling == "last":
            if last is not None:
                return last
            h_n = state[0] if isinstance(state, tuple) else state
            directions = self.output_size // self.rnn.hidden_size
            return torch.cat(list(h_n[-directions:]), dim=-1)
        if lengths is None:
            return out.mean(1) if self.pooling == "mean" else out.max(1).values
        valid = (torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).to(out.device).unsqueeze(-1)
        if self.pooling == "mean":
            return (out * valid).sum(1) / lengths.to(out.device, out.dtype).unsqueeze(1)
        # max(dim) sends each unit's gradient to one step; amax's tie-splitting backward copied
        # the (B, T, H) output three more times (the pooling's fwd+bwd ran 1.5x slower)
        return out.masked_fill(~valid, float("-inf")).max(1).values


class SequenceModel(nn.Module):
    """:class:`RecurrentEncoder` followed by a linear head with ``n_outputs`` outputs
    (logits for classification, values for regression)."""

    def __init__(self, input_size, n_outputs, hidden_size=64, **encoder_kwargs):
        super().__init__()
        check_int("n_outputs", n_outputs, min_value=1)
        self.encoder = RecurrentEncoder(input_size, hidden_size, **encoder_kwargs)
        self.head = nn.Linear(self.encoder.output_size, n_outputs)

    def forward(self, x, lengths=None):
        return self.head(self.encoder(x, lengths))

"""``QLLSTM`` (a drop-in for ``torch.nn.LSTM``) and ``QLLSTMCell``.

The math is :func:`qlts.nn.functional.qllstm_cell`; this module owns parameters, layers,
directions, packing and backend dispatch.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from .. import kernels
from .._validation import check_choice, check_float, check_int
from .functional import qllstm_cell

SKIP_MODES = ("convex", "additive")
# gamma and beta rows are (i, f, o). DESIGN §1: forget falls as the shared signal rises,
# and the forget gate starts with bias 1.
GAMMA_INIT = (1.0, -1.0, 1.0)
BETA_INIT = (0.0, 1.0, 0.0)
_ALPHA_LOGIT_FLOOR = 1e-4  # logit(0) is -inf: learned alpha starts here when alpha=0

ADDITIVE_WARNING = (
    "skip_mode='additive' is the paper's literal update h_t = (...) + alpha*h_{t-K}: the gain on past "
    "states exceeds 1, so |h| can grow without bound (it overflowed past 1e3 within ~40 steps at "
    "alpha=0.3 in our tests) and training may diverge. Use skip_mode='convex' unless you need the literal form."
)


def _validate_hyper(hidden_size, alpha, skip, skip_mode, dropout=0.0, backend="auto"):
    check_int("hidden_size", hidden_size, min_value=1)
    check_float("alpha", alpha, low=0.0, high=1.0, high_open=True)
    check_int("skip", skip, min_value=1)
    check_choice("skip_mode", skip_mode, SKIP_MODES)
    check_float("dropout", dropout, low=0.0, high=1.0)
    check_choice("backend", backend, kernels.BACKENDS)
    if skip_mode == "additive":
        warnings.warn(ADDITIVE_WARNING, UserWarning, stacklevel=3)


def _init_direction(weight_ih, weight_hh, bias_u, gamma, beta):
    bound = 1.0 / math.sqrt(weight_hh.shape[1])
    with torch.no_grad():
        nn.init.uniform_(weight_ih, -bound, bound)
        nn.init.uniform_(weight_hh, -bound, bound)
        gamma.copy_(torch.tensor(GAMMA_INIT, dtype=gamma.dtype).unsqueeze(1).expand_as(gamma))
        if bias_u is not None:
            bias_u.zero_()
            beta.copy_(torch.tensor(BETA_INIT, dtype=beta.dtype).unsqueeze(1).expand_as(beta))


def _alpha_logit(alpha):
    a = min(max(alpha, _ALPHA_LOGIT_FLOOR), 1 - _ALPHA_LOGIT_FLOOR)
    return math.log(a / (1 - a))


def _autocast_on(device_type):
    """Whether torch.autocast is on for ``device_type`` (then mixed dtypes are expected)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: per-device functions
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()


def _check_dtypes(x, weight, states, owner):
    """input in the parameters' dtype, states in the input's; skipped under autocast, where
    mixed dtypes are expected (the triton backend casts them itself)."""
    if _autocast_on(x.device.type):
        return
    if x.dtype != weight.dtype:
        raise TypeError(f"input: expected dtype {weight.dtype} (the dtype of the {owner}'s parameters), got "
                        f"{x.dtype}; convert the input with .to({weight.dtype}) or the {owner} with .to({x.dtype})")
    for label, s in states:
        if s.dtype != x.dtype:
            raise TypeError(f"hx: expected {label} of dtype {x.dtype} (the input's), got {s.dtype}")


def reverse_padded(x, lengths):
    """Reverse each sequence of a time-major (T, B, ...) batch within its own length.

    Padding positions stay where they are. Applying it twice is the identity.
    """
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.shape[0]).unsqueeze(1)
    lens = lengths.unsqueeze(0)
    index = torch.where(steps < lens, lens - 1 - steps, steps).to(x.device)
    index = index.view(index.shape + (1,) * (x.dim() - 2)).expand_as(x)
    return x.gather(0, index)


class QLLSTM(nn.Module):
    """QL-LSTM layer stack with the constructor and forward signature of ``torch.nn.LSTM``.

    Extra keyword arguments: ``alpha`` (skip weight in [0, 1)), ``skip`` (K >= 1),
    ``skip_mode`` ("convex" or "additive"), ``learn_alpha`` and ``backend``
    ("auto", "torch", "numba", "triton").

    ``bias=False`` drops b_u and beta (both fixed at zero). NaN in the input is allowed and
    propagates to the outputs, as in ``nn.LSTM``.

    Variable lengths: a ``PackedSequence`` as nn.LSTM, or (an extension) a padded batch with
    ``forward(input, hx, lengths=...)``: the output stays padded, zero past each row's
    length, and (h_n, c_n) are the states at each row's last valid step. The padded form
    skips packing and unpacking, which cost more than the scan itself at T=1000, and the
    scan stops at the longest row.

    Parameters per layer and direction (suffix ``_l{k}`` and ``_reverse``, as nn.LSTM):
    ``weight_ih`` (2H, d), ``weight_hh`` (2H, H), ``bias_u`` (H), ``gamma`` (3, H),
    ``beta`` (3, H) and, with ``learn_alpha``, ``alpha_logit`` (a scalar; alpha = sigmoid).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, *, alpha=0.1, skip=1, skip_mode="convex", learn_alpha=False,
                 backend="auto", device=None, dtype=None):
        super().__init__()
        check_int("input_size", input_size, min_value=1)
        check_int("num_layers", num_layers, min_value=1)
        _validate_hyper(hidden_size, alpha, skip, skip_mode, dropout, backend)
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.alpha = float(alpha)
        self.skip = int(skip)
        self.skip_mode = skip_mode
        self.learn_alpha = bool(learn_alpha)
        self.backend = backend
        factory = {"device": device, "dtype": dtype}
        H = self.hidden_size
        self._direction_names = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else H * self.num_directions
            for suffix in ([""] + (["_reverse"] if self.bidirectional else [])):
                name = f"l{layer}{suffix}"
                self._direction_names.append(name)
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(2 * H, layer_input, **factory)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(2 * H, H, **factory)))
                self.register_parameter(f"gamma_{name}", nn.Parameter(torch.empty(3, H, **factory)))
                if self.bias:
                    self.register_parameter(f"bias_u_{name}", nn.Parameter(torch.empty(H, **factory)))
                    self.register_parameter(f"beta_{name}", nn.Parameter(torch.empty(3, H, **factory)))
                else:
                    self.register_buffer(f"bias_u_{name}", torch.zeros(H, **factory))
                    self.register_buffer(f"beta_{name}", torch.zeros(3, H, **factory))
                if self.learn_alpha:
                    self.register_parameter(f"alpha_logit_{name}", nn.Parameter(torch.empty((), **factory)))
        self.reset_parameters()

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def reset_parameters(self):
        for name in self._direction_names:
            w_ih, w_hh, b_u, gamma, beta, _ = self._direction_params(name)
            _init_direction(w_ih, w_hh, b_u if self.bias else None, gamma, beta)
            if self.learn_alpha:
                with torch.no_grad():
                    getattr(self, f"alpha_logit_{name}").fill_(_alpha_logit(self.alpha))

    def _direction_params(self, name):
        w_ih = getattr(self, f"weight_ih_{name}")
        if self.learn_alpha:
            alpha = torch.sigmoid(getattr(self, f"alpha_logit_{name}"))
        else:
            alpha = torch.tensor(self.alpha, dtype=w_ih.dtype, device=w_ih.device)
        return (w_ih, getattr(self, f"weight_hh_{name}"), getattr(self, f"bias_u_{name}"),
                getattr(self, f"gamma_{name}"), getattr(self, f"beta_{name}"), alpha)

    def effective_alpha(self):
        """alpha per layer and direction, as a dict of floats (learned or fixed)."""
        return {name: float(self._direction_params(name)[5]) for name in self._direction_names}

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        s += f", alpha={self.alpha}, skip={self.skip}, skip_mode={self.skip_mode!r}"
        if self.learn_alpha:
            s += ", learn_alpha=True"
        return s + f", backend={self.backend!r}"

    # -- forward -------------------------------------------------------------------------

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input: expected a torch.Tensor or PackedSequence, got {type(x).__name__}")
        if x.dim() not in (2, 3):
            raise ValueError(f"input: expected a 2-D (unbatched) or 3-D (batched) tensor, got {x.dim()}-D "
                             f"with shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input: expected input_size={self.input_size} features in the last dimension, "
                             f"got {x.shape[-1]} (shape {tuple(x.shape)})")
        if not x.is_floating_point():
            raise TypeError(f"input: expected a floating-point tensor, got dtype {x.dtype}")

    def _initial_state(self, hx, batch, x, unbatched):
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if hx is None:
            zeros = torch.zeros(shape, dtype=x.dtype, device=x.device)
            return zeros, zeros
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"hx: expected a tuple (h_0, c_0) of tensors, got {type(hx).__name__}")
        states = []
        for label, s in zip(("h_0", "c_0"), hx):
            if not isinstance(s, torch.Tensor):
                raise TypeError(f"hx: expected {label} to be a tensor, got {type(s).__name__}")
            if unbatched:
                if s.dim() != 2:
                    raise ValueError(f"hx: expected 2-D {label} for unbatched input, got shape {tuple(s.shape)}")
                s = s.unsqueeze(1)
            if tuple(s.shape) != shape:
                raise ValueError(f"hx: expected {label} of shape {shape}, got {tuple(s.shape)}")
            states.append(s)
        return states[0], states[1]

    def forward(self, input, hx=None, *, lengths=None):
        packed = isinstance(input, PackedSequence)
        unbatched = False
        if packed:
            if lengths is not None:
                raise ValueError("lengths: expected None with a PackedSequence input (it carries its lengths), "
                                 f"got {lengths!r}")
            x, lengths = pad_packed_sequence(input)  # (T, B, d) in the caller's batch order
            self._check_input(x)
            lengths = lengths.to(torch.int64)
        else:
            self._check_input(input)
            x = input
            unbatched = x.dim() == 2
            if unbatched:
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
            if lengths is not None:
                lengths = _check_lengths(lengths, x.shape[0], x.shape[1])
        padded_steps = x.shape[0]
        if lengths is not None and len(lengths):
            # steps past the longest row never reach a result: the output is zero there
            x = x[:int(lengths.max())]
        h0_all, c0_all = self._initial_state(hx, x.shape[1], x, unbatched)
        backend = kernels.resolve(self.backend, x.device, x.dtype)
        if backend != "triton":  # triton casts to its compute dtype
            _check_dtypes(x, self.weight_ih_l0, (("h_0", h0_all), ("c_0", c0_all)), "layer")
        scan = kernels.get_scan(backend, x.device, x.dtype)
        convex = self.skip_mode == "convex"
        h_n, c_n = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                name = self._direction_names[index]
                seq = layer_input if direction == 0 else reverse_padded(layer_input, lengths)
                out, h, c = scan(seq, h0_all[index], c0_all[index], *self._direction_params(name), lengths,
                                 skip=self.skip, convex=convex)
                outs.append(out if direction == 0 else reverse_padded(out, lengths))
                h_n.append(h)
                c_n.append(c)
            layer_input = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = nn.functional.dropout(layer_input, p=self.dropout, training=True)
        output = layer_input
        if output.shape[0] < padded_steps:
            output = nn.functional.pad(output, (0, 0, 0, 0, 0, padded_steps - output.shape[0]))
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if packed:
            output = _repack(output, input)
        elif unbatched:
            output, h_n, c_n = output.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (h_n, c_n)


def _check_lengths(lengths, T, B):
    """``lengths`` as an int64 CPU tensor of shape (B,) with values in [1, T]."""
    given = lengths
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.cpu()
    try:
        lengths = torch.as_tensor(lengths)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"lengths: expected {B} integers (one per sequence), got {given!r}") from None
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or tuple(lengths.shape) != (B,):
        raise ValueError(f"lengths: expected {B} integers (one per sequence), got {given!r}")
    lengths = lengths.to(torch.int64)
    if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
        raise ValueError(f"lengths: expected values in [1, {T}] (the padded length), got min {int(lengths.min())} "
                         f"and max {int(lengths.max())}")
    return lengths


def _repack(padded, like):
    """Pack a (T, B, ...) padded output in the caller's batch order with ``like``'s layout."""
    T, B = padded.shape[:2]
    order = like.sorted_indices if like.sorted_indices is not None else torch.arange(B)
    sizes = like.batch_sizes  # rows present at each step (a CPU tensor)
    step = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    rank = torch.arange(len(step)) - (torch.cumsum(sizes, 0) - sizes)[step]  # position within its step
    # One gather over all steps: slicing step by step made backward allocate a (T, B, H)
    # gradient per step (quadratic in T: 15 s instead of 0.3 s at T=1000).
    flat = (step * B + order.cpu()[rank]).to(padded.device)
    data = padded.reshape(T * B, *padded.shape[2:]).index_select(0, flat)
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


class QLLSTMCell(nn.Module):
    """One QL-LSTM step, like ``torch.nn.LSTMCell``.

    ``forward(input, hx=None, h_skip=None) -> (h_1, c_1)``. ``h_skip`` is h_{t-K}; it
    defaults to h_{t-1} (skip=1). To run a skip K > 1 step by step, keep the last K hidden
    states yourself, or use :class:`QLLSTM`, which does.
    """

    def __init__(self, input_size, hidden_size, bias=True, *, alpha=0.1, skip_mode="convex", learn_alpha=False,
                 device=None, dtype=None):
        super().__init__()
        check_int("input_size", input_size, min_value=1)
        _validate_hyper(hidden_size, alpha, 1, skip_mode)
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bool(bias)
        self.alpha, self.skip_mode, self.learn_alpha = float(alpha), skip_mode, bool(learn_alpha)
        factory = {"device": device, "dtype": dtype}
        H = self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(2 * H, self.input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(2 * H, H, **factory))
        self.gamma = nn.Parameter(torch.empty(3, H, **factory))
        if self.bias:
            self.bias_u = nn.Parameter(torch.empty(H, **factory))
            self.beta = nn.Parameter(torch.empty(3, H, **factory))
        else:
            self.register_buffer("bias_u", torch.zeros(H, **factory))
            self.register_buffer("beta", torch.zeros(3, H, **factory))
        if self.learn_alpha:
            self.alpha_logit = nn.Parameter(torch.empty((), **factory))
        self.reset_parameters()

    def reset_parameters(self):
        _init_direction(self.weight_ih, self.weight_hh, self.bias_u if self.bias else None, self.gamma, self.beta)
        if self.learn_alpha:
            with torch.no_grad():
                self.alpha_logit.fill_(_alpha_logit(self.alpha))

    def forward(self, input, hx=None, h_skip=None):
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input: expected a torch.Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"input: expected shape (batch, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(input.shape)}")
        if not input.is_floating_point():
            raise TypeError(f"input: expected a floating-point tensor, got dtype {input.dtype}")
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            h = c = torch.zeros(shape, dtype=x.dtype, device=x.device)
        else:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"hx: expected a tuple (h_0, c_0) of tensors, got {type(hx).__name__}")
            h, c = (_cell_state("hx", label, s, shape, unbatched) for label, s in zip(("h_0", "c_0"), hx))
        if h_skip is None:
            h_skip = h
        else:
            h_skip = _cell_state("h_skip", "h_skip", h_skip, shape, unbatched)
        _check_dtypes(x, self.weight_ih, (("h_0", h), ("c_0", c), ("h_skip", h_skip)), "cell")
        alpha = torch.sigmoid(self.alpha_logit) if self.learn_alpha else self.alpha
        h1, c1 = qllstm_cell(x @ self.weight_ih.t(), h, c, h_skip, self.weight_hh, self.bias_u, self.gamma,
                             self.beta, alpha, self.skip_mode == "convex")
        return (h1.squeeze(0), c1.squeeze(0)) if unbatched else (h1, c1)


def _cell_state(name, label, s, shape, unbatched):
    """One (batch, hidden_size) state of :class:`QLLSTMCell`, unsqueezed for unbatched input."""
    if not isinstance(s, torch.Tensor):
        raise TypeError(f"{name}: expected {label} to be a tensor, got {type(s).__name__}")
    s = s.unsqueeze(0) if unbatched else s
    if tuple(s.shape) != shape:
        raise ValueError(f"{name}: expected {label} of shape {shape}, got {tuple(s.shape)}")
    return s

"""The QL-LSTM layer (reference backend) against DESIGN.md §1–2 and nn.LSTM's interface."""
import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from qlts import kernels
from qlts.nn import (QLLSTM, QLLSTMCell, RecurrentEncoder, SequenceModel, count_parameters, lstm_parameter_count,
                     make_rnn, qllstm_parameter_count)


def _randomise(module, seed):
    """Random parameters everywhere (not the structured init), so every term of the math matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 1.2 - 0.6)


# -- an independent numpy implementation of DESIGN §1, written from the text -----------------

def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_qllstm(x, params, H, num_layers, bidirectional, alphas, K, convex):
    """x: (T, B, d) float64. params[(layer, dir)] = dict of numpy arrays. Returns (out, h_n, c_n)."""
    T, B, _ = x.shape
    layer_in = x
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for direction in range(2 if bidirectional else 1):
            p = params[(layer, direction)]
            alpha = alphas[(layer, direction)]
            kappa = 1 - alpha if convex else 1.0
            seq = layer_in if direction == 0 else layer_in[::-1]
            h0 = np.zeros((B, H))
            hist = [h0]  # hist[t] = h_t, with h_s = h_0 for s <= 0
            h, c = h0, np.zeros((B, H))
            for t in range(1, T + 1):
                z = seq[t - 1] @ p["W_x"].T + h @ p["W_h"].T
                a, u = z[:, :H], z[:, H:] + p["b_u"]
                i = _sigmoid(p["gamma"][0] * a + p["beta"][0])
                f = _sigmoid(p["gamma"][1] * a + p["beta"][1])
                o = _sigmoid(p["gamma"][2] * a + p["beta"][2])
                g = np.tanh(u)
                c = f * c + i * g
                h_tilde = o * np.tanh(c)
                h_skip = hist[max(t - K, 0)]
                h = kappa * (f * h + (1 - f) * h_tilde) + alpha * h_skip
                hist.append(h)
            out = np.stack(hist[1:])
            outs.append(out if direction == 0 else out[::-1])
            h_n.append(h)
            c_n.append(c)
        layer_in = np.concatenate(outs, axis=-1)
    return layer_in, np.stack(h_n), np.stack(c_n)


@pytest.mark.parametrize("K,skip_mode,learn_alpha,num_layers,bidirectional", [
    (1, "convex", False, 1, False),
    (3, "convex", False, 1, False),
    (1, "additive", False, 1, False),
    (3, "additive", True, 1, False),
    (3, "convex", True, 2, True),
    (1, "convex", False, 2, True),
])
def test_matches_independent_numpy_implementation(K, skip_mode, learn_alpha, num_layers, bidirectional):
    torch.manual_seed(1)
    d, H, T, B = 3, 5, 9, 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        layer = QLLSTM(d, H, num_layers, bidirectional=bidirectional, alpha=0.3, skip=K, skip_mode=skip_mode,
                       learn_alpha=learn_alpha, backend="torch", dtype=torch.float64)
    _randomise(layer, 2)
    x = torch.randn(T, B, d, dtype=torch.float64)
    out, (h_n, c_n) = layer(x)
    params, alphas = {}, {}
    for layer_idx, direction in itertools.product(range(num_layers), range(2 if bidirectional else 1)):
        name = f"l{layer_idx}{'_reverse' if direction else ''}"
        get = lambda stem: getattr(layer, f"{stem}_{name}").detach().numpy()
        params[(layer_idx, direction)] = dict(W_x=get("weight_ih"), W_h=get("weight_hh"), b_u=get("bias_u"),
                                              gamma=get("gamma"), beta=get("beta"))
        alphas[(layer_idx, direction)] = (1 / (1 + math.exp(-float(get("alpha_logit")))) if learn_alpha else 0.3)
    ref_out, ref_h, ref_c = numpy_qllstm(x.numpy(), params, H, num_layers, bidirectional, alphas, K,
                                         skip_mode == "convex")
    for got, want in ((out, ref_out), (h_n, ref_h), (c_n, ref_c)):
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-12)


def test_cell_is_one_step_of_the_layer():
    torch.manual_seed(0)
    layer = QLLSTM(4, 6, alpha=0.2, backend="torch", dtype=torch.float64)
    cell = QLLSTMCell(4, 6, alpha=0.2, dtype=torch.float64)
    _randomise(layer, 3)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    out, (h_n, c_n) = layer(x)
    h = c = torch.zeros(3, 6, dtype=torch.float64)
    for t in range(5):
        h, c = cell(x[t], (h, c))
        torch.testing.assert_close(h, out[t], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c, c_n[0], rtol=1e-12, atol=1e-12)


# -- interface parity with nn.LSTM --------------------------------------------------------

@pytest.mark.parametrize("batch_first,num_layers,bidirectional,given_hx,packed",
                         list(itertools.product([False, True], [1, 2, 3], [False, True], [False, True],
                                                [False, True])))
def test_shapes_match_nn_lstm(batch_first, num_layers, bidirectional, given_hx, packed):
    d, H, T, B = 3, 4, 6, 2
    kwargs = dict(num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional)
    ql, lstm = QLLSTM(d, H, backend="torch", **kwargs), nn.LSTM(d, H, **kwargs)
    x = torch.randn((B, T, d) if batch_first else (T, B, d))
    if packed:
        x = pack_padded_sequence(x, torch.tensor([T, 3]), batch_first=batch_first, enforce_sorted=False)
    hx = None
    if given_hx:
        shape = (num_layers * (2 if bidirectional else 1), B, H)
        hx = (torch.randn(shape), torch.randn(shape))
    (o1, (h1, c1)), (o2, (h2, c2)) = ql(x, hx), lstm(x, hx)
    if packed:
        o1, l1 = pad_packed_sequence(o1, batch_first=batch_first)
        o2, l2 = pad_packed_sequence(o2, batch_first=batch_first)
        assert l1.tolist() == l2.tolist()
    assert o1.shape == o2.shape and h1.shape == h2.shape and c1.shape == c2.shape


def test_unbatched_input_matches_batch_of_one():
    layer = QLLSTM(3, 4, num_layers=2, bidirectional=True, backend="torch")
    x = torch.randn(7, 3)
    out, (h, c) = layer(x)
    out_b, (h_b, c_b) = layer(x.unsqueeze(1))
    assert out.shape == (7, 8) and h.shape == (4, 4)
    torch.testing.assert_close(out, out_b.squeeze(1))
    torch.testing.assert_close(h, h_b.squeeze(1))


def test_packed_output_keeps_the_input_layout():
    layer = QLLSTM(3, 4, backend="torch")
    x = torch.randn(5, 3, 3)
    packed = pack_padded_sequence(x, torch.tensor([2, 5, 3]), enforce_sorted=False)
    out, _ = layer(packed)
    assert torch.equal(out.batch_sizes, packed.batch_sizes)
    assert torch.equal(out.sorted_indices, packed.sorted_indices)
    assert torch.equal(out.unsorted_indices, packed.unsorted_indices)


# -- parameter counts ------------------------------------------------------------------------

@pytest.mark.parametrize("d,H,layers,bidirectional,learn_alpha", [
    (1, 8, 1, False, False), (1, 64, 1, False, False), (16, 32, 2, False, True), (32, 64, 2, False, True), (64, 128, 1, True, False), (128, 128, 3, True, True),
    (300, 64, 1, False, False),
])
def test_parameter_count(d, H, layers, bidirectional, learn_alpha):
    layer = QLLSTM(d, H, layers, bidirectional=bidirectional, learn_alpha=learn_alpha, backend="torch")
    dirs = 2 if bidirectional else 1
    expected = sum(dirs * (2 * H * ((d if k == 0 else dirs * H) + H) + 7 * H + int(learn_alpha))
                   for k in range(layers))
    assert count_parameters(layer) == expected
    assert qllstm_parameter_count(d, H, layers, bidirectional=bidirectional, learn_alpha=learn_alpha) == expected
    lstm = nn.LSTM(d, H, layers, bidirectional=bidirectional)
    assert lstm_parameter_count(d, H, layers, bidirectional=bidirectional) == count_parameters(lstm)
    # The 7H gate vectors against nn.LSTM's 8H biases dominate only at toy sizes (d=1, H=8: 43%).
    if H >= 64:
        assert 1 - expected / count_parameters(lstm) >= 0.48


def test_parameter_count_without_bias():
    layer = QLLSTM(10, 20, bias=False, backend="torch")
    assert count_parameters(layer) == 2 * 20 * 30 + 3 * 20 == qllstm_parameter_count(10, 20, bias=False)


# -- gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("K,skip_mode,learn_alpha,bidirectional,lengths", [
    (1, "convex", False, False, None),
    (2, "convex", True, True, [4, 2, 3]),
    (3, "additive", True, False, [4, 1, 4]),
])
def test_gradcheck_every_input_and_parameter(K, skip_mode, learn_alpha, bidirectional, lengths):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        layer = QLLSTM(2, 3, num_layers=2 if bidirectional else 1, bidirectional=bidirectional, alpha=0.25, skip=K,
                       skip_mode=skip_mode, learn_alpha=learn_alpha, backend="torch", dtype=torch.float64)
    _randomise(layer, 5)
    names = [n for n, _ in layer.named_parameters()]
    n_states = layer.num_layers * layer.num_directions
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(n_states, 3, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(n_states, 3, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]

    def run(x, h0, c0, *params):
        state = dict(zip(names, params))
        inp = x if lengths is None else pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        out, (h, c) = torch.func.functional_call(layer, state, (inp, (h0, c0)))
        if lengths is not None:
            out = pad_packed_sequence(out)[0]
        return out, h, c

    assert torch.autograd.gradcheck(run, (x, h0, c0, *params), eps=1e-6, atol=1e-6, rtol=1e-5)
    if learn_alpha:
        assert any("alpha_logit" in n for n in names)


# -- long sequences and the two skip modes -------------------------------------------------------

def test_convex_mode_stays_bounded_over_ten_thousand_steps():
    torch.manual_seed(0)
    layer = QLLSTM(8, 64, alpha=0.3, backend="torch")
    with torch.no_grad():
        out, (h, c) = layer(torch.randn(10_000, 2, 8) * 3)
    assert torch.isfinite(out).all() and torch.isfinite(c).all()
    assert out.abs().max() <= 1.0


def test_additive_mode_warns_and_exceeds_the_convex_bound():
    """Documented behaviour: the additive (paper-literal) form is not bounded; under constant input
    at alpha=0.3 its state grows past 1 and eventually overflows."""
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="additive"):
        layer = QLLSTM(8, 64, alpha=0.3, skip_mode="additive", backend="torch")
    with torch.no_grad():
        out, _ = layer(torch.ones(400, 2, 8))
    peak = out.abs().amax(dim=(1, 2))
    assert peak[-1] > 1e3 or not torch.isfinite(peak[-1])
    assert (peak[:10] < 10).all()  # it grows over time, not from the first step


# -- variable lengths ------------------------------------------------------------------------------

@pytest.mark.parametrize("bidirectional,num_layers,K", [(False, 1, 1), (True, 1, 2), (True, 2, 3)])
def test_each_sequence_in_a_packed_batch_matches_running_alone(bidirectional, num_layers, K):
    torch.manual_seed(0)
    layer = QLLSTM(3, 4, num_layers, bidirectional=bidirectional, skip=K, backend="torch", batch_first=True,
                   dtype=torch.float64)
    _randomise(layer, 7)
    lengths = [6, 2, 5, 1]
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    out, (h, c) = layer(pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, batch_first=True)
    for b, n in enumerate(lengths):
        alone, (h_b, c_b) = layer(x[b:b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone[0], rtol=1e-12, atol=1e-12)
        assert (out[b, n:] == 0).all()
        torch.testing.assert_close(h[:, b], h_b[:, 0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(c[:, b], c_b[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bidirectional,num_layers,batch_first", [(False, 1, True), (True, 2, False)])
def test_padded_lengths_equal_the_packed_path(bidirectional, num_layers, batch_first):
    torch.manual_seed(0)
    layer = QLLSTM(3, 4, num_layers, bidirectional=bidirectional, skip=2, backend="torch", batch_first=batch_first,
                   dtype=torch.float64)
    _randomise(layer, 3)
    lengths = torch.tensor([6, 2, 5, 1])
    x = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    x_in = x if batch_first else x.transpose(0, 1)
    out, (h, c) = layer(x_in, lengths=lengths)
    packed_out, (h_p, c_p) = layer(pack_padded_sequence(x_in, lengths, batch_first=batch_first, enforce_sorted=False))
    packed_out, _ = pad_packed_sequence(packed_out, batch_first=batch_first, total_length=6)
    torch.testing.assert_close(out, packed_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close((h, c), (h_p, c_p), rtol=1e-12, atol=1e-12)
    g_padded, = torch.autograd.grad(out.sum() + h.sum(), x)
    g_packed, = torch.autograd.grad(packed_out.sum() + h_p.sum(), x)
    torch.testing.assert_close(g_padded, g_packed, rtol=1e-12, atol=1e-12)
    assert g_padded[1, 2:].abs().max() == 0  # padding never reaches the result


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_padded_lengths_scan_only_to_the_longest_row(backend, monkeypatch):
    """Padded to 9 steps, rows of 5 and 3: the scan runs 5 steps, and output (zero past each
    row), states and gradients equal the packed path's padded back to 9."""
    torch.manual_seed(0)
    layer = QLLSTM(3, 4, 2, bidirectional=True, skip=2, backend=backend, batch_first=True)
    _randomise(layer, 5)
    steps_seen = []
    get_scan = kernels.get_scan

    def recording_get_scan(*args):
        scan = get_scan(*args)
        return lambda seq, *rest, **kw: steps_seen.append(seq.shape[0]) or scan(seq, *rest, **kw)

    lengths = torch.tensor([5, 3])
    x = torch.randn(2, 9, 3, requires_grad=True)
    monkeypatch.setattr(kernels, "get_scan", recording_get_scan)
    out, (h, c) = layer(x, lengths=lengths)
    assert out.shape == (2, 9, 8) and set(steps_seen) == {5}
    monkeypatch.undo()
    packed_out, (h_p, c_p) = layer(pack_padded_sequence(x, lengths, batch_first=True))
    packed_out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=9)
    torch.testing.assert_close(out, packed_out)
    torch.testing.assert_close((h, c), (h_p, c_p))
    assert out[0, 5:].abs().max() == 0 and out[1, 3:].abs().max() == 0
    weights = torch.randn(out.shape)
    grads = torch.autograd.grad((out * weights).sum() + h.sum(), [x, *layer.parameters()])
    grads_packed = torch.autograd.grad((packed_out * weights).sum() + h_p.sum(), [x, *layer.parameters()])
    for g, e in zip(grads, grads_packed):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("lengths,pattern", [
    ([3, 2.5], r"lengths: expected 2 integers"), ([3], r"lengths: expected 2 integers"),
    ([4, 1], r"lengths: expected values in \[1, 3\].*got min 1 and max 4"), ([0, 2], r"got min 0"),
])
def test_bad_lengths(lengths, pattern):
    layer = QLLSTM(2, 3, backend="torch", batch_first=True)
    with pytest.raises(ValueError, match=pattern):
        layer(torch.randn(2, 3, 2), lengths=torch.tensor(lengths))
    packed = pack_padded_sequence(torch.randn(2, 3, 2), torch.tensor([3, 2]), batch_first=True)
    with pytest.raises(ValueError, match="lengths: expected None with a PackedSequence"):
        layer(packed, lengths=torch.tensor([3, 2]))


def test_lengths_that_are_not_numbers():
    """Bug: lengths torch cannot read raised torch's "new(): invalid data type 'str'"."""
    layer = QLLSTM(2, 3, backend="torch", batch_first=True)
    for lengths in ("ab", ["a", "b"], [None, 2]):
        with pytest.raises(ValueError, match=r"lengths: expected 2 integers \(one per sequence\), got"):
            layer(torch.randn(2, 3, 2), lengths=lengths)


@pytest.mark.parametrize("cell,bidirectional,num_layers", [("qllstm", True, 1), ("qllstm", False, 2), ("lstm", False, 2),
                                                         ("gru", False, 1), ("bilstm", False, 1), ("lstm", True, 2),
                                                         ("gru", True, 2)])
def test_encoder_pooling_ignores_padding(cell, bidirectional, num_layers):
    """Torch cells run on the padded batch, not packed (the reverse direction row by row from its
    own end): padding must not change the result."""
    torch.manual_seed(0)
    for pooling in ("last", "mean", "max"):
        enc = RecurrentEncoder(3, 4, num_layers, cell=cell, bidirectional=bidirectional, pooling=pooling,
                               backend="torch")
        x = torch.randn(2, 7, 3)
        padded = x.clone()
        padded[1, 4:] = 99.0  # garbage beyond the length must not leak into the result
        pooled = enc(padded, torch.tensor([7, 4]))
        torch.testing.assert_close(pooled[1], enc(x[1:, :4])[0])
        torch.testing.assert_close(pooled[0], enc(x[:1])[0])


@pytest.mark.parametrize("cell", ["qllstm", "lstm", "bilstm"])
def test_encoder_drops_the_steps_past_the_longest_row(cell):
    """Token ids padded to 9 steps with rows of 5 and 3: the embedding (so the recurrence) sees
    5 steps, and each row pools as it does alone and unpadded, gradients included."""
    torch.manual_seed(0)
    enc = RecurrentEncoder(None, 4, cell=cell, pooling="max", vocab_size=20, embedding_dim=3, backend="torch")
    ids = torch.randint(1, 20, (2, 9))
    ids[0, 5:] = 0
    ids[1, 3:] = 0
    seen = []
    enc.embedding.register_forward_hook(lambda module, args, output: seen.append(args[0].shape[1]))
    pooled = enc(ids, torch.tensor([5, 3]))
    assert seen == [5]
    alone = torch.cat([enc(ids[:1, :5]), enc(ids[1:, :3])])
    torch.testing.assert_close(pooled, alone)
    weights = torch.randn(pooled.shape)
    grads = torch.autograd.grad((pooled * weights).sum(), list(enc.parameters()))
    grads_alone = torch.autograd.grad((alone * weights).sum(), list(enc.parameters()))
    for g, e in zip(grads, grads_alone):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("cell", ["qllstm", "lstm"])
def test_input_dropout_drops_embedded_tokens_in_training_only(cell):
    """input_dropout zeroes about p of the recurrence's input elements in training (the rest
    scaled by 1/(1-p)); in eval the encoder equals the same weights without it."""
    torch.manual_seed(0)
    enc = RecurrentEncoder(None, 4, cell=cell, pooling="max", vocab_size=50, embedding_dim=16,
                           input_dropout=0.5, backend="torch")
    plain = RecurrentEncoder(None, 4, cell=cell, pooling="max", vocab_size=50, embedding_dim=16, backend="torch")
    plain.load_state_dict(enc.state_dict())
    ids = torch.randint(1, 50, (8, 30))
    seen = []
    enc.rnn.register_forward_hook(lambda module, args, output: seen.append(args[0].detach()))
    enc.train()
    enc(ids)
    embedded = enc.embedding(ids).detach()
    kept = seen[0] != 0
    assert 0.4 < kept.float().mean() < 0.6
    torch.testing.assert_close(seen[0][kept], 2 * embedded[kept])
    enc.eval()
    plain.eval()
    torch.testing.assert_close(enc(ids), plain(ids), rtol=0, atol=0)


@pytest.mark.parametrize("value, error, message", [
    (1.0, ValueError, r"input_dropout: expected a float in \[0.0, 1.0\), got 1.0"),
    (-0.1, ValueError, r"input_dropout: expected a float in \[0.0, 1.0\), got -0.1"),
    ("x", TypeError, r"input_dropout: expected a float, got str 'x'"),
])
def test_bad_input_dropout_names_itself(value, error, message):
    with pytest.raises(error, match=message):
        RecurrentEncoder(3, 4, input_dropout=value)


@pytest.mark.parametrize("rnn_class", [nn.LSTM, nn.GRU])
def test_bidirectional_torch_cells_match_the_packed_run(rnn_class):
    from qlts.nn.encoder import _bidirectional_padded

    torch.manual_seed(0)
    rnn = rnn_class(3, 4, 2, batch_first=True, bidirectional=True, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 5, 1])
    x = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    out, last = _bidirectional_padded(rnn, x, lengths)
    packed, h_n = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=6)
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n
    valid = (torch.arange(6) < lengths[:, None]).unsqueeze(-1)
    torch.testing.assert_close(out * valid, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last, torch.cat([h_n[-2], h_n[-1]], -1), rtol=1e-12, atol=1e-12)
    weights = torch.randn(out.shape, dtype=torch.float64) * valid
    grads = torch.autograd.grad((out * weights).sum() + last.sum(), [x, *rnn.parameters()])
    grads_packed = torch.autograd.grad((expected * weights).sum() + torch.cat([h_n[-2], h_n[-1]], -1).sum(),
                                       [x, *rnn.parameters()])
    for g, e in zip(grads, grads_packed):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["qllstm", "lstm", "gru", "bilstm"])
def test_every_cell_builds_the_same_kind_of_model(cell):
    model = SequenceModel(3, 2, 8, cell=cell, pooling="last")
    assert model(torch.randn(4, 5, 3)).shape == (4, 2)
    assert model.encoder.output_size == (16 if cell == "bilstm" else 8)
    assert isinstance(make_rnn(cell, 3, 8), nn.Module)


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,pattern", [
    (dict(alpha=1.0), ValueError, r"alpha: expected a float in \[0.0, 1.0\), got 1.0"),
    (dict(alpha=-0.1), ValueError, r"alpha: .*got -0.1"),
    (dict(skip=0), ValueError, r"skip: expected an int >= 1, got 0"),
    (dict(skip=1.5), TypeError, r"skip: expected an int"),
    (dict(skip_mode="mult"), ValueError, r"skip_mode: expected one of .*'additive'.*got 'mult'"),
    (dict(backend="cuda"), ValueError, r"backend: expected one of .*got 'cuda'"),
    (dict(hidden_size=0), ValueError, r"hidden_size: expected an int >= 1, got 0"),
    (dict(dropout=1.5), ValueError, r"dropout: expected a float in \[0.0, 1.0\], got 1.5"),
])
def test_bad_constructor_arguments(kwargs, exc, pattern):
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(exc, match=pattern):
        QLLSTM(**args)


def test_unknown_cell():
    with pytest.raises(ValueError, match=r"cell: expected one of .*got 'transformer'"):
        make_rnn("transformer", 3, 4)


@pytest.mark.parametrize("cell", ["qllstm", "lstm", "gru", "bilstm"])
def test_bad_dropout_is_refused_by_every_cell(cell):
    """Bug: with num_layers=1 a bad dropout (2.0, "x") was silently dropped; with more layers the
    torch cells raised their own message."""
    for layers in (1, 2):
        with pytest.raises(ValueError, match=r"dropout: expected a float in \[0.0, 1.0\], got 2.0"):
            make_rnn(cell, 3, 4, layers, dropout=2.0)
    with pytest.raises(TypeError, match=r"dropout: expected a float, got str 'x'"):
        make_rnn(cell, 3, 4, dropout="x")


def test_bad_forward_inputs():
    layer = QLLSTM(3, 4, num_layers=2, backend="torch")
    with pytest.raises(ValueError, match=r"input: expected a 2-D .* or 3-D .*got 4-D"):
        layer(torch.randn(2, 2, 2, 3))
    with pytest.raises(ValueError, match=r"input: expected input_size=3 .*got 5"):
        layer(torch.randn(6, 2, 5))
    with pytest.raises(ValueError, match=r"hx: expected h_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        layer(torch.randn(6, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(TypeError, match=r"hx: expected a tuple"):
        layer(torch.randn(6, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(TypeError, match=r"input: expected a torch.Tensor"):
        layer(np.zeros((6, 2, 3)))


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_dtype_mismatch_names_input_or_hx(backend):
    """Bug: a float64 input or hx on a float32 layer raised torch's "expected m1 and m2 to have the
    same dtype" (backend="torch"), or named the internal weight_ih (backend="numba")."""
    layer = QLLSTM(3, 4, backend=backend)
    x = torch.randn(5, 2, 3)
    with pytest.raises(TypeError, match=r"input: expected dtype torch.float32 .*got torch.float64"):
        layer(x.double())
    states = (torch.zeros(1, 2, 4, dtype=torch.float64), torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match=r"hx: expected h_0 of dtype torch.float32 .*got torch.float64"):
        layer(x, states)


def test_cell_bad_forward_inputs():
    """Bug: QLLSTMCell checked only the input's shape and hx's shape; other bad input reached the
    matmul (torch's "expected m1 and m2 to have the same dtype", "The size of tensor a (4) must
    match ...") or Python's tuple unpacking ("too many values to unpack")."""
    cell = QLLSTMCell(3, 4)
    x = torch.randn(3, 3)
    with pytest.raises(TypeError, match=r"input: expected a floating-point tensor, got dtype torch.int64"):
        cell(torch.ones(3, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"input: expected dtype torch.float32 .*got torch.float64"):
        cell(x.double())
    with pytest.raises(TypeError, match=r"hx: expected a tuple \(h_0, c_0\) of tensors, got Tensor"):
        cell(x, torch.zeros(3, 4))
    with pytest.raises(TypeError, match=r"hx: expected a tuple \(h_0, c_0\) of tensors, got list"):
        cell(x, [torch.zeros(3, 4)] * 3)
    with pytest.raises(TypeError, match=r"hx: expected c_0 to be a tensor, got ndarray"):
        cell(x, (torch.zeros(3, 4), np.zeros((3, 4))))
    with pytest.raises(TypeError, match=r"hx: expected h_0 of dtype torch.float32 .*got torch.float64"):
        cell(x, (torch.zeros(3, 4, dtype=torch.float64), torch.zeros(3, 4)))
    with pytest.raises(ValueError, match=r"h_skip: expected h_skip of shape \(3, 4\), got \(3, 5\)"):
        cell(x, None, torch.zeros(3, 5))
    with pytest.raises(TypeError, match=r"h_skip: expected h_skip to be a tensor, got ndarray"):
        cell(x, None, np.zeros((3, 4)))
    h, c = cell(x[0], (torch.zeros(4), torch.zeros(4)), torch.zeros(4))  # unbatched still works
    assert h.shape == c.shape == (4,)


def test_nan_input_propagates_and_input_is_not_modified():
    layer = QLLSTM(3, 4, backend="torch")
    x = torch.randn(5, 2, 3)
    x[2, 0, 1] = float("nan")
    before = x.clone()
    out, _ = layer(x)
    assert torch.isnan(out[2:, 0]).all() and torch.isfinite(out[:2]).all() and torch.isfinite(out[:, 1]).all()
    assert torch.equal(torch.isnan(x), torch.isnan(before)) and torch.equal(x.nan_to_num(), before.nan_to_num())

"""The QL-LSTM cell: DESIGN.md section 1, written once.

Every backend must compute exactly :func:`qllstm_cell`. The torch reference scan calls it
step by step; the fused kernels re-derive it by hand and are tested against it.
"""
from __future__ import annotations

import torch


def qllstm_cell(xw, h_prev, c_prev, h_skip, weight_hh, bias_u, gamma, beta, alpha, convex):
    """One QL-LSTM step.

    xw:      W_x x_t, shape (B, 2H) (the input projection, computed for all t at once)
    h_prev:  h_{t-1}, (B, H);  c_prev: c_{t-1}, (B, H);  h_skip: h_{t-K}, (B, H)
    weight_hh: W_h, (2H, H);  bias_u: b_u, (H,);  gamma, beta: (3, H) rows (i, f, o)
    alpha:   a scalar tensor or float in [0, 1);  convex: kappa = 1 - alpha, else kappa = 1
    Returns (h_t, c_t).
    """
    hidden = h_prev.shape[-1]
    z = xw + h_prev @ weight_hh.t()
    a = z[..., :hidden]
    u = z[..., hidden:] + bias_u
    gates = torch.sigmoid(gamma * a.unsqueeze(-2) + beta)
    i, f, o = gates.unbind(-2)
    g = torch.tanh(u)
    c = f * c_prev + i * g
    h_tilde = o * torch.tanh(c)
    kappa = 1 - alpha if convex else 1
    h = kappa * (f * h_prev + (1 - f) * h_tilde) + alpha * h_skip
    return h, c

"""The reference scan: plain torch ops, one step at a time, autograd for the backward.

This is the oracle every fused backend is tested against. It runs on any device and dtype.

The scan contract shared by every backend (``scan(...)`` in each backend module):

    scan(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths,
         *, skip, convex) -> (out, h_n, c_n)

    x:        (T, B, d) time-major input, one direction, forward in time
    h0, c0:   (B, H)
    weight_ih (2H, d), weight_hh (2H, H), bias_u (H,), gamma (3, H), beta (3, H)
    alpha:    0-d tensor (requires_grad when learned)
    lengths:  None (every sequence has length T) or an int64 CPU tensor (B,), 1 <= len <= T
    out:      (T, B, H); zeros at t >= lengths[b]
    h_n, c_n: (B, H), the state after step lengths[b] - 1

The skip state is h_{t-K} with h_s = h_0 for s <= 0. The layer handles the reverse
direction by reversing each sequence within its own length before and after the scan.
"""
from __future__ import annotations

import torch

from ..nn.functional import qllstm_cell


def scan(x, h0, c0, weight_ih, weight_hh, bias_u, gamma, beta, alpha, lengths=None, *, skip=1, convex=True):
    xw = x @ weight_ih.t()
    h, c = h0, c0
    outputs = []
    # unbind, not xw[t]: indexing makes autograd allocate a full-size gradient per step
    for t, xw_t in enumerate(xw.unbind(0)):
        h_skip = outputs[t - skip] if t >= skip else h0
        h_new, c_new = qllstm_cell(xw_t, h, c, h_skip, weight_hh, bias_u, gamma, beta, alpha, convex)
        if lengths is None:
            h, c = h_new, c_new
            outputs.append(h)
        else:
            valid = (t < lengths).to(x.device).unsqueeze(-1)
            h = torch.where(valid, h_new, h)
            c = torch.where(valid, c_new, c)
            outputs.append(torch.where(valid, h_new, torch.zeros_like(h_new)))
    return torch.stack(outputs), h, c

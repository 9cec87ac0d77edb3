"""The forecasting network: SegRNN (Lin et al. 2023) with a pluggable recurrent cell.

Pieces (DESIGN §3):

- reversible instance normalisation: ``norm="last"`` subtracts each window's last value,
  ``"revin"`` its mean and standard deviation (optionally with a learned per-channel affine),
  and the forecast gets the statistics back;
- channel independence: every target channel runs through the same weights as one batch row
  (past covariates, when there are any, ride along with each target channel);
- segment embedding: the lookback is cut into segments of length w, each mapped to d_model;
- the recurrent cell (``make_rnn(cell, ...)``) runs over the segments;
- parallel multi-step decoding: the final state plus learned position and channel embeddings
  produce every horizon segment in one recurrent step.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_choice, check_float, check_int
from .encoder import make_rnn

NORMS = ("last", "revin", None)
FORECAST_CELLS = ("qllstm", "lstm", "gru")
_EPS = 1e-5


class SegRNN(nn.Module):
    """``forward(x) -> forecast``.

    ``x`` is (B, lookback, n_targets + n_covariates) with the target channels first. The output
    is (B, horizon, n_targets), or (B, horizon, n_targets, n_quantiles) when ``n_quantiles`` is
    set; quantile outputs are sorted along the last axis, so they never cross.

    With ``channel_independent=False`` all channels are embedded jointly (one row per window) and
    the decoder emits every target channel at once. ``zero_head=True`` starts the output layer at
    zero, so training starts from the naive forecast and moves away only as far as the data pays.
    """

    def __init__(self, n_targets, lookback, horizon, *, n_covariates=0, segment_length=24, d_model=256,
                 cell="qllstm", dropout=0.5, norm="last", affine=False, channel_independent=True,
                 n_quantiles=None, zero_head=False, alpha=0.1, skip=1, skip_mode="convex", learn_alpha=False,
                 backend="auto"):
        super().__init__()
        self.n_targets = check_int("n_targets", n_targets, min_value=1)
        self.n_covariates = check_int("n_covariates", n_covariates, min_value=0)
        self.lookback = check_int("lookback", lookback, min_value=1)
        self.horizon = check_int("horizon", horizon, min_value=1)
        self.segment_length = w = check_int("segment_length", segment_length, min_value=1)
        self.d_model = check_int("d_model", d_model, min_value=2)
        check_choice("cell", cell, FORECAST_CELLS)
        check_choice("norm", norm, NORMS)
        check_float("dropout", dropout, low=0.0, high=1.0, high_open=True)
        if n_quantiles is not None:
            check_int("n_quantiles", n_quantiles, min_value=1)
        self.cell, self.norm, self.affine = cell, norm, bool(affine) and norm == "revin"
        self.channel_independent = bool(channel_independent)
        self.n_quantiles = n_quantiles
        self.n_in_segments = math.ceil(lookback / w)
        self.n_out_segments = math.ceil(horizon / w)
        n_channels = self.n_targets + self.n_covariates
        # a "series" is one row of the recurrent batch: one target channel (+ covariates) or all channels
        self.n_series = self.n_targets if self.channel_independent else 1
        per_row_in = (1 + self.n_covariates) if self.channel_independent else n_channels
        per_row_out = 1 if self.channel_independent else self.n_targets
        self.embed = nn.Sequential(nn.Linear(w * per_row_in, d_model), nn.ReLU())
        self.rnn = make_rnn(cell, d_model, d_model, batch_first=True, alpha=alpha, skip=skip, skip_mode=skip_mode,
                            learn_alpha=learn_alpha, backend=backend)
        half = d_model // 2
        self.position_embedding = nn.Parameter(torch.randn(self.n_out_segments, half))
        self.channel_embedding = nn.Parameter(torch.randn(self.n_series, d_model - half))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_model, w * per_row_out * (n_quantiles or 1)))
        if zero_head:  # the untrained network is then the naive forecast (norm="last") or the window mean ("revin")
            nn.init.zeros_(self.head[1].weight)
            nn.init.zeros_(self.head[1].bias)
        if self.affine:
            self.affine_weight = nn.Parameter(torch.ones(n_channels))
            self.affine_bias = nn.Parameter(torch.zeros(n_channels))

    # -- reversible instance normalisation ---------------------------------------------

    def _normalise(self, x):
        if self.norm is None:
            return x, None, None
        if self.norm == "last":
            return x - x[:, -1:, :], x[:, -1:, :], None
        mean = x.mean(1, keepdim=True)
        std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + _EPS)
        z = (x - mean) / std
        if self.affine:
            z = z * self.affine_weight + self.affine_bias
        return z, mean, std

    def _denormalise(self, y, shift, scale):
        """``y`` is (B, horizon, n_targets, Q); statistics are those of the target channels."""
        if self.norm is None:
            return y
        t = self.n_targets
        if self.norm == "last":
            return y + shift[:, :, :t].unsqueeze(-1)
        if self.affine:
            y = (y - self.affine_bias[:t].unsqueeze(-1)) / (self.affine_weight[:t].unsqueeze(-1) + _EPS * _EPS)
        return y * scale[:, :, :t].unsqueeze(-1) + shift[:, :, :t].unsqueeze(-1)

    # -- network ------------------------------------------------------------------------

    def forward(self, x):
        if x.dim() != 3 or x.shape[1] != self.lookback or x.shape[2] != self.n_targets + self.n_covariates:
            raise ValueError(f"x: expected shape (batch, {self.lookback}, {self.n_targets + self.n_covariates}), "
                             f"got {tuple(x.shape)}")
        B, w, t, Q = x.shape[0], self.segment_length, self.n_targets, self.n_quantiles or 1
        z, shift, scale = self._normalise(x)
        pad = self.n_in_segments * w - self.lookback
        if pad:  # left-pad with the first value so every segment is full
            z = torch.cat([z[:, :1].expand(B, pad, z.shape[2]), z], dim=1)
        if self.channel_independent:
            # (B, L, t + k) -> (B * t, L, 1 + k): each target channel with the covariates
            targets = z[:, :, :t].permute(0, 2, 1).reshape(B * t, -1, 1)
            cov = z[:, :, t:].unsqueeze(1).expand(B, t, z.shape[1], self.n_covariates).reshape(B * t, z.shape[1], -1)
            rows = torch.cat([targets, cov], dim=2)
        else:
            rows = z
        # segments: (R, S, w * channels), time-major inside each segment per channel
        R = rows.shape[0]
        S_in = self.n_in_segments
        seg = rows.reshape(R, S_in, w, rows.shape[2]).permute(0, 1, 3, 2).reshape(R, S_in, -1)
        _, state = self.rnn(self.embed(seg))
        # parallel decoding: one recurrent step per (row, output segment) from the final state
        S = self.n_out_segments
        pos = torch.cat([self.position_embedding.unsqueeze(0).expand(self.n_series, S, -1),
                         self.channel_embedding.unsqueeze(1).expand(self.n_series, S, -1)], dim=-1)
        dec_in = pos.unsqueeze(0).expand(B, -1, -1, -1).reshape(R * S, 1, self.d_model)
        state = tuple(s.repeat_interleave(S, dim=1) for s in state) if isinstance(state, tuple) \
            else state.repeat_interleave(S, dim=1)
        out, _ = self.rnn(dec_in, state)
        y = self.head(out[:, 0])  # (R * S, w * per_row_out * Q)
        per_row_out = 1 if self.channel_independent else t
        y = y.reshape(B, self.n_series, S, w, per_row_out, Q)
        y = y.permute(0, 2, 3, 1, 4, 5).reshape(B, S * w, t, Q)[:, : self.horizon]
        y = self._denormalise(y, shift, scale)
        if self.n_quantiles is None:
            return y[..., 0]
        return torch.sort(y, dim=-1).values

    def parameter_counts(self):
        """``{"recurrent": ..., "total": ...}`` trainable parameters."""
        count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
        return {"recurrent": count(self.rnn), "total": count(self)}

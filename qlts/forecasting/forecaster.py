"""``QLLSTMForecaster``: the SegRNN network (:mod:`qlts.nn.forecasting`) behind a series-level API.

Training runs on skorch (``NeuralNetRegressor``): Adam, shuffled mini-batches of windows, early
stopping on a time-ordered validation tail (restoring the best epoch), and an epoch progress bar.
"""
from __future__ import annotations

import json
import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.dataset import Dataset
from skorch.history import History
from skorch.helper import predefined_split
from tqdm.auto import tqdm

from .._validation import as_array, check_choice, check_float, check_int
from ..estimators import _persist
from ..estimators._callbacks import ON_NAN, GuardedNetMixin, checkpoint_path, fingerprint
from ..nn.forecasting import FORECAST_CELLS, NORMS, SegRNN
from ..parallel import limit_threads_in_worker
from ..preprocessing import make_windows
from ..preprocessing._scaler import overflowed, standard_statistics
from ..utils import check_device, int_seed, private_torch_rng, resolve_device
from ._series import align_covariates, apply_nan_policy, as_frame, check_horizon, future_index

LOSSES = ("mse", "mae")


class PinballLoss(torch.nn.Module):
    """Mean pinball loss over quantile outputs (..., Q) against targets (...)."""

    def __init__(self, quantiles):
        super().__init__()
        self.register_buffer("q", torch.as_tensor(quantiles, dtype=torch.float32))

    def forward(self, y_pred, y_true):
        diff = y_true.unsqueeze(-1) - y_pred
        return torch.maximum(self.q * diff, (self.q - 1) * diff).mean()


class _EpochBar(Callback):
    """One tqdm bar over epochs with the latest train/valid loss."""

    def __init__(self, enabled):
        self.enabled = enabled

    def on_train_begin(self, net, **kwargs):
        self.bar_ = tqdm(total=net.max_epochs, desc="training", unit="epoch", disable=not self.enabled, leave=False)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        self.bar_.set_postfix({k: f"{row[k]:.4f}" for k in ("train_loss", "valid_loss") if k in row})
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()


class _ForecastNet(GuardedNetMixin, NeuralNetRegressor):
    """skorch's regressor with the divergence guard and checkpoints (:mod:`qlts.estimators._callbacks`)."""

    def __init__(self, *args, on_nan="raise", **kwargs):
        super().__init__(*args, **kwargs)
        self.on_nan = on_nan


DEFAULT_EPOCHS = 30
DEFAULT_LR = 3e-4
MIN_TRAINING_STEPS = 1000  # short series: 1-2 batches an epoch would stop 30 epochs far from converged
FORMAT = "qlts.forecaster"
FORMAT_VERSION = 1


class QLLSTMForecaster(BaseEstimator):
    """Multi-horizon forecaster: SegRNN (Lin et al. 2023) with the QL-LSTM cell.

    The defaults (segment_length 24, hidden_size 256, MAE loss, lr 3e-4, batch 64, dropout 0.5)
    are SegRNN's ETTh1 setup; they gave the best ETTh1 score in benchmarks/results/forecasting.md.

    Parameters
    ----------
    lookback, horizon : int
        Window length the network reads, and the number of steps it forecasts in one pass.
        ``predict`` may ask for more steps; they are produced recursively (point forecasts only).
    segment_length : int
        w: the lookback and the horizon are cut into segments of w steps. The recurrence runs
        ceil(lookback / w) steps.
    hidden_size : int
        d_model: width of the segment embedding and of the recurrent state.
    cell : "qllstm", "lstm" or "gru"
        The recurrent cell; the rest of the network is identical for all three.
    alpha, skip, skip_mode, learn_alpha, backend
        QL-LSTM options (ignored by the other cells).
    norm : "last", "revin" or None
        Reversible instance normalisation of each window: subtract its last value, or its mean
        and standard deviation (with a learned affine when ``affine=True``).
    channel_independent : bool
        True: every target column runs through the same weights as its own batch row (past
        covariates are appended to each). False: all columns are embedded jointly.
    quantiles : sequence of floats in (0, 1) or None
        Train on the pinball loss and expose :meth:`predict_quantiles`; quantiles never cross.
        ``predict`` then returns the median.
    zero_head : bool
        Start the output layer at zero: the untrained model is then the naive forecast
        (``norm="last"``), and training moves away from it only as far as the data pays.
    loss : "mse" or "mae"
        Point-forecast training loss (ignored with quantiles).
    dropout, lr_decay, batch_size, weight_decay
        Training (Adam). ``lr_decay`` multiplies the learning rate after every epoch;
        ``batch_size`` counts windows.
    lr : float, default=3e-4
        Adam's learning rate, for every cell and horizon (None means the default, as saved by
        qlts before it was a number). 1e-4 gave QL-LSTM a lower MSE at horizons of 336 and more
        on ETTh1 and ETTh2 (7 of 7 paired runs) but a higher one on Exchange at 720 and on ETTm1
        (4x the rows), where it was still improving at the 30-epoch cap; early stopping undoes a
        rate that is too high, nothing undoes one too low for the budget
        (benchmarks/results/forecasting.md). The rate used is ``lr_``.
    max_epochs : int or None
        At most this many epochs. None (default): 30, or on a short series as many as make
        ``MIN_TRAINING_STEPS`` (1,000) optimizer steps, since a 100-row series gives only
        1-2 batches an epoch; early stopping usually ends the fit sooner. The number used
        is ``max_epochs_``.
    patience, validation_fraction
        Early stopping on the last ``validation_fraction`` of the series (time-ordered; its
        windows never overlap training targets); the best epoch's weights are kept.
        ``validation_fraction=0`` trains for ``max_epochs`` without it.
    nan_policy : "interpolate", "drop" or "raise"
        NaN in y or X: linear interpolation in time (default); "drop" skips every training
        window touching a NaN (the prediction context must then be complete); "raise".
    device : "auto", "cpu", "cuda", ...
    random_state : int, numpy RandomState or None
        Seeds the initialisation, shuffling and dropout on a torch RNG stream of the fit's own
        (the caller's global RNG is left as it was); a CPU run is then reproducible.
    verbose : int
        1 shows an epoch progress bar on stderr.
    on_nan : "raise", "restore" or "skip_batch"
        What a NaN or infinite training loss or gradient does: "raise" restores the weights of
        the last complete epoch and raises ``DivergenceError`` (a FloatingPointError) naming the
        epoch and batch; "restore" restores them and stops with a warning; "skip_batch" skips
        that batch's optimizer step and counts it in ``history_`` (see
        :mod:`qlts.estimators._callbacks`).
    checkpoint_dir : str, path or None
        Write a checkpoint into this directory at every epoch end (atomically). A ``fit`` with
        the same parameters, series and directory resumes from it and ends bit for bit where
        an uninterrupted CPU run ends; once finished, a rerun returns at once.

    ``save(path)`` / ``load(path)`` store a fitted forecaster without pickling (weights as
    tensors, the rest as JSON, read back with ``weights_only=True``).

    Attributes (after ``fit``): ``net_`` (the skorch net), ``module_``, ``columns_``,
    ``covariate_columns_``, ``parameter_counts_`` ({"recurrent", "total"}), ``history_``,
    ``max_epochs_`` (the epoch budget used), ``lr_`` (the learning rate used).
    """

    def __init__(self, lookback=96, horizon=24, *, segment_length=24, hidden_size=256, cell="qllstm", alpha=0.1,
                 skip=1, skip_mode="convex", learn_alpha=False, backend="auto", norm="last", affine=False,
                 channel_independent=True, quantiles=None, zero_head=False, loss="mae", dropout=0.5, lr=DEFAULT_LR,
                 lr_decay=1.0, max_epochs=None, batch_size=64, weight_decay=0.0, patience=5, validation_fraction=0.2,
                 nan_policy="interpolate", device="auto", random_state=None, verbose=1, on_nan="raise",
                 checkpoint_dir=None):
        self.lookback = lookback
        self.horizon = horizon
        self.segment_length = segment_length
        self.hidden_size = hidden_size
        self.cell = cell
        self.alpha = alpha
        self.skip = skip
        self.skip_mode = skip_mode
        self.learn_alpha = learn_alpha
        self.backend = backend
        self.norm = norm
        self.affine = affine
        self.channel_independent = channel_independent
        self.quantiles = quantiles
        self.zero_head = zero_head
        self.loss = loss
        self.dropout = dropout
        self.lr = lr
        self.lr_decay = lr_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.nan_policy = nan_policy
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.on_nan = on_nan
        self.checkpoint_dir = checkpoint_dir

    # -- validation ------------------------------------------------------------------------

    def _check_params(self):
        check_int("lookback", self.lookback, min_value=1)
        check_horizon(self.horizon)
        check_int("segment_length", self.segment_length, min_value=1)
        check_int("hidden_size", self.hidden_size, min_value=2)
        check_choice("cell", self.cell, FORECAST_CELLS)
        check_choice("norm", self.norm, NORMS)
        check_choice("loss", self.loss, LOSSES)
        check_float("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        if self.lr is not None:
            check_float("lr", self.lr, low=0.0, high=np.inf, low_open=True, high_open=True)
        check_float("lr_decay", self.lr_decay, low=0.0, high=1.0, low_open=True)
        check_float("weight_decay", self.weight_decay, low=0.0, high=np.inf, high_open=True)
        if self.max_epochs is not None:
            check_int("max_epochs", self.max_epochs, min_value=1)
        check_int("batch_size", self.batch_size, min_value=1)
        check_int("patience", self.patience, min_value=1)
        check_float("validation_fraction", self.validation_fraction, low=0.0, high=1.0, high_open=True)
        check_choice("on_nan", self.on_nan, ON_NAN)
        for name in ("affine", "channel_independent", "zero_head", "learn_alpha"):  # "no" would be truthy
            check_choice(name, getattr(self, name), (False, True))
        check_device(self.device)
        return self._quantile_levels()

    def _quantile_levels(self):
        """Sorted training quantiles (the user's plus the median), or None."""
        if self.quantiles is None:
            return None
        if isinstance(self.quantiles, (str, numbers.Number)) or len(self.quantiles) == 0:
            raise TypeError(f"quantiles: expected a non-empty sequence of floats in (0, 1), got {self.quantiles!r}")
        levels = [check_float("quantiles", q, low=0.0, high=1.0, low_open=True, high_open=True)
                  for q in self.quantiles]
        return tuple(sorted(set(levels) | {0.5}))

    # -- fit -----------------------------------------------------------------------------------

    def fit(self, y, X=None):
        """Fit on the series ``y`` (and past-observed covariates ``X`` aligned with it)."""
        levels = self._check_params()
        limit_threads_in_worker()  # in a Dask worker: one torch thread per task (qlts.parallel)
        frame = apply_nan_policy(as_frame(y, "y"), self.nan_policy, "y")
        cov = align_covariates(X, frame, "X")
        if cov is not None:
            cov = apply_nan_policy(cov, self.nan_policy, "X")
        L, H = self.lookback, self.horizon
        need = L + H
        if len(frame) < need:
            raise ValueError(f"y: expected at least lookback + horizon = {L} + {H} = {need} rows, got {len(frame)}")
        values = frame.to_numpy() if cov is None else np.hstack([frame.to_numpy(), cov.to_numpy()])
        n_val = int(round(self.validation_fraction * len(frame)))
        use_val = n_val >= H and len(frame) - n_val >= need
        train_end = len(frame) - n_val if use_val else len(frame)
        # z-scores on the training rows only, so the validation tail never leaks into the scaling
        self.mean_, self.scale_ = standard_statistics(values[:train_end])
        k = frame.shape[1]
        bad = overflowed(self.mean_, self.scale_)
        if len(bad):  # inf, or a spread beyond float64: z-scores would be NaN and the forecasts inf/NaN
            name, col = ("y", frame.columns[bad[0]]) if bad[0] < k else ("X", cov.columns[bad[0] - k])
            raise ValueError(f"{name}: expected finite values whose mean and standard deviation fit in float64, "
                             f"got inf or values too large in column {col!r}")
        z = ((values - self.mean_) / self.scale_).astype(np.float32)
        Xw, yw = make_windows(z[:train_end], L, H, target=list(range(k)))[:2]  # NaN windows dropped
        if len(Xw) == 0:
            raise ValueError(f"y: no complete training window of lookback + horizon = {need} rows without NaN "
                             f"(nan_policy={self.nan_policy!r})")
        self.max_epochs_ = self._epoch_budget(len(Xw))
        if self.validation_fraction > 0 and not use_val:
            warnings.warn(f"y: {len(frame)} rows are too few for a validation tail of validation_fraction="
                          f"{self.validation_fraction} (needs >= horizon={H} rows and leaves lookback + horizon = "
                          f"{need} for training); training {self.max_epochs_} epochs without early stopping",
                          UserWarning, stacklevel=2)
        valid = None
        if use_val:
            Xv, yv = make_windows(z[train_end - L:], L, H, target=list(range(k)))[:2]
            valid = Dataset(Xv, yv) if len(Xv) else None
        # random_state seeds a torch RNG stream of the fit's own: the caller's RNG is left as it was
        with private_torch_rng(resolve_device(self.device), int_seed(self.random_state)):
            self.net_ = self._make_net(k, values.shape[1] - k, levels, valid)
            self.net_.initialize()
            fit_params = {}
            if self.checkpoint_dir is not None:
                fp = fingerprint(self.get_params(), Xw, yw, *((valid.X, valid.y) if valid is not None else ()))
                path = checkpoint_path(self.checkpoint_dir, type(self).__name__, fp)
                fit_params["epochs"] = self.net_.training_guard_.resume(path, fp, self.max_epochs_)
            self.net_.partial_fit(Xw, yw, **fit_params)
        self._set_fitted(levels, frame, cov)
        return self

    def _learning_rate(self):
        """``lr`` as a float (None: the default)."""
        return DEFAULT_LR if self.lr is None else float(self.lr)

    def _epoch_budget(self, n_windows):
        """``max_epochs``, or for None: 30 epochs, more where that is under MIN_TRAINING_STEPS steps."""
        if self.max_epochs is not None:
            return self.max_epochs
        batches = -(-n_windows // self.batch_size)
        return max(DEFAULT_EPOCHS, -(-MIN_TRAINING_STEPS // batches))

    def _make_net(self, k, n_covariates, levels, valid):
        """The (uninitialised) skorch net for k targets and n_covariates covariates."""
        L, H = self.lookback, self.horizon
        criterion = PinballLoss if levels else (torch.nn.MSELoss if self.loss == "mse" else torch.nn.L1Loss)
        callbacks = [("progress", _EpochBar(bool(self.verbose)))]
        if self.lr_decay < 1.0:  # multiply the learning rate by lr_decay after every epoch
            callbacks.append(("lr_decay", LRScheduler(policy="ExponentialLR", gamma=self.lr_decay)))
        if valid is not None:
            callbacks.append(("early_stopping", EarlyStopping(patience=self.patience, load_best=True)))
        return _ForecastNet(
            SegRNN, module__n_targets=k, module__n_covariates=n_covariates, module__lookback=L,
            module__horizon=H, module__segment_length=self.segment_length, module__d_model=self.hidden_size,
            module__cell=self.cell, module__dropout=self.dropout, module__norm=self.norm,
            module__affine=self.affine, module__channel_independent=self.channel_independent,
            module__n_quantiles=len(levels) if levels else None, module__zero_head=bool(self.zero_head),
            module__alpha=self.alpha, module__skip=self.skip,
            module__skip_mode=self.skip_mode, module__learn_alpha=self.learn_alpha, module__backend=self.backend,
            criterion=criterion, **({"criterion__quantiles": levels} if levels else {}),
            optimizer=torch.optim.Adam, optimizer__weight_decay=self.weight_decay, lr=self._learning_rate(),
            max_epochs=self.max_epochs_, batch_size=self.batch_size, iterator_train__shuffle=True,
            train_split=predefined_split(valid) if valid is not None else None, callbacks=callbacks,
            device=resolve_device(self.device), verbose=0, on_nan=self.on_nan)

    def _set_fitted(self, levels, frame, cov):
        L = self.lookback
        self.lr_ = self._learning_rate()
        self.module_ = self.net_.module_
        self.history_ = self.net_.history
        self.parameter_counts_ = self.module_.parameter_counts()
        self.quantile_levels_ = levels
        self.columns_ = list(frame.columns)
        self.covariate_columns_ = None if cov is None else list(cov.columns)
        self.context_ = frame.iloc[-max(L, 3):]
        self.covariate_context_ = None if cov is None else cov.iloc[-max(L, 3):]
        return self

    # -- predict --------------------------------------------------------------------------------

    def _context(self, X, y):
        """(target frame, covariate frame or None) of the last ``lookback`` rows to forecast from."""
        if y is None:
            frame, cov = self.context_, self.covariate_context_
            if X is not None and cov is not None:
                cov = align_covariates(X, frame, "X")
        else:
            frame = apply_nan_policy(as_frame(y, "y"), self.nan_policy, "y")
            if list(frame.columns) != self.columns_:
                raise ValueError(f"y: expected columns {self.columns_}, got {list(frame.columns)}")
            if len(frame) < self.lookback:
                raise ValueError(f"y: expected at least lookback={self.lookback} rows of context, got {len(frame)}")
            cov = None
            if self.covariate_columns_ is not None:
                if X is None:
                    raise ValueError(f"X: expected the covariates {self.covariate_columns_} covering the context y "
                                     f"(the model was fit with them), got None")
                cov = apply_nan_policy(align_covariates(X, frame, "X"), self.nan_policy, "X")
        if self.covariate_columns_ is None and X is not None:
            raise ValueError("X: expected None (the model was fit without covariates), got covariates")
        if cov is not None and list(cov.columns) != self.covariate_columns_:
            raise ValueError(f"X: expected columns {self.covariate_columns_}, got {list(cov.columns)}")
        frame = frame.iloc[-self.lookback:] if len(frame) >= self.lookback else frame
        if cov is not None:
            cov = cov.loc[frame.index]
        for name, f in (("y", frame), ("X", cov)):
            if f is not None and f.isna().values.any():
                raise ValueError(f"{name}: expected no NaN in the last lookback={self.lookback} rows used as "
                                 f"context with nan_policy={self.nan_policy!r}, got {int(f.isna().values.sum())}")
        return frame, cov

    def _standardised(self, values, name):
        """float32 z-scores of ``values`` with the training mean and std. A context value they turn
        into inf (1e300 after fitting on small values) would make the forecast inf or NaN."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = ((values - self.mean_) / self.scale_).astype(np.float32)
        if not np.isfinite(z).all():
            col = int(np.flatnonzero(~np.isfinite(z).reshape(-1, z.shape[-1]).all(axis=0))[0])
            if name is None:
                name = "y" if col < len(self.columns_) else "X"
            raise ValueError(f"{name}: expected finite values whose z-scores (with the mean and std of the training "
                             f"series) fit in float32, got inf/NaN or a value too large in column {col}")
        return z

    def _forward(self, frame, cov):
        values = frame.to_numpy() if cov is None else np.hstack([frame.to_numpy(), cov.to_numpy()])
        z = self._standardised(values[-self.lookback:], None)[None]
        self.module_.eval()
        with torch.no_grad():
            out = self.module_(torch.from_numpy(z).to(self.net_.device)).cpu().numpy()[0]
        k = len(self.columns_)
        scale, mean = self.scale_[:k], self.mean_[:k]
        if out.ndim == 3:  # (H, k, Q)
            return out * scale[None, :, None] + mean[None, :, None]
        return out * scale + mean

    def predict(self, horizon=None, X=None, y=None):
        """Point forecast of the ``horizon`` steps after the training series, or after the context ``y``
        (with its covariates ``X``). Returns a DataFrame indexed by the future timestamps, one column per
        target (the median when ``quantiles`` is set)."""
        check_is_fitted(self, "net_")
        h = check_horizon(self.horizon if horizon is None else horizon)
        frame, cov = self._context(X, y)
        index = future_index(frame.index if len(frame) >= 2 else self.context_.index, h)
        steps = []
        while sum(len(s) for s in steps) < h:
            if steps and cov is not None:
                raise ValueError(f"horizon: expected <= {self.horizon} (the trained horizon) with covariates, "
                                 f"whose future values are unknown, got {h}")
            out = self._forward(frame, cov)
            if out.ndim == 3:
                out = out[:, :, self.quantile_levels_.index(0.5)]
            steps.append(out)
            # recursion: the forecast becomes context for the next pass
            frame = pd.DataFrame(np.vstack([frame.to_numpy(), out])[-self.lookback:], columns=frame.columns)
        return pd.DataFrame(np.vstack(steps)[:h], index=index, columns=self.columns_)

    def predict_windows(self, windows, quantiles=False):
        """Forecasts for many contexts at once: ``windows`` (n, lookback, targets + covariates) on the
        scale of the training series -> (n, horizon, targets) point forecasts (the median with
        quantiles). For evaluating on a whole test split without a predict call per cutoff.
        ``quantiles=True`` gives the quantile forecasts instead, (n, horizon, targets, Q) for the
        quantiles given at construction, in increasing order."""
        check_is_fitted(self, "net_")
        if quantiles:
            wanted = self._wanted_quantiles("predict_windows(quantiles=True)")[1]
        w = as_array("windows", windows, "a numeric array (n, lookback, columns)", dtype=np.float64)
        width = len(self.columns_) + len(self.covariate_columns_ or [])
        if w.ndim != 3 or w.shape[1:] != (self.lookback, width):
            raise ValueError(f"windows: expected shape (n, {self.lookback}, {width}), got {w.shape}")
        out = self.net_.predict(self._standardised(w, "windows"))
        k = len(self.columns_)
        if quantiles:
            return out[..., wanted] * self.scale_[:k, None] + self.mean_[:k, None]
        if out.ndim == 4:
            out = out[..., self.quantile_levels_.index(0.5)]
        return out * self.scale_[:k] + self.mean_[:k]

    def _wanted_quantiles(self, caller):
        """(levels, their indices among the trained outputs) of the quantiles given at construction."""
        if not self.quantile_levels_:
            raise ValueError(f"quantiles: expected a sequence of quantile levels at construction for {caller}, "
                             "got None")
        wanted = sorted(set(float(q) for q in self.quantiles))
        return wanted, [self.quantile_levels_.index(q) for q in wanted]

    def predict_quantiles(self, horizon=None, X=None, y=None):
        """Quantile forecasts: a DataFrame with a (column, quantile) MultiIndex on the columns, for the
        quantiles given at construction. Sorted per step, so they never cross."""
        check_is_fitted(self, "net_")
        wanted, cols = self._wanted_quantiles("predict_quantiles")
        h = check_horizon(self.horizon if horizon is None else horizon)
        if h > self.horizon:
            raise ValueError(f"horizon: expected <= {self.horizon} (the trained horizon) with quantiles, got {h}")
        frame, cov = self._context(X, y)
        out = self._forward(frame, cov)[:h]
        data = out[:, :, cols].reshape(h, -1)
        columns = pd.MultiIndex.from_product([self.columns_, wanted], names=["column", "quantile"])
        return pd.DataFrame(data, index=future_index(frame.index, h), columns=columns)

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path):
        """Write the fitted forecaster to ``path`` without pickling: the weights, ``mean_``, ``scale_``
        and the context rows (with their index, so ``predict``'s future timestamps survive) as
        tensors; parameters, columns and history as JSON. Same file family as the estimators'
        ``save`` (:mod:`qlts.estimators._persist`): checksummed, written atomically."""
        check_is_fitted(self, "net_")
        given = self.get_params()
        params = {name: _persist.jsonable(name, value) for name, value in given.items()}
        fitted = {"columns": self.columns_, "covariate_columns": self.covariate_columns_,
                  "quantile_levels": self.quantile_levels_, "history": self.history_.to_list(),
                  "max_epochs": self.max_epochs_}
        for name in ("columns", "covariate_columns"):
            if fitted[name] is not None and json.loads(json.dumps(fitted[name])) != fitted[name]:
                raise ValueError(f"save: expected column labels that are str or int, got {fitted[name]!r}")
        frames = {"context": self.context_, "covariate_context": self.covariate_context_}
        _persist.write_payload(path, FORMAT, FORMAT_VERSION, {
            "estimator": type(self).__name__,
            "config": json.dumps({"params": params, "fitted": fitted}, default=_persist.json_default),
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
            "mean": torch.from_numpy(np.asarray(self.mean_, dtype=np.float64)),
            "scale": torch.from_numpy(np.asarray(self.scale_, dtype=np.float64)),
            "frames": {name: _frame_payload(f) for name, f in frames.items() if f is not None},
        })

    @classmethod
    def load(cls, path):
        """A fitted forecaster read from a file written by :meth:`save` (``weights_only=True``: nothing
        is unpickled). Any other, truncated or corrupted file is a ValueError naming ``path``."""
        payload, config = _persist.read_saved(path, cls, FORMAT, FORMAT_VERSION, "forecaster")
        est = cls(**config["params"])
        fitted = config["fitted"]
        levels = None if fitted["quantile_levels"] is None else tuple(fitted["quantile_levels"])
        frames = {name: _frame_from_payload(f, fitted["columns" if name == "context" else "covariate_columns"])
                  for name, f in payload["frames"].items()}
        est.mean_, est.scale_ = payload["mean"].numpy(), payload["scale"].numpy()
        n_covariates = len(fitted["covariate_columns"] or [])
        # files saved before max_epochs_ existed lack it
        est.max_epochs_ = fitted.get("max_epochs", max(1, len(fitted["history"])))
        est.net_ = est._make_net(len(fitted["columns"]), n_covariates, levels, valid=None)
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten: keep the caller's RNG
            est.net_.initialize()
        est.net_.module_.load_state_dict(payload["state_dict"])
        est.net_.history_ = History(fitted["history"])
        est._set_fitted(levels, frames["context"], frames.get("covariate_context"))
        return est


def _frame_payload(frame):
    """A float frame and its index (datetime or integer) as tensors and plain values."""
    index = frame.index
    if isinstance(index, pd.DatetimeIndex):
        kind = {"kind": "datetime", "unit": index.unit, "tz": None if index.tz is None else str(index.tz),
                "freq": index.freqstr}
        ticks = index.asi8
    else:
        kind, ticks = {"kind": "integer"}, index.to_numpy(dtype=np.int64)
    return {"values": torch.from_numpy(np.array(frame.to_numpy(dtype=np.float64))),  # np.array: a writable copy
            "index": torch.from_numpy(np.array(ticks, dtype=np.int64)), **kind}


def _frame_from_payload(payload, columns):
    ticks = payload["index"].numpy()
    if payload["kind"] == "datetime":
        index = pd.DatetimeIndex(ticks.astype(f"datetime64[{payload['unit']}]"))
        if payload["tz"] is not None:
            index = index.tz_localize("UTC").tz_convert(payload["tz"])
        if payload["freq"] is not None:
            index = pd.DatetimeIndex(index, freq=payload["freq"])
    else:
        index = pd.Index(ticks)
    return pd.DataFrame(payload["values"].numpy(), index=index, columns=columns)

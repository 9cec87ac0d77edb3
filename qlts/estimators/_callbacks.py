"""Training safety shared by the estimators and the forecaster: checkpoint/resume and the divergence guard.

Both train a skorch net that mixes in :class:`GuardedNetMixin`. The mixin appends one
:class:`TrainingGuard` callback *after* every other callback, so that at an epoch end the guard
sees the state every other callback (early stopping, the learning-rate schedule) has just updated.

**Checkpoints** (``checkpoint_dir``). At every epoch end, and once more when training ends, the
guard writes ``<checkpoint_dir>/<EstimatorClass>-<fingerprint[:16]>.ckpt`` atomically (temp file,
then rename: a kill never leaves a half-written checkpoint). It holds the weights, the optimizer
state, the torch/numpy/python RNG states, the history, the state of the other callbacks (early
stopping's best weights and patience count, the learning-rate scheduler) and whether training
finished. The fingerprint is a SHA-256 of every hyper-parameter (except ``verbose`` and
``checkpoint_dir``) and of the training data (dtype, shape and bytes).

A ``fit`` with the same hyper-parameters, data and ``checkpoint_dir`` resumes from that file: it
restores everything above and trains only the remaining epochs, so on a CPU the result is bit for
bit the uninterrupted run's. A finished fit's checkpoint makes a rerun return at once with the
final state. Checkpoints are taken at epoch ends only, so a fit killed mid-epoch redoes that
epoch from its start (the batch position of every checkpoint is 0).

A fit with *other* hyper-parameters or data gets another file name, so it never resumes from, or
overwrites, someone else's checkpoint; it starts fresh, with a ``UserWarning`` when the directory
holds *unfinished* checkpoints of other fits of the same class (so a changed hyper-parameter does
not silently restart an interrupted long run; finished ones are normal when one directory serves a
``GridSearchCV`` or a backtest, and stay silent). Only
``fit`` from scratch reads and writes checkpoints; ``partial_fit`` and warm-start fits do not.
Checkpoints are read with ``torch.load(weights_only=True)`` and checksummed (see ``_persist``).
Under Accelerate/DDP only the main process writes them.

**Divergence guard** (``on_nan``). After every backward pass (and gradient clipping), before the
optimizer step, the loss and every gradient are checked (only the loss under an fp16 GradScaler,
which skips inf-gradient steps itself). If one is NaN or infinite:

- ``"raise"`` (default): the weights and optimizer state go back to the last finite state (the
  end of the last complete epoch, or the start of training) and :class:`DivergenceError` is
  raised, naming the epoch and the batch;
- ``"restore"``: the same restore, then training stops with a ``UserWarning``; the estimator is
  fitted and usable (with early stopping, its end-of-training rule still applies: the best
  epoch's weights are loaded);
- ``"skip_batch"``: that batch's optimizer step is skipped (no parameter or optimizer state
  changes) and training goes on; each epoch's history row has ``skipped_batches``. The epoch's
  ``train_loss`` is then non-finite too: it averages the losses of every batch, skipped or not.

With "raise" and "restore" the unfinished epoch's history row stays (as skorch keeps it when
training is interrupted), with ``non_finite_batch`` set to the batch number.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import re
import warnings

import numpy as np
import torch
from skorch.callbacks import Callback

from . import _persist

ON_NAN = ("raise", "restore", "skip_batch")
CHECKPOINT_FORMAT = "qlts.checkpoint"
CHECKPOINT_VERSION = 1
# Hyper-parameters that do not change what a fit computes.
NOT_FINGERPRINTED = ("verbose", "checkpoint_dir")


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or gradient (``on_nan="raise"``).

    ``epoch`` and ``batch`` (both 1-based) locate it. When it is raised, the weights and the
    optimizer state are already back at the last finite state.
    """

    def __init__(self, message, *, epoch, batch):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


# --- fingerprint ------------------------------------------------------------------------------

def _canonical(value):
    """A JSON-able stand-in for a hyper-parameter value, stable across processes."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (np.ndarray, torch.Tensor)):  # e.g. class weights: their repr elides the middle
        return {"array": _array_digest(value)}
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))  # object reprs carry addresses that change per run


def _data_leaves(data):
    if isinstance(data, dict):
        for key in sorted(data):
            yield from _data_leaves(data[key])
    elif isinstance(data, (list, tuple)):
        for item in data:
            yield from _data_leaves(item)
    elif data is not None:
        yield data


def _array_digest(leaf, digest=None):
    """SHA-256 of an array's dtype, shape and values."""
    digest = hashlib.sha256() if digest is None else digest
    arr = leaf.detach().cpu().numpy() if isinstance(leaf, torch.Tensor) else np.asarray(leaf)
    digest.update(f"|{arr.dtype.str}{arr.shape}|".encode())
    if arr.dtype.kind == "O":
        digest.update(repr(arr.tolist()).encode())
    else:
        digest.update(np.ascontiguousarray(arr).view(np.uint8).tobytes())
    return digest.hexdigest()


def fingerprint(params, *data):
    """SHA-256 hex digest of the hyper-parameters (minus :data:`NOT_FINGERPRINTED`) and the data arrays."""
    digest = hashlib.sha256()
    kept = {k: _canonical(v) for k, v in params.items() if k not in NOT_FINGERPRINTED}
    digest.update(json.dumps(kept, sort_keys=True).encode())
    for leaf in _data_leaves(data):
        _array_digest(leaf, digest)
    return digest.hexdigest()


def checkpoint_path(checkpoint_dir, owner, fp):
    """Where a fit of ``owner`` (an estimator class name) with fingerprint ``fp`` keeps its checkpoint."""
    if not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"checkpoint_dir: expected a folder path (str or os.PathLike) or None, got "
                        f"{type(checkpoint_dir).__name__} {checkpoint_dir!r}")
    return os.path.join(os.fspath(checkpoint_dir), f"{owner}-{fp[:16]}.ckpt")


# --- RNG and callback state as plain values (weights_only loads nothing else) ---------------

def _rng_state():
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state["numpy"] = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


_SKIP = object()


def _plain(value):
    """``value`` as types ``torch.load(weights_only=True)`` accepts, or ``_SKIP``."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _SKIP if any(v is _SKIP for v in items) else items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        items = {k: _plain(v) for k, v in value.items()}
        return _SKIP if any(v is _SKIP or not isinstance(k, (str, int)) for k, v in items.items()) else items
    if not isinstance(value, type) and hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
        state = _plain(value.state_dict())  # e.g. an LR scheduler
        return _SKIP if state is _SKIP else {"__state_dict__": state}
    return _SKIP


def _callback_state(net, skip):
    """The fitted attributes (``name_``) of every callback that can be stored as plain values."""
    states = {}
    for name, cb in net.callbacks_:
        if cb is skip:
            continue
        attrs = {}
        for attr, value in vars(cb).items():
            if attr.endswith("_") and not attr.startswith("_"):
                plain = _plain(value)
                if plain is not _SKIP:
                    attrs[attr] = plain
        states[name] = attrs
    return states


def _set_callback_state(net, states):
    callbacks = dict(net.callbacks_)
    for name, attrs in states.items():
        cb = callbacks.get(name)
        for attr, value in attrs.items() if cb is not None else ():
            if isinstance(value, dict) and "__state_dict__" in value:
                getattr(cb, attr).load_state_dict(value["__state_dict__"])
            else:
                setattr(cb, attr, value)


def _unfinished_checkpoints(directory, owner):
    """Names of the interrupted fits' checkpoints of class ``owner`` in ``directory``."""
    names = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(owner + "-") and name.endswith(".ckpt"):
            try:
                payload = _persist.read_payload(os.path.join(directory, name), CHECKPOINT_FORMAT,
                                                CHECKPOINT_VERSION, "checkpoint")
            except (OSError, ValueError):
                continue  # not ours to judge; it is never read as this fit's checkpoint anyway
            if not payload["finished"]:
                names.append(name)
    return names


# --- the callback -----------------------------------------------------------------------------

class TrainingGuard(Callback):
    """Checkpoints and the divergence guard for a skorch net (see the module docstring)."""

    def __init__(self, on_nan="raise"):
        self.on_nan = on_nan

    def initialize(self):
        self.path_ = None
        self.armed_ = False  # resume() arms the next training run only: later partial_fits never write
        self.fingerprint_ = None
        self.pending_ = None
        self.last_finite_ = None
        self.skipped_ = 0
        self.batch_ = 0
        self.resumed_finished_ = False
        self.loss_ = None
        return self

    # checkpoint set-up, called by fit before training
    def resume(self, path, fp, max_epochs):
        """Use ``path`` for checkpoints; returns how many of ``max_epochs`` epochs are left to train
        (all without a checkpoint, none after a finished fit, early-stopped ones included)."""
        self.path_, self.fingerprint_, self.pending_, self.armed_ = path, fp, None, True
        if not os.path.exists(path):
            directory, name = os.path.split(path)
            os.makedirs(directory, exist_ok=True)
            others = _unfinished_checkpoints(directory, owner=name.split("-")[0])
            if others:
                warnings.warn(f"checkpoint_dir {directory!r} holds unfinished checkpoints of other fits "
                              f"({', '.join(others)}), with other hyper-parameters or data than this fit; "
                              f"starting fresh in {name}", UserWarning, stacklevel=4)
            return max_epochs
        payload = _persist.read_payload(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "checkpoint")
        if payload["fingerprint"] != fp:
            raise ValueError(f"{path}: expected a checkpoint of this fit (fingerprint {fp[:16]}...), got one of "
                             f"another fit (fingerprint {payload['fingerprint'][:16]}...); remove the file")
        self.pending_ = payload
        return 0 if payload["finished"] else max(max_epochs - int(payload["epoch"]), 0)

    def _write(self, net, *, finished):
        accelerator = getattr(net, "accelerator", None)
        if accelerator is not None and not accelerator.is_main_process:
            return  # under DDP every process holds the same state; one writes it
        payload = {
            "fingerprint": self.fingerprint_,
            "epoch": len(net.history),
            "finished": finished,
            "module": {k: v.detach().cpu() for k, v in net.module_.state_dict().items()},
            "optimizer": net.optimizer_.state_dict(),  # torch's optimizers keep tensors and plain values
            "history": json.dumps(net.history.to_list(), default=_persist.json_default),
            "callbacks": _callback_state(net, skip=self),
            "rng": _rng_state(),
        }
        _persist.write_payload(self.path_, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, payload)

    def _snapshot(self, net):
        """Keep the current (finite) weights and optimizer state to restore on divergence."""
        if self.on_nan != "skip_batch":
            self.last_finite_ = (copy.deepcopy(net.module_.state_dict()), copy.deepcopy(net.optimizer_.state_dict()))

    def on_train_begin(self, net, **kwargs):
        # Runs after every other callback's on_train_begin, which reset their state.
        if not self.armed_:  # a partial_fit or warm start after a checkpointed fit
            self.path_ = None
        self.armed_ = False
        pending, self.pending_ = self.pending_, None
        if pending is not None:
            net.module_.load_state_dict(pending["module"])
            net.optimizer_.load_state_dict(pending["optimizer"])
            net.history.clear()
            net.history.extend(json.loads(pending["history"]))
            _set_callback_state(net, pending["callbacks"])
            _set_rng_state(pending["rng"])
        self.resumed_finished_ = pending is not None and pending["finished"]
        self._snapshot(net)

    def on_epoch_begin(self, net, **kwargs):
        self.skipped_ = 0
        self.batch_ = 0
        if self.on_nan == "skip_batch":  # recorded now: early stopping may end the epoch before our on_epoch_end
            net.history.record("skipped_batches", 0)

    def on_grad_computed(self, net, named_parameters, **kwargs):
        # skorch calls this after the backward pass and before the optimizer step, in plain and
        # Accelerate nets alike; the loss comes from GuardedNetMixin.get_loss.
        self.check_step(net, self.loss_)

    def check_step(self, net, loss):
        """Handle a non-finite ``loss`` or gradient per ``on_nan``, before the optimizer step."""
        self.batch_ += 1
        # An fp16 GradScaler (Accelerate mixed precision) expects inf gradients and skips those steps itself.
        scaled = getattr(getattr(net, "accelerator", None), "scaler", None) is not None
        grads = [] if scaled else [p.grad for p in net.module_.parameters() if p.grad is not None]
        finite = torch.isfinite(loss.detach()).all()
        if grads:
            finite = finite & torch.stack([torch.isfinite(g).all() for g in grads]).all()
        if finite:
            return
        epoch = len(net.history)
        where = f"epoch {epoch}, batch {self.batch_}"
        if self.on_nan == "skip_batch":
            for p in net.module_.parameters():
                p.grad = None  # the optimizer leaves parameters without a gradient (and their state) alone
            self.skipped_ += 1
            net.history.record("skipped_batches", self.skipped_)
            return
        module_state, optimizer_state = self.last_finite_
        net.module_.load_state_dict(module_state)
        net.optimizer_.load_state_dict(optimizer_state)
        net.history.record("non_finite_batch", self.batch_)  # the row of the unfinished epoch (as skorch keeps it)
        what = f"epoch {epoch - 1}" if epoch > 1 else "the start of training"
        if self.on_nan == "raise":
            raise DivergenceError(f"non-finite loss or gradient at {where} (loss {loss.item()!r}); the weights "
                                  f"are restored to {what}. Lower lr, check the data for inf/NaN, or use "
                                  "on_nan='skip_batch'", epoch=epoch, batch=self.batch_)
        warnings.warn(f"non-finite loss or gradient at {where} (loss {loss.item()!r}); stopped training with "
                      f"the weights of {what} (on_nan='restore')", UserWarning, stacklevel=2)
        raise KeyboardInterrupt  # skorch's way to end training early (on_train_end still runs)

    def on_epoch_end(self, net, **kwargs):
        self._snapshot(net)
        if self.path_ is not None:
            self._write(net, finished=False)

    def on_train_end(self, net, **kwargs):
        if self.path_ is not None and not self.resumed_finished_:
            self._write(net, finished=True)


class GuardedNetMixin:
    """Mixin for a skorch net with an ``on_nan`` attribute: adds :class:`TrainingGuard` as the last
    callback and hands it every training loss (the guard checks it, and the gradients, in
    ``on_grad_computed``, before the optimizer step)."""

    def initialize_callbacks(self):
        super().initialize_callbacks()
        self.callbacks_.append(("training_guard", TrainingGuard(self.on_nan).initialize()))
        return self

    @property
    def training_guard_(self):
        return dict(self.callbacks_)["training_guard"]

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if training:
            self.training_guard_.loss_ = loss.detach()
        return loss

"""``save`` / ``load`` for the estimators, in a format that never unpickles code.

A file is one ``torch.save`` archive holding only strings and tensors:

- ``format`` ("qlts.estimator") and ``format_version`` (:data:`FORMAT_VERSION`);
- ``estimator``: the class name;
- ``config``: JSON text with the hyper-parameters (top-level and ``module__*``) and the
  fitted metadata (feature count, outputs, classes);
- ``state_dict``: the network's weights, on the CPU.

It is read back with ``torch.load(weights_only=True)``, which refuses anything but those
types. Only what predictions need is stored: skorch-level arguments other than ``module__*``
(callbacks, ``optimizer__*``, ``iterator_*``, a custom criterion) and the optimizer state are
not, so a loaded estimator predicts exactly as the saved one and refits from its
hyper-parameters, but does not resume training where it stopped. Pickling the estimator also works, but a pickle can run code when loaded: only
unpickle files you trust.
"""
from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import torch

from .. import __version__
from ..nn.encoder import SequenceModel
from ..utils import atomic_write

FORMAT = "qlts.estimator"
FORMAT_VERSION = 1


def _jsonable(name, value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        if getattr(torch.optim, value.__name__, None) is value:
            return value.__name__
    if name == "random_state" and isinstance(value, np.random.RandomState):
        return None  # consumed by fit; it cannot be restored to its state before fit anyway
    try:
        json.dumps(value)
    except TypeError:
        raise ValueError(f"save: parameter {name}={value!r} cannot be stored as JSON; use an int, float, str, "
                         "bool or None (or pickle the estimator instead)") from None
    return value


def save(est, path):
    if est.module is not SequenceModel:
        raise ValueError(f"save: expected module=qlts.nn.SequenceModel, got {est.module!r}; "
                         "pickle an estimator with a custom module instead")
    given = est.get_params(deep=False)
    params = {name: _jsonable(name, given[name]) for name in est._top_level_params()}
    params.update({name: _jsonable(name, value) for name, value in given.items() if name.startswith("module__")})
    config = {"params": params, "fitted": est._fitted_state()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "qlts_version": __version__,
        "estimator": type(est).__name__,
        "config": json.dumps(config),
        "state_dict": {k: v.detach().cpu() for k, v in est.module_.state_dict().items()},
    }
    with atomic_write(path) as fh:
        torch.save(payload, fh)


def _read(path):
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise ValueError(f"{path}: expected a qlts estimator file written by save(), got a file that "
                         f"weights-only loading cannot read ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: expected a qlts estimator file (format {FORMAT!r}), got something else")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: expected estimator file format version {FORMAT_VERSION}, got version "
                         f"{version!r} (written by qlts {payload.get('qlts_version')}); this qlts "
                         f"({__version__}) cannot read it: load it with that version and refit, or re-save")
    return payload


def load(cls, path):
    payload = _read(path)
    if payload["estimator"] != cls.__name__:
        raise ValueError(f"{path}: expected a saved {cls.__name__}, got a {payload['estimator']}; "
                         f"use {payload['estimator']}.load")
    config = json.loads(payload["config"])
    params = config["params"]
    device = params.get("device")
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"{path} was saved with device={device!r}, which is not available here; loading on the CPU",
                      UserWarning, stacklevel=3)
        params["device"] = "cpu"
    est = cls(**params)
    est._restore_fitted_state(config["fitted"])
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: keep the caller's RNG as it was
        est.initialize()
    est.module_.load_state_dict(payload["state_dict"])
    return est

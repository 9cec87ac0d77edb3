"""``save`` / ``load`` for the estimators, in a format that never unpickles code; the same file
family serves :class:`qlts.QLLSTMForecaster` (format "qlts.forecaster") and training checkpoints
("qlts.checkpoint", :mod:`._callbacks`) through :func:`write_payload` / :func:`read_payload`.

A file is one ``torch.save`` archive holding only strings, numbers and tensors:

- ``format`` ("qlts.estimator") and ``format_version`` (:data:`FORMAT_VERSION`);
- ``estimator``: the class name;
- ``config``: JSON text with the hyper-parameters (top-level and ``module__*``) and the
  fitted metadata (feature count, outputs, classes);
- ``state_dict``: the network's weights, on the CPU;
- ``checksum``: SHA-256 over everything else (tensor bytes included). ``torch.load`` does not
  notice a damaged tensor byte; the checksum does. Estimator files written before it was added
  have exactly the keys above and no checksum, and still load.

It is read back with ``torch.load(weights_only=True)``, which refuses anything but those
types, so a pickle crafted to run code is refused without running it. Every failure to read a
file that exists (a pickle of other objects, a truncated or corrupted file, another format or
class, a newer ``format_version``, a checksum mismatch) is a ValueError naming the path and the
problem; a missing or unreadable file stays an OSError (FileNotFoundError...).

Only what predictions need is stored: skorch-level arguments other than ``module__*``
(callbacks, ``optimizer__*``, ``iterator_*``, a custom criterion) and the optimizer state are
not, so a loaded estimator predicts exactly as the saved one and refits from its
hyper-parameters, but does not resume training where it stopped (``checkpoint_dir`` does that).
Pickling the estimator also works, but a pickle can run code when loaded: only unpickle files
you trust.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings

import numpy as np
import torch

from .. import __version__
from ..nn.encoder import SequenceModel
from ..utils import atomic_write

FORMAT = "qlts.estimator"
FORMAT_VERSION = 1
# Estimator files written before checksums were added have exactly these keys and no checksum.
_UNCHECKSUMMED_KEYS = {"format", "format_version", "qlts_version", "estimator", "config", "state_dict"}


_ITEMS = "__qlts_dict_items__"


def from_jsonable(value):
    """The value :func:`jsonable` encoded (dicts with non-string keys come back as such)."""
    if isinstance(value, dict) and set(value) == {_ITEMS}:
        return {key: item for key, item in value[_ITEMS]}
    return value


def jsonable(name, value):
    """``value`` of hyper-parameter ``name`` as a JSON value, or a ValueError saying why it cannot be one."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        if getattr(torch.optim, value.__name__, None) is value:
            return value.__name__
    if name == "random_state" and isinstance(value, np.random.RandomState):
        return None  # consumed by fit; it cannot be restored to its state before fit anyway
    if isinstance(value, dict) and not all(isinstance(key, str) for key in value):
        # JSON keys are strings: class_weight={0: 5.0} would load as {"0": 5.0}
        return {_ITEMS: [[jsonable(name, key), jsonable(name, item)] for key, item in value.items()]}
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
    params = {name: jsonable(name, given[name]) for name in est._top_level_params()}
    params.update({name: jsonable(name, value) for name, value in given.items() if name.startswith("module__")})
    config = {"params": params, "fitted": est._fitted_state()}
    write_payload(path, FORMAT, FORMAT_VERSION, {
        "estimator": type(est).__name__,
        "config": json.dumps(config),
        "state_dict": {k: v.detach().cpu() for k, v in est.module_.state_dict().items()},
    })


# --- the file format shared by estimators, the forecaster and training checkpoints ---------------

def _digest(obj, digest=None):
    """SHA-256 over a payload of dicts, lists, tensors and scalars, independent of pickling details."""
    digest = hashlib.sha256() if digest is None else digest
    if isinstance(obj, dict):
        digest.update(b"{")
        for key in sorted(obj, key=str):
            digest.update(repr(key).encode())
            _digest(obj[key], digest)
        digest.update(b"}")
    elif isinstance(obj, (list, tuple)):
        digest.update(b"[")
        for item in obj:
            _digest(item, digest)
        digest.update(b"]")
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    else:
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())
    return digest.hexdigest()


def write_payload(path, fmt, version, payload):
    """``payload`` (str/number/tensor containers only) with its format header and a checksum,
    written atomically with ``torch.save``."""
    full = {"format": fmt, "format_version": version, "qlts_version": __version__, **payload}
    full["checksum"] = _digest(full)
    with atomic_write(path) as fh:
        torch.save(full, fh)


def read_payload(path, fmt, version, what):
    """The payload of a file written by :func:`write_payload` with format ``fmt``; any other file
    (a pickle that would run code, a truncated or corrupted file, another format or a newer
    version) is a ValueError naming ``path`` and the problem. A missing file stays an OSError."""
    with open(path, "rb") as fh:  # a missing or unreadable file stays an OSError
        try:
            payload = torch.load(fh, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            # torch's message suggests weights_only=False; pass on only the reason it gives
            reason = re.search(r"(?:WeightsUnpickler error:|Unsupported)\s*([^\n]+)", str(exc))
            raise ValueError(f"{path}: expected a qlts {what} file, got a file that weights-only loading cannot "
                             f"read: it is corrupted, or it holds objects other than tensors and plain values, "
                             f"which are refused because unpickling them could run code "
                             f"({reason.group(1).split(' Please')[0].strip() if reason else type(exc).__name__})") from None
        except Exception as exc:  # torch/zip/pickle internals on truncated or damaged files
            raise ValueError(f"{path}: expected a qlts {what} file, got a file that weights-only loading cannot "
                             f"read: it is truncated or corrupted ({type(exc).__name__}: {exc})") from None
    found = payload.get("format") if isinstance(payload, dict) else None
    if found != fmt:
        got = f"format {found!r}" if isinstance(found, str) else f"a {type(payload).__name__} without a qlts format"
        raise ValueError(f"{path}: expected a qlts {what} file (format {fmt!r}), got {got}")
    found_version = payload.get("format_version")
    if found_version != version:
        raise ValueError(f"{path}: expected {what} file format version {version}, got version "
                         f"{found_version!r} (written by qlts {payload.get('qlts_version')}); this qlts "
                         f"({__version__}) cannot read it: load it with that version and refit, or re-save")
    expected = payload.pop("checksum", None)
    if expected is None and set(payload) != _UNCHECKSUMMED_KEYS:
        raise ValueError(f"{path}: expected a qlts {what} file with a checksum, got none: the file is corrupted")
    if expected is not None and _digest(payload) != expected:
        raise ValueError(f"{path}: expected a qlts {what} file whose content matches its checksum, got a "
                         "mismatch: the file is corrupted")
    return payload


def read_saved(path, cls, fmt, version, what):
    """``(payload, config)`` of a file that ``cls.save`` wrote in format ``fmt``: the class is checked,
    the JSON config parsed, and a saved CUDA device that is not available here becomes the CPU."""
    payload = read_payload(path, fmt, version, what)
    if payload.get("estimator") != cls.__name__:
        raise ValueError(f"{path}: expected a saved {cls.__name__}, got a {payload.get('estimator')}; "
                         f"use {payload.get('estimator')}.load")
    config = json.loads(payload["config"])
    params = config["params"] = {name: from_jsonable(value) for name, value in config["params"].items()}
    device = params.get("device")
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"{path} was saved with device={device!r}, which is not available here; loading on the CPU",
                      UserWarning, stacklevel=3)
        params["device"] = "cpu"
    return payload, config


def json_default(value):
    """``json.dumps`` fallback for values in a history: numpy scalars as numbers, anything else as text."""
    return value.item() if isinstance(value, np.generic) else str(value)


def load(cls, path):
    payload, config = read_saved(path, cls, FORMAT, FORMAT_VERSION, "estimator")
    est = cls(**config["params"])
    est._restore_fitted_state(config["fitted"])
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: keep the caller's RNG as it was
        est.initialize()
    est.module_.load_state_dict(payload["state_dict"])
    return est

"""Turn what users pass as X and y into arrays the network takes, with clear errors.

Every X is a batch of sequences of F channels:

- a 3-D float array (n, T, F);
- a 2-D array (n, T): n univariate sequences (F = 1), or integer token ids when
  ``vocab_size`` is set (trailing 0 ids are padding);
- a list of variable-length (T_i, F) or (T_i,) arrays, padded here and passed on with
  their lengths so that padding never reaches the recurrence;
- pandas DataFrames (as 2-D) and anything ``np.asarray`` understands.

The sequence length T may differ between fit and predict; the channel count F may not.
Nothing here writes to the caller's arrays: every conversion copies or only reads.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch
from scipy import sparse
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from torch.utils.data import Sampler, Subset

from .._validation import as_array, check_int
from ..preprocessing._scaler import overflowed, standard_statistics


class Sequences(NamedTuple):
    """Validated model input: ``x`` is (n, T, F) float32, or (n, T) int64 token ids;
    ``lengths`` (n,) int64 is None when every sequence uses all T steps."""

    x: np.ndarray
    lengths: np.ndarray | None

    @property
    def n_channels(self) -> int:
        return 1 if self.x.ndim == 2 else self.x.shape[2]

    def as_net_input(self):
        """What skorch gets as X: a dict is passed to ``SequenceModel.forward`` as keywords."""
        if self.lengths is None:
            return {"x": self.x}
        return {"x": self.x, "lengths": self.lengths}


_SHAPES = "a 2-D array (n, T), a 3-D array (n, T, F) or a list of (T_i, F) sequences"


def _numeric(name, arr):
    """``arr`` as a real numeric array; strings, objects that are not numbers and complex
    values are refused (TypeError, or ValueError for complex as scikit-learn does)."""
    if arr.dtype.kind == "c":
        raise ValueError(f"{name}: expected real numbers, got complex values. Complex data not supported.")
    if arr.dtype.kind == "O":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: expected numeric values, got an object array that does not convert "
                            f"to numbers ({exc})") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric dtype, got dtype {arr.dtype}")
    return arr


def _check_finite(name, arr):
    if not np.isfinite(arr).all():
        what = "NaN" if np.isnan(arr).any() else "inf (or a value beyond the float32 range)"
        raise ValueError(f"{name}: expected finite values, got {what}")


def _check_tokens(arr, vocab_size):
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"X: expected integer token ids because vocab_size={vocab_size}, got non-integer values")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"X: expected token ids in [0, {vocab_size}) (vocab_size={vocab_size}), "
                         f"got values from {lo} to {hi}")
    return arr.astype(np.int64)


def _token_lengths(ids):
    """Trailing 0 ids are padding: a row's length ends at its last non-zero id (at least 1)."""
    nonzero = ids != 0
    last = ids.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    lengths = np.where(nonzero.any(axis=1), last, 1).astype(np.int64)
    return None if (lengths == ids.shape[1]).all() else lengths


def _warn_integer_values(owner, stacklevel):
    warnings.warn(
        f"{owner}: X holds integers and vocab_size=None, so they are read as the values of univariate "
        "sequences. If they are token ids (TextEncoder's output), set vocab_size (max_size + 2 for "
        "TextEncoder(max_size=...)); if they are numbers, pass them as floats to silence this warning.",
        UserWarning, stacklevel=stacklevel)


def _from_list(X, vocab_size, owner):
    items = [_numeric("X", np.asarray(item)) for item in X]
    if owner and vocab_size is None and all(item.dtype.kind in "iu" for item in items):
        _warn_integer_values(owner, stacklevel=6)  # the caller of fit
    ndims = {item.ndim for item in items}
    if len(ndims) != 1 or ndims & {0} or max(ndims) > 2:
        raise ValueError(f"X: expected a list of sequences that are all (T_i,) or all (T_i, F), "
                         f"got items with ndim {sorted(ndims)}")
    if vocab_size is not None and ndims != {1}:
        raise ValueError(f"X: expected a list of 1-D token-id sequences because vocab_size={vocab_size}, "
                         "got 2-D items")
    widths = {item.shape[1] for item in items} if ndims == {2} else {None}
    if len(widths) != 1:
        raise ValueError(f"X: expected every sequence to have the same number of features, got {sorted(widths)}")
    lengths = np.array([len(item) for item in items], dtype=np.int64)
    if lengths.min() < 1:
        raise ValueError(f"X: expected sequences of at least 1 time step, got a sequence of length 0 "
                         f"(item {int(np.argmin(lengths))})")
    tokens = vocab_size is not None
    dtype = np.int64 if tokens else np.float32
    padded = np.zeros((len(items), int(lengths.max())) + items[0].shape[1:], dtype=dtype)
    for row, item in zip(padded, items):
        row[: len(item)] = _check_tokens(item, vocab_size) if tokens else item
    if not tokens:
        _check_finite("X", padded)
        if padded.ndim == 2:
            padded = padded[:, :, None]
    return Sequences(padded, None if (lengths == lengths[0]).all() else lengths)


def as_sequences(X, *, vocab_size=None, owner=None) -> Sequences:
    """Validate X and return it as :class:`Sequences` (see the module docstring). With ``owner``
    (the estimator's name, given at fit), integer X without ``vocab_size`` warns: token ids read as
    numbers train silently at chance level."""
    if X is None:
        raise ValueError(f"X: expected {_SHAPES}, got None")
    if sparse.issparse(X):
        raise TypeError(f"X: expected a dense array, got a {type(X).__name__}: sparse input is not supported "
                        "(convert it with X.toarray())")
    if isinstance(X, (list, tuple)) and not len(X):
        raise ValueError("X: expected at least 1 sample, got an empty sequence (0 samples)")
    if isinstance(X, (list, tuple)) and not np.isscalar(X[0]):
        try:  # equal-length items are one array, so list input then equals array input exactly
            arr = np.asarray(X)
        except ValueError:
            return _from_list(X, vocab_size, owner)
        if arr.dtype.kind == "O" and arr.ndim == 1:
            return _from_list(X, vocab_size, owner)
    else:
        arr = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X)
    arr = _numeric("X", arr)
    if arr.ndim not in (2, 3):
        hint = " Reshape your data with X.reshape(1, -1) if it is a single sequence." if arr.ndim == 1 else ""
        raise ValueError(f"X: expected {_SHAPES}, got a {arr.ndim}-D array of shape {arr.shape}.{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"X: expected at least 1 sample, got 0 sample(s) (shape={arr.shape})")
    if arr.shape[1] == 0:
        raise ValueError(f"X: expected at least 1 time step, got 0 feature(s) (shape={arr.shape}) "
                         "while a minimum of 1 is required.")
    if arr.ndim == 3 and arr.shape[2] == 0:
        raise ValueError(f"X: expected at least 1 feature per step, got 0 (shape={arr.shape})")
    if vocab_size is not None:
        if arr.ndim != 2:
            raise ValueError(f"X: expected (n, T) integer token ids because vocab_size={vocab_size}, "
                             f"got a {arr.ndim}-D array of shape {arr.shape}")
        ids = _check_tokens(arr, vocab_size)
        return Sequences(ids, _token_lengths(ids))
    if owner and arr.dtype.kind in "iu":
        _warn_integer_values(owner, stacklevel=5)  # the caller of fit
    x = arr.astype(np.float32)  # a copy: the caller's array is never touched
    _check_finite("X", x)
    return Sequences(x[:, :, None] if x.ndim == 2 else x, None)


def check_n_channels(seq: Sequences, expected, owner):
    if seq.n_channels != expected:
        # a single (T, F) sequence passed as it is reads as T univariate sequences of length F
        hint = "; a 2-D X is n univariate sequences (n, T): pass one (T, F) sequence as X[None]" \
            if seq.n_channels == 1 else ""
        raise ValueError(f"X has {seq.n_channels} features per time step, but {owner} is expecting "
                         f"{expected} features as input (as in fit){hint}")


def _check_y_present(y, n_samples):
    if y is None:
        raise ValueError("y: this estimator requires y to be passed, but the target y is None")
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if y.ndim == 0 or len(y) != n_samples:
        got = "a scalar" if y.ndim == 0 else f"len(y)={len(y)}"
        raise ValueError(f"X, y: expected the same number of samples, got len(X)={n_samples} and {got}")
    return y


def sample_weights(sample_weight, n_samples):
    """sample_weight validated as (n_samples,) float32: finite, non-negative, not all zero."""
    w = as_array("sample_weight", sample_weight, "a 1-D array of numbers", dtype=np.float64)  # pandas too
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight: expected shape ({n_samples},), one weight per sample, got shape {w.shape}")
    _check_finite("sample_weight", w)
    if (w < 0).any():
        raise ValueError(f"sample_weight: expected weights >= 0, got {float(w.min())!r}")
    if not w.any():
        raise ValueError("sample_weight: expected at least one positive weight, got all zeros")
    return w.astype(np.float32)


def class_weights(class_weight, classes, labels):
    """float64 weight of each class in ``classes`` for ``class_weight`` None (all 1), "balanced"
    (n / (n_classes * count), scikit-learn's) or a {label: weight} dict (missing labels weigh 1)."""
    if class_weight is None:
        return np.ones(len(classes))
    if not (isinstance(class_weight, dict) or (isinstance(class_weight, str) and class_weight == "balanced")):
        raise ValueError(f"class_weight: expected None, 'balanced' or a dict {{label: weight}}, got {class_weight!r}")
    if isinstance(class_weight, dict):
        unknown = [label for label in class_weight if label not in set(classes.tolist())]
        if unknown:
            raise ValueError(f"class_weight: expected labels among the classes {classes.tolist()!r}, got {unknown!r}")
        weights = np.array([class_weight.get(label, 1.0) for label in classes.tolist()], dtype=np.float64)
        if not (np.isfinite(weights).all() and (weights >= 0).all() and weights.any()):
            raise ValueError(f"class_weight: expected finite weights >= 0, not all zero, got {class_weight!r}")
        return weights
    missing = np.setdiff1d(classes, labels)
    if len(missing):
        raise ValueError(f"class_weight: 'balanced' weighs each class by its count in y, got no sample of "
                         f"class(es) {missing.tolist()!r}; pass a dict of weights")
    return compute_class_weight("balanced", classes=classes, y=labels)


def class_labels(y, n_samples):
    """y validated as a 1-D array of class labels (any type, strings too)."""
    y = _check_y_present(y, n_samples)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-D array of class labels, got shape {y.shape}")
    if y.dtype.kind == "c":
        raise ValueError("y: expected class labels, got complex values. Complex data not supported.")
    if y.dtype.kind == "f":
        _check_finite("y", y)
    try:
        check_classification_targets(y)
    except ValueError as exc:
        raise ValueError(f"y: {exc}") from exc
    except TypeError as exc:  # labels of mixed types (0 and "b") cannot be sorted into classes_
        raise TypeError(f"y: expected class labels of one type that can be sorted, got mixed types ({exc})") from exc
    return y


def encode_labels(labels, classes):
    """Each label's index in ``classes`` (int64); a label not in ``classes`` is an error."""
    order = np.argsort(classes, kind="stable")
    ordered = classes[order]
    pos = np.clip(np.searchsorted(ordered, labels), 0, len(ordered) - 1)
    unknown = ordered[pos] != labels
    if unknown.any():
        raise ValueError(f"y: expected labels among the classes {list(classes)!r}, got {list(np.unique(labels[unknown]))!r}")
    return order[pos].astype(np.int64)


def regression_targets(y, n_samples):
    """``(target, ndim)``: y as (n, k) float64, and whether it came as (n,) (1) or (n, k) (2)."""
    y = _numeric("y", _check_y_present(y, n_samples))
    if y.ndim not in (1, 2):
        raise ValueError(f"y: expected shape (n,) or (n, k), got shape {y.shape}")
    if y.ndim == 2:
        check_int("y.shape[1]", y.shape[1], min_value=1)
    target = y.astype(np.float64).reshape(n_samples, -1)
    _check_finite("y", target)
    return target, y.ndim


def target_scaling(target, normalize):
    """(mean, scale) per column of the (n, k) float64 target: its mean and standard deviation
    (1 where constant, see :func:`~qlts.preprocessing._scaler.standard_statistics`) when
    ``normalize``, else 0 and 1."""
    k = target.shape[1]
    if not normalize:
        return np.zeros(k), np.ones(k)
    mean, scale = standard_statistics(target)
    if overflowed(mean, scale).size:
        raise ValueError("y: expected values whose mean and standard deviation fit in float64, got values too "
                         "large (or set normalize_y=False)")
    return mean, scale


def scaled_targets(target, mean, scale):
    """The float32 targets the network trains on: (target - mean) / scale."""
    scaled = ((target - mean) / scale).astype(np.float32)
    _check_finite("y", scaled)  # without normalize_y, values beyond float32 overflow here
    return scaled


# Rows are sorted by length within pools of this many batches. On IMDB at 1,000 tokens (batch 64)
# random batches run 867 steps on average; pools of 50 batches give 243, a global sort 234.
BUCKET_POOL_BATCHES = 50


class LengthBucketSampler(Sampler):
    """Batches of rows of similar length, in random order (a "sortish" batch sampler).

    Each epoch the rows are shuffled, cut into pools of ``BUCKET_POOL_BATCHES`` batches, each
    pool is sorted by length and cut into batches, and the batches are shuffled. Every row is in
    exactly one batch per epoch. The shuffles draw from torch's RNG, so ``random_state`` seeds them.
    """

    def __init__(self, lengths, batch_size):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size

    def _pools(self):
        step = self.batch_size * BUCKET_POOL_BATCHES
        return [(start, min(start + step, len(self.lengths))) for start in range(0, len(self.lengths), step)]

    def __len__(self):
        return sum(-(-(stop - start) // self.batch_size) for start, stop in self._pools())

    def __iter__(self):
        order = torch.randperm(len(self.lengths)).numpy()
        batches = []
        for start, stop in self._pools():
            pool = order[start:stop]
            pool = pool[np.argsort(-self.lengths[pool], kind="stable")]
            batches += [pool[i:i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
        for k in torch.randperm(len(batches)).tolist():
            yield batches[k]


def _unwrap(dataset):
    """(the dataset under any nested ``Subset``, the indices of the rows into it or None)."""
    indices = None
    while isinstance(dataset, Subset):
        inner = np.asarray(dataset.indices)
        indices = inner if indices is None else inner[indices]
        dataset = dataset.dataset
    return dataset, indices


def built_from_arrays(dataset):
    """Whether a training dataset holds the net input made from the caller's arrays (a skorch
    dataset of the dict from :meth:`Sequences.as_net_input`, or a ``Subset`` of one), rather than
    a torch Dataset of the caller's own."""
    return isinstance(getattr(_unwrap(dataset)[0], "X", None), dict)


def dataset_lengths(dataset):
    """The sequence lengths of a skorch dataset of net input (or of a ``Subset`` of one); None
    when the rows carry no lengths (all full length, or a dataset of another kind)."""
    dataset, indices = _unwrap(dataset)
    X = getattr(dataset, "X", None)
    if not isinstance(X, dict) or X.get("lengths") is None:
        return None
    lengths = np.asarray(X["lengths"])
    return lengths if indices is None else lengths[indices]

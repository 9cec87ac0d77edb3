"""What QLLSTMClassifier and QLLSTMRegressor share: top-level hyper-parameters routed into
:class:`qlts.nn.SequenceModel`, input handling, training conveniences and persistence.

The estimators are real skorch nets. skorch keeps every constructor argument as an attribute
and reports all of them from ``get_params``, so the top-level hyper-parameters are plain
attributes too; :meth:`initialize_module` turns them into the module's keyword arguments,
and an explicit ``module__*`` argument still wins.
"""
from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, GradientNormClipping, ProgressBar
from skorch.utils import is_dataset, to_numpy
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted
from torch.utils.data import Subset

from .._validation import check_choice, check_float, check_int
from ..nn.encoder import CELLS, POOLINGS, SequenceModel
from ..parallel import limit_threads_in_worker
from ..utils import check_device, int_seed, private_torch_rng, resolve_device
from . import _persist
from ._callbacks import ON_NAN, GuardedNetMixin, checkpoint_path, fingerprint
from ._data import (LengthBucketSampler, as_sequences, built_from_arrays, check_n_channels, dataset_lengths,
                    sample_weights)

# Max global L2 norm of the gradient per step. Recurrent nets occasionally produce a huge
# gradient on long sequences; clipping at 1.0 is the usual remedy and rarely binds otherwise.
DEFAULT_GRADIENT_CLIP = 1.0

# The top-level hyper-parameters that become SequenceModel keyword arguments.
MODULE_PARAMS = ("hidden_size", "num_layers", "cell", "bidirectional", "dropout", "input_dropout", "pooling",
                 "vocab_size", "embedding_dim", "alpha", "skip", "skip_mode", "learn_alpha", "backend")


PARAMETERS_DOC = """
    Parameters
    ----------
    cell : {"qllstm", "lstm", "gru", "bilstm"}, default="qllstm"
        The recurrence. The other cells make like-for-like baselines.
    hidden_size : int, default=64
        Hidden units per layer and direction.
    num_layers : int, default=1
    bidirectional : bool, default=False
    alpha : float in [0, 1), default=0.1
        QL-LSTM skip weight (ignored by the other cells); the parameter to grid-search.
    skip : int, default=1
        QL-LSTM skip distance K.
    skip_mode : {"convex", "additive"}, default="convex"
    learn_alpha : bool, default=False
    dropout : float, default=0.0
        Dropout between recurrent layers (so only with ``num_layers > 1``).
    input_dropout : float in [0, 1), default=0.0
        Dropout on the recurrent stack's input: the embedded tokens, or the features.
    pooling : {"last", "mean", "max"}, default="last"
        How the sequence becomes one vector: the last valid state, or the mean or max of
        the outputs over valid steps.
    embedding_dim : int or None, default=None
        Token embedding size when ``vocab_size`` is set (None means 64).
    vocab_size : int or None, default=None
        Set it to feed (n, T) integer token ids (or lists of them); id 0 is padding, and
        trailing 0 ids never reach the result.
    backend : {"auto", "torch", "numba", "triton"}, default="auto"
        QL-LSTM scan implementation (see :mod:`qlts.kernels`).
    lr : float, default=5e-3
    max_epochs : int, default=20
    batch_size : int, default=64
    bucket_by_length : bool, default=False
        Train on batches of sequences of similar length (rows are shuffled, sorted by length
        within pools of 50 batches, and the batches shuffled). Each batch runs only as many
        steps as its longest row, so on variable-length data an epoch does far fewer steps:
        IMDB at 1,000 tokens averages 243 steps a batch instead of 867. No effect when every
        sequence has the same length. (Prediction always runs on rows sorted by length and
        returns them in the input's order.)
    optimizer : str or torch.optim class, default="adam"
        A name from ``torch.optim`` (case-insensitive: "adam", "adamw", "sgd", ...) or a
        class; ``optimizer__*`` arguments go to its constructor.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved for ``patience`` epochs and restore
        the best epoch's weights. It needs a validation set: with ``train_split=None``
        (the default) ``validation_fraction`` of the training data is held out, a stratified
        random part for the classifier and the last rows for the regressor.
    patience : int, default=5
    validation_fraction : float in (0, 1), default=0.1
    gradient_clip : float or None, default=1.0
        Clip the global L2 norm of the gradient at this value each step; None or 0 turns
        clipping off.
    device : str, default="auto"
        "auto" is CUDA when available, else CPU.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the batch order and dropout: on a CPU, a refit with the same
        value gives the same model bit for bit. The caller's global torch RNG is untouched.
        Successive ``partial_fit`` calls (and warm-start fits) continue the estimator's own
        random stream, so estimators trained in turn do not change each other's results.
    verbose : int, default=0
        0 is silent; 1 prints a table per epoch and a progress bar over the batches.
    on_nan : {"raise", "restore", "skip_batch"}, default="raise"
        What a NaN or infinite loss or gradient does: "raise" restores the weights of the last
        complete epoch and raises :class:`qlts.estimators._callbacks.DivergenceError` (a
        FloatingPointError) naming the epoch and batch; "restore" restores them and stops with
        a warning; "skip_batch" skips that batch's optimizer step and counts it in the history
        (``skipped_batches``). See :mod:`qlts.estimators._callbacks`.
    checkpoint_dir : str, path or None, default=None
        Write a checkpoint into this directory at every epoch end (atomically). A ``fit``
        with the same hyper-parameters, data and directory resumes from it, ending bit for bit
        where an uninterrupted CPU run ends; once finished, a rerun returns at once. Other
        fits get their own file, so one directory can serve a grid search.
    **kwargs
        Any skorch ``NeuralNet`` argument: ``module__*`` (wins over the top-level values),
        ``optimizer__*``, ``callbacks``, ``iterator_train__*``, ``train_split``, ``criterion``...

    Notes
    -----
    X is a batch of sequences: a (n, T, F) float array; a 2-D array, meaning n univariate
    sequences (n, T); (n, T) integer token ids when ``vocab_size`` is set; a list of
    variable-length (T_i, F) arrays (padded internally, and the lengths reach the network so
    padding never changes a prediction); or a pandas DataFrame (as 2-D). The sequence length
    may differ between fit and predict; the number of features per step may not.

    Batch order: array and list X is shuffled every epoch (seeded by ``random_state``), so
    rows sorted by class or time still make mixed batches; a torch Dataset of the caller's
    (e.g. :class:`qlts.preprocessing.LazyWindows`) is read in its order, and
    ``iterator_train__shuffle`` overrides both.

    Internal validation and ``GridSearchCV``: skorch's default of holding out 20% of every
    fit for validation is turned off (``train_split=None``), so inside a cross-validation
    each fold trains on all its training rows. Only ``early_stopping=True`` (or an explicit
    ``train_split``) holds data out, and then the hold-out comes out of each fold's training
    part.

    Attributes
    ----------
    n_features_in_ : int
        Features per time step seen in fit (1 for 2-D X and token ids).
    n_outputs_ : int
        Outputs of the network's head.
    module_ : qlts.nn.SequenceModel
        The trained network.
    history_ : skorch History
        Per-epoch losses (and validation scores when there is a validation split).
"""

def optimizer_class(optimizer):
    """A torch optimizer class from a class or a case-insensitive name ("adam", "AdamW", "sgd")."""
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer
    known = {name.lower(): obj for name, obj in vars(torch.optim).items()
             if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer}
    if isinstance(optimizer, str) and optimizer.lower() in known:
        return known[optimizer.lower()]
    if callable(optimizer) and not isinstance(optimizer, (str, type)):
        return optimizer  # a factory such as functools.partial(torch.optim.SGD, momentum=0.9)
    raise ValueError(f"optimizer: expected a torch.optim class or one of {sorted(known)}, got {optimizer!r}")


class HoldOut:
    """The validation split used for early stopping when ``train_split`` is None.

    Classifiers hold out a stratified random ``fraction`` (seeded by ``random_state``);
    regressors hold out the *last* ``fraction`` of the rows, since regression windows usually
    come in time order and a random split would validate on the past's future.
    """

    def __init__(self, fraction, *, stratified, random_state=None):
        self.fraction = fraction
        self.stratified = stratified
        self.random_state = random_state

    def __call__(self, dataset, y=None, groups=None):
        n = len(dataset)
        n_valid = max(1, int(round(self.fraction * n)))
        if n - n_valid < 1:
            raise ValueError(f"validation_fraction: leaves no training rows out of {n} samples "
                             f"(validation_fraction={self.fraction}); use more data or early_stopping=False")
        index = np.arange(n)
        if self.stratified:
            try:
                train, valid = train_test_split(index, test_size=n_valid, stratify=to_numpy(y),
                                                random_state=self.random_state)
            except ValueError as exc:  # too few rows of some class for a stratified split
                raise ValueError(f"validation_fraction: early stopping holds out a stratified {n_valid} of {n} "
                                 f"samples (validation_fraction={self.fraction}), which these classes do not "
                                 f"allow ({exc}); use more data per class or early_stopping=False") from exc
        else:
            train, valid = index[: n - n_valid], index[n - n_valid:]
        return Subset(dataset, train), Subset(dataset, valid)


class _SampleWeightedLoss:
    """With ``sample_weight`` in fit, a batch's loss is the weighted mean sum(w * loss) / sum(w),
    so a weight of k counts as k copies of the sample and scaling every weight changes nothing;
    a batch of zero weights gives a zero loss, not 0/0. Placed after GuardedNetMixin in the MRO,
    so the guard sees the weighted loss."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weight = X.get("sample_weight") if isinstance(X, dict) else None
        if weight is None:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        if not hasattr(self.criterion_, "reduction"):
            raise TypeError(f"sample_weight: expected a criterion with a `reduction` setting (per-sample losses), "
                            f"got {type(self.criterion_).__name__}")
        reduction, self.criterion_.reduction = self.criterion_.reduction, "none"
        try:
            per_sample = super().get_loss(y_pred, y_true, X=X, training=training)
        finally:
            self.criterion_.reduction = reduction
        per_sample = per_sample.reshape(len(per_sample), -1).mean(1)
        weight = weight.to(per_sample)
        return (per_sample * weight).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)

    def infer(self, x, **fit_params):
        if isinstance(x, dict) and "sample_weight" in x:  # for the loss, not the network
            x = {k: v for k, v in x.items() if k != "sample_weight"}
        return super().infer(x, **fit_params)


class QLLSTMEstimatorBase(GuardedNetMixin, _SampleWeightedLoss):
    """Shared implementation; use :class:`QLLSTMClassifier` or :class:`QLLSTMRegressor`."""

    _default_criterion = None  # set by each estimator
    _stratified_holdout = False

    def __init__(self, *, cell="qllstm", hidden_size=64, num_layers=1, bidirectional=False, alpha=0.1, skip=1,
                 skip_mode="convex", learn_alpha=False, dropout=0.0, input_dropout=0.0, pooling="last",
                 embedding_dim=None, vocab_size=None, backend="auto", lr=5e-3, max_epochs=20, batch_size=64,
                 bucket_by_length=False, optimizer="adam", early_stopping=False, patience=5, validation_fraction=0.1,
                 gradient_clip=DEFAULT_GRADIENT_CLIP, device="auto", random_state=None, verbose=0, on_nan="raise",
                 checkpoint_dir=None, **kwargs):
        super().__init__(
            module=kwargs.pop("module", SequenceModel),
            criterion=kwargs.pop("criterion", self._default_criterion),
            train_split=kwargs.pop("train_split", None),
            optimizer=optimizer, lr=lr, max_epochs=max_epochs, batch_size=batch_size, device=device,
            verbose=verbose, **kwargs)
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.alpha = alpha
        self.skip = skip
        self.skip_mode = skip_mode
        self.learn_alpha = learn_alpha
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.pooling = pooling
        self.embedding_dim = embedding_dim
        self.vocab_size = vocab_size
        self.backend = backend
        self.bucket_by_length = bucket_by_length
        self.early_stopping = early_stopping
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.gradient_clip = gradient_clip
        self.random_state = random_state
        self.on_nan = on_nan
        self.checkpoint_dir = checkpoint_dir

    # --- device="auto" ----------------------------------------------------------------
    # skorch reads self.device wherever it moves tensors, so the attribute resolves "auto"
    # (qlts.utils.resolve_device) while get_params, clone and pickles keep the value given.
    @property
    def device(self):
        value = self.__dict__.get("device", "auto")
        return resolve_device(value) if value is None or (isinstance(value, str) and value == "auto") else value

    @device.setter
    def device(self, value):
        self.__dict__["device"] = value

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        if "device" in params:
            params["device"] = self.__dict__["device"]
        return params

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_", its private ones too; those are
        # not hyper-parameters (clone would share them between copies).
        return [name for name in super()._get_param_names() if not name.startswith("_")]

    def __setstate__(self, state):
        given = state["device"]
        state["device"] = resolve_device(given)  # skorch maps the weights onto a concrete device
        super().__setstate__(state)
        if given in (None, "auto"):
            self.__dict__["device"] = given

    # --- module, optimizer, callbacks, split ----------------------------------------
    def initialize_module(self):
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError(f"{type(self).__name__}: the network's input size comes from the data; "
                               "call fit (or load) instead of initialize")
        kwargs = {name: getattr(self, name) for name in MODULE_PARAMS}
        kwargs.update(input_size=self.n_features_in_, n_outputs=self.n_outputs_)
        kwargs.update(self.get_params_for("module"))  # explicit module__* arguments win
        self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    def initialize_optimizer(self, triggered_directly=None):
        args, kwargs = self.get_params_for_optimizer("optimizer", self.get_all_learnable_params())
        self.optimizer_ = optimizer_class(self.optimizer)(*args, **kwargs)
        return self

    def get_default_callbacks(self):
        # Built from the hyper-parameters at initialize time (not in _default_callbacks, which
        # skorch's get_params also reads, whatever the parameters hold at that moment).
        callbacks = list(super().get_default_callbacks())
        if self.gradient_clip:
            callbacks.append(("gradient_clipping", GradientNormClipping(gradient_clip_value=self.gradient_clip)))
        if self.early_stopping:
            callbacks.append(("early_stopping", EarlyStopping(monitor="valid_loss", patience=self.patience,
                                                              load_best=True)))
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def get_iterator(self, dataset, training=False):
        if not training:
            return super().get_iterator(dataset, training=False)
        kwargs = self.get_params_for("iterator_train")
        batch_size = kwargs.pop("batch_size", self.batch_size)
        batch_size = len(dataset) if batch_size == -1 else batch_size
        lengths = dataset_lengths(dataset) if self.bucket_by_length else None
        if lengths is not None:
            clash = sorted({"sampler", "batch_sampler", "drop_last"} & set(kwargs))
            if clash:
                given = ", ".join(f"iterator_train__{name}" for name in clash)
                raise ValueError(f"bucket_by_length: expected no {given} with bucket_by_length=True (the length "
                                 f"buckets are the batch sampler), got both")
            if kwargs.pop("shuffle", True) is False:  # the sampler shuffles
                raise ValueError("bucket_by_length: expected no iterator_train__shuffle=False with "
                                 "bucket_by_length=True (its batches come in a new random order every epoch), got both")
            return self.iterator_train(dataset, batch_sampler=LengthBucketSampler(lengths, batch_size), **kwargs)
        if not {"shuffle", "sampler", "batch_sampler"} & set(kwargs) and built_from_arrays(dataset):
            # Arrays are in memory: a new row order every epoch, as scikit-learn's MLP does (rows sorted
            # by class, as IMDB's are, made one-class batches). A torch Dataset of the user's is read in
            # its order unless iterator_train__shuffle=True (lazy windows read a file in order).
            kwargs["shuffle"] = True
        return self.iterator_train(dataset, batch_size=batch_size, **kwargs)

    def forward_iter(self, X, training=False, device="cpu"):
        """Inference runs on the rows sorted by length, so each batch runs about as many steps as
        its rows need (on IMDB at 1,000 tokens, 3.6x fewer than in input order); the outputs come
        back in the caller's row order, in one piece."""
        lengths = X.get("lengths") if isinstance(X, dict) and not training else None
        if lengths is None:
            yield from super().forward_iter(X, training=training, device=device)
            return
        order = np.argsort(-np.asarray(lengths), kind="stable")
        by_length = Subset(self.get_dataset(X), order)
        out = torch.cat(list(super().forward_iter(by_length, training=training, device=device)))
        yield out[torch.from_numpy(np.argsort(order)).to(out.device)]

    def get_split_datasets(self, X, y=None, **fit_params):
        split = self.train_split
        if split is None and self.early_stopping:
            split = HoldOut(self.validation_fraction, stratified=self._stratified_holdout,
                            random_state=self._seed())
        dataset = self.get_dataset(X, y)
        if split is None:
            return dataset, None
        return split(dataset, y, **fit_params)

    # --- validation and seeding ---------------------------------------------------------
    def _check_hyper_params(self):
        """Checks of what the module constructors do not see; they validate the rest."""
        check_choice("cell", self.cell, CELLS)
        check_choice("pooling", self.pooling, POOLINGS)
        check_float("lr", self.lr, low=0.0, high=float("inf"), low_open=True)
        check_int("max_epochs", self.max_epochs, min_value=0)
        if self.batch_size != -1:
            check_int("batch_size", self.batch_size, min_value=1)
        check_int("patience", self.patience, min_value=1)
        check_float("validation_fraction", self.validation_fraction, low=0.0, high=1.0, low_open=True,
                    high_open=True)
        if self.gradient_clip is not None:
            check_float("gradient_clip", self.gradient_clip, low=0.0, high=float("inf"))
        optimizer_class(self.optimizer)
        check_choice("on_nan", self.on_nan, ON_NAN)
        # a str such as "no" would be truthy
        for name in ("bidirectional", "learn_alpha", "early_stopping", "bucket_by_length"):
            check_choice(name, getattr(self, name), (False, True))
        if self.vocab_size is not None:  # checked before X is read as token ids
            check_int("vocab_size", self.vocab_size, min_value=2)
        check_device(self.__dict__.get("device", "auto"))

    def _seed(self):
        """An int seed from random_state (an int, a RandomState or None)."""
        return int_seed(self.random_state)

    @contextlib.contextmanager
    def _seeded(self, reset=True):
        """Run on this estimator's own torch RNG stream (weight init, shuffling, dropout), then
        restore the caller's RNG. ``reset`` starts the stream from ``random_state``; otherwise it
        continues where this estimator's last fit or partial_fit left it, so estimators trained
        in turn (one partial_fit each, round robin) do not draw from each other's stream, as
        scikit-learn's own partial_fit estimators keep their RandomState. Without random_state,
        the global RNG is used as it is."""
        seed = self._seed()
        state = None if reset or seed is None else getattr(self, "_rng_state_", None)
        with private_torch_rng(self.device, seed, state) as rng:
            yield
        if seed is not None:
            self._rng_state_ = rng["state"]

    # --- data ---------------------------------------------------------------------------
    def _net_input(self, X):
        """X (as users pass it) validated against fit, as the dict that reaches forward."""
        if is_dataset(X):  # skorch's own scoring passes its datasets back in
            return X
        check_is_fitted(self)
        seq = as_sequences(X, vocab_size=self.vocab_size)
        check_n_channels(seq, self.n_features_in_, type(self).__name__)
        return seq.as_net_input()

    def _prepare_training(self, X, y, *, reset, classes=None, sample_weight=None):
        self._check_hyper_params()
        limit_threads_in_worker()  # in a Dask worker: one torch thread per task (qlts.parallel)
        if is_dataset(X):  # e.g. qlts.preprocessing.LazyWindows: skorch batches it as it is
            if sample_weight is not None:
                raise TypeError(f"sample_weight: expected None when X is a torch Dataset "
                                f"({type(X).__name__}), got {type(sample_weight).__name__}")
            return self._prepare_dataset(X, y, reset=reset), None
        seq = as_sequences(X, vocab_size=self.vocab_size, owner=type(self).__name__ if reset else None)
        if not reset:
            check_n_channels(seq, self.n_features_in_, type(self).__name__)
        target = self._encode_targets(y, len(seq.x), reset=reset, classes=classes)
        X_net = seq.as_net_input()
        weight = self._training_weights(sample_weight, target)
        if weight is not None:
            X_net["sample_weight"] = weight
        if reset:
            self.n_features_in_ = seq.n_channels
        return X_net, target

    def _training_weights(self, sample_weight, target):
        """Per-sample loss weights (n,) float32, or None for an unweighted loss."""
        return None if sample_weight is None else sample_weights(sample_weight, len(target))

    def _prepare_dataset(self, dataset, y, *, reset):
        raise TypeError(f"X: {type(self).__name__} expects arrays or lists of sequences, got a torch Dataset "
                        f"({type(dataset).__name__}); QLLSTMRegressor takes datasets of (x, y) pairs")

    # --- fitting ------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Train from scratch (or go on training when ``warm_start=True``) on X and y.

        With ``random_state`` set, the weights, the batch order and dropout are seeded, so
        a CPU refit is identical bit for bit; the caller's global torch RNG is left as it was.
        ``sample_weight`` (n,) weighs each sample's loss (the validation loss of early
        stopping too): a batch's loss is sum(weight * loss) / sum(weight).
        """
        reset = not (self.warm_start and self.initialized_)
        X_net, target = self._prepare_training(X, y, reset=reset, sample_weight=sample_weight)
        with self._seeded(reset=reset):
            if reset:
                self.initialize()
            if reset and self.checkpoint_dir is not None:
                fp = fingerprint(self.get_params(deep=False), X_net, target)
                path = checkpoint_path(self.checkpoint_dir, type(self).__name__, fp)
                fit_params = {**fit_params, "epochs": self.training_guard_.resume(path, fp, self.max_epochs)}
            super().partial_fit(X_net, target, **fit_params)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None, **fit_params):
        """Train ``max_epochs`` more epochs without re-initialising (the first call initialises)."""
        reset = not self.initialized_
        X_net, target = self._prepare_training(X, y, reset=reset, classes=classes, sample_weight=sample_weight)
        with self._seeded(reset=reset):
            if reset:
                self.initialize()
            super().partial_fit(X_net, target, **fit_params)
        return self

    def _outputs(self, X):
        """Raw network outputs for X as float64 (logits for the classifier)."""
        return np.concatenate([to_numpy(out) for out in self.forward_iter(self._net_input(X))]).astype(np.float64)

    @classmethod
    def _param_defaults(cls):
        """{name: default} of the hyper-parameters named in the signatures of this base and of the
        estimator's own ``__init__`` (skorch's **kwargs excluded)."""
        defaults = {}
        for klass in reversed(cls.__mro__):
            if issubclass(klass, QLLSTMEstimatorBase) and "__init__" in vars(klass):
                defaults.update({p.name: p.default for p in inspect.signature(klass.__init__).parameters.values()
                                 if p.kind == p.KEYWORD_ONLY})
        return defaults

    @classmethod
    def _top_level_params(cls):
        return list(cls._param_defaults())

    def __repr__(self):
        # scikit-learn style: the class and the hyper-parameters that differ from the defaults
        # (skorch's repr shows neither before the net is initialised).
        defaults = self._param_defaults()
        given = self.get_params(deep=False)
        shown = [f"{k}={given[k]!r}" for k in defaults
                 if not (type(given[k]) is type(defaults[k]) and given[k] == defaults[k])]
        shown += [f"{k}={v!r}" for k, v in given.items() if "__" in k]
        return f"{type(self).__name__}({', '.join(shown)})"

    def _fitted_state(self):
        return {"n_features_in_": int(self.n_features_in_), "n_outputs_": int(self.n_outputs_)}

    def _restore_fitted_state(self, state):
        self.n_features_in_ = state["n_features_in_"]
        self.n_outputs_ = state["n_outputs_"]

    # --- persistence --------------------------------------------------------------------
    def save(self, path):
        """Write the fitted estimator to ``path`` in a safe format (see :mod:`._persist`):
        the weights as tensors, the hyper-parameters and fitted metadata as JSON. Written
        atomically, so a crash never leaves a half-written file."""
        check_is_fitted(self)
        _persist.save(self, path)

    @classmethod
    def load(cls, path):
        """A fitted estimator read from a file written by :meth:`save`. Nothing is unpickled:
        the file is read with ``torch.load(weights_only=True)``."""
        return _persist.load(cls, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

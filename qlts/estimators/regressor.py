"""QLLSTMRegressor: sequence regression on skorch's NeuralNetRegressor."""
from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNet, NeuralNetRegressor
from sklearn.metrics import r2_score

from .._validation import check_choice
from ._base import PARAMETERS_DOC, QLLSTMEstimatorBase
from ._data import regression_targets, scaled_targets, target_scaling


class QLLSTMRegressor(QLLSTMEstimatorBase, NeuralNetRegressor):
    __doc__ = """Sequence regressor: a recurrent encoder (QL-LSTM by default) and a linear head,
    trained with mean squared error. y is (n,) or (n, k); for windows from
    :func:`qlts.preprocessing.make_windows`, k is the forecast horizon.

    ``normalize_y`` (default True): the network trains on each target column minus its mean, over
    its standard deviation (those of the y given to ``fit``, or to the first ``partial_fit``), and
    ``predict`` maps back. The head starts near zero at unit scale, so raw targets such as levels
    or temperatures otherwise take most of the training to reach their level. The losses in
    ``history`` are then in units of y's variance (1.0 = predicting the mean). Targets from a
    torch Dataset are used as given.
""" + PARAMETERS_DOC + """    target_ndim_ : int
        1 when y was (n,) (predict then returns (n,)), 2 when it was (n, k).
    y_mean_, y_scale_ : ndarray of shape (k,)
        The target scaling (0 and 1 without ``normalize_y`` or for a Dataset).

    Examples
    --------
    >>> import numpy as np
    >>> from qlts import QLLSTMRegressor
    >>> X = np.random.default_rng(0).normal(size=(64, 20, 3)).astype("float32")
    >>> y = X[:, -5:, 0].sum(1)
    >>> reg = QLLSTMRegressor(hidden_size=8, max_epochs=2, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
"""

    _default_criterion = torch.nn.MSELoss

    def __init__(self, *, normalize_y=True, **kwargs):
        super().__init__(**kwargs)
        self.normalize_y = normalize_y

    def _check_hyper_params(self):
        super()._check_hyper_params()
        check_choice("normalize_y", self.normalize_y, (False, True))

    @property
    def predict_proba(self):
        # skorch gives every net a predict_proba; a regressor must not have one (sklearn's
        # API uses hasattr to tell classifiers' probability output apart).
        raise AttributeError(f"{type(self).__name__} is a regressor and has no predict_proba; use predict")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        # sklearn's check data is a linear function of 10 columns; read as a 10-step sequence,
        # the default network reaches R^2 ~ 0.3 in 20 epochs, short of the 0.5 the check asks.
        tags.regressor_tags.poor_score = True
        return tags

    def _encode_targets(self, y, n_samples, *, reset, classes=None):
        target, ndim = regression_targets(y, n_samples)
        if reset:
            self.y_mean_, self.y_scale_ = target_scaling(target, self.normalize_y)
            self.n_outputs_, self.target_ndim_ = target.shape[1], ndim
        elif target.shape[1] != self.n_outputs_:
            raise ValueError(f"y: expected {self.n_outputs_} target column(s) as in the first fit, "
                             f"got {target.shape[1]}")
        return scaled_targets(target, self.y_mean_, self.y_scale_)

    def _prepare_dataset(self, dataset, y, *, reset):
        """A torch Dataset of (x, y) pairs, x (T, F) and y (k,), such as
        :class:`qlts.preprocessing.LazyWindows`: skorch batches it as it is. The first item
        gives the feature and output counts."""
        if y is not None:
            raise ValueError(f"y: expected None when X is a Dataset of (x, y) pairs, got {type(y).__name__}")
        if not len(dataset):
            raise ValueError(f"X: expected a Dataset with at least 1 item, got an empty {type(dataset).__name__}")
        item = dataset[0]
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(f"X: expected a Dataset whose items are (x, y) pairs, got a {type(item).__name__}")
        x0, y0 = (np.asarray(v) for v in item)
        if x0.ndim != 2 or y0.ndim != 1:
            raise ValueError(f"X: expected Dataset items (x, y) with x of shape (T, F) and y of shape (k,), got "
                             f"shapes {x0.shape} and {y0.shape}")
        n_features, n_outputs = x0.shape[1], y0.shape[0]
        if reset:  # predict then returns (n, k), as for a 2-D y; the targets are used as given
            self.n_features_in_, self.n_outputs_, self.target_ndim_ = n_features, n_outputs, 2
            self.y_mean_, self.y_scale_ = np.zeros(n_outputs), np.ones(n_outputs)
        elif (n_features, n_outputs) != (self.n_features_in_, self.n_outputs_):
            raise ValueError(f"X: expected Dataset items with {self.n_features_in_} features and {self.n_outputs_} "
                             f"target(s) as in the first fit, got {n_features} and {n_outputs}")
        return dataset

    def predict(self, X):
        """Predictions as float64: (n,) when fit saw a 1-D y, else (n, k)."""
        out = NeuralNet.predict_proba(self, self._net_input(X)).astype(np.float64) * self.y_scale_ + self.y_mean_
        return out.ravel() if self.target_ndim_ == 1 else out

    def score(self, X, y, sample_weight=None):
        """R^2 of ``predict(X)`` against y (as scikit-learn's), with y checked against X and fit."""
        pred = self.predict(X)
        target, _ = regression_targets(y, len(pred))  # the length, numbers, finite values
        if target.shape[1] != self.n_outputs_:
            raise ValueError(f"y: expected {self.n_outputs_} target column(s) as in fit, got {target.shape[1]}")
        y_true = np.asarray(y, dtype=np.float64).reshape(pred.shape)  # float64, as scikit-learn scores
        return float(r2_score(y_true, pred, sample_weight=sample_weight))

    def _fitted_state(self):
        return {**super()._fitted_state(), "target_ndim_": int(self.target_ndim_), "y_mean_": self.y_mean_.tolist(),
                "y_scale_": self.y_scale_.tolist()}

    def _restore_fitted_state(self, state):
        super()._restore_fitted_state(state)
        self.target_ndim_ = state["target_ndim_"]
        # files from before normalize_y hold raw-scale models
        self.y_mean_ = np.array(state.get("y_mean_", [0.0] * self.n_outputs_))
        self.y_scale_ = np.array(state.get("y_scale_", [1.0] * self.n_outputs_))

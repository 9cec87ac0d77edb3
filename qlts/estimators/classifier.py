"""QLLSTMClassifier: sequence classification on skorch's NeuralNetClassifier."""
from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring
from skorch.utils import to_numpy
from sklearn.metrics import accuracy_score

from ._base import PARAMETERS_DOC, QLLSTMEstimatorBase
from ._data import class_labels, class_weights, encode_labels


def _valid_accuracy(net, X, y):
    """Accuracy on skorch's validation split, where y holds the class codes (not the labels)."""
    return float(np.mean(net.predict_proba(X).argmax(axis=1) == to_numpy(y)))


class QLLSTMClassifier(QLLSTMEstimatorBase, NeuralNetClassifier):
    __doc__ = """Sequence classifier: a recurrent encoder (QL-LSTM by default) and a linear head,
    trained with cross-entropy. Binary and multi-class; labels of any type (strings too).

    ``predict_proba`` columns follow ``classes_`` (sorted labels).

    ``class_weight`` (None, "balanced" or {label: weight}) multiplies each sample's loss by the
    weight of its class, as in scikit-learn's classifiers: "balanced" weighs class c by
    n / (n_classes * count(c)) in the y given to ``fit`` (or to the first ``partial_fit``), so a
    rare class counts as much as a common one. It multiplies ``sample_weight`` where both are given.
""" + PARAMETERS_DOC + """    classes_ : ndarray
        The class labels, sorted.
    class_weight_ : ndarray of shape (n_classes,)
        The weight of each class in ``classes_`` (all 1 without ``class_weight``).

    Examples
    --------
    >>> import numpy as np
    >>> from qlts import QLLSTMClassifier
    >>> X = np.random.default_rng(0).normal(size=(64, 20, 3)).astype("float32")
    >>> y = np.where(X[:, :, 0].sum(1) > 0, "up", "down")
    >>> clf = QLLSTMClassifier(hidden_size=8, max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict(X[:2]).shape
    (2,)
"""

    _default_criterion = torch.nn.CrossEntropyLoss
    _stratified_holdout = True

    def __init__(self, *, class_weight=None, **kwargs):
        super().__init__(**kwargs)
        self.class_weight = class_weight

    def check_data(self, X, y):
        """classes_ come from the labels in fit; skorch would re-infer them from the codes."""

    @property
    def _default_callbacks(self):
        return [(name, EpochScoring(_valid_accuracy, name="valid_acc", lower_is_better=False))
                if name == "valid_acc" else (name, callback) for name, callback in super()._default_callbacks]

    def _encode_targets(self, y, n_samples, *, reset, classes=None):
        labels = class_labels(y, n_samples)
        if reset and self.classes is None:
            self.classes_inferred_ = np.unique(labels if classes is None else np.asarray(classes))
        known = self.classes_
        if len(known) < 2:
            raise ValueError(f"y: expected at least 2 classes, got 1 class ({known[0]!r})")
        self.n_outputs_ = len(known)
        if reset:
            self.class_weight_ = class_weights(self.class_weight, known, labels)
        return encode_labels(labels, known)

    def _training_weights(self, sample_weight, target):
        """sample_weight times the weight of each sample's class (as scikit-learn's classifiers)."""
        weight = super()._training_weights(sample_weight, target)
        if self.class_weight is None and weight is None:
            return None
        by_class = self.class_weight_[target].astype(np.float32)
        return by_class if weight is None else weight * by_class

    def predict_proba(self, X):
        """Class probabilities, (n, n_classes) float64, columns in the order of ``classes_``."""
        return super().predict_proba(self._net_input(X)).astype(np.float64)

    def predict(self, X):
        """The most probable label for each sequence."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before fit
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against y (as scikit-learn's), with y checked against X."""
        pred = self.predict(X)
        return float(accuracy_score(class_labels(y, len(pred)), pred, sample_weight=sample_weight))

    def _fitted_state(self):
        classes = self.classes_
        return {**super()._fitted_state(), "classes": classes.tolist(), "classes_dtype": classes.dtype.str,
                "class_weight_": self.class_weight_.tolist()}

    def _restore_fitted_state(self, state):
        super()._restore_fitted_state(state)
        self.classes_inferred_ = np.array(state["classes"], dtype=np.dtype(state["classes_dtype"]))
        self.class_weight_ = np.array(state.get("class_weight_", [1.0] * len(state["classes"])))  # older files

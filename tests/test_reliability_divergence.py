"""The divergence guard (``on_nan``): a non-finite loss or gradient raises, restores, or skips the batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from qlts import QLLSTMClassifier, QLLSTMForecaster, QLLSTMRegressor
from qlts.estimators._callbacks import DivergenceError
from qlts.nn.encoder import SequenceModel
from qlts.nn.forecasting import SegRNN

KW = dict(hidden_size=8, batch_size=16, random_state=0)  # 64 rows: 4 batches per epoch


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 10, 2)).astype("float32")
    return X, X[:, -2:, 0].sum(1)


def nan_on_training_call(monkeypatch, module_cls, call, *, gradient_only=False):
    """Make the ``call``-th training-mode forward of ``module_cls`` output NaN (or, with
    ``gradient_only``, a finite output whose gradient is NaN)."""
    original, count = module_cls.forward, [0]

    def forward(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if self.training:
            count[0] += 1
            if count[0] == call:
                if gradient_only:
                    out.register_hook(lambda grad: grad * float("nan"))
                    return out
                return out * float("nan")
        return out

    monkeypatch.setattr(module_cls, "forward", forward)


def params(est):
    return {name: p.detach().clone() for name, p in est.module_.named_parameters()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_raise_names_epoch_and_batch_and_restores_the_last_epoch(monkeypatch):
    X, y = _data()
    one_epoch = params(QLLSTMRegressor(**KW, max_epochs=1).fit(X, y))
    est = QLLSTMRegressor(**KW, max_epochs=3)
    nan_on_training_call(monkeypatch, SequenceModel, 7)  # epoch 2, batch 3
    with pytest.raises(DivergenceError, match=r"epoch 2, batch 3 \(loss nan\).*restored to epoch 1") as info:
        est.fit(X, y)
    assert (info.value.epoch, info.value.batch) == (2, 3)
    assert isinstance(info.value, FloatingPointError)
    assert_same(params(est), one_epoch)
    assert est.history[-1, "non_finite_batch"] == 3


def test_non_finite_gradient_with_finite_loss_is_caught(monkeypatch):
    X, y = _data()
    nan_on_training_call(monkeypatch, SequenceModel, 2, gradient_only=True)
    est = QLLSTMRegressor(**KW, max_epochs=2)
    initial = params(QLLSTMRegressor(**KW, max_epochs=0).fit(X, y))
    with pytest.raises(DivergenceError, match=r"epoch 1, batch 2 \(loss [0-9.]+\).*start of training"):
        est.fit(X, y)
    assert_same(params(est), initial)


def test_overflowing_target_raises_with_the_initial_weights():
    X, y = _data()
    y = y.astype(np.float32)
    y[5] = 3e19  # finite in float32, but its squared error overflows to inf
    raw = dict(KW, normalize_y=False)  # standardised, the outlier would be scaled into range
    initial = params(QLLSTMRegressor(**raw, max_epochs=0).fit(X, y))
    est = QLLSTMRegressor(**raw, max_epochs=2)
    with pytest.raises(DivergenceError, match=r"epoch 1, batch \d \(loss inf\)"):
        est.fit(X, y)
    assert_same(params(est), initial)


def test_restore_stops_with_a_warning_and_a_usable_model(monkeypatch):
    X, y = _data()
    labels = y > np.median(y)
    one_epoch = QLLSTMClassifier(**KW, max_epochs=1).fit(X, labels)
    nan_on_training_call(monkeypatch, SequenceModel, 6)  # epoch 2, batch 2
    with pytest.warns(UserWarning, match=r"epoch 2, batch 2.*stopped training with the weights of epoch 1"):
        est = QLLSTMClassifier(**KW, max_epochs=4, on_nan="restore").fit(X, labels)
    assert_same(params(est), params(one_epoch))
    proba = est.predict_proba(X)
    assert np.isfinite(proba).all() and np.array_equal(proba, one_epoch.predict_proba(X))
    assert len(est.history) == 2 and est.history[-1, "non_finite_batch"] == 2


def test_skip_batch_skips_exactly_that_step(monkeypatch):
    X, y = _data()
    nan_on_training_call(monkeypatch, SequenceModel, 7)  # epoch 2, batch 3
    est = QLLSTMRegressor(**KW, max_epochs=3, on_nan="skip_batch").fit(X, y)
    assert est.history[:, "skipped_batches"] == [0, 1, 0]
    for p in est.module_.parameters():
        assert torch.isfinite(p).all()
        assert int(est.optimizer_.state[p]["step"]) == 3 * 4 - 1  # Adam took every step but the skipped one
    assert np.isfinite(est.predict(X)).all()


def test_forecaster_guard_raise_and_restore(monkeypatch):
    t = np.arange(300.0)
    y = np.sin(t / 5) + 0.01 * t
    kw = dict(lookback=24, horizon=6, segment_length=6, hidden_size=8, max_epochs=3, batch_size=64,
              validation_fraction=0.0, random_state=0, verbose=0)
    with pytest.raises(DivergenceError, match=r"epoch \d, batch \d"):  # a learning rate that blows up
        QLLSTMForecaster(**kw, lr=1e30).fit(y)
    one_epoch = QLLSTMForecaster(**{**kw, "max_epochs": 1}).fit(y)
    nan_on_training_call(monkeypatch, SegRNN, 6)  # 5 batches per epoch: epoch 2, batch 1
    with pytest.warns(UserWarning, match="epoch 2, batch 1"):
        est = QLLSTMForecaster(**kw, on_nan="restore").fit(y)
    assert_same(params(est), params(one_epoch))
    assert est.predict().equals(one_epoch.predict())


@pytest.mark.parametrize("make", [lambda v: QLLSTMRegressor(on_nan=v), lambda v: QLLSTMForecaster(on_nan=v)])
def test_on_nan_is_validated(make):
    X, y = _data()
    with pytest.raises(ValueError, match=r"on_nan: expected one of \['raise', 'restore', 'skip_batch'\], got 'ignore'"):
        est = make("ignore")
        est.fit(X, y) if isinstance(est, QLLSTMRegressor) else est.fit(np.arange(200.0))


def test_guard_also_runs_under_accelerate(monkeypatch):
    accelerate = pytest.importorskip("accelerate", reason="the Accelerate estimators need the accelerate package")
    from qlts.estimators.accelerated import AcceleratedQLLSTMRegressor

    X, y = _data()
    nan_on_training_call(monkeypatch, SequenceModel, 3)  # Accelerate trains with its own train_step_single
    est = AcceleratedQLLSTMRegressor(accelerator=accelerate.Accelerator(cpu=True), **KW, max_epochs=2, verbose=0)
    with pytest.raises(DivergenceError, match=r"epoch 1, batch 3"):
        est.fit(X, y)

"""Checkpoint and resume (qlts.estimators._callbacks): a fit killed with SIGKILL mid-epoch and
rerun with the same arguments ends bit for bit where an uninterrupted run ends."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from _kill_resume import MAX_EPOCHS, checkpoint, trial
from qlts import QLLSTMClassifier, QLLSTMForecaster, QLLSTMRegressor


def _checkpoint_epoch(ckpt_dir):
    return checkpoint(str(ckpt_dir))[0]


# The forecaster's and the regressor's resume are also proved in-process below.
@pytest.mark.parametrize("kind", ["classifier", pytest.param("forecaster", marks=pytest.mark.slow),
                                  pytest.param("regressor", marks=pytest.mark.slow)])
def test_sigkill_mid_epoch_then_rerun_is_bit_identical(tmp_path, kind):
    # killed halfway through epoch 3 (training steps per epoch of each child fit, see _kill_resume),
    # with epoch 2's checkpoint on disk, however fast the machine
    steps_per_epoch = {"classifier": 11, "regressor": 12, "forecaster": 32}[kind]
    result = trial(str(tmp_path), kind, step=2 * steps_per_epoch + steps_per_epoch // 2)
    assert result["checkpoint_epoch"] == 2 < MAX_EPOCHS and not result["finished_before_kill"]
    assert result["temp_files_left"] == 0  # the kill left no half-written checkpoint
    assert result["resumed_from_checkpoint"]
    assert result["weights_equal"] and result["predictions_equal"]


def _data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(48, 10, 2)).astype("float32")
    return X, X[:, -3:, 0].sum(1)


# Early stopping matters here: on noise targets the validation loss is best at epoch 1 (for seeds 0-2),
# so an uninterrupted fit stops after epoch 4 and keeps epoch 1's weights; a resume that forgot that
# state would train on. The batches are shuffled each epoch, so the resumed epoch must draw the same order.
REG = dict(hidden_size=8, max_epochs=6, batch_size=16, lr=0.02, random_state=0, early_stopping=True, patience=3,
           validation_fraction=0.25)


class Crash(Exception):
    pass


def crash_at_step(monkeypatch, cls, step):
    """Make the ``step``-th optimizer step of ``cls`` raise, as a crash mid-epoch would."""
    original, count = cls.train_step, [0]

    def train_step(self, batch, **kwargs):
        count[0] += 1
        if count[0] == step:
            raise Crash
        return original(self, batch, **kwargs)

    monkeypatch.setattr(cls, "train_step", train_step)


def crash_then_resume(monkeypatch, tmp_path, params, X, y, step):
    """Fit uninterrupted; fit again with a checkpoint directory, crashing at optimizer step ``step``
    (in epoch 3); fit a third time to resume. Checks that the resumed fit ends bit for bit where
    the uninterrupted one ended, and returns both."""
    straight = QLLSTMRegressor(**params).fit(X, y)
    with monkeypatch.context() as m:
        crash_at_step(m, QLLSTMRegressor, step)
        with pytest.raises(Crash):
            QLLSTMRegressor(**params, checkpoint_dir=tmp_path).fit(X, y)
    assert _checkpoint_epoch(tmp_path) == 2
    resumed = QLLSTMRegressor(**params, checkpoint_dir=tmp_path).fit(X, y)
    for a, b in zip(straight.module_.parameters(), resumed.module_.parameters()):
        assert torch.equal(a, b)
    assert np.array_equal(straight.predict(X), resumed.predict(X))
    return straight, resumed


def test_regressor_resume_after_crash_with_early_stopping(tmp_path, monkeypatch):
    X, _ = _data()
    y = np.random.default_rng(1).normal(size=len(X))  # noise: nothing to learn, so early stopping ends the fit
    # 3 batches per epoch: step 7 is the middle of epoch 3
    straight, resumed = crash_then_resume(monkeypatch, tmp_path, REG, X, y, step=7)
    assert len(straight.history) == 4  # stopped early (see REG)
    assert resumed.history[:, "valid_loss"] == straight.history[:, "valid_loss"]
    assert [f for f in os.listdir(tmp_path) if not f.endswith(".ckpt")] == []


def test_resume_with_length_bucketed_batches(tmp_path, monkeypatch):
    # the bucketed batches are drawn from the estimator's RNG stream, which the checkpoint carries
    rng = np.random.default_rng(2)
    X = [rng.normal(size=(int(T), 2)).astype("float32") for T in rng.integers(2, 20, size=48)]
    y = np.array([x[:, 0].sum() for x in X])
    params = dict(hidden_size=8, max_epochs=4, batch_size=8, lr=0.02, random_state=0, bucket_by_length=True)
    crash_then_resume(monkeypatch, tmp_path, params, X, y, step=15)  # 6 batches per epoch: mid epoch 3


def test_finished_fit_reruns_without_training(tmp_path, monkeypatch):
    X, y = _data()
    first = QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).fit(X, y)
    assert checkpoint(str(tmp_path))[1]["finished"]
    crash_at_step(monkeypatch, QLLSTMRegressor, 1)  # any training step would raise
    again = QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).fit(X, y)
    assert np.array_equal(first.predict(X), again.predict(X))
    assert len(again.history) == len(first.history)


def test_forecaster_resume_after_crash(tmp_path, monkeypatch):
    t = np.arange(400.0)
    y = pd.Series(np.sin(t / 6) + 0.002 * t, index=pd.RangeIndex(0, 800, 2))
    kw = dict(lookback=24, horizon=6, segment_length=6, hidden_size=8, max_epochs=3, batch_size=32, lr=1e-3,
              lr_decay=0.8, validation_fraction=0.0, random_state=0, verbose=0)  # dropout 0.5 by default
    straight = QLLSTMForecaster(**kw).fit(y)
    net_cls = type(straight.net_)
    with monkeypatch.context() as m:
        crash_at_step(m, net_cls, 15)  # 12 batches per epoch: epoch 2
        with pytest.raises(Crash):
            QLLSTMForecaster(**kw, checkpoint_dir=tmp_path).fit(y)
    assert _checkpoint_epoch(tmp_path) == 1
    resumed = QLLSTMForecaster(**kw, checkpoint_dir=tmp_path).fit(y)
    for a, b in zip(straight.module_.parameters(), resumed.module_.parameters()):
        assert torch.equal(a, b)
    assert straight.predict().equals(resumed.predict())
    lr = dict(resumed.net_.callbacks_)["lr_decay"].lr_scheduler_.get_last_lr()
    assert lr == dict(straight.net_.callbacks_)["lr_decay"].lr_scheduler_.get_last_lr()


def test_other_fits_get_their_own_checkpoint_and_warn_about_interrupted_ones(tmp_path, monkeypatch):
    X, y = _data()
    with monkeypatch.context() as m:
        crash_at_step(m, QLLSTMRegressor, 5)  # an interrupted fit, in epoch 2
        with pytest.raises(Crash):
            QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).fit(X, y)
    (interrupted,) = os.listdir(tmp_path)
    before = (tmp_path / interrupted).read_bytes()
    for changed in ({"hidden_size": 9}, {"y": y + 1}):  # other hyper-parameters, other data
        params = {**REG, **{k: v for k, v in changed.items() if k != "y"}}
        with pytest.warns(UserWarning, match=f"holds unfinished checkpoints of other fits \\({interrupted}\\).*"
                                             "starting fresh"):
            QLLSTMRegressor(**params, checkpoint_dir=tmp_path).fit(X, changed.get("y", y))
    assert len(os.listdir(tmp_path)) == 3
    assert (tmp_path / interrupted).read_bytes() == before  # never overwritten
    os.unlink(tmp_path / interrupted)
    with warnings.catch_warnings():  # finished checkpoints of other fits (a grid search) are no reason to warn
        warnings.simplefilter("error")
        QLLSTMRegressor(**{**REG, "lr": 0.01}, checkpoint_dir=tmp_path).fit(X, y)


def test_checkpoint_of_another_fit_under_this_name_is_refused(tmp_path):
    X, y = _data()
    QLLSTMRegressor(**REG, checkpoint_dir=tmp_path / "a").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        QLLSTMRegressor(**REG, checkpoint_dir=tmp_path / "b").fit(X, y + 1)
    (a,), (b,) = os.listdir(tmp_path / "a"), os.listdir(tmp_path / "b")
    os.replace(tmp_path / "b" / b, tmp_path / "a" / a)  # a file renamed by hand
    with pytest.raises(ValueError, match="expected a checkpoint of this fit"):
        QLLSTMRegressor(**REG, checkpoint_dir=tmp_path / "a").fit(X, y)


def test_checkpoint_dir_is_a_hyper_parameter(tmp_path):
    est = QLLSTMClassifier(checkpoint_dir=str(tmp_path), on_nan="skip_batch")
    twin = clone(est)
    assert twin.get_params()["checkpoint_dir"] == str(tmp_path)
    assert twin.get_params()["on_nan"] == "skip_batch"
    assert QLLSTMForecaster(checkpoint_dir=tmp_path).get_params()["checkpoint_dir"] == tmp_path


def test_partial_fit_writes_no_checkpoint(tmp_path):
    X, y = _data()
    QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).partial_fit(X, y)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("more", ["partial_fit", "warm_start"])
def test_training_after_a_checkpointed_fit_leaves_its_checkpoint_alone(tmp_path, more):
    """Bug: the guard kept the fit's checkpoint path, so a later partial_fit (or warm-start fit)
    went on writing to it, and a fresh fit with the same arguments then returned the longer-trained
    model instead of training its own epochs."""
    X, y = _data()
    params = {**REG, "early_stopping": False, "max_epochs": 2}
    first = QLLSTMRegressor(**params, checkpoint_dir=tmp_path).fit(X, y)
    (name,) = os.listdir(tmp_path)
    before = (tmp_path / name).read_bytes()
    if more == "partial_fit":
        first.partial_fit(X, y)
    else:
        first.set_params(warm_start=True).fit(X, y)
    assert len(first.history) == 4
    assert os.listdir(tmp_path) == [name] and (tmp_path / name).read_bytes() == before
    again = QLLSTMRegressor(**params, checkpoint_dir=tmp_path).fit(X, y)
    assert len(again.history) == 2

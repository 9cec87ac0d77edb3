"""Checkpoint and resume (qlts.estimators._callbacks): a fit killed with SIGKILL mid-epoch and
rerun with the same arguments ends bit for bit where an uninterrupted run ends."""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from qlts import QLLSTMClassifier, QLLSTMForecaster, QLLSTMRegressor

# The child fits a small model, long enough (about 0.2-0.5 s per epoch) to be killed mid-epoch.
CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np, pandas as pd, torch
    from qlts import QLLSTMClassifier, QLLSTMForecaster
    kind, ckpt_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(0)
    t = np.arange(1000.0)
    X = rng.normal(size=(256, 40, 3)).astype("float32")
    series = pd.DataFrame({"a": np.sin(t / 9) + rng.normal(0, .1, t.size), "b": np.cos(t / 5)},
                          index=pd.date_range("2021-01-01", periods=t.size, freq="h"))

    def fit(checkpoint_dir, out):
        if kind == "classifier":
            est = QLLSTMClassifier(hidden_size=8, max_epochs=5, batch_size=16, dropout=0.2, num_layers=2,
                                   early_stopping=True, patience=3, random_state=0,
                                   checkpoint_dir=checkpoint_dir).fit(X, (X[:, :, 0].sum(1) > 0).astype(int))
            pred = est.predict_proba(X)
        else:
            est = QLLSTMForecaster(lookback=48, horizon=12, segment_length=12, hidden_size=8, max_epochs=5,
                                   batch_size=16, lr=1e-3, lr_decay=0.9, patience=3, random_state=0, verbose=0,
                                   checkpoint_dir=checkpoint_dir).fit(series)
            pred = est.predict().to_numpy()
        est.save(out + ".qlts")
        np.save(out + ".npy", pred)
        with open(out + ".json", "w") as fh:
            json.dump([row["dur"] for row in est.history_], fh)

    fit(ckpt_dir, out)
    if len(sys.argv) > 4:  # then an uninterrupted run without checkpoints, in the same process
        fit(None, sys.argv[4])
""")


def _checkpoint_epoch(ckpt_dir):
    files = glob.glob(os.path.join(ckpt_dir, "*.ckpt"))
    if not files:
        return 0, None
    payload = torch.load(files[0], weights_only=True)  # atomic writes: never a partial file
    return payload["epoch"], payload


def run_child(script, kind, ckpt_dir, out, straight_out):
    proc = subprocess.run([sys.executable, script, kind, ckpt_dir, out, straight_out], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def kill_mid_epoch(script, kind, ckpt_dir, out, fraction=0.5):
    """Start the child, wait for the checkpoints of epochs 1 and 2, SIGKILL it ``fraction`` of an
    epoch later; returns the checkpoint payload that survived the kill."""
    proc = subprocess.Popen([sys.executable, script, kind, ckpt_dir, out], stderr=subprocess.PIPE)
    try:
        seen, deadline = {}, time.monotonic() + 240
        while len(seen) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            epoch = _checkpoint_epoch(ckpt_dir)[0]
            if epoch and epoch not in seen:
                seen[epoch] = time.monotonic()
            time.sleep(0.005)
        (e1, t1), (e2, t2) = sorted(seen.items())
        time.sleep(fraction * (t2 - t1) / (e2 - e1))
        assert proc.poll() is None, "the fit ended before it could be killed: make it longer"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return _checkpoint_epoch(ckpt_dir)[1]


# The forecaster's resume is also proved in-process below (test_forecaster_resume_after_crash).
@pytest.mark.parametrize("kind", ["classifier", pytest.param("forecaster", marks=pytest.mark.slow)])
def test_sigkill_mid_epoch_then_rerun_is_bit_identical(tmp_path, kind):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ckpt = str(tmp_path / "ckpt")
    survived = kill_mid_epoch(str(script), kind, ckpt, str(tmp_path / "killed"))
    assert 2 <= survived["epoch"] < 5 and not survived["finished"]
    assert [f for f in os.listdir(ckpt) if not f.endswith(".ckpt")] == []  # no temp file left by the kill

    run_child(str(script), kind, ckpt, str(tmp_path / "resumed"), str(tmp_path / "straight"))

    cls = QLLSTMClassifier if kind == "classifier" else QLLSTMForecaster
    resumed, straight = cls.load(tmp_path / "resumed.qlts"), cls.load(tmp_path / "straight.qlts")
    named = dict(straight.module_.named_parameters())
    for name, p in resumed.module_.named_parameters():
        assert torch.equal(p, named[name]), name
    assert np.array_equal(np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "straight.npy"))
    # The resumed run restored the epochs before the kill (their recorded durations are the killed run's).
    k = survived["epoch"]
    restored = json.loads((tmp_path / "resumed.json").read_text())[:k]
    assert restored == [row["dur"] for row in json.loads(survived["history"])]


def _data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(48, 10, 2)).astype("float32")
    return X, X[:, -3:, 0].sum(1)


REG = dict(hidden_size=8, max_epochs=4, batch_size=16, random_state=0, early_stopping=True, patience=2,
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


def test_regressor_resume_after_crash_with_early_stopping(tmp_path, monkeypatch):
    X, y = _data()
    straight = QLLSTMRegressor(**REG).fit(X, y)
    with monkeypatch.context() as m:
        crash_at_step(m, QLLSTMRegressor, 7)  # 3 batches per epoch: the middle of epoch 3
        with pytest.raises(Crash):
            QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).fit(X, y)
    assert _checkpoint_epoch(tmp_path)[0] == 2
    resumed = QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).fit(X, y)
    for a, b in zip(straight.module_.parameters(), resumed.module_.parameters()):
        assert torch.equal(a, b)
    assert np.array_equal(straight.predict(X), resumed.predict(X))
    assert resumed.history[:, "valid_loss"] == straight.history[:, "valid_loss"]
    assert [f for f in os.listdir(tmp_path) if not f.endswith(".ckpt")] == []


def test_finished_fit_reruns_without_training(tmp_path, monkeypatch):
    X, y = _data()
    first = QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).fit(X, y)
    _, payload = _checkpoint_epoch(tmp_path)
    assert payload["finished"]
    crash_at_step(monkeypatch, QLLSTMRegressor, 1)  # any training step would raise
    again = QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).fit(X, y)
    assert np.array_equal(first.predict(X), again.predict(X))
    assert len(again.history) == len(first.history)


def test_forecaster_resume_after_crash(tmp_path, monkeypatch):
    t = np.arange(400.0)
    y = pd.Series(np.sin(t / 6) + 0.002 * t, index=pd.RangeIndex(0, 800, 2))
    kw = dict(lookback=24, horizon=6, segment_length=6, hidden_size=8, max_epochs=3, batch_size=32, lr=1e-3,
              lr_decay=0.8, random_state=0, verbose=0)
    straight = QLLSTMForecaster(**kw).fit(y)
    net_cls = type(straight.net_)
    with monkeypatch.context() as m:
        crash_at_step(m, net_cls, 15)  # 9 batches per epoch: epoch 2
        with pytest.raises(Crash):
            QLLSTMForecaster(**kw, checkpoint_dir=tmp_path).fit(y)
    assert _checkpoint_epoch(tmp_path)[0] == 1
    resumed = QLLSTMForecaster(**kw, checkpoint_dir=tmp_path).fit(y)
    for a, b in zip(straight.module_.parameters(), resumed.module_.parameters()):
        assert torch.equal(a, b)
    assert straight.predict().equals(resumed.predict())
    lr = dict(resumed.net_.callbacks_)["lr_decay"].lr_scheduler_.get_last_lr()
    assert lr == dict(straight.net_.callbacks_)["lr_decay"].lr_scheduler_.get_last_lr()


def test_other_fits_get_their_own_checkpoint_with_a_warning(tmp_path):
    X, y = _data()
    QLLSTMRegressor(**REG, checkpoint_dir=tmp_path).fit(X, y)
    (first,) = os.listdir(tmp_path)
    before = (tmp_path / first).read_bytes()
    for changed in ({"hidden_size": 9}, {"y": y + 1}):  # other hyper-parameters, other data
        params = {**REG, **{k: v for k, v in changed.items() if k != "y"}}
        with pytest.warns(UserWarning, match="holds checkpoints of other fits.*starting fresh"):
            QLLSTMRegressor(**params, checkpoint_dir=tmp_path).fit(X, changed.get("y", y))
    assert len(os.listdir(tmp_path)) == 3
    assert (tmp_path / first).read_bytes() == before  # never overwritten


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

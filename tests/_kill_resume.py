"""One kill/resume trial: a fit with ``checkpoint_dir`` runs in a child process, is killed with
SIGKILL mid-epoch, is rerun to completion, and is compared with an uninterrupted run.

Used by tests/test_reliability_checkpoint.py (one trial per CI run) and by
benchmarks/reliability_resume.py (many trials at random kill times).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import torch

MAX_EPOCHS = 4

# The child fits a small model whose epochs take about 0.1-0.5 s, so a kill lands mid-epoch.
# argv: kind, checkpoint_dir, out prefix [, out prefix of an uninterrupted run in the same process]
CHILD = textwrap.dedent(f"""
    import json, os, sys, time
    import numpy as np, pandas as pd, skorch
    from qlts import QLLSTMClassifier, QLLSTMForecaster, QLLSTMRegressor
    kind, ckpt_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    pause_at = int(os.environ.get("QLTS_TEST_PAUSE_AT_STEP", 0))
    if pause_at:  # stop inside training step pause_at, say so, and wait for the parent's SIGKILL
        train_step, steps = skorch.NeuralNet.train_step, [0]

        def paused_train_step(self, batch, **kwargs):
            steps[0] += 1
            if steps[0] == pause_at:
                open(os.environ["QLTS_TEST_PAUSE_FILE"], "w").close()
                time.sleep(600)
            return train_step(self, batch, **kwargs)

        skorch.NeuralNet.train_step = paused_train_step
    rng = np.random.default_rng(0)
    X = rng.normal(size=(192, 30, 3)).astype("float32")
    t = np.arange(700.0)
    series = pd.DataFrame({{"a": np.sin(t / 9) + rng.normal(0, .1, t.size), "b": np.cos(t / 5)}},
                          index=pd.date_range("2021-01-01", periods=t.size, freq="h"))

    def fit(checkpoint_dir, out):
        common = dict(hidden_size=8, max_epochs={MAX_EPOCHS}, batch_size=16, random_state=0,
                      checkpoint_dir=checkpoint_dir)
        if kind == "classifier":  # dropout, 2 layers, early stopping on a stratified hold-out
            est = QLLSTMClassifier(**common, dropout=0.2, num_layers=2, early_stopping=True, patience=3)
            pred = est.fit(X, (X[:, :, 0].sum(1) > 0).astype(int)).predict_proba(X)
        elif kind == "regressor":  # SGD with momentum, mean pooling, no hold-out
            est = QLLSTMRegressor(**common, optimizer="sgd", optimizer__momentum=0.9, lr=0.02, pooling="mean")
            pred = est.fit(X, X[:, -5:, :2].sum(1)).predict(X)
        else:  # learning-rate decay, early stopping on the series' tail
            est = QLLSTMForecaster(lookback=48, horizon=12, segment_length=12, lr=1e-3, lr_decay=0.9, patience=3,
                                   verbose=0, **common)
            pred = est.fit(series).predict().to_numpy()
        est.save(out + ".qlts")
        np.save(out + ".npy", pred)
        with open(out + ".json", "w") as fh:
            json.dump([row["dur"] for row in est.history_], fh)

    fit(ckpt_dir, out)
    if len(sys.argv) > 4:
        fit(None, sys.argv[4])
""")


def checkpoint(ckpt_dir):
    """(epoch, payload) of the checkpoint in ``ckpt_dir``, or (0, None)."""
    files = glob.glob(os.path.join(ckpt_dir, "*.ckpt"))
    if not files:
        return 0, None
    payload = torch.load(files[0], weights_only=True)  # written atomically: never a partial file
    return payload["epoch"], payload


@contextlib.contextmanager
def _child(script, kind, ckpt_dir, out, env=None):
    """The fit running in a child process; killed and reaped on the way out, whatever happened."""
    proc = subprocess.Popen([sys.executable, script, kind, ckpt_dir, out], stderr=subprocess.PIPE, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def _check_running(proc, deadline, waiting_for):
    """Raise when the child died (with its stderr) or the wait passed ``deadline``."""
    if proc.poll() is not None:
        raise RuntimeError(proc.stderr.read().decode()[-3000:])
    if time.monotonic() > deadline:
        raise TimeoutError(f"waited in vain for {waiting_for}")


def _sigkill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def kill_at_step(script, kind, ckpt_dir, out, step, timeout=240):
    """Start the child, wait until it is inside training step ``step`` (it pauses there and writes a
    marker file), and SIGKILL it: a kill at a known point, whatever the machine's speed. Returns the
    checkpoint that survived."""
    marker = out + ".paused"
    env = dict(os.environ, QLTS_TEST_PAUSE_AT_STEP=str(step), QLTS_TEST_PAUSE_FILE=marker)
    with _child(script, kind, ckpt_dir, out, env) as proc:
        deadline = time.monotonic() + timeout
        while not os.path.exists(marker):
            _check_running(proc, deadline, f"training step {step} ({timeout} s)")
            time.sleep(0.01)
        _sigkill(proc)
    return checkpoint(ckpt_dir)[1]


def kill_mid_epoch(script, kind, ckpt_dir, out, fraction=0.5, timeout=240):
    """Start the child, time the checkpoints of epochs 1 and 2, and SIGKILL it ``fraction`` of an
    epoch after the second. Returns the checkpoint that survived, or None when the fit ended first."""
    with _child(script, kind, ckpt_dir, out) as proc:
        seen, deadline = {}, time.monotonic() + timeout
        while len(seen) < 2:
            _check_running(proc, deadline, f"the checkpoint of epoch 2 ({timeout} s)")
            epoch = checkpoint(ckpt_dir)[0]
            if epoch and epoch not in seen:
                seen[epoch] = time.monotonic()
            time.sleep(0.005)
        (e1, t1), (e2, t2) = sorted(seen.items())
        time.sleep(fraction * (t2 - t1) / (e2 - e1))
        if proc.poll() is not None:
            return None
        _sigkill(proc)
    return checkpoint(ckpt_dir)[1]


def run_child(script, kind, ckpt_dir, out, straight_out):
    """Rerun the fit with the same checkpoint_dir, then an uninterrupted fit, in one child."""
    proc = subprocess.run([sys.executable, script, kind, ckpt_dir, out, straight_out], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])


def trial(workdir, kind, fraction=0.5, step=None):
    """One trial in the empty folder ``workdir``: a dict describing what held, or None when the
    fit ended before the kill. With ``step`` the child is killed inside that training step (see
    :func:`kill_at_step`), else ``fraction`` of an epoch after the second checkpoint."""
    from qlts import QLLSTMClassifier, QLLSTMForecaster, QLLSTMRegressor

    script, ckpt = os.path.join(workdir, "child.py"), os.path.join(workdir, "ckpt")
    with open(script, "w") as fh:
        fh.write(CHILD)
    killed = os.path.join(workdir, "killed")
    if step is None:
        survived = kill_mid_epoch(script, kind, ckpt, killed, fraction)
    else:
        survived = kill_at_step(script, kind, ckpt, killed, step)
    if survived is None:
        return None
    leftovers = [f for f in os.listdir(ckpt) if not f.endswith(".ckpt")]
    run_child(script, kind, ckpt, os.path.join(workdir, "resumed"), os.path.join(workdir, "straight"))
    cls = {"classifier": QLLSTMClassifier, "regressor": QLLSTMRegressor, "forecaster": QLLSTMForecaster}[kind]
    resumed, straight = (cls.load(os.path.join(workdir, f"{name}.qlts")) for name in ("resumed", "straight"))
    named = dict(straight.module_.named_parameters())
    load = lambda name: np.load(os.path.join(workdir, f"{name}.npy"))  # noqa: E731
    with open(os.path.join(workdir, "resumed.json")) as fh:
        durations = json.load(fh)
    k = survived["epoch"]
    return {
        "kind": kind,
        "checkpoint_epoch": k,
        "finished_before_kill": bool(survived["finished"]),
        "temp_files_left": len(leftovers),
        "weights_equal": all(torch.equal(p, named[n]) for n, p in resumed.module_.named_parameters()),
        "predictions_equal": bool(np.array_equal(load("resumed"), load("straight"))),
        # the epochs before the kill were restored, not retrained: their durations are the killed run's
        "resumed_from_checkpoint": durations[:k] == [row["dur"] for row in json.loads(survived["history"])],
    }

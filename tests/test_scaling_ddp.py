"""Multi-process fit: AcceleratedQLLSTMRegressor under `torchrun --nproc_per_node 2` (gloo, CPU,
loopback) trains one model: the loss falls, both ranks end with identical weights, and the saved
model predicts like a single-process fit."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from qlts import QLLSTMRegressor

pytest.importorskip("accelerate", reason="accelerate is the optional 'accelerate' extra (multi-process fit)")

# In-order batches, so both fits see the same rows in every step (shuffled, Accelerate draws its
# own order, shared by the ranks but not the single-process one).
PARAMS = dict(hidden_size=8, max_epochs=5, batch_size=32, lr=1e-2, random_state=0, iterator_train__shuffle=False)


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 12, 3)).astype(np.float32)
    return X, X[:, -3:, 0].sum(1)


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration
    from qlts.estimators.accelerated import AcceleratedQLLSTMRegressor
    sys.path.insert(0, sys.argv[3])
    from test_scaling_ddp import PARAMS, data

    X, y = data()
    # split_batches: each batch of batch_size rows is shared by the ranks, as one process would see it
    acc = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True))
    reg = AcceleratedQLLSTMRegressor(accelerator=acc, **PARAMS).fit(X, y)
    weights = torch.cat([p.detach().flatten() for p in reg.module_.parameters()]).tolist()
    # the default, shuffled batches: Accelerate draws one order for both ranks
    shuffled = AcceleratedQLLSTMRegressor(accelerator=acc, **{**PARAMS, "iterator_train__shuffle": True}).fit(X, y)
    shuffled_weights = torch.cat([p.detach().flatten() for p in shuffled.module_.parameters()]).tolist()
    with open(f"{sys.argv[1]}/rank{acc.process_index}.json", "w") as fh:
        json.dump({"world": acc.num_processes, "loss": reg.history[:, "train_loss"], "weights": weights,
                   "n_pred": len(reg.predict(X)), "shuffled_loss": shuffled.history[:, "train_loss"],
                   "shuffled_weights": shuffled_weights}, fh)
    reg.save(sys.argv[2])
    acc.end_training()  # gloo aborted one rank at exit once without it (pytorch/pytorch#190489)
""")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_fit_matches_single_process(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    model = tmp_path / "model.qlts"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(script), str(tmp_path), str(model), os.path.dirname(__file__)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]  # really two processes, not two single runs
    for r in ranks:
        assert r["loss"][-1] < 0.8 * r["loss"][0]  # each rank's half of every batch: the loss falls
        assert r["shuffled_loss"][-1] < 0.8 * r["shuffled_loss"][0]
        assert r["n_pred"] == 256  # predict gathers every row on every rank
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP keeps the replicas identical, bit for bit
    assert ranks[0]["shuffled_weights"] == ranks[1]["shuffled_weights"]
    assert ranks[0]["shuffled_weights"] != ranks[0]["weights"]  # another batch order: another model

    X, y = data()
    loaded = QLLSTMRegressor.load(model)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = QLLSTMRegressor(**PARAMS).fit(X, y)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(loaded.predict(X), QLLSTMRegressor.load(model).predict(X))
    # Same batches, same initial weights: only the float32 summation order differs (two half-batch
    # mean gradients averaged by the all-reduce vs one full-batch mean), ~1e-7 relative per step.
    # Measured after 40 Adam steps: <1e-6; the tolerance is 1e-4, far below the spread of y (std ~1.7).
    np.testing.assert_allclose(loaded.predict(X), single.predict(X), rtol=0, atol=1e-4)
    assert np.abs(single.predict(X) - QLLSTMRegressor(**{**PARAMS, "max_epochs": 1}).fit(X, y).predict(X)).max() > 1e-2


def test_accelerated_single_process_is_the_plain_estimator(tmp_path, capsys):
    from accelerate import Accelerator

    from qlts.estimators.accelerated import AcceleratedQLLSTMRegressor

    X, y = data()
    params = {**PARAMS, "max_epochs": 2, "iterator_train__shuffle": True}  # one process: the same order as plain
    acc = AcceleratedQLLSTMRegressor(accelerator=Accelerator(cpu=True), **params).fit(X, y)
    plain = QLLSTMRegressor(**params).fit(X, y)
    assert capsys.readouterr().out == ""  # verbose=0 stays silent (skorch's accelerate sink would print)
    np.testing.assert_array_equal(acc.predict(X), plain.predict(X))
    acc.save(tmp_path / "m.qlts")
    np.testing.assert_array_equal(QLLSTMRegressor.load(tmp_path / "m.qlts").predict(X), plain.predict(X))
    with pytest.raises(TypeError, match=r"load the file with the plain estimator \(QLLSTMRegressor.load\)"):
        AcceleratedQLLSTMRegressor.load(tmp_path / "m.qlts")

"""The README's Python blocks run as written, on small stand-ins for the data they name (X, y, texts...),
each after the imports of the blocks above it (a reader goes through them in one session).

Blocks that start a Dask cluster or an Accelerate launch are left to tests/test_scaling_*.py. The
forecasting block runs with its forecaster capped at one small epoch on the last rows of ETTh1: its
calls are the README's, only the fit is shortened."""
import functools
import re

import numpy as np
import pandas as pd
import pytest

import qlts
import qlts.datasets
from conftest import REPO_ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
ELSEWHERE = ("LocalCluster", "Accelerator")  # tested in test_scaling_dask.py / test_scaling_ddp.py
RUN = [i for i, block in enumerate(BLOCKS, 1) if not any(word in block for word in ELSEWHERE)]


def names():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 12, 2)).astype("float32")
    index = pd.date_range("2024-01-01", periods=500, freq="h")
    return dict(X=X, y=(X[:, :, 0].mean(1) > 0).astype(int), X_new=X[:5],
                texts=["a good fun film", "a bad dull film", "great fun", "awful and dull"] * 6,
                labels=[1, 0, 1, 0] * 6,
                df=pd.DataFrame(rng.standard_normal((500, 3)), columns=["a", "b", "OT"], index=index))


def test_the_readme_has_the_blocks_this_file_runs():
    assert len(BLOCKS) >= 8
    assert sum(any(word in block for word in ELSEWHERE) for block in BLOCKS) == 2


@pytest.mark.parametrize("number", RUN)
def test_readme_block_runs(number, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)  # blocks write model.pt, ckpt/ and read stream.npy
    np.save("stream.npy", np.random.default_rng(1).standard_normal((3000, 3)).astype("float32"))
    source = BLOCKS[number - 1]
    if "load_ett(" in source:  # only this block needs the real data
        monkeypatch.setenv("QLTS_DATA", str(request.getfixturevalue("shared_data_dir")))
        ett = qlts.datasets.load_ett
        monkeypatch.setattr(qlts.datasets, "load_ett", lambda name: ett(name).iloc[-600:])
        monkeypatch.setattr(qlts, "QLLSTMForecaster",
                            functools.partial(qlts.QLLSTMForecaster, max_epochs=1, hidden_size=8, verbose=0))
    namespace = names()
    imports = [line for i in RUN if i < number for line in BLOCKS[i - 1].splitlines()
               if line.startswith(("import ", "from "))]
    exec("\n".join(imports), namespace)
    exec(compile(source, f"README.md python block {number}", "exec"), namespace)
    if "search = GridSearchCV(make_pipeline" in source:  # the README builds this search; it must also fit
        namespace["search"].fit(namespace["X"], namespace["X"][:, :, 0].sum(1))
        assert set(namespace["search"].best_params_) == {"qllstmregressor__alpha", "qllstmregressor__cell"}
    if "fc.predict()" in source:
        forecast = namespace["fc"].predict()
        assert forecast.shape == (24, 7) and forecast.index[0] == namespace["y"].index[-1] + pd.Timedelta(hours=1)

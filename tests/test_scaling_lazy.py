"""Larger than memory: LazyWindows over a memory-mapped .npy (and Parquet) gives exactly the
windows of make_windows, and training from a 2 GB stream keeps the process under 1 GB RSS."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from qlts import QLLSTMRegressor
from qlts.preprocessing import LazyWindows, ParquetRows, _lazy, make_windows


@pytest.fixture()
def stream(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3000, 4)).astype(np.float32)
    data[100, 2] = np.nan  # a NaN in an input-only column
    data[1500:1510, 0] = np.nan  # a gap in a target column
    path = tmp_path / "stream.npy"
    np.save(path, data)
    return data, path


def _all(ds):
    X, y = zip(*ds.__getitems__(np.arange(len(ds))))
    return np.stack(X), np.stack(y)


@pytest.mark.parametrize("options", [
    {},
    {"stride": 3, "target": [1], "target_history": False},
    {"target": [0, 3], "normalize": "last"},
    {"stride": 2, "target": 2, "past_covariates": [0]},
])
@pytest.mark.parametrize("chunk_bytes", [None, 512])
def test_lazy_windows_equal_make_windows(stream, options, chunk_bytes, monkeypatch):
    if chunk_bytes:  # scan the stream in chunks of 32 rows: NaN rows and windows cross chunk ends
        monkeypatch.setattr(_lazy, "CHUNK_BYTES", chunk_bytes)
    data, path = stream
    expected = make_windows(data, 24, 6, **options)
    ds = LazyWindows(path, 24, 6, **options)
    X, y = _all(ds)
    assert len(ds) == len(expected.X) < (len(data) - 30) // options.get("stride", 1) + 1  # some were dropped
    np.testing.assert_array_equal(X, expected.X)
    np.testing.assert_array_equal(y, expected.y.reshape(len(y), -1))
    # single items and negative indices agree with the batch
    x0, y0 = ds[len(ds) - 1]
    np.testing.assert_array_equal(x0, expected.X[-1])
    np.testing.assert_array_equal(y0, expected.y[-1].ravel())


def test_lazy_windows_errors(stream):
    data, path = stream
    with pytest.raises(ValueError, match=r"got NaN at row 100, column 2"):
        make_windows(data, 24, 6, nan_policy="raise")
    with pytest.raises(ValueError, match=r"got NaN at row 100, column 2"):  # the same message
        LazyWindows(path, 24, 6, nan_policy="raise")
    with pytest.raises(ValueError, match=r"nan_policy: expected one of \['drop', 'raise'\].*got 'mask'"):
        LazyWindows(path, 24, 6, nan_policy="mask")
    with pytest.raises(ValueError, match="lookback: expected"):
        LazyWindows(path, 0, 6)
    with pytest.raises(ValueError, match="target: column 9 is not in data"):
        LazyWindows(path, 24, 6, target=9)
    with pytest.raises(ValueError, match=r"expected at least lookback \+ horizon = 30 rows, got 20"):
        LazyWindows(data[:20], 24, 6)
    with pytest.raises(ValueError, match=r"data: expected a path to a .npy or .parquet file, got '.*\.csv'"):
        LazyWindows(str(path).replace(".npy", ".csv"), 24, 6)
    with pytest.raises(TypeError, match="data: expected a 2-D numpy array"):
        LazyWindows(data[:, 0], 24, 6)
    with pytest.raises(TypeError, match="past_covariates: expected column positions of data for lazy windows"):
        LazyWindows(path, 24, 6, past_covariates=np.zeros((len(data), 2)))
    ds = LazyWindows(path, 24, 6)
    with pytest.raises(IndexError, match="index: expected values in"):
        ds[len(ds)]


def test_parquet_rows_match_npy(stream, tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow is the optional 'parquet' extra")
    import pyarrow.parquet as pq

    data, path = stream
    table = pa.table({f"c{j}": data[:, j] for j in range(data.shape[1])})
    pq.write_table(table, tmp_path / "stream.parquet", row_group_size=256)  # windows cross row groups
    rows = ParquetRows(tmp_path / "stream.parquet")
    assert rows.shape == data.shape and rows.columns == ["c0", "c1", "c2", "c3"]
    np.testing.assert_array_equal(rows[250:270], data[250:270])
    expected = make_windows(data, 24, 6, stride=2, target=[0])
    X, y = _all(LazyWindows(tmp_path / "stream.parquet", 24, 6, stride=2, target=[0]))
    np.testing.assert_array_equal(X, expected.X)
    np.testing.assert_array_equal(y, expected.y.reshape(len(y), -1))
    with pytest.raises(ValueError, match=r"columns: expected columns of .* got unknown \['nope'\]"):
        ParquetRows(tmp_path / "stream.parquet", columns=["nope"])


def test_regressor_fits_lazy_windows_like_the_arrays(stream):
    data, path = stream
    ds = LazyWindows(path, 24, 6, target=[0])
    w = make_windows(data, 24, 6, target=[0])
    params = dict(hidden_size=8, max_epochs=2, batch_size=64, random_state=0)
    # a Dataset is read in order, and its targets used as given (not normalised), by default
    lazy = QLLSTMRegressor(**params).fit(ds, None)
    in_order = dict(params, iterator_train__shuffle=False, normalize_y=False)
    eager = QLLSTMRegressor(**in_order).fit(w.X, w.y.reshape(len(w.y), -1))
    assert lazy.n_features_in_ == 4 and lazy.n_outputs_ == 6
    # the same batches in the same order: the same model
    np.testing.assert_array_equal(lazy.predict(w.X[:50]), eager.predict(w.X[:50]))
    # shuffled (the arrays' default), both draw the same order from random_state
    shuffled = QLLSTMRegressor(**params, iterator_train__shuffle=True).fit(ds, None)
    eager_default = QLLSTMRegressor(**params, normalize_y=False).fit(w.X, w.y.reshape(len(w.y), -1))
    np.testing.assert_array_equal(shuffled.predict(w.X[:50]), eager_default.predict(w.X[:50]))
    assert lazy.predict(ds).shape == (len(ds), 6)
    with pytest.raises(ValueError, match="y: expected None when X is a Dataset"):
        QLLSTMRegressor(**params).fit(ds, w.y)
    bad = torch.utils.data.TensorDataset(torch.zeros(5, 3), torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"expected Dataset items \(x, y\) with x of shape \(T, F\)"):
        QLLSTMRegressor(**params).fit(bad, None)
    from qlts import QLLSTMClassifier
    with pytest.raises(TypeError, match="QLLSTMClassifier expects arrays .* got a torch Dataset"):
        QLLSTMClassifier(**params).fit(ds, None)


TRAIN = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from qlts import QLLSTMRegressor
    from qlts.preprocessing import LazyWindows, make_windows

    def peak_kb():  # this process's own peak RSS: ru_maxrss would carry over the parent's across exec
        with open("/proc/self/status") as fh:
            return int(next(line for line in fh if line.startswith("VmHWM:")).split()[1])

    torch.set_num_threads(1)
    path, stride = sys.argv[1], int(sys.argv[2])
    baseline = peak_kb()
    ds = LazyWindows(path, 24, 4, stride=stride, target=[0])
    reg = QLLSTMRegressor(hidden_size=8, max_epochs=1, batch_size=64, lr=1e-2, random_state=0, verbose=0)
    reg.fit(ds, None)
    mm = np.load(path, mmap_mode="r")
    checks = []
    for i in (0, len(ds) // 2, len(ds) - 1):  # a lazy window equals make_windows on its slice
        s = int(ds.window_starts([i])[0])
        w = make_windows(np.asarray(mm[s:s + 28]), 24, 4, target=[0])
        checks.append(bool(np.array_equal(ds[i][0], w.X[0])))
    print(json.dumps({"n": len(ds), "bad": len(ds._bad), "loss": reg.history[:, "train_loss"],
                      "peak_kb": peak_kb(), "baseline_kb": baseline,
                      "checks": checks}))
""")


def _write_stream(path, n_rows, n_cols, nan_cells):
    """A float32 (n_rows, n_cols) .npy written block by block (this process never holds it)."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (n_rows, n_cols)}
    rng = np.random.default_rng(1)
    block_rows = 2**20
    block = rng.normal(size=(block_rows, n_cols)).astype(np.float32)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for start in range(0, n_rows, block_rows):
            part = block[: min(block_rows, n_rows - start)] + np.float32(start % 7)
            for r, c in nan_cells:
                if start <= r < start + len(part):
                    part[r - start, c] = np.nan
            fh.write(part.tobytes())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak RSS from /proc/self/status (Linux)")
@pytest.mark.parametrize("gigabytes", [2])
def test_train_from_2gb_memmap_under_1gb_rss(tmp_path, gigabytes):
    n_cols = 8
    n_rows = gigabytes * 2**30 // (4 * n_cols)
    free = shutil.disk_usage(tmp_path).free
    if free < gigabytes * 2**30 * 1.5:
        pytest.skip(f"needs {gigabytes * 1.5:.0f} GB free in {tmp_path} for the {gigabytes} GB stream, has "
                    f"{free / 2**30:.1f} GB")
    path = tmp_path / "big.npy"
    stride = n_rows // 12_800  # about 200 batches of 64 windows, spread over the whole file
    n_total = (n_rows - 28) // stride + 1
    # NaN in the inputs of the first and the middle window, in the target (column 0) of the last
    # one, and in a non-target column of a target row, which make_windows keeps
    nan_cells = [(5, 3), (n_total // 2 * stride + 13, 5), ((n_total - 1) * stride + 26, 0), (7 * stride + 26, 4)]
    try:
        _write_stream(path, n_rows, n_cols, nan_cells)
        assert path.stat().st_size > gigabytes * 2**30
        script = tmp_path / "train.py"
        script.write_text(TRAIN)
        out = subprocess.run([sys.executable, str(script), str(path), str(stride)], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        path.unlink(missing_ok=True)
    assert result["bad"] == 3  # the windows make_windows drops were found and dropped
    assert result["n"] == n_total - 3
    assert result["checks"] == [True, True, True]
    assert result["peak_kb"] < 2**20, (f"peak RSS {result['peak_kb'] / 2**10:.0f} MB >= 1 GB (after imports: "
                                       f"{result['baseline_kb'] / 2**10:.0f} MB)")
    assert np.isfinite(result["loss"]).all()


@pytest.mark.slow
def test_dataloader_workers_reopen_the_file(stream):
    """Extra (slow: spawned workers import torch): with DataLoader workers the dataset travels by path
    and each worker memory-maps the file itself; the model is the same as with in-process loading.
    "spawn" is needed: numba's OpenMP layer refuses to run in a forked child."""
    _, path = stream
    ds = LazyWindows(path, 24, 6, target=[0])
    params = dict(hidden_size=8, max_epochs=1, random_state=0)
    inline = QLLSTMRegressor(**params).fit(ds, None)
    workers = QLLSTMRegressor(**params, iterator_train__num_workers=2,
                              iterator_train__multiprocessing_context="spawn").fit(ds, None)
    np.testing.assert_array_equal(inline.predict(ds), workers.predict(ds))

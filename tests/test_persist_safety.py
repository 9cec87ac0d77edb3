"""Safe loading: estimator, forecaster and checkpoint files are read with weights_only=True and
checksummed; a code-running pickle, a truncated or corrupted file, a newer format version or a
file of another kind each fail with a ValueError naming the path and the problem."""
from __future__ import annotations

import builtins
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from qlts import QLLSTMClassifier, QLLSTMForecaster, QLLSTMRegressor
from qlts.estimators import _persist

FORECAST = dict(lookback=24, horizon=6, segment_length=6, hidden_size=8, max_epochs=2, batch_size=64,
                random_state=0, verbose=0)


class WritesMarker:
    """Unpickling this calls open(marker, "w"): it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One saved file of each kind: classifier, forecaster (datetime index, covariates) and a checkpoint."""
    root = tmp_path_factory.mktemp("saved")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8, 2)).astype("float32")
    clf = QLLSTMClassifier(hidden_size=8, max_epochs=2, random_state=0,
                           checkpoint_dir=root / "ckpt").fit(X, X[:, 0, 0] > 0)
    clf.save(root / "clf.qlts")
    t = np.arange(200.0)
    index = pd.date_range("2022-03-01", periods=t.size, freq="h", tz="Europe/Paris")
    y = pd.DataFrame({"load": np.sin(t / 6), "temp": np.cos(t / 9)}, index=index)
    cov = pd.DataFrame({"hour": index.hour.to_numpy(float)}, index=index)
    fc = QLLSTMForecaster(**FORECAST).fit(y, X=cov)
    fc.save(root / "fc.qlts")
    (ckpt,) = (root / "ckpt").iterdir()
    return {"clf": (clf, X, root / "clf.qlts"), "fc": (fc, (y, cov), root / "fc.qlts"), "ckpt": ckpt}


def load_any(kind, path):
    if kind == "clf":
        return QLLSTMClassifier.load(path)
    if kind == "fc":
        return QLLSTMForecaster.load(path)
    return _persist.read_payload(path, "qlts.checkpoint", 1, "checkpoint")


def path_of(saved, kind):
    return saved[kind] if kind == "ckpt" else saved[kind][2]


def test_forecaster_round_trip(saved, tmp_path):
    fc, (y, cov), path = saved["fc"]
    loaded = QLLSTMForecaster.load(path)
    for name, p in loaded.module_.named_parameters():
        assert torch.equal(p, dict(fc.module_.named_parameters())[name])
    expected = fc.predict(X=cov)
    got = loaded.predict(X=cov)
    assert got.equals(expected) and got.index.equals(expected.index) and str(got.index.tz) == "Europe/Paris"
    assert loaded.predict(y=y.iloc[:100], X=cov.iloc[:100]).equals(fc.predict(y=y.iloc[:100], X=cov.iloc[:100]))
    windows = np.random.default_rng(1).normal(size=(3, 24, 3))
    assert np.array_equal(loaded.predict_windows(windows), fc.predict_windows(windows))
    assert loaded.get_params() == fc.get_params()
    assert loaded.history_[:, "train_loss"] == fc.history_[:, "train_loss"]
    assert np.array_equal(loaded.mean_, fc.mean_) and loaded.columns_ == fc.columns_


def test_forecaster_round_trip_quantiles_and_integer_index(tmp_path):
    y = pd.Series(np.sin(np.arange(150.0) / 4), index=pd.RangeIndex(10, 310, 2), name="s")
    fc = QLLSTMForecaster(**FORECAST, quantiles=[0.1, 0.9]).fit(y)
    fc.save(tmp_path / "q.qlts")
    loaded = QLLSTMForecaster.load(tmp_path / "q.qlts")
    assert loaded.predict_quantiles().equals(fc.predict_quantiles())
    assert loaded.predict(horizon=9).equals(fc.predict(horizon=9))  # recursive steps past the horizon
    assert list(loaded.predict().index) == list(range(310, 322, 2))


@pytest.mark.parametrize("kind", ["clf", "fc", "ckpt"])
@pytest.mark.parametrize("container", ["pickle", "torch.save"])
def test_code_running_pickle_is_refused_and_never_runs(tmp_path, kind, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.qlts"
    payload = {"format": "qlts.estimator", "format_version": 1, "estimator": WritesMarker(marker)}
    with open(path, "wb") as fh:
        (pickle.dump if container == "pickle" else torch.save)(payload, fh)
    with pytest.raises(ValueError, match=f"{path}: .*weights-only loading cannot read.*could run code"):
        load_any(kind, path)
    assert not marker.exists()
    with open(path, "rb") as fh:  # the file really runs code when unpickled the unsafe way
        torch.load(fh, weights_only=False) if container == "torch.save" else pickle.load(fh)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["clf", "fc", "ckpt"])
def test_truncated_file_fails_clearly(saved, tmp_path, kind):
    data = path_of(saved, kind).read_bytes()
    for cut in (0, 1, 100, len(data) // 2, len(data) - 200, len(data) - 1):
        path = tmp_path / f"cut{cut}.qlts"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"{path}: expected a qlts .* file.*(corrupted|checksum)"):
            load_any(kind, path)


@pytest.mark.parametrize("kind", ["clf", "fc", "ckpt"])
def test_flipped_bytes_fail_clearly_or_load_identically(saved, tmp_path, kind):
    data = path_of(saved, kind).read_bytes()
    rng = np.random.default_rng(0)
    detected = 0
    for trial in range(25):
        flipped = bytearray(data)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            flipped[pos] ^= int(rng.integers(1, 256))
        path = tmp_path / f"flip{trial}.qlts"
        path.write_bytes(bytes(flipped))
        try:
            loaded = load_any(kind, path)
        except ValueError as exc:
            assert str(path) in str(exc)
            detected += 1
            continue
        # Bytes the format never reads (zip padding, unused header fields): the content is intact.
        if kind == "clf":
            clf, X, _ = saved["clf"]
            assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        elif kind == "fc":
            assert loaded.predict().equals(saved["fc"][0].predict())
    assert detected >= 15  # most flips hit the pickle, the tensors or the checksum


def test_flipped_tensor_byte_is_caught_by_the_checksum(saved, tmp_path):
    _, _, path = saved["clf"]
    payload = torch.load(path, weights_only=True)
    weight = next(iter(payload["state_dict"].values()))
    weight.view(-1)[0] = weight.view(-1)[0] + 1e-3  # what a flipped data byte does: torch.load cannot notice
    torch.save(payload, tmp_path / "tampered.qlts")
    with pytest.raises(ValueError, match="tampered.qlts: .*checksum, got a mismatch: the file is corrupted"):
        QLLSTMClassifier.load(tmp_path / "tampered.qlts")


@pytest.mark.parametrize("kind", ["clf", "fc", "ckpt"])
def test_newer_format_version_is_refused(saved, tmp_path, kind):
    payload = torch.load(path_of(saved, kind), weights_only=True)
    payload["format_version"] += 1
    torch.save(payload, tmp_path / "future.qlts")
    with pytest.raises(ValueError, match=r"future.qlts: expected \w+ file format version 1, got version 2"):
        load_any(kind, tmp_path / "future.qlts")


def test_files_of_another_kind_are_refused(saved, tmp_path):
    clf_path, fc_path, ckpt = saved["clf"][2], saved["fc"][2], saved["ckpt"]
    with pytest.raises(ValueError, match=f"{clf_path}: expected a qlts forecaster file .*got format 'qlts.estimator'"):
        QLLSTMForecaster.load(clf_path)
    with pytest.raises(ValueError, match=f"{fc_path}: expected a qlts estimator file .*got format 'qlts.forecaster'"):
        QLLSTMClassifier.load(fc_path)
    with pytest.raises(ValueError, match="got format 'qlts.checkpoint'"):
        QLLSTMClassifier.load(ckpt)
    with pytest.raises(ValueError, match="expected a saved QLLSTMRegressor, got a QLLSTMClassifier"):
        QLLSTMRegressor.load(clf_path)
    (tmp_path / "notes.txt").write_text("not a model\n")
    with pytest.raises(ValueError, match="notes.txt: expected a qlts forecaster file.*cannot read"):
        QLLSTMForecaster.load(tmp_path / "notes.txt")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="list.pt: expected a qlts estimator file .*got a list without a qlts format"):
        QLLSTMClassifier.load(tmp_path / "list.pt")


def test_missing_checksum_is_corruption_for_new_files(saved, tmp_path):
    payload = torch.load(saved["fc"][2], weights_only=True)
    del payload["checksum"]
    torch.save(payload, tmp_path / "nosum.qlts")
    with pytest.raises(ValueError, match="nosum.qlts: expected a qlts forecaster file with a checksum, got none"):
        QLLSTMForecaster.load(tmp_path / "nosum.qlts")


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        QLLSTMForecaster.load(tmp_path / "absent.qlts")


def test_save_is_atomic_and_needs_a_fitted_forecaster(tmp_path):
    with pytest.raises(Exception, match="not fitted"):
        QLLSTMForecaster(**FORECAST).save(tmp_path / "x.qlts")
    assert os.listdir(tmp_path) == []

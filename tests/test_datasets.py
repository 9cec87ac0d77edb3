"""qlts.datasets: loaders on the shared real data, the lookup order, downloads (faked: no
network is ever touched here), checksums, and the synthetic sensor stream."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qlts.datasets as qd
from qlts.datasets import _store
REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = _store.manifest()["datasets"]


class FakeNetwork:
    """Stands in for ``_store._download``: serves registered payloads, else fails like offline."""

    def __init__(self):
        self.payloads: dict[str, bytes] = {}
        self.calls: list[str] = []

    def __call__(self, url):
        self.calls.append(url)
        if url in self.payloads:
            return self.payloads[url]
        raise urllib.error.URLError("no network in the tests")


@pytest.fixture(autouse=True)
def net(monkeypatch, tmp_path):
    """Every test: no real network, a private empty home (so ~/.cache/qlts is empty), no QLTS_DATA."""
    fake = FakeNetwork()
    monkeypatch.setattr(_store, "_download", fake)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QLTS_DATA", raising=False)
    monkeypatch.delenv("QLTS_OFFLINE", raising=False)
    return fake


@pytest.fixture
def real_data(monkeypatch, shared_data_dir):
    monkeypatch.setenv("QLTS_DATA", str(shared_data_dir))
    return shared_data_dir


def _cache(tmp_path) -> Path:
    return tmp_path / "home" / ".cache" / "qlts"


def _content(root: Path, dataset: str, filename: str) -> bytes:
    return gzip.decompress((root / dataset / filename).read_bytes())


def _url(dataset: str, filename: str) -> str:
    return MANIFEST[dataset]["files"][filename]["download"]["url"]


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- manifest ------------------------------------------------------------------------------

def test_repo_manifest_is_the_package_manifest():
    assert (REPO_ROOT / "datasets" / "manifest.json").read_bytes() == \
        (REPO_ROOT / "qlts" / "datasets" / "manifest.json").read_bytes()


def test_manifest_describes_the_shared_files(shared_data_dir):
    for dataset, info in MANIFEST.items():
        assert (shared_data_dir / dataset / "PROVENANCE.md").is_file()
        for key in ("source_url", "citation", "license", "loader", "description"):
            assert info[key], (dataset, key)
        assert hasattr(qd, info["loader"])
        stored = sorted(p.name for p in (shared_data_dir / dataset).glob("*.gz"))
        assert sorted(info["files"]) == stored
        for filename, entry in info["files"].items():
            data = (shared_data_dir / dataset / filename).read_bytes()
            assert len(data) == entry["size"]
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            assert hashlib.sha256(gzip.decompress(data)).hexdigest() == entry["content_sha256"]
            assert entry["download"]["url"].startswith("https://")
            assert entry["download"]["conversion"] in _store._CONVERSIONS


# --- loaders on the shared data -------------------------------------------------------------

@pytest.mark.parametrize("name, rows, step, last", [
    ("ETTh1", 17420, "1h", "2018-06-26 19:00"),
    ("ETTh2", 17420, "1h", "2018-06-26 19:00"),
    ("ETTm1", 69680, "15min", "2018-06-26 19:45"),
])
def test_load_ett(real_data, name, rows, step, last):
    df = qd.load_ett(name)
    assert df.shape == (rows, 7)
    assert list(df.columns) == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "date"
    assert df.index.freq == pd.Timedelta(step)
    assert df.index[0] == pd.Timestamp("2016-07-01") and df.index[-1] == pd.Timestamp(last)
    assert (df.dtypes == "float64").all() and not df.isna().any().any()
    # spot check against the raw text: first data row of the file
    first = _content(real_data, "ett", f"{name}.csv.gz").split(b"\n")[1].decode().split(",")
    np.testing.assert_array_equal(df.iloc[0].to_numpy(), np.array(first[1:], dtype=float))


def test_load_exchange_rate(real_data):
    df = qd.load_exchange_rate()
    assert df.shape == (7588, 8)
    assert isinstance(df.index, pd.RangeIndex) and df.index.name == "step" and df.index[-1] == 7587
    assert list(df.columns) == [f"rate_{i}" for i in range(8)]
    assert (df.dtypes == "float64").all() and not df.isna().any().any()
    assert df.iloc[0, 0] == 0.7855 and df.iloc[0, 7] == 0.525486
    values = df.to_numpy()
    assert (values[1:] == values[:-1]).all(axis=1).sum() == 182  # documented repeated rows


@pytest.mark.parametrize("ticker, rows", [("AAPL", 8364), ("GE", 14058), ("IBM", 14059),
                                          ("JPM", 12074), ("KO", 12075), ("MSFT", 7983)])
def test_load_stock(real_data, ticker, rows):
    df = qd.load_stock(ticker)
    assert df.shape == (rows, 5)
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "date"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert df.index[-1] == pd.Timestamp("2017-11-10")
    assert (df[["open", "high", "low", "close"]].dtypes == "float64").all() and df["volume"].dtype == "int64"
    assert (df["high"] >= df["low"]).all() and not df.isna().any().any()


def test_load_stock_accepts_lower_case(real_data):
    pd.testing.assert_frame_equal(qd.load_stock("msft"), qd.load_stock("MSFT"))


def test_load_ett_accepts_any_case(real_data):
    pd.testing.assert_frame_equal(qd.load_ett("etth2"), qd.load_ett("ETTh2"))
    with pytest.raises(ValueError, match=r"name: expected one of \['ETTh1', 'ETTh2', 'ETTm1'\], got 'ETTh3'"):
        qd.load_ett("ETTh3")


def test_load_air_quality(real_data):
    df = qd.load_air_quality()
    assert df.shape == (9357, 13)
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "datetime"
    assert df.index.freq == pd.Timedelta("1h")
    assert df.index[0] == pd.Timestamp("2004-03-10 18:00") and df.index[-1] == pd.Timestamp("2005-04-04 14:00")
    assert (df.dtypes == "float64").all()
    assert not (df == -200).any().any()
    nan = df.isna().sum()
    assert nan.sum() == 16701  # every -200 of the source, per PROVENANCE.md
    assert nan["CO(GT)"] == 1683 and nan["NMHC(GT)"] == 8443 and nan["T"] == 366
    # the NaNs sit exactly where the source has -200
    raw = pd.read_csv(io.BytesIO(_content(real_data, "air_quality", "air_quality_clean.csv.gz")))
    np.testing.assert_array_equal(df.isna().to_numpy(), (raw.iloc[:, 1:] == -200).to_numpy())


def test_load_imdb(real_data):
    data = qd.load_imdb()
    assert set(data) == {"train", "test"}
    for df in data.values():
        assert df.shape == (25000, 2) and list(df.columns) == ["text", "label"]
        assert df["label"].dtype == "int64"
        assert df["label"].value_counts().to_dict() == {0: 12500, 1: 12500}
        assert (df["text"].str.len() > 0).all()
        assert df["label"].is_monotonic_increasing  # documented order (label, id)
    # line 12,500 of train is pos/0_9.txt, the dataset's well-known first review
    assert data["train"]["text"][12500].startswith("Bromwell High is a cartoon comedy.")


def test_load_imdb_one_split(real_data):
    data = qd.load_imdb("test")
    assert list(data) == ["test"] and len(data["test"]) == 25000


def test_list_datasets(real_data, monkeypatch, tmp_path):
    assert qd.list_datasets() == sorted(MANIFEST)
    table = qd.list_datasets(details=True)
    assert list(table.index) == sorted(MANIFEST) and table["available"].all()
    monkeypatch.setenv("QLTS_DATA", str(tmp_path / "empty"))
    table = qd.list_datasets(details=True)
    assert not table["available"].any()
    assert table.loc["ett", "missing"] == ["ETTh1.csv.gz", "ETTh2.csv.gz", "ETTm1.csv.gz"]


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("call, argument, given, expected", [
    (lambda: qd.load_ett("ETTh3"), "name", "ETTh3", "ETTm1"),
    (lambda: qd.load_stock("XOM"), "ticker", "XOM", "AAPL"),
    (lambda: qd.load_imdb(splits=("train", "val")), "splits", "val", "test"),
    (lambda: _store.file_entry("weather", "x.csv.gz"), "dataset", "weather", "imdb"),
])
def test_bad_names_are_reported(call, argument, given, expected):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(argument) and repr(given) in message and expected in message


@pytest.mark.parametrize("splits, error", [(None, TypeError), (3, TypeError), ([], ValueError)])
def test_load_imdb_splits_that_are_not_names(splits, error):
    """Bug: splits=None raised "'NoneType' object is not iterable" and splits=[] returned {}."""
    with pytest.raises(error, match=r"^splits: expected "):
        qd.load_imdb(splits)


# --- lookup order, downloads and checksums (fake network) -------------------------------------

def test_qlts_data_comes_before_the_cache(real_data, tmp_path):
    bad = _cache(tmp_path) / "ett" / "ETTh1.csv.gz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the data")
    assert len(qd.load_ett("ETTh1")) == 17420  # the QLTS_DATA copy wins; the cache is not read


def test_cache_is_used_without_qlts_data(shared_data_dir, tmp_path, net):
    cached = _cache(tmp_path) / "stocks" / "KO.csv.gz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes((shared_data_dir / "stocks" / "KO.csv.gz").read_bytes())
    assert len(qd.load_stock("KO")) == 12075 and net.calls == []


@pytest.mark.parametrize("damage", [lambda b: b[:-100], lambda b: _regzip(gzip.decompress(b)[:-1])])
def test_corrupted_local_copy_raises(shared_data_dir, tmp_path, monkeypatch, net, damage):
    root = tmp_path / "data"
    copy = root / "ett" / "ETTh2.csv.gz"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(damage((shared_data_dir / "ett" / "ETTh2.csv.gz").read_bytes()))
    monkeypatch.setenv("QLTS_DATA", str(root))
    with pytest.raises(qd.ChecksumError, match=re.escape(str(copy))):
        qd.load_ett("ETTh2")
    assert net.calls == []  # a bad copy is reported, not silently replaced


def _regzip(content: bytes) -> bytes:
    return gzip.compress(content, mtime=0)


def test_download_fills_the_cache_once(shared_data_dir, tmp_path, net):
    # The ETT source serves the plain CSV; it is gzipped into the cache.
    net.payloads[_url("ett", "ETTh1.csv.gz")] = _content(shared_data_dir, "ett", "ETTh1.csv.gz")
    df = qd.load_ett("ETTh1")
    cached = _cache(tmp_path) / "ett" / "ETTh1.csv.gz"
    assert gzip.decompress(cached.read_bytes()) == _content(shared_data_dir, "ett", "ETTh1.csv.gz")
    assert _all_files(_cache(tmp_path)) == [cached]  # no temp files left over
    assert len(net.calls) == 1
    pd.testing.assert_frame_equal(qd.load_ett("ETTh1"), df)
    assert len(net.calls) == 1  # second load read the cache


def test_download_checksum_mismatch_raises_and_leaves_nothing(shared_data_dir, tmp_path, net):
    content = bytearray(_content(shared_data_dir, "ett", "ETTh1.csv.gz"))
    content[200] = ord("9") if content[200] != ord("9") else ord("8")  # one changed digit
    net.payloads[_url("ett", "ETTh1.csv.gz")] = bytes(content)
    with pytest.raises(qd.ChecksumError, match="expected " + MANIFEST["ett"]["files"]["ETTh1.csv.gz"]["content_sha256"]):
        qd.load_ett("ETTh1")
    assert _all_files(_cache(tmp_path)) == []


def test_download_of_garbage_raises_and_leaves_nothing(tmp_path, net):
    net.payloads[_url("air_quality", "air_quality_clean.csv.gz")] = b"<html>rate limited</html>"
    with pytest.raises(qd.ChecksumError, match="not in the expected format"):
        qd.load_air_quality()
    assert _all_files(_cache(tmp_path)) == []


def test_offline_without_copy_says_where_to_put_the_file(tmp_path, monkeypatch, net):
    monkeypatch.setenv("QLTS_DATA", str(tmp_path / "mydata"))
    with pytest.raises(qd.DatasetNotFoundError) as info:
        qd.load_stock("IBM")
    message = str(info.value)
    assert str(tmp_path / "mydata" / "stocks" / "IBM.csv.gz") in message
    assert str(_cache(tmp_path) / "stocks" / "IBM.csv.gz") in message
    assert "QLTS_DATA" in message and _url("stocks", "IBM.csv.gz") in message
    assert "no network in the tests" in message
    assert net.calls == [_url("stocks", "IBM.csv.gz")]
    assert isinstance(info.value, FileNotFoundError)


def test_offline_message_without_qlts_data(monkeypatch, net):
    monkeypatch.setenv("QLTS_OFFLINE", "1")
    with pytest.raises(qd.DatasetNotFoundError, match=r"\$QLTS_DATA/imdb/train.jsonl.gz\s+\(QLTS_DATA is not set\)"):
        qd.load_imdb("train")
    assert net.calls == []  # QLTS_OFFLINE skips the download attempt


# Each conversion rebuilds the stored file from what the source URL serves; the sources are
# reconstructed here from the shared copies, and the result must pass the real checksum.

def test_download_exchange_rate_stored_as_served(shared_data_dir, tmp_path, net):
    stored = (shared_data_dir / "exchange_rate" / "exchange_rate.txt.gz").read_bytes()
    net.payloads[_url("exchange_rate", "exchange_rate.txt.gz")] = stored
    assert qd.load_exchange_rate().shape == (7588, 8)
    assert (_cache(tmp_path) / "exchange_rate" / "exchange_rate.txt.gz").read_bytes() == stored


def test_download_kaggle_stock_file(shared_data_dir, real_data, monkeypatch, net):
    lines = _content(shared_data_dir, "stocks", "AAPL.csv.gz").decode().rstrip("\n").split("\n")
    kaggle = ["Date,Open,High,Low,Close,Volume,OpenInt"] + [line + ",0" for line in lines[1:]]
    net.payloads[_url("stocks", "AAPL.csv.gz")] = ("\r\n".join(kaggle) + "\r\n").encode()
    expected = qd.load_stock("AAPL")
    monkeypatch.delenv("QLTS_DATA")
    pd.testing.assert_frame_equal(qd.load_stock("AAPL"), expected)


def test_download_air_quality_zip_builds_both_files(shared_data_dir, real_data, monkeypatch, tmp_path, net):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("AirQualityUCI.csv", _content(shared_data_dir, "air_quality", "AirQualityUCI.csv.gz"))
        archive.writestr("AirQualityUCI.xlsx", b"unused")
    net.payloads[_url("air_quality", "air_quality_clean.csv.gz")] = buffer.getvalue()
    expected = qd.load_air_quality()
    monkeypatch.delenv("QLTS_DATA")
    pd.testing.assert_frame_equal(qd.load_air_quality(), expected)
    assert sorted(p.name for p in _all_files(_cache(tmp_path))) == ["AirQualityUCI.csv.gz", "air_quality_clean.csv.gz"]
    assert len(net.calls) == 1  # one download serves both files


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_imdb_conversion_order_and_filtering():
    payload = _tar_gz({
        "aclImdb/train/pos/10_8.txt": "ten\u2028pos".encode(),
        "aclImdb/train/neg/2_1.txt": b"two neg <br />",
        "aclImdb/train/pos/2_9.txt": "caf\u00e9".encode(),
        "aclImdb/train/unsup/0_0.txt": b"unlabelled",
        "aclImdb/test/neg/0_3.txt": b"test only",
        "aclImdb/train/neg/10_4.txt": b"ten neg",
    })
    lines = _store._convert_imdb_jsonl(payload, {"split": "train"}).decode().split("\n")
    rows = [json.loads(line) for line in lines if line]
    assert rows == [{"text": "two neg <br />", "label": 0}, {"text": "ten neg", "label": 0},
                    {"text": "caf\u00e9", "label": 1}, {"text": "ten\u2028pos", "label": 1}]
    assert "caf\u00e9" in lines[2]  # ensure_ascii=False, as the stored files were written


@pytest.mark.slow
def test_download_imdb_archive_rebuilds_both_splits(shared_data_dir, real_data, monkeypatch, tmp_path, net):
    """Extra to the unit test above: an aclImdb tree rebuilt from the shared copies
    converts back to files with the recorded checksums (about 45 s on 2 cores)."""
    members = {}
    for split in ("train", "test"):
        for k, line in enumerate(_content(shared_data_dir, "imdb", f"{split}.jsonl.gz").decode().split("\n")[:-1]):
            row = json.loads(line)
            folder, rating = ("pos", 8) if row["label"] else ("neg", 2)
            members[f"aclImdb/{split}/{folder}/{k % 12500}_{rating}.txt"] = row["text"].encode()
    net.payloads[_url("imdb", "train.jsonl.gz")] = _tar_gz(members)
    expected = qd.load_imdb()
    monkeypatch.delenv("QLTS_DATA")
    got = qd.load_imdb()
    for split in ("train", "test"):
        pd.testing.assert_frame_equal(got[split], expected[split])
    assert len(net.calls) == 1


# --- synthetic sensor stream ------------------------------------------------------------------

def test_sensor_stream_shape_index_and_determinism():
    df = qd.make_sensor_stream(n_steps=1000, n_channels=3, freq="15min", seed=7)
    assert df.shape == (1000, 3) and list(df.columns) == ["sensor_0", "sensor_1", "sensor_2"]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.freq == pd.Timedelta("15min")
    assert (df.dtypes == "float64").all()
    pd.testing.assert_frame_equal(df, qd.make_sensor_stream(n_steps=1000, n_channels=3, freq="15min", seed=7))
    other = qd.make_sensor_stream(n_steps=1000, n_channels=3, freq="15min", seed=8)
    assert not np.allclose(df.fillna(0).to_numpy(), other.fillna(0).to_numpy())


def test_sensor_stream_gaps_are_nan_runs():
    df = qd.make_sensor_stream(n_steps=3000, n_channels=4, seed=1, missing_fraction=0.05)
    frac = df.isna().mean()
    assert ((frac > 0.045) & (frac < 0.055)).all()
    assert df.isna().all(axis=1).any()  # one outage of every channel at once
    runs = df["sensor_0"].isna().astype(int).diff().eq(1).sum()
    assert runs < 0.5 * df["sensor_0"].isna().sum()  # gaps come in runs, not isolated points
    assert not qd.make_sensor_stream(n_steps=500, seed=1, missing_fraction=0).isna().any().any()


def test_sensor_stream_has_learnable_structure():
    df = qd.make_sensor_stream(n_steps=24 * 7 * 12, n_channels=4, freq="h", seed=3, missing_fraction=0)
    change = df.attrs["regime_change"]
    assert df.index[0] + 0.35 * (df.index[-1] - df.index[0]) < change < df.index[-1]
    before = df[df.index < change]
    for column in df:
        x = before[column]
        # daily cycle: the hour-of-day profile explains much of the variance; lag 24 beats lag 12
        profile = x.groupby(x.index.hour).transform("mean")
        assert 1 - ((x - profile) ** 2).mean() / x.var() > 0.4
        assert x.autocorr(24) > 0.4 > x.autocorr(12)
        # weekly pattern: weekends lower, well beyond the noise of a mean over ~700 hours
        resid = x - profile
        assert resid[x.index.day_of_week < 5].mean() - resid[x.index.day_of_week >= 5].mean() > 0.1 * x.std()
    # regime change: the daily-profile-adjusted level jumps at the change for every channel
    window = pd.Timedelta(days=7)
    for column in df:
        x = df[column]
        resid = x - x.groupby(x.index.hour).transform("mean")
        jump = resid[change:change + window].mean() - resid[change - window:change].mean()
        assert abs(jump) > 0.3 * before[column].std()


@pytest.mark.parametrize("kwargs, error, argument", [
    ({"n_steps": 1}, ValueError, "n_steps"),
    ({"n_channels": 2.5}, TypeError, "n_channels"),
    ({"seed": None}, TypeError, "seed"),
    ({"freq": "fortnightly-ish"}, ValueError, "freq"),
    ({"missing_fraction": 0.9}, ValueError, "missing_fraction"),
    ({"start": "notadate"}, ValueError, "start"),  # was pandas' DateParseError "Unknown datetime string format"
])
def test_sensor_stream_bad_input(kwargs, error, argument):
    with pytest.raises(error, match=f"^{argument}: expected"):
        qd.make_sensor_stream(**kwargs)

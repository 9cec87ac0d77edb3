"""Fuzzing the dataset loaders with corrupted copies of the real files (issue #9).

Each example copies one real file from the shared data folder into a temporary
``QLTS_DATA`` tree, corrupts the COPY (truncation, flipped bits, a missing file, random
bytes, trailing garbage, a valid gzip of edited content: wrong columns, dropped rows,
changed values) and calls the loader. The documented outcome for a loader is:

- it returns exactly the data of the intact file (a corruption gzip ignores, such as the
  header's timestamp), or
- it raises ``qlts.datasets.ChecksumError`` (an OSError) whose message starts with the
  path of the bad file and says to delete or replace it, or
- for a missing file, ``qlts.datasets.DatasetNotFoundError`` (a FileNotFoundError) naming
  where to put it.

The content sha256 is checked before anything is parsed, so edited content (wrong
columns, ...) never reaches pandas. Nothing else may escape (no zlib, pandas or JSON
error), and nothing is written to the data folder. The data are never copied into the repo.
"""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from qlts import datasets
from qlts.datasets import ChecksumError, DatasetNotFoundError

from ._fuzz import fuzz_settings

LOADERS = {  # loader, dataset folder, file
    "ett": (lambda: datasets.load_ett("ETTh1"), "ett", "ETTh1.csv.gz"),
    "exchange_rate": (datasets.load_exchange_rate, "exchange_rate", "exchange_rate.txt.gz"),
    "stocks": (lambda: datasets.load_stock("KO"), "stocks", "KO.csv.gz"),
    "air_quality": (datasets.load_air_quality, "air_quality", "air_quality_clean.csv.gz"),
    "imdb": (lambda: datasets.load_imdb("test")["test"], "imdb", "test.jsonl.gz"),
}
_reference = {}  # loader name -> (intact file bytes, the frame it loads)


def _intact(name, data_dir, monkeypatch):
    if name not in _reference:
        loader, folder, filename = LOADERS[name]
        monkeypatch.setenv("QLTS_DATA", str(data_dir))
        _reference[name] = ((data_dir / folder / filename).read_bytes(), loader())
    return _reference[name]


def _edit_content(raw, how):
    """A valid gzip of edited content (the checksum must catch it before parsing)."""
    text = gzip.decompress(raw)
    lines = text.split(b"\n")
    if how == "wrong columns":
        first = lines[0].split(b",")
        lines[0] = b",".join(reversed(first)) if len(first) > 1 else b"x" + lines[0]
    elif how == "dropped rows":
        lines = lines[: max(1, len(lines) // 3)]
    else:  # changed value
        lines[1] = lines[1].replace(b"1", b"7", 1) if b"1" in lines[1] else lines[1] + b"0"
    return gzip.compress(b"\n".join(lines), mtime=0)


@st.composite
def corruptions(draw, raw):
    kind = draw(st.sampled_from(["truncate", "flip bits", "header byte", "missing", "empty", "random bytes",
                                 "trailing garbage", "wrong columns", "dropped rows", "changed value"]))
    if kind == "truncate":
        return kind, raw[: draw(st.integers(0, len(raw) - 1))]
    if kind in ("flip bits", "header byte"):
        data = bytearray(raw)
        top = 12 if kind == "header byte" else len(raw) - 1
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, top))] ^= 1 << draw(st.integers(0, 7))
        return kind, bytes(data)
    if kind == "missing":
        return kind, None
    if kind == "empty":
        return kind, b""
    if kind == "random bytes":
        return kind, draw(st.binary(min_size=1, max_size=64))
    if kind == "trailing garbage":
        return kind, raw + draw(st.binary(min_size=1, max_size=16))
    return kind, _edit_content(raw, kind)


@fuzz_settings(25)
@given(st.data())
def test_loaders_on_corrupted_copies(shared_data_dir, tmp_path, monkeypatch, data):
    name = data.draw(st.sampled_from(sorted(LOADERS)), "loader")
    raw, expected = _intact(name, shared_data_dir, monkeypatch)
    loader, folder, filename = LOADERS[name]
    kind, corrupted = data.draw(corruptions(raw), "corruption")
    root = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh tree per example, removed at the end
    path = root / folder / filename
    path.parent.mkdir(parents=True)
    if corrupted is not None:
        path.write_bytes(corrupted)
    monkeypatch.setenv("QLTS_DATA", str(root))
    monkeypatch.setenv("QLTS_OFFLINE", "1")  # never download in a test
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.cache/qlts copy to fall back on
    try:
        check_outcome(name, kind, loader, path, corrupted, expected)
        assert sorted(os.listdir(root)) == [folder], "the loader wrote into the data folder"
        assert os.listdir(path.parent) == ([] if corrupted is None else [filename]), os.listdir(path.parent)
    finally:
        shutil.rmtree(root)


def check_outcome(name, kind, loader, path, corrupted, expected):
    try:
        got = loader()
    except ChecksumError as exc:
        assert str(exc).startswith(str(path)) and "delete or replace" in str(exc), str(exc)
        event(f"{name}: ChecksumError ({kind})")
    except DatasetNotFoundError as exc:
        assert corrupted is None and str(path) in str(exc), str(exc)
        event(f"{name}: DatasetNotFoundError ({kind})")
    else:
        event(f"{name}: loaded intact data ({kind})")
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_corrupt_deflate_stream_is_a_checksum_error(shared_data_dir, tmp_path, monkeypatch):
    """Bug: a flipped bit inside the deflate data made gzip raise zlib.error, which escaped the
    loader (only OSError/EOFError were turned into ChecksumError)."""
    raw = (shared_data_dir / "exchange_rate" / "exchange_rate.txt.gz").read_bytes()
    for position in range(20, 400):  # find a flip that zlib itself rejects (most give a CRC error)
        data = bytearray(raw)
        data[position] ^= 0xFF
        try:
            gzip.decompress(bytes(data))
        except OSError:
            continue
        except Exception as exc:  # noqa: BLE001 - zlib.error is what we look for
            if type(exc).__name__ == "error":
                break
    else:
        pytest.skip("no byte flip in the first 400 bytes makes zlib raise zlib.error")
    path = tmp_path / "exchange_rate" / "exchange_rate.txt.gz"
    path.parent.mkdir()
    path.write_bytes(bytes(data))
    monkeypatch.setenv("QLTS_DATA", str(tmp_path))
    monkeypatch.setenv("QLTS_OFFLINE", "1")
    with pytest.raises(ChecksumError, match="not a readable gzip file"):
        datasets.load_exchange_rate()
    assert os.listdir(path.parent) == [path.name]

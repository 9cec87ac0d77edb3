"""Finding, verifying and downloading the data files listed in ``manifest.json``.

Every stored file is ``<dataset>/<file>.gz``. A file is looked up in this order:

1. ``$QLTS_DATA/<dataset>/<file>``
2. ``~/.cache/qlts/<dataset>/<file>``
3. a download of the manifest's ``download.url``, converted into the stored file, verified and
   written atomically into the cache (skipped when ``QLTS_OFFLINE=1``).

Local copies are verified too: every read checks the sha256 of the decompressed content
against ``content_sha256``. The loaders decompress the file anyway, so the hash costs a few
tens of milliseconds even for IMDB, and it turns a truncated or edited copy into a clear
error instead of silently different numbers. The content hash (not the hash of the .gz
bytes) is the one checked, because a download is re-compressed here and gzip bytes may
differ between zlib versions while the content cannot.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import re
import tarfile
import urllib.request
import zipfile
import zlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from qlts._validation import check_choice
from qlts.utils import atomic_write

DATA_ENV = "QLTS_DATA"
OFFLINE_ENV = "QLTS_OFFLINE"
DOWNLOAD_TIMEOUT_S = 60


class DatasetNotFoundError(FileNotFoundError):
    """No local copy of a data file, and it could not be downloaded."""


class ChecksumError(OSError):
    """A data file (local or downloaded) does not have the content the manifest records."""


@lru_cache(maxsize=1)
def manifest() -> dict:
    """The parsed ``qlts/datasets/manifest.json`` (shipped as package data)."""
    text = resources.files("qlts.datasets").joinpath("manifest.json").read_text(encoding="utf-8")
    return json.loads(text)


def file_entry(dataset: str, filename: str) -> dict:
    datasets = manifest()["datasets"]
    check_choice("dataset", dataset, datasets)
    check_choice("filename", filename, datasets[dataset]["files"])
    return datasets[dataset]["files"][filename]


def cache_dir() -> Path:
    return Path.home() / ".cache" / "qlts"


def candidate_paths(dataset: str, filename: str) -> list[Path]:
    """Where a local copy may live, in lookup order ($QLTS_DATA only when set)."""
    paths = []
    root = os.environ.get(DATA_ENV)
    if root:
        paths.append(Path(root).expanduser() / dataset / filename)
    paths.append(cache_dir() / dataset / filename)
    return paths


def find_local(dataset: str, filename: str) -> Path | None:
    """The first existing local copy, without verifying it."""
    return next((p for p in candidate_paths(dataset, filename) if p.is_file()), None)


def read_verified(dataset: str, filename: str) -> bytes:
    """The decompressed, checksum-verified content of one data file (downloading if needed)."""
    entry = file_entry(dataset, filename)
    path = find_local(dataset, filename)
    if path is None:
        path = _fetch(dataset, filename)
    try:
        content = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, truncated, or a corrupt deflate stream
        raise ChecksumError(f"{path}: not a readable gzip file ({exc}). {_replace_hint(path)}") from exc
    got = _sha256(content)
    if got != entry["content_sha256"]:
        raise ChecksumError(
            f"{path}: sha256 of the decompressed content is {got}, expected {entry['content_sha256']} "
            f"(manifest of qlts.datasets). {_replace_hint(path)}")
    return content


def _replace_hint(path: Path) -> str:
    return f"The copy is corrupted or a different version: delete or replace {path}."


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url: str) -> bytes:
    """Fetch ``url`` into memory (tests replace this function; it is the only network access)."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def _fetch(dataset: str, filename: str) -> Path:
    """Download ``filename`` and every sibling built from the same URL into the cache.

    Siblings share one download (IMDB train/test come from one 84 MB archive). All of them
    are converted and verified before any is written, so a mismatch leaves nothing behind.
    """
    files = manifest()["datasets"][dataset]["files"]
    url = files[filename]["download"]["url"]
    not_found = _not_found_message(dataset, filename, url)
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise DatasetNotFoundError(f"{not_found}\n(Download skipped because {OFFLINE_ENV} is set.)")
    try:
        payload = _download(url)
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError, timeouts, cut connections
        raise DatasetNotFoundError(f"{not_found}\n(Download failed: {exc})") from exc

    target_dir = cache_dir() / dataset
    todo = {}
    for name, entry in files.items():
        if entry["download"]["url"] != url or (name != filename and find_local(dataset, name)):
            continue
        try:
            content = _CONVERSIONS[entry["download"]["conversion"]](payload, entry["download"])
        except Exception as exc:  # foreign bytes: bad zip/tar/gzip, missing member, bad encoding...
            raise ChecksumError(f"download of {url} is not in the expected format for {dataset}/{name} "
                                f"({type(exc).__name__}: {exc}); nothing was written to {target_dir}.") from exc
        got = _sha256(content)
        if got != entry["content_sha256"]:
            raise ChecksumError(
                f"download of {url} gave {dataset}/{name} with content sha256 {got}, expected "
                f"{entry['content_sha256']}; nothing was written to {target_dir}. The source may have "
                f"changed; see the dataset's PROVENANCE.md and put a verified copy in place by hand.")
        todo[name] = payload if entry["download"]["conversion"] == "none" else _gzip(content)
    target_dir.mkdir(parents=True, exist_ok=True)
    for name, data in todo.items():
        with atomic_write(target_dir / name) as fh:
            fh.write(data)
    return target_dir / filename


def _not_found_message(dataset: str, filename: str, url: str) -> str:
    root = os.environ.get(DATA_ENV)
    data_line = (f"  {Path(root).expanduser() / dataset / filename}   (under QLTS_DATA={root})" if root
                 else f"  $QLTS_DATA/{dataset}/{filename}   (QLTS_DATA is not set)")
    return (f"No local copy of {dataset}/{filename}. Put the file at one of:\n"
            f"{data_line}\n"
            f"  {cache_dir() / dataset / filename}   (the qlts cache)\n"
            f"or point QLTS_DATA at a folder laid out as <dataset>/<file>, e.g. "
            f"`export {DATA_ENV}=/path/to/data` with /path/to/data/{dataset}/{filename}.\n"
            f"Source of the file: {url} (see qlts/datasets/manifest.json for the conversion and checksum).")


def _gzip(content: bytes) -> bytes:
    # The settings the shared copies were made with (no name, mtime 0): reproducible bytes.
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, mtime=0, fileobj=buffer) as gz:
        gz.write(content)
    return buffer.getvalue()


# --- conversions: downloaded bytes -> decompressed content of the stored file -------------
# Each follows the "Conversion" section of the dataset's PROVENANCE.md exactly, so that the
# result has the recorded content_sha256.

def _convert_none(payload: bytes, spec: dict) -> bytes:
    return gzip.decompress(payload)  # the URL serves the stored .gz itself


def _convert_gzip(payload: bytes, spec: dict) -> bytes:
    return payload  # the URL serves the plain content


def _zip_member(payload: bytes, spec: dict) -> bytes:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return archive.read(spec["member"])


def _convert_air_quality_clean(payload: bytes, spec: dict) -> bytes:
    """UCI CSV (``;``, decimal comma, CRLF, DD/MM/YYYY + HH.MM.SS) -> plain CSV with ISO datetime."""
    lines = _zip_member(payload, spec).decode("ascii").split("\r\n")
    header = lines[0].split(";")
    out = [",".join(["datetime"] + header[2:15])]
    for line in lines[1:]:
        fields = line.split(";")
        if fields[0] == "":  # trailing ';;;;' lines and the final empty line
            continue
        day, month, year = fields[0].split("/")
        stamp = f"{year}-{month}-{day} {fields[1].replace('.', ':')}"
        out.append(",".join([stamp] + [v.replace(",", ".") for v in fields[2:15]]))
    return ("\n".join(out) + "\n").encode("ascii")


def _convert_kaggle_stock(payload: bytes, spec: dict) -> bytes:
    """Kaggle ``Date,Open,High,Low,Close,Volume,OpenInt`` -> lower-case header, OpenInt dropped, LF."""
    lines = payload.decode("ascii").replace("\r\n", "\n").rstrip("\n").split("\n")
    out = ["date,open,high,low,close,volume"] + [",".join(line.split(",")[:6]) for line in lines[1:]]
    return ("\n".join(out) + "\n").encode("ascii")


_IMDB_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_\d+\.txt$")


def _convert_imdb_jsonl(payload: bytes, spec: dict) -> bytes:
    """aclImdb_v1.tar.gz -> one JSON line ``{"text", "label"}`` per review of one split,
    ordered by (label, id): negatives 0..12,499, then positives."""
    rows = []
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        for member in archive:
            match = _IMDB_MEMBER.search(member.name)
            if member.isfile() and match and match.group(1) == spec["split"]:
                label = 1 if match.group(2) == "pos" else 0
                text = archive.extractfile(member).read().decode("utf-8")
                rows.append((label, int(match.group(3)), text))
    rows.sort(key=lambda row: row[:2])
    lines = (json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n" for label, _, text in rows)
    return "".join(lines).encode("utf-8")


_CONVERSIONS = {
    "none": _convert_none,
    "gzip": _convert_gzip,
    "zip_member_gzip": _zip_member,
    "air_quality_clean": _convert_air_quality_clean,
    "kaggle_stock": _convert_kaggle_stock,
    "imdb_jsonl": _convert_imdb_jsonl,
}

"""Loaders for the real data sets: each returns pandas objects with a proper index.

Every loader reads through :func:`qlts.datasets._store.read_verified` (lookup
``$QLTS_DATA`` -> ``~/.cache/qlts`` -> download, content sha256 always checked), so
the same call gives the same data on every machine.
"""
from __future__ import annotations

import io
import json

import pandas as pd

from qlts._validation import check_choice
from qlts.datasets._store import find_local, manifest, read_verified

ETT_NAMES = ("ETTh1", "ETTh2", "ETTm1")
STOCK_TICKERS = ("AAPL", "GE", "IBM", "JPM", "KO", "MSFT")
IMDB_SPLITS = ("train", "test")
# A fixed offset object (not a string alias) keeps this working across pandas versions.
_ETT_FREQ = {"ETTh1": pd.offsets.Hour(1), "ETTh2": pd.offsets.Hour(1), "ETTm1": pd.offsets.Minute(15)}


def _read_csv(dataset: str, filename: str, **kwargs) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(read_verified(dataset, filename)), **kwargs)


def load_ett(name: str = "ETTh1") -> pd.DataFrame:
    """One ETT-small series (Zhou et al., AAAI 2021), 2016-07-01 to 2018-06-26.

    Parameters
    ----------
    name : {"ETTh1", "ETTh2", "ETTm1"} (any case)
        ETTh* are hourly (17,420 rows), ETTm1 is every 15 minutes (69,680 rows).

    Returns
    -------
    DataFrame with a regular ``DatetimeIndex`` named ``date`` (``freq`` set; local time, no
    time zone) and seven float64 columns ``HUFL, HULL, MUFL, MULL, LUFL, LULL, OT``
    (``OT``, the oil temperature, is the usual target). No missing values.
    """
    if isinstance(name, str):  # any case, as load_stock's tickers ("etth1" is the benchmarks' key)
        name = {n.lower(): n for n in ETT_NAMES}.get(name.lower(), name)
    check_choice("name", name, ETT_NAMES)
    df = _read_csv("ett", f"{name}.csv.gz", parse_dates=["date"], index_col="date")
    # Passing freq validates that the timestamps really form that regular grid.
    df.index = pd.DatetimeIndex(df.index, freq=_ETT_FREQ[name], name="date")
    return df.astype("float64")


def load_exchange_rate() -> pd.DataFrame:
    """Daily exchange rates of eight currencies, 1990-2016 (LSTNet, Lai et al., SIGIR 2018).

    The source has **no dates and no column names**, so the index is a ``RangeIndex``
    named ``step`` (one step = one day of the source, in order) and the columns are
    ``rate_0 .. rate_7``. Which column is which currency is not documented; do not assume
    the order of the source README's country list. 7,588 rows, float64, no missing values
    (182 rows repeat the row before them, probably holidays carried forward).
    """
    df = _read_csv("exchange_rate", "exchange_rate.txt.gz", header=None)
    df.columns = [f"rate_{i}" for i in range(df.shape[1])]
    df.index = pd.RangeIndex(len(df), name="step")
    return df.astype("float64")


def load_stock(ticker: str = "AAPL") -> pd.DataFrame:
    """Daily OHLCV prices of one US stock (Kaggle "Huge Stock Market Dataset"), to 2017-11-10.

    Parameters
    ----------
    ticker : {"AAPL", "GE", "IBM", "JPM", "KO", "MSFT"}
        Case-insensitive.

    Returns
    -------
    DataFrame with a ``DatetimeIndex`` named ``date`` of trading days (no ``freq``:
    weekends and holidays are absent), float64 columns ``open, high, low, close``
    (split- and dividend-adjusted USD) and int64 ``volume``. No missing values.
    """
    if isinstance(ticker, str) and ticker.upper() in STOCK_TICKERS:
        ticker = ticker.upper()
    check_choice("ticker", ticker, STOCK_TICKERS)
    df = _read_csv("stocks", f"{ticker}.csv.gz", parse_dates=["date"], index_col="date")
    return df.astype({"open": "float64", "high": "float64", "low": "float64", "close": "float64",
                      "volume": "int64"})


def load_air_quality() -> pd.DataFrame:
    """UCI Air Quality (De Vito et al., 2008): 9,357 hourly rows, 2004-03-10 18:00 to 2005-04-04 14:00.

    Returns
    -------
    DataFrame with a regular hourly ``DatetimeIndex`` named ``datetime`` (local time, no
    time zone) and 13 float64 columns with the original names: reference analysers
    ``CO(GT), NMHC(GT), C6H6(GT), NOx(GT), NO2(GT)``, raw sensors ``PT08.S1(CO) ..
    PT08.S5(O3)``, and ``T, RH, AH``. The source's missing-value marker -200 becomes NaN
    (16,701 values; ``NMHC(GT)`` is mostly missing).
    """
    df = _read_csv("air_quality", "air_quality_clean.csv.gz", parse_dates=["datetime"],
                   index_col="datetime", na_values=[-200])
    df.index = pd.DatetimeIndex(df.index, freq=pd.offsets.Hour(1), name="datetime")
    return df.astype("float64")


def load_imdb(splits=IMDB_SPLITS) -> dict[str, pd.DataFrame]:
    """IMDB Large Movie Review Dataset (Maas et al., ACL 2011), the original 25k/25k split.

    Parameters
    ----------
    splits : sequence of {"train", "test"}, default both
        Which splits to load (each takes about a second).

    Returns
    -------
    dict mapping each split name to a DataFrame of 25,000 rows with columns ``text``
    (the review verbatim, including ``<br />`` tags) and ``label`` (int64, 1 = positive,
    0 = negative; 12,500 of each). Rows are sorted by (label, review id): **shuffle before
    taking a subset**.
    """
    if isinstance(splits, str):
        splits = (splits,)
    else:
        try:
            splits = tuple(splits)
        except TypeError:
            raise TypeError(f"splits: expected 'train', 'test' or a sequence of them, got {splits!r}") from None
    if not splits:
        raise ValueError(f"splits: expected at least one of {list(IMDB_SPLITS)!r}, got an empty sequence")
    for split in splits:  # all names checked before the (slow) reading starts
        check_choice("splits", split, IMDB_SPLITS)
    out = {}
    for split in splits:
        text = read_verified("imdb", f"{split}.jsonl.gz").decode("utf-8")
        # split("\n"), not splitlines(): reviews contain U+2028 and friends inside the JSON strings.
        rows = [json.loads(line) for line in text.split("\n") if line]
        out[split] = pd.DataFrame(rows, columns=["text", "label"]).astype({"label": "int64"})
    return out


def list_datasets(details: bool = False):
    """The names of the real data sets (``make_sensor_stream`` is synthetic and needs no file).

    With ``details=True``, a DataFrame indexed by name with the columns ``loader``,
    ``files``, ``missing`` (files with no local copy under ``$QLTS_DATA`` or
    ``~/.cache/qlts``), ``available`` (nothing missing; copies are checksum-verified only
    when loaded) and ``license``.
    """
    datasets = manifest()["datasets"]
    if not details:
        return sorted(datasets)
    rows = []
    for name, info in sorted(datasets.items()):
        missing = [f for f in sorted(info["files"]) if find_local(name, f) is None]
        rows.append({"name": name, "loader": info["loader"], "files": sorted(info["files"]),
                     "missing": missing, "available": not missing, "license": info["license"]})
    return pd.DataFrame(rows).set_index("name")

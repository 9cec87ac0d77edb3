"""Real and synthetic data sets for qlts (DESIGN §6).

Real data files are found in ``$QLTS_DATA/<dataset>/<file>``, then ``~/.cache/qlts/<dataset>/<file>``,
then downloaded from the source recorded in ``manifest.json`` (sha256-verified); see ``_store``.
"""
from qlts.datasets._store import ChecksumError, DatasetNotFoundError
from qlts.datasets.loaders import (
    ETT_NAMES,
    STOCK_TICKERS,
    list_datasets,
    load_air_quality,
    load_ett,
    load_exchange_rate,
    load_imdb,
    load_stock,
)
from qlts.datasets.synthetic import make_sensor_stream

__all__ = [
    "ChecksumError",
    "DatasetNotFoundError",
    "ETT_NAMES",
    "STOCK_TICKERS",
    "list_datasets",
    "load_air_quality",
    "load_ett",
    "load_exchange_rate",
    "load_imdb",
    "load_stock",
    "make_sensor_stream",
]

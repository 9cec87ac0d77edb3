"""``qlts forecast``, ``qlts backtest`` and the forecasting ``qlts demo``; :func:`register` adds them."""
from __future__ import annotations

import gzip
import os
import re
import sys

import pandas as pd

from ..utils import atomic_write
from ._series import irregular_steps, is_irregular, suggested_freq

_TIME_NAMES = ("date", "time", "timestamp", "datetime", "ds")
_SEPARATORS = (",", ";", "\t", "|")


def _csv_separator(path):
    """The field separator of a CSV: whichever of , ; tab | its header line has most of (a
    spreadsheet in a comma-decimal locale writes ';'). Unreadable files fail later, in pandas."""
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", errors="replace") as fh:
            header = fh.readline()
    except OSError:
        return ","
    counts = {sep: header.count(sep) for sep in _SEPARATORS}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def _as_values(markers):
    """Missing-value markers as given, plus each one that reads as a number, as that number."""
    numbers = []
    for marker in markers:
        try:
            numbers.append(float(marker))
        except ValueError:
            pass
    return list(markers) + numbers


def read_table(path, time_col=None, freq=None, decimal=".", na_values=None, time_format=None):
    """A CSV or Parquet file as a frame indexed by its time column (``time_col``, else a column
    named date/time/timestamp/datetime/ds, else a RangeIndex), rows in time order. ``time_col``
    may list several columns (a date and a time), joined with a space and parsed with
    ``time_format`` (strftime codes) where given; rows with every field empty are then dropped. A CSV's
    separator is read from its header line; ``decimal`` is its decimal mark. Values equal to one
    of ``na_values`` (a sensor's missing-value code such as -200) become NaN. With ``freq``
    the rows are put on that frequency (missing steps become NaN rows); without it, irregular
    timestamps are an error that suggests one."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"PATH: expected an existing CSV or Parquet file, got {path!r}")
    lower = path.lower()
    parquet = lower.endswith((".parquet", ".pq"))
    if not parquet and not lower.endswith((".csv", ".csv.gz", ".txt", ".txt.gz")):
        raise ValueError(f"PATH: expected a .csv, .csv.gz or .parquet file, got {path!r}")
    try:
        if parquet:
            frame = pd.read_parquet(path)
            if na_values:
                frame = frame.mask(frame.isin(_as_values(na_values)))
        else:  # pandas matches numbers by value: "-200" marks -200.0 too
            frame = pd.read_csv(path, sep=_csv_separator(path), decimal=decimal, na_values=na_values)
    except ImportError as exc:  # pandas needs pyarrow or fastparquet for Parquet
        raise ValueError(f"PATH: reading Parquet needs pyarrow (pip install pyarrow); got {path!r} "
                         f"and {exc}") from exc
    except (ValueError, OSError) as exc:  # empty, not a table, a folder, unreadable
        kind = "Parquet" if parquet else "CSV"
        raise ValueError(f"PATH: expected a readable {kind} file, got {path!r}, which fails to read: {exc}") from exc
    if time_col is None:
        time_col = next((c for c in frame.columns if str(c).lower() in _TIME_NAMES), None)
    columns = [] if time_col is None else [time_col] if isinstance(time_col, str) else list(time_col)
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise ValueError(f"--time-col: expected column(s) of the file {list(frame.columns)}, got {unknown}")
    if columns:
        frame = frame.dropna(how="all")  # no time to place it at: spreadsheet exports end in bare separators
        time_col = " ".join(map(str, columns))
        text = frame[columns[0]] if len(columns) == 1 else frame[columns].astype(str).agg(" ".join, axis=1)
        try:
            times = pd.to_datetime(text, format=time_format)
        except (ValueError, TypeError) as exc:
            hint = "" if time_format else "; give their layout with --time-format, e.g. '%d/%m/%Y %H:%M'"
            raise ValueError(f"--time-col: expected timestamps in column {time_col!r} of {path!r}, got values "
                             f"that do not parse ({str(exc).splitlines()[0]}){hint}") from exc
        frame = frame.drop(columns=columns).set_index(pd.DatetimeIndex(times, name=time_col))
        frame = frame.sort_index(kind="stable")
    if freq is not None:
        return _on_frequency(frame, freq, time_col)
    index = frame.index
    if isinstance(index, pd.DatetimeIndex) and index.is_unique and is_irregular(index):
        suggestion = suggested_freq(index)
        raise ValueError(f"--freq: the timestamps in column {time_col!r} are irregular (steps "
                         f"{irregular_steps(index)}); pass --freq {suggestion or 'FREQ'} to put them on one "
                         "frequency (missing steps are filled by interpolation)")
    return frame


def _on_frequency(frame, freq, time_col):
    """``frame`` reindexed on the frequency ``freq``; every original row must fall on it."""
    if time_col is None:
        raise ValueError(f"--freq: needs a timestamp column (--time-col), got a file without one and --freq {freq}")
    if not frame.index.is_unique:
        raise ValueError(f"--freq: expected unique timestamps in column {time_col!r}, got duplicated "
                         f"{frame.index[frame.index.duplicated()][0]}")
    try:
        regular = frame.asfreq(freq)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--freq: expected a pandas frequency such as B, D, h or 15min, got {freq!r} ({exc})") from exc
    off = ~frame.index.isin(regular.index)
    if off.any():
        raise ValueError(f"--freq: expected every timestamp in column {time_col!r} on the {freq!r} grid from "
                         f"{frame.index[0]}, got {int(off.sum())} off it (first {frame.index[off][0]})")
    return regular


def _targets(frame, targets):
    missing = [t for t in targets if t not in frame.columns]
    if missing:
        raise ValueError(f"--target: expected column(s) of the file {list(frame.columns)}, got unknown {missing}")
    for name in targets:
        column = frame[name]
        if not pd.api.types.is_numeric_dtype(column):
            sample = column.dropna().astype(str).head(3).tolist()
            comma = any(re.fullmatch(r"-?\d*,\d+", v.strip()) for v in sample)
            raise ValueError(f"--target: expected numeric values in column {name!r}, got {sample}"
                             + ("; this file writes decimal commas: pass --decimal ," if comma else ""))
    return frame[targets]


def _forecaster(args, quantiles=None):
    from .forecaster import QLLSTMForecaster

    return QLLSTMForecaster(args.lookback, args.horizon, segment_length=args.segment_length,
                            hidden_size=args.hidden_size, cell=args.cell, max_epochs=args.epochs, lr=args.lr,
                            quantiles=quantiles, random_state=args.seed, verbose=1)


def _forecast(args):
    from .plot import plot_forecast

    y = _targets(read_table(args.path, args.time_col, args.freq, args.decimal, args.na_values, args.time_format),
                 args.target)
    model = _forecaster(args, args.quantiles or None).fit(y)
    forecast = model.predict()
    table = forecast
    band = None
    if args.quantiles:
        q = model.predict_quantiles()
        table = pd.concat([forecast, q.set_axis([f"{c}_q{lv:g}" for c, lv in q.columns], axis=1)], axis=1)
        lo, hi = min(args.quantiles), max(args.quantiles)
        band = (q[(args.target[0], lo)].rename(lo), q[(args.target[0], hi)].rename(hi))
    os.makedirs(args.out, exist_ok=True)
    csv_path, png_path = os.path.join(args.out, "forecast.csv"), os.path.join(args.out, "forecast.png")
    with atomic_write(csv_path, "w") as fh:
        table.to_csv(fh, index_label=y.index.name or "index")
    plot_forecast(y.iloc[-3 * args.lookback:], forecast, png_path, column=args.target[0], band=band)
    print(table.head(min(10, len(table))).to_string())
    print(f"forecast: {csv_path}\nplot: {png_path}")


def _backtest(args):
    from ..model_selection import backtest
    from .naive import NaiveForecaster

    y = _targets(read_table(args.path, args.time_col, args.freq, args.decimal, args.na_values, args.time_format),
                 args.target)
    initial = args.initial if args.initial is not None else int(len(y) * 0.7)
    folds = dict(initial=initial, step=args.step or args.horizon, horizon=args.horizon, refit=args.refit)
    models = {"qllstm": _forecaster(args, args.quantiles or None), "naive_last": NaiveForecaster()}
    if args.season_length:
        models["naive_seasonal"] = NaiveForecaster("seasonal", args.season_length)
    rows = {}
    for name, model in models.items():
        metrics = ("mse", "mae", "mase") + (("pinball", "coverage") if model.get_params().get("quantiles") else ())
        scores, _ = backtest(model, y, metrics=metrics, **folds)
        rows[name] = scores[list(metrics)].mean()
    columns = list(dict.fromkeys(name for scores in rows.values() for name in scores.index))  # in metric order
    table = pd.DataFrame(rows).T[columns]  # the naive rows have no quantiles: NaN there
    table["mse_vs_naive"] = table["mse"] / table.loc["naive_last", "mse"]
    print(f"{len(scores)} folds from row {initial}, horizon {args.horizon}, refit={args.refit} "
          f"(metrics on the original scale, averaged over folds and targets)")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def _demo(args):
    if args.adding:
        from ..demo import run_adding_demo

        run_adding_demo(out_dir=args.out, seed=args.seed)
        return
    from .demo import run_forecast_demo

    run_forecast_demo(out_dir=args.out, max_epochs=args.epochs, seed=args.seed)


def _model_arguments(p):
    p.add_argument("path", help="CSV or Parquet file")
    p.add_argument("--target", nargs="+", required=True, help="column(s) to forecast")
    p.add_argument("--time-col", nargs="+", default=None, help="timestamp column (default: one named "
                   "date/time/...), or a date column and a time column; rows are put in time order")
    p.add_argument("--time-format", default=None, help="layout of the timestamps in strftime codes, e.g. "
                   "'%%d/%%m/%%Y %%H:%%M' (default: inferred)")
    p.add_argument("--freq", default=None, help="put the rows on this pandas frequency first, e.g. B for trading "
                   "days, h, D, 15min (missing steps are interpolated)")
    p.add_argument("--decimal", default=".", help="decimal mark of a CSV (default '.'; ',' for files written in "
                   "a comma-decimal locale, which separate fields with ';', read from the header)")
    p.add_argument("--na-values", nargs="+", default=None, metavar="VALUE", help="values that mark a missing "
                   "reading, such as -200 (they become NaN, then interpolated)")
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--lookback", type=int, default=96)
    p.add_argument("--segment-length", type=int, default=24)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--cell", default="qllstm", choices=("qllstm", "lstm", "gru"))
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: 30, more on a short series, "
                   "enough for 1,000 optimizer steps; early stopping usually ends sooner)")
    p.add_argument("--lr", type=float, default=None, help="Adam's learning rate (default: 3e-4)")
    p.add_argument("--seed", type=int, default=0)


def _guard(func):
    """Bad input ends with one clear line and exit status 2, not a traceback."""
    def run(args):
        try:
            func(args)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            print(f"qlts {args.command}: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return run


def register(sub):
    """Add ``forecast``, ``backtest`` and ``demo`` to the ``qlts`` subparsers ``sub``."""
    p = sub.add_parser("forecast", help="fit QL-LSTM on a CSV/Parquet series; write the forecast CSV and a PNG")
    _model_arguments(p)
    p.add_argument("--quantiles", type=float, nargs="*", default=[0.1, 0.9],
                   help="quantile band to forecast (default 0.1 0.9; give none for a point forecast)")
    p.add_argument("--out", default="qlts_forecast_output", help="folder for forecast.csv and forecast.png")
    p.set_defaults(func=_guard(_forecast))
    p = sub.add_parser("backtest", help="historical forecasts: QL-LSTM against the naive forecaster")
    _model_arguments(p)
    p.add_argument("--quantiles", type=float, nargs="*", default=[],
                   help="also score a quantile band, e.g. 0.1 0.9: pinball loss and coverage (default: none)")
    p.add_argument("--initial", type=int, default=None, help="first cutoff row (default 70%% of the rows)")
    p.add_argument("--step", type=int, default=None, help="rows between cutoffs (default: the horizon)")
    p.add_argument("--refit", action="store_true", help="refit at every cutoff (default: fit once)")
    p.add_argument("--season-length", type=int, default=None, help="also compare a seasonal naive forecaster")
    p.set_defaults(func=_guard(_backtest))
    p = sub.add_parser("demo", help="the main job: forecast ETTh1 (or synthetic sensors) with QL-LSTM vs naive")
    p.add_argument("--adding", action="store_true", help="run the adding-problem demo instead (= qlts adding)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="qlts_demo_output", help="folder for the plot")
    p.set_defaults(func=_guard(_demo))

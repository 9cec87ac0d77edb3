"""`qlts forecast` and `qlts backtest` end to end on a small CSV in a temp dir, and their bad input."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

FAST = ["--lookback", "24", "--horizon", "6", "--segment-length", "12", "--hidden-size", "8", "--epochs", "2"]


@pytest.fixture()
def csv_path(tmp_path):
    t = np.arange(150)
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-05-01", periods=150, freq="h").astype(str),
                          "load": 10 + np.sin(2 * np.pi * t / 24), "temp": np.cos(2 * np.pi * t / 24)})
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    return path


def qlts(*args):
    return subprocess.run([sys.executable, "-m", "qlts", *map(str, args)], capture_output=True, text=True, timeout=600)


def test_forecast_writes_csv_and_png(csv_path, tmp_path):
    out = tmp_path / "out"
    run = qlts("forecast", csv_path, "--target", "load", *FAST, "--out", out)
    assert run.returncode == 0, run.stderr
    forecast = pd.read_csv(out / "forecast.csv", index_col=0, parse_dates=True)
    assert list(forecast.columns) == ["load", "load_q0.1", "load_q0.9"]
    pd.testing.assert_index_equal(forecast.index, pd.date_range("2024-05-07 06:00", periods=6, freq="h"),
                                  check_names=False, check_exact=True, check_freq=False)
    assert (forecast["load_q0.1"] <= forecast["load_q0.9"]).all()
    assert (out / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_prints_a_table_against_naive(csv_path):
    run = qlts("backtest", csv_path, "--target", "load", "temp", *FAST, "--initial", "120", "--step", "12",
               "--season-length", "24", "--quantiles", "0.1", "0.9")
    assert run.returncode == 0, run.stderr
    lines = [line.split() for line in run.stdout.splitlines() if line.split()]
    header = next(line for line in lines if line[0] == "mse")
    rows = {line[0]: dict(zip(header, map(float, line[1:]))) for line in lines if line[0] in
            ("qllstm", "naive_last", "naive_seasonal")}
    assert header == ["mse", "mae", "mase", "pinball", "coverage", "mse_vs_naive"] and len(rows) == 3
    assert "3 folds from row 120" in run.stdout  # cutoffs 120, 132, 144
    # the seasonal naive is exact on a noise-free period-24 series
    assert rows["naive_seasonal"]["mse"] == pytest.approx(0.0, abs=1e-12)
    assert rows["naive_last"]["mse_vs_naive"] == pytest.approx(1.0)
    assert 0.0 <= rows["qllstm"]["coverage"] <= 1.0 and rows["qllstm"]["pinball"] > 0
    assert np.isnan(rows["naive_last"]["coverage"])  # the naive forecasters give no band


def test_bad_input_is_one_clear_line(csv_path, tmp_path):
    run = qlts("forecast", csv_path, "--target", "nope", *FAST, "--out", tmp_path / "o")
    assert run.returncode == 2
    assert "qlts forecast: error: --target: expected column(s) of the file ['load', 'temp'], got unknown ['nope']" \
        in run.stderr and "Traceback" not in run.stderr
    run = qlts("forecast", csv_path, "--target", "load", "--lookback", "140", "--horizon", "24", "--out", tmp_path)
    assert run.returncode == 2
    assert "y: expected at least lookback + horizon = 140 + 24 = 164 rows, got 150" in run.stderr
    run = qlts("forecast", tmp_path / "missing.csv", "--target", "load")
    assert run.returncode == 2 and "PATH: expected an existing CSV or Parquet file" in run.stderr
    assert not (tmp_path / "o").exists()


def test_demo_falls_back_to_the_synthetic_stream_in_one_line(tmp_path):
    env = {**os.environ, "QLTS_DATA": str(tmp_path / "empty"), "HOME": str(tmp_path),
           "QLTS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "qlts", "demo", "--epochs", "1", "--out", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("ETTh1 not found (DatasetNotFoundError); using the built-in synthetic sensor stream")
    rows = {line.split()[0]: line.split() for line in lines if line.split()}
    qllstm, naive = rows["QL-LSTM"], rows["repeat"]
    assert float(qllstm[-2]) > 0 and float(naive[-2]) > 0  # MSE of both, on the normalised scale
    assert "MSE ratio to naive" in run.stdout
    assert (tmp_path / "demo" / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv", [["demo", "--adding"], ["adding"]])
def test_adding_demo_passes_its_seed_on(argv, monkeypatch, tmp_path):
    import qlts.demo
    from qlts.cli import main

    calls = []
    monkeypatch.setattr(qlts.demo, "run_adding_demo", lambda **kw: calls.append(kw))
    main([*argv, "--seed", "3", "--out", str(tmp_path)])
    assert len(calls) == 1 and calls[0]["seed"] == 3


def test_unreadable_file_or_time_column_names_the_argument(tmp_path):
    """Bug: an empty CSV gave pandas' "No columns to parse from file", a folder named *.csv a
    traceback (IsADirectoryError), and unparseable timestamps "Unknown datetime string format"."""
    from qlts.forecasting.cli import read_table

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"PATH: expected a readable CSV file, got .*empty.csv'"):
        read_table(str(empty))
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ValueError, match=r"PATH: expected a readable CSV file, got .*folder.csv'"):
        read_table(str(tmp_path / "folder.csv"))
    dates = tmp_path / "dates.csv"
    dates.write_text("date,v\nnotadate,1\nx,2\n")
    with pytest.raises(ValueError, match=r"--time-col: expected timestamps in column 'date' of .*dates.csv'"):
        read_table(str(dates))


@pytest.fixture()
def trading_days_csv(tmp_path):
    """Daily closes on weekdays with two holidays missing, newest first (as some exports write them)."""
    days = pd.bdate_range("2024-01-01", periods=80).delete([20, 50])
    closes = 100 + np.cumsum(np.random.default_rng(0).standard_normal(len(days)))
    path = tmp_path / "closes.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "close": closes}).iloc[::-1].to_csv(path, index=False)
    return path, days


def test_trading_days_need_freq_and_forecast_business_days_with_it(trading_days_csv, tmp_path):
    path, days = trading_days_csv
    run = qlts("forecast", path, "--target", "close", *FAST, "--out", tmp_path / "o")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "--freq: the timestamps in column 'date' are irregular" in run.stderr and "pass --freq B" in run.stderr
    run = qlts("forecast", path, "--target", "close", *FAST, "--freq", "B", "--out", tmp_path / "o")
    assert run.returncode == 0, run.stderr
    forecast = pd.read_csv(tmp_path / "o" / "forecast.csv", index_col=0, parse_dates=True)
    assert list(forecast.index) == list(pd.bdate_range(days[-1], periods=7)[1:])


def test_read_table_sorts_by_time_and_puts_rows_on_freq(trading_days_csv):
    from qlts.forecasting.cli import read_table

    path, days = trading_days_csv
    frame = read_table(str(path), freq="B")
    pd.testing.assert_index_equal(frame.index, pd.bdate_range(days[0], days[-1], name="date"), check_freq=False)
    assert frame["close"].isna().sum() == 2  # the two holidays, interpolated later by nan_policy
    on_days = frame.loc[days, "close"].to_numpy()
    expected = pd.read_csv(path).set_index("date")["close"].iloc[::-1].to_numpy()  # the file is newest first
    np.testing.assert_array_equal(on_days, expected)
    with pytest.raises(ValueError, match=r"--freq: expected a pandas frequency such as B, D, h or 15min, got 'XYZ'"):
        read_table(str(path), freq="XYZ")
    with pytest.raises(ValueError, match=r"--freq: expected every timestamp in column 'date' on the '2D' grid"):
        read_table(str(path), freq="2D")  # rows off the grid would be dropped silently by asfreq
    plain = path.parent / "plain.csv"
    plain.write_text("v\n1\n2\n3\n")
    with pytest.raises(ValueError, match=r"--freq: needs a timestamp column \(--time-col\)"):
        read_table(str(plain), freq="h")


def test_csv_separator_is_read_from_the_header_and_decimal_commas_are_named(tmp_path):
    """Bug: a spreadsheet export in a comma-decimal locale ("a;b" / "0,5") came back as one column
    named 'timestamp;load', and --target could not find 'load'."""
    from qlts.forecasting.cli import _targets, read_table

    stamps = pd.date_range("2024-05-01", periods=30, freq="h")
    load = np.random.default_rng(1).standard_normal(30)
    frame = pd.DataFrame({"timestamp": stamps, "load": load})
    frame.to_csv(tmp_path / "semicolon.csv", sep=";", decimal=",", index=False)
    frame.to_csv(tmp_path / "tabs.csv.gz", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"--target: expected numeric values in column 'load', got \['-?0,\d+'.*"
                                         r"this file writes decimal commas: pass --decimal ,"):
        _targets(read_table(str(tmp_path / "semicolon.csv")), ["load"])
    for name, decimal in (("semicolon.csv", ","), ("tabs.csv.gz", ".")):
        read = _targets(read_table(str(tmp_path / name), decimal=decimal), ["load"])
        pd.testing.assert_index_equal(read.index, pd.DatetimeIndex(stamps, name="timestamp"), check_freq=False)
        np.testing.assert_allclose(read["load"].to_numpy(), load, rtol=1e-15)
    words = tmp_path / "words.csv"
    words.write_text("timestamp,load\n2024-01-01,high\n2024-01-02,low\n")
    with pytest.raises(ValueError, match=r"column 'load', got \['high', 'low'\]$"):  # no decimal-comma hint
        _targets(read_table(str(words)), ["load"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_na_values_mark_a_sensors_missing_readings(tmp_path, suffix):
    """The UCI air-quality files write a missing reading as -200: read as a temperature, it bent the
    forecast towards -200 without a word."""
    from qlts.forecasting.cli import read_table

    frame = pd.DataFrame({"datetime": pd.date_range("2024-05-01", periods=6, freq="h"),
                          "T": [12.5, -200.0, 13.0, 13.5, -200.0, 14.0], "RH": [-200.0, 40.0, 41.0, 42.0, 43.0, 44.0]})
    path = tmp_path / f"sensor{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    raw = read_table(str(path))
    assert (raw["T"] == -200).sum() == 2
    read = read_table(str(path), na_values=["-200"])
    assert read["T"].isna().tolist() == [False, True, False, False, True, False]
    assert read["RH"].isna().sum() == 1
    np.testing.assert_array_equal(read["T"].dropna().to_numpy(), [12.5, 13.0, 13.5, 14.0])


def test_a_spreadsheet_export_with_date_and_time_columns(tmp_path):
    """The raw UCI air-quality layout: ';' fields, decimal commas, the date and the time in two
    columns (day first), -200 for a missing reading, two empty fields per line and lines of bare
    separators at the end. It reads with the arguments a user would pass."""
    from qlts.forecasting.cli import read_table

    lines = ["Date;Time;T;RH;;", "12/03/2004;22.00.00;11,2;59,6;;", "12/03/2004;23.00.00;-200;60,1;;",
             "13/03/2004;00.00.00;10,7;60,9;;", ";;;;;", ";;;;;"]
    path = tmp_path / "AirQualityUCI.csv"
    path.write_text("\r\n".join(lines) + "\r\n")
    with pytest.raises(ValueError, match=r"--time-col: expected timestamps in column 'Date Time' .*give their layout "
                                         r"with --time-format"):
        read_table(str(path), time_col=["Date", "Time"], decimal=",", na_values=["-200"])
    frame = read_table(str(path), time_col=["Date", "Time"], decimal=",", na_values=["-200"],
                       time_format="%d/%m/%Y %H.%M.%S")
    pd.testing.assert_index_equal(frame.index, pd.DatetimeIndex(["2004-03-12 22:00", "2004-03-12 23:00",
                                                                 "2004-03-13 00:00"], name="Date Time"),
                                  check_freq=False)
    np.testing.assert_array_equal(frame["T"].to_numpy(), [11.2, np.nan, 10.7])
    np.testing.assert_array_equal(frame["RH"].to_numpy(), [59.6, 60.1, 60.9])
    with pytest.raises(ValueError, match=r"--time-col: expected column\(s\) of the file .*got \['Hour'\]"):
        read_table(str(path), time_col=["Date", "Hour"], decimal=",")


def test_version(capsys):
    import qlts
    from qlts.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"qlts {qlts.__version__}"

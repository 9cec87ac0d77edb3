"""Every script in examples/ runs end to end, at reduced sizes, so API changes cannot leave them broken.

Each example keeps its sizes in module constants and its work in ``main()``; the test loads the file,
shrinks the constants, runs ``main()`` in a temporary folder and checks what it printed (and wrote).
The full-size runs, and the numbers they print, are in each example's docstring.
"""
from __future__ import annotations

import importlib.util
import math
import re

import pytest

from conftest import REPO_ROOT

NUMBER = r"(-?\d+(?:\.\d+)?|nan|inf)"


def run_example(name, monkeypatch, tmp_path, capsys, **sizes):
    """Run examples/<name>.py's main() with ``sizes`` replacing its constants; return what it printed."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", REPO_ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for constant, value in sizes.items():
        assert hasattr(module, constant), f"{name}.py has no constant {constant}"
        monkeypatch.setattr(module, constant, value)
    monkeypatch.chdir(tmp_path)
    module.main()
    return capsys.readouterr().out


def finite_after(pattern, text):
    """The number printed right after the regex ``pattern``; it must be finite."""
    match = re.search(pattern + r"\s*:?\s*" + NUMBER, text)
    assert match, f"{pattern!r} not found in the output:\n{text}"
    value = float(match.group(1))
    assert math.isfinite(value), f"{pattern} printed {value}"
    return value


@pytest.fixture
def with_data(shared_data_dir, monkeypatch):
    monkeypatch.setenv("QLTS_DATA", str(shared_data_dir))


def test_forecast_sensors(monkeypatch, tmp_path, capsys):
    out = run_example("forecast_sensors", monkeypatch, tmp_path, capsys, N_WEEKS=4, HORIZON=24, MAX_EPOCHS=1)
    finite_after(r"QL-LSTM +MSE", out)
    finite_after(r"repeat last value +MSE", out)
    share = finite_after("inside the 10-90% band", out)
    assert 0 <= share <= 1
    assert (tmp_path / "sensors_forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_grid_search(monkeypatch, tmp_path, capsys):
    out = run_example("backtest_grid_search", monkeypatch, tmp_path, capsys, TRAIN_WEEKS=2, TEST_WEEKS=1,
                      MAX_EPOCHS=1, N_JOBS=1)
    for name in ("QL-LSTM", "naive (last)", "naive (daily season)"):
        finite_after(re.escape(name) + " +MSE", out)
    ranks = re.findall(r"^rank (\d+)  MSE " + NUMBER, out, flags=re.MULTILINE)
    assert len(ranks) == 4 and min(int(r) for r, _ in ranks) == 1  # QL-LSTM at 3 alphas, and the GRU
    assert all(math.isfinite(float(score)) for _, score in ranks)
    assert "{'cell': 'gru'}" in out and "best: {" in out


def test_classify_documents(with_data, monkeypatch, tmp_path, capsys):
    out = run_example("classify_documents", monkeypatch, tmp_path, capsys, N_TRAIN=240, N_TEST=120, MAX_LEN=40,
                      MAX_SIZE=1000, MAX_EPOCHS=1)
    assert "240 training and 120 test reviews" in out
    assert 0 <= finite_after("test accuracy", out) <= 1
    assert re.search(r"best alpha (0\.0|0\.1|0\.3):", out)


def test_classify_sequences(with_data, monkeypatch, tmp_path, capsys):
    out = run_example("classify_sequences", monkeypatch, tmp_path, capsys, MAX_EPOCHS=1)
    assert 0 <= finite_after(re.escape("held-out days):"), out) <= 1
    assert "confusion matrix" in out


def test_grid_search_alpha(with_data, monkeypatch, tmp_path, capsys):
    out = run_example("grid_search_alpha", monkeypatch, tmp_path, capsys, STRIDE=24, MAX_EPOCHS=1)
    assert re.search(r"best alpha: (0\.0|0\.1|0\.3)", out)
    finite_after(r"held-out test MSE with alpha=0\.[013]:", out)

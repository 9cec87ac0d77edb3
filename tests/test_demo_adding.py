"""The adding-problem demo: the data is what the problem defines, and the CLI prints and plots."""
import subprocess
import sys

import numpy as np

from qlts.demo import BASELINE_MSE, make_adding_problem


def test_adding_problem_data():
    x, y = make_adding_problem(500, 40, np.random.default_rng(3))
    x, y = x.numpy(), y.numpy()
    assert x.shape == (500, 40, 2) and y.shape == (500, 1)
    markers = x[:, :, 1]
    assert (markers.sum(1) == 2).all()
    assert (markers[:, :20].sum(1) == 1).all()  # one marker in each half
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(1), rtol=1e-6)
    # the mean predictor's MSE is the variance of a sum of two U(0,1): 1/6
    assert abs(((y - 1.0) ** 2).mean() - BASELINE_MSE) < 0.02


def test_adding_cli_prints_counts_and_mse_and_saves_png(tmp_path):
    out = subprocess.run([sys.executable, "-m", "qlts", "adding", "--T", "12", "--steps", "3", "--hidden-size", "4",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in ("qllstm", "lstm")}
    assert set(rows) == {"qllstm", "lstm"}
    # recurrent params at d=2, H=4: QL 2H(d+H)+7H = 76; LSTM 4H(d+H)+8H = 128
    assert rows["qllstm"][1] == "76" and rows["lstm"][1] == "128"
    assert all(float(r[3]) > 0 for r in rows.values())
    assert "T=12" in out.stdout and "0.167" in out.stdout
    png = tmp_path / "adding_loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

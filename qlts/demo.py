"""The adding problem (Hochreiter & Schmidhuber 1997): QL-LSTM against an LSTM of the same size.

Each input is a (T, 2) sequence: uniform values in [0, 1] and a marker channel with exactly
two ones, one in each half. The target is the sum of the two marked values. Predicting the
mean (1.0) scores MSE = Var(U + U) = 1/6 ≈ 0.167, the baseline a model must clearly beat.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .nn import SequenceModel, count_parameters, lstm_parameter_count, qllstm_parameter_count
from .utils import atomic_write, seed_everything

BASELINE_MSE = 1.0 / 6.0
# The longest T at which both models clearly beat the baseline within the budget, on 2 seeds:
# benchmarks/results/adding_demo.md (at T=200 QL-LSTM still learns, the LSTM does not).
DEFAULT_T = 100
DEFAULT_STEPS = 1000


def make_adding_problem(n, T, rng):
    """(x, y): x (n, T, 2) float32, y (n, 1) float32."""
    values = rng.random((n, T), dtype=np.float32)
    markers = np.zeros((n, T), dtype=np.float32)
    half = T // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, T, size=n)
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    y = (values * markers).sum(1, keepdims=True)
    return torch.from_numpy(np.stack([values, markers], axis=-1)), torch.from_numpy(y)


def train_adding(cell, T, *, hidden_size=32, steps=DEFAULT_STEPS, batch_size=64, lr=1e-2, seed=0, progress=None):
    """Train ``cell`` on fresh batches; return (model, per-step losses, test MSE, seconds)."""
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    model = SequenceModel(2, 1, hidden_size, cell=cell)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        x, y = make_adding_problem(batch_size, T, rng)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if progress is not None:
            progress.update(1)
            progress.set_postfix(model=cell, loss=f"{loss.item():.4f}")
    seconds = time.perf_counter() - start
    x_test, y_test = make_adding_problem(1000, T, np.random.default_rng(seed + 1))
    with torch.no_grad():
        test_mse = nn.functional.mse_loss(model(x_test), y_test).item()
    return model, losses, test_mse, seconds


def plot_losses(curves, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, losses in curves.items():
        ax.plot(losses, label=label, linewidth=1)
    ax.axhline(BASELINE_MSE, color="gray", linestyle="--", label="predict the mean (0.167)")
    ax.set(xlabel="training step", ylabel="batch MSE", yscale="log", title=title)
    ax.legend()
    fig.tight_layout()
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=120)
    plt.close(fig)


def run_adding_demo(T=DEFAULT_T, steps=DEFAULT_STEPS, hidden_size=32, out_dir="qlts_demo_output", seed=0):
    """The adding-problem demo: prints parameter counts and test MSE, saves a loss-curve PNG."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"Adding problem at T={T}: QL-LSTM vs LSTM, hidden_size={hidden_size}, {steps} steps each, CPU")
    results = {}
    with tqdm(total=2 * steps, desc="training", unit="step") as bar:
        for cell in ("qllstm", "lstm"):
            model, losses, mse, seconds = train_adding(cell, T, hidden_size=hidden_size, steps=steps, seed=seed,
                                                       progress=bar)
            results[cell] = (model, losses, mse, seconds)
    print(f"\n{'model':<9} {'recurrent params':>17} {'total params':>13} {'test MSE':>9} {'train s':>8}")
    recurrent = {"qllstm": qllstm_parameter_count(2, hidden_size), "lstm": lstm_parameter_count(2, hidden_size)}
    for cell, (model, _, mse, seconds) in results.items():
        print(f"{cell:<9} {recurrent[cell]:>17,} {count_parameters(model):>13,} {mse:>9.4f} {seconds:>8.1f}")
    print(f"baseline (predict the mean): MSE {BASELINE_MSE:.3f}")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "adding_loss.png")
    plot_losses({cell: r[1] for cell, r in results.items()}, path, f"Adding problem, T={T}")
    print(f"loss curves: {path}")
    return {cell: r[2] for cell, r in results.items()}

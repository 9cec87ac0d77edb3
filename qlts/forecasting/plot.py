"""Forecast plot: the recent history, the forecast and (when given) a quantile band."""
from __future__ import annotations

from ..utils import atomic_write


def plot_forecast(history, forecast, path, *, column, band=None, actual=None, title=None):
    """Write a PNG to ``path``. ``history``/``forecast``/``actual`` are frames holding ``column``;
    ``band`` is (lower, upper) Series or None."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(history.index, history[column], color="black", linewidth=1, label="history")
    if actual is not None:
        ax.plot(actual.index, actual[column], color="gray", linewidth=1, label="actual")
    if band is not None:
        ax.fill_between(forecast.index, band[0], band[1], color="tab:blue", alpha=0.25,
                        label=f"{band[0].name}-{band[1].name} quantile band" if band[0].name is not None else "band")
    ax.plot(forecast.index, forecast[column], color="tab:blue", linewidth=1.5, label="forecast")
    ax.set(title=title or f"forecast of {column}", ylabel=str(column))
    ax.legend(loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)

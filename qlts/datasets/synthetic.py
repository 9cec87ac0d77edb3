"""Synthetic multichannel sensor data: the demo's fallback when no real data is at hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from qlts._validation import check_float, check_int


def make_sensor_stream(n_steps: int = 2160, n_channels: int = 4, freq="h", seed: int = 0, *,
                       start="2024-01-01", missing_fraction: float = 0.02) -> pd.DataFrame:
    """Deterministic synthetic readings of ``n_channels`` correlated sensors.

    Each channel is ``level + scale * z`` where ``z`` is the sum of
      - a daily cycle (two harmonics, a per-channel phase; visible at sub-daily ``freq``),
      - a weekly pattern (weekends lower, per-channel strength),
      - a slow linear trend,
      - AR(1) noise (phi = 0.7), part of it shared between channels,
    and a **regime change** at a random step between 40% and 60% of the span: from there on
    each channel's level shifts by 1-2 of its noise units, its daily amplitude grows by half
    and its noise by a third. **Gaps**: runs of NaN (mean length 8 steps) per channel, plus
    one outage of all channels at once, about ``missing_fraction`` of the values in all.

    Parameters
    ----------
    n_steps : int >= 2
    n_channels : int >= 1
    freq : pandas frequency (e.g. "h", "15min", "D")
    seed : int
        The same seed gives the same frame, bit for bit.
    start : anything ``pd.Timestamp`` accepts
    missing_fraction : float in [0, 0.5]
        0 gives a frame without gaps.

    Returns
    -------
    DataFrame with a ``DatetimeIndex`` named ``time`` (``freq`` set) and float64 columns
    ``sensor_0 .. sensor_{n_channels-1}``. ``df.attrs["regime_change"]`` is the timestamp
    of the first step of the new regime.
    """
    n_steps = check_int("n_steps", n_steps, min_value=2)
    n_channels = check_int("n_channels", n_channels, min_value=1)
    seed = check_int("seed", seed)
    missing_fraction = check_float("missing_fraction", missing_fraction, low=0.0, high=0.5)
    try:
        offset = to_offset(freq)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"freq: expected a pandas frequency such as 'h', '15min' or 'D', got {freq!r}") from exc
    try:
        start = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"start: expected a timestamp such as '2024-01-01', got {start!r}") from exc
    index = pd.date_range(start, periods=n_steps, freq=offset, name="time")
    rng = np.random.default_rng(seed)

    # Calendar drivers from the actual timestamps, so the cycles are daily/weekly at any freq.
    day_frac = np.asarray((index - index.normalize()) / pd.Timedelta(days=1), dtype=float)[:, None]
    weekend = np.asarray(index.day_of_week >= 5)[:, None]
    t = np.linspace(0.0, 1.0, n_steps)[:, None]

    phase = rng.uniform(0.0, 1.0, n_channels)
    daily_amp = rng.uniform(0.8, 2.0, n_channels)
    daily = daily_amp * (np.sin(2 * np.pi * (day_frac - phase)) + 0.3 * np.sin(4 * np.pi * (day_frac - phase)))
    weekly = -rng.uniform(0.3, 1.2, n_channels) * weekend
    trend = rng.uniform(-1.5, 1.5, n_channels) * t

    # AR(1) noise; a shared component makes the channels correlated like real co-located sensors.
    shocks = 0.6 * rng.standard_normal((n_steps, n_channels)) + 0.4 * rng.standard_normal((n_steps, 1))
    noise = np.empty_like(shocks)
    noise[0] = shocks[0]
    for i in range(1, n_steps):
        noise[i] = 0.7 * noise[i - 1] + shocks[i]
    noise *= 0.5

    change = int(rng.integers(int(0.4 * n_steps), int(0.6 * n_steps) + 1))
    after = (np.arange(n_steps) >= change)[:, None]
    shift = rng.choice([-1.0, 1.0], n_channels) * rng.uniform(1.0, 2.0, n_channels)
    z = (daily * np.where(after, 1.5, 1.0) + weekly + trend + noise * np.where(after, 4 / 3, 1.0)
         + shift * after)

    level = rng.uniform(10.0, 100.0, n_channels)
    scale = rng.uniform(1.0, 10.0, n_channels)
    values = level + scale * z
    _add_gaps(values, missing_fraction, rng)

    df = pd.DataFrame(values, index=index, columns=[f"sensor_{c}" for c in range(n_channels)])
    df.attrs["regime_change"] = index[min(change, n_steps - 1)]
    return df


def _add_gaps(values: np.ndarray, missing_fraction: float, rng: np.random.Generator) -> None:
    """Set NaN runs in place: one all-channel outage, then per-channel runs up to the budget."""
    n_steps, n_channels = values.shape
    budget = int(round(missing_fraction * n_steps))
    if budget == 0:
        return
    outage = min(budget, max(1, budget // 4), 24)
    begin = int(rng.integers(0, n_steps - outage + 1))
    values[begin:begin + outage] = np.nan
    for c in range(n_channels):
        missing = np.isnan(values[:, c])
        while missing.sum() < budget:
            length = min(int(rng.geometric(1 / 8)), budget - int(missing.sum()))
            begin = int(rng.integers(0, n_steps - length + 1))
            missing[begin:begin + length] = True
        values[missing, c] = np.nan

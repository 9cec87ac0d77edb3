"""Forecast a multichannel sensor stream with QL-LSTM, with a quantile band, against the naive forecast.

    python examples/forecast_sensors.py            # ~1 min on 2 CPU cores; writes sensors_forecast.png

The stream (qlts.datasets.make_sensor_stream) has daily and weekly cycles, a trend, a regime change and
gaps (NaN); the forecaster interpolates the gaps (nan_policy="interpolate").
"""
import numpy as np

from qlts.datasets import make_sensor_stream
from qlts.forecasting import NaiveForecaster, QLLSTMForecaster
from qlts.forecasting.plot import plot_forecast
from qlts.metrics import mean_absolute_error, mean_squared_error

N_WEEKS, HORIZON, MAX_EPOCHS = 12, 48, 15
PLOT = "sensors_forecast.png"


def main():
    stream = make_sensor_stream(n_steps=24 * 7 * N_WEEKS, n_channels=3, seed=1)  # hourly
    history, future = stream.iloc[:-HORIZON], stream.iloc[-HORIZON:]

    model = QLLSTMForecaster(lookback=168, horizon=HORIZON, segment_length=24, hidden_size=64, quantiles=(0.1, 0.9),
                             max_epochs=MAX_EPOCHS, random_state=0)
    model.fit(history)
    print("parameters:", model.parameter_counts_)

    forecast = model.predict()  # a DataFrame indexed by the next HORIZON hourly timestamps
    bands = model.predict_quantiles()
    naive = NaiveForecaster(horizon=HORIZON).fit(history).predict()

    seen = future.notna().to_numpy()  # score the observed values only (the stream has gaps)
    for name, pred in (("QL-LSTM", forecast), ("repeat last value", naive)):
        truth, p = future.to_numpy()[seen], pred.to_numpy()[seen]
        print(f"{name:<18} MSE {mean_squared_error(truth, p):9.3f}  MAE {mean_absolute_error(truth, p):7.3f}")
    low, high = bands.xs(0.1, axis=1, level="quantile"), bands.xs(0.9, axis=1, level="quantile")
    inside = (future >= low) & (future <= high)
    print(f"share of observed values inside the 10-90% band: {np.nanmean(inside.where(future.notna())):.2f}")

    plot_forecast(history.iloc[-3 * 168:], forecast, PLOT, column="sensor_0", actual=future,
                  band=(bands[("sensor_0", 0.1)].rename(0.1), bands[("sensor_0", 0.9)].rename(0.9)))
    print("plot:", PLOT)


if __name__ == "__main__":
    main()

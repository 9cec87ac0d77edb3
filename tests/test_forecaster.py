"""QLLSTMForecaster and its SegRNN network: shapes, indexes, quantiles, learning, reproducibility, bad input."""
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from conftest import BAD_SHARED_PARAMETERS
from qlts.forecasting import NaiveForecaster, QLLSTMForecaster
from qlts.nn import lstm_parameter_count, qllstm_parameter_count
from qlts.nn.forecasting import SegRNN

TINY = dict(segment_length=12, hidden_size=16, max_epochs=2, verbose=0, random_state=0, backend="torch")


def seasonal_frame(T=300, freq="h", seed=0, columns=("a", "b")):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    data = {c: np.sin(2 * np.pi * t / (24 / (j + 1))) + 0.1 * rng.standard_normal(T) + 5 * j
            for j, c in enumerate(columns)}
    return pd.DataFrame(data, index=pd.date_range("2024-03-01", periods=T, freq=freq))


# -- the network --------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["qllstm", "lstm", "gru"])
def test_network_shapes_and_recurrent_counts(cell):
    net = SegRNN(3, 50, 30, segment_length=12, d_model=16, cell=cell, n_covariates=2, backend="torch")
    assert net(torch.randn(4, 50, 5)).shape == (4, 30, 3)  # lookback 50 and horizon 30 not multiples of w
    counts = net.parameter_counts()
    expected = {"qllstm": qllstm_parameter_count(16, 16), "lstm": lstm_parameter_count(16, 16),
                "gru": 3 * 16 * (16 + 16) + 6 * 16}[cell]
    assert counts["recurrent"] == expected and counts["total"] > expected
    joint = SegRNN(3, 48, 24, segment_length=12, d_model=16, cell=cell, channel_independent=False, n_quantiles=3,
                   backend="torch")
    assert joint(torch.randn(2, 48, 3)).shape == (2, 24, 3, 3)


def test_reversible_normalisation_is_equivariant():
    torch.manual_seed(0)
    x = torch.randn(5, 48, 2, dtype=torch.float64)
    last = SegRNN(2, 48, 24, segment_length=12, d_model=16, norm="last", backend="torch").double().eval()
    shift = torch.tensor([3.0, -7.0], dtype=torch.float64)
    torch.testing.assert_close(last(x + shift), last(x) + shift)  # a level shift moves the forecast with it
    revin = SegRNN(2, 48, 24, segment_length=12, d_model=16, norm="revin", backend="torch").double().eval()
    x = 10 * x  # var ~100: the 1e-5 inside sqrt(var + eps) moves the scale by ~1e-7 only
    torch.testing.assert_close(revin(2.5 * x + shift), 2.5 * revin(x) + shift, rtol=1e-6, atol=1e-6)
    plain = SegRNN(2, 48, 24, segment_length=12, d_model=16, norm=None, backend="torch").double().eval()
    assert not torch.allclose(plain(x + shift), plain(x) + shift)  # the test can tell the difference


def test_zero_head_starts_as_the_naive_forecast():
    x = torch.randn(3, 48, 2)
    net = SegRNN(2, 48, 24, segment_length=12, d_model=16, zero_head=True, backend="torch").eval()
    torch.testing.assert_close(net(x), x[:, -1:, :].expand(3, 24, 2))


def test_channel_independence():
    net = SegRNN(3, 48, 24, segment_length=12, d_model=16, backend="torch").eval()
    x = torch.randn(2, 48, 3)
    y = x.clone()
    y[:, :, 1] += torch.randn(2, 48)  # only channel 1 changes
    a, b = net(x), net(y)
    torch.testing.assert_close(a[:, :, [0, 2]], b[:, :, [0, 2]])
    assert not torch.allclose(a[:, :, 1], b[:, :, 1])


# -- the estimator ------------------------------------------------------------------------------

@pytest.mark.parametrize("freq", ["h", "15min", "D"])
def test_forecast_index_continues_the_frequency_and_shape(freq):
    y = seasonal_frame(200, freq)
    model = QLLSTMForecaster(48, 12, **TINY).fit(y)
    pred = model.predict()
    assert pred.shape == (12, 2) and list(pred.columns) == ["a", "b"]
    expected = pd.date_range(y.index[-1], periods=13, freq=freq)[1:]
    pd.testing.assert_index_equal(pred.index, expected, check_names=False)
    assert np.isfinite(pred.to_numpy()).all()
    # from a given context: the index continues the context
    context = y.iloc[:150]
    pd.testing.assert_index_equal(model.predict(5, y=context).index,
                                  pd.date_range(context.index[-1], periods=6, freq=freq)[1:], check_names=False)


def test_range_index_array_and_series_inputs():
    y = seasonal_frame(160)
    series = pd.Series(y["a"].to_numpy(), index=pd.RangeIndex(10, 10 + 2 * 160, 2), name="load")
    pred = QLLSTMForecaster(48, 6, **TINY).fit(series).predict()
    pd.testing.assert_index_equal(pred.index, pd.RangeIndex(10 + 2 * 160, 10 + 2 * 166, 2))
    assert list(pred.columns) == ["load"]
    arr = QLLSTMForecaster(48, 6, **TINY).fit(y.to_numpy()).predict(9)  # 9 > horizon: recursive
    assert arr.shape == (9, 2) and list(arr.index) == list(range(160, 169))


def test_quantiles_do_not_cross_and_median_is_the_point_forecast():
    y = seasonal_frame(240)
    model = QLLSTMForecaster(48, 12, quantiles=[0.9, 0.1, 0.25], **TINY).fit(y)
    q = model.predict_quantiles()
    assert q.shape == (12, 6) and list(q.columns.get_level_values("quantile")[:3]) == [0.1, 0.25, 0.9]
    for col in ("a", "b"):
        band = q[col].to_numpy()
        assert (np.diff(band, axis=1) >= 0).all()
        assert (band[:, -1] - band[:, 0] > 0).any()  # a real band, not a line
    point = model.predict()
    assert ((point["a"] >= q[("a", 0.1)]) & (point["a"] <= q[("a", 0.9)])).all()
    # many contexts at once: the last window gives predict_quantiles' bands, per column
    windows = np.stack([y.to_numpy()[i:i + 48] for i in range(len(y) - 48 - 5, len(y) - 48 + 1)])
    bands = model.predict_windows(windows, quantiles=True)
    assert bands.shape == (6, 12, 2, 3)
    for j, col in enumerate(("a", "b")):
        np.testing.assert_allclose(bands[-1, :, j, :], q[col].to_numpy(), rtol=1e-5, atol=1e-6)
    median = model.predict_windows(windows)  # the trained 0.5 level, inside the band
    assert (bands[..., 0] <= median + 1e-6).all() and (median <= bands[..., 2] + 1e-6).all()
    with pytest.raises(ValueError, match=r"quantiles: expected a sequence of quantile levels at construction for "
                                         r"predict_windows\(quantiles=True\), got None"):
        QLLSTMForecaster(48, 12, **TINY).fit(y).predict_windows(windows, quantiles=True)


def test_learns_a_seasonal_series_beyond_the_naive_forecast():
    y = seasonal_frame(800, seed=1)
    train, test = y.iloc[:-24], y.iloc[-24:]
    model = QLLSTMForecaster(48, 24, segment_length=12, hidden_size=32, max_epochs=20, lr=3e-3, batch_size=256,
                             loss="mse", alpha=0.0, random_state=0, verbose=0, backend="torch").fit(train)
    mse = ((model.predict() - test) ** 2).to_numpy().mean()
    naive = ((NaiveForecaster().fit(train).predict(24) - test) ** 2).to_numpy().mean()
    assert mse < 0.5 * naive, (mse, naive)
    assert model.history_[-1, "valid_loss"] < model.history_[0, "valid_loss"]


def test_default_epoch_budget_lets_a_short_series_train():
    """A 100-month series makes 1 batch an epoch: 30 epochs stopped the default model far from
    converged (8x the test MSE here). max_epochs=None allows 1,000 steps; early stopping ends it."""
    t = np.arange(112)
    y = pd.Series(100 + 2 * t + 30 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 5, 112),
                  index=pd.date_range("2010-01-01", periods=112, freq="MS"))
    train, test = y.iloc[:-12], y.iloc[-12:].to_numpy()
    model = QLLSTMForecaster(24, 12, random_state=0, verbose=0).fit(train)
    assert model.max_epochs_ == 1000  # 80 training rows, 45 windows: 1 batch of 64 an epoch
    assert 30 < len(model.history_) < model.max_epochs_  # early stopping ended it, after the old cap of 30
    capped = QLLSTMForecaster(24, 12, max_epochs=30, random_state=0, verbose=0).fit(train)
    assert capped.max_epochs_ == 30 and len(capped.history_) == 30
    error = ((model.predict().to_numpy()[:, 0] - test) ** 2).mean()
    assert error < 0.5 * ((capped.predict().to_numpy()[:, 0] - test) ** 2).mean()


def test_default_epoch_budget_is_30_where_that_makes_1000_steps():
    model = QLLSTMForecaster(batch_size=64)
    assert model._epoch_budget(34 * 64) == 30 and model._epoch_budget(64) == 1000 and model._epoch_budget(65) == 500
    assert QLLSTMForecaster(max_epochs=7)._epoch_budget(64) == 7


def test_learning_rate_is_one_default_for_every_cell_and_horizon():
    # Session 13 lowered QL-LSTM's rate at horizons >= 336; ETTm1 contradicted it (session 14).
    y = seasonal_frame(500, columns=("a",))
    long = QLLSTMForecaster(24, 336, **TINY).fit(y)
    assert long.lr == long.lr_ == 3e-4 and long.net_.optimizer_.param_groups[0]["lr"] == 3e-4
    assert QLLSTMForecaster(24, 336, **{**TINY, "cell": "lstm"})._learning_rate() == 3e-4
    assert QLLSTMForecaster(24, 720, lr=None)._learning_rate() == 3e-4  # as files saved with lr=None hold
    given = QLLSTMForecaster(24, 12, **{**TINY, "lr": 5e-3}).fit(y)
    assert given.lr_ == 5e-3 and given.net_.optimizer_.param_groups[0]["lr"] == 5e-3


def test_reproducible_and_clonable():
    y = seasonal_frame(200)
    before = torch.random.get_rng_state()
    a = QLLSTMForecaster(48, 12, **TINY).fit(y).predict()
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is untouched
    torch.manual_seed(123)  # nor does the global state matter
    b = QLLSTMForecaster(48, 12, **TINY).fit(y).predict()
    pd.testing.assert_frame_equal(a, b)
    c = QLLSTMForecaster(48, 12, **{**TINY, "random_state": 1}).fit(y).predict()
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    d = QLLSTMForecaster(48, 12, **{**TINY, "random_state": np.random.RandomState(0)}).fit(y).predict()
    assert d.shape == a.shape and np.isfinite(d.to_numpy()).all()  # a RandomState seeds it too, as in sklearn
    model = QLLSTMForecaster(48, 12, **TINY).set_params(alpha=0.3, cell="gru")
    copy = clone(model)
    assert copy.get_params()["alpha"] == 0.3 and copy.get_params()["cell"] == "gru"
    assert not hasattr(copy, "net_")


def test_covariates_are_used_and_required_for_a_new_context():
    y = seasonal_frame(240)
    X = pd.DataFrame({"temp": np.roll(y["a"].to_numpy(), -3)}, index=y.index)  # leads y by 3 steps
    model = QLLSTMForecaster(48, 12, **TINY).fit(y, X)
    assert model.covariate_columns_ == ["temp"]
    base = model.predict()
    pd.testing.assert_frame_equal(model.predict(X=X), base)
    assert not np.allclose(model.predict(X=X * 3).to_numpy(), base.to_numpy())
    with pytest.raises(ValueError, match=r"X: expected the covariates \['temp'\] covering the context y"):
        model.predict(y=y.iloc[:100])
    with pytest.raises(ValueError, match="X: expected covariates covering every row of y from"):
        model.predict(y=y.iloc[:100], X=X.iloc[:90])
    with pytest.raises(ValueError, match=r"horizon: expected <= 12 \(the trained horizon\) with covariates"):
        model.predict(20)


def test_a_constant_covariate_is_only_centred():
    y = seasonal_frame(240)
    X = pd.DataFrame({"plant": 123.456, "temp": y["a"] * 2}, index=y.index)  # std 4e-14 by rounding
    model = QLLSTMForecaster(48, 12, **TINY).fit(y, X)
    assert model.scale_[2] == 1.0 and model.scale_[3] > 1.0
    np.testing.assert_allclose(model.mean_[2], 123.456)


def test_nan_policies_and_no_mutation():
    y = seasonal_frame(200)
    y.iloc[[20, 21, 120], 0] = np.nan
    before = y.copy()
    QLLSTMForecaster(48, 12, **TINY).fit(y)  # interpolate (default)
    pd.testing.assert_frame_equal(y, before)
    dropped = QLLSTMForecaster(48, 12, nan_policy="drop", **TINY).fit(y)
    assert np.isfinite(dropped.predict().to_numpy()).all()  # the last lookback rows are complete
    with pytest.raises(ValueError, match=r"y: expected no NaN with nan_policy='raise', got 3 NaN \(first at"):
        QLLSTMForecaster(48, 12, nan_policy="raise", **TINY).fit(y)
    late = y.copy()
    late.iloc[-5, 1] = np.nan
    with pytest.raises(ValueError, match="y: expected no NaN in the last lookback=48 rows"):
        QLLSTMForecaster(48, 12, nan_policy="drop", **TINY).fit(late).predict()


def test_trading_days_get_the_business_day_hint_and_it_works():
    """Daily closes skip weekends and holidays: the error says to put them on 'B', and after
    ``asfreq('B')`` the holidays are NaN, interpolated, and the forecast runs on business days."""
    days = pd.bdate_range("2024-01-01", periods=120).delete([10, 55])  # two holidays
    closes = pd.Series(100 + np.cumsum(np.random.default_rng(0).standard_normal(len(days))), index=days)
    with pytest.raises(ValueError, match=r"y: expected a regular DatetimeIndex .* with y.asfreq\('B'\)"):
        QLLSTMForecaster(24, 5, **TINY).fit(closes)
    forecast = QLLSTMForecaster(24, 5, **TINY).fit(closes.asfreq("B")).predict()
    assert list(forecast.index) == list(pd.bdate_range(days[-1], periods=6)[1:])


def test_an_index_without_a_freq_attribute_gives_no_warning():
    """A series read from a file has freq None; inferring it must not raise pandas' FutureWarnings."""
    y = seasonal_frame(120)
    y.index = pd.DatetimeIndex(list(y.index))
    assert y.index.freq is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forecast = QLLSTMForecaster(24, 6, **TINY).fit(y).predict()
    assert forecast.index[0] == y.index[-1] + pd.Timedelta(hours=1)


def test_bad_input():
    y = seasonal_frame(100)
    with pytest.raises(ValueError, match=r"y: expected at least lookback \+ horizon = 96 \+ 24 = 120 rows, got 100"):
        QLLSTMForecaster(96, 24, **TINY).fit(y)
    irregular = y.drop(y.index[[10, 11, 40]])
    with pytest.raises(ValueError, match=r"y: expected a regular DatetimeIndex .* with y.asfreq\('h'\)"):
        QLLSTMForecaster(24, 6, **TINY).fit(irregular)
    dup = y.copy()
    dup.index = dup.index[:50].append(dup.index[49:99])
    with pytest.raises(ValueError, match="y: expected a unique index, got duplicated label"):
        QLLSTMForecaster(24, 6, **TINY).fit(dup)
    with pytest.raises(ValueError, match="horizon: expected an int >= 1, got 0"):
        QLLSTMForecaster(24, 0, **TINY).fit(y)
    with pytest.raises(NotFittedError):
        QLLSTMForecaster(24, 6).predict()
    model = QLLSTMForecaster(24, 6, **TINY).fit(y)
    with pytest.raises(ValueError, match="horizon: expected an int >= 1, got -2"):
        model.predict(-2)
    with pytest.raises(ValueError, match=r"y: expected columns \['a', 'b'\], got \['a', 'c'\]"):
        model.predict(y=y.rename(columns={"b": "c"}))
    with pytest.raises(ValueError, match="X: expected None \\(the model was fit without covariates\\)"):
        model.predict(X=y)
    with pytest.raises(ValueError, match=r"cell: expected one of \[.*'qllstm'.*\], got 'rnn'"):
        QLLSTMForecaster(24, 6, cell="rnn").fit(y)
    with pytest.raises(ValueError, match=r"quantiles: expected a float in \(0.0, 1.0\), got 1.5"):
        QLLSTMForecaster(24, 6, quantiles=[0.1, 1.5]).fit(y)
    with pytest.raises(ValueError, match="quantiles: expected a sequence of quantile levels at construction"):
        model.predict_quantiles()
    with pytest.raises(TypeError, match="y: expected a pandas Series/DataFrame or a numpy array, got str"):
        QLLSTMForecaster(24, 6).fit("data.csv")
    monthly = y.set_axis(pd.period_range("2000-01", periods=len(y), freq="M"))
    with pytest.raises(TypeError, match=r"y: expected a DatetimeIndex .*got a PeriodIndex \(freq M\); convert it "
                                        r"with y.to_timestamp\(\)"):
        QLLSTMForecaster(24, 6, **TINY).fit(monthly)
    assert len(QLLSTMForecaster(24, 6, **TINY).fit(monthly.to_timestamp()).predict()) == 6  # the advice works


@pytest.mark.parametrize("param, value, error, message", [
    # each reached torch, sklearn or os.path unnamed, or was accepted silently ("no" is truthy)
    *BAD_SHARED_PARAMETERS,
    ("affine", "no", ValueError, r"affine: expected one of \[False, True\], got 'no'"),
    ("zero_head", "no", ValueError, r"zero_head: expected one of \[False, True\], got 'no'"),
])
def test_bad_parameter_names_itself_at_fit(param, value, error, message):
    y = seasonal_frame(40)
    with pytest.raises(error, match=message):
        QLLSTMForecaster(8, 4, **{**TINY, "segment_length": 4, "hidden_size": 4, "max_epochs": 1, param: value}).fit(y)


def test_ragged_or_non_numeric_input_names_the_argument():
    """Bug: nested lists of unequal lengths (y, X) and non-numeric windows leaked numpy's "setting
    an array element with a sequence" / "could not convert string to float" without the argument."""
    ragged = [[1.0], [2.0, 3.0]] * 10
    with pytest.raises(ValueError, match=r"y: expected a \(T,\) or \(T, k\) array, got list that does not convert"):
        QLLSTMForecaster(4, 2, **TINY).fit(ragged)
    y = np.sin(np.arange(20.0))
    with pytest.raises(ValueError, match=r"X: expected a \(T,\) or \(T, k\) array, got list that does not convert"):
        QLLSTMForecaster(4, 2, **TINY).fit(y, X=ragged)
    model = QLLSTMForecaster(4, 2, **{**TINY, "segment_length": 2, "hidden_size": 4, "max_epochs": 1}).fit(y)
    with pytest.raises(ValueError, match=r"windows: expected a numeric array \(n, lookback, columns\), got list"):
        model.predict_windows([[["a"]] * 4])
    with pytest.raises(ValueError, match=r"windows: expected a numeric array \(n, lookback, columns\), got list"):
        model.predict_windows([[[1.0]] * 4, [[1.0]] * 3])

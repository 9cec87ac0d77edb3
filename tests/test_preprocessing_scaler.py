"""SequenceScaler: scikit-learn's estimator checks, statistics, round trips, pipelines."""
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from qlts.preprocessing import SequenceScaler

METHODS = ["standard", "minmax", "robust"]

# A 2-D X is (n, T) univariate sequences: T is a sequence length, not a feature count, so
# any T is accepted after fitting and n_features_in_ counts channels (1), not columns.
_UNIVARIATE = "2-D X is (n, T) univariate: n_features_in_ counts channels (1) and any sequence length T is accepted"
EXPECTED_FAILED = {
    "check_n_features_in": _UNIVARIATE,
    "check_n_features_in_after_fitting": _UNIVARIATE,
    "check_transformer_general": _UNIVARIATE,
}


@parametrize_with_checks([SequenceScaler(m) for m in METHODS], expected_failed_checks=lambda est: EXPECTED_FAILED,
                         xfail_strict=True)
def test_sklearn_checks(estimator, check):
    check(estimator)


def windows(seed=0, n=40, steps=12, channels=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    # channels on very different scales and offsets, so per-channel statistics matter
    X = rng.standard_normal((n, steps, channels)) * np.array([1.0, 50.0, 0.01])[:channels] + np.array(
        [0.0, 1000.0, -3.0])[:channels]
    return X.astype(dtype)


@pytest.mark.parametrize("method, oracle", [("standard", StandardScaler()), ("minmax", MinMaxScaler((-1, 2))),
                                            ("robust", RobustScaler(quantile_range=(10, 90)))])
def test_matches_sklearn_scaler_on_flattened_steps(method, oracle):
    X_train, X_test = windows(0), windows(1, n=7)
    scaler = SequenceScaler(method, feature_range=(-1, 2), quantile_range=(10, 90)).fit(X_train)
    oracle.fit(X_train.reshape(-1, 3))
    want = oracle.transform(X_test.reshape(-1, 3)).reshape(X_test.shape)
    np.testing.assert_allclose(scaler.transform(X_test), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_and_dtype(method, dtype):
    X = windows(2, dtype=dtype)
    X[3, 4, 1] = np.nan
    before = X.copy()
    scaler = SequenceScaler(method).fit(X)
    Z = scaler.transform(X)
    assert Z.dtype == dtype and Z.shape == X.shape
    assert np.isnan(Z[3, 4, 1]) and np.isnan(Z).sum() == 1  # NaN ignored in fit, kept in transform
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=tol, atol=tol * np.nanmax(np.abs(X)))
    np.testing.assert_array_equal(X, before)  # input untouched
    if method == "standard":
        flat = Z.reshape(-1, 3)
        np.testing.assert_allclose(np.nanmean(flat, 0), 0, atol=1e-4 if dtype == np.float32 else 1e-10)
        np.testing.assert_allclose(np.nanstd(flat, 0), 1, rtol=1e-4 if dtype == np.float32 else 1e-10)


def test_two_d_is_univariate():
    X = windows(3, channels=1)[:, :, 0]
    scaler = SequenceScaler("minmax").fit(X)
    assert scaler.n_features_in_ == 1
    Z = scaler.transform(X[:5, :7])  # any sequence length
    assert Z.shape == (5, 7)
    np.testing.assert_allclose(Z, (X[:5, :7] - X.min()) / (X.max() - X.min()))
    np.testing.assert_allclose(scaler.inverse_transform(Z), X[:5, :7])


@pytest.mark.parametrize("method", METHODS)
def test_constant_channel_is_only_centred(method):
    X = windows(4)
    X[:, :, 1] = 7.0
    X[:, :, 2] = 123.456  # its computed std is 4e-14, not 0: rounding, not spread
    assert np.std(X[:, :, 2]) > 0
    scaler = SequenceScaler(method).fit(X)
    assert scaler.scale_[1:].tolist() == [1.0, 1.0]
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z[:, :, 1:], 0.0, atol=1e-9)  # the mean's rounding; a std of 4e-14 gave +-1


def test_standard_keeps_a_small_spread_in_small_units():
    X = windows(5) * 1e-20  # a real spread far below float64's epsilon, on values as small
    Z = SequenceScaler().fit_transform(X)
    np.testing.assert_allclose(Z.reshape(-1, 3).std(0), 1.0, rtol=1e-10)


def test_bad_input():
    scaler = SequenceScaler().fit(windows(5))
    with pytest.raises(ValueError, match=r"X: expected 3 channels .*got 2"):
        scaler.transform(windows(5, channels=2))
    with pytest.raises(ValueError, match=r"X: expected a 3-D array \(n, T, F\).*got ndim=4"):
        scaler.transform(np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"method: expected one of \['minmax', 'robust', 'standard'\], got 'z'"):
        SequenceScaler("z").fit(windows(5))
    with pytest.raises(ValueError, match=r"feature_range: expected a pair \(low, high\).*got \(1, 0\)"):
        SequenceScaler("minmax", feature_range=(1, 0)).fit(windows(5))
    with pytest.raises(ValueError, match=r"quantile_range\[1\]: expected a float in \[0, 100\], got 120.0"):
        SequenceScaler("robust", quantile_range=(5, 120)).fit(windows(5))
    X = windows(5)
    X[:, :, 1] = np.nan
    with pytest.raises(ValueError, match=r"X: expected at least one non-NaN value per channel"):
        SequenceScaler().fit(X)


def test_ragged_list_and_infinite_feature_range():
    """Bug: a ragged nested list leaked numpy's "setting an array element with a sequence", and an
    infinite feature_range was accepted (the minmax scale became 0, then 1: the range was ignored)."""
    with pytest.raises(ValueError, match=r"X: expected an array-like \(n, T, F\) or \(n, T\), got list that does not convert"):
        SequenceScaler().fit([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"feature_range\[1\]: expected a float in \(-inf, inf\), got inf"):
        SequenceScaler("minmax", feature_range=(0, float("inf"))).fit(windows(5))


def test_pipeline_with_skorch_regressor_clones_and_fits():
    skorch = pytest.importorskip("skorch")
    from qlts.nn import SequenceModel

    rng = np.random.default_rng(0)
    X = windows(6, n=64, steps=10).astype(np.float32)
    y = X[:, -1, :1].copy()  # the last value of channel 0
    net = skorch.NeuralNetRegressor(SequenceModel, module__input_size=3, module__n_outputs=1,
                                    module__hidden_size=8, module__cell="lstm", max_epochs=2, lr=0.01,
                                    optimizer=torch.optim.Adam, train_split=None, verbose=0)
    pipe = Pipeline([("scale", SequenceScaler("robust")), ("net", net)])
    copy = clone(pipe)
    assert copy.get_params()["scale__method"] == "robust" and copy.named_steps["scale"] is not pipe.named_steps["scale"]
    torch.manual_seed(0)
    copy.fit(X, y)
    pred = copy.predict(X[rng.permutation(64)[:5]])
    assert pred.shape == (5, 1) and np.isfinite(pred).all()
    assert not hasattr(pipe.named_steps["scale"], "center_")  # the original stays unfitted

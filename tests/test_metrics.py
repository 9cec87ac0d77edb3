"""qlts.metrics against hand computations, and their bad input."""
import numpy as np
import pandas as pd
import pytest

from qlts.metrics import (get_metric, interval_coverage, mean_absolute_error, mean_absolute_scaled_error,
                          mean_pinball_loss, mean_squared_error, pinball_loss)


def test_mse_mae_by_hand():
    y, p = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])
    assert mean_squared_error(y, p) == pytest.approx((1 + 0 + 9) / 3)
    assert mean_absolute_error(y, p) == pytest.approx((1 + 0 + 3) / 3)
    frame = pd.DataFrame({"a": y, "b": y + 1})
    assert mean_squared_error(frame, frame + 2) == pytest.approx(4.0)


def test_mase_scales_by_in_sample_seasonal_naive():
    train = np.array([1.0, 3.0, 2.0, 5.0, 4.0])  # naive lag-1 abs diffs 2,1,3,1 -> 1.75; lag-2: 1,2,2 -> 5/3
    y, p = np.array([4.0, 6.0]), np.array([5.0, 4.0])  # MAE 1.5
    assert mean_absolute_scaled_error(y, p, y_train=train) == pytest.approx(1.5 / 1.75)
    assert mean_absolute_scaled_error(y, p, y_train=train, seasonality=2) == pytest.approx(1.5 / (5 / 3))


def test_pinball_by_hand():
    y, p = np.array([10.0, 10.0]), np.array([8.0, 13.0])
    # under-forecast by 2 costs q*2, over-forecast by 3 costs (1-q)*3
    assert pinball_loss(y, p, 0.9) == pytest.approx((0.9 * 2 + 0.1 * 3) / 2)
    assert pinball_loss(y, p, 0.5) == pytest.approx(mean_absolute_error(y, p) / 2)


def test_quantile_forecast_metrics_by_hand():
    y = np.array([10.0, 10.0, 20.0])
    bands = np.array([[8.0, 13.0], [11.0, 12.0], [15.0, 25.0]])  # (n, levels) for levels 0.1 and 0.9
    by_level = [pinball_loss(y, bands[:, 0], 0.1), pinball_loss(y, bands[:, 1], 0.9)]
    assert mean_pinball_loss(y, bands, [0.1, 0.9]) == pytest.approx(np.mean(by_level))
    assert interval_coverage(y, bands, [0.1, 0.9]) == pytest.approx(2 / 3)  # 10 is below the second band
    assert interval_coverage(y, bands[:, ::-1], [0.9, 0.1]) == pytest.approx(2 / 3)  # levels in any order
    with pytest.raises(ValueError, match=r"y_quantiles: expected shape y_true.shape \+ \(len\(quantiles\),\) = "
                                         r"\(3, 3\), got \(3, 2\)"):
        mean_pinball_loss(y, bands, [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"quantiles: expected a float in \(0.0, 1.0\), got 1.5"):
        interval_coverage(y, bands, [0.1, 1.5])
    with pytest.raises(ValueError, match="y_quantiles: expected finite values, got 1 NaN/inf"):
        interval_coverage(y, np.where(bands == 25.0, np.nan, bands), [0.1, 0.9])


def test_bad_input():
    with pytest.raises(ValueError, match=r"y_pred: expected the shape of y_true \(3,\), got \(2,\)"):
        mean_squared_error([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="y_true: expected finite values, got 1 NaN"):
        mean_absolute_error([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match=r"quantile: expected a float in \(0.0, 1.0\), got 1.0"):
        pinball_loss([1.0], [1.0], 1.0)
    with pytest.raises(ValueError, match="y_train: expected a series whose seasonal naive in-sample MAE"):
        mean_absolute_scaled_error([1.0], [2.0], y_train=[3.0, 3.0, 3.0])
    with pytest.raises(ValueError, match=r"metrics: expected a callable or one of \['coverage', 'mae', 'mase', 'mse', "
                                         r"'pinball'\], got 'rm"):
        get_metric("rmse")


def test_values_that_are_not_numbers_name_the_argument():
    """Bug: strings, None or ragged lists leaked numpy's "could not convert string to float" /
    "setting an array element with a sequence", a scalar y_train an IndexError, and a list given as
    a metric name "unhashable type: 'list'"."""
    with pytest.raises(ValueError, match=r"y_true: expected numbers .*got list"):
        mean_squared_error(["a", "b"], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"y_pred: expected numbers .*got list"):
        mean_absolute_error([1.0, 2.0], [[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"y_train: expected numbers .*got list"):
        mean_absolute_scaled_error([1.0], [2.0], y_train=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"y_train: expected more than seasonality=1 rows, got a scalar"):
        mean_absolute_scaled_error([1.0], [2.0], y_train=5.0)
    with pytest.raises(ValueError, match=r"metrics: expected a callable or one of .*got \['mse'\]"):
        get_metric(["mse"])

"""Model selection for forecasters: historical backtests and a grid search built on them.

Both work with any object that has ``fit(y, X=None)`` and ``predict(horizon=None, X=None, y=None)``
(every forecaster in qlts, including :class:`NaiveForecaster`, the reference every report
compares against).

A fold with cutoff c trains on rows < c only (all of them for ``window="expanding"``, the last
``initial`` for ``"sliding"``) and forecasts rows c .. c + horizon - 1.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import ParameterGrid

from ._validation import check_choice, check_int
from .forecasting import NaiveForecaster
from .forecasting._series import align_covariates, as_frame
from .metrics import QUANTILE_METRICS, get_metric, mean_absolute_scaled_error

__all__ = ["BacktestFolds", "backtest", "ForecasterGridSearch", "NaiveForecaster"]

WINDOWS = ("expanding", "sliding")


@dataclass(frozen=True)
class BacktestFolds:
    """Fold layout: first cutoff at row ``initial``, then every ``step`` rows while a full
    ``horizon`` fits. ``window="sliding"`` trains on the last ``initial`` rows only."""

    initial: int
    step: int
    horizon: int
    window: str = "expanding"

    def __post_init__(self):
        check_int("initial", self.initial, min_value=1)
        check_int("step", self.step, min_value=1)
        check_int("horizon", self.horizon, min_value=1)
        check_choice("window", self.window, WINDOWS)

    def split(self, n_rows):
        """(train_start, cutoff) per fold; the test rows are cutoff .. cutoff + horizon - 1."""
        last = n_rows - self.horizon
        if self.initial > last:
            raise ValueError(f"initial: expected <= len(y) - horizon = {n_rows} - {self.horizon} = {last} so that "
                             f"at least one fold fits, got {self.initial}")
        return [(0 if self.window == "expanding" else c - self.initial, c)
                for c in range(self.initial, last + 1, self.step)]


def _check_forecaster(forecaster):
    if isinstance(forecaster, type) or not all(hasattr(forecaster, a) for a in ("fit", "predict", "get_params")):
        what = f"the class {forecaster.__name__}" if isinstance(forecaster, type) else type(forecaster).__name__
        raise TypeError(f"forecaster: expected a forecaster instance with fit, predict and get_params "
                        f"(such as QLLSTMForecaster(...)), got {what}")


def _check_scored_rows(truth):
    # gaps in the user's y: name y (the metrics' own errors would name their y_true / y_train)
    if not np.isfinite(truth).all():
        raise ValueError("y: expected finite values in every row a fold forecasts (they are scored), got NaN/inf; "
                         "fill the gaps, or choose initial/step/horizon so that no fold covers them")


def _score(name, metric, truth, pred, train):
    if metric is mean_absolute_scaled_error:
        if not np.isfinite(train).all():
            raise ValueError(f"y: expected finite training rows for metrics {name!r} (scaled by their naive "
                             "in-sample error), got NaN/inf; fill the gaps or use other metrics")
        try:
            return metric(truth, pred, y_train=train)
        except ValueError as exc:  # the user passed metrics and y, not the fold's y_train: name those
            raise ValueError(f"metrics: {name!r} is undefined on a fold whose training rows give no scale "
                             f"(too short or constant); use other metrics or a larger initial ({exc})") from exc
    return metric(truth, pred)


def backtest(forecaster, y, X=None, *, initial=None, step=None, horizon=None, window="expanding", refit=True,
             metrics=("mse", "mae"), cv=None, n_jobs=None):
    """Historical forecasts of ``forecaster`` over rolling cutoffs.

    Give the folds either as ``initial``/``step``/``horizon``/``window`` or as ``cv``, a
    :class:`BacktestFolds`. ``refit=True`` fits a fresh clone at every cutoff; ``False`` fits once
    at the first cutoff and then only forecasts from each later cutoff's history; an int n
    refits every n folds. ``metrics`` are names ("mse", "mae", "mase") or callables
    ``f(y_true, y_pred)``, computed on the original scale over all target columns. For a
    forecaster with ``quantiles``, "pinball" (the loss averaged over its quantiles) and
    "coverage" (the share of values inside its outermost quantiles) score the quantile forecasts,
    which ``forecasts`` then holds too (columns ``<column>_q<level>``).
    ``n_jobs`` runs the fits in parallel through joblib (each model with the folds it forecasts),
    so ``with joblib.parallel_backend("dask"):`` distributes them; the results do not depend on it.

    Returns ``(scores, forecasts)``: one row per fold (fold, cutoff, n_train, fit_time, metrics),
    and a long frame of every forecast (fold, cutoff, the timestamp, and per column the forecast
    and the truth).
    """
    _check_forecaster(forecaster)
    frame = as_frame(y, "y")
    cov = align_covariates(X, frame, "X")
    if cv is not None and (initial, step, horizon) != (None, None, None):
        raise ValueError(f"cv: expected either cv or initial/step/horizon, got both (cv={cv!r}, initial={initial!r}, "
                         f"step={step!r}, horizon={horizon!r})")
    if cv is None:
        if initial is None or horizon is None:
            raise ValueError(f"initial/horizon: expected ints (or cv=BacktestFolds(...)), got initial={initial!r}, "
                             f"horizon={horizon!r}")
        cv = BacktestFolds(initial, horizon if step is None else step, horizon, window)
    elif not isinstance(cv, BacktestFolds):
        raise TypeError(f"cv: expected a BacktestFolds, got {type(cv).__name__}")
    if isinstance(refit, bool):
        every = 1 if refit else 0
    else:
        every = check_int("refit", refit, min_value=1)
    if not isinstance(metrics, (list, tuple)):  # a str would be read as one metric per character
        hint = f"; use metrics=({metrics!r},)" if isinstance(metrics, str) else ""
        raise TypeError(f"metrics: expected a list or tuple of metric names or callables, got "
                        f"{type(metrics).__name__} {metrics!r}{hint}")
    scorers = {(m if isinstance(m, str) else getattr(m, "__name__", "metric")): get_metric(m) for m in metrics}
    quantile_metrics = [name for name, f in scorers.items() if f in QUANTILE_METRICS.values()]
    if quantile_metrics and getattr(forecaster, "quantiles", None) is None:
        raise ValueError(f"metrics: {quantile_metrics[0]!r} scores quantile forecasts, so it expects a forecaster "
                         f"with quantiles (such as QLLSTMForecaster(quantiles=[0.1, 0.9])), got {forecaster!r}")
    folds = list(enumerate(cv.split(len(frame))))
    # one block per fitted model: it is fit at the block's first fold and forecasts the others
    blocks = [folds[i:i + every] for i in range(0, len(folds), every)] if every else [folds]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_backtest_block)(forecaster, frame, cov, isinstance(y, pd.Series), cv.horizon, block, scorers)
        for block in blocks)
    rows = [row for block_rows, _ in results for row in block_rows]
    forecasts = [f for _, block_forecasts in results for f in block_forecasts]
    return pd.DataFrame(rows), pd.concat(forecasts).rename_axis("time").reset_index()


def _backtest_block(forecaster, frame, cov, series, horizon, folds, scorers):
    """Fit a clone of ``forecaster`` at the first of ``folds`` and forecast from every fold's cutoff."""
    # pass the user's kind of object back (Series stays Series), sliced by position
    as_user = (lambda f: f.iloc[:, 0]) if series else (lambda f: f)
    rows, forecasts, model = [], [], None
    for fold, (start, cutoff) in folds:
        train_y, train_X = frame.iloc[start:cutoff], None if cov is None else cov.iloc[start:cutoff]
        fit_time = 0.0
        if model is None:
            model = clone(forecaster)
            t0 = time.perf_counter()
            model.fit(as_user(train_y), train_X)
            fit_time = time.perf_counter() - t0
        pred = model.predict(horizon, X=train_X, y=as_user(train_y))
        truth = frame.iloc[cutoff:cutoff + horizon]
        pred = pd.DataFrame(np.asarray(pred, dtype=np.float64).reshape(truth.shape), index=truth.index,
                            columns=truth.columns)
        row = {"fold": fold, "cutoff": frame.index[cutoff], "n_train": cutoff - start, "fit_time": fit_time}
        scored = truth.to_numpy(), pred.to_numpy(), train_y.to_numpy()
        _check_scored_rows(scored[0])
        quantiles = None
        if any(f in QUANTILE_METRICS.values() for f in scorers.values()):
            quantiles = model.predict_quantiles(horizon, X=train_X, y=as_user(train_y))
            levels = list(quantiles.columns.levels[1])
            bands = quantiles.to_numpy().reshape(truth.shape + (len(levels),))  # columns are (column, level)
        row.update({name: f(scored[0], bands, levels) if f in QUANTILE_METRICS.values() else _score(name, f, *scored)
                    for name, f in scorers.items()})
        rows.append(row)
        long = pd.concat({"forecast": pred, "actual": truth}, axis=1)
        long.columns = [f"{col}_{kind}" for kind, col in long.columns]
        if quantiles is not None:
            long[[f"{col}_q{level:g}" for col, level in quantiles.columns]] = quantiles.to_numpy()
        forecasts.append(long.assign(fold=fold, cutoff=frame.index[cutoff]))
    return rows, forecasts


def _evaluate(forecaster, params, y, X, cv, refit_folds, scoring):
    scores, _ = backtest(clone(forecaster).set_params(**params), y, X, cv=cv, refit=refit_folds, metrics=(scoring,))
    return scores


class ForecasterGridSearch(BaseEstimator):
    """Exhaustive search over ``param_grid`` scored by a backtest (lower is better).

    ``param_grid`` is a dict of lists, or a list of such dicts (as in scikit-learn: one grid per
    kind of candidate, so a parameter is not crossed with candidates it does not apply to).
    ``cv`` is a :class:`BacktestFolds`; ``scoring`` a metric name or callable; ``n_jobs`` runs
    candidates in parallel through joblib (so ``with parallel_backend("dask"):`` distributes them).
    After ``fit``: ``best_params_``, ``best_score_``, ``cv_results_`` (sklearn layout: params,
    mean/std test score, rank, per-fold split scores, mean fit time) and, with ``refit=True``,
    ``best_forecaster_`` fit on the whole series, which ``predict`` uses.
    """

    def __init__(self, forecaster, param_grid, *, cv, scoring="mse", refit_folds=True, n_jobs=None, refit=True):
        self.forecaster = forecaster
        self.param_grid = param_grid
        self.cv = cv
        self.scoring = scoring
        self.refit_folds = refit_folds
        self.n_jobs = n_jobs
        self.refit = refit

    def fit(self, y, X=None):
        _check_forecaster(self.forecaster)
        if not isinstance(self.cv, BacktestFolds):
            raise TypeError(f"cv: expected a BacktestFolds, got {type(self.cv).__name__}")
        if get_metric(self.scoring) is QUANTILE_METRICS["coverage"]:
            raise ValueError("scoring: expected a loss to minimise, got 'coverage' (a calibrated band covers its "
                             "nominal share, neither the most nor the least); use 'pinball'")
        candidates = list(ParameterGrid(self.param_grid))
        if not candidates:
            raise ValueError(f"param_grid: expected at least one candidate, got {self.param_grid!r}")
        name = self.scoring if isinstance(self.scoring, str) else getattr(self.scoring, "__name__", "metric")
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(_evaluate)(self.forecaster, p, y, X, self.cv, self.refit_folds, self.scoring) for p in candidates)
        folds = np.array([r[name].to_numpy() for r in results])  # (candidates, folds)
        mean = folds.mean(axis=1)
        self.cv_results_ = {
            "params": candidates,
            "mean_test_score": mean,
            "std_test_score": folds.std(axis=1),
            "rank_test_score": pd.Series(mean).rank(method="min").astype(int).to_numpy(),
            "mean_fit_time": np.array([r["fit_time"].mean() for r in results]),
            **{f"split{i}_test_score": folds[:, i] for i in range(folds.shape[1])},
            **{f"param_{k}": np.array([p.get(k) for p in candidates], dtype=object)
               for k in sorted({k for p in candidates for k in p})},
        }
        self.best_index_ = int(np.argmin(mean))
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(mean[self.best_index_])
        if self.refit:
            self.best_forecaster_ = clone(self.forecaster).set_params(**self.best_params_).fit(y, X)
        return self

    def predict(self, horizon=None, X=None, y=None):
        if not hasattr(self, "best_forecaster_"):
            raise ValueError("ForecasterGridSearch: expected a call to fit(...) with refit=True before predict, "
                             "got none")
        return self.best_forecaster_.predict(horizon, X=X, y=y)

"""QLLSTMClassifier / QLLSTMRegressor: hyper-parameter routing, sklearn integration,
reproducibility, variable-length input, persistence, training conveniences, learning."""
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback
from torch import nn

import qlts
from conftest import BAD_SHARED_PARAMETERS
from qlts.estimators import QLLSTMClassifier, QLLSTMRegressor
from qlts.estimators._base import HoldOut
from qlts.estimators._data import BUCKET_POOL_BATCHES, LengthBucketSampler, dataset_lengths
from qlts.nn import QLLSTM
from qlts.preprocessing import SequenceScaler, make_windows
from qlts.utils import resolve_device

# Tiny nets on short sequences, so the reference backend (no compiled kernel) is fast enough.
FAST = dict(hidden_size=6, max_epochs=2, batch_size=16, lr=0.02, backend="torch", random_state=0)


def sequences(n=48, T=8, F=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, T, F)).astype(np.float32)


def labels(X):
    """A learnable 3-class label: the sign pattern of the first channel's sum."""
    s = X[:, :, 0].sum(1)
    return np.where(s > 1, "up", np.where(s < -1, "down", "flat"))


def ragged(n=12, F=2, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(T), F)).astype(np.float32) for T in rng.integers(2, 12, size=n)]


# --- hyper-parameters -----------------------------------------------------------------------

def test_top_level_params_reach_the_module():
    X = sequences()
    y = X[:, -1, 0]
    est = QLLSTMRegressor(**{**FAST, "hidden_size": 5}, alpha=0.3, skip=2, num_layers=2, pooling="mean",
                          bidirectional=True).fit(X, y)
    rnn = est.module_.encoder.rnn
    assert isinstance(rnn, QLLSTM)
    assert (rnn.alpha, rnn.skip, rnn.hidden_size, rnn.num_layers, rnn.bidirectional) == (0.3, 2, 5, 2, True)
    assert est.module_.encoder.pooling == "mean"
    assert est.module_.head.out_features == 1

    est.set_params(cell="gru").fit(X, y)
    assert isinstance(est.module_.encoder.rnn, nn.GRU)
    est.set_params(cell="bilstm", bidirectional=False).fit(X, y)
    assert isinstance(est.module_.encoder.rnn, nn.LSTM) and est.module_.encoder.rnn.bidirectional


def test_skorch_routing_still_works():
    X = sequences()
    y = labels(X)
    epochs = []

    class CountEpochs(Callback):
        def on_epoch_end(self, net, **kwargs):
            epochs.append(len(net.history))

    est = QLLSTMClassifier(**FAST, module__hidden_size=7, optimizer="sgd", optimizer__momentum=0.5,
                           callbacks=[("count", CountEpochs())]).fit(X, y)
    assert est.module_.encoder.rnn.hidden_size == 7  # module__* wins over hidden_size=6
    assert isinstance(est.optimizer_, torch.optim.SGD)
    assert est.optimizer_.param_groups[0]["momentum"] == 0.5
    assert est.optimizer_.param_groups[0]["lr"] == FAST["lr"]
    assert epochs == [1, 2]


def test_get_params_lists_top_level_params_and_clone_keeps_them():
    est = QLLSTMClassifier(alpha=0.3, cell="lstm", early_stopping=True)
    params = est.get_params()
    for name in ("cell", "hidden_size", "num_layers", "bidirectional", "alpha", "skip", "skip_mode", "learn_alpha",
                 "dropout", "input_dropout", "pooling", "embedding_dim", "vocab_size", "lr", "max_epochs", "batch_size",
                 "optimizer", "device", "random_state", "verbose", "early_stopping", "patience",
                 "gradient_clip"):
        assert name in params
    assert params["device"] == "auto" and params["train_split"] is None
    assert repr(est) == "QLLSTMClassifier(cell='lstm', alpha=0.3, early_stopping=True)"
    twin = clone(est)
    assert twin.get_params(deep=False)["alpha"] == 0.3 and twin.cell == "lstm"
    assert not hasattr(twin, "module_")


def test_device_auto_resolves_but_stays_auto_in_params():
    est = QLLSTMClassifier(**FAST).fit(sequences(), labels(sequences()))
    assert est.device == resolve_device("auto")
    assert est.get_params()["device"] == "auto"
    assert next(est.module_.parameters()).device.type == resolve_device("auto")


def test_grid_search_over_alpha_and_cell_in_a_pipeline():
    X = sequences(n=40)
    y = labels(X)
    pipe = make_pipeline(SequenceScaler(), QLLSTMClassifier(**FAST))
    grid = {"qllstmclassifier__alpha": [0.0, 0.1, 0.3], "qllstmclassifier__cell": ["qllstm", "lstm"]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_[-1]
    rnn = best.module_.encoder.rnn
    if search.best_params_["qllstmclassifier__cell"] == "qllstm":
        assert rnn.alpha == search.best_params_["qllstmclassifier__alpha"]
    else:
        assert isinstance(rnn, nn.LSTM)
    # train_split=None: the refit trained on every row, none held out for validation
    assert sum(best.history[0, "batches", :, "train_batch_size"]) == len(X)
    assert "valid_loss" not in best.history[0]


# --- reproducibility and persistence --------------------------------------------------------

def test_refit_with_same_random_state_is_bit_identical():
    X = sequences()
    y = labels(X)
    kw = {**FAST, "num_layers": 2, "dropout": 0.3}  # dropout must be seeded too
    before = torch.random.get_rng_state()
    a = QLLSTMClassifier(**kw).fit(X, y)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is untouched
    b = QLLSTMClassifier(**kw).fit(X, y)
    c = QLLSTMClassifier(**{**kw, "random_state": 1}).fit(X, y)
    for (name, pa), pb in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_partial_fit_in_turn_matches_partial_fit_alone():
    """Estimators trained round robin, one partial_fit each, draw from their own random streams:
    each ends as it would alone, and the caller's global RNG is untouched."""
    X = sequences()
    y = labels(X)
    kw = {**FAST, "max_epochs": 1, "num_layers": 2, "dropout": 0.3}

    def train(estimators, rounds=3):
        for _ in range(rounds):
            for est in estimators:
                est.partial_fit(X, y)
        return estimators

    before = torch.random.get_rng_state()
    a, b = train([QLLSTMClassifier(**kw), QLLSTMClassifier(**{**kw, "random_state": 1})])
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(123)  # a different global state must not matter either
    (alone,) = train([QLLSTMClassifier(**kw)])
    for (name, pa), pb in zip(a.module_.state_dict().items(), alone.module_.state_dict().values()):
        assert torch.equal(pa, pb), name
    # the stream goes on from call to call: three one-epoch calls differ from a single one
    (once,) = train([QLLSTMClassifier(**kw)], rounds=1)
    assert not np.array_equal(once.predict_proba(X), alone.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))


# --- sample_weight ------------------------------------------------------------------------------

def _weights(est):
    return [p.detach().clone() for p in est.module_.parameters()]


def test_zero_weight_rows_do_not_train_and_weights_are_scale_free():
    """Rows of weight 0 never reach the weights: flipping their labels changes nothing; and a
    batch's loss is a weighted mean, so every weight times 5 trains the same net (to rounding)."""
    X = sequences()
    y = labels(X)
    w = np.random.default_rng(3).uniform(0.5, 2.0, size=len(y))
    w[::4] = 0.0
    y_flipped = y.copy()
    y_flipped[::4] = np.where(y[::4] == "up", "down", "up")
    a = QLLSTMClassifier(**FAST).fit(X, y, sample_weight=w)
    b = QLLSTMClassifier(**FAST).fit(X, y_flipped, sample_weight=w)
    for pa, pb in zip(_weights(a), _weights(b)):
        assert torch.equal(pa, pb)
    unweighted = QLLSTMClassifier(**FAST).fit(X, y)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(_weights(a), _weights(unweighted)))
    scaled = QLLSTMClassifier(**FAST).fit(X, y, sample_weight=5 * w)
    np.testing.assert_allclose(scaled.predict_proba(X), a.predict_proba(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_weighted_loss_is_the_weighted_mean_of_per_sample_losses(kind):
    torch.manual_seed(0)
    if kind == "classifier":
        est = QLLSTMClassifier(**FAST).fit(X0, Y0)
        y_pred, y_true = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
        per_sample = nn.functional.cross_entropy(y_pred, y_true, reduction="none")
    else:
        est = QLLSTMRegressor(**FAST).fit(X0, X0[:, -1, :2])
        y_pred, y_true = torch.randn(5, 2), torch.randn(5, 2)
        per_sample = ((y_pred - y_true) ** 2).mean(1)
    w = torch.tensor([0.5, 0.0, 2.0, 1.0, 3.0])
    loss = est.get_loss(y_pred, y_true, X={"x": None, "sample_weight": w}, training=False)
    torch.testing.assert_close(loss, (w * per_sample).sum() / w.sum())
    assert est.criterion_.reduction == "mean"  # restored
    torch.testing.assert_close(est.get_loss(y_pred, y_true, X={"x": None}), per_sample.mean())


def test_sample_weight_reaches_the_estimator_through_a_pipeline_and_ones_change_nothing():
    X = sequences()
    y = labels(X)
    pipe = make_pipeline(SequenceScaler(), QLLSTMClassifier(**FAST))
    weighted = pipe.fit(X, y, qllstmclassifier__sample_weight=np.ones(len(y))).predict_proba(X)
    plain = clone(pipe).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(weighted, plain)


def test_sample_weight_follows_the_rows_into_the_early_stopping_hold_out():
    """The hold-out's validation loss is weighted too: with the held-out rows' weights zeroed
    but one, it is that row's loss alone."""
    X = sequences()
    y = labels(X)
    est = QLLSTMClassifier(**FAST, early_stopping=True, validation_fraction=0.25)
    X_net, target = est._prepare_training(X, y, reset=True)
    _, valid = est.get_split_datasets(X_net, target)  # the split fit makes (seeded by random_state)
    held_out = np.asarray(valid.indices)
    w = np.ones(len(y))
    w[held_out] = 0.0
    w[held_out[0]] = 1.0
    est.fit(X, y, sample_weight=w)
    proba = est.predict_proba(X[held_out[:1]])[0]
    expected = -np.log(proba[list(est.classes_).index(y[held_out[0]])])
    assert min(est.history[:, "valid_loss"]) == pytest.approx(expected, rel=1e-4)  # the best epoch's weights
    assert "valid_acc" in est.history[-1]


@pytest.mark.parametrize("weight, error, message", [
    (np.ones(3), ValueError, r"sample_weight: expected shape \(10,\), one weight per sample, got shape \(3,\)"),
    (np.ones((10, 1)), ValueError, r"sample_weight: expected shape \(10,\), .*got shape \(10, 1\)"),
    (np.r_[-1.0, np.ones(9)], ValueError, r"sample_weight: expected weights >= 0, got -1.0"),
    (np.r_[np.nan, np.ones(9)], ValueError, r"sample_weight: expected finite values, got NaN"),
    (np.zeros(10), ValueError, r"sample_weight: expected at least one positive weight, got all zeros"),
    (["a"] * 10, ValueError, r"sample_weight: expected a 1-D array of numbers, got list"),
])
def test_bad_sample_weight_names_itself(weight, error, message):
    with pytest.raises(error, match=message):
        QLLSTMClassifier(**FAST).fit(X0, Y0, sample_weight=weight)


def test_sample_weight_needs_a_criterion_with_per_sample_losses():
    class SumOfSquares(nn.Module):
        def forward(self, y_pred, y_true):
            return ((y_pred - y_true) ** 2).sum()

    X = X0[:, :, :1]
    QLLSTMRegressor(**FAST, criterion=SumOfSquares).fit(X, X0[:, 0, 0])  # fine without weights
    with pytest.raises(TypeError, match=r"sample_weight: expected a criterion with a `reduction` setting "
                                        r"\(per-sample losses\), got SumOfSquares"):
        QLLSTMRegressor(**FAST, criterion=SumOfSquares).fit(X, X0[:, 0, 0], sample_weight=np.ones(10))


def test_sample_weight_with_a_dataset_is_refused():
    data = torch.utils.data.TensorDataset(torch.randn(10, 5, 3), torch.randn(10, 1))
    with pytest.raises(TypeError, match=r"sample_weight: expected None when X is a torch Dataset "
                                        r"\(TensorDataset\), got ndarray"):
        QLLSTMRegressor(**FAST).fit(data, None, sample_weight=np.ones(10))


def test_class_weight_is_a_weight_per_sample_of_its_class():
    X = sequences(n=64)
    y = labels(X)
    classes, counts = np.unique(y, return_counts=True)
    balanced = len(y) / (len(classes) * counts)
    by_hand = QLLSTMClassifier(**FAST).fit(X, y, sample_weight=balanced[np.searchsorted(classes, y)])
    est = QLLSTMClassifier(**FAST, class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(est.class_weight_, balanced)
    np.testing.assert_array_equal(est.predict_proba(X), by_hand.predict_proba(X))
    # a dict weighs the classes it names and leaves the others at 1; it multiplies sample_weight
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    est = QLLSTMClassifier(**FAST, class_weight={"up": 3.0}).fit(X, y, sample_weight=sw)
    by_hand = QLLSTMClassifier(**FAST).fit(X, y, sample_weight=sw * np.where(y == "up", 3.0, 1.0))
    assert est.class_weight_.tolist() == [1.0, 1.0, 3.0]  # classes_ are down, flat, up
    np.testing.assert_allclose(est.predict_proba(X), by_hand.predict_proba(X), rtol=1e-6, atol=1e-7)
    plain = QLLSTMClassifier(**FAST).fit(X, y)
    assert not np.allclose(est.predict_proba(X), plain.predict_proba(X))  # the weights changed the fit
    heavy = QLLSTMClassifier(**FAST, class_weight={"up": 100.0}).fit(X, y)
    assert (heavy.predict(X) == "up").mean() > (plain.predict(X) == "up").mean()


@pytest.mark.parametrize("class_weight, message", [
    ("auto", r"class_weight: expected None, 'balanced' or a dict \{label: weight\}, got 'auto'"),
    ({"sideways": 2.0}, r"class_weight: expected labels among the classes \['down', 'flat', 'up'\], got \['sideways'\]"),
    ({"up": -1.0}, r"class_weight: expected finite weights >= 0, not all zero, got \{'up': -1.0\}"),
])
def test_class_weight_bad_values_name_themselves(class_weight, message):
    X = sequences()
    with pytest.raises(ValueError, match=message):
        QLLSTMClassifier(**FAST, class_weight=class_weight).fit(X, labels(X))
    with pytest.raises(ValueError, match=r"class_weight: 'balanced' weighs each class by its count in y, got no "
                                         r"sample of class\(es\) \['flat'\]"):
        QLLSTMClassifier(**FAST, class_weight="balanced").partial_fit(X[:4], ["up", "down"] * 2,
                                                                      classes=["down", "flat", "up"])


def test_class_weight_with_integer_labels_survives_save_and_load(tmp_path):
    X = sequences()
    y = (X[:, :, 0].sum(1) > 0).astype(int)
    est = QLLSTMClassifier(**FAST, class_weight={0: 1.0, 1: 4.0}).fit(X, y)
    est.save(tmp_path / "m.qlts")
    twin = QLLSTMClassifier.load(tmp_path / "m.qlts")
    assert twin.class_weight == {0: 1.0, 1: 4.0} and twin.class_weight_.tolist() == [1.0, 4.0]
    np.testing.assert_array_equal(twin.predict_proba(X), est.predict_proba(X))
    twin.partial_fit(X, y)  # goes on training with the same weights (keys are ints again, not "0", "1")


def test_pickle_round_trip():
    X = sequences()
    est = QLLSTMClassifier(**FAST).fit(X, labels(X))
    twin = pickle.loads(pickle.dumps(est))
    assert np.array_equal(twin.predict_proba(X), est.predict_proba(X))
    assert twin.get_params()["device"] == "auto"


@pytest.mark.parametrize("kind", ["classifier", "regressor", "tokens"])
def test_save_load_reproduces_predictions(tmp_path, kind):
    X = sequences()
    if kind == "classifier":
        est = QLLSTMClassifier(**FAST, alpha=0.3, pooling="max").fit(X, labels(X))
    elif kind == "regressor":
        est = QLLSTMRegressor(**FAST, num_layers=2).fit(X, X[:, -3:, 1])
    else:
        X = np.random.default_rng(0).integers(1, 20, size=(40, 9))
        est = QLLSTMClassifier(**FAST, vocab_size=20, embedding_dim=4).fit(X, X[:, 0] % 2 == 0)
    path = tmp_path / "model.qlts"
    est.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.qlts"]  # no temp file left behind
    loaded = type(est).load(path)
    assert np.array_equal(loaded.predict(X), est.predict(X))
    if kind != "regressor":
        assert np.array_equal(loaded.predict_proba(X), est.predict_proba(X))
        assert loaded.classes_.dtype == est.classes_.dtype
    assert loaded.get_params(deep=False)["alpha"] == est.alpha
    assert loaded.n_features_in_ == est.n_features_in_


def test_regressor_file_from_before_normalize_y_loads_as_a_raw_scale_model(tmp_path, monkeypatch):
    X = sequences()
    y = 50 + 10 * X[:, -3:, 1]
    raw = QLLSTMRegressor(**FAST, normalize_y=False).fit(X, y)
    saved = QLLSTMRegressor._fitted_state
    # what such a file holds: neither the y statistics nor the normalize_y parameter
    monkeypatch.setattr(QLLSTMRegressor, "_fitted_state",
                        lambda self: {k: v for k, v in saved(self).items() if k not in ("y_mean_", "y_scale_")})
    monkeypatch.setattr(QLLSTMRegressor, "_top_level_params",
                        classmethod(lambda cls: [n for n in cls._param_defaults() if n != "normalize_y"]))
    raw.save(tmp_path / "old.qlts")
    monkeypatch.undo()
    loaded = QLLSTMRegressor.load(tmp_path / "old.qlts")
    assert loaded.y_mean_.tolist() == [0, 0, 0] and loaded.y_scale_.tolist() == [1, 1, 1]
    np.testing.assert_array_equal(loaded.predict(X), raw.predict(X))


def test_load_refuses_incompatible_or_foreign_files(tmp_path):
    X = sequences()
    est = QLLSTMRegressor(**FAST).fit(X, X[:, -1, 0])
    path = tmp_path / "model.qlts"
    est.save(path)

    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.qlts")
    with pytest.raises(ValueError, match="format version 1, got version 99"):
        QLLSTMRegressor.load(tmp_path / "future.qlts")

    with pytest.raises(ValueError, match="expected a saved QLLSTMClassifier, got a QLLSTMRegressor"):
        QLLSTMClassifier.load(path)

    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="expected a qlts estimator file"):
        QLLSTMRegressor.load(tmp_path / "other.pt")

    with open(tmp_path / "est.pkl", "wb") as fh:  # a pickle that would run code is never unpickled
        pickle.dump(est, fh)
    with pytest.raises(ValueError, match="weights-only loading cannot read"):
        QLLSTMRegressor.load(tmp_path / "est.pkl")


def test_save_refuses_params_that_are_not_json(tmp_path):
    from functools import partial

    X = sequences()
    est = QLLSTMRegressor(**FAST, optimizer=partial(torch.optim.SGD, momentum=0.9)).fit(X, X[:, -1, 0])
    with pytest.raises(ValueError, match="optimizer=.* cannot be stored as JSON"):
        est.save(tmp_path / "m.qlts")
    assert not list(tmp_path.iterdir())


# --- inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, pooling", [("qllstm", "last"), ("qllstm", "mean"), ("qllstm", "max"),
                                           ("bilstm", "last"), ("gru", "mean")])
def test_variable_length_list_matches_each_sequence_alone(cell, pooling):
    X = ragged()
    y = np.array([x[:, 0].sum() for x in X], dtype=np.float32)
    est = QLLSTMRegressor(**FAST, cell=cell, pooling=pooling).fit(X, y)
    together = est.predict(X)
    alone = np.concatenate([est.predict(x[None]) for x in X])  # (1, T_i, F): no padding at all
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    assert len(set(len(x) for x in X)) > 1


def test_list_of_univariate_sequences_and_equal_length_lists():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=T) for T in (3, 7, 5, 9, 4, 6)]
    est = QLLSTMRegressor(**FAST).fit(X, np.arange(6.0))
    assert est.n_features_in_ == 1
    alone = np.concatenate([est.predict(x[None, :]) for x in X])  # 2-D (1, T): univariate
    np.testing.assert_allclose(est.predict(X), alone, rtol=1e-5, atol=1e-6)

    A = sequences(n=6)
    assert np.array_equal(est.set_params(max_epochs=1).fit(A, np.arange(6.0)).predict(list(A)), est.predict(A))


def test_token_ids_padded_or_listed_give_the_same_predictions():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 30, size=T) for T in (4, 9, 6, 12, 3, 8, 10, 5)]
    padded = np.zeros((len(seqs), 12), dtype=np.int64)
    for row, s in zip(padded, seqs):
        row[: len(s)] = s
    y = np.array([s[0] % 2 for s in seqs])
    est = QLLSTMClassifier(**FAST, vocab_size=30, embedding_dim=5).fit(padded, y)
    assert est.module_.encoder.embedding.num_embeddings == 30
    np.testing.assert_allclose(est.predict_proba(seqs), est.predict_proba(padded), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("as_list", [False, True])
def test_integer_x_without_vocab_size_warns_that_it_is_read_as_numbers(as_list):
    # TextEncoder's ids fed to a classifier without vocab_size used to train silently at chance.
    ids = np.random.default_rng(0).integers(1, 30, size=(16, 6))
    y = ids[:, 0] % 2
    X = list(ids) if as_list else ids
    with pytest.warns(UserWarning, match=r"QLLSTMClassifier: X holds integers and vocab_size=None") as record:
        QLLSTMClassifier(**FAST).fit(X, y)
    assert record[0].filename == __file__  # points at the caller's fit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = QLLSTMClassifier(**FAST).fit(ids.astype(np.float32), y)  # numbers as floats: no warning
        QLLSTMClassifier(**FAST, vocab_size=30).fit(X, y)  # token ids: no warning
        est.predict(ids)  # warned once, at fit


def test_pandas_input_equals_numpy_input():
    pd = pytest.importorskip("pandas")
    X = sequences(T=6, F=1)[:, :, 0]
    y = X.sum(1)
    a = QLLSTMRegressor(**FAST).fit(pd.DataFrame(X), pd.Series(y))
    b = QLLSTMRegressor(**FAST).fit(X, y)
    assert np.array_equal(a.predict(pd.DataFrame(X)), b.predict(X))


def test_classifier_labels_probabilities_and_binary():
    X = sequences()
    y = labels(X)
    est = QLLSTMClassifier(**FAST).fit(X, y)
    assert list(est.classes_) == ["down", "flat", "up"]
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert np.array_equal(est.predict(X), est.classes_[proba.argmax(1)])

    binary = QLLSTMClassifier(**FAST).fit(X, np.where(y == "up", -1, 1))
    assert list(binary.classes_) == [-1, 1] and set(binary.predict(X)) <= {-1, 1}


def test_regressor_target_shapes_with_make_windows():
    stream = np.cumsum(np.random.default_rng(0).normal(size=(300, 3)), axis=0).astype(np.float32)
    w = make_windows(stream, lookback=12, horizon=4, target=[0], stride=6)
    y = w.y[:, :, 0]  # (n, horizon)
    est = QLLSTMRegressor(**FAST).fit(w.X, y)
    assert est.predict(w.X).shape == y.shape and est.n_outputs_ == 4
    assert est.set_params(max_epochs=1).fit(w.X, y[:, 0]).predict(w.X).shape == (len(y),)
    with pytest.raises(ValueError, match=r"y: expected shape \(n,\) or \(n, k\), got shape"):
        est.fit(w.X, w.y)
    assert not hasattr(est, "predict_proba")


def test_normalize_y_makes_training_blind_to_the_targets_units():
    # Targets far from unit scale (a price, a temperature in kelvin) trained as given: the head
    # starts near 0, and 20 epochs end far from the level (R^2 -3.9 at offset 1000, scale 100).
    X = sequences(n=64, T=8, F=2)
    y = np.stack([X[:, :, 0].sum(1), X[:, -1, 1]], axis=1)
    a, b = np.array([250.0, 0.01]), np.array([1e4, -3.0])
    unit = QLLSTMRegressor(**FAST).fit(X, y)
    shifted = QLLSTMRegressor(**FAST).fit(X, a * y + b)
    # the same training on the same scaled targets: the predictions map over exactly
    np.testing.assert_allclose((shifted.predict(X) - b) / a, unit.predict(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(shifted.y_mean_, (a * y + b).mean(0))
    np.testing.assert_allclose(shifted.y_scale_, (a * y + b).std(0))
    raw = QLLSTMRegressor(**FAST, normalize_y=False).fit(X, a * y + b)
    assert raw.y_mean_.tolist() == [0, 0] and raw.y_scale_.tolist() == [1, 1]
    assert raw.score(X, a * y + b) < 0 < shifted.score(X, a * y + b)  # the raw fit is worse than the mean
    warm = QLLSTMRegressor(**FAST).fit(X, a * y + b)
    warm.partial_fit(X, 2 * a * y + b)  # later fits keep the first fit's scaling
    np.testing.assert_array_equal(warm.y_mean_, shifted.y_mean_)
    level = np.full(len(X), 100000.1)
    assert level.std() > 0  # 1.5e-11: the rounding of the mean, not a spread
    constant = QLLSTMRegressor(**FAST).fit(X, level)
    assert constant.y_scale_.tolist() == [1.0] and np.isfinite(constant.predict(X)).all()


def test_partial_fit_continues_training():
    X = sequences()
    y = labels(X)
    est = QLLSTMClassifier(**FAST).partial_fit(X, y)
    first = {k: v.clone() for k, v in est.module_.state_dict().items()}
    est.partial_fit(X, y)
    assert len(est.history) == 4
    assert any(not torch.equal(first[k], v) for k, v in est.module_.state_dict().items())


# --- training conveniences ------------------------------------------------------------------

def test_early_stopping_holds_out_data_and_stops():
    rng = np.random.default_rng(0)
    X = sequences(n=60)
    y = rng.normal(size=60)  # pure noise: the validation loss stops improving quickly
    est = QLLSTMRegressor(**{**FAST, "max_epochs": 40, "lr": 0.05}, early_stopping=True, patience=2,
                          validation_fraction=0.25).fit(X, y)
    assert len(est.history) < 40
    assert sum(est.history[0, "batches", :, "train_batch_size"]) == 45
    assert "valid_loss" in est.history[0]


def test_classifier_early_stopping_scores_the_stratified_holdout():
    X = sequences(n=60)
    y = labels(X)
    est = QLLSTMClassifier(**{**FAST, "max_epochs": 3}, early_stopping=True, validation_fraction=0.25).fit(X, y)
    valid_acc = est.history[:, "valid_acc"]
    assert len(valid_acc) == len(est.history) and all(0.0 <= a <= 1.0 for a in valid_acc)
    held_out = 60 - sum(est.history[0, "batches", :, "train_batch_size"])
    assert held_out == 15


def test_holdout_split_is_the_tail_for_regression_and_stratified_for_classes():
    from skorch.dataset import Dataset

    X = np.zeros((20, 3, 1), np.float32)
    y = np.repeat([0, 1], 10)
    train, valid = HoldOut(0.2, stratified=False)(Dataset(X, y), y)
    assert list(valid.indices) == [16, 17, 18, 19] and list(train.indices) == list(range(16))
    train, valid = HoldOut(0.2, stratified=True, random_state=0)(Dataset(X, y), y)
    assert sorted(np.bincount(y[valid.indices])) == [2, 2]


def test_gradient_clipping_on_by_default_and_binding():
    X = sequences()
    y = X[:, :, 0].sum(1) * 100  # a large loss, so the raw gradient is large

    def norms(clip):
        seen = []

        class Norm(Callback):  # user callbacks run after the default ones, so after clipping
            def on_grad_computed(self, net, named_parameters, **kwargs):
                grads = [p.grad.norm() for _, p in named_parameters if p.grad is not None]
                seen.append(float(torch.linalg.vector_norm(torch.stack(grads))))

        QLLSTMRegressor(**FAST, gradient_clip=clip, callbacks=[("norm", Norm())]).fit(X, y)
        return np.array(seen)

    assert QLLSTMRegressor().gradient_clip == 1.0
    assert (norms(0.5) <= 0.5 * (1 + 1e-5)).all()
    assert (norms(None) > 0.5).any()


def test_verbose_prints_a_log_and_a_progress_bar(capsys):
    X = sequences()
    QLLSTMClassifier(**FAST).fit(X, labels(X))
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    QLLSTMClassifier(**FAST, verbose=1).fit(X, labels(X))
    out = capsys.readouterr()
    assert "train_loss" in out.out
    assert "it/s" in out.err or "s/it" in out.err or "%|" in out.err


def test_qlts_exports_the_estimators():
    from qlts import QLLSTMClassifier as C, QLLSTMRegressor as R

    assert C is QLLSTMClassifier and R is QLLSTMRegressor and qlts.__version__


# --- learning -------------------------------------------------------------------------------

def sign_of_sum(n, T, seed):
    """Sequences of T standard-normal steps labelled by the sign of their sum; sums closer to
    0 than half a standard deviation are dropped, so the label is never a coin flip."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(4 * n, T, 1)).astype(np.float32)
    z = X.sum(axis=(1, 2)) / np.sqrt(T)
    keep = np.abs(z) >= 0.5
    return X[keep][:n], (z[keep][:n] > 0).astype(int)


def test_learns_the_sign_of_a_sum_over_a_long_sequence():
    X, y = sign_of_sum(320, T=60, seed=0)
    X_test, y_test = sign_of_sum(500, T=60, seed=1)
    clf = QLLSTMClassifier(hidden_size=8, max_epochs=5, lr=0.02, batch_size=32, random_state=0).fit(X, y)
    assert clf.score(X_test, y_test) >= 0.95


# --- bad input ------------------------------------------------------------------------------

def _with(value, index, arr):
    arr = arr.copy()
    arr[index] = value
    return arr


X0 = sequences(n=10)
Y0 = labels(X0)
Y0[:3] = ["down", "flat", "up"]
BAD_FIT = [
    ("nan in X", QLLSTMClassifier, _with(np.nan, (0, 0, 0), X0), Y0, ValueError, "X: expected finite values, got NaN"),
    ("inf in X", QLLSTMClassifier, _with(np.inf, (1, 2, 0), X0), Y0, ValueError, "X: expected finite values, got inf"),
    ("nan in y", QLLSTMRegressor, X0, _with(np.nan, 3, X0[:, 0, 0]), ValueError, "y: expected finite values, got NaN"),
    ("1-D X", QLLSTMClassifier, X0[:, 0, 0], Y0, ValueError, "got a 1-D array of shape"),
    ("4-D X", QLLSTMClassifier, X0[..., None], Y0, ValueError, "got a 4-D array of shape"),
    ("len mismatch", QLLSTMClassifier, X0, Y0[:-1], ValueError, r"len\(X\)=10 and len\(y\)=9"),
    ("empty X", QLLSTMRegressor, X0[:0], X0[:0, 0, 0], ValueError, "at least 1 sample, got 0"),
    ("empty list", QLLSTMRegressor, [], [], ValueError, "at least 1 sample"),
    ("one class", QLLSTMClassifier, X0, np.full(10, "up"), ValueError, "at least 2 classes, got 1 class"),
    ("strings in X", QLLSTMClassifier, X0.astype(str), Y0, TypeError, "X: expected a numeric dtype, got dtype <U"),
    ("continuous labels", QLLSTMClassifier, X0, X0[:, 0, 0], ValueError, "y: Unknown label type"),
]


@pytest.mark.parametrize("case", BAD_FIT, ids=[c[0] for c in BAD_FIT])
def test_bad_fit_input_raises_and_mutates_nothing(case):
    _, cls, X, y, error, message = case
    X_before, y_before = np.array(X, copy=True), np.array(y, copy=True)
    with pytest.raises(error, match=message):
        cls(**FAST).fit(X, y)
    assert np.array_equal(np.asarray(X), X_before, equal_nan=X_before.dtype.kind == "f")
    assert np.array_equal(np.asarray(y), y_before, equal_nan=y_before.dtype.kind == "f")


@pytest.mark.parametrize("ids, message", [(np.array([[1, 2, 10]]), r"token ids in \[0, 10\).*got values from 1 to 10"),
                                          (np.array([[1, -1, 3]]), r"token ids in \[0, 10\).*got values from -1 to 3")])
def test_token_ids_out_of_range(ids, message):
    X = np.vstack([ids, [[1, 2, 3]]])
    with pytest.raises(ValueError, match=message):
        QLLSTMClassifier(**FAST, vocab_size=10).fit(X, [0, 1])


@pytest.mark.parametrize("param, value", [("cell", "transformer"), ("pooling", "first")])
def test_unknown_cell_or_pooling(param, value):
    with pytest.raises(ValueError, match=f"{param}: expected one of .*, got '{value}'"):
        QLLSTMClassifier(**FAST, **{param: value}).fit(X0, Y0)


def test_predict_before_fit_and_feature_count_mismatch():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        QLLSTMClassifier().predict(X0)
    with pytest.raises(NotFittedError):
        QLLSTMRegressor().predict(X0)
    est = QLLSTMClassifier(**FAST).fit(X0, Y0)
    with pytest.raises(ValueError, match="X has 2 features per time step, but QLLSTMClassifier is expecting 3"):
        est.predict(X0[:, :, :2])
    assert est.predict(X0[:, :5]).shape == (10,)  # another sequence length is fine
    with pytest.raises(ValueError, match=r"expecting 3 features as input \(as in fit\); a 2-D X is n univariate "
                                         r"sequences \(n, T\): pass one \(T, F\) sequence as X\[None\]$"):
        est.predict(X0[0])  # one sequence (T, F) as it is
    assert est.predict(X0[0][None]).shape == (1,)


@pytest.mark.parametrize("param, value, error, message", [
    # each reached torch, sklearn or os.path unnamed, or was accepted silently
    *BAD_SHARED_PARAMETERS,
    ("early_stopping", "no", ValueError, r"early_stopping: expected one of \[False, True\], got 'no'"),
    ("bidirectional", "yes", ValueError, r"bidirectional: expected one of \[False, True\], got 'yes'"),
    ("vocab_size", 1.5, TypeError, r"vocab_size: expected an int, got float 1.5"),
    ("dropout", 2.0, ValueError, r"dropout: expected a float in \[0.0, 1.0\], got 2.0"),
    ("input_dropout", 1.0, ValueError, r"input_dropout: expected a float in \[0.0, 1.0\), got 1.0"),
    ("bucket_by_length", "yes", ValueError, r"bucket_by_length: expected one of \[False, True\], got 'yes'"),
    ("normalize_y", "yes", ValueError, r"normalize_y: expected one of \[False, True\], got 'yes'"),
])
def test_bad_hyper_parameter_names_itself_at_fit(param, value, error, message):
    with pytest.raises(error, match=message):
        QLLSTMRegressor(**{**FAST, param: value}).fit(X0, X0[:, 0, 0])


def test_stratified_holdout_too_small_names_validation_fraction():
    """Bug: early stopping on too few rows per class leaked train_test_split's "The least populated
    class in y has only 1 member", which names neither the argument nor the remedy."""
    X = sequences(n=3)
    with pytest.raises(ValueError, match=r"validation_fraction: early stopping holds out a stratified 2 of 3 samples"):
        QLLSTMClassifier(**FAST, early_stopping=True, validation_fraction=0.5).fit(X, ["a", "b", "c"])


def test_score_checks_y_against_X():
    """Bug: score leaked scikit-learn's "Found input variables with inconsistent numbers of samples:
    [3, 10]" and "Input contains NaN." without naming y."""
    clf = QLLSTMClassifier(**FAST).fit(X0, Y0)
    assert clf.score(X0, Y0) == pytest.approx(np.mean(clf.predict(X0) == Y0))
    with pytest.raises(ValueError, match=r"X, y: expected the same number of samples, got len\(X\)=10 and len\(y\)=3"):
        clf.score(X0, Y0[:3])
    reg = QLLSTMRegressor(**FAST).fit(X0, X0[:, 0, 0])
    y = X0[:, 0, 0].astype(np.float64)
    from sklearn.metrics import r2_score
    assert reg.score(X0, y) == pytest.approx(r2_score(y, reg.predict(X0)))
    with pytest.raises(ValueError, match=r"X, y: expected the same number of samples, got len\(X\)=10 and len\(y\)=3"):
        reg.score(X0, y[:3])
    with pytest.raises(ValueError, match="y: expected finite values, got NaN"):
        reg.score(X0, np.full(10, np.nan))
    with pytest.raises(ValueError, match=r"y: expected 1 target column\(s\) as in fit, got 3"):
        reg.score(X0, np.zeros((10, 3)))


# --- length bucketing -----------------------------------------------------------------------

def batches_of(sampler, seed=0):
    torch.manual_seed(seed)
    return list(sampler)


@pytest.mark.parametrize("n, batch_size", [(200, 16), (1000, 7), (5, 64)])
def test_length_buckets_cover_every_row_once_in_batches_of_similar_length(n, batch_size):
    lengths = np.random.default_rng(n).integers(1, 500, size=n)
    sampler = LengthBucketSampler(lengths, batch_size)
    batches = batches_of(sampler)
    assert len(batches) == len(sampler)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(n))
    assert max(map(len, batches)) <= batch_size
    if n <= batch_size * BUCKET_POOL_BATCHES:  # one pool: by their longest row, the batches read as one sorted run
        ordered = sorted(batches, key=lambda b: (-lengths[b].max(), -lengths[b].min()))
        assert np.all(np.diff(np.concatenate([lengths[b] for b in ordered])) <= 0)
    plain = [np.random.default_rng(1).permutation(n)[i:i + batch_size] for i in range(0, n, batch_size)]
    if n > batch_size:  # far fewer steps per batch than random batches
        assert np.mean([lengths[b].max() for b in batches]) < 0.8 * np.mean([lengths[b].max() for b in plain])


def test_length_buckets_follow_the_seed_and_change_across_epochs():
    sampler = LengthBucketSampler(np.arange(300) % 37 + 1, 10)
    first = batches_of(sampler, seed=3)
    assert first == batches_of(sampler, seed=3)
    torch.manual_seed(3)
    assert list(sampler) != list(sampler)  # the next epoch draws new batches


def test_dataset_lengths_follow_nested_subsets():
    from skorch.dataset import Dataset
    from torch.utils.data import Subset

    lengths = np.array([5, 1, 4, 2, 3])
    data = Dataset({"x": np.zeros((5, 5, 1), np.float32), "lengths": lengths}, np.zeros(5))
    assert dataset_lengths(data).tolist() == [5, 1, 4, 2, 3]
    assert dataset_lengths(Subset(Subset(data, [4, 2, 0, 1]), [1, 3])).tolist() == [4, 1]
    assert dataset_lengths(Dataset({"x": np.zeros((5, 5, 1), np.float32)}, np.zeros(5))) is None


def test_bucket_by_length_trains_on_bucketed_batches_of_the_training_rows_only():
    X = ragged(n=60, F=2, seed=4)
    y = np.array([float(x[:, 0].sum()) for x in X])
    batches = []

    class Lengths(Callback):  # the lengths of the rows in every training batch
        def on_batch_begin(self, net, batch=None, training=False, **kwargs):
            if training:
                batches.append(batch[0]["lengths"].numpy().copy())

    est = QLLSTMRegressor(**{**FAST, "batch_size": 8}, bucket_by_length=True, early_stopping=True,
                          validation_fraction=0.25, callbacks=[Lengths()]).fit(X, y)
    first_epoch = batches[: len(batches) // 2]  # 2 epochs of 6 batches
    train_lengths = [len(x) for x in X][:45]  # the regressor holds out the last quarter
    assert sorted(np.concatenate(first_epoch).tolist()) == sorted(train_lengths)
    # one pool: ordered by their longest row, the batches read as one length-sorted sequence
    ordered = sorted(first_epoch, key=lambda b: (-b.max(), -b.min()))
    assert np.all(np.diff(np.concatenate(ordered)) <= 0)
    again = QLLSTMRegressor(**{**FAST, "batch_size": 8}, bucket_by_length=True, early_stopping=True,
                            validation_fraction=0.25).fit(X, y)
    np.testing.assert_array_equal(est.predict(X), again.predict(X))  # seeded by random_state


class TrainingRows(Callback):
    """The row ids (channel 0 at step 0) of every training batch, per epoch."""

    def __init__(self):
        self.epochs = []

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append([])

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            x = batch[0]["x"] if isinstance(batch[0], dict) else batch[0]
            self.epochs[-1].extend(x[:, 0, 0].round().int().tolist())


def test_array_rows_are_shuffled_every_epoch_and_a_users_dataset_keeps_its_order():
    # IMDB's training file is sorted by label: batches in file order were one class each, and
    # a pipeline trained on 2,000 such documents scored 0.58 instead of 0.73.
    X = sequences(n=48)
    X[:, 0, 0] = np.arange(48)
    y = (X[:, 1:, 0].sum(1) > 0).astype(int)
    rows = TrainingRows()
    QLLSTMClassifier(**FAST, callbacks=[rows]).fit(X, y)
    first, second = rows.epochs
    assert sorted(first) == sorted(second) == list(range(48))
    assert first != list(range(48)) and second != first
    again = TrainingRows()
    QLLSTMClassifier(**FAST, callbacks=[again]).fit(X, y)
    assert again.epochs == rows.epochs  # random_state seeds the order

    in_order = TrainingRows()
    QLLSTMClassifier(**FAST, callbacks=[in_order], iterator_train__shuffle=False).fit(X, y)
    assert in_order.epochs == [list(range(48))] * 2
    held_out = TrainingRows()
    QLLSTMRegressor(**FAST, callbacks=[held_out], early_stopping=True, validation_fraction=0.25).fit(X, y * 1.0)
    assert sorted(held_out.epochs[0]) == list(range(36)) and held_out.epochs[0] != list(range(36))

    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y[:, None] * 1.0).float())
    lazy = TrainingRows()
    QLLSTMRegressor(**FAST, callbacks=[lazy]).fit(dataset, None)
    assert lazy.epochs == [list(range(48))] * 2  # e.g. LazyWindows reads its file in order


def test_bucket_by_length_refuses_a_sampler_of_the_users():
    message = r"bucket_by_length: expected no iterator_train__drop_last with bucket_by_length=True"
    with pytest.raises(ValueError, match=message):
        QLLSTMRegressor(**FAST, bucket_by_length=True, iterator_train__drop_last=True).fit(ragged(), np.arange(12.0))
    with pytest.raises(ValueError, match=r"bucket_by_length: expected no iterator_train__shuffle=False with "
                                         r"bucket_by_length=True \(its batches come in a new random order"):
        QLLSTMRegressor(**FAST, bucket_by_length=True, iterator_train__shuffle=False).fit(ragged(), np.arange(12.0))
    QLLSTMRegressor(**FAST, bucket_by_length=True, iterator_train__shuffle=True).fit(ragged(), np.arange(12.0))


def test_bucket_by_length_without_lengths_keeps_the_plain_loader():
    X = sequences()
    est = QLLSTMClassifier(**FAST, bucket_by_length=True).fit(X, labels(X))
    plain = QLLSTMClassifier(**FAST).fit(X, labels(X))
    np.testing.assert_array_equal(est.predict_proba(X), plain.predict_proba(X))


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_prediction_runs_on_rows_sorted_by_length_and_returns_the_callers_order(kind):
    X = ragged(n=40, F=2, seed=5)
    y = np.array([float(x[:, 0].sum()) for x in X])
    est = (QLLSTMClassifier(**{**FAST, "batch_size": 8}).fit(X, y > 0) if kind == "classifier"
           else QLLSTMRegressor(**{**FAST, "batch_size": 8}).fit(X, y))
    seen = []
    hook = est.module_.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["lengths"].numpy()),
                                                 with_kwargs=True)
    out = est.predict_proba(X) if kind == "classifier" else est.predict(X)
    hook.remove()
    assert len(seen) == 5 and np.all(np.diff(np.concatenate(seen)) <= 0)  # batches of the length-sorted rows
    one_by_one = np.concatenate([est.predict_proba([x]) if kind == "classifier" else est.predict([x]) for x in X])
    np.testing.assert_allclose(out, one_by_one, rtol=1e-5, atol=1e-6)  # each row in its own place

"""Tokenizer, Vocabulary and texts_to_ids (the IMDB speed check lives in benchmarks/windowing.py)."""
import gzip
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qlts.preprocessing import TextEncoder, Vocabulary, texts_to_ids, tokenize

TEXTS = [
    "A GREAT film.<br /><br />I didn't expect   that; 10/10!",
    "Great, great acting... but the plot? Not great.",
    "",
    "Café au lait, naïve O'Neil's film",
    "the the the plot film film",
]


def test_tokenize():
    assert tokenize(TEXTS[0]) == ["a", "great", "film", "i", "didn't", "expect", "that", "10", "10"]
    assert tokenize(TEXTS[3]) == ["café", "au", "lait", "naïve", "o'neil's", "film"]
    assert tokenize("x<BR />y 'quoted' end'") == ["x", "y", "quoted", "end"]
    assert tokenize("") == []


def test_vocabulary_ranks_by_frequency_then_alphabetically():
    vocab = Vocabulary(max_size=4).fit(TEXTS)
    counts = Counter(tok for text in TEXTS for tok in tokenize(text))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    assert ranked == [("film", 4), ("great", 4), ("the", 4), ("10", 2)]  # ties broken alphabetically
    assert vocab.itos == ["<pad>", "<oov>"] + [tok for tok, _ in ranked]
    assert len(vocab) == 6 and "great" in vocab and "acting" not in vocab
    assert vocab.encode(["great", "acting", "the"]) == [vocab.stoi["great"], Vocabulary.OOV, vocab.stoi["the"]]
    assert vocab.decode([vocab.stoi["film"], 1, 0]) == ["film", "<oov>"]
    assert Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict()))).itos == vocab.itos


def test_min_freq_and_unbounded():
    vocab = Vocabulary(max_size=None, min_freq=2).fit(TEXTS)
    assert set(vocab.itos[2:]) == {"great", "film", "the", "plot", "10"}


@pytest.mark.parametrize("truncate", ["head", "tail"])
def test_texts_to_ids_matches_a_plain_loop(truncate):
    vocab = Vocabulary(max_size=6).fit(TEXTS)
    ids, lengths = texts_to_ids(TEXTS, 5, truncate, vocab=vocab)
    assert ids.dtype == np.int32 and ids.shape == (5, 5) and lengths.dtype == np.int64
    for row, length, text in zip(ids, lengths, TEXTS):
        tokens = tokenize(text)
        kept = tokens[:5] if truncate == "head" else tokens[max(len(tokens) - 5, 0):]
        want = [vocab.stoi.get(tok, 1) for tok in kept]
        assert length == len(want)
        assert row.tolist() == want + [0] * (5 - len(want))
    assert lengths.tolist() == [5, 5, 0, 5, 5]
    assert (ids[0] != texts_to_ids(TEXTS, 5, "tail" if truncate == "head" else "head", vocab=vocab)[0][0]).any()
    # a corpus tokenised once gives the same vocabulary and ids
    tokens = [tokenize(text) for text in TEXTS]
    assert Vocabulary(max_size=6).fit(tokens).itos == vocab.itos
    ids2, lengths2 = texts_to_ids(tokens, 5, truncate, vocab=vocab)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_array_equal(lengths2, lengths)


def test_bad_input():
    vocab = Vocabulary(10).fit(TEXTS)
    with pytest.raises(ValueError, match=r"max_len: expected an int >= 1, got 0"):
        texts_to_ids(TEXTS, 0, vocab=vocab)
    with pytest.raises(ValueError, match=r"truncate: expected one of \['head', 'tail'\], got 'middle'"):
        texts_to_ids(TEXTS, 5, "middle", vocab=vocab)
    with pytest.raises(TypeError, match=r"texts: expected a sequence of strings, got a single str"):
        texts_to_ids("one text", 5, vocab=vocab)
    with pytest.raises(TypeError, match=r"texts: expected strings \(or lists of tokens\), got int at position 1"):
        texts_to_ids(["ok", 3], 5, vocab=vocab)
    with pytest.raises(TypeError, match=r"vocab: expected a Vocabulary, got dict"):
        texts_to_ids(TEXTS, 5, vocab={})
    with pytest.raises(ValueError, match=r"max_size: expected an int >= 1, got 0"):
        Vocabulary(0)
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 12\), got 12"):
        vocab.decode([12])


def test_bad_input_reaching_python_internals():
    """Bug: texts=None leaked "'NoneType' object is not iterable", a non-str token numpy's sort
    error "'<' not supported between ...", decode(["x"]) int()'s "invalid literal", decode([2.7])
    silently decoded id 2, and encode("film") encoded the letters."""
    vocab = Vocabulary(10).fit(TEXTS)
    with pytest.raises(TypeError, match=r"texts: expected a sequence of strings \(or lists of tokens\), got NoneType"):
        Vocabulary().fit(None)
    with pytest.raises(TypeError, match=r"texts: expected a sequence of strings \(or lists of tokens\), got int"):
        texts_to_ids(5, 3, vocab=vocab)
    with pytest.raises(TypeError, match=r"texts: expected lists of str tokens, got int token 1 at position 0"):
        Vocabulary().fit([["a", 1]])
    with pytest.raises(TypeError, match=r"ids: expected integer ids, got str 'x'"):
        vocab.decode(["x"])
    with pytest.raises(TypeError, match=r"ids: expected integer ids, got float 2.7"):
        vocab.decode([2.7])
    with pytest.raises(TypeError, match=r"ids: expected a sequence of integer ids, got NoneType"):
        vocab.decode(None)
    with pytest.raises(TypeError, match=r"tokens: expected a list of str tokens \(see tokenize\), got str"):
        vocab.encode("film")
    assert vocab.decode(np.array([vocab.stoi["film"], 0])) == ["film"]  # numpy integer ids still work


def test_from_dict_names_a_bad_state():
    """Bug: from_dict({}) leaked KeyError 'max_size', and a str of tokens became one token per letter."""
    with pytest.raises(ValueError, match=r"state: expected a dict with keys \['max_size', 'min_freq', 'tokens'\] "
                                         r"\(from to_dict\), got \[\]"):
        Vocabulary.from_dict({})
    with pytest.raises(ValueError, match=r"state: expected a dict .*got list"):
        Vocabulary.from_dict(["a"])
    with pytest.raises(TypeError, match=r"state\['tokens'\]: expected a list of str tokens"):
        Vocabulary.from_dict({"max_size": 5, "min_freq": 1, "tokens": "film"})
    with pytest.raises(ValueError, match=r"state\['tokens'\]: expected distinct tokens, got repeats"):
        Vocabulary.from_dict({"max_size": 5, "min_freq": 1, "tokens": ["a", "b", "a"]})


IMDB = Path(os.environ.get("QLTS_DATA", "/work/shared/data")) / "imdb" / "train.jsonl.gz"


@pytest.mark.skipif(not IMDB.exists(), reason=f"IMDB train split not found at {IMDB} (set QLTS_DATA)")
def test_imdb_sample():
    with gzip.open(IMDB, "rt", encoding="utf-8") as fh:
        texts = [json.loads(next(fh))["text"] for _ in range(300)]
    vocab = Vocabulary(2000).fit(texts)
    ids, lengths = texts_to_ids(texts, 400, vocab=vocab)
    assert "br" not in vocab  # the <br /> tags are gone
    assert 0 < lengths.min() and lengths.max() == 400
    assert (ids[np.arange(400)[None, :] >= lengths[:, None]] == 0).all()  # padding only after the tokens
    assert (ids[np.arange(400)[None, :] < lengths[:, None]] > 0).all()


def test_text_encoder_equals_vocabulary_and_texts_to_ids():
    from sklearn.base import clone

    encoder = TextEncoder(max_len=4, max_size=3, truncate="tail")
    series = pd.Series(TEXTS, index=[10, 11, 12, 13, 14])  # an index that is not 0..n-1
    before = series.copy()
    ids = encoder.fit_transform(series)
    vocab = Vocabulary(max_size=3).fit(TEXTS)
    expected, _ = texts_to_ids(TEXTS, 4, "tail", vocab=vocab)
    assert ids.dtype == np.int32 and ids.shape == (5, 4)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(encoder.transform(series), ids)
    assert encoder.vocabulary_.itos == vocab.itos
    pd.testing.assert_series_equal(series, before)  # the user's data is untouched
    assert clone(encoder).get_params() == encoder.get_params()
    assert not hasattr(clone(encoder), "vocabulary_")


def test_text_encoder_in_a_pipeline_fits_each_folds_vocabulary_on_that_fold():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    from qlts import QLLSTMClassifier

    # "good"/"bad" decide the label; "zebra" only ever appears in the second half
    rng = np.random.default_rng(0)
    docs = [" ".join(rng.choice(["the", "film", "plot"], 5)) + (" good" if k % 2 else " bad") for k in range(40)]
    docs[20:] = [d + " zebra" for d in docs[20:]]
    labels = np.arange(40) % 2
    encoder = TextEncoder(max_len=8, max_size=10).fit(docs[:20])
    assert "zebra" not in encoder.vocabulary_
    assert (encoder.transform(docs[20:])[:, 6] == Vocabulary.OOV).all()  # the unseen word is OOV, not an error

    pipe = make_pipeline(TextEncoder(max_len=8, max_size=10),
                         QLLSTMClassifier(vocab_size=12, hidden_size=4, max_epochs=2, backend="torch",
                                          random_state=0))
    search = GridSearchCV(pipe, {"qllstmclassifier__alpha": [0.0, 0.3]}, cv=2).fit(docs, labels)
    fitted = search.best_estimator_.named_steps["textencoder"]
    assert "zebra" in fitted.vocabulary_  # refit on all documents
    assert search.predict(docs[:3]).shape == (3,)


def test_text_encoder_names_its_columns_so_a_pipeline_can_output_pandas():
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import make_pipeline

    from qlts import QLLSTMClassifier

    with pytest.raises(NotFittedError):
        TextEncoder(max_len=3).get_feature_names_out()
    encoder = TextEncoder(max_len=3, max_size=5).fit(TEXTS)
    assert encoder.get_feature_names_out().tolist() == ["textencoder0", "textencoder1", "textencoder2"]
    frame = TextEncoder(max_len=3, max_size=5).set_output(transform="pandas").fit_transform(TEXTS)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["textencoder0", "textencoder1", "textencoder2"]
    np.testing.assert_array_equal(frame.to_numpy(), encoder.transform(TEXTS))

    def pipeline():
        classifier = QLLSTMClassifier(vocab_size=7, hidden_size=4, max_epochs=2, backend="torch", random_state=0)
        return make_pipeline(TextEncoder(max_len=4, max_size=5), classifier)

    labels = np.arange(len(TEXTS)) % 2
    as_pandas = pipeline().set_output(transform="pandas").fit(TEXTS, labels)  # raised "set_output is not available"
    np.testing.assert_array_equal(as_pandas.predict_proba(TEXTS), pipeline().fit(TEXTS, labels).predict_proba(TEXTS))


def test_text_encoder_reads_a_one_column_table_as_its_texts():
    """Bug: a ColumnTransformer given ["review"] passes a one-column DataFrame, whose iteration
    yields its column name: the whole table became one document, "review"."""
    from sklearn.compose import make_column_transformer

    frame = pd.DataFrame({"review": TEXTS, "stars": np.arange(len(TEXTS))})
    want = TextEncoder(max_len=6).fit(TEXTS).transform(TEXTS)
    np.testing.assert_array_equal(TextEncoder(max_len=6).fit(frame[["review"]]).transform(frame[["review"]]), want)
    np.testing.assert_array_equal(TextEncoder(max_len=6).fit_transform(np.array(TEXTS, dtype=object)[:, None]), want)
    np.testing.assert_array_equal(make_column_transformer((TextEncoder(max_len=6), ["review"])).fit_transform(frame),
                                  want)
    with pytest.raises(ValueError, match=r"X: expected one column of texts, got a table with \['review', 'stars'\]; "
                                         r"select one, such as X\['text'\]"):
        TextEncoder().fit(frame)


def test_missing_documents_are_named_with_the_fix():
    for gap in (None, np.nan, pd.NA):
        with pytest.raises(TypeError, match=r"X: expected strings \(or lists of tokens\), got a missing value "
                                            r"\(.*\) at position 1; fill the gaps first, e.g. with .fillna\(''\)"):
            TextEncoder().fit(pd.Series(["fine", gap, "also fine"], dtype=object))


def test_text_encoder_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="X: expected a sequence of strings, got a single str"):
        TextEncoder().fit("one document")
    with pytest.raises(TypeError, match="X: expected strings .* got int at position 1"):
        TextEncoder().fit(["fine", 3])
    with pytest.raises(ValueError, match="max_len"):
        TextEncoder(max_len=0).fit(TEXTS)
    with pytest.raises(ValueError, match="truncate"):
        TextEncoder(truncate="middle").fit(TEXTS)
    with pytest.raises(ValueError, match="max_size"):
        TextEncoder(max_size=0).fit(TEXTS)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TextEncoder().transform(TEXTS)

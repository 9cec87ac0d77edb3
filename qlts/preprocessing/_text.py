"""Text to token ids: :func:`tokenize`, :class:`Vocabulary`, :func:`texts_to_ids`, and the
scikit-learn transformer :class:`TextEncoder` that chains them in a ``Pipeline``."""
from __future__ import annotations

import operator
import re
from collections import Counter

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_choice, check_int

# A word is a run of word characters (any script), with inner apostrophes kept: "don't", "o'neil".
_WORD = re.compile(r"\w+(?:'\w+)*")
TRUNCATE = ("head", "tail")


def _check_texts(texts, name="texts"):
    """``texts`` as an iterable of texts: not one text; a one-column table (a ColumnTransformer
    given ["text"] passes a DataFrame, whose iteration would yield its column names) is its column."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name}: expected a sequence of strings, got a single {type(texts).__name__}")
    if not hasattr(texts, "__iter__"):
        raise TypeError(f"{name}: expected a sequence of strings (or lists of tokens), got {type(texts).__name__}")
    if getattr(texts, "ndim", 1) == 2:
        width = texts.shape[1]
        if width != 1:
            columns = list(texts.columns) if hasattr(texts, "columns") else f"{width} columns"
            raise ValueError(f"{name}: expected one column of texts, got a table with {columns}; select one, "
                             f"such as X['text']")
        return texts.iloc[:, 0] if hasattr(texts, "iloc") else texts[:, 0]
    return texts


def _text_list(texts, name="texts"):
    """``texts`` as a list, read once (an iterator works), checked first: list() of one str would give letters."""
    texts = _check_texts(texts, name)
    return texts if isinstance(texts, list) else list(texts)


def _token_lists(texts, name="texts"):
    """Yield the tokens of each item: a str is tokenised, a list/tuple of tokens is used as is
    (so a corpus can be tokenised once for both :meth:`Vocabulary.fit` and :func:`texts_to_ids`)."""
    for i, text in enumerate(_check_texts(texts, name)):
        if isinstance(text, str):
            yield tokenize(text)
        elif isinstance(text, (list, tuple)):
            for tok in text:
                if not isinstance(tok, str):
                    raise TypeError(f"{name}: expected lists of str tokens, got {type(tok).__name__} token {tok!r} "
                                    f"at position {i}")
            yield text
        elif np.ndim(text) == 0 and pd.isna(text):  # None, NaN, pd.NA: a document that is not there
            raise TypeError(f"{name}: expected strings (or lists of tokens), got a missing value ({text!r}) at "
                             f"position {i}; fill the gaps first, e.g. with .fillna('')")
        else:
            raise TypeError(f"{name}: expected strings (or lists of tokens), got {type(text).__name__} at position {i}")


def tokenize(text):
    """Lower-case ``text``, turn the HTML line breaks ``<br />`` into spaces, return its words
    (runs of letters, digits and ``_``, with inner apostrophes: "don't")."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    return _WORD.findall(text.lower().replace("<br />", " "))


class Vocabulary:
    """Token <-> id map of the ``max_size`` most frequent tokens.

    Id 0 is PAD (padding), id 1 is OOV (any token not kept); kept tokens get ids 2, 3, ...
    by decreasing frequency, ties broken alphabetically so the map is deterministic.
    ``len(vocab)`` counts PAD and OOV, so it is the ``num_embeddings`` of an embedding.

    Parameters
    ----------
    max_size : int >= 1 or None
        Most tokens to keep (PAD and OOV not included); None keeps all.
    min_freq : int >= 1
        Tokens seen fewer times are left out.
    """

    PAD, OOV = 0, 1
    pad_token, oov_token = "<pad>", "<oov>"

    def __init__(self, max_size=20000, *, min_freq=1):
        self.max_size = None if max_size is None else check_int("max_size", max_size, min_value=1)
        self.min_freq = check_int("min_freq", min_freq, min_value=1)
        self.itos = [self.pad_token, self.oov_token]
        self.stoi = {}

    def fit(self, texts):
        """Count the tokens of ``texts`` (strings, or lists of tokens from :func:`tokenize`) and
        keep the most frequent; returns self."""
        counts = Counter()
        for tokens in _token_lists(texts):
            counts.update(tokens)
        ranked = sorted((item for item in counts.items() if item[1] >= self.min_freq), key=lambda kv: (-kv[1], kv[0]))
        if self.max_size is not None:
            ranked = ranked[:self.max_size]
        self.itos = [self.pad_token, self.oov_token] + [tok for tok, _ in ranked]
        self.stoi = {tok: i for i, tok in enumerate(self.itos) if i >= 2}
        return self

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def encode(self, tokens):
        """Ids of ``tokens`` (OOV for unknown ones)."""
        if isinstance(tokens, str) or not hasattr(tokens, "__iter__"):  # a str would be encoded letter by letter
            raise TypeError(f"tokens: expected a list of str tokens (see tokenize), got {type(tokens).__name__}")
        get, oov = self.stoi.get, self.OOV
        return [get(tok, oov) for tok in tokens]

    def decode(self, ids):
        """Tokens of ``ids``; PAD ids are skipped."""
        if not hasattr(ids, "__iter__"):
            raise TypeError(f"ids: expected a sequence of integer ids, got {type(ids).__name__}")
        n = len(self.itos)
        out = []
        for i in ids:
            try:
                i = operator.index(i)  # ints, numpy and torch integers; int(2.7) would silently give 2
            except TypeError:
                raise TypeError(f"ids: expected integer ids, got {type(i).__name__} {i!r}") from None
            if not 0 <= i < n:
                raise ValueError(f"ids: expected ids in [0, {n}), got {i}")
            if i != self.PAD:
                out.append(self.itos[i])
        return out

    def to_dict(self):
        """A JSON-safe description (tokens in id order); :meth:`from_dict` restores it."""
        return {"max_size": self.max_size, "min_freq": self.min_freq, "tokens": self.itos[2:]}

    @classmethod
    def from_dict(cls, state):
        keys = ("max_size", "min_freq", "tokens")
        if not isinstance(state, dict) or not all(k in state for k in keys):
            given = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state: expected a dict with keys {list(keys)} (from to_dict), got {given}")
        tokens = state["tokens"]
        if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
            raise TypeError("state['tokens']: expected a list of str tokens")
        if len(set(tokens)) != len(tokens):
            raise ValueError("state['tokens']: expected distinct tokens, got repeats")
        vocab = cls(state["max_size"], min_freq=state["min_freq"])
        vocab.itos = [cls.pad_token, cls.oov_token] + list(tokens)
        vocab.stoi = {tok: i for i, tok in enumerate(vocab.itos) if i >= 2}
        return vocab


def texts_to_ids(texts, max_len, truncate="head", *, vocab):
    """Tokenise ``texts`` and map them to a padded id matrix.

    Parameters
    ----------
    texts : sequence of str, or of token lists from :func:`tokenize`
    max_len : int >= 1
    truncate : {"head", "tail"}
        For texts longer than ``max_len`` tokens: "head" keeps the first ``max_len``
        tokens (the head of the text), "tail" keeps the last ``max_len``.
    vocab : Vocabulary
        A fitted vocabulary.

    Returns
    -------
    ids : int32 (n, max_len)
        Token ids, left-aligned, padded with ``Vocabulary.PAD`` (0) on the right.
    lengths : int64 (n,)
        Number of real tokens per row, ``min(n_tokens, max_len)``; 0 for an empty text.
    """
    max_len = check_int("max_len", max_len, min_value=1)
    check_choice("truncate", truncate, TRUNCATE)
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab: expected a Vocabulary, got {type(vocab).__name__}")
    return _encode(texts, max_len, truncate, vocab)


def _encode(texts, max_len, truncate, vocab, name="texts"):
    """(ids, lengths): see :func:`texts_to_ids`. Each text is tokenised as its row is filled, so
    only one document's tokens are held at a time (a list of token lists is used as it is)."""
    texts = _text_list(texts, name)
    ids = np.zeros((len(texts), max_len), dtype=np.int32)
    lengths = np.zeros(len(texts), dtype=np.int64)
    get, oov = vocab.stoi.get, vocab.OOV
    for i, tokens in enumerate(_token_lists(texts, name)):
        tokens = tokens[:max_len] if truncate == "head" else tokens[-max_len:]
        row = [get(tok, oov) for tok in tokens]
        ids[i, :len(row)] = row
        lengths[i] = len(row)
    return ids, lengths


class TextEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Documents to padded token-id sequences: the text step of a ``Pipeline``.

    ``fit`` keeps the ``max_size`` most frequent tokens of the training documents (a
    :class:`Vocabulary`, so in a cross-validation each fold's vocabulary comes from its own
    training part); ``transform`` maps each document to its token ids (:func:`texts_to_ids`):
    an int32 (n, max_len) array, padded with 0 on the right, which ``QLLSTMClassifier(vocab_size=...)``
    reads as variable-length sequences. Ids run up to ``max_size + 1`` (PAD is 0, OOV is 1), so
    ``vocab_size=max_size + 2`` fits any fitted vocabulary.

    Parameters
    ----------
    max_len : int >= 1, default=1000
        Tokens kept per document (the first ones with ``truncate="head"``, the last with "tail").
    max_size : int >= 1, default=20000
        Most tokens in the vocabulary (PAD and OOV not counted).
    min_freq : int >= 1, default=1
        Tokens seen fewer times in the training documents map to OOV.
    truncate : {"head", "tail"}, default="head"

    Attributes
    ----------
    vocabulary_ : Vocabulary

    ``get_feature_names_out`` names the positions ``textencoder0`` ... so ``set_output(transform="pandas")``
    works in a pipeline (the classifier reads the DataFrame of ids as it reads the array).
    """

    def __init__(self, max_len=1000, max_size=20000, *, min_freq=1, truncate="head"):
        self.max_len = max_len
        self.max_size = max_size
        self.min_freq = min_freq
        self.truncate = truncate

    def fit(self, X, y=None):
        """Build the vocabulary from the documents X (strings, or token lists from :func:`tokenize`)."""
        check_int("max_len", self.max_len, min_value=1)
        check_choice("truncate", self.truncate, TRUNCATE)
        self.vocabulary_ = Vocabulary(self.max_size, min_freq=self.min_freq).fit(_token_lists(X, "X"))
        return self

    def fit_transform(self, X, y=None):
        """fit, then transform. Documents are tokenised in each pass rather than all their tokens held
        at once (several times the ids' memory); X is read once, so an iterator works too."""
        X = _text_list(X, "X")
        return self.fit(X).transform(X)

    def transform(self, X):
        """int32 (n, max_len) token ids of the documents X."""
        check_is_fitted(self, "vocabulary_")
        return _encode(X, self.max_len, self.truncate, self.vocabulary_, "X")[0]

    @property
    def _n_features_out(self):  # one output column per token position; NotFittedError is an AttributeError
        check_is_fitted(self, "vocabulary_")
        return self.max_len

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

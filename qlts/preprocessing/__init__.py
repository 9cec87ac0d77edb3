"""Preprocessing (DESIGN section 5): numba windowing of multivariate streams (in memory, or lazily
over a file larger than memory), an online window buffer, a 3-D sequence scaler, and text to token ids
(:class:`TextEncoder` for a Pipeline)."""
from ._lazy import LazyWindows, ParquetRows
from ._scaler import SequenceScaler
from ._stream import WindowStream
from ._text import TextEncoder, Vocabulary, texts_to_ids, tokenize
from ._windows import Windows, make_windows

__all__ = ["Windows", "make_windows", "LazyWindows", "ParquetRows", "WindowStream", "SequenceScaler", "TextEncoder",
           "Vocabulary", "texts_to_ids", "tokenize"]

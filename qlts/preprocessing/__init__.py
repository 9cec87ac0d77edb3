"""Preprocessing (DESIGN section 5): numba windowing of multivariate streams (in memory, or lazily
over a file larger than memory), an online window buffer, a 3-D sequence scaler, and text tokenising for the IMDB benchmark."""
from ._lazy import LazyWindows, ParquetRows
from ._scaler import SequenceScaler
from ._stream import WindowStream
from ._text import Vocabulary, texts_to_ids, tokenize
from ._windows import Windows, make_windows

__all__ = ["Windows", "make_windows", "LazyWindows", "ParquetRows", "WindowStream", "SequenceScaler", "Vocabulary", "texts_to_ids", "tokenize"]

"""Text for character language models: a character vocabulary (``Vocab``: character <-> id) and the parallel
streams a model trains on (``batchify``).

    vocab = Vocab.from_text(text)          # the distinct characters of text, sorted by code point
    ids = vocab.encode(text)               # (len(text),) int64
    streams = batchify(ids, batch_size)    # (N, batch_size) int64: column b is the b-th of batch_size equal slices
    vocab.decode(ids[:100])                # -> str
    vocab.config()                         # {"chars": ...}: JSON, stored in checkpoints; Vocab.from_config(config)

``encode``, ``decode`` and ``batchify`` run in Cython (``pylstm._text``): several MB of text take milliseconds.
Each has a pure-Python twin here (``_encode_python``, ``_decode_python``, ``_batchify_python``): plain loops over
plain lists, the readable specification that the tests hold the compiled loops to, error messages included. Both
share the argument checks below; the errors that depend on the data (a character without an id, an id outside the
vocabulary) are raised by each loop itself.

Every error is a TypeError (wrong kind of argument) or ValueError (right kind, wrong value) that names the argument,
what was expected and what came.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

from ._checks import positive_int
from ._types import IntArray

try:
    from . import _text
except ImportError as exc:  # pragma: no cover - a checkout whose extensions were not built again after this module
    raise ImportError(
        f"pylstm.text needs its compiled extension pylstm._text ({exc}). Install pylstm with `python -m pip install .`"
        " from the source tree, or build it in place for development with `python setup.py build_ext --inplace`; "
        "Cython and a C compiler are needed."
    ) from exc

__all__ = ["Vocab", "batchify"]

_INT64_MAX = np.iinfo(np.int64).max
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")  # a high then a low surrogate


# ----------------------------------------------------------------------------------------------------------------------
# Argument checks, shared by the compiled paths and their twins


def _parse_chars(chars: Union[str, Iterable[str]], name: str) -> str:
    """A str of distinct characters, or an iterable of 1-character strs -> the str of them, in order."""
    if isinstance(chars, str):
        items = list(chars)
    else:
        expected = "a str of distinct characters or an iterable of 1-character strs"
        if isinstance(chars, (bytes, bytearray, memoryview)):
            raise TypeError(f"{name}: expected {expected}, got {type(chars).__name__}")
        try:
            items = list(chars)
        except TypeError:
            raise TypeError(f"{name}: expected {expected}, got {type(chars).__name__}") from None
        for i, c in enumerate(items):
            if not isinstance(c, str):
                raise TypeError(f"{name}: expected 1-character strs, got {type(c).__name__} at index {i}")
            if len(c) != 1:
                raise ValueError(f"{name}: expected 1-character strs, got {c!r} ({len(c)} characters) at index {i}")
    if not items:
        raise ValueError(f"{name}: expected at least one character, got none")
    first: dict[str, int] = {}
    for i, c in enumerate(items):
        if c in first:
            raise ValueError(f"{name}: expected distinct characters, got {c!r} at indices {first[c]} and {i}")
        first[c] = i
    return "".join(items)


def _check_text(text: str, name: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected a str, got {type(text).__name__}")
    return text


def _integer_array(ids: npt.ArrayLike, name: str = "ids") -> npt.NDArray[np.integer[Any]]:
    """Any 1-D array-like of integers -> a 1-D NumPy array of its integer dtype (not copied when ids is one)."""
    expected = "a 1-D array of integers"
    if isinstance(ids, (str, bytes, bytearray)):
        raise TypeError(f"{name}: expected {expected}, got {type(ids).__name__}")
    try:
        arr = np.asarray(ids)
    except ValueError as exc:  # a ragged nested list
        raise ValueError(f"{name}: expected {expected}, got a {type(ids).__name__} that is not one ({exc})") from None
    except TypeError as exc:
        raise TypeError(f"{name}: expected {expected}, got {type(ids).__name__} ({exc})") from None
    is_array = isinstance(ids, np.ndarray)
    if arr.size == 0 and arr.dtype == np.float64 and not is_array:
        arr = arr.astype(np.int64)  # [] or (): NumPy reads an empty list as float64
    if arr.dtype.kind not in "iu":
        got = f"dtype {arr.dtype}" if is_array else f"{type(ids).__name__} (of dtype {arr.dtype} to NumPy)"
        raise TypeError(f"{name}: expected {expected}, got {got}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected {expected}, got shape {arr.shape}")
    return arr


def _beyond_int64(arr: npt.NDArray[np.integer[Any]]) -> Optional[int]:
    """The index of the first value of an integer array above int64's largest, or None."""
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > _INT64_MAX:
        return int(np.argmax(arr > _INT64_MAX))
    return None


def _some(keys: Iterable[object], most: int = 5) -> str:
    """The reprs of the first few keys, for a message: "'a', 'b'", "'a', 'b', ... (7 in all)" or "none"."""
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:most])
    return (shown + f", ... ({len(keys)} in all)" if len(keys) > most else shown) or "none"


def _batchify_args(ids: npt.ArrayLike, batch_size: int) -> tuple[npt.NDArray[np.integer[Any]], int]:
    ids = _integer_array(ids)
    batch_size = positive_int(batch_size, "batch_size")
    if len(ids) < batch_size:
        raise ValueError(f"ids: {len(ids)} ids are fewer than batch_size={batch_size} (no full step)")
    bad = _beyond_int64(ids)
    if bad is not None:
        raise ValueError(f"ids: expected integers that fit in int64, got {int(ids[bad])} at index {bad}")
    return ids, batch_size


# ----------------------------------------------------------------------------------------------------------------------
# The API


class Vocab:
    """A character vocabulary: character <-> id, ids 0..len-1 in the order of `chars`.

    ``Vocab(chars)``: chars a str of distinct characters, or an iterable of 1-character strs. A Vocab is immutable,
    hashable and picklable; two are equal when their chars are. It keeps a lookup table indexed by code point up to
    its largest character (4 bytes a code point: 1 KB for ASCII, 512 KB with emoji, at most 4.4 MB).
    """

    __slots__ = ("_chars", "_table")

    def __init__(self, chars: Union[str, Iterable[str]]) -> None:
        self._chars = _parse_chars(chars, "chars")
        self._table = _text.CharTable(self._chars)

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        """The vocabulary of the distinct characters of text (a non-empty str), sorted by code point."""
        _check_text(text)
        if not text:
            raise ValueError("text: expected a non-empty str, got ''")
        return cls("".join(sorted(set(text))))

    @property
    def chars(self) -> str:
        """The str of the characters, in id order."""
        return self._chars

    def __len__(self) -> int:
        return len(self._chars)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._chars == other._chars

    def __hash__(self) -> int:
        return hash((Vocab, self._chars))

    def __repr__(self) -> str:
        if len(self._chars) <= 64:
            return f"Vocab({self._chars!r})"
        return f"<Vocab of {len(self._chars)} characters: {self._chars[:32]!r}...>"

    def __reduce__(self) -> tuple[type[Vocab], tuple[str]]:
        return (type(self), (self._chars,))

    def encode(self, text: str) -> IntArray:
        """text (a str) -> (len(text),) int64 C-contiguous ids. ValueError naming the first character that has no
        id (its repr, its code point and its index in text)."""
        return self._table.encode(_check_text(text))

    def decode(self, ids: npt.ArrayLike) -> str:
        """ids (any 1-D array-like of integers, any integer dtype and layout) -> the str of their characters.
        ValueError naming the first id outside [0, len(self)) and its index."""
        arr = _integer_array(ids)
        if _beyond_int64(arr) is not None:  # ids an int64 copy cannot hold are outside the vocabulary anyway
            bad = int(np.argmax(arr >= len(self._chars)))
            raise ValueError(f"ids: id {int(arr[bad])} at index {bad} is outside [0, {len(self._chars)})")
        return self._table.decode(np.ascontiguousarray(arr, dtype=np.int64))

    def config(self) -> dict[str, Any]:
        """{"chars": the str}: JSON-serialisable; Vocab.from_config(vocab.config()) == vocab.

        ValueError for the one vocabulary that JSON cannot carry: a lone high surrogate (U+D800-DBFF) directly
        followed by a lone low one (U+DC00-DFFF), which JSON writes as two escapes and reads back as one character."""
        pair = _SURROGATE_PAIR.search(self._chars)
        if pair is not None:
            i = pair.start()
            raise ValueError(f"config: the vocabulary's characters {i} and {i + 1} are the surrogates "
                             f"{self._chars[i]!r} and {self._chars[i + 1]!r}, which JSON reads back as one "
                             "character; reorder them or leave one out")
        return {"chars": self._chars}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Vocab:
        """The inverse of config(). config may come from an untrusted file: anything but a dict whose only key
        "chars" holds a non-empty str of distinct characters is a TypeError or ValueError naming what is wrong."""
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a dict {{'chars': str}}, got {type(config).__name__}")
        if "chars" not in config:
            raise ValueError(f"config: expected a dict {{'chars': str}}, got no key 'chars' (keys: {_some(config)})")
        extra = [k for k in config if k != "chars"]
        if extra:
            raise ValueError(f"config: expected only the key 'chars', got also {_some(extra)}")
        chars = config["chars"]
        if not isinstance(chars, str):
            raise TypeError(f"config['chars']: expected a str, got {type(chars).__name__}")
        return cls(_parse_chars(chars, "config['chars']"))


def batchify(ids: npt.ArrayLike, batch_size: int) -> IntArray:
    """ids (N_total,) integers -> (N, B) int64 C-contiguous parallel streams, as torch's word_language_model does
    (data.view(bsz, -1).t().contiguous()): N = len(ids) // batch_size, stream b is ids[b*N:(b+1)*N], the rest
    dropped. batch_size an int >= 1; ValueError when len(ids) < batch_size (no full step) naming both; ids must be
    1-D integers (any integer dtype and layout)."""
    ids, batch_size = _batchify_args(ids, batch_size)
    return _text.batchify(np.ascontiguousarray(ids, dtype=np.int64), batch_size)


# ----------------------------------------------------------------------------------------------------------------------
# The pure-Python twins: the specification of the compiled loops


def _encode_python(vocab: Vocab, text: str) -> IntArray:
    """Vocab.encode in plain Python."""
    text = _check_text(text)
    index = {}
    for i, c in enumerate(vocab.chars):
        index[c] = i
    ids = []
    for i, c in enumerate(text):
        if c not in index:
            raise ValueError(f"text: character {c!r} (U+{ord(c):04X}) at index {i} is not in the vocabulary")
        ids.append(index[c])
    return np.array(ids, dtype=np.int64)


def _decode_python(vocab: Vocab, ids: npt.ArrayLike) -> str:
    """Vocab.decode in plain Python."""
    values = _integer_array(ids).tolist()  # Python ints: exact for every integer dtype
    chars = vocab.chars
    out = []
    for i, v in enumerate(values):
        if not 0 <= v < len(chars):
            raise ValueError(f"ids: id {v} at index {i} is outside [0, {len(chars)})")
        out.append(chars[v])
    return "".join(out)


def _batchify_python(ids: npt.ArrayLike, batch_size: int) -> IntArray:
    """batchify in plain Python."""
    ids, batch_size = _batchify_args(ids, batch_size)
    values = ids.tolist()
    steps = len(values) // batch_size
    rows = []
    for t in range(steps):
        rows.append([values[b * steps + t] for b in range(batch_size)])
    return np.array(rows, dtype=np.int64)

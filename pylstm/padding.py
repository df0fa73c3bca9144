"""Variable-length batches: ``pad_sequences`` stacks sequences of different lengths into one padded array plus their
lengths (what a layer's ``lengths=`` argument takes), and ``unpad`` cuts a layer's padded output back into one array
per sequence.

    padded, lengths = pylstm.pad_sequences([x0, x1, x2])       # x_b: (T_b, input_size)
    out, state = layer(padded, lengths=lengths)                # out: (T_max, 3, D * H_out)
    outs = pylstm.unpad(out, lengths)                          # outs[b]: (T_b, D * H_out)

``unpad(*pad_sequences(seqs))`` gives back ``seqs`` (as equal arrays).
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _checks as check
from ._types import IntArray


def pad_sequences(sequences: Iterable[npt.ArrayLike], batch_first: bool = False, padding_value: float = 0.0
                  ) -> tuple[npt.NDArray[np.floating[Any]], IntArray]:
    """A non-empty list of B arrays ``(T_b, *feature)`` -> ``(padded, lengths)``.

    Every sequence must be a floating-point array (lists are converted with ``np.asarray``) of one common dtype and
    with the same trailing shape ``feature``; lengths ``T_b`` may differ and may be 0.

    * ``padded``: a new array of that dtype, ``(T_max, B, *feature)``, or ``(B, T_max, *feature)`` with
      ``batch_first=True``, where ``T_max = max(T_b)``. Sequence b fills steps ``0 .. T_b - 1`` of column b;
      the remaining steps hold ``padding_value``.
    * ``lengths``: int64 array ``(B,)`` of the ``T_b``, in the order given (no sorting).

    Errors: an empty list -> ValueError; a non-float or mismatched dtype -> TypeError naming ``sequences[k]``;
    no time dimension or a trailing shape differing from ``sequences[0]``'s -> ValueError naming ``sequences[k]``.
    """
    if not isinstance(batch_first, (bool, np.bool_)):
        raise TypeError(f"batch_first: expected a bool, got {type(batch_first).__name__}")
    if isinstance(sequences, (str, bytes)):
        raise TypeError(f"sequences: expected a list of arrays, got {type(sequences).__name__}")
    try:
        sequences = list(sequences)
    except TypeError:
        raise TypeError(f"sequences: expected a list of arrays, got {type(sequences).__name__}") from None
    if not sequences:
        raise ValueError("sequences: expected at least one sequence, got an empty list")

    arrays: list[np.ndarray] = []
    for k, seq in enumerate(sequences):
        a = check.array(seq, f"sequences[{k}]")
        if a.dtype.kind != "f":
            raise TypeError(f"sequences[{k}]: expected a floating-point array, got dtype {a.dtype} "
                            f"(convert it first, e.g. np.asarray(seq, dtype=np.float32))")
        if a.ndim < 1:
            raise ValueError(f"sequences[{k}]: expected shape (T, *feature) with a time dimension, got a 0-d array")
        if k > 0:
            first = arrays[0]
            if a.dtype != first.dtype:
                raise TypeError(f"sequences[{k}]: expected dtype {first.dtype} (that of sequences[0]), got {a.dtype}")
            if a.shape[1:] != first.shape[1:]:
                raise ValueError(f"sequences[{k}]: expected trailing shape {first.shape[1:]} (that of sequences[0]: "
                                 f"(T, *feature) with feature the same for all), got {a.shape[1:]} "
                                 f"(shape {a.shape})")
        arrays.append(a)

    first = arrays[0]
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    t_max = int(lengths.max())
    batch = len(arrays)
    shape = (batch, t_max) + first.shape[1:] if batch_first else (t_max, batch) + first.shape[1:]
    if isinstance(padding_value, (bool, np.bool_)) or not isinstance(padding_value, numbers.Real):
        raise TypeError(f"padding_value: expected a real number, got {padding_value!r}")
    try:
        padded = np.full(shape, padding_value, dtype=first.dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"padding_value: expected a number, got {padding_value!r} ({exc})") from exc
    for b, a in enumerate(arrays):
        if batch_first:
            padded[b, :a.shape[0]] = a
        else:
            padded[:a.shape[0], b] = a
    return padded, lengths


def unpad(out: np.ndarray, lengths: npt.ArrayLike, batch_first: bool = False) -> list[np.ndarray]:
    """A padded array and its lengths -> a list of B arrays, ``out[:lengths[b], b]`` for each b
    (``out[b, :lengths[b]]`` with ``batch_first=True``), each ``(lengths[b], *feature)``.

    The arrays are views into ``out``, not copies: writing into one writes into ``out`` (take ``.copy()`` if
    ``out`` will be reused or modified). ``out`` is ``(T, B, *feature)`` (``(B, T, *feature)`` with
    ``batch_first``); ``lengths`` must be a 1-D integer array of B values, each in ``[0, T]``.

    Errors name the argument: ``out`` (fewer than 2 dimensions), ``lengths`` (not integers -> TypeError; not 1-D,
    not B values, or a value outside ``[0, T]`` -> ValueError).
    """
    if not isinstance(batch_first, (bool, np.bool_)):
        raise TypeError(f"batch_first: expected a bool, got {type(batch_first).__name__}")
    out = np.asarray(out)
    layout = "(B, T, *feature)" if batch_first else "(T, B, *feature)"
    if out.ndim < 2:
        raise ValueError(f"out: expected shape {layout}, got {out.shape}")
    steps, batch = (out.shape[1], out.shape[0]) if batch_first else out.shape[:2]

    lengths = np.asarray(lengths)
    if lengths.size == 0 and lengths.dtype.kind == "f":  # np.asarray([]) is float64
        lengths = lengths.astype(np.int64)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got dtype {lengths.dtype}")
    if lengths.ndim != 1:
        raise ValueError(f"lengths: expected a 1-D array of {batch} lengths, got shape {lengths.shape}")
    if lengths.shape[0] != batch:
        raise ValueError(f"lengths: expected {batch} values (the batch size B of out {out.shape}, {layout}), "
                         f"got {lengths.shape[0]}")
    bad = np.flatnonzero((lengths < 0) | (lengths > steps))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"lengths[{k}]: expected a value in [0, {steps}] (T, the steps of out {out.shape}, "
                         f"{layout}), got {int(lengths[k])}")
    if batch_first:
        return [out[b, :int(n)] for b, n in enumerate(lengths)]
    return [out[:int(n), b] for b, n in enumerate(lengths)]

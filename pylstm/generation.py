"""Generating text from a trained language model: ``pylstm.sample`` feeds the prompt, then one character at a time,
each drawn from the model's next-character distribution and fed back, carrying the state from step to step."""
from __future__ import annotations

import numbers
from typing import Any, Optional, Protocol

import numpy as np
import numpy.typing as npt

from . import _checks as check
from .text import Vocab


class LanguageModel(Protocol):
    """What ``sample`` needs of a model (a Sequential(Embedding, LSTM/GRU/RNN, Linear) is one): a call
    ``model(ids (T, B), states) -> (logits (T, B, V), states)`` (or (B, T) and (B, T, V) when its ``batch_first``
    attribute is true) and the training flag with train()/eval()."""

    training: bool

    def __call__(self, ids: Any, states: Any, /) -> tuple[npt.NDArray[Any], Any]: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


def _logits_row(model: Any, ids: np.ndarray, states: Any) -> tuple[np.ndarray, Any]:
    """Run ids (T,) through the model as one sequence of batch 1 -> (the last step's logits (V,), the states); as
    (1, T) for a model whose recurrent layers are batch_first."""
    if getattr(model, "batch_first", False):
        out, states = model(ids.reshape(1, -1), states)
        return out[0, -1], states
    out, states = model(ids.reshape(-1, 1), states)
    return out[-1, 0], states


def sample(model: LanguageModel, vocab: Vocab, prompt: str, n: int, *, temperature: float = 1.0,
           top_k: Optional[int] = None, seed: Optional[int] = None) -> str:
    """``n`` characters that the model writes after ``prompt`` -> a str (the prompt not included).

    ``model`` maps (T, B) character ids to (T, B, len(vocab)) logits, as a ``Sequential(Embedding, LSTM/GRU/RNN,
    Linear)`` does (run in eval mode; its mode is restored after). Each character is drawn from
    softmax(logits / temperature), from the ``top_k`` most likely characters only when given; ``seed`` makes the
    draws reproducible. ``prompt`` must be a non-empty str of characters in ``vocab``.
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt: expected a non-empty str, got {prompt!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0 \
            or not np.isfinite(temperature):
        raise ValueError(f"temperature: expected a finite number > 0, got {temperature!r}")
    seed = check.seed(seed)
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab: expected a pylstm.text.Vocab, got {type(vocab).__name__}")
    size = len(vocab)
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                              or not 1 <= top_k <= size):
        raise ValueError(f"top_k: expected None or an int in [1, {size}] (the vocabulary's size), got {top_k!r}")
    try:
        prompt_ids = vocab.encode(prompt)
    except ValueError as exc:
        raise ValueError(f"prompt: {str(exc).removeprefix('text: ')}") from None
    if getattr(model, "bidirectional", False):
        raise ValueError("model: has bidirectional layers, whose reverse direction would need the characters not "
                         "drawn yet: a model that writes one character at a time reads forwards only")
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.eval()
    try:
        try:
            logits, states = _logits_row(model, prompt_ids, None)
        except (TypeError, ValueError) as exc:  # not a model of character ids (a layer alone, a cell, ...)
            raise type(exc)(f"model: expected a model of (T, B) character ids such as Sequential(Embedding, LSTM, "
                            f"Linear); on the prompt's ids it raised {type(exc).__name__}: {exc}") from exc
        if logits.shape != (size,):
            raise ValueError(f"model: expected logits over the {size} characters of the vocabulary, got "
                             f"{logits.shape[0]} per step")
        chosen = np.empty(int(n), np.int64)
        step = np.empty((1, 1), np.int64)
        for k in range(int(n)):
            if not np.isfinite(logits).all():
                raise ValueError(f"model: expected finite logits, got {'NaN' if np.isnan(logits).any() else 'inf'} "
                                 f"at character {k} (are its parameters finite?)")
            # Shifted by the largest first: at a tiny temperature the quotients then run down to -inf (a weight of
            # 0) instead of up to inf, and the draw tends to the most likely character, as it should.
            with np.errstate(over="ignore"):
                scaled = (logits.astype(np.float64) - logits.max()) / float(temperature)
            if top_k is not None and top_k < size:
                cutoff = np.partition(scaled, size - top_k)[size - top_k]
                scaled = np.where(scaled >= cutoff, scaled, -np.inf)
            weights = np.exp(scaled - scaled.max())
            cumulative = np.cumsum(weights)
            chosen[k] = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), size - 1)
            step[0, 0] = chosen[k]
            out, states = model(step, states)
            logits = out[0, 0]
    finally:
        model.train(was_training)
    return vocab.decode(chosen)

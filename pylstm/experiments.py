"""The experiments behind gated recurrent networks, run by training: why LSTMs and GRUs remember and plain RNNs forget.

Every experiment is a function returning its results as plain data (dicts of lists of numbers), and a part of
``python -m pylstm demo`` (pylstm/demo.py prints them, with a conclusion computed from the numbers, and plots them).
Data is generated (no downloads); RNN, GRU and LSTM get the same hidden size, data and training budget, and each
result is given for every seed so that means and spreads can be taken.

1. ``long_range_memory``: a key token at the start (one of several "countries") decides the answer at the end (the
   matching "language"), after a gap of filler tokens: accuracy against the gap's length.
2. ``agreement``: a singular or plural subject, then a clause of nouns of either number (attractors among them)
   and filler words, then the choice between "is" and "are": accuracy against the clause's length.
3. ``gradient_flow``: |dL/dx_{T-k}| against the distance k, at initialisation and after training on task 1, and
   the trained LSTM's forget gate along a sequence.
4. ``adding_problem`` (Hochreiter & Schmidhuber 1997): the sum of the two marked numbers of a sequence of T=100.
5. ``parameters_and_time``: parameters, seconds of training and accuracy reached per second on task 1.

The gated cells start with their memory open, as practice recommends for long dependencies: the LSTM's forget gate
bias at +``gate_bias`` and its input gate bias at -``gate_bias`` (the "chrono" initialisation of Tallec & Ollivier
2018, whose forget bias Jozefowicz et al. 2015 found essential), the GRU's update gate bias at +``gate_bias`` (z near
1 keeps h). The plain RNN has no gate to open. Everything else is PyTorch's default initialisation.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Callable, Optional

import numpy as np

from . import cells, losses, optim
from .blocks import Embedding, Linear, Sequential
from .layers import GRU, LSTM, RNN
from .training import fit

#: make_batch(rng, B) -> (x, labels): a task's generator of fresh batches.
MakeBatch = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
#: The results of an experiment: plain data (dicts of lists of numbers).
Results = dict[str, Any]

CELLS = ("RNN", "GRU", "LSTM")
GATE_BIAS = 5.0
_LAYERS = {"RNN": RNN, "GRU": GRU, "LSTM": LSTM}


def recurrent_layer(cell: str, input_size: int, hidden: int, *, seed: Optional[int],
                    gate_bias: float = GATE_BIAS) -> RNN | GRU | LSTM:
    """A one-layer RNN, GRU or LSTM with its memory gates open (see the module docstring)."""
    layer = _LAYERS[cell](input_size, hidden, seed=seed)
    # gate -> its bias in bias_ih (bias_hh's part zeroed): strongly negative closes the gate, positive opens it
    opened = {"LSTM": {"i": -gate_bias, "f": gate_bias},  # input gate closed, forget gate open
              "GRU": {"z": gate_bias}}.get(cell, {})  # update gate open (h_t = (1 - z) n + z h_{t-1})
    for gate, value in opened.items():
        rows = cells.FAMILIES[cell].gate_rows(gate, hidden)
        layer.params["bias_ih_l0"][rows] = value
        layer.params["bias_hh_l0"][rows] = 0.0
    return layer


def _classifier(cell: str, vocabulary: int, classes: int, hidden: int, seed: int, gate_bias: float,
                embedding: int = 16) -> Sequential:
    return Sequential(Embedding(vocabulary, embedding, seed=seed),
                      recurrent_layer(cell, embedding, hidden, seed=seed + 1, gate_bias=gate_bias),
                      Linear(hidden, classes, seed=seed + 2))


def _last_step_targets(labels: np.ndarray, steps: int) -> np.ndarray:
    """Targets (T, B) for a loss at the last step only: the labels there, ignore_index (-100) before."""
    y = np.full((steps, len(labels)), -100, np.int64)
    y[-1] = labels
    return y


class FreshBatches(Sequence[tuple[np.ndarray, np.ndarray]]):
    """`count` batches of generated data for fit, numbered from `first`, each made when asked for from a generator
    seeded by (seed, its number), so that none is kept: make_batch(rng, size) -> (x, labels), and the batch is
    (x, targets(x, labels))."""

    def __init__(self, make_batch: MakeBatch, count: int, size: int, seed: int,
                 targets: Callable[[np.ndarray, np.ndarray], np.ndarray], first: int = 0) -> None:
        # `length`, not `count`: an attribute `count` would hide Sequence's count() method.
        self.make_batch, self.length, self.size, self.seed, self.targets = make_batch, count, size, seed, targets
        self.first = first

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]  # no slices
        if not 0 <= k < self.length:
            raise IndexError(k)
        x, labels = self.make_batch(np.random.default_rng((self.seed, self.first + k)), self.size)
        return x, self.targets(x, labels)


def _classifier_targets(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _last_step_targets(labels, len(x))


def _train_classifier(model: Sequential, make_batch: MakeBatch, steps: int, batch: int, lr: float, seed: int,
                      first: int = 0, optimizer: Optional[optim.Adam] = None) -> None:
    """Adam (or `optimizer`) with gradient clipping on `steps` fresh batches, the first numbered `first`."""
    batches = FreshBatches(make_batch, steps, batch, seed, _classifier_targets, first)
    fit(model, batches, losses.cross_entropy, optimizer or optim.Adam(model, lr=lr), epochs=1, clip=1.0,
        progress=False)


def _accuracy(model: Sequential, make_batch: MakeBatch, size: int, seed: int) -> float:
    """The share of fresh sequences whose last-step prediction is right (the model in eval mode)."""
    x, labels = make_batch(np.random.default_rng(seed), size)
    model.eval()
    out, _ = model(x)
    model.train()
    return float(np.mean(out[-1].argmax(axis=-1) == labels))


# ----------------------------------------------------------------------------------------------------------------------
# 1. Long-range memory


def memory_batch(gap: int, keys: int = 4, filler: int = 8) -> MakeBatch:
    """-> make_batch(rng, B) for task 1: x (gap + 2, B) token ids: a key in [0, keys), gap filler tokens, a query
    token; labels (B,): the key (the "language" that goes with the "country")."""
    query = keys + filler

    def make_batch(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, keys, batch)
        x = np.empty((gap + 2, batch), np.int64)
        x[0] = labels
        x[1:-1] = keys + rng.integers(0, filler, (gap, batch))
        x[-1] = query
        return x, labels

    return make_batch


def long_range_memory(*, gaps: Sequence[int] = (10, 25, 50, 100, 200), cells: Sequence[str] = CELLS, hidden: int = 32,
                      steps: int = 600, batch: int = 32, lr: float = 3e-3, seeds: Sequence[int] = (0, 1, 2),
                      keys: int = 4, filler: int = 8, gate_bias: float = GATE_BIAS, eval_size: int = 512) -> Results:
    """Task 1 -> {"gaps", "cells", "seeds", "chance", "accuracy": {cell: [[per seed] per gap]}, "seconds"}."""
    started = time.perf_counter()
    accuracy: dict[str, list[list[float]]] = {cell: [] for cell in cells}
    for gap in gaps:
        make_batch = memory_batch(gap, keys, filler)
        for cell in cells:
            row = []
            for seed in seeds:
                model = _classifier(cell, keys + filler + 1, keys, hidden, seed, gate_bias)
                _train_classifier(model, make_batch, steps, batch, lr, seed)
                row.append(_accuracy(model, make_batch, eval_size, 10 ** 6 + seed))
            accuracy[cell].append(row)
    return {"gaps": list(gaps), "cells": list(cells), "seeds": list(seeds), "chance": 1.0 / keys,
            "accuracy": accuracy, "seconds": time.perf_counter() - started}


# ----------------------------------------------------------------------------------------------------------------------
# 2. Agreement over distractors


def agreement_batch(length: int, nouns: int = 6, filler: int = 6) -> MakeBatch:
    """-> make_batch(rng, B) for task 2: a subject noun (singular ids [0, nouns), plural [nouns, 2 nouns)), a clause
    of `length` tokens, each a noun of either number (half of them, on average, "attractors" of the other number) or
    a filler word, and a query; labels: 0 ("is") for a singular subject, 1 ("are") for a plural one. The clause's
    nouns are drawn independently of the subject, so only the first noun tells the answer: the nearest noun is
    right half of the time."""
    first_filler, query = 2 * nouns, 2 * nouns + filler

    def make_batch(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 2, batch)
        x = np.empty((length + 2, batch), np.int64)
        x[0] = labels * nouns + rng.integers(0, nouns, batch)
        distractors = rng.integers(0, 2 * nouns, (length, batch))
        fillers = first_filler + rng.integers(0, filler, (length, batch))
        x[1:-1] = np.where(rng.random((length, batch)) < 0.5, distractors, fillers)
        x[-1] = query
        return x, labels

    return make_batch


def agreement(*, lengths: Sequence[int] = (5, 10, 25, 50, 100), cells: Sequence[str] = CELLS, hidden: int = 32,
              steps: int = 400, batch: int = 32, lr: float = 3e-3, seeds: Sequence[int] = (0, 1, 2), nouns: int = 6,
              filler: int = 6, gate_bias: float = GATE_BIAS, eval_size: int = 512) -> Results:
    """Task 2 -> {"lengths", "cells", "seeds", "chance", "accuracy": {cell: [[per seed] per length]}, "seconds"}."""
    started = time.perf_counter()
    accuracy: dict[str, list[list[float]]] = {cell: [] for cell in cells}
    for length in lengths:
        make_batch = agreement_batch(length, nouns, filler)
        for cell in cells:
            row = []
            for seed in seeds:
                model = _classifier(cell, 2 * nouns + filler + 1, 2, hidden, seed, gate_bias)
                _train_classifier(model, make_batch, steps, batch, lr, seed)
                row.append(_accuracy(model, make_batch, eval_size, 10 ** 6 + seed))
            accuracy[cell].append(row)
    return {"lengths": list(lengths), "cells": list(cells), "seeds": list(seeds), "chance": 0.5,
            "accuracy": accuracy, "seconds": time.perf_counter() - started}


# ----------------------------------------------------------------------------------------------------------------------
# 3. Gradient flow before and after training


def input_gradient_norms(model: Sequential, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """|dL/dx_t| for every step t of the embedded inputs (the recurrent layer's input), L the last step's
    cross-entropy, summed over the batch -> (T,) array."""
    embedding, layer, head = model.modules
    e = embedding(x)
    out, _ = layer(e)
    logits = head(out)
    _, dlogits = losses.cross_entropy(logits, _last_step_targets(labels, len(x)))
    dx, _ = layer.backward(head.backward(dlogits))
    model.zero_grad()
    return np.sqrt((dx.astype(np.float64) ** 2).sum(axis=(1, 2)))


def forget_gate_along(model: Sequential, x: np.ndarray) -> np.ndarray:
    """The LSTM's forget gate f_t averaged over units and the batch, for every step -> (T,) array."""
    embedding, layer, _ = model.modules
    e = embedding(x)
    p = layer.params
    B, H = x.shape[1], layer.hidden_size
    zeros = np.zeros((B, H), layer.dtype)
    weights = tuple(p[f"{name}_l0"] for name in cells.PARAMETERS)
    *_, saved = cells.LSTM.forward(e, (zeros, zeros), weights, (None, None), None, True)
    return saved.gates[:, :, cells.LSTM.gate_rows("f", H)].astype(np.float64).mean(axis=(1, 2))


def gradient_flow(*, gap: int = 50, distances: Sequence[int] = (1, 10, 25, 51), cells: Sequence[str] = CELLS,
                  hidden: int = 32, steps: int = 600, batch: int = 32, lr: float = 3e-3,
                  seeds: Sequence[int] = (0, 1, 2), keys: int = 4, filler: int = 8, gate_bias: float = GATE_BIAS,
                  eval_size: int = 256) -> Results:
    """Task 3 -> {"gap", "distances", "cells", "seeds", "before": {cell: [[per seed] per distance]}, "after": same,
    "profiles": {"before"/"after": {cell: [[every distance 0 .. gap + 1] per seed]}}, "accuracy": {cell: [per
    seed]}, "forget_gate": [[per step] per seed], "seconds"}.

    A distance k is |dL/dx_{T-1-k}| / |dL/dx_{T-1}|: how much of the gradient at the last input (the query) reaches
    k steps further back; the key sits at distance gap + 1 (51 for the default gap). "forget_gate" is the trained LSTM's mean forget gate at every
    step of task-1 sequences (key at step 0, query at the last step)."""
    started = time.perf_counter()
    make_batch = memory_batch(gap, keys, filler)
    profiles: dict[str, dict[str, list[list[float]]]] = {"before": {c: [] for c in cells},
                                                         "after": {c: [] for c in cells}}
    accuracy: dict[str, list[float]] = {c: [] for c in cells}
    forget: list[list[float]] = []
    x, labels = make_batch(np.random.default_rng(10 ** 7), eval_size)

    def profile(model: Sequential) -> list[float]:  # |dL/dx_{T-1-k}| / |dL/dx_{T-1}| for k = 0 .. T-1
        norms = input_gradient_norms(model, x, labels)[::-1]
        return [float(v / norms[0]) for v in norms]

    for cell in cells:
        for seed in seeds:
            model = _classifier(cell, keys + filler + 1, keys, hidden, seed, gate_bias)
            profiles["before"][cell].append(profile(model))
            _train_classifier(model, make_batch, steps, batch, lr, seed)
            profiles["after"][cell].append(profile(model))
            accuracy[cell].append(_accuracy(model, make_batch, eval_size, 10 ** 6 + seed))
            if cell == "LSTM":
                forget.append([float(v) for v in forget_gate_along(model, x)])
    at = {when: {c: [[p[k] for p in per_seed] for k in distances] for c, per_seed in table.items()}
          for when, table in profiles.items()}
    return {"gap": gap, "distances": list(distances), "cells": list(cells), "seeds": list(seeds),
            "before": at["before"], "after": at["after"], "profiles": profiles, "accuracy": accuracy,
            "forget_gate": forget, "seconds": time.perf_counter() - started}


# ----------------------------------------------------------------------------------------------------------------------
# 4. The adding problem


def adding_batch(steps: int) -> MakeBatch:
    """-> make_batch(rng, B): x (T, B, 2) float32, a number in [0, 1) and a marker (1 at one step of each half of
    the sequence, else 0) per step; y (B,): the sum of the two marked numbers."""

    def make_batch(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
        values = rng.random((steps, batch))
        marks = np.zeros((steps, batch))
        cols = np.arange(batch)
        first, second = rng.integers(0, steps // 2, batch), rng.integers(steps // 2, steps, batch)
        marks[first, cols] = marks[second, cols] = 1.0
        x = np.stack([values, marks], axis=-1).astype(np.float32)
        return x, (values[first, cols] + values[second, cols]).astype(np.float32)

    return make_batch


def _last_step_mse(out: np.ndarray, y: np.ndarray) -> losses.LossAndGrad:
    """The mean squared error of the last step's single output against y (B,) -> (loss, dout)."""
    loss, dlast = losses.mse(out[-1, :, 0], y)
    dout = np.zeros_like(out)
    dout[-1, :, 0] = dlast
    return loss, dout


def adding_problem(*, steps_per_sequence: int = 100, cells: Sequence[str] = CELLS, hidden: int = 32, steps: int = 3000,
                   batch: int = 32, lr: float = 1e-2, seeds: Sequence[int] = (0, 1, 2), gate_bias: float = GATE_BIAS,
                   eval_size: int = 1000) -> Results:
    """Task 4 -> {"T", "cells", "seeds", "baseline", "mse": {cell: [per seed]}, "seconds"}. The baseline is the
    test MSE of always predicting the mean, 1.0: the variance of a sum of two uniform numbers, 2/12 = 0.167."""
    started = time.perf_counter()
    make_batch = adding_batch(steps_per_sequence)
    mse: dict[str, list[float]] = {cell: [] for cell in cells}
    for cell in cells:
        for seed in seeds:
            model = Sequential(recurrent_layer(cell, 2, hidden, seed=seed, gate_bias=gate_bias),
                               Linear(hidden, 1, seed=seed + 1))
            batches = FreshBatches(make_batch, steps, batch, seed, lambda x, y: y)
            fit(model, batches, _last_step_mse, optim.Adam(model, lr=lr), epochs=1, clip=1.0, progress=False)
            x, y = make_batch(np.random.default_rng(10 ** 6 + seed), eval_size)
            model.eval()
            out, _ = model(x)
            mse[cell].append(float(np.mean((out[-1, :, 0].astype(np.float64) - y) ** 2)))
    return {"T": steps_per_sequence, "cells": list(cells), "seeds": list(seeds), "baseline": 2.0 / 12.0,
            "mse": mse, "seconds": time.perf_counter() - started}


# ----------------------------------------------------------------------------------------------------------------------
# 5. Parameters and time


def parameters_and_time(*, gap: int = 50, cells: Sequence[str] = CELLS, hidden: int = 32, steps: int = 600,
                        batch: int = 32, lr: float = 3e-3, seeds: Sequence[int] = (0, 1, 2), evaluate_every: int = 50,
                        keys: int = 4, filler: int = 8, gate_bias: float = GATE_BIAS, eval_size: int = 256) -> Results:
    """Task 5 on task 1's data -> {"gap", "cells", "seeds", "parameters": {cell: n (the recurrent layer's)},
    "curves": {cell: [[(seconds of training, accuracy) every evaluate_every steps] per seed]}, "seconds"}."""
    started = time.perf_counter()
    make_batch = memory_batch(gap, keys, filler)
    parameters: dict[str, int] = {}
    curves: dict[str, list[list[tuple[float, float]]]] = {cell: [] for cell in cells}
    for cell in cells:
        for seed in seeds:
            model = _classifier(cell, keys + filler + 1, keys, hidden, seed, gate_bias)
            parameters[cell] = int(sum(p.size for p in model.modules[1].params.values()))
            opt = optim.Adam(model, lr=lr)
            trained, curve = 0.0, []
            for done in range(0, steps, evaluate_every):
                t0 = time.perf_counter()
                _train_classifier(model, make_batch, min(evaluate_every, steps - done), batch, lr, seed, first=done,
                                  optimizer=opt)
                trained += time.perf_counter() - t0
                curve.append((trained, _accuracy(model, make_batch, eval_size, 10 ** 6 + seed)))
            curves[cell].append(curve)
    return {"gap": gap, "cells": list(cells), "seeds": list(seeds), "parameters": parameters, "curves": curves,
            "seconds": time.perf_counter() - started}

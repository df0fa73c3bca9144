"""The cell variants every numerical test drives the same way, and the random problems they run on.

A ``Cell`` calls one implementation module, ``pylstm.reference`` by default or ``pylstm.functional`` (the C++
kernels) via ``cell.on(functional)``: the two have the same signatures, which is what lets one test compare them.
"""
from dataclasses import dataclass, replace

import numpy as np
import pytest

from pylstm import cells
from pylstm import reference as ref

PARAM_NAMES = cells.PARAMETERS


# ----------------------------------------------------------------------------------------------------------------------
# Every cell variant (pylstm.cells holds their facts), so every test drives LSTM, both GRU forms and both RNN
# activations the same way.


@dataclass(frozen=True)
class Cell:
    """A cell variant of pylstm.cells, driven with a dict of parameters (PARAM_NAMES -> array or None)."""
    facts: cells.Cell  # the variant, computed by pylstm.reference or pylstm.functional (the same signatures)

    @property
    def name(self):
        return self.facts.name

    @property
    def family(self):
        """"lstm", "gru" or "rnn"."""
        return self.facts.family.lower()

    @property
    def gates(self):
        """G: weight_ih is (G*H, I)."""
        return self.facts.gates

    @property
    def n_states(self):
        """2 for the LSTM (h, c), 1 otherwise."""
        return len(self.facts.state_names)

    @property
    def kwargs(self):
        """The forward's keyword arguments that make the variant, as (key, value) pairs."""
        return tuple(self.facts.options.items())

    @property
    def impl(self):
        return self.facts.impl

    def on(self, impl):
        """The same cell computed by another implementation module."""
        return replace(self, facts=self.facts.on(impl))

    @property
    def is_relu(self):
        return self.facts.options.get("nonlinearity") == "relu"

    def forward(self, x, states, params, training=True):
        """-> out, finals (tuple of (B, H) arrays, same order as states), saved."""
        weights = tuple(params[name] for name in PARAM_NAMES)
        return self.facts.forward(x, tuple(states), weights, (None, None), None, training)

    def backward(self, saved, params, dout, dfinals, grads):
        """-> dx, dstates (tuple, same order as states); accumulates into the arrays of ``grads``."""
        weights = (params["weight_ih"], params["weight_hh"], None, None)
        grad_kwargs = {f"d{name}": grads.get(name) for name in PARAM_NAMES}
        return self.facts.backward(saved, weights, (None, None), dout, tuple(dfinals), grad_kwargs, (None, None))


LSTM, GRU_AFTER, GRU_BEFORE, RNN_TANH, RNN_RELU = ALL_CELLS = [
    Cell(facts.on(ref)) for facts in (cells.LSTM, cells.GRU_RESET_AFTER, cells.GRU_RESET_BEFORE, cells.RNN_TANH,
                                      cells.RNN_RELU)]
cells = pytest.mark.parametrize("cell", ALL_CELLS, ids=lambda c: c.name)
with_bias = pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])


@dataclass
class Problem:
    """Inputs, parameters and the fixed loss weights of one forward/backward."""
    x: np.ndarray
    states: tuple
    params: dict  # PARAM_NAMES -> array; the biases are None when the cell has no bias
    w_out: np.ndarray
    w_finals: tuple

    def present_params(self):
        return [name for name in PARAM_NAMES if self.params[name] is not None]


def _relu_preactivations(problem):
    """W_ih x_t + b_ih + W_hh h_{t-1} + b_hh for every step, recomputed from the forward's outputs."""
    p = problem.params
    out, _, _ = RNN_RELU.forward(problem.x, problem.states, p, training=False)  # the reference
    h_prev = np.concatenate([problem.states[0][None], out[:-1]])
    pre = problem.x @ p["weight_ih"].T + h_prev @ p["weight_hh"].T
    return pre if p["bias_ih"] is None else pre + p["bias_ih"] + p["bias_hh"]


def make_problem(cell, T, B, I, H, bias, seed):
    """Random problem of the given shape; for relu, resampled until no pre-activation is within 1e-3 of the kink
    (so that central differences with eps=1e-6 never straddle it) and at least one unit is active (so that the
    gradients are not all trivially zero)."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        G = cell.gates
        params = {
            "weight_ih": rng.uniform(-1, 1, (G * H, I)),
            "weight_hh": rng.uniform(-1, 1, (G * H, H)),
            "bias_ih": rng.uniform(-1, 1, G * H) if bias else None,
            "bias_hh": rng.uniform(-1, 1, G * H) if bias else None,
        }
        problem = Problem(
            x=rng.standard_normal((T, B, I)),
            states=tuple(rng.standard_normal((B, H)) for _ in range(cell.n_states)),
            params=params,
            w_out=rng.standard_normal((T, B, H)),
            w_finals=tuple(rng.standard_normal((B, H)) for _ in range(cell.n_states)),
        )
        if not cell.is_relu:
            return problem
        pre = _relu_preactivations(problem)
        if np.abs(pre).min() > 1e-3 and pre.max() > 0:
            return problem
    raise AssertionError("could not draw a relu problem away from the kink")

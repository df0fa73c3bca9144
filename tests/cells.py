"""The cell variants every numerical test drives the same way, and the random problems they run on.

A ``Cell`` calls one implementation module, ``pylstm.reference`` by default or ``pylstm.functional`` (the C++
kernels) via ``cell.on(functional)``: the two have the same signatures, which is what lets one test compare them.
"""
from dataclasses import dataclass, replace
from types import ModuleType

import numpy as np
import pytest

from pylstm import reference as ref

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# ----------------------------------------------------------------------------------------------------------------------
# One description per cell variant, so every test drives LSTM, both GRU forms and both RNN activations the same way.


@dataclass(frozen=True)
class Cell:
    name: str
    family: str  # "lstm", "gru" or "rnn"
    gates: int  # G: weight_ih is (G*H, I)
    n_states: int  # 2 for the LSTM (h, c), 1 otherwise
    kwargs: tuple = ()  # extra keyword arguments of the forward, as (key, value) pairs
    impl: ModuleType = ref  # pylstm.reference or pylstm.functional: the same signatures

    def on(self, impl):
        """The same cell computed by another implementation module."""
        return replace(self, impl=impl)

    @property
    def is_relu(self):
        return dict(self.kwargs).get("nonlinearity") == "relu"

    def forward(self, x, states, params, training=True):
        """-> out, finals (tuple of (B, H) arrays, same order as states), saved."""
        args = (x, *states, params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"])
        if self.family == "lstm":
            out, h_n, c_n, saved = self.impl.lstm_forward(*args, training=training)
            return out, (h_n, c_n), saved
        forward = self.impl.gru_forward if self.family == "gru" else self.impl.rnn_forward
        out, h_n, saved = forward(*args, training=training, **dict(self.kwargs))
        return out, (h_n,), saved

    def backward(self, saved, params, dout, dfinals, grads):
        """-> dx, dstates (tuple, same order as states); accumulates into the arrays of ``grads``."""
        backward = getattr(self.impl, f"{self.family}_backward")
        dx, *dstates = backward(saved, params["weight_ih"], params["weight_hh"], dout, *dfinals,
                                dweight_ih=grads["weight_ih"], dweight_hh=grads["weight_hh"],
                                dbias_ih=grads.get("bias_ih"), dbias_hh=grads.get("bias_hh"))
        return dx, tuple(dstates)


LSTM = Cell("lstm", "lstm", 4, 2)
GRU_AFTER = Cell("gru-reset_after", "gru", 3, 1, (("reset_after", True),))
GRU_BEFORE = Cell("gru-reset_before", "gru", 3, 1, (("reset_after", False),))
RNN_TANH = Cell("rnn-tanh", "rnn", 1, 1, (("nonlinearity", "tanh"),))
RNN_RELU = Cell("rnn-relu", "rnn", 1, 1, (("nonlinearity", "relu"),))
ALL_CELLS = [LSTM, GRU_AFTER, GRU_BEFORE, RNN_TANH, RNN_RELU]
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

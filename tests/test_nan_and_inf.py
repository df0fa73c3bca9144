"""NaN and inf in a layer's input propagate as the NumPy reference's do; nothing crashes."""
import numpy as np
import pytest

import pylstm
from pylstm import reference as ref

# ----------------------------------------------------------------------------------------------------------------------
# 4. NaN and inf propagate; nothing crashes.

VARIANTS = [(pylstm.LSTM, {}), (pylstm.GRU, {}), (pylstm.GRU, {"reset_after": False}), (pylstm.RNN, {}),
            (pylstm.RNN, {"nonlinearity": "relu"})]
variants = pytest.mark.parametrize("cls,kwargs", VARIANTS, ids=["lstm", "gru", "gru-before", "rnn-tanh", "rnn-relu"])


def _reference_run(layer, x, dout):
    """The layer's forward and backward (zero initial state, no dstate) by pylstm.reference -> out, dx."""
    p = layer.params
    family = type(layer).__name__.lower()
    n_states = 2 if family == "lstm" else 1
    states = [np.zeros((x.shape[1], layer.hidden_size), layer.dtype)] * n_states
    args = (x, *states, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    extra = {"lstm": {}, "gru": {"reset_after": getattr(layer, "reset_after", None)},
             "rnn": {"nonlinearity": getattr(layer, "nonlinearity", None)}}[family]
    out, *_, saved = getattr(ref, f"{family}_forward")(*args, **extra)
    grads = {f"d{k[:-3]}": np.zeros_like(v) for k, v in p.items()}
    dx, *_ = getattr(ref, f"{family}_backward")(saved, p["weight_ih_l0"], p["weight_hh_l0"], dout, **grads)
    return out, dx


@variants
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_in_x_propagates(cls, kwargs, dtype):
    """A NaN in x[1, 0] makes out[t, 0] NaN in every unit for t >= 1 (it enters every gate through W_ih and then
    every unit through W_hh), leaves steps before it and the other batch rows untouched; backward runs."""
    layer = cls(3, 5, dtype=dtype, seed=3, **kwargs)
    x = np.random.default_rng(4).standard_normal((4, 3, 3)).astype(dtype)
    clean, _ = layer(x)
    clean = clean.copy()
    x[1, 0, 1] = np.nan
    out, final = layer(x)
    assert np.isnan(out[1:, 0]).all()
    assert np.isnan(as_first(final)[0, 0]).all()
    np.testing.assert_array_equal(out[0], clean[0])
    np.testing.assert_allclose(out[:, 1:], clean[:, 1:], rtol=1e-6, atol=1e-7)
    dout = np.ones_like(out)
    dx, _ = layer.backward(dout)
    # The NaN reaches the input gradient of row 0 as the reference says (relu's derivative at a NaN output is 0,
    # so there it may not), and no other row's.
    with np.errstate(invalid="ignore"):
        _, dx_expected = _reference_run(layer, x, dout)
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(dx_expected))
    assert np.isfinite(dx[:, 1:]).all()


def as_first(state):
    return state[0] if isinstance(state, tuple) else state


@variants
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_x_gives_the_references_result(cls, kwargs, value):
    """An infinite input saturates the gates; whatever that gives (finite, inf or NaN), the kernels give the same as
    the reference, the other batch rows are unaffected, and nothing crashes."""
    layer = cls(3, 5, dtype="float64", seed=5, **kwargs)
    x = np.random.default_rng(6).standard_normal((4, 3, 3))
    clean, _ = layer(x)
    clean = clean.copy()
    x[1, 0, 1] = value
    out, _ = layer(x)
    dout = np.ones_like(out)
    dx, _ = layer.backward(dout)
    with np.errstate(invalid="ignore", over="ignore"):
        out_expected, dx_expected = _reference_run(layer, x, dout)
    np.testing.assert_allclose(out, out_expected, rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(out[:, 1:], clean[:, 1:], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-12, atol=1e-12, equal_nan=True)

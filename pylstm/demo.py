"""`python -m pylstm demo`: how far back a gradient reaches through RNN, GRU and LSTM layers, computed by the C++
kernels and checked against the NumPy reference.

A loss on the last step's output is backpropagated through T steps; the table shows |dL/dx_{T-k}| relative to
|dL/dx_{T-1}|. The plain RNN's gradient vanishes fastest (each step multiplies by W_hh^T diag(tanh')); the gated cells
keep it longer, and the LSTM keeps it longest once its forget gate starts open (forget-gate bias 1): the cell state is
a conveyor belt whose gradient is only scaled by f at each step (the constant error carousel).
"""
import numpy as np

from . import reference
from .layers import GRU, LSTM, RNN

STEPS, BATCH, HIDDEN = 100, 32, 64
LAGS = (1, 5, 10, 20, 40, 70, 100)


def _layers(seed):
    lstm_open = LSTM(HIDDEN, HIDDEN, dtype="float64", seed=seed, forget_bias=1.0)  # the forget gate starts open
    return [
        ("RNN (tanh)", RNN(HIDDEN, HIDDEN, dtype="float64", seed=seed)),
        ("GRU", GRU(HIDDEN, HIDDEN, dtype="float64", seed=seed)),
        ("LSTM", LSTM(HIDDEN, HIDDEN, dtype="float64", seed=seed)),
        ("LSTM, forget bias 1", lstm_open),
    ]


def _reference_input_grad(layer, x, dout):
    """dL/dx from the NumPy reference, for the same layer and loss."""
    p = layer.params
    w = (p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    h0 = np.zeros((x.shape[1], HIDDEN))
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    g = dict(dweight_ih=grads["weight_ih_l0"], dweight_hh=grads["weight_hh_l0"],
             dbias_ih=grads["bias_ih_l0"], dbias_hh=grads["bias_hh_l0"])
    if isinstance(layer, LSTM):
        *_, saved = reference.lstm_forward(x, h0, h0, *w)
        return reference.lstm_backward(saved, w[0], w[1], dout, **g)[0]
    if isinstance(layer, GRU):
        *_, saved = reference.gru_forward(x, h0, *w)
        return reference.gru_backward(saved, w[0], w[1], dout, **g)[0]
    *_, saved = reference.rnn_forward(x, h0, *w)
    return reference.rnn_backward(saved, w[0], w[1], dout, **g)[0]


def run(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((STEPS, BATCH, HIDDEN))
    dout = np.zeros((STEPS, BATCH, HIDDEN))
    dout[-1] = rng.standard_normal((BATCH, HIDDEN))
    print("Gradient of a loss on the last output w.r.t. the input k steps earlier, |dL/dx_(T-k)| / |dL/dx_(T-1)|")
    print(f"(T={STEPS}, batch {BATCH}, {HIDDEN} hidden units, PyTorch's default initialization, float64)\n")
    print(f"{'':22}" + "".join(f"{'k=' + str(k):>10}" for k in LAGS) + f"{'vs reference':>16}")
    for name, layer in _layers(seed + 1):
        layer(x)
        dx, _ = layer.backward(dout)
        norms = np.linalg.norm(dx, axis=(1, 2))
        ratios = norms / norms[-1]
        ref_dx = _reference_input_grad(layer, x, dout)
        err = np.abs(dx - ref_dx).max() / np.abs(ref_dx).max()
        print(f"{name:22}" + "".join(f"{ratios[STEPS - k]:10.1e}" for k in LAGS) + f"{err:16.1e}")
    print("\nvs reference: max |C++ kernel - NumPy reference| / max |reference| over all of dL/dx.")


"""The readable NumPy reference: the specification every C++ kernel is tested against.

Written from the equations, slow on purpose: one layer, one direction, a Python loop over time steps. Each function has
the same signature and the same in/out contract as its twin in ``pylstm.functional`` (the C++ kernels), so tests call
both the same way and compare every output, the saved record and every gradient.

Shapes: T steps, B batch rows, I inputs, H hidden units. Weights follow PyTorch: ``weight_ih`` (G*H, I),
``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,) or both None, with the gate blocks stacked in PyTorch's
order: LSTM i, f, g, o (G=4); GRU r, z, n (G=3); RNN one block (G=1).

Forward functions return the outputs and a saved record (``pylstm.saved``) when ``training`` is true, else None;
in training mode ``out`` is returned read-only, because the saved record refers to it.
Backward functions return the gradients of the input and the initial state, and *accumulate* the parameter gradients
into the arrays passed as ``dweight_ih``, ``dweight_hh``, ``dbias_ih``, ``dbias_hh`` (as the kernels do).
Everything is computed in the dtype of the inputs (use float64 for a tight reference).
"""
import numpy as np

from .saved import GRUSaved, LSTMSaved, RNNSaved


def sigmoid(x):
    """1 / (1 + exp(-x)), written so that exp never overflows and small results keep full relative precision."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _affine(v, weight, bias):
    """v @ weight.T (+ bias): (N, K) x (M, K) -> (N, M)."""
    y = v @ weight.T
    return y if bias is None else y + bias


# ----------------------------------------------------------------------------------------------------------------------
# LSTM:  i = s(W_ii x + b_ii + W_hi h + b_hi)     f = s(W_if x + b_if + W_hf h + b_hf)
#        g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = s(W_io x + b_io + W_ho h + b_ho)
#        c' = f * c + i * g                       h' = o * tanh(c')


def lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, training=True):
    """x (T, B, I), h0 and c0 (B, H) -> out (T, B, H), h_n (B, H), c_n (B, H), saved (LSTMSaved or None)."""
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    out = np.empty((T, B, H), dtype=x.dtype)
    gates = np.empty((T, B, 4 * H), dtype=x.dtype)
    cells = np.empty((T, B, H), dtype=x.dtype)
    h, c = h0, c0
    for t in range(T):
        pre = _affine(x[t], weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)
        i = sigmoid(pre[:, 0 * H:1 * H])
        f = sigmoid(pre[:, 1 * H:2 * H])
        g = np.tanh(pre[:, 2 * H:3 * H])
        o = sigmoid(pre[:, 3 * H:4 * H])
        c = f * c + i * g
        h = o * np.tanh(c)
        out[t], cells[t] = h, c
        gates[t] = np.concatenate([i, f, g, o], axis=1)
    h_n, c_n = h.copy(), c.copy()
    saved = LSTMSaved(x, h0, c0, out, gates, cells) if training else None
    out.flags.writeable = not training
    return out, h_n, c_n, saved


def lstm_backward(saved, weight_ih, weight_hh, dout, dh_n=None, dc_n=None, *,
                  dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout (T, B, H), dh_n and dc_n (B, H) or None -> dx (T, B, I), dh0 (B, H), dc0 (B, H); accumulates dweight_*."""
    x, h0, c0, out, gates, cells = saved
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    dx = np.empty_like(x)
    dh = np.zeros_like(h0) if dh_n is None else dh_n.copy()
    dc = np.zeros_like(c0) if dc_n is None else dc_n.copy()
    for t in reversed(range(T)):
        i, f, g, o = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
        c_prev = c0 if t == 0 else cells[t - 1]
        h_prev = h0 if t == 0 else out[t - 1]
        dh = dh + dout[t]
        tanh_c = np.tanh(cells[t])
        dc = dc + dh * o * (1 - tanh_c ** 2)
        dpre = np.concatenate([
            dc * g * i * (1 - i),          # d pre_i
            dc * c_prev * f * (1 - f),     # d pre_f
            dc * i * (1 - g ** 2),         # d pre_g
            dh * tanh_c * o * (1 - o),     # d pre_o
        ], axis=1)
        dx[t] = dpre @ weight_ih
        dweight_ih += dpre.T @ x[t]
        dweight_hh += dpre.T @ h_prev
        if dbias_ih is not None:
            dbias_ih += dpre.sum(axis=0)
            dbias_hh += dpre.sum(axis=0)
        dh = dpre @ weight_hh
        dc = dc * f
    return dx, dh, dc


# ----------------------------------------------------------------------------------------------------------------------
# GRU:   r = s(W_ir x + b_ir + W_hr h + b_hr)     z = s(W_iz x + b_iz + W_hz h + b_hz)
#        reset_after=True  (PyTorch, cuDNN):      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
#        reset_after=False (Cho et al. 2014):     n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
#        h' = (1 - z) * n + z * h


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, reset_after=True, training=True):
    """x (T, B, I), h0 (B, H) -> out (T, B, H), h_n (B, H), saved (GRUSaved or None)."""
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    out = np.empty((T, B, H), dtype=x.dtype)
    gates = np.empty((T, B, (4 if reset_after else 3) * H), dtype=x.dtype)
    w_hrz, w_hn = weight_hh[:2 * H], weight_hh[2 * H:]
    b_hrz, b_hn = (None, None) if bias_hh is None else (bias_hh[:2 * H], bias_hh[2 * H:])
    h = h0
    for t in range(T):
        gx = _affine(x[t], weight_ih, bias_ih)
        rz = sigmoid(gx[:, :2 * H] + _affine(h, w_hrz, b_hrz))
        r, z = rz[:, :H], rz[:, H:]
        if reset_after:
            hn = _affine(h, w_hn, b_hn)
            n = np.tanh(gx[:, 2 * H:] + r * hn)
            gates[t] = np.concatenate([r, z, n, hn], axis=1)
        else:
            n = np.tanh(gx[:, 2 * H:] + _affine(r * h, w_hn, b_hn))
            gates[t] = np.concatenate([r, z, n], axis=1)
        h = (1 - z) * n + z * h
        out[t] = h
    h_n = h.copy()
    saved = GRUSaved(x, h0, out, gates, bool(reset_after)) if training else None
    out.flags.writeable = not training
    return out, h_n, saved


def gru_backward(saved, weight_ih, weight_hh, dout, dh_n=None, *,
                 dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout (T, B, H), dh_n (B, H) or None -> dx (T, B, I), dh0 (B, H); accumulates dweight_*."""
    x, h0, out, gates, reset_after = saved
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    w_hrz, w_hn = weight_hh[:2 * H], weight_hh[2 * H:]
    dx = np.empty_like(x)
    dh = np.zeros_like(h0) if dh_n is None else dh_n.copy()
    for t in reversed(range(T)):
        r, z, n = (gates[t, :, k * H:(k + 1) * H] for k in range(3))
        h_prev = h0 if t == 0 else out[t - 1]
        dh = dh + dout[t]
        dn_pre = dh * (1 - z) * (1 - n ** 2)
        dz_pre = dh * (h_prev - n) * z * (1 - z)
        if reset_after:
            hn = gates[t, :, 3 * H:]
            dr_pre = dn_pre * hn * r * (1 - r)
            dgx = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)    # d(W_ih x + b_ih)
            dgh = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)  # d(W_hh h + b_hh)
            dweight_hh += dgh.T @ h_prev
            dh_prev = dh * z + dgh @ weight_hh
        else:
            drh = dn_pre @ w_hn                                        # d(r * h_prev)
            dr_pre = drh * h_prev * r * (1 - r)
            dgx = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)
            dgh = dgx                                                  # every hh pre-activation adds like its ih twin
            dweight_hh[:2 * H] += dgx[:, :2 * H].T @ h_prev
            dweight_hh[2 * H:] += dn_pre.T @ (r * h_prev)
            dh_prev = dh * z + drh * r + dgx[:, :2 * H] @ w_hrz
        dx[t] = dgx @ weight_ih
        dweight_ih += dgx.T @ x[t]
        if dbias_ih is not None:
            dbias_ih += dgx.sum(axis=0)
            dbias_hh += dgh.sum(axis=0)
        dh = dh_prev
    return dx, dh


# ----------------------------------------------------------------------------------------------------------------------
# Elman RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu

_RNN_ACTIVATIONS = {
    # name: (act(pre), act'(pre) expressed through h = act(pre))
    "tanh": (np.tanh, lambda h: 1 - h ** 2),
    "relu": (lambda p: np.maximum(p, 0), lambda h: (h > 0).astype(h.dtype)),
}


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, nonlinearity="tanh", training=True):
    """x (T, B, I), h0 (B, H) -> out (T, B, H), h_n (B, H), saved (RNNSaved or None)."""
    if nonlinearity not in _RNN_ACTIVATIONS:
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    act, _ = _RNN_ACTIVATIONS[nonlinearity]
    T, B, _ = x.shape
    H = weight_hh.shape[1]
    out = np.empty((T, B, H), dtype=x.dtype)
    h = h0
    for t in range(T):
        h = act(_affine(x[t], weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh))
        out[t] = h
    saved = RNNSaved(x, h0, out, nonlinearity) if training else None
    out.flags.writeable = not training
    return out, h.copy(), saved


def rnn_backward(saved, weight_ih, weight_hh, dout, dh_n=None, *,
                 dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout (T, B, H), dh_n (B, H) or None -> dx (T, B, I), dh0 (B, H); accumulates dweight_*."""
    x, h0, out, nonlinearity = saved
    _, act_grad = _RNN_ACTIVATIONS[nonlinearity]
    T = x.shape[0]
    dx = np.empty_like(x)
    dh = np.zeros_like(h0) if dh_n is None else dh_n.copy()
    for t in reversed(range(T)):
        h_prev = h0 if t == 0 else out[t - 1]
        dpre = (dh + dout[t]) * act_grad(out[t])
        dx[t] = dpre @ weight_ih
        dweight_ih += dpre.T @ x[t]
        dweight_hh += dpre.T @ h_prev
        if dbias_ih is not None:
            dbias_ih += dpre.sum(axis=0)
            dbias_hh += dpre.sum(axis=0)
        dh = dpre @ weight_hh
    return dx, dh

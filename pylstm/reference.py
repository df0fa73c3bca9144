"""The readable NumPy reference: the specification every C++ kernel is tested against.

Written from the equations, slow on purpose: one layer, one direction, a Python loop over time steps. Each function has
the same signature and the same in/out contract as its twin in ``pylstm.functional`` (the C++ kernels), so tests call
both the same way and compare every output, the saved record and every gradient.

Shapes: T steps, B batch rows, I inputs, H hidden units. Weights follow PyTorch: ``weight_ih`` (G*H, I),
``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,) or both None, with the gate blocks stacked in PyTorch's
order: LSTM i, f, g, o (G=4); GRU r, z, n (G=3); RNN one block (G=1). An LSTM may add a projection ``weight_hr``
(P, H) (LSTMP, as torch's ``proj_size``: h_t = W_hr (o * tanh(c_t)), so h is (B, P) and ``weight_hh`` is (4H, P)) and
peepholes ``(p_i, p_f, p_o)``, each (H,) (Gers & Schmidhuber 2000: c_{t-1} feeds i and f, c_t feeds o).

Sequences come in one of two layouts. (T, B, .): every step runs all B rows. Packed (``batch_sizes`` given, as
torch's PackedSequence): sequences sorted longest first, step t runs the first ``batch_sizes[t]`` of them, and its rows
are the next ``batch_sizes[t]`` rows of x (N, I) (N = sum(batch_sizes)); a row of the state that a step does not run
keeps its value, so the final state holds each sequence's state after its own last step.
``reverse=True`` (the (T, B, .) layout only) runs the steps from the last: the loop goes over reversed(range(T)),
out[t] is still the output at time t, and the final state is the one after time 0.

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
# The step layout shared by every cell: which rows of the flattened (N, .) sequence each step runs.


def _step_rows(x, batch_sizes, B, reverse):
    """x (T, B, I) or packed (N, I) -> x as (N, I) rows and a list of (rows slice, n) per step, in the order the
    loop runs them (from the last with reverse)."""
    if reverse and batch_sizes is not None:
        raise ValueError("reverse: expected False with batch_sizes (the packed layout runs the reverse direction on "
                         "rows reordered for it), got True")
    if batch_sizes is None:
        T = x.shape[0]
        sizes = [B] * T
        rows = x.reshape(T * B, x.shape[2])
    else:
        sizes = [int(n) for n in batch_sizes]
        if any(n < 0 or n > B for n in sizes) or any(a < b for a, b in zip(sizes, sizes[1:])):
            raise ValueError(f"batch_sizes: expected non-increasing values in [0, {B}], got {sizes}")
        if x.ndim != 2 or x.shape[0] != sum(sizes):
            raise ValueError(f"x: expected packed rows ({sum(sizes)}, I), got {x.shape}")
        rows = x
    steps, start = [], 0
    for n in sizes:
        steps.append((slice(start, start + n), n))
        start += n
    return rows, steps[::-1] if reverse else steps


def _like_x(x, width):
    """A new array shaped like x with its last axis `width`: (T, B, width) or (N, width)."""
    return np.empty(x.shape[:-1] + (width,), dtype=x.dtype)


def _flat(a):
    """(T, B, W) or (N, W) -> the (N, W) view."""
    return a.reshape(-1, a.shape[-1])


def _previous(steps, t, initial, out_rows, n):
    """The state rows step t starts from: the first n rows of step t-1's output, or of the initial state."""
    return initial[:n] if t == 0 else out_rows[steps[t - 1][0]][:n]


# ----------------------------------------------------------------------------------------------------------------------
# LSTM:  i = s(W_ii x + b_ii + W_hi h + b_hi [+ p_i * c])     f = s(W_if x + b_if + W_hf h + b_hf [+ p_f * c])
#        g = tanh(W_ig x + b_ig + W_hg h + b_hg)              c' = f * c + i * g
#        o = s(W_io x + b_io + W_ho h + b_ho [+ p_o * c'])    h' = o * tanh(c')  [projected: h' = W_hr (o * tanh(c'))]


def lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, weight_hr=None, peepholes=None,
                 batch_sizes=None, training=True, reverse=False):
    """x (T, B, I) or packed (N, I), h0 (B, P), c0 (B, H) -> out (T, B, P) or (N, P), h_n (B, P), c_n (B, H),
    saved (LSTMSaved or None). P = H, or weight_hr.shape[0] with a projection."""
    B = h0.shape[0]
    H = weight_hh.shape[0] // 4
    xs, steps = _step_rows(x, batch_sizes, B, reverse)
    out = _like_x(x, h0.shape[1])
    gates = _like_x(x, 4 * H)
    cells = _like_x(x, H)
    outs, gates_rows, cells_rows = _flat(out), _flat(gates), _flat(cells)
    h, c = h0.copy(), c0.copy()  # rows a step does not run keep their last value
    for rows, n in steps:
        h_prev, c_prev = h[:n], c[:n]
        pre = _affine(xs[rows], weight_ih, bias_ih) + _affine(h_prev, weight_hh, bias_hh)
        pre_i, pre_f, pre_g, pre_o = (pre[:, k * H:(k + 1) * H] for k in range(4))
        if peepholes is not None:
            p_i, p_f, p_o = peepholes
            pre_i, pre_f = pre_i + p_i * c_prev, pre_f + p_f * c_prev
        i, f, g = sigmoid(pre_i), sigmoid(pre_f), np.tanh(pre_g)
        c_new = f * c_prev + i * g
        o = sigmoid(pre_o if peepholes is None else pre_o + p_o * c_new)
        m = o * np.tanh(c_new)
        h_new = m if weight_hr is None else m @ weight_hr.T
        outs[rows], cells_rows[rows] = h_new, c_new
        gates_rows[rows] = np.concatenate([i, f, g, o], axis=1)
        h[:n], c[:n] = h_new, c_new
    saved = LSTMSaved(x, h0, c0, out, gates, cells, batch_sizes, bool(reverse)) if training else None
    out.flags.writeable = not training
    return out, h, c, saved


def lstm_backward(saved, weight_ih, weight_hh, dout, dh_n=None, dc_n=None, *, weight_hr=None, peepholes=None,
                  dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None, dweight_hr=None, dpeepholes=None):
    """dout like out, dh_n (B, P) and dc_n (B, H) or None -> dx like x, dh0 (B, P), dc0 (B, H); accumulates the
    parameter gradients (dweight_hr (P, H) with a projection, dpeepholes (dp_i, dp_f, dp_o) with peepholes)."""
    x, h0, c0, out, gates, cells, batch_sizes, reverse = saved
    B = h0.shape[0]
    H = weight_hh.shape[0] // 4
    xs, steps = _step_rows(x, batch_sizes, B, reverse)
    outs, gates_rows, cells_rows, douts = _flat(out), _flat(gates), _flat(cells), _flat(dout)
    dx = np.empty_like(x)
    dxs = _flat(dx)
    dh = np.zeros_like(h0) if dh_n is None else dh_n.copy()  # rows a step does not run keep their gradient
    dc = np.zeros_like(c0) if dc_n is None else dc_n.copy()
    for t in reversed(range(len(steps))):
        rows, n = steps[t]
        i, f, g, o = (gates_rows[rows, k * H:(k + 1) * H] for k in range(4))
        c_t = cells_rows[rows]
        c_prev = _previous(steps, t, c0, cells_rows, n)
        h_prev = _previous(steps, t, h0, outs, n)
        dh_t = dh[:n] + douts[rows]
        tanh_c = np.tanh(c_t)
        if weight_hr is None:
            dm = dh_t
        else:  # h = W_hr m with m = o * tanh(c)
            dm = dh_t @ weight_hr
            dweight_hr += dh_t.T @ (o * tanh_c)
        do_pre = dm * tanh_c * o * (1 - o)
        dc_t = dc[:n] + dm * o * (1 - tanh_c ** 2)
        if peepholes is not None:
            dc_t = dc_t + do_pre * peepholes[2]
        di_pre = dc_t * g * i * (1 - i)
        df_pre = dc_t * c_prev * f * (1 - f)
        dpre = np.concatenate([di_pre, df_pre, dc_t * i * (1 - g ** 2), do_pre], axis=1)
        dxs[rows] = dpre @ weight_ih
        dweight_ih += dpre.T @ xs[rows]
        dweight_hh += dpre.T @ h_prev
        if dbias_ih is not None:
            dbias_ih += dpre.sum(axis=0)
            dbias_hh += dpre.sum(axis=0)
        dc_prev = dc_t * f
        if peepholes is not None:
            p_i, p_f, _ = peepholes
            dp_i, dp_f, dp_o = dpeepholes
            dp_i += (di_pre * c_prev).sum(axis=0)
            dp_f += (df_pre * c_prev).sum(axis=0)
            dp_o += (do_pre * c_t).sum(axis=0)
            dc_prev = dc_prev + di_pre * p_i + df_pre * p_f
        dh[:n] = dpre @ weight_hh
        dc[:n] = dc_prev
    return dx, dh, dc


# ----------------------------------------------------------------------------------------------------------------------
# GRU:   r = s(W_ir x + b_ir + W_hr h + b_hr)     z = s(W_iz x + b_iz + W_hz h + b_hz)
#        reset_after=True  (PyTorch, cuDNN):      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
#        reset_after=False (Cho et al. 2014):     n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
#        h' = (1 - z) * n + z * h


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, reset_after=True, batch_sizes=None,
                training=True, reverse=False):
    """x (T, B, I) or packed (N, I), h0 (B, H) -> out (T, B, H) or (N, H), h_n (B, H), saved (GRUSaved or None)."""
    B = h0.shape[0]
    H = weight_hh.shape[1]
    xs, steps = _step_rows(x, batch_sizes, B, reverse)
    out = _like_x(x, H)
    gates = _like_x(x, (4 if reset_after else 3) * H)
    outs, gates_rows = _flat(out), _flat(gates)
    w_hrz, w_hn = weight_hh[:2 * H], weight_hh[2 * H:]
    b_hrz, b_hn = (None, None) if bias_hh is None else (bias_hh[:2 * H], bias_hh[2 * H:])
    h = h0.copy()
    for rows, n in steps:
        h_prev = h[:n]
        gx = _affine(xs[rows], weight_ih, bias_ih)
        rz = sigmoid(gx[:, :2 * H] + _affine(h_prev, w_hrz, b_hrz))
        r, z = rz[:, :H], rz[:, H:]
        if reset_after:
            hn = _affine(h_prev, w_hn, b_hn)
            n_gate = np.tanh(gx[:, 2 * H:] + r * hn)
            gates_rows[rows] = np.concatenate([r, z, n_gate, hn], axis=1)
        else:
            n_gate = np.tanh(gx[:, 2 * H:] + _affine(r * h_prev, w_hn, b_hn))
            gates_rows[rows] = np.concatenate([r, z, n_gate], axis=1)
        h_new = (1 - z) * n_gate + z * h_prev
        outs[rows] = h_new
        h[:n] = h_new
    saved = GRUSaved(x, h0, out, gates, bool(reset_after), batch_sizes, bool(reverse)) if training else None
    out.flags.writeable = not training
    return out, h, saved


def gru_backward(saved, weight_ih, weight_hh, dout, dh_n=None, *,
                 dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout like out, dh_n (B, H) or None -> dx like x, dh0 (B, H); accumulates dweight_*."""
    x, h0, out, gates, reset_after, batch_sizes, reverse = saved
    B = h0.shape[0]
    H = weight_hh.shape[1]
    xs, steps = _step_rows(x, batch_sizes, B, reverse)
    outs, gates_rows, douts = _flat(out), _flat(gates), _flat(dout)
    w_hrz, w_hn = weight_hh[:2 * H], weight_hh[2 * H:]
    dx = np.empty_like(x)
    dxs = _flat(dx)
    dh = np.zeros_like(h0) if dh_n is None else dh_n.copy()
    for t in reversed(range(len(steps))):
        rows, n = steps[t]
        r, z, n_gate = (gates_rows[rows, k * H:(k + 1) * H] for k in range(3))
        h_prev = _previous(steps, t, h0, outs, n)
        dh_t = dh[:n] + douts[rows]
        dn_pre = dh_t * (1 - z) * (1 - n_gate ** 2)
        dz_pre = dh_t * (h_prev - n_gate) * z * (1 - z)
        if reset_after:
            hn = gates_rows[rows, 3 * H:]
            dr_pre = dn_pre * hn * r * (1 - r)
            dgx = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)    # d(W_ih x + b_ih)
            dgh = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)  # d(W_hh h + b_hh)
            dweight_hh += dgh.T @ h_prev
            dh_prev = dh_t * z + dgh @ weight_hh
        else:
            drh = dn_pre @ w_hn                                        # d(r * h_prev)
            dr_pre = drh * h_prev * r * (1 - r)
            dgx = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)
            dgh = dgx                                                  # every hh pre-activation adds like its ih twin
            dweight_hh[:2 * H] += dgx[:, :2 * H].T @ h_prev
            dweight_hh[2 * H:] += dn_pre.T @ (r * h_prev)
            dh_prev = dh_t * z + drh * r + dgx[:, :2 * H] @ w_hrz
        dxs[rows] = dgx @ weight_ih
        dweight_ih += dgx.T @ xs[rows]
        if dbias_ih is not None:
            dbias_ih += dgx.sum(axis=0)
            dbias_hh += dgh.sum(axis=0)
        dh[:n] = dh_prev
    return dx, dh


# ----------------------------------------------------------------------------------------------------------------------
# Elman RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu

_RNN_ACTIVATIONS = {
    # name: (act(pre), act'(pre) expressed through h = act(pre))
    "tanh": (np.tanh, lambda h: 1 - h ** 2),
    "relu": (lambda p: np.maximum(p, 0), lambda h: (h > 0).astype(h.dtype)),
}


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, nonlinearity="tanh", batch_sizes=None,
                training=True, reverse=False):
    """x (T, B, I) or packed (N, I), h0 (B, H) -> out (T, B, H) or (N, H), h_n (B, H), saved (RNNSaved or None)."""
    if nonlinearity not in _RNN_ACTIVATIONS:
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    act, _ = _RNN_ACTIVATIONS[nonlinearity]
    B = h0.shape[0]
    H = weight_hh.shape[1]
    xs, steps = _step_rows(x, batch_sizes, B, reverse)
    out = _like_x(x, H)
    outs = _flat(out)
    h = h0.copy()
    for rows, n in steps:
        h_new = act(_affine(xs[rows], weight_ih, bias_ih) + _affine(h[:n], weight_hh, bias_hh))
        outs[rows] = h_new
        h[:n] = h_new
    saved = RNNSaved(x, h0, out, nonlinearity, batch_sizes, bool(reverse)) if training else None
    out.flags.writeable = not training
    return out, h, saved


def rnn_backward(saved, weight_ih, weight_hh, dout, dh_n=None, *,
                 dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout like out, dh_n (B, H) or None -> dx like x, dh0 (B, H); accumulates dweight_*."""
    x, h0, out, nonlinearity, batch_sizes, reverse = saved
    _, act_grad = _RNN_ACTIVATIONS[nonlinearity]
    B = h0.shape[0]
    xs, steps = _step_rows(x, batch_sizes, B, reverse)
    outs, douts = _flat(out), _flat(dout)
    dx = np.empty_like(x)
    dxs = _flat(dx)
    dh = np.zeros_like(h0) if dh_n is None else dh_n.copy()
    for t in reversed(range(len(steps))):
        rows, n = steps[t]
        h_prev = _previous(steps, t, h0, outs, n)
        dpre = (dh[:n] + douts[rows]) * act_grad(outs[rows])
        dxs[rows] = dpre @ weight_ih
        dweight_ih += dpre.T @ xs[rows]
        dweight_hh += dpre.T @ h_prev
        if dbias_ih is not None:
            dbias_ih += dpre.sum(axis=0)
            dbias_hh += dpre.sum(axis=0)
        dh[:n] = dpre @ weight_hh
    return dx, dh


# ----------------------------------------------------------------------------------------------------------------------
# Blocks and losses of a training step (the twins of pylstm.functional's linear, embedding and cross-entropy).
# Rows are the last axis's vectors of arrays of any leading shape (every time step of every sequence).


def linear_forward(x, weight, bias=None):
    """x (..., I), weight (O, I), bias (O,) or None -> y (..., O) = x W^T + b."""
    return _affine(x, weight, bias)


def linear_backward(x, weight, dy, *, dweight, dbias=None, need_dx=True):
    """dy (..., O) -> dx (..., I) = dy W (None unless need_dx); accumulates dweight += dy^T x, dbias += sum of dy."""
    rows_x, rows_dy = _flat(x), _flat(dy)
    dweight += rows_dy.T @ rows_x
    if dbias is not None:
        dbias += rows_dy.sum(axis=0)
    return dy @ weight if need_dx else None


def embedding_forward(ids, weight):
    """ids (...) ints in [0, V), weight (V, D) -> out (..., D) = weight[ids]."""
    return weight[ids]


def embedding_backward(ids, dout, *, dweight, padding_idx=None):
    """dout (..., D) -> accumulates dweight[ids[r]] += dout[r] for every id but padding_idx (duplicates summed)."""
    ids, rows = ids.reshape(-1), _flat(dout)
    keep = ids != padding_idx if padding_idx is not None else np.ones(ids.shape, bool)
    np.add.at(dweight, ids[keep], rows[keep])


def log_softmax(logits):
    """log(softmax) over the last axis, from the row's maximum (no overflow for logits of any size)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(logits, targets, *, ignore_index=-100, label_smoothing=0.0, reduction="mean", need_grad=True):
    """logits (..., C), targets (...) class indices -> (loss, grad), PyTorch's F.cross_entropy.

    A row whose target is ignore_index does not count. A counted row's loss is (1 - e) * (-log p_target) +
    e * mean_j(-log p_j) with e = label_smoothing and p = softmax(row). reduction "mean": the mean over counted
    rows (NaN when none counts); "sum": their sum; "none": the loss of every row (0 where ignored), and grad is then
    the gradient of their sum. grad (like logits, or None unless need_grad) is the loss's gradient: zero on ignored
    rows. The loss is a float (an array of logits' dtype for "none").
    """
    C = logits.shape[-1]
    logp = _flat(log_softmax(logits))
    t = targets.reshape(-1)
    counted = t != ignore_index
    safe_t = np.where(counted, t, 0)
    row_loss = -(1 - label_smoothing) * logp[np.arange(len(t)), safe_t] - label_smoothing * logp.mean(axis=1)
    row_loss = np.where(counted, row_loss, 0.0)
    n = int(counted.sum())
    if reduction == "none":
        loss, scale = row_loss.reshape(targets.shape).astype(logits.dtype), 1.0
    elif reduction == "sum":
        loss, scale = float(row_loss.sum()), 1.0
    else:
        loss, scale = (float(row_loss.sum()) / n if n else float("nan")), (1.0 / n if n else 0.0)
    grad = None
    if need_grad:
        onehot = np.zeros_like(logp)
        onehot[np.arange(len(t)), safe_t] = 1.0
        g = np.exp(logp) - (1 - label_smoothing) * onehot - label_smoothing / C
        grad = (np.where(counted[:, None], g, 0.0) * scale).reshape(logits.shape).astype(logits.dtype)
    return loss, grad


def _reduce(values, reduction, dvalues):
    """Elementwise losses and their derivatives -> (loss, grad) for reduction "mean", "sum" or "none"."""
    if reduction == "none":
        return values, dvalues
    if reduction == "sum":
        return float(values.sum()), dvalues
    return float(values.mean()), dvalues / values.size


def mse(pred, target, reduction="mean"):
    """(pred - target)^2 -> (loss, grad), PyTorch's F.mse_loss."""
    diff = pred - target
    return _reduce(diff ** 2, reduction, 2 * diff)


def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """-(y log s(x) + (1 - y) log(1 - s(x))) -> (loss, grad), PyTorch's F.binary_cross_entropy_with_logits,
    written as max(x, 0) - x y + log(1 + exp(-|x|)) so that no exp overflows."""
    values = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return _reduce(values, reduction, sigmoid(logits) - targets)



# ----------------------------------------------------------------------------------------------------------------------
# Optimizers and gradient clipping (the twins of pylstm.optim's update kernels).
#
# Each update function takes one parameter array, its gradient and its optimizer state (a dict: empty before the first
# step, then holding what pylstm.optim's state_dict shows for that parameter: "step" and the named buffers), updates
# the parameter and the state in place, and returns None; the gradient is only read. The hyperparameters are
# torch.optim's, as keywords. The rules are torch's, in torch's order of operations, in the parameter's dtype: every
# hyperparameter is rounded to that dtype first (``t(x)`` below), as torch rounds a Python scalar to a tensor's type,
# and the per-step factors that torch computes in Python floats (bias corrections, step size) are Python floats here.
# These are the twins of pylstm.optim.sgd_step, adam_step and rmsprop_step (which call the C++ kernels).


def _lerp(start, end, weight):
    """torch's lerp: start + weight * (end - start) for |weight| < 0.5, else end - (end - start) * (1 - weight),
    so that each formula is exact at its own end."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (weight.dtype.type(1) - weight)


def sgd_step(param, grad, state, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD. ``state`` holds ``momentum_buffer`` after the first step when momentum != 0 (torch starts it
    as a copy of the decayed gradient, not from zeros), and nothing otherwise."""
    t = param.dtype.type
    g = grad
    if weight_decay != 0:
        g = g + t(weight_decay) * param
    if momentum != 0:
        if "momentum_buffer" not in state:
            buf = g.copy()
        else:
            buf = state["momentum_buffer"] * t(momentum) + t(1 - dampening) * g
        state["momentum_buffer"] = buf
        g = g + t(momentum) * buf if nesterov else buf
    param += t(-lr) * g


def adam_step(param, grad, state, *, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=False):
    """torch.optim.Adam, or AdamW with ``decoupled_weight_decay``. ``state``: ``step`` (the steps taken),
    ``exp_avg``, ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq`` (all zeros before the first step)."""
    t = param.dtype.type
    beta1, beta2 = betas
    if not state:
        state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
        if amsgrad:
            state["max_exp_avg_sq"] = np.zeros_like(param)
    state["step"] += 1
    step = float(state["step"])
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5

    g = grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= t(1 - lr * weight_decay)
        else:
            g = g + t(weight_decay) * param
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg[...] = _lerp(exp_avg, g, t(1 - beta1))
    exp_avg_sq[...] = exp_avg_sq * t(beta2) + (t(1 - beta2) * g) * g
    v = exp_avg_sq
    if amsgrad:
        v = state["max_exp_avg_sq"]
        np.maximum(v, exp_avg_sq, out=v)  # NaN wins, as torch.maximum
    denom = np.sqrt(v) / t(bias_correction2_sqrt) + t(eps)
    param += (t(-step_size) * exp_avg) / denom


def rmsprop_step(param, grad, state, *, lr, alpha, eps, weight_decay=0.0, momentum=0.0, centered=False):
    """torch.optim.RMSprop. ``state``: ``step``, ``square_avg``, ``momentum_buffer`` when momentum > 0 and
    ``grad_avg`` when centered (all zeros before the first step)."""
    t = param.dtype.type
    if not state:
        state.update(step=0, square_avg=np.zeros_like(param))
        if momentum > 0:
            state["momentum_buffer"] = np.zeros_like(param)
        if centered:
            state["grad_avg"] = np.zeros_like(param)
    state["step"] += 1
    g = grad
    if weight_decay != 0:
        g = g + t(weight_decay) * param
    square_avg = state["square_avg"]
    square_avg[...] = square_avg * t(alpha) + (t(1 - alpha) * g) * g
    if centered:
        grad_avg = state["grad_avg"]
        grad_avg[...] = _lerp(grad_avg, g, t(1 - alpha))
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + t(eps)  # NaN where rounding makes it negative, as torch
    else:
        avg = np.sqrt(square_avg) + t(eps)
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf[...] = buf * t(momentum) + g / avg
        param += t(-lr) * buf
    else:
        param += (t(-lr) * g) / avg


def clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """torch.nn.utils.clip_grad_norm_ over a list of gradient arrays: the total p-norm of all of them together (the
    largest |g| for norm_type inf), computed in float64 and returned as a Python float; when max_norm / (total +
    1e-6) < 1, every gradient is multiplied in place by that factor (rounded to its dtype). NaN or infinity in a
    gradient gives a NaN or infinite total, which then reaches every gradient, as torch's does (RuntimeError instead
    with error_if_nonfinite). The twin of pylstm.optim.clip_grads_by_norm."""
    p = float(norm_type)
    wide = [np.abs(g.astype(np.float64)) for g in grads]
    if p == np.inf:
        total = max((float(np.max(w)) if w.size else 0.0 for w in wide), default=0.0)
        if any(np.isnan(w).any() for w in wide):
            total = float("nan")
    else:
        total = float(sum(np.sum(w ** p) for w in wide)) ** (1.0 / p)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"the total norm of order {p} of the gradients is non-finite ({total})")
    clip_coef = max_norm / (total + 1e-6)
    if not clip_coef >= 1.0:  # (NaN scales too: it spreads into every gradient, as in torch)
        for g in grads:
            g *= g.dtype.type(clip_coef)
    return total


def clip_grad_value(grads, clip_value):
    """torch.nn.utils.clip_grad_value_ over a list of gradient arrays: each clamped in place to [-clip_value,
    clip_value]; NaN stays NaN. The twin of pylstm.optim.clip_grads_by_value."""
    for g in grads:
        t = g.dtype.type
        np.clip(g, t(-clip_value), t(clip_value), out=g)

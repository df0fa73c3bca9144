"""The functional core: one forward/backward pair per cell over a whole sequence, and per block of a training step
(linear, embedding) and the fused cross-entropy, computed by the C++ kernels.

Every function here has the same signature and contract as its twin in ``pylstm.reference`` (read that module for
the equations and shapes): forward returns the outputs and, in training mode, a saved record (``pylstm.saved``),
with ``out`` read-only because the record refers to it (and to ``x`` and the initial states, which must not change
before the backward: nothing here copies them; the layers copy their states); backward returns the input and
initial-state gradients and accumulates the parameter gradients into the arrays passed as ``dweight_ih``,
``dweight_hh``, ``dbias_ih``, ``dbias_hh`` (and ``dweight_hr``, ``dpeepholes`` for an LSTM with a projection or
peepholes).

Sequences come in one of two layouts: (T, B, .) when ``batch_sizes`` is None, or PyTorch's packed layout: rows
(N, .) of sequences sorted longest first, step t running the first ``batch_sizes[t]`` of them (int64 (T,),
non-increasing, N = sum(batch_sizes)); the states stay (B, .). ``reverse=True`` runs the steps from the last (the
reverse direction of a bidirectional layer: out[t] is still the output at time t, h_n the state after time 0), in the
(T, B, .) layout only; the saved record keeps the direction for the backward.

Arrays go to the kernel as they are: all must be C-contiguous NumPy arrays of one dtype (float32 or float64, that of
``weight_hh``); anything else raises a ValueError or TypeError naming the argument. Nothing is converted or copied.
"""
import numpy as np

from . import _checks as check
from . import _core
from .saved import GRUSaved, LSTMSaved, RNNSaved


def _freeze(out):
    out.flags.writeable = False
    return out


def _check_saved(saved, kind):
    if not isinstance(saved, kind):
        raise TypeError(f"saved: expected the {kind.__name__} record of a training-mode forward, "
                        f"got {type(saved).__name__}")


def _triple(value, name):
    """None or a sequence of three arrays -> (a, b, c) or (None, None, None)."""
    if value is None:
        return None, None, None
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise TypeError(f"{name}: expected None or a tuple (p_i, p_f, p_o) of three arrays, "
                        f"got {type(value).__name__}")
    return tuple(value)


def lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, weight_hr=None, peepholes=None,
                 batch_sizes=None, training=True, reverse=False):
    """x (T, B, I) or packed (N, I), h0 (B, P), c0 (B, H) -> out (T, B, P) or (N, P), h_n (B, P), c_n (B, H),
    saved (LSTMSaved or None). P = H, or weight_hr.shape[0] with a projection."""
    if type(training) is not bool or type(reverse) is not bool:  # (bools skip the calls: a batch-1 step is short)
        training, reverse = check.boolean(training, "training"), check.boolean(reverse, "reverse")
    out, h_n, c_n, gates, cells = _core.lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr,
                                                     *_triple(peepholes, "peepholes"), batch_sizes, training, reverse)
    if not training:
        return out, h_n, c_n, None
    return _freeze(out), h_n, c_n, LSTMSaved(x, h0, c0, out, gates, cells, batch_sizes, reverse)


def lstm_backward(saved, weight_ih, weight_hh, dout, dh_n=None, dc_n=None, *, weight_hr=None, peepholes=None,
                  dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None, dweight_hr=None, dpeepholes=None):
    """dout like out, dh_n (B, P) and dc_n (B, H) or None -> dx like x, dh0 (B, P), dc0 (B, H); accumulates the
    parameter gradients."""
    _check_saved(saved, LSTMSaved)
    x, h0, c0, out, gates, cells, batch_sizes, reverse = saved
    return _core.lstm_backward(x, h0, c0, weight_ih, weight_hh, weight_hr, *_triple(peepholes, "peepholes"),
                               batch_sizes, out, gates, cells, dout, dh_n, dc_n, dweight_ih, dweight_hh, dbias_ih,
                               dbias_hh, dweight_hr, *_triple(dpeepholes, "dpeepholes"),
                               check.boolean(reverse, "saved.reverse"))


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, reset_after=True, batch_sizes=None,
                training=True, reverse=False):
    """x (T, B, I) or packed (N, I), h0 (B, H) -> out (T, B, H) or (N, H), h_n (B, H), saved (GRUSaved or None)."""
    if type(training) is not bool or type(reverse) is not bool or type(reset_after) is not bool:  # (as above)
        training, reverse = check.boolean(training, "training"), check.boolean(reverse, "reverse")
        reset_after = check.boolean(reset_after, "reset_after")
    out, h_n, gates = _core.gru_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, reset_after, batch_sizes,
                                        training, reverse)
    if not training:
        return out, h_n, None
    return _freeze(out), h_n, GRUSaved(x, h0, out, gates, reset_after, batch_sizes, reverse)


def gru_backward(saved, weight_ih, weight_hh, dout, dh_n=None, *,
                 dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout like out, dh_n (B, H) or None -> dx like x, dh0 (B, H); accumulates dweight_*."""
    _check_saved(saved, GRUSaved)
    x, h0, out, gates, reset_after, batch_sizes, reverse = saved
    return _core.gru_backward(x, h0, weight_ih, weight_hh, batch_sizes, out, gates,
                              check.boolean(reset_after, "saved.reset_after"), dout, dh_n, dweight_ih, dweight_hh,
                              dbias_ih, dbias_hh, check.boolean(reverse, "saved.reverse"))


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, nonlinearity="tanh", batch_sizes=None,
                training=True, reverse=False):
    """x (T, B, I) or packed (N, I), h0 (B, H) -> out (T, B, H) or (N, H), h_n (B, H), saved (RNNSaved or None)."""
    nonlinearity = check.text(nonlinearity, "nonlinearity", ("tanh", "relu"))
    if type(training) is not bool or type(reverse) is not bool:  # (bools skip the calls: a batch-1 step is short)
        training, reverse = check.boolean(training, "training"), check.boolean(reverse, "reverse")
    out, h_n = _core.rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity, batch_sizes,
                                 reverse)
    if not training:
        return out, h_n, None
    return _freeze(out), h_n, RNNSaved(x, h0, out, nonlinearity, batch_sizes, reverse)


def rnn_backward(saved, weight_ih, weight_hh, dout, dh_n=None, *,
                 dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout like out, dh_n (B, H) or None -> dx like x, dh0 (B, H); accumulates dweight_*."""
    _check_saved(saved, RNNSaved)
    x, h0, out, nonlinearity, batch_sizes, reverse = saved
    return _core.rnn_backward(x, h0, weight_ih, weight_hh, batch_sizes, out,
                              check.text(nonlinearity, "saved.nonlinearity", ("tanh", "relu")), dout, dh_n,
                              dweight_ih, dweight_hh, dbias_ih, dbias_hh, check.boolean(reverse, "saved.reverse"))


# ----------------------------------------------------------------------------------------------------------------------
# Blocks and losses of a training step. Rows are the vectors along the last axis, of arrays of any leading shape.


def linear_forward(x, weight, bias=None):
    """x (..., I), weight (O, I), bias (O,) or None -> y (..., O) = x W^T + b."""
    return _core.linear_forward(x, weight, bias)


def linear_backward(x, weight, dy, *, dweight, dbias=None, need_dx=True):
    """dy (..., O) -> dx (..., I) = dy W (None unless need_dx); accumulates dweight += dy^T x, dbias += sum of dy."""
    return _core.linear_backward(x, weight, dy, dweight, dbias, check.boolean(need_dx, "need_dx"))


def embedding_forward(ids, weight):
    """ids (...) int64 in [0, V), weight (V, D) -> out (..., D) = weight[ids]."""
    return _core.embedding_forward(ids, weight)


def embedding_backward(ids, dout, *, dweight, padding_idx=None):
    """dout (..., D) -> accumulates dweight[ids[r]] += dout[r] for every id but padding_idx (duplicates summed in
    order); only the rows looked up are touched. padding_idx is None or a row of dweight, in [0, V) (Embedding
    turns torch's negative index into one)."""
    if padding_idx is not None:
        if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)):
            raise TypeError(f"padding_idx: expected None or an int, got {type(padding_idx).__name__}")
        rows = dweight.shape[0] if getattr(dweight, "ndim", 0) == 2 else None
        if padding_idx < 0 or (rows is not None and padding_idx >= rows):
            raise ValueError(f"padding_idx: expected None or a row of dweight, an int in [0, "
                             f"{'V' if rows is None else rows}), got {padding_idx!r}")
    _core.embedding_backward(ids, dout, dweight, -1 if padding_idx is None else int(padding_idx))


def cross_entropy(logits, targets, *, ignore_index=-100, label_smoothing=0.0, reduction="mean", need_grad=True):
    """logits (..., C), targets (...) int64 -> (loss, grad); see pylstm.reference.cross_entropy for the definition.
    Log-softmax, loss and gradient in one pass over each row."""
    return _core.cross_entropy(logits, targets, check.int64(ignore_index, "ignore_index"),
                               check.probability(label_smoothing, "label_smoothing"),
                               check.text(reduction, "reduction", ("mean", "sum", "none")),
                               check.boolean(need_grad, "need_grad"))

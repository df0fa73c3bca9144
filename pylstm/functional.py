"""The functional core: one forward/backward pair per cell over a whole sequence, computed by the C++ kernels.

Every function here has the same signature and contract as its twin in ``pylstm.reference`` (read that module for
the equations and shapes): forward returns the outputs and, in training mode, a saved record (``pylstm.saved``),
with ``out`` read-only because the record refers to it; backward returns the input and initial-state gradients and
accumulates the parameter gradients into the arrays passed as ``dweight_ih``, ``dweight_hh``, ``dbias_ih``,
``dbias_hh``.

Arrays go to the kernel as they are: all must be C-contiguous NumPy arrays of one dtype (float32 or float64, that of
``weight_hh``); anything else raises a ValueError or TypeError naming the argument. Nothing is converted or copied.
"""
from . import _core
from .saved import GRUSaved, LSTMSaved, RNNSaved


def _freeze(out):
    out.flags.writeable = False
    return out


def _check_saved(saved, kind):
    if not isinstance(saved, kind):
        raise TypeError(f"saved: expected the {kind.__name__} record of a training-mode forward, "
                        f"got {type(saved).__name__}")


def lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, training=True):
    """x (T, B, I), h0 and c0 (B, H) -> out (T, B, H), h_n (B, H), c_n (B, H), saved (LSTMSaved or None)."""
    out, h_n, c_n, gates, cells = _core.lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh,
                                                     bool(training))
    if not training:
        return out, h_n, c_n, None
    return _freeze(out), h_n, c_n, LSTMSaved(x, h0, c0, out, gates, cells)


def lstm_backward(saved, weight_ih, weight_hh, dout, dh_n=None, dc_n=None, *,
                  dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout (T, B, H), dh_n and dc_n (B, H) or None -> dx (T, B, I), dh0 (B, H), dc0 (B, H); accumulates dweight_*."""
    _check_saved(saved, LSTMSaved)
    x, h0, c0, out, gates, cells = saved
    return _core.lstm_backward(x, h0, c0, weight_ih, weight_hh, out, gates, cells, dout, dh_n, dc_n,
                               dweight_ih, dweight_hh, dbias_ih, dbias_hh)


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, reset_after=True, training=True):
    """x (T, B, I), h0 (B, H) -> out (T, B, H), h_n (B, H), saved (GRUSaved or None)."""
    out, h_n, gates = _core.gru_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, bool(reset_after),
                                        bool(training))
    if not training:
        return out, h_n, None
    return _freeze(out), h_n, GRUSaved(x, h0, out, gates, bool(reset_after))


def gru_backward(saved, weight_ih, weight_hh, dout, dh_n=None, *,
                 dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout (T, B, H), dh_n (B, H) or None -> dx (T, B, I), dh0 (B, H); accumulates dweight_*."""
    _check_saved(saved, GRUSaved)
    x, h0, out, gates, reset_after = saved
    return _core.gru_backward(x, h0, weight_ih, weight_hh, out, gates, reset_after, dout, dh_n,
                              dweight_ih, dweight_hh, dbias_ih, dbias_hh)


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, nonlinearity="tanh", training=True):
    """x (T, B, I), h0 (B, H) -> out (T, B, H), h_n (B, H), saved (RNNSaved or None)."""
    out, h_n = _core.rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)
    if not training:
        return out, h_n, None
    return _freeze(out), h_n, RNNSaved(x, h0, out, nonlinearity)


def rnn_backward(saved, weight_ih, weight_hh, dout, dh_n=None, *,
                 dweight_ih, dweight_hh, dbias_ih=None, dbias_hh=None):
    """dout (T, B, H), dh_n (B, H) or None -> dx (T, B, I), dh0 (B, H); accumulates dweight_*."""
    _check_saved(saved, RNNSaved)
    x, h0, out, nonlinearity = saved
    return _core.rnn_backward(x, h0, weight_ih, weight_hh, out, nonlinearity, dout, dh_n,
                              dweight_ih, dweight_hh, dbias_ih, dbias_hh)

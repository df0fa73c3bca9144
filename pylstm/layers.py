"""Layer classes: configuration, parameters, gradients, training/eval mode and input checks.

One layer, one direction. The math is in ``pylstm.functional`` (the C++ kernels); a layer holds the arrays the
kernels read and write, and speaks PyTorch's language: the same parameter names, shapes, gate order and state shapes
as ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with ``num_layers=1``.
"""
import numpy as np

from . import functional as F

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def _layer_dtype(dtype):
    # None is refused rather than passed to np.dtype, which would read it as float64 (not this class's default).
    # The membership test must not see a None either: np.dtype("float64") == None is True.
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt not in _DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return _DTYPES[_DTYPES.index(dt)]


class _RecurrentLayer:
    """What LSTM, GRU and RNN share. Subclasses set ``_gates`` and the three cell hooks at the bottom."""

    _gates = 1  # gate blocks stacked in the weights: LSTM 4, GRU 3, RNN 1

    def __init__(self, input_size, hidden_size, *, bias=True, dtype="float32", seed=None):
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected a bool, got {type(bias).__name__}")
        self.bias = bool(bias)
        self.dtype = _layer_dtype(dtype)
        self.training = True
        self._saved = None
        gh = self._gates * self.hidden_size
        shapes = {"weight_ih_l0": (gh, self.input_size), "weight_hh_l0": (gh, self.hidden_size)}
        if self.bias:
            shapes.update(bias_ih_l0=(gh,), bias_hh_l0=(gh,))
        # PyTorch's default: every parameter uniform in [-1/sqrt(H), 1/sqrt(H)], drawn in this order.
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        #: name -> the live arrays the layer computes with (an optimizer may update them in place).
        self.params = {name: rng.uniform(-bound, bound, size=shape).astype(self.dtype)
                       for name, shape in shapes.items()}
        #: name -> gradient arrays of the same shapes; ``backward`` adds into them, ``zero_grad`` clears them.
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    # -- modes and parameters -------------------------------------------------------------------------------------

    def train(self, mode=True):
        """Training mode (the default): a forward keeps what ``backward`` needs."""
        self.training = bool(mode)
        if not self.training:
            self._saved = None
        return self

    def eval(self):
        """Inference mode: a forward keeps nothing, and ``backward`` raises."""
        return self.train(False)

    def zero_grad(self):
        """Set every gradient to zero, in place (the arrays stay the same objects)."""
        for g in self.grads.values():
            g.fill(0)

    def state_dict(self):
        """name -> a copy of each parameter (PyTorch names)."""
        return {name: p.copy() for name, p in self.params.items()}

    def load_state_dict(self, state_dict):
        """Copy parameters in, in place, from a mapping with exactly this layer's names and shapes.

        Values are cast to the layer's dtype. Everything is checked before anything is copied, so a bad mapping
        leaves the layer as it was.
        """
        missing = [k for k in self.params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in self.params]
        if missing or unexpected:
            raise KeyError(f"state_dict: missing keys {missing}, unexpected keys {unexpected}; "
                           f"expected exactly {list(self.params)}")
        values = {}
        for name, p in self.params.items():
            v = np.asarray(state_dict[name])
            if v.shape != p.shape:
                raise ValueError(f"state_dict[{name!r}]: expected shape {p.shape}, got {v.shape}")
            if v.dtype.kind not in "fiu":
                raise TypeError(f"state_dict[{name!r}]: expected real numbers, got dtype {v.dtype}")
            values[name] = v
        for name, v in values.items():
            np.copyto(self.params[name], v, casting="unsafe")

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self._extra_config().items())
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, bias={self.bias}, "
                f"dtype='{self.dtype.name}'{extra})")

    # -- forward and backward -------------------------------------------------------------------------------------

    def __call__(self, x, state=None):
        """x (T, B, input_size) -> out (T, B, hidden_size), final state (shapes as PyTorch's, num_layers = 1).

        ``x`` must have the layer's dtype (an array-like that is not an ndarray is converted to it); a
        non-contiguous x is copied to C order. In training mode ``out`` is read-only, because ``backward`` reads it,
        and x must not be modified in place before ``backward``.
        """
        x = self._array(x, "x")
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x: expected shape (T, B, {self.input_size}) (steps, batch, input_size), "
                             f"got {x.shape}")
        batch = x.shape[1]
        out, state_n, saved = self._forward(x, self._initial_state(state, batch), self.training)
        self._saved = saved
        return out, state_n

    def backward(self, dout, dstate=None):
        """Gradients from the last training-mode forward: dout (T, B, hidden_size) and optionally the gradient of
        the final state -> (dx, dstate0). Adds the parameter gradients into ``grads``."""
        if self._saved is None:
            mode = "" if self.training else " (the layer is in eval mode: call layer.train())"
            raise RuntimeError(f"backward: needs a forward call in training mode first{mode}")
        x = self._saved.x
        dout = self._array(dout, "dout")
        expected = (x.shape[0], x.shape[1], self.hidden_size)
        if dout.shape != expected:
            raise ValueError(f"dout: expected shape {expected} (the shape of the last forward's out), "
                             f"got {dout.shape}")
        return self._backward(self._saved, dout, self._final_state_grad(dstate, x.shape[1]))

    # -- helpers shared by the cells --------------------------------------------------------------------------------

    def _array(self, value, name):
        if isinstance(value, np.ndarray):
            if value.dtype != self.dtype:
                raise TypeError(f"{name}: expected dtype {self.dtype.name} (the layer's dtype), got {value.dtype}")
            return np.asarray(value, order="C")  # not ascontiguousarray: it would report a 0-d x as shape (1,)
        try:
            return np.asarray(value, dtype=self.dtype, order="C")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: expected an array of {self.dtype.name}, got {type(value).__name__}") from exc

    def _state_array(self, value, name, batch):
        """A (1, B, H) state array -> its (B, H) view."""
        value = self._array(value, name)
        expected = (1, batch, self.hidden_size)
        if value.shape != expected:
            raise ValueError(f"{name}: expected shape {expected} (num_layers, batch, hidden_size), got {value.shape}")
        return value[0]

    def _zeros(self, batch):
        return np.zeros((batch, self.hidden_size), dtype=self.dtype)

    def _weights(self):
        p = self.params
        return p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"), p.get("bias_hh_l0")

    def _grad_kwargs(self):
        g = self.grads
        return dict(dweight_ih=g["weight_ih_l0"], dweight_hh=g["weight_hh_l0"],
                    dbias_ih=g.get("bias_ih_l0"), dbias_hh=g.get("bias_hh_l0"))

    def _extra_config(self):
        return {}

    # Single-state cells (GRU, RNN): state is h (1, B, H). LSTM overrides these three for (h, c).
    def _initial_state(self, state, batch):
        return self._zeros(batch) if state is None else self._state_array(state, "state", batch)

    def _final_state_grad(self, dstate, batch):
        return None if dstate is None else self._state_array(dstate, "dstate", batch)


class LSTM(_RecurrentLayer):
    """Long short-term memory layer (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    Gates i, f, g, o in PyTorch's order; ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``. The state is a
    pair ``(h, c)``, each (1, B, hidden_size).
    """

    _gates = 4

    def _initial_state(self, state, batch):
        if state is None:
            return self._zeros(batch), self._zeros(batch)
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"state: expected a pair (h, c) of arrays (1, B, H), got {type(state).__name__}")
        return self._state_array(state[0], "state[0] (h)", batch), self._state_array(state[1], "state[1] (c)", batch)

    def _final_state_grad(self, dstate, batch):
        if dstate is None:
            return None, None
        if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
            raise TypeError(f"dstate: expected a pair (dh, dc) of arrays (1, B, H) or None, "
                            f"got {type(dstate).__name__}")
        return tuple(None if d is None else self._state_array(d, f"dstate[{k}]", batch)
                     for k, d in enumerate(dstate))

    def _forward(self, x, state, training):
        out, h_n, c_n, saved = F.lstm_forward(x, *state, *self._weights(), training=training)
        return out, (h_n[None], c_n[None]), saved

    def _backward(self, saved, dout, dstate):
        w_ih, w_hh, _, _ = self._weights()
        dx, dh0, dc0 = F.lstm_backward(saved, w_ih, w_hh, dout, *dstate, **self._grad_kwargs())
        return dx, (dh0[None], dc0[None])


class GRU(_RecurrentLayer):
    """Gated recurrent unit (Cho et al. 2014). Gates r, z, n in PyTorch's order; ``h_t = (1 - z) * n + z * h``.

    ``reset_after=True`` (PyTorch, cuDNN): ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
    ``reset_after=False`` (the paper, ONNX's default): ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``.
    The state is h (1, B, hidden_size).
    """

    _gates = 3

    def __init__(self, input_size, hidden_size, *, bias=True, dtype="float32", seed=None, reset_after=True):
        if not isinstance(reset_after, (bool, np.bool_)):
            raise TypeError(f"reset_after: expected a bool, got {type(reset_after).__name__}")
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, seed=seed)

    def _extra_config(self):
        return {"reset_after": self.reset_after}

    def _forward(self, x, h0, training):
        out, h_n, saved = F.gru_forward(x, h0, *self._weights(), reset_after=self.reset_after, training=training)
        return out, h_n[None], saved

    def _backward(self, saved, dout, dh_n):
        w_ih, w_hh, _, _ = self._weights()
        dx, dh0 = F.gru_backward(saved, w_ih, w_hh, dout, dh_n, **self._grad_kwargs())
        return dx, dh0[None]


class RNN(_RecurrentLayer):
    """Elman recurrent layer: ``h_t = act(W_ih x + b_ih + W_hh h + b_hh)`` with act ``tanh`` or ``relu``.

    The state is h (1, B, hidden_size).
    """

    _gates = 1

    def __init__(self, input_size, hidden_size, *, bias=True, dtype="float32", seed=None, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, seed=seed)

    def _extra_config(self):
        return {"nonlinearity": self.nonlinearity}

    def _forward(self, x, h0, training):
        out, h_n, saved = F.rnn_forward(x, h0, *self._weights(), nonlinearity=self.nonlinearity, training=training)
        return out, h_n[None], saved

    def _backward(self, saved, dout, dh_n):
        w_ih, w_hh, _, _ = self._weights()
        dx, dh0 = F.rnn_backward(saved, w_ih, w_hh, dout, dh_n, **self._grad_kwargs())
        return dx, dh0[None]

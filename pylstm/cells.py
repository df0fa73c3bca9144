"""The recurrent cells' facts, one place for each: per cell family (LSTM, GRU, RNN) and variant (GRU's reset_after,
RNN's nonlinearity) its gates in order, the parts of its state, its parameters, the record its training-mode forward
saves (pylstm.saved), and its forward and backward, computed by pylstm.functional (the C++ kernels) or, through
``on(pylstm.reference)``, by the NumPy reference (the two modules have the same signatures).

The sequence layers (pylstm.layers), the step cells (pylstm.step_cells), checkpoints, the experiments, the tests and
the benchmarks read these facts here instead of keeping copies. A "cell" here is the recurrence itself; the classes
``LSTMCell``, ``GRUCell`` and ``RNNCell`` are step cells: modules running one step of it per call.
"""
from __future__ import annotations

from typing import Any

from . import functional
from .saved import GRUSaved, LSTMSaved, RNNSaved

#: The parameters every cell has, as PyTorch names them: weight_ih (G*H, I), weight_hh (G*H, H_out),
#: bias_ih and bias_hh (G*H,) with G the cell's number of gates.
PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

NONLINEARITIES = ("tanh", "relu")


class Cell:
    """One cell variant, computed by ``impl`` (pylstm.functional unless made by ``on``).

    ``forward(x, state, weights, extras, batch_sizes, training, reverse=False) -> (out, final state, saved)`` and
    ``backward(saved, weights, extras, dout, dstate, grads, extra_grads) -> (dx, initial state's gradient)`` are the
    interface the layers call: a state is a tuple with one array (or None: zeros) per part of ``state_names``,
    ``weights`` is (weight_ih, weight_hh, bias_ih, bias_hh), ``extras`` the LSTM's (weight_hr, (p_i, p_f, p_o)) or
    (None, None), ``grads`` the keyword arguments dweight_ih, dweight_hh, dbias_ih, dbias_hh and ``extra_grads`` like
    ``extras``.
    """

    #: Set by each family: its name (the layer's class name), gates in order, state parts and saved record type.
    family: str
    gate_names: tuple[str, ...]
    state_names: tuple[str, ...]
    saved_type: type

    def __init__(self, name, options=(), impl=functional):
        self.name = name  # the variant, e.g. "gru-reset_before"
        self.options = dict(options)  # the forward's keyword arguments that make the variant
        self.impl = impl
        stem = self.family.lower()
        self._forward = getattr(impl, f"{stem}_forward")
        self._backward = getattr(impl, f"{stem}_backward")

    def __repr__(self):
        return f"<cell {self.name} ({self.impl.__name__})>"

    def __eq__(self, other):
        return type(other) is type(self) and (other.options, other.impl) == (self.options, self.impl)

    def __hash__(self):
        return hash((type(self), tuple(self.options.items()), self.impl))

    def on(self, impl):
        """The same variant computed by another implementation module (pylstm.reference or pylstm.functional)."""
        return type(self)(self.name, self.options, impl)

    @property
    def gates(self):
        """G: the gate blocks stacked in weight_ih, weight_hh and the biases."""
        return len(self.gate_names)

    def gate_rows(self, gate, hidden_size):
        """The rows of a gate's block in the stacked weights and biases (a slice), e.g. ("f", H) -> H:2H."""
        k = self.gate_names.index(gate)
        return slice(k * hidden_size, (k + 1) * hidden_size)

    def state_widths(self, hidden_size, output_size):
        """The width of each state part: h's is the output size (proj_size with an LSTM projection), c's hidden_size."""
        return (output_size, hidden_size)[:len(self.state_names)]

    def parameter_shapes(self, input_size, hidden_size, bias, suffix="", proj_size=0, peepholes=False):
        """Parameter name -> shape, in PyTorch's order, for one layer and direction (names end with ``suffix``)."""
        gh, width = self.gates * hidden_size, proj_size or hidden_size
        shapes: dict[str, tuple[int, ...]] = {f"weight_ih{suffix}": (gh, input_size), f"weight_hh{suffix}": (gh, width)}
        if bias:
            shapes[f"bias_ih{suffix}"] = (gh,)
            shapes[f"bias_hh{suffix}"] = (gh,)
        shapes.update(self._extra_shapes(hidden_size, suffix, proj_size, peepholes))
        return shapes

    def _extra_shapes(self, hidden_size: int, suffix: str, proj_size: int, peepholes: bool) -> dict[str, Any]:
        if proj_size or peepholes:
            raise ValueError(f"{self.family}: proj_size and peepholes are LSTM parameters")
        return {}


class LSTMFamily(Cell):
    """The LSTM: gates i, f, g, o; state (h, c); optional extra parameters weight_hr (LSTMP projection,
    (proj_size, hidden_size)) and peepholes p_i, p_f, p_o (hidden_size,)."""
    family, gate_names, state_names, saved_type = "LSTM", ("i", "f", "g", "o"), ("h", "c"), LSTMSaved
    peephole_gates = ("i", "f", "o")

    def forward(self, x, state, w, extras, batch_sizes, training, reverse=False):
        out, h_n, c_n, saved = self._forward(x, *state, *w, weight_hr=extras[0], peepholes=extras[1],
                                             batch_sizes=batch_sizes, training=training, reverse=reverse)
        return out, (h_n, c_n), saved

    def backward(self, saved, w, extras, dout, dstate, grads, extra_grads):
        dx, dh0, dc0 = self._backward(saved, w[0], w[1], dout, *dstate, weight_hr=extras[0], peepholes=extras[1],
                                      **grads, dweight_hr=extra_grads[0], dpeepholes=extra_grads[1])
        return dx, (dh0, dc0)

    def _extra_shapes(self, hidden_size, suffix, proj_size, peepholes):
        shapes: dict[str, tuple[int, ...]] = {f"weight_hr{suffix}": (proj_size, hidden_size)} if proj_size else {}
        if peepholes:
            shapes.update({f"peephole_{g}{suffix}": (hidden_size,) for g in self.peephole_gates})
        return shapes


class _HiddenStateCell(Cell):
    """GRU and RNN: the state is h alone and the variant's ``options`` go to the forward."""
    state_names = ("h",)

    def forward(self, x, state, w, extras, batch_sizes, training, reverse=False):
        out, h_n, saved = self._forward(x, *state, *w, batch_sizes=batch_sizes, training=training, reverse=reverse,
                                        **self.options)
        return out, (h_n,), saved

    def backward(self, saved, w, extras, dout, dstate, grads, extra_grads):
        dx, dh0 = self._backward(saved, w[0], w[1], dout, *dstate, **grads)
        return dx, (dh0,)


class GRUFamily(_HiddenStateCell):
    """The GRU: gates r, z, n; ``reset_after`` chooses where the reset gate applies (see pylstm.GRU)."""
    family, gate_names, saved_type = "GRU", ("r", "z", "n"), GRUSaved


class RNNFamily(_HiddenStateCell):
    """The Elman RNN: one block (the pre-activation), ``nonlinearity`` tanh or relu."""
    family, gate_names, saved_type = "RNN", ("h",), RNNSaved


LSTM = LSTMFamily("lstm")
GRU_RESET_AFTER = GRUFamily("gru-reset_after", {"reset_after": True})
GRU_RESET_BEFORE = GRUFamily("gru-reset_before", {"reset_after": False})
RNN_TANH = RNNFamily("rnn-tanh", {"nonlinearity": "tanh"})
RNN_RELU = RNNFamily("rnn-relu", {"nonlinearity": "relu"})

#: Every variant, computed by pylstm.functional.
VARIANTS = (LSTM, GRU_RESET_AFTER, GRU_RESET_BEFORE, RNN_TANH, RNN_RELU)
#: Family name (the layer's class name; a step cell's without "Cell") -> its default variant.
FAMILIES = {"LSTM": LSTM, "GRU": GRU_RESET_AFTER, "RNN": RNN_TANH}


def gru(reset_after):
    return GRU_RESET_AFTER if reset_after else GRU_RESET_BEFORE


def rnn(nonlinearity):
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    return RNN_TANH if nonlinearity == "tanh" else RNN_RELU

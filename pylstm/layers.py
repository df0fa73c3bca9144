"""Layer and cell classes: configuration, parameters, gradients, training/eval mode, input checks, stacking and
directions.

The math is in ``pylstm.functional`` (the C++ kernels, one call per layer and direction over the whole sequence);
``pylstm.sequence`` turns a padded batch with lengths into the kernels' row layout. The classes speak PyTorch's
language: the same constructor arguments, parameter names, shapes, gate order and state shapes as ``torch.nn.LSTM`` /
``GRU`` / ``RNN`` and ``torch.nn.LSTMCell`` / ``GRUCell`` / ``RNNCell``, so a torch ``state_dict`` loads as it is.
"""
import numpy as np

from . import _checks as check
from . import functional as F
from .module import Module, dropout_mask
from .saved import saved_bytes_per_step
from .sequence import Layout, check_lengths


def _init_uniform(module, shapes, hidden_size, seed):
    """PyTorch's default initialisation of recurrent weights: every parameter uniform in [-1/sqrt(H), 1/sqrt(H)],
    drawn in order; ``peephole_*`` parameters (which torch lacks) start at zero."""
    module._allocate(shapes)
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden_size)
    for name, p in module.params.items():
        if not name.startswith("peephole_"):
            p[...] = rng.uniform(-bound, bound, size=p.shape)


class _RecurrentModule(Module):
    """What layers and cells share beyond Module: the state arguments (h, or (h, c) for the LSTM)."""

    _repr_head = ("input_size", "hidden_size")

    def _exact_parts(self, state, shapes):
        """The streaming fast path (a state this module returned): the parts as they are when state is exactly such
        arrays (plain C-contiguous ndarrays of these shapes and the module's dtype), else None. An explicit loop: a
        generator under all() cost about a microsecond of a step."""
        n = len(shapes)
        parts = state if type(state) is tuple else (state,) if n == 1 and type(state) is np.ndarray else None
        if parts is None or len(parts) != n:
            return None
        for part, shape in zip(parts, shapes):
            if not (type(part) is np.ndarray and part.shape == shape and part.dtype == self.dtype
                    and part.flags.c_contiguous):
                return None
        return parts

    def _state_parts(self, state, name, shapes, meanings):
        """A state or state gradient as the caller gives it (h, or a pair (h, c) for the LSTM; None or a None part
        means zeros) -> a tuple of checked arrays or Nones, one per part, of the given shapes."""
        names = self._kernel.state_names
        if len(names) == 1:
            parts = (state,)
        elif state is None:
            parts = (None, None)
        elif isinstance(state, (tuple, list)) and len(state) == 2:
            parts = tuple(state)
        else:
            raise TypeError(f"{name}: expected a pair (h, c) of arrays {shapes[0]} and {shapes[1]} or None, "
                            f"got {type(state).__name__}")
        prefix = "d" if name.startswith("d") else ""
        return tuple(None if part is None else
                     self._checked(part, name if len(names) == 1 else f"{name}[{k}] ({prefix}{names[k]})",
                                   shape, meaning)
                     for k, (part, shape, meaning) in enumerate(zip(parts, shapes, meanings)))


# ----------------------------------------------------------------------------------------------------------------------
# The three cells' kernels behind one interface. A state is a tuple: (h, c) for the LSTM, (h,) for GRU and RNN.


class _LSTMKernel:
    name, gates, state_names = "LSTM", 4, ("h", "c")

    @staticmethod
    def forward(x, state, w, extras, batch_sizes, training):
        out, h_n, c_n, saved = F.lstm_forward(x, *state, *w, weight_hr=extras[0], peepholes=extras[1],
                                              batch_sizes=batch_sizes, training=training)
        return out, (h_n, c_n), saved

    @staticmethod
    def backward(saved, w, extras, dout, dstate, grads, extra_grads):
        dx, dh0, dc0 = F.lstm_backward(saved, w[0], w[1], dout, *dstate, weight_hr=extras[0], peepholes=extras[1],
                                       **grads, dweight_hr=extra_grads[0], dpeepholes=extra_grads[1])
        return dx, (dh0, dc0)


class _HiddenStateKernel:
    """GRU and RNN: the state is h alone; ``options`` (reset_after, nonlinearity) go to the forward."""
    state_names = ("h",)

    def __init__(self, name, gates, forward, backward, **options):
        self.name, self.gates = name, gates
        self._forward, self._backward, self._options = forward, backward, options

    def forward(self, x, state, w, extras, batch_sizes, training):
        out, h_n, saved = self._forward(x, *state, *w, batch_sizes=batch_sizes, training=training, **self._options)
        return out, (h_n,), saved

    def backward(self, saved, w, extras, dout, dstate, grads, extra_grads):
        dx, dh0 = self._backward(saved, w[0], w[1], dout, *dstate, **grads)
        return dx, (dh0,)


def _gru_kernel(reset_after):
    return _HiddenStateKernel("GRU", 3, F.gru_forward, F.gru_backward, reset_after=reset_after)


def _rnn_kernel(nonlinearity):
    return _HiddenStateKernel("RNN", 1, F.rnn_forward, F.rnn_backward, nonlinearity=nonlinearity)


def _rnn_nonlinearity(value):
    if value not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------------------------------
# Layers: stacks of one or two directions over whole sequences.


class _Recurrent(_RecurrentModule):
    """What LSTM, GRU and RNN share. A subclass passes its kernel and its extra parameters' shapes."""

    def __init__(self, kernel, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype,
                 seed, proj_size=0, peepholes=False, extra_config=()):
        self._kernel = kernel
        self.input_size = check.positive_int(input_size, "input_size")
        self.hidden_size = check.positive_int(hidden_size, "hidden_size")
        self.num_layers = check.positive_int(num_layers, "num_layers")
        self.bias = check.boolean(bias, "bias")
        self.batch_first = check.boolean(batch_first, "batch_first")
        self.bidirectional = check.boolean(bidirectional, "bidirectional")
        self.dropout = check.probability(dropout, "dropout")
        self.dtype = check.float_dtype(dtype)
        self.seed = check.seed(seed)
        self.proj_size = proj_size
        self.peepholes = peepholes
        self.training = True
        self._saved = None
        self._names = {}
        self._zero_state_cache = None
        self._single = self.num_layers == 1 and not self.bidirectional
        self._config = dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                            bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                            bidirectional=self.bidirectional, **dict(extra_config), dtype=self.dtype.name,
                            seed=self.seed)
        seeds = np.random.SeedSequence(self.seed)
        # Dropout masks come from their own stream, so dropout never changes the initial parameters.
        self._dropout_rng = np.random.default_rng(seeds.spawn(1)[0])
        _init_uniform(self, self._shapes(), self.hidden_size, seeds)

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def output_size(self):
        """H_out: the width of h (proj_size with a projection, else hidden_size)."""
        return self.proj_size or self.hidden_size

    def _suffix(self, layer, direction):
        return f"_l{layer}" + ("_reverse" if direction else "")

    def _shapes(self):
        H, P, D = self.hidden_size, self.output_size, self.num_directions
        gh = self._kernel.gates * H
        shapes = {}
        for k in range(self.num_layers):
            width = self.input_size if k == 0 else D * P
            for d in range(D):
                s = self._suffix(k, d)
                shapes[f"weight_ih{s}"] = (gh, width)
                shapes[f"weight_hh{s}"] = (gh, P)
                if self.bias:
                    shapes[f"bias_ih{s}"] = (gh,)
                    shapes[f"bias_hh{s}"] = (gh,)
                if self.proj_size:
                    shapes[f"weight_hr{s}"] = (P, H)
                if self.peepholes:
                    for gate in "ifo":
                        shapes[f"peephole_{gate}{s}"] = (H,)
        return shapes

    def _weights(self, table, k, d):
        """(weight_ih, weight_hh, bias_ih, bias_hh) and the LSTM extras (weight_hr, peepholes) of layer k, direction d,
        from ``params`` or ``grads`` (looked up on every call: the tables may be updated between calls)."""
        names = self._names.get((k, d))
        if names is None:  # the names, formatted once per layer and direction
            s = self._suffix(k, d)
            names = self._names[(k, d)] = (
                (f"weight_ih{s}", f"weight_hh{s}", f"bias_ih{s}", f"bias_hh{s}"), f"weight_hr{s}",
                tuple(f"peephole_{g}{s}" for g in "ifo") if self.peepholes else None)
        (ih, hh, b_ih, b_hh), hr_name, peep_names = names
        get = table.get
        peep = None if peep_names is None else (table[peep_names[0]], table[peep_names[1]], table[peep_names[2]])
        return (get(ih), get(hh), get(b_ih), get(b_hh)), (get(hr_name), peep)

    def _gradients(self, k, d):
        """Layer k, direction d's arrays in ``grads`` as the kernels' backward takes them: (the weight and bias
        gradients by keyword, the extras' gradients)."""
        gw, gextras = self._weights(self.grads, k, d)
        return dict(dweight_ih=gw[0], dweight_hh=gw[1], dbias_ih=gw[2], dbias_hh=gw[3]), gextras

    def _state_widths(self):
        return (self.output_size, self.hidden_size)[:len(self._kernel.state_names)]

    def _forget_saved(self):
        self._saved = None

    # -- state arguments: (D*L, B, W) arrays, a pair for the LSTM -----------------------------------------------------

    def _state_tuple(self, state, batch, name):
        """state or dstate as the caller gives it -> a tuple of (D*L, B, W) arrays or Nones (None: zeros)."""
        rows, widths = self.num_directions * self.num_layers, self._state_widths()
        shapes = tuple((rows, batch, w) for w in widths)
        parts = None if state is None else self._exact_parts(state, shapes)
        if parts is not None:
            return parts
        return self._state_parts(state, name, shapes, tuple(
            "num_directions * num_layers, batch, " + ("hidden_size" if w == self.hidden_size else "proj_size")
            for w in widths))

    def _state_result(self, parts):
        return parts[0] if len(parts) == 1 else tuple(parts)

    # -- forward and backward -------------------------------------------------------------------------------------

    def __call__(self, x, state=None, lengths=None):
        """x (T, B, input_size), or (B, T, input_size) with batch_first -> (out, final state).

        out is (T, B, D*H_out) (or (B, T, D*H_out)), the reverse direction's outputs in its second half. The state is
        h (D*num_layers, B, H_out) and, for the LSTM, c (D*num_layers, B, hidden_size), as PyTorch's; None means zeros.
        ``lengths`` (B ints in [0, T], any order) runs each sequence for its own number of steps: outputs past it are
        zero, its final state is the one after its own last step, and the reverse direction starts there.

        ``x`` must have the layer's dtype (an array-like that is not an ndarray is converted to it). In training mode
        ``out`` is read-only and x must not be modified in place before ``backward``, which reads them.
        """
        x = self._array(x, "x")
        if x.ndim != 3 or x.shape[2] != self.input_size:
            order = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ValueError(f"x: expected shape {order} with input_size = {self.input_size}, got {x.shape}")
        if lengths is None and not self.bidirectional and not self.batch_first:
            return self._forward_single(x, state) if self._single else self._forward_stack(x, state)
        steps, batch = (x.shape[1], x.shape[0]) if self.batch_first else x.shape[:2]
        layout = Layout(steps, batch, check_lengths(lengths, batch, steps))
        initial = self._state_tuple(state, batch, "state")
        training = self.training
        D, L = self.num_directions, self.num_layers
        widths = self._state_widths()
        zeros = self._zero_states(batch)  # for a missing state: serves every layer and direction
        finals = tuple(np.empty((D * L, batch, w), self.dtype) for w in widths)
        saved, masks = [], []
        rows = layout.gather(x, self.batch_first)
        for k in range(L):
            outs, layer_saved = [], []
            for d in range(D):
                index = k * D + d
                start = tuple(z if s is None else layout.sort_state(s[index]) for s, z in zip(initial, zeros))
                w, extras = self._weights(self.params, k, d)
                out, final, rec = self._kernel.forward(rows if d == 0 else layout.reverse(rows), start, w, extras,
                                                       layout.batch_sizes, training)
                outs.append(out if d == 0 else layout.reverse(out))
                layer_saved.append(rec)
                for part, value in zip(finals, final):
                    layout.unsort_state(value, out=part[index])
            rows = outs[0] if D == 1 else np.concatenate(outs, axis=-1)
            if training and self.dropout and k < L - 1:
                mask = self._dropout_mask(rows.shape)
                rows = rows * mask
                masks.append(mask)
            saved.append(layer_saved)
        out = layout.scatter(rows, self.batch_first)
        if training:
            self._saved = (layout, saved, masks, out.shape)
            out.flags.writeable = False
        else:
            self._saved = None
        return out, self._state_result(finals)

    def _forward_single(self, x, state):
        """__call__ for one layer, one direction and whole (T, B, .) sequences, the streaming hot path: the kernel's
        arrays are returned as they are, with no layout work. Kept short on purpose: the kernel has just streamed the
        weights through the caches, so every Python step here costs several times what it does in a warm loop."""
        batch = x.shape[1]
        if state is None:
            start = self._zero_states(batch)
        else:
            zeros = self._zero_states(batch)
            start = tuple(z if s is None else s[0] for s, z in zip(self._state_tuple(state, batch, "state"), zeros))
        w, extras = self._weights(self.params, 0, 0)
        out, final, rec = self._kernel.forward(x, start, w, extras, None, self.training)
        self._saved = None
        if self.training:
            self._saved = (None, [[rec]], [], out.shape)  # no layout: backward takes _backward_single
            out.flags.writeable = False
        return out, self._state_result([value[None] for value in final])

    def _backward_single(self, rec, out_shape, dout, dstate):
        """backward after _forward_single (one layer, one direction, whole sequences): the kernel's arrays as they are,
        with no layout work; kept short for the same reason (training 1.14-1.17x as fast as through the general
        path for LSTM 1,8,8,1, GRU 1,64,64,1 and RNN 4,32,32,3: bench/ab.py)."""
        dout = self._checked(dout, "dout", out_shape, "the shape of the last forward's out")
        dlast = tuple(None if s is None else s[0] for s in self._state_tuple(dstate, out_shape[1], "dstate"))
        w, extras = self._weights(self.params, 0, 0)
        dx, dstart = self._kernel.backward(rec, w, extras, dout, dlast, *self._gradients(0, 0))
        return dx, self._state_result(tuple(value[None] for value in dstart))

    def _forward_stack(self, x, state):
        """__call__ for stacked layers of one direction over whole (T, B, .) sequences (a streaming model's stack,
        one step at a time): each layer's kernel output is the next layer's input as it is, with no layout work."""
        batch, L = x.shape[1], self.num_layers
        initial = self._state_tuple(state, batch, "state")
        zeros = self._zero_states(batch)
        finals = tuple(np.empty((L, batch, w), self.dtype) for w in self._state_widths())
        saved, masks, rows = [], [], x
        for k in range(L):
            w, extras = self._weights(self.params, k, 0)
            start = tuple(z if s is None else s[k] for s, z in zip(initial, zeros))
            rows, final, rec = self._kernel.forward(rows, start, w, extras, None, self.training)
            saved.append([rec])
            for part, value in zip(finals, final):
                part[k] = value
            if self.training and self.dropout and k < L - 1:
                mask = self._dropout_mask(rows.shape)
                rows = rows * mask
                masks.append(mask)
        self._saved = None
        if self.training:
            self._saved = (None, saved, masks, rows.shape)  # no layout: backward takes _backward_stack
            rows.flags.writeable = False
        return rows, self._state_result(finals)

    def _backward_stack(self, saved, masks, out_shape, dout, dstate):
        """backward after _forward_stack: the layers from the last to the first, each one kernel call."""
        dout = self._checked(dout, "dout", out_shape, "the shape of the last forward's out")
        dfinal = self._state_tuple(dstate, out_shape[1], "dstate")
        dinitial = tuple(np.empty((self.num_layers, out_shape[1], w), self.dtype) for w in self._state_widths())
        drows = dout
        for k in reversed(range(self.num_layers)):
            if k < self.num_layers - 1 and masks:
                drows = drows * masks[k]
            w, extras = self._weights(self.params, k, 0)
            drows, dstart = self._kernel.backward(saved[k][0], w, extras, drows,
                                                  tuple(None if s is None else s[k] for s in dfinal),
                                                  *self._gradients(k, 0))
            for part, value in zip(dinitial, dstart):
                part[k] = value
        return drows, self._state_result(dinitial)

    def backward(self, dout, dstate=None):
        """Gradients from the last training-mode forward: dout (the shape of that forward's out) and optionally the
        gradient of the final state (like the state; for the LSTM a pair whose parts may be None) -> (dx, dstate0).

        Adds the gradient of every parameter of every layer and direction into ``grads``. With lengths, dout past a
        sequence's length is ignored (those outputs are constant zeros).
        """
        if self._saved is None:
            mode = "" if self.training else " (the layer is in eval mode: call layer.train())"
            raise RuntimeError(f"backward: needs a forward call in training mode first{mode}")
        layout, saved, masks, out_shape = self._saved
        if layout is None:
            if len(saved) == 1:
                return self._backward_single(saved[0][0], out_shape, dout, dstate)
            return self._backward_stack(saved, masks, out_shape, dout, dstate)
        dout = self._checked(dout, "dout", out_shape, "the shape of the last forward's out")
        batch = layout.batch
        dfinal = self._state_tuple(dstate, batch, "dstate")
        D, L, P = self.num_directions, self.num_layers, self.output_size
        dinitial = tuple(np.empty((D * L, batch, w), self.dtype) for w in self._state_widths())
        drows = layout.gather(dout, self.batch_first)
        for k in reversed(range(L)):
            if k < L - 1 and masks:
                drows = drows * masks[k]
            dx_layer = None
            for d in range(D):
                dout_d = drows if D == 1 else np.ascontiguousarray(drows[..., d * P:(d + 1) * P])
                dlast = tuple(None if s is None else layout.sort_state(s[k * D + d]) for s in dfinal)
                w, extras = self._weights(self.params, k, d)
                dx, dstart = self._kernel.backward(saved[k][d], w, extras,
                                                   dout_d if d == 0 else layout.reverse(dout_d), dlast,
                                                   *self._gradients(k, d))
                dx = dx if d == 0 else layout.reverse(dx)
                dx_layer = dx if dx_layer is None else dx_layer + dx
                for part, value in zip(dinitial, dstart):
                    layout.unsort_state(value, out=part[k * D + d])
            drows = dx_layer
        dx = layout.scatter(drows, self.batch_first)
        return dx, self._state_result(dinitial)

    def saved_bytes_per_step(self):
        """Bytes the last training-mode forward keeps per time step for backward, beyond x and out, summed over
        layers and directions (dropout masks not counted); 0 when nothing is kept."""
        if self._saved is None:
            return 0
        return sum(saved_bytes_per_step(rec) for layer in self._saved[1] for rec in layer)

    def _generators(self):
        return [self._dropout_rng]

    def _zero_states(self, batch):
        """The zero initial state (one read-only (batch, width) array per state part, for every layer and direction),
        kept for the next call of the same batch size: the kernels only read it, and two np.zeros a call were a tenth
        of a batch-1 single step."""
        zeros = self._zero_state_cache
        if zeros is None or zeros[0].shape[0] != batch:
            zeros = tuple(np.zeros((batch, w), dtype=self.dtype) for w in self._state_widths())
            for z in zeros:
                z.flags.writeable = False
            self._zero_state_cache = zeros
        return zeros

    def _dropout_mask(self, shape):
        return dropout_mask(self._dropout_rng, self.dropout, shape, self.dtype)


class LSTM(_Recurrent):
    """Long short-term memory layers (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    Gates i, f, g, o in PyTorch's order; ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``. The state is a
    pair ``(h, c)``: h (D*num_layers, B, H_out), c (D*num_layers, B, hidden_size).

    * ``proj_size`` > 0: LSTMP, ``h_t = W_hr (o * tanh(c_t))`` with ``weight_hr_l{k}`` (proj_size, hidden_size), as
      torch's; H_out = proj_size (any size here; torch requires it smaller than hidden_size).
    * ``peepholes``: the gates see the cell (Gers & Schmidhuber 2000): ``p_i * c_{t-1}`` is added to i's and f's
      pre-activations (``p_f``), ``p_o * c_t`` to o's; parameters ``peephole_{i,f,o}_l{k}`` (hidden_size,), zero at
      the start. torch has no peepholes.
    * ``forget_bias``: when set, the forget gate's part of ``bias_ih`` starts at this value and ``bias_hh``'s at 0
      (Jozefowicz et al. 2015 recommend 1.0); needs ``bias=True``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, peepholes=False, forget_bias=None, dtype="float32", seed=None):
        proj_size = check.positive_int(proj_size, "proj_size", minimum=0)
        peepholes = check.boolean(peepholes, "peepholes")
        forget_bias = check.float_or_none(forget_bias, "forget_bias")
        if forget_bias is not None and not check.boolean(bias, "bias"):
            raise ValueError("forget_bias: needs bias=True (it sets the forget gate's bias), got bias=False")
        super().__init__(_LSTMKernel(), input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, proj_size=proj_size, peepholes=peepholes,
                         extra_config=dict(proj_size=proj_size, peepholes=peepholes, forget_bias=forget_bias))
        self.forget_bias = forget_bias
        if forget_bias is not None:
            H = self.hidden_size
            for name, p in self.params.items():
                if name.startswith("bias_"):
                    p[H:2 * H] = forget_bias if name.startswith("bias_ih") else 0.0


class GRU(_Recurrent):
    """Gated recurrent unit layers (Cho et al. 2014). Gates r, z, n in PyTorch's order; ``h_t = (1 - z) * n + z * h``.

    ``reset_after=True`` (PyTorch, cuDNN): ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
    ``reset_after=False`` (the paper, ONNX's default): ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``.
    The state is h (D*num_layers, B, hidden_size).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype="float32", seed=None, reset_after=True):
        self.reset_after = check.boolean(reset_after, "reset_after")
        super().__init__(_gru_kernel(self.reset_after), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, seed, extra_config=dict(reset_after=self.reset_after))


class RNN(_Recurrent):
    """Elman recurrent layers: ``h_t = act(W_ih x + b_ih + W_hh h + b_hh)`` with act ``tanh`` or ``relu``.

    The state is h (D*num_layers, B, hidden_size).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype="float32", seed=None, nonlinearity="tanh"):
        self.nonlinearity = _rnn_nonlinearity(nonlinearity)
        super().__init__(_rnn_kernel(self.nonlinearity), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, seed, extra_config=dict(nonlinearity=self.nonlinearity))


# ----------------------------------------------------------------------------------------------------------------------
# Cells: one step per call, for streaming.


class _Cell(_RecurrentModule):
    """What LSTMCell, GRUCell and RNNCell share: one time step per call through the same kernels (T = 1).

    In training mode each call keeps its step's record on a stack and ``backward`` takes the most recent one, so a
    sequence of steps is differentiated by calling ``backward`` in reverse order. ``eval()`` drops the records.
    """

    def __init__(self, kernel, input_size, hidden_size, bias, dtype, seed, extra_config=()):
        self._kernel = kernel
        self.input_size = check.positive_int(input_size, "input_size")
        self.hidden_size = check.positive_int(hidden_size, "hidden_size")
        self.bias = check.boolean(bias, "bias")
        self.dtype = check.float_dtype(dtype)
        self.seed = check.seed(seed)
        self.training = True
        self._steps = []
        self._config = dict(input_size=self.input_size, hidden_size=self.hidden_size, bias=self.bias,
                            **dict(extra_config), dtype=self.dtype.name, seed=self.seed)
        gh = kernel.gates * self.hidden_size
        shapes = {"weight_ih": (gh, self.input_size), "weight_hh": (gh, self.hidden_size)}
        if self.bias:
            shapes.update(bias_ih=(gh,), bias_hh=(gh,))
        _init_uniform(self, shapes, self.hidden_size, self.seed)
        p = self.params
        self._w = (p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))
        g = self.grads
        self._grad_kwargs = dict(dweight_ih=g["weight_ih"], dweight_hh=g["weight_hh"], dbias_ih=g.get("bias_ih"),
                                 dbias_hh=g.get("bias_hh"))

    def _forget_saved(self):
        self._steps.clear()

    def _states(self, state, batch, name):
        shapes = ((batch, self.hidden_size),) * len(self._kernel.state_names)
        parts = self._exact_parts(state, shapes)
        return parts if parts is not None else self._state_parts(state, name, shapes,
                                                                ("batch, hidden_size",) * len(shapes))

    def _step(self, x, state):
        x = self._array(x, "x")
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x: expected shape (B, input_size) with input_size = {self.input_size}, got {x.shape}")
        batch = x.shape[0]
        start = self._states(state, batch, "state")
        for s in start:
            if s is None:  # zeros for the missing parts
                start = tuple(np.zeros((batch, self.hidden_size), self.dtype) if s is None else s for s in start)
                break
        _, final, saved = self._kernel.forward(x[None], start, self._w, (None, None), None, self.training)
        if self.training:
            self._steps.append(saved)
        return final[0] if len(final) == 1 else final

    def backward(self, dstate):
        """The gradient of the newest not yet differentiated step's output state -> (dx (B, input_size), gradient of
        that step's input state). Adds the parameter gradients into ``grads``."""
        if not self._steps:
            mode = "" if self.training else " (the cell is in eval mode: call cell.train())"
            raise RuntimeError(f"backward: no training-mode step left to differentiate{mode}")
        saved = self._steps[-1]
        batch = saved.x.shape[1]
        parts = self._states(dstate, batch, "dstate")
        if parts[0] is None:
            raise ValueError("dstate: the gradient of h is required (the step's output), got None")
        self._steps.pop()
        dx, dstart = self._kernel.backward(saved, self._w, (None, None), parts[0][None], (None,) + parts[1:],
                                           self._grad_kwargs, (None, None))
        return dx[0], (dstart[0] if len(dstart) == 1 else dstart)


class LSTMCell(_Cell):
    """One LSTM step: ``h, c = cell(x, (h, c))`` with x (B, input_size) and h, c (B, hidden_size) (None: zeros).
    Parameters ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H,), as torch.nn.LSTMCell."""

    def __init__(self, input_size, hidden_size, *, bias=True, dtype="float32", seed=None):
        super().__init__(_LSTMKernel(), input_size, hidden_size, bias, dtype, seed)

    def __call__(self, x, state=None):
        return self._step(x, state)


class GRUCell(_Cell):
    """One GRU step: ``h = cell(x, h)`` with x (B, input_size) and h (B, hidden_size) (None: zeros), as
    torch.nn.GRUCell (``reset_after=False``: the Cho et al. form, see GRU)."""

    def __init__(self, input_size, hidden_size, *, bias=True, dtype="float32", seed=None, reset_after=True):
        self.reset_after = check.boolean(reset_after, "reset_after")
        super().__init__(_gru_kernel(self.reset_after), input_size, hidden_size, bias, dtype, seed,
                         extra_config=dict(reset_after=self.reset_after))

    def __call__(self, x, h=None):
        return self._step(x, h)


class RNNCell(_Cell):
    """One Elman step: ``h = cell(x, h)`` with x (B, input_size) and h (B, hidden_size) (None: zeros), as
    torch.nn.RNNCell."""

    def __init__(self, input_size, hidden_size, *, bias=True, dtype="float32", seed=None, nonlinearity="tanh"):
        self.nonlinearity = _rnn_nonlinearity(nonlinearity)
        super().__init__(_rnn_kernel(self.nonlinearity), input_size, hidden_size, bias, dtype, seed,
                         extra_config=dict(nonlinearity=self.nonlinearity))

    def __call__(self, x, h=None):
        return self._step(x, h)

"""The sequence layers LSTM, GRU and RNN: configuration, parameters, gradients, stacking and directions over whole
sequences (the step cells, one step per call, are in ``pylstm.step_cells``).

The math is in ``pylstm.functional`` (the C++ kernels, one call per layer and direction over the whole sequence),
reached through the cell's facts in ``pylstm.cells``; ``pylstm.sequence`` turns a padded batch with lengths into the
kernels' row layout. The classes speak PyTorch's language: the same constructor arguments (positional in torch's
order), parameter names, shapes, gate order and state shapes as ``torch.nn.LSTM`` / ``GRU`` / ``RNN``, so a torch
``state_dict`` loads as it is.
"""
from __future__ import annotations

from typing import Literal, NamedTuple, Optional

import numpy as np
import numpy.typing as npt

from . import _checks as check
from . import cells
from .module import Module, dropout_mask, init_recurrent
from .saved import saved_bytes_per_step
from .sequence import Layout, check_lengths
from ._types import DTypeLike, FloatArray, State, StateLike


class ForwardRecord(NamedTuple):
    """What a training-mode forward keeps for the layer's backward."""
    layout: object  # the sequence.Layout of a forward with lengths, reverse direction or batch_first; None otherwise
    records: list  # [layer][direction]: the cell's saved record (pylstm.saved)
    masks: list  # the dropout masks applied to the outputs of every layer but the last
    out_shape: tuple  # the shape of the (batched) out, which dout must have
    unbatched: bool  # x was (T, input_size): dout and the results of backward drop the batch axis


# NamedTuple's own constructor is a Python function; tuple.__new__ builds the same record in C, on the hot paths.
_record = tuple.__new__


class _Recurrent(Module):
    """What LSTM, GRU and RNN share. A subclass passes its cell (pylstm.cells) and extra configuration."""

    _repr_head = ("input_size", "hidden_size")

    def __init__(self, cell, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype,
                 seed, proj_size=0, peepholes=False, extra_config=()):
        self._cell = cell
        self.input_size = check.positive_int(input_size, "input_size")
        self.hidden_size = check.positive_int(hidden_size, "hidden_size")
        self.num_layers = check.positive_int(num_layers, "num_layers")
        self.bias = check.boolean(bias, "bias")
        self.batch_first = check.boolean(batch_first, "batch_first")
        self.bidirectional = check.boolean(bidirectional, "bidirectional")
        self.dropout = check.probability(dropout, "dropout")
        self.dtype = check.float_dtype(dtype)
        self.seed = check.seed(seed)
        check.dropout_layers(self.dropout, self.num_layers)
        self.proj_size = proj_size
        self.peepholes = peepholes
        self.training = True
        self._saved = None
        self._kernels_added = 0  # (backward's count of the kernel calls that added gradients)
        self._names = {}
        self._zero_state_cache = None
        self._single = self.num_layers == 1 and not self.bidirectional
        self._config = dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                            bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                            bidirectional=self.bidirectional, **dict(extra_config), dtype=self.dtype.name,
                            seed=self.seed)
        self._check_parameter_bytes()
        seeds = np.random.SeedSequence(self.seed)
        # Dropout masks come from their own stream, so dropout never changes the initial parameters.
        self._dropout_rng = np.random.default_rng(seeds.spawn(1)[0])
        init_recurrent(self, self._shapes(), self.hidden_size, seeds)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """H_out: the width of h (proj_size with a projection, else hidden_size)."""
        return self.proj_size or self.hidden_size

    def _suffix(self, layer, direction):
        return f"_l{layer}" + ("_reverse" if direction else "")

    def _shapes(self):
        D = self.num_directions
        shapes = {}
        for k in range(self.num_layers):
            width = self.input_size if k == 0 else D * self.output_size
            for d in range(D):
                shapes.update(self._cell.parameter_shapes(width, self.hidden_size, self.bias, self._suffix(k, d),
                                                          self.proj_size, self.peepholes))
        return shapes

    def _check_parameter_bytes(self):
        """Sizes whose parameters cannot be allocated are refused before the per-layer loop of ``_shapes`` (its
        layers after the first all have the same shapes, so the count needs only two of them)."""
        def values(width):
            shapes = self._cell.parameter_shapes(width, self.hidden_size, self.bias, "", self.proj_size, self.peepholes)
            return sum(int(np.prod(shape, dtype=object)) for shape in shapes.values())
        D = self.num_directions
        count = D * (values(self.input_size) + (self.num_layers - 1) * values(D * self.output_size))
        sizes = dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers)
        if self.proj_size:
            sizes["proj_size"] = self.proj_size
        check.parameters_fit(count, self.dtype, sizes)

    def _weights(self, table, k, d):
        """(weight_ih, weight_hh, bias_ih, bias_hh) and the LSTM extras (weight_hr, peepholes) of layer k, direction d,
        from ``params`` or ``grads`` (looked up on every call: the tables may be updated between calls)."""
        names = self._names.get((k, d))
        if names is None:  # the names, formatted once per layer and direction
            s = self._suffix(k, d)
            names = self._names[(k, d)] = (
                tuple(f"{name}{s}" for name in cells.PARAMETERS), f"weight_hr{s}",
                tuple(f"peephole_{g}{s}" for g in self._cell.peephole_gates) if self.peepholes else None)
        (ih, hh, b_ih, b_hh), hr_name, peep_names = names
        get = table.get
        peep = None if peep_names is None else (table[peep_names[0]], table[peep_names[1]], table[peep_names[2]])
        return (get(ih), get(hh), get(b_ih), get(b_hh)), (get(hr_name), peep)

    def _gradients(self, k, d):
        """Layer k, direction d's arrays in ``grads`` as the cell's backward takes them: (the weight and bias
        gradients by keyword, the extras' gradients)."""
        gw, gextras = self._weights(self.grads, k, d)
        return dict(dweight_ih=gw[0], dweight_hh=gw[1], dbias_ih=gw[2], dbias_hh=gw[3]), gextras

    def _state_widths(self):
        return self._cell.state_widths(self.hidden_size, self.output_size)

    def _forget_saved(self):
        self._saved = None

    # -- state arguments: (D*L, B, W) arrays, a pair for the LSTM -----------------------------------------------------

    def _state_tuple(self, state, batch, name):
        """state or dstate as the caller gives it -> a tuple of (D*L, B, W) arrays or Nones (None: zeros)."""
        rows, widths = self.num_directions * self.num_layers, self._state_widths()
        shapes = tuple((rows, batch, w) for w in widths)
        parts = None if state is None else check.exact_state(state, shapes, self.dtype)
        if parts is not None:
            return parts
        return check.state(self, state, name, self._cell.state_names, shapes, tuple(
            "num_directions * num_layers, batch, " + ("hidden_size" if w == self.hidden_size else "proj_size")
            for w in widths))

    def _initial_state(self, state, batch):
        """The forward's state argument -> _state_tuple's parts; in training mode copies of them: the saved record
        keeps the initial state for backward, and the caller may reuse its arrays in between (a streaming loop writing
        the next state into the same buffer). A state is small beside the sequence's work."""
        parts = self._state_tuple(state, batch, "state")
        if self.training:
            parts = tuple(None if p is None else p.copy() for p in parts)
        return parts

    def _state_result(self, parts):
        return parts[0] if len(parts) == 1 else tuple(parts)

    # -- forward and backward -------------------------------------------------------------------------------------

    def __call__(self, x: npt.ArrayLike, state: StateLike = None,
                 lengths: Optional[npt.ArrayLike] = None) -> tuple[FloatArray, State]:
        """x (T, B, input_size), or (B, T, input_size) with batch_first, or unbatched (T, input_size) -> (out, final
        state).

        out is (T, B, D*H_out) (or (B, T, D*H_out)), the reverse direction's outputs in its second half. The state is
        h (D*num_layers, B, H_out) and, for the LSTM, c (D*num_layers, B, hidden_size), as PyTorch's; None means zeros.
        For an unbatched x (one sequence; batch_first does not apply, as in torch) the state, out and final state
        have no batch axis.
        ``lengths`` (B ints in [0, T], any order) runs each sequence for its own number of steps: outputs past it are
        zero, its final state is the one after its own last step, and the reverse direction starts there.

        ``x`` must have the layer's dtype (an array-like that is not an ndarray is converted to it). In training mode
        ``out`` is read-only and x must not be modified in place before ``backward``, which reads them (the state is
        copied: its arrays may be reused).
        """
        x = self._array(x, "x")
        if x.ndim != 3 or x.shape[2] != self.input_size:
            return self._call_unbatched(x, state, lengths)
        if lengths is None and not self.bidirectional and not self.batch_first:
            return self._forward_single(x, state) if self._single else self._forward_stack(x, state)
        steps, batch = (x.shape[1], x.shape[0]) if self.batch_first else x.shape[:2]
        layout = Layout(steps, batch, check_lengths(lengths, batch, steps))
        initial = self._initial_state(state, batch)
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
                out, final, rec = self._cell.forward(layout.direction_rows(rows, d), start, w, extras,
                                                     layout.batch_sizes, training, layout.kernel_reverse(d))
                outs.append(layout.direction_rows(out, d))
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
            self._saved = _record(ForwardRecord, (layout, saved, masks, out.shape, False))
            out.flags.writeable = False
        else:
            self._saved = None
        return out, self._state_result(finals)

    def _call_unbatched(self, x, state, lengths):
        """__call__ for an unbatched x (T, input_size), as torch's: run as a batch of one."""
        if x.ndim != 2 or x.shape[1] != self.input_size:
            order = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ValueError(f"x: expected shape {order}, or (T, input_size) unbatched, with input_size = "
                             f"{self.input_size}, got {x.shape}")
        if lengths is not None:
            raise ValueError("lengths: expected None for an unbatched x (T, input_size) (one sequence of T steps), "
                             f"got {type(lengths).__name__}")
        # One sequence is a batch of one: (T, 1, I), or (1, T, I) with batch_first.
        out, final = self(x[None] if self.batch_first else x[:, None], self._batched_state(state, "state"))
        if self._saved is not None:
            self._saved = self._saved._replace(unbatched=True)
        return (out[0] if self.batch_first else out[:, 0]), self._unbatched_state(final)

    def _batched_state(self, state, name):
        """An unbatched state (parts (D*num_layers, W)) -> the parts with a batch axis of one."""
        if state is None:
            return None
        rows = self.num_directions * self.num_layers
        shapes = tuple((rows, w) for w in self._state_widths())
        parts = check.state(self, state, name, self._cell.state_names, shapes,
                            ("num_directions * num_layers, width (x is unbatched)",) * len(shapes))
        parts = tuple(None if p is None else p[:, None] for p in parts)
        return parts[0] if len(parts) == 1 else parts

    def _unbatched_state(self, parts):
        return parts[:, 0] if isinstance(parts, np.ndarray) else tuple(p[:, 0] for p in parts)

    def _forward_single(self, x, state):
        """__call__ for one layer, one direction and whole (T, B, .) sequences, the streaming hot path: the kernel's
        arrays are returned as they are, with no layout work. Kept short on purpose: the kernel has just streamed the
        weights through the caches, so every Python step here costs several times what it does in a warm loop."""
        batch = x.shape[1]
        if state is None:
            start = self._zero_states(batch)
        else:
            zeros = self._zero_states(batch)
            start = tuple(z if s is None else s[0] for s, z in zip(self._initial_state(state, batch), zeros))
        w, extras = self._weights(self.params, 0, 0)
        out, final, rec = self._cell.forward(x, start, w, extras, None, self.training)
        self._saved = None
        if self.training:
            # no layout: backward takes _backward_single
            self._saved = _record(ForwardRecord, (None, [[rec]], [], out.shape, False))
            out.flags.writeable = False
        return out, self._state_result([value[None] for value in final])

    def _backward_single(self, rec, out_shape, dout, dstate):
        """backward after _forward_single (one layer, one direction, whole sequences): the kernel's arrays as they are,
        with no layout work; kept short for the same reason."""
        dout = self._checked(dout, "dout", out_shape, "the shape of the last forward's out")
        dlast = tuple(None if s is None else s[0] for s in self._state_tuple(dstate, out_shape[1], "dstate"))
        w, extras = self._weights(self.params, 0, 0)
        dx, dstart = self._cell.backward(rec, w, extras, dout, dlast, *self._gradients(0, 0))
        return dx, self._state_result(tuple(value[None] for value in dstart))

    def _forward_stack(self, x, state):
        """__call__ for stacked layers of one direction over whole (T, B, .) sequences (a streaming model's stack,
        one step at a time): each layer's kernel output is the next layer's input as it is, with no layout work."""
        batch, L = x.shape[1], self.num_layers
        initial = self._initial_state(state, batch)
        zeros = self._zero_states(batch)
        finals = tuple(np.empty((L, batch, w), self.dtype) for w in self._state_widths())
        saved, masks, rows = [], [], x
        for k in range(L):
            w, extras = self._weights(self.params, k, 0)
            start = tuple(z if s is None else s[k] for s, z in zip(initial, zeros))
            rows, final, rec = self._cell.forward(rows, start, w, extras, None, self.training)
            saved.append([rec])
            for part, value in zip(finals, final):
                part[k] = value
            if self.training and self.dropout and k < L - 1:
                mask = self._dropout_mask(rows.shape)
                rows = rows * mask
                masks.append(mask)
        self._saved = None
        if self.training:
            # no layout: backward takes _backward_stack
            self._saved = _record(ForwardRecord, (None, saved, masks, rows.shape, False))
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
            drows, dstart = self._added_backward(saved[k][0], w, extras, drows,
                                                tuple(None if s is None else s[k] for s in dfinal),
                                                *self._gradients(k, 0))
            for part, value in zip(dinitial, dstart):
                part[k] = value
        return drows, self._state_result(dinitial)

    def backward(self, dout: npt.ArrayLike, dstate: StateLike = None) -> tuple[FloatArray, State]:
        """Gradients from the last training-mode forward: dout (the shape of that forward's out) and optionally the
        gradient of the final state (like the state; for the LSTM a pair whose parts may be None) -> (dx, dstate0).

        Adds the gradient of every parameter of every layer and direction into ``grads``. With lengths, dout past a
        sequence's length is ignored (those outputs are constant zeros). Runs once per forward, as torch's: a second
        call raises RuntimeError (the gradients would be added again). Ctrl-C during a long backward raises
        KeyboardInterrupt within milliseconds; ``grads`` then hold the gradients of the layers and directions done so
        far (zero_grad() before the next step, as usual), and the forward is used up. So is it by an error raised
        after some layers had added theirs; an error before that leaves the forward for a corrected call. x and
        ``params`` must be as the forward had them (it kept the gates it computed from them, not copies of them): an
        optimizer step in between gives the gradient of neither set of weights.
        """
        record = self._saved
        if record is None:
            mode = "" if self.training else " (the layer is in eval mode: call layer.train())"
            raise RuntimeError("backward: needs a training-mode forward whose backward has not run yet (it runs once "
                               f"per forward){mode}")
        layout, saved, masks, out_shape, unbatched = record
        self._kernels_added = 0
        try:
            if layout is None and not unbatched:  # the fast paths' records
                if len(saved) == 1:
                    result = self._backward_single(saved[0][0], out_shape, dout, dstate)
                else:
                    result = self._backward_stack(saved, masks, out_shape, dout, dstate)
            elif unbatched:
                result = self._backward_unbatched(record, dout, dstate)
            else:
                result = self._backward_layout(layout, saved, masks, out_shape, dout, dstate)
        except BaseException as exc:
            # Ctrl-C, or an error after some layers and directions had added their gradients (a kernel call that
            # raises or is cut short adds nothing): this forward cannot be differentiated again without adding those
            # twice. An error before any was added leaves the forward for a corrected call.
            if isinstance(exc, KeyboardInterrupt) or self._kernels_added > 0:
                self._saved = None
            raise
        self._saved = None
        return result

    def _added_backward(self, *args):
        """self._cell.backward of one layer and direction of a stack (it adds into grads), counted for backward."""
        result = self._cell.backward(*args)
        self._kernels_added += 1
        return result

    def _backward_batched(self, record, dout, dstate):
        layout, saved, masks, out_shape, _ = record
        if layout is None:
            if len(saved) == 1:
                return self._backward_single(saved[0][0], out_shape, dout, dstate)
            return self._backward_stack(saved, masks, out_shape, dout, dstate)
        return self._backward_layout(layout, saved, masks, out_shape, dout, dstate)

    def _backward_unbatched(self, record, dout, dstate):
        """backward after an unbatched forward: dout (T, D*H_out) and dstate without the batch axis, as the forward's;
        so are dx and dstate0."""
        shape = record.out_shape
        dout = self._checked(dout, "dout", shape[1:] if self.batch_first else shape[:1] + shape[2:],
                             "the shape of the last forward's out")
        dx, dstate0 = self._backward_batched(record, dout[None] if self.batch_first else dout[:, None],
                                             self._batched_state(dstate, "dstate"))
        return (dx[0] if self.batch_first else dx[:, 0]), self._unbatched_state(dstate0)

    def _backward_layout(self, layout, saved, masks, out_shape, dout, dstate):
        """backward after a forward through a Layout (lengths, the reverse direction or batch_first)."""
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
                # the saved record knows the direction the kernel ran
                dx, dstart = self._added_backward(saved[k][d], w, extras, layout.direction_rows(dout_d, d), dlast,
                                                 *self._gradients(k, d))
                dx = layout.direction_rows(dx, d)
                dx_layer = dx if dx_layer is None else dx_layer + dx
                for part, value in zip(dinitial, dstart):
                    layout.unsort_state(value, out=part[k * D + d])
            drows = dx_layer
        dx = layout.scatter(drows, self.batch_first)
        return dx, self._state_result(dinitial)

    def saved_bytes_per_step(self) -> int:
        """Bytes the kernels' records of the last training-mode forward keep per time step for backward (their
        gates and cell states), summed over layers and directions; 0 when nothing is kept. Not counted: dropout
        masks, and what a layout keeps beside them (with lengths, batch_first or both directions: its own copies of
        x and of each direction's and layer's out, up to about half as much again)."""
        if self._saved is None:
            return 0
        return sum(saved_bytes_per_step(rec) for layer in self._saved.records for rec in layer)

    def _generators(self) -> list[np.random.Generator]:
        return [self._dropout_rng]

    def _zero_states(self, batch):
        """The zero initial state (one read-only (batch, width) array per state part, for every layer and direction),
        kept for the next call of the same batch size: the kernels only read it, and two np.zeros a call were a
        noticeable part of a batch-1 single step."""
        zeros = self._zero_state_cache
        if zeros is None or zeros[0].shape[0] != batch:
            zeros = tuple(np.zeros((batch, w), dtype=self.dtype) for w in self._state_widths())
            for z in zeros:
                z.flags.writeable = False
            self._zero_state_cache = zeros
        return zeros

    def _dropout_mask(self, shape):
        return dropout_mask(self._dropout_rng, self.dropout, shape, self.dtype)


# ----------------------------------------------------------------------------------------------------------------------
# The documentation the three layers share, put together for each by _layer_doc.

_ARGUMENTS = """\
    Arguments (up to {last_positional} positional, in torch's order; the rest keyword-only):

    * ``input_size``: I, the width of x's last axis.
    * ``hidden_size``: H, the number of hidden units of each layer and direction.
    * ``num_layers``: L stacked layers (default 1); layer k > 0 reads the outputs of layer k - 1.{nonlinearity}
    * ``bias``: whether the layers have ``bias_ih`` and ``bias_hh`` (default True).
    * ``batch_first``: x and out are (B, T, .) instead of (T, B, .) (default False); states keep their shape.
    * ``dropout``: the probability of zeroing each output of every layer but the last in training mode (inverted
      dropout: the kept ones are scaled by 1 / (1 - dropout)), from the layer's own random stream (default 0.0).
      With num_layers=1 there is nothing to drop: a UserWarning says so, as torch's does.
    * ``bidirectional``: each layer has a second direction reading the sequences backwards; D = 2 and out holds
      both directions' outputs (default False, D = 1).{extras}
    * ``dtype``: "float32" (default) or "float64": of the parameters, and of every array passed in and returned.
    * ``seed``: None (fresh randomness) or an int: the initial parameters (uniform in [-1/sqrt(H), 1/sqrt(H)], as
      torch's) and the dropout masks (a stream of their own) come from it.
"""

_PARAMETERS = """\
    ``params`` (name -> the live array the layer computes with; PyTorch's names, a torch state_dict loads as it is)
    and ``grads`` (the same names and shapes; backward adds into them, ``zero_grad()`` clears them), with k the
    layer and the suffix ``_reverse`` for the second direction:

    * ``weight_ih_l{{k}}`` ({rows}, I for k = 0, else D*H_out), ``weight_hh_l{{k}}`` ({rows}, H_out),
    * ``bias_ih_l{{k}}``, ``bias_hh_l{{k}}`` ({rows},) unless bias=False.{extra_parameters}

    {blocks}
"""

_CALLS = """\
    ``out, state = layer(x, state=None, lengths=None)``: x (T, B, I) (or (B, T, I) with batch_first, or (T, I)
    unbatched) -> out (T, B, D*H_out) and the final state; a state (the initial one too; None: zeros) is
    {state}.
    ``lengths`` (B ints) runs each sequence for its own number of steps.
    ``dx, dstate0 = layer.backward(dout, dstate=None)`` after a training-mode call: the gradients of x and of the
    initial state, once per call. ``train()`` / ``eval()``: eval keeps nothing for backward. See ``__call__`` and
    ``backward`` for the details.

    Example::

        import numpy as np, pylstm
        layer = pylstm.{name}(8, 16, 2, batch_first=True, seed=0)  # I = 8, H = 16, 2 layers
        x = np.zeros((4, 10, 8), np.float32)  # B = 4 sequences of T = 10 steps
        out, {state_names} = layer(x)  # out (4, 10, 16); state {state_example}
        dx, _ = layer.backward(np.ones_like(out))  # dx (4, 10, 8); layer.grads hold the parameters' gradients
"""


def gate_rows(cell: cells.Cell) -> str:
    """The rows of the stacked weights, for the documentation: "4*H", or "H" for one block."""
    return f"{cell.gates}*H" if cell.gates > 1 else "H"


def gate_blocks(cell: cells.Cell) -> str:
    """What the rows' blocks are, for the documentation."""
    if cell.gates == 1:
        return "The rows are the pre-activation's (one block, no gates)."
    return f"The {cell.gates} blocks of rows are the gates {', '.join(cell.gate_names)}, in torch's order."


def _layer_doc(summary, cell, *, last_positional, state, state_names, state_example, nonlinearity="",
               extras="", extra_parameters=""):
    return "\n".join([
        summary,
        _ARGUMENTS.format(last_positional=last_positional, nonlinearity=nonlinearity, extras=extras),
        _PARAMETERS.format(rows=gate_rows(cell), blocks=gate_blocks(cell), extra_parameters=extra_parameters),
        _CALLS.format(name=cell.family, state=state, state_names=state_names, state_example=state_example)])


class LSTM(_Recurrent):
    __doc__ = _layer_doc(
        """Long short-term memory layers (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    Gates i, f, g, o in PyTorch's order; ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``. The state is a
    pair ``(h, c)``: h (D*num_layers, B, H_out), c (D*num_layers, B, hidden_size); H_out = hidden_size, or
    proj_size with a projection.
""",
        cells.LSTM, last_positional="proj_size",
        state="a pair (h, c): h (D*L, B, H_out), c (D*L, B, H)", state_names="(h, c)",
        state_example="h, c (2, 4, 16)",
        extras="""
    * ``proj_size``: > 0 makes an LSTMP (default 0): ``h_t = W_hr (o * tanh(c_t))`` with ``weight_hr_l{k}``
      (proj_size, hidden_size), as torch's; H_out = proj_size (any size here; torch requires it below hidden_size).
    * ``peepholes``: the gates see the cell (Gers & Schmidhuber 2000; default False): ``p_i * c_{t-1}`` is added to
      i's pre-activation, ``p_f * c_{t-1}`` to f's, ``p_o * c_t`` to o's, with parameters ``peephole_{i,f,o}_l{k}``
      (hidden_size,), zero at the start. torch has no peepholes.
    * ``forget_bias``: when set, the forget gate's part of ``bias_ih`` starts at this value and ``bias_hh``'s at 0
      (Jozefowicz et al. 2015 recommend 1.0); needs bias=True (default None: torch's initialisation).""",
        extra_parameters="""
    * ``weight_hr_l{k}`` (proj_size, H) with proj_size > 0, ``peephole_i_l{k}``, ``peephole_f_l{k}``,
      ``peephole_o_l{k}`` (H,) with peepholes.""")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0, *,
                 peepholes: bool = False, forget_bias: Optional[float] = None, dtype: DTypeLike = "float32",
                 seed: Optional[int] = None) -> None:
        proj_size = check.positive_int(proj_size, "proj_size", minimum=0)
        peepholes = check.boolean(peepholes, "peepholes")
        forget_bias = check.float_or_none(forget_bias, "forget_bias")
        if forget_bias is not None and not check.boolean(bias, "bias"):
            raise ValueError("forget_bias: needs bias=True (it sets the forget gate's bias), got bias=False")
        super().__init__(cells.LSTM, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, proj_size=proj_size, peepholes=peepholes,
                         extra_config=dict(proj_size=proj_size, peepholes=peepholes, forget_bias=forget_bias))
        self.forget_bias = forget_bias
        if forget_bias is not None:
            forget = cells.LSTM.gate_rows("f", self.hidden_size)
            for name, p in self.params.items():
                if name.startswith("bias_"):
                    p[forget] = forget_bias if name.startswith("bias_ih") else 0.0


class GRU(_Recurrent):
    __doc__ = _layer_doc(
        """Gated recurrent unit layers (Cho et al. 2014).

    Gates r, z, n in PyTorch's order; ``h_t = (1 - z) * n + z * h``.

    ``reset_after=True`` (PyTorch, cuDNN): ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
    ``reset_after=False`` (the paper, ONNX's default): ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``.
    The state is h (D*num_layers, B, hidden_size).
""",
        cells.GRU_RESET_AFTER, last_positional="bidirectional", state="h (D*L, B, H)", state_names="h",
        state_example="h (2, 4, 16)",
        extras="""
    * ``reset_after``: where the reset gate applies (default True, torch's form; see above).""")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 dtype: DTypeLike = "float32", seed: Optional[int] = None, reset_after: bool = True) -> None:
        self.reset_after = check.boolean(reset_after, "reset_after")
        super().__init__(cells.gru(self.reset_after), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, seed, extra_config=dict(reset_after=self.reset_after))


class RNN(_Recurrent):
    __doc__ = _layer_doc(
        """Elman recurrent layers: ``h_t = act(W_ih x + b_ih + W_hh h + b_hh)`` with act ``tanh`` or ``relu``.

    The state is h (D*num_layers, B, hidden_size).
""",
        cells.RNN_TANH, last_positional="bidirectional",
        state="h (D*L, B, H)", state_names="h", state_example="h (2, 4, 16)",
        nonlinearity="""
    * ``nonlinearity``: "tanh" (default) or "relu", the activation (torch's fourth argument).""")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: Literal["tanh", "relu"] = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, dtype: DTypeLike = "float32",
                 seed: Optional[int] = None) -> None:
        cell = cells.rnn(nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(cell, input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, seed, extra_config=dict(nonlinearity=self.nonlinearity))

"""The step cells LSTMCell, GRUCell and RNNCell: one time step per call, for streaming, as ``torch.nn.LSTMCell`` /
``GRUCell`` / ``RNNCell`` (the same constructor arguments, positional in torch's order, parameter names and shapes).

Each step runs the cell's kernel over a sequence of one step (pylstm.cells, pylstm.functional).
"""
from __future__ import annotations

from typing import Literal, Optional

import numpy as np
import numpy.typing as npt

from . import _checks as check
from . import cells
from .layers import gate_blocks, gate_rows
from .module import Module, init_recurrent
from ._types import DTypeLike, FloatArray, State, StateLike


class _UnbatchedStep:
    """The record of a step whose x was unbatched (input_size,): its backward takes and returns unbatched arrays."""
    __slots__ = ("saved",)

    def __init__(self, saved):
        self.saved = saved


class _StepCell(Module):
    """What LSTMCell, GRUCell and RNNCell share: one time step per call through the same kernels (T = 1).

    In training mode each call keeps its step's record on a stack and ``backward`` takes the most recent one, so a
    sequence of steps is differentiated by calling ``backward`` in reverse order. ``eval()`` drops the records.
    """

    _repr_head = ("input_size", "hidden_size")

    def __init__(self, cell, input_size, hidden_size, bias, dtype, seed, extra_config=()):
        self._cell = cell
        self.input_size = check.positive_int(input_size, "input_size")
        self.hidden_size = check.positive_int(hidden_size, "hidden_size")
        self.bias = check.boolean(bias, "bias")
        self.dtype = check.float_dtype(dtype)
        self.seed = check.seed(seed)
        self.training = True
        self._steps = []
        self._config = dict(input_size=self.input_size, hidden_size=self.hidden_size, bias=self.bias,
                            **dict(extra_config), dtype=self.dtype.name, seed=self.seed)
        shapes = cell.parameter_shapes(self.input_size, self.hidden_size, self.bias)
        check.parameters_fit(sum(int(np.prod(shape, dtype=object)) for shape in shapes.values()), self.dtype,
                             dict(input_size=self.input_size, hidden_size=self.hidden_size))
        init_recurrent(self, shapes, self.hidden_size, self.seed)
        p = self.params
        self._w = tuple(p.get(name) for name in cells.PARAMETERS)
        g = self.grads
        self._grad_kwargs = {f"d{name}": g.get(name) for name in cells.PARAMETERS}

    def _forget_saved(self):
        self._steps.clear()

    def _states(self, state, batch, name):
        shapes = ((batch, self.hidden_size),) * len(self._cell.state_names)
        parts = check.exact_state(state, shapes, self.dtype)
        return parts if parts is not None else check.state(self, state, name, self._cell.state_names, shapes,
                                                           ("batch, hidden_size",) * len(shapes))

    def _step(self, x, state):
        x = self._array(x, "x")
        if x.ndim != 2 or x.shape[1] != self.input_size:
            return self._step_unbatched(x, state)
        batch = x.shape[0]
        start = self._states(state, batch, "state")
        if self.training:  # the step's record keeps its state for backward; the caller may reuse its arrays
            start = tuple(None if s is None else s.copy() for s in start)
        for s in start:
            if s is None:  # zeros for the missing parts
                start = tuple(np.zeros((batch, self.hidden_size), self.dtype) if s is None else s for s in start)
                break
        _, final, saved = self._cell.forward(x[None], start, self._w, (None, None), None, self.training)
        if self.training:
            self._steps.append(saved)
        return final[0] if len(final) == 1 else final

    def _step_unbatched(self, x, state):
        """A step of an unbatched x (input_size,) and state parts (hidden_size,), as torch's: a batch of one."""
        if x.ndim != 1 or x.shape[0] != self.input_size:
            raise ValueError(f"x: expected shape (B, input_size), or (input_size,) unbatched, with input_size = "
                             f"{self.input_size}, got {x.shape}")
        final = self._step(x[None], self._batched(state, "state"))
        if self.training:
            self._steps[-1] = _UnbatchedStep(self._steps[-1])
        return final[0] if isinstance(final, np.ndarray) else tuple(part[0] for part in final)

    def _batched(self, state, name):
        """An unbatched state (parts (hidden_size,)) -> the parts with a batch axis of one."""
        if state is None:
            return None
        shapes = ((self.hidden_size,),) * len(self._cell.state_names)
        parts = check.state(self, state, name, self._cell.state_names, shapes,
                            ("hidden_size (x is unbatched)",) * len(shapes))
        parts = tuple(None if part is None else part[None] for part in parts)
        return parts[0] if len(parts) == 1 else parts

    def backward(self, dstate: StateLike) -> tuple[FloatArray, State]:
        """The gradient of the newest not yet differentiated step's output state -> (dx (B, input_size), gradient of
        that step's input state); unbatched when that step's x was. Adds the parameter gradients into ``grads``."""
        if not self._steps:
            mode = "" if self.training else " (the cell is in eval mode: call cell.train())"
            raise RuntimeError(f"backward: no training-mode step left to differentiate{mode}")
        saved = self._steps[-1]
        unbatched = type(saved) is _UnbatchedStep
        if unbatched:
            saved, dstate = saved.saved, self._batched(dstate, "dstate")
        batch = saved.x.shape[1]
        parts = self._states(dstate, batch, "dstate")
        if parts[0] is None:
            raise ValueError("dstate: the gradient of h is required (the step's output), got None")
        dx, dstart = self._cell.backward(saved, self._w, (None, None), parts[0][None], (None,) + parts[1:],
                                         self._grad_kwargs, (None, None))
        self._steps.pop()  # only now: a kernel that raises adds nothing, and the step stays for a corrected call
        if unbatched:
            return dx[0, 0], (dstart[0][0] if len(dstart) == 1 else tuple(part[0] for part in dstart))
        return dx[0], (dstart[0] if len(dstart) == 1 else dstart)


# ----------------------------------------------------------------------------------------------------------------------
# The documentation the three step cells share, put together for each by _step_doc.

_STEP_DOC = """{summary}

    Arguments ({positional} positional, in torch's order; the rest keyword-only):

    * ``input_size``: I, the width of x.
    * ``hidden_size``: H, the number of hidden units.
    * ``bias``: whether the cell has ``bias_ih`` and ``bias_hh`` (default True).{extras}
    * ``dtype``: "float32" (default) or "float64": of the parameters, and of every array passed in and returned.
    * ``seed``: None (fresh randomness) or an int: the initial parameters (uniform in [-1/sqrt(H), 1/sqrt(H)], as
      torch's) come from it.

    ``params`` (name -> the live array the cell computes with; PyTorch's names) and ``grads`` (the same names and
    shapes; backward adds into them): ``weight_ih`` ({rows}, I), ``weight_hh`` ({rows}, H), ``bias_ih`` and
    ``bias_hh`` ({rows},) unless bias=False. {blocks}

    ``{call}``: x (B, I), or (I,) unbatched; the state {state}
    (None: zeros).
    In training mode each step keeps a record; ``dx, dstate = cell.backward(dstate_out)`` takes the newest one
    (steps are differentiated in reverse order, each once) and returns the gradients of x and of the step's input
    state. ``eval()`` keeps nothing.

    Example::

        import numpy as np, pylstm
        cell = pylstm.{name}(8, 16, seed=0)
        state = None
        for x in np.zeros((10, 4, 8), np.float32):  # 10 steps of B = 4 rows
            state = cell(x, state)
"""


def _step_doc(summary, cell, *, call, state, extras="", positional="input_size, hidden_size, bias"):
    return _STEP_DOC.format(summary=summary, name=cell.family + "Cell", rows=gate_rows(cell),
                            blocks=gate_blocks(cell), call=call, state=state, extras=extras,
                            positional=positional)


class LSTMCell(_StepCell):
    __doc__ = _step_doc("One LSTM step (see pylstm.LSTM), as torch.nn.LSTMCell.", cells.LSTM,
                        call="h, c = cell(x, (h, c))", state="h and c (B, H), or (H,) unbatched")

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: DTypeLike = "float32",
                 seed: Optional[int] = None) -> None:
        super().__init__(cells.LSTM, input_size, hidden_size, bias, dtype, seed)

    def __call__(self, x: npt.ArrayLike, state: StateLike = None) -> tuple[FloatArray, FloatArray]:
        return self._step(x, state)


class GRUCell(_StepCell):
    __doc__ = _step_doc("One GRU step (see pylstm.GRU), as torch.nn.GRUCell.", cells.GRU_RESET_AFTER,
                        call="h = cell(x, h)", state="h (B, H), or (H,) unbatched", extras="""
    * ``reset_after``: where the reset gate applies (default True, torch's form; False: Cho et al.'s; see
      pylstm.GRU).""")

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: DTypeLike = "float32",
                 seed: Optional[int] = None, reset_after: bool = True) -> None:
        self.reset_after = check.boolean(reset_after, "reset_after")
        super().__init__(cells.gru(self.reset_after), input_size, hidden_size, bias, dtype, seed,
                         extra_config=dict(reset_after=self.reset_after))

    def __call__(self, x: npt.ArrayLike, h: Optional[npt.ArrayLike] = None) -> FloatArray:
        return self._step(x, h)


class RNNCell(_StepCell):
    __doc__ = _step_doc("One Elman step (see pylstm.RNN), as torch.nn.RNNCell.", cells.RNN_TANH,
                        call="h = cell(x, h)", state="h (B, H), or (H,) unbatched",
                        positional="input_size, hidden_size, bias, nonlinearity", extras="""
    * ``nonlinearity``: "tanh" (default) or "relu", the activation (torch's fourth argument).""")

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: Literal["tanh", "relu"] = "tanh", *, dtype: DTypeLike = "float32",
                 seed: Optional[int] = None) -> None:
        cell = cells.rnn(nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(cell, input_size, hidden_size, bias, dtype, seed,
                         extra_config=dict(nonlinearity=self.nonlinearity))

    def __call__(self, x: npt.ArrayLike, h: Optional[npt.ArrayLike] = None) -> FloatArray:
        return self._step(x, h)

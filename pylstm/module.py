"""What every pylstm module shares: its parameters and gradients (PyTorch's names, live arrays), training/eval
mode, state dicts, configuration, and the checks of its array arguments.

``params`` and ``grads`` are read-only mappings (name -> ndarray): the arrays in them are the very arrays the kernels
compute with, so updating them in place (``p -= lr * g``, ``p[...] = value``, an optimizer) changes the module, and
replacing an entry is refused rather than silently ignored by a module that keeps references to its arrays.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable, TypeVar

import numpy as np
import numpy.typing as npt

from . import _checks as check
from ._types import DTypeLike, FloatArray

_M = TypeVar("_M", bound="Module")


class Parameters(Mapping[str, FloatArray]):
    """A read-only mapping name -> live ndarray. Entries are updated in place, never replaced."""

    def __init__(self, arrays: Mapping[str, FloatArray]) -> None:
        self._arrays = dict(arrays)
        # The dict's own methods, bound once: Mapping's generic ones run in Python, and a layer looks its weights up
        # at every call (a batch-1 step's Python is part of its time).
        self.get, self.keys, self.values, self.items = (self._arrays.get, self._arrays.keys, self._arrays.values,
                                                        self._arrays.items)

    def __getitem__(self, name: str) -> FloatArray:
        return self._arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __setitem__(self, name: str, value: Any) -> None:
        raise TypeError(f"params[{name!r}]: the entries are the arrays the module computes with and cannot be "
                        f"replaced; update in place (params[{name!r}][...] = value) or use load_state_dict")

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"params[{name!r}]: entries cannot be removed")

    def __repr__(self) -> str:
        return "Parameters({" + ", ".join(f"{k!r}: {v.dtype.name}{list(v.shape)}" for k, v in self.items()) + "})"


def aligned_zeros(shape: tuple[int, ...], dtype: DTypeLike, alignment: int = 64) -> FloatArray:
    """Zeros whose data starts on a cache line. NumPy aligns its arrays to 16 bytes only, and the kernels read a
    batch-1 step's weights in place, row by row: rows that straddle cache lines are slower to read, by an amount that
    varies from one allocation to the next."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.zeros(nbytes + alignment, np.uint8)
    start = -buffer.ctypes.data % alignment
    return buffer[start:start + nbytes].view(dtype).reshape(shape)


def dropout_mask(rng: np.random.Generator, p: float, shape: tuple[int, ...], dtype: DTypeLike) -> FloatArray:
    """Inverted dropout's mask: each element kept with probability 1 - p and scaled by 1 / (1 - p), drawn from rng
    (all zero when p = 1)."""
    keep = 1.0 - p
    if keep == 0.0:
        return np.zeros(shape, dtype)
    return ((rng.random(shape) < keep) / keep).astype(dtype)


class Module:
    """Holds ``params`` and ``grads`` (name -> array, PyTorch names), the training flag and the configuration.

    A subclass sets ``self.dtype``, ``self._config`` (its constructor's arguments) and calls ``_allocate``; it defines
    ``_forget_saved`` (drop what a training forward kept) and ``_repr_head`` (the config keys shown positionally).
    """

    training = True
    _repr_head: tuple[str, ...] = ()
    dtype: np.dtype[Any]
    _config: dict[str, Any]
    params: Parameters
    grads: Parameters
    # Each subclass's own: its forward (x, ... -> its output) and backward (the output's gradient -> the input's).
    __call__: Callable[..., Any]
    backward: Callable[..., Any]

    def _allocate(self, shapes):
        """Zero parameters and gradients of these shapes (name -> shape) in the module's dtype, cache-line aligned."""
        #: name -> the live arrays the module computes with (an optimizer updates them in place).
        self.params = Parameters({name: aligned_zeros(shape, self.dtype) for name, shape in shapes.items()})
        #: name -> gradient arrays of the same shapes; ``backward`` adds into them, ``zero_grad`` clears them.
        self.grads = Parameters({name: aligned_zeros(p.shape, self.dtype) for name, p in self.params.items()})

    def _forget_saved(self):
        pass

    def train(self: _M, mode: bool = True) -> _M:
        """Training mode (the default): a forward keeps what ``backward`` needs."""
        self.training = bool(mode)
        if not self.training:
            self._forget_saved()
        return self

    def eval(self: _M) -> _M:
        """Inference mode: a forward keeps nothing, and ``backward`` raises."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place (the arrays stay the same objects)."""
        for g in self.grads.values():
            g.fill(0)

    def state_dict(self) -> dict[str, FloatArray]:
        """name -> a copy of each parameter (PyTorch names)."""
        return {name: p.copy() for name, p in self.params.items()}

    def load_state_dict(self, state_dict: Mapping[str, npt.ArrayLike]) -> None:
        """Copy parameters in, in place, from a mapping with exactly this module's names and shapes.

        Values are cast to the module's dtype. Everything is checked before anything is copied, so a bad mapping
        leaves the module as it was.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a mapping name -> array, got {type(state_dict).__name__}")
        missing = [k for k in self.params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in self.params]
        if missing or unexpected:
            raise KeyError(f"state_dict: missing keys {missing}, unexpected keys {unexpected}; "
                           f"expected exactly {list(self.params)}")
        values = {}
        for name, p in self.params.items():
            try:
                v = np.asarray(state_dict[name])
            except (TypeError, ValueError, RuntimeError) as exc:  # e.g. torch: a tensor that requires grad, bfloat16
                raise TypeError(f"state_dict[{name!r}]: expected an array of real numbers; it cannot be read as one "
                                f"({exc}) (a torch tensor: pass .detach().float())") from None
            if v.shape != p.shape:
                raise ValueError(f"state_dict[{name!r}]: expected shape {p.shape}, got {v.shape}")
            if v.dtype.kind not in "fiu":
                raise TypeError(f"state_dict[{name!r}]: expected real numbers, got dtype {v.dtype}")
            values[name] = v
        own = list(self.params.values())
        for name, v in values.items():  # the module's own arrays under other names: their values before any copy
            if any(np.may_share_memory(v, p) for p in own):
                values[name] = v.copy()
        for name, v in values.items():
            np.copyto(self.params[name], v, casting="unsafe")

    def _generators(self) -> list[np.random.Generator]:
        """The random generators the module draws from in training (dropout masks); none for most modules."""
        return []

    def rng_state(self) -> list[Mapping[str, Any]]:
        """The states of the module's random generators (JSON-serialisable), to resume training bit for bit."""
        return [g.bit_generator.state for g in self._generators()]

    def set_rng_state(self, states: Sequence[Mapping[str, Any]]) -> None:
        """Restore what ``rng_state`` returned (checked before anything changes)."""
        generators = self._generators()
        if not isinstance(states, (list, tuple)) or len(states) != len(generators):
            raise ValueError(f"states: expected a list of {len(generators)} generator states (this module's "
                             f"rng_state()), got {type(states).__name__}"
                             + (f" of {len(states)}" if isinstance(states, (list, tuple)) else ""))
        checked = []
        for k, (g, state) in enumerate(zip(generators, states)):
            probe = type(g.bit_generator)()
            try:
                probe.state = state
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                raise ValueError(f"states[{k}]: not a state of a {type(g.bit_generator).__name__} ({exc})") from None
            checked.append(probe.state)
        for g, state in zip(generators, checked):
            g.bit_generator.state = state

    def config(self) -> dict[str, Any]:
        """The constructor's arguments as a JSON-serialisable dict: ``type(m).from_config(m.config())`` builds a
        module of the same configuration (parameters drawn anew from ``seed``; copy them with ``load_state_dict``)."""
        return dict(self._config)

    @classmethod
    def from_config(cls: type[_M], config: Mapping[str, Any]) -> _M:
        """A new module of this configuration (the inverse of ``config()``)."""
        return cls(**config)

    def __repr__(self) -> str:
        cfg = self.config()
        head = ", ".join(repr(cfg.pop(k)) for k in self._repr_head)
        rest = ", ".join(f"{k}={v!r}" for k, v in cfg.items())
        return f"{type(self).__name__}({head}{', ' if head and rest else ''}{rest})"

    def _array(self, value: npt.ArrayLike, name: str) -> FloatArray:
        """value as a C-contiguous, aligned ndarray of the module's dtype: an ndarray of another dtype is an error (no
        silent casts of large arrays), any other array-like is converted; a strided or misaligned one is copied (the
        kernels read whole aligned elements)."""
        if isinstance(value, np.ndarray):
            if value.dtype != self.dtype:
                raise TypeError(f"{name}: expected dtype {self.dtype.name} (the module's dtype), got {value.dtype}")
            flags = value.flags  # (made anew at each access)
            if type(value) is np.ndarray and flags.c_contiguous and flags.aligned:
                return value  # as np.asarray would return it, without the call (a subclass still goes through it)
            value = np.asarray(value, order="C")  # not ascontiguousarray: it would report a 0-d x as shape (1,)
            return check.aligned(value)
        return check.aligned(check.array(value, name, f"an array of {self.dtype.name}", dtype=self.dtype, order="C"))

    def _checked(self, value: npt.ArrayLike, name: str, shape: tuple[int, ...], meaning: str) -> FloatArray:
        value = self._array(value, name)
        if value.shape != shape:
            raise ValueError(f"{name}: expected shape {shape} ({meaning}), got {value.shape}")
        return value


def init_recurrent(module: Module, shapes: Mapping[str, tuple[int, ...]], hidden_size: int, seed: Any) -> None:
    """PyTorch's default initialisation of a layer's or step cell's parameters (name -> shape): every parameter
    uniform in [-1/sqrt(H), 1/sqrt(H)], drawn in order; ``peephole_*`` parameters (which torch lacks) start at zero."""
    module._allocate(shapes)
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden_size)
    for name, p in module.params.items():
        if not name.startswith("peephole_"):
            p[...] = rng.uniform(-bound, bound, size=p.shape)

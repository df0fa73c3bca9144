"""The blocks around the recurrent layers in a model: Embedding, Linear, Dropout, and Sequential to chain them.

Each speaks PyTorch's language (constructor arguments, parameter names and shapes, initialisation) and has the
interface of the recurrent layers: ``out = block(x)`` then ``dx = block.backward(dout)``, with ``params``/``grads``,
``train()``/``eval()``, ``zero_grad()``, ``state_dict()``/``load_state_dict()`` and ``config()``; every one can be
saved with ``pylstm.save``. The math is in ``pylstm.functional`` (C++ kernels on pylstm's threads), twinned by
``pylstm.reference``.

Like the recurrent layers, a block keeps a reference to its training-mode input for ``backward`` (no copy): do not
modify that array in place in between.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from . import _checks as check
from . import functional as F
from .layers import GRU, LSTM, RNN, _Recurrent
from .module import Module, Parameters, dropout_mask
from .step_cells import GRUCell, LSTMCell, RNNCell
from ._types import DTypeLike, FloatArray, IntArray, State, StateLike


def _no_forward(name: str) -> RuntimeError:
    return RuntimeError(f"backward: needs a training-mode forward of this {name} whose backward has not run yet (it "
                        f"runs once per forward, as the gradients would be added again; or the module is in eval "
                        f"mode, or was never called)")


class Linear(Module):
    """``y = x W^T + b`` over the last axis of x (every time step of every sequence), as torch.nn.Linear.

    Parameters ``weight`` (out_features, in_features) and ``bias`` (out_features,), both uniform in
    [-1/sqrt(in_features), 1/sqrt(in_features)] at the start (torch's initialisation).
    """

    _repr_head = ("in_features", "out_features")

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, dtype: DTypeLike = "float32",
                 seed: Optional[int] = None) -> None:
        self.in_features = check.positive_int(in_features, "in_features")
        self.out_features = check.positive_int(out_features, "out_features")
        self.bias = check.boolean(bias, "bias")
        self.dtype = check.float_dtype(dtype)
        self.seed = check.seed(seed)
        self._config = dict(in_features=self.in_features, out_features=self.out_features, bias=self.bias,
                            dtype=self.dtype.name, seed=self.seed)
        shapes: dict[str, tuple[int, ...]] = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        check.parameters_fit((self.in_features + self.bias) * self.out_features, self.dtype,
                             dict(in_features=self.in_features, out_features=self.out_features))
        self._allocate(shapes)
        rng = np.random.default_rng(self.seed)
        bound = 1.0 / np.sqrt(self.in_features)
        for p in self.params.values():
            p[...] = rng.uniform(-bound, bound, size=p.shape)
        self._x: Optional[FloatArray] = None

    def _forget_saved(self) -> None:
        self._x = None

    def __call__(self, x: npt.ArrayLike) -> FloatArray:
        """x (..., in_features) -> y (..., out_features)."""
        x = self._array(x, "x")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}) (the last axis in_features), "
                             f"got {x.shape}")
        y = F.linear_forward(x, self.params["weight"], self.params.get("bias"))
        self._x = x if self.training else None
        return y

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """dout (like the last training forward's y) -> dx (like its x); adds into ``grads``."""
        if self._x is None:
            raise _no_forward("Linear")
        x = self._x
        dout = self._checked(dout, "dout", x.shape[:-1] + (self.out_features,), "the shape of the last forward's y")
        dx = F.linear_backward(x, self.params["weight"], dout, dweight=self.grads["weight"],
                               dbias=self.grads.get("bias"))
        self._x = None  # used up: a second backward would add the gradients again
        return dx


class Embedding(Module):
    """A lookup table: ``out = weight[ids]`` for integer ids of any shape, as torch.nn.Embedding.

    Parameter ``weight`` (num_embeddings, embedding_dim), standard normal at the start (torch's initialisation), with
    row ``padding_idx`` (if given) zero and never updated by ``backward``. ``backward`` adds into the rows that were
    looked up only (a row looked up several times sums its gradients) and returns None: ids have no gradient.
    """

    _repr_head = ("num_embeddings", "embedding_dim")

    def __init__(self, num_embeddings: int, embedding_dim: int, *, padding_idx: Optional[int] = None,
                 dtype: DTypeLike = "float32", seed: Optional[int] = None) -> None:
        self.num_embeddings = check.positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check.positive_int(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)):
                raise TypeError(f"padding_idx: expected None or an int, got {type(padding_idx).__name__}")
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"padding_idx: expected None or an int in [-{self.num_embeddings}, "
                                 f"{self.num_embeddings}) (num_embeddings = {self.num_embeddings}), got {padding_idx}")
            padding_idx = int(padding_idx) % self.num_embeddings  # torch counts a negative index from the end
        self.padding_idx = padding_idx
        self.dtype = check.float_dtype(dtype)
        self.seed = check.seed(seed)
        self._config = dict(num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim,
                            padding_idx=self.padding_idx, dtype=self.dtype.name, seed=self.seed)
        check.parameters_fit(self.num_embeddings * self.embedding_dim, self.dtype,
                             dict(num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim))
        self._allocate({"weight": (self.num_embeddings, self.embedding_dim)})
        weight = self.params["weight"]
        weight[...] = np.random.default_rng(self.seed).standard_normal(weight.shape)
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self._ids: Optional[IntArray] = None

    def _forget_saved(self) -> None:
        self._ids = None

    @staticmethod
    def _ids_array(ids: npt.ArrayLike) -> IntArray:
        """ids as a C-contiguous int64 array (any integer dtype is accepted; other dtypes are an error)."""
        if not isinstance(ids, np.ndarray):
            ids = check.array(ids, "ids", "an array of integers")
            if ids.size == 0 and ids.dtype.kind == "f":
                ids = ids.astype(np.int64)  # [] is float64 to NumPy
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids: expected an array of integers, got dtype {ids.dtype}")
        if ids.dtype == np.uint64 and ids.size and ids.max() > np.iinfo(np.int64).max:  # would wrap to negatives
            raise ValueError(f"ids: expected integers in [0, num_embeddings), got {ids.max()}")
        # not ascontiguousarray: it makes a 0-d array (1,)
        return check.aligned(np.asarray(ids, dtype=np.int64, order="C"))

    def __call__(self, ids: npt.ArrayLike) -> FloatArray:
        """ids (...) integers in [0, num_embeddings) -> out (..., embedding_dim)."""
        ids = self._ids_array(ids)
        out = F.embedding_forward(ids, self.params["weight"])
        self._ids = ids if self.training else None
        return out

    def backward(self, dout: npt.ArrayLike) -> None:
        """dout (..., embedding_dim) like the last training forward's out -> None; adds into ``grads["weight"]``."""
        if self._ids is None:
            raise _no_forward("Embedding")
        ids = self._ids
        dout = self._checked(dout, "dout", ids.shape + (self.embedding_dim,), "the shape of the last forward's out")
        F.embedding_backward(ids, dout, dweight=self.grads["weight"], padding_idx=self.padding_idx)
        self._ids = None  # used up, as Linear's
        return None


class Dropout(Module):
    """Inverted dropout, as torch.nn.Dropout: in training mode each element is kept with probability 1 - p and
    scaled by 1 / (1 - p) (all zero when p = 1); in eval mode the input passes as it is. Masks are drawn from
    ``seed``. No parameters."""

    _repr_head = ("p",)

    def __init__(self, p: float = 0.5, *, seed: Optional[int] = None) -> None:
        self.p = check.probability(p, "p")
        self.seed = check.seed(seed)
        self._config = dict(p=self.p, seed=self.seed)
        self.params = Parameters({})
        self.grads = Parameters({})
        self._rng = np.random.default_rng(self.seed)
        self._mask: Optional[FloatArray] = None

    def _forget_saved(self) -> None:
        self._mask = None

    def _generators(self) -> list[np.random.Generator]:
        return [self._rng]

    def __call__(self, x: npt.ArrayLike) -> FloatArray:
        """x (any shape, float32 or float64) -> x with elements dropped (training mode) or x itself (eval mode)."""
        x = check.array(x, "x")
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"x: expected dtype float32 or float64, got {x.dtype}")
        if not self.training:
            self._mask = None
            return x
        self._mask = dropout_mask(self._rng, self.p, x.shape, x.dtype)
        return x * self._mask

    def backward(self, dout: npt.ArrayLike) -> FloatArray:
        """dout like the last training forward's output -> dx = dout * mask."""
        if self._mask is None:
            raise _no_forward("Dropout")
        dout = check.array(dout, "dout")
        if dout.shape != self._mask.shape:
            raise ValueError(f"dout: expected shape {self._mask.shape} (the shape of the last forward's output), "
                             f"got {dout.shape}")
        if dout.dtype != self._mask.dtype:
            raise TypeError(f"dout: expected dtype {self._mask.dtype} (the last forward's), got {dout.dtype}")
        dx = dout * self._mask
        self._mask = None  # used up, as Linear's
        return dx


_CELLS = (LSTMCell, GRUCell, RNNCell)


def _modules_within(modules: Sequence[Module]) -> Iterator[Module]:
    """The modules and, for each Sequential among them, every module within it (at any depth)."""
    for m in modules:
        yield m
        if isinstance(m, Sequential):
            yield from _modules_within(m.modules)


class Sequential(Module):
    """Modules run in order: ``out, states = model(x, states=None, lengths=None)``.

    The recurrent layers (LSTM, GRU, RNN) get ``lengths`` and their entry of ``states`` and return their final
    states, so ``states`` is a list with one entry per recurrent layer (their state in the layer's own format;
    ``None`` starts all from zeros, as does a None entry); giving the returned states back continues from them
    (truncated backpropagation through time). ``model.backward(dout, dstates=None)`` runs the chain backward and
    returns ``(dx, dstates0)``: the input's gradient (None when the first module is an Embedding) and the gradients
    of the initial states, one per recurrent layer.

    Parameter names are torch's ``nn.Sequential`` names, the module's index and its own name (``"0.weight"``,
    ``"1.weight_ih_l0"``, ``"2.bias"``), and ``params``/``grads`` hold the modules' own live arrays.
    """

    def __init__(self, *modules: Module) -> None:
        if not modules:
            raise ValueError("modules: expected at least one module, got none")
        for k, m in enumerate(modules):
            if isinstance(m, _CELLS):
                raise TypeError(f"modules[{k}]: a {type(m).__name__} runs one step per call and cannot be chained; "
                                f"use the layer ({type(m).__name__[:-4]}) instead")
            if not isinstance(m, Module):
                raise TypeError(f"modules[{k}]: expected a pylstm module (Embedding, Linear, Dropout, LSTM, GRU, "
                                f"RNN, Sequential), got {type(m).__name__}")
            if isinstance(m, Sequential) and any(m._recurrent):
                raise TypeError(f"modules[{k}]: a Sequential with recurrent layers cannot be nested (their states "
                                f"and lengths would not reach them); list its modules here instead")
        every = [id(m) for m in _modules_within(modules)]
        if len(set(every)) != len(every):
            raise ValueError("modules: the same module object appears twice, here or inside a nested Sequential (its "
                             "saved forward state would be shared)")
        recurrent = [(k, m) for k, m in enumerate(modules) if isinstance(m, _Recurrent)]
        for k, m in recurrent[1:]:
            if m.batch_first != recurrent[0][1].batch_first:
                j = recurrent[0][0]
                raise ValueError(f"modules[{k}]: batch_first={m.batch_first}, after modules[{j}] with batch_first="
                                 f"{recurrent[0][1].batch_first}: one's outputs would be read with batch and time "
                                 f"swapped; give the recurrent layers one layout")
        self.modules: list[Any] = list(modules)  # Any: each is called as its own class is
        self._recurrent: list[bool] = [isinstance(m, _Recurrent) for m in self.modules]
        self.params = Parameters({f"{k}.{name}": a for k, m in enumerate(self.modules) for name, a in m.params.items()})
        self.grads = Parameters({f"{k}.{name}": a for k, m in enumerate(self.modules) for name, a in m.grads.items()})
        self.training = all(m.training for m in self.modules)

    @property
    def batch_first(self) -> bool:
        """Whether its recurrent layers take and give (B, T, .) rather than (T, B, .) (their batch_first)."""
        return any(getattr(m, "batch_first", False) for m in self.modules)

    @property
    def bidirectional(self) -> bool:
        """Whether one of its recurrent layers reads the sequence backwards too (each step's output then depends on
        the steps after it)."""
        return any(getattr(m, "bidirectional", False) for m in self.modules)

    def __len__(self) -> int:
        return len(self.modules)

    def __getitem__(self, index: int) -> Module:
        return self.modules[index]

    def _states_list(self, states: Optional[Sequence[Any]], name: str) -> list[Any]:
        n = sum(self._recurrent)
        if states is None:
            return [None] * n
        if not isinstance(states, (list, tuple)) or len(states) != n:
            raise TypeError(f"{name}: expected None or a list of {n} entries (one per recurrent layer), got "
                            f"{type(states).__name__}" + (f" of {len(states)}" if isinstance(states, (list, tuple))
                                                          else ""))
        return list(states)

    def __call__(self, x: npt.ArrayLike, states: Optional[Sequence[StateLike]] = None,
                 lengths: Optional[npt.ArrayLike] = None) -> tuple[FloatArray, list[State]]:
        """x -> (out, states): the last module's output and the recurrent layers' final states, in order."""
        states_list = self._states_list(states, "states")
        finals: list[State] = []
        y: Any = x
        for m, recurrent in zip(self.modules, self._recurrent):
            if recurrent:
                y, final = m(y, states_list[len(finals)], lengths=lengths)
                finals.append(final)
            elif isinstance(m, Sequential):
                y, _ = m(y)
            else:
                y = m(y)
        return y, finals

    def backward(self, dout: npt.ArrayLike, dstates: Optional[Sequence[StateLike]] = None
                 ) -> tuple[Optional[FloatArray], list[Optional[State]]]:
        """dout like the last training forward's out, dstates None or one entry per recurrent layer (the gradient
        of its final state) -> (dx or None, the gradients of the recurrent layers' initial states)."""
        dstates_list = self._states_list(dstates, "dstates")
        dstarts: list[Optional[State]] = [None] * len(dstates_list)
        k = len(dstates_list)
        grad: Any = dout
        for m, recurrent in zip(reversed(self.modules), reversed(self._recurrent)):
            if grad is None:
                raise ValueError(f"backward: {type(m).__name__} is below a module whose input has no gradient")
            if recurrent:
                k -= 1
                grad, dstarts[k] = m.backward(grad, dstates_list[k])
            elif isinstance(m, Sequential):
                grad, _ = m.backward(grad)
            else:
                grad = m.backward(grad)
        return grad, dstarts

    def train(self, mode: bool = True) -> Sequential:
        for m in self.modules:
            m.train(mode)
        self.training = bool(mode)
        return self

    def zero_grad(self) -> None:
        for m in self.modules:
            m.zero_grad()

    def _generators(self) -> list[np.random.Generator]:
        return [g for m in self.modules for g in m._generators()]

    def config(self) -> dict[str, Any]:
        """{"modules": [{"class": name, "config": the module's config()}, ...]}."""
        return {"modules": [{"class": type(m).__name__, "config": m.config()} for m in self.modules]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Sequential:
        entries = config.get("modules") if isinstance(config, dict) else None
        if not isinstance(entries, list):
            raise TypeError(f"config: expected {{'modules': [...]}}, got {config!r}")
        classes = module_classes()
        modules = []
        for k, entry in enumerate(entries):
            if not (isinstance(entry, dict) and entry.get("class") in classes and isinstance(entry.get("config"), dict)):
                raise ValueError(f"config['modules'][{k}]: expected {{'class': one of {sorted(classes)}, "
                                 f"'config': {{...}}}}, got {entry!r}")
            modules.append(classes[entry["class"]].from_config(entry["config"]))
        return cls(*modules)

    def __repr__(self) -> str:
        return "Sequential(\n" + "".join(f"  ({k}): {m!r}\n" for k, m in enumerate(self.modules)) + ")"


def module_classes() -> dict[str, type[Module]]:
    """Class name -> class, for every module that config()/from_config() and pylstm.save/load know."""
    return {c.__name__: c for c in (LSTM, GRU, RNN, LSTMCell, GRUCell, RNNCell, Linear, Embedding, Dropout,
                                    Sequential)}

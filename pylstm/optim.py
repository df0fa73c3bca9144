"""Optimizers, learning-rate schedulers and gradient clipping for pylstm modules, with torch.optim's rules.

* Optimizers: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, with torch.optim's constructor arguments, defaults, checks and
  update rules (torch's order of operations, in each parameter's dtype: see ``pylstm.reference``, whose twins
  ``sgd_step``, ``adam_step`` and ``rmsprop_step`` are the same updates written out in NumPy). Each update is one
  fused pass of a C++ kernel over the parameter and its state. ``model`` is a module (anything with ``params`` and
  ``grads`` mappings of the same keys: name -> live float32/float64 array) or a list or tuple of modules; its
  (parameter, gradient) arrays are collected once, at construction, in order, each array once.
* Schedulers: ``StepLR``, ``ExponentialLR``, ``CosineAnnealingLR``, ``LinearLR`` and ``ReduceLROnPlateau``, with
  torch's arguments and torch's (recursive) formulas, so the learning rates are torch's to the last bit. Call
  ``scheduler.step()`` after ``optimizer.step()`` (``ReduceLROnPlateau.step(metric)``). Several schedulers may drive
  one optimizer: each multiplies the learning rate that the others left, as in torch.
* Clipping: ``clip_grad_norm`` and ``clip_grad_value``, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (the
  norms are summed in float64 by a C++ kernel, in an order that does not depend on the thread count).

Each optimizer has ``step()``, ``zero_grad()`` (fills every gradient with zeros, in place), ``param_groups`` (a list
of one dict of the hyperparameters, ``"lr"`` among them, which schedulers read and write, as torch's; ``"params"``
lists the parameters' numbers) and ``state`` (parameter number -> its state). The state dict mirrors torch's layout
and holds only JSON-serialisable scalars, lists and dicts, and NumPy arrays (copies)::

    {"state": {0: {"step": 3, "exp_avg": array, "exp_avg_sq": array}, 1: {...}, ...},
     "param_groups": [{"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0, "amsgrad": False,
                       "params": [0, 1, ...]}]}

A parameter's entry appears after its first step (SGD without momentum keeps none); a buffer that a hyperparameter
changed later no longer uses (amsgrad or momentum turned off) stays in it, as in torch. ``step`` counts the steps taken
(an int; torch keeps a float tensor). State keys may also be the numbers' decimal strings, as JSON leaves them.
``load_state_dict`` checks everything (keys, hyperparameters, each array's dtype and shape) before it changes
anything, adopts the saved hyperparameters (as torch does) and copies the arrays in. A scheduler's state dict holds
its arguments and counters; load it after the optimizer's (constructing a scheduler sets the learning rate).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional, Protocol, Union

import numpy as np

from . import _core

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
           "ReduceLROnPlateau", "clip_grad_norm", "clip_grad_value", "sgd_step", "adam_step", "rmsprop_step",
           "clip_grads_by_norm", "clip_grads_by_value"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class HasParameters(Protocol):
    """What an optimizer or clipping takes as a model: ``params`` and ``grads`` mappings of the same keys (name ->
    live float32/float64 array), as every pylstm module has."""

    @property
    def params(self) -> Mapping[str, np.ndarray]: ...

    @property
    def grads(self) -> Mapping[str, np.ndarray]: ...


#: A model: a module, or a list or tuple of modules.
Model = Union[HasParameters, Sequence[HasParameters]]


# ----------------------------------------------------------------------------------------------------------------------
# Argument checks: each names the argument, says what was expected and what came.


def _label(name: str, where: str) -> str:
    """The name of an argument, or of a key of a dict that a state dict or a param group holds."""
    return f"{where}[{name!r}]" if where else name


def _number(value: Any, name: str, where: str = "", *, minimum: Optional[float] = None, above: Optional[float] = None,
            below: Optional[float] = None, maximum: Optional[float] = None) -> float:
    """A finite real number (not a bool) within the given bounds (value >= minimum or > above; value < below or <=
    maximum), as a float."""
    label = _label(name, where)
    low = f"[{minimum}" if minimum is not None else f"({above}" if above is not None else None
    high = f"{below})" if below is not None else f"{maximum}]" if maximum is not None else None
    if low and high:
        wanted = f"a finite number in {low}, {high}"
    elif low:
        wanted = f"a finite number {'>=' if low[0] == '[' else '>'} {low[1:]}"
    elif high:
        wanted = f"a finite number {'<' if high[-1] == ')' else '<='} {high[:-1]}"
    else:
        wanted = "a finite number"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{label}: expected {wanted}, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond any float
        v = math.inf
    if not (math.isfinite(v) and (minimum is None or v >= minimum) and (above is None or v > above)
            and (below is None or v < below) and (maximum is None or v <= maximum)):
        raise ValueError(f"{label}: expected {wanted}, got {value!r}")
    return v


#: The largest count a state may hold: the kernels take int64, and a step adds one (2**62: beyond any run).
_INT_MAX = 2 ** 62


def _int(value: Any, name: str, where: str = "", *, minimum: int) -> int:
    label = _label(name, where)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{label}: expected an int >= {minimum}, got {type(value).__name__}")
    n = int(value)
    if n < minimum:
        raise ValueError(f"{label}: expected an int >= {minimum}, got {value!r}")
    if n > _INT_MAX:
        raise ValueError(f"{label}: expected an int <= 2**62, got {value!r}")
    return n


def _bool(value: Any, name: str, where: str = "") -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_label(name, where)}: expected a bool, got {type(value).__name__}")
    return bool(value)


def _choice(value: Any, name: str, choices: Sequence[str], where: str = "") -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{_label(name, where)}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _exact_keys(mapping: Any, expected: Sequence[str], what: str, optional: Sequence[str] = ()) -> None:
    """mapping must be a Mapping with exactly the keys `expected` (plus any of `optional`)."""
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{what}: expected a dict, got {type(mapping).__name__}")
    missing = [k for k in expected if k not in mapping]
    unexpected = [k for k in mapping if k not in expected and k not in optional]
    if missing or unexpected:
        raise ValueError(f"{what}: expected the keys {list(expected)}, got missing keys {missing} and unexpected "
                         f"keys {unexpected}")


# ----------------------------------------------------------------------------------------------------------------------
# The (parameter, gradient) arrays of a model.


def _modules(model: Model) -> list[tuple[str, HasParameters]]:
    """model -> [(name, module)]: a module, or a list or tuple of modules."""
    if isinstance(model, (list, tuple)):
        modules = [(f"model[{k}]", m) for k, m in enumerate(model)]
    else:
        modules = [("model", model)]
    for name, m in modules:
        if not (isinstance(getattr(m, "params", None), Mapping) and isinstance(getattr(m, "grads", None), Mapping)):
            raise TypeError(f"{name}: expected a module (with .params and .grads mappings) or a list or tuple of "
                            f"modules, got {type(m).__name__}")
    return modules


def _parameters(model: Model) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """model -> (params, grads): the arrays of every module in order, each parameter once (an array reachable twice,
    e.g. a module listed twice, is taken the first time). Refuses arrays that the kernels can't update in place, a
    gradient that does not match its parameter, and distinct arrays that share memory (an update through one would
    change the other behind the optimizer's back)."""
    params: list[np.ndarray] = []
    grads: list[np.ndarray] = []
    seen: dict[Any, Any] = {}
    for module_name, m in _modules(model):
        if set(m.params) != set(m.grads):
            raise ValueError(f"{module_name}: expected .grads with the keys of .params {list(m.params)}, got "
                             f"{list(m.grads)}")
        for key, p in m.params.items():
            g = m.grads[key]
            name = f"{module_name}.params[{key!r}]"
            if id(p) in seen:
                if g is not grads[seen[id(p)]]:
                    raise ValueError(f"{name}: this parameter array appears twice with different gradient arrays")
                continue
            for array, what in ((p, name), (g, f"{module_name}.grads[{key!r}]")):
                if not isinstance(array, np.ndarray) or array.dtype not in _DTYPES or not array.flags.c_contiguous:
                    got = (type(array).__name__ if not isinstance(array, np.ndarray) else
                           f"dtype {array.dtype}" if array.dtype not in _DTYPES else "a non-contiguous array")
                    raise TypeError(f"{what}: expected a C-contiguous float32 or float64 numpy.ndarray, got {got}")
                if not array.flags.writeable:
                    raise ValueError(f"{what}: expected a writeable array, got a read-only one")
            if g.dtype != p.dtype:
                raise TypeError(f"{module_name}.grads[{key!r}]: expected dtype {p.dtype} (its parameter's), got "
                                f"{g.dtype}")
            if g.shape != p.shape:
                raise ValueError(f"{module_name}.grads[{key!r}]: expected shape {p.shape} (its parameter's), got "
                                 f"{g.shape}")
            seen[id(p)] = len(params)
            params.append(p)
            grads.append(g)
    _check_disjoint(params, grads)
    return params, grads


def _check_disjoint(params: list[np.ndarray], grads: list[np.ndarray]) -> None:
    """No two of the arrays share memory (checked on their byte ranges, sorted)."""
    ranges = []
    for k, (p, g) in enumerate(zip(params, grads)):
        for array, what in ((p, f"parameter {k}"), (g, f"gradient {k}")):
            if array.nbytes:
                start = array.__array_interface__["data"][0]
                ranges.append((start, start + array.nbytes, what))
    ranges.sort()
    for (_, end, first), (start, _, second) in zip(ranges, ranges[1:]):
        if start < end:
            raise ValueError(f"model: {first} and {second} share memory; every parameter and gradient must be an "
                             f"array of its own")


# ----------------------------------------------------------------------------------------------------------------------
# The update of one parameter: the fast twins of pylstm.reference's functions (same arguments, same state).


def _state_buffers(state: dict[str, Any], param: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The state's buffers `names` as a new dict: zeros before the first step (an empty state), else the state's own
    arrays, which must all be there."""
    if not state:
        return {name: np.zeros_like(param) for name in names}
    missing = [name for name in names if name not in state]
    if missing:
        raise ValueError(f"state: expected the buffers {list(names)} for these hyperparameters, got {list(state)} "
                         f"(was a hyperparameter changed after the first step?)")
    return {name: state[name] for name in names}


def sgd_step(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: float, momentum: float = 0.0,
             dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
    """One torch.optim.SGD update of ``param`` in place (see pylstm.reference.sgd_step); ``state`` gains
    ``momentum_buffer`` at the first step when momentum != 0."""
    if momentum == 0:
        _core.sgd_step(param, grad, None, lr=lr, momentum=0.0, dampening=dampening, weight_decay=weight_decay,
                       nesterov=False, first_step=False)
        return
    first_step = "momentum_buffer" not in state
    buf = np.zeros_like(param) if first_step else state["momentum_buffer"]
    _core.sgd_step(param, grad, buf, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                   nesterov=nesterov, first_step=first_step)
    state["momentum_buffer"] = buf


def adam_step(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: float, betas: tuple[float, float],
              eps: float, weight_decay: float, amsgrad: bool, decoupled_weight_decay: bool = False) -> None:
    """One torch.optim.Adam update (AdamW's with ``decoupled_weight_decay``) of ``param`` in place (see
    pylstm.reference.adam_step); ``state``: ``step``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``)."""
    names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
    buffers = _state_buffers(state, param, names)
    step = state.get("step", 0) + 1
    _core.adam_step(param, grad, buffers["exp_avg"], buffers["exp_avg_sq"], buffers.get("max_exp_avg_sq"),
                    step=step, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
                    decoupled_weight_decay=decoupled_weight_decay)
    state.update(step=step, **buffers)


def rmsprop_step(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: float, alpha: float, eps: float,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
    """One torch.optim.RMSprop update of ``param`` in place (see pylstm.reference.rmsprop_step); ``state``: ``step``,
    ``square_avg`` (and ``momentum_buffer`` when momentum > 0, ``grad_avg`` when centered)."""
    names = ("square_avg",) + (("momentum_buffer",) if momentum > 0 else ()) + (("grad_avg",) if centered else ())
    buffers = _state_buffers(state, param, names)
    step = state.get("step", 0) + 1
    _core.rmsprop_step(param, grad, buffers["square_avg"], buffers.get("grad_avg"), buffers.get("momentum_buffer"),
                       lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
    state.update(step=step, **buffers)


# ----------------------------------------------------------------------------------------------------------------------
# Optimizers.


class _Optimizer:
    """What the optimizers share. A subclass names its hyperparameters (``_names``) and its update (``_update``, one
    of the functions above), checks the hyperparameters (``_checked``) and says which state entries a parameter has
    after its first step (``_state_names``) and every buffer it can hold (``_buffers``)."""

    _names: tuple[str, ...] = ()
    #: Every array a parameter's state can hold. A state keeps a buffer that a hyperparameter changed after the first
    #: step no longer uses (amsgrad turned off, momentum set to 0): it is saved and loaded with the rest, as torch does.
    _buffers: tuple[str, ...] = ()

    def __init__(self, model: Model, **hyperparameters: Any) -> None:
        self._params, self._grads = _parameters(model)
        if not self._params:
            raise ValueError("model: expected a module with parameters, got an empty parameter list")
        #: A list of one dict: the hyperparameters (read at every step; schedulers write "lr") and "params".
        self.param_groups: list[dict[str, Any]] = [
            dict(self._checked(hyperparameters), params=list(range(len(self._params))))]
        #: parameter number -> its state (see the module docstring), filled at its first step.
        self.state: dict[int, dict[str, Any]] = {}

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """The hyperparameters in `values` (a mapping holding at least ``_names``), checked -> a new dict of them;
        `where` names the mapping in messages."""
        raise NotImplementedError

    @staticmethod
    def _state_names(group: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
        """(has a "step" entry, the names of the arrays) of a parameter's state after its first step."""
        raise NotImplementedError

    @staticmethod
    def _update(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def step(self) -> None:
        """Update every parameter in place from its gradient (the hyperparameters are param_groups[0]'s now)."""
        hyper = self._checked(self.param_groups[0], "param_groups[0]")
        for k, (p, g) in enumerate(zip(self._params, self._grads)):
            self._update(p, g, self.state.setdefault(k, {}), **hyper)

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place (the arrays stay the same objects)."""
        for g in self._grads:
            g.fill(0)

    def state_dict(self) -> dict[str, Any]:
        """The state (copies of its arrays) and the hyperparameters, as the module docstring shows."""
        group = {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in self.param_groups[0].items()}
        state = {k: {name: v.copy() if isinstance(v, np.ndarray) else v for name, v in s.items()}
                 for k, s in self.state.items() if s}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Take the state and hyperparameters of ``state_dict`` (as ``state_dict()`` returns them) after checking all
        of it: a bad state dict raises (TypeError for a wrong type or dtype, ValueError otherwise) and changes
        nothing. Arrays are copied in."""
        _exact_keys(state_dict, ("state", "param_groups"), "state_dict")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != 1:
            got = f"{len(groups)} groups" if isinstance(groups, (list, tuple)) else type(groups).__name__
            raise ValueError(f"state_dict['param_groups']: expected a list of one dict, got {got}")
        group, where = groups[0], "state_dict['param_groups'][0]"
        _exact_keys(group, list(self._names) + ["params"], where, optional=("initial_lr",))
        n = len(self._params)
        if not isinstance(group["params"], (list, tuple)) or list(group["params"]) != list(range(n)):
            raise ValueError(f"{where}['params']: expected the parameter numbers {list(range(n))} (this optimizer has "
                             f"{n} parameters), got {group['params']!r}")
        new_group = dict(self._checked(group, where), params=list(range(n)))
        if "initial_lr" in group:
            new_group["initial_lr"] = _number(group["initial_lr"], "initial_lr", where, minimum=0)
        new_state = self._checked_state(state_dict["state"], new_group)
        self.param_groups[0].clear()
        self.param_groups[0].update(new_group)
        self.state = new_state

    def _checked_state(self, state: Any, group: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
        """The saved state checked against the parameters and the (loaded) hyperparameters -> a new state of copies."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state_dict['state']: expected a dict, got {type(state).__name__}")
        has_step, names = self._state_names(group)
        expected = (["step"] if has_step else []) + list(names)
        unused = [name for name in self._buffers if name not in names]
        result = {}
        for key, entry in state.items():
            k = _param_number(key, len(self._params))
            if k in result:
                raise ValueError(f"state_dict['state']: parameter {k} appears twice (as {key!r})")
            where = f"state_dict['state'][{key!r}]"
            if isinstance(entry, Mapping) and not entry:
                continue
            _exact_keys(entry, expected, where, optional=unused)
            p = self._params[k]
            s: dict[str, Any] = {}
            if has_step:
                s["step"] = _int(entry["step"], "step", where, minimum=1)
            for name in list(names) + [name for name in unused if name in entry]:
                a = entry[name]
                label = _label(name, where)
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{label}: expected a numpy.ndarray, got {type(a).__name__}")
                if a.dtype != p.dtype:
                    raise TypeError(f"{label}: expected dtype {p.dtype} (parameter {k}'s), got {a.dtype}")
                if a.shape != p.shape:
                    raise ValueError(f"{label}: expected shape {p.shape} (parameter {k}'s), got {a.shape}")
                s[name] = np.array(a, dtype=p.dtype, order="C", copy=True)
            result[k] = s
        return result

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.param_groups[0].items() if k != "params")
        return f"{type(self).__name__}({len(self._params)} parameters, {hyper})"


def _param_number(key: Any, n: int) -> int:
    """A state key: a parameter number, or its decimal string (as JSON leaves it), in [0, n)."""
    if isinstance(key, str) and key.isdigit():
        k = int(key)
    elif isinstance(key, numbers.Integral) and not isinstance(key, (bool, np.bool_)):
        k = int(key)
    else:
        k = None
    if k is None or not 0 <= k < n:
        raise ValueError(f"state_dict['state']: expected parameter numbers in [0, {n}) as keys, got {key!r}")
    return k


class SGD(_Optimizer):
    """torch.optim.SGD: stochastic gradient descent with optional momentum (heavy ball or Nesterov), dampening and
    L2 weight decay. The arguments, their order and defaults are torch 2.x's (lr=1e-3). State: ``momentum_buffer``
    when momentum != 0."""

    _names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    _buffers = ("momentum_buffer",)

    def __init__(self, model: Model, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False) -> None:
        super().__init__(model, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov)

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        h = {"lr": _number(values["lr"], "lr", where, minimum=0),
             "momentum": _number(values["momentum"], "momentum", where, minimum=0),
             "dampening": _number(values["dampening"], "dampening", where),
             "weight_decay": _number(values["weight_decay"], "weight_decay", where, minimum=0),
             "nesterov": _bool(values["nesterov"], "nesterov", where)}
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError(f"{_label('nesterov', where)}: Nesterov momentum expects momentum > 0 and dampening == 0, "
                             f"got momentum={h['momentum']!r} and dampening={h['dampening']!r}")
        return h

    @staticmethod
    def _state_names(group: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
        return False, ("momentum_buffer",) if group["momentum"] != 0 else ()

    _update = staticmethod(sgd_step)


_ADAM_NAMES = ("lr", "betas", "eps", "weight_decay", "amsgrad")
_ADAM_BUFFERS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def _adam_checked(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    betas = values["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"{_label('betas', where)}: expected a pair of numbers in [0, 1), got {betas!r}")
    return {"lr": _number(values["lr"], "lr", where, minimum=0),
            "betas": tuple(_number(b, f"betas[{k}]", where, minimum=0, below=1) for k, b in enumerate(betas)),
            "eps": _number(values["eps"], "eps", where, minimum=0),
            "weight_decay": _number(values["weight_decay"], "weight_decay", where, minimum=0),
            "amsgrad": _bool(values["amsgrad"], "amsgrad", where)}


def _adam_state_names(group: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
    return True, ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())


class Adam(_Optimizer):
    """torch.optim.Adam (L2 weight decay added to the gradient; amsgrad optional). State: ``step``, ``exp_avg``,
    ``exp_avg_sq`` (and ``max_exp_avg_sq`` with amsgrad)."""

    _names = _ADAM_NAMES
    _buffers = _ADAM_BUFFERS

    def __init__(self, model: Model, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False) -> None:
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        return _adam_checked(values, where)

    _state_names = staticmethod(_adam_state_names)
    _update = staticmethod(adam_step)


class AdamW(_Optimizer):
    """torch.optim.AdamW: Adam with decoupled weight decay (the parameter is multiplied by 1 - lr * weight_decay
    before the update). State as Adam's."""

    _names = _ADAM_NAMES
    _buffers = _ADAM_BUFFERS

    def __init__(self, model: Model, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        return _adam_checked(values, where)

    _state_names = staticmethod(_adam_state_names)

    @staticmethod
    def _update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], **hyperparameters: Any) -> None:
        adam_step(param, grad, state, decoupled_weight_decay=True, **hyperparameters)


class RMSprop(_Optimizer):
    """torch.optim.RMSprop (optionally centered, with momentum and L2 weight decay). State: ``step``,
    ``square_avg`` (and ``momentum_buffer`` when momentum > 0, ``grad_avg`` when centered)."""

    _names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    _buffers = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, model: Model, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False) -> None:
        super().__init__(model, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered)

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        return {"lr": _number(values["lr"], "lr", where, minimum=0),
                "alpha": _number(values["alpha"], "alpha", where, minimum=0),
                "eps": _number(values["eps"], "eps", where, minimum=0),
                "weight_decay": _number(values["weight_decay"], "weight_decay", where, minimum=0),
                "momentum": _number(values["momentum"], "momentum", where, minimum=0),
                "centered": _bool(values["centered"], "centered", where)}

    @staticmethod
    def _state_names(group: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
        return True, (("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ())
                      + (("grad_avg",) if group["centered"] else ()))

    _update = staticmethod(rmsprop_step)


# ----------------------------------------------------------------------------------------------------------------------
# Learning-rate schedulers.


def _checked_optimizer(optimizer: _Optimizer) -> _Optimizer:
    if not isinstance(optimizer, _Optimizer):
        raise TypeError(f"optimizer: expected a pylstm.optim optimizer (SGD, Adam, AdamW, RMSprop), got "
                        f"{type(optimizer).__name__}")
    return optimizer


def _number_list(value: Any, name: str, where: str, length: int) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise ValueError(f"{_label(name, where)}: expected a list of {length} numbers (one per param group), got "
                         f"{value!r}")
    return [_number(v, f"{name}[{k}]", where, minimum=0) for k, v in enumerate(value)]


class _LRScheduler:
    """What StepLR, ExponentialLR, CosineAnnealingLR and LinearLR share, as torch's LRScheduler: construction sets
    each group's ``initial_lr`` (if no scheduler did before) and takes one step of epoch 0; ``step()`` advances
    ``last_epoch`` and sets each group's lr to ``_next_lrs()``, which reads the current lr (the recursive forms, so
    that schedulers chain). A subclass names its arguments (``_names``) and checks them (``_checked``)."""

    _names: tuple[str, ...] = ()

    def __init__(self, optimizer: _Optimizer, **arguments: Any) -> None:
        self.optimizer = _checked_optimizer(optimizer)
        self._set_arguments(self._checked(arguments))
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        #: Each group's learning rate when the first scheduler was made.
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        #: Steps taken since construction (0 after it).
        self.last_epoch = -1
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """The arguments in `values` (a mapping holding ``_names``), checked -> a new dict of them."""
        raise NotImplementedError

    def _set_arguments(self: Any, arguments: Mapping[str, Any]) -> None:
        for name, value in arguments.items():
            setattr(self, name, value)

    def _next_lrs(self) -> list[float]:
        raise NotImplementedError

    def _lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one epoch (call it after ``optimizer.step()``) and set the optimizer's learning rates."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self._next_lrs()):
            group["lr"] = lr
        self._last_lr = self._lrs()

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler set last, one per param group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The arguments and counters, as JSON-serialisable values."""
        state = {name: getattr(self, name) for name in self._names}
        state.update(base_lrs=list(self.base_lrs), last_epoch=self.last_epoch, _step_count=self._step_count,
                     _last_lr=list(self._last_lr))
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Take the arguments and counters of ``state_dict`` after checking all of it (a bad one changes nothing)."""
        counters = ("base_lrs", "last_epoch", "_step_count", "_last_lr")
        _exact_keys(state_dict, list(self._names) + list(counters), "state_dict")
        where, groups = "state_dict", len(self.optimizer.param_groups)
        arguments = self._checked(state_dict, where)
        base_lrs = _number_list(state_dict["base_lrs"], "base_lrs", where, groups)
        last_lr = _number_list(state_dict["_last_lr"], "_last_lr", where, groups)
        last_epoch = _int(state_dict["last_epoch"], "last_epoch", where, minimum=0)
        step_count = _int(state_dict["_step_count"], "_step_count", where, minimum=1)
        self._set_arguments(arguments)
        self.base_lrs, self._last_lr, self.last_epoch, self._step_count = base_lrs, last_lr, last_epoch, step_count

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names)
        return f"{type(self).__name__}({arguments}, last_epoch={self.last_epoch})"


class StepLR(_LRScheduler):
    """torch.optim.lr_scheduler.StepLR: the learning rate times gamma every step_size epochs."""

    _names = ("step_size", "gamma")
    step_size: int
    gamma: float

    def __init__(self, optimizer: _Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        return {"step_size": _int(values["step_size"], "step_size", where, minimum=1),
                "gamma": _number(values["gamma"], "gamma", where, minimum=0)}

    def _next_lrs(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]


class ExponentialLR(_LRScheduler):
    """torch.optim.lr_scheduler.ExponentialLR: the learning rate times gamma every epoch."""

    _names = ("gamma",)
    gamma: float

    def __init__(self, optimizer: _Optimizer, gamma: float) -> None:
        super().__init__(optimizer, gamma=gamma)

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        return {"gamma": _number(values["gamma"], "gamma", where, minimum=0)}

    def _next_lrs(self) -> list[float]:
        if self._is_initial:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]


class CosineAnnealingLR(_LRScheduler):
    """torch.optim.lr_scheduler.CosineAnnealingLR: from the base learning rate down to eta_min along half a cosine
    over T_max epochs (then back up, and so on), by torch's recursive formula, which follows the closed form
    eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 up to rounding, and which chains with other
    schedulers."""

    _names = ("T_max", "eta_min")
    T_max: int
    eta_min: float

    def __init__(self, optimizer: _Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min)

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        return {"T_max": _int(values["T_max"], "T_max", where, minimum=1),
                "eta_min": _number(values["eta_min"], "eta_min", where, minimum=0)}

    def _next_lrs(self) -> list[float]:
        # torch's get_lr, term for term, so that the rounding is the same.
        if self._is_initial:
            return self._lrs()
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [lr + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, lr in zip(self.base_lrs, self._lrs())]
        return [(1 + math.cos(math.pi * self.last_epoch / self.T_max))
                / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
                * (lr - self.eta_min) + self.eta_min
                for lr in self._lrs()]


class LinearLR(_LRScheduler):
    """torch.optim.lr_scheduler.LinearLR: the learning rate times a factor going linearly from start_factor to
    end_factor over total_iters epochs (a warm-up when start_factor < end_factor), by torch's recursive formula."""

    _names = ("start_factor", "end_factor", "total_iters")
    start_factor: float
    end_factor: float
    total_iters: int

    def __init__(self, optimizer: _Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        super().__init__(optimizer, start_factor=start_factor, end_factor=end_factor, total_iters=total_iters)

    def _checked(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        return {"start_factor": _number(values["start_factor"], "start_factor", where, above=0, maximum=1),
                "end_factor": _number(values["end_factor"], "end_factor", where, minimum=0, maximum=1),
                "total_iters": _int(values["total_iters"], "total_iters", where, minimum=1)}

    def _next_lrs(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._lrs()
        change = self.end_factor - self.start_factor
        return [lr * (1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change))
                for lr in self._lrs()]


class ReduceLROnPlateau:
    """torch.optim.lr_scheduler.ReduceLROnPlateau: ``step(metric)`` once per epoch; when the metric has not improved
    (by threshold, relative or absolute) for more than ``patience`` epochs, each learning rate becomes
    max(lr * factor, min_lr) (unless that changes it by eps or less), and ``cooldown`` epochs follow in which bad
    epochs are not counted. In its state dict, ``best`` is None until a metric has improved on nothing (torch's
    +-inf), so that the state dict is plain JSON."""

    _names = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lrs", "eps")
    mode: str
    factor: float
    patience: int
    threshold: float
    threshold_mode: str
    cooldown: int
    min_lrs: list[float]
    eps: float

    def __init__(self, optimizer: _Optimizer, mode: Literal["min", "max"] = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: Literal["rel", "abs"] = "rel",
                 cooldown: int = 0, min_lr: Union[float, Sequence[float]] = 0, eps: float = 1e-8) -> None:
        self.optimizer = _checked_optimizer(optimizer)
        groups = len(optimizer.param_groups)
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * groups
        self._set_arguments(self._checked(
            {"mode": mode, "factor": factor, "patience": patience, "threshold": threshold,
             "threshold_mode": threshold_mode, "cooldown": cooldown, "min_lrs": min_lrs, "eps": eps},
            names={"min_lrs": "min_lr"}))
        #: Epochs (metrics) seen so far.
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        #: The best metric so far (+inf in mode "min", -inf in mode "max" before any).
        self.best = self._worst()
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _checked(self, values: Mapping[str, Any], where: str = "", names: Optional[Mapping[str, str]] = None
                 ) -> dict[str, Any]:
        def label(name: str) -> str:
            return (names or {}).get(name, name)
        return {"mode": _choice(values["mode"], label("mode"), ("min", "max"), where),
                "factor": _number(values["factor"], label("factor"), where, minimum=0, below=1),
                "patience": _int(values["patience"], label("patience"), where, minimum=0),
                "threshold": _number(values["threshold"], label("threshold"), where, minimum=0),
                "threshold_mode": _choice(values["threshold_mode"], label("threshold_mode"), ("rel", "abs"), where),
                "cooldown": _int(values["cooldown"], label("cooldown"), where, minimum=0),
                "min_lrs": _number_list(values["min_lrs"], label("min_lrs"), where,
                                        len(self.optimizer.param_groups)),
                "eps": _number(values["eps"], label("eps"), where, minimum=0)}

    _set_arguments = _LRScheduler._set_arguments

    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics: float) -> None:
        """Count one epoch with this metric (a number) and reduce the learning rates if it is time to."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"metrics: expected a number, got {type(metrics).__name__}") from None
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in a cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates after the last step, one per param group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The arguments and counters, as JSON-serialisable values (``best``: None for torch's +-inf)."""
        state = {name: getattr(self, name) for name in self._names}
        state["min_lrs"] = list(self.min_lrs)
        state.update(best=None if self.best == self._worst() else self.best, num_bad_epochs=self.num_bad_epochs,
                     cooldown_counter=self.cooldown_counter, last_epoch=self.last_epoch,
                     _last_lr=list(self._last_lr))
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Take the arguments and counters of ``state_dict`` after checking all of it (a bad one changes nothing)."""
        counters = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "_last_lr")
        _exact_keys(state_dict, list(self._names) + list(counters), "state_dict")
        where = "state_dict"
        arguments = self._checked(state_dict, where)
        best = state_dict["best"]
        if best is not None:
            if isinstance(best, (bool, np.bool_)) or not isinstance(best, numbers.Real):
                raise TypeError(f"state_dict['best']: expected None or a number, got {type(best).__name__}")
            best = float(best)
        counts = {name: _int(state_dict[name], name, where, minimum=0)
                  for name in ("num_bad_epochs", "cooldown_counter", "last_epoch")}
        last_lr = _number_list(state_dict["_last_lr"], "_last_lr", where, len(self.optimizer.param_groups))
        self._set_arguments(arguments)
        self.best = self._worst() if best is None else best
        self._set_arguments(counts)
        self._last_lr = last_lr

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names)
        return f"ReduceLROnPlateau({arguments}, best={self.best!r}, last_epoch={self.last_epoch})"


# ----------------------------------------------------------------------------------------------------------------------
# Gradient clipping.


def _norm_type(norm_type: Union[float, str]) -> float:
    if isinstance(norm_type, str) and norm_type == "inf":
        return math.inf
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type: expected a number > 0 or inf, got {type(norm_type).__name__}")
    p = float(norm_type)
    if not p > 0:
        raise ValueError(f"norm_type: expected a number > 0 or inf, got {norm_type!r}")
    return p


def clip_grads_by_norm(grads: Sequence[np.ndarray], max_norm: float, norm_type: Union[float, Literal["inf"]] = 2.0,
                       error_if_nonfinite: bool = False) -> float:
    """torch.nn.utils.clip_grad_norm_ over a list of gradient arrays (see pylstm.reference.clip_grad_norm): returns
    the total norm before clipping (a float, computed in float64), and multiplies every gradient in place by
    max_norm / (total + 1e-6) when that is below 1."""
    max_norm = _number(max_norm, "max_norm", minimum=0)
    p = _norm_type(norm_type)
    error_if_nonfinite = _bool(error_if_nonfinite, "error_if_nonfinite")
    if p == math.inf:
        norms = [_core.max_abs(g) for g in grads]
        total = math.nan if any(math.isnan(v) for v in norms) else max(norms, default=0.0)
    elif p == 2.0:
        total = math.sqrt(sum(_core.sum_squares(g) for g in grads))
    else:
        total = sum(_core.sum_abs_pow(g, p) for g in grads) ** (1.0 / p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {p} of the gradients is non-finite ({total}), so it cannot be "
                           "clipped; with error_if_nonfinite=False the gradients are scaled by it anyway (as torch)")
    clip_coef = max_norm / (total + 1e-6)
    if not clip_coef >= 1.0:  # a NaN factor scales too: it spreads into every gradient, as in torch
        for g in grads:
            _core.scale_(g, clip_coef)
    return total


def clip_grads_by_value(grads: Sequence[np.ndarray], clip_value: float) -> None:
    """torch.nn.utils.clip_grad_value_ over a list of gradient arrays (see pylstm.reference.clip_grad_value): each
    clamped in place to [-clip_value, clip_value]; NaN stays NaN."""
    clip_value = _number(clip_value, "clip_value", minimum=0)
    for g in grads:
        _core.clamp_(g, clip_value)


def _gradients(model: Model) -> list[np.ndarray]:
    """The gradient arrays of a model (a module or a list or tuple of modules), each once."""
    return _parameters(model)[1]


def clip_grad_norm(model: Model, max_norm: float, norm_type: Union[float, Literal["inf"]] = 2.0,
                   error_if_nonfinite: bool = False) -> float:
    """Clip the gradients of ``model`` (a module or a list or tuple of modules) in place, as
    torch.nn.utils.clip_grad_norm_: the total ``norm_type``-norm of all gradients together (``math.inf``: the largest
    |g|) is returned as a float, and when it exceeds ``max_norm`` every gradient is multiplied by
    max_norm / (total + 1e-6). A NaN or infinite total raises RuntimeError with ``error_if_nonfinite``, and otherwise
    reaches the gradients, as in torch."""
    return clip_grads_by_norm(_gradients(model), max_norm, norm_type, error_if_nonfinite)


def clip_grad_value(model: Model, clip_value: float) -> None:
    """Clamp every gradient of ``model`` (a module or a list or tuple of modules) in place to [-clip_value,
    clip_value], as torch.nn.utils.clip_grad_value_ (clip_value >= 0)."""
    clip_grads_by_value(_gradients(model), clip_value)

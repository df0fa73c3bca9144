"""Loss functions of a training step, each returning ``(loss, grad)``: the loss (a float, or per element for
``reduction="none"``) and its gradient with respect to the first argument, ready for a model's ``backward``.

Their semantics and values are PyTorch's (``torch.nn.functional.cross_entropy``, ``mse_loss``,
``binary_cross_entropy_with_logits``); ``pylstm.reference`` holds their readable NumPy twins. With
``reduction="none"``, ``grad`` is the gradient of the sum of the per-element losses.
"""
from __future__ import annotations

from typing import Optional, Union, cast

import numpy as np
import numpy.typing as npt

from . import _checks as check
from . import functional as F
from .sequence import check_lengths, steps_past
from ._types import FloatArray, Reduction

#: What a loss returns: (the loss, a float or per element with reduction="none"; its gradient).
LossAndGrad = tuple[Union[float, FloatArray], FloatArray]

_REDUCTIONS = ("mean", "sum", "none")


def _reduction(value: str) -> Reduction:
    if value not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {value!r}")
    return cast(Reduction, value)


def _float_array(value: npt.ArrayLike, name: str) -> FloatArray:
    """A C-contiguous float32/float64 ndarray (other array-likes are converted to float64; an ndarray of another
    dtype is an error, as a silent cast of a large array would be)."""
    if isinstance(value, np.ndarray):
        if value.dtype not in check.DTYPES:
            raise TypeError(f"{name}: expected dtype float32 or float64, got {value.dtype}")
        return check.aligned(np.ascontiguousarray(value))
    return check.aligned(np.ascontiguousarray(check.array(value, name, "an array of floats", dtype=np.float64)))


def _int_array(value: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    arr = check.array(value, name, "an array of integer class indices")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an array of integer class indices, got dtype {arr.dtype}")
    return check.aligned(np.ascontiguousarray(arr, dtype=np.int64))


def cross_entropy(logits: npt.ArrayLike, targets: npt.ArrayLike, *, ignore_index: int = -100,
                  reduction: Reduction = "mean", label_smoothing: float = 0.0,
                  lengths: Optional[npt.ArrayLike] = None, batch_first: bool = False) -> LossAndGrad:
    """Softmax cross-entropy of logits (..., V) against integer targets (...), torch's F.cross_entropy with class
    indices -> ``(loss, grad)``, grad like logits.

    logits are (T, B, V) (or (B, T, V) with ``batch_first``) or (N, V); targets have logits' shape without the last
    axis. Targets equal to ``ignore_index`` do not count, nor, with ``lengths`` (B,) (3-D logits only), the steps
    past each sequence's length: the mean is over the real tokens, and their rows of grad are zero.
    ``label_smoothing`` in [0, 1] mixes the target with the uniform distribution, as torch's. Computed by a C++
    kernel (log-softmax, loss and gradient in one pass over each row), stable for logits of any size.
    """
    logits = _float_array(logits, "logits")
    if logits.ndim < 2:
        raise ValueError(f"logits: expected shape (..., V) with at least 2 axes ((N, V) or (T, B, V)), "
                         f"got {logits.shape}")
    targets = _int_array(targets, "targets")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets: expected shape {logits.shape[:-1]} (logits.shape[:-1]), got {targets.shape}")
    ignore_index = check.int64(ignore_index, "ignore_index")
    smoothing = check.probability(label_smoothing, "label_smoothing")
    reduction = _reduction(reduction)
    check.boolean(batch_first, "batch_first")
    if lengths is not None:
        if logits.ndim != 3:
            raise ValueError(f"lengths: needs logits of shape (T, B, V) or (B, T, V), got {logits.shape}")
        steps, batch = (targets.shape[1], targets.shape[0]) if batch_first else targets.shape
        checked_lengths = check_lengths(lengths, batch, steps, "logits")
        targets = np.where(steps_past(checked_lengths, steps, batch_first), ignore_index, targets)
    return F.cross_entropy(logits, targets, ignore_index=int(ignore_index), label_smoothing=smoothing,
                           reduction=reduction)


def _pair(a: npt.ArrayLike, b: npt.ArrayLike, names: tuple[str, str]) -> tuple[FloatArray, FloatArray]:
    """The prediction and the target, each in its own dtype: the loss is computed in the wider of the two (as
    NumPy and torch promote; a float64 target cast to float32 predictions could overflow), its gradient returned in
    the prediction's."""
    a, b = _float_array(a, names[0]), _float_array(b, names[1])
    if a.shape != b.shape:
        raise ValueError(f"{names[1]}: expected the shape of {names[0]} {a.shape}, got {b.shape}")
    return a, b


def _reduce(values: FloatArray, reduction: Reduction, dvalues: FloatArray) -> LossAndGrad:
    if reduction == "none":
        return values, dvalues
    if reduction == "sum":
        return float(values.sum(dtype=np.float64)), dvalues
    n = values.size
    return float(values.sum(dtype=np.float64)) / n if n else float("nan"), dvalues / max(n, 1)


def mse(pred: npt.ArrayLike, target: npt.ArrayLike, reduction: Reduction = "mean") -> LossAndGrad:
    """Squared error (pred - target)^2, torch's F.mse_loss -> ``(loss, grad)``, grad like pred."""
    pred, target = _pair(pred, target, ("pred", "target"))
    diff = pred - target
    loss, grad = _reduce(diff * diff, _reduction(reduction), 2 * diff)
    return loss, grad.astype(pred.dtype, copy=False)


def binary_cross_entropy_with_logits(logits: npt.ArrayLike, targets: npt.ArrayLike, reduction: Reduction = "mean"
                                     ) -> LossAndGrad:
    """-(y log s(x) + (1 - y) log(1 - s(x))) with s the sigmoid, torch's F.binary_cross_entropy_with_logits ->
    ``(loss, grad)``, grad like logits. Computed as max(x, 0) - x y + log(1 + exp(-|x|)): no overflow."""
    logits, targets = _pair(logits, targets, ("logits", "targets"))
    reduction = _reduction(reduction)
    e = np.exp(-np.abs(logits))
    values = np.maximum(logits, 0) - logits * targets + np.log1p(e)
    sig = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    loss, grad = _reduce(values, reduction, sig - targets)
    return loss, grad.astype(logits.dtype, copy=False)

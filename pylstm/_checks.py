"""Argument checks shared by every module class: each returns the value in its canonical type or raises a
TypeError/ValueError that names the argument, what was expected and what came."""
import math
import os
import warnings
from typing import Any

import numpy as np

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def array(value: Any, name: str, expected: str = "an array", **asarray: Any) -> np.ndarray:
    """np.asarray(value, **asarray), or a TypeError naming the argument (`expected` what) where NumPy cannot make
    such an array of it, or torch refuses (a tensor that requires grad raises RuntimeError)."""
    try:
        return np.asarray(value, **asarray)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__} ({exc})") from exc


def aligned(a):
    """a, or an aligned copy of it where its data is not aligned to its element size (a view of a byte buffer at an
    odd offset): the kernels read whole aligned elements, and a strided array is copied anyway."""
    return a if a.flags.aligned else a.copy()


def memory_bytes():
    """The machine's physical memory in bytes (int64's largest value where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return np.iinfo(np.int64).max


def parameters_fit(count, dtype, sizes):
    """Refuses, before anything is allocated, sizes whose ``count`` parameter values and as many gradients (a module
    allocates both) would take more bytes than the machine has: a ValueError naming the largest of ``sizes`` (the
    size arguments, name -> value), rather than a build that runs for minutes or ends in MemoryError."""
    nbytes = 2 * count * np.dtype(dtype).itemsize
    limit = min(memory_bytes(), np.iinfo(np.int64).max)
    if nbytes > limit:
        name = max(sizes, key=sizes.get)
        given = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise ValueError(f"{name}: expected sizes whose parameters fit in memory, got {name}={sizes[name]} ({given}): "
                         f"{count} parameters and their gradients would take {nbytes} bytes, more than this machine's "
                         f"{limit} bytes of memory")


def boolean(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def int64(value, name):
    """An int (not a bool) within int64's range -> int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if not -2 ** 63 <= value < 2 ** 63:
        raise ValueError(f"{name}: expected an int64, got {value}")
    return int(value)


def text(value, name, choices):
    """A str, one of `choices` (checked here, or by the kernel that reads it) -> itself."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {type(value).__name__}")
    return value


def float_or_none(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected None or a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return number


def probability(value, name):
    """A number in [0, 1] -> float."""
    if value is None:
        raise TypeError(f"{name}: expected a probability in [0, 1], got None")
    try:
        number = float_or_none(value, name)
    except ValueError:  # not finite
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {value}")
    return number


def seed(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"seed: expected None or a non-negative int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"seed: expected None or a non-negative int, got {value}")
    return int(value)


def float_dtype(dtype):
    # None is refused rather than passed to np.dtype, which would read it as float64 (not the classes' default).
    # The membership test must not see a None either: np.dtype("float64") == None is True.
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt not in DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return DTYPES[DTYPES.index(dt)]


# ----------------------------------------------------------------------------------------------------------------------
# The recurrent modules' arguments: dropout with one layer, states and state gradients.


def dropout_layers(dropout, num_layers):
    """Dropout acts between stacked layers, so with one layer it does nothing: warned of, as torch warns."""
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout: acts between stacked layers (on the outputs of all but the last), so a non-zero "
                      f"dropout expects num_layers greater than 1, got dropout={dropout} and num_layers={num_layers}",
                      UserWarning, stacklevel=4)


def exact_state(state, shapes, dtype):
    """The streaming fast path (a state the module returned): the parts as they are when state is exactly such arrays
    (plain C-contiguous, aligned ndarrays of these shapes and dtype; a tuple, or for one part the array itself), else
    None.
    An explicit loop: a generator under all() costs a measurable part of a batch-1 step."""
    n = len(shapes)
    parts = state if type(state) is tuple else (state,) if n == 1 and type(state) is np.ndarray else None
    if parts is None or len(parts) != n:
        return None
    for part, shape in zip(parts, shapes):
        if not (type(part) is np.ndarray and part.shape == shape and part.dtype == dtype):
            return None
        flags = part.flags  # (made anew at each access)
        if not (flags.c_contiguous and flags.aligned):
            return None
    return parts


def state(module, value, name, state_names, shapes, meanings):
    """A state or state gradient as the caller gives it (h, or a pair (h, c) for the LSTM; None or a None part means
    zeros) -> a tuple of the module's checked arrays or Nones, one per part, of the given shapes."""
    parts: tuple[Any, ...]
    if len(state_names) == 1:
        parts = (value,)
    elif value is None:
        parts = (None,) * len(state_names)
    elif isinstance(value, (tuple, list)) and len(value) == len(state_names):
        parts = tuple(value)
    else:
        raise TypeError(f"{name}: expected a pair ({', '.join(state_names)}) of arrays "
                        f"{' and '.join(map(str, shapes))} or None, got {type(value).__name__}")
    prefix = "d" if name.startswith("d") else ""
    return tuple(None if part is None else
                 module._checked(part, name if len(state_names) == 1 else f"{name}[{k}] ({prefix}{state_names[k]})",
                                 shape, meaning)
                 for k, (part, shape, meaning) in enumerate(zip(parts, shapes, meanings)))

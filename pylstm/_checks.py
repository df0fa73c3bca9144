"""Argument checks shared by every module class: each returns the value in its canonical type or raises a
TypeError/ValueError that names the argument, what was expected and what came."""
import numpy as np

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def boolean(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def float_or_none(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected None or a number, got {type(value).__name__}")
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return float(value)


def probability(value, name):
    """A number in [0, 1] -> float."""
    if value is None:
        raise TypeError(f"{name}: expected a probability in [0, 1], got None")
    value = float_or_none(value, name)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {value}")
    return value


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

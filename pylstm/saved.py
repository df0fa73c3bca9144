"""What a training-mode forward keeps for its backward, one record type per cell.

The kernel functional core (pylstm.functional) and the NumPy reference (pylstm.reference) produce and consume the
same records, so a forward of one can be fed to the backward of the other in tests.

Shapes: T steps, B batch rows, I inputs, H hidden units.
``x``, ``out`` and the per-step arrays are in time order in either direction (``reverse``: the forward ran the steps
from the last, and the backward does too).
``x``, ``h0``, ``c0`` and ``out`` are references to the arrays of the forward call (not copies): backward reads them,
so they must not be modified in place in between (``out`` is returned read-only in training mode for that reason).
"""
from typing import NamedTuple, Optional

import numpy as np


class LSTMSaved(NamedTuple):
    x: np.ndarray  # (T, B, I) the input
    h0: np.ndarray  # (B, H) initial hidden state
    c0: np.ndarray  # (B, H) initial cell state
    out: np.ndarray  # (T, B, H) h_t for every step
    gates: np.ndarray  # (T, B, 4H) post-activation gates i, f, g, o
    cells: np.ndarray  # (T, B, H) c_t for every step
    batch_sizes: Optional[np.ndarray] = None  # (T,) int64 for the packed layout (rows (N, .)), None for (T, B, .)
    reverse: bool = False  # the direction: the steps ran from the last (uniform layout only)


class GRUSaved(NamedTuple):
    x: np.ndarray  # (T, B, I)
    h0: np.ndarray  # (B, H)
    out: np.ndarray  # (T, B, H)
    # reset_after=True: (T, B, 4H) r, z, n and hn = W_hn h_{t-1} + b_hn (needed for dr);
    # reset_after=False: (T, B, 3H) r, z, n.
    gates: np.ndarray
    reset_after: bool
    batch_sizes: Optional[np.ndarray] = None
    reverse: bool = False


class RNNSaved(NamedTuple):
    x: np.ndarray  # (T, B, I)
    h0: np.ndarray  # (B, H)
    out: np.ndarray  # (T, B, H); the activation's derivative is computed from h_t itself
    nonlinearity: str  # "tanh" or "relu"
    batch_sizes: Optional[np.ndarray] = None
    reverse: bool = False


def saved_bytes_per_step(saved) -> int:
    """Bytes the saved record holds per time step beyond x and out (which the caller owns anyway); in the packed
    layout, where steps run fewer rows as sequences end, the average over the steps."""
    if isinstance(saved, LSTMSaved):
        held = saved.gates.nbytes + saved.cells.nbytes
    elif isinstance(saved, GRUSaved):
        held = saved.gates.nbytes
    elif isinstance(saved, RNNSaved):
        return 0
    else:
        raise TypeError(f"saved: expected LSTMSaved, GRUSaved or RNNSaved, got {type(saved).__name__}")
    steps = saved.x.shape[0] if saved.batch_sizes is None else len(saved.batch_sizes)
    return held // steps if steps else 0

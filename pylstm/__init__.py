"""pylstm: LSTM, GRU and RNN layers on the CPU, run by C++ kernels and checked against a NumPy reference, with
the blocks, losses and optimizers to train models of them.

    layers (pylstm.LSTM, GRU, RNN; LSTMCell, GRUCell, RNNCell)  ->  pylstm.functional  ->  pylstm._core (pybind11)
    blocks (Embedding, Linear, Dropout, Sequential), pylstm.losses  ->        "                 ->  csrc/ kernels
        |  pylstm.sequence: padded batch + lengths <-> packed rows
    pylstm.cells: each cell's facts (gates, state parts, parameters, saved record) and its forward and backward
    pylstm.optim: optimizers, learning-rate schedulers, gradient clipping (C++ update kernels)
    pylstm.fit (pylstm.training): the training loop; pylstm.sample (pylstm.generation); pylstm.text: vocabulary
    pylstm.reference: the readable NumPy twin of pylstm.functional and of the optimizers' updates
    pylstm.checkpoint (save, load), pylstm.padding (pad_sequences, unpad)
"""
from __future__ import annotations

try:
    from . import _core  # noqa: F401  (the compiled extension; everything below needs it)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"pylstm's compiled extension pylstm._core could not be imported ({exc}). Install pylstm with "
        "`python -m pip install .` from the source tree, or build it in place for development with "
        "`python setup.py build_ext --inplace`; a C++17 compiler is needed."
    ) from exc

import os as _os  # noqa: E402

from . import cells, functional, losses, optim, reference, text  # noqa: E402
from ._core import get_num_threads, release_memory, set_num_threads, supported_isas  # noqa: E402
from .blocks import Dropout, Embedding, Linear, Sequential  # noqa: E402
from .checkpoint import load, save  # noqa: E402
from .generation import sample  # noqa: E402
from .layers import GRU, LSTM, RNN  # noqa: E402
from .optim import clip_grad_norm, clip_grad_value  # noqa: E402
from .padding import pad_sequences, unpad  # noqa: E402
from .step_cells import GRUCell, LSTMCell, RNNCell  # noqa: E402
from .training import EarlyStopping, History, fit  # noqa: E402

__version__ = "0.1.0"
__all__ = ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "Embedding", "Linear", "Dropout", "Sequential",
           "fit", "History", "EarlyStopping", "sample", "save", "load", "pad_sequences", "unpad", "functional",
           "losses", "optim", "reference", "text", "clip_grad_norm", "clip_grad_value", "isa", "supported_isas",
           "cache_sizes", "get_num_threads", "set_num_threads", "release_memory", "__version__"]


def isa() -> str:
    """The instruction set whose kernels run: 'scalar', 'avx2' or 'avx512' (the best this CPU supports, chosen once
    at import from CPUID, unless the environment variable PYLSTM_ISA named another)."""
    return _core.isa()


def _isa_from_environment() -> None:
    name = _os.environ.get("PYLSTM_ISA")
    if name:
        try:
            _core.set_isa(name)
        except ValueError as exc:
            raise ValueError(f"PYLSTM_ISA={name!r}: {exc}") from None


_isa_from_environment()


def cache_sizes() -> dict:
    """The CPU's cache sizes in bytes that the kernels' scheduling choices follow (threads of a time loop, work
    items, streamed stores; never the order of any sum, so results do not depend on them): ``{'l1d': one core's L1
    data cache, 'l2': one core's L2, 'l3': the shared L3 (0 if none), 'source': where they came from}``, the source
    being 'override' (the environment variable PYLSTM_CACHE_SIZES, e.g. ``32K,512K,32M`` for L1d, L2, L3), 'sysfs',
    'cpuid' or 'default'. Read once at import; a malformed PYLSTM_CACHE_SIZES makes the import raise ValueError."""
    return _core.cache_sizes()


cache_sizes()  # raises here, at import, when PYLSTM_CACHE_SIZES is malformed

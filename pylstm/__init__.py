"""pylstm: LSTM, GRU and RNN layers on the CPU, run by C++ kernels and checked against a NumPy reference.

    layers (pylstm.LSTM, GRU, RNN)  ->  pylstm.functional  ->  pylstm._core (pybind11)  ->  csrc/ kernels
                                        pylstm.reference: the readable NumPy twin of pylstm.functional
"""
try:
    from . import _core  # noqa: F401  (the compiled extension; everything below needs it)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"pylstm's compiled extension pylstm._core could not be imported ({exc}). Install pylstm with "
        "`python -m pip install .` from the source tree, or build it in place for development with "
        "`python setup.py build_ext --inplace`; a C++17 compiler is needed."
    ) from exc

from . import functional, reference  # noqa: E402
from .layers import GRU, LSTM, RNN  # noqa: E402

__version__ = "0.1.0"
__all__ = ["LSTM", "GRU", "RNN", "functional", "reference", "__version__"]

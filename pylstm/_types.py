"""The type aliases of pylstm's annotations (for type checkers only: nothing here is checked at run time)."""
from __future__ import annotations

from typing import Any, Literal, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

#: An array pylstm computes and returns: float32 or float64, as the module's dtype.
FloatArray = npt.NDArray[np.floating[Any]]
#: Integer arrays returned (ids, lengths).
IntArray = npt.NDArray[np.int64]
#: The dtypes of a module's parameters and arrays.
DTypeLike = Union[Literal["float32", "float64"], np.dtype[Any], type]
#: A module's recurrent state as passed in: None (zeros), h, or for the LSTM a pair (h, c) whose parts may be None.
StateLike = Union[None, npt.ArrayLike, Tuple[Optional[npt.ArrayLike], Optional[npt.ArrayLike]]]
#: A state as returned: h, or for the LSTM a pair (h, c).
State = Union[FloatArray, Tuple[FloatArray, FloatArray]]
#: The reductions of the losses.
Reduction = Literal["mean", "sum", "none"]

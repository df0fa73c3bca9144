"""Fixtures shared by the test modules: the instruction-set path (ISA) the kernels run on, and their thread count.

* ``isa``: parametrized over ``pylstm.supported_isas()`` (scalar first, then e.g. avx2 and avx512): a test that
  takes it runs once per ISA this build and CPU can run, with that ISA active (``pylstm._core.set_isa``), and the
  previously active one restored afterwards. Its value is the ISA's name.
* ``num_threads``: a function ``num_threads(n)`` that sets the kernels' thread count for the rest of the test; the
  count the test started with is restored afterwards whatever the test did.

A test that needs neither runs on the ISA chosen at import (the best one, or PYLSTM_ISA's) with the default threads.
"""
import pytest

import pylstm
from pylstm import _core

ISAS = pylstm.supported_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test with the kernels of one supported ISA; yields its name."""
    previous = pylstm.isa()
    _core.set_isa(request.param)
    try:
        yield request.param
    finally:
        _core.set_isa(previous)


@pytest.fixture
def num_threads():
    """-> set(n): sets the kernels' thread count for this test; the previous count is restored afterwards."""
    previous = pylstm.get_num_threads()
    try:
        yield pylstm.set_num_threads
    finally:
        pylstm.set_num_threads(previous)

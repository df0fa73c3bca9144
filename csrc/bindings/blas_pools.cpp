// Who may stop other libraries' idle BLAS threads (primitives/blas_pools.h), and its facts for tests.
#include "primitives/blas_pools.h"

#include <Python.h>
#include <pybind11/stl.h>

#include "bindings/parts.h"

namespace pylstm {

// True when this interpreter has a single Python thread: the caller's, about to release the GIL for a kernel. Then
// no NumPy call can be running or start (none runs without a Python thread, and no Python code runs to start one)
// while blas_thread_shutdown_ runs. Any other Python thread (a data loader, a progress bar's monitor, a notebook's
// kernel threads) might be inside a NumPy call with the GIL released, so the pools are then left alone. Read with the
// GIL held, while no thread of this interpreter can end.
bool only_python_thread() {
  int threads = 0;
  for (PyInterpreterState* interp = PyInterpreterState_Head(); interp != nullptr;
       interp = PyInterpreterState_Next(interp))
    for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr; t = PyThreadState_Next(t))
      if (++threads > 1) return false;
  return threads == 1;
}

void bind_blas_pools(pybind11::module_& m) {
  m.def("_blas_pools", [] { return pybind11::make_tuple(blas_pool_libraries(), blas_pools_quieted()); },
        "-> (paths of the loaded OpenBLAS libraries whose idle spin pylstm shortens before its own threads start, "
        "times it stopped their threads so far) (for tests).");
}

}  // namespace pylstm

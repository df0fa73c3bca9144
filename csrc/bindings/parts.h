// The parts of pylstm._core, each adding its functions to the module (bindings/module.cpp defines the module).
#pragma once
#include <pybind11/pybind11.h>

#include "primitives/blas_pools.h"

namespace pylstm {

// Blocks and losses of a training step: linear, embedding, cross-entropy (bindings/training.cpp).
void bind_training(pybind11::module_& m);
// Optimizer updates and gradient tools (bindings/optim.cpp).
void bind_optimizers(pybind11::module_& m);
// Other libraries' idle BLAS threads, given a short idle spin before pylstm's threads start (bindings/blas_pools.cpp).
void bind_blas_pools(pybind11::module_& m);
bool only_python_thread();  // (with the GIL held)

// A kernel call's scope: decides, with the GIL held, whether the kernel may stop other libraries' idle BLAS threads
// (BlasQuietPermit), then releases the GIL until the scope ends.
class KernelCall {
 public:
  KernelCall() : permit_(only_python_thread()) {}

 private:
  BlasQuietPermit permit_;
  pybind11::gil_scoped_release release_;
};

}  // namespace pylstm

// The parts of pylstm._core, each adding its functions to the module (bindings/module.cpp defines the module).
#pragma once
#include <pybind11/pybind11.h>

namespace pylstm {

// Blocks and losses of a training step: linear, embedding, cross-entropy (bindings/training.cpp).
void bind_training(pybind11::module_& m);
// Optimizer updates and gradient tools (bindings/optim.cpp).
void bind_optimizers(pybind11::module_& m);
// Other libraries' idle BLAS threads, stopped before pylstm's threads start (bindings/blas_pools.cpp).
void bind_blas_pools(pybind11::module_& m);

}  // namespace pylstm

// A layer's weights as the time loops take them, and their gradients; each cell's own weights and gradients
// (cells/<cell>/<cell>.h) are these, plus its extra parts. Shapes in the letters of shape.h.
#pragma once

namespace pylstm {

template <typename T>
struct LayerWeights {
  const T* w_ih = nullptr;  // (G*H, I)
  const T* w_hh = nullptr;  // (G*H, P)
  const T* b_ih = nullptr;  // (G*H,); both biases null for a layer without bias
  const T* b_hh = nullptr;  // (G*H,)
};

// Accumulated (+=) by a backward pass.
template <typename T>
struct LayerGrads {
  T* dw_ih = nullptr;  // (G*H, I)
  T* dw_hh = nullptr;  // (G*H, P)
  T* db_ih = nullptr;  // (G*H,); both null for a layer without bias
  T* db_hh = nullptr;  // (G*H,)
};

}  // namespace pylstm

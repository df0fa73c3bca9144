#pragma once
#include <cstdint>

namespace pylstm {

// Sizes of one layer, one direction, over a whole sequence. Every array the sequence kernels take is
// C-contiguous (row-major) with the shape its comment gives in these letters:
//   T = steps, B = batch, I = input, H = hidden; G = gates per cell (LSTM 4, GRU 3, RNN 1).
// Weights and biases are laid out as PyTorch's: weight_ih (G*H, I), weight_hh (G*H, H), biases (G*H,), gate
// blocks stacked in PyTorch's order (LSTM i, f, g, o; GRU r, z, n).
struct SeqShape {
  int64_t steps;
  int64_t batch;
  int64_t input;
  int64_t hidden;
};

}  // namespace pylstm

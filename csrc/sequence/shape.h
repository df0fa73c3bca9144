#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pylstm {

// Sizes of one layer, one direction, over a whole sequence. Every array the sequence kernels take is
// C-contiguous (row-major) with the shape its comment gives in these letters:
//   T = steps, B = batch, I = input, H = hidden; G = gates per cell (LSTM 4, GRU 3, RNN 1);
//   P = the width of h: H, or the projection size of an LSTM with a projection (LSTMP);
//   R = the rows of a sequence: T*B, or N = sum(batch_sizes) in the packed layout.
// Weights and biases are laid out as PyTorch's: weight_ih (G*H, I), weight_hh (G*H, P), biases (G*H,), gate
// blocks stacked in PyTorch's order (LSTM i, f, g, o; GRU r, z, n).
//
// Two layouts of a sequence's rows (x, out, dout, dx and the saved per-step arrays):
//   uniform (batch_sizes null): (T, B, .), step t's rows at t*B;
//   packed (PyTorch's PackedSequence): batch_sizes (T,) non-increasing, in [0, B]; the batch rows sorted longest
//   first; step t runs the first batch_sizes[t] rows, stored at offset sum(batch_sizes[:t]). A row that does not
//   run at a step keeps its state; its final state is its state after its own last step (h0, c0 if it never runs).
struct SeqShape {
  int64_t steps;
  int64_t batch;
  int64_t input;
  int64_t hidden;
  const int64_t* batch_sizes = nullptr;  // (T,) for the packed layout, null for the uniform one
  int64_t proj = 0;                      // LSTM only: P of the projection h = W_hr m, 0 for none

  int64_t h_width() const { return proj > 0 ? proj : hidden; }  // P
};

// Where each step's rows are, in either layout.
class StepRows {
 public:
  explicit StepRows(const SeqShape& s) : batch_(s.batch), sizes_(s.batch_sizes) {
    if (sizes_ != nullptr) {
      offsets_.assign(static_cast<size_t>(s.steps) + 1, 0);
      for (int64_t t = 0; t < s.steps; ++t) offsets_[t + 1] = offsets_[t] + sizes_[t];
    }
    total_ = sizes_ != nullptr ? offsets_.back() : s.steps * s.batch;
  }
  int64_t rows(int64_t t) const { return sizes_ != nullptr ? sizes_[t] : batch_; }      // rows that run step t
  int64_t offset(int64_t t) const { return sizes_ != nullptr ? offsets_[t] : t * batch_; }  // first row of step t
  int64_t total() const { return total_; }                                                 // R
  bool uniform() const { return sizes_ == nullptr; }

 private:
  int64_t batch_;
  const int64_t* sizes_;
  std::vector<int64_t> offsets_;
  int64_t total_;
};

}  // namespace pylstm

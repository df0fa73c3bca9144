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
// The reverse direction (uniform layout only) runs the same rows backwards in time: the loop's step s is time T-1-s.
struct SeqShape {
  int64_t steps;
  int64_t batch;
  int64_t input;
  int64_t hidden;
  const int64_t* batch_sizes = nullptr;  // (T,) for the packed layout, null for the uniform one
  int64_t proj = 0;                      // LSTM only: P of the projection h = W_hr m, 0 for none
  bool reverse = false;                  // the loop's step s runs time T-1-s (uniform layout only)

  int64_t h_width() const { return proj > 0 ? proj : hidden; }  // P
};

// Where each step of the loop finds its rows, in either layout and direction. Step s's rows in the sequence's
// arrays (x, out, dout, dx, the saved per-step arrays) start at offset(s); a backward loop's scratch for the weight
// gradients (pre-activation gradients and their factors) keeps them in loop order, at loop_offset(s), so that the
// sums over rows run in the loop's order (the same in either direction).
class StepRows {
 public:
  explicit StepRows(const SeqShape& s)
      : steps_(s.steps), batch_(s.batch), sizes_(s.batch_sizes), reverse_(s.reverse) {
    if (sizes_ != nullptr) {
      offsets_.assign(static_cast<size_t>(s.steps) + 1, 0);
      for (int64_t t = 0; t < s.steps; ++t) offsets_[t + 1] = offsets_[t] + sizes_[t];
    }
    total_ = sizes_ != nullptr ? offsets_.back() : s.steps * s.batch;
  }
  int64_t rows(int64_t s) const { return sizes_ != nullptr ? sizes_[s] : batch_; }  // rows that run step s
  // First row of loop step s in the sequence's arrays.
  int64_t offset(int64_t s) const { return reverse_ ? (steps_ - 1 - s) * batch_ : loop_offset(s); }
  // First row of loop step s in loop order.
  int64_t loop_offset(int64_t s) const { return sizes_ != nullptr ? offsets_[s] : s * batch_; }
  // First row, in the sequence's arrays, of the contiguous block that loop steps [s0, s1) run (s0 < s1).
  int64_t block_offset(int64_t s0, int64_t s1) const { return reverse_ ? offset(s1 - 1) : offset(s0); }
  int64_t block_rows(int64_t s0, int64_t s1) const { return loop_offset(s1) - loop_offset(s0); }
  int64_t total() const { return total_; }  // R
  bool uniform() const { return sizes_ == nullptr; }
  // Whether the loop runs the steps from the last; the sequence's arrays then hold the rows in the other order.
  bool reverse() const { return reverse_; }

 private:
  int64_t steps_;
  int64_t batch_;
  const int64_t* sizes_;
  bool reverse_;
  std::vector<int64_t> offsets_;
  int64_t total_;
};

}  // namespace pylstm

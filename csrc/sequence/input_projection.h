// The input projection of a forward time loop, pre = x @ W_ih^T + the folded biases, made a chunk of steps at a time
// into a small scratch just before the steps read it. (In training the gate math writes the saved gates from pre:
// projecting into the saved gates instead would write each chunk to memory that is not in cache, and read it back.)
// In a loop whose items are slices of the batch rows (LoopItems), each item projects its own rows of the chunk, every
// unit: gathered from the chunk's steps into one block (a product per step would read all of W_ih for each), into
// its own part of the scratch. The same sums per row either way.
#pragma once
#include <algorithm>
#include <cstdint>

#include "primitives/ops.h"
#include "primitives/packed.h"
#include "primitives/workspace.h"
#include "sequence/scheduling.h"
#include "sequence/shape.h"
#include "sequence/weight_access.h"

namespace pylstm {

template <typename T>
class ChunkedProjection {
 public:
  // W_ih (gates*H, I); the scratch (allocated by the caller after this) holds the chunk's rows (width gates*H), the
  // packed W_ih where it is packed whole, and the folded biases when `has_bias` (set by the caller through bias()).
  ChunkedProjection(const Ops<T>& kernels, const SeqShape& s, const StepRows& step_rows, const T* x, const T* w_ih,
                    int64_t gates, bool has_bias, bool by_rows, Scratch& scratch)
      : kernels_(kernels),
        rows_(step_rows),
        x_(x),
        w_ih_(w_ih),
        I_(s.input),
        H_(s.hidden),
        gates_(gates),
        chunk_(projection_chunk(s.steps, s.batch)),
        steps_(s.steps),
        by_dots_(chunk_ * s.batch <= kDotRows),
        packed_whole_(!by_dots_ && !projection_in_slices(kernels, s.steps, chunk_, s.batch)),
        by_rows_(by_rows),
        wih_(gate_panels<T>(s.input, s.hidden, gates, kernels.nr)) {
    if (packed_whole_) scratch.need(&wih_.data, wih_.size());
    scratch.need(&pre_, chunk_ * s.batch * gates * s.hidden);
    if (by_rows_) scratch.need(&gathered_, chunk_ * s.batch * s.input);
    if (has_bias) scratch.need(&bias_, gates * s.hidden);
  }

  // Whether W_ih is read in place by dot products (few rows a chunk), and whether it is packed whole in the loop's
  // packing round (else, past dot products, a slice at a time as the product goes).
  bool by_dots() const { return by_dots_; }
  bool packed_whole() const { return packed_whole_; }
  // Where the caller folds the biases (fold_biases) once the scratch is allocated; null without biases.
  T* bias() const { return bias_; }

  // In the packing round: these units' panels of W_ih, when it is packed whole.
  void pack(const UnitSlice& u) const {
    if (packed_whole_) pack_gate_panels(kernels_, w_ih_, I_, wih_, u, 0, gates_);
  }
  // At step t: when t starts a chunk of steps, these units' columns of the chunk's projection for rows r (its rows
  // are one block of x, backwards in time in the reverse direction, projected in the block's order; or, by rows, the
  // item's rows of each step gathered in loop order).
  void project(int64_t t, const UnitSlice& u, const RowSlice& r, bool descending) const {
    if (t % chunk_ != 0) return;
    const int64_t end = std::min(t + chunk_, steps_);
    const T* a = x_ + rows_.block_offset(t, end) * I_;
    int64_t m = rows_.block_rows(t, end);
    T* c = by_rows_ ? step(t, r) : pre_;
    if (by_rows_) {
      a = gathered_ + chunk_ * r.b0 * I_;
      m = 0;
      for (int64_t s = t; s < end; m += r.running(rows_.rows(s)), ++s) {
        const T* src = x_ + (rows_.offset(s) + r.b0) * I_;
        std::copy(src, src + r.running(rows_.rows(s)) * I_, gathered_ + (chunk_ * r.b0 + m) * I_);
      }
    }
    gate_gemm(kernels_, m, a, I_, by_dots_ ? nullptr : &wih_, w_ih_, I_, I_, H_, 0, gates_, u, c, gates_ * H_, false,
              descending, static_cast<const T*>(bias_));
  }
  // The projected rows r of step t (width gates*H, leading dimension gates*H).
  T* step(int64_t t, const RowSlice& r) const {
    const int64_t begin = t - t % chunk_;
    if (by_rows_) {
      int64_t m = 0;
      for (int64_t s = begin; s < t; ++s) m += r.running(rows_.rows(s));
      return pre_ + (chunk_ * r.b0 + m) * gates_ * H_;
    }
    return pre_ + (rows_.offset(t) + r.b0 - rows_.block_offset(begin, std::min(begin + chunk_, steps_))) * gates_ * H_;
  }

 private:
  const Ops<T>& kernels_;
  const StepRows& rows_;
  const T* x_;
  const T* w_ih_;
  const int64_t I_, H_, gates_, chunk_, steps_;
  const bool by_dots_, packed_whole_, by_rows_;
  PackedB<T> wih_;
  T* pre_ = nullptr;
  T* gathered_ = nullptr;  // by rows: each item's rows of x in a chunk, at row chunk * b0
  T* bias_ = nullptr;
};

}  // namespace pylstm

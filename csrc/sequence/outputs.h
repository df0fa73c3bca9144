// How a time loop writes its outputs and scratch: every row's final state, the stores that bypass the caches for
// outputs too large to stay in them, and row strides that keep scratch rows out of one another's cache sets.
#pragma once
#include <algorithm>
#include <cstdint>

#include "primitives/cache_sizes.h"
#include "primitives/packed.h"
#include "sequence/shape.h"

namespace pylstm {

// dst (n,) = src (n,), or zeros when src is null.
template <typename T>
void copy_or_zero(T* dst, const T* src, int64_t n) {
  if (src == nullptr) std::fill(dst, dst + n, T(0));
  else std::copy(src, src + n, dst);
}

// dst (B, n) = every row's value after its own last step: its row of src (R, n) at that step, or its row of init
// (B, n) when it never runs (zeros when init is null).
template <typename T>
void final_state(const StepRows& r, int64_t steps, int64_t B, int64_t n, const T* src, const T* init, T* dst) {
  int64_t done = 0;  // rows [done, B) have not run a step yet, counting from the last step down
  for (int64_t t = steps - 1; t >= 0 && done < B; --t) {
    const int64_t rows = r.rows(t);
    if (rows > done) std::copy(src + (r.offset(t) + done) * n, src + (r.offset(t) + rows) * n, dst + done * n);
    done = std::max(done, rows);
  }
  copy_or_zero(dst + done * n, init == nullptr ? nullptr : init + done * n, (B - done) * n);
}

// The row stride for a scratch matrix of n columns that a step's GEMM reads as its A operand: n, or a cache line
// more when n values are a multiple of 4 KiB, so that the micro-kernel's rows do not share one L1 cache set and it
// can read them in place (gemm_panels packs such an A first, a copy of every row at every step).
template <typename T>
int64_t unaliased_stride(int64_t n) {
  return rows_share_cache_sets<T>(n) ? n + 64 / int64_t(sizeof(T)) : n;
}

// Outputs of a time loop that are read after it are streamed to memory (store_stream, non-temporal stores) rather
// than written through the caches from these sizes on: that much is found in memory afterwards either way, and an
// ordinary store first reads every line in, so that each line crosses the memory bus twice. Below them the caches
// still hold enough of the data for the ordinary stores to win. The sizes are multiples of one core's L2, not of the
// L3: how much of a shared L3 a process keeps (beside other processes, or a virtual machine's share of its host's)
// is not what the L3's size says. Streamed or not, the same values are stored, so these may follow the cache sizes.
// - A training forward's saved gates: from four times one core's L2 on.
inline int64_t stream_saved_bytes() { return 4 * cache_sizes().l2; }
// - A backward loop's pre-activation gradients (all of its buffers together): from eight times one core's L2 on. The
//   next step's product reads a step's rows back at once, from memory when streamed, and that still costs less than
//   the stores save. Only with the loop on two threads: beside a one-thread loop the weight gradients read each
//   block of rows right after the loop wrote it (backward_pass).
inline int64_t stream_gradient_bytes() { return 8 * cache_sizes().l2; }

// Whether a training forward streams saved gates of `bytes` in all, and whether a backward loop on `loop_threads`
// threads streams pre-activation gradients of `bytes` in all (see above).
inline bool stream_saved_gates(int64_t bytes) { return bytes >= stream_saved_bytes(); }
inline bool stream_gradients(int loop_threads, int64_t bytes) {
  return loop_threads > 1 && bytes >= stream_gradient_bytes();
}

}  // namespace pylstm

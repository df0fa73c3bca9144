// How a time loop reads its weights: in place by dot products (batch 1-4), from panels packed for the call, or a
// slice at a time packed just before use; the decisions between them (made from the call's shape, never from the
// thread count, since the routes sum in different orders), the packed layouts, and the gate-wise GEMMs of a step.
#pragma once
#include <algorithm>
#include <cstdint>

#include "primitives/gemm.h"
#include "primitives/ops.h"
#include "primitives/packed.h"
#include "primitives/workspace.h"
#include "sequence/scheduling.h"

namespace pylstm {

// At most this many rows, a GEMM against W^T uses dot products on the unpacked weights (no packing: a single step at
// batch 1 would spend longer packing the weights than using them).
constexpr int64_t kDotRows = 4;
// Whether a forward time loop reads its recurrent weights (weight_bytes in all) in place by dot products (gemm_dot)
// instead of from panels packed for the call: at batch 1-2 always; at batch 3-4 when the loop has too few steps to
// pay for the packing, or when the weights outgrow the two cores' L2 caches, where the dot loops' alternating sweeps
// keep part of them in L2 and packed panels would come from L3 at every step. Dot products with 3-4 rows are
// compute-bound (about half the micro-kernel's rate), so packing pays at batch 3-4 once the loop has the steps and
// the packed weights fit in the caches. Decided by the call's shape, never by the thread count, so
// that results do not depend on it (the two routes sum in different orders); and for the same reason not by the cache
// sizes (primitives/cache_sizes.h): kPackedMaxBytes stays a constant (twice a 2 MiB L2), so that a call gives the
// same bits on every CPU of one ISA.
inline bool recurrent_by_dots(int64_t batch, int64_t steps, int64_t weight_bytes) {
  constexpr int64_t kAlwaysRows = 2, kMinPackedSteps = 8, kPackedMaxBytes = int64_t(4) << 20;
  if (batch <= kAlwaysRows) return true;
  return batch <= kDotRows && (steps < kMinPackedSteps || weight_bytes > kPackedMaxBytes);
}

// Whether a time loop's input projection packs W_ih a slice at a time as the product goes (gemm_weight_slices)
// instead of packing all of it in the packing round: when one or two chunks of `chunk` steps of `batch` rows cover
// the sequence's `steps`, and a chunk's rows are one block of the GEMM's rows. Packing W_ih whole writes it to memory
// and reads it back for each chunk; in slices each chunk reads W_ih once. With more than two chunks each would
// gather all of W_ih again.
template <typename T>
bool projection_in_slices(const Ops<T>& kernels, int64_t steps, int64_t chunk, int64_t batch) {
  return steps <= 2 * chunk && std::min(chunk, steps) * batch <= kernels.block_rows_max;
}

// W (G*H, K) for use as x @ W^T, packed in gate-blocked panels (packed.h); the data pointer is set by Scratch.
template <typename T>
PackedB<T> gate_panels(int64_t K, int64_t H, int64_t G, int64_t nr) {
  PackedB<T> b;
  b.K = K;
  b.block_cols = H;
  b.blocks = G;
  b.nr = nr;
  return b;
}

// W (K, N) used as it is (dh = dpre @ W_hh), one block of panels over its N columns.
template <typename T>
PackedB<T> plain_panels(int64_t K, int64_t N, int64_t nr) {
  return gate_panels<T>(K, N, 1, nr);
}

// n values of T rounded up to whole 64-byte cache lines: the row stride of weight copies whose rows dot products read.
template <typename T>
constexpr int64_t whole_cache_lines(int64_t n) {
  constexpr int64_t kLine = 64 / int64_t(sizeof(T));
  return (n + kLine - 1) / kLine * kLine;
}

// The weight of a backward loop's recurrent product, C [+]= D (M, K) @ W for a row-major W (K, N) used as it is
// (dh_{t-1} = dpre_t @ W_hh: K gate rows, N units): packed in panels; or, for batch 1-4 (kDotRows), W^T (N, K) in
// rows that start on cache lines, read by dot products as the forward reads W_hh (for a row or two the packed product
// is one FMA dependency chain per register of a panel). A loop of fewer than kMinTransposeSteps steps reads W in
// place instead (gemm_axpy): transposing a thread's part of W_hh takes as long as several of its products. Longer
// loops keep the copy: W's rows a power of two of cache lines apart fall in a fraction of the L2 cache's sets, and
// narrow columns of them (several work items a thread) read in place miss the cache. Longer loops whose recurrent
// weights (`step_weight_bytes` in all, read at every step) fit in two L2 caches read W in place too at batch 1-2:
// each thread then reads the same wide columns of W at every step, and the copy is only a cost (not at batch 3-4,
// where dot products over the copy are faster, nor for weights beyond the L2 caches).
// Decided by the shape, never by the thread count: the two routes sum in different orders. Nor by the cache sizes
// (primitives/cache_sizes.h), for the same reason: kInPlaceMaxBytes stays a constant (two 2 MiB L2 caches).
// Each work item prepares its own units' part in the packing round.
template <typename T>
struct BackwardWeight {
  static constexpr int64_t kMinTransposeSteps = 8;
  static constexpr int64_t kInPlaceMaxRows = 2, kInPlaceMaxBytes = int64_t(2) << 20;
  // Whether a backward loop of `steps` steps at `batch` rows reads W^T from a copy (above).
  static bool transposes(int64_t batch, int64_t steps, int64_t step_weight_bytes) {
    return batch <= kDotRows && steps >= kMinTransposeSteps &&
           (batch > kInPlaceMaxRows || step_weight_bytes > kInPlaceMaxBytes);
  }
  const T* w;
  int64_t K, N;
  bool dot;                  // batch 1-4: W's rows read by dot products or gemm_axpy (else packed panels)
  bool transposed;           // dot, from W^T (else W in place)
  int64_t ld;                // W^T's leading dimension (transposed)
  PackedB<T> packed;         // (K, N) panels, the data set through Scratch::need (not dot)
  T* copy = nullptr;         // W^T (N, ld), set through Scratch::need (transposed)
  // Scratch for it only when `used` (a GRU uses some of its weights depending on its variant).
  BackwardWeight(const T* w_, int64_t K_, int64_t N_, int64_t nr, int64_t batch, int64_t steps,
                 int64_t step_weight_bytes, Scratch& scratch, bool used = true)
      : w(w_), K(K_), N(N_), dot(batch <= kDotRows), transposed(transposes(batch, steps, step_weight_bytes)),
        ld(whole_cache_lines<T>(K_)), packed(plain_panels<T>(K_, N_, nr)) {
    if (used && transposed) scratch.need(&copy, N * ld);
    if (used && !dot) scratch.need(&packed.data, packed.size());
  }
  // The packing round's work for units u (panels q0..q1, or rows j0..j1 of W^T).
  void prepare(const Ops<T>& kernels, const UnitSlice& u) const {
    if (transposed) kernels.transpose(K, u.j1 - u.j0, w + u.j0, N, copy + u.j0 * ld, ld);
    else if (!dot) pack_b(w, N, packed, u.q0, u.q1);
  }
  // C[:, units u] [+]= D (M, K) @ W[:, units u]; W^T's rows (W's columns) from the last to the first when
  // `descending` (Rounds).
  void product(const Ops<T>& kernels, int64_t M, const T* D, int64_t ldd, const UnitSlice& u, T* C, int64_t ldc,
               bool accumulate, bool descending) const {
    if (M <= 0 || u.n() <= 0) return;
    if (transposed) kernels.gemm_dot(M, u.j0, u.j1, K, D, ldd, copy, ld, C, ldc, accumulate, descending, nullptr);
    else if (dot) kernels.gemm_axpy(M, u.j0, u.j1, K, D, ldd, w, N, C, ldc, accumulate, descending, nullptr);
    else kernels.gemm_panels(M, D, ldd, 1, packed, 0, 1, u.q0, u.q1, C, ldc, accumulate, nullptr);
  }
};

// The panels of units `u` in gates [g0, g1) of a gate-blocked packing, from W (G*H, K) with leading dimension ld.
template <typename T>
void pack_gate_panels(const Ops<T>& kernels, const T* w, int64_t ld, const PackedB<T>& b, const UnitSlice& u,
                      int64_t g0, int64_t g1) {
  const int64_t ppg = b.panels_per_block();
  for (int64_t g = g0; g < g1; ++g) kernels.pack_b_transposed(w, ld, b, g * ppg + u.q0, g * ppg + u.q1);
}

// C[:, the columns of units `u` in gates g0..g1) [+]= A (M, K) @ W^T, W (G*H, K) row-major with leading dimension
// ldw, or C = start + A @ W^T in every row when `start` is given (a row indexed like C's columns: the biases, so that
// no pass writes them into C first): from the packed panels; or, when `packed` has no data (its layout only),
// packing each slice of W's panels just before use (gemm_weight_slices: for a weight used by one or two blocks of
// rows per call); or by dot products when `packed` is null, reading W's rows from the last to the first when
// `descending` (Rounds; the packed panels, in cache for many rows of A, are read in one order).
template <typename T>
void gate_gemm(const Ops<T>& kernels, int64_t M, const T* A, int64_t lda, const PackedB<T>* packed, const T* w,
               int64_t ldw, int64_t K, int64_t H, int64_t g0, int64_t g1, const UnitSlice& u, T* C, int64_t ldc,
               bool accumulate, bool descending, const T* start = nullptr) {
  if (u.n() <= 0) return;
  if (packed != nullptr && packed->data == nullptr) {
    kernels.gemm_weight_slices(M, A, lda, w, ldw, *packed, g0, g1, u.q0, u.q1, C, ldc, accumulate, start);
    return;
  }
  if (packed != nullptr) {
    kernels.gemm_panels(M, A, lda, 1, *packed, g0, g1, u.q0, u.q1, C, ldc, accumulate, start);
    return;
  }
  for (int64_t i = 0; i < g1 - g0; ++i) {
    const int64_t g = descending ? g1 - 1 - i : g0 + i;
    kernels.gemm_dot(M, g * H + u.j0, g * H + u.j1, K, A, lda, w, ldw, C, ldc, accumulate, descending, start);
  }
}

// A recurrent weight W (G*H, K) that a batch 1-4 time loop reads in place by dot products (gemm_dot), row by row at
// every step: the caller's array, or a copy whose rows start on cache lines when the caller's do not (NumPy aligns
// arrays to 16 bytes, and K values need not fill whole lines) and the loop has the steps to pay for it: a row that
// straddles cache lines costs an extra line at every step (each thread's rows come from its L2), and the copy costs
// about one step. Each work item copies its own rows in the packing round (copy_rows).
template <typename T>
struct DotWeight {
  static constexpr int64_t kMinSteps = 8;
  const T* src;
  int64_t K, H;
  bool copied;
  int64_t ld;          // the leading dimension dot products use
  T* copy = nullptr;   // (G*H, ld), set through Scratch::need when copied
  DotWeight(const T* w, int64_t G, int64_t K_, int64_t H_, int64_t steps, bool dot, Scratch& scratch)
      : src(w), K(K_), H(H_),
        copied(dot && steps >= kMinSteps &&
               (reinterpret_cast<uintptr_t>(w) % 64 != 0 || whole_cache_lines<T>(K_) != K_)),
        ld(copied ? whole_cache_lines<T>(K_) : K_) {
    if (copied) scratch.need(&copy, G * H * ld);
  }
  const T* matrix() const { return copied ? copy : src; }
  // The rows of units u in gates g0..g1 (run by the item that owns u, before its first step).
  void copy_rows(const UnitSlice& u, int64_t g0, int64_t g1) const {
    if (!copied) return;
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t r = g * H + u.j0; r < g * H + u.j1; ++r) std::copy(src + r * K, src + (r + 1) * K, copy + r * ld);
  }
};

// The biases as the input projection adds them: b_ih + b_hh, except for gate blocks [keep_from, G) where b_hh does
// not simply add (the reset_after GRU's n gate). Null when the layer has no bias.
template <typename T>
void fold_biases(const T* b_ih, const T* b_hh, int64_t GH, int64_t keep_from, T* folded) {
  for (int64_t k = 0; k < GH; ++k) folded[k] = k < keep_from ? b_ih[k] + b_hh[k] : b_ih[k];
}

}  // namespace pylstm

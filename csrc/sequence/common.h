// What the sequence kernels share: how a time loop splits its hidden units into work items, the packed weights, the
// gate-wise GEMMs of a step, and the big GEMMs before and after the loop.
//
// Threading model of every time loop: one parallel region around the whole loop, scheduled as WorkRounds
// (primitives/parallel.h): a round per time step (two for the reset_before GRU, whose n gate needs all of r * h),
// each round's items being slices of the hidden units, whole panels of the micro-kernel's width and the same units in
// every gate, so an item computes its units' columns of every GEMM and their elementwise update. Round 0 packs the
// weights, each item its own panels. No fork/join per step; one wait for the round's end per step.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../primitives/cpu.h"
#include "../primitives/gemm.h"
#include "../primitives/ops.h"
#include "../primitives/packed.h"
#include "../primitives/parallel.h"
#include "../primitives/workspace.h"
#include "shape.h"

namespace pylstm {

// At most this many rows, a GEMM against W^T uses dot products on the unpacked weights (no packing: a single step at
// batch 1 would spend longer packing the weights than using them).
constexpr int64_t kDotRows = 4;
// Whether a forward time loop reads its recurrent weights (weight_bytes in all) in place by dot products (gemm_dot)
// instead of from panels packed for the call: at batch 1-2 always; at batch 3-4 when the loop has too few steps to
// pay for the packing, or when the weights outgrow the two cores' L2 caches, where the dot loops' alternating sweeps
// keep part of them in L2 and packed panels would come from L3 at every step. Dot products with 3-4 rows are
// compute-bound (90-110 GFLOP/s a core, against ~180-200 for the micro-kernel): with the panels, LSTM 3,256,256,100
// forward 2.1 -> 1.7 ms, LSTM 4,256,256,100 2.1 -> 1.9, GRU 4,512,512,100 6.0 -> 5.4; by dots, LSTM 4,1024,1024,25
// inference 11.9 ms, from panels 14.1-14.5 (2 threads). Decided by the call's shape, never by the thread count, so
// that results do not depend on it (the two routes sum in different orders).
inline bool recurrent_by_dots(int64_t batch, int64_t steps, int64_t weight_bytes) {
  constexpr int64_t kAlwaysRows = 2, kMinPackedSteps = 8, kPackedMaxBytes = int64_t(4) << 20;
  if (batch <= kAlwaysRows) return true;
  return batch <= kDotRows && (steps < kMinPackedSteps || weight_bytes > kPackedMaxBytes);
}

// The input projection runs this many rows (whole steps) at a time: inference scratch stays O(B * H).
constexpr int64_t kProjectionRows = 256;

// Whether a time loop's input projection packs W_ih a slice at a time as the product goes (gemm_weight_slices)
// instead of packing all of it in the packing round: when one or two chunks of `chunk` steps of `batch` rows cover
// the sequence's `steps`, and a chunk's rows are one block of the GEMM's rows. Packing W_ih whole writes it to memory
// and reads it back for each chunk; in slices each chunk reads W_ih once. Measured (2 threads, A/B of process pairs):
// LSTM 4,1024,1024,25 inference 1.08-1.12x, LSTM 1,256,256,150 1.02-1.05x, GRU 1,1024,1024,300 (two chunks) 1.02x;
// with more chunks each would gather all of W_ih again.
template <typename T>
bool projection_in_slices(const Ops<T>& o, int64_t steps, int64_t chunk, int64_t batch) {
  return steps <= 2 * chunk && std::min(chunk, steps) * batch <= o.block_rows_max;
}

// Steps whose input projection is computed together: about kProjectionRows rows, so the projected rows are still
// in cache when their steps read them (projecting a whole long sequence first leaves each step's rows in memory).
inline int64_t projection_chunk(int64_t steps, int64_t batch) {
  return std::clamp<int64_t>((kProjectionRows + batch - 1) / std::max<int64_t>(batch, 1), 1,
                             std::max<int64_t>(steps, 1));
}

// The hidden units [j0, j1) of one work item: panels [q0, q1) of every gate.
struct UnitSlice {
  int64_t q0, q1, j0, j1;
  int64_t n() const { return j1 - j0; }
};

inline int64_t panels_per_gate(int64_t H, int64_t nr) { return (H + nr - 1) / nr; }

// The hidden units cut into a time loop's work items: one for a single thread; one per thread when each thread's
// share of the weights a step reads (`step_weight_bytes` in all) fits well in its L2 cache; else up to eight per
// thread (fine enough to rebalance when a thread falls behind, and with H = 512 still a whole panel of every gate).
// Eight instead of four (2 threads, bench/ab.py): LSTM 16,512,512,25 inference 1.055-1.058x, training 1.008-1.018x,
// GRU 16,512,512,25 training 1.017-1.025x, LSTM 4,1024,1024,25 and 64,512,512,100 inference 1.02-1.03x, GRU
// 1,1024,1024,300 1.01x; GRU 1,512,512,1, GRU 1,512,512,50 (training and inference), RNN 16,1760,1760,50, GRU
// 32,1760,1760,20 and LSTM 64,512,512,100 training 0.98-1.01x (noise); two per thread ran LSTM 16,512,512,25
// inference 0.80x as fast.
// Rebalancing pays where the weights stream from L3 at every step, at the pace of each core's memory traffic: with
// one item a thread, GRU 1,512,512,1 inference ran 0.68-0.77x as fast, GRU 1,1024,1024,300 0.83x. Where they stay in
// L2 it does not, and every item costs its share of the round's scheduling (WorkRounds): one item a thread instead
// of four (with WorkRounds::owner_late) made LSTM 1,256,256,150 inference 1.08x as fast (training 1.05x), GRU
// 1,320,320,100 inference 1.10x, RNN 1,512,512,100 training 1.03x (2 threads, bench/ab.py).
struct UnitChunks {
  int64_t H, nr, items;
  UnitSlice operator()(int64_t item) const {
    const int64_t ppg = panels_per_gate(H, nr);
    const int64_t q0 = ppg * item / items, q1 = ppg * (item + 1) / items;
    return {q0, q1, std::min(H, q0 * nr), std::min(H, q1 * nr)};
  }
};

inline UnitChunks unit_chunks(int threads, int64_t H, int64_t nr, int64_t step_weight_bytes) {
  constexpr int64_t kCachedBytesPerThread = int64_t(1) << 20;  // half of a 2 MiB L2
  const int64_t per_thread = step_weight_bytes <= threads * kCachedBytesPerThread ? 1 : 8;
  const int64_t items = threads <= 1 ? 1 : std::min<int64_t>(panels_per_gate(H, nr), per_thread * threads);
  return {H, nr, std::max<int64_t>(items, 1)};
}

// Threads for a time loop of `steps` steps that each do `step_work` multiply-adds with `weight_bytes` of weights.
// A second thread pays when a step has enough arithmetic to hide a round's synchronization (a microsecond or two,
// and the step's outputs crossing between caches), or when the weights outgrow one core's L2 cache and splitting
// them keeps each half in a cache; and only when the whole call is worth starting a thread (a few microseconds).
// Never more threads than panels of units. Measured (2-core Zen 4, float32, B = 1, T = 1, 1 vs 2 threads): LSTM
// H = 192 30 -> 22 us, H = 256 92 -> 35 us, GRU H = 256 54 -> 29 us; below kMinCallWork both take the same time.
inline int loop_threads(int64_t steps, int64_t step_work, int64_t weight_bytes, int64_t H, int64_t nr) {
  constexpr int64_t kComputeStep = int64_t(1) << 20, kSplitBytes = int64_t(512) << 10;
  constexpr int64_t kMinCallWork = int64_t(1) << 18;
  if (busy_machine() || steps * step_work < kMinCallWork) return 1;
  if (step_work < kComputeStep && weight_bytes < kSplitBytes) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), panels_per_gate(H, nr))));
}

// The time loop's parallel region: the rounds of `items` work items over `threads` threads (WorkRounds), each
// thread with denormals flushed, and a stall at the region's end noted (RegionWatch).
template <typename Work>
void run_rounds(int threads, int64_t items, const Rounds& rounds, Work&& work) {
  WorkRounds schedule(threads, items, rounds);
  RegionWatch watch(schedule);
  parallel_region(threads, [&] {
    DenormalsAreZero daz;
    schedule.run(work);
    watch.done();
  });
  watch.check();
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
// rows that start on cache lines, read by dot products as the forward reads W_hh. For a row or two the packed product
// is one FMA dependency chain per register of a panel: backward of LSTM 1,256,256,150 2.09 -> 1.84-1.92 ms, RNN
// 1,512,512,200 2.43 -> 2.14-2.23, GRU 1,1024,1024,50 20.3 -> 18.9-19.1 (2 threads); batch 2-4 within noise. A loop
// of fewer than kMinTransposeSteps steps reads W in place instead (gemm_axpy): transposing a thread's half of LSTM
// H = 256's W_hh took as long as ~7 of its products at batch 1 (~8 at batch 4, where dot products are faster).
// Training, in place against transposed (2 threads, bench/ab.py): LSTM 1,256,256,1 1.18x, 1,256,256,7 1.14x,
// 1,1024,1024,1 1.57x, 2,512,512,6 1.13x; GRU 1,512,512,7 1.09x, 4,1024,1024,5 1.11x. Longer loops keep the copy:
// W's rows a power of two of cache lines apart fall in a fraction of the L2 cache's sets, and narrow columns of them
// (four work items a thread) read that way ran GRU 1,512,512,50 training 0.76-0.80x as fast. Longer loops whose
// recurrent weights (`step_weight_bytes` in all, read at every step) fit in two L2 caches read W in place too at batch
// 1-2: each thread then reads the same wide columns of W at every step, and the copy is only a cost (in place against
// transposed, 2 threads, bench/ab.py: LSTM 1,256,256,150 training 1.036-1.041x, RNN 1,512,512,200 1.046-1.051x, GRU
// 1,320,320,100 1.036x, LSTM 2,256,256,100 1.040x, LSTM 1,352,352,100 1.029x, LSTM 1,128,128,300 1.021x; but GRU
// 1,512,512,50, 3 MB of W_hh, 0.91x, and LSTM 4,256,256,100 0.965x, where dot products over four rows are faster).
// Decided by the shape, never by the thread count: the two routes sum in different orders.
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
  void prepare(const Ops<T>& o, const UnitSlice& u) const {
    if (transposed) o.transpose(K, u.j1 - u.j0, w + u.j0, N, copy + u.j0 * ld, ld);
    else if (!dot) pack_b(w, N, packed, u.q0, u.q1);
  }
  // C[:, units u] [+]= D (M, K) @ W[:, units u]; W^T's rows (W's columns) from the last to the first when
  // `descending` (Rounds).
  void product(const Ops<T>& o, int64_t M, const T* D, int64_t ldd, const UnitSlice& u, T* C, int64_t ldc,
               bool accumulate, bool descending) const {
    if (M <= 0 || u.n() <= 0) return;
    if (transposed) o.gemm_dot(M, u.j0, u.j1, K, D, ldd, copy, ld, C, ldc, accumulate, descending, nullptr);
    else if (dot) o.gemm_axpy(M, u.j0, u.j1, K, D, ldd, w, N, C, ldc, accumulate, descending, nullptr);
    else o.gemm_panels(M, D, ldd, 1, packed, 0, 1, u.q0, u.q1, C, ldc, accumulate, nullptr);
  }
};

// The panels of units `u` in gates [g0, g1) of a gate-blocked packing, from W (G*H, K) with leading dimension ld.
template <typename T>
void pack_gate_panels(const Ops<T>& o, const T* w, int64_t ld, const PackedB<T>& b, const UnitSlice& u, int64_t g0,
                      int64_t g1) {
  const int64_t ppg = b.panels_per_block();
  for (int64_t g = g0; g < g1; ++g) o.pack_b_transposed(w, ld, b, g * ppg + u.q0, g * ppg + u.q1);
}

// C[:, the columns of units `u` in gates g0..g1) [+]= A (M, K) @ W^T, W (G*H, K) row-major with leading dimension
// ldw, or C = start + A @ W^T in every row when `start` is given (a row indexed like C's columns: the biases, so that
// no pass writes them into C first): from the packed panels; or, when `packed` has no data (its layout only),
// packing each slice of W's panels just before use (gemm_weight_slices: for a weight used by one or two blocks of
// rows per call); or by dot products when `packed` is null, reading W's rows from the last to the first when
// `descending` (Rounds; the packed panels, in cache for many rows of A, are read in one order).
template <typename T>
void gate_gemm(const Ops<T>& o, int64_t M, const T* A, int64_t lda, const PackedB<T>* packed, const T* w, int64_t ldw,
               int64_t K, int64_t H, int64_t g0, int64_t g1, const UnitSlice& u, T* C, int64_t ldc, bool accumulate,
               bool descending, const T* start = nullptr) {
  if (u.n() <= 0) return;
  if (packed != nullptr && packed->data == nullptr) {
    o.gemm_weight_slices(M, A, lda, w, ldw, *packed, g0, g1, u.q0, u.q1, C, ldc, accumulate, start);
    return;
  }
  if (packed != nullptr) {
    o.gemm_panels(M, A, lda, 1, *packed, g0, g1, u.q0, u.q1, C, ldc, accumulate, start);
    return;
  }
  for (int64_t i = 0; i < g1 - g0; ++i) {
    const int64_t g = descending ? g1 - 1 - i : g0 + i;
    o.gemm_dot(M, g * H + u.j0, g * H + u.j1, K, A, lda, w, ldw, C, ldc, accumulate, descending, start);
  }
}

// A recurrent weight W (G*H, K) that a batch 1-4 time loop reads in place by dot products (gemm_dot), row by row at
// every step: the caller's array, or a copy whose rows start on cache lines when the caller's do not (NumPy aligns
// arrays to 16 bytes, and K values need not fill whole lines) and the loop has the steps to pay for it. Rows that
// straddle cache lines made LSTM 1,256,256,150 inference ~30% slower (each thread's rows come from its L2 at every
// step); the copy costs about one step. Each work item copies its own rows in the packing round (copy_rows).
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
  const T* rows() const { return copied ? copy : src; }
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
// can read them in place (gemm_panels packs such an A first: for LSTM 64,512,512,100 training, whose 4H-wide
// pre-activation gradients are 8 KiB per row, that packing took ~9% of the time).
template <typename T>
int64_t unaliased_stride(int64_t n) {
  return rows_share_cache_sets<T>(n) ? n + 64 / int64_t(sizeof(T)) : n;
}

// Outputs of a time loop that are read after it are streamed to memory (store_stream, non-temporal stores) rather
// than written through the caches from these sizes on: that much is found in memory afterwards either way, and an
// ordinary store first reads every line in (one core stores 9 GB/s that way, 24 GB/s streaming). Below them the
// caches still held enough of the data for the ordinary stores to win.
// - A training forward's saved gates: LSTM 64,512,512,100 (52 MB) training forward 1.06-1.09x faster, training
//   1.02-1.03x; LSTM 64,512,512,25 (13 MB) training 1.03x, LSTM 16,1024,1024,50 1.01x, GRU 32,1760,1760,20 (18 MB)
//   1.00x. Smaller: LSTM 16,512,512,25 (3.3 MB) 0.99x, LSTM 1,256,256,150 (0.6 MB) 0.97x.
constexpr int64_t kStreamSavedBytes = int64_t(8) << 20;
// - A backward loop's pre-activation gradients (all of its buffers together): the next step's product reads a
//   step's rows back at once, from memory when streamed, and that still costs less than the stores save. LSTM
//   64,512,512,100 (53 MB): backward loop 54 -> 49 ms (its elementwise part 12 -> 8 ms a thread), training 1.015x;
//   GRU 32,1760,1760,20 (27 MB) training 1.018x; LSTM 32,512,512,70 (18.5 MB) 1.000x. Smaller: LSTM 64,512,512,25
//   (13 MB) 1.003x, RNN 32,1760,1760,50 (11 MB) 0.991x, LSTM 16,512,512,70 (9 MB) 0.985x. Only with the loop on two
//   threads: beside a one-thread loop the weight gradients read each block of rows right after the loop wrote it
//   (backward_pass).
constexpr int64_t kStreamGradientBytes = int64_t(16) << 20;

// Whether a training forward streams saved gates of `bytes` in all, and whether a backward loop on `loop_threads`
// threads streams pre-activation gradients of `bytes` in all (see above).
inline bool stream_saved_gates(int64_t bytes) { return bytes >= kStreamSavedBytes; }
inline bool stream_gradients(int loop_threads, int64_t bytes) {
  return loop_threads > 1 && bytes >= kStreamGradientBytes;
}

// After the time loop: dx = dpre_ih @ w_ih, one GEMM over all R rows.
//   dpre_ih (R, N), leading dimension ld; w_ih (N, I); dx (R, I).
template <typename T>
void input_grad(const SeqShape& s, const StepRows& r, int64_t N, const T* w_ih, const T* dpre_ih, int64_t ld, T* dx) {
  gemm(r.total(), s.input, N, dpre_ih, ld, int64_t(1), w_ih, s.input, false, dx, s.input, false);
}

// A backward pass: its time loop, dx, and the weight gradients, the last two products over the loop's pre-activation
// gradients. When the loop runs on one thread (small hidden sizes: a step is too little work to share) and a second
// thread is free, that thread makes the weight gradients beside the loop, each block of rows as soon as the loop has
// published it in `final_rows` (FinalRows, gemm.h), while the loop's thread goes on to dx: LSTM 32,8,64,1000 training
// had spent half of its backward pass on the two products after the loop.
//   loop(): the time loop on loop_threads threads; with one, it publishes its progress in final_rows.
//   input_grads(): dx (after the loop).
//   weight_grads(ready): the weight and bias gradients, waiting for their rows on `ready` when it is not null.
// The result is the same either way: weight_gradients adds its blocks of rows in the same order.
template <typename Loop, typename InputGrads, typename WeightGrads>
void backward_pass(int loop_threads, int64_t weight_work, FinalRows& final_rows, Loop&& loop, InputGrads&& input_grads,
                   WeightGrads&& weight_grads) {
  const bool beside = loop_threads == 1 && threads_for(weight_work) >= 2;
  if (!beside) {
    loop();
    input_grads();
    weight_grads(static_cast<const FinalRows*>(nullptr));
    return;
  }
#pragma omp parallel num_threads(2)
  {
    DenormalsAreZero daz;
    if (thread_id() == 0) {
      loop();
      final_rows.publish(0);
      input_grads();
      if (team_size() < 2) weight_grads(static_cast<const FinalRows*>(nullptr));  // no second thread came
    } else {
      weight_grads(&final_rows);
    }
  }
}

// Terms of weight_gradients (primitives/gemm.h) for gradient rows [m_begin, m_end):
//   dW_ih += dpre^T @ x (x as R rows);
template <typename T>
GradTerm<T> input_term(const SeqShape& s, const StepRows& r, const T* x, int64_t m_begin, int64_t m_end, T* dw_ih) {
  return {x, r.total(), nullptr, s.input, m_begin, m_end, dw_ih, s.input};
}

// The previous hidden state (width P) of every row of a sequence, as weight_gradients reads it: in the uniform layout
// h0 followed by out's rows (no copy); in the packed layout gathered into `prev` (R, P), which the caller allocates
// (previous_states_size rows) — a step's rows continue the first rows of the step before.
inline int64_t previous_states_size(const StepRows& r) { return r.uniform() ? 0 : r.total(); }

//   dW_hh += dpre^T @ (previous hidden states)
template <typename T>
GradTerm<T> hidden_term(const SeqShape& s, const StepRows& r, const T* h0, const T* out, T* prev, int64_t m_begin,
                        int64_t m_end, T* dw_hh) {
  const int64_t P = s.state();
  if (r.uniform()) return {h0, s.batch, out, P, m_begin, m_end, dw_hh, P};
  for (int64_t t = 0; t < s.steps; ++t) {
    const T* src = t == 0 ? h0 : out + r.offset(t - 1) * P;
    std::copy(src, src + r.rows(t) * P, prev + r.offset(t) * P);
  }
  return {prev, r.total(), nullptr, P, m_begin, m_end, dw_hh, P};
}

}  // namespace pylstm

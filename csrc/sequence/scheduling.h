// How a time loop shares its work among threads: how many threads, the work items (slices of the hidden units or of
// the batch rows), the rounds they run in, and the chunks of steps whose input projection is computed together.
//
// Threading model of every time loop: one parallel region around the whole loop, scheduled as WorkRounds
// (primitives/work_rounds.h): a round per time step (two for the reset_before GRU, whose n gate needs all of r * h),
// each round's items being slices of the hidden units, whole panels of the micro-kernel's width and the same units in
// every gate, so an item computes its units' columns of every GEMM and their elementwise update; one wait for the
// round's end per step. Or, where each thread has the rows to reread all of the recurrent weight at every step
// (row_slices), slices of the batch rows, every unit in each, with no wait per step. Round 0 packs the weights, each
// item its own panels. No fork/join per step.
#pragma once
#include <algorithm>
#include <cstdint>

#include "primitives/cache_sizes.h"
#include "primitives/cpu.h"
#include "primitives/parallel.h"

namespace pylstm {

// The input projection runs this many rows (whole steps) at a time: inference scratch stays O(B * H).
constexpr int64_t kProjectionRows = 256;

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
// share of the weights a step reads (`step_weight_bytes` in all) fits well in its L2 cache (cached_bytes_per_thread);
// else up to eight per thread (fine enough to rebalance when a thread falls behind, and with H = 512 still a whole
// panel of every gate).
// Eight rather than four: finer items rebalance better, and at H = 512 an item is still a whole panel of every gate;
// two per thread rebalanced too little.
// Rebalancing pays where the weights stream from L3 at every step, at the pace of each core's memory traffic. Where
// they stay in L2 it does not, and every item costs its share of the round's scheduling (WorkRounds): there each
// thread keeps one item.
struct UnitChunks {
  int64_t H, nr, items;
  UnitSlice operator()(int64_t item) const {
    const int64_t ppg = panels_per_gate(H, nr);
    const int64_t q0 = ppg * item / items, q1 = ppg * (item + 1) / items;
    return {q0, q1, std::min(H, q0 * nr), std::min(H, q1 * nr)};
  }
};

// A thread's share of a step's weights that "fits well" in its L2: half of one core's L2 (the other half holds the
// step's activations, the scratch and what the other loops leave). The items only decide who computes which units,
// never how a unit's sums go, so this may follow the cache sizes.
inline int64_t cached_bytes_per_thread() { return cache_sizes().l2 / 2; }

inline UnitChunks unit_chunks(int threads, int64_t H, int64_t nr, int64_t step_weight_bytes) {
  const int64_t per_thread = step_weight_bytes <= threads * cached_bytes_per_thread() ? 1 : 8;
  const int64_t items = threads <= 1 ? 1 : std::min<int64_t>(panels_per_gate(H, nr), per_thread * threads);
  return {H, nr, std::max<int64_t>(items, 1)};
}

// The work items of a time loop as slices of the batch rows, every unit in each (instead of slices of the units,
// every row in each): how many, or 0 to slice the units. The rows' recurrences never meet, so each thread runs its
// steps without waiting for the other (independent Rounds) and reads nothing the other wrote: a slice of the units
// needs all of a step's h (forward) or pre-activation gradients (backward), half of them from the other core, and a
// wait per step. The products and the elementwise updates are the same per row, so are the results. But each thread
// then reads all of W_hh (`step_weight_bytes`) at every step instead of its share of the units' columns: only from
// packed panels (not `dot`: at batch 1-4 the products read W by dot products), with at least kMinSliceRows rows a
// thread (fewer leave the micro-kernel's strips part empty), and while the weights a thread reads per row of its
// slice stay within an eighth of its L2 share (row_slice_bytes_per_row, from cached_bytes_per_thread): all of W_hh
// in that share at 8 rows a thread, or, where W_hh is larger, more rows to read it for. Past that, rereading W_hh
// costs more than the waits save.
constexpr int64_t kMinSliceRows = 8;
inline int64_t row_slice_bytes_per_row() { return cached_bytes_per_thread() / kMinSliceRows; }

inline int64_t row_slices(int threads, int64_t batch, bool dot, int64_t step_weight_bytes) {
  if (threads < 2 || dot) return 0;
  const int64_t rows = batch / threads;  // (the smallest slice's)
  if (rows < kMinSliceRows || step_weight_bytes > rows * row_slice_bytes_per_row()) return 0;
  return threads;
}

// Rows [b0, b1) of a batch of B, the slice `item` of `items` (row_slices).
struct RowSlice {
  int64_t b0, b1;
  RowSlice(int64_t B, int64_t item, int64_t items) : b0(B * item / items), b1(B * (item + 1) / items) {}
  // Its rows among the first `running` rows (those that run a step), counted from b0.
  int64_t running(int64_t rows) const { return std::max<int64_t>(0, std::min(b1, rows) - b0); }
};

// A time loop's work items: slices of the units (`chunks`, every row in each) or, with row_items > 0 (row_slices),
// slices of the batch rows (every unit in each, independent Rounds). The packing round gives each item a slice of
// the units either way: each packs its share of the weights.
struct LoopItems {
  UnitChunks chunks;
  int64_t batch, row_items;
  bool by_rows() const { return row_items > 0; }
  int64_t count() const { return by_rows() ? row_items : chunks.items; }
  UnitSlice packing(int64_t item) const {
    return by_rows() ? UnitChunks{chunks.H, chunks.nr, row_items}(item) : chunks(item);
  }
  UnitSlice units(int64_t item) const { return by_rows() ? UnitChunks{chunks.H, chunks.nr, 1}(0) : chunks(item); }
  RowSlice rows(int64_t item) const { return by_rows() ? RowSlice(batch, item, row_items) : RowSlice(batch, 0, 1); }
};

// The work items of a time loop over `threads` threads whose steps read `step_weight_bytes` of recurrent weights
// (by dot products when `dot`): slices of the batch rows where row_slices says so and the cell allows it
// (`rows_allowed`), else slices of the units (unit_chunks).
inline LoopItems loop_items(int threads, int64_t H, int64_t nr, int64_t batch, bool dot, int64_t step_weight_bytes,
                            bool rows_allowed = true) {
  return {unit_chunks(threads, H, nr, step_weight_bytes), batch,
          rows_allowed ? row_slices(threads, batch, dot, step_weight_bytes) : 0};
}

// Which time loop asks for threads (loop_threads).
enum class LoopKind { kForward, kBackward };

// Threads for a time loop of `steps` steps that each do `step_work` multiply-adds with `weight_bytes` of weights.
// A second thread pays when a step has enough arithmetic to hide a round's synchronization (a microsecond or two,
// and the step's outputs crossing between caches), or when the weights outgrow one core's L2 cache and splitting
// them keeps each half in a cache; and only when the whole call is worth starting a thread (a few microseconds).
// Never more threads than panels of units. Below kMinCallWork one thread and two take the same time.
// "Enough arithmetic": a forward step from kForwardComputeStep multiply-adds (several microseconds on a core of
// 16 float multiply-adds a cycle, as AVX2 cores and Zen 4's AVX-512 have), a backward step from twice that: a
// one-thread backward loop has the weight gradients made beside it on the other core (backward_pass), which a split
// loop gives up.
// The weights "outgrow" one core's L2 from a quarter of it on (split_bytes): the step's activations and scratch, and
// the lines the weights evict from one another (W's rows a power of two of lines apart share sets), take the rest.
// A forward loop that would run as slices of the batch rows on the team's threads (`rows_sliced`) has no wait per
// step: it takes every thread whatever its steps' size, from kMinRowSliceWork multiply-adds a call when the calls
// come in quick succession (back_to_back_call), else from kMinColdRowSliceWork (waking a second thread after a pause
// cost up to a millisecond and a half, which smaller calls did not win back).
// A backward loop keeps the rule above: split by rows, it gives up the weight gradients made beside it too, which
// took as long as the split saved.
// Results do not depend on the thread count, so this may follow the cache sizes.
inline int64_t split_bytes() { return cache_sizes().l2 / 4; }

inline int loop_threads(LoopKind kind, int64_t steps, int64_t step_work, int64_t weight_bytes, int64_t H,
                        int64_t nr, bool rows_sliced) {
  constexpr int64_t kForwardComputeStep = int64_t(1) << 19;
  constexpr int64_t kMinCallWork = int64_t(1) << 18;
  constexpr int64_t kMinRowSliceWork = int64_t(1) << 22, kMinColdRowSliceWork = int64_t(1) << 25;
  const int64_t compute_step = kind == LoopKind::kForward ? kForwardComputeStep : 2 * kForwardComputeStep;
  if (busy_machine() || steps * step_work < kMinCallWork) return 1;
  if (kind == LoopKind::kForward && rows_sliced &&
      steps * step_work >= (back_to_back_call() ? kMinRowSliceWork : kMinColdRowSliceWork))
    return team_threads();
  if (step_work < compute_step && weight_bytes < split_bytes()) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(team_threads(), panels_per_gate(H, nr))));
}

// A time loop's threads (loop_threads) and its work items on them (loop_items): steps of `step_work` multiply-adds
// with `weight_bytes` of weights, of which the `recurrent_bytes` of W_hh are read at every step (by dot products when
// `dot`); slices of the batch rows where `rows_allowed` and row_slices say so.
struct LoopPlan {
  int threads;
  LoopItems items;
};
inline LoopPlan plan_loop(LoopKind kind, int64_t steps, int64_t step_work, int64_t weight_bytes, int64_t H, int64_t nr,
                          int64_t batch, bool dot, int64_t recurrent_bytes, bool rows_allowed = true) {
  const bool rows_sliced = rows_allowed && row_slices(team_threads(), batch, dot, recurrent_bytes) > 0;
  const int threads = loop_threads(kind, steps, step_work, weight_bytes, H, nr, rows_sliced);
  return {threads, loop_items(threads, H, nr, batch, dot, recurrent_bytes, rows_allowed)};
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

}  // namespace pylstm

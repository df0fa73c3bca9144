// What every backward pass shares after (or beside) its time loop: dx and the weight gradients as single GEMMs over
// the loop's pre-activation gradients, run beside a one-thread loop when a second thread is free.
#pragma once
#include <algorithm>
#include <cstdint>

#include "primitives/cpu.h"
#include "primitives/gemm.h"
#include "primitives/parallel.h"
#include "sequence/scheduling.h"
#include "sequence/shape.h"
#include "sequence/weight_access.h"

namespace pylstm {

// After the time loop: dx = dpre_ih @ w_ih, one GEMM over all R rows.
//   dpre_ih (R, N) in loop order, leading dimension ld; w_ih (N, I); dx (R, I). The reverse direction's rows come out
//   in loop order, backwards in time, and are turned around in place.
template <typename T>
void input_grad(const Ops<T>& kernels, const SeqShape& s, const StepRows& r, int64_t N, const T* w_ih,
                const T* dpre_ih, int64_t ld, T* dx) {
  gemm(kernels, r.total(), s.input, N, dpre_ih, ld, int64_t(1), w_ih, s.input, false, dx, s.input, false);
  if (r.reverse()) {
    const int64_t n = s.batch * s.input;
    for (int64_t t = 0; t < s.steps / 2; ++t)
      std::swap_ranges(dx + t * n, dx + (t + 1) * n, dx + (s.steps - 1 - t) * n);
  }
}

// The time loop of a backward pass whose steps take one round each (the LSTM's without a projection, the RNN's).
// Round 0 prepares W_hh (BackwardWeight::prepare, each item a slice of its units); round r = 1 .. T handles step
// t = T - r: first dh_t = dpre_{t+1} @ W_hh (dh (B, ldh); dpre in loop order, leading dimension ldp), then
// cell_grad(t, u, b0, b1), the elementwise backward of units u for the rows [b0, min(b1, rows at t)), which writes
// their columns of dpre_t; a last round makes dh0. The items (loop_items) are slices of the units (all rows: dh_t's
// columns for them, once all of step t + 1 is done) or slices of the batch rows (all units: independent rounds, no
// wait between the items). With one item (one thread), each finished step's rows are published in final_rows for the
// weight gradients beside the loop (backward_pass).
template <typename T, typename CellGrad>
void step_per_round_loop(const Ops<T>& kernels, int threads, const LoopItems& items, const StepRows& step_rows,
                         int64_t steps, const BackwardWeight<T>& whh, const T* dpre, int64_t ldp, T* dh, int64_t ldh,
                         FinalRows& final_rows, CellGrad&& cell_grad) {
  const Rounds rounds(1, steps + 1, 1, whh.dot, items.by_rows());
  run_rounds(threads, items.count(), rounds, [&](int64_t round, int64_t item) {
    if (round == 0) {
      whh.prepare(kernels, items.packing(item));
      return;
    }
    const UnitSlice u = items.units(item);
    const RowSlice r = items.rows(item);
    const int64_t t = steps - round;
    if (t + 1 < steps)
      whh.product(kernels, r.running(step_rows.rows(t + 1)), dpre + (step_rows.loop_offset(t + 1) + r.b0) * ldp, ldp,
                  u, dh + r.b0 * ldh, ldh, false, rounds.descending(round));
    if (t < 0) return;
    cell_grad(t, u, r.b0, r.b1);
    if (items.count() == 1) final_rows.publish(step_rows.loop_offset(t));
  });
}

// A backward pass: its time loop, dx, and the weight gradients, the last two products over the loop's pre-activation
// gradients. When the loop runs on one thread (small hidden sizes: a step is too little work to share) and a second
// thread is free, that thread makes the weight gradients beside the loop, each block of rows as soon as the loop has
// published it in `final_rows` (FinalRows, gemm.h), while the loop's thread goes on to dx (for small hidden sizes
// and long sequences the two products after the loop are a large part of the backward pass).
//   loop(): the time loop on loop_threads threads; with one, it publishes its progress in final_rows.
//   input_grads(): dx (after the loop).
//   weight_grads(ready): the weight and bias gradients, waiting for their rows on `ready` when it is not null.
// The result is the same either way: weight_gradients adds its blocks of rows in the same order.
// A loop cut short (Ctrl-C, CancelScope) leaves the gradients as they were: the products after it do not run, and the
// one beside it puts back what it had added. Returns whether the pass ran in full.
template <typename Loop, typename InputGrads, typename WeightGrads>
bool backward_pass(int loop_threads, int64_t weight_work, FinalRows& final_rows, Loop&& loop, InputGrads&& input_grads,
                   WeightGrads&& weight_grads) {
  const bool beside = loop_threads == 1 && threads_for(weight_work) >= 2;
  if (!beside) {
    loop();
    if (time_loops_cut_short()) return false;
    input_grads();
    weight_grads(static_cast<const FinalRows*>(nullptr));
    return true;
  }
  bool cut_short = false;
#pragma omp parallel num_threads(2)
  {
    DenormalsAreZero daz;
    if (thread_id() == 0) {
      loop();
      cut_short = time_loops_cut_short();  // (the thread that made the loop: its CancelScope)
      if (cut_short) {
        final_rows.abandon();
      } else {
        final_rows.publish(0);
        input_grads();
        if (team_size() < 2) weight_grads(static_cast<const FinalRows*>(nullptr));  // no second thread came
      }
    } else {
      weight_grads(&final_rows);
    }
  }
  note_region_end();
  return !cut_short;
}

// Terms of weight_gradients (primitives/gemm.h) for gradient rows [m_begin, m_end). Their right factors are read in
// loop order, as the pre-activation gradients are kept: the sums over rows then run in the loop's order.
// Where the sequence's arrays keep rows in another order (the reverse direction), they are gathered into loop order
// in a scratch array of loop_order_size rows that the caller allocates.
inline int64_t loop_order_size(const StepRows& r) { return r.reverse() ? r.total() : 0; }

//   dW_ih += dpre^T @ x (x as R rows; gathered into `xs` (loop_order_size rows, I) unless in loop order);
template <typename T>
GradTerm<T> input_term(const SeqShape& s, const StepRows& r, const T* x, T* xs, int64_t m_begin, int64_t m_end,
                       T* dw_ih) {
  const int64_t I = s.input;
  if (!r.reverse()) return {x, r.total(), nullptr, I, m_begin, m_end, dw_ih, I};
  for (int64_t t = 0; t < s.steps; ++t)
    std::copy(x + r.offset(t) * I, x + (r.offset(t) + r.rows(t)) * I, xs + r.loop_offset(t) * I);
  return {xs, r.total(), nullptr, I, m_begin, m_end, dw_ih, I};
}

// The previous hidden state (width P) of every row of a sequence, as weight_gradients reads it: in the uniform layout
// in loop order h0 followed by out's rows (no copy); else gathered into `prev` (R, P), which the caller allocates
// (previous_states_size rows) — a step's rows continue the first rows of the step before.
inline int64_t previous_states_size(const StepRows& r) { return r.uniform() && !r.reverse() ? 0 : r.total(); }

//   dW_hh += dpre^T @ (previous hidden states)
template <typename T>
GradTerm<T> hidden_term(const SeqShape& s, const StepRows& r, const T* h0, const T* out, T* prev, int64_t m_begin,
                        int64_t m_end, T* dw_hh) {
  const int64_t P = s.h_width();
  if (r.uniform() && !r.reverse()) return {h0, s.batch, out, P, m_begin, m_end, dw_hh, P};
  for (int64_t t = 0; t < s.steps; ++t) {
    const T* src = t == 0 ? h0 : out + r.offset(t - 1) * P;
    std::copy(src, src + r.rows(t) * P, prev + r.loop_offset(t) * P);
  }
  return {prev, r.total(), nullptr, P, m_begin, m_end, dw_hh, P};
}

}  // namespace pylstm

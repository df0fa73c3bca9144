#include "cells/rnn/rnn.h"

#include "primitives/cpu.h"
#include "primitives/gemm.h"
#include "primitives/ops.h"
#include "sequence/backward_pass.h"
#include "sequence/outputs.h"
#include "sequence/scheduling.h"
#include "sequence/weight_access.h"

namespace pylstm {

template <typename T>
void rnn_forward(const SeqShape& s, Nonlinearity act, const T* x, const T* h0, const RnnWeights<T>& w, T* out,
                 T* h_n) {
  const Isa isa = active_isa();  // once: every table of this call is this ISA's
  const Ops<T>& kernels = ops<T>(isa);
  const RnnUnits<T>& units = rnn_units<T>(isa);
  DenormalsAreZero daz;
  const StepRows step_rows(s);
  const int64_t steps = s.steps, B = s.batch, I = s.input, H = s.hidden, nr = kernels.nr, R = step_rows.total();
  const bool relu = act == Nonlinearity::kRelu;
  const bool dot_projection = R <= kDotRows;
  const bool dot_recurrent = recurrent_by_dots(B, steps, H * H * int64_t(sizeof(T)));
  const bool packed_projection = !dot_projection && !projection_in_slices(kernels, steps, steps, B);
  PackedB<T> wih = gate_panels<T>(I, H, kRnnGates, nr), whh = gate_panels<T>(H, H, kRnnGates, nr);
  T* bias = nullptr;
  Scratch scratch(0);
  if (packed_projection) scratch.need(&wih.data, wih.size());
  if (!dot_recurrent) scratch.need(&whh.data, whh.size());
  DotWeight<T> whh_dot(w.w_hh, kRnnGates, H, H, steps, dot_recurrent, scratch);
  if (w.b_ih != nullptr) scratch.need(&bias, H);
  scratch.allocate();
  if (w.b_ih != nullptr) fold_biases(w.b_ih, w.b_hh, H, H, bias);

  const int64_t weight_bytes = H * H * int64_t(sizeof(T));  // W_hh, read at every step
  const LoopPlan plan = plan_loop(LoopKind::kForward, steps, B * H * (H + I), H * (H + I) * int64_t(sizeof(T)), H, nr,
                                  B, dot_recurrent, weight_bytes);
  const int threads = plan.threads;
  const LoopItems& items = plan.items;
  const Rounds rounds(1, steps, 1, dot_recurrent || dot_projection, items.by_rows());
  run_rounds(threads, items.count(), rounds, [&](int64_t round, int64_t item) {
    const bool down = rounds.descending(round);
    if (round == 0) {  // pack, and these units' columns of the input projection of all steps, straight into out
      const UnitSlice u = items.packing(item);
      if (packed_projection) pack_gate_panels(kernels, w.w_ih, I, wih, u, 0, kRnnGates);
      if (!dot_recurrent) pack_gate_panels(kernels, w.w_hh, H, whh, u, 0, kRnnGates);
      whh_dot.copy_rows(u, 0, kRnnGates);
      gate_gemm(kernels, R, x, I, dot_projection ? nullptr : &wih, w.w_ih, I, I, H, 0, kRnnGates, u, out, H, false,
                down, bias);
      return;
    }
    const UnitSlice u = items.units(item);
    const RowSlice r = items.rows(item);
    const int64_t t = round - 1, n = r.running(step_rows.rows(t));
    if (n == 0) return;  // none of these rows runs this step (nor any later one)
    const T* h_prev = (t == 0 ? h0 : out + step_rows.offset(t - 1) * H) + r.b0 * H;
    T* h = out + (step_rows.offset(t) + r.b0) * H;
    gate_gemm(kernels, n, h_prev, H, dot_recurrent ? nullptr : &whh, whh_dot.matrix(), whh_dot.ld, H, H, 0, kRnnGates,
              u, h, H, true, down);
    for (int64_t b = 0; b < n; ++b) units.forward(u.n(), relu, h + b * H + u.j0);
  });
  final_state(step_rows, steps, B, H, out, h0, h_n);
}

template <typename T>
void rnn_backward(const SeqShape& s, Nonlinearity act, const T* x, const T* h0, const RnnWeights<T>& w, const T* out,
                  const T* dout, const T* dh_n, T* dx, T* dh0, const RnnGrads<T>& grads) {
  const Isa isa = active_isa();  // once: every table of this call is this ISA's
  const Ops<T>& kernels = ops<T>(isa);
  const RnnUnits<T>& units = rnn_units<T>(isa);
  DenormalsAreZero daz;
  const StepRows step_rows(s);
  const int64_t steps = s.steps, B = s.batch, H = s.hidden, nr = kernels.nr, R = step_rows.total();
  const bool relu = act == Nonlinearity::kRelu;
  const int64_t ldp = unaliased_stride<T>(H);  // dpre's row stride
  T *dpre = nullptr, *prev = nullptr;
  const int64_t weight_bytes = H * H * int64_t(sizeof(T));  // W_hh, read at every step
  Scratch scratch(0);
  scratch.need(&dpre, R * ldp);
  const BackwardWeight<T> whh(w.w_hh, H, H, nr, B, steps, weight_bytes, scratch);  // dh_{t-1} = dpre_t @ W_hh
  scratch.need(&prev, previous_states_size(step_rows) * H);
  T* xs = nullptr;
  scratch.need(&xs, loop_order_size(step_rows) * s.input);
  scratch.allocate();
  T* dh = dh0;
  copy_or_zero(dh, dh_n, B * H);

  const LoopPlan plan = plan_loop(LoopKind::kBackward, steps, B * H * H, weight_bytes, H, nr, B, whh.dot, weight_bytes);
  const int threads = plan.threads;
  const LoopItems& items = plan.items;
  const bool stream_dpre = stream_gradients(threads, R * ldp * int64_t(sizeof(T)));
  const GradTerm<T> terms[] = {input_term(s, step_rows, x, xs, 0, H, grads.dw_ih),
                               hidden_term(s, step_rows, h0, out, prev, 0, H, grads.dw_hh)};
  // The elementwise backward of step t for hidden units u and rows [b0, min(b1, rows at t)).
  auto cell_grad = [&](int64_t t, const UnitSlice& u, int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < std::min(b1, step_rows.rows(t)); ++b) {
      const int64_t k = (step_rows.offset(t) + b) * H + u.j0, loop_row = step_rows.loop_offset(t) + b;
      units.backward(u.n(), relu, out + k, dout + k, dh + b * H + u.j0, dpre + loop_row * ldp + u.j0, stream_dpre);
    }
    if (stream_dpre) store_fence();
  };
  FinalRows final_rows(R);
  auto loop = [&] {
    step_per_round_loop(kernels, threads, items, step_rows, steps, whh, dpre, ldp, dh, H, final_rows, cell_grad);
  };
  auto input_grads = [&] { input_grad(kernels, s, step_rows, H, w.w_ih, dpre, ldp, dx); };
  auto weight_grads = [&](const FinalRows* ready) {
    weight_gradients(kernels, H, R, dpre, ldp, terms, 2, grads.db_ih, grads.db_hh, ready);
  };
  backward_pass(threads, R * H * (s.input + H), final_rows, loop, input_grads, weight_grads);
}

#define PYLSTM_INSTANTIATE(T)                                                                                     \
  template void rnn_forward<T>(const SeqShape&, Nonlinearity, const T*, const T*, const RnnWeights<T>&, T*, T*);   \
  template void rnn_backward<T>(const SeqShape&, Nonlinearity, const T*, const T*, const RnnWeights<T>&, const T*, \
                                const T*, const T*, T*, T*, const RnnGrads<T>&);
PYLSTM_INSTANTIATE(float)
PYLSTM_INSTANTIATE(double)
#undef PYLSTM_INSTANTIATE

}  // namespace pylstm

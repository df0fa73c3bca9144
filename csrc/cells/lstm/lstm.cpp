#include "cells/lstm/lstm.h"

#include "primitives/cpu.h"
#include "primitives/gemm.h"
#include "primitives/ops.h"
#include "sequence/backward_pass.h"
#include "sequence/input_projection.h"
#include "sequence/outputs.h"
#include "sequence/scheduling.h"
#include "sequence/weight_access.h"

namespace pylstm {

template <typename T>
void lstm_forward(const SeqShape& s, const T* x, const T* h0, const T* c0, const LstmWeights<T>& w, T* out, T* h_n,
                  T* c_n, T* gates, T* cells) {
  const Isa isa = active_isa();  // once: every table of this call is this ISA's
  const Ops<T>& kernels = ops<T>(isa);
  const LstmUnits<T>& units = lstm_units<T>(isa);
  DenormalsAreZero daz;
  const StepRows step_rows(s);
  const int64_t steps = s.steps, B = s.batch, I = s.input, H = s.hidden, P = s.h_width(), G = kLstmGates * H;
  const int64_t nr = kernels.nr;
  const bool training = gates != nullptr, projected = w.w_hr != nullptr;
  const bool stream_saved = training && stream_saved_gates(step_rows.total() * G * int64_t(sizeof(T)));
  const bool dot_recurrent = recurrent_by_dots(B, steps, (G * P + (projected ? P * H : 0)) * int64_t(sizeof(T)));
  PackedB<T> whh = gate_panels<T>(P, H, kLstmGates, nr), whr = gate_panels<T>(H, P, 1, nr);
  T* m = nullptr;
  Scratch scratch(0);
  if (!dot_recurrent) scratch.need(&whh.data, whh.size());
  DotWeight<T> whh_dot(w.w_hh, kLstmGates, P, H, steps, dot_recurrent, scratch);
  const int64_t proj_work = projected ? P * H : 0;
  // Slices of the batch rows need each step's h of their own rows only: not with a projection, whose h = W_hr m needs
  // all of m (a round of its own).
  const int64_t recurrent_bytes = (G * P + proj_work) * int64_t(sizeof(T));
  const LoopPlan plan = plan_loop(LoopKind::kForward, steps, B * (G * (P + I) + proj_work),
                                  (G * (P + I) + proj_work) * int64_t(sizeof(T)), H, nr, B, dot_recurrent,
                                  recurrent_bytes, !projected);
  const int threads = plan.threads;
  const LoopItems& items = plan.items;
  const ChunkedProjection<T> projection(kernels, s, step_rows, x, w.w_ih, kLstmGates, w.b_ih != nullptr,
                                        items.by_rows(), scratch);
  if (projected) {
    scratch.need(&m, B * H);  // o * tanh(c) of the current step, before the projection
    if (!dot_recurrent) scratch.need(&whr.data, whr.size());
  }
  scratch.allocate();
  if (w.b_ih != nullptr) fold_biases(w.b_ih, w.b_hh, G, G, projection.bias());
  if (!training) copy_or_zero(c_n, c0, B * H);  // inference updates c in place in c_n

  const UnitChunks proj_chunks{P, nr, items.count()};  // the projection's output units, as many items
  // Round 0 packs (when any weight is packed); then a round per step, or two with a projection: the gates and
  // m = o * tanh(c) of these hidden units, then h = W_hr m for these output units (it needs all of m).
  const int64_t rounds_per_step = projected ? 2 : 1;
  const int64_t pack_rounds = !projection.packed_whole() && dot_recurrent && !whh_dot.copied ? 0 : 1;
  const Rounds rounds(pack_rounds, steps, rounds_per_step, dot_recurrent || projection.by_dots(), items.by_rows());
  run_rounds(threads, items.count(), rounds, [&](int64_t round, int64_t item) {
    const bool down = rounds.descending(round);
    if (round < pack_rounds) {
      const UnitSlice u = items.packing(item);
      projection.pack(u);
      if (!dot_recurrent) pack_gate_panels(kernels, w.w_hh, P, whh, u, 0, kLstmGates);
      whh_dot.copy_rows(u, 0, kLstmGates);
      if (projected && !dot_recurrent) pack_gate_panels(kernels, w.w_hr, H, whr, proj_chunks(item), 0, 1);
      return;
    }
    const UnitSlice u = items.units(item);
    const RowSlice r = items.rows(item);
    const int64_t t = (round - pack_rounds) / rounds_per_step, n = r.running(step_rows.rows(t));
    if (n == 0) return;  // none of these rows runs this step (nor any later one)
    const int64_t off = step_rows.offset(t) + r.b0;  // (the first of these rows)
    T* h = out + off * P;
    if ((round - pack_rounds) % rounds_per_step == 1) {
      gate_gemm(kernels, n, m, H, dot_recurrent ? nullptr : &whr, w.w_hr, H, H, P, 0, 1, proj_chunks(item), h, P, false,
                down);
      return;
    }
    projection.project(t, u, r, down);
    T* pre = projection.step(t, r);
    const T* h_prev = (t == 0 ? h0 : out + step_rows.offset(t - 1) * P) + r.b0 * P;
    const T* c_prev = (!training ? c_n : t == 0 ? c0 : cells + step_rows.offset(t - 1) * H) + r.b0 * H;
    T* c = training ? cells + off * H : c_n + r.b0 * H;
    T* hm = projected ? m : h;  // both H wide (projected: all rows, r being all of them)
    gate_gemm(kernels, n, h_prev, P, dot_recurrent ? nullptr : &whh, whh_dot.matrix(), whh_dot.ld, P, H, 0, kLstmGates,
              u, pre, G, true, down);
    const Peepholes<T> peep = w.peepholes.at(u.j0);
    for (int64_t b = 0; b < n; ++b)
      units.forward(u.n(), H, pre + b * G + u.j0, c_prev + b * H + u.j0, c + b * H + u.j0, hm + b * H + u.j0, peep,
                    training ? gates + (off + b) * G + u.j0 : nullptr, stream_saved);
    if (stream_saved) store_fence();
  });
  final_state(step_rows, steps, B, P, out, h0, h_n);
  if (training) final_state(step_rows, steps, B, H, cells, c0, c_n);
}

template <typename T>
void lstm_backward(const SeqShape& s, const T* x, const T* h0, const T* c0, const LstmWeights<T>& w, const T* out,
                   const T* gates, const T* cells, const T* dout, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0,
                   const LstmGrads<T>& grads) {
  const Isa isa = active_isa();  // once: every table of this call is this ISA's
  const Ops<T>& kernels = ops<T>(isa);
  const LstmUnits<T>& units = lstm_units<T>(isa);
  DenormalsAreZero daz;
  const StepRows step_rows(s);
  const int64_t steps = s.steps, B = s.batch, H = s.hidden, P = s.h_width(), G = kLstmGates * H, nr = kernels.nr;
  const int64_t R = step_rows.total();
  const int64_t ldp = unaliased_stride<T>(G);  // dpre's row stride
  const bool projected = w.w_hr != nullptr;
  PackedB<T> whr = plain_panels<T>(P, H, nr);  // dm_t = dh_t @ W_hr
  T *dpre = nullptr, *dh_total = nullptr, *m = nullptr, *dm = nullptr, *prev = nullptr;
  const int64_t proj_work = projected ? P * H : 0;
  const int64_t weight_bytes = (G * P + proj_work) * int64_t(sizeof(T));  // W_hh (and W_hr), read at every step
  Scratch scratch(0);
  scratch.need(&dpre, R * ldp);
  const BackwardWeight<T> whh(w.w_hh, G, P, nr, B, steps, weight_bytes, scratch);  // dh_{t-1} = dpre_t @ W_hh
  if (projected) {
    scratch.need(&whr.data, whr.size());
    scratch.need(&dh_total, R * P);  // dout + the recurrent gradient, per row: dW_hr's left factor
    scratch.need(&m, R * H);         // o * tanh(c) per row: dW_hr's right factor
    scratch.need(&dm, B * H);
  }
  scratch.need(&prev, previous_states_size(step_rows) * P);
  T* xs = nullptr;
  scratch.need(&xs, loop_order_size(step_rows) * s.input);
  scratch.allocate();
  // dh0 and dc0 carry the running gradients w.r.t. h_t and c_t backwards through time (without dout_t). A row that
  // does not run at step t + 1 keeps dh_n, dc_n until its own last step.
  T* dh = dh0;
  T* dc = dc0;
  copy_or_zero(dh, dh_n, B * P);
  copy_or_zero(dc, dc_n, B * H);

  // As in the forward, slices of the batch rows only without a projection.
  const LoopPlan plan = plan_loop(LoopKind::kBackward, steps, B * (G * P + 2 * proj_work), weight_bytes, H, nr, B,
                                  whh.dot, weight_bytes, !projected);
  const int threads = plan.threads;
  const LoopItems& items = plan.items;
  const bool stream_dpre = stream_gradients(threads, R * ldp * int64_t(sizeof(T)));
  const UnitChunks& chunks = items.chunks;
  const UnitChunks proj_chunks{P, nr, chunks.items};  // slices of h's P units (the hidden units when P = H)
  // The elementwise backward of step t for hidden units u and rows [b0, min(b1, rows at t)); dh_t is dh (+ dout_t), or
  // dm with a projection.
  auto cell_grad = [&](int64_t t, const UnitSlice& u, int64_t b0, int64_t b1) {
    const int64_t n = std::min(b1, step_rows.rows(t)), off = step_rows.offset(t), loop_off = step_rows.loop_offset(t);
    const T* g_t = gates + off * G;
    const T* c_t = cells + off * H;
    const T* c_prev = t == 0 ? c0 : cells + step_rows.offset(t - 1) * H;
    const Peepholes<T> peep = w.peepholes.at(u.j0);
    T* dp = dpre + loop_off * ldp;
    for (int64_t b = b0; b < n; ++b) {
      const int64_t k = b * H + u.j0;
      if (projected)
        units.backward(u.n(), H, g_t + b * G + u.j0, c_t + k, c_prev + k, nullptr, dm + k, dc + k, dp + b * ldp + u.j0,
                       peep, m + loop_off * H + k, stream_dpre);
      else
        units.backward(u.n(), H, g_t + b * G + u.j0, c_t + k, c_prev + k, dout + off * H + k, dh + k, dc + k,
                       dp + b * ldp + u.j0, peep, nullptr, stream_dpre);
    }
    if (stream_dpre) store_fence();
  };

  const GradTerm<T> terms[] = {input_term(s, step_rows, x, xs, 0, G, grads.dw_ih),
                               hidden_term(s, step_rows, h0, out, prev, 0, G, grads.dw_hh)};
  auto input_grads = [&] { input_grad(kernels, s, step_rows, G, w.w_ih, dpre, ldp, dx); };
  auto weight_grads = [&](const FinalRows* ready) {
    weight_gradients(kernels, G, R, dpre, ldp, terms, 2, grads.db_ih, grads.db_hh, ready);
  };
  if (!projected) {
    FinalRows final_rows(R);
    auto loop = [&] {
      step_per_round_loop(kernels, threads, items, step_rows, steps, whh, dpre, ldp, dh, P, final_rows, cell_grad);
    };
    if (!backward_pass(threads, R * G * (s.input + P), final_rows, loop, input_grads, weight_grads)) return;
  } else {
    // Two rounds per step t (from the last): dh_t for these h units from step t + 1 and dh_total_t = dh_t + dout_t;
    // then dm_t = dh_total_t @ W_hr for these hidden units (it needs all of dh_total_t) and their elementwise
    // backward. A last round makes dh0.
    run_rounds(threads, chunks.items, Rounds(2 + 2 * steps), [&](int64_t round, int64_t item) {
      const UnitSlice u = chunks(item), pu = proj_chunks(item);
      if (round == 0) {
        whh.prepare(kernels, pu);
        pack_b(w.w_hr, H, whr, u.q0, u.q1);
        return;
      }
      const int64_t t = steps - 1 - (round - 1) / 2;
      if ((round - 1) % 2 == 0) {
        if (t + 1 < steps)  // dh_t (these h units) = dpre_{t+1} @ W_hh, for the rows that ran step t + 1
          whh.product(kernels, step_rows.rows(t + 1), dpre + step_rows.loop_offset(t + 1) * ldp, ldp, pu, dh, P, false,
                      false);
        if (t < 0) return;
        const int64_t off = step_rows.offset(t), loop_off = step_rows.loop_offset(t);
        for (int64_t b = 0; b < step_rows.rows(t); ++b)
          for (int64_t j = pu.j0; j < pu.j1; ++j)
            dh_total[(loop_off + b) * P + j] = dh[b * P + j] + dout[(off + b) * P + j];
        return;
      }
      const int64_t n = step_rows.rows(t);
      if (n == 0) return;
      if (u.n() > 0)
        kernels.gemm_panels(n, dh_total + step_rows.loop_offset(t) * P, P, 1, whr, 0, 1, u.q0, u.q1, dm, H, false,
                            nullptr);
      cell_grad(t, u, 0, B);
    });
    if (time_loops_cut_short()) return;  // (the gradients stay as they were)
    input_grads();
    weight_grads(nullptr);
  }
  if (projected) {
    const GradTerm<T> hr[] = {GradTerm<T>{m, R, nullptr, H, 0, P, grads.dw_hr, H}};
    weight_gradients(kernels, P, R, dh_total, P, hr, 1, static_cast<T*>(nullptr), static_cast<T*>(nullptr));
  }
  if (w.peepholes.i != nullptr) {  // dp_i, dp_f += dpre_{i,f} * c_{t-1};  dp_o += dpre_o * c_t (serial)
    for (int64_t t = 0; t < steps; ++t)
      for (int64_t b = 0; b < step_rows.rows(t); ++b) {
        const T* c_prev = t == 0 ? c0 + b * H : cells + (step_rows.offset(t - 1) + b) * H;
        const T* c_t = cells + (step_rows.offset(t) + b) * H;
        const T* dp = dpre + (step_rows.loop_offset(t) + b) * ldp;
        for (int64_t j = 0; j < H; ++j) {
          grads.dp_i[j] += dp[j] * c_prev[j];
          grads.dp_f[j] += dp[H + j] * c_prev[j];
          grads.dp_o[j] += dp[3 * H + j] * c_t[j];
        }
      }
  }
}

#define PYLSTM_INSTANTIATE(T)                                                                                     \
  template void lstm_forward<T>(const SeqShape&, const T*, const T*, const T*, const LstmWeights<T>&, T*, T*, T*,  \
                                T*, T*);                                                                           \
  template void lstm_backward<T>(const SeqShape&, const T*, const T*, const T*, const LstmWeights<T>&, const T*,   \
                                 const T*, const T*, const T*, const T*, const T*, T*, T*, T*, const LstmGrads<T>&);
PYLSTM_INSTANTIATE(float)
PYLSTM_INSTANTIATE(double)
#undef PYLSTM_INSTANTIATE

}  // namespace pylstm

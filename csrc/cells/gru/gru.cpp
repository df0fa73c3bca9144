#include "cells/gru/gru.h"

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
void gru_forward(const SeqShape& s, bool reset_after, const T* x, const T* h0, const GruWeights<T>& w, T* out, T* h_n,
                 T* gates) {
  const Isa isa = active_isa();  // once: every table of this call is this ISA's
  const Ops<T>& kernels = ops<T>(isa);
  const GruUnits<T>& units = gru_units<T>(isa);
  DenormalsAreZero daz;
  const StepRows step_rows(s);
  const int64_t steps = s.steps, B = s.batch, I = s.input, H = s.hidden, G = kGruGates * H, nr = kernels.nr;
  const bool training = gates != nullptr;
  // In training the gate math writes the saved gates' rows (width W): r, z, n [, hn].
  const int64_t W = gru_saved_width(H, reset_after);
  const bool stream_saved = training && stream_saved_gates(step_rows.total() * W * int64_t(sizeof(T)));
  const bool dot_recurrent = recurrent_by_dots(B, steps, G * H * int64_t(sizeof(T)));
  PackedB<T> whh = gate_panels<T>(H, H, kGruGates, nr);
  T *gh = nullptr, *gh_start = nullptr, *rh = nullptr;
  Scratch scratch(0);
  if (!dot_recurrent) scratch.need(&whh.data, whh.size());
  DotWeight<T> whh_dot(w.w_hh, kGruGates, H, H, steps, dot_recurrent, scratch);
  const int64_t recurrent_bytes = G * H * int64_t(sizeof(T));
  const LoopPlan plan = plan_loop(LoopKind::kForward, steps, B * G * (H + I), G * (H + I) * int64_t(sizeof(T)), H, nr,
                                  B, dot_recurrent, recurrent_bytes);
  const int threads = plan.threads;
  const LoopItems& items = plan.items;
  const ChunkedProjection<T> projection(kernels, s, step_rows, x, w.w_ih, kGruGates, w.b_ih != nullptr,
                                        items.by_rows(), scratch);
  scratch.need(&gh, B * G);  // the recurrent parts of a step: W_hh h (+ b_hn), or W_hr h, W_hz h, W_hn (r * h)
  if (reset_after) scratch.need(&gh_start, G);  // what W_hh h starts from: 0 in r and z, b_hn (or 0) in n
  else scratch.need(&rh, B * H);
  scratch.allocate();
  // w.b_hh adds to the projection where it only adds: r and z, and n too without reset_after (with it, b_hn sits
  // inside r * (W_hn h + b_hn)).
  if (w.b_ih != nullptr) fold_biases(w.b_ih, w.b_hh, G, reset_after ? 2 * H : G, projection.bias());
  if (reset_after) {
    std::fill(gh_start, gh_start + 2 * H, T(0));
    if (w.b_hh != nullptr) std::copy(w.b_hh + 2 * H, w.b_hh + G, gh_start + 2 * H);
    else std::fill(gh_start + 2 * H, gh_start + G, T(0));
  }

  // Round 0 packs (when any weight is packed); then a round per step, or two without reset_after: r and z (and
  // r * h) first, then n, which needs every unit of r * h (of its rows).
  const int64_t rounds_per_step = reset_after ? 1 : 2;
  const int64_t pack_rounds = !projection.packed_whole() && dot_recurrent && !whh_dot.copied ? 0 : 1;
  const PackedB<T>* whh_p = dot_recurrent ? nullptr : &whh;
  const Rounds rounds(pack_rounds, steps, rounds_per_step, dot_recurrent || projection.by_dots(), items.by_rows());
  run_rounds(threads, items.count(), rounds, [&](int64_t round, int64_t item) {
    const bool down = rounds.descending(round);
    if (round < pack_rounds) {
      const UnitSlice u = items.packing(item);
      projection.pack(u);
      if (!dot_recurrent) pack_gate_panels(kernels, w.w_hh, H, whh, u, 0, kGruGates);
      whh_dot.copy_rows(u, 0, kGruGates);
      return;
    }
    const UnitSlice u = items.units(item);
    const RowSlice r = items.rows(item);
    const int64_t t = (round - pack_rounds) / rounds_per_step, n = r.running(step_rows.rows(t));
    if (n == 0) return;  // none of these rows runs this step (nor any later one)
    const int64_t off = step_rows.offset(t) + r.b0;  // (the first of these rows)
    const bool second_half = (round - pack_rounds) % rounds_per_step == 1;
    if (!second_half) projection.project(t, u, r, down);
    T* pre = projection.step(t, r);
    T* saved = training ? gates + off * W : nullptr;
    const T* h_prev = (t == 0 ? h0 : out + step_rows.offset(t - 1) * H) + r.b0 * H;
    T* h = out + off * H;
    T* gh_rows = gh + r.b0 * G;
    T* rh_rows = reset_after ? nullptr : rh + r.b0 * H;
    if (reset_after) {
      gate_gemm(kernels, n, h_prev, H, whh_p, whh_dot.matrix(), whh_dot.ld, H, H, 0, kGruGates, u, gh_rows, G, false,
                down, gh_start);
      for (int64_t b = 0; b < n; ++b)
        units.forward_after(u.n(), H, pre + b * G + u.j0, gh_rows + b * G + u.j0, h_prev + b * H + u.j0,
                            h + b * H + u.j0, saved == nullptr ? nullptr : saved + b * W + u.j0, stream_saved);
    } else if (!second_half) {
      gate_gemm(kernels, n, h_prev, H, whh_p, whh_dot.matrix(), whh_dot.ld, H, H, 0, 2, u, gh_rows, G, false, down);
      for (int64_t b = 0; b < n; ++b)
        units.forward_before_reset_update(u.n(), H, pre + b * G + u.j0, gh_rows + b * G + u.j0, H,
                                          h_prev + b * H + u.j0, rh_rows + b * H + u.j0,
                                          saved == nullptr ? nullptr : saved + b * W + u.j0, stream_saved);
    } else {
      gate_gemm(kernels, n, rh_rows, H, whh_p, whh_dot.matrix(), whh_dot.ld, H, H, 2, 3, u, gh_rows, G, false, down);
      for (int64_t b = 0; b < n; ++b)
        units.forward_before_candidate(u.n(), H, pre + b * G + u.j0, gh_rows + b * G + 2 * H + u.j0,
                                       h_prev + b * H + u.j0, h + b * H + u.j0,
                                       saved == nullptr ? nullptr : saved + b * W + u.j0, stream_saved);
    }
    if (stream_saved) store_fence();
  });
  final_state(step_rows, steps, B, H, out, h0, h_n);
}

template <typename T>
void gru_backward(const SeqShape& s, bool reset_after, const T* x, const T* h0, const GruWeights<T>& w, const T* out,
                  const T* gates, const T* dout, const T* dh_n, T* dx, T* dh0, const GruGrads<T>& grads) {
  const Isa isa = active_isa();  // once: every table of this call is this ISA's
  const Ops<T>& kernels = ops<T>(isa);
  const GruUnits<T>& units = gru_units<T>(isa);
  DenormalsAreZero daz;
  const StepRows step_rows(s);
  const int64_t steps = s.steps, B = s.batch, H = s.hidden, G = kGruGates * H, W = gru_saved_width(H, reset_after);
  const int64_t nr = kernels.nr, R = step_rows.total();
  const int64_t ldg = unaliased_stride<T>(G);  // dgx's and dgh's row stride
  // Gradients of the ih and hh pre-activations (r, z, n blocks). They differ only in the n block with reset_after
  // (d(W_hn h + b_hn) = dn_pre * r); without it they are equal, and dW_hn needs r * h_{t-1} instead of h_{t-1}.
  T *dgx = nullptr, *dgh = nullptr, *rh = nullptr, *drh = nullptr, *prev = nullptr;
  const int64_t weight_bytes = G * H * int64_t(sizeof(T));  // W_hh, read at every step
  Scratch scratch(0);
  scratch.need(&dgx, R * ldg);
  // reset_after: dh += dgh_t @ W_hh
  const BackwardWeight<T> whh(w.w_hh, G, H, nr, B, steps, weight_bytes, scratch, reset_after);
  // reset_before: dh += d[r, z]_t @ W_h[rz], and d(r * h) = dn_t @ W_hn
  const BackwardWeight<T> whrz(w.w_hh, 2 * H, H, nr, B, steps, weight_bytes, scratch, !reset_after);
  const BackwardWeight<T> whn(w.w_hh + 2 * H * H, H, H, nr, B, steps, weight_bytes, scratch, !reset_after);
  if (reset_after) {
    scratch.need(&dgh, R * ldg);
  } else {
    scratch.need(&rh, R * H);
    scratch.need(&drh, B * H);
  }
  scratch.need(&prev, previous_states_size(step_rows) * H);
  T* xs = nullptr;
  scratch.need(&xs, loop_order_size(step_rows) * s.input);
  scratch.allocate();
  T* dh = dh0;  // running gradient w.r.t. h_t
  copy_or_zero(dh, dh_n, B * H);

  const LoopPlan plan = plan_loop(LoopKind::kBackward, steps, B * G * H, weight_bytes, H, nr, B,
                                  reset_after ? whh.dot : whrz.dot, weight_bytes);
  const int threads = plan.threads;
  const LoopItems& items = plan.items;
  // (reset_before reads a step's dn back within the step, for d(r * h): its gradients are not streamed)
  const bool stream_dg = reset_after && stream_gradients(threads, 2 * R * ldg * int64_t(sizeof(T)));
  // Round 0 packs. Then, for t = T-1 .. 0, each round first finishes these units' dh_t from step t + 1 (whose
  // pre-activation gradients are all done) and then does their elementwise backward of step t; without reset_after
  // a second round per step makes d(r * h) = dn @ W_hn, which needs every unit's dn (of its rows). A last round
  // makes dh0.
  const int64_t rounds_per_step = reset_after ? 1 : 2;
  const GradTerm<T> x_term = input_term(s, step_rows, x, xs, 0, G, grads.dw_ih);
  const GradTerm<T> h_term = hidden_term(s, step_rows, h0, out, prev, 0, reset_after ? G : 2 * H, grads.dw_hh);
  FinalRows final_rows(R);
  // With reset_after, batch 1-4 loops alternate the direction of their sweeps over W_hh^T (Rounds); the two rounds a
  // step of the other variant takes do not pair up with Rounds' steps (a round for dh0 comes last), so it does not.
  const Rounds rounds = reset_after ? Rounds(1, steps + 1, 1, whh.dot, items.by_rows())
                                   : Rounds(1, 1 + steps * rounds_per_step, 1, false, items.by_rows());
  auto loop = [&] {
  run_rounds(threads, items.count(), rounds, [&](int64_t round, int64_t item) {
    if (round == 0) {
      const UnitSlice u = items.packing(item);
      if (reset_after) {
        whh.prepare(kernels, u);
      } else {
        whrz.prepare(kernels, u);
        whn.prepare(kernels, u);
      }
      return;
    }
    const UnitSlice u = items.units(item);
    const RowSlice r = items.rows(item);
    const int64_t t = steps - 1 - (round - 1) / rounds_per_step;
    const bool second_half = (round - 1) % rounds_per_step == 1;
    if (!second_half && t + 1 < steps) {
      // dh_t += (recurrent pre-activation grads of t+1) @ W, for these rows that ran step t + 1
      const int64_t next = r.running(step_rows.rows(t + 1)), next_off = step_rows.loop_offset(t + 1) + r.b0;
      if (reset_after)
        whh.product(kernels, next, dgh + next_off * ldg, ldg, u, dh + r.b0 * H, H, true, rounds.descending(round));
      else whrz.product(kernels, next, dgx + next_off * ldg, ldg, u, dh + r.b0 * H, H, true, false);
    }
    if (t < 0) return;
    const int64_t n = r.running(step_rows.rows(t));
    if (n == 0) return;
    // Everything below from the first of these rows.
    const int64_t off = step_rows.offset(t) + r.b0, loop_off = step_rows.loop_offset(t) + r.b0;
    const T* g_t = gates + off * W;
    const T* h_prev = (t == 0 ? h0 : out + step_rows.offset(t - 1) * H) + r.b0 * H;
    const T* dout_t = dout + off * H;
    T* dx_pre = dgx + loop_off * ldg;
    T* dh_rows = dh + r.b0 * H;
    if (reset_after) {
      T* dh_pre = dgh + loop_off * ldg;
      for (int64_t b = 0; b < n; ++b) {
        const int64_t k = b * H + u.j0;
        units.backward_after(u.n(), H, g_t + b * W + u.j0, h_prev + k, dout_t + k, dh_rows + k,
                             dx_pre + b * ldg + u.j0, dh_pre + b * ldg + u.j0, stream_dg);
      }
      if (stream_dg) store_fence();
      if (items.count() == 1) final_rows.publish(loop_off);
    } else if (!second_half) {
      for (int64_t b = 0; b < n; ++b) {
        const int64_t k = b * H + u.j0;
        units.backward_before_update_candidate(u.n(), H, g_t + b * W + u.j0, h_prev + k, dout_t + k, dh_rows + k,
                                               dx_pre + b * ldg + u.j0);
      }
    } else {
      T* drh_rows = drh + r.b0 * H;
      whn.product(kernels, n, dx_pre + 2 * H, ldg, u, drh_rows, H, false, false);
      for (int64_t b = 0; b < n; ++b) {
        const int64_t k = b * H + u.j0;
        units.backward_before_reset(u.n(), g_t + b * W + u.j0, h_prev + k, drh_rows + k, dh_rows + k,
                                    dx_pre + b * ldg + u.j0, rh + loop_off * H + k);
      }
      if (items.count() == 1) final_rows.publish(loop_off);
    }
  });
  };
  auto input_grads = [&] { input_grad(kernels, s, step_rows, G, w.w_ih, dgx, ldg, dx); };
  auto weight_grads = [&](const FinalRows* ready) {
    if (reset_after) {
      weight_gradients(kernels, G, R, dgx, ldg, &x_term, 1, grads.db_ih, static_cast<T*>(nullptr), ready);
      weight_gradients(kernels, G, R, dgh, ldg, &h_term, 1, grads.db_hh, static_cast<T*>(nullptr), ready);
    } else {
      // One gradient for both biases; dW_hn pairs dn with r * h_{t-1} (kept as rh), dW_hr and dW_hz with h_{t-1}.
      const GradTerm<T> terms[] = {x_term, h_term,
                                   GradTerm<T>{rh, R, nullptr, H, 2 * H, G, grads.dw_hh + 2 * H * H, H}};
      weight_gradients(kernels, G, R, dgx, ldg, terms, 3, grads.db_ih, grads.db_hh, ready);
    }
  };
  // Without reset_after, dW_hn's factor r * h_{t-1} (rh) is made by the loop itself, and weight_gradients packs its
  // factors before it starts: its products then wait for the loop (no work counted as worth running beside it).
  backward_pass(threads, reset_after ? R * G * (s.input + H) : 0, final_rows, loop, input_grads, weight_grads);
}

#define PYLSTM_INSTANTIATE(T)                                                                                     \
  template void gru_forward<T>(const SeqShape&, bool, const T*, const T*, const GruWeights<T>&, T*, T*, T*);       \
  template void gru_backward<T>(const SeqShape&, bool, const T*, const T*, const GruWeights<T>&, const T*,          \
                                const T*, const T*, const T*, T*, T*, const GruGrads<T>&);
PYLSTM_INSTANTIATE(float)
PYLSTM_INSTANTIATE(double)
#undef PYLSTM_INSTANTIATE

}  // namespace pylstm

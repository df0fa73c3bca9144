#include "lstm.h"

#include "common.h"

namespace pylstm {

template <typename T>
void lstm_forward(const SeqShape& s, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                  const T* b_ih, const T* b_hh, T* out, T* h_n, T* c_n, T* gates, T* cells) {
  const Ops<T>& o = ops<T>();
  DenormalsAreZero daz;
  const int64_t steps = s.steps, B = s.batch, I = s.input, H = s.hidden, G = 4 * H, nr = o.nr;
  const bool training = gates != nullptr;
  // Training projects all steps' inputs straight into the saved gates; inference a chunk of steps at a time.
  const int64_t chunk = training ? steps : std::clamp<int64_t>((kProjectionRows + B - 1) / std::max<int64_t>(B, 1),
                                                               1, std::max<int64_t>(steps, 1));
  const bool dot_projection = chunk * B <= kDotRows, dot_recurrent = B <= kDotRows;
  PackedB<T> wih = gate_panels<T>(I, H, 4, nr), whh = gate_panels<T>(H, H, 4, nr);
  T* pre_chunk = nullptr;
  T* bias = nullptr;
  Scratch scratch(0);
  if (!dot_projection) scratch.need(&wih.data, wih.size());
  if (!dot_recurrent) scratch.need(&whh.data, whh.size());
  if (!training) scratch.need(&pre_chunk, chunk * B * G);
  if (b_ih != nullptr) scratch.need(&bias, G);
  scratch.allocate();
  if (b_ih != nullptr) fold_biases(b_ih, b_hh, G, G, bias);

  const int threads = loop_threads(steps, B * G * (H + I), G * (H + I) * int64_t(sizeof(T)), H, nr);
  const UnitChunks chunks = unit_chunks(threads, H, nr);
  run_rounds(threads, chunks.items, steps + 1, [&](int64_t round, int64_t item) {
    const UnitSlice u = chunks(item);
    if (round == 0) {
      if (!dot_projection) pack_gate_panels(w_ih, I, wih, u, 0, 4);
      if (!dot_recurrent) pack_gate_panels(w_hh, H, whh, u, 0, 4);
      return;
    }
    const int64_t t = round - 1;
    T* pre = training ? gates + t * B * G : pre_chunk + (t % chunk) * B * G;
    if (t % chunk == 0) {  // these units' columns of the input projection of steps t .. t + chunk
      const int64_t rows = std::min(chunk, steps - t) * B;
      fill_columns(pre, rows, G, bias, H, 0, 4, u);
      gate_gemm(o, rows, x + t * B * I, I, dot_projection ? nullptr : &wih, w_ih, I, H, 0, 4, u, pre, G, true);
    }
    const T* h_prev = t == 0 ? h0 : out + (t - 1) * B * H;
    const T* c_prev = t == 0 ? c0 : training ? cells + (t - 1) * B * H : c_n;
    T* h = out + t * B * H;
    T* c = training ? cells + t * B * H : c_n;  // inference updates c_n in place
    gate_gemm(o, B, h_prev, H, dot_recurrent ? nullptr : &whh, w_hh, H, H, 0, 4, u, pre, G, true);
    for (int64_t b = 0; b < B; ++b)
      o.lstm_forward_units(u.n(), H, pre + b * G + u.j0, c_prev + b * H + u.j0, c + b * H + u.j0,
                           h + b * H + u.j0, training);
  });
  const int64_t last = (steps - 1) * B * H;
  copy_or_zero(h_n, steps > 0 ? out + last : h0, B * H);
  if (steps == 0) copy_or_zero(c_n, c0, B * H);
  else if (training) copy_or_zero(c_n, cells + last, B * H);
}

template <typename T>
void lstm_backward(const SeqShape& s, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                   const T* out, const T* gates, const T* cells, const T* dout, const T* dh_n, const T* dc_n, T* dx,
                   T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh) {
  const Ops<T>& o = ops<T>();
  DenormalsAreZero daz;
  const int64_t steps = s.steps, B = s.batch, H = s.hidden, G = 4 * H, nr = o.nr;
  PackedB<T> whh = plain_panels<T>(G, H, nr);  // dh_{t-1} = dpre_t @ W_hh
  T* dpre = nullptr;
  Scratch scratch(0);
  scratch.need(&dpre, steps * B * G);
  scratch.need(&whh.data, whh.size());
  scratch.allocate();
  // dh0 and dc0 carry the running gradients w.r.t. h_t and c_t backwards through time.
  T* dh = dh0;
  T* dc = dc0;
  copy_or_zero(dh, dh_n, B * H);
  copy_or_zero(dc, dc_n, B * H);

  const int threads = loop_threads(steps, B * G * H, G * H * int64_t(sizeof(T)), H, nr);
  const UnitChunks chunks = unit_chunks(threads, H, nr);
  // Round 0 packs; round r = 1 .. T handles step t = T - r: first dh for these units from step t + 1
  // (dh_{t} = dpre_{t+1} @ W_hh, all of dpre_{t+1} being done), then their elementwise backward; a last round
  // makes dh0.
  run_rounds(threads, chunks.items, steps + 2, [&](int64_t round, int64_t item) {
    const UnitSlice u = chunks(item);
    if (round == 0) {
      pack_b(w_hh, H, false, whh, u.q0, u.q1);
      return;
    }
    const int64_t t = steps - round;
    if (t + 1 < steps && u.n() > 0) o.gemm_panels(B, dpre + (t + 1) * B * G, G, 1, whh, 0, 1, u.q0, u.q1, dh, H, false);
    if (t < 0) return;
    const T* g_t = gates + t * B * G;
    const T* c_t = cells + t * B * H;
    const T* c_prev = t == 0 ? c0 : cells + (t - 1) * B * H;
    T* dp = dpre + t * B * G;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t k = b * H + u.j0;
      o.lstm_backward_units(u.n(), H, g_t + b * G + u.j0, c_t + k, c_prev + k, dout + t * B * H + k, dh + k, dc + k,
                            dp + b * G + u.j0);
    }
  });
  input_grad(s, G, w_ih, dpre, dx);
  const GradTerm<T> terms[] = {input_term(s, x, 0, G, dw_ih), hidden_term(s, h0, out, 0, G, dw_hh)};
  weight_gradients(G, steps * B, dpre, G, terms, 2, db_ih, db_hh);
}

#define PYLSTM_INSTANTIATE(T)                                                                                     \
  template void lstm_forward<T>(const SeqShape&, const T*, const T*, const T*, const T*, const T*, const T*,        \
                                const T*, T*, T*, T*, T*, T*);                                                      \
  template void lstm_backward<T>(const SeqShape&, const T*, const T*, const T*, const T*, const T*, const T*,       \
                                 const T*, const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, T*, T*);
PYLSTM_INSTANTIATE(float)
PYLSTM_INSTANTIATE(double)
#undef PYLSTM_INSTANTIATE

}  // namespace pylstm

#include "lstm.h"

#include <algorithm>
#include <vector>

#include "../primitives/activations.h"
#include "common.h"

namespace pylstm {

template <typename T>
void lstm_forward(const SeqShape& s, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                  const T* b_ih, const T* b_hh, T* out, T* h_n, T* c_n, T* gates, T* cells) {
  const int64_t B = s.batch, H = s.hidden, G = 4 * H;
  const bool training = gates != nullptr;
  // Pre-activations of all steps; in training they are turned into the saved post-activation gates in place.
  std::vector<T> scratch(training ? 0 : static_cast<size_t>(s.steps * B * G));
  T* pre = training ? gates : scratch.data();
  input_projection(s, G, x, w_ih, b_ih, b_hh, pre, G);
  const std::vector<T> w_hh_t = transposed(w_hh, G, H);

  const T* h_prev = h0;
  const T* c_prev = c0;
  for (int64_t t = 0; t < s.steps; ++t) {
    T* p = pre + t * B * G;
    gemm(B, G, H, h_prev, H, int64_t(1), w_hh_t.data(), G, p, G, true);
    T* h = out + t * B * H;
    T* c = training ? cells + t * B * H : c_n;  // inference updates c_n in place, element by element
    for (int64_t b = 0; b < B; ++b) {
      T* pb = p + b * G;
      for (int64_t j = 0; j < H; ++j) {
        const T i = sigmoid(pb[j]), f = sigmoid(pb[H + j]), g = tanh_(pb[2 * H + j]), o = sigmoid(pb[3 * H + j]);
        const T cj = f * c_prev[b * H + j] + i * g;
        c[b * H + j] = cj;
        h[b * H + j] = o * tanh_(cj);
        pb[j] = i, pb[H + j] = f, pb[2 * H + j] = g, pb[3 * H + j] = o;
      }
    }
    h_prev = h;
    c_prev = c;
  }
  std::copy(h_prev, h_prev + B * H, h_n);
  if (c_prev != c_n) std::copy(c_prev, c_prev + B * H, c_n);
}

template <typename T>
void lstm_backward(const SeqShape& s, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                   const T* out, const T* gates, const T* cells, const T* dout, const T* dh_n, const T* dc_n, T* dx,
                   T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh) {
  const int64_t B = s.batch, H = s.hidden, G = 4 * H;
  std::vector<T> dpre(static_cast<size_t>(s.steps * B * G));
  // dh0 and dc0 carry the running gradient w.r.t. h_t and c_t backwards through time.
  T* dh = dh0;
  T* dc = dc0;
  copy_or_zero(dh, dh_n, B * H);
  copy_or_zero(dc, dc_n, B * H);
  for (int64_t t = s.steps - 1; t >= 0; --t) {
    const T* gt = gates + t * B * G;
    const T* c_t = cells + t * B * H;
    const T* c_prev = t == 0 ? c0 : cells + (t - 1) * B * H;
    const T* dout_t = dout + t * B * H;
    T* dp = dpre.data() + t * B * G;
    for (int64_t b = 0; b < B; ++b) {
      const T* gb = gt + b * G;
      T* db = dp + b * G;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T i = gb[j], f = gb[H + j], g = gb[2 * H + j], o = gb[3 * H + j];
        const T dht = dh[k] + dout_t[k];
        const T tanh_c = tanh_(c_t[k]);
        const T dct = dc[k] + dht * o * (T(1) - tanh_c * tanh_c);
        db[j] = dct * g * i * (T(1) - i);
        db[H + j] = dct * c_prev[k] * f * (T(1) - f);
        db[2 * H + j] = dct * i * (T(1) - g * g);
        db[3 * H + j] = dht * tanh_c * o * (T(1) - o);
        dc[k] = dct * f;
      }
    }
    gemm(B, H, G, dp, G, int64_t(1), w_hh, H, dh, H, false);  // dh_{t-1} = dpre_t @ W_hh
  }
  input_and_bias_grads(s, G, x, w_ih, dpre.data(), dpre.data(), dx, dw_ih, db_ih, db_hh);
  add_recurrent_weight_grad(s, G, dpre.data(), G, h0, out, dw_hh);
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

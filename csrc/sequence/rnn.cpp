#include "rnn.h"

#include <algorithm>
#include <vector>

#include "../primitives/activations.h"
#include "common.h"

namespace pylstm {

template <typename T>
void rnn_forward(const SeqShape& s, Nonlinearity act, const T* x, const T* h0, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, T* out, T* h_n) {
  const int64_t B = s.batch, H = s.hidden;
  // The input projection goes straight into out; each step adds its recurrent part and activates in place.
  input_projection(s, H, x, w_ih, b_ih, b_hh, out, H);
  const std::vector<T> w_hh_t = transposed(w_hh, H, H);
  const T* h_prev = h0;
  for (int64_t t = 0; t < s.steps; ++t) {
    T* h = out + t * B * H;
    gemm(B, H, H, h_prev, H, int64_t(1), w_hh_t.data(), H, h, H, true);
    if (act == Nonlinearity::kTanh)
      for (int64_t k = 0; k < B * H; ++k) h[k] = tanh_(h[k]);
    else
      for (int64_t k = 0; k < B * H; ++k) h[k] = h[k] > T(0) ? h[k] : (h[k] == h[k] ? T(0) : h[k]);  // NaN stays
    h_prev = h;
  }
  std::copy(h_prev, h_prev + B * H, h_n);
}

template <typename T>
void rnn_backward(const SeqShape& s, Nonlinearity act, const T* x, const T* h0, const T* w_ih, const T* w_hh,
                  const T* out, const T* dout, const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh) {
  const int64_t B = s.batch, H = s.hidden;
  std::vector<T> dpre(static_cast<size_t>(s.steps * B * H));
  T* dh = dh0;
  copy_or_zero(dh, dh_n, B * H);
  for (int64_t t = s.steps - 1; t >= 0; --t) {
    const T* h = out + t * B * H;
    const T* dout_t = dout + t * B * H;
    T* dp = dpre.data() + t * B * H;
    if (act == Nonlinearity::kTanh)
      for (int64_t k = 0; k < B * H; ++k) dp[k] = (dh[k] + dout_t[k]) * (T(1) - h[k] * h[k]);
    else
      for (int64_t k = 0; k < B * H; ++k) dp[k] = (dh[k] + dout_t[k]) * (h[k] > T(0) ? T(1) : T(0));
    gemm(B, H, H, dp, H, int64_t(1), w_hh, H, dh, H, false);
  }
  input_and_bias_grads(s, H, x, w_ih, dpre.data(), dpre.data(), dx, dw_ih, db_ih, db_hh);
  add_recurrent_weight_grad(s, H, dpre.data(), H, h0, out, dw_hh);
}

#define PYLSTM_INSTANTIATE(T)                                                                                      \
  template void rnn_forward<T>(const SeqShape&, Nonlinearity, const T*, const T*, const T*, const T*, const T*,    \
                               const T*, T*, T*);                                                                  \
  template void rnn_backward<T>(const SeqShape&, Nonlinearity, const T*, const T*, const T*, const T*, const T*,   \
                                const T*, const T*, T*, T*, T*, T*, T*, T*);
PYLSTM_INSTANTIATE(float)
PYLSTM_INSTANTIATE(double)
#undef PYLSTM_INSTANTIATE

}  // namespace pylstm

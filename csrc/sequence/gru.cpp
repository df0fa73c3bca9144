#include "gru.h"

#include <algorithm>
#include <vector>

#include "../primitives/activations.h"
#include "common.h"

namespace pylstm {

template <typename T>
void gru_forward(const SeqShape& s, bool reset_after, const T* x, const T* h0, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, T* out, T* h_n, T* gates) {
  const int64_t B = s.batch, H = s.hidden, G = 3 * H;
  const bool training = gates != nullptr;
  // Input projection of all steps, r, z, n blocks. In training it is written straight into the saved rows (width W)
  // and turned into post-activation gates in place. b_hh folds in where it only adds: the r and z blocks, and with
  // reset_after = false the n block too (with reset_after, b_hn sits inside r * (W_hn h + b_hn)).
  const int64_t W = training ? gru_saved_width(H, reset_after) : G;
  std::vector<T> scratch(training ? 0 : static_cast<size_t>(s.steps * B * G));
  T* pre = training ? gates : scratch.data();
  std::vector<T> b_fold;
  if (b_ih != nullptr) {
    b_fold.assign(b_ih, b_ih + G);
    for (int64_t k = 0; k < (reset_after ? 2 * H : G); ++k) b_fold[k] += b_hh[k];
  }
  input_projection(s, G, x, w_ih, b_ih ? b_fold.data() : nullptr, static_cast<const T*>(nullptr), pre, W);
  const std::vector<T> w_hh_t = transposed(w_hh, G, H);  // (H, 3H): columns r, z, n

  // Per step: the recurrent part of r, z, n (reset_after) or of r, z then n from r * h (reset_before).
  std::vector<T> gh(static_cast<size_t>(B * G));
  std::vector<T> rh(reset_after ? 0 : static_cast<size_t>(B * H));
  const T* h_prev = h0;
  for (int64_t t = 0; t < s.steps; ++t) {
    T* p = pre + t * B * W;
    T* h = out + t * B * H;
    if (reset_after) {
      fill_rows(gh.data(), B, G, G, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr));
      if (b_hh != nullptr)
        for (int64_t b = 0; b < B; ++b) std::copy(b_hh + 2 * H, b_hh + G, gh.data() + b * G + 2 * H);
      gemm(B, G, H, h_prev, H, int64_t(1), w_hh_t.data(), G, gh.data(), G, true);
      for (int64_t b = 0; b < B; ++b) {
        T* pb = p + b * W;
        const T* ghb = gh.data() + b * G;
        for (int64_t j = 0; j < H; ++j) {
          const int64_t k = b * H + j;
          const T r = sigmoid(pb[j] + ghb[j]);
          const T z = sigmoid(pb[H + j] + ghb[H + j]);
          const T hn = ghb[2 * H + j];
          const T n = tanh_(pb[2 * H + j] + r * hn);
          h[k] = (T(1) - z) * n + z * h_prev[k];
          if (training) pb[j] = r, pb[H + j] = z, pb[2 * H + j] = n, pb[3 * H + j] = hn;
        }
      }
    } else {
      gemm(B, 2 * H, H, h_prev, H, int64_t(1), w_hh_t.data(), G, gh.data(), G, false);
      for (int64_t b = 0; b < B; ++b) {
        T* pb = p + b * W;
        const T* ghb = gh.data() + b * G;
        for (int64_t j = 0; j < H; ++j) {
          const T r = sigmoid(pb[j] + ghb[j]);
          const T z = sigmoid(pb[H + j] + ghb[H + j]);
          pb[j] = r, pb[H + j] = z;  // scratch or saved, either way r and z are needed below
          rh[b * H + j] = r * h_prev[b * H + j];
        }
      }
      gemm(B, H, H, rh.data(), H, int64_t(1), w_hh_t.data() + 2 * H, G, gh.data() + 2 * H, G, false);
      for (int64_t b = 0; b < B; ++b) {
        T* pb = p + b * W;
        const T* ghb = gh.data() + b * G;
        for (int64_t j = 0; j < H; ++j) {
          const int64_t k = b * H + j;
          const T z = pb[H + j];
          const T n = tanh_(pb[2 * H + j] + ghb[2 * H + j]);
          h[k] = (T(1) - z) * n + z * h_prev[k];
          pb[2 * H + j] = n;
        }
      }
    }
    h_prev = h;
  }
  std::copy(h_prev, h_prev + B * H, h_n);
}

template <typename T>
void gru_backward(const SeqShape& s, bool reset_after, const T* x, const T* h0, const T* w_ih, const T* w_hh,
                  const T* out, const T* gates, const T* dout, const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh,
                  T* db_ih, T* db_hh) {
  const int64_t B = s.batch, H = s.hidden, G = 3 * H, W = gru_saved_width(H, reset_after);
  const size_t all_rows = static_cast<size_t>(s.steps * B);
  // Gradients of the ih and hh pre-activations (r, z, n blocks). They differ only in the n block with reset_after
  // (d(W_hn h + b_hn) = dn_pre * r); without it they are equal, and dW_hn needs r * h_{t-1} instead of h_{t-1}.
  std::vector<T> dgx(all_rows * G);
  std::vector<T> dgh(reset_after ? all_rows * G : 0);
  std::vector<T> rh(reset_after ? 0 : all_rows * H);
  std::vector<T> drh(reset_after ? 0 : static_cast<size_t>(B * H));
  T* dh = dh0;  // running gradient w.r.t. h_t
  copy_or_zero(dh, dh_n, B * H);
  for (int64_t t = s.steps - 1; t >= 0; --t) {
    const T* gt = gates + t * B * W;
    const T* h_prev = t == 0 ? h0 : out + (t - 1) * B * H;
    const T* dout_t = dout + t * B * H;
    T* dx_pre = dgx.data() + t * B * G;
    if (reset_after) {
      T* dh_pre = dgh.data() + t * B * G;
      for (int64_t b = 0; b < B; ++b) {
        const T* gb = gt + b * W;
        for (int64_t j = 0; j < H; ++j) {
          const int64_t k = b * H + j;
          const T r = gb[j], z = gb[H + j], n = gb[2 * H + j], hn = gb[3 * H + j];
          const T dht = dh[k] + dout_t[k];
          const T dn = dht * (T(1) - z) * (T(1) - n * n);
          const T dz = dht * (h_prev[k] - n) * z * (T(1) - z);
          const T dr = dn * hn * r * (T(1) - r);
          T* dxb = dx_pre + b * G;
          T* dhb = dh_pre + b * G;
          dxb[j] = dhb[j] = dr;
          dxb[H + j] = dhb[H + j] = dz;
          dxb[2 * H + j] = dn;
          dhb[2 * H + j] = dn * r;
          dh[k] = dht * z;
        }
      }
      gemm(B, H, G, dh_pre, G, int64_t(1), w_hh, H, dh, H, true);  // dh_{t-1} += dgh_t @ W_hh
    } else {
      T* rh_t = rh.data() + t * B * H;
      for (int64_t b = 0; b < B; ++b) {
        const T* gb = gt + b * W;
        for (int64_t j = 0; j < H; ++j) {
          const int64_t k = b * H + j;
          const T z = gb[H + j], n = gb[2 * H + j];
          const T dht = dh[k] + dout_t[k];
          dx_pre[b * G + H + j] = dht * (h_prev[k] - n) * z * (T(1) - z);
          dx_pre[b * G + 2 * H + j] = dht * (T(1) - z) * (T(1) - n * n);
          dh[k] = dht * z;
        }
      }
      // d(r * h_{t-1}) = dn_pre @ W_hn, then the r gate and the two paths into h_{t-1}.
      gemm(B, H, H, dx_pre + 2 * H, G, int64_t(1), w_hh + 2 * H * H, H, drh.data(), H, false);
      for (int64_t b = 0; b < B; ++b) {
        const T* gb = gt + b * W;
        for (int64_t j = 0; j < H; ++j) {
          const int64_t k = b * H + j;
          const T r = gb[j];
          dx_pre[b * G + j] = drh[k] * h_prev[k] * r * (T(1) - r);
          dh[k] += drh[k] * r;
          rh_t[k] = r * h_prev[k];
        }
      }
      gemm(B, H, 2 * H, dx_pre, G, int64_t(1), w_hh, H, dh, H, true);  // dh_{t-1} += d[r,z]_pre @ W_h[rz]
    }
  }
  const T* dh_pre_all = reset_after ? dgh.data() : dgx.data();
  input_and_bias_grads(s, G, x, w_ih, dgx.data(), dh_pre_all, dx, dw_ih, db_ih, db_hh);
  if (reset_after) {
    add_recurrent_weight_grad(s, G, dh_pre_all, G, h0, out, dw_hh);
  } else {
    add_recurrent_weight_grad(s, 2 * H, dh_pre_all, G, h0, out, dw_hh);
    // dW_hn += sum_t dn_pre_t^T (r_t * h_{t-1}): r * h of every step is stored contiguously.
    gemm(H, H, s.steps * B, dh_pre_all + 2 * H, int64_t(1), G, rh.data(), H, dw_hh + 2 * H * H, H, true);
  }
}

#define PYLSTM_INSTANTIATE(T)                                                                                    \
  template void gru_forward<T>(const SeqShape&, bool, const T*, const T*, const T*, const T*, const T*, const T*, \
                               T*, T*, T*);                                                                      \
  template void gru_backward<T>(const SeqShape&, bool, const T*, const T*, const T*, const T*, const T*,          \
                                const T*, const T*, const T*, T*, T*, T*, T*, T*, T*);
PYLSTM_INSTANTIATE(float)
PYLSTM_INSTANTIATE(double)
#undef PYLSTM_INSTANTIATE

}  // namespace pylstm

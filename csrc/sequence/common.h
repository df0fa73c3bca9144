// Pieces every sequence kernel shares: the input projection before the time loop and the GEMMs after it.
#pragma once
#include <vector>

#include "../primitives/gemm.h"
#include "shape.h"

namespace pylstm {

// w (rows, cols) -> w^T (cols, rows): weights enter the GEMMs as the B operand, so each is transposed once per
// call (never per step).
template <typename T>
std::vector<T> transposed(const T* w, int64_t rows, int64_t cols) {
  std::vector<T> t(static_cast<size_t>(rows * cols));
  transpose(w, rows, cols, cols, t.data());
  return t;
}

// pre[:, 0:N] = x (T*B, I) @ w_ih^T + bias_a + bias_b, as one GEMM over all T*B rows.
//   w_ih (N, I); bias_a, bias_b (N,) or null; pre (T*B, ld) with ld >= N.
template <typename T>
void input_projection(const SeqShape& s, int64_t N, const T* x, const T* w_ih, const T* bias_a, const T* bias_b,
                      T* pre, int64_t ld) {
  const int64_t rows = s.steps * s.batch;
  fill_rows(pre, rows, N, ld, bias_a, bias_b);
  const std::vector<T> w_ih_t = transposed(w_ih, N, s.input);
  gemm(rows, N, s.input, x, s.input, int64_t(1), w_ih_t.data(), N, pre, ld, /*accumulate=*/true);
}

// dw (M, H) += sum over steps t of dpre[t]^T (M, B) @ h_{t-1} (B, H), where h_{-1} = h0 (B, H) and
// h_t = hs[t] ((T-1, B, H) used): two GEMMs, one for step 0 and one over the remaining (T-1)*B rows.
//   dpre (T*B, ld), its first M columns used.
template <typename T>
void add_recurrent_weight_grad(const SeqShape& s, int64_t M, const T* dpre, int64_t ld, const T* h0, const T* hs,
                               T* dw) {
  const int64_t B = s.batch, H = s.hidden;
  if (s.steps == 0) return;
  gemm(M, H, B, dpre, int64_t(1), ld, h0, H, dw, H, true);
  gemm(M, H, (s.steps - 1) * B, dpre + B * ld, int64_t(1), ld, hs, H, dw, H, true);
}

// After the time loop: dx = dpre_ih @ w_ih, dw_ih += dpre_ih^T x, db_ih += column sums of dpre_ih, and
// db_hh += column sums of dpre_hh, each one pass over all T*B rows.
//   dpre_ih, dpre_hh (T*B, N) contiguous (the same pointer when the hh pre-activations' gradient equals the ih one)
//   w_ih (N, I), x (T, B, I), dx (T, B, I), dw_ih (N, I), db_ih/db_hh (N,) or null.
template <typename T>
void input_and_bias_grads(const SeqShape& s, int64_t N, const T* x, const T* w_ih, const T* dpre_ih,
                          const T* dpre_hh, T* dx, T* dw_ih, T* db_ih, T* db_hh) {
  const int64_t rows = s.steps * s.batch, I = s.input;
  gemm(rows, I, N, dpre_ih, N, int64_t(1), w_ih, I, dx, I, false);
  gemm(N, I, rows, dpre_ih, int64_t(1), N, x, I, dw_ih, I, true);
  if (db_ih != nullptr) add_column_sums(dpre_ih, rows, N, N, db_ih);
  if (db_hh != nullptr) add_column_sums(dpre_hh, rows, N, N, db_hh);
}

// dst (B, H) = src (B, H), or zeros when src is null.
template <typename T>
void copy_or_zero(T* dst, const T* src, int64_t n) {
  for (int64_t k = 0; k < n; ++k) dst[k] = src ? src[k] : T(0);
}

}  // namespace pylstm

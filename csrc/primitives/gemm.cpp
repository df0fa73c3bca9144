#include "gemm.h"

#include <algorithm>

#include "parallel.h"

namespace pylstm {

namespace {

// Columns of C per task: a strip of C's row plus the matching strip of one B row stay in L1.
constexpr int64_t kColumnBlock = 256;
// Rows of C updated together, so every loaded strip of B is used this many times.
constexpr int64_t kRowBlock = 4;

// C[m0:m0+R, n0:n0+nb] += A[m0:m0+R, :] @ B[:, n0:n0+nb] for R = kRowBlock rows (fixed, so the inner loop unrolls).
template <typename T>
inline void row_block(int64_t K, int64_t nb, const T* A, int64_t as_m, int64_t as_k, const T* B, int64_t ldb,
                      T* C, int64_t ldc) {
  T* __restrict__ c0 = C;
  T* __restrict__ c1 = C + ldc;
  T* __restrict__ c2 = C + 2 * ldc;
  T* __restrict__ c3 = C + 3 * ldc;
  for (int64_t k = 0; k < K; ++k) {
    const T a0 = A[k * as_k], a1 = A[as_m + k * as_k], a2 = A[2 * as_m + k * as_k], a3 = A[3 * as_m + k * as_k];
    const T* __restrict__ b = B + k * ldb;
    for (int64_t n = 0; n < nb; ++n) {
      const T bn = b[n];
      c0[n] += a0 * bn;
      c1[n] += a1 * bn;
      c2[n] += a2 * bn;
      c3[n] += a3 * bn;
    }
  }
}

template <typename T>
inline void single_row(int64_t K, int64_t nb, const T* A, int64_t as_k, const T* B, int64_t ldb, T* C) {
  T* __restrict__ c = C;
  for (int64_t k = 0; k < K; ++k) {
    const T a = A[k * as_k];
    const T* __restrict__ b = B + k * ldb;
    for (int64_t n = 0; n < nb; ++n) c[n] += a * b[n];
  }
}

}  // namespace

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t as_m, int64_t as_k, const T* B, int64_t ldb, T* C,
          int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  const int64_t column_blocks = (N + kColumnBlock - 1) / kColumnBlock;
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(M * N * K), column_blocks));
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t cb = 0; cb < column_blocks; ++cb) {
    const int64_t n0 = cb * kColumnBlock;
    const int64_t nb = std::min(kColumnBlock, N - n0);
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::fill(C + m * ldc + n0, C + m * ldc + n0 + nb, T(0));
    int64_t m = 0;
    for (; m + kRowBlock <= M; m += kRowBlock)
      row_block(K, nb, A + m * as_m, as_m, as_k, B + n0, ldb, C + m * ldc + n0, ldc);
    for (; m < M; ++m) single_row(K, nb, A + m * as_m, as_k, B + n0, ldb, C + m * ldc + n0);
  }
}

template <typename T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile)
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) dst[c * rows + r] = src[r * ld_src + c];
}

template <typename T>
void add_column_sums(const T* src, int64_t rows, int64_t cols, int64_t ld, T* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict__ row = src + r * ld;
    T* __restrict__ d = dst;
    for (int64_t c = 0; c < cols; ++c) d[c] += row[c];
  }
}

template <typename T>
void fill_rows(T* dst, int64_t rows, int64_t cols, int64_t ld, const T* a, const T* b) {
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict__ d = dst + r * ld;
    if (a == nullptr) std::fill(d, d + cols, T(0));
    else if (b == nullptr) std::copy(a, a + cols, d);
    else for (int64_t c = 0; c < cols; ++c) d[c] = a[c] + b[c];
  }
}

#define PYLSTM_INSTANTIATE(T)                                                                                   \
  template void gemm<T>(int64_t, int64_t, int64_t, const T*, int64_t, int64_t, const T*, int64_t, T*, int64_t, \
                        bool);                                                                                  \
  template void transpose<T>(const T*, int64_t, int64_t, int64_t, T*);                                          \
  template void add_column_sums<T>(const T*, int64_t, int64_t, int64_t, T*);                                    \
  template void fill_rows<T>(T*, int64_t, int64_t, int64_t, const T*, const T*);
PYLSTM_INSTANTIATE(float)
PYLSTM_INSTANTIATE(double)
#undef PYLSTM_INSTANTIATE

}  // namespace pylstm

// The parallel GEMM driver for the big products outside the time loops (dx and the weight gradients).
#pragma once
#include <cstdint>

namespace pylstm {

// C (M, N) = [C +] A (M, K) @ B (K, N), with the active ISA's micro-kernels.
//   A: element (m, k) at A[m * a_row_stride + k * a_col_stride] (so A^T of a stored matrix is just other strides).
//   B: b_transposed = false: the row-major (K, N) matrix at B with leading dimension ldb;
//      b_transposed = true:  W^T for the row-major (N, K) matrix W at B with leading dimension ldb.
//   C: row-major, leading dimension ldc; overwritten, or added to when `accumulate`. Must not overlap A or B.
// B is packed once into the calling thread's workspace. Threads split C by row blocks or by column panels, never
// the sum over k, so results are bitwise identical for any thread count.
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row_stride, int64_t a_col_stride, const T* B,
          int64_t ldb, bool b_transposed, T* C, int64_t ldc, bool accumulate);

// dst (N,) += column sums of src (rows, N) with leading dimension ld, summed in increasing row order; a non-null
// dst2 gets the same sums added (the two bias gradients of one pre-activation gradient).
template <typename T>
void add_column_sums(const T* src, int64_t rows, int64_t N, int64_t ld, T* dst, T* dst2 = nullptr);

}  // namespace pylstm

// Dense matrix building blocks for the sequence kernels: a portable scalar GEMM and its small helpers.
// Row-major throughout. None of these allocate.
#pragma once
#include <cstdint>

namespace pylstm {

// C (M, N) = [C +] A (M, K) @ B (K, N).
//   A: element (m, k) is A[m * a_row_stride + k * a_col_stride], so A^T of a row-major (K, M) matrix with leading
//      dimension ld is passed as (a_row_stride, a_col_stride) = (1, ld), and a plain row-major A as (ld, 1).
//   B: row-major, leading dimension ldb.  C: row-major, leading dimension ldc; overwritten, or added to when
//      `accumulate`.  C must not overlap A or B.
// The sum over k runs in increasing k for every element, and threads split C's columns only, so results are
// bitwise identical for any thread count.
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row_stride, int64_t a_col_stride, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate);

// dst (cols, rows) = src (rows, cols)^T, src with leading dimension ld_src, dst contiguous.
template <typename T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst);

// dst (cols,) += column sums of src (rows, cols) with leading dimension ld, summed in increasing row order.
template <typename T>
void add_column_sums(const T* src, int64_t rows, int64_t cols, int64_t ld, T* dst);

// Every row of dst (rows, cols) with leading dimension ld = a (cols,) [+ b (cols,)]; a null `a` means zeros,
// a null `b` nothing.
template <typename T>
void fill_rows(T* dst, int64_t rows, int64_t cols, int64_t ld, const T* a, const T* b);

}  // namespace pylstm

// The building blocks of GEMM, activations and softmax rows, one table per ISA and dtype (isa.h). The
// implementations are simd/gemm_inl.h and simd/rows_inl.h, compiled once per ISA in isa_<name>.cpp.
//
// Argument conventions: row-major; "in"/"out" as documented at each implementation. A "block" of a packed B is a
// group of columns packed on its own (packed.h): a weight of G blocks of H columns each is multiplied a slice of
// columns of every block at a time.
#pragma once
#include <cstdint>

#include "primitives/isa.h"
#include "primitives/packed.h"

namespace pylstm {

template <typename T>
struct Ops {
  int64_t nr;  // panel width of PackedB for gemm_panels

  // C[:, columns of panels q0..q1 of blocks g0..g1 of B] [+]= A (M, K) @ B; A element (m, k) at
  // A[m * as_m + k * as_k]. With `start` (not null: a row indexed like C's columns, e.g. biases), every row of C is
  // start + A @ B instead, and C is not read. The same for gemm_dot and gemm_weight_slices.
  void (*gemm_panels)(int64_t M, const T* A, int64_t as_m, int64_t as_k, const PackedB<T>& B, int64_t g0, int64_t g1,
                      int64_t q0, int64_t q1, T* C, int64_t ldc, bool accumulate, const T* start);
  // The two halves of gemm_panels, for callers that use one packed A block against several B: a (mc, kc) block of A
  // packed into dst (mc * kc + kLanes values), with row_sums (if not null) += the block's row sums; then
  // C[:, those panels' columns] [+]= the packed block @ B[k0 : k0 + kc, those columns].
  int64_t mc, kc;  // the block sizes gemm_panels uses
  void (*pack_a_block)(int64_t mc, int64_t kc, const T* A, int64_t as_m, int64_t as_k, T* dst, T* row_sums);
  void (*gemm_a_packed)(int64_t mc, int64_t kc, const T* a_packed, const PackedB<T>& B, int64_t k0, int64_t g0,
                        int64_t g1, int64_t q0, int64_t q1, T* C, int64_t ldc, bool accumulate);
  // C[:, n_begin..n_end) [+]= A (M, K) @ W^T, W row-major (N, K): dot products, no packing (for M of a few rows);
  // W's rows read from the last group of four down when `descending` (the same values either way).
  void (*gemm_dot)(int64_t M, int64_t n_begin, int64_t n_end, int64_t K, const T* A, int64_t lda, const T* W,
                   int64_t ldw, T* C, int64_t ldc, bool accumulate, bool descending, const T* start);
  // C[:, n_begin..n_end) [+]= A (M, K) @ B, B row-major (K, N) read in place (for M of a few rows): each row of B
  // scaled and added into register accumulators, each element's sum over k in an order that depends on M alone (any
  // split of the columns gives the same bits); blocks of columns from the last to the first when `descending` (the
  // same values).
  void (*gemm_axpy)(int64_t M, int64_t n_begin, int64_t n_end, int64_t K, const T* A, int64_t lda, const T* B,
                    int64_t ldb, T* C, int64_t ldc, bool accumulate, bool descending, const T* start);
  // gemm_panels for B = W^T, W row-major with leading dimension ldw in the layout of `shape` (its data unused), each
  // slice of a panel packed just before use, again for every block of block_rows_max rows of A: for a weight used by
  // one or two such blocks per call.
  void (*gemm_weight_slices)(int64_t M, const T* A, int64_t lda, const T* W, int64_t ldw, const PackedB<T>& shape,
                             int64_t g0, int64_t g1, int64_t q0, int64_t q1, T* C, int64_t ldc, bool accumulate,
                             const T* start);
  int64_t block_rows_max;  // the rows of A that gemm_panels takes as one block
  // pack_b (packed.h) of panels [p_begin, p_end) from W^T, W row-major (N, K) with leading dimension ld.
  void (*pack_b_transposed)(const T* src, int64_t ld, const PackedB<T>& b, int64_t p_begin, int64_t p_end);
  // dst (C, R) = src (R, C)^T, row-major with leading dimensions lds and ldd.
  void (*transpose)(int64_t R, int64_t C, const T* src, int64_t lds, T* dst, int64_t ldd);

  void (*sigmoid)(int64_t n, const T* x, T* y);
  void (*tanh)(int64_t n, const T* x, T* y);
  // Softmax rows (simd/rows_inl.h): the maximum and the sum of a row, y = exp(x - shift) returning
  // the sum of y (shift >= every x), and y = a * y - b in place.
  T (*row_max)(int64_t n, const T* x);
  T (*row_sum)(int64_t n, const T* x);
  T (*exp_minus_sum)(int64_t n, const T* x, T shift, T* y);
  void (*scale_minus)(int64_t n, T* y, T a, T b);
};

PYLSTM_DECLARE_ISA_TABLES(Ops)

// The active ISA's table, or `isa`'s.
template <typename T>
const Ops<T>& ops(Isa isa = active_isa()) {
  return active_table<Ops<T>>(isa);
}

}  // namespace pylstm

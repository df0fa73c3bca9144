// The building blocks the sequence kernels call, one table per ISA (scalar, AVX2, AVX-512) and dtype, chosen once
// at import from CPUID (cpu.h). The implementations are simd/kernels_inl.h, compiled once per ISA in isa_*.cpp.
//
// Argument conventions: row-major; `n` units of one batch row, pointers already offset to the first unit, gate g of
// a (G*H)-wide row at offset g * H; "in"/"out" as documented at each implementation.
#pragma once
#include <cstdint>

#include "packed.h"

namespace pylstm {

// An LSTM's peephole weights (Gers & Schmidhuber), each (n,) from the first unit on; all null for an LSTM without.
template <typename T>
struct Peepholes {
  const T* i = nullptr;
  const T* f = nullptr;
  const T* o = nullptr;
  Peepholes at(int64_t j) const { return i == nullptr ? Peepholes{} : Peepholes{i + j, f + j, o + j}; }
};

template <typename T>
struct Ops {
  const char* isa;
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
  // Softmax rows (simd/kernels_inl.h, "row sums"): the maximum and the sum of a row, y = exp(x - shift) returning
  // the sum of y (shift >= every x), and y = a * y - b in place.
  T (*row_max)(int64_t n, const T* x);
  T (*row_sum)(int64_t n, const T* x);
  T (*exp_minus_sum)(int64_t n, const T* x, T shift, T* y);
  void (*scale_minus)(int64_t n, T* y, T a, T b);

  void (*lstm_forward_units)(int64_t n, int64_t H, const T* pre, const T* c_prev, T* c, T* h, const Peepholes<T>& p,
                             T* saved, bool stream_saved);
  void (*lstm_backward_units)(int64_t n, int64_t H, const T* gates, const T* c, const T* c_prev, const T* dout,
                              const T* dh, T* dc, T* dpre, const Peepholes<T>& p, T* m, bool stream_dpre);
  void (*gru_forward_units)(int64_t n, int64_t H, const T* pre, const T* gh, const T* h_prev, T* h, T* saved,
                            bool stream_saved);
  void (*gru_rz_units)(int64_t n, int64_t H, T* pre, const T* grz, int64_t grz_h, const T* h_prev, T* rh, T* saved,
                       bool stream_saved);
  void (*gru_n_units)(int64_t n, int64_t H, const T* pre, const T* gn, const T* h_prev, T* h, T* saved,
                      bool stream_saved);
  void (*gru_backward_after_units)(int64_t n, int64_t H, const T* gates, const T* h_prev, const T* dout, T* dh,
                                   T* dgx, T* dgh, bool stream_dg);
  void (*gru_backward_zn_units)(int64_t n, int64_t H, const T* gates, const T* h_prev, const T* dout, T* dh, T* dg);
  void (*gru_backward_r_units)(int64_t n, const T* gates, const T* h_prev, const T* drh, T* dh, T* dg, T* rh);
  void (*rnn_forward_units)(int64_t n, bool relu, T* h);
  void (*rnn_backward_units)(int64_t n, bool relu, const T* h, const T* dout, const T* dh, T* dpre, bool stream_dpre);
};

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// The tables of each ISA compiled into this build (null where the compiler could not target it).
extern const Ops<float> kScalarOpsF32;
extern const Ops<double> kScalarOpsF64;
extern const Ops<float>* const kAvx2OpsF32;
extern const Ops<double>* const kAvx2OpsF64;
extern const Ops<float>* const kAvx512OpsF32;
extern const Ops<double>* const kAvx512OpsF64;

// The active table: the best ISA this CPU and OS support, or the one set_isa chose.
template <typename T>
const Ops<T>& ops();

}  // namespace pylstm

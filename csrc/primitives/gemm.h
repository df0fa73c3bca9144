// The parallel GEMM driver for the big products outside the time loops (dx and the weight gradients).
#pragma once
#include <atomic>
#include <cstdint>

#include "primitives/ops.h"
#include "primitives/work_rounds.h"

namespace pylstm {

// The rows of a backward time loop's pre-activation gradients that are final. The loop goes from the last step to
// the first and publishes, after each step, the first row from which on every row is final; the products after the
// loop can then run beside it on another thread, each block of rows once it is final (wait_until).
class FinalRows {
 public:
  // Made under a CancelScope (work_rounds.h), the loop may be cut short and then abandons the rows.
  explicit FinalRows(int64_t total) : first_(total), may_abandon_(cancel_scope() != nullptr) {}
  void publish(int64_t first_final_row) { first_.store(first_final_row, std::memory_order_release); }
  // The loop was cut short: the rows not yet published will never be; a reader leaves its output as it found it.
  void abandon() { first_.store(kAbandoned, std::memory_order_release); }
  // Returns once rows [row, total) are final (true), or once the rows are abandoned (false).
  bool wait_until(int64_t row) const;
  // Whether abandon() may come: a reader that adds into its output keeps a copy to restore.
  bool may_abandon() const { return may_abandon_; }

 private:
  static constexpr int64_t kAbandoned = -1;
  std::atomic<int64_t> first_;
  const bool may_abandon_;
};

// C (M, N) = [C +] A (M, K) @ B (K, N), with the micro-kernels of `kernels` (the call's ISA's table, ops<T>()).
//   A: element (m, k) at A[m * a_row_stride + k * a_col_stride] (so A^T of a stored matrix is just other strides).
//   B: b_transposed = false: the row-major (K, N) matrix at B with leading dimension ldb;
//      b_transposed = true:  W^T for the row-major (N, K) matrix W at B with leading dimension ldb.
//   C: row-major, leading dimension ldc; overwritten, or added to when `accumulate`. Must not overlap A or B.
//   start: null, or a row of N values (a bias) that every row of C starts from instead: C = start + A @ B (C is
//      not read; `accumulate` is ignored).
// B is packed once into the calling thread's workspace (read in place instead for M of 1-4 rows with
// a_col_stride = 1). Threads split C by row blocks or by column panels, never the sum over k, so results are bitwise
// identical for any thread count.
template <typename T>
void gemm(const Ops<T>& kernels, int64_t M, int64_t N, int64_t K, const T* A, int64_t a_row_stride,
          int64_t a_col_stride, const T* B, int64_t ldb, bool b_transposed, T* C, int64_t ldc, bool accumulate,
          const T* start = nullptr);

// One term of a weight gradient: C (rows m_begin..m_end of the gradient, N columns, leading dimension ldc)
// += dpre[:, m_begin:m_end]^T @ B, with B row-major (K, N): rows [0, split) at head, rows [split, K) at tail.
template <typename T>
struct GradTerm {
  const T* head;
  int64_t split;
  const T* tail;
  int64_t N;
  int64_t m_begin, m_end;
  T* C;
  int64_t ldc;
};

// The weight and bias gradients of a layer from one pass over its pre-activation gradients dpre (K = T*B rows, M
// columns, leading dimension ld): every (mc, kc) block of dpre^T is packed once and multiplied into every term
// that covers its rows, and its row sums (the bias gradient, the same for b_ih and b_hh) are added to bias and
// bias2 (each may be null). Threads split the M rows; results do not depend on their number. The sum over K runs in
// blocks from the last rows to the first, so that with `ready` (not null: dpre is still being made by a backward
// loop, from its last row to its first) each block starts once its rows are final, with the same result. With the
// micro-kernels of `kernels`, as gemm.
template <typename T>
void weight_gradients(const Ops<T>& kernels, int64_t M, int64_t K, const T* dpre, int64_t ld, const GradTerm<T>* terms,
                      int n_terms, T* bias, T* bias2, const FinalRows* ready = nullptr);

}  // namespace pylstm

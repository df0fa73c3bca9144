#include "gemm.h"

#include <algorithm>

#include "cpu.h"
#include "ops.h"
#include "parallel.h"
#include "workspace.h"

namespace pylstm {

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t as_m, int64_t as_k, const T* B, int64_t ldb,
          bool b_transposed, T* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  const Ops<T>& o = ops<T>();
  PackedB<T> packed;
  packed.K = K;
  packed.block_cols = N;
  packed.blocks = 1;
  packed.nr = o.nr;
  Scratch scratch(1);
  scratch.need(&packed.data, packed.size());
  scratch.allocate();

  // Row blocks of 192 rows when there are enough of them to share, else column panels.
  constexpr int64_t kRowBlock = 192;
  const int64_t row_blocks = (M + kRowBlock - 1) / kRowBlock, panels = packed.panels();
  const int threads = threads_for(M * N * K);
  const bool split_rows = row_blocks >= 2 * threads || row_blocks >= panels;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    DenormalsAreZero daz;
    const int tid = thread_id(), nt = team_size();
    pack_b(B, ldb, b_transposed, packed, panels * tid / nt, panels * (tid + 1) / nt);
#pragma omp barrier
    if (split_rows) {
      const int64_t r0 = row_blocks * tid / nt * kRowBlock, r1 = std::min(M, row_blocks * (tid + 1) / nt * kRowBlock);
      if (r0 < r1) o.gemm_panels(r1 - r0, A + r0 * as_m, as_m, as_k, packed, 0, 1, 0, panels, C + r0 * ldc, ldc, accumulate);
    } else {
      const int64_t p0 = panels * tid / nt, p1 = panels * (tid + 1) / nt;
      if (p0 < p1) o.gemm_panels(M, A, as_m, as_k, packed, 0, 1, p0, p1, C, ldc, accumulate);
    }
  }
}

template <typename T>
void add_column_sums(const T* src, int64_t rows, int64_t N, int64_t ld, T* dst, T* dst2) {
  const Ops<T>& o = ops<T>();
  constexpr int64_t kChunk = 256;
  const int64_t chunks = (N + kChunk - 1) / kChunk;
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(rows * N / 4), chunks));
#pragma omp parallel for num_threads(threads) if (threads > 1)
  for (int64_t c = 0; c < chunks; ++c) o.add_column_sums(src, rows, ld, c * kChunk, std::min(N, (c + 1) * kChunk), dst, dst2);
}

template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t, bool,
                          float*, int64_t, bool);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t, bool,
                           double*, int64_t, bool);
template void add_column_sums<float>(const float*, int64_t, int64_t, int64_t, float*, float*);
template void add_column_sums<double>(const double*, int64_t, int64_t, int64_t, double*, double*);

}  // namespace pylstm

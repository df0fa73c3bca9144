#include "training/embedding.h"

#include <algorithm>
#include <cstring>

#include "primitives/parallel.h"

namespace pylstm {

int64_t first_invalid_id(int64_t n, const int64_t* ids, int64_t num_embeddings) {
  for (int64_t r = 0; r < n; ++r)
    if (ids[r] < 0 || ids[r] >= num_embeddings) return r;
  return -1;
}

template <typename T>
void embedding_forward(int64_t n, int64_t dim, const int64_t* ids, const T* weight, T* out) {
  // A copy per row: memory-bound, so threads only for many rows (each row stands alone: any split, same result).
  const int threads = threads_for(n * dim);
  parallel_region(threads, [&] {
    const int tid = thread_id(), nt = team_size();
    for (int64_t r = n * tid / nt; r < n * (tid + 1) / nt; ++r)
      std::memcpy(out + r * dim, weight + ids[r] * dim, sizeof(T) * static_cast<size_t>(dim));
  });
}

template <typename T>
void embedding_backward(int64_t n, int64_t dim, const int64_t* ids, const T* dout, int64_t padding_idx, T* dweight) {
  // Threads split the columns, never the rows: every element then adds its rows in the order of r on whichever
  // thread, so duplicates sum in the same order for any thread count.
  const int threads = threads_for(n * dim);
  parallel_region(threads, [&] {
    const int tid = thread_id(), nt = team_size();
    const int64_t c0 = dim * tid / nt, c1 = dim * (tid + 1) / nt;
    for (int64_t r = 0; r < n; ++r) {
      if (ids[r] == padding_idx) continue;
      T* row = dweight + ids[r] * dim;
      const T* d = dout + r * dim;
      for (int64_t c = c0; c < c1; ++c) row[c] += d[c];
    }
  });
}

template void embedding_forward<float>(int64_t, int64_t, const int64_t*, const float*, float*);
template void embedding_forward<double>(int64_t, int64_t, const int64_t*, const double*, double*);
template void embedding_backward<float>(int64_t, int64_t, const int64_t*, const float*, int64_t, float*);
template void embedding_backward<double>(int64_t, int64_t, const int64_t*, const double*, int64_t, double*);

}  // namespace pylstm

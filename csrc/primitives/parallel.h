// Threading policy of the C++ core: the one place that decides how many threads a kernel may use.
// Builds without OpenMP compile these to single-threaded stubs.
#pragma once
#include <cstdint>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace pylstm {

// True when the extension was compiled with OpenMP.
constexpr bool kHasOpenMP =
#ifdef _OPENMP
    true;
#else
    false;
#endif

// Threads for a loop of `work` multiply-adds: one below a threshold where a fork/join (a few microseconds) would
// cost more than it saves, else the OpenMP maximum.
inline int threads_for(int64_t work) {
#ifdef _OPENMP
  constexpr int64_t kMinWorkPerThread = int64_t(1) << 16;
  if (work < 2 * kMinWorkPerThread) return 1;
  return omp_get_max_threads();
#else
  (void)work;
  return 1;
#endif
}

}  // namespace pylstm

#include "primitives/threads.h"

#include <atomic>
#include <cstdlib>

#include "primitives/busy_machine.h"

namespace pylstm {

namespace {

int default_num_threads() {
#ifdef _OPENMP
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return omp_get_num_procs();
#else
  return 1;
#endif
}

std::atomic<int>& num_threads_setting() {
  static std::atomic<int> n{default_num_threads()};
  return n;
}

}  // namespace

bool has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

int get_num_threads() { return has_openmp() ? num_threads_setting().load(std::memory_order_relaxed) : 1; }

void set_num_threads(int n) { num_threads_setting().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

int threads_for(int64_t work) {
  // About 30 microseconds of single-core work per extra thread.
  constexpr int64_t kMinWorkPerThread = int64_t(1) << 20;
  const int n = get_num_threads();
  if (n <= 1 || work < 2 * kMinWorkPerThread || busy_machine()) return 1;
  const int64_t useful = work / kMinWorkPerThread;
  return static_cast<int>(useful < n ? useful : n);
}

}  // namespace pylstm

#include "primitives/threads.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>

#ifdef __unix__
#include <pthread.h>
#endif

#include "primitives/blas_pools.h"
#include "primitives/busy_machine.h"

namespace pylstm {

namespace {

// OMP_NUM_THREADS's first number ("2,1" gives each nesting level's count) when it is one in [1, kMaxThreads], else
// the processors (libgomp warns of a value it cannot read).
int default_num_threads() {
#ifdef _OPENMP
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(env, &end, 10);
    if (end != env && errno == 0 && n >= 1 && n <= kMaxThreads) return static_cast<int>(n);
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

// Whether this process has started a team of threads, and whether it is a child forked after its parent had.
std::atomic<bool> team_started{false};
std::atomic<bool> forked_after_team{false};

void mark_forked_child() {
  if (team_started.load(std::memory_order_relaxed)) forked_after_team.store(true, std::memory_order_relaxed);
}

// The fork handler is registered once, before the first team starts (so that every fork after one sees it).
void register_fork_handler() {
#ifdef __unix__
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, &mark_forked_child); });
#endif
}

}  // namespace

void note_team_started() {
  quiet_blas_pools();
  if (team_started.load(std::memory_order_relaxed)) return;
  register_fork_handler();
  team_started.store(true, std::memory_order_relaxed);
}

bool has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

int get_num_threads() {
  if (!has_openmp() || forked_after_team.load(std::memory_order_relaxed)) return 1;
  return num_threads_setting().load(std::memory_order_relaxed);
}

void set_num_threads(int n) { num_threads_setting().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

int team_threads() {
#ifdef _OPENMP
  // The processors as at the first call: omp_get_num_procs asks the kernel for the affinity mask every time (a
  // system call, a noticeable part of a batch-1 step's few microseconds).
  static const int processors = std::max(1, omp_get_num_procs());
  return std::max(1, std::min(get_num_threads(), processors));
#else
  return 1;
#endif
}

namespace {
std::atomic<int64_t> last_region_end_ns{0};
}  // namespace

void note_region_end() { last_region_end_ns.store(now_ns(), std::memory_order_relaxed); }

bool back_to_back_call() {
  const int64_t last = last_region_end_ns.load(std::memory_order_relaxed);
  return last != 0 && now_ns() - last < kBackToBackNs;
}

int threads_for(int64_t work) {
  // About 30 microseconds of single-core work per extra thread.
  constexpr int64_t kMinWorkPerThread = int64_t(1) << 20;
  const int n = team_threads();
  if (n <= 1 || work < 2 * kMinWorkPerThread || busy_machine()) return 1;
  const int64_t useful = work / kMinWorkPerThread;
  note_team_started();  // (also for the regions that are not parallel_region's: backward_pass)
  return static_cast<int>(useful < n ? useful : n);
}

}  // namespace pylstm

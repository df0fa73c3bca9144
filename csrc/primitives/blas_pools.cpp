#include "primitives/blas_pools.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__linux__)
#include <dlfcn.h>
#include <link.h>
#define PYLSTM_FIND_BLAS_POOLS 1
#endif

namespace pylstm {

namespace {

// One loaded OpenBLAS with a pthreads thread pool.
struct BlasPool {
  std::string path;
  void* handle;                      // from dlopen, closed when the pools are looked for again
  const volatile int* server_avail;  // OpenBLAS's blas_server_avail: nonzero while its workers exist
  int (*shutdown)();                 // OpenBLAS's blas_thread_shutdown_
  void (*read_env)();                // OpenBLAS's openblas_read_env, or null
};

thread_local bool quiet_permitted = false;  // (BlasQuietPermit)
std::atomic<int64_t> quieted{0};

// The pools whose idle spin is settled (shortened, or the user's choice), by blas_server_avail's address: the pools
// are looked for again when libraries come and go, but a library keeps its settings while it stays loaded.
std::vector<const volatile int*> settled;

// The pools found, and the loader's counts of objects added and removed when they were looked for: a library loaded
// or unloaded since (SciPy imported later) changes them, and the pools are looked for again.
std::mutex pools_mutex;
std::vector<BlasPool> pools;
unsigned long long seen_adds = 0, seen_subs = 0;
bool looked = false;

#ifdef PYLSTM_FIND_BLAS_POOLS
// OpenBLAS's threading model: 0 sequential, 1 pthreads, 2 OpenMP. Builds rename their API (scipy-openblas:
// scipy_openblas_get_parallel64_), as threadpoolctl also knows; the server's internal symbols keep their names.
int parallel_kind(void* handle) {
  static const char* const names[] = {"openblas_get_parallel",         "openblas_get_parallel64_",
                                      "openblas_get_parallel_64_",     "scipy_openblas_get_parallel",
                                      "scipy_openblas_get_parallel64_", "scipy_openblas_get_parallel_64_"};
  for (const char* name : names)
    if (void* f = dlsym(handle, name)) return reinterpret_cast<int (*)()>(f)();
  return -1;
}

int count_loaded(struct dl_phdr_info* info, size_t, void* out) {
  auto* counts = static_cast<unsigned long long*>(out);
  counts[0] = info->dlpi_adds;
  counts[1] = info->dlpi_subs;
  return 1;  // the counts are the same in every entry: the first one is enough
}

int collect_name(struct dl_phdr_info* info, size_t, void* out) {
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0')
    static_cast<std::vector<std::string>*>(out)->push_back(info->dlpi_name);
  return 0;
}

// The pool of the loaded library `name` (or of a library it depends on: dlsym searches those too), if any, and not
// one of `found` already. RTLD_NOLOAD: a handle to a library already loaded, never a new load. A pool's handle is
// kept: the library stays loaded while its functions are remembered.
void add_pool(const std::string& name, std::vector<BlasPool>* found) {
  void* handle = dlopen(name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return;
  void* avail = dlsym(handle, "blas_server_avail");
  void* shutdown = dlsym(handle, "blas_thread_shutdown_");
  void* read_env = dlsym(handle, "openblas_read_env");
  bool known = false;
  for (const BlasPool& p : *found) known = known || p.server_avail == avail;
  Dl_info where;
  if (avail == nullptr || shutdown == nullptr || known || parallel_kind(handle) != 1 || dladdr(avail, &where) == 0) {
    dlclose(handle);
    return;
  }
  found->push_back({where.dli_fname ? where.dli_fname : name, handle, static_cast<const volatile int*>(avail),
                    reinterpret_cast<int (*)()>(shutdown), reinterpret_cast<void (*)()>(read_env)});
}
#endif

// Looks for the pools again when libraries were loaded or unloaded since the last look. Under pools_mutex.
void refresh_pools() {
#ifdef PYLSTM_FIND_BLAS_POOLS
  unsigned long long counts[2] = {0, 0};
  dl_iterate_phdr(&count_loaded, counts);
  if (looked && counts[0] == seen_adds && counts[1] == seen_subs) return;
  std::vector<std::string> names;  // (opened after the iteration, which holds the loader's lock)
  dl_iterate_phdr(&collect_name, &names);
  std::vector<BlasPool> found;
  for (const std::string& name : names) add_pool(name, &found);
  for (const BlasPool& p : pools) dlclose(p.handle);
  pools.swap(found);
  seen_adds = counts[0];
  seen_subs = counts[1];
#endif
  looked = true;
}

// OpenBLAS reads OPENBLAS_THREAD_TIMEOUT (its workers' idle spin: 2^N cycles) when it starts its threads; the value in
// effect is what openblas_read_env last read. Unless the user chose one (the variable set), the pool is given
// kIdleSpinLog2 for its next start: the variable set for the read only, then restored. Its workers then sleep after
// about a third of a millisecond without work, and are woken (not started afresh, which costs a thread's start-up and
// waits for a core) at NumPy's next multithreaded call; so a pool needs stopping once, not before every pylstm call.
// A user's own OPENBLAS_THREAD_TIMEOUT is left as it is, and so is their pool. Without openblas_read_env nothing can
// be changed, and the pool is stopped before every pylstm call that starts threads. (setenv may race with getenv on
// another thread: the permit means no other Python thread, and the BLAS and OpenMP threads read the environment only
// as they start.)
enum class IdleSpin { kShortened, kUserChoice, kUnchanged };
constexpr const char* kIdleSpinLog2 = "20";
IdleSpin settle_idle_spin(const BlasPool& p) {
  if (std::getenv("OPENBLAS_THREAD_TIMEOUT") != nullptr) return IdleSpin::kUserChoice;
  if (p.read_env == nullptr) return IdleSpin::kUnchanged;
  setenv("OPENBLAS_THREAD_TIMEOUT", kIdleSpinLog2, 1);
  p.read_env();
  unsetenv("OPENBLAS_THREAD_TIMEOUT");
  return IdleSpin::kShortened;
}

}  // namespace

BlasQuietPermit::BlasQuietPermit(bool allowed) : previous_(quiet_permitted) { quiet_permitted = allowed; }
BlasQuietPermit::~BlasQuietPermit() { quiet_permitted = previous_; }

void quiet_blas_pools() {
  if (!quiet_permitted) return;
#ifdef _OPENMP
  if (omp_in_parallel()) return;  // (a region inside a region runs on cores its team already holds)
#endif
  // A second thread starting a team meanwhile goes on (two threads in pylstm: neither has a permit).
  std::unique_lock<std::mutex> lock(pools_mutex, std::try_to_lock);
  if (!lock.owns_lock()) return;
  refresh_pools();
  bool up = false;
  for (const BlasPool& p : pools) up = up || *p.server_avail != 0;
  if (!up) return;
  for (const BlasPool& p : pools) {
    if (std::find(settled.begin(), settled.end(), p.server_avail) != settled.end()) continue;
    const IdleSpin spin = settle_idle_spin(p);
    if (spin != IdleSpin::kUnchanged) settled.push_back(p.server_avail);
    if (spin == IdleSpin::kUserChoice || *p.server_avail == 0) continue;
    p.shutdown();  // (a shortened spin: once, so that its threads start again with it)
    quieted.fetch_add(1, std::memory_order_relaxed);
  }
}

std::vector<std::string> blas_pool_libraries() {
  std::lock_guard<std::mutex> lock(pools_mutex);
  refresh_pools();
  std::vector<std::string> paths;
  for (const BlasPool& p : pools) paths.push_back(p.path);
  return paths;
}

int64_t blas_pools_quieted() { return quieted.load(std::memory_order_relaxed); }

}  // namespace pylstm

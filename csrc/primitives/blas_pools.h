// Other libraries' BLAS thread pools in this process: NumPy's (and SciPy's) OpenBLAS. After a multithreaded call,
// OpenBLAS's pthreads workers busy-wait for the next one (for up to 2^28 cycles unless OPENBLAS_THREAD_TIMEOUT was set
// before the library loaded) and hold cores that a team of pylstm's threads then shares with them: each round of a time
// loop waits for a thread that the scheduler has parked behind a spinning worker. Before a team of two or more threads
// starts (threads.h), quiet_blas_pools() gives such a pool a short idle spin (OpenBLAS's own setting, read anew by its
// openblas_read_env) and stops its workers once with blas_thread_shutdown_ (the function OpenBLAS runs in a forked
// child), so that they start again with it at NumPy's next multithreaded call; from then on they go to sleep soon after
// each call, and are woken for the next. What NumPy computes, and on how many threads, does not change. A pool whose
// spin cannot be set is stopped before every such pylstm call; one whose spin the user set is left alone. The
// libraries are found at run time among those already loaded (no link dependency): a build without the symbols (MKL,
// Accelerate, a sequential or OpenMP OpenBLAS, none) is left alone.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pylstm {

// Whether this thread may stop the pools, for as long as the permit lives: blas_thread_shutdown_ must not run while
// another thread is inside a multithreaded call of the same library (it would take that call's workers and buffers
// away). Only the bindings can tell (no other Python thread exists, checked with the GIL held), so they give the
// permit around a kernel call; without one the pools are never touched.
class BlasQuietPermit {
 public:
  explicit BlasQuietPermit(bool allowed);
  ~BlasQuietPermit();
  BlasQuietPermit(const BlasQuietPermit&) = delete;
  BlasQuietPermit& operator=(const BlasQuietPermit&) = delete;

 private:
  bool previous_;
};

// Settles every loaded pthreads OpenBLAS's idle spin and stops the workers of those that need it (above), if this
// thread holds a permit; nothing inside a parallel region. Cheap when every pool is settled or down (a load per
// library). Called before a team starts (threads.h) and whenever a kernel finds the machine busy (busy_machine.h): on
// one thread too, a spinning worker then takes a share of a core that others need.
void quiet_blas_pools();

// The libraries found (paths), and how many times a pool was stopped so far (for tests).
std::vector<std::string> blas_pool_libraries();
int64_t blas_pools_quieted();

}  // namespace pylstm

// Thread policy of the C++ core: the one place that decides how many threads a kernel uses, and the parallel region
// that runs them. Builds without OpenMP compile to a single thread everywhere.
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pylstm {

// True when the extension was compiled with OpenMP.
bool has_openmp();

// The most threads set_num_threads or OMP_NUM_THREADS may ask for.
constexpr int kMaxThreads = 4096;

// Threads the kernels may use: set_num_threads(n) (n in [1, kMaxThreads]), else OMP_NUM_THREADS (when a whole number
// in that range), else the number of processors.
// Always 1 without OpenMP, and in a process forked from one that had started a team of threads (a kernel that ran
// threaded): GNU libgomp's thread pool does not survive fork, and the child's first team of two or more threads
// would wait forever for threads that do not exist. set_num_threads there is accepted and changes nothing. Results do
// not depend on the number of threads, so the child computes what its parent would.
int get_num_threads();
void set_num_threads(int n);

// Records that this process starts a team of two or more threads (called before every such parallel region), and
// first stops other libraries' idle BLAS threads, which would hold the cores the team needs (blas_pools.h).
void note_team_started();

// The threads a call may start: get_num_threads(), but no more than the processors this process may run on (as at
// the first call). More threads than processors only wait for one another at every round and barrier (8 threads on
// 2 cores trained at half one thread's speed); the results are the same for any number.
int team_threads();

// Notes that a kernel's parallel region (or its one-thread stand-in) ended: parallel_region and backward_pass call it.
void note_region_end();
// Whether the last kernel region ended less than kBackToBackNs ago: calls in quick succession (a training loop, a
// batch of inferences) find a second thread still spinning from the last, or pay its wake-up once; after a longer
// pause it sleeps, and waking it cost from tens of microseconds to over a millisecond on a virtual machine (its idle
// vCPU descheduled), more than a small call can win back.
bool back_to_back_call();
constexpr int64_t kBackToBackNs = 2 * 1000 * 1000;

// Threads worth using for a parallel loop of `work` multiply-adds: 1 below the point where waking a second thread
// (a few microseconds) costs more than it saves, or while the machine is busy (busy_machine()), else
// team_threads().
int threads_for(int64_t work);

// This thread's number and the team size inside a parallel region (0 and 1 outside one, or without OpenMP).
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// Runs body() on `threads` threads of one parallel region, or, for one thread outside any parallel region, directly
// on the calling thread (thread_id() 0, team_size() 1, barriers nothing). A region of one thread still makes an
// OpenMP team, which libgomp allocates and frees at every region, and its allocation's malloc_consolidate is a large
// part of a small call's time. Inside a region (a loop beside the weight gradients: backward_pass) it stays a region
// of its own, so that its thread numbers and barriers are its own and not the enclosing team's.
template <typename Body>
void parallel_region(int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1 || omp_in_parallel()) {
    if (threads > 1) note_team_started();
#pragma omp parallel num_threads(threads > 1 ? threads : 1)
    body();
    note_region_end();
    return;
  }
#endif
  (void)threads;
  body();
  note_region_end();
}

}  // namespace pylstm

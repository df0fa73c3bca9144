// Threading policy of the C++ core: the one place that decides how many threads a kernel uses.
// Builds without OpenMP compile to a single thread everywhere.
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pylstm {

// True when the extension was compiled with OpenMP.
bool has_openmp();

// Threads the kernels may use: set_num_threads(n) (n >= 1), else OMP_NUM_THREADS, else the number of processors.
// Always 1 without OpenMP.
int get_num_threads();
void set_num_threads(int n);

// Threads worth using for a parallel loop of `work` multiply-adds: 1 below the point where waking a second thread
// (a few microseconds) costs more than it saves, else get_num_threads().
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

}  // namespace pylstm

#include <atomic>

namespace pylstm {

// A barrier for the threads of one parallel region, used once per time step. It spins briefly (a step's partner
// usually arrives within microseconds), then yields, then sleeps in short naps: a thread whose partner has been
// descheduled on a busy machine gives its core away instead of burning it, which would delay the partner further.
class StepBarrier {
 public:
  explicit StepBarrier(int threads) : threads_(threads) {}
  void wait();

 private:
  const int threads_;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<unsigned> phase_{0};
};

}  // namespace pylstm

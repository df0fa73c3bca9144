#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#ifdef _OPENMP
#include <omp.h>
#endif

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

#include <chrono>
#include <thread>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pylstm {

namespace {
std::atomic<int64_t>& sweeps_so_far() {
  static std::atomic<int64_t> n{0};
  return n;
}
}  // namespace

Rounds::Rounds(int64_t lead, int64_t steps, int64_t rounds_per_step, bool alternate)
    : lead_(lead), steps_(steps), per_step_(rounds_per_step < 1 ? 1 : rounds_per_step), alternate_(alternate) {
  if (alternate) first_ = sweeps_so_far().fetch_add(lead + steps, std::memory_order_relaxed);
}

int64_t alternated_sweeps() { return sweeps_so_far().load(std::memory_order_relaxed); }

WorkRounds::WorkRounds(int threads, int64_t items, const Rounds& rounds)
    : threads_(threads < 1 ? 1 : threads),
      items_(items),
      rounds_(rounds),
      claimed_(new Counter[threads_]),
      busy_ns_(new Counter[threads_]) {}

WorkRounds::~WorkRounds() {
  delete[] claimed_;
  delete[] busy_ns_;
}

bool WorkRounds::claim(int owner, int64_t round, int64_t* item) {
  const int64_t n = size(owner), first = round * n, end = first + n;
  int64_t v = claimed_[owner].value.load(std::memory_order_relaxed);
  while (v < end) {
    if (claimed_[owner].value.compare_exchange_weak(v, v + 1, std::memory_order_relaxed)) {
      *item = begin(owner) + (rounds_.descending(round) ? end - 1 - v : v - first);
      return true;
    }
  }
  return false;
}

namespace {

std::atomic<int64_t>& busy_until_ns() {
  static std::atomic<int64_t> t{0};
  return t;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

namespace {
std::atomic<bool>& adaptive() {
  static std::atomic<bool> on{true};
  return on;
}
}  // namespace

void set_adaptive_threads(bool enabled) {
  adaptive().store(enabled);
  if (!enabled) busy_until_ns().store(0);
}

bool busy_machine() { return now_ns() < busy_until_ns().load(std::memory_order_relaxed); }

namespace {
// A partner later than this has been descheduled: on a busy machine that means a scheduler time slice (milliseconds);
// shorter pauses (a virtual machine's vCPU briefly preempted, page faults) are not worth changing course for.
constexpr int64_t kStallNs = 1000 * 1000;
constexpr int64_t kStrikeWindowNs = int64_t(1000) * 1000 * 1000;
// The longest busy period. A machine that stays busy re-enters it at the first stall after it ends, which costs one
// stalled call per period; a virtual machine whose vCPUs are preempted in bursts leaves it soon. Measured (LSTM
// 1,256,256,150 inference, 2 threads, 1500 calls): with a 1 s cap, 22-46% of the calls on a quiet but noisy VM ran
// on one thread (median 2.21-2.39 ms), with 100 ms 18-21% (2.16-2.19 ms); with a CPU-bound process beside it, 3.56
// and 3.41 ms (adaptation off: 7.4 ms).
constexpr int64_t kBusyMaxNs = int64_t(100) * 1000 * 1000;

// A stall seen. Stalls less than a second apart are strikes; from the third strike on the machine counts as busy
// for 10 ms, doubling with every further strike up to kBusyMaxNs: a burst of contention (another library's thread
// pool still spinning after its call) costs little, a machine that stays busy keeps the loops on one thread.
void note_stall() {
  static std::atomic<int64_t> last{0};
  static std::atomic<int> strikes{0};
  if (!adaptive().load(std::memory_order_relaxed)) return;
  const int64_t now = now_ns(), previous = last.exchange(now, std::memory_order_relaxed);
  const int n = previous != 0 && now - previous < kStrikeWindowNs ? std::min(strikes.load() + 1, 16) : 1;
  strikes.store(n, std::memory_order_relaxed);
  if (n >= 3) {
    const int64_t busy_for = std::min<int64_t>(kBusyMaxNs, int64_t(10) * 1000 * 1000 << std::min(n - 3, 7));
    busy_until_ns().store(now + busy_for, std::memory_order_relaxed);
  }
}
}  // namespace

int64_t WorkRounds::clock_ns() { return now_ns(); }

bool WorkRounds::owner_late(int64_t round, int64_t patience_ns) const {
  const int64_t end = (round + 1) * items_;
  int64_t deadline = 0;
  for (int i = 0; done_.value.load(std::memory_order_acquire) < end; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
    if (i % 16 != 15) continue;  // the clock every few pauses
    const int64_t now = now_ns();
    if (deadline == 0) deadline = now + std::max<int64_t>(patience_ns, kMinPatienceNs);
    else if (now > deadline) return true;
  }
  return false;
}

int64_t WorkRounds::stall_ns() const {
  const int64_t done = done_.value.load(std::memory_order_relaxed);
  int64_t busy = 0;
  for (int t = 0; t < threads_; ++t) busy += busy_ns_[t].value.load(std::memory_order_relaxed);
  const int64_t average = done > 0 ? busy / done : 0;
  return kStallNs + 4 * average;
}

void RegionWatch::done() {
  if (thread_id() == 0) first_done_ns_ = now_ns();
}

void RegionWatch::check() const {
  if (first_done_ns_ != 0 && now_ns() - first_done_ns_ > rounds_.stall_ns()) note_stall();
}

bool WorkRounds::wait_for_round(int64_t round, int me) {
  // Round r may start once r * items_ items are done. Spin briefly (the partner is usually microseconds away), then
  // yield, then nap: a waiting thread never holds a core its partner may need.
  constexpr int kSpins = 2000, kYields = 20;
  const int64_t target = round * items_;
  int64_t waiting_since = 0;
  for (int i = 0; done_.value.load(std::memory_order_acquire) < target; ++i) {
    const int solo = solo_thread_.load(std::memory_order_relaxed);
    if (solo >= 0 && solo != me) return false;
    if (i < kSpins) {
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#endif
      continue;
    }
    if (waiting_since == 0) waiting_since = now_ns();
    if (solo < 0 && adaptive().load(std::memory_order_relaxed) && now_ns() - waiting_since > stall_ns()) {
      int expected = -1;
      if (solo_thread_.compare_exchange_strong(expected, me)) note_stall();
    }
    if (i < kSpins + kYields) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(10));
  }
  const int solo = solo_thread_.load(std::memory_order_relaxed);
  return solo < 0 || solo == me;
}

}  // namespace pylstm

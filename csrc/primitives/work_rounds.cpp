#include "primitives/work_rounds.h"

#include <algorithm>
#include <chrono>
#include <thread>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "primitives/busy_machine.h"

namespace pylstm {

namespace {
std::atomic<int64_t>& sweeps_so_far() {
  static std::atomic<int64_t> n{0};
  return n;
}
std::atomic<int64_t>& independent_so_far() {
  static std::atomic<int64_t> n{0};
  return n;
}
}  // namespace

Rounds::Rounds(int64_t lead, int64_t steps, int64_t rounds_per_step, bool alternate, bool independent)
    : lead_(lead),
      steps_(steps),
      per_step_(rounds_per_step < 1 ? 1 : rounds_per_step),
      alternate_(alternate),
      independent_(independent) {
  if (alternate) first_ = sweeps_so_far().fetch_add(lead + steps, std::memory_order_relaxed);
  if (independent) independent_so_far().fetch_add(1, std::memory_order_relaxed);
}

namespace {
thread_local CancelScope* current_cancel_scope = nullptr;
}  // namespace

CancelScope::CancelScope(const std::atomic<bool>* flag) : flag_(flag), previous_(current_cancel_scope) {
  current_cancel_scope = this;
}
CancelScope::~CancelScope() { current_cancel_scope = previous_; }
CancelScope* cancel_scope() { return current_cancel_scope; }

int64_t alternated_sweeps() { return sweeps_so_far().load(std::memory_order_relaxed); }
int64_t independent_loops() { return independent_so_far().load(std::memory_order_relaxed); }

WorkRounds::WorkRounds(int threads, int64_t items, const Rounds& rounds)
    : threads_(threads < 1 ? 1 : threads),
      items_(items),
      rounds_(rounds),
      claimed_(new Counter[threads_]),
      next_(rounds.independent() ? new Counter[items] : nullptr),
      finished_(rounds.independent() ? new Counter[items] : nullptr),
      busy_ns_(new Counter[threads_]),
      cancel_(cancel_scope()) {
  for (int64_t i = 0; rounds.independent() && i < items; ++i) {
    next_[i].value.store(rounds.lead(), std::memory_order_relaxed);
    finished_[i].value.store(rounds.lead(), std::memory_order_relaxed);
  }
}

WorkRounds::~WorkRounds() {
  delete[] claimed_;
  delete[] next_;
  delete[] finished_;
  delete[] busy_ns_;
}

void WorkRounds::pause_briefly(int64_t i) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
  if (i % 256 == 255) std::this_thread::yield();
}

int64_t WorkRounds::average_item_ns() const {
  const int64_t done = done_.value.load(std::memory_order_relaxed);
  int64_t busy = 0;
  for (int t = 0; t < threads_; ++t) busy += busy_ns_[t].value.load(std::memory_order_relaxed);
  return done > 0 ? busy / done : 0;
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

int64_t WorkRounds::clock_ns() { return now_ns(); }

bool WorkRounds::owner_late(int64_t round, int64_t patience_ns) const {
  const int64_t end = (round + 1) * items_;
  int64_t deadline = 0;
  for (int i = 0; done_.value.load(std::memory_order_acquire) < end; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
    if (i % 16 != 15) continue;  // the clock every few pauses
    if (cancelled()) return false;  // (the round will not end)
    const int64_t now = now_ns();
    if (deadline == 0) deadline = now + std::max<int64_t>(patience_ns, kMinPatienceNs);
    else if (now > deadline) return true;
  }
  return false;
}

int64_t WorkRounds::stall_ns() const { return kStallNs + 4 * average_item_ns(); }

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
    if (cancelled()) return false;
    if (i < kSpins) {
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#endif
      continue;
    }
    if (waiting_since == 0) waiting_since = now_ns();
    if (solo < 0 && adaptive_threads() && now_ns() - waiting_since > stall_ns()) {
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

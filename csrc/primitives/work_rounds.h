// The time loops' scheduler: rounds of work items shared by the threads of one parallel region, the direction each
// round sweeps over the weights, and the watch that notices a descheduled partner thread at the region's end.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>

#include "primitives/threads.h"

namespace pylstm {

// A time loop's rounds: `lead` rounds (packing), then `steps` steps of `rounds_per_step` rounds each; and in which
// direction each round sweeps over the loop's weights. When they `alternate` (the loops that read weights in place
// with dot products, at batch 1-4), every other step (and lead round) is descending: its items from the last to the
// first (each thread's own range; see WorkRounds) and each item's weight rows from the last to the first. The
// alternation carries on from one loop to the next (a process-wide count of steps). A round thus starts with the
// weights that the round before read last. When a thread's weights outgrow its L2 cache, one direction every round
// would find none of them there (each round evicts the lines the next one needs first); alternating, it finds the
// L2's worth read last. Where the weights fit, it changes nothing measurable. Results do not depend on the direction:
// a row's arithmetic is the same either way.
// When the items are `independent` (slices of the batch rows, whose recurrences never meet), only the lead rounds
// run in lock step: after them an item's round waits for that item's previous round alone (WorkRounds).
class Rounds {
 public:
  Rounds(int64_t lead, int64_t steps, int64_t rounds_per_step, bool alternate, bool independent = false);
  explicit Rounds(int64_t count) : Rounds(0, count, 1, false) {}  // all ascending
  int64_t count() const { return lead_ + steps_ * per_step_; }
  int64_t lead() const { return lead_; }
  bool independent() const { return independent_; }
  bool descending(int64_t round) const {
    if (!alternate_) return false;
    const int64_t sweep = round < lead_ ? round : lead_ + (round - lead_) / per_step_;
    return ((first_ + sweep) & 1) != 0;
  }

 private:
  int64_t lead_, steps_, per_step_;
  bool alternate_, independent_;
  int64_t first_ = 0;
};

// Steps (and lead rounds) of time loops that alternated so far in this process (tests check the policy with it).
int64_t alternated_sweeps();
// Time loops with independent items (slices of the batch rows) so far in this process (tests check the policy with
// it).
int64_t independent_loops();

// Stopping time loops early (Ctrl-C during a long call): while a CancelScope lives on a thread, the time loops that
// thread starts stop at the start of their next round once the scope's flag is true, and the scope then counts as cut
// short: the call's outputs are incomplete and the caller discards them. A backward pass that finds its loop cut short
// adds nothing to its gradients (backward_pass.h). A loop started anywhere else runs to its end.
class CancelScope {
 public:
  explicit CancelScope(const std::atomic<bool>* flag);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  // Asked by the loops (from any thread of their region): true once the flag is set, and from then on the scope is
  // cut short. A loop that is told true stops.
  bool stop_requested() {
    if (!flag_->load(std::memory_order_relaxed)) return false;
    cut_short_.store(true, std::memory_order_relaxed);
    return true;
  }
  // Whether a loop under this scope stopped early. Final once the loop's parallel region has ended.
  bool cut_short() const { return cut_short_.load(std::memory_order_relaxed); }

 private:
  const std::atomic<bool>* const flag_;
  std::atomic<bool> cut_short_{false};
  CancelScope* const previous_;
};
// The CancelScope living on this thread, or null.
CancelScope* cancel_scope();
// Whether the time loops this thread ran under its CancelScope stopped early (false without one).
inline bool time_loops_cut_short() {
  const CancelScope* scope = cancel_scope();
  return scope != nullptr && scope->cut_short();
}

// Rounds of work items shared by the threads of one parallel region: the time loops' scheduler.
//
// Every round (a time step, or a phase of one) has the same `items` (slices of hidden units); round r + 1 starts only
// when every item of round r is done, which is the loop's only synchronization. Each thread owns a fixed range of
// items and does those first, in order (in reverse on a descending round), so that on a quiet machine every thread
// keeps its units (and their weights stay in its own cache) from step to step. A thread that has finished its own
// items takes the others' unclaimed ones (when each thread has a single item, only once the round has run late:
// owner_late): when a partner thread has been descheduled by a busy machine, the running thread does the whole step
// instead of waiting milliseconds for it, and a thread that wakes up late joins the current round.
//
// With independent items (Rounds) the lead rounds run so; then each thread runs its own items' remaining rounds
// through, with no wait for the other items, and afterwards takes over the rounds of an item whose owner is late (has
// not finished one of its rounds for a while: descheduled, or never came). An item's rounds run in order whoever
// runs them: each is claimed, and starts once the item's round before has finished. No wait per step: a thread whose
// step took a little longer this time does not hold up the other (a round's end waits for the slowest item).
//
// Items do identical arithmetic whichever thread runs them, so results do not depend on the schedule.
class WorkRounds {
 public:
  WorkRounds(int threads, int64_t items, const Rounds& rounds);
  ~WorkRounds();
  WorkRounds(const WorkRounds&) = delete;
  WorkRounds& operator=(const WorkRounds&) = delete;

  int64_t items() const { return items_; }

  // Called by every thread of the region: runs work(round, item) for every round, each item of each round exactly
  // once across the threads, and returns when this thread finds no more work (the region's closing barrier then
  // waits for the rest).
  template <typename Work>
  void run(Work&& work) {
    const int me = thread_id() % threads_;
    const bool full_team = team_size() >= threads_;  // (fewer threads may come than were asked for)
    for (int64_t r = 0; r < (rounds_.independent() ? rounds_.lead() : rounds_.count()); ++r) {
      if (cancelled()) return;
      if (!wait_for_round(r, me)) return;  // another thread carries on alone
      // The time in items is taken once per round and thread, into the thread's own counter: a clock read before
      // and after each item and a counter shared by the threads would cost more than the items of a small step.
      int64_t started = -1;
      for (int k = 0; k < threads_; ++k) {
        const int owner = (me + k) % threads_;
        // With one item a thread, another's is taken only from a late partner (owner_late); at once by a thread that
        // goes on alone (its partner stalled, or never came).
        if (k > 0 && size(owner) == 1 && full_team && solo_thread_.load(std::memory_order_relaxed) != me &&
            !owner_late(r, started < 0 ? 0 : clock_ns() - started))
          continue;
        int64_t item;
        while (claim(owner, r, &item)) {
          if (started < 0) started = clock_ns();
          work(r, item);
          done_.value.fetch_add(1, std::memory_order_release);
          if (solo_thread_.load(std::memory_order_relaxed) >= 0 && solo_thread_.load() != me) {
            busy_ns_[me].value.fetch_add(clock_ns() - started, std::memory_order_relaxed);
            return;
          }
        }
      }
      if (started >= 0) busy_ns_[me].value.fetch_add(clock_ns() - started, std::memory_order_relaxed);
    }
    if (!rounds_.independent() || !wait_for_round(rounds_.lead(), me)) return;
    for (int k = 0; k < threads_; ++k) {
      const int owner = (me + k) % threads_;
      for (int64_t item = begin(owner); item < begin(owner + 1); ++item)
        if (!run_item(work, item, k == 0 || !full_team, me)) return;
    }
  }

 private:
  // The rounds of independent `item` that no thread has claimed yet, in order: at once when `own` (the owner's, or a
  // thread without a team), else once its owner is late. False when the loop is cancelled.
  template <typename Work>
  bool run_item(Work& work, int64_t item, bool own, int me) {
    int64_t seen = -1, since = 0;
    for (int64_t i = 0;; ++i) {
      if (cancelled()) return false;
      const int64_t finished = finished_[item].value.load(std::memory_order_acquire);
      if (finished >= rounds_.count()) return true;
      if (!own) {  // the owner is at work while its item keeps finishing rounds
        if (finished != seen) seen = finished, since = clock_ns();
        if (i % 16 != 15 || clock_ns() - since < std::max<int64_t>(kMinPatienceNs, 4 * average_item_ns())) {
          pause_briefly(i);
          continue;
        }
      }
      int64_t r = next_[item].value.load(std::memory_order_relaxed);
      if (r >= rounds_.count()) return true;  // (its last rounds are under way elsewhere)
      if (!next_[item].value.compare_exchange_weak(r, r + 1, std::memory_order_relaxed)) continue;
      own = true;  // (a late owner's item is carried on from here, its owner taking rounds too once it is back)
      for (int64_t j = 0; finished_[item].value.load(std::memory_order_acquire) < r; ++j) pause_briefly(j);
      const int64_t started = clock_ns();
      work(r, item);
      finished_[item].value.store(r + 1, std::memory_order_release);
      done_.value.fetch_add(1, std::memory_order_release);
      busy_ns_[me].value.fetch_add(clock_ns() - started, std::memory_order_relaxed);
    }
  }
  // A spin-wait's i-th pause: a CPU pause, and now and then a yield of the core.
  static void pause_briefly(int64_t i);
  int64_t average_item_ns() const;

  struct alignas(64) Counter {
    std::atomic<int64_t> value{0};
  };
  bool cancelled() const { return cancel_ != nullptr && cancel_->stop_requested(); }
  int64_t begin(int owner) const { return items_ * owner / threads_; }
  int64_t size(int owner) const { return begin(owner + 1) - begin(owner); }
  bool claim(int owner, int64_t round, int64_t* item);
  // Before this thread looks for another's unclaimed items when each thread has one: waits for round `round` to end,
  // and returns false when it does, true when it has not after `patience_ns` (this thread's own time in the round's
  // items; at least kMinPatienceNs) more. A thread's single item is claimed as its round starts, so a look any sooner
  // finds it claimed; and looking pulled the owner's count into this core at every round, so that the owner's next
  // claim waited for the line to come back. Only a late partner (descheduled, or starting late) leaves its item.
  bool owner_late(int64_t round, int64_t patience_ns) const;
  static constexpr int64_t kMinPatienceNs = 2000;
  static int64_t clock_ns();
  // Waits until `round` may start. False when this thread is to stop: a thread that waited too long for a round
  // (stall_ns(): its partner was descheduled in the middle of an item) becomes the only one to go on, for the rest
  // of this call, and the stall counts towards busy_machine().
  bool wait_for_round(int64_t round, int me);

  const int threads_;
  const int64_t items_;
  const Rounds& rounds_;
  Counter* claimed_;   // per owner: its items claimed so far, over all rounds
  Counter* next_;      // independent items: per item, the next round to claim
  Counter* finished_;  // independent items: per item, the rounds finished (the lead rounds counted)
  Counter done_;       // items finished so far, over all rounds
  Counter* busy_ns_;   // per thread: its time in items so far
  std::atomic<int> solo_thread_{-1};
  CancelScope* const cancel_;  // cancel_scope() of the thread that made the schedule

 public:
  // How long a thread may wait for a round (or, at the region's end, for the others) before its partner counts as
  // descheduled: kStallNs (busy_machine.h) plus four average items, so that a long item on a big problem is not
  // mistaken for a stall.
  int64_t stall_ns() const;
};

// Watches the end of a time loop's parallel region: the first thread marks when it has finished its work (done()),
// and after the region check() counts a stall if it then waited longer than rounds.stall_ns() for the others, which
// happens when another thread of the team was descheduled on a busy machine.
class RegionWatch {
 public:
  explicit RegionWatch(const WorkRounds& rounds) : rounds_(rounds) {}
  void done();
  void check() const;

 private:
  const WorkRounds& rounds_;
  int64_t first_done_ns_ = 0;
};

}  // namespace pylstm

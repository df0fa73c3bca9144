#include "primitives/busy_machine.h"

#include <algorithm>
#include <atomic>

#include "primitives/blas_pools.h"

namespace pylstm {

namespace {

std::atomic<int64_t>& busy_until_ns() {
  static std::atomic<int64_t> t{0};
  return t;
}

}  // namespace

namespace {
std::atomic<bool>& adaptive() {
  static std::atomic<bool> on{true};
  return on;
}
}  // namespace

bool adaptive_threads() { return adaptive().load(std::memory_order_relaxed); }

void set_adaptive_threads(bool enabled) {
  adaptive().store(enabled);
  if (!enabled) busy_until_ns().store(0);
}

bool busy_machine() {
  if (now_ns() >= busy_until_ns().load(std::memory_order_relaxed)) return false;
  quiet_blas_pools();  // idle BLAS threads spinning make a busy machine busier (blas_pools.h)
  return true;
}

namespace {
// Stalls closer together than this are strikes.
constexpr int64_t kStrikeWindowNs = int64_t(1000) * 1000 * 1000;
// The first busy period, at the third strike.
constexpr int64_t kBusyFirstNs = int64_t(10) * 1000 * 1000;
// The longest busy period. A machine that stays busy re-enters it at the first stall after it ends, which costs one
// stalled call per period; a virtual machine whose vCPUs are preempted in bursts leaves it soon (a longer cap kept
// many calls on one thread on a quiet but noisy virtual machine).
constexpr int64_t kBusyMaxNs = int64_t(100) * 1000 * 1000;

}  // namespace

// From the third strike on the machine counts as busy for kBusyFirstNs, doubling with every further strike up to
// kBusyMaxNs: a burst of contention (another library's thread pool still spinning after its call) costs little, a
// machine that stays busy keeps the loops on one thread.
void note_stall() {
  static std::atomic<int64_t> last{0};
  static std::atomic<int> strikes{0};
  if (!adaptive_threads()) return;
  const int64_t now = now_ns(), previous = last.exchange(now, std::memory_order_relaxed);
  const int n = previous != 0 && now - previous < kStrikeWindowNs ? std::min(strikes.load() + 1, 16) : 1;
  strikes.store(n, std::memory_order_relaxed);
  if (n >= 3) {
    const int64_t busy_for = std::min<int64_t>(kBusyMaxNs, kBusyFirstNs << std::min(n - 3, 7));
    busy_until_ns().store(now + busy_for, std::memory_order_relaxed);
  }
}


}  // namespace pylstm

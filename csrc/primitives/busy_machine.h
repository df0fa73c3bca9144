// Detection of a busy machine: time loops that find a partner thread descheduled (a stall) report it here, and after
// a few stalls in a row the kernels run on one thread for a while (threads.h, the loops' own thread counts).
#pragma once
#include <chrono>
#include <cstdint>

namespace pylstm {

// True for a while after time loops found a partner thread descheduled three times, each within a second of the
// last (one stall alone may be a thread starting up): for a period that doubles with every further stall, up to a
// cap (busy_machine.cpp). The loops then run on one thread, which a busy machine serves far better than threads that
// wait for each other; and other libraries' idle BLAS threads are stopped (blas_pools.h).
bool busy_machine();
// Tests that must see two threads at work switch that adaptation off (it is on by default).
void set_adaptive_threads(bool enabled);

// A wait longer than this for a partner thread means it was descheduled: on a busy machine that is a scheduler time
// slice (milliseconds); shorter pauses (a virtual machine's vCPU briefly preempted, page faults) are not worth
// changing course for.
constexpr int64_t kStallNs = 1000 * 1000;
// A stall seen (WorkRounds, RegionWatch): counts towards busy_machine() unless adaptation is off.
void note_stall();
// Whether the adaptation is on (set_adaptive_threads).
bool adaptive_threads();
// A monotonic clock in nanoseconds.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace pylstm

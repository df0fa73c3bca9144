// Ctrl-C during a long kernel call. The kernels run with the GIL released, so Python's SIGINT handler only notes the
// signal, and its KeyboardInterrupt would come when the call ends, seconds later. A long call from the main thread
// (the one thread that Python raises KeyboardInterrupt in) therefore runs with a SIGINT handler of its own, chained
// to Python's, that also sets a flag its time loops check at every round (CancelScope, work_rounds.h).
//
// A call cut short this way has changed nothing it was given: a forward call's outputs are its own new arrays, which
// it drops; a backward call adds nothing to the caller's gradients (backward_pass.h). Python's handler then runs
// (PyErr_CheckSignals) and its exception is raised from the call; when that handler raises nothing (a Python handler
// that only takes note), the call runs again in full. A call that ran in full although SIGINT came returns its
// results as usual, and Python raises KeyboardInterrupt (its handler having run) right after it.
#pragma once
#include <pybind11/pybind11.h>

#include <atomic>
#include <csignal>
#include <cstdint>

#include "bindings/parts.h"
#include "primitives/work_rounds.h"

namespace pylstm {

namespace interrupt_detail {

// Multiply-adds from which a call runs interruptible: a few milliseconds of work. Below it a call pays nothing but a
// comparison (installing a signal handler and restoring it costs a few microseconds).
constexpr int64_t kInterruptibleWork = int64_t(1) << 24;

inline std::atomic<bool>& sigint_seen() {
  static std::atomic<bool> seen{false};
  return seen;
}

#ifdef SA_SIGINFO
inline struct sigaction& previous_action() {
  static struct sigaction previous;
  return previous;
}

inline void on_sigint(int signal, siginfo_t* info, void* context) {
  sigint_seen().store(true, std::memory_order_relaxed);
  const struct sigaction& previous = previous_action();
  if (previous.sa_flags & SA_SIGINFO) previous.sa_sigaction(signal, info, context);
  else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) previous.sa_handler(signal);
}

// Installs on_sigint in front of the present SIGINT handler, when that is a handler (Python's); false otherwise (SIGINT
// ignored, or with its default action, which ends the process anyway).
inline bool install() {
  struct sigaction& previous = previous_action();
  if (sigaction(SIGINT, nullptr, &previous) != 0) return false;
  if (!(previous.sa_flags & SA_SIGINFO) && (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN))
    return false;
  struct sigaction ours = {};
  ours.sa_sigaction = &on_sigint;
  ours.sa_mask = previous.sa_mask;
  ours.sa_flags = SA_SIGINFO | (previous.sa_flags & SA_ONSTACK);
  sigint_seen().store(false, std::memory_order_relaxed);
  return sigaction(SIGINT, &ours, nullptr) == 0;
}

inline void uninstall() { sigaction(SIGINT, &previous_action(), nullptr); }
#else
inline bool install() { return false; }
inline void uninstall() {}
#endif

// The main thread's identity, taken when the module is imported.
inline unsigned long& main_thread_ident() {
  static unsigned long ident = 0;
  return ident;
}

}  // namespace interrupt_detail

// Called once from the module's init (with the GIL held).
inline void init_interrupts() {
  namespace py = pybind11;
  interrupt_detail::main_thread_ident() =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
}

// Runs kernel() with the GIL released; interruptible by Ctrl-C (see above) when `work` (multiply-adds, as a double:
// products of sizes may exceed int64) is large and this is the main thread. Raises Python's exception
// (KeyboardInterrupt) when SIGINT cut the call short.
template <typename Kernel>
void run_kernel(double work, Kernel&& kernel) {
  namespace py = pybind11;
  using namespace interrupt_detail;
  if (work < double(kInterruptibleWork) || PyThread_get_thread_ident() != main_thread_ident() || !install()) {
    KernelCall call;
    kernel();
    return;
  }
  bool cut_short;
  {
    struct Restore {
      ~Restore() { uninstall(); }
    } restore;
    KernelCall call;
    CancelScope scope(&sigint_seen());
    kernel();
    cut_short = scope.cut_short();
  }
  if (!cut_short) return;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  KernelCall call;  // the handler raised nothing: the call's outputs are made again, in full
  kernel();
}

}  // namespace pylstm

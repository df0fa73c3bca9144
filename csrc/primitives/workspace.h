// Scratch memory reused across kernel calls, so that a small call allocates nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pylstm {

// Bytes of canaries around every buffer of a Scratch: none, or with PYLSTM_GUARD_BUFFERS defined at compile time (the
// sanitizer builds: -DPYLSTM_GUARD_BUFFERS in CFLAGS) a cache line before and after each, checked when the Scratch
// goes away. A sanitizer sees only the whole block, not an overrun from one buffer into the next.
#ifdef PYLSTM_GUARD_BUFFERS
constexpr size_t kGuardBytes = 64;
#else
constexpr size_t kGuardBytes = 0;
#endif

// Collects typed buffer requests, then hands out one 64-byte aligned block from the calling thread's workspace
// `slot` (a kernel uses slot 0; the GEMM driver it calls uses slot 1). Blocks up to kKeepBytes stay with the thread
// for the next call (release_workspaces frees them); larger ones are freed when the Scratch goes away.
class Scratch {
 public:
  explicit Scratch(int slot) : slot_(slot) {}
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // Records that *where shall point to `count` values of T once allocate() has run.
  template <typename T>
  void need(T** where, int64_t count) {
    const size_t exact = static_cast<size_t>(count < 0 ? 0 : count) * sizeof(T);
    requests_.push_back({reinterpret_cast<void**>(where), bytes_ + kGuardBytes, exact});
    bytes_ += kGuardBytes + (exact + 63) / 64 * 64 + kGuardBytes;
  }
  void allocate();

  static constexpr size_t kKeepBytes = size_t(256) << 20;

 private:
  struct Request {
    void** where;
    size_t offset;
    size_t bytes;
  };
  void check_guards() const;
  int slot_;
  size_t bytes_ = 0;
  std::vector<Request> requests_;
  char* data_ = nullptr;  // the block, once allocate() has run
  bool holds_ = false;    // this Scratch marked its thread's block in use (not a nested Scratch of the same slot)
};

// Frees the workspace blocks of every thread (the calling thread's, the OpenMP threads', other Python threads') that
// no kernel is using at the moment; returns the bytes freed. Thread-safe: a kernel running on another thread keeps
// its block.
size_t release_workspaces();

}  // namespace pylstm

// Scratch memory reused across kernel calls, so that a small call allocates nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pylstm {

// Collects typed buffer requests, then hands out one 64-byte aligned block from the calling thread's workspace
// `slot` (a kernel uses slot 0; the GEMM driver it calls uses slot 1). Blocks up to kKeepBytes stay with the thread
// for the next call; larger ones are freed when the Scratch goes away.
class Scratch {
 public:
  explicit Scratch(int slot) : slot_(slot) {}
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // Records that *where shall point to `count` values of T once allocate() has run.
  template <typename T>
  void need(T** where, int64_t count) {
    requests_.push_back({reinterpret_cast<void**>(where), bytes_});
    bytes_ += (static_cast<size_t>(count < 0 ? 0 : count) * sizeof(T) + 63) / 64 * 64;
  }
  void allocate();

  static constexpr size_t kKeepBytes = size_t(256) << 20;

 private:
  struct Request {
    void** where;
    size_t offset;
  };
  int slot_;
  size_t bytes_ = 0;
  std::vector<Request> requests_;
};

}  // namespace pylstm

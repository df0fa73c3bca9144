#include "workspace.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "buffers.h"

namespace pylstm {

namespace {

// A thread's block of one slot. Its owner thread uses it between Scratch::allocate and ~Scratch (kInUse), and
// release_workspaces, from any thread, frees it only while it is idle (kReleasing for the time it takes).
enum BlockState : int { kIdle, kInUse, kReleasing };

struct Block {
  void* data = nullptr;
  size_t bytes = 0;
  std::atomic<int> state{kIdle};
  void free_data() {
    std::free(data);
    data = nullptr;
    bytes = 0;
  }
};

struct ThreadBlocks;

// Every thread's blocks, for release_workspaces. Never destroyed: threads may exit during interpreter shutdown.
struct Registry {
  std::mutex mutex;
  std::vector<ThreadBlocks*> threads;
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

struct ThreadBlocks {
  Block slots[2];
  bool registered = false;
  void enroll() {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.threads.push_back(this);
    registered = true;
  }
  ~ThreadBlocks() {
    if (registered) {
      Registry& r = registry();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.threads.erase(std::find(r.threads.begin(), r.threads.end(), this));
    }
    for (Block& b : slots) b.free_data();
  }
};

thread_local ThreadBlocks blocks;

constexpr unsigned char kCanary = 0xA5;

}  // namespace

void Scratch::allocate() {
  ThreadBlocks& mine = blocks;
  if (!mine.registered) mine.enroll();
  Block& b = mine.slots[slot_];
  // Take the block: wait while release_workspaces frees it; a nested Scratch of the same slot (already in use by
  // this thread) shares it.
  for (;;) {
    int state = b.state.load(std::memory_order_acquire);
    if (state == kInUse) break;
    if (state == kIdle && b.state.compare_exchange_weak(state, kInUse, std::memory_order_acquire)) {
      holds_ = true;
      break;
    }
    std::this_thread::yield();
  }
  if (b.data == nullptr || b.bytes < bytes_) {
    b.free_data();
    b.data = allocate_block(bytes_);
    b.bytes = bytes_;
  }
  data_ = static_cast<char*>(b.data);
  for (const Request& r : requests_) *r.where = data_ + r.offset;
  if (kGuardBytes > 0) {
    for (const Request& r : requests_) {
      std::memset(data_ + r.offset - kGuardBytes, kCanary, kGuardBytes);
      const size_t end = r.offset + r.bytes, guard_end = r.offset + (r.bytes + 63) / 64 * 64 + kGuardBytes;
      std::memset(data_ + end, kCanary, guard_end - end);
    }
  }
}

void Scratch::check_guards() const {
  for (size_t k = 0; k < requests_.size(); ++k) {
    const Request& r = requests_[k];
    const size_t end = r.offset + r.bytes, guard_end = r.offset + (r.bytes + 63) / 64 * 64 + kGuardBytes;
    const char* before = data_ + r.offset - kGuardBytes;
    for (size_t i = 0; i < guard_end - r.offset + kGuardBytes; ++i) {
      const char* p = before + i;
      const bool canary = p < data_ + r.offset || p >= data_ + end;
      if (canary && static_cast<unsigned char>(*p) != kCanary) {
        std::fprintf(stderr,
                     "pylstm: PYLSTM_GUARD_BUFFERS: scratch buffer %zu of %zu (slot %d, %zu bytes) was written %s "
                     "its end, at byte %td from its start\n",
                     k, requests_.size(), slot_, r.bytes, p < data_ + r.offset ? "before" : "past",
                     p - (data_ + r.offset));
        std::abort();
      }
    }
  }
}

Scratch::~Scratch() {
  if (kGuardBytes > 0 && data_ != nullptr) check_guards();
  if (!holds_) return;
  Block& b = blocks.slots[slot_];
  if (b.bytes > kKeepBytes) b.free_data();
  b.state.store(kIdle, std::memory_order_release);
}

size_t release_workspaces() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  size_t freed = 0;
  for (ThreadBlocks* t : r.threads) {
    for (Block& b : t->slots) {
      int idle = kIdle;
      if (!b.state.compare_exchange_strong(idle, kReleasing, std::memory_order_acquire)) continue;
      freed += b.bytes;
      b.free_data();
      b.state.store(kIdle, std::memory_order_release);
    }
  }
  return freed;
}

}  // namespace pylstm

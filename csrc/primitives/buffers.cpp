#include "buffers.h"

#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>

#ifdef __linux__
#include <sys/mman.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace pylstm {
namespace {

// With PYLSTM_GUARD_BUFFERS (sanitizer builds), every output block is a new allocation of the exact size, freed when
// the array goes: a recycled block may be larger than its request, and a sanitizer would not see an overrun into
// the rest.
#ifdef PYLSTM_GUARD_BUFFERS
constexpr bool kRecycle = false;
#else
constexpr bool kRecycle = true;
#endif

// Each block starts with a header holding its capacity; the caller's data begins one cache line later.
constexpr size_t kHeader = 64;

struct Cache {
  std::mutex mutex;
  std::deque<void*> blocks;  // data pointers, oldest first
  size_t bytes = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: arrays may return their blocks during interpreter shutdown
  return *c;
}

size_t& capacity_of(void* data) { return *reinterpret_cast<size_t*>(static_cast<char*>(data) - kHeader); }

void free_block(void* data) { std::free(static_cast<char*>(data) - kHeader); }

}  // namespace

void* allocate_block(size_t bytes) {
#ifdef PYLSTM_GUARD_BUFFERS
  // Exactly `bytes`, so that a sanitizer sees an overrun of the block's end.
  void* exact = nullptr;
  if (posix_memalign(&exact, 64, bytes == 0 ? 1 : bytes) != 0) throw std::bad_alloc();
  return exact;
#endif
  constexpr size_t kHugePage = size_t(2) << 20;
  const bool huge = bytes >= 2 * kHugePage;
  const size_t align = huge ? kHugePage : 64, size = (bytes + align - 1) / align * align;
  void* block = std::aligned_alloc(align, size == 0 ? align : size);
  if (block == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge) madvise(block, size, MADV_HUGEPAGE);
#endif
  return block;
}

void* take_buffer(size_t bytes) {
  Cache& c = cache();
  if (!kRecycle) {
    char* block = static_cast<char*>(allocate_block(kHeader + bytes));
    capacity_of(block + kHeader) = bytes;
    return block + kHeader;
  }
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto best = c.blocks.end();
    for (auto it = c.blocks.begin(); it != c.blocks.end(); ++it) {
      const size_t cap = capacity_of(*it);
      if (cap >= bytes && cap - bytes <= bytes / 4 && (best == c.blocks.end() || cap < capacity_of(*best))) best = it;
    }
    if (best != c.blocks.end()) {
      void* data = *best;
      c.bytes -= capacity_of(data);
      c.blocks.erase(best);
      return data;
    }
  }
  const size_t capacity = (bytes + 63) / 64 * 64;
  char* block = static_cast<char*>(allocate_block(kHeader + capacity));
  void* data = block + kHeader;
  capacity_of(data) = capacity;
  return data;
}

void give_buffer(void* data) {
  if (data == nullptr) return;
  if (!kRecycle) return free_block(data);
  Cache& c = cache();
  std::deque<void*> evicted;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    const size_t cap = capacity_of(data);
    if (cap > kRecycledMaxBytes) {
      evicted.push_back(data);
    } else {
      while (c.bytes + cap > kRecycledMaxBytes) {
        c.bytes -= capacity_of(c.blocks.front());
        evicted.push_back(c.blocks.front());
        c.blocks.pop_front();
      }
      c.blocks.push_back(data);
      c.bytes += cap;
    }
  }
  for (void* d : evicted) free_block(d);
}

size_t release_buffers() {
  Cache& c = cache();
  std::deque<void*> all;
  size_t bytes;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    all.swap(c.blocks);
    bytes = c.bytes;
    c.bytes = 0;
  }
  for (void* d : all) free_block(d);
  return bytes;
}

void trim_heap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

size_t cached_buffer_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.bytes;
}

OutputBlock allocate_output(size_t bytes) {
  if (bytes < kAlignedOutputMinBytes) return {};
  if (bytes >= kRecycledMinBytes) return {take_buffer(bytes), &give_buffer};
  return {allocate_block(bytes), +[](void* p) { std::free(p); }};
}

}  // namespace pylstm

// Large output buffers, recycled between kernel calls.
//
// A fresh block of tens of megabytes costs a page fault and the OS zeroing every page on first touch, and with
// transparent huge pages it may wait for memory compaction, which for the large outputs of a training call (saved
// activations of tens of megabytes) can take much of the call's time, varying with the state of the machine's
// memory.
// caller has finished with come back here and serve the next request of about the same size, so a training loop
// touches fresh memory only in its first iteration.
#pragma once
#include <cstddef>

namespace pylstm {

// Requests below this size are not worth caching (the C library reuses small blocks itself).
constexpr size_t kRecycledMinBytes = size_t(1) << 20;
// At most this many bytes of blocks wait in the cache; the oldest are freed first.
constexpr size_t kRecycledMaxBytes = size_t(512) << 20;

// A 64-byte aligned block of at least `bytes`: a cached block of bytes .. bytes * 5/4, or a new one. Never null
// (throws std::bad_alloc). Its contents are undefined.
void* take_buffer(size_t bytes);
// Returns a block from take_buffer to the cache (freeing it, or older ones, when the cache would exceed
// kRecycledMaxBytes). Thread-safe.
void give_buffer(void* data);
// A new block of at least `bytes` for the kernels' large memory (output blocks, workspaces), freed with std::free:
// 64-byte aligned, and from 4 MiB on 2 MiB aligned and advised to use transparent huge pages, where the OS grants them
// on request as NumPy asks for its large arrays. The GEMMs stream packed weights of tens of MB: with 4 KiB pages
// every 4 KiB costs a TLB miss.
void* allocate_block(size_t bytes);
// The memory of an output array of `bytes`: from kAlignedOutputMinBytes on, a block that starts on a cache line (the
// time loops' threads write each row of h in parts, and a row that starts mid-line would put the line at the
// boundary in two threads' hands at every step), recycled from kRecycledMinBytes on; `release` gives it back. Below
// kAlignedOutputMinBytes, data is null: the caller's own allocator (NumPy's) is the faster one there.
constexpr size_t kAlignedOutputMinBytes = 4096;
struct OutputBlock {
  void* data = nullptr;
  void (*release)(void*) = nullptr;
};
OutputBlock allocate_output(size_t bytes);
// Frees every cached block; returns the bytes freed.
size_t release_buffers();
// Returns the C library's free heap pages to the OS (glibc's malloc_trim; nothing elsewhere): blocks below the C
// library's mmap threshold stay in its heap when freed, counted in the process's resident memory.
void trim_heap();
// Bytes of blocks waiting in the cache.
size_t cached_buffer_bytes();

}  // namespace pylstm

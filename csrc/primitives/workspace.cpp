#include "workspace.h"

#include <cstdlib>
#include <new>

namespace pylstm {

namespace {

struct Block {
  void* data = nullptr;
  size_t bytes = 0;
  ~Block() { std::free(data); }
};

thread_local Block blocks[2];

}  // namespace

void Scratch::allocate() {
  Block& b = blocks[slot_];
  if (b.data == nullptr || b.bytes < bytes_) {
    std::free(b.data);
    b.data = nullptr;
    b.bytes = 0;
    void* p = std::aligned_alloc(64, bytes_ == 0 ? 64 : bytes_);
    if (p == nullptr) throw std::bad_alloc();
    b.data = p;
    b.bytes = bytes_;
  }
  for (const Request& r : requests_) *r.where = static_cast<char*>(b.data) + r.offset;
}

Scratch::~Scratch() {
  Block& b = blocks[slot_];
  if (b.bytes > kKeepBytes) {
    std::free(b.data);
    b.data = nullptr;
    b.bytes = 0;
  }
}

}  // namespace pylstm

#include "workspace.h"

#include <cstdlib>

#include "buffers.h"

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
    b.data = allocate_block(bytes_);
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

// The floating-point mode of a kernel call and the ordering of its streamed stores (the ISA dispatch is isa.h; what
// the CPU can run, cpu.cpp).
#pragma once
#include "primitives/isa.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define PYLSTM_X86 1
#endif

namespace pylstm {

// Flush-to-zero and denormals-are-zero for this thread while the guard lives, then the previous mode again:
// denormal operands can slow SIMD arithmetic many times over, and values below 1e-38 (float) do not matter to a
// recurrent network. Every kernel entry point and every thread of a parallel region holds one.
class DenormalsAreZero {
 public:
#ifdef PYLSTM_X86
  DenormalsAreZero() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~DenormalsAreZero() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
};

// Orders this thread's non-temporal stores (store_stream's) before its later stores, so that whoever reads
// the data after this thread's next synchronization sees it (sfence; nothing to do elsewhere).
inline void store_fence() {
#ifdef PYLSTM_X86
  _mm_sfence();
#endif
}

}  // namespace pylstm

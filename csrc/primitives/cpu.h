// What the CPU can run, which ISA's building blocks are active, and the floating-point mode of a kernel call.
#pragma once
#include <string>
#include <vector>

#include "ops.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define PYLSTM_X86 1
#endif

namespace pylstm {

const char* isa_name(Isa isa);
// Compiled into this build and supported by this CPU and its OS (CPUID and XGETBV).
bool isa_supported(Isa isa);
std::vector<std::string> supported_isas();  // names, scalar first
Isa active_isa();
// Throws std::invalid_argument naming the ISA when it is unknown or unsupported here.
void set_active_isa(const std::string& name);

// Flush-to-zero and denormals-are-zero for this thread while the guard lives, then the previous mode again:
// denormal operands can slow SIMD arithmetic 10-100x, and values below 1e-38 (float) do not matter to a
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

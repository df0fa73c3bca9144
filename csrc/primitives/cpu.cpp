#include "primitives/cpu.h"

#include <atomic>
#include <string>
#include <vector>
#include <cstdint>
#include <stdexcept>

#ifdef PYLSTM_X86
#include <cpuid.h>
#endif

#include "primitives/isa.h"
#include "primitives/ops.h"

namespace pylstm {

namespace {

struct Features {
  bool avx2_fma = false;
  bool avx512 = false;  // F, VL, BW, DQ
};

Features detect() {
  Features f;
#ifdef PYLSTM_X86
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = ecx & (1u << 27), avx = ecx & (1u << 28), fma = ecx & (1u << 12);
  if (!osxsave || !avx) return f;
  // Which register state the OS saves on a context switch: XMM|YMM (bits 1, 2), and opmask|ZMM (bits 5, 6, 7).
  unsigned xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool os_ymm = (xcr0_lo & 0x6u) == 0x6u, os_zmm = (xcr0_lo & 0xE6u) == 0xE6u;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = ebx & (1u << 5);
  const bool avx512 = (ebx & (1u << 16)) && (ebx & (1u << 17)) && (ebx & (1u << 30)) && (ebx & (1u << 31));
  f.avx2_fma = os_ymm && avx2 && fma;
  f.avx512 = f.avx2_fma && os_zmm && avx512;
#endif
  return f;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

// Compiled into this build: the compiler could target the ISA (its Ops table exists).
bool compiled(Isa isa) {
  switch (isa) {
#define PYLSTM_ISA_COMPILED(enumerator, ns, name, arg) \
  case Isa::enumerator: return ns::isa_table<Ops<float>>() != nullptr;
    PYLSTM_FOR_EACH_ISA(PYLSTM_ISA_COMPILED, )
#undef PYLSTM_ISA_COMPILED
  }
  return false;
}

// The CPU and its OS run the ISA's instructions.
bool cpu_runs(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return features().avx2_fma;
    case Isa::kAvx512: return features().avx512;
  }
  return false;
}

constexpr Isa kEveryIsa[] = {
#define PYLSTM_ISA_LISTED(enumerator, ns, name, arg) Isa::enumerator,
    PYLSTM_FOR_EACH_ISA(PYLSTM_ISA_LISTED, )
#undef PYLSTM_ISA_LISTED
};

// The last (best) ISA that runs here.
Isa best_isa() {
  Isa best = Isa::kScalar;
  for (Isa isa : kEveryIsa)
    if (isa_supported(isa)) best = isa;
  return best;
}

std::atomic<int>& active() {
  static std::atomic<int> isa{static_cast<int>(best_isa())};
  return isa;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
#define PYLSTM_ISA_NAME(enumerator, ns, name, arg) \
  case Isa::enumerator: return name;
    PYLSTM_FOR_EACH_ISA(PYLSTM_ISA_NAME, )
#undef PYLSTM_ISA_NAME
  }
  return "?";
}

bool isa_supported(Isa isa) { return compiled(isa) && cpu_runs(isa); }

std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (Isa isa : kEveryIsa)
    if (isa_supported(isa)) names.push_back(isa_name(isa));
  return names;
}

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

void set_active_isa(const std::string& name) {
  for (Isa isa : kEveryIsa) {
    if (name != isa_name(isa)) continue;
    if (!isa_supported(isa))
      throw std::invalid_argument("ISA '" + name + "' is not supported on this machine (supported: " +
                                  [] {
                                    std::string s;
                                    for (const auto& n : supported_isas()) s += (s.empty() ? "" : ", ") + n;
                                    return s;
                                  }() +
                                  ")");
    active().store(static_cast<int>(isa), std::memory_order_relaxed);
    return;
  }
  std::string expected;  // 'scalar', 'avx2' or 'avx512'
  const size_t count = sizeof(kEveryIsa) / sizeof(kEveryIsa[0]);
  for (size_t k = 0; k < count; ++k)
    expected += std::string(k == 0 ? "" : k + 1 == count ? " or " : ", ") + "'" + isa_name(kEveryIsa[k]) + "'";
  throw std::invalid_argument("unknown ISA '" + name + "': expected " + expected);
}

}  // namespace pylstm

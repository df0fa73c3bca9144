// Compiles one kind of table (isa.h) for one ISA: the ISA's Vec, math_inl.h and load_store_inl.h, then the body
// PYLSTM_ISA_BODY, all in the ISA's namespace; for a SIMD ISA inside a target region, so that only these functions use
// its instructions (the rest of the build stays baseline x86-64: no -march flags). The body defines
// make_table<T>() (constexpr: the table is filled at compile time, and no code of the ISA runs before the dispatcher
// has chosen it); this file defines isa_table<PYLSTM_ISA_KIND<T>>() from it.
//
// The includer defines PYLSTM_ISA_BODY (a header path) and PYLSTM_ISA_KIND (the table's template), and includes
// isa_<name>_inl.h (one ISA) or every_isa_inl.h, which define the ISA's PYLSTM_SIMD_NS, PYLSTM_SIMD_VEC and, for a
// SIMD ISA, PYLSTM_SIMD_TARGET before including this file. Bodies are headers without include guards (each ISA
// compiles them in its own namespace).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "primitives/isa.h"

// Defines isa_table<PYLSTM_ISA_KIND<float>>() as f32 and isa_table<PYLSTM_ISA_KIND<double>>() as f64.
#define PYLSTM_ISA_TABLES_ARE(f32, f64)                            \
  namespace pylstm {                                               \
  namespace PYLSTM_SIMD_NS {                                       \
  template <>                                                      \
  const PYLSTM_ISA_KIND<float>* isa_table<PYLSTM_ISA_KIND<float>>() { \
    return f32;                                                    \
  }                                                                \
  template <>                                                      \
  const PYLSTM_ISA_KIND<double>* isa_table<PYLSTM_ISA_KIND<double>>() { \
    return f64;                                                    \
  }                                                                \
  }                                                                \
  }

#if !defined(PYLSTM_SIMD_TARGET) || (defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))

#if defined(PYLSTM_SIMD_TARGET)  // a SIMD ISA: its code inside a target region
#include <immintrin.h>
#define PYLSTM_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define PYLSTM_TARGET_BEGIN(t) PYLSTM_PRAGMA(clang attribute push(__attribute__((target(t))), apply_to = function))
#define PYLSTM_TARGET_END PYLSTM_PRAGMA(clang attribute pop)
#else
#define PYLSTM_TARGET_BEGIN(t) PYLSTM_PRAGMA(GCC push_options) PYLSTM_PRAGMA(GCC target(t))
#define PYLSTM_TARGET_END PYLSTM_PRAGMA(GCC pop_options)
#endif
#else  // the portable path: plain C++, no target region
#define PYLSTM_TARGET_BEGIN(t)
#define PYLSTM_TARGET_END
#endif

PYLSTM_TARGET_BEGIN(PYLSTM_SIMD_TARGET)
#include PYLSTM_SIMD_VEC
#include "primitives/simd/math_inl.h"
#include "primitives/simd/load_store_inl.h"
#include PYLSTM_ISA_BODY

namespace pylstm {
namespace PYLSTM_SIMD_NS {
namespace {
const PYLSTM_ISA_KIND<float> kTableF32 = make_table<float>();
const PYLSTM_ISA_KIND<double> kTableF64 = make_table<double>();
}  // namespace
}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm
PYLSTM_TARGET_END

PYLSTM_ISA_TABLES_ARE(&kTableF32, &kTableF64)

#undef PYLSTM_TARGET_BEGIN
#undef PYLSTM_TARGET_END
#undef PYLSTM_PRAGMA

#else  // a SIMD ISA in a build that cannot target it (not x86-64 GCC/clang): no such path

PYLSTM_ISA_TABLES_ARE(nullptr, nullptr)

#endif

#undef PYLSTM_ISA_TABLES_ARE
#undef PYLSTM_SIMD_NS
#undef PYLSTM_SIMD_VEC
#undef PYLSTM_SIMD_TARGET

// The body of one SIMD ISA's translation unit (isa_avx2.cpp, isa_avx512.cpp): the building blocks of kernels_inl.h
// over that ISA's Vec, inside a target region so that only these functions use its instructions (the rest of the
// build stays baseline x86-64; no -march flags), and its Ops tables, filled at compile time. cpu.cpp hands a table
// out only when CPUID says the machine can run it.
//
// The including file defines PYLSTM_SIMD_NS (the ISA's namespace), PYLSTM_SIMD_TARGET (the target string),
// PYLSTM_SIMD_VEC (its Vec header) and PYLSTM_SIMD_TABLE(dtype) (the names of its tables in ops.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "primitives/ops.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define PYLSTM_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define PYLSTM_TARGET_BEGIN(t) PYLSTM_PRAGMA(clang attribute push(__attribute__((target(t))), apply_to = function))
#define PYLSTM_TARGET_END PYLSTM_PRAGMA(clang attribute pop)
#else
#define PYLSTM_TARGET_BEGIN(t) PYLSTM_PRAGMA(GCC push_options) PYLSTM_PRAGMA(GCC target(t))
#define PYLSTM_TARGET_END PYLSTM_PRAGMA(GCC pop_options)
#endif

PYLSTM_TARGET_BEGIN(PYLSTM_SIMD_TARGET)
#include PYLSTM_SIMD_VEC
#include "primitives/simd/math_inl.h"
#include "primitives/simd/kernels_inl.h"

namespace pylstm {
namespace PYLSTM_SIMD_NS {
extern const Ops<float> kOpsF32 = make_ops<float>(PYLSTM_SIMD_NAME);
extern const Ops<double> kOpsF64 = make_ops<double>(PYLSTM_SIMD_NAME);
}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm
PYLSTM_TARGET_END

namespace pylstm {
const Ops<float>* const PYLSTM_SIMD_TABLE(F32) = &PYLSTM_SIMD_NS::kOpsF32;
const Ops<double>* const PYLSTM_SIMD_TABLE(F64) = &PYLSTM_SIMD_NS::kOpsF64;
}  // namespace pylstm

#else  // not an x86-64 GCC/clang build: no such path

namespace pylstm {
const Ops<float>* const PYLSTM_SIMD_TABLE(F32) = nullptr;
const Ops<double>* const PYLSTM_SIMD_TABLE(F64) = nullptr;
}  // namespace pylstm

#endif

// The building blocks compiled for avx2: kernels_inl.h over avx2's Vec, inside a target region so that only
// this file's kernels use avx2 instructions (the rest of the build stays baseline x86-64; no -march flags).
// The table is filled at compile time; cpu.cpp hands it out only when CPUID says the machine can run it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ops.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define PYLSTM_SIMD_NS avx2
#include "simd/vec_avx2.h"
#include "simd/math_inl.h"
#include "simd/kernels_inl.h"

namespace pylstm {
namespace avx2 {
extern const Ops<float> kOpsF32 = make_ops<float>("avx2");
extern const Ops<double> kOpsF64 = make_ops<double>("avx2");
}  // namespace avx2
}  // namespace pylstm

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace pylstm {
const Ops<float>* const kAvx2OpsF32 = &avx2::kOpsF32;
const Ops<double>* const kAvx2OpsF64 = &avx2::kOpsF64;
}  // namespace pylstm

#else  // not an x86-64 GCC/clang build: no avx2 path

namespace pylstm {
const Ops<float>* const kAvx2OpsF32 = nullptr;
const Ops<double>* const kAvx2OpsF64 = nullptr;
}  // namespace pylstm

#endif

// The building blocks on the portable path: kernels_inl.h over one-lane Vec (plain C++, libm activations). It runs
// everywhere and is the kernels' own reference for the SIMD paths.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ops.h"

#define PYLSTM_SIMD_NS scalar
#include "simd/vec_scalar.h"
#include "simd/math_inl.h"
#include "simd/kernels_inl.h"

namespace pylstm {
extern const Ops<float> kScalarOpsF32 = scalar::make_ops<float>("scalar");
extern const Ops<double> kScalarOpsF64 = scalar::make_ops<double>("scalar");
}  // namespace pylstm

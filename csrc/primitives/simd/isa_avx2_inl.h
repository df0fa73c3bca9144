// AVX2 + FMA.
#define PYLSTM_SIMD_NS avx2
#define PYLSTM_SIMD_TARGET "avx2,fma"
#define PYLSTM_SIMD_VEC "primitives/simd/vec_avx2.h"
#include "primitives/simd/for_isa_inl.h"

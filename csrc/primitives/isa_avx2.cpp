// The building blocks compiled for AVX2 + FMA (see simd/isa_table_inl.h).
#define PYLSTM_SIMD_NS avx2
#define PYLSTM_SIMD_NAME "avx2"
#define PYLSTM_SIMD_TARGET "avx2,fma"
#define PYLSTM_SIMD_VEC "primitives/simd/vec_avx2.h"
#define PYLSTM_SIMD_TABLE(dtype) kAvx2Ops##dtype
#include "primitives/simd/isa_table_inl.h"

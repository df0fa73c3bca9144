// AVX-512 F/VL/BW/DQ.
#define PYLSTM_SIMD_NS avx512
#define PYLSTM_SIMD_TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"
#define PYLSTM_SIMD_VEC "primitives/simd/vec_avx512.h"
#include "primitives/simd/for_isa_inl.h"

// The building blocks compiled for AVX-512 F/VL/BW/DQ (see simd/isa_table_inl.h).
#define PYLSTM_SIMD_NS avx512
#define PYLSTM_SIMD_NAME "avx512"
#define PYLSTM_SIMD_TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"
#define PYLSTM_SIMD_VEC "primitives/simd/vec_avx512.h"
#define PYLSTM_SIMD_TABLE(dtype) kAvx512Ops##dtype
#include "primitives/simd/isa_table_inl.h"

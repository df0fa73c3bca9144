// The Ops table (ops.h) compiled for avx512.
#include "primitives/ops.h"

#define PYLSTM_ISA_KIND Ops
#define PYLSTM_ISA_BODY "primitives/simd/ops_table_inl.h"
#include "primitives/simd/isa_avx512_inl.h"

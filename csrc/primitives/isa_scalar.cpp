// The Ops table (ops.h) compiled for scalar.
#include "primitives/ops.h"

#define PYLSTM_ISA_KIND Ops
#define PYLSTM_ISA_BODY "primitives/simd/ops_table_inl.h"
#include "primitives/simd/isa_scalar_inl.h"

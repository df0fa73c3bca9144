// The portable ISA: one-lane Vec (plain C++, libm activations). It runs everywhere and is the SIMD paths' reference.
#define PYLSTM_SIMD_NS scalar
#define PYLSTM_SIMD_VEC "primitives/simd/vec_scalar.h"
#include "primitives/simd/for_isa_inl.h"

// Compiles the table PYLSTM_ISA_BODY / PYLSTM_ISA_KIND (for_isa_inl.h) for every ISA of PYLSTM_FOR_EACH_ISA (isa.h),
// in one translation unit: for tables of small functions (a cell's units). The Ops table's GEMMs are compiled one
// ISA per file instead (primitives/isa_<name>.cpp), so that each ISA's inlining and cloning decisions are made in a
// file of its own.
#include "primitives/simd/isa_scalar_inl.h"
#include "primitives/simd/isa_avx2_inl.h"
#include "primitives/simd/isa_avx512_inl.h"
#undef PYLSTM_ISA_BODY
#undef PYLSTM_ISA_KIND

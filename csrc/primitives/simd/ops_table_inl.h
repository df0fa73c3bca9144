// The body of the Ops table (ops.h) for one ISA: compiled by isa_<name>.cpp through for_isa_inl.h, which has
// included the ISA's Vec, math_inl.h and load_store_inl.h in its namespace.
#include "primitives/simd/gemm_inl.h"
#include "primitives/simd/rows_inl.h"

namespace pylstm {
namespace PYLSTM_SIMD_NS {

// The table of this ISA's building blocks. constexpr, so that the table is filled at compile time: no code of this
// ISA runs until the dispatcher has chosen it.
template <typename T>
constexpr Ops<T> make_table() {
  using V = Vec<T>;
  Ops<T> ops{};
  ops.nr = Tiling<V>::kNr;
  ops.gemm_panels = &gemm_panels<V>;
  ops.pack_a_block = &pack_a_block<V>;
  ops.gemm_a_packed = &gemm_a_packed<V>;
  ops.mc = Tiling<V>::kMc;
  ops.kc = Tiling<V>::kKc;
  ops.gemm_dot = &gemm_dot<V>;
  ops.gemm_axpy = &gemm_axpy<V>;
  ops.gemm_weight_slices = &gemm_weight_slices<V>;
  ops.block_rows_max = block_rows_max<V>();
  ops.pack_b_transposed = &pack_b_transposed<V>;
  ops.transpose = &transpose_matrix<V>;
  ops.sigmoid = &sigmoid_array<V>;
  ops.tanh = &tanh_array<V>;
  ops.row_max = &row_max<V>;
  ops.row_sum = &row_sum<V>;
  ops.exp_minus_sum = &exp_minus_sum<V>;
  ops.scale_minus = &scale_minus<V>;
  return ops;
}

}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm

// The instruction sets the kernels are compiled for, listed once (PYLSTM_FOR_EACH_ISA), and the dispatch between
// them: which one runs (the best this CPU and its OS support, or the one set_active_isa chose), and for it each
// table of building blocks.
//
// A table is a struct of function pointers and constants over a dtype T (Ops<T> in ops.h; each cell's units table in
// its folder), filled at compile time once per ISA from code written once over Vec<T>. Whoever defines a kind of
// table declares its tables with PYLSTM_DECLARE_ISA_TABLES and compiles them with simd/for_isa_inl.h (the file
// names it in PYLSTM_ISA_BODY); active_table() hands out the table of the ISA that runs. A kernel call reads the
// active ISA once and takes every table it uses for that ISA: set_active_isa on another thread during the call must
// not make one result of two ISAs' arithmetic.
#pragma once
#include <string>
#include <vector>

namespace pylstm {

// X(enumerator, namespace, name, arg) for every ISA, the portable one first; `arg` is passed through.
// The ISAs' target strings and Vec headers are in simd/isa_<namespace>_inl.h, which simd/every_isa_inl.h includes.
#define PYLSTM_FOR_EACH_ISA(X, arg) \
  X(kScalar, scalar, "scalar", arg) \
  X(kAvx2, avx2, "avx2", arg)       \
  X(kAvx512, avx512, "avx512", arg)

#define PYLSTM_ISA_ENUMERATOR(enumerator, ns, name, arg) enumerator,
enum class Isa { PYLSTM_FOR_EACH_ISA(PYLSTM_ISA_ENUMERATOR, ) };
#undef PYLSTM_ISA_ENUMERATOR

const char* isa_name(Isa isa);
// Compiled into this build and supported by this CPU and its OS (CPUID and XGETBV).
bool isa_supported(Isa isa);
std::vector<std::string> supported_isas();  // names, scalar first
Isa active_isa();
// Throws std::invalid_argument naming the ISA when it is unknown or unsupported here.
void set_active_isa(const std::string& name);

// Each ISA's table of a kind, isa_table<Table>() in the ISA's namespace: defined where the table is compiled for the
// ISA (simd/for_isa_inl.h); null where the compiler could not target the ISA.
#define PYLSTM_ISA_TABLE_TEMPLATE(enumerator, ns, name, arg) \
  namespace ns {                                             \
  template <typename Table>                                  \
  const Table* isa_table();                                  \
  }
PYLSTM_FOR_EACH_ISA(PYLSTM_ISA_TABLE_TEMPLATE, )
#undef PYLSTM_ISA_TABLE_TEMPLATE

// Declares every ISA's tables of kind Kind<float> and Kind<double>; at namespace pylstm scope, after Kind.
#define PYLSTM_DECLARE_ISA_TABLE(enumerator, ns, name, Kind) \
  namespace ns {                                             \
  template <>                                                \
  const Kind<float>* isa_table<Kind<float>>();               \
  template <>                                                \
  const Kind<double>* isa_table<Kind<double>>();             \
  }
#define PYLSTM_DECLARE_ISA_TABLES(Kind) PYLSTM_FOR_EACH_ISA(PYLSTM_DECLARE_ISA_TABLE, Kind)

// The table of kind Table for `isa` (by default the ISA that runs).
template <typename Table>
const Table& active_table(Isa isa = active_isa()) {
  switch (isa) {
#define PYLSTM_ISA_CASE(enumerator, ns, name, arg) \
  case Isa::enumerator: return *ns::isa_table<Table>();
    PYLSTM_FOR_EACH_ISA(PYLSTM_ISA_CASE, )
#undef PYLSTM_ISA_CASE
  }
  return *scalar::isa_table<Table>();
}

}  // namespace pylstm

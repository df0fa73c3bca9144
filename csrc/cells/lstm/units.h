// The LSTM's per-unit step updates, one table per ISA and dtype (primitives/isa.h): the elementwise part of a step
// forward and backward, for units [0, n) of one batch row. Implemented in units_inl.h, compiled for every ISA by
// units.cpp; the time loops (lstm.cpp) call them through the active ISA's table.
#pragma once
#include <cstdint>

#include "primitives/isa.h"

namespace pylstm {

// An LSTM's peephole weights (Gers & Schmidhuber), each (n,) from the first unit on; all null for an LSTM without.
template <typename T>
struct Peepholes {
  const T* i = nullptr;
  const T* f = nullptr;
  const T* o = nullptr;
  Peepholes at(int64_t j) const { return i == nullptr ? Peepholes{} : Peepholes{i + j, f + j, o + j}; }
};

template <typename T>
struct LstmUnits {
  // pre (i, f, g, o pre-activations, 4H wide) and c_prev in; c, h out; the activated gates to saved when not null.
  void (*forward)(int64_t n, int64_t H, const T* pre, const T* c_prev, T* c, T* h, const Peepholes<T>& p, T* saved,
                  bool stream_saved);
  // The saved gates, c and c_prev in; dh (+ dout) the gradient w.r.t. h; dc in and out; dpre out (4H wide); m out.
  void (*backward)(int64_t n, int64_t H, const T* gates, const T* c, const T* c_prev, const T* dout, const T* dh,
                   T* dc, T* dpre, const Peepholes<T>& p, T* m, bool stream_dpre);
};

PYLSTM_DECLARE_ISA_TABLES(LstmUnits)

template <typename T>
const LstmUnits<T>& lstm_units(Isa isa = active_isa()) {
  return active_table<LstmUnits<T>>(isa);
}

}  // namespace pylstm

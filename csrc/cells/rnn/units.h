// The Elman RNN's per-unit step updates, one table per ISA and dtype (primitives/isa.h): the activation forward and
// its derivative backward, for units [0, n) of one batch row. Implemented in units_inl.h, compiled for every ISA by
// units.cpp; the time loops (rnn.cpp) call them through the active ISA's table.
#pragma once
#include <cstdint>

#include "primitives/isa.h"

namespace pylstm {

template <typename T>
struct RnnUnits {
  // h = act(h) in place.
  void (*forward)(int64_t n, bool relu, T* h);
  // dpre = (dh + dout) * act'(h).
  void (*backward)(int64_t n, bool relu, const T* h, const T* dout, const T* dh, T* dpre, bool stream_dpre);
};

PYLSTM_DECLARE_ISA_TABLES(RnnUnits)

template <typename T>
const RnnUnits<T>& rnn_units(Isa isa = active_isa()) {
  return active_table<RnnUnits<T>>(isa);
}

}  // namespace pylstm

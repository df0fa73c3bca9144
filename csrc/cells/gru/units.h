// The GRU's per-unit step updates, one table per ISA and dtype (primitives/isa.h): the elementwise parts of a step
// forward and backward, for units [0, n) of one batch row, in both variants (reset_after: one part per step;
// reset_before: two, around the product W_hn (r * h) that needs every unit's r * h). r, z, n: the reset gate, the
// update gate and the candidate state. Implemented in units_inl.h, compiled for every ISA by units.cpp; the time loops
// (gru.cpp) call them through the active ISA's table.
#pragma once
#include <cstdint>

#include "primitives/isa.h"

namespace pylstm {

template <typename T>
struct GruUnits {
  // reset_after: the whole step from the input part `pre` and the recurrent part `gh`.
  void (*forward_after)(int64_t n, int64_t H, const T* pre, const T* gh, const T* h_prev, T* h, T* saved,
                        bool stream_saved);
  // reset_before, first part: r and z, and r * h_prev.
  void (*forward_before_reset_update)(int64_t n, int64_t H, T* pre, const T* grz, int64_t grz_h, const T* h_prev,
                                      T* rh, T* saved, bool stream_saved);
  // reset_before, second part: n and h.
  void (*forward_before_candidate)(int64_t n, int64_t H, const T* pre, const T* gn, const T* h_prev, T* h, T* saved,
                                   bool stream_saved);
  // reset_after: the input and recurrent pre-activation gradients of the step.
  void (*backward_after)(int64_t n, int64_t H, const T* gates, const T* h_prev, const T* dout, T* dh, T* dgx, T* dgh,
                         bool stream_dg);
  // reset_before, first part: the z and n pre-activation gradients.
  void (*backward_before_update_candidate)(int64_t n, int64_t H, const T* gates, const T* h_prev, const T* dout,
                                           T* dh, T* dg);
  // reset_before, second part: the r pre-activation gradient, from d(r * h_prev).
  void (*backward_before_reset)(int64_t n, const T* gates, const T* h_prev, const T* drh, T* dh, T* dg, T* rh);
};

PYLSTM_DECLARE_ISA_TABLES(GruUnits)

template <typename T>
const GruUnits<T>& gru_units(Isa isa = active_isa()) {
  return active_table<GruUnits<T>>(isa);
}

}  // namespace pylstm

// LSTM over a whole sequence, forward and backward (one layer, one direction).
//   i = s(W_ii x + b_ii + W_hi h + b_hi)     f = s(W_if x + b_if + W_hf h + b_hf)
//   g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = s(W_io x + b_io + W_ho h + b_ho)
//   c' = f * c + i * g                       h' = o * tanh(c')
// Twin of pylstm.reference.lstm_forward / lstm_backward.
#pragma once
#include "shape.h"

namespace pylstm {

// Forward. Inference when `gates` and `cells` are null (nothing kept); training when both are given.
//   x        in  (T, B, I)
//   h0, c0   in  (B, H)     initial state
//   w_ih     in  (4H, I)    w_hh in (4H, H)
//   b_ih     in  (4H,)      b_hh in (4H,); both null for a layer without bias
//   out      out (T, B, H)  h_t for every step
//   h_n, c_n out (B, H)     final state (h0, c0 when T = 0)
//   gates    out (T, B, 4H) training only: post-activation i, f, g, o
//   cells    out (T, B, H)  training only: c_t
// Training keeps 5*B*H values per step (gates and cells); out is the caller's. Scratch: the transposed weights and,
// in inference, the (T, B, 4H) input projection.
template <typename T>
void lstm_forward(const SeqShape& s, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                  const T* b_ih, const T* b_hh, T* out, T* h_n, T* c_n, T* gates, T* cells);

// Backward through time, from what a training forward kept.
//   x, h0, c0, w_ih, w_hh, out, gates, cells  in   as given to / returned by lstm_forward
//   dout        in  (T, B, H)  gradient of the loss w.r.t. out
//   dh_n, dc_n  in  (B, H)     gradient w.r.t. the final state; null means zero
//   dx          out (T, B, I)
//   dh0, dc0    out (B, H)     gradient w.r.t. the initial state
//   dw_ih       in/out (4H, I), dw_hh in/out (4H, H): accumulated (+=)
//   db_ih       in/out (4H,),   db_hh in/out (4H,): accumulated; both null for a layer without bias
// Scratch: (T, B, 4H) pre-activation gradients, used after the time loop for dx and the weight gradients as single
// GEMMs over all T*B rows.
template <typename T>
void lstm_backward(const SeqShape& s, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                   const T* out, const T* gates, const T* cells, const T* dout, const T* dh_n, const T* dc_n, T* dx,
                   T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh);

}  // namespace pylstm

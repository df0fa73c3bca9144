// GRU over a whole sequence, forward and backward (one layer, one direction), in both published forms.
//   r = s(W_ir x + b_ir + W_hr h + b_hr)     z = s(W_iz x + b_iz + W_hz h + b_hz)
//   reset_after = true  (PyTorch, cuDNN):    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   reset_after = false (Cho et al. 2014):   n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
//   h' = (1 - z) * n + z * h
// Twin of pylstm.reference.gru_forward / gru_backward.
#pragma once
#include "shape.h"

namespace pylstm {

// Number of values per batch row and step that training keeps in `gates`: r, z, n, plus hn = W_hn h + b_hn
// (needed for dr) when reset_after.
inline int64_t gru_saved_width(int64_t hidden, bool reset_after) { return (reset_after ? 4 : 3) * hidden; }

// Forward. Inference when `gates` is null; training when given.
//   x        in  (T, B, I)
//   h0       in  (B, H)
//   w_ih     in  (3H, I)    w_hh in (3H, H)
//   b_ih     in  (3H,)      b_hh in (3H,); both null for a layer without bias
//   out      out (T, B, H)
//   h_n      out (B, H)     (h0 when T = 0)
//   gates    out (T, B, W)  training only, W = gru_saved_width(H, reset_after): r, z, n [, hn]
template <typename T>
void gru_forward(const SeqShape& s, bool reset_after, const T* x, const T* h0, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, T* out, T* h_n, T* gates);

// Backward through time.
//   x, h0, w_ih, w_hh, out, gates  in  as given to / returned by gru_forward with the same reset_after
//   dout   in  (T, B, H)      dh_n in (B, H), null means zero
//   dx     out (T, B, I)      dh0 out (B, H)
//   dw_ih  in/out (3H, I), dw_hh in/out (3H, H), db_ih/db_hh in/out (3H,) or both null: accumulated (+=)
template <typename T>
void gru_backward(const SeqShape& s, bool reset_after, const T* x, const T* h0, const T* w_ih, const T* w_hh,
                  const T* out, const T* gates, const T* dout, const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh,
                  T* db_ih, T* db_hh);

}  // namespace pylstm

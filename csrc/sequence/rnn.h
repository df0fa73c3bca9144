// Elman RNN over a whole sequence, forward and backward (one layer, one direction).
//   h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu
// Twin of pylstm.reference.rnn_forward / rnn_backward.
#pragma once
#include "shape.h"

namespace pylstm {

enum class Nonlinearity { kTanh, kRelu };

// Forward. Training keeps nothing beyond `out` (the activation's derivative is recomputed from h_t).
//   x    in  (T, B, I)     h0 in (B, H)
//   w_ih in  (H, I)        w_hh in (H, H)      b_ih, b_hh in (H,) or both null
//   out  out (T, B, H)     h_n out (B, H) (h0 when T = 0)
template <typename T>
void rnn_forward(const SeqShape& s, Nonlinearity act, const T* x, const T* h0, const T* w_ih, const T* w_hh,
                 const T* b_ih, const T* b_hh, T* out, T* h_n);

// Backward through time.
//   x, h0, w_ih, w_hh, out  in  as given to / returned by rnn_forward with the same nonlinearity
//   dout in (T, B, H)   dh_n in (B, H), null means zero
//   dx out (T, B, I)    dh0 out (B, H)
//   dw_ih in/out (H, I), dw_hh in/out (H, H), db_ih/db_hh in/out (H,) or both null: accumulated (+=)
template <typename T>
void rnn_backward(const SeqShape& s, Nonlinearity act, const T* x, const T* h0, const T* w_ih, const T* w_hh,
                  const T* out, const T* dout, const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh);

}  // namespace pylstm

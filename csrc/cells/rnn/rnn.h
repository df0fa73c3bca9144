// Elman RNN over a whole sequence, forward and backward (one layer, one direction).
//   h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu
// Twin of pylstm.reference.rnn_forward / rnn_backward.
//
// This folder: rnn.h/.cpp the time loops; units.h, units_inl.h, units.cpp the per-unit step updates, compiled per ISA.
#pragma once
#include "cells/rnn/units.h"
#include "sequence/layer_weights.h"
#include "sequence/shape.h"

namespace pylstm {

enum class Nonlinearity { kTanh, kRelu };

// Gate blocks in the RNN's weights: G = 1, the pre-activation itself.
constexpr int64_t kRnnGates = 1;

// An RNN layer's weights (G = 1) and their gradients: PyTorch's four.
template <typename T>
using RnnWeights = LayerWeights<T>;
template <typename T>
using RnnGrads = LayerGrads<T>;

// Forward. Training keeps nothing beyond `out` (the activation's derivative is recomputed from h_t).
//   x    in  (T, B, I)     h0 in (B, H)
//   w    in  w_ih (H, I), w_hh (H, H), b_ih and b_hh (H,) or both null
//   out  out (T, B, H)     h_n out (B, H) (h0 when T = 0)
template <typename T>
void rnn_forward(const SeqShape& s, Nonlinearity act, const T* x, const T* h0, const RnnWeights<T>& w, T* out,
                 T* h_n);

// Backward through time.
//   x, h0, w, out  in  as given to / returned by rnn_forward with the same nonlinearity (w's biases unused)
//   dout in (T, B, H)   dh_n in (B, H), null means zero
//   dx out (T, B, I)    dh0 out (B, H)
//   grads in/out dw_ih (H, I), dw_hh (H, H), db_ih and db_hh (H,) or both null: accumulated (+=)
template <typename T>
void rnn_backward(const SeqShape& s, Nonlinearity act, const T* x, const T* h0, const RnnWeights<T>& w, const T* out,
                  const T* dout, const T* dh_n, T* dx, T* dh0, const RnnGrads<T>& grads);

}  // namespace pylstm

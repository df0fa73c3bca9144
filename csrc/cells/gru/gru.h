// GRU over a whole sequence, forward and backward (one layer, one direction), in both published forms.
//   r = s(W_ir x + b_ir + W_hr h + b_hr)     z = s(W_iz x + b_iz + W_hz h + b_hz)
//   reset_after = true  (PyTorch, cuDNN):    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   reset_after = false (Cho et al. 2014):   n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
//   h' = (1 - z) * n + z * h
// Twin of pylstm.reference.gru_forward / gru_backward.
//
// This folder: gru.h/.cpp the time loops; units.h, units_inl.h, units.cpp the per-unit step updates, compiled per ISA.
#pragma once
#include "cells/gru/units.h"
#include "sequence/layer_weights.h"
#include "sequence/shape.h"

namespace pylstm {

// Gate blocks in the GRU's weights (r, z, n): G = 3.
constexpr int64_t kGruGates = 3;

// A GRU layer's weights (G = 3) and their gradients: PyTorch's four.
template <typename T>
using GruWeights = LayerWeights<T>;
template <typename T>
using GruGrads = LayerGrads<T>;

// Number of values per batch row and step that training keeps in `gates`: r, z, n, plus hn = W_hn h + b_hn
// (needed for dr) when reset_after.
inline int64_t gru_saved_width(int64_t hidden, bool reset_after) { return (reset_after ? 4 : 3) * hidden; }

// Forward. Inference when `gates` is null; training when given.
//   x        in  (T, B, I)
//   h0       in  (B, H)
//   w        in  w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,) or both null
//   out      out (T, B, H)
//   h_n      out (B, H)     (h0 when T = 0)
//   gates    out (T, B, W)  training only, W = gru_saved_width(H, reset_after): r, z, n [, hn]
template <typename T>
void gru_forward(const SeqShape& s, bool reset_after, const T* x, const T* h0, const GruWeights<T>& w, T* out, T* h_n,
                 T* gates);

// Backward through time.
//   x, h0, w, out, gates  in  as given to / returned by gru_forward with the same reset_after (w's biases unused)
//   dout   in  (T, B, H)      dh_n in (B, H), null means zero
//   dx     out (T, B, I)      dh0 out (B, H)
//   grads  in/out dw_ih (3H, I), dw_hh (3H, H), db_ih and db_hh (3H,) or both null: accumulated (+=)
template <typename T>
void gru_backward(const SeqShape& s, bool reset_after, const T* x, const T* h0, const GruWeights<T>& w, const T* out,
                  const T* gates, const T* dout, const T* dh_n, T* dx, T* dh0, const GruGrads<T>& grads);

}  // namespace pylstm

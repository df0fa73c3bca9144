// LSTM over a whole sequence, forward and backward (one layer, one direction).
//   i = s(W_ii x + b_ii + W_hi h + b_hi [+ p_i * c])      f = s(W_if x + b_if + W_hf h + b_hf [+ p_f * c])
//   g = tanh(W_ig x + b_ig + W_hg h + b_hg)                c' = f * c + i * g
//   o = s(W_io x + b_io + W_ho h + b_ho [+ p_o * c'])      h' = o * tanh(c')   [h' = W_hr (o * tanh(c'))]
// with the optional peepholes p (Gers & Schmidhuber) and projection W_hr (LSTMP, PyTorch's proj_size) in brackets.
// Twin of pylstm.reference.lstm_forward / lstm_backward. Shapes in the letters of shape.h (R rows, P = width of h).
//
// This folder: lstm.h/.cpp the time loops; units.h, units_inl.h, units.cpp the per-unit step updates, compiled per ISA.
#pragma once
#include <cstdint>

#include "cells/lstm/units.h"
#include "sequence/layer_weights.h"
#include "sequence/shape.h"

namespace pylstm {

// Gate blocks in the LSTM's weights (i, f, g, o): G = 4.
constexpr int64_t kLstmGates = 4;

// An LSTM layer's weights: PyTorch's four, and the optional projection and peepholes.
template <typename T>
struct LstmWeights : LayerWeights<T> {
  const T* w_hr = nullptr;  // (P, H) projection, P = SeqShape::proj; null when proj = 0
  Peepholes<T> peepholes;   // (H,) each, or all null
};

// Their gradients, accumulated (+=); null where the layer does not have the part.
template <typename T>
struct LstmGrads : LayerGrads<T> {
  T* dw_hr = nullptr;  // (P, H)
  T* dp_i = nullptr;   // (H,) each
  T* dp_f = nullptr;
  T* dp_o = nullptr;
};

// Forward. Inference when `gates` and `cells` are null (nothing kept); training when both are given.
//   x        in  (R, I)     (T, B, I) in the uniform layout
//   h0       in  (B, P)     c0 in (B, H): initial state
//   w        in  w_ih (4H, I), w_hh (4H, P), b_ih and b_hh (4H,) or both null, w_hr and peepholes or null
//   out      out (R, P)     h_t for every step
//   h_n      out (B, P)     c_n out (B, H): every row's state after its last step
//   gates    out (R, 4H)    training only: post-activation i, f, g, o
//   cells    out (R, H)     training only: c_t
// Training keeps 5*H values per row and step (gates and cells); out is the caller's. Scratch: the packed weights, a
// chunk of the input projection, and m = o * tanh(c) of one step with a projection.
template <typename T>
void lstm_forward(const SeqShape& s, const T* x, const T* h0, const T* c0, const LstmWeights<T>& w, T* out, T* h_n,
                  T* c_n, T* gates, T* cells);

// Backward through time, from what a training forward kept.
//   x, h0, c0, w, out, gates, cells  in   as given to / returned by lstm_forward (w's biases unused)
//   dout        in  (R, P)     gradient of the loss w.r.t. out
//   dh_n        in  (B, P)     dc_n in (B, H): gradient w.r.t. the final state; null means zero
//   dx          out (R, I)
//   dh0         out (B, P)     dc0 out (B, H): gradient w.r.t. the initial state
//   grads       in/out         dw_ih (4H, I), dw_hh (4H, P), db_ih and db_hh (4H,) or both null, and the parts
//                              `w` has: accumulated (+=)
// Scratch: (R, 4H) pre-activation gradients, used after the time loop for dx and the weight gradients as single
// GEMMs over all R rows; with a projection also (R, P) gradients w.r.t. h and (R, H) m = o * tanh(c).
template <typename T>
void lstm_backward(const SeqShape& s, const T* x, const T* h0, const T* c0, const LstmWeights<T>& w, const T* out,
                   const T* gates, const T* cells, const T* dout, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0,
                   const LstmGrads<T>& grads);

}  // namespace pylstm

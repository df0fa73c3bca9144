// Scalar gate nonlinearities, exact to libm's accuracy (the SIMD approximations live beside them with their own
// documented error bounds).
#pragma once
#include <cmath>

namespace pylstm {

// 1 / (1 + exp(-x)) without overflow for any x, and with full relative precision for tiny results (x << 0):
// the same formula as pylstm.reference.sigmoid.
template <typename T>
inline T sigmoid(T x) {
  const T e = std::exp(-std::fabs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <typename T>
inline T tanh_(T x) {
  return std::tanh(x);
}

}  // namespace pylstm

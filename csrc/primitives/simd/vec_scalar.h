// Vec<T> with one lane: the portable path, on which the generic kernels become plain scalar C++ (and the
// activations are libm's exact ones, the kernels' own reference).
#pragma once
#include <cmath>

namespace pylstm {
namespace scalar {

template <typename T_>
struct Vec {
  using T = T_;
  using Reg = T;
  using Mask = bool;
  static constexpr int kLanes = 1;
  static constexpr bool kExactMath = true;
  static constexpr int kRegisters = 16;  // registers a value may live in (xmm0-15)
  static constexpr bool kHasScalef = false;
  static Reg load(const T* p) { return *p; }
  static void store(T* p, Reg v) { *p = v; }
  static Reg load_partial(const T* p, int n) { return n > 0 ? *p : T(0); }
  static void store_partial(T* p, Reg v, int n) { if (n > 0) *p = v; }
  static void stream(T* p, Reg v) { *p = v; }
  static Reg set1(T x) { return x; }
  static Reg zero() { return T(0); }
  static Reg add(Reg a, Reg b) { return a + b; }
  static Reg sub(Reg a, Reg b) { return a - b; }
  static Reg mul(Reg a, Reg b) { return a * b; }
  static Reg div(Reg a, Reg b) { return a / b; }
  // Not fused: a separate multiply and add, as the NumPy reference computes (no -ffp-contract surprises either way
  // since the build does not enable FMA for the baseline).
  static Reg fmadd(Reg a, Reg b, Reg c) { return a * b + c; }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return c - a * b; }
  static Reg abs(Reg a) { return std::fabs(a); }
  static Reg neg(Reg a) { return -a; }
  static Reg copysign_of(Reg magnitude, Reg sign) { return std::copysign(magnitude, sign); }
  static Mask lt(Reg a, Reg b) { return a < b; }
  static Mask ge(Reg a, Reg b) { return a >= b; }
  static Mask gt(Reg a, Reg b) { return a > b; }
  static Reg select(Mask m, Reg if_true, Reg if_false) { return m ? if_true : if_false; }
  static T reduce_add(Reg a) { return a; }
  // The larger of a and b, b where either is NaN (as maxps); the callers only need a value no smaller than the rest.
  static Reg max(Reg a, Reg b) { return a > b ? a : b; }
  static T reduce_max(Reg a) { return a; }
  static void transpose(Reg (&)[kLanes]) {}  // a 1 x 1 block
};

}  // namespace scalar
}  // namespace pylstm

// Vectorized sigmoid and tanh over Vec<T> (vec_*.h), compiled once per ISA: the including file defines
// PYLSTM_SIMD_NS (scalar, avx2, avx512) and has included that namespace's Vec, <cmath> and <type_traits>.
//
// With exact math (the scalar path) these are libm's exp/tanh. Otherwise they are polynomial approximations after
// Cephes (range reduction exp(x) = 2^n exp(r), |r| <= ln(2)/2), with the maximum errors measured against libm over
// the whole float range and every tested double (tests/test_activations.py, numbers in README.md):
//   float32: sigmoid and tanh within 3 ulp (relative 2^-21) wherever the result is >= FLT_MIN (1.2e-38), and within
//            FLT_MIN absolute below it (such results are denormal, and the kernels flush denormals to zero anyway);
//   float64: sigmoid and tanh within 3 ulp (relative 2^-50) wherever the result is >= DBL_MIN.
// Both are exact at 0, saturate to exactly 0 / +-1 at the ends, map +-inf to the limits and keep NaN a NaN.
namespace pylstm {
namespace PYLSTM_SIMD_NS {

// exp's last step for both precisions: e * 2^n, where n = round(x / ln 2), or 0 where x < lowest (below it n would
// leave the normal exponent range; x is not NaN there, NaN compares false). By scalef where there is one (AVX-512):
// the same exact product, so the same bits, in one instruction instead of three, with no need to keep n in range
// first.
template <typename V>
inline typename V::Reg times_pow2_above(typename V::Reg x, typename V::Reg lowest, typename V::Reg e,
                                        typename V::Reg n) {
  const auto below = V::lt(x, lowest);
  if constexpr (V::kHasScalef) return V::select(below, V::zero(), V::scalef(e, n));
  return V::select(below, V::zero(), V::mul(e, V::pow2(V::select(below, V::zero(), n))));
}

// exp(x) for x <= 0 (the only arguments sigmoid and tanh need, so no overflow handling); 0 below the smallest
// normal result. NaN stays NaN.
template <typename V>
inline typename V::Reg exp_nonpositive(typename V::Reg x) {
  using Reg = typename V::Reg;
  using T = typename V::T;
  if constexpr (V::kExactMath) {
    return std::exp(x);
  } else if constexpr (std::is_same_v<T, float>) {
    const Reg lowest = V::set1(-87.33654f);  // log(FLT_MIN)
    const Reg n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    Reg r = V::fnmadd(n, V::set1(0.693359375f), x);  // x - n ln2, ln2 split in two for exactness
    r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
    Reg p = V::set1(1.9875691500e-4f);
    p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
    p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
    p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
    p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
    p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
    const Reg e = V::add(V::fmadd(p, V::mul(r, r), r), V::set1(1.0f));
    return times_pow2_above<V>(x, lowest, e, n);  // 0 below log(FLT_MIN)
  } else {
    const Reg lowest = V::set1(-708.3964185322641);  // log(DBL_MIN)
    const Reg n = V::round(V::mul(x, V::set1(1.4426950408889634073599)));
    Reg r = V::fnmadd(n, V::set1(6.93145751953125e-1), x);
    r = V::fnmadd(n, V::set1(1.42860682030941723212e-6), r);
    const Reg rr = V::mul(r, r);
    // Pade form: exp(r) = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)).
    Reg p = V::set1(1.26177193074810590878e-4);
    p = V::fmadd(p, rr, V::set1(3.02994407707441961300e-2));
    p = V::fmadd(p, rr, V::set1(9.99999999999999999910e-1));
    p = V::mul(p, r);
    Reg q = V::set1(3.00198505138664455042e-6);
    q = V::fmadd(q, rr, V::set1(2.52448340349684104192e-3));
    q = V::fmadd(q, rr, V::set1(2.27265548208155028766e-1));
    q = V::fmadd(q, rr, V::set1(2.00000000000000000009e0));
    const Reg e = V::add(V::set1(1.0), V::div(V::add(p, p), V::sub(q, p)));
    return times_pow2_above<V>(x, lowest, e, n);  // 0 below log(DBL_MIN)
  }
}

// 1 / (1 + exp(-x)) as the reference computes it: e = exp(-|x|), then 1 / (1 + e) or e / (1 + e), so that small
// results keep full relative precision; one division, its numerator chosen by the sign of x.
template <typename V>
inline typename V::Reg sigmoid(typename V::Reg x) {
  using Reg = typename V::Reg;
  const Reg e = exp_nonpositive<V>(V::neg(V::abs(x)));
  return V::div(V::select(V::ge(x, V::zero()), V::set1(1), e), V::add(V::set1(1), e));
}

// tanh(x): an odd polynomial near 0 (where 1 - exp would cancel), else (1 - e) / (1 + e) with e = exp(-2|x|).
template <typename V>
inline typename V::Reg tanh(typename V::Reg x) {
  using Reg = typename V::Reg;
  using T = typename V::T;
  if constexpr (V::kExactMath) {
    return std::tanh(x);
  } else {
    const Reg a = V::abs(x);
    const Reg e = exp_nonpositive<V>(V::mul(a, V::set1(T(-2))));
    const Reg far = V::copysign_of(V::div(V::sub(V::set1(T(1)), e), V::add(V::set1(T(1)), e)), x);
    const Reg z = V::mul(x, x);
    Reg near;
    if constexpr (std::is_same_v<T, float>) {
      Reg p = V::set1(-5.70498872745e-3f);
      p = V::fmadd(p, z, V::set1(2.06390887954e-2f));
      p = V::fmadd(p, z, V::set1(-5.37397155531e-2f));
      p = V::fmadd(p, z, V::set1(1.33314422036e-1f));
      p = V::fmadd(p, z, V::set1(-3.33332819422e-1f));
      near = V::fmadd(V::mul(p, z), x, x);
    } else {
      Reg p = V::set1(-9.64399179425052238628e-1);
      p = V::fmadd(p, z, V::set1(-9.92877231001918586564e1));
      p = V::fmadd(p, z, V::set1(-1.61468768441708447952e3));
      Reg q = V::add(z, V::set1(1.12811678491632931402e2));
      q = V::fmadd(q, z, V::set1(2.23548839060100448583e3));
      q = V::fmadd(q, z, V::set1(4.84406305325125486048e3));
      near = V::fmadd(V::div(V::mul(p, z), q), x, x);
    }
    return V::select(V::lt(a, V::set1(T(0.625))), near, far);
  }
}

}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm

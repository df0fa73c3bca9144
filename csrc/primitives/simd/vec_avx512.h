// Vec<T> for AVX-512 (F, VL, BW, DQ): 16 floats or 8 doubles per register. Included only inside an AVX-512 target
// region (isa_avx512.cpp).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace pylstm {
namespace avx512 {

template <typename T>
struct Vec;

template <>
struct Vec<float> {
  using T = float;
  using Reg = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static constexpr bool kExactMath = false;
  static Reg load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, Reg v) { _mm512_storeu_ps(p, v); }
  static Mask first(int n) { return static_cast<Mask>((1u << n) - 1u); }
  static Reg load_partial(const T* p, int n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static void store_partial(T* p, Reg v, int n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static Reg set1(T x) { return _mm512_set1_ps(x); }
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm512_div_ps(a, b); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }   // a * b + c
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a * b
  static Reg abs(Reg a) { return _mm512_abs_ps(a); }
  static Reg neg(Reg a) { return _mm512_xor_ps(a, _mm512_set1_ps(-0.0f)); }
  static Reg copysign_of(Reg magnitude, Reg sign) {  // |magnitude| with the sign bit of `sign`
    const Reg s = _mm512_set1_ps(-0.0f);
    return _mm512_or_ps(_mm512_andnot_ps(s, magnitude), _mm512_and_ps(s, sign));
  }
  static Mask lt(Reg a, Reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static Mask ge(Reg a, Reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static Mask gt(Reg a, Reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static Reg select(Mask m, Reg if_true, Reg if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
  static Reg round(Reg a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-126, 127] held as floats.
  static Reg pow2(Reg n) {
    const Reg shifted = _mm512_add_ps(n, _mm512_set1_ps(12582912.0f + 127.0f));  // 1.5 * 2^23 + bias
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(shifted), 23));
  }
  static T reduce_add(Reg a) { return _mm512_reduce_add_ps(a); }
  // Lane j = base[offsets[j]] (kLanes offsets, 64-byte aligned).
  static Reg gather(const T* base, const int32_t* offsets) {
    return _mm512_i32gather_ps(_mm512_load_si512(offsets), base, sizeof(T));
  }
};

template <>
struct Vec<double> {
  using T = double;
  using Reg = __m512d;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  static constexpr bool kExactMath = false;
  static Reg load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, Reg v) { _mm512_storeu_pd(p, v); }
  static Mask first(int n) { return static_cast<Mask>((1u << n) - 1u); }
  static Reg load_partial(const T* p, int n) { return _mm512_maskz_loadu_pd(first(n), p); }
  static void store_partial(T* p, Reg v, int n) { _mm512_mask_storeu_pd(p, first(n), v); }
  static Reg set1(T x) { return _mm512_set1_pd(x); }
  static Reg zero() { return _mm512_setzero_pd(); }
  static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_pd(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
  static Reg div(Reg a, Reg b) { return _mm512_div_pd(a, b); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm512_fnmadd_pd(a, b, c); }
  static Reg abs(Reg a) { return _mm512_abs_pd(a); }
  static Reg neg(Reg a) { return _mm512_xor_pd(a, _mm512_set1_pd(-0.0)); }
  static Reg copysign_of(Reg magnitude, Reg sign) {
    const Reg s = _mm512_set1_pd(-0.0);
    return _mm512_or_pd(_mm512_andnot_pd(s, magnitude), _mm512_and_pd(s, sign));
  }
  static Mask lt(Reg a, Reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  static Mask ge(Reg a, Reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
  static Mask gt(Reg a, Reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static Reg select(Mask m, Reg if_true, Reg if_false) { return _mm512_mask_blend_pd(m, if_false, if_true); }
  static Reg round(Reg a) { return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-1022, 1023] held as doubles.
  static Reg pow2(Reg n) {
    const Reg shifted = _mm512_add_pd(n, _mm512_set1_pd(6755399441055744.0 + 1023.0));  // 1.5 * 2^52 + bias
    return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(shifted), 52));
  }
  static T reduce_add(Reg a) { return _mm512_reduce_add_pd(a); }
  static Reg gather(const T* base, const int32_t* offsets) {
    return _mm512_i32gather_pd(_mm256_load_si256(reinterpret_cast<const __m256i*>(offsets)), base, sizeof(T));
  }
};

}  // namespace avx512
}  // namespace pylstm

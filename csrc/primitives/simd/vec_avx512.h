// Vec<T> for AVX-512 (F, VL, BW, DQ): 16 floats or 8 doubles per register. Included only inside an AVX-512 target
// region (isa_avx512.cpp).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace pylstm {
namespace avx512 {

template <typename T>
struct Vec;

// The largest lane, through memory: GCC 12 warns about its own _mm512_reduce_max_* (a false positive: an
// uninitialized operand in the header's extract), and a softmax row needs only one such reduction.
template <typename V>
inline typename V::T reduce_max_stored(typename V::Reg a) {
  alignas(64) typename V::T lanes[V::kLanes];
  V::store(lanes, a);
  typename V::T m = lanes[0];
  for (int k = 1; k < V::kLanes; ++k) m = lanes[k] > m ? lanes[k] : m;
  return m;
}

// The 4 x 4 transpose of 128-bit lanes: out[q] holds lane q of in[0], in[1], in[2], in[3], in that order. The last
// step of the float and double block transposes below (doubles pass through it as floats: it only moves lanes).
inline void transpose_lanes(const __m512 (&in)[4], __m512 (&out)[4]) {
  const __m512 ab02 = _mm512_shuffle_f32x4(in[0], in[1], 0x88), ab13 = _mm512_shuffle_f32x4(in[0], in[1], 0xDD);
  const __m512 cd02 = _mm512_shuffle_f32x4(in[2], in[3], 0x88), cd13 = _mm512_shuffle_f32x4(in[2], in[3], 0xDD);
  out[0] = _mm512_shuffle_f32x4(ab02, cd02, 0x88);
  out[1] = _mm512_shuffle_f32x4(ab13, cd13, 0x88);
  out[2] = _mm512_shuffle_f32x4(ab02, cd02, 0xDD);
  out[3] = _mm512_shuffle_f32x4(ab13, cd13, 0xDD);
}

template <>
struct Vec<float> {
  using T = float;
  using Reg = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static constexpr bool kExactMath = false;
  static constexpr int kRegisters = 32;  // vector registers (zmm0-31)
  static constexpr bool kHasScalef = true;
  static Reg load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, Reg v) { _mm512_storeu_ps(p, v); }
  static Mask first(int n) { return static_cast<Mask>((1u << n) - 1u); }
  static Reg load_partial(const T* p, int n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static void store_partial(T* p, Reg v, int n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static void stream(T* p, Reg v) { _mm512_stream_ps(p, v); }  // non-temporal; p aligned to the register
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
  // a * 2^n for integral n of any size, in one instruction (exp's last step; pow2 needs n within the exponent range).
  static Reg scalef(Reg a, Reg n) { return _mm512_scalef_ps(a, n); }
  static T reduce_add(Reg a) { return _mm512_reduce_add_ps(a); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static T reduce_max(Reg a) { return reduce_max_stored<Vec>(a); }
  // The 16 x 16 block r[0..15] (register j: row j) transposed in place: unpacks pair the rows' elements, shuffles
  // make groups of four, then 128-bit lane shuffles put each column together.
  static void transpose(Reg (&r)[kLanes]) {
    Reg t[kLanes];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  // then t[i + e], 128-bit lane q: rows i..i+3 at column 4q + e
      const Reg lo01 = t[i], hi01 = t[i + 1], lo23 = t[i + 2], hi23 = t[i + 3];
      t[i] = _mm512_shuffle_ps(lo01, lo23, _MM_SHUFFLE(1, 0, 1, 0));
      t[i + 1] = _mm512_shuffle_ps(lo01, lo23, _MM_SHUFFLE(3, 2, 3, 2));
      t[i + 2] = _mm512_shuffle_ps(hi01, hi23, _MM_SHUFFLE(1, 0, 1, 0));
      t[i + 3] = _mm512_shuffle_ps(hi01, hi23, _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int e = 0; e < 4; ++e) {  // column 4q + e: lane q of t[e], t[4 + e], t[8 + e], t[12 + e]
      const Reg in[4] = {t[e], t[4 + e], t[8 + e], t[12 + e]};
      Reg out[4];
      transpose_lanes(in, out);
      for (int q = 0; q < 4; ++q) r[4 * q + e] = out[q];
    }
  }
};

template <>
struct Vec<double> {
  using T = double;
  using Reg = __m512d;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  static constexpr bool kExactMath = false;
  static constexpr int kRegisters = 32;  // vector registers (zmm0-31)
  static constexpr bool kHasScalef = true;
  static Reg load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, Reg v) { _mm512_storeu_pd(p, v); }
  static Mask first(int n) { return static_cast<Mask>((1u << n) - 1u); }
  static Reg load_partial(const T* p, int n) { return _mm512_maskz_loadu_pd(first(n), p); }
  static void store_partial(T* p, Reg v, int n) { _mm512_mask_storeu_pd(p, first(n), v); }
  static void stream(T* p, Reg v) { _mm512_stream_pd(p, v); }
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
  // a * 2^n for integral n of any size, in one instruction (exp's last step; pow2 needs n within the exponent range).
  static Reg scalef(Reg a, Reg n) { return _mm512_scalef_pd(a, n); }
  static T reduce_add(Reg a) { return _mm512_reduce_add_pd(a); }
  static Reg max(Reg a, Reg b) { return _mm512_max_pd(a, b); }
  static T reduce_max(Reg a) { return reduce_max_stored<Vec>(a); }
  // The 8 x 8 block r[0..7] transposed in place (as for floats, with pairs instead of groups of four).
  static void transpose(Reg (&r)[kLanes]) {
    Reg t[kLanes];
    for (int i = 0; i < 8; i += 2) {  // t[i + e], 128-bit lane q: rows i, i+1 at column 2q + e
      t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    for (int e = 0; e < 2; ++e) {  // column 2q + e: lane q of t[e], t[2 + e], t[4 + e], t[6 + e]
      const __m512 in[4] = {_mm512_castpd_ps(t[e]), _mm512_castpd_ps(t[2 + e]), _mm512_castpd_ps(t[4 + e]),
                            _mm512_castpd_ps(t[6 + e])};
      __m512 out[4];
      transpose_lanes(in, out);
      for (int q = 0; q < 4; ++q) r[2 * q + e] = _mm512_castps_pd(out[q]);
    }
  }
};

}  // namespace avx512
}  // namespace pylstm

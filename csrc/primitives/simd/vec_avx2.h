// Vec<T> for AVX2 + FMA: 8 floats or 4 doubles per register. Included only inside an AVX2 target region
// (isa_avx2.cpp).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace pylstm {
namespace avx2 {

template <typename T>
struct Vec;

template <>
struct Vec<float> {
  using T = float;
  using Reg = __m256;
  using Mask = __m256;
  static constexpr int kLanes = 8;
  static constexpr bool kExactMath = false;
  static constexpr int kRegisters = 16;  // vector registers (ymm0-15)
  static constexpr bool kHasScalef = false;
  static Reg load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, Reg v) { _mm256_storeu_ps(p, v); }
  static __m256i first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Reg load_partial(const T* p, int n) { return _mm256_maskload_ps(p, first(n)); }
  static void store_partial(T* p, Reg v, int n) { _mm256_maskstore_ps(p, first(n), v); }
  static void stream(T* p, Reg v) { _mm256_stream_ps(p, v); }  // non-temporal; p aligned to the register
  static Reg set1(T x) { return _mm256_set1_ps(x); }
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm256_div_ps(a, b); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm256_fnmadd_ps(a, b, c); }
  static Reg abs(Reg a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static Reg neg(Reg a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
  static Reg copysign_of(Reg magnitude, Reg sign) {
    const Reg s = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(s, magnitude), _mm256_and_ps(s, sign));
  }
  static Mask lt(Reg a, Reg b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static Mask ge(Reg a, Reg b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static Mask gt(Reg a, Reg b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static Reg select(Mask m, Reg if_true, Reg if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
  static Reg round(Reg a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Reg pow2(Reg n) {
    const Reg shifted = _mm256_add_ps(n, _mm256_set1_ps(12582912.0f + 127.0f));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(shifted), 23));
  }
  static T reduce_add(Reg a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static T reduce_max(Reg a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // The 8 x 8 block r[0..7] (register j: row j) transposed in place: unpacks pair the rows' elements, shuffles make
  // groups of four, then the two 128-bit halves are exchanged.
  static void transpose(Reg (&r)[kLanes]) {
    Reg t[kLanes];
    for (int i = 0; i < 8; i += 4) {  // t[i + e], 128-bit half q: rows i..i+3 at column 4q + e
      const Reg lo01 = _mm256_unpacklo_ps(r[i], r[i + 1]), hi01 = _mm256_unpackhi_ps(r[i], r[i + 1]);
      const Reg lo23 = _mm256_unpacklo_ps(r[i + 2], r[i + 3]), hi23 = _mm256_unpackhi_ps(r[i + 2], r[i + 3]);
      t[i] = _mm256_shuffle_ps(lo01, lo23, _MM_SHUFFLE(1, 0, 1, 0));
      t[i + 1] = _mm256_shuffle_ps(lo01, lo23, _MM_SHUFFLE(3, 2, 3, 2));
      t[i + 2] = _mm256_shuffle_ps(hi01, hi23, _MM_SHUFFLE(1, 0, 1, 0));
      t[i + 3] = _mm256_shuffle_ps(hi01, hi23, _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int e = 0; e < 4; ++e) {
      r[e] = _mm256_permute2f128_ps(t[e], t[4 + e], 0x20);
      r[4 + e] = _mm256_permute2f128_ps(t[e], t[4 + e], 0x31);
    }
  }
};

template <>
struct Vec<double> {
  using T = double;
  using Reg = __m256d;
  using Mask = __m256d;
  static constexpr int kLanes = 4;
  static constexpr bool kExactMath = false;
  static constexpr int kRegisters = 16;  // vector registers (ymm0-15)
  static constexpr bool kHasScalef = false;
  static Reg load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, Reg v) { _mm256_storeu_pd(p, v); }
  static __m256i first(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static Reg load_partial(const T* p, int n) { return _mm256_maskload_pd(p, first(n)); }
  static void store_partial(T* p, Reg v, int n) { _mm256_maskstore_pd(p, first(n), v); }
  static void stream(T* p, Reg v) { _mm256_stream_pd(p, v); }
  static Reg set1(T x) { return _mm256_set1_pd(x); }
  static Reg zero() { return _mm256_setzero_pd(); }
  static Reg add(Reg a, Reg b) { return _mm256_add_pd(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_pd(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_pd(a, b); }
  static Reg div(Reg a, Reg b) { return _mm256_div_pd(a, b); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm256_fnmadd_pd(a, b, c); }
  static Reg abs(Reg a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static Reg neg(Reg a) { return _mm256_xor_pd(a, _mm256_set1_pd(-0.0)); }
  static Reg copysign_of(Reg magnitude, Reg sign) {
    const Reg s = _mm256_set1_pd(-0.0);
    return _mm256_or_pd(_mm256_andnot_pd(s, magnitude), _mm256_and_pd(s, sign));
  }
  static Mask lt(Reg a, Reg b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static Mask ge(Reg a, Reg b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
  static Mask gt(Reg a, Reg b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static Reg select(Mask m, Reg if_true, Reg if_false) { return _mm256_blendv_pd(if_false, if_true, m); }
  static Reg round(Reg a) { return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Reg pow2(Reg n) {
    const Reg shifted = _mm256_add_pd(n, _mm256_set1_pd(6755399441055744.0 + 1023.0));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(shifted), 52));
  }
  static T reduce_add(Reg a) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static Reg max(Reg a, Reg b) { return _mm256_max_pd(a, b); }
  static T reduce_max(Reg a) {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  // The 4 x 4 block r[0..3] transposed in place.
  static void transpose(Reg (&r)[kLanes]) {
    const Reg lo01 = _mm256_unpacklo_pd(r[0], r[1]), hi01 = _mm256_unpackhi_pd(r[0], r[1]);
    const Reg lo23 = _mm256_unpacklo_pd(r[2], r[3]), hi23 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(lo01, lo23, 0x20);
    r[1] = _mm256_permute2f128_pd(hi01, hi23, 0x20);
    r[2] = _mm256_permute2f128_pd(lo01, lo23, 0x31);
    r[3] = _mm256_permute2f128_pd(hi01, hi23, 0x31);
  }
};

}  // namespace avx2
}  // namespace pylstm

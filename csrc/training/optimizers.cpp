#include "training/optimizers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "primitives/cpu.h"
#include "primitives/parallel.h"

namespace pylstm {
namespace {

// Elements per chunk. Arrays are split at multiples of kChunk whatever the thread count, so each element goes
// through the same code (the vectorized body or a loop's remainder) and each partial sum covers the same elements
// for any number of threads: results are bitwise independent of the split.
constexpr int64_t kChunk = 8192;

// Work per element, in threads_for's unit (multiply-adds), of each kind of loop: an update with a square root and
// divisions costs several, a scaling one.
constexpr int64_t kSgdWork = 2;
constexpr int64_t kAdaptiveWork = 8;  // Adam, RMSprop
constexpr int64_t kToolWork = 8;

// Runs body(chunk, begin, end) over [0, n) in chunks of kChunk, each thread taking one contiguous range of chunks.
template <typename Body>
void for_each_chunk(int64_t n, int64_t work_per_element, Body&& body) {
  DenormalsAreZero daz;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int64_t useful = std::min<int64_t>(threads_for(n * work_per_element), chunks);
  const int threads = static_cast<int>(std::max<int64_t>(1, useful));
  parallel_region(threads, [&] {
    DenormalsAreZero thread_daz;
    const int64_t t = thread_id(), team = team_size();
    for (int64_t c = chunks * t / team; c < chunks * (t + 1) / team; ++c)
      body(c, c * kChunk, std::min(n, (c + 1) * kChunk));
  });
}

// Calls f with one std::true_type or std::false_type per flag, so that each combination of options has a loop of
// its own without per-element branches, which the compiler can vectorize (the loops with a square root too: the build
// has -fno-math-errno, so a sqrt is one instruction and not a call that may set errno).
template <typename F>
void specialize(F&& f) {
  f();
}
template <typename F, typename... Flags>
void specialize(F&& f, bool flag, Flags... flags) {
  if (flag)
    specialize([&](auto... rest) { f(std::true_type{}, rest...); }, flags...);
  else
    specialize([&](auto... rest) { f(std::false_type{}, rest...); }, flags...);
}

// torch's lerp(self, end, weight) with |weight| < 0.5 (small) or not: two formulas, each exact at its own end.
template <bool kSmallWeight, typename T>
inline T lerp(T self, T end, T weight) {
  if constexpr (kSmallWeight) return self + weight * (end - self);
  else return end - (end - self) * (T(1) - weight);
}

// Which of lerp's formulas torch takes, decided on the weight as rounded to T (as torch's kernel sees it).
template <typename T>
bool lerp_weight_is_small(T weight) {
  return std::abs(weight) < T(0.5);
}

// max(a, b) that returns NaN when either is NaN, as torch.maximum.
template <typename T>
inline T nan_max(T a, T b) {
  return (b > a || b != b) ? b : a;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------- SGD

template <typename T>
void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buffer, bool first_step, const SgdOptions& o) {
  const T neg_lr = T(-o.lr), momentum = T(o.momentum), keep = T(1 - o.dampening), weight_decay = T(o.weight_decay);
  const bool has_momentum = o.momentum != 0;
  specialize(
      [&](auto decay, auto with_momentum, auto first, auto nesterov) {
        for_each_chunk(n, kSgdWork, [&](int64_t, int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            T g = grad[i];
            if constexpr (decay) g = g + weight_decay * param[i];
            if constexpr (with_momentum) {
              T buf;
              if constexpr (first) buf = g;
              else buf = momentum_buffer[i] * momentum + keep * g;
              momentum_buffer[i] = buf;
              if constexpr (nesterov) g = g + momentum * buf;
              else g = buf;
            }
            param[i] = param[i] + neg_lr * g;
          }
        });
      },
      o.weight_decay != 0, has_momentum, has_momentum && first_step, has_momentum && o.nesterov);
}

// ----------------------------------------------------------------------------------------------------------- Adam(W)

template <typename T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
               const AdamOptions& o) {
  // The per-call factors, in double as torch computes them in Python floats: 1 - beta**step with a float step,
  // lr / bc1, and bc2**0.5 (pow, not sqrt, as Python's **).
  const double step = static_cast<double>(o.step);
  const double bias_correction1 = 1 - std::pow(o.beta1, step);
  const double bias_correction2 = 1 - std::pow(o.beta2, step);
  const T neg_step_size = T(-(o.lr / bias_correction1));
  const T bias_correction2_sqrt = T(std::pow(bias_correction2, 0.5));
  const T decay = T(1 - o.lr * o.weight_decay), weight_decay = T(o.weight_decay);
  const T beta1_weight = T(1 - o.beta1), beta2 = T(o.beta2), beta2_weight = T(1 - o.beta2), eps = T(o.eps);
  const bool decays = o.weight_decay != 0;
  specialize(
      [&](auto l2, auto decoupled, auto amsgrad, auto small_weight) {
        for_each_chunk(n, kAdaptiveWork, [&](int64_t, int64_t begin, int64_t end) {
          // Local copies: the captured factors are T objects that the loop's stores of T could alias as far as the
          // compiler knows, and reloading them at every element keeps the loop from being vectorized.
          const T step_size = neg_step_size, bc2_sqrt = bias_correction2_sqrt, w1 = beta1_weight, b2 = beta2,
                  w2 = beta2_weight, e = eps, keep = decay, l2_decay = weight_decay;
          for (int64_t i = begin; i < end; ++i) {
            T p = param[i], g = grad[i];
            if constexpr (decoupled) p = p * keep;
            if constexpr (l2) g = g + l2_decay * p;
            const T m = lerp<small_weight>(exp_avg[i], g, w1);
            T v = exp_avg_sq[i] * b2 + (w2 * g) * g;
            exp_avg[i] = m;
            exp_avg_sq[i] = v;
            if constexpr (amsgrad) {
              v = nan_max(max_exp_avg_sq[i], v);
              max_exp_avg_sq[i] = v;
            }
            const T denom = std::sqrt(v) / bc2_sqrt + e;
            param[i] = p + (step_size * m) / denom;
          }
        });
      },
      decays && !o.decoupled_weight_decay, decays && o.decoupled_weight_decay, max_exp_avg_sq != nullptr,
      lerp_weight_is_small(beta1_weight));
}

// ----------------------------------------------------------------------------------------------------------- RMSprop

template <typename T>
void rmsprop_step(int64_t n, T* param, const T* grad, T* square_avg, T* grad_avg, T* momentum_buffer,
                  const RmspropOptions& o) {
  const T neg_lr = T(-o.lr), alpha = T(o.alpha), alpha_weight = T(1 - o.alpha), eps = T(o.eps);
  const T weight_decay = T(o.weight_decay), momentum = T(o.momentum);
  specialize(
      [&](auto decay, auto centered, auto with_momentum, auto small_weight) {
        for_each_chunk(n, kAdaptiveWork, [&](int64_t, int64_t begin, int64_t end) {
          const T lr = neg_lr, a = alpha, aw = alpha_weight, e = eps, wd = weight_decay, mom = momentum;  // (as Adam's)
          for (int64_t i = begin; i < end; ++i) {
            T g = grad[i];
            if constexpr (decay) g = g + wd * param[i];
            const T sq = square_avg[i] * a + (aw * g) * g;
            square_avg[i] = sq;
            T avg;
            if constexpr (centered) {
              const T ga = lerp<small_weight>(grad_avg[i], g, aw);
              grad_avg[i] = ga;
              avg = std::sqrt(sq - ga * ga) + e;
            } else {
              avg = std::sqrt(sq) + e;
            }
            if constexpr (with_momentum) {
              const T buf = momentum_buffer[i] * mom + g / avg;
              momentum_buffer[i] = buf;
              param[i] = param[i] + lr * buf;
            } else {
              param[i] = param[i] + (lr * g) / avg;
            }
          }
        });
      },
      o.weight_decay != 0, grad_avg != nullptr, momentum_buffer != nullptr, lerp_weight_is_small(alpha_weight));
}

// ---------------------------------------------------------------------------------------------------- Gradient tools

namespace {

// Independent accumulators within a chunk: element i goes to lane i % kLanes, and the lanes are added in order at
// the chunk's end. Explicit lanes let the compiler vectorize the sum without reordering it (one running sum would
// be one long chain of dependent additions).
constexpr int64_t kLanes = 8;

// The sum of term(x[i]) over [0, n) in double, in a fixed order (see kChunk, kLanes).
template <typename T, typename Term>
double chunked_sum(int64_t n, const T* x, Term term) {
  std::vector<double> partial((n + kChunk - 1) / kChunk, 0.0);
  for_each_chunk(n, kToolWork, [&](int64_t chunk, int64_t begin, int64_t end) {
    double lanes[kLanes] = {};
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes)
      for (int64_t k = 0; k < kLanes; ++k) lanes[k] += term(static_cast<double>(x[i + k]));
    for (int64_t k = 0; i < end; ++i, ++k) lanes[k] += term(static_cast<double>(x[i]));
    double sum = 0;
    for (int64_t k = 0; k < kLanes; ++k) sum += lanes[k];
    partial[chunk] = sum;
  });
  double total = 0;
  for (const double s : partial) total += s;
  return total;
}

}  // namespace

template <typename T>
double sum_squares(int64_t n, const T* x) {
  return chunked_sum(n, x, [](double v) { return v * v; });
}

template <typename T>
double sum_abs_pow(int64_t n, const T* x, double p) {
  if (p == 1) return chunked_sum(n, x, [](double v) { return std::abs(v); });
  return chunked_sum(n, x, [p](double v) { return std::pow(std::abs(v), p); });
}

template <typename T>
double max_abs(int64_t n, const T* x) {
  std::vector<T> partial((n + kChunk - 1) / kChunk, T(0));
  for_each_chunk(n, kToolWork, [&](int64_t chunk, int64_t begin, int64_t end) {
    T m = 0;
    for (int64_t i = begin; i < end; ++i) m = nan_max(m, std::abs(x[i]));
    partial[chunk] = m;
  });
  T m = 0;
  for (const T v : partial) m = nan_max(m, v);
  return static_cast<double>(m);
}

template <typename T>
void scale(int64_t n, T* x, double factor) {
  // A factor below T's smallest normal number would be read as 0 by the threads' denormals-are-zero (float gradients
  // of total norm above about 1e38 clipped to 1 would all become 0): such a factor multiplies in a wider type.
  using Wide = std::conditional_t<std::is_same_v<T, float>, double, long double>;
  const bool tiny = factor != 0 && std::abs(factor) < static_cast<double>(std::numeric_limits<T>::min());
  const T f = T(factor);
  const Wide wide_factor = factor;
  for_each_chunk(n, kToolWork, [&](int64_t, int64_t begin, int64_t end) {
    if (tiny)
      for (int64_t i = begin; i < end; ++i) x[i] = T(Wide(x[i]) * wide_factor);
    else
      for (int64_t i = begin; i < end; ++i) x[i] = x[i] * f;
  });
}

template <typename T>
void clamp(int64_t n, T* x, double limit) {
  const T hi = T(limit), lo = -hi;
  for_each_chunk(n, kToolWork, [&](int64_t, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      // Comparisons with NaN are false, so a NaN element stays NaN.
      const T v = x[i] < lo ? lo : x[i];
      x[i] = v > hi ? hi : v;
    }
  });
}

#define PYLSTM_OPTIMIZERS(T)                                                                                       \
  template void sgd_step<T>(int64_t, T*, const T*, T*, bool, const SgdOptions&);                                   \
  template void adam_step<T>(int64_t, T*, const T*, T*, T*, T*, const AdamOptions&);                               \
  template void rmsprop_step<T>(int64_t, T*, const T*, T*, T*, T*, const RmspropOptions&);                         \
  template double sum_squares<T>(int64_t, const T*);                                                               \
  template double sum_abs_pow<T>(int64_t, const T*, double);                                                       \
  template double max_abs<T>(int64_t, const T*);                                                                   \
  template void scale<T>(int64_t, T*, double);                                                                     \
  template void clamp<T>(int64_t, T*, double);
PYLSTM_OPTIMIZERS(float)
PYLSTM_OPTIMIZERS(double)
#undef PYLSTM_OPTIMIZERS

}  // namespace pylstm

#include "training/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "primitives/cpu.h"
#include "primitives/ops.h"
#include "primitives/parallel.h"

namespace pylstm {

int64_t count_targets(int64_t rows, const int64_t* targets, int64_t classes, int64_t ignore_index,
                      int64_t* first_invalid) {
  int64_t counted = 0;
  *first_invalid = -1;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = targets[r];
    if (t == ignore_index) continue;
    if (t < 0 || t >= classes) {
      *first_invalid = r;
      return counted;
    }
    ++counted;
  }
  return counted;
}

template <typename T>
void cross_entropy(int64_t rows, int64_t classes, const T* logits, const int64_t* targets, int64_t ignore_index,
                   double label_smoothing, double grad_scale, T* grad, double* row_losses) {
  const Ops<T>& kernels = ops<T>();
  // An exponential costs about as much as a dozen multiply-adds, and a row is read three times.
  constexpr int64_t kWorkPerValue = 16;
  const int threads = threads_for(rows * classes * kWorkPerValue);
  parallel_region(threads, [&] {
    DenormalsAreZero daz;
    const int tid = thread_id(), nt = team_size();
    std::vector<T> scratch(grad == nullptr ? static_cast<size_t>(classes) : 0);
    for (int64_t r = rows * tid / nt; r < rows * (tid + 1) / nt; ++r) {
      const T* x = logits + r * classes;
      T* g = grad == nullptr ? scratch.data() : grad + r * classes;
      const int64_t t = targets[r];
      if (t == ignore_index) {
        row_losses[r] = 0.0;
        if (grad != nullptr) std::fill(g, g + classes, T(0));
        continue;
      }
      const T shift = kernels.row_max(classes, x);
      const T sum = kernels.exp_minus_sum(classes, x, shift, g);  // g = exp(x - max) for now
      const double lse = static_cast<double>(shift) + std::log(static_cast<double>(sum));
      double loss = lse - (1.0 - label_smoothing) * static_cast<double>(x[t]);
      if (label_smoothing != 0.0)
        loss -= label_smoothing / static_cast<double>(classes) * static_cast<double>(kernels.row_sum(classes, x));
      row_losses[r] = loss;
      if (grad != nullptr) {
        kernels.scale_minus(classes, g, static_cast<T>(grad_scale / static_cast<double>(sum)),
                      static_cast<T>(grad_scale * label_smoothing / static_cast<double>(classes)));
        g[t] -= static_cast<T>(grad_scale * (1.0 - label_smoothing));
      }
    }
  });
}

template void cross_entropy<float>(int64_t, int64_t, const float*, const int64_t*, int64_t, double, double, float*,
                                   double*);
template void cross_entropy<double>(int64_t, int64_t, const double*, const int64_t*, int64_t, double, double,
                                    double*, double*);

}  // namespace pylstm

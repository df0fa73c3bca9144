#include "training/linear.h"

#include "primitives/gemm.h"

namespace pylstm {

template <typename T>
void linear_forward(int64_t rows, int64_t in, int64_t out, const T* x, const T* weight, const T* bias, T* y) {
  // x (N, I) @ W^T: W is (O, I) row-major, the transposed B of the GEMM; every row of y starts from the bias.
  if (bias == nullptr) {
    gemm<T>(ops<T>(), rows, out, in, x, in, 1, weight, in, true, y, out, false);
  } else {
    gemm<T>(ops<T>(), rows, out, in, x, in, 1, weight, in, true, y, out, false, bias);
  }
}

template <typename T>
void linear_backward(int64_t rows, int64_t in, int64_t out, const T* x, const T* weight, const T* dy, T* dx,
                     T* dweight, T* dbias) {
  const Ops<T>& kernels = ops<T>();  // once: both products with one ISA's table
  // dx (N, I) = dy (N, O) @ W (O, I): W as stored is the GEMM's row-major B.
  if (dx != nullptr) gemm<T>(kernels, rows, in, out, dy, out, 1, weight, in, false, dx, in, false);
  // dW (O, I) += dy^T (O, N) @ x (N, I), and db += the sums of dy's columns, from one pass over dy.
  const GradTerm<T> term{x, rows, nullptr, in, 0, out, dweight, in};
  weight_gradients<T>(kernels, out, rows, dy, out, &term, 1, dbias, nullptr);
}

template void linear_forward<float>(int64_t, int64_t, int64_t, const float*, const float*, const float*, float*);
template void linear_forward<double>(int64_t, int64_t, int64_t, const double*, const double*, const double*,
                                     double*);
template void linear_backward<float>(int64_t, int64_t, int64_t, const float*, const float*, const float*, float*,
                                     float*, float*);
template void linear_backward<double>(int64_t, int64_t, int64_t, const double*, const double*, const double*,
                                      double*, double*, double*);

}  // namespace pylstm

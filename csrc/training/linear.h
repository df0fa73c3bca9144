// A linear (fully connected) block over rows: y = x W^T + b, PyTorch's nn.Linear. The products run through the
// library's GEMM (primitives/gemm.h) on its own threads; results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace pylstm {

// rows: N; in: I; out: O. x (N, I), weight (O, I), bias (O,) or null -> y (N, O), every array row-major and dense.
template <typename T>
void linear_forward(int64_t rows, int64_t in, int64_t out, const T* x, const T* weight, const T* bias, T* y);

// The gradients of linear_forward, given dy (N, O):
//   dx (N, I) = dy W (written; skipped when dx is null, e.g. below an embedding);
//   dweight (O, I) += dy^T x and dbias (O,) += the column sums of dy (accumulated; dbias may be null).
template <typename T>
void linear_backward(int64_t rows, int64_t in, int64_t out, const T* x, const T* weight, const T* dy, T* dx,
                     T* dweight, T* dbias);

}  // namespace pylstm

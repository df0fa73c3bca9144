// Optimizer updates and gradient tools: fused single-pass elementwise kernels over one parameter array of n
// elements (float or double), the fast twins of pylstm.reference's sgd_step, adam_step, rmsprop_step and clipping.
//
// The update rules are torch.optim's (SGD, Adam/AdamW, RMSprop), with torch's order of operations, done in the
// parameter's type T: every hyperparameter is rounded to T once (as torch rounds a Python scalar to a float32
// tensor's type), and the per-call factors that torch computes in Python floats (Adam's bias corrections and step
// size, AdamW's decay factor) are computed here in double first. torch's CPU kernels fuse some of the multiply-adds
// (FMA) where these do not, so results agree with torch's to rounding, not bit for bit.
//
// Arrays are C-contiguous, of n elements each, and share no memory (the bindings check it). A large array is split
// across threads in fixed chunks, so every result is bitwise the same for any thread count. NaN and infinity
// propagate as in torch: no element is skipped.
#pragma once
#include <cstdint>

namespace pylstm {

// ------------------------------------------------------------------------------------------------------------ SGD
// torch.optim.SGD, per element:
//   g = grad + weight_decay * param                         (only when weight_decay != 0)
//   buf = g on the first step, else buf * momentum + (1 - dampening) * g   (only when momentum != 0)
//   g = g + momentum * buf (nesterov), or g = buf           (only when momentum != 0)
//   param = param + (-lr) * g
struct SgdOptions {
  double lr = 0;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0 (pylstm.optim checks)
};

// param: updated in place. grad: read. momentum_buffer: nullptr when momentum == 0, else read and written (only
// written when first_step: torch starts the buffer as a copy of the decayed gradient, not from zeros).
template <typename T>
void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buffer, bool first_step, const SgdOptions& options);

// ----------------------------------------------------------------------------------------------------- Adam, AdamW
// torch.optim.Adam and AdamW, per element (bc1 = 1 - beta1^step, bc2 = 1 - beta2^step in double):
//   param = param * (1 - lr * weight_decay)                 (AdamW, only when weight_decay != 0)
//   g = grad + weight_decay * param                         (Adam, only when weight_decay != 0)
//   exp_avg = lerp(exp_avg, g, 1 - beta1)                   (torch's lerp: see lerp() in optimizers.cpp)
//   exp_avg_sq = exp_avg_sq * beta2 + ((1 - beta2) * g) * g
//   max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq)        (amsgrad; NaN wins, as torch.maximum)
//   denom = sqrt(exp_avg_sq or max_exp_avg_sq) / bc2^0.5 + eps
//   param = param + (-(lr / bc1) * exp_avg) / denom
struct AdamOptions {
  double lr = 0;
  double beta1 = 0;
  double beta2 = 0;
  double eps = 0;
  double weight_decay = 0;
  bool decoupled_weight_decay = false;  // true: AdamW
  int64_t step = 1;                     // the step count including this step (>= 1), for the bias corrections
};

// param: updated in place. grad: read. exp_avg, exp_avg_sq: read and written (zeros before the first step).
// max_exp_avg_sq: nullptr without amsgrad, else read and written (zeros before the first step).
template <typename T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
               const AdamOptions& options);

// --------------------------------------------------------------------------------------------------------- RMSprop
// torch.optim.RMSprop, per element:
//   g = grad + weight_decay * param                         (only when weight_decay != 0)
//   square_avg = square_avg * alpha + ((1 - alpha) * g) * g
//   grad_avg = lerp(grad_avg, g, 1 - alpha)                 (centered)
//   avg = sqrt(square_avg - grad_avg * grad_avg) + eps      (centered), or sqrt(square_avg) + eps
//   buf = buf * momentum + g / avg, param = param + (-lr) * buf     (momentum > 0)
//   param = param + ((-lr) * g) / avg                               (momentum == 0)
struct RmspropOptions {
  double lr = 0;
  double alpha = 0;
  double eps = 0;
  double weight_decay = 0;
  double momentum = 0;
};

// param: updated in place. grad: read. square_avg: read and written (zeros before the first step). grad_avg:
// nullptr unless centered, else read and written. momentum_buffer: nullptr unless momentum > 0, else read and
// written (both zeros before the first step).
template <typename T>
void rmsprop_step(int64_t n, T* param, const T* grad, T* square_avg, T* grad_avg, T* momentum_buffer,
                  const RmspropOptions& options);

// ------------------------------------------------------------------------------------------------- Gradient tools
// Sums accumulate in double in a fixed order (fixed chunks, fixed lanes within a chunk, chunks added in order), so
// they are deterministic for any thread count; NaN and infinity propagate.

// sum of x[i]^2 (the products taken in double).
template <typename T>
double sum_squares(int64_t n, const T* x);

// sum of |x[i]|^p (in double), for the p-norms other than 2 and infinity.
template <typename T>
double sum_abs_pow(int64_t n, const T* x, double p);

// max of |x[i]| (0 for n == 0); NaN when any element is NaN, as torch's infinity norm.
template <typename T>
double max_abs(int64_t n, const T* x);

// x[i] = x[i] * T(factor), in place; a factor below T's smallest normal number multiplies in a wider type instead.
template <typename T>
void scale(int64_t n, T* x, double factor);

// x[i] = min(max(x[i], -T(limit)), T(limit)), in place; NaN stays NaN (as torch's clamp).
template <typename T>
void clamp(int64_t n, T* x, double limit);

}  // namespace pylstm

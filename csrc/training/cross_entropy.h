// Softmax cross-entropy over rows of logits, PyTorch's F.cross_entropy with class-index targets: log-softmax and the
// negative log-likelihood fused with their gradient in one pass per row, numerically stable for logits of any size
// (each row is shifted by its maximum before exponentiating).
#pragma once
#include <cstdint>

namespace pylstm {

// The number of targets that count (not ignore_index); *first_invalid is the index of the first target outside
// [0, classes) that is not ignore_index, or -1.
int64_t count_targets(int64_t rows, const int64_t* targets, int64_t classes, int64_t ignore_index,
                      int64_t* first_invalid);

// logits (rows, classes), targets (rows,) each in [0, classes) or ignore_index (checked by the caller) ->
//   row_losses (rows,): for a counted row, with lse = log(sum_j exp(x_j)) and e the label smoothing,
//       lse - (1 - e) x_target - (e / classes) sum_j x_j   (torch's (1 - e) * nll + e * mean_j(-log softmax_j));
//     0 for an ignored row. Computed in double from the row's max, sum of exponentials and sums.
//   grad (rows, classes), unless null: grad_scale * d(row loss)/d(logits), i.e.
//       grad_scale * (softmax_j - (1 - e) [j == target] - e / classes); zeros on an ignored row.
// Rows are independent; threads split them, so results do not depend on the thread count.
template <typename T>
void cross_entropy(int64_t rows, int64_t classes, const T* logits, const int64_t* targets, int64_t ignore_index,
                   double label_smoothing, double grad_scale, T* grad, double* row_losses);

}  // namespace pylstm

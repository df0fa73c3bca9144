// An embedding table lookup, PyTorch's nn.Embedding: row ids[r] of the weight for every id, and its gradient
// accumulated into the rows that were looked up only.
#pragma once
#include <cstdint>

namespace pylstm {

// The index of the first id outside [0, num_embeddings), or -1 when every id is valid.
int64_t first_invalid_id(int64_t n, const int64_t* ids, int64_t num_embeddings);

// n ids (each in [0, num_embeddings), checked by the caller), weight (num_embeddings, dim) -> out (n, dim):
// out[r] = weight[ids[r]].
template <typename T>
void embedding_forward(int64_t n, int64_t dim, const int64_t* ids, const T* weight, T* out);

// dweight[ids[r]] += dout[r] for every r whose id is not padding_idx (-1: none), in the order of r, so that a row
// looked up several times sums its gradients in a fixed order. Only the rows looked up are read or written.
template <typename T>
void embedding_backward(int64_t n, int64_t dim, const int64_t* ids, const T* dout, int64_t padding_idx, T* dweight);

}  // namespace pylstm

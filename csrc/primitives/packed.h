// The packed layout of a GEMM's B operand (K, N): panels of `nr` columns, each stored k-major (K rows of nr values,
// zero-padded past the last column), so the micro-kernel reads one contiguous stream per panel.
//
// The N columns form `blocks` blocks of `block_cols` columns each (N = blocks * block_cols), and every block is cut
// into panels on its own. With block_cols = H this keeps each of the G blocks of H columns of a (G*H)-wide weight in
// panels of their own, so a thread that owns columns [j0, j1) of every block owns the same panel range in each. A
// plain matrix is one block (block_cols = N).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "primitives/cache_sizes.h"

namespace pylstm {

// True when rows `row_stride` values of T apart all fall into the same L1 cache sets (a multiple of 4 KiB): the GEMM
// micro-kernel cannot read such an A operand in place without its rows evicting each other.
template <typename T>
constexpr bool rows_share_cache_sets(int64_t row_stride) {
  return (row_stride * static_cast<int64_t>(sizeof(T))) % 4096 == 0;
}

template <typename T>
struct PackedB {
  T* data = nullptr;
  int64_t K = 0;
  int64_t block_cols = 0;
  int64_t blocks = 0;
  int64_t nr = 1;

  int64_t panels_per_block() const { return (block_cols + nr - 1) / nr; }
  int64_t panels() const { return blocks * panels_per_block(); }
  int64_t size() const { return panels() * K * nr; }  // values
  // First column of C that panel p writes, and how many columns of it are real.
  int64_t col(int64_t p) const { return (p / panels_per_block()) * block_cols + (p % panels_per_block()) * nr; }
  int width(int64_t p) const {
    return static_cast<int>(std::min<int64_t>(nr, block_cols - (p % panels_per_block()) * nr));
  }
  T* panel(int64_t p) const { return data + p * K * nr; }
};

// Fill panels [p_begin, p_end) of `b` (its data, K, block_cols, blocks and nr set) from the row-major (K, N) matrix
// at src with leading dimension ld. (W^T for a weight W stored as PyTorch stores it, used as x @ W^T, is packed by
// Ops::pack_b_transposed.) The source may come in two pieces: rows [0, split) at src and rows [split, K) at tail (the
// previous hidden states [h0; out[:-1]] without copying them together). pack_b_rows fills rows [k_begin, k_end) of
// the panels only (a product that runs while its rows are being made packs each block of rows as it comes).
template <typename T>
void pack_b_rows(const T* src, int64_t ld, const PackedB<T>& b, int64_t p_begin, int64_t p_end, int64_t k_begin,
                 int64_t k_end, int64_t split = -1, const T* tail = nullptr) {
  const int64_t nr = b.nr;
  if (split < 0) split = b.K;
  for (int64_t p = p_begin; p < p_end; ++p) {
    T* dst = b.panel(p);
    const int64_t c0 = b.col(p);
    const int w = b.width(p);
    if (w < nr) {  // a partial panel, value by value; whole ones below
      for (int64_t k = k_begin; k < k_end; ++k) {
        const T* row = k < split ? src + k * ld : tail + (k - split) * ld;
        for (int c = 0; c < w; ++c) dst[k * nr + c] = row[c0 + c];
      }
    }
    for (int64_t k = k_begin; k < k_end; ++k)
      for (int64_t c = w; c < nr; ++c) dst[k * nr + c] = T(0);
  }
  // Whole panels, a block of rows at a time: the block's part of each source row is read once and copied into every
  // panel while it is in cache. Panel by panel down all of k_end, each panel read nr values of every row, a new cache
  // line for every few values, and took longer than this. A block's panels take at most an eighth of one core's L2
  // (a copy: the block size may follow the cache sizes).
  const int64_t row_bytes = std::max<int64_t>(1, (p_end - p_begin) * nr * int64_t(sizeof(T)));
  const int64_t k_block = std::clamp<int64_t>(cache_sizes().l2 / 8 / row_bytes, 8, 256);
  auto copy_rows = [&](auto panel_width) {  // a compile-time width: each row's copy is a few vector moves
    constexpr int64_t kNr = decltype(panel_width)::value;
    for (int64_t k0 = k_begin; k0 < k_end; k0 += k_block) {
      const int64_t k1 = std::min(k_end, k0 + k_block);
      for (int64_t p = p_begin; p < p_end; ++p) {
        if (b.width(p) < kNr) continue;
        T* dst = b.panel(p);
        const int64_t c0 = b.col(p);
        for (int64_t k = k0; k < k1; ++k)
          std::memcpy(dst + k * kNr, (k < split ? src + k * ld : tail + (k - split) * ld) + c0, kNr * sizeof(T));
      }
    }
  };
  switch (nr) {
    case 8: copy_rows(std::integral_constant<int64_t, 8>{}); break;
    case 16: copy_rows(std::integral_constant<int64_t, 16>{}); break;
    case 32: copy_rows(std::integral_constant<int64_t, 32>{}); break;
    default:
      for (int64_t p = p_begin; p < p_end; ++p)
        if (b.width(p) == nr)
          for (int64_t k = k_begin; k < k_end; ++k)
            std::copy_n((k < split ? src + k * ld : tail + (k - split) * ld) + b.col(p), nr, b.panel(p) + k * nr);
  }
}
template <typename T>
void pack_b(const T* src, int64_t ld, const PackedB<T>& b, int64_t p_begin, int64_t p_end, int64_t split = -1,
            const T* tail = nullptr) {
  pack_b_rows(src, ld, b, p_begin, p_end, 0, b.K, split, tail);
}

}  // namespace pylstm

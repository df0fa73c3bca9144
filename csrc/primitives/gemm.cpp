#include "gemm.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cache_sizes.h"
#include "cpu.h"
#include "ops.h"
#include "parallel.h"
#include "workspace.h"

namespace pylstm {

bool FinalRows::wait_until(int64_t row) const {
  // The loop publishes a step every few microseconds: spin briefly, then yield, then nap (a core it may need).
  int64_t first;
  for (int i = 0; (first = first_.load(std::memory_order_acquire)) > row; ++i) {
    if (i < 2000) {
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#endif
    } else if (i < 2100) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  return first != kAbandoned;
}

// What threads_for weighs for a product, in multiply-adds: its arithmetic, plus kElementWork for each element of a
// matrix that it streams through memory once with little arithmetic on it (a weight read by 1-4 rows, a weight
// gradient read and written around a short sum), which one core alone reads and writes slower than two.
constexpr int64_t kElementWork = 8;

template <typename T>
void gemm(const Ops<T>& kernels, int64_t M, int64_t N, int64_t K, const T* A, int64_t as_m, int64_t as_k, const T* B,
          int64_t ldb, bool b_transposed, T* C, int64_t ldc, bool accumulate, const T* start) {
  if (M <= 0 || N <= 0) return;
  if (start != nullptr) accumulate = false;
  // A few rows (dx of a short sequence at batch 1-4): B read once, in place, each thread its columns; packing it
  // first would read and write all of B for those rows.
  constexpr int64_t kFewRows = 4;
  if (M <= kFewRows && as_k == 1) {
    const int threads = threads_for(M * N * K + kElementWork * N * K);
    parallel_region(threads, [&] {
      DenormalsAreZero daz;
      const int tid = thread_id(), nt = team_size();
      const int64_t n0 = N * tid / nt, n1 = N * (tid + 1) / nt;
      if (b_transposed) kernels.gemm_dot(M, n0, n1, K, A, as_m, B, ldb, C, ldc, accumulate, false, start);
      else kernels.gemm_axpy(M, n0, n1, K, A, as_m, B, ldb, C, ldc, accumulate, false, start);
    });
    return;
  }
  PackedB<T> packed;
  packed.K = K;
  packed.block_cols = N;
  packed.blocks = 1;
  packed.nr = kernels.nr;
  Scratch scratch(1);
  scratch.need(&packed.data, packed.size());
  scratch.allocate();

  // Rows when there are enough of them to share (two 192-row blocks per thread), else column panels.
  constexpr int64_t kRowBlock = 192;
  const int64_t row_blocks = (M + kRowBlock - 1) / kRowBlock, panels = packed.panels();
  const int threads = threads_for(M * N * K);
  const bool split_rows = row_blocks >= 2 * threads || row_blocks >= panels;
  parallel_region(threads, [&] {
    DenormalsAreZero daz;
    const int tid = thread_id(), nt = team_size();
    if (b_transposed) kernels.pack_b_transposed(B, ldb, packed, panels * tid / nt, panels * (tid + 1) / nt);
    else pack_b(B, ldb, packed, panels * tid / nt, panels * (tid + 1) / nt);
#pragma omp barrier
    if (split_rows) {
      // Equal shares in multiples of 12 rows (every ISA's micro-kernel rows divide 12): whole 192-row blocks would
      // split a few hundred rows unevenly.
      constexpr int64_t kQuantum = 12;
      const int64_t quanta = (M + kQuantum - 1) / kQuantum;
      const int64_t r0 = quanta * tid / nt * kQuantum, r1 = std::min(M, quanta * (tid + 1) / nt * kQuantum);
      if (r0 < r1)
        kernels.gemm_panels(r1 - r0, A + r0 * as_m, as_m, as_k, packed, 0, 1, 0, panels, C + r0 * ldc, ldc, accumulate,
                      start);
    } else {
      const int64_t p0 = panels * tid / nt, p1 = panels * (tid + 1) / nt;
      if (p0 < p1) kernels.gemm_panels(M, A, as_m, as_k, packed, 0, 1, p0, p1, C, ldc, accumulate, start);
    }
  });
}

template <typename T>
void weight_gradients(const Ops<T>& kernels, int64_t M, int64_t K, const T* dpre, int64_t ld, const GradTerm<T>* terms,
                      int n_terms, T* bias, T* bias2, const FinalRows* ready) {
  if (M <= 0) return;
  // Row blocks of dpre^T that never straddle a term's boundary, small enough that every thread gets some.
  std::vector<int64_t> cuts = {0, M};
  for (int j = 0; j < n_terms; ++j) cuts.insert(cuts.end(), {terms[j].m_begin, terms[j].m_end});
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  int64_t work = 0;
  for (int j = 0; j < n_terms; ++j) work += (terms[j].m_end - terms[j].m_begin) * terms[j].N * (K + kElementWork);
  const int threads = ready != nullptr ? 1 : threads_for(work);
  constexpr int64_t kRowQuantum = 48;  // a multiple of every ISA's micro-kernel rows
  const int64_t mc = std::min<int64_t>(kernels.mc, std::max<int64_t>(kRowQuantum,
                                        (M + 2 * threads - 1) / (2 * threads) / kRowQuantum * kRowQuantum));
  // Few rows to sum over (K) against a large gradient: each row block packs its whole K of dpre^T (at most
  // whole_k_bytes, three eighths of one core's L2, kept there beside the panels of B and C) and finishes one panel of
  // C at a time, so that C goes through memory once instead of once per k block. The same sums in the same order (the
  // k blocks stay kernels.kc, a constant), so this may follow the cache sizes. Not beside a loop, which makes the rows
  // from the last block to the first.
  const int64_t whole_k_bytes = cache_sizes().l2 / 8 * 3;
  const int64_t k_blocks = (K + kernels.kc - 1) / kernels.kc;
  const bool whole_k = ready == nullptr && k_blocks > 1 && mc * K * int64_t(sizeof(T)) <= whole_k_bytes;

  // Where each block takes all of K at once (one k block, or whole_k), the threads take the blocks in turn from a
  // shared count instead of each its own range: the cores of a virtual machine run at speeds that differ from one
  // moment to the next, and the faster then takes more blocks. The k loop over the thread's own blocks stays for large
  // K (its chunks of packed B are reused across them) and beside a backward loop.
  const bool blocks_in_turn = ready == nullptr && (whole_k || k_blocks <= 1);
  // The row blocks: cut from all rows where the threads take them in turn; else from each thread's own rows, equal
  // shares in multiples of 12 (every ISA's micro-kernel rows divide 12): whole blocks would split the rows unevenly.
  constexpr int64_t kShareQuantum = 12;
  const int64_t quanta = (M + kShareQuantum - 1) / kShareQuantum;
  const int shares = blocks_in_turn ? 1 : threads;
  std::vector<std::pair<int64_t, int64_t>> blocks;
  std::vector<int64_t> first_block(shares + 1);  // share t's blocks: [first_block[t], first_block[t + 1])
  for (int t = 0; t < shares; ++t) {
    first_block[t] = static_cast<int64_t>(blocks.size());
    const int64_t r0 = std::min(M, quanta * t / shares * kShareQuantum);
    const int64_t r1 = std::min(M, quanta * (t + 1) / shares * kShareQuantum);
    for (size_t c = 0; c + 1 < cuts.size(); ++c) {
      const int64_t lo = std::max(r0, cuts[c]), hi = std::min(r1, cuts[c + 1]);
      for (int64_t m = lo; m < hi; m += mc) blocks.push_back({m, std::min(hi, m + mc)});
    }
  }
  first_block[shares] = static_cast<int64_t>(blocks.size());

  std::vector<PackedB<T>> packed(n_terms);
  T* sums = nullptr;
  T* a_blocks = nullptr;
  const int64_t a_size = (kernels.mc * kernels.kc + 64) * (whole_k ? k_blocks : 1);  // per thread
  Scratch scratch(1);
  for (int j = 0; j < n_terms; ++j) {
    packed[j].K = K;
    packed[j].block_cols = terms[j].N;
    packed[j].blocks = 1;
    packed[j].nr = kernels.nr;
    scratch.need(&packed[j].data, packed[j].size());
  }
  scratch.need(&sums, M);
  scratch.need(&a_blocks, a_size * threads);
  // Beside a loop that may be cut short: the terms' gradients as they were, put back if the loop abandons its rows
  // (the sums over rows are added in blocks as rows become final, which cannot be taken back exactly).
  T* kept = nullptr;
  int64_t kept_size = 0;
  const bool keep = ready != nullptr && ready->may_abandon();
  if (keep)
    for (int j = 0; j < n_terms; ++j) kept_size += (terms[j].m_end - terms[j].m_begin) * terms[j].N;
  scratch.need(&kept, kept_size);
  scratch.allocate();
  auto each_term_row = [&](auto&& copy) {
    T* saved = kept;
    for (int j = 0; j < n_terms; ++j)
      for (int64_t m = 0; m < terms[j].m_end - terms[j].m_begin; ++m, saved += terms[j].N)
        copy(terms[j].C + m * terms[j].ldc, saved, terms[j].N);
  };
  if (keep) each_term_row([](const T* row, T* copy, int64_t n) { std::copy(row, row + n, copy); });
  bool abandoned = false;
  std::fill(sums, sums + M, T(0));
  const int64_t n_blocks = static_cast<int64_t>(blocks.size());
  std::atomic<int64_t> next_block{0};
  parallel_region(threads, [&] {
    DenormalsAreZero daz;
    const int tid = thread_id(), nt = team_size();
    // Beside a loop (one thread), each block of rows is packed as it comes, below: the packed rows are then still in
    // cache when used, and a loop cut short is not kept waiting for a packing of all rows.
    for (int j = 0; j < n_terms && ready == nullptr; ++j) {
      const int64_t panels = packed[j].panels();
      pack_b(terms[j].head, terms[j].N, packed[j], panels * tid / nt, panels * (tid + 1) / nt, terms[j].split,
             terms[j].tail);
    }
#pragma omp barrier
    T* a_block = a_blocks + a_size * tid;
    // The threads take the row blocks in turn (blocks_in_turn), or each owns a fixed range of them; no barrier:
    // nothing is shared but the packed B. In the k loop below, the sum over the rows (k) is the outer loop, so a chunk
    // of packed B and of dpre's rows is read from memory once and reused by all of the thread's row blocks while in
    // cache (K, the number of rows, is large: T * B); each element adds its k chunks in the same order (the last
    // first, the order in which a backward loop finishes them) whatever the thread count.
    // (Any split of the blocks gives the same result: when fewer threads came than asked for, they share them out.)
    const bool own_share = !blocks_in_turn && nt == threads;
    const int64_t b_begin = own_share ? first_block[tid] : n_blocks * tid / nt;
    const int64_t b_end = own_share ? first_block[tid + 1] : n_blocks * (tid + 1) / nt;
    auto first = [&] { return blocks_in_turn ? next_block.fetch_add(1, std::memory_order_relaxed) : b_begin; };
    auto next = [&](int64_t bi) {
      return blocks_in_turn ? next_block.fetch_add(1, std::memory_order_relaxed) : bi + 1;
    };
    auto end = [&] { return blocks_in_turn ? n_blocks : b_end; };
    // whole_k: the same sums in the same order, C panel by panel.
    for (int64_t bi = whole_k ? first() : end(); bi < end(); bi = next(bi)) {
      const int64_t m0 = blocks[bi].first, mcb = blocks[bi].second - m0;
      for (int64_t kb = k_blocks - 1; kb >= 0; --kb)
        kernels.pack_a_block(mcb, std::min(kernels.kc, K - kb * kernels.kc), dpre + m0 + kb * kernels.kc * ld, 1, ld,
                       a_block + kb * (kernels.mc * kernels.kc + 64), sums + m0);
      for (int j = 0; j < n_terms; ++j) {
        const GradTerm<T>& g = terms[j];
        if (m0 < g.m_begin || m0 >= g.m_end) continue;
        for (int64_t p = 0; p < packed[j].panels(); ++p)
          for (int64_t kb = k_blocks - 1; kb >= 0; --kb)
            kernels.gemm_a_packed(mcb, std::min(kernels.kc, K - kb * kernels.kc),
                                  a_block + kb * (kernels.mc * kernels.kc + 64), packed[j], kb * kernels.kc, 0, 1, p,
                                  p + 1, g.C + (m0 - g.m_begin) * g.ldc, g.ldc, true);
      }
    }
    for (int64_t k0 = whole_k || K == 0 ? -1 : (K - 1) / kernels.kc * kernels.kc; k0 >= 0; k0 -= kernels.kc) {
      const int64_t kcb = std::min(kernels.kc, K - k0);
      if (ready != nullptr) {  // (one thread, beside a loop)
        if (!ready->wait_until(k0)) {
          abandoned = true;
          break;
        }
        for (int j = 0; j < n_terms; ++j)
          pack_b_rows(terms[j].head, terms[j].N, packed[j], 0, packed[j].panels(), k0, k0 + kcb, terms[j].split,
                      terms[j].tail);
      }
      for (int64_t bi = first(); bi < end(); bi = next(bi)) {
        const int64_t m0 = blocks[bi].first, mcb = blocks[bi].second - m0;
        kernels.pack_a_block(mcb, kcb, dpre + m0 + k0 * ld, 1, ld, a_block, sums + m0);
        for (int j = 0; j < n_terms; ++j) {
          const GradTerm<T>& g = terms[j];
          if (m0 < g.m_begin || m0 >= g.m_end) continue;
          kernels.gemm_a_packed(mcb, kcb, a_block, packed[j], k0, 0, 1, 0, packed[j].panels(),
                                g.C + (m0 - g.m_begin) * g.ldc, g.ldc, true);
        }
      }
    }
  });
  if (abandoned) {
    each_term_row([](T* row, const T* copy, int64_t n) { std::copy(copy, copy + n, row); });
    return;
  }
  for (int64_t m = 0; m < M; ++m) {
    if (bias != nullptr) bias[m] += sums[m];
    if (bias2 != nullptr) bias2[m] += sums[m];
  }
}

template void gemm<float>(const Ops<float>&, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                          int64_t, bool, float*, int64_t, bool, const float*);
template void gemm<double>(const Ops<double>&, int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                           const double*, int64_t, bool, double*, int64_t, bool, const double*);
template void weight_gradients<float>(const Ops<float>&, int64_t, int64_t, const float*, int64_t,
                                      const GradTerm<float>*, int, float*, float*, const FinalRows*);
template void weight_gradients<double>(const Ops<double>&, int64_t, int64_t, const double*, int64_t,
                                       const GradTerm<double>*, int, double*, double*, const FinalRows*);

}  // namespace pylstm

// The GEMM building blocks over Vec<T>, compiled once per ISA into the Ops table (ops_table_inl.h): the micro-kernel
// and its cache blocking, packing, transposition, and the products for a few rows (dot products, axpy).
//
// Row-major throughout. Nothing here allocates or starts threads: the callers decide who computes what. Every output
// element is computed by the same instructions in the same order whichever thread computes it, so results do not
// depend on the thread count.
namespace pylstm {
namespace PYLSTM_SIMD_NS {

template <typename V>
struct Tiling {
  using T = typename V::T;
  static constexpr int kLanes = V::kLanes;
  // Micro-tile: kMr rows of C by kNrVecs registers of columns, all accumulators in registers
  // (AVX-512: 12 x 2 of 32; AVX2: 6 x 2 of 16; scalar: 4 x 8).
  static constexpr int kNrVecs = kLanes == 1 ? 8 : 2;
  static constexpr int kNr = kNrVecs * kLanes;
  static constexpr int kMr = kLanes == 1 ? 4 : (kLanes * sizeof(T) == 64 ? 12 : 6);
  // Cache blocks: a (kMc, kKc) block of A stays in L2, and a (kKc, kNr) slice of a B panel is reused across the
  // block's rows from L1/L2. 2 KiB of k per row (512 floats): at K = 512 C is written once instead of stored and read
  // back between two halves (half of that was slower, and less again slower still), although the AVX-512 slice then
  // no longer fits a 48 KiB L1. Both are compile-time constants and do not follow the run-time cache sizes
  // (primitives/cache_sizes.h): kKc decides how each sum is split (its k blocks), so results on every CPU of one ISA
  // stay bitwise the same; kMc sizes the thread buffers and the compiled loops (block_rows_max, the Ops table's mc).
  static constexpr int64_t kKc = 512 * 4 / static_cast<int64_t>(sizeof(T));
  static constexpr int64_t kMc = 20 * kMr;
  // Values of k per pass of the micro-kernel's loop: four (the loop's own instructions shared by four steps) where
  // the registers left beside a step's (accumulators, B vectors, A broadcast) hold the next step's B vectors, else
  // one. With AVX2's 16 (12 + 2 + 1 used), GCC's four-step passes loaded the next B vectors early and spilled
  // accumulators to the stack inside the loop; the scalar tile (4 x 8 values) spilled more. For a tile of NV
  // registers of columns (kNrVecs, or one on a narrow panel: narrow_panel).
  template <int NV>
  static constexpr int steps_per_pass() {
    return V::kRegisters - (kMr * NV + NV + 1) >= NV ? 4 : 1;
  }
};

// Whether a panel of `width` columns takes the micro-kernel's one-register tile: a panel of two registers' width
// whose columns fit in the first (the last panel of a gate or of a matrix whose width leaves a few columns, as H =
// 100 does: 3 x 32 + 4), so the FMAs of the second register, all on zero padding, are not done. Each computed
// element sees the same FMAs in the same order either way.
template <typename V>
constexpr bool narrow_panel(int width) {
  return Tiling<V>::kNrVecs == 2 && width <= V::kLanes;
}

// ------------------------------------------------------------------------------------------------------------ GEMM

// The layouts of A that the micro-kernel is compiled for, with its strides as constants: any (the strides as given),
// rows read in place (as_k = 1), and the strips of pack_a_block (as_m = 1, as_k = kMr). Left to the compiler, these
// specializations came and went with unrelated code in the same file (adding gemm_axpy made GCC stop cloning the
// micro-kernel for them, and the products with them slowed down): they are compiled explicitly.
enum class ALayout { kAny, kRows, kStrips };

// A's strides for `layout`: the constants it stands for, else as given.
template <typename V, ALayout kLayout>
constexpr int64_t a_row_stride(int64_t as_m) {
  return kLayout == ALayout::kStrips ? 1 : as_m;
}
template <typename V, ALayout kLayout>
constexpr int64_t a_col_stride(int64_t as_k) {
  return kLayout == ALayout::kRows ? 1 : kLayout == ALayout::kStrips ? Tiling<V>::kMr : as_k;
}

// acc (MR rows, NV registers of columns) += A (MR, kSteps) @ panel (kSteps, those columns), A element (r, k) at
// A[r * as_m + k * as_k], the panel's rows kNr values apart: the micro-kernel's inner loop body for kSteps values of k.
// A's elements are read through one pointer per row, k being a constant displacement from it: written as
// A[r * as_m + k * as_k], GCC kept an offset register for every (r, k) of a pass, and with AVX2's 16 vector and 16
// general registers it spilled them and accumulators to the stack inside the loop. The same loads, so the same bits.
template <typename V, int MR, int NV, int kSteps, ALayout kLayout>
inline void micro_kernel_steps(typename V::Reg (&acc)[MR][NV], const typename V::T* A, int64_t as_m_given,
                               int64_t as_k_given, const typename V::T* panel) {
  constexpr int L = V::kLanes, NR = Tiling<V>::kNr;
  const int64_t as_m = a_row_stride<V, kLayout>(as_m_given), as_k = a_col_stride<V, kLayout>(as_k_given);
  const typename V::T* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = A + r * as_m;
  for (int k = 0; k < kSteps; ++k) {
    typename V::Reg b[NV];
    for (int v = 0; v < NV; ++v) b[v] = V::load(panel + k * NR + v * L);
    for (int r = 0; r < MR; ++r) {
      const typename V::Reg a = V::set1(rows[r][k * as_k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(a, b[v], acc[r][v]);
    }
  }
}

// C (MR, width) = start + A (MR, kc) @ panel (kc, kNr), on NV registers of columns (width <= NV * kLanes): A element
// (r, k) at A[r * as_m + k * as_k]; start is the row `start` (width values) in every row when not null, else C itself
// when accumulating, else zero. With `prefetch_panel` (the first strip of a panel, which brings the panel's slice in
// for the strips after it), each pass asks for the panel's lines kPanelPrefetchSteps values of k ahead.
template <typename V, int MR, int NV, ALayout kLayout>
inline void micro_kernel(int64_t kc, const typename V::T* A, int64_t as_m_given, int64_t as_k_given,
                         const typename V::T* panel, typename V::T* C, int64_t ldc, int width, bool accumulate,
                         const typename V::T* start, bool prefetch_panel) {
  using Reg = typename V::Reg;
  const int64_t as_m = a_row_stride<V, kLayout>(as_m_given), as_k = a_col_stride<V, kLayout>(as_k_given);
  constexpr int L = V::kLanes, NR = Tiling<V>::kNr;
  Reg acc[MR][NV];
  for (int v = 0; v < NV; ++v) {
    const int lanes = width - v * L;
    const int w = std::min(lanes, L);
    const Reg first = start == nullptr || lanes <= 0 ? V::zero() : load_n<V>(start + v * L, w);
    for (int r = 0; r < MR; ++r)
      acc[r][v] = start != nullptr || !accumulate || lanes <= 0 ? first : load_n<V>(C + r * ldc + v * L, w);
  }
  // steps_per_pass values of k per pass, then the rest one by one (the same operations in the same order either way,
  // so the same bits).
  // The first strip of a panel reads the panel's slice from L3 (a recurrent step's weights, each thread's megabytes
  // read once per step) or L2: the hardware prefetchers left its FMAs waiting on the loads. It asks for the lines
  // kPanelPrefetchSteps values of k ahead (8 did as well, 24 and more less well), those of the NV registers'
  // columns it computes. The same arithmetic.
  constexpr int kPass = Tiling<V>::template steps_per_pass<NV>(), kPanelPrefetchSteps = 16,
                kStepBytes = NV * L * static_cast<int>(sizeof(typename V::T));
  int64_t k = 0;
  for (; k + kPass <= kc; k += kPass) {
    if (prefetch_panel)
      for (int s = 0; s < kPass; ++s)
        for (int b = 0; b < kStepBytes; b += 64)
          __builtin_prefetch(reinterpret_cast<const char*>(panel + (k + s + kPanelPrefetchSteps) * NR) + b, 0, 3);
    micro_kernel_steps<V, MR, NV, kPass, kLayout>(acc, A + k * as_k, as_m, as_k, panel + k * NR);
  }
  for (; k < kc; ++k) micro_kernel_steps<V, MR, NV, 1, kLayout>(acc, A + k * as_k, as_m, as_k, panel + k * NR);
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      const int lanes = width - v * L;
      if (lanes >= L) V::store(C + r * ldc + v * L, acc[r][v]);
      else if (lanes > 0) V::store_partial(C + r * ldc + v * L, acc[r][v], lanes);
    }
}

template <typename V, int MR, int NV, ALayout kLayout>
inline void micro_kernel_upto(int rows, int64_t kc, const typename V::T* A, int64_t as_m, int64_t as_k,
                              const typename V::T* panel, typename V::T* C, int64_t ldc, int width, bool accumulate,
                              const typename V::T* start, bool prefetch_panel) {
  if constexpr (MR > 1) {
    if (rows < MR)
      return micro_kernel_upto<V, MR - 1, NV, kLayout>(rows, kc, A, as_m, as_k, panel, C, ldc, width, accumulate,
                                                       start, prefetch_panel);
  }
  micro_kernel<V, MR, NV, kLayout>(kc, A, as_m, as_k, panel, C, ldc, width, accumulate, start, prefetch_panel);
}

// Asks for the (rows, kNr) tile of C at C in L1, to be written.
template <typename V>
inline void prefetch_tile(const typename V::T* C, int64_t ldc, int64_t rows) {
  constexpr int kBytes = Tiling<V>::kNr * static_cast<int>(sizeof(typename V::T));
  for (int64_t r = 0; r < rows; ++r)
    for (int b = 0; b < kBytes; b += 64) __builtin_prefetch(reinterpret_cast<const char*>(C + r * ldc) + b, 1, 3);
}

// A (mc, kc) block of A -> kMr-row strips, each k-major (kc x kMr values): the layout the micro-kernel reads, one
// stream whatever A's strides, with no cache-set aliasing between A's rows. With row_sums, also
// row_sums[m] += sum over the block's k of A[m, k] (in increasing k): the bias gradients come with the packing.
template <typename V>
void pack_a_block(int64_t mc, int64_t kc, const typename V::T* A, int64_t as_m, int64_t as_k, typename V::T* dst,
                  typename V::T* row_sums) {
  using T = typename V::T;
  constexpr int MR = Tiling<V>::kMr, L = V::kLanes, NV = (MR + L - 1) / L;
  for (int64_t m = 0; m < mc; m += MR) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - m));
    T* strip = dst + m * kc;  // written front to back
    if (as_m == 1) {  // A^T of a row-major matrix: the strip's rows of A are contiguous for each k
      typename V::Reg sums[NV];
      for (int v = 0; v < NV; ++v) sums[v] = V::zero();
      // Whole-register stores (masked stores are slow on some CPUs): the lanes past a k's MR values are overwritten
      // by the next k, or land in the next strip before it is written, or in the buffer's kLanes of slack.
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = A + m + k * as_k;
        for (int v = 0; v < NV; ++v) {
          const int r = v * L, w = std::min(L, rows - r);
          if (w <= 0) break;
          const typename V::Reg a = load_n<V>(src + r, w);
          V::store(strip + k * MR + r, a);
          if (row_sums != nullptr) sums[v] = V::add(sums[v], a);
        }
      }
      if (row_sums != nullptr)
        for (int v = 0; v < NV && v * L < rows; ++v) {
          const int w = std::min(L, rows - v * L);
          store_n<V>(row_sums + m + v * L, V::add(load_n<V>(row_sums + m + v * L, w), sums[v]), w);
        }
    } else {  // row-major A: each row contiguous along k
      for (int r = 0; r < rows; ++r) {
        const T* src = A + (m + r) * as_m;
        T sum = 0;
        for (int64_t k = 0; k < kc; ++k) {
          strip[k * MR + r] = src[k * as_k];
          sum += src[k * as_k];
        }
        if (row_sums != nullptr) row_sums[m + r] += sum;
      }
    }
  }
}

// dst (C, R) = src (R, C)^T, row-major with leading dimensions lds and ldd: blocks of kLanes x kLanes values loaded a
// row of src per register and transposed in registers (Vec::transpose), the last C % kLanes columns of src by partial
// loads, the last R % kLanes rows value by value: from L2 faster than gathering each register of dst from kLanes rows
// of src; from memory the copy is bandwidth-bound either way. A copy: the values do not depend on the ISA.
template <typename V>
void transpose_matrix(int64_t R, int64_t C, const typename V::T* src, int64_t lds, typename V::T* dst, int64_t ldd) {
  constexpr int L = V::kLanes;
  int64_t r0 = 0;
  for (; r0 + L <= R; r0 += L)
    for (int64_t c0 = 0; c0 < C; c0 += L) {
      const int n = static_cast<int>(std::min<int64_t>(L, C - c0));  // rows of dst in this block
      typename V::Reg block[L];
      for (int j = 0; j < L; ++j) block[j] = load_n<V>(src + (r0 + j) * lds + c0, n);
      V::transpose(block);
      for (int j = 0; j < n; ++j) V::store(dst + (c0 + j) * ldd + r0, block[j]);
    }
  for (int64_t c0 = 0; c0 < C; c0 += 64)  // 64 rows of dst at a time, so that their lines stay in L1
    for (int64_t r = r0; r < R; ++r)
      for (int64_t c = c0; c < std::min(C, c0 + 64); ++c) dst[c * ldd + r] = src[r * lds + c];
}

// Rows [k0, k0 + kc) of one panel of W^T, from the `width` <= nr rows of the row-major W that start at `rows` (leading
// dimension ld), into dst (kc x nr values, zero past `width`).
template <typename V>
void pack_panel_transposed(const typename V::T* rows, int64_t ld, int64_t k0, int64_t kc, int width, int64_t nr,
                           typename V::T* dst) {
  transpose_matrix<V>(width, kc, rows + k0, ld, dst, nr);
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t c = width; c < nr; ++c) dst[k * nr + c] = typename V::T(0);
}

// pack_b (packed.h) from a transposed source, W^T for a row-major (N, K) W (a weight as PyTorch stores it): panels
// [p_begin, p_end), each by pack_panel_transposed.
template <typename V>
void pack_b_transposed(const typename V::T* src, int64_t ld, const PackedB<typename V::T>& b, int64_t p_begin,
                       int64_t p_end) {
  for (int64_t p = p_begin; p < p_end; ++p)
    pack_panel_transposed<V>(src + b.col(p) * ld, ld, 0, b.K, b.width(p), b.nr, b.panel(p));
}

// C[:, the columns of panels q0..q1 of blocks g0..g1) [+]= A_block @ B[k0 : k0 + kc, those columns], A_block
// (mc, kc) in kMr-row strips: the strip of rows m.. starts at A + (m / kMr) * strip, and its element (r, k) is at
// r * as_m + k * as_k from there (packed by pack_a_block, or a row-major A read in place). With `start` (a row indexed
// like C's columns), C's rows start from it instead (micro_kernel).
template <typename V, ALayout kLayout>
void gemm_a_block_in(int64_t mc, int64_t kc, const typename V::T* A, int64_t strip, int64_t as_m, int64_t as_k,
                     const PackedB<typename V::T>& B, int64_t k0, int64_t g0, int64_t g1, int64_t q0, int64_t q1,
                     typename V::T* C, int64_t ldc, bool accumulate, const typename V::T* start) {
  using Tl = Tiling<V>;
  const int64_t ppb = B.panels_per_block();
  // Rows read in place end in two strips of about equal height instead of a full one and a few rows (16 rows: 8 + 8,
  // not 12 + 4; 13: 7 + 6): a strip of a few rows has too few accumulators to keep the FMA units busy. Each element's
  // sums are unchanged, so are the bits.
  const int64_t rem = mc % Tl::kMr, tail = mc > Tl::kMr && rem > 0 && rem <= Tl::kMr / 2 ? Tl::kMr + rem : 0;
  auto strip_rows = [&](int64_t m) -> int64_t {
    if (kLayout != ALayout::kRows || tail == 0 || m < mc - tail) return std::min<int64_t>(Tl::kMr, mc - m);
    return m == mc - tail ? (tail + 1) / 2 : mc - m;
  };
  for (int64_t g = g0; g < g1; ++g)
    for (int64_t p = g * ppb + q0; p < g * ppb + q1; ++p) {
      const typename V::T* panel = B.panel(p) + k0 * B.nr;
      typename V::T* Cp = C + B.col(p);
      const int width = B.width(p);
      for (int64_t m = 0, rows = strip_rows(0); m < mc; m += rows, rows = strip_rows(m)) {
        // A product that reads C gets the next tile on its way while this one runs: the micro-kernel's first FMAs
        // wait for their C rows, which for a weight gradient or a k block after the first come from L3 or memory. The
        // same arithmetic.
        if (accumulate && start == nullptr) {
          if (m + rows < mc) prefetch_tile<V>(Cp + (m + rows) * ldc, ldc, strip_rows(m + rows));
          else if (p + 1 < g * ppb + q1) prefetch_tile<V>(C + B.col(p + 1), ldc, strip_rows(0));
        }
        const typename V::T* a = kLayout == ALayout::kRows ? A + m * as_m : A + m / Tl::kMr * strip;
        const typename V::T* row_start = start == nullptr ? nullptr : start + B.col(p);
        if (narrow_panel<V>(width))
          micro_kernel_upto<V, Tl::kMr, 1, kLayout>(static_cast<int>(rows), kc, a, as_m, as_k, panel, Cp + m * ldc,
                                                    ldc, width, accumulate, row_start, m == 0);
        else
          micro_kernel_upto<V, Tl::kMr, Tl::kNrVecs, kLayout>(static_cast<int>(rows), kc, a, as_m, as_k, panel,
                                                              Cp + m * ldc, ldc, width, accumulate, row_start, m == 0);
      }
    }
}

template <typename V>
void gemm_a_block(int64_t mc, int64_t kc, const typename V::T* A, int64_t strip, int64_t as_m, int64_t as_k,
                  const PackedB<typename V::T>& B, int64_t k0, int64_t g0, int64_t g1, int64_t q0, int64_t q1,
                  typename V::T* C, int64_t ldc, bool accumulate, const typename V::T* start = nullptr) {
  if (as_k == 1)
    gemm_a_block_in<V, ALayout::kRows>(mc, kc, A, strip, as_m, as_k, B, k0, g0, g1, q0, q1, C, ldc, accumulate, start);
  else if (as_m == 1 && as_k == Tiling<V>::kMr)
    gemm_a_block_in<V, ALayout::kStrips>(mc, kc, A, strip, as_m, as_k, B, k0, g0, g1, q0, q1, C, ldc, accumulate,
                                         start);
  else
    gemm_a_block_in<V, ALayout::kAny>(mc, kc, A, strip, as_m, as_k, B, k0, g0, g1, q0, q1, C, ldc, accumulate, start);
}

// gemm_a_block for A_block (mc, kc) packed by pack_a_block: kMr-row strips, each k-major.
template <typename V>
void gemm_a_packed(int64_t mc, int64_t kc, const typename V::T* a_packed, const PackedB<typename V::T>& B, int64_t k0,
                   int64_t g0, int64_t g1, int64_t q0, int64_t q1, typename V::T* C, int64_t ldc, bool accumulate) {
  using Tl = Tiling<V>;
  gemm_a_block<V>(mc, kc, a_packed, Tl::kMr * kc, 1, Tl::kMr, B, k0, g0, g1, q0, q1, C, ldc, accumulate);
}

// This thread's buffer number kSlot of at least n values, starting on a cache line (its rows are read and written as
// whole registers: a buffer off the line would split every load of a packed panel's slice in two); kept for the
// thread's next call.
template <typename T, int kSlot>
T* thread_buffer(size_t n) {
  constexpr size_t kLine = 64 / sizeof(T);
  thread_local std::vector<T> buffer;
  if (buffer.size() < n + kLine) buffer.resize(n + kLine);
  const size_t past_line = reinterpret_cast<uintptr_t>(buffer.data()) / sizeof(T) % kLine;
  return buffer.data() + (kLine - past_line) % kLine;
}

// The rows of A (M, K) that gemm_panels and gemm_weight_slices take together: blocks of kMc, where a last block of up
// to a quarter of kMc more rows joins the one before (on its own, a block of a few rows would stream all of B through
// the cache again for little work: a 256-row input projection chunk was 240 + 16 rows).
template <typename V>
constexpr int64_t block_rows_max() {
  return Tiling<V>::kMc + Tiling<V>::kMc / 4;
}

// Goto's loops over A shared by gemm_panels and gemm_weight_slices: for each (mc, kc) block of A, rows m0.. and
// columns k0.., product(m0, mc, k0, kc, a, strip, as_m, as_k, acc) with the block's kMr-row strips at
// a + (m / kMr) * strip and element (r, k) at r * as_m + k * as_k from there; acc: add to C (accumulate, or k0 > 0).
// Row-major A (a step's h_{t-1}, a chunk of inputs) is read in place by the micro-kernel: packing it costs a strided
// gather per call, and the rows are read once per panel either way from
// L1/L2. Only a row stride of a multiple of 4 KiB is packed: its rows would share one L1 cache set.
// With `whole_k` (B's slices may be of any length), rows read in place that take at most an eighth of one core's L2
// in all (a recurrent step's h or pre-activation gradients at batch 16) go in one block of all K: each C tile is then
// loaded and stored once, and each panel streams through once from its prefetched start. The same sums in the same
// order (the micro-kernel carries on from C's partial sums), so the same bits: this may follow the cache sizes.
template <typename V, typename Product>
void for_a_blocks(int64_t M, int64_t K, const typename V::T* A, int64_t as_m, int64_t as_k, bool accumulate,
                  bool whole_k, Product&& product) {
  using Tl = Tiling<V>;
  using T = typename V::T;
  const bool direct = as_k == 1 && !rows_share_cache_sets<T>(as_m);
  const int64_t kc_max =
      direct && whole_k && M * K * static_cast<int64_t>(sizeof(T)) <= cache_sizes().l2 / 8 ? K : Tl::kKc;
  const size_t a_size = static_cast<size_t>(block_rows_max<V>() * Tl::kKc + V::kLanes);
  T* const a_block = direct ? nullptr : thread_buffer<T, 0>(a_size);  // this thread's packed A block
  for (int64_t m0 = 0, mc = 0; m0 < M; m0 += mc) {
    mc = M - m0 <= block_rows_max<V>() ? M - m0 : Tl::kMc;
    for (int64_t k0 = 0; k0 < K; k0 += kc_max) {
      const int64_t kc = std::min(kc_max, K - k0);
      const bool acc = accumulate || k0 > 0;
      if (direct) {
        product(m0, mc, k0, kc, A + m0 * as_m + k0, Tl::kMr * as_m, as_m, int64_t(1), acc);
      } else {
        pack_a_block<V>(mc, kc, A + m0 * as_m + k0 * as_k, as_m, as_k, a_block, nullptr);
        product(m0, mc, k0, kc, static_cast<const T*>(a_block), Tl::kMr * kc, int64_t(1), int64_t(Tl::kMr), acc);
      }
    }
  }
}

// A product with K = 0 at the columns of panels q0..q1 of blocks g0..g1 of B (M rows): C = start (a row indexed like
// C's columns) when given, else C unchanged when accumulating, else 0.
template <typename T>
void start_panel_columns(int64_t M, const PackedB<T>& B, int64_t g0, int64_t g1, int64_t q0, int64_t q1, T* C,
                         int64_t ldc, bool accumulate, const T* start) {
  if (accumulate && start == nullptr) return;
  const int64_t ppb = B.panels_per_block();
  for (int64_t g = g0; g < g1; ++g)
    for (int64_t p = g * ppb + q0; p < g * ppb + q1; ++p)
      for (int64_t m = 0; m < M; ++m) {
        T* row = C + m * ldc + B.col(p);
        if (start == nullptr) std::fill(row, row + B.width(p), T(0));
        else std::copy(start + B.col(p), start + B.col(p) + B.width(p), row);
      }
}

// C[:, the columns of panels q0..q1 of blocks g0..g1) [+]= A (M, K) @ B, B packed (packed.h): for a B of G blocks of
// H columns, columns [q0 * nr, q1 * nr) of each of blocks g0..g1. With `start` (a row indexed like C's columns, e.g.
// the biases), C = start + A @ B in every row instead, without C being read. Goto's blocking: a (kMc, kKc) block of A
// is packed once and reused across all those panels from L2; a (kKc, kNr) slice of a panel is reused across the
// block's rows from L1.
template <typename V>
void gemm_panels(int64_t M, const typename V::T* A, int64_t as_m, int64_t as_k, const PackedB<typename V::T>& B,
                 int64_t g0, int64_t g1, int64_t q0, int64_t q1, typename V::T* C, int64_t ldc, bool accumulate,
                 const typename V::T* start) {
  using T = typename V::T;
  if (M <= 0 || q0 >= q1 || g0 >= g1) return;
  if (B.K == 0) return start_panel_columns(M, B, g0, g1, q0, q1, C, ldc, accumulate, start);
  for_a_blocks<V>(M, B.K, A, as_m, as_k, accumulate, true,
                  [&](int64_t m0, int64_t mc, int64_t k0, int64_t kc, const T* a, int64_t strip, int64_t sm,
                      int64_t sk, bool acc) {
                    gemm_a_block<V>(mc, kc, a, strip, sm, sk, B, k0, g0, g1, q0, q1, C + m0 * ldc, ldc, acc,
                                    k0 == 0 ? start : nullptr);
                  });
}

// gemm_panels for B = W^T, W row-major (N, K) with leading dimension ldw, in the layout `shape` describes (its data
// unused), without packing all of B first: each (kc, nr) slice of a panel is packed into a small buffer just before
// the block's rows use it. For a weight that a call uses for one block of rows (M <= block_rows_max()) or two, as the
// input projection of a sequence of one or two chunks does: packing it whole would write every value to memory and
// read it back for each use. Each block of rows packs
// the slices again. The same products, value for value, as gemm_panels with B packed.
template <typename V>
void gemm_weight_slices(int64_t M, const typename V::T* A, int64_t lda, const typename V::T* W, int64_t ldw,
                        const PackedB<typename V::T>& shape, int64_t g0, int64_t g1, int64_t q0, int64_t q1,
                        typename V::T* C, int64_t ldc, bool accumulate, const typename V::T* start) {
  using T = typename V::T;
  if (M <= 0 || q0 >= q1 || g0 >= g1) return;
  if (shape.K == 0) return start_panel_columns(M, shape, g0, g1, q0, q1, C, ldc, accumulate, start);
  T* const slice = thread_buffer<T, 1>(static_cast<size_t>(Tiling<V>::kKc * shape.nr));  // one panel's (kc, nr) slice
  const int64_t ppb = shape.panels_per_block();
  for_a_blocks<V>(M, shape.K, A, lda, 1, accumulate, false,
                  [&](int64_t m0, int64_t mc, int64_t k0, int64_t kc, const T* a, int64_t strip, int64_t sm,
                      int64_t sk, bool acc) {
                    for (int64_t g = g0; g < g1; ++g)
                      for (int64_t p = g * ppb + q0; p < g * ppb + q1; ++p) {
                        const int width = shape.width(p);
                        pack_panel_transposed<V>(W + shape.col(p) * ldw, ldw, k0, kc, width, shape.nr, slice);
                        PackedB<T> panel;  // the slice as a one-panel B of kc rows
                        panel.data = slice;
                        panel.K = kc;
                        panel.block_cols = width;
                        panel.blocks = 1;
                        panel.nr = shape.nr;
                        gemm_a_block<V>(mc, kc, a, strip, sm, sk, panel, 0, 0, 1, 0, 1, C + m0 * ldc + shape.col(p),
                                        ldc, acc, k0 == 0 && start != nullptr ? start + shape.col(p) : nullptr);
                      }
                  });
}

// W rows per pass of gemm_dot_rows for M rows of A: four, or fewer where the pass's M accumulators per W row, its W
// vectors and the A vector would not all fit in the ISA's vector registers (AVX2's 16 at M = 3 and 4: three rows).
// Spilled accumulators cost more than the A loads that fewer rows per pass repeat; each dot product's sums are the
// same either way.
template <typename V>
constexpr int dot_rows_per_pass(int M) {
  int rows = 4;
  while (rows > 1 && M * rows + rows + 1 > V::kRegisters) --rows;
  return rows;
}

// C (M, n_end - n_begin) at columns [n_begin, n_end) [+]= A (M, K) @ W^T for W row-major (N, K), M <= 4, without
// packing: each output is a dot product of an A row and a W row. For few rows (a single step at batch 1), where
// packing W would cost more than the product. W's rows go in groups of dot_rows_per_pass from n_begin up
// (kDescending: from the last group down), then the last few one by one; a row's arithmetic is the same either way.
// With `start`, C = start[column] + the dot product (what accumulating onto C = start gives), C not read.
template <typename V, int M, bool kDescending>
void gemm_dot_rows(int64_t n_begin, int64_t n_end, int64_t K, const typename V::T* A, int64_t lda,
                   const typename V::T* W, int64_t ldw, typename V::T* C, int64_t ldc, bool accumulate,
                   const typename V::T* start) {
  using Reg = typename V::Reg;
  using T = typename V::T;
  constexpr int L = V::kLanes;
  constexpr int kRows = dot_rows_per_pass<V>(M);  // rows of W per pass: each loaded A vector is used kRows times
  const int64_t groups = (n_end - n_begin) / kRows, singles = n_begin + groups * kRows;
  for (int64_t i = 0; i < groups; ++i) {
    const int64_t n = kDescending ? singles - (i + 1) * kRows : n_begin + i * kRows;
    Reg acc[M][kRows];
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < kRows; ++j) acc[m][j] = V::zero();
    int64_t k = 0;
    for (; k + L <= K; k += L) {
      Reg w[kRows];
      for (int j = 0; j < kRows; ++j) w[j] = V::load(W + (n + j) * ldw + k);
      for (int m = 0; m < M; ++m) {
        const Reg a = V::load(A + m * lda + k);
        for (int j = 0; j < kRows; ++j) acc[m][j] = V::fmadd(a, w[j], acc[m][j]);
      }
    }
    if (k < K) {
      const int rest = static_cast<int>(K - k);
      Reg w[kRows];
      for (int j = 0; j < kRows; ++j) w[j] = V::load_partial(W + (n + j) * ldw + k, rest);
      for (int m = 0; m < M; ++m) {
        const Reg a = V::load_partial(A + m * lda + k, rest);
        for (int j = 0; j < kRows; ++j) acc[m][j] = V::fmadd(a, w[j], acc[m][j]);
      }
    }
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < kRows; ++j) {
        const T s = V::reduce_add(acc[m][j]);
        C[m * ldc + n + j] = start != nullptr ? start[n + j] + s : accumulate ? C[m * ldc + n + j] + s : s;
      }
  }
  for (int64_t n = singles; n < n_end; ++n) {
    Reg acc[M];
    for (int m = 0; m < M; ++m) acc[m] = V::zero();
    int64_t k = 0;
    for (; k + L <= K; k += L) {
      const Reg w = V::load(W + n * ldw + k);
      for (int m = 0; m < M; ++m) acc[m] = V::fmadd(V::load(A + m * lda + k), w, acc[m]);
    }
    if (k < K) {
      const int rest = static_cast<int>(K - k);
      const Reg w = V::load_partial(W + n * ldw + k, rest);
      for (int m = 0; m < M; ++m) acc[m] = V::fmadd(V::load_partial(A + m * lda + k, rest), w, acc[m]);
    }
    for (int m = 0; m < M; ++m) {
      const T s = V::reduce_add(acc[m]);
      C[m * ldc + n] = start != nullptr ? start[n] + s : accumulate ? C[m * ldc + n] + s : s;
    }
  }
}

// The direction is a template argument, so that each gemm_dot_rows has one call site and the ascending one compiles
// as it did before there was a direction (the direction as a run-time argument slowed single steps at batch 1).
template <typename V, bool kDescending>
void gemm_dot_in(int64_t M, int64_t n_begin, int64_t n_end, int64_t K, const typename V::T* A, int64_t lda,
                 const typename V::T* W, int64_t ldw, typename V::T* C, int64_t ldc, bool accumulate,
                 const typename V::T* start) {
  for (int64_t m = 0; m < M; m += 4) {
    const auto* a = A + m * lda;
    auto* c = C + m * ldc;
    switch (std::min<int64_t>(4, M - m)) {
      case 1: gemm_dot_rows<V, 1, kDescending>(n_begin, n_end, K, a, lda, W, ldw, c, ldc, accumulate, start); break;
      case 2: gemm_dot_rows<V, 2, kDescending>(n_begin, n_end, K, a, lda, W, ldw, c, ldc, accumulate, start); break;
      case 3: gemm_dot_rows<V, 3, kDescending>(n_begin, n_end, K, a, lda, W, ldw, c, ldc, accumulate, start); break;
      default: gemm_dot_rows<V, 4, kDescending>(n_begin, n_end, K, a, lda, W, ldw, c, ldc, accumulate, start); break;
    }
  }
}

template <typename V>
void gemm_dot(int64_t M, int64_t n_begin, int64_t n_end, int64_t K, const typename V::T* A, int64_t lda,
              const typename V::T* W, int64_t ldw, typename V::T* C, int64_t ldc, bool accumulate, bool descending,
              const typename V::T* start) {
  if (descending) gemm_dot_in<V, true>(M, n_begin, n_end, K, A, lda, W, ldw, C, ldc, accumulate, start);
  else gemm_dot_in<V, false>(M, n_begin, n_end, K, A, lda, W, ldw, C, ldc, accumulate, start);
}

// C[:, n .. n + width) [+]= A (M, K) @ B[:, n .. n + width), B row-major with leading dimension ldb, read in place:
// each row k of the block, loaded once, is scaled by A[m, k] and added into register accumulators, kCols vectors per
// row of A (the last `width - (kCols - 1) * L` lanes wide when kPartial) and kSplit of each: accumulator s takes the
// rows k = s, s + kSplit, ... (more independent FMA chains for narrow blocks), and they are added up at the end, the
// first to the last. The arithmetic of an element depends on M only, not on the block it falls in. With `start`,
// C = start[column] + the sum.
template <typename V, int M, int kCols, int kSplit, bool kPartial>
void gemm_axpy_block(int64_t n, int64_t width, int64_t K, const typename V::T* A, int64_t lda,
                     const typename V::T* B, int64_t ldb, typename V::T* C, int64_t ldc, bool accumulate,
                     const typename V::T* start) {
  using Reg = typename V::Reg;
  constexpr int L = V::kLanes;
  const int last = kPartial ? static_cast<int>(width - (kCols - 1) * L) : L;
  Reg acc[kSplit][M][kCols];
  for (int p = 0; p < kSplit; ++p)
    for (int m = 0; m < M; ++m)
      for (int c = 0; c < kCols; ++c) acc[p][m][c] = V::zero();
  const typename V::T* b = B + n;
  auto row = [&](int p, int64_t k) {
    Reg a[M];
    for (int m = 0; m < M; ++m) a[m] = V::set1(A[m * lda + k]);
    const typename V::T* bk = b + k * ldb;
    for (int c = 0; c < kCols; ++c) {
      const Reg w = kPartial && c == kCols - 1 ? V::load_partial(bk + c * L, last) : V::load(bk + c * L);
      for (int m = 0; m < M; ++m) acc[p][m][c] = V::fmadd(a[m], w, acc[p][m][c]);
    }
  };
  int64_t k = 0;
  for (; k + kSplit <= K; k += kSplit)
    for (int p = 0; p < kSplit; ++p) row(p, k + p);
  for (int p = 0; k < K; ++k, ++p) row(p, k);
  for (int m = 0; m < M; ++m)
    for (int c = 0; c < kCols; ++c) {
      const int lanes = kPartial && c == kCols - 1 ? last : L;
      typename V::T* out = C + m * ldc + n + c * L;
      Reg r = acc[0][m][c];
      for (int p = 1; p < kSplit; ++p) r = V::add(r, acc[p][m][c]);
      if (start != nullptr) r = V::add(V::load_partial(start + n + c * L, lanes), r);
      else if (accumulate) r = V::add(V::load_partial(out, lanes), r);
      if (lanes == L) V::store(out, r);
      else V::store_partial(out, r, lanes);
    }
}

// gemm_axpy's blocks for M rows of A: kSplit accumulators per output vector (two for one or two rows, whose blocks
// have few chains otherwise), and as many vectors per row (kCols) as the registers hold beside them, A's broadcasts
// and a loaded row (32 registers with AVX-512, 16 otherwise), at most 8.
template <typename V, int M>
struct AxpyTiling {
  static constexpr int kRegs = sizeof(typename V::Reg) == 64 ? 32 : 16;
  static constexpr int kSplit = M <= 2 ? 2 : 1;
  static constexpr int kCols = std::max(1, std::min(8, (kRegs - M - 2) / (M * kSplit + 1)));
};

// gemm_axpy_block for a last block of `vectors` vectors (1 to kCols), the last of them partial.
template <typename V, int M, int kCols, int kSplit>
void gemm_axpy_tail(int vectors, int64_t n, int64_t width, int64_t K, const typename V::T* A, int64_t lda,
                    const typename V::T* B, int64_t ldb, typename V::T* C, int64_t ldc, bool accumulate,
                    const typename V::T* start) {
  if constexpr (kCols > 1) {
    if (vectors < kCols)
      return gemm_axpy_tail<V, M, kCols - 1, kSplit>(vectors, n, width, K, A, lda, B, ldb, C, ldc, accumulate, start);
  }
  gemm_axpy_block<V, M, kCols, kSplit, true>(n, width, K, A, lda, B, ldb, C, ldc, accumulate, start);
}

template <typename V, int M>
void gemm_axpy_rows(int64_t n_begin, int64_t n_end, int64_t K, const typename V::T* A, int64_t lda,
                    const typename V::T* B, int64_t ldb, typename V::T* C, int64_t ldc, bool accumulate,
                    bool descending, const typename V::T* start) {
  constexpr int L = V::kLanes, kCols = AxpyTiling<V, M>::kCols, kSplit = AxpyTiling<V, M>::kSplit;
  constexpr int kBlock = kCols * L;
  const int64_t full = (n_end - n_begin) / kBlock, tail = n_end - n_begin - full * kBlock;
  auto full_block = [&](int64_t i) {
    gemm_axpy_block<V, M, kCols, kSplit, false>(n_begin + i * kBlock, kBlock, K, A, lda, B, ldb, C, ldc, accumulate,
                                                start);
  };
  // The last, narrower block: as many vectors as it needs, the last of them partial.
  auto tail_block = [&] {
    if (tail > 0)
      gemm_axpy_tail<V, M, kCols, kSplit>(static_cast<int>((tail + L - 1) / L), n_begin + full * kBlock, tail, K, A,
                                          lda, B, ldb, C, ldc, accumulate, start);
  };
  if (descending) {
    tail_block();
    for (int64_t i = full - 1; i >= 0; --i) full_block(i);
  } else {
    for (int64_t i = 0; i < full; ++i) full_block(i);
    tail_block();
  }
}

// C[:, n_begin..n_end) [+]= A (M, K) @ B[:, n_begin..n_end), B row-major (K, N) read in place (no packing, no
// transposing): the product of a few rows (M of 1-4 at a time) with a weight as it is stored. Each element of C sums
// over k in an order that depends on M alone, so any split of the columns between threads or work items gives the
// same bits; blocks of columns from the last to the first when `descending` (Rounds: the same values either way).
template <typename V>
void gemm_axpy(int64_t M, int64_t n_begin, int64_t n_end, int64_t K, const typename V::T* A, int64_t lda,
               const typename V::T* B, int64_t ldb, typename V::T* C, int64_t ldc, bool accumulate, bool descending,
               const typename V::T* start) {
  for (int64_t m = 0; m < M; m += 4) {
    const auto* a = A + m * lda;
    auto* c = C + m * ldc;
    switch (std::min<int64_t>(4, M - m)) {
      case 1: gemm_axpy_rows<V, 1>(n_begin, n_end, K, a, lda, B, ldb, c, ldc, accumulate, descending, start); break;
      case 2: gemm_axpy_rows<V, 2>(n_begin, n_end, K, a, lda, B, ldb, c, ldc, accumulate, descending, start); break;
      case 3: gemm_axpy_rows<V, 3>(n_begin, n_end, K, a, lda, B, ldb, c, ldc, accumulate, descending, start); break;
      default: gemm_axpy_rows<V, 4>(n_begin, n_end, K, a, lda, B, ldb, c, ldc, accumulate, descending, start); break;
    }
  }
}

}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm

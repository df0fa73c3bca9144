// Lower bounds for the suite cases that miss a target (bench/floors.py builds and runs this; see bench/README.md).
// Each measurement does only the memory traffic and arithmetic that a case's time loop cannot avoid, with the
// library's own kernels (gemm_dot, gemm_panels, the LSTM's units.forward) on two threads, each on its own half of the
// weights as in the loops, with denormals flushed as in the library (DenormalsAreZero). Nothing here is part of the
// library.
//
//   floors lockstep H STEPS        batch-1 LSTM loop, H units: each thread its half of the units' four gate rows of
//                                  W_hh (dots), then their gate math. Prints µs a step for one thread alone, two
//                                  threads running free (each its own h), and two in lock step (a shared h, a spin
//                                  barrier per step).
//   floors dots ROWS K M PASSES    each thread reads its ROWS/2 x K half of a weight by dot products against M rows,
//                                  alternating sweeps as the loops do. Prints µs a pass (median).
//   floors panels M N K STEPS      each thread multiplies M rows of A (K wide) by its own packed K x N/2 slice; A is
//                                  shared and each step both threads rewrite their half of its columns before a
//                                  barrier, as a step's outputs are the next step's input. Prints µs a step.
//   floors extras B H T            what an LSTM training call (batch B, I = H, T steps) does besides its GEMMs, as the
//                                  library does it, each thread on its half: preparing the weights once per call
//                                  (B > 4: W_hh packed transposed for the forward, W_hh and W_ih packed as they are
//                                  for the backward's products; B <= 4: W_ih packed for dx, and W_hh transposed for
//                                  the backward's dot products where the library transposes it, BackwardWeight::
//                                  transposes), then the gate math of the T steps forward (saved gates written) and
//                                  backward. Prints ms for the three (medians).
//   floors prepare B H T GATES     extras' first figure alone, for a cell of GATES gate blocks (1: the RNN, 3: the
//                                  GRU, 4: the LSTM): the weights' preparation of its training call. Prints ms.
//   floors gemms B I H T [GATES]   the GEMMs of a training call (batch B, input I, H units, T steps) of a cell of
//                                  GATES gate blocks (default 4, the LSTM) with the library's own gemm and
//                                  weight_gradients, each alone on the library's threads: the input projection (T*B x I
//                                  against W_ih^T), dx (T*B x GATES*H against W_ih) and the weight and bias gradients
//                                  (dW_ih, dW_hh and db from one pass over dpre). Prints ms for the three (medians).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>
//   floors fma                     the cores' arithmetic peak: two threads, each running 24 independent chains of
//                                  512-bit (AVX-512; else 256-bit AVX2) fused multiply-adds on registers, no memory.
//                                  Prints GFLOP/s (float32, both threads, the median of 7 runs; 0 without AVX2): no
//                                  float32 product can run faster on these cores.

#include <immintrin.h>
#include <omp.h>
#include <xmmintrin.h>

#include "cells/lstm/units.h"
#include "primitives/cpu.h"
#include "primitives/gemm.h"
#include "primitives/ops.h"
#include "primitives/packed.h"
#include "sequence/weight_access.h"
// bench/floors.py builds this program with csrc/primitives' sources; the LSTM's unit updates, which it also measures,
// are compiled in their own file, included here.
#include "cells/lstm/units.cpp"

using namespace pylstm;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

float* aligned_floats(int64_t n, float value) {
  const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  std::fill(p, p + n, value);
  return p;
}

void random_fill(float* p, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(rand() % 1000 - 500) * scale;
}

// Spin barrier over a shared counter: each thread adds one per step and waits for all.
struct SpinBarrier {
  alignas(64) std::atomic<int64_t> arrived{0};
  void wait(int64_t step, int threads) {
    arrived.fetch_add(1, std::memory_order_acq_rel);
    while (arrived.load(std::memory_order_acquire) < (step + 1) * threads) _mm_pause();
  }
};

// mode 0: one thread alone, 1: two free, 2: two in lock step. Returns µs a step (median of 21 runs).
double lockstep(int64_t H, int64_t steps, int mode) {
  const Ops<float>& kernels = ops<float>();
  const int64_t G = 4 * H, K = H, threads = mode == 0 ? 1 : 2;
  float* w = aligned_floats(G * K, 0.f);
  random_fill(w, G * K, 0.008f / 500);
  float* hs = aligned_floats(2 * (steps + 1) * H, 0.1f);  // h of every step; a second copy for free threads
  std::vector<double> times;
  for (int run = 0; run < 21; ++run) {
    SpinBarrier barrier;
    const double t0 = now();
#pragma omp parallel num_threads(threads)
    {
      DenormalsAreZero daz;
      const int me = omp_get_thread_num();
      const int64_t j0 = H / 2 * me, j1 = j0 + H / 2;
      std::vector<float> pre(G), c(H, 0.f), c_next(H);
      float* h = hs + (mode == 1 ? me : 0) * (steps + 1) * H;
      for (int64_t t = 0; t < steps; ++t) {
        const bool down = t & 1;
        for (int i = 0; i < 4; ++i) {
          const int g = down ? 3 - i : i;
          kernels.gemm_dot(1, g * H + j0, g * H + j1, K, h + t * H, K, w, K, pre.data(), G, false, down, nullptr);
        }
        lstm_units<float>().forward(j1 - j0, H, pre.data() + j0, c.data() + j0, c_next.data() + j0,
                                    h + (t + 1) * H + j0, Peepholes<float>{}, nullptr, false);
        std::swap(c, c_next);
        if (mode == 2) barrier.wait(t, 2);
      }
    }
    times.push_back((now() - t0) / steps * 1e6);
  }
  std::free(w);
  std::free(hs);
  return median(times);
}

double dots(int64_t rows, int64_t K, int64_t M, int passes) {
  const Ops<float>& kernels = ops<float>();
  std::vector<double> times;
  float* w = aligned_floats(rows * K, 0.f);
  random_fill(w, rows * K, 1e-3f);
  float* a = aligned_floats(M * K, 0.5f);
  float* c = aligned_floats(M * rows, 0.f);
  SpinBarrier barrier;
#pragma omp parallel num_threads(2)
  {
    DenormalsAreZero daz;
    const int me = omp_get_thread_num();
    const int64_t r0 = rows / 2 * me, r1 = me == 0 ? rows / 2 : rows;
    for (int p = 0; p < passes; ++p) {
      barrier.wait(2 * p, 2);
      const double t0 = now();
      kernels.gemm_dot(M, r0, r1, K, a, K, w, K, c, rows, false, p & 1, nullptr);
      barrier.wait(2 * p + 1, 2);
      if (me == 0 && p >= 2) times.push_back((now() - t0) * 1e6);
    }
  }
  std::free(w);
  std::free(a);
  std::free(c);
  return median(times);
}

double panels(int64_t M, int64_t N, int64_t K, int64_t steps) {
  const Ops<float>& kernels = ops<float>();
  const int64_t lda = K + 16;  // the library's unaliased row stride
  float* a = aligned_floats(M * lda, 0.01f);
  std::vector<double> times;
  SpinBarrier barrier;
#pragma omp parallel num_threads(2)
  {
    DenormalsAreZero daz;
    const int me = omp_get_thread_num();
    PackedB<float> b;
    b.K = K;
    b.block_cols = N / 2;
    b.blocks = 1;
    b.nr = kernels.nr;
    float* w = aligned_floats(K * (N / 2), 0.f);
    random_fill(w, K * (N / 2), 1e-3f);
    b.data = aligned_floats(b.size(), 0.f);
    pack_b(w, N / 2, b, 0, b.panels());
    float* c = aligned_floats(M * (N / 2), 0.f);
    const int64_t k0 = K / 2 * me, k1 = me == 0 ? K / 2 : K, items = 4, P = b.panels();
    int64_t step = 0;
    for (int run = 0; run < 5; ++run) {
      barrier.wait(step++, 2);
      const double t0 = now();
      for (int64_t t = 0; t < steps; ++t) {
        for (int64_t i = 0; i < items; ++i)
          kernels.gemm_panels(M, a, lda, 1, b, 0, 1, P * i / items, P * (i + 1) / items, c, N / 2, false, nullptr);
        for (int64_t r = 0; r < M; ++r)
          for (int64_t k = k0; k < k1; ++k) a[r * lda + k] = 0.01f * static_cast<float>(t & 7);
        barrier.wait(step++, 2);
      }
      if (me == 0) times.push_back((now() - t0) / steps * 1e6);
    }
    std::free(w);
    std::free(b.data);
    std::free(c);
  }
  std::free(a);
  return median(times);
}

// Packed weights in the library's layout: K rows, `blocks` blocks of `cols` columns, this ISA's panel width.
PackedB<float> packed_layout(int64_t K, int64_t cols, int64_t blocks) {
  PackedB<float> b;
  b.K = K;
  b.block_cols = cols;
  b.blocks = blocks;
  b.nr = ops<float>().nr;
  b.data = aligned_floats(b.size(), 0.f);
  return b;
}

// What a training call (batch B, T steps) of a cell with `gates` gate blocks of H units (I = H) prepares of its
// weights once per call, as the library does it, each of two threads its half (run(me)): B > 4, W_hh packed
// transposed for the forward and W_hh and W_ih packed as they are for the backward's products; B <= 4, W_ih packed
// for dx, and W_hh transposed for the backward's dot products where the library transposes it
// (BackwardWeight::transposes; else W_hh is read in place: nothing to prepare).
struct Preparation {
  int64_t B, T, H, G;
  float* w_hh;
  float* w_ih;
  float* transposed;
  PackedB<float> forward, backward, dx;

  Preparation(int64_t b, int64_t t, int64_t h, int64_t gates)
      : B(b), T(t), H(h), G(gates * h), w_hh(aligned_floats(G * H, 0.f)), w_ih(aligned_floats(G * H, 0.f)),
        transposed(aligned_floats(H * G, 0.f)), forward(packed_layout(H, H, gates)), backward(packed_layout(G, H, 1)),
        dx(packed_layout(G, H, 1)) {
    random_fill(w_hh, G * H, 1e-4f);
    random_fill(w_ih, G * H, 1e-4f);
  }
  ~Preparation() {
    for (float* p : {w_hh, w_ih, transposed, forward.data, backward.data, dx.data}) std::free(p);
  }
  Preparation(const Preparation&) = delete;
  Preparation& operator=(const Preparation&) = delete;

  void run(int me) const {
    const Ops<float>& kernels = ops<float>();
    auto half = [&](int64_t n) { return std::pair<int64_t, int64_t>{n * me / 2, n * (me + 1) / 2}; };
    if (B > 4) {
      const auto [f0, f1] = half(forward.panels());
      kernels.pack_b_transposed(w_hh, H, forward, f0, f1);
      const auto [b0, b1] = half(backward.panels());
      pack_b(w_hh, H, backward, b0, b1);
    } else if (BackwardWeight<float>::transposes(B, T, G * H * int64_t(sizeof(float)))) {
      const auto [j0, j1] = half(H);
      kernels.transpose(G, j1 - j0, w_hh + j0, H, transposed + j0 * G, G);
    }
    const auto [d0, d1] = half(dx.panels());
    pack_b(w_ih, H, dx, d0, d1);
  }
};

// ms of a Preparation on two threads (the median of 11 runs).
double prepare(int64_t B, int64_t H, int64_t T, int64_t gates) {
  const Preparation weights(B, T, H, gates);
  std::vector<double> times;
  for (int run = 0; run < 11; ++run) {
    SpinBarrier barrier;
    double t0 = 0;
#pragma omp parallel num_threads(2)
    {
      DenormalsAreZero daz;
      const int me = omp_get_thread_num();
      barrier.wait(0, 2);
      if (me == 0) t0 = now();
      weights.run(me);
      barrier.wait(1, 2);
      if (me == 0) times.push_back((now() - t0) * 1e3);
    }
  }
  return median(times);
}

void extras(int64_t B, int64_t H, int64_t T, double* prepare_ms, double* forward_ms, double* backward_ms) {
  const int64_t G = 4 * H, R = T * B, ldp = G + 16;  // ldp: the library's unaliased stride for dpre
  const Preparation weights(B, T, H, 4);
  float* pre = aligned_floats(R * G, 0.f);
  random_fill(pre, R * G, 2e-3f);
  float* gates = aligned_floats(R * G, 0.f);
  float* cells = aligned_floats((R + B) * H, 0.f);  // c_{-1} = 0 first, then every step's c
  float* hs = aligned_floats(R * H, 0.f);
  float* dout = aligned_floats(R * H, 0.f);
  random_fill(dout, R * H, 1e-3f);
  float* dh = aligned_floats(B * H, 0.f);
  float* dc = aligned_floats(B * H, 0.f);
  float* dpre = aligned_floats(R * ldp, 0.f);
  std::vector<double> prepare, forward_math, backward_math;
  for (int run = 0; run < 11; ++run) {
    SpinBarrier barrier;
    double t0 = 0, t1 = 0, t2 = 0, t3 = 0;
#pragma omp parallel num_threads(2)
    {
      DenormalsAreZero daz;
      const int me = omp_get_thread_num();
      int64_t step = 0;
      barrier.wait(step++, 2);
      if (me == 0) t0 = now();
      weights.run(me);
      barrier.wait(step++, 2);
      if (me == 0) t1 = now();
      const int64_t j0 = H * me / 2, j1 = H * (me + 1) / 2;
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t b = 0; b < B; ++b) {
          const int64_t row = t * B + b;
          lstm_units<float>().forward(j1 - j0, H, pre + row * G + j0, cells + row * H + j0, cells + (row + B) * H + j0,
                                      hs + row * H + j0, Peepholes<float>{}, gates + row * G + j0, false);
        }
      }
      barrier.wait(step++, 2);  // (none per step: the floor's step products have theirs)
      if (me == 0) t2 = now();
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t b = 0; b < B; ++b) {
          const int64_t row = t * B + b;
          lstm_units<float>().backward(j1 - j0, H, gates + row * G + j0, cells + (row + B) * H + j0,
                                       cells + row * H + j0, dout + row * H + j0, dh + b * H + j0, dc + b * H + j0,
                                       dpre + row * ldp + j0, Peepholes<float>{}, nullptr, false);
        }
      }
      barrier.wait(step++, 2);
      if (me == 0) t3 = now();
    }
    prepare.push_back((t1 - t0) * 1e3);
    forward_math.push_back((t2 - t1) * 1e3);
    backward_math.push_back((t3 - t2) * 1e3);
  }
  for (float* p : {pre, gates, cells, hs, dout, dh, dc, dpre}) std::free(p);
  *prepare_ms = median(prepare);
  *forward_ms = median(forward_math);
  *backward_ms = median(backward_math);
}

void gemms(int64_t B, int64_t I, int64_t H, int64_t T, int64_t gates, double* projection_ms, double* dx_ms,
           double* grads_ms) {
  const int64_t G = gates * H, R = T * B, ldp = G + 16;  // ldp: the library's unaliased stride for dpre
  float* x = aligned_floats(R * I, 0.f);
  float* hs = aligned_floats((R + B) * H, 0.f);  // h0 then every step's h: the previous states of dW_hh
  float* w_ih = aligned_floats(G * I, 0.f);
  float* pre = aligned_floats(R * G, 0.f);
  float* dpre = aligned_floats(R * ldp, 0.f);
  float* dx = aligned_floats(R * I, 0.f);
  float* dw_ih = aligned_floats(G * I, 0.f);
  float* dw_hh = aligned_floats(G * H, 0.f);
  float* db = aligned_floats(G, 0.f);
  random_fill(x, R * I, 1e-3f);
  random_fill(hs, (R + B) * H, 1e-3f);
  random_fill(w_ih, G * I, 1e-4f);
  random_fill(dpre, R * ldp, 1e-3f);
  const GradTerm<float> terms[] = {{x, R, nullptr, I, 0, G, dw_ih, I}, {hs, R, nullptr, H, 0, G, dw_hh, H}};
  std::vector<double> projection, input_grad, grads;
  const Ops<float>& kernels = ops<float>();
  for (int run = 0; run < 21; ++run) {
    const double t0 = now();
    gemm(kernels, R, G, I, x, I, int64_t(1), w_ih, I, true, pre, G, false);
    const double t1 = now();
    gemm(kernels, R, I, G, dpre, ldp, int64_t(1), w_ih, I, false, dx, I, false);
    const double t2 = now();
    weight_gradients(kernels, G, R, dpre, ldp, terms, 2, db, static_cast<float*>(nullptr));
    const double t3 = now();
    projection.push_back((t1 - t0) * 1e3);
    input_grad.push_back((t2 - t1) * 1e3);
    grads.push_back((t3 - t2) * 1e3);
  }
  for (float* p : {x, hs, w_ih, pre, dpre, dx, dw_ih, dw_hh, db}) std::free(p);
  *projection_ms = median(projection);
  *dx_ms = median(input_grad);
  *grads_ms = median(grads);
}

// One thread's kChains independent FMA chains (float32) of `iters` steps each, in registers, per ISA; returns their
// sum, so that the chains' results are used. Timed by fma_gflops.
template <int kChains>
__attribute__((target("avx512f"))) float fma_chains_avx512(int64_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1e-3f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
  for (int64_t n = 0; n < iters; ++n) {
#pragma GCC unroll 32
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);  // unrolled: acc stays in registers
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return _mm512_reduce_add_ps(acc[0]);
}
template <int kChains>
__attribute__((target("avx2,fma"))) float fma_chains_avx2(int64_t iters) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(1e-3f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-4f);
  for (int64_t n = 0; n < iters; ++n) {
#pragma GCC unroll 32
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  return _mm_cvtss_f32(_mm256_castps256_ps128(acc[0]));
}

// GFLOP/s of one thread running chains(iters), which does `lanes` multiply-adds per step.
template <typename Chains>
double fma_gflops(Chains chains, int lanes, int64_t iters) {
  const double t0 = now();
  volatile float keep = chains(iters);
  (void)keep;
  return 2.0 * lanes * static_cast<double>(iters) / (now() - t0) / 1e9;
}

// Two threads' FMA rates added up, the median of 7 runs of ~0.1 s, on the active ISA's registers (AVX-512, else AVX2).
double fma_peak() {
  const bool avx512 = active_isa() == Isa::kAvx512;
  if (!avx512 && active_isa() != Isa::kAvx2) return 0;  // no vector FMAs to measure
  std::vector<double> rates;
  for (int run = 0; run < 7; ++run) {
    double total = 0;
#pragma omp parallel num_threads(2) reduction(+ : total)
    total += avx512 ? fma_gflops(fma_chains_avx512<24>, 16 * 24, int64_t(1) << 21)
                    : fma_gflops(fma_chains_avx2<12>, 8 * 12, int64_t(1) << 22);
    rates.push_back(total);
  }
  return median(rates);
}

int usage() {
  std::fprintf(stderr,
               "usage: floors lockstep H STEPS | dots ROWS K M PASSES | panels M N K STEPS | extras B H T | "
               "prepare B H T GATES | gemms B I H T [GATES] | fma\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string cmd = argv[1];
  // The library's own choice of ISA, so that an AVX-512 machine can measure the AVX2 path's floors too.
  if (const char* isa = std::getenv("PYLSTM_ISA")) {
    try {
      set_active_isa(isa);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "PYLSTM_ISA=%s: %s\n", isa, e.what());
      return 2;
    }
  }
  auto arg = [&](int i) { return std::atol(argv[i]); };
  if (cmd == "lockstep" && argc == 4) {
    std::printf("%.3f %.3f %.3f\n", lockstep(arg(2), arg(3), 0), lockstep(arg(2), arg(3), 1),
                lockstep(arg(2), arg(3), 2));
  } else if (cmd == "fma" && argc == 2) {
    std::printf("%.1f\n", fma_peak());
  } else if (cmd == "dots" && argc == 6) {
    std::printf("%.3f\n", dots(arg(2), arg(3), arg(4), static_cast<int>(arg(5))));
  } else if (cmd == "panels" && argc == 6) {
    std::printf("%.3f\n", panels(arg(2), arg(3), arg(4), arg(5)));
  } else if (cmd == "extras" && argc == 5) {
    double prepare = 0, forward = 0, backward = 0;
    extras(arg(2), arg(3), arg(4), &prepare, &forward, &backward);
    std::printf("%.4f %.4f %.4f\n", prepare, forward, backward);
  } else if (cmd == "prepare" && argc == 6 && arg(5) >= 1) {
    std::printf("%.4f\n", prepare(arg(2), arg(3), arg(4), arg(5)));
  } else if (cmd == "gemms" && (argc == 6 || (argc == 7 && arg(6) >= 1))) {
    double projection = 0, dx = 0, grads = 0;
    gemms(arg(2), arg(3), arg(4), arg(5), argc == 7 ? arg(6) : 4, &projection, &dx, &grads);
    std::printf("%.4f %.4f %.4f\n", projection, dx, grads);
  } else {
    return usage();
  }
  return 0;
}

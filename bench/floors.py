"""Lower bounds for the suite cases that miss a target: what their time loops cannot avoid on this machine.

    python bench/floors.py            # builds bench/floors/floors.cpp against csrc/primitives (g++, OpenMP), runs it
    PYLSTM_ISA=avx2 python bench/floors.py   # the AVX2 path's floors (and pylstm's timings) on an AVX-512 machine

Each floor adds up the parts of a case that no schedule removes, each measured alone on two threads with the
library's own kernels (bench/floors/floors.cpp), and the case's GEMMs at NumPy's matmul rate measured in the same run,
or, for the input projections of GRU 1,1024,1024,300 and LSTM 4,1024,1024,25 and for LSTM 16,512,512,25's GEMMs, at
the library's own rate at their shapes where that was faster (a floor must not count a GEMM slower than the library
runs it):

- batch-1 loops: per step, each core reads its half of W_hh from its L2 with dot products and the two exchange h
  (two threads in lock step, a spin barrier a step);
- single steps: the weights, read once, half on each core;
- batch-1 loops whose weights outgrow the two L2 caches (GRU 1,1024,1024,300): per step, each core reads its half of
  W_hh by dot products, sweeping up and down on alternate steps as the library does;
- batch-4 and batch-16 loops: per step, each core streams its half of W_hh (from L3 when it outgrows L2).

Gate math, packing and scheduling are left out, so each floor is optimistic: a case at its floor would spend nothing
on them. For the three training cases the floors do not exclude (LSTM 1,256,256,150, LSTM 16,512,512,25 and RNN
16,1760,1760,50), a second figure adds what the library's design asks of every call besides (weights prepared once
per call, as parameters may change between calls) and, for the LSTMs, the gate math the first leaves out, each timed
alone with the library's own routines on two threads. A third figure for LSTM 1,256,256,150 training counts its GEMMs
(input projection, dx, weight gradients) at the best rate that the library, NumPy or torch reaches at the GEMMs' own
shapes instead of the 2048^3 matmul's. For LSTM 1,256,256,150 and RNN 16,1760,1760,50 training the same run times
pylstm and torch on the case itself, so that floor, target and result come from one run; for LSTM 16,512,512,25
training the pieces and the matmul are also timed in pairs, one right after the other (a percentage of a peak
measured at another moment moves with the machine). LSTM 64,512,512,100 inference, a case of GEMMs, gets the
roofline floor: its arithmetic at the cores' FMA peak (floors.cpp `fma`, two threads of register-only FMAs), beside
pylstm's and ONNX Runtime's times on the case in the same run. Prints one line per case (more for those four): its
floor and what the pieces took.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common as C  # noqa: E402
from report import matmul_gflops  # noqa: E402  (the suite's peak, measured the same way)


def build(out_dir):
    sources = [ROOT / "bench" / "floors" / "floors.cpp", *sorted((ROOT / "csrc" / "primitives").glob("*.cpp"))]
    exe = Path(out_dir, "floors")
    cmd = [os.environ.get("CXX", "g++"), "-O3", "-std=c++17", "-fopenmp", f"-I{ROOT / 'csrc'}", "-o", str(exe),
           *map(str, sources)]
    subprocess.run(cmd, check=True)
    return exe


def run(exe, *args):
    out = subprocess.run([str(exe), *map(str, args)], check=True, capture_output=True, text=True).stdout
    return [float(v) for v in out.split()]


def median_ms(fn, calls):
    fn()
    return C.block_median(fn, calls) * 1e3


def gemms_elsewhere(B, I, H, T, calls=100):
    """ms (projection, dx, weight and bias gradients) of an LSTM training call's GEMMs with NumPy, and with torch when
    it is installed, each the better of the two: as gemms in floors.cpp, but the NumPy weight gradients overwrite
    instead of adding (one pass less over them: an optimistic time)."""
    rng = np.random.default_rng(0)
    R, G = T * B, 4 * H
    x, h = rng.standard_normal((R, I), dtype=np.float32), rng.standard_normal((R, H), dtype=np.float32)
    w_ih, dpre = rng.standard_normal((G, I), dtype=np.float32), rng.standard_normal((R, G), dtype=np.float32)
    pre, dx = np.empty((R, G), np.float32), np.empty((R, I), np.float32)
    dw_ih, dw_hh = np.empty((G, I), np.float32), np.empty((G, H), np.float32)

    def numpy_grads():
        np.matmul(dpre.T, x, out=dw_ih)
        np.matmul(dpre.T, h, out=dw_hh)
        dpre.sum(0)

    times = [[median_ms(lambda: np.matmul(x, w_ih.T, out=pre), calls)],
             [median_ms(lambda: np.matmul(dpre, w_ih, out=dx), calls)], [median_ms(numpy_grads, calls)]]
    if C.have_torch():
        import torch
        x, h, w_ih, dpre, pre, dx, dw_ih, dw_hh = map(torch.from_numpy, (x, h, w_ih, dpre, pre, dx, dw_ih, dw_hh))
        times[0].append(median_ms(lambda: torch.mm(x, w_ih.t(), out=pre), calls))
        times[1].append(median_ms(lambda: torch.mm(dpre, w_ih, out=dx), calls))
        times[2].append(median_ms(lambda: (dw_ih.addmm_(dpre.t(), x), dw_hh.addmm_(dpre.t(), h), dpre.sum(0)), calls))
    return [min(t) for t in times]


def case_times(case, seconds=4.0):
    """Median ms of one call of pylstm and (when installed) torch on a suite case, side by side (alternating blocks
    of calls, as the suite's report times them: _common.side_by_side)."""
    data = C.CaseData(case)
    pylstm_call = C.pylstm_call(C.make_pylstm_layer(case, data.weights), data)
    if not C.have_torch():
        pylstm_call()
        return {"pylstm": C.block_median(pylstm_call, max(3, int(seconds / C.estimate_seconds(pylstm_call)))) * 1e3}
    side = C.side_by_side(pylstm_call, C.torch_call(data), seconds)
    return {"pylstm": side["p_s"] * 1e3, "torch": side["q_s"] * 1e3}


def case_line(times, decimals):
    """case_times' result as a line under a floor: pylstm's time, torch's and the 2x-torch target."""
    line = f"  this run, the case itself: pylstm {times['pylstm']:.{decimals}f} ms"
    if "torch" in times:
        line += f", torch {times['torch']:.{decimals}f} ms (2x torch: {times['torch'] / 2:.{decimals}f} ms)"
    return line


def ort_case_times(case, seconds=6.0):
    """(pylstm ms, ONNX Runtime ms) of one call on an inference case, side by side as the suite times them
    (_common.side_by_side); None without onnx and onnxruntime."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    data = C.CaseData(case)
    pylstm_call = C.pylstm_call(C.make_pylstm_layer(case, data.weights), data)
    session = C.ort_session(C.onnx_model(case.cell, data.weights, case.I, case.H), 2)
    side = C.side_by_side(pylstm_call, lambda: session.run(None, {"X": data.x}), seconds)
    return side["p_s"] * 1e3, side["q_s"] * 1e3


PAIRS = 5
LSTM16 = C.Case("LSTM", 16, 512, 512, 25, "tr")
LSTM64 = C.Case("LSTM", 64, 512, 512, 100, "inf")
RNN16 = C.Case("RNN", 16, 1760, 1760, 50, "tr")


def lstm16_pieces(exe):
    """LSTM 16,512,512,25 training's measured pieces: forward and backward step products (us a step), the weights'
    preparation and the forward and backward gate math (ms), and the library's own input projection, dx and weight
    gradients (ms, one figure)."""
    T, B, H = LSTM16.T, LSTM16.B, LSTM16.H
    (fw,) = run(exe, "panels", B, 4 * H, H, T)
    (bw,) = run(exe, "panels", B, H, 4 * H, T)
    return (fw, bw, *run(exe, "extras", B, H, T), sum(run(exe, "gemms", B, H, H, T)))


def lstm16_floors(pieces, peak):
    """(ms of the GEMMs besides the recurrent products, the floor, the floor with the weights prepared and the gate
    math) of LSTM 16,512,512,25 training, from lstm16_pieces and the matmul's GFLOP/s. The GEMMs count at the peak or
    at the library's own measured rate, whichever is faster (on these machines the library's GEMMs outran NumPy's
    matmul at these shapes: at the peak alone the floor was no lower bound)."""
    fw, bw, prepare, gates_fw, gates_bw, library_gemms = pieces
    T, B, H = LSTM16.T, LSTM16.B, LSTM16.H
    at_peak = (C.flops(LSTM16) - 2 * 2 * T * B * 4 * H * H) / peak / 1e6  # all but the loops' recurrent products
    gemms = min(at_peak, library_gemms)
    floor = T * (fw + bw) / 1e3 + gemms
    return gemms, floor, floor + prepare + gates_fw + gates_bw


def lstm16_share(ms, peak):
    """LSTM 16,512,512,25 training done in `ms` milliseconds as a fraction of `peak` GFLOP/s (the suite's count)."""
    return C.flops(LSTM16) / ms / 1e6 / peak


def lstm16_percentages(exe):
    """LSTM 16,512,512,25 training's floor and design floor as fractions of the matmul peak, the pieces and the
    matmul timed one right after the other."""
    pieces = lstm16_pieces(exe)
    peak = matmul_gflops(2)
    if peak is None:
        sys.exit("bench/floors.py: NumPy's matmul did not run")
    _, floor, design = lstm16_floors(pieces, peak[0])
    return lstm16_share(floor, peak[0]), lstm16_share(design, peak[0])


def rnn_training_lines(exe, peak, case=RNN16, seconds=4.0):
    """The floor of an RNN training case with batch-16 loops (RNN 16,1760,1760,50), and the case timed in the same
    run (side by side with torch for `seconds`): its loops' step products (the forward's and the backward's have one
    shape, B rows against each core's half of W_hh, which streams from L3 at every step once it outgrows L2), its
    GEMMs at the peak or at the library's own rate where faster, and the weights' preparation; the tanh of the units
    is left out."""
    T, B, I, H = case.T, case.B, case.I, case.H
    (step,) = run(exe, "panels", B, H, H, T)
    (prepare,) = run(exe, "prepare", B, H, T, 1)
    library = sum(run(exe, "gemms", B, I, H, T, 1))
    gemms = min((C.flops(case) - 2 * 2 * T * B * H * H) / peak / 1e6, library)
    floor = 2 * T * step / 1e3 + gemms
    times = case_times(case, seconds)
    half_mb = H * H * 4 / 2 / 1e6
    lines = [f"{case.cell} {B},{I},{H},{T} training >= {floor:.1f} ms: {T} steps x 2 x {step:.1f} us (the forward's "
             f"and the backward's step products, {B} rows against each core's {half_mb:.1f} MB half of W_hh) + the "
             f"projection, dx and weight gradients {gemms:.1f} ms (at the peak, or at the library's own rate when "
             f"faster: {library:.1f} ms)",
             f"  with the weights prepared once per call: >= {floor + prepare:.1f} ms (W_hh packed for the forward "
             f"and the backward, W_ih for dx, {prepare:.2f} ms; the units' tanh left out)"]
    return lines + [case_line(times, 1)]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        alone, free, lock = run(exe, "lockstep", 256, 600)
        (single,) = run(exe, "dots", 2 * 3 * 512, 512, 1, 200)
        (lstm_single,) = run(exe, "dots", 2 * 4 * 256, 256, 1, 400)
        # The library's own input projections of two cases (gemms takes LSTM shapes: GRU H = 1024's 3H outputs are
        # an LSTM's 4 x 768).
        projection4 = run(exe, "gemms", 4, 1024, 1024, 25)[0]
        projection_gru = run(exe, "gemms", 1, 1024, 768, 300)[0]
        (step4,) = run(exe, "dots", 4 * 1024, 1024, 4, 60)
        (gru_step,) = run(exe, "dots", 3 * 1024, 1024, 1, 100)
        lstm16 = lstm16_pieces(exe)
        prepare1, _, _ = run(exe, "extras", 1, 256, 150)
        library_gemms = run(exe, "gemms", 1, 256, 256, 150)
        C.set_threads(2)
        other_gemms = gemms_elsewhere(1, 256, 256, 150)
        times = case_times(C.Case("LSTM", 1, 256, 256, 150, "tr"))
        peak = matmul_gflops(2)
        if peak is None:
            sys.exit("bench/floors.py: NumPy's matmul did not run")
        peak = peak[0]
        ms = lambda flops: flops / peak / 1e6  # milliseconds at the peak
        print(f"NumPy float32 2048^3 matmul, 2 threads: {peak:.0f} GFLOP/s\n")

        T, I, H = 150, 256, 256
        proj = ms(2 * T * 4 * H * I)
        inf = T * lock / 1e3 + proj
        print(f"LSTM 1,256,256,150 inference >= {inf:.3f} ms: {T} steps x {lock:.2f} us (each core its 512 KB of "
              f"W_hh from L2 and the gate math, in lock step; {alone:.2f} us one core alone, {free:.2f} two running "
              f"free) + the input projection at the peak {proj:.3f} ms")
        grads = ms(2 * T * 4 * H * (I + I + H))  # dx, dW_ih, dW_hh
        train = inf + T * lock / 1e3 + grads
        print(f"LSTM 1,256,256,150 training >= {train:.3f} ms: the inference floor + a backward "
              f"loop of the same reading {T * lock / 1e3:.3f} ms + dx and the weight gradients at the peak "
              f"{grads:.3f} ms")
        print(f"  with the weights prepared once per call: >= {train + prepare1:.3f} ms (W_ih packed for dx, "
              f"{prepare1:.3f} ms; the backward reads W_hh in place; the lock-step loops include the gate math)")
        # Each GEMM at the best rate measured at its shape, and never faster than at the peak (the two measured at
        # different moments of a drifting machine).
        peak_gemms = [proj, ms(2 * T * 4 * H * I), ms(2 * T * 4 * H * (I + H))]
        best_gemms = [max(p, min(a, b)) for p, a, b in zip(peak_gemms, library_gemms, other_gemms)]
        shaped = inf - proj + T * lock / 1e3 + prepare1 + sum(best_gemms)
        print(f"  and with the GEMMs at the best rate the library, NumPy or torch reach at their own shapes (none "
              f"above the peak): >= {shaped:.3f} ms (input projection {best_gemms[0]:.3f} ms, dx {best_gemms[1]:.3f}, "
              f"weight and bias gradients {best_gemms[2]:.3f}; the library's own {library_gemms[0]:.3f}, "
              f"{library_gemms[1]:.3f}, {library_gemms[2]:.3f})")
        print(case_line(times, 3))

        print(f"LSTM 1,256,256,1 inference >= {lstm_single / 1e3:.4f} ms: W_ih and W_hh (2 MB) read once, half on "
              f"each core (from its L2 when the last call left them there), by dot products")
        print(f"GRU 1,512,512,1 inference >= {single / 1e3:.4f} ms: W_ih and W_hh (6.3 MB) read once, half on "
              f"each core, by dot products")

        # Input projections count at the peak, or at the library's own rate when that was faster (at the peak alone
        # a floor was no lower bound where the library's GEMM outran NumPy's matmul).
        T, H = 300, 1024
        proj = min(ms(2 * T * 3 * H * H), projection_gru)
        print(f"GRU 1,1024,1024,300 inference >= {T * gru_step / 1e3 + proj:.2f} ms: {T} steps x {gru_step:.1f} us "
              f"(each core its 6 MB of W_hh by dot products, alternating sweeps) + the input projection {proj:.2f} ms "
              f"(the library's own: {projection_gru:.2f} ms)")

        T, H = 25, 1024
        proj = min(ms(2 * T * 4 * 4 * H * H), projection4)
        print(f"LSTM 4,1024,1024,25 inference >= {T * step4 / 1e3 + proj:.2f} ms: {T} steps x {step4:.1f} us (each "
              f"core its 8 MB of W_hh against 4 rows) + the input projection {proj:.2f} ms (the library's own: "
              f"{projection4:.2f} ms)")

        T = LSTM16.T
        fw, bw, prepare16, gates_fw16, gates_bw16, library16 = lstm16
        gemms, floor, design = lstm16_floors(lstm16, peak)
        print(f"LSTM 16,512,512,25 training >= {floor:.2f} ms ({lstm16_share(floor, peak):.1%} of the peak; 90% "
              f"is {ms(C.flops(LSTM16)) / 0.9:.2f} ms): {T} steps x ({fw:.1f} + {bw:.1f}) us (forward and backward "
              f"step products, 16 rows against each core's 2 MB of W_hh) + the projection, dx and weight "
              f"gradients {gemms:.2f} ms (at the peak, or at the library's own rate when faster: {library16:.2f} "
              f"ms)")
        print(f"  with the weights prepared once per call and the gate math: >= {design:.2f} ms "
              f"({lstm16_share(design, peak):.1%} of the peak): W_hh packed for the forward and the backward, W_ih "
              f"for dx {prepare16:.2f} ms; gate math forward {gates_fw16:.2f} ms (saved gates written), backward "
              f"{gates_bw16:.2f} ms")
        # A percentage of the peak compares pieces timed here with a matmul timed at another moment; on a machine
        # whose speed drifts, time the two in turns and take the percentage of each pair.
        pairs = [lstm16_percentages(exe) for _ in range(PAIRS)]
        for name, k in (("floor", 0), ("with the weights prepared and the gate math", 1)):
            values = sorted(p[k] for p in pairs)
            print(f"  {name}, the pieces and the matmul timed in turns ({PAIRS} pairs): {values[0]:.1%}-"
                  f"{values[-1]:.1%} of the peak, median {values[len(values) // 2]:.1%}")

        for line in rnn_training_lines(exe, peak):
            print(line)

        # The roofline: no schedule runs a product faster than the cores' FMA units (the higher of two measurements
        # around the case's timing, so the lower floor).
        fma_before = run(exe, "fma")[0]
        times64 = ort_case_times(LSTM64)
        fma = max(fma_before, run(exe, "fma")[0])
        if fma <= 0:
            return  # no vector FMAs on this CPU
        flops64 = C.flops(LSTM64)
        line = (f"LSTM 64,512,512,100 inference >= {flops64 / fma / 1e6:.1f} ms: its {flops64 / 1e9:.1f} GFLOP at the "
                f"cores' FMA peak ({fma:.0f} GFLOP/s, two threads of register-only FMAs)")
        if times64 is not None:
            share = lambda t_ms: flops64 / t_ms / 1e6 / fma  # noqa: E731
            p64, q64 = times64
            line += (f"; this run, side by side: pylstm {p64:.1f} ms ({share(p64):.0%} of the FMA peak), ORT {q64:.1f} "
                     f"ms ({share(q64):.0%}); 1.3x ORT would be {q64 / 1.3:.1f} ms, {share(q64 / 1.3):.0%} of the FMA "
                     f"peak")
        print(line)


if __name__ == "__main__":
    sys.exit(main())

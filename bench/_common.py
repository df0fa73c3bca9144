"""Shared pieces of the benchmark suite: the suite's shapes, FLOP counts, thread settings, the PyTorch oracle,
the ONNX model builder and the result checks. Imported by bench/conftest.py, bench/test_suite.py and bench/report.py.

torch, onnx and onnxruntime are optional: nothing here imports them at module level.
"""
import gc
import math
import os
import platform
import statistics
import time
from typing import NamedTuple

import numpy as np

# ----------------------------------------------------------------------------------------------------------------------
# The suite


class Case(NamedTuple):
    cell: str  # "LSTM", "GRU", "RNN"
    B: int
    I: int  # noqa: E741
    H: int
    T: int
    mode: str  # "inf" (inference) or "tr" (training: forward + backward, all gradients)

    @property
    def id(self):
        """The pytest parameter value, e.g. 'LSTM-64-512-512-100-tr'."""
        return f"{self.cell}-{self.B}-{self.I}-{self.H}-{self.T}-{self.mode}"

    @property
    def label(self):
        """The table label, e.g. 'LSTM 64,512,512,100 tr'."""
        return f"{self.cell} {self.B},{self.I},{self.H},{self.T} {self.mode}"

    @property
    def gates(self):
        return cell_facts(self.cell).gates

    @property
    def training(self):
        return self.mode == "tr"


#: The cell families a case may name (a case id's first part); their facts are pylstm.cells'.
CELLS = ("LSTM", "GRU", "RNN")


def cell_facts(cell):
    """The family's default variant in pylstm.cells (the one the suite runs: GRU reset_after, RNN tanh, as torch's).
    Imported on use: bench/ab.py imports its two builds under names of their own, and nothing else of pylstm."""
    from pylstm import cells
    return cells.FAMILIES[cell]

#: (cell, B, I, H, T, mode), in the suite's order (bench/RESULTS.md).
SUITE = [Case(*c) for c in [
    ("LSTM", 1, 256, 256, 1, "inf"),
    ("GRU", 1, 512, 512, 1, "inf"),
    ("LSTM", 1, 256, 256, 150, "inf"),
    ("LSTM", 1, 256, 256, 150, "tr"),
    ("GRU", 1, 1024, 1024, 300, "inf"),
    ("LSTM", 4, 1024, 1024, 25, "inf"),
    ("LSTM", 16, 512, 512, 25, "tr"),
    ("GRU", 16, 512, 512, 25, "tr"),
    ("LSTM", 64, 512, 512, 100, "inf"),
    ("LSTM", 64, 512, 512, 100, "tr"),
    ("GRU", 32, 1760, 1760, 20, "tr"),
    ("RNN", 16, 1760, 1760, 50, "tr"),
    ("LSTM", 32, 8, 64, 1000, "tr"),
]]
CASES = {c.id: c for c in SUITE}

#: Implementations, in the order they run (and appear) within a case.
IMPLS = ("pylstm", "torch", "onnxruntime", "numpy-ref")


def flops(case):
    """Forward: 2*T*B*G*H*(I+H) (the two GEMMs; gate math is not counted). Training: 3x forward (backward does
    about twice the forward's GEMM work: dx, dW_ih, dW_hh and dh)."""
    forward = 2 * case.T * case.B * case.gates * case.H * (case.I + case.H)
    return 3 * forward if case.training else forward


MATMUL_N = 2048


def matmul_flops(n=MATMUL_N):
    return 2 * n ** 3


# ----------------------------------------------------------------------------------------------------------------------
# Threads and environment

#: Threads for every implementation (bench/conftest.py reads the same variable before numpy and torch load).
THREADS = int(os.environ.get("PYLSTM_BENCH_THREADS", "2"))


def set_threads(n):
    """n threads for every implementation that is installed (ONNX Runtime gets it per session)."""
    import pylstm
    setter = getattr(pylstm, "set_num_threads", None)
    if setter is not None:
        setter(n)
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only allowed before any inter-op work; harmless if already set
            pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass  # OPENBLAS_NUM_THREADS was set before numpy loaded (bench/conftest.py)
    else:
        threadpool_limits(limits=n, user_api="blas")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl") if f in flags]
    except OSError:
        pass
    return []


def _version(module_name):
    try:
        module = __import__(module_name)
    except ImportError:
        return None
    return getattr(module, "__version__", "?")


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for i in threadpool_info() if i.get("user_api") == "blas"]


def _value(attr):
    return attr() if callable(attr) else attr


def environment_info(threads, openblas_note):
    import pylstm
    isa = getattr(pylstm, "isa", None)
    get_threads = getattr(pylstm, "get_num_threads", None)
    cache_sizes = getattr(pylstm, "cache_sizes", None)
    info = {
        "threads": threads,
        "pylstm_isa": isa() if isa is not None else "n/a (pylstm.isa() not available yet)",
        "pylstm_num_threads": get_threads() if get_threads is not None else "n/a (not available yet)",
        "pylstm_cache_sizes": cache_sizes() if cache_sizes is not None else None,
        "pylstm_has_openmp": _value(getattr(pylstm._core, "has_openmp", None)),
        "pylstm_file": pylstm._core.__file__,
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "onnx": _version("onnx"),
        "blas": blas_info(),
        "openblas_env": openblas_note,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYLSTM_ISA",
                                               "PYLSTM_CACHE_SIZES", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ},
    }
    try:
        import torch
        info["torch_num_threads"] = torch.get_num_threads()
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    except ImportError:
        pass
    return info


# ----------------------------------------------------------------------------------------------------------------------
# Timing helpers


def estimate_seconds(fn, budget=0.3):
    """Seconds per call: run fn at least twice and until `budget` seconds have passed (at most 50 times), return the
    fastest call (the first one may pay for allocations and lazy initialisation)."""
    times = []
    start = time.perf_counter()
    while len(times) < 2 or (time.perf_counter() - start < budget and len(times) < 50):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def rounds_for(seconds_per_call, target_seconds, max_rounds=5000):
    """(rounds, warmup_rounds): rounds that take about target_seconds, at least 3 (2 for calls over twice the
    target, 1 for calls over 4x the target, so that the slowest cases stay affordable)."""
    rounds = int(math.ceil(target_seconds / max(seconds_per_call, 1e-7)))
    if seconds_per_call > 4 * target_seconds:
        rounds = 1
    elif seconds_per_call > 2 * target_seconds:
        rounds = 2
    else:
        rounds = max(3, rounds)
    rounds = min(rounds, max_rounds)
    # estimate_seconds has already warmed the caches and the runtimes up; one more warm-up round for cheap calls.
    warmup = 1 if seconds_per_call < 0.5 else 0
    return rounds, warmup


def block_median(call, calls):
    """Median seconds of `calls` calls of call()."""
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def alternating_medians(call_a, call_b, blocks, calls, settle=0.0):
    """Two calls timed in alternating blocks of `calls` calls (or `(calls of a, calls of b)`; a first in even blocks,
    b first in odd ones), after two warm-up blocks of each: a machine whose speed drifts slows both alike. After each
    block, `settle` seconds of sleep (untimed) let that side's idle threads stop spinning before the other side runs.
    -> (median block time of a, of b, the blocks' ratios a/b)."""
    calls_a, calls_b = calls if isinstance(calls, tuple) else (calls, calls)

    def block(call, n):
        t = block_median(call, n)
        if settle:
            time.sleep(settle)
        return t
    for _ in range(2):  # warm up both (workspaces, caches, thread pools)
        block(call_a, calls_a)
        block(call_b, calls_b)
    a_times, b_times, ratios = [], [], []
    for i in range(blocks):
        if i % 2 == 0:
            a, b = block(call_a, calls_a), block(call_b, calls_b)
        else:
            b, a = block(call_b, calls_b), block(call_a, calls_a)
        a_times.append(a)
        b_times.append(b)
        ratios.append(a / b)
    return statistics.median(a_times), statistics.median(b_times), ratios


#: Seconds of sleep after each block of a side-by-side measurement. Idle threads spin after a call: OpenBLAS's for
#: 2^28 cycles (~0.1 s), ONNX Runtime's and OpenMP's for less; on 2 cores they took a core from whatever ran next
#: (LSTM 1,256,256,150 inference: 3.1-3.7 ms right after a block of matmuls or of ONNX Runtime's calls, 1.7-2.5
#: alone).
SETTLE_SECONDS = 0.2


def side_by_side(call_p, call_q, seconds):
    """pylstm's call (call_p) and another's (call_q) timed in alternating blocks for about `seconds` in all, at least
    7 blocks, each followed by SETTLE_SECONDS of sleep. A block is 50 ms of calls and at least 3, whose median skips
    the first call after the other side has had the caches (and after the sleep: pylstm's batch-1 loops keep part of
    their weights in L2 from one call to the next, GRU 1,1024,1024,300 inference ~65 ms in a row, ~77 ms as a
    block's single call).
    What the suite reports beside pytest-benchmark's medians, which time each implementation in its own window: on a
    machine whose speed drifts by up to 2x within minutes those windows can disagree, while alternating blocks see the
    same machine. -> dict: each side's median block time (p_s, q_s), the median of the blocks' ratios q/p (ratio:
    above 1, pylstm faster), blocks, calls of each side a block."""
    def calls_for(t):
        return max(3, int(0.05 / t))
    t_p, t_q = estimate_seconds(call_p, budget=0.05), estimate_seconds(call_q, budget=0.05)
    calls = (calls_for(t_p), calls_for(t_q))
    blocks = max(7, min(60, int(seconds / (calls[0] * t_p + calls[1] * t_q + 2 * SETTLE_SECONDS))))
    p, q, ratios = alternating_medians(call_p, call_q, blocks, calls, SETTLE_SECONDS)
    return {"p_s": p, "q_s": q, "ratio": statistics.median(1 / r for r in ratios), "blocks": blocks,
            "calls": list(calls)}


_MATMUL = {}


def matmul_call(n=MATMUL_N):
    """NumPy float32 (n, n) @ (n, n) into a kept output: the suite's practical peak. The operands are made once."""
    if n not in _MATMUL:
        _MATMUL.clear()
        rng = np.random.default_rng(0)
        _MATMUL[n] = (rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32),
                      np.empty((n, n), dtype=np.float32))
    a, b, c = _MATMUL[n]
    return lambda: np.matmul(a, b, out=c)


def cpu_snapshot():
    """(wall s, busy CPU s of the whole machine, steal s, this process's CPU s), to tell afterwards how much of the
    machine other processes took while we measured. None where /proc/stat is missing."""
    try:
        import resource
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ImportError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
    return time.perf_counter(), busy / hz, v[7] / hz, ru.ru_utime + ru.ru_stime


def others_cpu_share(before, after):
    """(percent of all CPUs used by other processes, percent stolen by the hypervisor) between two snapshots."""
    if before is None or after is None:
        return None, None
    capacity = (after[0] - before[0]) * (os.cpu_count() or 1)
    if capacity <= 0:
        return None, None
    others = (after[1] - before[1]) - (after[3] - before[3])
    return max(0.0, 100 * others / capacity), 100 * (after[2] - before[2]) / capacity


# ----------------------------------------------------------------------------------------------------------------------
# Per-case data: the weights (PyTorch's initialisation when torch is installed), the input, the output gradient and
# the oracle's results. One case at a time is kept; moving to the next case frees the previous one.


class CaseData:
    def __init__(self, case, seed=0):
        self.case = case
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((case.T, case.B, case.I), dtype=np.float32)
        self.dout = rng.standard_normal((case.T, case.B, case.H), dtype=np.float32) if case.training else None
        self._torch_module = None
        self._oracle = None
        self._weights = None
        self.calls = {}  # implementation -> its timed call, kept so that later ones can run side by side with pylstm

    # -- weights ------------------------------------------------------------------------------------------------------

    @property
    def weights(self):
        """PyTorch names -> float32 arrays. From torch's own initialisation (torch.manual_seed(0)) when torch is
        installed, else from pylstm's (seed 0)."""
        if self._weights is None:
            if have_torch():
                self._weights = {k: v.detach().numpy().copy() for k, v in self.torch_module().state_dict().items()}
            else:
                self._weights = make_pylstm_layer(self.case, None).state_dict()
        return self._weights

    def torch_module(self):
        if self._torch_module is None:
            import torch
            torch.manual_seed(0)
            c = self.case
            if c.cell == "LSTM":
                m = torch.nn.LSTM(c.I, c.H)
            elif c.cell == "GRU":
                m = torch.nn.GRU(c.I, c.H)
            else:
                m = torch.nn.RNN(c.I, c.H, nonlinearity="tanh")
            self._torch_module = m.float()
        return self._torch_module

    # -- the oracle ---------------------------------------------------------------------------------------------------

    def oracle(self):
        """(name, results): what pylstm's result is checked against. PyTorch (float32) when installed, else the NumPy
        reference run in float64 on the same values. Results: out, h_n (, c_n); training adds dx and every parameter
        gradient under its PyTorch name."""
        if self._oracle is None:
            self._oracle = ("torch", torch_results(self)) if have_torch() else ("numpy-ref float64", ref_results(self))
        return self._oracle


_CURRENT = {}


def case_data(case):
    if case.id not in _CURRENT:
        _CURRENT.clear()
        gc.collect()
        _CURRENT[case.id] = CaseData(case)
    return _CURRENT[case.id]


def have_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------------
# pylstm


def make_pylstm_layer(case, weights, package=None):
    """The case's layer (float32, seed 0, `weights` loaded when given) from `package` (default: pylstm itself;
    bench/ab.py passes its two builds)."""
    if package is None:
        import pylstm as package
    cls = {"LSTM": package.LSTM, "GRU": package.GRU, "RNN": package.RNN}[case.cell]
    kwargs = {"reset_after": True} if case.cell == "GRU" else {"nonlinearity": "tanh"} if case.cell == "RNN" else {}
    layer = cls(case.I, case.H, dtype="float32", seed=0, **kwargs)
    if weights is not None:
        layer.load_state_dict(weights)
    return layer.train(case.training)


def pylstm_call(layer, data):
    """What the suite times of pylstm: the forward in eval mode (inference), or forward + backward (training)."""
    x, dout = data.x, data.dout
    if not data.case.training:
        layer.eval()
        return lambda: layer(x)

    def run():
        layer(x)
        layer.backward(dout)
    return run


def pylstm_results(layer, data):
    """Run the layer once (forward, and backward in training) and collect what the oracle has."""
    out, state = layer(data.x)
    res = {"out": np.array(out)}
    if data.case.cell == "LSTM":
        res["h_n"], res["c_n"] = state[0][0].copy(), state[1][0].copy()
    else:
        res["h_n"] = state[0].copy()
    saved_bytes = None
    if data.case.training:
        saved_bytes = layer.saved_bytes_per_step()
        layer.zero_grad()
        dx, _ = layer.backward(data.dout)
        res["dx"] = np.array(dx)
        res.update({k: g.copy() for k, g in layer.grads.items()})
    return res, saved_bytes


# ----------------------------------------------------------------------------------------------------------------------
# PyTorch


def torch_results(data):
    import torch
    m = data.torch_module()
    x = torch.from_numpy(data.x)
    if not data.case.training:
        with torch.no_grad():
            out, state = m(x)
    else:
        m.zero_grad(set_to_none=True)
        x = x.clone().requires_grad_(True)
        out, state = m(x)
        out.backward(torch.from_numpy(data.dout))
    res = {"out": out.detach().numpy().copy()}
    if data.case.cell == "LSTM":
        res["h_n"], res["c_n"] = state[0][0].detach().numpy().copy(), state[1][0].detach().numpy().copy()
    else:
        res["h_n"] = state[0].detach().numpy().copy()
    if data.case.training:
        res["dx"] = x.grad.numpy().copy()
        res.update({k: p.grad.numpy().copy() for k, p in m.named_parameters()})
        m.zero_grad(set_to_none=True)
    return res


def torch_call(data):
    """The timed torch call: no_grad forward (inference) or forward + backward of out with every gradient (x's too)."""
    import torch
    m = data.torch_module()
    if not data.case.training:
        x = torch.from_numpy(data.x)

        def run():
            with torch.no_grad():
                return m(x)
        return run
    x = torch.from_numpy(data.x).clone().requires_grad_(True)
    dout = torch.from_numpy(data.dout)

    def run():
        out, _ = m(x)
        out.backward(dout)
    return run


# ----------------------------------------------------------------------------------------------------------------------
# The NumPy reference


def _ref_arguments(data, weights, dtype):
    """The NumPy reference's cell, its zero initial state, weights and gradient arrays for the case."""
    from pylstm import reference as R
    c = data.case
    cell = cell_facts(c.cell).on(R)
    z = np.zeros((c.B, c.H), dtype=dtype)
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    w = tuple(weights[k] for k in names)
    grads = {k: np.zeros_like(v) for k, v in weights.items()}
    kw = dict(zip(("dweight_ih", "dweight_hh", "dbias_ih", "dbias_hh"), (grads[k] for k in names)))
    return cell, (z,) * len(cell.state_names), w, grads, kw


def ref_results(data, dtype=np.float64):
    c = data.case
    w = {k: v.astype(dtype) for k, v in data.weights.items()}
    cell, start, args, grads, kw = _ref_arguments(data, w, dtype)
    out, finals, saved = cell.forward(data.x.astype(dtype), start, args, (None, None), None, c.training)
    res = {"out": out, **dict(zip(("h_n", "c_n"), finals))}
    if c.training:
        res["dx"] = cell.backward(saved, args, (None, None), data.dout.astype(dtype), (None,) * len(start), kw,
                                  (None, None))[0]
        res.update(grads)
    return res


def ref_call(data):
    """The timed NumPy-reference call, in float32 on the benchmark's arrays (the same work as pylstm's call)."""
    c = data.case
    cell, start, args, _, kw = _ref_arguments(data, data.weights, np.float32)
    no_state = (None,) * len(start)

    def run():
        out, finals, saved = cell.forward(data.x, start, args, (None, None), None, c.training)
        if c.training:
            cell.backward(saved, args, (None, None), data.dout, no_state, kw, (None, None))
    return run


# ----------------------------------------------------------------------------------------------------------------------
# ONNX (Runtime)

# Gate blocks of torch's stacked weights, in the order ONNX wants them.
#   LSTM: torch i, f, g, o  ->  ONNX i, o, f, c
#   GRU:  torch r, z, n     ->  ONNX z, r, h   (with linear_before_reset=1, which is torch's r * (W_hn h + b_hn))
#   RNN:  one block
ONNX_GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}
ONNX_OPSET = 17


def _reorder(a, cell, H):
    blocks = [a[k * H:(k + 1) * H] for k in range(cell_facts(cell).gates)]
    return np.concatenate([blocks[k] for k in ONNX_GATE_ORDER[cell]], axis=0)


def onnx_model(cell, weights, input_size, hidden_size, nonlinearity="tanh"):
    """An ONNX model with one LSTM/GRU/RNN node (forward direction, layout 0): input X (T, B, I) -> outputs Y
    (T, 1, B, H), Y_h (1, B, H) (and Y_c for LSTM). Weights are PyTorch's (names and gate order) as initializers.
    Returns the serialized model (bytes)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    H = hidden_size
    W = _reorder(weights["weight_ih_l0"], cell, H)[None].astype(np.float32)  # (1, G*H, I)
    R = _reorder(weights["weight_hh_l0"], cell, H)[None].astype(np.float32)  # (1, G*H, H)
    Bias = np.concatenate([_reorder(weights["bias_ih_l0"], cell, H),
                           _reorder(weights["bias_hh_l0"], cell, H)])[None].astype(np.float32)  # (1, 2*G*H)
    outputs = ["Y", "Y_h"] + (["Y_c"] if cell == "LSTM" else [])
    attrs = {"hidden_size": H, "direction": "forward"}
    if cell == "GRU":
        attrs["linear_before_reset"] = 1
    if cell == "RNN":
        attrs["activations"] = [{"tanh": "Tanh", "relu": "Relu"}[nonlinearity]]
    node = helper.make_node(cell, ["X", "W", "R", "B"], outputs, **attrs)
    T, Bsz = "T", "B"
    graph = helper.make_graph(
        [node], f"pylstm_bench_{cell.lower()}",
        inputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, Bsz, input_size])],
        outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, 1, Bsz, H]),
                 helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, Bsz, H])]
        + ([helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, [1, Bsz, H])] if cell == "LSTM" else []),
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
                     numpy_helper.from_array(Bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="pylstm-bench")
    model.ir_version = min(model.ir_version, 10)  # readable by older onnxruntime releases too
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_session(model_bytes, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, sess_options=so, providers=["CPUExecutionProvider"])


def ort_results(session, x, cell):
    outs = session.run(None, {"X": x})
    res = {"out": outs[0][:, 0], "h_n": outs[1][0]}
    if cell == "LSTM":
        res["c_n"] = outs[2][0]
    return res


# ----------------------------------------------------------------------------------------------------------------------
# Checks

#: Forward results (out, h_n, c_n): max |got - want| <= FORWARD_TOL * max(1, max |want|).
FORWARD_TOL = 1e-3
#: Gradients (dx, every parameter gradient): max |got - want| <= GRAD_TOL * max(1, max |want|), each array scaled by
#: its own largest magnitude. Measured on this suite against torch (float32 both sides, scalar kernels): at most 6e-6
#: for gradients and 5e-6 for outputs, so the gradients need no looser tolerance than the outputs.
GRAD_TOL = 1e-3


def compare(got, want):
    """name -> (scaled error, tolerance, ok) for every array in want; scaled error = max|got-want| / max(1,max|want|)."""
    report = {}
    for name, w in want.items():
        g = np.asarray(got[name], dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if g.shape != w.shape:
            report[name] = (math.inf, 0.0, False)
            continue
        scale = max(1.0, float(np.max(np.abs(w))) if w.size else 1.0)
        err = float(np.max(np.abs(g - w))) / scale if w.size else 0.0
        if not np.all(np.isfinite(g)):
            err = math.inf
        tol = FORWARD_TOL if name in ("out", "h_n", "c_n") else GRAD_TOL
        report[name] = (err, tol, err <= tol)
    return report


def assert_close(report, what):
    bad = {k: v for k, v in report.items() if not v[2]}
    if bad:
        lines = "\n".join(f"  {k}: scaled max error {e:.3g} > tolerance {t:.3g}" for k, (e, t, _) in bad.items())
        raise AssertionError(f"{what}: result differs from the oracle\n{lines}")


def worst(report, names=None):
    vals = [e for k, (e, _, _) in report.items() if names is None or k in names]
    return max(vals) if vals else None

"""The run-time choices of the kernels, and what must not depend on them or on the memory they are handed.

* ISA selection: ``pylstm.supported_isas()``, ``pylstm.isa()``, ``pylstm._core.set_isa`` and the environment variable
  PYLSTM_ISA, read once at import (checked in fresh interpreters).
* Threads: ``set_num_threads`` / ``get_num_threads``; every output and gradient is bitwise the same for 1 and 2
  threads, on every ISA, for every cell and dtype, on shapes where the second thread really runs (checked by
  counting the threads of a fresh process that ran each of them); and the same for repeated calls. These tests
  switch off the kernels' adaptation to a busy machine (``_core.set_adaptive_threads(False)``), which would otherwise
  run everything on one thread for a second after a thread was found descheduled, and compare two one-thread runs;
  one test keeps it on, on a busy machine, and checks that the results stay bitwise those of one thread.
* Weights are packed per call: parameters updated in place between calls are seen by the next call.
* Memory: inputs, weights and gradient accumulators that start at an element offset (not 64-byte aligned) give
  bitwise the results of aligned copies.
* Sweep direction: batch 1-4 loops go over their weights in alternating directions from step to step and call to
  call; the results do not depend on which direction each step takes (bitwise, on every cell, ISA, dtype and
  thread count).
* Input projection: packed whole once per call, or a slice at a time as it goes (a weight used by one or two chunks
  of rows): bitwise the same values (every cell, ISA and dtype).
* Denormals: the flush-to-zero / denormals-are-zero mode a kernel sets is restored when it returns, and a kernel fed
  denormal-scale values runs and returns finite results.
"""
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cells import ALL_CELLS, LSTM, cells
from test_layers import as_tuple, random_input, random_state, reference_run

import pylstm
from pylstm import _core
from pylstm import functional as F
from pylstm import reference as R

KNOWN_ISAS = ("scalar", "avx2", "avx512")
PACKAGE_PARENT = Path(pylstm.__file__).resolve().parent.parent
dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])


def python_env(**extra):
    """The environment of a fresh interpreter that imports this pylstm, without the test session's PYLSTM_ISA."""
    env = {k: v for k, v in os.environ.items() if k != "PYLSTM_ISA"}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return env


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=python_env(**env), cwd=PACKAGE_PARENT,
                          capture_output=True, text=True, timeout=120, check=False)


# ----------------------------------------------------------------------------------------------------------------------
# 1. Choosing the ISA.

ISA_PROBE = """
    import numpy as np, pylstm
    from pylstm import _core
    y = _core.activation("tanh", np.linspace(-3, 3, 37, dtype=np.float32))  # runs that ISA's code
    print(pylstm.isa(), " ".join(pylstm.supported_isas()))
"""


def test_supported_isas_start_with_scalar():
    names = pylstm.supported_isas()
    assert names[0] == "scalar"
    assert len(set(names)) == len(names) and set(names) <= set(KNOWN_ISAS)
    assert list(names) == [n for n in KNOWN_ISAS if n in names]  # in order: scalar, avx2, avx512
    assert pylstm.isa() in names


@pytest.mark.parametrize("name", pylstm.supported_isas())
def test_pylstm_isa_environment_variable_is_honoured(name):
    result = run_python(ISA_PROBE, PYLSTM_ISA=name)
    assert result.returncode == 0, result.stderr
    active, supported = result.stdout.split(maxsplit=1)
    assert active == name
    assert supported.split() == pylstm.supported_isas()


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_without_pylstm_isa_the_best_supported_isa_is_chosen(value):
    result = run_python(ISA_PROBE, **({} if value is None else {"PYLSTM_ISA": value}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == pylstm.supported_isas()[-1]


@pytest.mark.parametrize("value", ["sse9", "AVX-2", "avx2 ", "neon"] +
                         [n for n in KNOWN_ISAS if n not in pylstm.supported_isas()])
def test_unknown_or_unsupported_pylstm_isa_fails_the_import_naming_the_variable(value):
    result = run_python("import pylstm", PYLSTM_ISA=value)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError") and "PYLSTM_ISA" in last and repr(value) in last, result.stderr


def test_set_isa_switches_and_rejects_unknown_names(isa):
    assert pylstm.isa() == isa
    for bad in ["sse9", "", "AVX2", "scalar "]:
        with pytest.raises(ValueError, match="isa"):
            _core.set_isa(bad)
        assert pylstm.isa() == isa  # unchanged by the failed call
    with pytest.raises(TypeError):
        _core.set_isa(None)
    for name in pylstm.supported_isas():
        _core.set_isa(name)
        assert pylstm.isa() == name


@pytest.mark.skipif(set(KNOWN_ISAS) <= set(pylstm.supported_isas()), reason="this CPU supports every known ISA")
def test_set_isa_rejects_an_isa_this_cpu_lacks():
    previous = pylstm.isa()
    for name in set(KNOWN_ISAS) - set(pylstm.supported_isas()):
        with pytest.raises(ValueError, match=name):
            _core.set_isa(name)
        assert pylstm.isa() == previous


def test_isa_fixture_restores_the_isa(isa):
    """(The conftest fixture itself: the ISA the test asked for is active; checked again by the next test.)"""
    assert pylstm.isa() == isa


def test_isa_after_fixture_is_the_default():
    assert pylstm.isa() == (os.environ.get("PYLSTM_ISA") or pylstm.supported_isas()[-1])


@pytest.mark.skipif(len(pylstm.supported_isas()) < 2, reason="one ISA: nothing to switch between")
def test_set_isa_on_another_thread_during_calls_gives_one_isas_results():
    """A kernel call reads the active ISA once: while another thread switches between scalar and the best ISA, every
    forward and backward (whose products after the time loop fetched the table again) equals one ISA's, bitwise."""
    rng = np.random.default_rng(0)
    T, B, I, H = 6, 24, 40, 96
    x, h0, c0 = (0.3 * rng.standard_normal(s).astype(np.float32) for s in ((T, B, I), (B, H), (B, H)))
    w_ih, w_hh = (0.3 * rng.standard_normal(s).astype(np.float32) for s in ((4 * H, I), (4 * H, H)))
    dout = rng.standard_normal((T, B, H)).astype(np.float32)

    def forward():
        return _core.lstm_forward(x, h0, c0, w_ih, w_hh, None, None, None, None, None, None, None, True)

    def backward(out, gates, cells):
        dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
        grads = _core.lstm_backward(x, h0, c0, w_ih, w_hh, None, None, None, None, None, out, gates, cells, dout,
                                    None, None, dw_ih, dw_hh, None, None, None, None, None, None)
        return [*grads, dw_ih, dw_hh]

    def call():  # -> [forward's results, backward's from the first ISA's forward]
        return [forward(), backward(*saved)]

    previous = pylstm.isa()
    switched = ["scalar", pylstm.supported_isas()[-1]]
    try:
        expected, saved = [], None
        for name in switched:
            _core.set_isa(name)
            results = forward()
            saved = saved or (results[0], results[3], results[4])
            expected.append([results, backward(*saved)])
        for a, b in zip(*expected):  # (the two ISAs' results differ)
            assert any(not np.array_equal(u, v) for u, v in zip(a, b))
        stop = threading.Event()

        def switch():
            k = 0
            while not stop.is_set():
                _core.set_isa(switched[k % 2])
                k += 1
                time.sleep(0.0002)

        switcher = threading.Thread(target=switch)
        switcher.start()
        try:
            mixed = 0
            for _ in range(150):
                got = call()
                for part in range(2):  # each call's results one ISA's
                    mixed += not any(all(np.array_equal(u, v) for u, v in zip(got[part], e[part])) for e in expected)
        finally:
            stop.set()
            switcher.join()
    finally:
        _core.set_isa(previous)
    assert mixed == 0


# ----------------------------------------------------------------------------------------------------------------------
# 2. Thread count.


def test_set_and_get_num_threads(num_threads):
    for n in (1, 2, 3, 1):
        num_threads(n)
        assert pylstm.get_num_threads() == n
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n"):
            pylstm.set_num_threads(bad)
    for bad in (1.0, True, "2", None):
        with pytest.raises(TypeError, match="n"):
            pylstm.set_num_threads(bad)
    assert pylstm.get_num_threads() == 1


# Shapes (T, B, I, H) whose time loops and big GEMMs run on two threads (the probe below checks it):
#   packed: the recurrent GEMM from packed panels (B > 4), H = 384 so that even the RNN's steps (over 1M
#           multiply-adds) take a second thread;
#   dot: B <= 2, the recurrent GEMM by dot products on the unpacked weights; H = 384 puts even the RNN's float32
#        weights over 512 KiB, where splitting them between two caches pays;
#   long-I: I = 640, longer than a cache block of the reduction dimension (512 float32, 256 float64);
#   long-T: 1280 rows in the weight-gradient GEMMs' reduction dimension, H below one panel on the wide ISAs.
#   short: fewer than 8 steps at batch 2, where the backward loop reads W_hh in place (gemm_axpy: each thread its
#          columns, not transposed first), and T * B = 4 rows, where dx reads W_ih in place too (each thread its
#          columns; I = 640 gives the LSTM's and GRU's dx the work for two threads).
#   rows: time loops with each thread a slice of the batch rows (32 each), every unit (row_slices in
#         csrc/sequence/scheduling.h: W_hh of at most 512 KiB, 16 KiB a row of the slice, on any L2 from 256 KiB).
# At H = 384 the float32 GRU's and RNN's recurrent weights fit the threads' caches (one work item a thread in their
# time loops, sequence/scheduling.h's unit_chunks), the LSTM's and the float64 GRU's do not (four a thread): 'packed' and 'dot'
# run both schedules.
THREADED_SHAPES = {"packed": (3, 8, 64, 384), "dot": (8, 2, 64, 384), "long-I": (4, 16, 640, 96),
                   "long-T": (40, 32, 128, 24), "short": (2, 2, 640, 384), "rows": (6, 64, 40, 128)}
threaded_shapes = pytest.mark.parametrize("shape", list(THREADED_SHAPES), ids=str)


@pytest.fixture
def two_threads_stay_two():
    """For the duration of the test, the kernels never fall back to one thread on a busy machine (a time loop whose
    partner thread is late by more than 200 µs would otherwise finish alone, and every call of the next second run on
    one thread): ``_core.set_adaptive_threads(False)``, which also clears a busy state left by earlier tests; the
    default (True) is restored afterwards."""
    _core.set_adaptive_threads(False)
    try:
        yield
    finally:
        _core.set_adaptive_threads(True)


def random_problem(cell, T, B, I, H, dtype, seed, bias=True):
    """x, states, params, dout, dfinals and nonzero starting gradients, with PyTorch's weight scale (1/sqrt(H))."""
    rng = np.random.default_rng(seed)
    G, bound = cell.gates, 1 / np.sqrt(H)

    def uniform(*shape):
        return rng.uniform(-bound, bound, shape).astype(dtype)

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    params = {"weight_ih": uniform(G * H, I), "weight_hh": uniform(G * H, H),
              "bias_ih": uniform(G * H) if bias else None, "bias_hh": uniform(G * H) if bias else None}
    states = tuple(normal(B, H) for _ in range(cell.n_states))
    grads = {k: normal(*v.shape) for k, v in params.items() if v is not None}
    return dict(x=normal(T, B, I), states=states, params=params, dout=normal(T, B, H),
                dfinals=tuple(normal(B, H) for _ in range(cell.n_states)), grads=grads)


def forward_backward_all(cell, problem, grads_offset=None):
    """Training forward, inference forward and backward (into copies of the starting gradients, starting
    `grads_offset` elements past a 64-byte boundary when given) through the kernels. -> name -> array, every output
    and gradient."""
    kernel = cell.on(F)
    x, states, params = problem["x"], problem["states"], problem["params"]
    out, finals, saved = kernel.forward(x, states, params, training=True)
    out_inf, finals_inf, _ = kernel.forward(x, states, params, training=False)
    grads = {k: v.copy() if grads_offset is None else aligned_copy(v, grads_offset)
             for k, v in problem["grads"].items()}
    dx, dstates = kernel.backward(saved, params, problem["dout"], problem["dfinals"], grads)
    result = {"out": out, "out (inference)": out_inf, "dx": dx}
    for k in range(len(finals)):
        result.update({f"final{k}": finals[k], f"final{k} (inference)": finals_inf[k], f"dstate{k}": dstates[k]})
    result.update({f"saved.{n}": getattr(saved, n) for n in ("gates", "cells") if getattr(saved, n, None) is not None})
    result.update({f"d{k}": g for k, g in grads.items()})
    return result


def assert_bitwise_equal(a, b, what):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, f"{what}: {name}"
        if not np.array_equal(a[name], b[name]):
            diff = np.abs(a[name].astype(np.float64) - b[name].astype(np.float64))
            raise AssertionError(f"{what}: {name} differs in {np.count_nonzero(diff)} of {diff.size} elements, "
                                 f"at most by {diff.max():.3g}")


@cells
@dtypes
@threaded_shapes
def test_one_and_two_threads_give_bitwise_identical_results(cell, dtype, shape, isa, num_threads,
                                                            two_threads_stay_two):
    problem = random_problem(cell, *THREADED_SHAPES[shape], dtype, seed=7)
    num_threads(1)
    one = forward_backward_all(cell, problem)
    num_threads(2)
    two = forward_backward_all(cell, problem)
    assert_bitwise_equal(one, two, "1 vs 2 threads")
    assert all(np.isfinite(v).all() for v in two.values())
    again = forward_backward_all(cell, problem)
    assert_bitwise_equal(two, again, "a repeated call with 2 threads")


@cells
@dtypes
def test_repeated_calls_give_identical_results(cell, dtype, isa):
    """The same inputs twice, with a call on other shapes between (the workspace reused with other contents)."""
    problem = random_problem(cell, 3, 5, 7, 19, dtype, seed=3)
    first = forward_backward_all(cell, problem)
    forward_backward_all(cell, random_problem(cell, 2, 9, 30, 40, dtype, seed=4))
    assert_bitwise_equal(first, forward_backward_all(cell, problem), "a repeated call")


@pytest.fixture
def busy_core():
    """A process that keeps one core busy for the duration of the test (so that a kernel thread gets descheduled
    now and then, and its partner takes over its share of the step)."""
    # It also stops by itself if the test process dies without cleaning up (killed, interrupted), and after 60 s.
    spin = ("import os, time\nparent, end = os.getppid(), time.monotonic() + 60\n"
            "while os.getppid() == parent and time.monotonic() < end:\n    pass\n")
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


@cells
@dtypes
@pytest.mark.parametrize("shape", ["packed", "rows"])
def test_two_threads_on_a_busy_machine_give_bitwise_the_one_thread_results(cell, dtype, shape, num_threads, busy_core,
                                                                           two_threads_stay_two):
    """Both threads kept at work while one of them is descheduled now and then (its partner takes over its share)."""
    problem = random_problem(cell, *THREADED_SHAPES[shape], dtype, seed=9)
    num_threads(1)
    one = forward_backward_all(cell, problem)
    num_threads(2)
    for attempt in range(3):
        assert_bitwise_equal(one, forward_backward_all(cell, problem), f"1 vs 2 threads, attempt {attempt}")


@dtypes
def test_adapting_to_a_busy_machine_keeps_the_one_thread_results(dtype, num_threads, busy_core):
    """With the adaptation on (the default), on a busy machine: a time loop whose partner thread is descheduled
    finishes on one thread, and the calls of the next second run on one thread; the schedule changes, the arithmetic
    does not. One LSTM shape with many steps (more chances for a thread to be descheduled in the middle of a loop),
    called again and again for a quarter of a second. Whether a thread is descheduled long enough meanwhile depends on
    the machine's load (with one spinning process on two cores it may take seconds, or not happen): the test cannot
    force the fallback, it checks the results whichever schedule ran."""
    assert callable(_core.set_adaptive_threads)
    _core.set_adaptive_threads(True)  # the default, whatever an earlier test did
    problem = random_problem(LSTM, 64, 16, 48, 80, dtype, seed=11)
    num_threads(1)
    one = forward_backward_all(LSTM, problem)
    num_threads(2)
    attempt, end = 0, time.monotonic() + 0.25
    while attempt < 4 or time.monotonic() < end:
        assert_bitwise_equal(one, forward_backward_all(LSTM, problem), f"1 vs 2 adaptive threads, attempt {attempt}")
        attempt += 1


# Runs in a fresh interpreter where OpenMP gives every parallel region a single thread (OMP_THREAD_LIMIT=1), while the
# kernels plan for two: each time loop's one thread must run every work item of every round, its partner's included.
THREAD_LIMIT_PROBE = """
    import sys
    import numpy as np
    import pylstm
    from pylstm import _core
    sys.path.insert(0, {tests!r})
    from cells import ALL_CELLS
    from test_isa_and_threads import THREADED_SHAPES, assert_bitwise_equal, forward_backward_all, random_problem

    _core.set_adaptive_threads(False)
    for cell in ALL_CELLS:
        for shape in ("packed", "dot", "rows"):
            for dtype in (np.float32, np.float64):
                p = random_problem(cell, *THREADED_SHAPES[shape], dtype, seed=5)
                pylstm.set_num_threads(1)
                one = forward_backward_all(cell, p)
                pylstm.set_num_threads(2)
                assert_bitwise_equal(one, forward_backward_all(cell, p), f"{{cell.name}} {{shape}}")
    print("ok")
"""


@pytest.mark.skipif(not _core.has_openmp, reason="built without OpenMP: always one thread")
def test_a_team_smaller_than_planned_runs_every_item():
    result = run_python(THREAD_LIMIT_PROBE.format(tests=str(Path(__file__).resolve().parent)), OMP_THREAD_LIMIT="1")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# Runs in a fresh interpreter whose OpenMP worker threads sleep whenever they are idle (OMP_WAIT_POLICY=passive):
# a worker that took part in a kernel call has been woken up and gone back to sleep, which Linux counts as a
# context switch of that thread (/proc/self/task/TID/status); a call that runs on one thread wakes no worker. For
# each case, one kernel phase runs with set_num_threads(2) (what precedes it with one thread), and the probe reports
# whether any thread but the main one was switched meanwhile.
THREAD_PROBE = """
    import json, os, sys, time
    import numpy as np
    import pylstm
    from pylstm import _core
    sys.path.insert(0, {tests!r})
    from cells import ALL_CELLS
    from test_isa_and_threads import THREADED_SHAPES, random_problem

    _core.set_adaptive_threads(False)  # two threads stay two even when the machine is busy
    MAIN = str(os.getpid())

    def worker_switches():
        counts = {{}}
        for tid in os.listdir("/proc/self/task"):
            if tid != MAIN:
                try:
                    with open(f"/proc/self/task/{{tid}}/status") as f:
                        counts[tid] = sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
                except FileNotFoundError:
                    pass
        return counts

    def quiet_switches():
        # The counts once the workers have settled (no change for 3 ms): a worker of the previous call may still be
        # on its way back to sleep.
        counts, deadline = worker_switches(), time.monotonic() + 0.05
        while time.monotonic() < deadline:
            time.sleep(0.003)
            now = worker_switches()
            if now == counts:
                break
            counts = now
        return counts

    def woken(before):
        # A worker counts its switch when it goes back to sleep, which may come just after the call has returned:
        # look again for a few milliseconds before calling it not woken.
        deadline = time.monotonic() + 0.02
        while True:
            if any(n > before.get(tid, -1) for tid, n in worker_switches().items()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)

    results = []
    for isa in pylstm.supported_isas():
        _core.set_isa(isa)
        for dtype in (np.float32, np.float64):
            for cell in ALL_CELLS:
                kernel = cell.on(pylstm.functional)
                for shape in THREADED_SHAPES:
                    p = random_problem(cell, *THREADED_SHAPES[shape], dtype, seed=1)
                    pylstm.set_num_threads(2)
                    before = quiet_switches()
                    out, finals, saved = kernel.forward(p["x"], p["states"], p["params"])
                    forward = woken(before)
                    pylstm.set_num_threads(1)
                    out, finals, saved = kernel.forward(p["x"], p["states"], p["params"])
                    pylstm.set_num_threads(2)
                    before = quiet_switches()
                    kernel.backward(saved, p["params"], p["dout"], p["dfinals"], p["grads"])
                    backward = woken(before)
                    results.append([isa, np.dtype(dtype).name, cell.name, shape, "forward", forward])
                    results.append([isa, np.dtype(dtype).name, cell.name, shape, "backward", backward])
    # The probe itself: a small call stays on one thread, and a large one wakes a worker.
    small = random_problem(ALL_CELLS[0], 2, 2, 3, 4, np.float32, seed=1)
    before = quiet_switches()
    ALL_CELLS[0].on(pylstm.functional).forward(small["x"], small["states"], small["params"])
    print(json.dumps({{"results": results, "small": woken(before),
                      "threads": len(os.listdir("/proc/self/task"))}}))
"""


@pytest.mark.skipif(not _core.has_openmp, reason="built without OpenMP: always one thread")
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc to watch threads")
def test_threaded_shapes_really_use_two_threads():
    """Each cell's forward and backward, on every ISA and dtype, starts a second thread on at least one of the
    THREADED_SHAPES, and the forward on the 'packed' and 'dot' ones for every cell: the bitwise comparison above is
    not between two single-threaded runs."""
    tests_dir = str(Path(__file__).resolve().parent)
    result = run_python(THREAD_PROBE.format(tests=tests_dir), OMP_NUM_THREADS="2", OMP_WAIT_POLICY="passive",
                        OPENBLAS_NUM_THREADS="1")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["threads"] >= 2 and not report["small"], report  # the probe tells one thread from two
    rows = report["results"]
    used = {}
    for isa, dtype, cell, shape, phase, two in rows:
        used.setdefault((isa, dtype, cell, phase), []).append(shape if two else None)
    single = [key for key, shapes in used.items() if not any(shapes)]
    assert not single, f"never on two threads: {single}"
    # Both recurrent-GEMM paths of the time loop, packed panels and dot products, really run on two threads.
    loop_single = [(isa, dtype, cell, shape) for isa, dtype, cell, shape, phase, two in rows
                   if shape in ("packed", "dot") and phase == "forward" and not two]
    assert not loop_single, f"forward on one thread: {loop_single}"
    assert len(rows) == len(pylstm.supported_isas()) * 2 * len(ALL_CELLS) * len(THREADED_SHAPES) * 2


# ----------------------------------------------------------------------------------------------------------------------
# 3. Weights are packed per call: in-place updates of layer.params between calls are seen.

KINDS = [("lstm", pylstm.LSTM, {}), ("gru", pylstm.GRU, {}), ("gru-reset_before", pylstm.GRU, {"reset_after": False}),
         ("rnn-tanh", pylstm.RNN, {}), ("rnn-relu", pylstm.RNN, {"nonlinearity": "relu"})]
kinds = pytest.mark.parametrize("cls,kwargs", [k[1:] for k in KINDS], ids=[k[0] for k in KINDS])
# (T, B, I, H): both GEMMs by dot products (T * B <= 4); recurrent by dot products, input projection packed a slice
# at a time; recurrent packed too; and time loops on two threads.
UPDATE_SHAPES = [(2, 2, 5, 17), (6, 3, 4, 9), (3, 6, 5, 17), (3, 16, 40, 96)]


def run_layer_against_reference(layer, x, state, dout=None):
    """Forward (and backward when dout is given, into zeroed grads) through the layer; every result equal to the
    reference's on the layer's current parameters within 1e-10 relative to each array's largest magnitude.
    -> out."""
    out, final = layer(x, state)
    layer.zero_grad()
    dx, dstate0 = layer.backward(dout) if dout is not None else (None, None)
    expected = reference_run(layer, x, state, dout)
    pairs = [("out", out, expected["out"])]
    pairs += [(f"final[{k}]", f[0], e) for k, (f, e) in enumerate(zip(as_tuple(final), expected["finals"]))]
    if dout is not None:
        pairs.append(("dx", dx, expected["dx"]))
        pairs += [(f"dstate0[{k}]", d[0], e) for k, (d, e) in enumerate(zip(as_tuple(dstate0), expected["dstate0"]))]
        pairs += [(f"grad {k}", layer.grads[k], e) for k, e in expected["grads"].items()]
    for name, got, want in pairs:
        scale = max(1.0, float(np.abs(want).max(initial=0)))
        err = float(np.abs(got - want).max(initial=0)) / scale
        assert err <= 1e-10, f"{name}: relative error {err:.3g} against the reference on the updated weights"
    return out


@kinds
@pytest.mark.parametrize("T,B,I,H", UPDATE_SHAPES, ids=str)
def test_in_place_parameter_updates_are_seen_by_the_next_call(cls, kwargs, T, B, I, H, isa):
    """A forward in inference and in training mode, then the parameters halved in place, then an SGD step on them:
    after each update, both modes (forward and backward) compute with the new values."""
    layer = cls(I, H, dtype="float64", seed=5, **kwargs)
    rng = np.random.default_rng(2)
    x, state = random_input(layer, T, B, rng), random_state(layer, B, rng)
    dout = rng.standard_normal((T, B, H))
    before = run_layer_against_reference(layer.eval(), x, state)
    run_layer_against_reference(layer.train(), x, state, dout)
    for update in ("halve", "sgd"):
        if update == "halve":
            for p in layer.params.values():
                p *= 0.5
        else:  # an SGD step with the gradients of the last backward
            for name, p in layer.params.items():
                p -= 0.1 * layer.grads[name]
        out = run_layer_against_reference(layer.eval(), x, state)
        assert not np.array_equal(out, before), f"{update}: the output did not change"
        before = out
        run_layer_against_reference(layer.train(), x, state, dout)


# ----------------------------------------------------------------------------------------------------------------------
# 4. Misaligned inputs: arrays that start one element past a 64-byte boundary.


def aligned_copy(a, offset_elements=0, alignment=64):
    """A C-contiguous copy of `a` whose data starts `offset_elements` elements after an `alignment`-byte boundary."""
    if a is None:
        return None
    size = a.dtype.itemsize
    raw = np.empty(a.size + (alignment + offset_elements * size) // size + 1, dtype=a.dtype)
    skip = (-raw.ctypes.data % alignment) // size + offset_elements
    out = raw[skip:skip + a.size].reshape(a.shape)
    assert out.ctypes.data % alignment == offset_elements * size and out.flags.c_contiguous
    out[...] = a
    return out


def relocate(problem, offset):
    return dict(x=aligned_copy(problem["x"], offset), states=tuple(aligned_copy(s, offset) for s in problem["states"]),
                params={k: aligned_copy(v, offset) for k, v in problem["params"].items()},
                dout=aligned_copy(problem["dout"], offset),
                dfinals=tuple(aligned_copy(d, offset) for d in problem["dfinals"]), grads=problem["grads"])


@cells
@dtypes
# Dot products on both GEMMs, dot recurrent + projection in slices, packed recurrent with tails, and two threads; then
# dot recurrent over enough steps that weights whose rows do not start on cache lines are read from an aligned copy
# (DotWeight): with H = 32 only the offset runs copy, with H = 13 all do.
@pytest.mark.parametrize("T,B,I,H", [(2, 2, 7, 13), (3, 3, 19, 33), (3, 5, 17, 31), (5, 16, 48, 80), (10, 2, 7, 32),
                                     (9, 1, 3, 13)], ids=str)
def test_misaligned_inputs_give_bitwise_the_aligned_results(cell, dtype, T, B, I, H, isa, two_threads_stay_two):
    problem = random_problem(cell, T, B, I, H, dtype, seed=T + B + I + H)
    aligned = forward_backward_all(cell, relocate(problem, 0), grads_offset=0)
    for offset in (1, 3):
        assert_bitwise_equal(aligned, forward_backward_all(cell, relocate(problem, offset), grads_offset=offset),
                             f"offset {offset}")


# ----------------------------------------------------------------------------------------------------------------------
# 5. Alternating sweeps over the weights (Rounds in csrc/primitives/parallel.h).


def lstm_projection_forward(problem, training):
    """The LSTM with a projection (weight_hr, proj_size = H // 2 + 1), whose h = W_hr m is also read in place."""
    x, (h0, c0), p = problem["x"], problem["states"], problem["params"]
    H = p["weight_hh"].shape[1]
    P = H // 2 + 1
    rng = np.random.default_rng(5)
    w_hh = rng.uniform(-0.3, 0.3, (4 * H, P)).astype(x.dtype)
    w_hr = rng.uniform(-0.3, 0.3, (P, H)).astype(x.dtype)
    out, h_n, c_n, _ = F.lstm_forward(x, h0[:, :P].copy(), c0, p["weight_ih"], w_hh, p["bias_ih"], p["bias_hh"],
                                      weight_hr=w_hr, training=training)
    return {"out": out, "h_n": h_n, "c_n": c_n}


def one_alternating_step():
    """A loop of one step that alternates: the next loop starts on the other direction."""
    before = _core.alternated_sweeps()
    x, h0, w = np.ones((1, 1, 3)), np.zeros((1, 4)), np.full((12, 4), 0.1)
    F.gru_forward(x, h0, w[:, :3].copy(), w, None, None, training=False)
    assert _core.alternated_sweeps() == before + 1


# (T, B, I, H): batch 1-4 loops, which read their weights in place: single steps (the input projection by dot products
# too, and no packing round), sequences (the recurrent weight copied to aligned rows, the projection in slices), with H
# not a multiple of the four rows a dot-product pass takes; and the two-thread "dot" shape above.
SWEEP_SHAPES = [(1, 1, 7, 13), (1, 4, 24, 32), (2, 3, 5, 6), (9, 2, 6, 19), (12, 1, 16, 34), THREADED_SHAPES["dot"]]


def all_sweeping_calls(cell, problem):
    """Forward and backward of every kind (for the LSTM, also with a projection, whose h = W_hr m is read in place)."""
    result = forward_backward_all(cell, problem)
    if cell is LSTM:
        for training in (True, False):
            result.update({f"projected {k} ({training})": v
                           for k, v in lstm_projection_forward(problem, training).items()})
    return result


@cells
@dtypes
@pytest.mark.parametrize("T,B,I,H", SWEEP_SHAPES, ids=str)
def test_either_sweep_direction_gives_the_same_bits(cell, dtype, T, B, I, H, isa, num_threads, two_threads_stay_two):
    """The same calls twice, the second time with every loop starting on the other direction: the calls' sweeps
    shift them by their number, and one step in between when that number is even. Bitwise the same results."""
    problem = random_problem(cell, T, B, I, H, dtype, seed=T * B + H)
    for threads in (1, 2):
        num_threads(threads)
        before = _core.alternated_sweeps()
        first = all_sweeping_calls(cell, problem)
        sweeps = _core.alternated_sweeps() - before
        assert sweeps > 0
        if sweeps % 2 == 0:
            one_alternating_step()
        second = all_sweeping_calls(cell, problem)
        assert _core.alternated_sweeps() - before == 2 * sweeps + (sweeps % 2 == 0)
        assert_bitwise_equal(first, second, f"{threads} thread(s), the other direction first")


def test_only_loops_that_read_weights_in_place_alternate():
    rng = np.random.default_rng(0)
    for B, alternates in ((4, True), (5, False)):
        before = _core.alternated_sweeps()
        F.rnn_forward(rng.standard_normal((3, B, 2)), np.zeros((B, 6)), rng.standard_normal((6, 2)),
                      rng.standard_normal((6, 6)), training=False)
        assert (_core.alternated_sweeps() > before) == alternates, f"B={B}"


# (T, B, H, dot products): batch 1-2 always; batch 3-4 for fewer than 8 steps, or for recurrent weights over 4 MiB
# (float32 H = 1040: 4.1 MiB), else from packed panels (recurrent_by_dots in csrc/sequence/weight_access.h).
@pytest.mark.parametrize("T,B,H,dots", [(8, 2, 6, True), (8, 3, 6, False), (8, 4, 6, False), (7, 4, 6, True),
                                        (8, 4, 1040, True), (8, 4, 1000, False)], ids=str)
def test_batch_3_and_4_loops_read_small_weights_from_packed_panels(T, B, H, dots):
    """The forward's choice, seen through alternated_sweeps (only dot-product loops alternate), and the same result
    from either route: the NumPy reference."""
    rng = np.random.default_rng(T * B + H)
    x = rng.standard_normal((T, B, 2)).astype(np.float32)
    h0 = np.zeros((B, H), np.float32)
    w_ih = (rng.standard_normal((H, 2)) / 2).astype(np.float32)
    w_hh = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
    before = _core.alternated_sweeps()
    out, _, _ = F.rnn_forward(x, h0, w_ih, w_hh, training=False)
    assert (_core.alternated_sweeps() > before) == dots
    expected, _, _ = R.rnn_forward(x.astype(np.float64), h0.astype(np.float64), w_ih.astype(np.float64),
                                   w_hh.astype(np.float64), training=False)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------------------
# 5b. Time loops whose threads take slices of the batch rows (every unit), with no wait per step.

def row_sliced(cell, T, B, I, H, dtype, threads):
    """Whether the forward and the backward of `cell` at this shape on `threads` threads ran their loops as slices of
    the batch rows (independent_loops counts such loops): (forward, backward)."""
    problem = random_problem(cell, T, B, I, H, dtype, seed=2)
    pylstm.set_num_threads(threads)
    kernel = cell.on(F)
    before = _core.independent_loops()
    _, _, saved = kernel.forward(problem["x"], problem["states"], problem["params"])
    middle = _core.independent_loops()
    kernel.backward(saved, problem["params"], problem["dout"], problem["dfinals"], problem["grads"])
    return middle - before == 1, _core.independent_loops() - middle == 1


@cells
def test_loops_slice_the_batch_rows_where_all_of_w_hh_fits_each_thread(cell, num_threads, two_threads_stay_two):
    """Every cell's loops at the 'rows' shape on two threads, and not on one thread; nor with fewer than 8 rows a
    thread: B = 15 with H = 256 (LSTM, GRU) and 272 (RNN), where the loops take two threads and W_hh fits a thread's
    share of a 2 MiB L2."""
    assert row_sliced(cell, *THREADED_SHAPES["rows"], np.float32, threads=2) == (True, True)
    assert row_sliced(cell, *THREADED_SHAPES["rows"], np.float32, threads=1) == (False, False)
    T, _, I, _ = THREADED_SHAPES["rows"]
    H = 272 if cell.name.startswith("rnn") else 256
    assert row_sliced(cell, T, 15, I, H, np.float32, threads=2) == (False, False)


@pytest.mark.skipif(not _core.has_openmp, reason="built without OpenMP: always one thread")
@cells
def test_small_step_forward_loops_take_two_threads_by_rows_when_calls_come_back_to_back(cell, two_threads_stay_two):
    """B = 32, I = 1, H = 50, T = 100: each step far too small to share its units between threads (0.3 M multiply-adds
    for the LSTM), but 16 rows a thread, and under 32 M multiply-adds a call. Right after another kernel call the
    forward loop runs by rows on two threads (a try or two, in case the process was held up between the calls); after
    a pause of 50 ms, longer than the 2 ms a second thread counts as awake, on one thread."""
    T, B, I, H = 100, 32, 1, 50
    problem = random_problem(cell, T, B, I, H, np.float32, seed=2)
    kernel = cell.on(F)
    pylstm.set_num_threads(2)

    def forward_by_rows():
        before = _core.independent_loops()
        kernel.forward(problem["x"], problem["states"], problem["params"])
        return _core.independent_loops() - before == 1

    forward_by_rows()
    assert any(forward_by_rows() for _ in range(3))
    time.sleep(0.05)
    assert not forward_by_rows()


ROW_POLICY_PROBE = """
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from pylstm import _core
    from cells import ALL_CELLS
    from test_isa_and_threads import row_sliced

    _core.set_adaptive_threads(False)
    print(" ".join("/".join(map(str, row_sliced(ALL_CELLS[0], 3, B, 16, 512, np.float32, threads=2)))
                   for B in (16, 32, 64)))
"""


# An LSTM with H = 512 (4 MiB of float32 W_hh) at B = 16, 32, 64 (8, 16, 32 rows a thread), under three L2 sizes:
# the weights a thread reads per row of its slice, 512, 256, 128 KiB, against an eighth of half the L2.
@pytest.mark.skipif(not _core.has_openmp, reason="built without OpenMP: always one thread")
@pytest.mark.parametrize("sizes, expected", [("32K,512K,32M", "False/False False/False False/False"),
                                             ("48K,2M,32M", "False/False False/False True/True"),
                                             ("48K,8M,64M", "True/True True/True True/True")])
def test_loops_need_more_rows_a_thread_to_slice_the_rows_as_w_hh_outgrows_the_l2(sizes, expected):
    result = run_python(ROW_POLICY_PROBE.format(tests=str(Path(__file__).resolve().parent)), PYLSTM_CACHE_SIZES=sizes,
                        OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected, sizes


def test_an_lstm_with_a_projection_slices_the_units(num_threads, two_threads_stay_two):
    """Its h = W_hr m needs all of the step's m: its forward loop keeps slices of the units (and its backward loop,
    a loop of its own)."""
    problem = random_problem(LSTM, *THREADED_SHAPES["rows"], np.float32, seed=2)
    num_threads(2)
    before = _core.independent_loops()
    for training in (True, False):
        lstm_projection_forward(problem, training)
    assert _core.independent_loops() == before


@pytest.mark.parametrize("cls, kwargs", [("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}), ("RNN", {})],
                         ids=["LSTM", "GRU", "GRU-reset_before", "RNN"])
@dtypes
@pytest.mark.parametrize("bidirectional", [False, True])
def test_row_slices_with_lengths_give_the_one_thread_bits(cls, kwargs, dtype, bidirectional, num_threads,
                                                          two_threads_stay_two):
    """Sequences of different lengths: the second slice's rows stop running first (rows sorted longest first), and
    with these lengths, after some steps, the first slice's too; in both directions. Every output and gradient
    bitwise the same on two threads, whose loops run as slices of rows, as on one thread."""
    T, B, I, H = 9, 64, 40, 128
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    lengths = rng.integers(1, T + 1, B)
    lengths[:3] = T
    dout = rng.standard_normal((T, B, 2 * H if bidirectional else H)).astype(dtype)
    results = []
    for threads in (1, 2):
        num_threads(threads)
        layer = getattr(pylstm, cls)(I, H, bidirectional=bidirectional, dtype=dtype, seed=1, **kwargs)
        before = _core.independent_loops()
        out, state = layer(x, lengths=lengths)
        dx, dstate = layer.backward(dout)
        assert (_core.independent_loops() > before) == (threads == 2), threads
        results.append({"out": out, "dx": dx, **{f"state{i}": v for i, v in enumerate(np.atleast_1d(state))},
                        **{f"dstate{i}": v for i, v in enumerate(np.atleast_1d(dstate))},
                        **{k: g.copy() for k, g in layer.grads.items()}})
    assert_bitwise_equal(results[0], results[1], "1 vs 2 threads")


# ----------------------------------------------------------------------------------------------------------------------
# 6. The input projection: W_ih packed whole once per call, or a slice at a time as the product goes.

# (B, I, H, T_short, T_long): the short run's input projection is one chunk of at most one block of rows on every ISA
# (85 and 60 rows: W_ih packed a slice at a time, gemm_weight_slices), the long run's more than two chunks (W_ih packed
# whole); the RNN projects all rows at once, one block (85, 60) or several (550, 520). B = 5: the recurrent GEMM from
# packed panels too, B = 1: by dot products. I = 40: one block of the reduction dimension, I = 600: several (512
# float32, 256 float64); H = 19 and 37: partial panels on every ISA.
PROJECTION_SHAPES = [(5, 40, 19, 17, 110), (1, 600, 37, 60, 520)]


@cells
@dtypes
@pytest.mark.parametrize("B,I,H,T_short,T_long", PROJECTION_SHAPES, ids=str)
def test_projection_in_slices_gives_the_bits_of_the_packed_projection(cell, dtype, B, I, H, T_short, T_long, isa):
    """The first T_short steps of a T_long sequence and the T_short steps alone: the same values whichever way the
    projection was computed, so bitwise the same outputs."""
    problem = random_problem(cell, T_long, B, I, H, dtype, seed=B + I + H)
    kernel = cell.on(F)
    x, states, params = problem["x"], problem["states"], problem["params"]
    for training in (False, True):
        long_out, _, _ = kernel.forward(x, states, params, training=training)
        short_out, _, _ = kernel.forward(x[:T_short].copy(), states, params, training=training)
        assert_bitwise_equal({"out": short_out}, {"out": long_out[:T_short]}, f"training={training}")


# ----------------------------------------------------------------------------------------------------------------------
# 7. Denormals.


def denormals_survive():
    """True when NumPy arithmetic in this thread still produces and reads denormals (no FTZ/DAZ left set)."""
    f32 = np.float32(1e-39) * np.float32(1.0)  # 1e-39 is below FLT_MIN (1.18e-38)
    f64 = np.float64(5e-324) * np.float64(1.0)
    tiny = np.array([1e-38], np.float32) / np.float32(100)
    return bool(f32 > 0 and f64 > 0 and tiny[0] > 0 and np.float32(1e-39) + np.float32(0) > 0)


@cells
@dtypes
def test_denormal_mode_is_restored_after_a_kernel_call(cell, dtype, isa, num_threads, two_threads_stay_two):
    assert denormals_survive()
    for threads, shape in ((1, (3, 5, 7, 19)), (2, THREADED_SHAPES["packed"])):
        num_threads(threads)
        forward_backward_all(cell, random_problem(cell, *shape, dtype, seed=1))
        assert denormals_survive(), f"FTZ/DAZ left set after a call with {threads} thread(s)"
    for name in ("sigmoid", "tanh"):
        _core.activation(name, np.linspace(-1, 1, 33, dtype=dtype))
        assert denormals_survive(), f"FTZ/DAZ left set after _core.activation({name!r})"


@cells
@dtypes
def test_denormal_scale_inputs_run_and_give_finite_results(cell, dtype, isa):
    """Inputs, states and weights around and below the smallest normal number: finite results, equal to the
    reference up to that scale (the kernels may flush denormals to zero), and gradients that are finite."""
    tiny = np.finfo(dtype).tiny
    T, B, I, H = 4, 5, 6, 17
    problem = random_problem(cell, T, B, I, H, dtype, seed=2)
    rng = np.random.default_rng(0)

    def tiny_scale(a):
        return (a * rng.choice([tiny * 0.5, tiny * 1e-3, tiny * 4], size=a.shape)).astype(dtype)

    problem["x"] = tiny_scale(problem["x"])
    problem["states"] = tuple(tiny_scale(s) for s in problem["states"])
    problem["params"]["weight_ih"] = tiny_scale(problem["params"]["weight_ih"])
    problem["params"]["bias_ih"] = tiny_scale(problem["params"]["bias_ih"])
    problem["dout"] = tiny_scale(problem["dout"])
    got = forward_backward_all(cell, problem)
    for name, value in got.items():
        assert np.isfinite(value).all(), name
    # The reference in float64 on the same values: within test_kernels' tolerances relative to the output's largest
    # magnitude, plus a few times the smallest normal number (what flushing denormals may change).
    def upcast(a):
        return None if a is None else a.astype(np.float64)

    out_ref, _, _ = cell.forward(upcast(problem["x"]), tuple(map(upcast, problem["states"])),
                                 {k: upcast(v) for k, v in problem["params"].items()})
    tol = 5e-5 if dtype == np.float32 else 1e-10
    err = np.abs(got["out"] - out_ref).max()
    assert err <= tol * np.abs(out_ref).max() + 100 * tiny, f"out: error {err:.3g}"
    assert denormals_survive()

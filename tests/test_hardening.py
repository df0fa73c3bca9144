"""The core under conditions that once hung, crashed or ran for hours: fork after a threaded kernel, calls with no
elements to compute, sizes that cannot be allocated, bad thread counts, Ctrl-C during a long call, and the release
of the kernels' scratch memory.

Anything that could hang runs in a fresh interpreter with a timeout (``run_python``), so that a regression fails the
test instead of hanging the run.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pylstm
from pylstm import functional as F
from pylstm import reference as R

# The directory that holds the pylstm under test, first on the subprocesses' path.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pylstm.__file__)))


def run_python(code, timeout=120):
    """Runs ``code`` in a fresh interpreter that imports this pylstm; -> its stdout. Fails on an error or a hang."""
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=SOURCE_ROOT, env=env,
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the subprocess did not finish within {timeout} s (a hang); its output: {exc.stdout!r} "
                    f"{exc.stderr!r}")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# ----------------------------------------------------------------------------------------------------------------------
# fork after a threaded kernel: GNU libgomp's threads do not survive fork, and a team of two in the child would wait
# for them forever. The child runs one thread and computes what the parent did.

# A parent that certainly runs a kernel on two threads: a time loop whose weights outgrow one core's cache, with the
# busy-machine fallback to one thread turned off.
THREADED_PARENT = """
    import os, sys
    import numpy as np
    import pylstm
    pylstm._core.set_adaptive_threads(False)
    pylstm.set_num_threads(2)
    m = pylstm.LSTM(256, 256, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((150, 1, 256)).astype(np.float32)
    expected = m(x)[0]
"""


def test_fork_after_a_threaded_kernel_runs_the_child_on_one_thread():
    out = run_python(THREADED_PARENT + """
    pid = os.fork()
    if pid == 0:
        try:
            threads = pylstm.get_num_threads()
            pylstm.set_num_threads(2)  # accepted, and changes nothing in the child
            ok = threads == 1 and pylstm.get_num_threads() == 1 and np.array_equal(m(x)[0], expected)
        finally:
            os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status))
    print("parent threads", pylstm.get_num_threads())
    """, timeout=90)
    assert "child exit 0" in out
    assert "parent threads 2" in out


def test_fork_pool_after_a_threaded_kernel_gives_the_parents_results():
    out = run_python(THREADED_PARENT + """
    import multiprocessing

    def work(seed):
        return m(x)[0]

    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(work, range(3))
    print("equal", all(np.array_equal(r, expected) for r in results))
    """, timeout=90)
    assert "equal True" in out


def test_fork_before_any_threaded_kernel_keeps_the_threads():
    out = run_python("""
    import os
    import pylstm
    pylstm.set_num_threads(2)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if pylstm.get_num_threads() == 2 else 3)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status))
    """, timeout=60)
    assert "child exit 0" in out


# ----------------------------------------------------------------------------------------------------------------------
# Calls with nothing to compute (no batch rows, or no hidden units) return at once, whatever T; as torch, which
# accepts a batch of 0.

def test_zero_batch_with_a_huge_sequence_returns_at_once():
    # T = 2**40 steps of zero bytes: a time loop over them would run for about a day, with Ctrl-C ignored.
    out = run_python("""
    import numpy as np
    import pylstm
    T = 2 ** 40
    for cls in (pylstm.LSTM, pylstm.GRU, pylstm.RNN):
        m = cls(4, 8, num_layers=2, dropout=0.5, seed=0)
        x = np.zeros((T, 0, 4), np.float32)
        out, state = m(x)
        assert out.shape == (T, 0, 8), out.shape
        dx, dstate = m.backward(np.zeros(out.shape, np.float32))
        assert dx.shape == x.shape, dx.shape
        assert not any(g.any() for g in m.grads.values())
    print("done")
    """, timeout=60)
    assert "done" in out


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("B, H", [(0, 8), (3, 0), (0, 0)])
def test_nothing_to_compute_matches_the_reference(cell, B, H):
    T, I = 4, 5
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((B, H))
    weights = [rng.standard_normal((G * H, I)), rng.standard_normal((G * H, H)), rng.standard_normal(G * H),
               rng.standard_normal(G * H)]
    dout = rng.standard_normal((T, B, H))
    dh_n = rng.standard_normal((B, H))
    states = (h0, h0.copy()) if cell == "lstm" else (h0,)
    results = []
    # With no hidden units the outputs are empty and do not depend on x (dx is zero); the reference's row views
    # cannot be made of arrays with no columns, so it is asked only for B = 0 with hidden units.
    for module in (F, R) if H else (F,):
        forward, backward = getattr(module, f"{cell}_forward"), getattr(module, f"{cell}_backward")
        *outputs, saved = forward(x, *states, *weights, training=True)
        grads = {name: np.zeros_like(w) for name, w in zip(("dweight_ih", "dweight_hh", "dbias_ih", "dbias_hh"),
                                                           weights)}
        dstates = (dh_n, dh_n.copy()) if cell == "lstm" else (dh_n,)
        input_grads = backward(saved, weights[0], weights[1], dout, *dstates, **grads)
        results.append((outputs, input_grads, grads))
    outputs, input_grads, grads = results[0]
    if H:
        ref_outputs, ref_input_grads, ref_grads = results[1]
        for got, want in zip([*outputs, *input_grads, *grads.values()],
                             [*ref_outputs, *ref_input_grads, *ref_grads.values()]):
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)
    else:
        assert all(a.size == 0 for a in [*outputs, *input_grads[1:], *grads.values()])
        assert input_grads[0].shape == x.shape and not input_grads[0].any()
    assert outputs[0].shape == (T, B, H)


def test_nothing_to_compute_with_hidden_size_zero_and_a_huge_sequence():
    out = run_python("""
    import numpy as np
    from pylstm import functional as F
    T = 2 ** 40
    x = np.zeros((T, 2, 0), np.float32)
    w_ih, w_hh = np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    h0 = np.zeros((2, 0), np.float32)
    out, h_n, c_n, saved = F.lstm_forward(x, h0, h0, w_ih, w_hh)
    assert out.shape == (T, 2, 0)
    dx, dh0, dc0 = F.lstm_backward(saved, w_ih, w_hh, np.zeros((T, 2, 0), np.float32), dweight_ih=w_ih.copy(),
                                   dweight_hh=w_hh.copy())
    assert dx.shape == (T, 2, 0)
    out, h_n, saved = F.gru_forward(x, h0, w_ih, w_hh)
    out, h_n, saved = F.rnn_forward(x, h0, w_ih, w_hh)
    print("done")
    """, timeout=60)
    assert "done" in out


@pytest.mark.parametrize("cls", [pylstm.LSTMCell, pylstm.GRUCell, pylstm.RNNCell])
def test_step_cells_with_a_batch_of_zero(cls):
    cell = cls(5, 7, seed=0)
    x = np.zeros((0, 5), np.float32)
    state = cell(x)
    parts = state if isinstance(state, tuple) else (state,)
    assert all(p.shape == (0, 7) for p in parts)
    dx, dstate = cell.backward(tuple(np.zeros((0, 7), np.float32) for _ in parts) if len(parts) > 1
                               else np.zeros((0, 7), np.float32))
    assert dx.shape == (0, 5)
    assert not any(g.any() for g in cell.grads.values())


# ----------------------------------------------------------------------------------------------------------------------
# Sizes whose parameters cannot be allocated are refused at once, naming the argument.

@pytest.mark.parametrize("build, name", [
    (lambda: pylstm.RNN(10, 10, num_layers=10 ** 9), "num_layers"),
    (lambda: pylstm.GRU(10, 10, num_layers=10 ** 9, bidirectional=True), "num_layers"),
    (lambda: pylstm.LSTM(10, 2 ** 40), "hidden_size"),
    (lambda: pylstm.LSTM(2 ** 70, 10), "input_size"),
    (lambda: pylstm.LSTM(10, 10, proj_size=2 ** 50), "proj_size"),
    (lambda: pylstm.LSTMCell(10, 2 ** 31), "hidden_size"),
    (lambda: pylstm.RNNCell(2 ** 62, 3), "input_size"),
    (lambda: pylstm.Linear(2 ** 40, 2 ** 40), "in_features"),
    (lambda: pylstm.Linear(3, 2 ** 62), "out_features"),
    (lambda: pylstm.Embedding(2 ** 62, 4), "num_embeddings"),
    (lambda: pylstm.Embedding(4, 2 ** 62), "embedding_dim"),
])
def test_impossible_sizes_are_refused_naming_the_argument(build, name):
    with pytest.raises(ValueError, match=rf"^{name}: .*fit in memory"):
        build()


def test_the_size_check_counts_the_parameters_it_builds(monkeypatch):
    # The check's count (made without the per-layer loop) is the count of the parameters the module then builds.
    from pylstm import _checks
    counted = []
    monkeypatch.setattr(_checks, "parameters_fit", lambda count, dtype, sizes: counted.append(count))
    for build in (lambda: pylstm.LSTM(3, 5, num_layers=3, bidirectional=True, proj_size=2, peepholes=True),
                  lambda: pylstm.GRU(4, 6, num_layers=2, bias=False),
                  lambda: pylstm.RNN(2, 3, num_layers=4, bidirectional=True), lambda: pylstm.GRUCell(3, 4),
                  lambda: pylstm.Linear(3, 4), lambda: pylstm.Linear(3, 4, bias=False),
                  lambda: pylstm.Embedding(5, 2)):
        m = build()
        assert counted == [sum(p.size for p in m.params.values())], m
        counted.clear()


# ----------------------------------------------------------------------------------------------------------------------
# set_num_threads' argument


@pytest.mark.parametrize("bad, error", [
    (2 ** 70, ValueError), (-2 ** 70, ValueError), (2 ** 63, ValueError), (0, ValueError), (-1, ValueError),
    (10 ** 6, ValueError), (True, TypeError), (np.bool_(True), TypeError), (1.0, TypeError), (2.5, TypeError),
    ("2", TypeError), (None, TypeError)])
def test_set_num_threads_refuses_naming_n(num_threads, bad, error):
    before = pylstm.get_num_threads()
    with pytest.raises(error, match=r"^n: expected an int in \[1, "):
        pylstm.set_num_threads(bad)
    assert pylstm.get_num_threads() == before


def test_set_num_threads_takes_numpy_ints(num_threads):
    pylstm.set_num_threads(np.int64(2))
    assert pylstm.get_num_threads() == 2


@pytest.mark.parametrize("value", ["99999", "9999999999999", "abc", "0"])
def test_omp_num_threads_beyond_the_limit_or_unreadable_gives_the_processors(value, monkeypatch):
    """OMP_NUM_THREADS=99999 was taken as is (and 9999999999999 wrapped to 1316134911): a call then started
    thousands of threads. Out of [1, 4096], or not a number: the processors, as without it."""
    monkeypatch.setenv("OMP_NUM_THREADS", value)  # (the subprocess's environment)
    out = run_python("""
    import os
    import pylstm
    print(pylstm.get_num_threads(), len(os.sched_getaffinity(0)))
    """)
    threads, processors = map(int, out.split())
    assert threads == processors


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="counts threads in /proc")
def test_a_call_starts_no_more_threads_than_processors():
    """set_num_threads(64) on a machine of fewer processors: the calls start no more than the processors (more
    only waited for one another: 8 threads on 2 cores trained at half one thread's speed), with the same results."""
    out = run_python("""
    import os
    import numpy as np
    import pylstm
    pylstm._core.set_adaptive_threads(False)
    m = pylstm.LSTM(256, 256, seed=0)
    x = np.random.default_rng(0).standard_normal((50, 16, 256)).astype(np.float32)
    pylstm.set_num_threads(1)
    expected = m(x)[0].copy(), m.backward(np.ones((50, 16, 256), np.float32))[0]
    pylstm.set_num_threads(64)
    got = m(x)[0].copy(), m.backward(np.ones((50, 16, 256), np.float32))[0]
    status = open("/proc/self/status").read()
    threads = int(status.split("Threads:")[1].split()[0])
    same = all(np.array_equal(a, b) for a, b in zip(got, expected))
    print(pylstm.get_num_threads(), threads, len(os.sched_getaffinity(0)), same)
    """)
    setting, threads, processors, same = out.split()
    assert setting == "64" and same == "True"
    assert int(threads) <= int(processors) + 2, out  # (the Python thread and OpenBLAS's own, at most)


# ----------------------------------------------------------------------------------------------------------------------
# Ctrl-C during a long call raises KeyboardInterrupt promptly (the time loop stops at its next step), and the module
# then works as before. The call is sized to take several seconds from a measured step time.

INTERRUPTED_CALL = """
    import os, signal, threading, time
    import numpy as np
    import pylstm
    # Few inputs and many hidden units: the time loop's steps are most of the work. The loop stops at the start of a
    # round; the RNN's first round makes the input projection of all steps (into out, whose pages it touches first),
    # so its signal comes later, once that round is surely over.
    I, H = 16, 768
    m = pylstm.{cls}(I, H, seed=0)
    x = np.random.default_rng(0).standard_normal((20, 1, I)).astype(np.float32)
    m.train({training})
    # The fastest of three calls sizes the long one: a first call's one-time costs (threads, scratch pages) must not
    # make it too short for the signal to land inside it.
    step = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        m(np.resize(x, (500, 1, I)))
        step = min(step, (time.perf_counter() - start) / 500)
    T = int({seconds} / step)
    long_x = np.resize(x, (T, 1, I))
    sent = []
    threading.Timer({delay}, lambda: (sent.append(time.perf_counter()), os.kill(os.getpid(), signal.SIGINT))).start()
    {handler}
    result = None
    try:
        result = m(long_x)
        print("completed", time.perf_counter() - sent[0] if sent else "before the signal")
    except KeyboardInterrupt:
        print("interrupted", time.perf_counter() - sent[0])
    out, _ = m(x)
    print("equal", np.array_equal(out, pylstm.{cls}(I, H, seed=0).train({training})(x)[0]))
"""


@pytest.mark.parametrize("cls, training, seconds, delay", [("LSTM", False, 6.0, 0.5), ("GRU", True, 6.0, 0.5),
                                                            ("RNN", False, 4.0, 2.0)])
def test_ctrl_c_interrupts_a_long_forward(cls, training, seconds, delay):
    out = run_python(INTERRUPTED_CALL.format(cls=cls, training=training, seconds=seconds, delay=delay, handler=""),
                     timeout=120).split("\n")
    assert out[0].startswith("interrupted"), out
    assert float(out[0].split()[1]) < 1.0
    assert out[1] == "equal True"


def test_an_interrupted_training_forward_leaves_the_previous_record_for_backward():
    # As for any forward that fails (tests/test_layer_arguments.py), the last complete forward stays the one that
    # backward differentiates; nothing of the interrupted call is kept.
    out = run_python(INTERRUPTED_CALL.format(cls="LSTM", training=True, seconds=4.0, delay=0.5, handler="") + """
    twin = pylstm.LSTM(I, H, seed=0)
    m.zero_grad()
    m(x)
    twin(x)
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    try:
        m(long_x)
    except KeyboardInterrupt:
        print("interrupted again")
    dout = np.random.default_rng(1).standard_normal((20, 1, H)).astype(np.float32)
    dx, _ = m.backward(dout)
    dx_twin, _ = twin.backward(dout)
    print("same backward", np.array_equal(dx, dx_twin) and all(np.array_equal(m.grads[k], twin.grads[k])
                                                               for k in m.grads))
    """, timeout=120)
    assert "interrupted again" in out and "same backward True" in out, out


def test_a_sigint_handler_that_does_not_raise_gets_complete_results():
    # A Python handler that only takes note: the call cut short runs again, and its outputs are whole.
    handler = "signal.signal(signal.SIGINT, lambda *args: print('noted'))"
    out = run_python(INTERRUPTED_CALL.format(cls="LSTM", training=False, seconds=3.0, delay=0.5, handler=handler) + """
    again = m(long_x)
    print("whole", np.array_equal(result[0], again[0]) and np.array_equal(result[1][0], again[1][0]))
    """, timeout=180)
    assert "noted" in out and "completed" in out, out
    assert "equal True" in out and "whole True" in out, out


# Ctrl-C during a long backward: the call cut short adds nothing to the gradients (they are compared bitwise with
# what they held before, which is not zero), the layer's forward is used up (a second backward raises), and the layer
# then trains as before. The backward is sized from a measured short one. Cases: a loop on two threads (large H, batch
# 1), and a loop on one thread with the weight gradients made beside it on the other (small H, batch 32), where they
# are added while the loop runs and must be put back.

INTERRUPTED_BACKWARD = """
    import os, signal, threading, time
    import numpy as np
    import pylstm
    pylstm.set_num_threads(2)
    I, H, B = {I}, {H}, {B}
    rng = np.random.default_rng(0)
    m = pylstm.{cls}(I, H, seed=0)
    x = rng.standard_normal((20, B, I)).astype(np.float32)
    dout = rng.standard_normal((20, B, H)).astype(np.float32)
    # The fastest of three calls sizes the long one: a first call's one-time costs (threads, scratch pages) must not
    # make it too short for the signal to land inside it.
    step = float("inf")
    for _ in range(3):
        m(np.resize(x, (400, B, I)))
        start = time.perf_counter()
        m.backward(np.resize(dout, (400, B, H)))
        step = min(step, (time.perf_counter() - start) / 400)
    T = int({seconds} / step)
    long_x, long_dout = np.resize(x, (T, B, I)), np.resize(dout, (T, B, H))
    for g in m.grads.values():
        g[...] = rng.standard_normal(g.shape)
    before = {{k: g.copy() for k, g in m.grads.items()}}
    m(long_x)
    sent = []
    threading.Timer({delay}, lambda: (sent.append(time.perf_counter()), os.kill(os.getpid(), signal.SIGINT))).start()
    {handler}
    try:
        m.backward(long_dout)
        print("completed", time.perf_counter() - sent[0] if sent else "before the signal")
    except KeyboardInterrupt:
        print("interrupted", time.perf_counter() - sent[0])
    print("grads kept", all(np.array_equal(m.grads[k], before[k]) for k in before))
    twin = pylstm.{cls}(I, H, seed=0)
    for k, g in twin.grads.items():
        g[...] = before[k]
"""

# The last: a loop whose two threads take slices of the batch rows (sequence/scheduling.h's row_slices).
BACKWARD_CASES = [("LSTM", 16, 768, 1), ("LSTM", 8, 64, 32), ("GRU", 8, 64, 32), ("RNN", 16, 1024, 1),
                  ("LSTM", 8, 128, 64)]


@pytest.mark.parametrize("cls, I, H, B", BACKWARD_CASES, ids=["-".join(map(str, c)) for c in BACKWARD_CASES])
def test_ctrl_c_interrupts_a_long_backward_and_adds_nothing(cls, I, H, B):
    out = run_python(INTERRUPTED_BACKWARD.format(cls=cls, I=I, H=H, B=B, seconds=3.0, delay=0.5, handler="") + """
    try:
        m.backward(long_dout)
    except RuntimeError:
        print("used up")
    m.zero_grad()
    twin.zero_grad()
    m(x)
    twin(x)
    dx, _ = m.backward(dout)
    dx_twin, _ = twin.backward(dout)
    print("trains", np.array_equal(dx, dx_twin) and all(np.array_equal(m.grads[k], twin.grads[k]) for k in m.grads))
    """, timeout=180).split("\n")
    assert out[0].startswith("interrupted"), out
    assert float(out[0].split()[1]) < 1.0
    assert out[1:4] == ["grads kept True", "used up", "trains True"], out


@pytest.mark.parametrize("cls, I, H, B", BACKWARD_CASES[1:3], ids=["-".join(map(str, c)) for c in BACKWARD_CASES[1:3]])
def test_a_backward_whose_sigint_handler_does_not_raise_adds_its_gradients_once(cls, I, H, B):
    # The call cut short runs again in full: the gradients are what one uninterrupted backward adds, bitwise.
    handler = "signal.signal(signal.SIGINT, lambda *args: print('noted'))"
    out = run_python(INTERRUPTED_BACKWARD.format(cls=cls, I=I, H=H, B=B, seconds=2.0, delay=0.4, handler=handler) + """
    twin(long_x)
    twin.backward(long_dout)
    print("once", all(np.array_equal(m.grads[k], twin.grads[k]) for k in m.grads))
    """, timeout=180)
    assert "noted" in out and "completed" in out and "grads kept False" in out and "once True" in out, out


# ----------------------------------------------------------------------------------------------------------------------
# release_memory frees the kernels' scratch memory too (every thread's), not only the cached output blocks.

def test_release_memory_returns_what_a_large_training_call_added():
    out = run_python("""
    import gc, os
    import numpy as np
    import pylstm

    def resident():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    m = pylstm.LSTM(512, 512, num_layers=2, seed=0)
    x = np.random.default_rng(0).standard_normal((100, 64, 512)).astype(np.float32)
    before = resident()
    out, _ = m(x)
    m.backward(np.ones_like(out))
    del out
    m.eval()
    gc.collect()
    after_call = resident()
    freed = pylstm.release_memory()
    after_release = resident()
    print(before, after_call, after_release, freed)
    """, timeout=120)
    before, after_call, after_release, freed = map(int, out.split())
    added = after_call - before
    assert added > 64 << 20  # the call did add memory (its saved activations, scratch, cached output blocks)
    assert freed > 0
    assert after_call - after_release > 0.8 * added, (before, after_call, after_release)


def test_release_memory_while_other_threads_run_kernels():
    # Calls on several Python threads while another releases memory over and over: every result stays correct.
    out = run_python("""
    import threading
    import numpy as np
    import pylstm
    m = pylstm.LSTM(64, 96, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((50, 3, 64)).astype(np.float32)
    expected = m(x)[0]
    stop = threading.Event()
    bad = []

    def calls():
        for _ in range(150):
            if not np.array_equal(m(x)[0], expected):
                bad.append(1)

    def releases():
        while not stop.is_set():
            pylstm.release_memory()

    workers = [threading.Thread(target=calls) for _ in range(3)]
    releaser = threading.Thread(target=releases)
    releaser.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    releaser.join()
    print("bad", len(bad))
    """, timeout=120)
    assert "bad 0" in out


# An index array (ids, targets, batch_sizes) that another thread rewrites during a call: the kernels index with it
# without the GIL, after it was checked. Each call works on its own checked copy, so a racing writer of out-of-range
# values gives an error or a result, never reads or writes out of bounds (which crashed: hence a subprocess).
RACED_INDEX_CALLS = {
    "embedding": """
        emb = pylstm.Embedding(4, 64, seed=0)
        a = np.zeros(1 << 16, np.int64)
        def call():
            out = emb(a)
            emb.backward(np.ones_like(out))
        big = 1 << 40
    """,
    "cross_entropy": """
        logits = np.zeros((1 << 15, 8), np.float32)
        a = np.zeros(1 << 15, np.int64)
        def call():
            pylstm.losses.cross_entropy(logits, a)
        big = 1 << 40
    """,
    "batch_sizes": """
        a = np.ones(64, np.int64)
        x = np.ones((64, 8), np.float32)
        h0 = np.zeros((64, 32), np.float32)
        w_ih, w_hh = np.full((32, 8), 0.01, np.float32), np.full((32, 32), 0.01, np.float32)
        def call():
            pylstm.functional.rnn_forward(x, h0, w_ih, w_hh, batch_sizes=a, training=False)
        big = 1 << 30
    """,
}


@pytest.mark.parametrize("which", list(RACED_INDEX_CALLS))
def test_an_index_array_rewritten_by_another_thread_during_calls(which):
    out = run_python(textwrap.dedent("""
    import threading, time
    import numpy as np
    import pylstm
    """) + textwrap.dedent(RACED_INDEX_CALLS[which]) + textwrap.dedent("""
    good, stop = a.copy(), threading.Event()
    def rewrite():
        while not stop.is_set():
            a[:] = big
            a[:] = good
    writer = threading.Thread(target=rewrite)
    writer.start()
    calls, refused, end = 0, 0, time.perf_counter() + 3.0
    try:
        while time.perf_counter() < end:
            try:
                call()
                calls += 1
            except ValueError:
                refused += 1
    finally:
        stop.set()
        writer.join()
    print("done", calls, refused)
    """), timeout=120)
    assert out.startswith("done"), out


# ----------------------------------------------------------------------------------------------------------------------
# Writes past the end of a scratch block corrupt the heap without changing any result: a process that runs the
# backward passes of every layout and direction and then frees everything must exit cleanly (glibc checks its heap
# when the blocks are freed). The sanitizer build (scripts/sanitize.sh) sees such writes directly.

def test_backward_passes_of_every_layout_leave_the_heap_intact():
    run_python("""
        import numpy as np
        import pylstm
        from pylstm import functional as F
        rng = np.random.default_rng(0)
        packed = ((5, 2, 13, 37, [2] * 5), (5, 1, 16, 32, [1] * 5), (7, 3, 13, 64, [3, 3, 2, 2, 1, 1, 1]))
        for T, B, I, H, sizes in packed:
            x = rng.standard_normal((sum(sizes), I)).astype(np.float32)
            h0, c0 = np.zeros((B, H), np.float32), np.zeros((B, H), np.float32)
            w_ih = rng.standard_normal((4 * H, I)).astype(np.float32)
            w_hh = rng.standard_normal((4 * H, H)).astype(np.float32)
            for _ in range(3):
                out, _, _, saved = F.lstm_forward(x, h0, c0, w_ih, w_hh, batch_sizes=np.array(sizes), training=True)
                F.lstm_backward(saved, w_ih, w_hh, np.ones_like(out), dweight_ih=np.zeros_like(w_ih),
                                dweight_hh=np.zeros_like(w_hh))
        for cls, kw in ((pylstm.LSTM, {}), (pylstm.LSTM, {"proj_size": 5}), (pylstm.GRU, {}),
                        (pylstm.GRU, {"reset_after": False}), (pylstm.RNN, {})):
            for B, T, lengths in ((2, 5, None), (2, 5, [5, 5]), (3, 7, [7, 2, 4]), (1, 5, [5])):
                for bidirectional in (False, True):
                    m = cls(13, 37, num_layers=2, bidirectional=bidirectional, seed=1, **kw)
                    x = rng.standard_normal((T, B, 13)).astype(np.float32)
                    for _ in range(2):
                        out, _ = m(x, lengths=lengths)
                        m.backward(np.ones_like(out))
                    del m, out
        pylstm.release_memory()
        print("ok")
    """)

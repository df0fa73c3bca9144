"""Other libraries' idle BLAS threads (csrc/primitives/blas_pools.h): before a team of pylstm's threads starts, a
loaded pthreads OpenBLAS (NumPy's) is given a short idle spin and its workers are stopped once, only while the caller
is the process's only Python thread; NumPy starts them again at its next multithreaded call and computes what it did. Each case runs in a fresh
interpreter: OpenBLAS's pool is process-wide state. Timing is not asserted (bench/test_training.py, group
numpy-between, measures it).
"""
import ctypes
import json
import os

import numpy as np
import pytest
from test_isa_and_threads import run_python

import pylstm
from pylstm import _core

needs_threads = pytest.mark.skipif(not _core.has_openmp, reason="a build without OpenMP starts no threads")


def _openblas_pthreads_libraries():
    """The loaded OpenBLAS builds with a pthreads pool, as threadpoolctl (not pylstm) finds them."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return {os.path.realpath(i["filepath"]) for i in threadpoolctl.threadpool_info()
            if i.get("internal_api") == "openblas" and i.get("threading_layer") == "pthreads"}


def test_finds_the_loaded_openblas_pools():
    # NumPy's BLAS may be MKL, Accelerate or a sequential/OpenMP OpenBLAS: then nothing is found, and nothing stopped.
    found = {os.path.realpath(p) for p in _core._blas_pools()[0]}
    assert found == _openblas_pthreads_libraries()
    for path in found:
        lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL)
        assert hasattr(lib, "blas_thread_shutdown_") and hasattr(lib, "blas_server_avail")


# A fresh interpreter: a NumPy matmul that runs on OpenBLAS's threads, then pylstm's call, and what became of the pool.
PROBE = """
    import ctypes, json, os, threading
    import numpy as np
    import pylstm
    from pylstm import _core
    paths, _ = _core._blas_pools()
    libs = [ctypes.CDLL(p) for p in paths]
    avail = [ctypes.c_int.in_dll(lib, "blas_server_avail") for lib in libs]
    pylstm.set_num_threads({threads})
    _core.set_adaptive_threads(False)  # two threads even on a busy machine
    a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    expected = a @ a
    other = threading.Event()
    if {other_thread}:
        threading.Thread(target=other.wait).start()
    lstm = pylstm.LSTM(64, 256, seed=0)
    x = np.random.default_rng(1).standard_normal((64, 32, 64)).astype(np.float32)
    up_before = [v.value for v in avail]
    quieted_before = _core._blas_pools()[1]
    y_before = lstm(x)[0]
    up_after = [v.value for v in avail]
    quieted = _core._blas_pools()[1] - quieted_before
    again = a @ a
    up_again = [v.value for v in avail]
    y = lstm(x)[0]  # a second round: with the spin settled, nothing more to stop
    a @ a
    lstm(x)
    quieted_later = _core._blas_pools()[1] - quieted_before - quieted
    other.set()
    print(json.dumps(dict(paths=paths, up_before=up_before, up_after=up_after, quieted=quieted,
                          up_again=up_again, same_numpy=bool((again == expected).all()),
                          same_pylstm=bool((y == y_before).all()), quieted_later=quieted_later,
                          timeouts=[lib.openblas_thread_timeout() for lib in libs],
                          environ=os.environ.get("OPENBLAS_THREAD_TIMEOUT"))))
"""


def _probe(threads=2, other_thread=False, env=None):
    if not _openblas_pthreads_libraries():
        pytest.skip("NumPy's BLAS here is not an OpenBLAS with a pthreads pool")
    out = run_python(PROBE.format(threads=threads, other_thread=other_thread), **(env or {}))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_threads
def test_threaded_call_stops_the_idle_pool_and_numpy_starts_it_again():
    r = _probe()
    assert r["paths"] and all(r["up_before"]), r
    assert r["quieted"] == len(r["paths"]) and not any(r["up_after"]), r
    assert all(r["up_again"]), r  # NumPy's next multithreaded call made its threads again
    assert r["same_numpy"] and r["same_pylstm"], r
    # They started again with a short idle spin (2^20 cycles), set for OpenBLAS's read only: the environment is as
    # it was, and the pool is not stopped again.
    assert r["timeouts"] == [20] * len(r["paths"]) and r["environ"] is None, r
    assert r["quieted_later"] == 0, r


@needs_threads
def test_the_users_own_idle_spin_is_left_alone():
    r = _probe(env={"OPENBLAS_THREAD_TIMEOUT": "25"})
    assert r["paths"] and r["quieted"] == 0 and r["quieted_later"] == 0 and all(r["up_after"]), r
    assert r["timeouts"] == [25] * len(r["paths"]) and r["environ"] == "25", r


@needs_threads
def test_pool_left_alone_while_another_python_thread_lives():
    # That thread might be inside a NumPy call with the GIL released: stopping the pool then is not safe.
    r = _probe(other_thread=True)
    assert r["quieted"] == 0 and all(r["up_after"]), r
    assert r["same_numpy"] and r["same_pylstm"], r


def test_single_thread_call_leaves_the_pool_alone():
    r = _probe(threads=1)
    assert r["quieted"] == 0 and all(r["up_after"]), r
    assert r["same_numpy"] and r["same_pylstm"], r


def test_numpy_computes_the_same_after_its_pool_was_stopped():
    # In this process: a pylstm call stops the pool (when it is up), NumPy's products stay bitwise the same.
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 400))
    b = rng.standard_normal((400, 200)).astype(np.float32)
    expected = (a @ a.T, b.T @ b)
    pylstm.LSTM(64, 256, seed=0)(rng.standard_normal((16, 32, 64)).astype(np.float32))
    again = (a @ a.T, b.T @ b)
    assert all((e == g).all() for e, g in zip(expected, again))


def test_fit_progress_bar_starts_no_thread():
    # tqdm's monitor thread would keep the pools spinning (pylstm cannot tell it from a thread inside NumPy). In a
    # fresh interpreter: this session's other tests may have left a monitor of their own.
    pytest.importorskip("tqdm")
    out = run_python("""
        import threading, numpy as np, pylstm
        net = pylstm.Sequential(pylstm.Embedding(20, 8, seed=0), pylstm.LSTM(8, 16, seed=1),
                                pylstm.Linear(16, 20, seed=2))
        streams = np.random.default_rng(3).integers(0, 20, (41, 4))
        pylstm.fit(net, streams, pylstm.losses.cross_entropy, pylstm.optim.SGD(net, lr=0.1), epochs=1, bptt=10,
                   progress="bar")
        print(threading.active_count())
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "1", out.stdout

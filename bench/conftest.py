"""Process set-up for the benchmark suite: threads, the OpenBLAS environment, options, machine info.

Everything here runs when pytest loads this file, before any test module imports numpy, torch or pylstm, so the
environment variables below are read by those libraries as they load. They are changed in this process only.
"""
import os
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
if REPO_ROOT not in sys.path:  # benchmark the in-place build of this checkout (python setup.py build_ext --inplace)
    sys.path.insert(0, REPO_ROOT)
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

#: Threads for every implementation (pylstm, torch, ONNX Runtime intra-op, NumPy's BLAS).
THREADS = int(os.environ.get("PYLSTM_BENCH_THREADS", "2"))

# Some machines here set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to work around old OpenBLAS builds; they make a
# current numpy pick a slower GEMM kernel (Haswell instead of SkylakeX on an AVX-512 machine: about half the matmul
# peak). Unset both together for this process only, unless PYLSTM_BENCH_KEEP_OPENBLAS_ENV=1. What was found and what
# was done goes into the benchmark JSON (machine_info) so the report can say it.
OPENBLAS_ENV_FOUND = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
OPENBLAS_ENV_NOTE = "none set"
if OPENBLAS_ENV_FOUND:
    if os.environ.get("PYLSTM_BENCH_KEEP_OPENBLAS_ENV") == "1":
        OPENBLAS_ENV_NOTE = f"kept {OPENBLAS_ENV_FOUND} (PYLSTM_BENCH_KEEP_OPENBLAS_ENV=1)"
    elif "numpy" in sys.modules:
        OPENBLAS_ENV_NOTE = (f"found {OPENBLAS_ENV_FOUND} but numpy was imported before bench/conftest.py, "
                             "so they are in effect; unset them in the shell to benchmark numpy's own kernel choice")
    else:
        for _k in OPENBLAS_ENV_FOUND:
            del os.environ[_k]
        OPENBLAS_ENV_NOTE = f"unset for the benchmark process (were {OPENBLAS_ENV_FOUND})"

# Thread counts read by the runtimes as they load (pylstm's OpenMP before set_num_threads existed; NumPy's BLAS when
# threadpoolctl is missing). The explicit calls in pytest_configure set them again.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import pytest  # noqa: E402

import _common  # noqa: E402

_RUN_START = _common.cpu_snapshot()


def pytest_addoption(parser):
    group = parser.getgroup("pylstm-bench", "pylstm benchmark suite")
    group.addoption("--bench-seconds", type=float, default=2.0,
                    help="target measuring time per implementation per case, seconds (default 2.0)")
    group.addoption("--ref-max-gflop", type=float, default=4.0,
                    help="time the NumPy reference only on cases whose work is at most this many GFLOP (default 4)")


def pytest_configure(config):
    _common.set_threads(THREADS)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    info = _common.environment_info(THREADS, OPENBLAS_ENV_NOTE)
    others, steal = _common.others_cpu_share(_RUN_START, _common.cpu_snapshot())
    info.update(others_cpu_pct_run=others, steal_cpu_pct_run=steal)
    machine_info["pylstm_bench"] = info

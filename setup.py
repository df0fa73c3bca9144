"""Build of pylstm's C++ extension pylstm._core (pybind11, C++17, -O3, OpenMP when the compiler has it).

Never -march=native (one wheel must run on any x86-64) and never -ffast-math (results must match the reference).
-fno-math-errno only drops errno from math functions (no result changes).
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, ParallelCompile, build_ext
from setuptools import setup

CSRC = Path("csrc")
SOURCES = sorted(str(p) for p in CSRC.rglob("*.cpp"))
HEADERS = sorted(str(p) for p in CSRC.rglob("*.h"))  # a changed header rebuilds every source


def compiler_accepts(flags):
    """True when the C++ compiler builds and links a small OpenMP program with these flags."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        return False
    program = "#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "probe.cpp")
        src.write_text(program)
        result = subprocess.run([cxx, str(src), "-o", str(Path(tmp, "probe")), *flags],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return result.returncode == 0


def openmp_flags():
    """-fopenmp when it works; PYLSTM_OPENMP=0 builds without (single-threaded kernels)."""
    if os.environ.get("PYLSTM_OPENMP", "1") == "0" or sys.platform == "win32":
        return []
    if compiler_accepts(["-fopenmp"]):
        return ["-fopenmp"]
    print("pylstm: the compiler has no OpenMP; building single-threaded kernels", file=sys.stderr)
    return []


omp = openmp_flags()
ext = Pybind11Extension(
    "pylstm._core",
    SOURCES,
    include_dirs=[str(CSRC)],
    depends=HEADERS,
    cxx_std=17,
    # -Wno-maybe-uninitialized: GCC 12 warns about its own AVX-512 intrinsic headers (a known false positive).
    # -fno-math-errno: math functions need not set errno, so sqrt is one instruction and loops with it vectorize; no
    # floating-point result changes (unlike -ffast-math, which is never used).
    extra_compile_args=["-O3", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-maybe-uninitialized", *omp],
    extra_link_args=omp,
)

ParallelCompile("PYLSTM_BUILD_JOBS", default=0).install()
setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})

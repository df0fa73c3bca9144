"""Build of pylstm's extensions: pylstm._core, the C++ kernels (pybind11, C++17, -O3, OpenMP when the compiler has
it), and pylstm._text, the loops of pylstm.text (Cython, C, -O3).

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
from setuptools import Extension, setup

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
    # dlopen/dlsym (csrc/primitives/blas_pools.cpp) are in libdl before glibc 2.34, which manylinux wheels build
    # against; from 2.34 on they are in libc and libdl is an empty stub, so naming it costs nothing there.
    libraries=["dl"] if sys.platform.startswith("linux") else [],
)

# PYLSTM_SANITIZE=1 (scripts/sanitize.sh; never for a release): the kernels under AddressSanitizer and
# UndefinedBehaviorSanitizer, any undefined behaviour fatal; the module then needs libasan preloaded into Python.
# PYLSTM_GUARD_BUFFERS puts canaries around every scratch array carved out of a larger block (and gives outputs
# exact-size blocks), so that an overrun inside pylstm's own blocks, which ASan cannot see, fails too.
if os.environ.get("PYLSTM_SANITIZE") == "1":
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g1"]
    ext.extra_compile_args += sanitizers + ["-DPYLSTM_GUARD_BUFFERS"]
    ext.extra_link_args += sanitizers


def text_extension():
    """pylstm._text from pylstm/_text.pyx: Cython (a build requirement in pyproject.toml) writes pylstm/_text.c,
    compiled as C with -O3. No NumPy headers: the module uses typed memoryviews."""
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.exit("pylstm: building the extension pylstm._text needs Cython: python -m pip install cython")
    text = Extension("pylstm._text", [str(Path("pylstm", "_text.pyx"))], extra_compile_args=["-O3"])
    # The directives that the module's first line sets too: no bounds or wraparound checks (it checks its indices).
    return cythonize([text], compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
                     quiet=True)[0]


ParallelCompile("PYLSTM_BUILD_JOBS", default=0).install()
setup(ext_modules=[ext, text_extension()], cmdclass={"build_ext": build_ext})

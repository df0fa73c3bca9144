#!/usr/bin/env bash
# The C++ kernels under AddressSanitizer and UndefinedBehaviorSanitizer: builds a copy of the tree with
# PYLSTM_SANITIZE=1 in a temporary directory (the tree's own build is untouched) and runs the tests that drive the
# kernels there, on every ISA this machine has. Any report fails the run: ASan stops at its first error, and the
# build makes undefined behaviour fatal (-fno-sanitize-recover=undefined).
#
# Usage: scripts/sanitize.sh [extra pytest arguments]      (PYTHON=... picks the interpreter; default python3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"

# The kernels' own tests take the conftest's `isa` fixture: one run covers every ISA. The tests of the layers, cells,
# random configurations (test_fuzz) and training ops run once, on the best ISA the machine has (the kernels under
# them are the ones the first run covered). tests/test_buffers.py is left out: it tests the recycling of output
# blocks, which the guard build (PYLSTM_GUARD_BUFFERS) replaces with exact-size blocks that ASan can bound.
kernel_tests=(tests/test_kernels.py tests/test_kernel_sequences.py tests/test_reverse_direction.py
              tests/test_isa_and_threads.py)
isa_tests=(tests/test_cells.py tests/test_layers.py tests/test_stacks_directions_lengths.py tests/test_padding.py
           tests/test_fuzz.py tests/test_losses.py tests/test_optim.py tests/test_training_loops.py)

work="$(mktemp -d "${TMPDIR:-/tmp}/pylstm-sanitize.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The tree as it is on disk (tracked and new files, not what .gitignore names: no builds, no .so files).
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work" 2>/dev/null || true)
cd "$work"
# setup.py runs here without pip's isolated build environment: install the build requirements pyproject.toml lists.
"$python" - <<'PY' >requirements.txt
import ast, re
section = open("pyproject.toml").read().split("[build-system]", 1)[1]
print("\n".join(ast.literal_eval(re.search(r"^requires\s*=\s*(\[.*?\])", section, re.M | re.S).group(1))))
PY
"$python" -m pip install -q -r requirements.txt
echo "sanitize: building in $work"
built_from=$SECONDS
PYLSTM_SANITIZE=1 PYLSTM_BUILD_JOBS="${PYLSTM_BUILD_JOBS:-2}" "$python" setup.py -q build_ext --inplace >build.log 2>&1 ||
    { cat build.log; exit 1; }

# Python itself is not instrumented: the ASan runtime must be loaded first, and libstdc++ with it (Python does not
# link it, and ASan's interception of C++ throws fails without it). Python's own allocations are never freed at
# exit, so leak detection is off; everything else stops at the first report.
cxx="${CXX:-g++}"
LD_PRELOAD="$("$cxx" -print-file-name=libasan.so) $("$cxx" -print-file-name=libstdc++.so)"
export LD_PRELOAD
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONDONTWRITEBYTECODE=1

isas="$("$python" -c 'import pylstm; print(" ".join(pylstm.supported_isas()))')"
start=$SECONDS
echo "sanitize: built in $((start - built_from)) s; the kernels' tests on every ISA ($isas)"
"$python" -m pytest -q -p no:cacheprovider "${kernel_tests[@]}" "$@"
echo "sanitize: the layers' and training tests on $("$python" -c 'import pylstm; print(pylstm.isa())')"
"$python" -m pytest -q -p no:cacheprovider "${isa_tests[@]}" "$@"
echo "sanitize: no reports (ISAs: $isas; build $((start - built_from)) s, tests $((SECONDS - start)) s)"

"""The cache sizes the kernels' choices follow (``pylstm.cache_sizes()``, csrc/primitives/cache_sizes.h), and what
must not follow them.

* What is reported: Linux's sysfs where it answers (read here independently), plausible sizes in any case.
* The override PYLSTM_CACHE_SIZES ("L1D,L2,L3", sizes with K/M/G): parsed, reported as 'override', and a malformed
  one fails the import naming the variable (checked in fresh interpreters).
* The choices follow it: the time loops' thresholds (threads, work items, streamed stores) change with the L2 an
  override gives.
* Results do not: every output and gradient of every cell, forward and backward, at batch 1-4 and large batches, on
  1 and 2 threads, is bitwise the same under the override of a smaller CPU's caches as under this machine's, on AVX2
  (PYLSTM_ISA=avx2) and on the best ISA.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pylstm
from pylstm import _core

PACKAGE_PARENT = Path(pylstm.__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent
SYSFS = Path("/sys/devices/system/cpu/cpu0/cache")
ZEN = "32K,512K,32M"  # an AMD EPYC (Zen) core's L1d and L2, and its core complex's L3
KIB, MIB = 1 << 10, 1 << 20


def run_python(code, **extra):
    """Runs `code` in a fresh interpreter that imports this pylstm, without the session's PYLSTM_CACHE_SIZES and
    PYLSTM_ISA unless given in `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYLSTM_CACHE_SIZES", "PYLSTM_ISA")}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=PACKAGE_PARENT,
                          capture_output=True, text=True, timeout=600, check=False)


def reported(**env):
    """pylstm.cache_sizes() and _core.cache_thresholds() of a fresh interpreter with `env`."""
    result = run_python("""
        import json, pylstm
        from pylstm import _core
        print(json.dumps([pylstm.cache_sizes(), _core.cache_thresholds()]))
    """, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sysfs_sizes():
    """cpu0's data and unified caches by level, in bytes, as sysfs lists them (sizes like '48K')."""
    units = {"K": KIB, "M": MIB, "G": 1 << 30}
    sizes = {}
    for index in sorted(SYSFS.glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind in ("Data", "Unified"):
            sizes[int(level)] = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    return sizes


# ----------------------------------------------------------------------------------------------------------------------
# 1. What is reported.

def test_reported_sizes_are_plausible():
    sizes, _ = reported()
    assert set(sizes) == {"l1d", "l2", "l3", "source"}
    assert sizes["source"] in ("sysfs", "cpuid", "default")
    assert 8 * KIB <= sizes["l1d"] <= 1 * MIB and sizes["l1d"] % KIB == 0, sizes
    assert 128 * KIB <= sizes["l2"] <= 64 * MIB and sizes["l2"] % (64 * KIB) == 0, sizes
    assert sizes["l1d"] < sizes["l2"], sizes
    assert sizes["l3"] == 0 or (sizes["l3"] >= sizes["l2"] and sizes["l3"] % MIB == 0), sizes


@pytest.mark.skipif(not (SYSFS / "index0").is_dir(), reason="no Linux sysfs cache information here")
def test_reported_sizes_are_sysfs_s():
    expected = sysfs_sizes()
    sizes, _ = reported()
    assert sizes["source"] == "sysfs"
    assert (sizes["l1d"], sizes["l2"], sizes["l3"]) == (expected[1], expected[2], expected.get(3, 0))


def test_the_module_reports_what_the_package_does():
    assert pylstm.cache_sizes() == _core.cache_sizes()
    assert "cache_sizes" in pylstm.__all__


# ----------------------------------------------------------------------------------------------------------------------
# 2. The override.

@pytest.mark.parametrize("text,expected", [
    ("32K,512K,32M", (32 * KIB, 512 * KIB, 32 * MIB)),
    ("48k,2m,1g", (48 * KIB, 2 * MIB, 1 << 30)),
    (" 32KiB , 1MB,96M ", (32 * KIB, 1 * MIB, 96 * MIB)),
    ("32768,524288,33554432", (32 * KIB, 512 * KIB, 32 * MIB)),
    ("64K,64K,64K", (64 * KIB, 64 * KIB, 64 * KIB)),
])
def test_override_parses(text, expected):
    parsed = _core.parse_cache_sizes(text)
    assert (parsed["l1d"], parsed["l2"], parsed["l3"]) == expected and parsed["source"] == "override"


@pytest.mark.parametrize("text,complaint", [
    ("", "three sizes"), ("32K,512K", "three sizes"), ("32K,512K,32M,1G", "three sizes"), ("32K;512K;32M", "three"),
    ("32K,,32M", "not a size"), ("x,512K,32M", "not a size"), ("-32K,512K,32M", "not a size"),
    ("32Q,512K,32M", "unit"), ("32 K,512K,32M", "unit"), ("1.5M,2M,3M", "unit"), ("32K,512KK,32M", "unit"),
    ("0K,512K,32M", "not positive"), ("32,512,32768", "less than 1K"), ("2T,4T,8T", "unit"),
    ("32K,512K,2048G", "larger than 1T"), ("32K,512K,99999999999999999999", "larger than 1T"),
    ("512K,32K,32M", "L1D <= L2 <= L3"), ("32K,64M,32M", "L1D <= L2 <= L3"),
])
def test_malformed_override_is_rejected_saying_why(text, complaint):
    with pytest.raises(ValueError, match="cache sizes") as info:
        _core.parse_cache_sizes(text)
    assert complaint in str(info.value)


def test_override_is_reported_and_used():
    sizes, thresholds = reported(PYLSTM_CACHE_SIZES=ZEN)
    assert sizes == {"l1d": 32 * KIB, "l2": 512 * KIB, "l3": 32 * MIB, "source": "override"}
    assert all(v > 0 for v in thresholds.values()), thresholds


@pytest.mark.parametrize("value", ["32K,512K", "32,512,32768", "big,bigger,biggest"])
def test_malformed_override_fails_the_import_naming_the_variable(value):
    result = run_python("import pylstm", PYLSTM_CACHE_SIZES=value)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError") and f"PYLSTM_CACHE_SIZES='{value}'" in last, result.stderr


def test_empty_override_is_no_override():
    sizes, _ = reported(PYLSTM_CACHE_SIZES="")
    assert sizes["source"] != "override"


# ----------------------------------------------------------------------------------------------------------------------
# 3. The choices follow the sizes.

def test_the_time_loops_choices_follow_the_l2():
    """Under this machine's own sizes given as an override the thresholds are this machine's; under a smaller L2 every
    one of them is smaller, by the L2's ratio (each is a fraction or multiple of one core's L2)."""
    here, here_thresholds = reported()
    same, same_thresholds = reported(PYLSTM_CACHE_SIZES=f"{here['l1d']},{here['l2']},{max(here['l3'], here['l2'])}")
    assert same["source"] == "override" and same_thresholds == here_thresholds
    smaller_l2 = here["l2"] // 4
    small, small_thresholds = reported(PYLSTM_CACHE_SIZES=f"{min(here['l1d'], smaller_l2)},{smaller_l2},{32 * MIB}")
    assert small["l2"] == smaller_l2
    assert small_thresholds.keys() == here_thresholds.keys()
    for name, value in here_thresholds.items():
        assert small_thresholds[name] * 4 == value, (name, small_thresholds[name], value)


# ----------------------------------------------------------------------------------------------------------------------
# 4. Results do not: bitwise the same under another CPU's cache sizes.

# (T, B, I, H), each on one side of a threshold that a 512 KiB L2 moves and a 2 MiB one does not (with float32 and
# float64 between them): batch 1-4 loops (dots), a small LSTM's loop of two threads only under the smaller L2,
# recurrent weights of more than one work item a thread, streamed saved gates and pre-activation gradients, whole-K
# row blocks of a 64-row step and of the weight gradients.
RESULT_SHAPES = [(7, 1, 24, 40), (9, 2, 128, 256), (12, 3, 64, 256), (10, 4, 200, 160), (30, 4, 96, 96),
                 (25, 16, 512, 512), (6, 64, 256, 512), (40, 48, 64, 300)]

RESULT_PROBE = """
    import hashlib, json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import pylstm
    from pylstm import _core
    from cells import ALL_CELLS
    from test_isa_and_threads import forward_backward_all, random_problem

    _core.set_adaptive_threads(False)  # two threads stay two on a busy machine (results would not change anyway)
    hashes = {{}}
    for threads in (1, 2):
        pylstm.set_num_threads(threads)
        for dtype in (np.float32, np.float64):
            for cell in ALL_CELLS:
                for shape in {shapes!r}:
                    result = forward_backward_all(cell, random_problem(cell, *shape, dtype, seed=11))
                    for name, array in result.items():
                        key = f"{{threads}} {{np.dtype(dtype).name}} {{cell.name}} {{shape}} {{name}}"
                        hashes[key] = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
    print(json.dumps([pylstm.isa(), pylstm.cache_sizes()["source"], hashes]))
"""


def result_hashes(**env):
    result = run_python(RESULT_PROBE.format(tests=str(TESTS_DIR), shapes=RESULT_SHAPES), OMP_NUM_THREADS="2",
                        OPENBLAS_NUM_THREADS="1", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("isa", sorted({"avx2", pylstm.supported_isas()[-1]} & set(pylstm.supported_isas())))
def test_results_do_not_depend_on_the_cache_sizes(isa):
    isa_here, source_here, here = result_hashes(PYLSTM_ISA=isa)
    isa_zen, source_zen, zen = result_hashes(PYLSTM_ISA=isa, PYLSTM_CACHE_SIZES=ZEN)
    assert (isa_here, isa_zen, source_zen) == (isa, isa, "override") and source_here != "override"
    assert here.keys() == zen.keys() and len(here) > 0
    differ = [key for key in here if here[key] != zen[key]]
    assert not differ, f"{len(differ)} of {len(here)} results differ under PYLSTM_CACHE_SIZES={ZEN}: {differ[:8]}"

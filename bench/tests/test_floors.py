"""bench/floors.py's program (bench/floors/floors.cpp) builds against csrc/primitives and measures what it says.

The floors in the README come from it; this keeps it building as the primitives change, and checks its outputs on
small sizes: three positive times for the lock step, the extras and the GEMMs, one for the others, the path that
PYLSTM_ISA names (every ISA the machine runs), and usage errors for bad commands (a cell of no gate blocks too).
"""
import importlib.util
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import pylstm

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build bench/floors/floors.cpp")


@pytest.fixture(scope="module")
def floors(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("bench_floors", ROOT / "bench" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exe = module.build(tmp_path_factory.mktemp("floors"))
    return module, exe


@pytest.mark.parametrize("args, count", [
    (("lockstep", 64, 20), 3),              # one thread alone, two free, two in lock step
    (("dots", 96, 72, 3, 6), 1),            # odd sizes: the dot kernel's row and k tails
    (("panels", 16, 96, 40, 3), 1),         # a panel of 48 columns: one whole, one partial
    (("extras", 16, 40, 3), 3),             # packing (B > 4) and gate math; H = 40: partial panels and registers
    (("extras", 1, 40, 3), 3),              # the batch-1 preparation (W_ih packed; W_hh read in place)
    (("extras", 4, 40, 10), 3),             # batch 4, 10 steps: W_hh transposed for the backward's dot products
    (("prepare", 16, 40, 3, 1), 1),         # an RNN's preparation (B > 4): one gate block
    (("prepare", 4, 40, 10, 3), 1),         # a GRU's at batch 4: W_hh transposed for the backward's dot products
    (("fma",), 1),                          # the cores' FMA peak
    (("gemms", 1, 24, 40, 3), 3),           # projection, dx (3 rows: read in place) and the weight gradients
    (("gemms", 4, 24, 40, 5), 3),           # 20 rows: packed
    (("gemms", 4, 24, 40, 5, 1), 3),        # an RNN's GEMMs: one gate block
])
def test_floors_measure_positive_times(floors, args, count):
    module, exe = floors
    if args[0] == "fma" and "avx2" not in pylstm.supported_isas():
        pytest.skip("fma measures vector FMAs: this CPU has no AVX2")
    values = module.run(exe, *args)
    assert len(values) == count
    assert all(math.isfinite(v) and v > 0 for v in values), values


@pytest.mark.parametrize("isa", pylstm.supported_isas())
def test_floors_measure_the_isa_that_pylstm_isa_names(floors, isa):
    """PYLSTM_ISA picks the path whose floors are measured, as it does for the library: the scalar path has no
    vector FMAs (fma measures nothing, 0), and each path's kernels run the panels and dots."""
    module, exe = floors
    env = {**os.environ, "PYLSTM_ISA": isa}
    fma = float(subprocess.run([str(exe), "fma"], check=True, capture_output=True, text=True, env=env).stdout)
    assert (fma == 0) == (isa == "scalar"), fma
    for args in (("panels", 13, 80, 37, 3), ("dots", 40, 37, 3, 4)):  # row, column and k tails
        out = subprocess.run([str(exe), *map(str, args)], check=True, capture_output=True, text=True, env=env).stdout
        assert float(out) > 0, (args, out)


def test_floors_reject_an_unknown_isa(floors):
    _, exe = floors
    result = subprocess.run([str(exe), "fma"], capture_output=True, text=True,
                            env={**os.environ, "PYLSTM_ISA": "avx9"})
    assert result.returncode == 2
    assert "PYLSTM_ISA=avx9" in result.stderr and "avx2" in result.stderr, result.stderr


@pytest.mark.parametrize("args", [(), ("lockstep", 64), ("nonsense", 1, 2, 3, 4), ("prepare", 16, 40, 3),
                                  ("prepare", 16, 40, 3, 0), ("gemms", 4, 24, 40, 5, 0)])
def test_floors_reject_bad_commands(floors, args):
    _, exe = floors
    result = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: floors" in result.stderr


def test_gemms_elsewhere_and_case_times_give_positive_times(floors):
    """The third figure's other pieces: NumPy's (and torch's) GEMMs at a case's shapes, and the case itself."""
    module, _ = floors
    times = module.gemms_elsewhere(1, 24, 40, 3, calls=3)
    assert len(times) == 3 and all(math.isfinite(v) and v > 0 for v in times), times
    case = module.C.Case("LSTM", 1, 24, 40, 3, "tr")
    measured = module.case_times(case, seconds=0.2)
    assert "pylstm" in measured and all(math.isfinite(v) and v > 0 for v in measured.values()), measured


def test_rnn_training_lines_give_a_floor_and_the_case(floors):
    """The RNN training case's lines on a small RNN: its floor, the floor with the weights prepared (not lower), and
    the case itself in the same run."""
    module, exe = floors
    lines = module.rnn_training_lines(exe, 100.0, module.C.Case("RNN", 16, 64, 256, 20, "tr"), seconds=0.2)
    assert len(lines) == 3 and lines[0].startswith("RNN 16,64,256,20 training >= "), lines
    floor, prepared = (float(line.split(">= ")[1].split(" ms")[0]) for line in lines[:2])
    assert 0 < floor <= prepared, lines
    assert "pylstm" in lines[2], lines


def test_ort_case_times_give_positive_times(floors):
    """The roofline line's case times: pylstm and ONNX Runtime side by side on an inference case."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    module, _ = floors
    times = module.ort_case_times(module.C.Case("LSTM", 2, 24, 40, 3, "inf"), seconds=0.2)
    assert len(times) == 2 and all(math.isfinite(v) and v > 0 for v in times), times

"""bench/ab.py (two builds timed against each other in one process) runs and reports what it says."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "ab.py"

pytestmark = pytest.mark.skipif(not any((ROOT / "pylstm").glob("_core*")),
                                reason="needs the extension built in place (pip install -e .)")


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_ab_compares_two_builds_per_case():
    result = run(ROOT, ROOT, "LSTM-2-8-16-3-tr", "GRU-1-5-7-2-inf", "--blocks", 3, "--calls", 2)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    pattern = (r"(LSTM 2,8,16,3 tr|GRU 1,5,7,2 inf): old/new ([0-9.]+) \(old imported first ([0-9.]+), new first "
               r"([0-9.]+)\); old ([0-9.]+) ms, new ([0-9.]+) ms; 3 blocks of 2 calls in each of two processes, "
               r"2 threads")
    for line in lines:
        match = re.fullmatch(pattern, line)
        assert match, line
        ratio, first, second, old, new = map(float, match.groups()[1:])
        assert old > 0 and new > 0
        assert abs(ratio - (first * second) ** 0.5) < 2e-3  # the geometric mean of the two orders


@pytest.mark.parametrize("args, message", [
    (("LSTM-1-2",), "CELL-B-I-H-T-MODE"),
    (("CNN-1-2-3-4-inf",), "CELL-B-I-H-T-MODE"),
    (("LSTM-1-0-3-4-inf",), "at least 1"),
    (("LSTM-1-2-3-4-inf", "--blocks", "0"), "--blocks"),
])
def test_ab_rejects_bad_arguments(args, message):
    result = run(ROOT, ROOT, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_ab_names_a_tree_without_a_build(tmp_path):
    (tmp_path / "pylstm").mkdir()
    result = run(tmp_path, ROOT, "LSTM-1-2-3-4-inf")
    assert result.returncode != 0
    assert "no built extension" in result.stderr

"""bench/report.py's table and bench/_common.py's side-by-side timing: the suite's ratios measured in alternating
blocks, and the columns that show them, on synthetic results (no suite run)."""
import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("_common"), importlib.import_module("report")
    finally:
        sys.path.remove(str(BENCH))


def spin(n):
    def call():
        s = 0
        for i in range(n):
            s += i
        return s
    return call


def test_side_by_side_measures_the_ratio_of_two_calls(bench, monkeypatch):
    C, _ = bench
    monkeypatch.setattr(C, "SETTLE_SECONDS", 0.001)
    result = C.side_by_side(spin(2000), spin(8000), seconds=0.5)  # the second does 4x the work
    assert 2.5 < result["ratio"] < 6, result
    assert 2.5 < result["q_s"] / result["p_s"] < 6, result
    assert result["blocks"] >= 7
    assert result["calls"][0] >= 3 and result["calls"][1] >= 3  # short calls: several a block, the median taken


def test_alternating_medians_settles_after_every_block(bench, monkeypatch):
    C, _ = bench
    sleeps = []
    monkeypatch.setattr(C.time, "sleep", sleeps.append)
    order = []
    C.alternating_medians(lambda: order.append("a"), lambda: order.append("b"), 3, (2, 1), settle=0.25)
    assert sleeps == [0.25] * (2 * 2 + 2 * 3)  # two warm-up blocks of each side, then three blocks of each
    assert "".join(order) == "aab" * 2 + "aab" + "baa" + "aab"  # b first in odd blocks
    sleeps.clear()
    C.alternating_medians(lambda: None, lambda: None, 2, 1)
    assert sleeps == []  # bench/ab.py's use: no sleep


def suite_run(C, side):
    """A run of one suite case (LSTM 1,256,256,1 inf) with pytest-benchmark's medians and the given side_by_side."""
    case = C.SUITE[0]
    assert case.id == "LSTM-1-256-256-1-inf"
    medians = {"pylstm": 2e-5, "torch": 4e-4, "onnxruntime": 3e-5}
    benchmarks = [{"extra_info": {"kind": "matmul-peak", "position": "start", "flop": C.matmul_flops(), "n": 2048},
                   "stats": {"median": 0.05, "rounds": 3}}]
    for impl, median in medians.items():
        extra = {"kind": "suite", "case": case.id, "impl": impl}
        if impl in side:
            extra["side_by_side"] = side[impl]
        benchmarks.append({"extra_info": extra, "stats": {"median": median}})
    return {"machine_info": {"pylstm_bench": {"threads": 2}}, "benchmarks": benchmarks, "datetime": "2026-12-01T14"}


def row_cells(report, data):
    text = report.render(data, {})
    header = next(line for line in text.splitlines() if line.startswith("| case (cell"))
    row = next(line for line in text.splitlines() if line.startswith("| LSTM 1,256,256,1 inf"))
    names = [c.strip() for c in header.strip("|").split("|")]
    return dict(zip(names, (c.strip() for c in row.strip("|").split("|"))))


def test_report_shows_the_side_by_side_ratios(bench):
    C, report = bench
    # LSTM 1,256,256,1 inference is 2*4*256*512 = 1,048,576 FLOP; at 1/4 of the matmul's rate its time is
    # 4 * 1048576 / (2 * 2048^3) of the matmul's, so the matmul takes 4096x as long: 25% of the peak.
    side = {"pylstm": {"p_s": 1e-5, "q_s": 4096e-5, "ratio": 4096.0},
            "torch": {"p_s": 1e-5, "q_s": 2.5e-5, "ratio": 12.5},
            "onnxruntime": {"p_s": 1e-5, "q_s": 1.5e-5, "ratio": 1.5}}
    cells = row_cells(report, suite_run(C, side))
    assert cells["vs torch, side by side"] == "12.50x"
    assert cells["vs ORT, side by side"] == "1.50x"
    assert cells["% peak, side by side"] == "25.0"
    assert cells["ORT % peak, side by side"] == "16.7"  # ORT 1.5x slower than pylstm, at 25% of the peak
    assert cells["vs torch"] == "20.00x"  # pytest-benchmark's medians, as before: 4e-4 / 2e-5
    assert cells["vs ORT"] == "1.50x"


def test_report_without_side_by_side_results(bench):
    C, report = bench
    cells = row_cells(report, suite_run(C, {}))  # a run saved before side-by-side timing existed
    assert cells["vs torch, side by side"] == cells["vs ORT, side by side"] == cells["% peak, side by side"] == "—"
    assert cells["ORT % peak, side by side"] == "—"
    assert cells["vs torch"] == "20.00x"


def test_merged_runs_keep_each_case_side_by_side_results(bench):
    C, report = bench
    quiet = suite_run(C, {"torch": {"p_s": 1e-5, "q_s": 3e-5, "ratio": 3.0}})
    busy = suite_run(C, {"torch": {"p_s": 1e-5, "q_s": 9e-5, "ratio": 9.0}})
    for b in busy["benchmarks"]:
        b["extra_info"]["others_cpu_pct"] = 40.0
    data, _ = report.merge_runs([(busy, {}), (quiet, {})])
    assert row_cells(report, data)["vs torch, side by side"] == "3.00x"  # the quiet run's


def test_merged_runs_take_each_case_from_the_run_whose_machine_was_fastest(bench):
    C, report = bench
    # The matmul beside pylstm took 50 ms in one run and 100 ms in the other (the machine at half speed), which no
    # other process explains: the faster run's case is kept, although its others_cpu_pct is higher.
    fast = suite_run(C, {"pylstm": {"p_s": 1e-5, "q_s": 0.05, "ratio": 5000.0},
                         "torch": {"p_s": 1e-5, "q_s": 3e-5, "ratio": 3.0}})
    slow = suite_run(C, {"pylstm": {"p_s": 2e-5, "q_s": 0.10, "ratio": 5000.0},
                         "torch": {"p_s": 2e-5, "q_s": 1e-4, "ratio": 5.0}})
    for b in fast["benchmarks"]:
        b["extra_info"]["others_cpu_pct"] = 10.0
    for order in ([(slow, {}), (fast, {})], [(fast, {}), (slow, {})]):
        data, _ = report.merge_runs(order)
        assert row_cells(report, data)["vs torch, side by side"] == "3.00x"

"""The speed suite: pylstm vs PyTorch vs ONNX Runtime vs the NumPy reference, one benchmark group per shape.

    python -m pytest bench/                       # bench/pytest.ini groups by case and shows the median
    python bench/report.py                        # the same run, then the markdown table

Every pylstm case first checks its result against PyTorch (same weights, same input) on that very shape, and every
ONNX Runtime case checks its output against PyTorch's; a mismatch fails the test before anything is timed.
torch, onnx/onnxruntime and threadpoolctl are optional: what is missing is skipped.
"""
import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

import pylstm  # noqa: E402

import _common as C  # noqa: E402


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ != "test_suite":
        return
    ref_max = metafunc.config.getoption("--ref-max-gflop") * 1e9
    params = []
    for case in C.SUITE:
        for impl in C.IMPLS:
            if impl == "onnxruntime" and case.training:
                continue  # ONNX Runtime's operators are inference only
            if impl == "numpy-ref" and C.flops(case) > ref_max:
                continue  # the reference is slow on purpose: small shapes only
            params.append(pytest.param(case.id, impl, id=f"{case.id}-{impl}"))
    metafunc.parametrize("case,impl", params)


def _time(benchmark, fn, config):
    seconds = C.estimate_seconds(fn)
    rounds, warmup = C.rounds_for(seconds, config.getoption("--bench-seconds"))
    before = C.cpu_snapshot()
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=warmup, iterations=1)
    others, steal = C.others_cpu_share(before, C.cpu_snapshot())
    # Share of the machine's CPUs that other processes (or the hypervisor) took while this was timed: a busy
    # machine makes every 2-thread number here slower, so the report flags it.
    benchmark.extra_info.update(others_cpu_pct=others, steal_cpu_pct=steal)


def _matmul_peak(benchmark, request, position):
    n = C.MATMUL_N
    benchmark.group = "matmul-peak"
    benchmark.extra_info.update(kind="matmul-peak", position=position, flop=C.matmul_flops(n), n=n,
                                threads=C.THREADS, blas=C.blas_info())
    _time(benchmark, C.matmul_call(n), request.config)


def test_matmul_peak(benchmark, request):
    """The practical peak: NumPy float32 2048x2048 @ 2048x2048 on the suite's thread count (measured again at the
    end of the run, test_matmul_peak_end; the report divides by the higher of the two)."""
    _matmul_peak(benchmark, request, "start")


def test_suite(benchmark, request, case, impl):
    case = C.CASES[case]
    data = C.case_data(case)
    benchmark.group = case.id
    benchmark.extra_info.update(kind="suite", case=case.id, label=case.label, impl=impl, flop=C.flops(case),
                                threads=C.THREADS)
    fn = {"pylstm": _pylstm, "torch": _torch, "onnxruntime": _onnxruntime, "numpy-ref": _numpy_ref}[impl](
        benchmark, data)
    _time(benchmark, fn, request.config)
    data.calls[impl] = fn
    # The targets are ratios: time them again in alternating blocks, which a drifting machine slows alike. pylstm
    # against the matmul peak (its % of the peak), torch and ONNX Runtime against pylstm (after pylstm's test).
    seconds = request.config.getoption("--bench-seconds")
    if impl == "pylstm":
        benchmark.extra_info["side_by_side"] = C.side_by_side(fn, C.matmul_call(), seconds)
    elif impl in ("torch", "onnxruntime") and "pylstm" in data.calls:
        benchmark.extra_info["side_by_side"] = C.side_by_side(data.calls["pylstm"], fn, seconds)


def _record_check(benchmark, oracle_name, report):
    benchmark.extra_info["check_against"] = oracle_name
    benchmark.extra_info["check"] = {k: {"err": e, "tol": t} for k, (e, t, _) in report.items()}


def _pylstm(benchmark, data):
    case = data.case
    setter = getattr(pylstm, "set_num_threads", None)
    if setter is not None:
        setter(C.THREADS)
    layer = C.make_pylstm_layer(case, data.weights)
    got, saved_bytes = C.pylstm_results(layer, data)
    oracle_name, want = data.oracle()
    report = C.compare(got, want)
    _record_check(benchmark, oracle_name, report)
    C.assert_close(report, f"pylstm {case.label} vs {oracle_name}")
    if case.training:
        benchmark.extra_info["saved_bytes_per_step"] = saved_bytes
    return C.pylstm_call(layer, data)


def _torch(benchmark, data):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(C.THREADS)
    data.oracle()  # torch's own results, for pylstm's and ORT's checks (computed once per case)
    benchmark.extra_info["torch_num_threads"] = torch.get_num_threads()
    return C.torch_call(data)


def _onnxruntime(benchmark, data):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    case = data.case
    session = C.ort_session(C.onnx_model(case.cell, data.weights, case.I, case.H), C.THREADS)
    oracle_name, want = data.oracle()
    report = C.compare(C.ort_results(session, data.x, case.cell), want)
    _record_check(benchmark, oracle_name, report)
    C.assert_close(report, f"onnxruntime {case.label} vs {oracle_name} (gate reordering or operator attributes)")
    x = data.x
    return lambda: session.run(None, {"X": x})


def _numpy_ref(benchmark, data):
    return C.ref_call(data)


@pytest.mark.parametrize("cell,nonlinearity", [("LSTM", "tanh"), ("GRU", "tanh"), ("RNN", "tanh"), ("RNN", "relu")])
def test_onnx_model_matches_torch(cell, nonlinearity):
    """The ONNX builder's gate reordering, bias layout and attributes, on a small shape (also RNN, which the suite
    runs only in training, where ONNX Runtime is not timed)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    T, B, I, H = 7, 3, 5, 6  # noqa: E741
    torch.manual_seed(1)
    m = {"LSTM": lambda: torch.nn.LSTM(I, H), "GRU": lambda: torch.nn.GRU(I, H),
         "RNN": lambda: torch.nn.RNN(I, H, nonlinearity=nonlinearity)}[cell]()
    weights = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    x = np.random.default_rng(1).standard_normal((T, B, I), dtype=np.float32)
    with torch.no_grad():
        out, state = m(torch.from_numpy(x))
    h_n = (state[0] if cell == "LSTM" else state)[0].numpy()
    session = C.ort_session(C.onnx_model(cell, weights, I, H, nonlinearity), 1)
    got = C.ort_results(session, x, cell)
    np.testing.assert_allclose(got["out"], out.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["h_n"], h_n, rtol=0, atol=1e-5)
    if cell == "LSTM":
        np.testing.assert_allclose(got["c_n"], state[1][0].numpy(), rtol=0, atol=1e-5)


def test_matmul_peak_end(benchmark, request):
    """The matmul peak again, after the suite: a large difference from test_matmul_peak means the machine's load
    changed during the run."""
    _matmul_peak(benchmark, request, "end")

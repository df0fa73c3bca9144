"""Issue 4's speed checks: streaming cells (one step per call) and stacked bidirectional variable-length layers,
pylstm vs PyTorch in the same run, one benchmark group per case.

    python -m pytest bench/test_sequences.py

* ``cell-*``: one step of ``LSTMCell`` / ``GRUCell`` at batch 1, inference (pylstm ``eval()`` vs torch
  ``no_grad``): the per-call cost a real-time streaming loop pays.
* ``packed-*``: a 2-layer bidirectional LSTM / GRU over a batch of unsorted lengths, pylstm with ``lengths=`` vs
  torch with ``pack_padded_sequence`` + ``pad_packed_sequence`` (the conversions are timed on both sides, since a
  caller pays them), in inference and training (forward + backward, all gradients).

Every pylstm case first checks its result against torch on that very case; a mismatch fails before any timing.
float32, the thread count of PYLSTM_BENCH_THREADS (default 2) for both libraries.
"""
import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
torch = pytest.importorskip("torch")

import pylstm  # noqa: E402

import _common as C  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

CELL_CASES = [("LSTM", 64), ("LSTM", 256), ("GRU", 256)]
PACKED_CASES = [("LSTM", 16, 256, 256, 100, "inf"), ("LSTM", 16, 256, 256, 100, "tr"),
                ("GRU", 16, 256, 256, 100, "tr")]
IMPLS = ["pylstm", "torch"]


def _time(benchmark, fn, config):
    rounds, warmup = C.rounds_for(C.estimate_seconds(fn), config.getoption("--bench-seconds"))
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=warmup, iterations=1)


def _scaled_error(got, want):
    want = np.asarray(want, np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - want), initial=0.0) / max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell,H", CELL_CASES, ids=lambda v: str(v))
def test_cell_step(benchmark, request, cell, H, impl):
    benchmark.group = f"cell-{cell}-B1-H{H}"
    benchmark.extra_info.update(kind="cell-step", threads=C.THREADS)
    torch.manual_seed(0)
    module = getattr(torch.nn, f"{cell}Cell")(H, H)
    ours = getattr(pylstm, f"{cell}Cell")(H, H).eval()
    ours.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, H)).astype(np.float32)
    h = rng.standard_normal((1, H)).astype(np.float32)
    state = (h, h.copy()) if cell == "LSTM" else h
    xt = torch.from_numpy(x)
    state_t = tuple(torch.from_numpy(s) for s in state) if cell == "LSTM" else torch.from_numpy(h)
    with torch.no_grad():
        want = module(xt, state_t)
    got = ours(x, state)
    err = max(_scaled_error(g, w.numpy()) for g, w in zip(*(((got,), (want,)) if cell != "LSTM" else (got, want))))
    assert err < 1e-5, f"pylstm differs from torch: {err:.3g}"
    if impl == "pylstm":
        _time(benchmark, lambda: ours(x, state), request.config)
    else:
        with torch.no_grad():
            _time(benchmark, lambda: module(xt, state_t), request.config)


def _packed_data(cell, B, I, H, T):
    rng = np.random.default_rng(1)
    lengths = rng.integers(T // 2, T + 1, size=B)
    lengths[rng.integers(B)] = T
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dout = rng.standard_normal((T, B, 2 * H)).astype(np.float32)
    dout[np.arange(T)[:, None] >= lengths[None, :]] = 0  # outputs past a length are constants: no gradient there
    return x, lengths, dout


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", PACKED_CASES, ids=lambda c: "-".join(map(str, c)))
def test_packed_bidirectional(benchmark, request, case, impl):
    cell, B, I, H, T, mode = case
    benchmark.group = f"packed-{cell}-L2-bi-{B},{I},{H},{T}-{mode}"
    benchmark.extra_info.update(kind="packed", threads=C.THREADS)
    training = mode == "tr"
    torch.manual_seed(0)
    module = getattr(torch.nn, cell)(I, H, num_layers=2, bidirectional=True)
    ours = getattr(pylstm, cell)(I, H, num_layers=2, bidirectional=True).train(training)
    ours.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    x, lengths, dout = _packed_data(cell, B, I, H, T)
    xt, lengths_t, dout_t = torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(dout)

    def run_ours():
        out, _ = ours(x, lengths=lengths)
        if training:
            ours.backward(dout)
        return out

    def run_torch():
        xin = xt.requires_grad_(training)
        packed = pack_padded_sequence(xin, lengths_t, enforce_sorted=False)
        out, _ = pad_packed_sequence(module(packed)[0], total_length=T)
        if training:
            out.backward(dout_t)
        return out

    got = run_ours()
    if training:
        module.zero_grad()
    if training:
        want = run_torch().detach().numpy()
    else:
        with torch.no_grad():
            want = run_torch().numpy()
    err = _scaled_error(got, want)
    if training:
        err = max(err, *(_scaled_error(ours.grads[n], p.grad.numpy()) for n, p in module.named_parameters()))
    assert err < 1e-4, f"pylstm differs from torch: {err:.3g}"
    if impl == "pylstm":
        _time(benchmark, run_ours, request.config)
    elif training:
        _time(benchmark, run_torch, request.config)
    else:
        with torch.no_grad():
            _time(benchmark, run_torch, request.config)

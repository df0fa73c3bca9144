"""Training steps, pylstm vs PyTorch vs the NumPy reference in the same run, one benchmark group per model:

    python -m pytest bench/test_training.py

* ``train-char``: a character model, ``Sequential(Embedding(96, 64), LSTM(64, 256, num_layers=2), Linear(256, 96))``,
  B=32, T=100, Adam (lr 1e-3), gradients clipped to norm 5, the state carried from batch to batch;
* ``train-word``: torch's word_language_model defaults, ``Embedding(10000, 200)``, ``LSTM(200, 200, num_layers=2)``,
  ``Linear(200, 10000)``, B=20, T=35, SGD (lr 20), clipped to norm 0.25.

A step is what a user's loop runs: zero the gradients, forward, cross-entropy, backward, clip, optimizer step, with
NumPy (pylstm, the reference) or torch tensors (torch) around the calls. The NumPy reference runs the same step with
pylstm.reference's functions and NumPy's matmul (char model only: the word model's reference takes seconds).
Each case first checks that pylstm's step from torch's weights gives torch's loss and updated weights.
extra_info holds tokens per second (from the median), the step's products in GFLOP, and the peak memory of the step:
the growth of the resident set over 5 steps in a fresh process, after the model and data are made (``python
bench/test_training.py memory IMPL MODEL`` prints it). pylstm's case also times pylstm and torch in alternating blocks
(``vs_torch_side_by_side``: torch's time over pylstm's) and pylstm against NumPy's 2048^3 matmul
(``pct_matmul_side_by_side``: pylstm's GFLOP/s as a share of the matmul's), as the suite does (bench/README.md).
``python bench/training_report.py OUT.json`` prints the table of a run saved with ``--benchmark-json OUT.json``.

* ``fit-overhead``: an epoch of 5 steps of the character model by pylstm.fit (progress bar drawn) and by the
  hand-written loop.
* ``sample``: 1,000 characters from the character model by pylstm.sample and by the same loop in torch.
* ``numpy-between``: an LSTM(64, 256) forward + backward (B=32, T=64) alone, right after a NumPy matmul of two
  512 x 512 float32 matrices (user code between pylstm's calls), right after other NumPy code (indexing, argmax, a
  sum: no BLAS), and right after the matmul with NumPy's BLAS limited to one thread by threadpoolctl. OpenBLAS's
  threads spin for a while after a multithreaded call and would take the core that pylstm's second thread needs:
  pylstm stops them before its threads start (csrc/primitives/blas_pools.h), inside the timed call.
* ``numpy-after``: what that costs the user's code: the 512 x 512 NumPy matmul right after another one (OpenBLAS's
  threads spinning, ready) and right after pylstm's LSTM step (which stopped them: the matmul starts them again).

float32, the thread count of PYLSTM_BENCH_THREADS (default 2) for pylstm, torch and NumPy's BLAS.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pylstm
from pylstm import cells
from pylstm import reference as ref

MODELS = {  # V, E, H, layers, B, T, optimizer, its arguments, clip
    "char": (96, 64, 256, 2, 32, 100, "Adam", {"lr": 1e-3}, 5.0),
    "word": (10000, 200, 200, 2, 20, 35, "SGD", {"lr": 20.0}, 0.25),
}
IMPLS = ["pylstm", "torch", "numpy-ref"]


def data(model):
    V, _, _, _, B, T, *_ = MODELS[model]
    rng = np.random.default_rng(0)
    return rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))


def pylstm_step(model, weights=None):
    """-> (step, the Sequential): step() runs one training step and returns its loss."""
    V, E, H, L, B, T, opt_name, opt_args, clip = MODELS[model]
    net = pylstm.Sequential(pylstm.Embedding(V, E, seed=0), pylstm.LSTM(E, H, L, seed=1), pylstm.Linear(H, V, seed=2))
    if weights is not None:
        net.load_state_dict(weights)
    opt = getattr(pylstm.optim, opt_name)(net, **opt_args)
    x, y = data(model)
    states = None

    def step():
        nonlocal states
        opt.zero_grad()
        logits, states = net(x, states)
        loss, dlogits = pylstm.losses.cross_entropy(logits, y)
        net.backward(dlogits)
        pylstm.clip_grad_norm(net, clip)
        opt.step()
        return loss

    return step, net


def torch_step(model):
    import torch
    V, E, H, L, B, T, opt_name, opt_args, clip = MODELS[model]
    torch.manual_seed(0)
    net = torch.nn.ModuleDict({"emb": torch.nn.Embedding(V, E), "lstm": torch.nn.LSTM(E, H, L),
                               "out": torch.nn.Linear(H, V)})
    params = list(net.parameters())
    opt = getattr(torch.optim, opt_name)(params, **opt_args)
    x, y = (torch.from_numpy(a) for a in data(model))
    state = None

    def step():
        nonlocal state
        opt.zero_grad()
        out, (h, c) = net["lstm"](net["emb"](x), state)
        state = (h.detach(), c.detach())
        loss = torch.nn.functional.cross_entropy(net["out"](out).reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return loss.item()

    names = {"emb.": "0.", "lstm.": "1.", "out.": "2."}
    weights = {names[k[:k.index(".") + 1]] + k[k.index(".") + 1:]: v.detach().numpy().copy()
               for k, v in net.state_dict().items()}
    return step, net, weights


def reference_step(model):
    """The same step with pylstm.reference's functions (NumPy): the readable twin of the whole loop."""
    V, E, H, L, B, T, opt_name, opt_args, clip = MODELS[model]
    _, net = pylstm_step(model)
    params = {k: v.copy() for k, v in net.params.items()}
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    opt_state = {k: {} for k in params}
    x, y = data(model)
    state = [np.zeros((B, H), np.float32) for _ in range(2 * L)]

    def layer(k):
        return [params[f"1.{n}_l{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def step():
        for g in grads.values():
            g.fill(0)
        inp, saved = ref.embedding_forward(x, params["0.weight"]), []
        for k in range(L):
            inp, state[2 * k], state[2 * k + 1], rec = ref.lstm_forward(inp, state[2 * k], state[2 * k + 1], *layer(k))
            saved.append(rec)
        logits = ref.linear_forward(inp, params["2.weight"], params["2.bias"])
        loss, dlogits = ref.cross_entropy(logits, y)
        dout = ref.linear_backward(inp, params["2.weight"], dlogits, dweight=grads["2.weight"], dbias=grads["2.bias"])
        for k in reversed(range(L)):
            g = [grads[f"1.{n}_l{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            dout, _, _ = ref.lstm_backward(saved[k], *layer(k)[:2], dout, dweight_ih=g[0], dweight_hh=g[1],
                                           dbias_ih=g[2], dbias_hh=g[3])
        ref.embedding_backward(x, dout, dweight=grads["0.weight"])
        ref.clip_grad_norm(list(grads.values()), clip)
        for k in params:
            if opt_name == "Adam":
                ref.adam_step(params[k], grads[k], opt_state[k], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                              amsgrad=False, **opt_args)
            else:
                ref.sgd_step(params[k], grads[k], opt_state[k], **opt_args)
        return loss

    return step


def step_flops(model):
    """The products of a training step: forward, input and weight gradients of the LSTM layers and the Linear
    (3 times the forward's 2 * rows * in * out each); the gate math, loss and optimizer are not counted."""
    V, E, H, L, B, T, *_ = MODELS[model]
    G = cells.LSTM.gates
    forward = sum(2 * T * B * G * H * ((E if k == 0 else H) + H) for k in range(L)) + 2 * T * B * H * V
    return 3 * forward


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory_mb(impl, model):
    """The growth of this process's peak resident set over 5 steps, after the model and data are made (MB), from
    Linux's VmHWM, reset to the current resident set first. (Not getrusage's ru_maxrss: after fork and exec it still
    holds the parent's peak.)"""
    if impl == "pylstm":
        step, _ = pylstm_step(model)
    elif impl == "torch":
        step = torch_step(model)[0]
    else:
        step = reference_step(model)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    before = _status_kb("VmRSS")
    for _ in range(5):
        step()
    return (_status_kb("VmHWM") - before) / 1024


def _measured_peak_memory_mb(impl, model):
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "memory", impl, model], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return json.loads(result.stdout)["peak_mb"] if result.returncode == 0 else None


# ----------------------------------------------------------------------------------------------------------------------
# Benchmarks


def _time(benchmark, fn, config):
    import _common as C
    rounds, warmup = C.rounds_for(C.estimate_seconds(fn), config.getoption("--bench-seconds"))
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=warmup, iterations=1)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("model", list(MODELS))
def test_training_step(benchmark, request, model, impl):
    pytest.importorskip("pytest_benchmark")
    torch = pytest.importorskip("torch")
    import _common as C
    if impl == "numpy-ref" and model == "word":
        pytest.skip("the reference's word-model step takes seconds")
    benchmark.group = f"train-{model}"
    V, E, H, L, B, T, *_ = MODELS[model]
    t_step, t_net, weights = torch_step(model)
    # pylstm from torch's weights: the first step's loss and the updated weights are torch's.
    p_step, p_net = pylstm_step(model, weights)
    losses = [(p_step(), t_step()) for _ in range(2)]
    for ours, theirs in losses:
        assert abs(ours - theirs) <= 1e-5 * abs(theirs), f"pylstm's loss {ours} differs from torch's {theirs}"
    w = p_net.params["1.weight_hh_l1"]
    err = np.abs(w - t_net["lstm"].weight_hh_l1.detach().numpy()).max() / np.abs(w).max()
    assert err < 1e-4, f"pylstm's updated weights differ from torch's: {err:.3g}"
    step = {"pylstm": p_step, "torch": t_step}[impl] if impl != "numpy-ref" else reference_step(model)
    _time(benchmark, step, request.config)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(kind="training-step", threads=C.THREADS, tokens_per_s=round(B * T / median),
                                gflop=step_flops(model) / 1e9, peak_memory_mb=_measured_peak_memory_mb(impl, model))
    if impl == "pylstm":  # the same ratios in alternating blocks, which see the same machine (bench/README.md)
        seconds = request.config.getoption("--bench-seconds")
        versus = C.side_by_side(p_step, t_step, 2 * seconds)
        peak = C.side_by_side(p_step, C.matmul_call(), seconds)
        matmul_flops = 2 * C.MATMUL_N ** 3
        benchmark.extra_info.update(
            vs_torch_side_by_side=versus["ratio"],
            pct_matmul_side_by_side=100 * (step_flops(model) / peak["p_s"]) / (matmul_flops / peak["q_s"]))


def _lstm_step():
    m = pylstm.LSTM(64, 256, seed=0)
    x = np.random.default_rng(0).standard_normal((64, 32, 64)).astype(np.float32)
    dout = np.ones((64, 32, 256), np.float32)

    def step():
        m(x)
        m.backward(dout)

    return step


BETWEEN = ["nothing", "numpy-glue", "numpy-matmul", "numpy-matmul-blas-1-thread"]


@pytest.mark.parametrize("between", BETWEEN)
def test_numpy_between_pylstm_calls(benchmark, request, between):
    """pylstm's next call after the user's NumPy code: the LSTM step is timed alone, the NumPy code runs before each
    call (in pytest-benchmark's setup, untimed)."""
    pytest.importorskip("pytest_benchmark")
    import _common as C
    benchmark.group = "numpy-between"
    step = _lstm_step()
    a = np.random.default_rng(1).standard_normal((512, 512)).astype(np.float32)
    logits = np.random.default_rng(2).standard_normal((64, 32, 96)).astype(np.float32)
    targets = np.random.default_rng(3).integers(0, 96, (64, 32))

    def glue():
        return float((logits.argmax(-1) == targets).mean()) + float(logits[::2].sum())

    user = {"nothing": lambda: None, "numpy-glue": glue, "numpy-matmul": lambda: a @ a,
            "numpy-matmul-blas-1-thread": lambda: a @ a}[between]
    limits = None
    if between == "numpy-matmul-blas-1-thread":
        threadpoolctl = pytest.importorskip("threadpoolctl")
        limits = threadpoolctl.threadpool_limits(1, "blas")
    try:
        for _ in range(3):
            step()
        stopped = pylstm._core._blas_pools()[1]
        # setup's result must be None (pytest-benchmark would take it as the step's arguments)
        benchmark.pedantic(step, setup=lambda: (user(), None)[1], rounds=40, warmup_rounds=2, iterations=1)
        stopped = pylstm._core._blas_pools()[1] - stopped
    finally:
        if limits is not None:
            limits.restore_original_limits()
    # blas_pools_stopped: how many of the 42 calls stopped OpenBLAS's idle threads first (csrc/primitives/blas_pools.h)
    benchmark.extra_info.update(kind="numpy-between", threads=C.THREADS, blas_pools_stopped=stopped)


@pytest.mark.parametrize("before", ["numpy-matmul", "pylstm-step"])
def test_numpy_between_user_matmul_after(benchmark, request, before):
    """The user's NumPy matmul timed alone, right after another matmul or right after pylstm's LSTM step (run before
    each call in pytest-benchmark's setup, untimed)."""
    pytest.importorskip("pytest_benchmark")
    import _common as C
    benchmark.group = "numpy-after"
    step = _lstm_step()
    a = np.random.default_rng(1).standard_normal((512, 512)).astype(np.float32)

    def matmul():
        return a @ a

    for _ in range(3):
        step()
        matmul()
    previous = {"numpy-matmul": matmul, "pylstm-step": step}[before]
    benchmark.pedantic(matmul, setup=lambda: (previous(), None)[1], rounds=40, warmup_rounds=2, iterations=1)
    benchmark.extra_info.update(kind="numpy-after", threads=C.THREADS)


# ----------------------------------------------------------------------------------------------------------------------
# fit's own cost, and sampling


FIT_STEPS = 5  # chunks of bptt=100 per epoch of the fit-overhead case


@pytest.mark.parametrize("loop", ["hand-written", "fit"])
def test_fit_overhead(benchmark, request, loop):
    """An epoch of FIT_STEPS steps of the character model, by the hand-written loop (the step timed in train-char) and
    by pylstm.fit with its progress bar drawn (tqdm, to a pipe here); each round one epoch."""
    pytest.importorskip("pytest_benchmark")
    import _common as C
    benchmark.group = "fit-overhead"
    V, E, H, L, B, T, _, _, clip = MODELS["char"]
    streams = np.random.default_rng(4).integers(0, V, (FIT_STEPS * T + 1, B))
    net = pylstm.Sequential(pylstm.Embedding(V, E, seed=0), pylstm.LSTM(E, H, L, seed=1), pylstm.Linear(H, V, seed=2))
    opt = pylstm.optim.Adam(net, lr=1e-3)
    if loop == "fit":
        def epoch():
            pylstm.fit(net, streams, pylstm.losses.cross_entropy, opt, epochs=1, bptt=T, clip=clip, progress="bar")
    else:
        def epoch():
            states = None
            for i in range(0, FIT_STEPS * T, T):
                opt.zero_grad()
                logits, states = net(streams[i:i + T], states)
                loss, dlogits = pylstm.losses.cross_entropy(logits, streams[i + 1:i + 1 + T])
                net.backward(dlogits)
                pylstm.clip_grad_norm(net, clip)
                opt.step()
    _time(benchmark, epoch, request.config)
    benchmark.extra_info.update(kind="fit-overhead", threads=C.THREADS, steps=FIT_STEPS)


SAMPLE_CHARS = 1000


def _char_vocab(size):
    from pylstm.text import Vocab
    return Vocab("".join(chr(32 + i) for i in range(size)))


@pytest.mark.parametrize("impl", ["pylstm", "torch"])
def test_sampling(benchmark, request, impl):
    """1,000 characters from the character model, one step at a time through the state: pylstm.sample against the
    same loop in torch (no_grad; softmax and torch.multinomial), from the same weights."""
    pytest.importorskip("pytest_benchmark")
    torch = pytest.importorskip("torch")
    import _common as C
    benchmark.group = "sample"
    V, E, H, L, *_ = MODELS["char"]
    vocab = _char_vocab(V)
    t_step, t_net, weights = torch_step("char")
    if impl == "pylstm":
        _, net = pylstm_step("char", weights)
        greedy = pylstm.sample(net, vocab, "Hello", 50, top_k=1)

        def run():
            pylstm.sample(net, vocab, "Hello", SAMPLE_CHARS, seed=0)
    else:
        emb, lstm, out = t_net["emb"], t_net["lstm"], t_net["out"]

        def generate(n, greedy=False):
            g = torch.Generator().manual_seed(0)
            chosen = []
            with torch.no_grad():
                x = torch.from_numpy(vocab.encode("Hello")).view(-1, 1)
                h, state = lstm(emb(x))
                logits = out(h[-1, 0])
                for _ in range(n):
                    i = torch.argmax(logits).view(1) if greedy else \
                        torch.multinomial(torch.softmax(logits, -1), 1, generator=g)
                    chosen.append(int(i))
                    h, state = lstm(emb(i.view(1, 1)), state)
                    logits = out(h[0, 0])
            return vocab.decode(np.array(chosen))

        greedy = generate(50, greedy=True)

        def run():
            generate(SAMPLE_CHARS)
    # both libraries continue "Hello" the same way when each takes the most likely character
    _, check_net = pylstm_step("char", weights)
    assert greedy == pylstm.sample(check_net, vocab, "Hello", 50, top_k=1)
    _time(benchmark, run, request.config)
    benchmark.extra_info.update(kind="sample", threads=C.THREADS, chars=SAMPLE_CHARS)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "memory":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        threads = int(os.environ.get("PYLSTM_BENCH_THREADS", "2"))
        pylstm.set_num_threads(threads)
        if sys.argv[2] == "torch":
            import torch
            torch.set_num_threads(threads)
        print(json.dumps({"peak_mb": peak_memory_mb(sys.argv[2], sys.argv[3])}))
    else:
        sys.exit("usage: python bench/test_training.py memory IMPL MODEL")

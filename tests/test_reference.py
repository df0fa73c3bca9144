"""Tests of the NumPy reference (pylstm.reference), the specification the C++ kernels are tested against.

What is checked, all in float64:

* the backward functions against central finite differences of a scalar loss, for every parameter entry, the input
  and the initial state(s), with and without bias, plus the accumulate-into-the-passed-arrays contract;
* the forward's training switch and the shapes/identities of the saved records;
* single steps against the cell equations written out independently in this file;
* ``sigmoid`` accuracy, overflow safety, limits and dtype;
* forward and backward against PyTorch's nn.LSTM / nn.GRU / nn.RNN (only when torch is importable);
* the packed layout (batch_sizes), the LSTM projection (weight_hr) and peepholes: finite differences of every
  gradient (dweight_hr and dpeepholes included), packed = every sequence run alone, zero peepholes = none, and the
  projection and the packed layout against PyTorch (proj_size, PackedSequence).

The loss used for every gradient is L = sum(out * w_out) + sum(h_n * w_h) (+ sum(c_n * w_c) for the LSTM) with fixed
random weights, so its gradients with respect to the outputs are dout = w_out, dh_n = w_h, dc_n = w_c.
"""

from dataclasses import dataclass

import numpy as np
import pytest
from cells import (
    ALL_CELLS,
    GRU_AFTER,
    GRU_BEFORE,
    LSTM,
    PARAM_NAMES,
    RNN_RELU,
    RNN_TANH,
    Problem,
    cells,
    make_problem,
    with_bias,
)

from compare import central_differences

from pylstm import reference as ref
from pylstm.saved import GRUSaved, LSTMSaved, RNNSaved


def loss(cell, problem):
    out, finals, _ = cell.forward(problem.x, problem.states, problem.params, training=False)
    return np.sum(out * problem.w_out) + sum(np.sum(f * w) for f, w in zip(finals, problem.w_finals))


def analytic_gradients(cell, problem, grads=None):
    """Forward + backward with dout = w_out, dfinals = w_finals. -> dict name -> gradient (x, h0, c0, parameters)."""
    _, _, saved = cell.forward(problem.x, problem.states, problem.params)
    if grads is None:
        grads = {name: np.zeros_like(problem.params[name]) for name in problem.present_params()}
    dx, dstates = cell.backward(saved, problem.params, problem.w_out, problem.w_finals, grads)
    return {"x": dx, **{f"{s}0": d for s, d in zip("hc", dstates)}, **grads}


def numeric_gradients(cell, problem, eps=1e-6):
    """Central differences of the loss with respect to every entry of x, the states and the present parameters."""
    arrays = {"x": problem.x, **{f"{s}0": a for s, a in zip("hc", problem.states)},
              **{name: problem.params[name] for name in problem.present_params()}}
    return central_differences(arrays, lambda: loss(cell, problem), eps)


def assert_close_relative(actual, expected, rtol, what=""):
    """max |actual - expected| <= rtol * max(1, max |expected|)."""
    assert actual.shape == expected.shape, what
    err = np.max(np.abs(actual - expected), initial=0.0)
    scale = max(1.0, np.max(np.abs(expected), initial=0.0))
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} > {rtol:g} * {scale:.3g}"


# ----------------------------------------------------------------------------------------------------------------------
# 1. Backward against finite differences, and the accumulation contract.

SHAPES = pytest.mark.parametrize("T,B,I,H", [(3, 2, 3, 4), (1, 1, 1, 1), (4, 2, 5, 2)],
                                 ids=lambda v: str(v))


@cells
@with_bias
@SHAPES
def test_backward_matches_finite_differences(cell, bias, T, B, I, H):
    """Every gradient the backward returns or accumulates (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh) is the
    derivative of the loss, entry by entry, as estimated by central differences."""
    problem = make_problem(cell, T, B, I, H, bias, seed=1000 * T + 100 * B + 10 * I + H)
    analytic = analytic_gradients(cell, problem)
    numeric = numeric_gradients(cell, problem)
    expected_names = {"x", "h0", "c0"} if cell.n_states == 2 else {"x", "h0"}
    expected_names |= set(problem.present_params())
    assert set(analytic) == set(numeric) == expected_names
    for name in numeric:
        assert_close_relative(analytic[name], numeric[name], 1e-6, what=name)


@cells
@with_bias
@pytest.mark.parametrize("T", [1, 3])
def test_backward_accumulates_parameter_gradients(cell, bias, T):
    """A second backward with the same inputs into the same gradient arrays doubles the parameter gradients (bit for
    bit when T=1; for T>1 the per-step sums are accumulated onto a nonzero start, so equal to rounding) and returns
    the very same dx / dh0 / dc0: the input/state gradients do not depend on what the arrays held before."""
    problem = make_problem(cell, T, 2, 3, 4, bias, seed=7 + T)
    first = analytic_gradients(cell, problem)
    once = {name: first[name].copy() for name in problem.present_params()}
    second = analytic_gradients(cell, problem, grads=first)  # accumulates into first's parameter arrays
    for name in problem.present_params():
        assert second[name] is first[name], "parameter gradients must be accumulated in place"
        if T == 1:
            np.testing.assert_array_equal(second[name], 2 * once[name], err_msg=name)
        else:
            assert_close_relative(second[name], 2 * once[name], 1e-14, what=name)
    for name in set(first) - set(problem.present_params()):
        np.testing.assert_array_equal(second[name], first[name], err_msg=name)


# ----------------------------------------------------------------------------------------------------------------------
# 2. The training switch and the saved records.


@cells
@with_bias
def test_inference_forward_returns_no_saved_and_same_outputs(cell, bias):
    """training=False returns saved=None and exactly the outputs of training=True."""
    problem = make_problem(cell, 3, 2, 3, 4, bias, seed=21)
    out_t, finals_t, saved_t = cell.forward(problem.x, problem.states, problem.params, training=True)
    out_i, finals_i, saved_i = cell.forward(problem.x, problem.states, problem.params, training=False)
    assert saved_i is None and saved_t is not None
    np.testing.assert_array_equal(out_i, out_t)
    for fi, ft in zip(finals_i, finals_t):
        np.testing.assert_array_equal(fi, ft)


@cells
@pytest.mark.parametrize("T,B,I,H", [(3, 2, 3, 4), (1, 1, 1, 1)], ids=str)
def test_saved_record_shapes_and_references(cell, T, B, I, H):
    """The saved record has the documented type and shapes, holds the caller's x / h0 / c0 and the returned out
    themselves (not copies), and its last step agrees with the returned final state(s)."""
    problem = make_problem(cell, T, B, I, H, True, seed=5)
    out, finals, saved = cell.forward(problem.x, problem.states, problem.params)
    assert out.shape == (T, B, H) and out.dtype == np.float64
    assert all(f.shape == (B, H) for f in finals)
    assert saved.x is problem.x and saved.h0 is problem.states[0] and saved.out is out
    np.testing.assert_array_equal(out[-1], finals[0])
    if cell.family == "lstm":
        assert type(saved) is LSTMSaved
        assert saved.c0 is problem.states[1]
        assert saved.gates.shape == (T, B, 4 * H) and saved.cells.shape == (T, B, H)
        np.testing.assert_array_equal(saved.cells[-1], finals[1])
    elif cell.family == "gru":
        reset_after = dict(cell.kwargs)["reset_after"]
        assert type(saved) is GRUSaved
        assert saved.reset_after is reset_after
        assert saved.gates.shape == (T, B, (4 if reset_after else 3) * H)
    else:
        assert type(saved) is RNNSaved
        assert saved.nonlinearity == dict(cell.kwargs)["nonlinearity"]


# ----------------------------------------------------------------------------------------------------------------------
# 3. One step against the equations written out here, independently of the reference's code.


def _logistic(v):
    return 1.0 / (1.0 + np.exp(-v))


def _single_step_problem(cell, bias, seed=3, B=2, I=3, H=4):
    """A T=1 problem plus the per-gate blocks of its parameters (zero biases stand in for 'no bias')."""
    problem = make_problem(cell, 1, B, I, H, bias, seed)
    p = problem.params
    zeros = np.zeros(cell.gates * H)
    blocks = {
        "W": np.split(p["weight_ih"], cell.gates), "U": np.split(p["weight_hh"], cell.gates),
        "b": np.split(p["bias_ih"] if bias else zeros, cell.gates),
        "c": np.split(p["bias_hh"] if bias else zeros, cell.gates),
    }
    return problem, blocks


def _assert_step(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=1e-14, atol=1e-15, err_msg=what)


@with_bias
def test_lstm_single_step_matches_equations(bias):
    """T=1: i, f, g, o (PyTorch order), c' = f*c + i*g, h' = o*tanh(c'); also the saved gates and cells."""
    problem, k = _single_step_problem(LSTM, bias)
    x, (h, c) = problem.x[0], problem.states
    W, U, b, bh = k["W"], k["U"], k["b"], k["c"]
    i = _logistic(x @ W[0].T + b[0] + h @ U[0].T + bh[0])
    f = _logistic(x @ W[1].T + b[1] + h @ U[1].T + bh[1])
    g = np.tanh(x @ W[2].T + b[2] + h @ U[2].T + bh[2])
    o = _logistic(x @ W[3].T + b[3] + h @ U[3].T + bh[3])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    out, (h_n, c_n), saved = LSTM.forward(problem.x, problem.states, problem.params)
    _assert_step(out[0], h_new, "out")
    _assert_step(h_n, h_new, "h_n")
    _assert_step(c_n, c_new, "c_n")
    _assert_step(saved.gates[0], np.concatenate([i, f, g, o], axis=1), "saved gates")
    _assert_step(saved.cells[0], c_new, "saved cells")


@pytest.mark.parametrize("cell", [GRU_AFTER, GRU_BEFORE], ids=lambda c: c.name)
@with_bias
def test_gru_single_step_matches_equations(cell, bias):
    """T=1: r, z, n (PyTorch order), n = tanh(W_in x + b_in + r*(W_hn h + b_hn)) when reset_after, else
    n = tanh(W_in x + b_in + W_hn (r*h) + b_hn); h' = (1-z)*n + z*h; also the saved gates."""
    reset_after = dict(cell.kwargs)["reset_after"]
    problem, k = _single_step_problem(cell, bias)
    x, (h,) = problem.x[0], problem.states
    W, U, b, bh = k["W"], k["U"], k["b"], k["c"]
    r = _logistic(x @ W[0].T + b[0] + h @ U[0].T + bh[0])
    z = _logistic(x @ W[1].T + b[1] + h @ U[1].T + bh[1])
    hn = h @ U[2].T + bh[2]
    if reset_after:
        n = np.tanh(x @ W[2].T + b[2] + r * hn)
        gates = np.concatenate([r, z, n, hn], axis=1)
    else:
        n = np.tanh(x @ W[2].T + b[2] + (r * h) @ U[2].T + bh[2])
        gates = np.concatenate([r, z, n], axis=1)
    h_new = (1 - z) * n + z * h
    out, (h_n,), saved = cell.forward(problem.x, problem.states, problem.params)
    _assert_step(out[0], h_new, "out")
    _assert_step(h_n, h_new, "h_n")
    _assert_step(saved.gates[0], gates, "saved gates")


@pytest.mark.parametrize("cell", [RNN_TANH, RNN_RELU], ids=lambda c: c.name)
@with_bias
def test_rnn_single_step_matches_equations(cell, bias):
    """T=1: h' = act(W_ih x + b_ih + W_hh h + b_hh) with act = tanh or relu."""
    act = {"tanh": np.tanh, "relu": lambda v: np.where(v > 0, v, 0.0)}[dict(cell.kwargs)["nonlinearity"]]
    problem, k = _single_step_problem(cell, bias)
    x, (h,) = problem.x[0], problem.states
    h_new = act(x @ k["W"][0].T + k["b"][0] + h @ k["U"][0].T + k["c"][0])
    out, (h_n,), _ = cell.forward(problem.x, problem.states, problem.params)
    _assert_step(out[0], h_new, "out")
    _assert_step(h_n, h_new, "h_n")


# ----------------------------------------------------------------------------------------------------------------------
# 4. sigmoid.

# Underflow is not an error here: exp(-1000) -> 0 is exactly the wanted result. Overflow, inf/inf and 0/0 are.
_raise_on_overflow = dict(over="raise", invalid="raise", divide="raise", under="ignore")


def test_sigmoid_matches_logistic_formula():
    """On moderate inputs sigmoid equals 1/(1+exp(-x)) to 1e-15 relative, and sigmoid(-x) = 1 - sigmoid(x)."""
    x = np.linspace(-30.0, 30.0, 2001)
    y = ref.sigmoid(x)
    np.testing.assert_allclose(y, 1.0 / (1.0 + np.exp(-x)), rtol=1e-15, atol=0)
    np.testing.assert_allclose(ref.sigmoid(-x), 1.0 - y, rtol=0, atol=2e-16)
    assert ref.sigmoid(np.array(0.0)) == 0.5


def test_sigmoid_extremes_do_not_overflow_and_hit_the_limits():
    """At +-1000 and +-inf there is no overflow/invalid warning, the results are exactly 0 and 1, and far-negative
    results keep full relative precision (sigmoid(x) ~ exp(x) there)."""
    x = np.array([-np.inf, -1000.0, 1000.0, np.inf])
    with np.errstate(**_raise_on_overflow):
        with pytest.raises(FloatingPointError):  # the naive formula does overflow: the errstate is effective
            1.0 / (1.0 + np.exp(-x))
        y = ref.sigmoid(x)
        tail = np.linspace(-700.0, -40.0, 101)
        y_tail = ref.sigmoid(tail)
    np.testing.assert_array_equal(y, [0.0, 0.0, 1.0, 1.0])
    assert np.all(y_tail > 0)
    np.testing.assert_allclose(y_tail, np.exp(tail), rtol=1e-15, atol=0)


def test_sigmoid_keeps_float32():
    """A float32 input gives a float32 result, accurate to float32 precision, also at the extremes."""
    x = np.array([-1000.0, -50.0, -3.0, 0.0, 0.5, 3.0, 50.0, 1000.0], dtype=np.float32)
    with np.errstate(**_raise_on_overflow):
        y = ref.sigmoid(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref.sigmoid(x.astype(np.float64)).astype(np.float32), rtol=2e-7, atol=0)
    assert y[0] == 0.0 and y[-1] == 1.0


# ----------------------------------------------------------------------------------------------------------------------
# 5. Against PyTorch (skipped when torch is not importable).

TORCH_CELLS = [LSTM, GRU_AFTER, RNN_TANH, RNN_RELU]  # GRU reset_after=False has no PyTorch counterpart


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_module(torch, cell, I, H, bias):
    if cell.family == "lstm":
        return torch.nn.LSTM(I, H, bias=bias, dtype=torch.float64)
    if cell.family == "gru":
        return torch.nn.GRU(I, H, bias=bias, dtype=torch.float64)
    return torch.nn.RNN(I, H, bias=bias, nonlinearity=dict(cell.kwargs)["nonlinearity"], dtype=torch.float64)


@pytest.mark.parametrize("cell", TORCH_CELLS, ids=lambda c: c.name)
@with_bias
@pytest.mark.parametrize("T,B,I,H", [(1, 2, 3, 5), (4, 3, 2, 5)], ids=str)
def test_matches_pytorch_forward_and_backward(torch, cell, bias, T, B, I, H):
    """With PyTorch's own (randomly initialised) weights and a random nonzero initial state, the reference's out,
    h_n, c_n agree with torch.nn.LSTM / GRU / RNN to 1e-12, and its dx, dh0, dc0 and all parameter gradients agree
    with torch autograd of the same loss to 1e-10 relative."""
    torch.manual_seed(T * 100 + H)
    module = _torch_module(torch, cell, I, H, bias)
    tparams = {name: getattr(module, f"{name}_l0", None) for name in PARAM_NAMES}
    params = {name: None if t is None else t.detach().numpy().copy() for name, t in tparams.items()}
    assert params["weight_ih"].shape == (cell.gates * H, I)

    rng = np.random.default_rng(T * 10 + B)
    x = rng.standard_normal((T, B, I))
    states = tuple(rng.standard_normal((B, H)) for _ in range(cell.n_states))
    w_out = rng.standard_normal((T, B, H))
    w_finals = tuple(rng.standard_normal((B, H)) for _ in range(cell.n_states))
    problem = Problem(x, states, params, w_out, w_finals)

    # PyTorch: forward, loss, autograd.
    tx = torch.tensor(x, requires_grad=True)
    tstates = [torch.tensor(s, requires_grad=True) for s in states]
    tinit = (tstates[0][None], tstates[1][None]) if cell.family == "lstm" else tstates[0][None]
    tout, tfinal = module(tx, tinit)
    tfinals = [f[0] for f in tfinal] if cell.family == "lstm" else [tfinal[0]]
    tloss = (tout * torch.tensor(w_out)).sum() + sum((f * torch.tensor(w)).sum() for f, w in zip(tfinals, w_finals))
    tloss.backward()

    # Reference: forward, then backward of the same loss.
    out, finals, _ = cell.forward(x, states, params)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg="out")
    for name, f, tf in zip(("h_n", "c_n"), finals, tfinals):
        np.testing.assert_allclose(f, tf.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=name)

    grads = analytic_gradients(cell, problem)
    expected = {"x": tx.grad, **{f"{s}0": t.grad for s, t in zip("hc", tstates)},
                **{name: t.grad for name, t in tparams.items() if t is not None}}
    assert set(grads) == set(expected)
    for name, tgrad in expected.items():
        assert_close_relative(grads[name], tgrad.numpy(), 1e-10, what=name)


# ----------------------------------------------------------------------------------------------------------------------
# 6. The packed layout (batch_sizes), the LSTM projection (weight_hr) and peepholes.
#
# Parameters here are a dict that may also hold "weight_hr" (P, H) and "peephole_i" / "peephole_f" / "peephole_o"
# (H,) for the LSTM; an absent bias is simply absent. The loss is the one above: sum(out * w_out) + sum(h_n * w_h)
# (+ sum(c_n * w_c)), so dout = w_out, dh_n = w_h, dc_n = w_c. h (and out) have width P with a projection, else H.

PEEPHOLE_NAMES = ("peephole_i", "peephole_f", "peephole_o")


def batch_sizes_of(lengths):
    """Sequence lengths (non-increasing) -> batch_sizes (T,) int64, T = the longest length."""
    lengths = np.asarray(lengths)
    return np.array([np.sum(lengths > t) for t in range(lengths.max(initial=0))], dtype=np.int64)


def _peepholes(params):
    return tuple(params[k] for k in PEEPHOLE_NAMES) if "peephole_i" in params else None


def seq_forward(cell, x, states, params, batch_sizes=None, training=True):
    """-> out, finals (tuple), saved; with the projection / peepholes / batch_sizes the parameters call for."""
    args = (x, *states, params["weight_ih"], params["weight_hh"], params.get("bias_ih"), params.get("bias_hh"))
    if cell.family == "lstm":
        out, h_n, c_n, saved = ref.lstm_forward(*args, weight_hr=params.get("weight_hr"), peepholes=_peepholes(params),
                                                batch_sizes=batch_sizes, training=training)
        return out, (h_n, c_n), saved
    forward = ref.gru_forward if cell.family == "gru" else ref.rnn_forward
    out, h_n, saved = forward(*args, batch_sizes=batch_sizes, training=training, **dict(cell.kwargs))
    return out, (h_n,), saved


def seq_backward(cell, saved, params, dout, dfinals, grads):
    """-> dx, dstates (tuple); accumulates into grads (name -> array, the same names as params)."""
    gkw = dict(dweight_ih=grads["weight_ih"], dweight_hh=grads["weight_hh"], dbias_ih=grads.get("bias_ih"),
               dbias_hh=grads.get("bias_hh"))
    if cell.family == "lstm":
        gkw.update(weight_hr=params.get("weight_hr"), peepholes=_peepholes(params), dweight_hr=grads.get("weight_hr"),
                   dpeepholes=_peepholes(grads))
    backward = getattr(ref, f"{cell.family}_backward")
    dx, *dstates = backward(saved, params["weight_ih"], params["weight_hh"], dout, *dfinals, **gkw)
    return dx, tuple(dstates)


@dataclass
class SeqProblem:
    x: np.ndarray  # (T, B, I), or packed (N, I) when batch_sizes is given
    states: tuple  # h0 (B, P or H) [, c0 (B, H)]
    params: dict
    w_out: np.ndarray  # like out
    w_finals: tuple  # like states
    batch_sizes: np.ndarray = None

    def seq_loss(self, cell):
        out, finals, _ = seq_forward(cell, self.x, self.states, self.params, self.batch_sizes, training=False)
        return np.sum(out * self.w_out) + sum(np.sum(f * w) for f, w in zip(finals, self.w_finals))

    def gradients(self, cell, grads=None):
        """Forward + backward -> dict name -> gradient (x, h0 [, c0], every parameter)."""
        _, _, saved = seq_forward(cell, self.x, self.states, self.params, self.batch_sizes)
        if grads is None:
            grads = {name: np.zeros_like(a) for name, a in self.params.items()}
        dx, dstates = seq_backward(cell, saved, self.params, self.w_out, self.w_finals, grads)
        return {"x": dx, **{f"{s}0": d for s, d in zip("hc", dstates)}, **grads}

    def numeric_gradients(self, cell, eps=1e-6):
        arrays = {"x": self.x, **{f"{s}0": a for s, a in zip("hc", self.states)}, **self.params}
        return central_differences(arrays, lambda: self.seq_loss(cell), eps)


def _rnn_preactivations(problem):
    """Every step's W_ih x + b_ih + W_hh h + b_hh of a relu RNN, recomputed here step by step (either layout)."""
    p, x, h = problem.params, problem.x, problem.states[0].copy()
    sizes = problem.batch_sizes if problem.batch_sizes is not None else [x.shape[1]] * x.shape[0]
    rows, start, pres = x.reshape(-1, x.shape[-1]), 0, [np.zeros((0, h.shape[1]))]
    for n in sizes:
        pre = rows[start:start + n] @ p["weight_ih"].T + h[:n] @ p["weight_hh"].T
        if "bias_ih" in p:
            pre = pre + p["bias_ih"] + p["bias_hh"]
        pres.append(pre)
        h[:n] = np.maximum(pre, 0)
        start += n
    return np.concatenate(pres)


def make_seq_problem(cell, I, H, bias, seed, *, lengths=None, T=None, B=None, P=0, peepholes=False):
    """Random problem, packed from `lengths` or in the (T, B, I) layout; relu resampled away from the kink (as
    make_problem does)."""
    rng = np.random.default_rng(seed)
    G, Pw = cell.gates, P or H
    if lengths is not None:
        bs = batch_sizes_of(lengths)
        B, lead = len(lengths), (int(bs.sum()),)
    else:
        bs, lead = None, (T, B)
    for _ in range(1000):
        params = {"weight_ih": rng.uniform(-1, 1, (G * H, I)), "weight_hh": rng.uniform(-1, 1, (G * H, Pw))}
        if bias:
            params.update(bias_ih=rng.uniform(-1, 1, G * H), bias_hh=rng.uniform(-1, 1, G * H))
        if P:
            params["weight_hr"] = rng.uniform(-1, 1, (P, H))
        if peepholes:
            params.update({name: rng.uniform(-1, 1, H) for name in PEEPHOLE_NAMES})
        widths = (Pw, H)[:cell.n_states]
        problem = SeqProblem(x=rng.standard_normal(lead + (I,)),
                             states=tuple(rng.standard_normal((B, w)) for w in widths),
                             params=params, w_out=rng.standard_normal(lead + (Pw,)),
                             w_finals=tuple(rng.standard_normal((B, w)) for w in widths), batch_sizes=bs)
        if not cell.is_relu:
            return problem
        pre = _rnn_preactivations(problem)
        if pre.size == 0 or (np.abs(pre).min() > 1e-3 and pre.max() > 0):
            return problem
    raise AssertionError("could not draw a relu problem away from the kink")


LENGTHS = pytest.mark.parametrize("lengths", [(5, 3, 3, 1, 0), (3, 3, 2)], ids=str)
# (P, peepholes): projection narrower and wider than H = 3, peepholes alone, and both.
LSTM_VARIANTS = pytest.mark.parametrize("P,peepholes", [(2, False), (5, False), (0, True), (2, True), (5, True)],
                                        ids=lambda v: str(v))


def _check_finite_differences(cell, problem):
    analytic = problem.gradients(cell)
    numeric = problem.numeric_gradients(cell)
    expected_names = {"x", "h0", "c0"}.difference(() if cell.n_states == 2 else ("c0",)) | set(problem.params)
    assert set(analytic) == set(numeric) == expected_names
    for name in numeric:
        assert_close_relative(analytic[name], numeric[name], 1e-6, what=name)


@LSTM_VARIANTS
@with_bias
@pytest.mark.parametrize("layout", ["TBI", "packed"])
def test_lstm_projection_peepholes_match_finite_differences(P, peepholes, bias, layout):
    """LSTM with projection (P < H, P > H), peepholes, or both, in either layout (packed: unequal lengths and a
    zero-length sequence): dx, dh0, dc0 and every parameter gradient, dweight_hr and dpeepholes included, are the
    central differences of the loss."""
    shape = dict(lengths=(5, 3, 3, 1, 0)) if layout == "packed" else dict(T=4, B=2)
    problem = make_seq_problem(LSTM, 2, 3, bias, seed=10 * P + peepholes, P=P, peepholes=peepholes, **shape)
    assert ("weight_hr" in problem.params) == bool(P) and ("peephole_o" in problem.params) == peepholes
    _check_finite_differences(LSTM, problem)


@cells
@with_bias
@LENGTHS
def test_packed_backward_matches_finite_differences(cell, bias, lengths):
    """Every cell in the packed layout (unequal lengths, with and without a zero-length sequence): every gradient is
    the central differences of the loss."""
    problem = make_seq_problem(cell, 2, 3, bias, seed=sum(lengths) + len(lengths), lengths=lengths)
    _check_finite_differences(cell, problem)


# The packed layout means "every sequence alone": cells plus the LSTM with projection and peepholes together.
SEQ_CELLS = [(c, 0, False) for c in ALL_CELLS] + [(LSTM, 2, True), (LSTM, 4, True)]


@pytest.mark.parametrize("cell,P,peepholes", SEQ_CELLS, ids=lambda v: getattr(v, "name", str(v)))
@pytest.mark.parametrize("lengths", [(5, 3, 3, 1, 0), (4, 2, 0, 0), (1,), (0, 0)], ids=str)
def test_packed_equals_each_sequence_alone(cell, P, peepholes, lengths):
    """The packed reference computes, for each sequence, what running it alone does (B=1, its own length, the
    (T, 1, I) layout): its out rows, its final state(s) (the initial state for a zero-length sequence), its dx rows,
    its dh0 / dc0; and the parameter gradients are the sums of the separate runs' gradients."""
    problem = make_seq_problem(cell, 3, 4, True, seed=len(lengths) + P, lengths=lengths, P=P, peepholes=peepholes)
    out, finals, _ = seq_forward(cell, problem.x, problem.states, problem.params, problem.batch_sizes, training=False)
    packed = problem.gradients(cell)

    bs = problem.batch_sizes
    offsets = np.concatenate([[0], np.cumsum(bs)[:-1]]).astype(int)
    summed = {name: np.zeros_like(a) for name, a in problem.params.items()}
    dx_alone = np.full_like(problem.x, np.nan)
    for b, length in enumerate(lengths):
        rows = offsets[:length] + b
        assert np.all(bs[:length] > b)
        x_b = problem.x[rows][:, None]
        states_b = tuple(s[b:b + 1] for s in problem.states)
        out_b, finals_b, saved = seq_forward(cell, x_b, states_b, problem.params)
        assert out_b.shape == (length, 1, out.shape[1])
        np.testing.assert_allclose(out[rows], out_b[:, 0], rtol=1e-13, atol=1e-14, err_msg=f"out of sequence {b}")
        for k, (f, f_b, s) in enumerate(zip(finals, finals_b, problem.states)):
            np.testing.assert_allclose(f[b], f_b[0], rtol=1e-13, atol=1e-14, err_msg=f"final state {k} of {b}")
            if length == 0:
                np.testing.assert_array_equal(f[b], s[b], err_msg=f"zero-length sequence {b}: final = initial")
        dx_b, dstates_b = seq_backward(cell, saved, problem.params, problem.w_out[rows][:, None],
                                       tuple(w[b:b + 1] for w in problem.w_finals), summed)
        dx_alone[rows] = dx_b[:, 0]
        for s, d, d_b, w in zip("hc", (packed["h0"], packed.get("c0")), dstates_b, problem.w_finals):
            assert_close_relative(d[b], d_b[0], 1e-13, what=f"d{s}0 of sequence {b}")
            if length == 0:
                np.testing.assert_array_equal(d[b], w[b], err_msg=f"zero-length sequence {b}: d{s}0 = d{s}_n")
    assert not np.isnan(dx_alone).any()
    assert_close_relative(packed["x"], dx_alone, 1e-13, what="dx")
    for name in problem.params:
        assert_close_relative(packed[name], summed[name], 1e-12, what=name)


@pytest.mark.parametrize("cell,P,peepholes", SEQ_CELLS, ids=lambda v: getattr(v, "name", str(v)))
def test_packed_with_full_batch_sizes_equals_tbi_layout(cell, P, peepholes):
    """batch_sizes = [B] * T on the (T*B, I) rows computes bit for bit what the (T, B, I) layout does."""
    problem = make_seq_problem(cell, 2, 4, True, seed=3, T=3, B=2, P=P, peepholes=peepholes)
    dense = problem.gradients(cell)
    out, finals, _ = seq_forward(cell, problem.x, problem.states, problem.params, training=False)
    packed_problem = SeqProblem(problem.x.reshape(6, 2), problem.states, problem.params, problem.w_out.reshape(6, -1),
                                problem.w_finals, np.array([2, 2, 2], dtype=np.int64))
    packed = packed_problem.gradients(cell)
    out_p, finals_p, _ = seq_forward(cell, packed_problem.x, problem.states, problem.params, packed_problem.batch_sizes)
    np.testing.assert_array_equal(out_p, out.reshape(6, -1))
    for f, f_p in zip(finals, finals_p):
        np.testing.assert_array_equal(f_p, f)
    for name, g in dense.items():
        np.testing.assert_array_equal(packed[name], g.reshape(packed[name].shape), err_msg=name)


# ----------------------------------------------------------------------------------------------------------------------
# 7. LSTM projection and peepholes: sanity and one step written out.


@with_bias
@pytest.mark.parametrize("layout", ["TBI", "packed"])
@pytest.mark.parametrize("P", [0, 2, 5])
def test_zero_peepholes_equal_no_peepholes_exactly(bias, layout, P):
    """Peepholes of zero give bit for bit the outputs, final states and gradients of no peepholes (and gradients for
    the peepholes all the same); nonzero peepholes, each alone, change the output."""
    shape = dict(lengths=(4, 2, 2, 0)) if layout == "packed" else dict(T=3, B=2)
    problem = make_seq_problem(LSTM, 2, 3, bias, seed=P + 40, P=P, **shape)
    plain = problem.gradients(LSTM)
    out, finals, _ = seq_forward(LSTM, problem.x, problem.states, problem.params, problem.batch_sizes)

    zero_params = {**problem.params, **{name: np.zeros(3) for name in PEEPHOLE_NAMES}}
    zero = SeqProblem(problem.x, problem.states, zero_params, problem.w_out, problem.w_finals, problem.batch_sizes)
    zero_grads = zero.gradients(LSTM)
    out_z, finals_z, _ = seq_forward(LSTM, problem.x, problem.states, zero_params, problem.batch_sizes)
    np.testing.assert_array_equal(out_z, out)
    for f, f_z in zip(finals, finals_z):
        np.testing.assert_array_equal(f_z, f)
    for name, g in plain.items():
        np.testing.assert_array_equal(zero_grads[name], g, err_msg=name)
    assert all(np.any(zero_grads[name] != 0) for name in PEEPHOLE_NAMES)

    rng = np.random.default_rng(P)
    for name in PEEPHOLE_NAMES:
        one = {**zero_params, name: rng.uniform(0.5, 1.0, 3)}
        out_1, (h_1, c_1), _ = seq_forward(LSTM, problem.x, problem.states, one, problem.batch_sizes)
        assert np.max(np.abs(out_1 - out)) > 1e-3, name
        assert np.max(np.abs(h_1 - finals[0])) > 1e-3, name


@with_bias
@pytest.mark.parametrize("P", [2, 5])
def test_lstm_projection_peepholes_single_step_matches_equations(bias, P):
    """T=1 with projection and peepholes: i, f see c0, o sees c1, h1 = W_hr (o * tanh(c1)); the saved gates/cells."""
    H = 3
    problem = make_seq_problem(LSTM, 2, H, bias, seed=P, T=1, B=2, P=P, peepholes=True)
    p, x, (h, c) = problem.params, problem.x[0], problem.states
    W, U = np.split(p["weight_ih"], 4), np.split(p["weight_hh"], 4)
    b = np.split(p["bias_ih"] + p["bias_hh"], 4) if bias else [0.0] * 4
    i = _logistic(x @ W[0].T + h @ U[0].T + b[0] + p["peephole_i"] * c)
    f = _logistic(x @ W[1].T + h @ U[1].T + b[1] + p["peephole_f"] * c)
    g = np.tanh(x @ W[2].T + h @ U[2].T + b[2])
    c_new = f * c + i * g
    o = _logistic(x @ W[3].T + h @ U[3].T + b[3] + p["peephole_o"] * c_new)
    h_new = (o * np.tanh(c_new)) @ p["weight_hr"].T
    out, (h_n, c_n), saved = seq_forward(LSTM, problem.x, problem.states, p)
    assert out.shape == (1, 2, P) and h_n.shape == (2, P) and c_n.shape == (2, H)
    _assert_step(out[0], h_new, "out")
    _assert_step(h_n, h_new, "h_n")
    _assert_step(c_n, c_new, "c_n")
    _assert_step(saved.gates[0], np.concatenate([i, f, g, o], axis=1), "saved gates")
    _assert_step(saved.cells[0], c_new, "saved cells")


@pytest.mark.parametrize("layout", ["TBI", "packed"])
def test_identity_projection_equals_no_projection(layout):
    """weight_hr = the identity (P = H) computes what no projection does (to rounding), with the same gradients, and
    a nonzero dweight_hr."""
    shape = dict(lengths=(3, 2, 0)) if layout == "packed" else dict(T=3, B=2)
    problem = make_seq_problem(LSTM, 2, 3, True, seed=5, peepholes=True, **shape)
    plain = problem.gradients(LSTM)
    out, finals, _ = seq_forward(LSTM, problem.x, problem.states, problem.params, problem.batch_sizes)
    eye_params = {**problem.params, "weight_hr": np.eye(3)}
    eye = SeqProblem(problem.x, problem.states, eye_params, problem.w_out, problem.w_finals, problem.batch_sizes)
    eye_grads = eye.gradients(LSTM)
    out_e, finals_e, _ = seq_forward(LSTM, problem.x, problem.states, eye_params, problem.batch_sizes)
    np.testing.assert_allclose(out_e, out, rtol=1e-15, atol=1e-16)
    for f, f_e in zip(finals, finals_e):
        np.testing.assert_allclose(f_e, f, rtol=1e-15, atol=1e-16)
    for name, g in plain.items():
        assert_close_relative(eye_grads[name], g, 1e-14, what=name)
    assert np.any(eye_grads["weight_hr"] != 0)


@pytest.mark.parametrize("layout", ["TBI", "packed"])
def test_projection_and_peephole_gradients_accumulate(layout):
    """dweight_hr and dpeepholes are accumulated into the passed arrays like the other parameter gradients."""
    shape = dict(lengths=(3, 2, 0)) if layout == "packed" else dict(T=3, B=2)
    problem = make_seq_problem(LSTM, 2, 3, True, seed=6, P=2, peepholes=True, **shape)
    first = problem.gradients(LSTM)
    once = {name: first[name].copy() for name in problem.params}
    second = problem.gradients(LSTM, grads={name: first[name] for name in problem.params})
    for name in problem.params:
        assert second[name] is first[name], name
        assert_close_relative(second[name], 2 * once[name], 1e-14, what=name)
    for name in ("x", "h0", "c0"):
        np.testing.assert_array_equal(second[name], first[name], err_msg=name)


# ----------------------------------------------------------------------------------------------------------------------
# 8. Projection and the packed layout against PyTorch.


@with_bias
@pytest.mark.parametrize("P", [1, 4])  # torch requires P < H
@pytest.mark.parametrize("layout", ["TBI", "packed"])
def test_lstm_projection_matches_pytorch(torch, bias, P, layout):
    """torch.nn.LSTM(I, H, proj_size=P) with its own weights (and the packed layout as torch's PackedSequence, lengths
    all nonzero as torch requires): the reference's out, h_n, c_n equal torch's to 1e-12, and dx, dh0, dc0 and every
    parameter gradient, weight_hr's included, equal torch autograd's to 1e-12 relative."""
    I, H = 3, 5
    torch.manual_seed(P)
    module = torch.nn.LSTM(I, H, bias=bias, proj_size=P, dtype=torch.float64)
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else []) + ["weight_hr"]
    tparams = {name: getattr(module, f"{name}_l0") for name in names}
    params = {name: t.detach().numpy().copy() for name, t in tparams.items()}
    assert params["weight_hr"].shape == (P, H) and params["weight_hh"].shape == (4 * H, P)
    problem = make_seq_problem(LSTM, I, H, bias, seed=P, P=P,
                               **(dict(lengths=(4, 3, 3, 1)) if layout == "packed" else dict(T=4, B=3)))
    problem.params = params
    _compare_with_torch(torch, LSTM, module, tparams, problem)


def _compare_with_torch(torch, cell, module, tparams, problem):
    tx = torch.tensor(problem.x, requires_grad=True)
    tstates = [torch.tensor(s, requires_grad=True) for s in problem.states]
    tinit = tuple(s[None] for s in tstates) if cell.family == "lstm" else tstates[0][None]
    if problem.batch_sizes is None:
        tout, tfinal = module(tx, tinit)
    else:
        packed = torch.nn.utils.rnn.PackedSequence(tx, torch.tensor(problem.batch_sizes))
        tpacked_out, tfinal = module(packed, tinit)
        tout = tpacked_out.data
    tfinals = [f[0] for f in tfinal] if cell.family == "lstm" else [tfinal[0]]
    tloss = (tout * torch.tensor(problem.w_out)).sum() + sum(
        (f * torch.tensor(w)).sum() for f, w in zip(tfinals, problem.w_finals))
    tloss.backward()

    out, finals, _ = seq_forward(cell, problem.x, problem.states, problem.params, problem.batch_sizes)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg="out")
    for name, f, tf in zip(("h_n", "c_n"), finals, tfinals):
        np.testing.assert_allclose(f, tf.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    grads = problem.gradients(cell)
    expected = {"x": tx.grad, **{f"{s}0": t.grad for s, t in zip("hc", tstates)},
                **{name: t.grad for name, t in tparams.items()}}
    assert set(grads) == set(expected)
    for name, tgrad in expected.items():
        assert_close_relative(grads[name], tgrad.numpy(), 1e-12, what=name)


@pytest.mark.parametrize("cell", TORCH_CELLS, ids=lambda c: c.name)
@with_bias
def test_packed_matches_pytorch(torch, cell, bias):
    """Every cell with a torch counterpart, packed (unequal lengths, as torch's PackedSequence): out, final states
    and all gradients equal torch's."""
    I, H = 3, 4
    torch.manual_seed(11)
    module = _torch_module(torch, cell, I, H, bias)
    tparams = {name: getattr(module, f"{name}_l0") for name in PARAM_NAMES if bias or name.startswith("weight")}
    problem = make_seq_problem(cell, I, H, bias, seed=12, lengths=(5, 3, 3, 1))
    problem.params = {name: t.detach().numpy().copy() for name, t in tparams.items()}
    _compare_with_torch(torch, cell, module, tparams, problem)

"""Tests of the NumPy reference (pylstm.reference), the specification the C++ kernels are tested against.

What is checked, all in float64:

* the backward functions against central finite differences of a scalar loss, for every parameter entry, the input
  and the initial state(s), with and without bias, plus the accumulate-into-the-passed-arrays contract;
* the forward's training switch and the shapes/identities of the saved records;
* single steps against the cell equations written out independently in this file;
* ``sigmoid`` accuracy, overflow safety, limits and dtype;
* forward and backward against PyTorch's nn.LSTM / nn.GRU / nn.RNN (only when torch is importable).

The loss used for every gradient is L = sum(out * w_out) + sum(h_n * w_h) (+ sum(c_n * w_c) for the LSTM) with fixed
random weights, so its gradients with respect to the outputs are dout = w_out, dh_n = w_h, dc_n = w_c.
"""

import numpy as np
import pytest
from cells import (
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
    result = {}
    for name, array in arrays.items():
        grad = np.empty_like(array)
        for idx in np.ndindex(array.shape):
            orig = array[idx]
            array[idx] = orig + eps
            plus = loss(cell, problem)
            array[idx] = orig - eps
            minus = loss(cell, problem)
            array[idx] = orig
            grad[idx] = (plus - minus) / (2 * eps)
        result[name] = grad
    return result


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

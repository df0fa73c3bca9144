"""The streaming cells (pylstm.LSTMCell / GRUCell / RNNCell): one step per call, backward as a stack.

* against torch.nn.LSTMCell / GRUCell / RNNCell (same weights), float64 and float32: one step, and a loop of steps
  whose backward is called in reverse step order, compared with torch autograd (dx per step, initial-state gradients,
  every parameter gradient);
* step by step equals the single-layer pylstm.LSTM / GRU / RNN over the whole sequence (weight_ih -> weight_ih_l0);
* every form (GRU reset_after=False and RNN relu included, which torch lacks) against pylstm.reference;
* errors, eval mode, config() / state_dict() round trips.

Tolerances: float64 at rtol 1e-10 (the same double-precision formulas, summed in another order). float32 against
torch (float32 on both sides, each rounding its own way): max |ours - torch| <= 1e-5 * max(1, max |torch|); measured
worst 2.6e-7 over these cases (5 steps), so the bound leaves a wide margin while still catching any real formula error
(which shows up at 1e-2 or more).
"""
import json

import numpy as np
import pytest

import compare
import pylstm
from pylstm import reference as ref

F64 = dict(rtol=1e-10, atol=1e-12)
F32_OF_SCALE = 1e-5

# name -> (cell class, layer class, keywords, family)
CELLS = {
    "lstm": (pylstm.LSTMCell, pylstm.LSTM, {}, "lstm"),
    "gru": (pylstm.GRUCell, pylstm.GRU, {}, "gru"),
    "gru-reset_before": (pylstm.GRUCell, pylstm.GRU, dict(reset_after=False), "gru"),
    "rnn-tanh": (pylstm.RNNCell, pylstm.RNN, {}, "rnn"),
    "rnn-relu": (pylstm.RNNCell, pylstm.RNN, dict(nonlinearity="relu"), "rnn"),
}
TORCH_KINDS = ["lstm", "gru", "rnn-tanh", "rnn-relu"]
I_SIZE, H_SIZE, B_SIZE, T_STEPS = 4, 5, 3, 5


def make_cell(name, dtype="float64", bias=True, seed=0):
    cls, _, kw, _ = CELLS[name]
    return cls(I_SIZE, H_SIZE, bias=bias, dtype=dtype, seed=seed, **kw)


def n_states(name):
    return 2 if CELLS[name][3] == "lstm" else 1


def randomize(cell, rng, scale=0.6):
    cell.load_state_dict({n: rng.uniform(-scale, scale, p.shape) for n, p in cell.params.items()})


def assert_close(actual, expected, dtype, what):
    compare.assert_close(actual, expected, dtype, what, f64_tol=F64, f32_of_scale=F32_OF_SCALE)


def as_tuple(state):
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def as_state(name, parts):
    return tuple(parts) if n_states(name) == 2 else parts[0]


def problem(name, dtype, rng, T=T_STEPS):
    """x (T, B, I), initial state parts, loss weights W (T, B, H) on every step's h and Wc (B, H) on the last c."""
    x = rng.standard_normal((T, B_SIZE, I_SIZE)).astype(dtype)
    states = tuple(rng.standard_normal((B_SIZE, H_SIZE)).astype(dtype) for _ in range(n_states(name)))
    W = rng.standard_normal((T, B_SIZE, H_SIZE)).astype(dtype)
    Wc = rng.standard_normal((B_SIZE, H_SIZE)).astype(dtype)
    return x, states, W, Wc


def run_cell(cell, name, x, states, W, Wc):
    """Forward over the steps, then backward in reverse step order for
    L = sum_t sum(h_t * W_t) (+ sum(c_T * Wc) for the LSTM).  -> dict outs (T, B, H), finals, dx, dstate0."""
    lstm = n_states(name) == 2
    state = as_state(name, states) if states is not None else None
    outs = []
    for t in range(len(x)):
        state = cell(x[t], state)
        outs.append(as_tuple(state)[0])
    dxs = [None] * len(x)
    dh = np.zeros_like(W[0])
    dc = Wc
    for t in reversed(range(len(x))):
        dx_t, dprev = cell.backward((W[t] + dh, dc) if lstm else W[t] + dh)
        dxs[t] = dx_t
        if lstm:
            dh, dc = dprev
        else:
            dh = dprev
    return dict(outs=np.stack(outs), finals=as_tuple(state), dx=np.stack(dxs), dstate0=(dh, dc) if lstm else (dh,))


# ----------------------------------------------------------------------------------------------------------------------
# 1. Against torch's cells.


def _torch_pair(name, dtype, bias, seed):
    torch = pytest.importorskip("torch")
    torch_cls = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn": torch.nn.RNNCell}[CELLS[name][3]]
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    torch.manual_seed(seed)
    module = torch_cls(I_SIZE, H_SIZE, bias=bias, dtype=tdtype, **CELLS[name][2])
    cell = make_cell(name, dtype, bias)
    cell.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    return torch, cell, module


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "none"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", TORCH_KINDS)
def test_one_step_matches_torch(name, dtype, with_state):
    torch, cell, module = _torch_pair(name, dtype, True, 1)
    rng = np.random.default_rng(1)
    x, states, _, _ = problem(name, dtype, rng, T=1)
    got = as_tuple(cell(x[0], as_state(name, states) if with_state else None))
    targs = (tuple(map(torch.from_numpy, states)) if n_states(name) == 2 else torch.from_numpy(states[0])) \
        if with_state else None
    with torch.no_grad():
        expected = as_tuple(module(torch.from_numpy(x[0]), targs))
    assert len(got) == len(expected) == n_states(name)
    for k, (a, e) in enumerate(zip(got, expected)):
        assert_close(a, e.numpy(), dtype, f"state[{k}]")


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", TORCH_KINDS)
def test_step_loop_and_stack_backward_match_torch_autograd(name, dtype, bias):
    torch, cell, module = _torch_pair(name, dtype, bias, 2)
    rng = np.random.default_rng(2)
    x, states, W, Wc = problem(name, dtype, rng)
    got = run_cell(cell, name, x, states, W, Wc)

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    st = [torch.from_numpy(s.copy()).requires_grad_(True) for s in states]
    state = tuple(st) if n_states(name) == 2 else st[0]
    loss, outs = 0, []
    for t in range(len(x)):
        state = module(xt[t], state)
        h = state[0] if n_states(name) == 2 else state
        outs.append(h)
        loss = loss + (h * torch.from_numpy(W[t])).sum()
    if n_states(name) == 2:
        loss = loss + (state[1] * torch.from_numpy(Wc)).sum()
    loss.backward()

    assert_close(got["outs"], torch.stack(outs).detach().numpy(), dtype, "h per step")
    for k, (a, e) in enumerate(zip(got["finals"], as_tuple(state), strict=True)):
        assert_close(a, e.detach().numpy(), dtype, f"final[{k}]")
    for t in range(len(x)):
        assert_close(got["dx"][t], xt.grad[t].numpy(), dtype, f"dx step {t}")
    for k, (a, e) in enumerate(zip(got["dstate0"], st, strict=True)):
        assert_close(a, e.grad.numpy(), dtype, f"dstate0[{k}]")
    torch_grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    assert list(cell.grads) == list(torch_grads)
    for n, e in torch_grads.items():
        assert_close(cell.grads[n], e, dtype, f"grad {n}")


def test_cell_names_and_shapes_equal_torch():
    torch = pytest.importorskip("torch")
    for name, tcls in (("lstm", torch.nn.LSTMCell), ("gru", torch.nn.GRUCell), ("rnn-tanh", torch.nn.RNNCell)):
        for bias in (True, False):
            cell = make_cell(name, bias=bias)
            module = tcls(I_SIZE, H_SIZE, bias=bias)
            assert [(k, v.shape) for k, v in cell.params.items()] == \
                [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


# ----------------------------------------------------------------------------------------------------------------------
# 2. Step by step == the single-layer layer over the sequence.


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CELLS))
def test_steps_equal_single_layer(name, dtype, bias):
    rng = np.random.default_rng(3)
    cell = make_cell(name, dtype, bias)
    randomize(cell, rng)
    _, layer_cls, kw, _ = CELLS[name]
    layer = layer_cls(I_SIZE, H_SIZE, 1, bias=bias, dtype=dtype, **kw)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    x, states, W, Wc = problem(name, dtype, rng)
    got = run_cell(cell, name, x, states, W, Wc)

    out, final = layer(x, as_state(name, [s[None] for s in states]))
    dstate = (None, Wc[None]) if n_states(name) == 2 else None
    dx, dstate0 = layer.backward(W, dstate)
    assert_close(got["outs"], out, dtype, "outs")
    for k, (a, e) in enumerate(zip(got["finals"], as_tuple(final), strict=True)):
        assert_close(a, e[0], dtype, f"final[{k}]")
    assert_close(got["dx"], dx, dtype, "dx")
    for k, (a, e) in enumerate(zip(got["dstate0"], as_tuple(dstate0), strict=True)):
        assert_close(a, e[0], dtype, f"dstate0[{k}]")
    for k, g in cell.grads.items():
        assert_close(g, layer.grads[f"{k}_l0"], dtype, f"grad {k}")


# ----------------------------------------------------------------------------------------------------------------------
# 3. Against the reference (every form, including the two torch lacks).


def reference_sequence(name, params, x, states, W, Wc):
    """pylstm.reference over the whole sequence with the same loss -> the dict run_cell returns, plus grads."""
    _, _, kw, family = CELLS[name]
    w = (params["weight_ih"], params["weight_hh"], params.get("bias_ih"), params.get("bias_hh"))
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    acc = dict(dweight_ih=grads["weight_ih"], dweight_hh=grads["weight_hh"], dbias_ih=grads.get("bias_ih"),
               dbias_hh=grads.get("bias_hh"))
    if family == "lstm":
        out, h, c, saved = ref.lstm_forward(x, *states, *w)
        dx, dh0, dc0 = ref.lstm_backward(saved, w[0], w[1], W, None, Wc, **acc)
        return dict(outs=out, finals=(h, c), dx=dx, dstate0=(dh0, dc0), grads=grads)
    fwd, bwd = (ref.gru_forward, ref.gru_backward) if family == "gru" else (ref.rnn_forward, ref.rnn_backward)
    out, h, saved = fwd(x, *states, *w, **kw)
    dx, dh0 = bwd(saved, w[0], w[1], W, None, **acc)
    return dict(outs=out, finals=(h,), dx=dx, dstate0=(dh0,), grads=grads)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("name", list(CELLS))
def test_steps_match_reference(name, bias):
    rng = np.random.default_rng(4)
    cell = make_cell(name, "float64", bias)
    randomize(cell, rng)
    x, states, W, Wc = problem(name, "float64", rng)
    got = run_cell(cell, name, x, states, W, Wc)
    expected = reference_sequence(name, cell.state_dict(), x, states, W, Wc)
    for key in ("outs", "dx"):
        assert_close(got[key], expected[key], "float64", key)
    for key in ("finals", "dstate0"):
        for k, (a, e) in enumerate(zip(got[key], expected[key], strict=True)):
            assert_close(a, e, "float64", f"{key}[{k}]")
    for k, e in expected["grads"].items():
        assert_close(cell.grads[k], e, "float64", f"grad {k}")
    assert list(cell.grads) == list(expected["grads"])


def test_gru_reset_before_and_rnn_relu_differ_from_the_other_forms():
    """So that test_steps_match_reference really checks the reset_after=False and relu forms."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, I_SIZE))
    a, b = make_cell("gru"), make_cell("gru-reset_before")
    b.load_state_dict(a.state_dict())
    assert not np.allclose(a(x), b(x))
    r, t = make_cell("rnn-relu"), make_cell("rnn-tanh")
    t.load_state_dict(r.state_dict())
    hr = r(x)
    assert np.all(hr >= 0) and np.any(hr == 0)
    assert not np.allclose(hr, t(x))


# ----------------------------------------------------------------------------------------------------------------------
# 4. Errors and modes.


@pytest.mark.parametrize("name", list(CELLS))
def test_rejects_wrong_x(name):
    cell = make_cell(name, "float64")
    for shape in [(I_SIZE + 1,), (), (1, 2, I_SIZE), (2, I_SIZE + 1)]:
        with pytest.raises(ValueError, match="x"):
            cell(np.zeros(shape))
    with pytest.raises(TypeError, match="x"):
        cell(np.zeros((2, I_SIZE), np.float32))
    with pytest.raises(TypeError, match="x"):
        make_cell(name, "float32")(np.zeros((2, I_SIZE)))


@pytest.mark.parametrize("name", list(CELLS))
def test_rejects_wrong_state_shape(name):
    cell = make_cell(name, "float64")
    x = np.zeros((2, I_SIZE))
    for shape in [(3, H_SIZE), (2, H_SIZE + 1), (1, 2, H_SIZE)]:
        bad = np.zeros(shape)
        state = (bad, np.zeros((2, H_SIZE))) if n_states(name) == 2 else bad
        with pytest.raises(ValueError, match="state"):
            cell(x, state)
        if n_states(name) == 2:
            with pytest.raises(ValueError, match="state"):
                cell(x, (np.zeros((2, H_SIZE)), bad))
    bad_dtype = np.zeros((2, H_SIZE), np.float32)
    with pytest.raises(TypeError, match="state"):
        cell(x, (bad_dtype, bad_dtype) if n_states(name) == 2 else bad_dtype)


@pytest.mark.parametrize("state", [
    np.zeros((2, H_SIZE)), np.zeros((2, 2, H_SIZE)), (np.zeros((2, H_SIZE)),),
    (np.zeros((2, H_SIZE)),) * 3], ids=["array", "stacked-array", "1-tuple", "3-tuple"])
def test_lstm_cell_state_must_be_a_pair(state):
    cell = make_cell("lstm", "float64")
    with pytest.raises((TypeError, ValueError), match="state"):
        cell(np.zeros((2, I_SIZE)), state)


def test_lstm_cell_accepts_list_pair_and_partial_none():
    cell = make_cell("lstm", "float64")
    x = np.random.default_rng(0).standard_normal((2, I_SIZE))
    h = np.random.default_rng(1).standard_normal((2, H_SIZE))
    z = np.zeros((2, H_SIZE))
    a = cell(x, [h, z])
    b = cell(x, (h, None))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("name", list(CELLS))
def test_backward_with_no_step_left_raises(name):
    cell = make_cell(name, "float64")
    dh = np.ones((2, H_SIZE))
    dstate = (dh, None) if n_states(name) == 2 else dh
    with pytest.raises(RuntimeError):
        cell.backward(dstate)
    cell(np.ones((2, I_SIZE)))
    cell(np.ones((2, I_SIZE)))
    cell.backward(dstate)
    cell.backward(dstate)
    with pytest.raises(RuntimeError):
        cell.backward(dstate)


@pytest.mark.parametrize("name", list(CELLS))
def test_a_backward_that_the_kernel_refuses_keeps_its_step(name):
    """The kernel refuses a dstate that shares memory with the weight_hh gradient it writes: the step stays, and the
    corrected call differentiates that step (not the one before it)."""
    x = np.random.default_rng(2).standard_normal((3, 2, I_SIZE))
    dh = np.random.default_rng(3).standard_normal((2, H_SIZE))
    cells = []
    for _ in range(2):
        cell = make_cell(name)
        state = None
        for t in range(3):
            state = cell(x[t], state)
        cells.append(cell)
    cell, clean = cells
    shared = cell.grads["weight_hh"][:2]
    with pytest.raises(ValueError, match="must not share memory"):
        cell.backward((shared, None) if n_states(name) == 2 else shared)
    results = [c.backward((dh, None) if n_states(name) == 2 else dh) for c in (cell, clean)]
    for got, expected in zip(results[0][:1] + as_tuple(results[0][1]), results[1][:1] + as_tuple(results[1][1])):
        np.testing.assert_array_equal(got, expected)
    for key in clean.grads:
        np.testing.assert_array_equal(cell.grads[key], clean.grads[key], err_msg=key)


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_misaligned_states_are_taken_as_strided_ones_are(name, training):
    """A state or dstate one byte off its element alignment (a view of a byte buffer) is copied, as a strided one is:
    the same results as the aligned arrays, in either mode."""
    def misaligned(a):
        view = np.frombuffer(bytearray(a.nbytes + 1), a.dtype, a.size, 1).reshape(a.shape)
        view[...] = a
        assert not view.flags.aligned
        return view

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, I_SIZE))
    parts = tuple(rng.standard_normal((2, H_SIZE)) for _ in range(n_states(name)))
    results = []
    for convert in (lambda a: a, misaligned):
        cell = make_cell(name).train(training)
        state = tuple(convert(p) for p in parts)
        out = cell(convert(x), state if len(state) == 2 else state[0])
        result = list(as_tuple(out))
        if training:
            dx, dstate = cell.backward(tuple(convert(p) for p in parts) if len(parts) == 2 else convert(parts[0]))
            result += [dx, *as_tuple(dstate), *cell.grads.values()]
        results.append(result)
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", list(CELLS))
def test_eval_keeps_nothing_and_backward_raises(name):
    cell = make_cell(name, "float64")
    dh = np.ones((2, H_SIZE))
    dstate = (dh, None) if n_states(name) == 2 else dh
    x = np.random.default_rng(0).standard_normal((2, I_SIZE))
    train_out = as_tuple(cell(x))
    cell.eval()
    assert cell.training is False
    with pytest.raises(RuntimeError, match="eval"):  # eval() dropped the training step's record
        cell.backward(dstate)
    eval_out = as_tuple(cell(x))
    for a, b in zip(train_out, eval_out):
        np.testing.assert_array_equal(a, b)
    for _ in range(3):
        cell(x)
    with pytest.raises(RuntimeError):
        cell.backward(dstate)
    cell.train()
    with pytest.raises(RuntimeError):  # the eval steps kept nothing
        cell.backward(dstate)
    assert not any(g.any() for g in cell.grads.values())


@pytest.mark.parametrize("name", list(CELLS))
def test_backward_needs_dh(name):
    cell = make_cell(name, "float64")
    cell(np.ones((2, I_SIZE)))
    dstate = (None, np.ones((2, H_SIZE))) if n_states(name) == 2 else None
    with pytest.raises(ValueError, match="dstate"):
        cell.backward(dstate)
    if n_states(name) == 2:
        with pytest.raises(ValueError, match="dstate"):
            cell.backward((None, None))


@pytest.mark.parametrize("name", list(CELLS))
def test_backward_rejects_wrong_dstate_shape(name):
    cell = make_cell(name, "float64")
    cell(np.ones((2, I_SIZE)))
    bad = np.ones((3, H_SIZE))
    with pytest.raises(ValueError, match="dstate"):
        cell.backward((bad, None) if n_states(name) == 2 else bad)


def test_lstm_cell_dc_none_means_zero():
    rng = np.random.default_rng(6)
    a, b = make_cell("lstm"), make_cell("lstm")
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((2, I_SIZE))
    dh = rng.standard_normal((2, H_SIZE))
    a(x)
    b(x)
    ra = a.backward((dh, None))
    rb = b.backward((dh, np.zeros((2, H_SIZE))))
    np.testing.assert_array_equal(ra[0], rb[0])
    for u, v in zip(ra[1], rb[1]):
        np.testing.assert_array_equal(u, v)


def test_backward_accumulates_and_zero_grad_clears():
    rng = np.random.default_rng(7)
    cell = make_cell("gru")
    x = rng.standard_normal((2, I_SIZE))
    dh = rng.standard_normal((2, H_SIZE))
    cell(x)
    cell.backward(dh)
    once = {k: v.copy() for k, v in cell.grads.items()}
    cell(x)
    cell.backward(dh)
    for k, v in cell.grads.items():
        np.testing.assert_allclose(v, 2 * once[k], rtol=1e-14, err_msg=k)
    arrays = dict(cell.grads)
    cell.zero_grad()
    assert all(not g.any() and g is arrays[k] for k, g in cell.grads.items())


# ----------------------------------------------------------------------------------------------------------------------
# 5. config() / state_dict() round trips.


@pytest.mark.parametrize("name, kwargs, expected_extra", [
    ("lstm", dict(bias=False, dtype="float64", seed=3), {}),
    ("lstm", dict(), {}),
    ("gru", dict(seed=4), dict(reset_after=True)),
    ("gru-reset_before", dict(dtype="float64", seed=5), dict(reset_after=False)),
    ("rnn-tanh", dict(bias=False), dict(nonlinearity="tanh")),
    ("rnn-relu", dict(dtype="float64", seed=6), dict(nonlinearity="relu")),
])
def test_config_round_trip(name, kwargs, expected_extra):
    cls, _, kw, _ = CELLS[name]
    cell = cls(I_SIZE, H_SIZE, **kw, **kwargs)
    cfg = cell.config()
    expected = dict(input_size=I_SIZE, hidden_size=H_SIZE, bias=kwargs.get("bias", True),
                    dtype=kwargs.get("dtype", "float32"), seed=kwargs.get("seed"), **expected_extra)
    assert cfg == expected
    restored = json.loads(json.dumps(cfg))
    assert restored == cfg
    clone = cls(**restored)
    assert clone.config() == cfg
    assert [(k, v.shape, v.dtype) for k, v in clone.params.items()] == \
        [(k, v.shape, v.dtype) for k, v in cell.params.items()]
    if cfg["seed"] is not None:  # the same seed draws the same parameters
        for k in cell.params:
            np.testing.assert_array_equal(clone.params[k], cell.params[k], err_msg=k)
    # state_dict -> load_state_dict reproduces the cell's computation exactly
    other = cls(**{**cfg, "seed": 99})
    assert any(not np.array_equal(other.params[k], cell.params[k]) for k in cell.params)
    live = dict(other.params)
    other.load_state_dict(cell.state_dict())
    assert all(other.params[k] is live[k] for k in live)  # copied in place: the arrays stay the same objects
    x = np.random.default_rng(0).standard_normal((2, I_SIZE)).astype(cfg["dtype"])
    for a, b in zip(as_tuple(cell(x)), as_tuple(other(x))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(CELLS))
def test_state_dict_copies_and_load_checks(name):
    cell = make_cell(name)
    sd = cell.state_dict()
    assert list(sd) == list(cell.params)
    sd["weight_ih"][:] = 123.0
    assert not np.any(cell.params["weight_ih"] == 123.0)
    before = cell.state_dict()
    missing = {k: v for k, v in sd.items() if k != "bias_hh"}
    with pytest.raises(KeyError, match="bias_hh"):
        cell.load_state_dict(missing)
    with pytest.raises(KeyError, match="extra"):
        cell.load_state_dict({**sd, "extra": np.zeros(1)})
    with pytest.raises(KeyError, match="weight_ih"):
        cell.load_state_dict({f"{k}_l0": v for k, v in sd.items()})  # a layer's names are not a cell's
    wrong = dict(sd, weight_hh=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="weight_hh"):
        cell.load_state_dict(wrong)
    for k, v in cell.params.items():  # nothing was copied by the rejected calls
        np.testing.assert_array_equal(v, before[k], err_msg=k)

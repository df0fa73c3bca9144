"""Tests of the layer API (pylstm.LSTM, GRU, RNN): the behaviour a user of the classes relies on.

* construction: parameter names, shapes, dtype, initialisation range and spread, seeding;
* ``params`` are live arrays, ``grads`` accumulate and ``zero_grad`` clears them in place;
* ``state_dict`` / ``load_state_dict``: copies out, in-place copies in, and all-or-nothing rejection of bad mappings;
* forward / backward: shapes, final state, continuing from a state, and agreement with the NumPy reference
  (``pylstm.reference``, the specification) on the layer's own parameters;
* training / eval mode, read-only training outputs;
* the cell variants (GRU reset_after=False, RNN relu), ``repr``, and edge shapes including T=0 and B=0.

Numerical comparisons are in float64 against the reference, so they can be tight (the kernels' float32 accuracy is
measured in test_torch_layers.py and test_kernels.py).
"""
from dataclasses import dataclass

import numpy as np
import pytest

import pylstm
from pylstm import functional as F
from pylstm import reference as ref

NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
RTOL = 1e-12  # float64 layer vs float64 reference: only rounding differences (different summation orders)
ATOL = 1e-12


@dataclass(frozen=True)
class Kind:
    """One layer configuration: the class, its extra constructor keywords, and how the reference computes it."""
    name: str
    cls: type
    gates: int  # G in PyTorch's (G*H, I) weight shapes
    kwargs: tuple = ()

    @property
    def is_lstm(self):
        return self.cls is pylstm.LSTM

    def make(self, input_size=3, hidden_size=4, **kw):
        return self.cls(input_size, hidden_size, **dict(self.kwargs), **kw)


KINDS = [
    Kind("lstm", pylstm.LSTM, 4),
    Kind("gru", pylstm.GRU, 3),
    Kind("gru-reset_before", pylstm.GRU, 3, (("reset_after", False),)),
    Kind("rnn-tanh", pylstm.RNN, 1),
    Kind("rnn-relu", pylstm.RNN, 1, (("nonlinearity", "relu"),)),
]
kinds = pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
with_bias = pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
dtypes = pytest.mark.parametrize("dtype", ["float32", "float64"])


# ----------------------------------------------------------------------------------------------------------------------
# Helpers: random inputs in the layer's conventions, and the same computation done by the reference.


def as_tuple(state):
    """LSTM state (h, c) -> itself; GRU/RNN state h -> (h,)."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def random_state(layer, batch, rng):
    """A random nonzero state in the layer's format: (h, c) for the LSTM, h otherwise, each (1, B, H)."""
    states = tuple(rng.standard_normal((1, batch, layer.hidden_size)).astype(layer.dtype)
                   for _ in range(2 if isinstance(layer, pylstm.LSTM) else 1))
    return states if isinstance(layer, pylstm.LSTM) else states[0]


def random_input(layer, T, B, rng):
    return rng.standard_normal((T, B, layer.input_size)).astype(layer.dtype)


def reference_run(layer, x, state=None, dout=None, dstate=None):
    """The layer's forward (and backward when dout is given) recomputed by pylstm.reference on copies of the layer's
    parameters. -> dict with out, finals (tuple of (B, H)), and dx, dstate0 (tuple of (B, H)), grads (layer names)."""
    p = {name: v.copy() for name, v in layer.params.items()}
    B, H = x.shape[1], layer.hidden_size
    n_states = 2 if isinstance(layer, pylstm.LSTM) else 1
    states = (tuple(s[0] for s in as_tuple(state)) if state is not None
              else tuple(np.zeros((B, H), layer.dtype) for _ in range(n_states)))
    weights = (p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"), p.get("bias_hh_l0"))
    if isinstance(layer, pylstm.LSTM):
        out, h_n, c_n, saved = ref.lstm_forward(x, *states, *weights)
        finals = (h_n, c_n)
    elif isinstance(layer, pylstm.GRU):
        out, h_n, saved = ref.gru_forward(x, *states, *weights, reset_after=layer.reset_after)
        finals = (h_n,)
    else:
        out, h_n, saved = ref.rnn_forward(x, *states, *weights, nonlinearity=layer.nonlinearity)
        finals = (h_n,)
    result = {"out": out, "finals": finals}
    if dout is None:
        return result
    grads = {name: np.zeros_like(v) for name, v in p.items()}
    dfinals = (tuple(None if d is None else d[0] for d in as_tuple(dstate)) if dstate is not None
               else (None,) * n_states)
    backward = getattr(ref, f"{type(layer).__name__.lower()}_backward")
    dx, *dstate0 = backward(saved, p["weight_ih_l0"], p["weight_hh_l0"], dout, *dfinals,
                            dweight_ih=grads["weight_ih_l0"], dweight_hh=grads["weight_hh_l0"],
                            dbias_ih=grads.get("bias_ih_l0"), dbias_hh=grads.get("bias_hh_l0"))
    result.update(dx=dx, dstate0=tuple(dstate0), grads=grads)
    return result


def assert_close(actual, expected, what="", rtol=RTOL, atol=ATOL):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def assert_matches_reference(layer, x, state, out, final_state, dout=None, dstate=None, dx=None, dstate0=None,
                             grads=None):
    """Every given output of the layer equals the reference's (states compared as (1, B, H) arrays)."""
    expected = reference_run(layer, x, state, dout, dstate)
    assert_close(out, expected["out"], "out")
    for k, (f, e) in enumerate(zip(as_tuple(final_state), expected["finals"])):
        assert_close(f, e[None], f"final state[{k}]")
    if dout is None:
        return
    assert_close(dx, expected["dx"], "dx")
    for k, (d, e) in enumerate(zip(as_tuple(dstate0), expected["dstate0"])):
        assert_close(d, e[None], f"dstate0[{k}]")
    for name, g in expected["grads"].items():
        assert_close(grads[name], g, f"grad {name}")


def forward_backward(layer, T=4, B=3, seed=0, with_state=True, with_dstate=True):
    """A random forward + backward through the layer, checked against the reference; returns what it used."""
    rng = np.random.default_rng(seed)
    x = random_input(layer, T, B, rng)
    state = random_state(layer, B, rng) if with_state else None
    out, final = layer(x, state)
    dout = rng.standard_normal(out.shape).astype(layer.dtype)
    dstate = random_state(layer, B, rng) if with_dstate else None
    layer.zero_grad()
    dx, dstate0 = layer.backward(dout, dstate)
    assert_matches_reference(layer, x, state, out, final, dout, dstate, dx, dstate0, layer.grads)
    return dict(x=x, state=state, out=out, final=final, dout=dout, dstate=dstate, dx=dx, dstate0=dstate0)


# ----------------------------------------------------------------------------------------------------------------------
# 1. Construction.


@kinds
@with_bias
def test_parameter_names_and_shapes_are_pytorchs(kind, bias):
    """weight_ih_l0 (G*H, I), weight_hh_l0 (G*H, H), bias_ih_l0 and bias_hh_l0 (G*H,) with G = 4, 3, 1 for LSTM, GRU,
    RNN, in this order; no bias keys when bias=False; grads has the same names, shapes and dtype, all zero."""
    I, H, G = 5, 7, kind.gates
    layer = kind.make(I, H, bias=bias)
    expected = {"weight_ih_l0": (G * H, I), "weight_hh_l0": (G * H, H)}
    if bias:
        expected.update(bias_ih_l0=(G * H,), bias_hh_l0=(G * H,))
    assert list(layer.params) == list(expected)
    assert {k: v.shape for k, v in layer.params.items()} == expected
    assert {k: v.shape for k, v in layer.grads.items()} == expected
    assert all(not g.any() for g in layer.grads.values())
    assert all(g.dtype == layer.dtype for g in layer.grads.values())
    assert layer.input_size == I and layer.hidden_size == H and layer.bias is bias


@kinds
@dtypes
def test_parameters_and_gradients_start_on_a_cache_line(kind, dtype):
    """Every parameter and gradient array of layers (stacked, bidirectional) and cells starts on a 64-byte boundary
    (NumPy's own arrays start on 16): a batch-1 step reads the weights in place, and rows straddling cache lines slow
    it down. They stay there through load_state_dict, writable and C-contiguous, and compute what copies of them do."""
    cell = {pylstm.LSTM: pylstm.LSTMCell, pylstm.GRU: pylstm.GRUCell, pylstm.RNN: pylstm.RNNCell}[kind.cls]
    modules = [kind.make(5, 7, dtype=dtype), kind.make(5, 7, num_layers=2, bidirectional=True, dtype=dtype),
               cell(5, 7, dtype=dtype)]
    for m in modules:
        m.load_state_dict({k: v * 2 for k, v in m.state_dict().items()})
        for name, a in (*m.params.items(), *m.grads.items()):
            assert a.ctypes.data % 64 == 0, f"{type(m).__name__} {name}: address % 64 = {a.ctypes.data % 64}"
            assert a.flags.writeable and a.flags.c_contiguous and a.dtype == dtype, name
    layer = modules[0]
    x = np.random.default_rng(0).standard_normal((3, 1, 5)).astype(dtype)
    # The kernels compute the same from copies at NumPy's alignment (its arrays start on 16 bytes).
    copies = {k: np.array(v) for k, v in layer.params.items()}
    w = [copies[name] for name in NAMES]
    h0 = np.zeros((1, 7), dtype)
    if kind.is_lstm:
        out = F.lstm_forward(x, h0, h0, *w)[0]
    elif kind.cls is pylstm.GRU:
        out = F.gru_forward(x, h0, *w, reset_after=layer.reset_after)[0]
    else:
        out = F.rnn_forward(x, h0, *w, nonlinearity=layer.nonlinearity)[0]
    np.testing.assert_array_equal(layer(x)[0], out)


@kinds
def test_dtype_default_float32_and_float64(kind):
    assert kind.make().dtype == np.float32
    for dtype in ("float64", np.float64, np.dtype("float64")):
        layer = kind.make(dtype=dtype)
        assert layer.dtype == np.float64
        assert all(a.dtype == np.float64 for a in (*layer.params.values(), *layer.grads.values()))
    layer = kind.make()
    assert all(a.dtype == np.float32 for a in (*layer.params.values(), *layer.grads.values()))


@kinds
@dtypes
def test_init_is_uniform_within_pytorch_bound(kind, dtype):
    """Every parameter lies in [-1/sqrt(H), 1/sqrt(H)] (PyTorch's default) and is spread over the whole interval:
    extremes near both ends, standard deviation near bound/sqrt(3), no parameter constant."""
    H = 25
    bound = 1 / np.sqrt(H)
    layer = kind.make(6, H, dtype=dtype, seed=123)
    for name, p in layer.params.items():
        assert np.all(np.abs(p) <= bound), name
        assert p.std() > 0.5 * bound / np.sqrt(3), name
    values = np.concatenate([p.ravel() for p in layer.params.values()]).astype(np.float64)
    assert values.min() < -0.95 * bound and values.max() > 0.95 * bound
    assert abs(values.std() - bound / np.sqrt(3)) < 0.1 * bound / np.sqrt(3)
    assert abs(values.mean()) < 0.1 * bound


@kinds
def test_seed_determines_parameters(kind):
    a, b = kind.make(4, 6, seed=7), kind.make(4, 6, seed=7)
    c = kind.make(4, 6, seed=8)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
        assert not np.array_equal(a.params[name], c.params[name]), name
    # No seed: fresh randomness each time.
    d, e = kind.make(4, 6), kind.make(4, 6)
    assert not np.array_equal(d.params["weight_hh_l0"], e.params["weight_hh_l0"])


# ----------------------------------------------------------------------------------------------------------------------
# 2. params are live, grads accumulate, zero_grad.


@kinds
@with_bias
def test_params_are_live_an_sgd_step_changes_the_next_forward(kind, bias):
    """Updating layer.params in place (an SGD step p -= lr * g) is what the next forward computes with."""
    layer = kind.make(3, 5, bias=bias, dtype="float64", seed=1)
    run = forward_backward(layer, seed=2)
    before = run["out"].copy()
    ids = {name: id(p) for name, p in layer.params.items()}
    for name, p in layer.params.items():
        p -= 0.1 * layer.grads[name]
    assert {name: id(p) for name, p in layer.params.items()} == ids
    out, final = layer(run["x"], run["state"])
    assert not np.allclose(out, before)
    assert_matches_reference(layer, run["x"], run["state"], out, final)


@kinds
@with_bias
def test_backward_accumulates_into_grads(kind, bias):
    """A second forward and backward of the same input without zero_grad: every gradient is twice the first one's
    (to rounding), in the same arrays; dx and dstate0 do not depend on the accumulated gradients."""
    layer = kind.make(3, 5, bias=bias, dtype="float64", seed=3)
    run = forward_backward(layer, seed=4)
    first = {name: g.copy() for name, g in layer.grads.items()}
    arrays = dict(layer.grads)
    layer(run["x"], run["state"])
    dx, dstate0 = layer.backward(run["dout"], run["dstate"])
    for name, g in layer.grads.items():
        assert g is arrays[name]
        assert first[name].any(), name
        np.testing.assert_allclose(g, 2 * first[name], rtol=1e-14, atol=1e-15, err_msg=name)
    np.testing.assert_array_equal(dx, run["dx"])
    for d, e in zip(as_tuple(dstate0), as_tuple(run["dstate0"])):
        np.testing.assert_array_equal(d, e)


@kinds
@pytest.mark.parametrize("call", ["single", "stack", "bidirectional", "lengths", "unbatched"])
def test_a_second_backward_of_one_forward_raises(kind, call):
    """backward runs once per forward, as torch's: a second call raises RuntimeError and adds nothing to grads, on
    every path a forward takes (one layer, a stack, both directions, lengths, an unbatched x)."""
    options = {"stack": dict(num_layers=2), "bidirectional": dict(bidirectional=True)}.get(call, {})
    layer = kind.make(3, 5, dtype="float64", seed=6, **options)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3) if call == "unbatched" else (4, 2, 3))
    out, _ = layer(x, lengths=[4, 2] if call == "lengths" else None)
    layer.backward(np.ones_like(out))
    grads = {name: g.copy() for name, g in layer.grads.items()}
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(np.ones_like(out))
    for name, g in layer.grads.items():
        np.testing.assert_array_equal(g, grads[name], err_msg=name)
    out, _ = layer(x, lengths=[4, 2] if call == "lengths" else None)  # a new forward can be differentiated again
    layer.backward(np.ones_like(out))


@kinds
def test_a_stacks_backward_that_fails_after_a_layer_added_its_gradients_is_used_up(kind):
    """A stack's backward runs a kernel per layer from the last: an error in layer 0's after layer 1's added its
    gradients uses the forward up (a retry would add layer 1's twice); an error before any kernel ran leaves it.
    Layer 0's kernel here refuses a dstate whose layer-0 part shares memory with its own weight_hh gradient."""
    H = 4
    B = kind.gates * H // 2  # dstate (2, B, H) then has the size of weight_hh_l0's gradient
    x = np.random.default_rng(3).standard_normal((5, B, 3))

    def run():
        layer = kind.make(3, H, num_layers=2, dtype="float64", seed=4)
        return layer, layer(x)[0]

    clean, out = run()
    clean.backward(np.ones_like(out))
    layer, out = run()
    with pytest.raises(ValueError, match="dout"):  # checked before any kernel runs: the forward stays
        layer.backward(np.ones(out.shape[:-1] + (out.shape[-1] + 1,)))
    view = layer.grads["weight_hh_l0"].reshape(2, B, H)
    with pytest.raises(ValueError, match="must not share memory"):
        layer.backward(np.ones_like(out), (view, None) if kind.is_lstm else view)
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(np.ones_like(out))
    for name, g in layer.grads.items():  # layer 1's gradients once, layer 0's none
        expected = clean.grads[name] if name.endswith("_l1") else np.zeros_like(g)
        np.testing.assert_array_equal(g, expected, err_msg=name)


@kinds
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_misaligned_states_are_taken_as_strided_ones_are(kind, training):
    """x, a state and a dstate one byte off their element alignment (views of a byte buffer) are copied, as strided
    ones are (they were refused in eval mode and in backward, under the kernel's names h0 and dh_n)."""
    def misaligned(a):
        view = np.frombuffer(bytearray(a.nbytes + 1), a.dtype, a.size, 1).reshape(a.shape)
        view[...] = a
        return view

    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 2, 3))
    parts = tuple(rng.standard_normal((1, 2, 4)) for _ in range(2 if kind.is_lstm else 1))
    results = []
    for convert in (lambda a: a, misaligned):
        layer = kind.make(3, 4, dtype="float64", seed=1).train(training)
        state = tuple(convert(p) for p in parts)
        out, final = layer(convert(x), state if kind.is_lstm else state[0])
        result = [out, *as_tuple(final)]
        if training:
            dstate = tuple(convert(p) for p in parts)
            dx, dstate0 = layer.backward(convert(np.ones_like(out)), dstate if kind.is_lstm else dstate[0])
            result += [dx, *as_tuple(dstate0), *layer.grads.values()]
        results.append(result)
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)


@kinds
def test_zero_grad_clears_in_place(kind):
    layer = kind.make(3, 4, seed=5)
    out, _ = layer(np.ones((2, 2, 3), np.float32))
    layer.backward(np.ones_like(out))
    arrays = dict(layer.grads)
    assert any(g.any() for g in arrays.values())
    layer.zero_grad()
    assert all(layer.grads[name] is arrays[name] for name in arrays)
    assert all(not g.any() for g in layer.grads.values())


# ----------------------------------------------------------------------------------------------------------------------
# 3. state_dict / load_state_dict.


@kinds
@with_bias
def test_state_dict_returns_copies(kind, bias):
    layer = kind.make(3, 4, bias=bias, seed=6)
    sd = layer.state_dict()
    assert list(sd) == list(layer.params)
    for name, v in sd.items():
        assert v is not layer.params[name] and not np.shares_memory(v, layer.params[name])
        np.testing.assert_array_equal(v, layer.params[name])
        original = v.copy()
        v += 1.0
        np.testing.assert_array_equal(layer.params[name], original, err_msg=name)


@kinds
@with_bias
def test_load_state_dict_round_trip_in_place(kind, bias):
    """Loading one layer's state_dict into another (differently seeded) makes them compute the same; the target's
    parameter arrays stay the same objects (an optimizer holding them keeps working)."""
    src = kind.make(3, 4, bias=bias, dtype="float64", seed=7)
    dst = kind.make(3, 4, bias=bias, dtype="float64", seed=8)
    arrays = dict(dst.params)
    dst.load_state_dict(src.state_dict())
    assert all(dst.params[name] is arrays[name] for name in arrays)
    for name in src.params:
        np.testing.assert_array_equal(dst.params[name], src.params[name])
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    np.testing.assert_array_equal(dst(x)[0], src(x)[0])


@kinds
def test_load_state_dict_of_the_layers_own_arrays_swapped(kind):
    """A mapping that holds the layer's own live arrays under other names (the two directions swapped) loads the
    values they had before the call: each array is read before any is overwritten."""
    layer = kind.make(3, 4, bidirectional=True, dtype="float64", seed=2)
    before = {name: p.copy() for name, p in layer.params.items()}
    swapped = {name: layer.params[name[:-len("_reverse")] if name.endswith("_reverse") else name + "_reverse"]
               for name in layer.params}
    layer.load_state_dict(swapped)
    for name, p in layer.params.items():
        other = name[:-len("_reverse")] if name.endswith("_reverse") else name + "_reverse"
        np.testing.assert_array_equal(p, before[other], err_msg=name)


@kinds
def test_load_state_dict_casts_to_the_layer_dtype(kind):
    layer = kind.make(3, 4, seed=9)  # float32
    sd64 = {name: v.astype(np.float64) / 3 for name, v in layer.state_dict().items()}
    layer.load_state_dict(sd64)
    for name, v in sd64.items():
        assert layer.params[name].dtype == np.float32
        np.testing.assert_array_equal(layer.params[name], v.astype(np.float32))


def _snapshot(layer):
    return {name: p.copy() for name, p in layer.params.items()}


def _assert_unchanged(layer, snapshot):
    assert list(layer.params) == list(snapshot)
    for name, p in layer.params.items():
        np.testing.assert_array_equal(p, snapshot[name], err_msg=f"{name} changed by a rejected load_state_dict")


def _changed_state_dict(layer):
    """A valid state_dict with every value different from the layer's: a partial copy before a rejection would show."""
    return {name: v + 0.5 for name, v in layer.state_dict().items()}


@kinds
@pytest.mark.parametrize("missing", ["weight_hh_l0", "bias_hh_l0"])
def test_load_state_dict_rejects_missing_key(kind, missing):
    layer = kind.make(3, 4, seed=10)
    before = _snapshot(layer)
    sd = _changed_state_dict(layer)
    del sd[missing]
    with pytest.raises(KeyError, match=missing):
        layer.load_state_dict(sd)
    _assert_unchanged(layer, before)


@kinds
@pytest.mark.parametrize("extra", ["weight_ih_l1", "bias_ih_l0"])
def test_load_state_dict_rejects_unexpected_key(kind, extra):
    """An unknown key, or a bias key for a layer without bias, is rejected by name."""
    layer = kind.make(3, 4, bias=False, seed=11)
    before = _snapshot(layer)
    sd = _changed_state_dict(layer)
    sd[extra] = np.zeros(kind.gates * 4, np.float32)
    with pytest.raises(KeyError, match=extra):
        layer.load_state_dict(sd)
    _assert_unchanged(layer, before)


@kinds
@pytest.mark.parametrize("name", NAMES)
def test_load_state_dict_rejects_wrong_shape(kind, name):
    """A wrong shape (here the last entry's, so the others would already have been copied by a careless
    implementation) raises ValueError naming the key, the expected and the given shape, and changes nothing."""
    layer = kind.make(3, 4, seed=12)
    before = _snapshot(layer)
    sd = _changed_state_dict(layer)
    good = sd.pop(name)
    bad_shape = (good.shape[0] + 1,) + good.shape[1:]
    sd[name] = np.zeros(bad_shape, np.float32)
    with pytest.raises(ValueError, match=name) as info:
        layer.load_state_dict(sd)
    assert str(good.shape) in str(info.value) and str(bad_shape) in str(info.value)
    _assert_unchanged(layer, before)


@kinds
def test_load_state_dict_rejects_non_real_values(kind):
    layer = kind.make(3, 4, seed=13)
    before = _snapshot(layer)
    sd = _changed_state_dict(layer)
    sd["weight_hh_l0"] = sd["weight_hh_l0"] > 0  # bool
    with pytest.raises(TypeError, match="weight_hh_l0"):
        layer.load_state_dict(sd)
    _assert_unchanged(layer, before)


# ----------------------------------------------------------------------------------------------------------------------
# 4. Forward and backward.


@kinds
@with_bias
@dtypes
def test_forward_shapes_and_final_state(kind, bias, dtype):
    """out (T, B, H) of the layer's dtype; LSTM state (h, c), GRU/RNN state h, each (1, B, H); h equals out[-1]."""
    T, B, I, H = 5, 3, 4, 6
    layer = kind.make(I, H, bias=bias, dtype=dtype, seed=14)
    x = random_input(layer, T, B, np.random.default_rng(0))
    out, state = layer(x)
    assert out.shape == (T, B, H) and out.dtype == layer.dtype
    if kind.is_lstm:
        assert isinstance(state, tuple) and len(state) == 2
    else:
        assert isinstance(state, np.ndarray)
    for s in as_tuple(state):
        assert s.shape == (1, B, H) and s.dtype == layer.dtype
    np.testing.assert_array_equal(as_tuple(state)[0][0], out[-1])


@kinds
@with_bias
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_forward_backward_match_reference(kind, bias, with_state):
    """out, final state, dx, dstate0 and all parameter gradients equal the reference's, with and without an initial
    state and a final-state gradient."""
    layer = kind.make(4, 6, bias=bias, dtype="float64", seed=15)
    forward_backward(layer, T=5, B=3, seed=16, with_state=with_state, with_dstate=with_state)


@kinds
@dtypes
def test_backward_shapes(kind, dtype):
    T, B, I, H = 4, 3, 5, 2
    layer = kind.make(I, H, dtype=dtype, seed=17)
    out, _ = layer(random_input(layer, T, B, np.random.default_rng(1)))
    dx, dstate0 = layer.backward(np.ones_like(out))
    assert dx.shape == (T, B, I) and dx.dtype == layer.dtype
    assert isinstance(dstate0, tuple if kind.is_lstm else np.ndarray)
    for d in as_tuple(dstate0):
        assert d.shape == (1, B, H) and d.dtype == layer.dtype


def test_lstm_dstate_may_give_only_one_of_dh_dc():
    """LSTM dstate (dh, None) or (None, dc): the missing one counts as zero."""
    layer = pylstm.LSTM(3, 4, dtype="float64", seed=18)
    rng = np.random.default_rng(2)
    x = random_input(layer, 3, 2, rng)
    dout = rng.standard_normal((3, 2, 4))
    dh, dc = random_state(layer, 2, rng)
    for dstate, full in [((dh, None), (dh, np.zeros_like(dc))), ((None, dc), (np.zeros_like(dh), dc))]:
        layer(x)
        dx, d0 = layer.backward(dout, dstate)
        layer(x)
        dx_full, d0_full = layer.backward(dout, full)
        np.testing.assert_array_equal(dx, dx_full)
        for a, b in zip(d0, d0_full):
            np.testing.assert_array_equal(a, b)


@kinds
@dtypes
@pytest.mark.parametrize("split", [1, 3, 5])
def test_state_continues_a_sequence(kind, dtype, split):
    """Running x[:k] and then x[k:] from the first chunk's final state gives the outputs and final state of one call
    over x; and backpropagating chunk 2 then chunk 1 (feeding chunk 2's dstate0 in as chunk 1's dstate) gives the
    gradients of one backward over x."""
    T, B = 6, 2
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=RTOL, atol=ATOL)
    full = kind.make(3, 5, dtype=dtype, seed=19)
    first, second = kind.make(3, 5, dtype=dtype), kind.make(3, 5, dtype=dtype)
    first.load_state_dict(full.state_dict())
    second.load_state_dict(full.state_dict())
    rng = np.random.default_rng(3)
    x = random_input(full, T, B, rng)
    state = random_state(full, B, rng)
    dout = rng.standard_normal((T, B, 5)).astype(full.dtype)

    out, final = full(x, state)
    dx, dstate0 = full.backward(dout)
    out1, mid = first(x[:split], state)
    out2, final2 = second(x[split:], mid)
    dx2, dmid = second.backward(dout[split:])
    dx1, dstate0_chunks = first.backward(dout[:split], dmid)

    np.testing.assert_allclose(np.concatenate([out1, out2]), out, **tol)
    for a, b in zip(as_tuple(final2), as_tuple(final)):
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(np.concatenate([dx1, dx2]), dx, **tol)
    for a, b in zip(as_tuple(dstate0_chunks), as_tuple(dstate0)):
        np.testing.assert_allclose(a, b, **tol)
    for name, g in full.grads.items():
        np.testing.assert_allclose(first.grads[name] + second.grads[name], g, **tol, err_msg=name)


@kinds
def test_initial_state_is_not_modified(kind):
    layer = kind.make(3, 4, seed=20)
    rng = np.random.default_rng(4)
    state = random_state(layer, 2, rng)
    copies = tuple(s.copy() for s in as_tuple(state))
    out, _ = layer(random_input(layer, 3, 2, rng), state)
    layer.backward(np.ones_like(out))
    for s, c in zip(as_tuple(state), copies):
        np.testing.assert_array_equal(s, c)


@kinds
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (2, True)])
def test_a_state_reused_after_the_forward_does_not_change_the_backward(kind, layers, bidirectional):
    """The caller may write the next state into the arrays it gave the forward (a streaming loop's buffer): the
    backward still differentiates at the state the forward ran from."""
    layer = kind.make(3, 4, num_layers=layers, bidirectional=bidirectional, seed=21)
    rng = np.random.default_rng(5)
    rows = layer.num_directions * layers
    parts = tuple(rng.standard_normal((rows, 2, layer.hidden_size)).astype(layer.dtype)
                  for _ in range(2 if isinstance(layer, pylstm.LSTM) else 1))
    state, x = (parts if isinstance(layer, pylstm.LSTM) else parts[0]), random_input(layer, 3, 2, rng)
    dout = rng.standard_normal(layer(x, state)[0].shape).astype(layer.dtype)
    layer.backward(dout)
    layer.zero_grad()
    out, _ = layer(x, state)
    expected_dx, expected_dstate = layer.backward(dout)
    expected_grads = {name: g.copy() for name, g in layer.grads.items()}
    layer.zero_grad()
    out, _ = layer(x, state)
    for s in as_tuple(state):
        s[...] = 7.0
    dx, dstate = layer.backward(dout)
    np.testing.assert_array_equal(dx, expected_dx)
    for a, b in zip(as_tuple(dstate), as_tuple(expected_dstate)):
        np.testing.assert_array_equal(a, b)
    for name, g in layer.grads.items():
        np.testing.assert_array_equal(g, expected_grads[name], err_msg=name)


@kinds
@dtypes
def test_missing_state_is_zeros_across_calls_and_batch_sizes(kind, dtype):
    """A missing state (None, or a None part) is zeros in every call, whatever the calls before it did (the layer
    keeps its zero state between calls of one batch size): the same results as explicit zeros, after training
    calls, other batch sizes and a partial state; the final states returned stay the caller's, writeable."""
    layer = kind.make(3, 4, seed=23, dtype=dtype)
    rng = np.random.default_rng(6)
    for batch, mode in ((2, True), (2, False), (3, True), (2, True), (1, False), (2, False)):
        layer.train(mode)
        x = random_input(layer, 3, batch, rng)
        zeros = tuple(np.zeros_like(s) for s in as_tuple(random_state(layer, batch, rng)))
        out, final = layer(x)
        want_out, want_final = layer(x, zeros if kind.is_lstm else zeros[0])
        np.testing.assert_array_equal(out, want_out)
        for got, want in zip(as_tuple(final), as_tuple(want_final)):
            np.testing.assert_array_equal(got, want)
            assert got.flags.writeable
        if mode:
            layer.backward(np.ones_like(out))
        if kind.is_lstm:  # only c given (h zeros), then only h: each missing part is zeros
            c = rng.standard_normal(zeros[1].shape).astype(dtype)
            np.testing.assert_array_equal(layer(x, (None, c))[0], layer(x, (zeros[0], c))[0])
            np.testing.assert_array_equal(layer(x, (c, None))[0], layer(x, (c, zeros[1]))[0])


# ----------------------------------------------------------------------------------------------------------------------
# 5. Training and eval mode.


@kinds
@with_bias
def test_eval_forward_same_outputs_and_no_backward(kind, bias):
    layer = kind.make(3, 4, bias=bias, seed=21)
    rng = np.random.default_rng(5)
    x = random_input(layer, 4, 2, rng)
    state = random_state(layer, 2, rng)
    out_train, final_train = layer(x, state)
    assert layer.eval() is layer and layer.training is False
    # eval() drops what the training forward kept: no backward from it either.
    with pytest.raises(RuntimeError, match="eval"):
        layer.backward(np.ones_like(out_train))
    out_eval, final_eval = layer(x, state)
    np.testing.assert_array_equal(out_eval, out_train)
    for a, b in zip(as_tuple(final_eval), as_tuple(final_train)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="train"):
        layer.backward(np.ones_like(out_eval))
    assert all(not g.any() for g in layer.grads.values())

    assert layer.train() is layer and layer.training is True
    with pytest.raises(RuntimeError, match="forward"):  # no forward since train(): nothing to backpropagate
        layer.backward(np.ones_like(out_eval))
    out, _ = layer(x, state)
    layer.backward(np.ones_like(out))
    assert any(g.any() for g in layer.grads.values())


@kinds
def test_train_false_is_eval(kind):
    layer = kind.make(3, 4)
    assert layer.train(False) is layer and layer.training is False
    assert layer.train(True).training is True


@kinds
def test_backward_before_any_forward_raises(kind):
    layer = kind.make(3, 4)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.zeros((1, 1, 4), np.float32))


@kinds
def test_training_out_is_read_only_eval_out_writable(kind):
    """backward reads the training forward's out, so it is returned read-only; eval-mode out is the caller's."""
    layer = kind.make(3, 4, seed=22)
    x = np.ones((2, 3, 3), np.float32)
    out, _ = layer(x)
    assert not out.flags.writeable
    with pytest.raises(ValueError):
        out[0, 0, 0] = 1.0
    layer.eval()
    out_eval, _ = layer(x)
    assert out_eval.flags.writeable
    out_eval[0, 0, 0] = 42.0
    assert out_eval[0, 0, 0] == 42.0


# ----------------------------------------------------------------------------------------------------------------------
# 6. Variants and repr.


@with_bias
def test_gru_reset_before_differs_from_reset_after(bias):
    """The two GRU forms, on the same parameters, compute different things (each matching its reference form in the
    tests above)."""
    after = pylstm.GRU(3, 4, bias=bias, dtype="float64", seed=23)
    before = pylstm.GRU(3, 4, bias=bias, dtype="float64", reset_after=False)
    before.load_state_dict(after.state_dict())
    assert after.reset_after is True and before.reset_after is False
    rng = np.random.default_rng(6)
    x = random_input(after, 4, 2, rng)
    h0 = random_state(after, 2, rng)
    assert not np.allclose(before(x, h0)[0], after(x, h0)[0])


def test_rnn_relu_differs_from_tanh_and_is_nonnegative():
    tanh = pylstm.RNN(3, 6, dtype="float64", seed=24)
    relu = pylstm.RNN(3, 6, dtype="float64", nonlinearity="relu")
    relu.load_state_dict(tanh.state_dict())
    assert tanh.nonlinearity == "tanh" and relu.nonlinearity == "relu"
    x = random_input(tanh, 5, 3, np.random.default_rng(7)) * 3
    out_relu, _ = relu(x)
    out_tanh, _ = tanh(x)
    assert np.all(out_relu >= 0) and (out_relu == 0).any() and (out_relu > 1).any()
    assert np.all(np.abs(out_tanh) < 1) and (out_tanh < 0).any()


@pytest.mark.parametrize("layer,expected", [
    (lambda: pylstm.LSTM(3, 5), ["LSTM", "3", "5", "bias=True", "float32"]),
    (lambda: pylstm.LSTM(2, 7, bias=False, dtype="float64"), ["LSTM", "2", "7", "bias=False", "float64"]),
    (lambda: pylstm.GRU(4, 6, reset_after=False), ["GRU", "4", "6", "reset_after=False"]),
    (lambda: pylstm.GRU(4, 6), ["GRU", "reset_after=True"]),
    (lambda: pylstm.RNN(1, 2, nonlinearity="relu"), ["RNN", "1", "2", "nonlinearity='relu'"]),
    (lambda: pylstm.RNN(1, 2), ["RNN", "nonlinearity='tanh'"]),
], ids=["lstm", "lstm-nobias-f64", "gru-before", "gru", "rnn-relu", "rnn-tanh"])
def test_repr_mentions_configuration(layer, expected):
    text = repr(layer())
    for part in expected:
        assert part in text, f"{part!r} not in {text!r}"


# ----------------------------------------------------------------------------------------------------------------------
# 7. Edge shapes.


@kinds
@pytest.mark.parametrize("T,B,I,H", [
    (1, 3, 4, 5),    # one step
    (4, 1, 4, 5),    # one batch row
    (3, 2, 4, 1),    # one hidden unit
    (3, 2, 7, 5),    # I != H
    (3, 2, 1, 6),    # one input
    (5, 3, 13, 13),  # H not a multiple of 8 or 16
    (3, 5, 9, 17),
    (2, 2, 20, 33),
], ids=str)
def test_edge_shapes_match_reference(kind, T, B, I, H):
    layer = kind.make(I, H, dtype="float64", seed=T * 1000 + B * 100 + I * 10 + H)
    run = forward_backward(layer, T=T, B=B, seed=25)
    assert run["out"].shape == (T, B, H) and run["dx"].shape == (T, B, I)


@kinds
@dtypes
@pytest.mark.parametrize("B", [0, 2])
def test_zero_steps_return_the_initial_state(kind, dtype, B):
    """T=0: out is (0, B, H), the final state is the initial state; backward gives dx (0, B, I), dstate0 = dstate
    (zeros without one) and adds nothing to the gradients."""
    layer = kind.make(3, 4, dtype=dtype, seed=26)
    rng = np.random.default_rng(8)
    x = np.empty((0, B, 3), layer.dtype)
    state = random_state(layer, B, rng)
    out, final = layer(x, state)
    assert out.shape == (0, B, 4) and out.dtype == layer.dtype
    for f, s in zip(as_tuple(final), as_tuple(state)):
        np.testing.assert_array_equal(f, s)
    out0, final0 = layer(x)  # no state: zeros
    for f in as_tuple(final0):
        assert f.shape == (1, B, 4) and not f.any()

    dstate = random_state(layer, B, rng)
    dx, dstate0 = layer.backward(np.empty((0, B, 4), layer.dtype), dstate)
    assert dx.shape == (0, B, 3)
    for d, e in zip(as_tuple(dstate0), as_tuple(dstate)):
        np.testing.assert_array_equal(d, e)
    layer(x)
    dx, dstate0 = layer.backward(np.empty((0, B, 4), layer.dtype))
    for d in as_tuple(dstate0):
        assert d.shape == (1, B, 4) and not d.any()
    assert all(not g.any() for g in layer.grads.values())


@kinds
@dtypes
def test_empty_batch(kind, dtype):
    """B=0: out (T, 0, H), states (1, 0, H); backward gives dx (T, 0, I) and adds nothing to the gradients."""
    layer = kind.make(3, 4, dtype=dtype, seed=27)
    x = np.empty((5, 0, 3), layer.dtype)
    out, final = layer(x)
    assert out.shape == (5, 0, 4)
    for f in as_tuple(final):
        assert f.shape == (1, 0, 4)
    dx, dstate0 = layer.backward(np.empty((5, 0, 4), layer.dtype))
    assert dx.shape == (5, 0, 3)
    for d in as_tuple(dstate0):
        assert d.shape == (1, 0, 4)
    assert all(not g.any() for g in layer.grads.values())

"""Stacked, bidirectional, variable-length layers (pylstm.LSTM / GRU / RNN) against an oracle built by hand.

The oracle (``oracle_stack``) uses nothing of pylstm but ``pylstm.reference``'s per-layer, per-direction functions,
and none of their packed layout: it runs every sequence of the batch ALONE (B = 1, its own length, the uniform
(T, 1, I) layout), the reverse direction on that sequence's valid steps flipped in time, layer by layer, concatenating
the directions; and it backpropagates through the stack by hand (the dx of layer k+1 is layer k's dout, the reverse
direction's gradients are flipped back, parameter gradients are summed over the sequences). Sorting, packing,
mirroring, state reordering and padding of the layer classes are therefore checked against something that has none of
them.

Also here: chunked streaming (state passing, including backpropagation through the chunk boundary), forget_bias,
dropout (with a monkeypatched, known mask), the semantics and validation of ``lengths``, and the parameter names and
order (against torch when it is importable). The all-combinations torch comparison is in test_torch_sequences.py.

Tolerances: float64 is compared at rtol 1e-10 (the kernels and the reference compute the same formulas in double
precision; only summation order and FMA contraction differ, ~1e-15 relative). float32 layers are compared with the
float64 oracle run on the same (float32-representable) parameters and inputs, so the difference is the float32
rounding accumulated over a few layers and steps: the bound is 1e-5 of the compared array's scale
(max |ours - oracle| <= 1e-5 * max(1, max |oracle|)); measured worst 3.7e-7 (a parameter gradient), so ~27x margin,
while a formula error shows up at 1e-2 or more.
"""
import json
import zlib

import numpy as np
import pytest

import compare
import pylstm
from pylstm import reference as ref

F64 = dict(rtol=1e-10, atol=1e-12)
F32_OF_SCALE = 1e-5

# name -> (class, constructor keywords). The oracle reads the configuration from these keywords, not from the layer.
KINDS = {
    "lstm": (pylstm.LSTM, {}),
    "lstm-peep": (pylstm.LSTM, dict(peepholes=True)),
    "lstm-proj-peep": (pylstm.LSTM, dict(proj_size=3, peepholes=True)),
    "gru": (pylstm.GRU, {}),
    "gru-reset_before": (pylstm.GRU, dict(reset_after=False)),
    "rnn-tanh": (pylstm.RNN, {}),
    "rnn-relu": (pylstm.RNN, dict(nonlinearity="relu")),
}
ORACLE_KINDS = ["lstm-peep", "lstm-proj-peep", "gru-reset_before", "gru", "rnn-relu"]
I_SIZE, H_SIZE = 3, 4


class Spec:
    """What the oracle needs to know about a configuration, from the constructor keywords."""

    def __init__(self, kind, num_layers, bidirectional, bias=True):
        cls, kw = KINDS[kind]
        self.family = {pylstm.LSTM: "lstm", pylstm.GRU: "gru", pylstm.RNN: "rnn"}[cls]
        self.L, self.D = num_layers, 2 if bidirectional else 1
        self.H = H_SIZE
        self.P = kw.get("proj_size") or H_SIZE
        self.proj = bool(kw.get("proj_size"))
        self.peepholes = bool(kw.get("peepholes"))
        self.reset_after = kw.get("reset_after", True)
        self.nonlinearity = kw.get("nonlinearity", "tanh")
        self.bias = bias
        self.n_states = 2 if self.family == "lstm" else 1
        self.widths = (self.P, self.H)[:self.n_states]


def make_layer(kind, num_layers=1, bidirectional=False, batch_first=False, dtype="float64", **extra):
    cls, kw = KINDS[kind]
    return cls(I_SIZE, H_SIZE, num_layers, batch_first=batch_first, bidirectional=bidirectional, dtype=dtype,
               seed=0, **kw, **extra)


def randomize(layer, rng, scale=0.6):
    """Load random parameters (nonzero peepholes included) through load_state_dict; -> float64 copies of them."""
    new = {name: rng.uniform(-scale, scale, p.shape) for name, p in layer.params.items()}
    layer.load_state_dict(new)
    return {name: p.astype(np.float64) for name, p in layer.params.items()}


def suffix(k, d):
    return f"_l{k}" + ("_reverse" if d else "")


def as_tuple(state):
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def as_state(spec, parts):
    return tuple(parts) if spec.n_states == 2 else parts[0]


# ----------------------------------------------------------------------------------------------------------------------
# The oracle: pylstm.reference only, one sequence at a time.


def _ref_forward(spec, params, s, x, state):
    """One layer/direction of the reference over x (n, 1, I), state tuple of (1, W) -> out (n, 1, P), finals, saved."""
    w = (params[f"weight_ih{s}"], params[f"weight_hh{s}"], params.get(f"bias_ih{s}"), params.get(f"bias_hh{s}"))
    if spec.family == "lstm":
        peep = tuple(params[f"peephole_{g}{s}"] for g in "ifo") if spec.peepholes else None
        out, h, c, saved = ref.lstm_forward(x, *state, *w, weight_hr=params.get(f"weight_hr{s}"), peepholes=peep)
        return out, (h, c), saved
    if spec.family == "gru":
        out, h, saved = ref.gru_forward(x, *state, *w, reset_after=spec.reset_after)
    else:
        out, h, saved = ref.rnn_forward(x, *state, *w, nonlinearity=spec.nonlinearity)
    return out, (h,), saved


def _ref_backward(spec, params, grads, s, saved, dout, dfinal):
    acc = dict(dweight_ih=grads[f"weight_ih{s}"], dweight_hh=grads[f"weight_hh{s}"],
               dbias_ih=grads.get(f"bias_ih{s}"), dbias_hh=grads.get(f"bias_hh{s}"))
    if spec.family == "lstm":
        peep = tuple(params[f"peephole_{g}{s}"] for g in "ifo") if spec.peepholes else None
        dpeep = tuple(grads[f"peephole_{g}{s}"] for g in "ifo") if spec.peepholes else None
        dx, dh, dc = ref.lstm_backward(saved, params[f"weight_ih{s}"], params[f"weight_hh{s}"], dout, *dfinal,
                                       weight_hr=params.get(f"weight_hr{s}"), peepholes=peep,
                                       dweight_hr=grads.get(f"weight_hr{s}"), dpeepholes=dpeep, **acc)
        return dx, (dh, dc)
    backward = ref.gru_backward if spec.family == "gru" else ref.rnn_backward
    dx, dh = backward(saved, params[f"weight_ih{s}"], params[f"weight_hh{s}"], dout, *dfinal, **acc)
    return dx, (dh,)


def oracle_stack(spec, params, x, state0=None, lengths=None, dout=None, dstate=None, masks=None):
    """x (T, B, I) float64, time-major; state0 a tuple of (D*L, B, W) arrays or None (zeros); lengths None or B ints;
    dout (T, B, D*P) or None (no backward); dstate a tuple of arrays/None or None; masks None or L-1 dropout masks
    (T, B, D*P) applied to layer k's output (k < L-1).
    -> dict out, finals (tuple), and with dout: dx, dstate0 (tuple), grads (name -> array)."""
    T, B, _ = x.shape
    L, D, P = spec.L, spec.D, spec.P
    if state0 is None:
        state0 = tuple(np.zeros((D * L, B, w)) for w in spec.widths)
    if dstate is None:
        dstate = (None,) * spec.n_states
    out = np.zeros((T, B, D * P))
    finals = [np.full_like(s, np.nan) for s in state0]
    result = dict(out=out, finals=finals)
    if dout is not None:
        grads = {name: np.zeros_like(p) for name, p in params.items()}
        dx = np.zeros_like(x)
        dstate0 = [np.full_like(s, np.nan) for s in state0]
        result.update(dx=dx, dstate0=dstate0, grads=grads)
    for b in range(B):
        n = T if lengths is None else int(lengths[b])
        inp = x[:n, b:b + 1].copy()
        records = []
        for k in range(L):
            outs, recs = [], []
            for d in range(D):
                start = tuple(part[k * D + d, b:b + 1].copy() for part in state0)
                seq = inp if d == 0 else inp[::-1].copy()  # the reverse direction: this sequence's steps flipped
                o, fin, rec = _ref_forward(spec, params, suffix(k, d), seq, start)
                for part, v in zip(finals, fin):
                    part[k * D + d, b] = v[0]
                outs.append(o if d == 0 else o[::-1])
                recs.append(rec)
            inp = np.concatenate(outs, axis=-1)
            if masks is not None and k < L - 1:
                inp = inp * masks[k][:n, b:b + 1]
            records.append(recs)
        out[:n, b] = inp[:, 0]
        if dout is None:
            continue
        g = dout[:n, b:b + 1].copy()
        for k in reversed(range(L)):
            if masks is not None and k < L - 1:
                g = g * masks[k][:n, b:b + 1]
            acc = np.zeros((n, 1, records[k][0].x.shape[2]))
            for d in range(D):
                part = g[..., d * P:(d + 1) * P]
                part = part.copy() if d == 0 else part[::-1].copy()
                dfin = tuple(None if s is None else s[k * D + d, b:b + 1].copy() for s in dstate)
                dxd, dst = _ref_backward(spec, params, grads, suffix(k, d), records[k][d], part, dfin)
                acc += dxd if d == 0 else dxd[::-1]
                for part0, v in zip(dstate0, dst):
                    part0[k * D + d, b] = v[0]
            g = acc
        dx[:n, b] = g[:, 0]
    return result


# ----------------------------------------------------------------------------------------------------------------------
# Comparison helpers.


def assert_close(actual, expected, dtype, what):
    compare.assert_close(actual, expected, dtype, what, f64_tol=F64, f32_of_scale=F32_OF_SCALE)


def tm(a, batch_first):
    """(B, T, .) -> (T, B, .) when batch_first (and back: the same transpose)."""
    return np.ascontiguousarray(a.transpose(1, 0, 2)) if batch_first else a


def run_layer(layer, spec, x, state0, lengths, dout, dstate, batch_first):
    """Forward + backward of the layer on time-major arrays; -> dict like oracle_stack's (time-major)."""
    out, final = layer(tm(x, batch_first).astype(layer.dtype),
                       None if state0 is None else as_state(spec, [s.astype(layer.dtype) for s in state0]),
                       lengths=lengths)
    layer.zero_grad()
    dstate_arg = None if dstate is None else as_state(spec, [None if s is None else s.astype(layer.dtype)
                                                             for s in dstate])
    dx, dstate0 = layer.backward(tm(dout, batch_first).astype(layer.dtype), dstate_arg)
    return dict(out=tm(out, batch_first), finals=as_tuple(final), dx=tm(dx, batch_first),
                dstate0=as_tuple(dstate0), grads=layer.grads)


def assert_same(got, expected, dtype):
    assert_close(got["out"], expected["out"], dtype, "out")
    for k, (a, e) in enumerate(zip(got["finals"], expected["finals"], strict=True)):
        assert_close(a, e, dtype, f"final state[{k}]")
    if "dx" not in expected:
        return
    assert_close(got["dx"], expected["dx"], dtype, "dx")
    for k, (a, e) in enumerate(zip(got["dstate0"], expected["dstate0"], strict=True)):
        assert_close(a, e, dtype, f"dstate0[{k}]")
    assert list(got["grads"]) == list(expected["grads"])
    for name, e in expected["grads"].items():
        assert_close(got["grads"][name], e, dtype, f"grad {name}")


def random_problem(spec, T, B, rng):
    D, L = spec.D, spec.L
    x = rng.standard_normal((T, B, I_SIZE))
    state0 = tuple(rng.standard_normal((D * L, B, w)) for w in spec.widths)
    dout = rng.standard_normal((T, B, D * spec.P))
    dstate = tuple(rng.standard_normal((D * L, B, w)) for w in spec.widths)
    return x, state0, dout, dstate


LENGTHS = np.array([3, 0, 6, 1, 3])  # unsorted, a 0, a T (=6), a tie (stable order matters)
T_STEPS = 6


# ----------------------------------------------------------------------------------------------------------------------
# 1. The stack against the oracle.


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("kind", ORACLE_KINDS)
def test_stack_matches_per_sequence_oracle(kind, num_layers, bidirectional, batch_first, with_lengths):
    """out, final states, dx, dstate0 and every gradient of a pylstm stack equal the oracle's (float64)."""
    rng = np.random.default_rng(zlib.crc32(repr((kind, num_layers, bidirectional, batch_first, with_lengths)).encode()))
    spec = Spec(kind, num_layers, bidirectional)
    layer = make_layer(kind, num_layers, bidirectional, batch_first)
    params = randomize(layer, rng)
    lengths = LENGTHS if with_lengths else None
    x, state0, dout, dstate = random_problem(spec, T_STEPS, len(LENGTHS), rng)
    expected = oracle_stack(spec, params, x, state0, lengths, dout, dstate)
    got = run_layer(layer, spec, x, state0, lengths, dout, dstate, batch_first)
    assert_same(got, expected, "float64")


@pytest.mark.parametrize("kind", ["lstm-proj-peep", "gru-reset_before", "rnn-tanh"])
def test_stack_matches_oracle_float32(kind):
    """float32 layers vs the float64 oracle on the same float32 values (tolerance: see the module docstring)."""
    rng = np.random.default_rng(11)
    spec = Spec(kind, 2, True)
    layer = make_layer(kind, 2, True, dtype="float32")
    params = randomize(layer, rng)
    def f32(a):  # float32-representable float64 values, so both sides start from the same numbers
        return a.astype(np.float32).astype(np.float64)

    x, state0, dout, dstate = random_problem(spec, T_STEPS, len(LENGTHS), rng)
    x, dout, state0, dstate = f32(x), f32(dout), tuple(map(f32, state0)), tuple(map(f32, dstate))
    expected = oracle_stack(spec, params, x, state0, LENGTHS, dout, dstate)
    got = run_layer(layer, spec, x, state0, LENGTHS, dout, dstate, batch_first=False)
    assert_same(got, expected, "float32")


@pytest.mark.parametrize("kind, dstate_mode", [
    ("lstm-proj-peep", "none"), ("lstm-proj-peep", "h-only"), ("lstm-proj-peep", "c-only"),
    ("gru", "none"), ("gru", "h-only")])
def test_stack_zero_initial_state_and_partial_dstate(kind, dstate_mode):
    """state=None means zeros; dstate None (or, for the LSTM, a pair with one None) means zero gradient there."""
    rng = np.random.default_rng(5)
    spec = Spec(kind, 2, True)
    layer = make_layer(kind, 2, True, bias=False)
    spec.bias = False
    params = randomize(layer, rng)
    assert not any(name.startswith("bias") for name in params)
    x, _, dout, dstate = random_problem(spec, T_STEPS, len(LENGTHS), rng)
    if dstate_mode == "none":
        dstate_arg, dstate_oracle = None, None
    elif dstate_mode == "h-only":
        dstate_oracle = (dstate[0],) + (None,) * (spec.n_states - 1)
        dstate_arg = as_state(spec, dstate_oracle) if spec.n_states == 2 else dstate[0]
    else:
        dstate_oracle = (None, dstate[1])
        dstate_arg = dstate_oracle
    out, final = layer(x, None, lengths=LENGTHS)
    dx, dstate0 = layer.backward(dout, dstate_arg)
    expected = oracle_stack(spec, params, x, None, LENGTHS, dout, dstate_oracle)
    got = dict(out=out, finals=as_tuple(final), dx=dx, dstate0=as_tuple(dstate0), grads=layer.grads)
    assert_same(got, expected, "float64")


def test_oracle_is_not_trivially_satisfied():
    """Sanity of the oracle itself: a perturbed peephole or a swapped direction changes its result, so the
    comparisons above can fail."""
    rng = np.random.default_rng(0)
    spec = Spec("lstm-peep", 2, True)
    layer = make_layer("lstm-peep", 2, True)
    params = randomize(layer, rng)
    x, state0, dout, dstate = random_problem(spec, T_STEPS, len(LENGTHS), rng)
    base = oracle_stack(spec, params, x, state0, LENGTHS, dout, dstate)
    got = run_layer(layer, spec, x, state0, LENGTHS, dout, dstate, False)
    bumped = dict(params)
    bumped["peephole_f_l1_reverse"] = params["peephole_f_l1_reverse"] + 0.1
    other = oracle_stack(spec, bumped, x, state0, LENGTHS, dout, dstate)
    assert not np.allclose(other["out"], got["out"], **F64)
    # the layer's output is not the one the oracle gives without lengths
    other = oracle_stack(spec, params, x, state0, None, dout, dstate)
    assert not np.allclose(other["out"], got["out"], **F64)
    assert_same(got, base, "float64")


# ----------------------------------------------------------------------------------------------------------------------
# 2. Chunked streaming.

STREAM_KINDS = ["lstm", "lstm-proj-peep", "gru", "gru-reset_before", "rnn-tanh", "rnn-relu"]


def _clone(layer):
    other = type(layer)(**layer.config())
    other.load_state_dict(layer.state_dict())
    return other


@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
@pytest.mark.parametrize("kind", ORACLE_KINDS)
def test_stack_matches_oracle_lengths_shorter_than_T(kind, batch_first):
    """max(lengths) < T: the packed steps end early and the outputs are padded back to T."""
    rng = np.random.default_rng(21)
    spec = Spec(kind, 2, True)
    layer = make_layer(kind, 2, True, batch_first)
    params = randomize(layer, rng)
    lengths = np.array([2, 0, 4, 1])
    x, state0, dout, dstate = random_problem(spec, 6, len(lengths), rng)
    expected = oracle_stack(spec, params, x, state0, lengths, dout, dstate)
    got = run_layer(layer, spec, x, state0, lengths, dout, dstate, batch_first)
    assert got["out"].shape == (6, 4, 2 * spec.P)
    assert_same(got, expected, "float64")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bounds", [(3, 5), (1,), (4, 4, 8)], ids=["3chunks", "2chunks", "with-empty"])
@pytest.mark.parametrize("kind", STREAM_KINDS)
def test_chunked_streaming_equals_one_call(kind, bounds, dtype):
    """Running x in chunks, passing the state, gives the outputs and final state of one call (2 layers, float64 to
    ~1e-14 (in fact the same kernels run the same steps, so it is bitwise), float32 to 1e-6 relative); and
    backpropagating the chunks in reverse order, each chunk's dstate0 fed to the previous chunk as its dstate (one
    layer object per chunk, same weights), gives the dx, dstate0 and summed parameter gradients of one call."""
    rng = np.random.default_rng(3)
    spec = Spec(kind, 2, False)
    layer = make_layer(kind, 2, dtype=dtype)
    randomize(layer, rng)
    T, B = 8, 3
    x, state0, dout, dstate = random_problem(spec, T, B, rng)
    x, dout = x.astype(dtype), dout.astype(dtype)
    state0 = as_state(spec, [s.astype(dtype) for s in state0])
    dstate = as_state(spec, [s.astype(dtype) for s in dstate])
    tol = dict(rtol=1e-14, atol=1e-15) if dtype == "float64" else dict(rtol=1e-6, atol=1e-6)

    out, final = layer(x, state0)
    dx, dstate0 = layer.backward(dout, dstate)

    edges = [0, *bounds, T]
    chunks = [_clone(layer) for _ in range(len(edges) - 1)]
    outs, s = [], state0
    for chunk, a, b in zip(chunks, edges, edges[1:]):
        o, s = chunk(x[a:b], s)
        assert o.shape == (b - a, B, spec.P)
        outs.append(o)
    np.testing.assert_allclose(np.concatenate(outs), out, **tol)
    for a, e in zip(as_tuple(s), as_tuple(final), strict=True):
        np.testing.assert_allclose(a, e, **tol)

    # Backward through the chunk boundaries (full BPTT; truncated BPTT would just pass dstate=None instead).
    dxs, ds = [], dstate
    for chunk, a, b in reversed(list(zip(chunks, edges, edges[1:]))):
        dxc, ds = chunk.backward(dout[a:b], ds)
        assert dxc.shape == (b - a, B, I_SIZE) and dxc.dtype == np.dtype(dtype)
        for part, w in zip(as_tuple(ds), spec.widths, strict=True):
            assert part.shape == (2, B, w)
        dxs.insert(0, dxc)
    gtol = dict(rtol=1e-11, atol=1e-12) if dtype == "float64" else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.concatenate(dxs), dx, **gtol)
    for a, e in zip(as_tuple(ds), as_tuple(dstate0), strict=True):
        np.testing.assert_allclose(a, e, **gtol)
    for name, g in layer.grads.items():
        np.testing.assert_allclose(sum(c.grads[name] for c in chunks), g, err_msg=name, **gtol)


def test_truncated_bptt_last_chunk_runs():
    """Truncated BPTT: backward of the last chunk alone (dstate given) runs and has the chunk's shapes; with
    dstate=None its dstate0 differs from the one with dstate (the final-state gradient is used)."""
    rng = np.random.default_rng(4)
    layer = make_layer("lstm-proj-peep", 2)
    randomize(layer, rng)
    twin = _clone(layer)
    x = rng.standard_normal((7, 2, I_SIZE))
    _, s = layer(x[:4])
    out, s2 = layer(x[4:], s)
    twin(x[4:], s)
    dh, dc = rng.standard_normal(s2[0].shape), rng.standard_normal(s2[1].shape)
    dx, (dh0, dc0) = layer.backward(np.ones_like(out), (dh, dc))
    assert dx.shape == (3, 2, I_SIZE) and dh0.shape == s[0].shape and dc0.shape == s[1].shape
    _, (dh0_b, _) = twin.backward(np.ones_like(out), None)
    assert not np.allclose(dh0, dh0_b)


def test_bidirectional_chunking_is_not_equivalent():
    """Documented limitation: the reverse direction needs the whole sequence (its state runs from the end), so with
    bidirectional=True only the forward half of a chunked first layer equals one call; the reverse half differs."""
    rng = np.random.default_rng(6)
    layer = make_layer("gru", 1, bidirectional=True)
    randomize(layer, rng)
    x = rng.standard_normal((6, 2, I_SIZE))
    out, _ = layer(x)
    o1, s = layer(x[:3])
    o2, _ = layer(x[3:], s)
    chunked = np.concatenate([o1, o2])
    H = H_SIZE
    np.testing.assert_allclose(chunked[..., :H], out[..., :H], rtol=1e-14, atol=1e-15)
    assert not np.allclose(chunked[..., H:], out[..., H:], rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------------------------------------------------
# 3. forget_bias.


@pytest.mark.parametrize("value", [1.0, 0.0, -2.5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forget_bias_sets_the_forget_blocks(value, dtype):
    """bias_ih's forget block (i, f, g, o: the second) == value, bias_hh's == 0, in every layer and direction; every
    other block and every weight is the usual uniform initialisation (in [-1/sqrt(H), 1/sqrt(H)], spread out, and the
    same values as without forget_bias for the same seed); peepholes stay zero. forget_bias=0.0 is not None."""
    H = 16
    kw = dict(num_layers=2, bidirectional=True, proj_size=5, peepholes=True, dtype=dtype, seed=42)
    layer = pylstm.LSTM(3, H, forget_bias=value, **kw)
    plain = pylstm.LSTM(3, H, **kw)
    bound = 1 / np.sqrt(H)
    bias_names = [n for n in layer.params if n.startswith("bias_")]
    assert len(bias_names) == 8
    for name, p in layer.params.items():
        if name.startswith("peephole_"):
            assert not p.any(), name
            continue
        if name.startswith("bias_ih"):
            assert np.all(p[H:2 * H] == np.asarray(value, dtype)), name
            others = np.concatenate([p[:H], p[2 * H:]])
        elif name.startswith("bias_hh"):
            assert np.all(p[H:2 * H] == 0), name
            others = np.concatenate([p[:H], p[2 * H:]])
        else:
            others = p.ravel()
        assert np.all(np.abs(others) <= bound) and others.std() > 0.3 * bound, name
        full = plain.params[name]
        kept = np.concatenate([full[:H], full[2 * H:]]) if name.startswith("bias_") else full.ravel()
        np.testing.assert_array_equal(others, kept, err_msg=name)
    assert layer.config()["forget_bias"] == value
    assert json.loads(json.dumps(layer.config()))["forget_bias"] == value
    assert pylstm.LSTM(**layer.config()).params["bias_ih_l1_reverse"][H] == np.asarray(value, dtype)


@pytest.mark.parametrize("value", [1.0, 0.0])
def test_forget_bias_needs_bias(value):
    with pytest.raises(ValueError, match="forget_bias"):
        pylstm.LSTM(3, 4, bias=False, forget_bias=value)


def test_forget_bias_none_is_default_init():
    layer = pylstm.LSTM(3, 8, seed=1)
    assert layer.config()["forget_bias"] is None
    assert np.abs(layer.params["bias_ih_l0"][8:16]).max() < 1 / np.sqrt(8)
    assert layer.params["bias_hh_l0"][8:16].any()


# ----------------------------------------------------------------------------------------------------------------------
# 4. Dropout.


def _dropout_pair(kind="lstm", num_layers=2, p=0.5, **kw):
    rng = np.random.default_rng(8)
    layer = make_layer(kind, num_layers, dropout=p, **kw)
    randomize(layer, rng)
    x = rng.standard_normal((5, 3, I_SIZE))
    return layer, x


def test_dropout_training_differs_from_eval_and_eval_equals_no_dropout():
    layer, x = _dropout_pair()
    train_out, train_state = layer(x)
    layer.eval()
    eval_out, eval_state = layer(x)
    assert not np.allclose(train_out, eval_out)
    plain = make_layer("lstm", 2, dropout=0.0)
    plain.load_state_dict(layer.state_dict())
    plain_out, plain_state = plain(x)
    np.testing.assert_array_equal(eval_out, plain_out)
    for a, b in zip(eval_state, plain_state):
        np.testing.assert_array_equal(a, b)


def test_dropout_same_seed_same_masks():
    """Two layers with the same seed and inputs give identical training outputs (and identical gradients); a layer
    with another seed does not; successive training forwards draw new masks."""
    a, x = _dropout_pair()
    b = make_layer("lstm", 2, dropout=0.5)  # same seed=0 as make_layer gives a
    b.load_state_dict(a.state_dict())
    c = pylstm.LSTM(I_SIZE, H_SIZE, 2, dropout=0.5, dtype="float64", seed=1)
    c.load_state_dict(a.state_dict())
    oa, _ = a(x)
    ob, _ = b(x)
    oc, _ = c(x)
    np.testing.assert_array_equal(oa, ob)
    assert not np.array_equal(oa, oc)
    dout = np.ones_like(oa)
    np.testing.assert_array_equal(a.backward(dout)[0], b.backward(dout)[0])
    oa2, _ = a(x)
    assert not np.array_equal(oa, oa2)


def test_dropout_last_layer_output_has_none():
    """A single layer with dropout: training output == eval output (dropout is only between layers), and the
    constructor warns so, as torch's does."""
    with pytest.warns(UserWarning, match="dropout.*num_layers greater than 1"):
        layer, x = _dropout_pair(num_layers=1, p=0.9)
    out, state = layer(x)
    layer.eval()
    out_eval, state_eval = layer(x)
    np.testing.assert_array_equal(out, out_eval)


@pytest.mark.parametrize("kind", ["lstm-proj-peep", "gru-reset_before"])
def test_dropout_one_zeroes_the_next_layers_input(kind):
    """dropout=1.0: the second layer sees zeros; out, final state, dx, dstate0 and gradients equal the oracle with
    an all-zero mask (dx then only comes through layer 0's final-state gradient)."""
    rng = np.random.default_rng(9)
    spec = Spec(kind, 2, True)
    layer = make_layer(kind, 2, True, dropout=1.0)
    params = randomize(layer, rng)
    x, state0, dout, dstate = random_problem(spec, 5, 3, rng)
    masks = [np.zeros((5, 3, 2 * spec.P))]
    expected = oracle_stack(spec, params, x, state0, None, dout, dstate, masks=masks)
    got = run_layer(layer, spec, x, state0, None, dout, dstate, False)
    assert_same(got, expected, "float64")
    # and it really differs from no dropout
    assert not np.allclose(got["out"], oracle_stack(spec, params, x, state0)["out"])


def packed_positions(lengths):
    """(t, b) of each row of torch's packed layout (sequences longest first; lengths here have no ties)."""
    order = sorted(range(len(lengths)), key=lambda b: -lengths[b])
    return [(t, b) for t in range(max(lengths, default=0)) for b in order if lengths[b] > t]


class FixedMasks:
    """Replaces layer._dropout_mask: returns known random inverted-dropout masks (0 or 1/(1-p)), the k-th call of
    each forward the k-th mask, and turns each into the padded time-major (T, B, W) mask the oracle applies."""

    def __init__(self, layer, T, B, lengths, batch_first, p, rng):
        self.T, self.B, self.lengths, self.batch_first = T, B, lengths, batch_first
        self.p, self.rng, self.layer = p, rng, layer
        self.drawn, self.calls = [], 0

    def __call__(self, shape):
        k = self.calls % (self.layer.num_layers - 1)
        self.calls += 1
        if k == len(self.drawn):
            keep = self.rng.random(shape) >= self.p
            self.drawn.append((keep / (1 - self.p)).astype(self.layer.dtype))
        assert self.drawn[k].shape == tuple(shape)
        return self.drawn[k]

    def padded(self):
        result = []
        for m in self.drawn:
            W = m.shape[-1]
            if self.lengths is not None and m.shape == (sum(self.lengths), W):
                pad = np.zeros((self.T, self.B, W))
                for row, (t, b) in enumerate(packed_positions(list(self.lengths))):
                    pad[t, b] = m[row]
            elif m.shape == (self.T, self.B, W):
                pad = m.astype(np.float64)
            else:
                assert m.shape == (self.B, self.T, W), f"unexpected mask shape {m.shape}"
                pad = m.transpose(1, 0, 2).astype(np.float64)
            result.append(pad)
        return result


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", ["lstm-proj-peep", "gru", "rnn-tanh"])
def test_dropout_with_known_mask_matches_oracle(kind, bidirectional, with_lengths, monkeypatch):
    """3 layers, dropout=0.4, a known mask (monkeypatched): out, states, dx, dstate0 and gradients equal the oracle
    that applies the same mask to layers 0 and 1's outputs (and none to the last layer's)."""
    rng = np.random.default_rng(10)
    spec = Spec(kind, 3, bidirectional)
    layer = make_layer(kind, 3, bidirectional, batch_first=True, dropout=0.4)
    params = randomize(layer, rng)
    lengths = np.array([2, 5, 0, 4]) if with_lengths else None
    T, B = 5, 4
    masks = FixedMasks(layer, T, B, lengths, True, 0.4, rng)
    monkeypatch.setattr(layer, "_dropout_mask", masks)
    x, state0, dout, dstate = random_problem(spec, T, B, rng)
    got = run_layer(layer, spec, x, state0, lengths, dout, dstate, batch_first=True)
    assert masks.calls == 2
    expected = oracle_stack(spec, params, x, state0, lengths, dout, dstate, masks=masks.padded())
    assert_same(got, expected, "float64")


def test_dropout_backward_finite_differences(monkeypatch):
    """With the mask fixed (monkeypatched), the loss sum(out * W) + sum(h_n * V) + sum(c_n * U) is a smooth function
    of x and the parameters: central differences agree with dx and every gradient (tiny float64 LSTM, 2 layers)."""
    rng = np.random.default_rng(12)
    layer = pylstm.LSTM(2, 3, 2, dropout=0.5, dtype="float64", seed=3, peepholes=True)
    randomize(layer, rng)
    T, B = 3, 2
    masks = FixedMasks(layer, T, B, None, False, 0.5, rng)
    monkeypatch.setattr(layer, "_dropout_mask", masks)
    x = rng.standard_normal((T, B, 2))
    W = rng.standard_normal((T, B, 3))
    V, U = rng.standard_normal((2, B, 3)), rng.standard_normal((2, B, 3))

    def loss(xv):
        out, (h, c) = layer(xv)
        return float((out * W).sum() + (h * V).sum() + (c * U).sum())

    loss(x)
    layer.zero_grad()
    dx, _ = layer.backward(W, (V, U))
    assert np.any(masks.drawn[0] == 0) and np.any(masks.drawn[0] != 0)
    numeric = compare.central_differences({"x": x, **layer.params}, lambda: loss(x))
    np.testing.assert_allclose(dx, numeric["x"], rtol=1e-6, atol=1e-8)
    for name in layer.params:
        np.testing.assert_allclose(layer.grads[name], numeric[name], rtol=1e-6, atol=1e-8, err_msg=name)


# ----------------------------------------------------------------------------------------------------------------------
# 5. lengths semantics and validation.


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", ["lstm-proj-peep", "gru", "rnn-tanh"])  # not relu: it has zeros of its own
def test_outputs_past_lengths_are_exactly_zero(kind, batch_first):
    rng = np.random.default_rng(13)
    layer = make_layer(kind, 2, True, batch_first)
    randomize(layer, rng)
    x = rng.standard_normal((len(LENGTHS), T_STEPS, I_SIZE) if batch_first else (T_STEPS, len(LENGTHS), I_SIZE))
    out, _ = layer(x, lengths=LENGTHS)
    out = tm(out, batch_first)
    for b, n in enumerate(LENGTHS):
        assert np.all(out[n:, b] == 0), b
        assert np.all(out[:n, b] != 0), b


@pytest.mark.parametrize("kind", ["lstm-proj-peep", "gru-reset_before", "rnn-tanh"])
def test_length_zero_sequence_keeps_its_state_and_gradient(kind):
    """A length-0 sequence: zero outputs, final state == initial state, dstate0 == dstate, dx == 0 (all exactly),
    in every layer and direction."""
    rng = np.random.default_rng(14)
    spec = Spec(kind, 3, True)
    layer = make_layer(kind, 3, True)
    randomize(layer, rng)
    x, state0, dout, dstate = random_problem(spec, T_STEPS, len(LENGTHS), rng)
    got = run_layer(layer, spec, x, state0, LENGTHS, dout, dstate, False)
    b = int(np.flatnonzero(LENGTHS == 0)[0])
    assert np.all(got["out"][:, b] == 0)
    assert np.all(got["dx"][:, b] == 0)
    for s0, fin in zip(state0, got["finals"], strict=True):
        np.testing.assert_array_equal(fin[:, b], s0[:, b])
    for ds, ds0 in zip(dstate, got["dstate0"], strict=True):
        np.testing.assert_array_equal(ds0[:, b], ds[:, b])


def test_all_lengths_zero():
    rng = np.random.default_rng(15)
    spec = Spec("lstm-peep", 2, True)
    layer = make_layer("lstm-peep", 2, True)
    randomize(layer, rng)
    x, state0, dout, dstate = random_problem(spec, 4, 3, rng)
    got = run_layer(layer, spec, x, state0, [0, 0, 0], dout, dstate, False)
    assert not got["out"].any() and not got["dx"].any()
    for a, e in zip(got["finals"], state0):
        np.testing.assert_array_equal(a, e)
    for a, e in zip(got["dstate0"], dstate):
        np.testing.assert_array_equal(a, e)
    assert not any(g.any() for g in layer.grads.values())


@pytest.mark.parametrize("kind", ["lstm-proj-peep", "gru"])
def test_dout_past_lengths_is_ignored(kind):
    rng = np.random.default_rng(16)
    spec = Spec(kind, 2, True)
    layer = make_layer(kind, 2, True)
    randomize(layer, rng)
    x, state0, dout, dstate = random_problem(spec, T_STEPS, len(LENGTHS), rng)
    clean, noisy_dout = dout.copy(), dout.copy()
    for b, n in enumerate(LENGTHS):
        clean[n:, b] = 0
        noisy_dout[n:, b] = 1e3 * rng.standard_normal(noisy_dout[n:, b].shape)
    noisy = run_layer(layer, spec, x, state0, LENGTHS, noisy_dout, dstate, False)
    noisy["grads"] = {k: v.copy() for k, v in noisy["grads"].items()}
    ref_run = run_layer(layer, spec, x, state0, LENGTHS, clean, dstate, False)
    assert noisy["dx"].any()
    np.testing.assert_array_equal(noisy["dx"], ref_run["dx"])
    for a, b in zip(noisy["dstate0"], ref_run["dstate0"]):
        np.testing.assert_array_equal(a, b)
    for name in ref_run["grads"]:
        np.testing.assert_array_equal(noisy["grads"][name], ref_run["grads"][name], err_msg=name)


@pytest.mark.parametrize("as_", ["list", "int32", "uint16", "tuple"])
def test_lengths_accepted_as_list_and_other_int_dtypes(as_):
    rng = np.random.default_rng(17)
    layer = make_layer("lstm-proj-peep", 2, True)
    randomize(layer, rng)
    x = rng.standard_normal((T_STEPS, len(LENGTHS), I_SIZE))
    base, (h, c) = layer(x, lengths=LENGTHS.astype(np.int64))
    lengths = {"list": [int(v) for v in LENGTHS], "int32": LENGTHS.astype(np.int32),
               "uint16": LENGTHS.astype(np.uint16), "tuple": tuple(int(v) for v in LENGTHS)}[as_]
    out, (h2, c2) = layer(x, lengths=lengths)
    np.testing.assert_array_equal(out, base)
    np.testing.assert_array_equal(h2, h)
    np.testing.assert_array_equal(c2, c)


@pytest.mark.parametrize("kind", ["lstm-proj-peep", "gru-reset_before"])
def test_full_lengths_equal_no_lengths(kind):
    """lengths all == T (the packed path) gives what lengths=None (the uniform path) gives."""
    rng = np.random.default_rng(18)
    spec = Spec(kind, 2, True)
    layer = make_layer(kind, 2, True)
    randomize(layer, rng)
    x, state0, dout, dstate = random_problem(spec, 4, 3, rng)
    a = run_layer(layer, spec, x, state0, None, dout, dstate, False)
    a["grads"] = {k: v.copy() for k, v in a["grads"].items()}
    b = run_layer(layer, spec, x, state0, [4, 4, 4], dout, dstate, False)
    assert_same(b, a, "float64")


@pytest.mark.parametrize("lengths, exc", [
    ([2.0, 1.0, 3.0], TypeError),
    (np.array([2.0, 1.0, 3.0]), TypeError),
    (np.array([2.5, 1.0, 3.0]), TypeError),
    ([2, 1], ValueError),
    ([2, 1, 3, 1], ValueError),
    ([[2, 1, 3]], ValueError),
    ([[2, 1], [3]], ValueError),
    ([2, -1, 3], ValueError),
    ([2, 1, 5], ValueError),
], ids=["float-list", "float-array", "fraction", "too-few", "too-many", "2d", "ragged", "negative", "past-T"])
def test_lengths_validation(lengths, exc):
    layer = make_layer("gru", 1, True)
    x = np.zeros((4, 3, I_SIZE))
    with pytest.raises(exc, match="lengths"):
        layer(x, lengths=lengths)


def test_lengths_empty_batch():
    """B = 0: lengths [] (float64 to NumPy) or an empty int array is one length per (no) sequence."""
    layer = make_layer("lstm-proj-peep", 2, True)
    for lengths in ([], np.array([], np.int64)):
        out, (h, c) = layer(np.zeros((4, 0, I_SIZE)), lengths=lengths)
        assert out.shape == (4, 0, 6) and h.shape == (4, 0, 3) and c.shape == (4, 0, H_SIZE)
        dx, _ = layer.backward(np.zeros_like(out))
        assert dx.shape == (4, 0, I_SIZE)


def test_lengths_validation_batch_first_counts_batch():
    """With batch_first the count is B = x.shape[0] and the bound T = x.shape[1]."""
    layer = make_layer("rnn-tanh", 1, batch_first=True)
    x = np.zeros((2, 5, I_SIZE))
    layer(x, lengths=[5, 3])
    with pytest.raises(ValueError, match="lengths"):
        layer(x, lengths=[5, 3, 1, 1, 1])
    with pytest.raises(ValueError, match="lengths"):
        layer(x, lengths=[6, 3])


# ----------------------------------------------------------------------------------------------------------------------
# 6. Parameter names, shapes and order.


def expected_names(num_layers, bidirectional, bias, proj, peepholes, G, I, H, P):
    shapes = {}
    D = 2 if bidirectional else 1
    for k in range(num_layers):
        for d in range(D):
            s = suffix(k, d)
            shapes[f"weight_ih{s}"] = (G * H, I if k == 0 else D * P)
            shapes[f"weight_hh{s}"] = (G * H, P)
            if bias:
                shapes[f"bias_ih{s}"] = (G * H,)
                shapes[f"bias_hh{s}"] = (G * H,)
            if proj:
                shapes[f"weight_hr{s}"] = (P, H)
            if peepholes:
                for g in "ifo":
                    shapes[f"peephole_{g}{s}"] = (H,)
    return shapes


def _layer_shapes(layer):
    return [(name, p.shape) for name, p in layer.params.items()]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_lstm_names_shapes_order_equal_torch(bias, bidirectional):
    torch = pytest.importorskip("torch")
    kw = dict(num_layers=3, bias=bias, bidirectional=bidirectional, proj_size=3)
    module = torch.nn.LSTM(5, 7, **kw)
    layer = pylstm.LSTM(5, 7, **kw)
    assert _layer_shapes(layer) == [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
    assert [(k, g.shape) for k, g in layer.grads.items()] == _layer_shapes(layer)
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(layer.params[k], v.numpy())


@pytest.mark.parametrize("cls_name, kw", [("GRU", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {})])
def test_gru_rnn_lstm_names_equal_torch(cls_name, kw):
    torch = pytest.importorskip("torch")
    module = getattr(torch.nn, cls_name)(4, 6, num_layers=3, bidirectional=True, **kw)
    layer = getattr(pylstm, cls_name)(4, 6, num_layers=3, bidirectional=True, **kw)
    assert _layer_shapes(layer) == [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


@pytest.mark.parametrize("proj", [0, 3])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_peephole_names_appended_per_layer_and_direction(proj, bidirectional):
    """Peepholes come after each layer/direction's torch parameters: ..., [weight_hr], peephole_i, _f, _o; zero."""
    layer = pylstm.LSTM(5, 7, 3, bidirectional=bidirectional, proj_size=proj, peepholes=True)
    expected = expected_names(3, bidirectional, True, proj, True, 4, 5, 7, proj or 7)
    assert _layer_shapes(layer) == list(expected.items())
    assert list(layer.grads) == list(expected)
    assert all(not p.any() for n, p in layer.params.items() if n.startswith("peephole_"))
    torch = pytest.importorskip("torch")
    module = torch.nn.LSTM(5, 7, 3, bidirectional=bidirectional, proj_size=proj)
    torch_names = list(module.state_dict())
    assert [n for n in layer.params if not n.startswith("peephole_")] == torch_names


def test_expected_names_helper_matches_torch_without_peepholes():
    torch = pytest.importorskip("torch")
    module = torch.nn.LSTM(5, 7, 3, bidirectional=True, proj_size=3)
    assert [(k, tuple(v.shape)) for k, v in module.state_dict().items()] == \
        list(expected_names(3, True, True, 3, False, 4, 5, 7, 3).items())


@pytest.mark.parametrize("cls,kwargs,per_row", [
    (pylstm.LSTM, {"proj_size": 3, "peepholes": True}, 5), (pylstm.GRU, {}, 4),
    (pylstm.GRU, {"reset_after": False}, 3), (pylstm.RNN, {}, 0)], ids=["lstm-proj-peep", "gru", "gru-before", "rnn"])
def test_saved_bytes_per_step_of_a_stack(cls, kwargs, per_row):
    """A training forward keeps per step, layer, direction and running row per_row*H values (projection and
    peepholes add none); with lengths the steps run fewer rows, counted as the average per step; eval keeps none."""
    H, B, T = 6, 3, 4
    layer = cls(2, H, num_layers=2, bidirectional=True, dtype="float64", seed=0, **kwargs)
    x = np.zeros((T, B, 2))
    layer(x)
    assert layer.saved_bytes_per_step() == 2 * 2 * per_row * H * B * 8
    layer(x, lengths=[4, 2, 0])  # 6 rows over 4 steps
    assert layer.saved_bytes_per_step() == 2 * 2 * (per_row * H * 8 * 6 // 4)
    layer.eval()(x)
    assert layer.saved_bytes_per_step() == 0

"""Property-based tests (hypothesis): random layer configurations, shapes and memory layouts against the oracle.

Each example draws a cell (LSTM with or without a projection and peepholes, GRU with reset_after True or False, RNN
tanh or relu), input and hidden sizes (small, around the SIMD widths: 8 and 16 float32 lanes, 4 and 8 float64 ones,
so vector bodies and scalar tails both run), layers, directions, bias, steps (0 included), batch (0 included),
lengths or none, batch_first, dtype, an initial state and a final-state gradient or none, and the memory layout of
every array handed to the layer: C-contiguous, Fortran-ordered, a strided view (every other element of the last
axis) or a view with negative strides. The layer accepts any layout (it copies what is not C-contiguous), so every
layout must give the oracle's results.

The oracle is test_stacks_directions_lengths.oracle_stack (pylstm.reference run one sequence at a time, backpropagated by hand),
with that file's tolerances. The example budget is fixed and the generation derandomized, so a run is repeatable and
takes seconds.
"""
from types import SimpleNamespace

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

import pylstm  # noqa: E402
from test_stacks_directions_lengths import as_tuple, assert_same, oracle_stack, randomize  # noqa: E402

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17]
LAYOUTS = ["contiguous", "fortran", "strided", "negative-strides"]


@st.composite
def configurations(draw):
    family = draw(st.sampled_from(["lstm", "gru", "rnn"]))
    options = {}
    if family == "lstm":
        options["proj_size"] = draw(st.sampled_from([0, 0, 1, 3, 9]))
        options["peepholes"] = draw(st.booleans())
    elif family == "gru":
        options["reset_after"] = draw(st.booleans())
    else:
        options["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    steps = draw(st.integers(0, 6))
    batch = draw(st.integers(0, 4))
    lengths = draw(st.none() | st.lists(st.integers(0, steps), min_size=batch, max_size=batch))
    return dict(
        family=family, options=options,
        input_size=draw(st.sampled_from(SIZES)), hidden_size=draw(st.sampled_from(SIZES)),
        num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()), bias=draw(st.booleans()),
        steps=steps, batch=batch, lengths=lengths, batch_first=draw(st.booleans()),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        with_state=draw(st.booleans()), with_dstate=draw(st.booleans()),
        layouts=draw(st.lists(st.sampled_from(LAYOUTS), min_size=4, max_size=4)),  # x, state, dout, dstate
        seed=draw(st.integers(0, 2 ** 32 - 1)),
    )


def in_layout(a, layout):
    """An array equal to `a` in the given memory layout."""
    if layout == "contiguous":
        return np.ascontiguousarray(a)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    return np.ascontiguousarray(a[::-1])[::-1]  # negative strides along the first axis


def user_layout(a, batch_first):
    """Time-major (T, B, .) -> the layer's layout (B, T, .) with batch_first (a view: not C-contiguous)."""
    return a.transpose(1, 0, 2) if batch_first else a


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(configurations())
def test_random_layers_match_the_oracle(c):
    cls = {"lstm": pylstm.LSTM, "gru": pylstm.GRU, "rnn": pylstm.RNN}[c["family"]]
    L, D, H = c["num_layers"], 2 if c["bidirectional"] else 1, c["hidden_size"]
    T, B, dtype = c["steps"], c["batch"], c["dtype"]
    layer = cls(c["input_size"], H, L, bias=c["bias"], batch_first=c["batch_first"],
                bidirectional=c["bidirectional"], dtype=dtype, seed=0, **c["options"])
    P = c["options"].get("proj_size") or H
    spec = SimpleNamespace(family=c["family"], L=L, D=D, H=H, P=P, peepholes=c["options"].get("peepholes", False),
                           reset_after=c["options"].get("reset_after", True),
                           nonlinearity=c["options"].get("nonlinearity", "tanh"),
                           n_states=2 if c["family"] == "lstm" else 1)
    spec.widths = (P, H)[:spec.n_states]

    rng = np.random.default_rng(c["seed"])
    params = randomize(layer, rng)  # float64 copies of the layer's (dtype-rounded) parameters
    # Inputs drawn in the layer's dtype, so the float64 oracle sees exactly the values the layer sees.
    x = rng.standard_normal((T, B, c["input_size"])).astype(dtype)
    state0 = (tuple(rng.standard_normal((D * L, B, w)).astype(dtype) for w in spec.widths)
              if c["with_state"] else None)
    dout = rng.standard_normal((T, B, D * P)).astype(dtype)
    dstate = (tuple(rng.standard_normal((D * L, B, w)).astype(dtype) for w in spec.widths)
              if c["with_dstate"] else None)
    lengths = None if c["lengths"] is None else np.array(c["lengths"], dtype=np.int64)
    if lengths is not None:
        past = np.arange(T)[:, None] >= lengths[None, :]
        dout[past] = 0  # the oracle never reads dout past a length; the layer ignores it (tested elsewhere)

    f64 = (lambda parts: None if parts is None else tuple(p.astype(np.float64) for p in parts))
    expected = oracle_stack(spec, params, x.astype(np.float64), f64(state0), lengths, dout.astype(np.float64),
                            f64(dstate))

    x_layout, state_layout, dout_layout, dstate_layout = c["layouts"]
    as_state = (lambda parts, layout: None if parts is None else
                tuple(in_layout(p, layout) for p in parts) if spec.n_states == 2 else in_layout(parts[0], layout))
    out, final = layer(in_layout(user_layout(x, c["batch_first"]), x_layout), as_state(state0, state_layout),
                       lengths=lengths)
    layer.zero_grad()
    dx, dstate0 = layer.backward(in_layout(user_layout(dout, c["batch_first"]), dout_layout),
                                 as_state(dstate, dstate_layout))
    got = dict(out=user_layout(out, c["batch_first"]), finals=as_tuple(final), dx=user_layout(dx, c["batch_first"]),
               dstate0=as_tuple(dstate0), grads=layer.grads)
    assert_same(got, expected, dtype)


# ----------------------------------------------------------------------------------------------------------------------
# Damaged checkpoints: pylstm.load either reads the module or raises its ValueError naming the file, nothing else.


def _checkpoint_bytes():
    import tempfile
    from pathlib import Path

    module = pylstm.Sequential(pylstm.Embedding(7, 3, seed=0), pylstm.LSTM(3, 4, 2, bidirectional=True, seed=1),
                               pylstm.Linear(8, 5, seed=2))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "m.ckpt")
        pylstm.checkpoint.save(path, module, training={"epoch": 3, "state": np.arange(6.0).reshape(2, 3)})
        return path.read_bytes()


CHECKPOINT = _checkpoint_bytes()


# Anywhere in the file, or in its last 1500 bytes: the zip's central directory (names, sizes, versions, offsets).
POSITIONS = st.integers(0, len(CHECKPOINT) - 1) | st.integers(len(CHECKPOINT) - 1500, len(CHECKPOINT) - 1)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(edits=st.lists(st.tuples(POSITIONS, st.integers(0, 255)), min_size=1, max_size=8),
       keep=st.integers(1, len(CHECKPOINT)) | st.just(len(CHECKPOINT)))
def test_damaged_checkpoints_load_or_raise_value_error(tmp_path_factory, edits, keep):
    data = bytearray(CHECKPOINT)
    for position, value in edits:
        data[position] = value
    path = tmp_path_factory.mktemp("damaged") / "m.ckpt"
    path.write_bytes(bytes(data[:keep]))
    try:
        pylstm.checkpoint.read(path)
    except ValueError as exc:
        assert str(path) in str(exc) and "not a valid pylstm checkpoint" in str(exc)

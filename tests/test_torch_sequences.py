"""Stacked, bidirectional, batch-first, variable-length and projected layers against PyTorch, torch as the oracle.

Every combination of cell (LSTM, GRU, RNN tanh/relu) x num_layers 1-3 x uni/bidirectional x batch_first x
lengths or not x (LSTM) proj_size or not, in float64 and float32. torch's module is built with its own random
parameters, its state_dict is loaded into the pylstm layer as it is, and both run the same input from the same random
initial state and backpropagate the same loss

    L = sum(out * W_out) + sum(h_n * W_h) (+ sum(c_n * W_c) for the LSTM).

With lengths, torch runs ``pack_padded_sequence(x, lengths, enforce_sorted=False)`` and ``pad_packed_sequence(...,
total_length=T)``; the lengths are unsorted and include T. torch refuses a length of 0, so the zero-length case
runs torch on the other sequences only and checks that pylstm returns the zero-length sequence's initial state
(and passes its state gradient straight through) while the rest still equal torch.

Compared: out, final states, dx, the initial-state gradients and every parameter gradient.
"""
import itertools

import numpy as np
import pytest

import compare
import pylstm

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

# float64: the same formulas in double precision on both sides; only summation orders differ (measured worst, over
# every case below with 3 seeds, in the float32 measure just below: 1.6e-15).
F64_TOL = dict(rtol=1e-10, atol=1e-12)
# float32: both sides round differently; the error is measured relative to the compared array's scale,
# max |ours - torch| / max(1, max |torch|). Measured worst over every case below with 3 seeds (torch 2.13.0,
# 2 threads): 7.4e-7 (bias_hh_l0's gradient of a 3-layer bidirectional RNN, a sum over every row of the stack).
# Tolerance: ~7x that.
F32_RTOL_OF_SCALE = 5e-6

T, B, I, H, P = 6, 5, 3, 4, 2
LENGTHS = np.array([3, 6, 1, 6, 2])  # unsorted, equal lengths in a tie, the full T, a single step

KINDS = {
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
    "rnn-tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn-relu": ("RNN", {"nonlinearity": "relu"}),
}
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _cases():
    for kind, layers, bidirectional, batch_first, lengths in itertools.product(
            KINDS, (1, 2, 3), (False, True), (False, True), (False, True)):
        for proj in ((0, P) if kind == "lstm" else (0,)):
            yield kind, layers, bidirectional, batch_first, lengths, proj


CASES = list(_cases())


def case_id(case):
    kind, layers, bidirectional, batch_first, lengths, proj = case
    return "-".join([kind, f"L{layers}", "bi" if bidirectional else "uni", "bf" if batch_first else "tb",
                     "len" if lengths else "full"] + ([f"proj{proj}"] if proj else []))


def make_pair(kind, layers, bidirectional, batch_first, proj, dtype, seed):
    name, kwargs = KINDS[kind]
    kwargs = dict(kwargs, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    if proj:
        kwargs["proj_size"] = proj
    torch.manual_seed(seed)
    module = getattr(torch.nn, name)(I, H, dtype=TORCH_DTYPES[dtype], **kwargs)
    layer = getattr(pylstm, name)(I, H, dtype=dtype, **kwargs)
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    return layer, module


def run_both(case, dtype, lengths=None, seed=0):
    """-> (pylstm results, torch results): dicts of arrays out, state<k>, dx, dstate<k> and the parameter names.

    Sequences of length 0 are left out of torch's run (torch refuses them); their expected outputs are zeros, their
    final state is their initial state and their state gradient is the final-state gradient itself."""
    kind, layers, bidirectional, batch_first, _, proj = case
    layer, module = make_pair(kind, layers, bidirectional, batch_first, proj, dtype, seed)
    is_lstm = kind == "lstm"
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    widths = (proj or H, H) if is_lstm else (H,)
    states = [rng.standard_normal((D * layers, B, w)).astype(dtype) for w in widths]
    dout_width = D * (proj or H)
    dout = rng.standard_normal(x.shape[:2] + (dout_width,)).astype(dtype)
    dstates = [rng.standard_normal(s.shape).astype(dtype) for s in states]

    # pylstm
    pack = (lambda parts: tuple(parts)) if is_lstm else (lambda parts: parts[0])
    out, final = layer(x, pack(states), lengths=lengths)
    dx, dstate0 = layer.backward(dout, pack(dstates))
    ours = {"out": out, "dx": dx, **{n: v for n, v in layer.grads.items()}}
    for k, (f, d) in enumerate(zip(final if is_lstm else (final,), dstate0 if is_lstm else (dstate0,))):
        ours[f"state{k}"], ours[f"dstate{k}"] = f, d

    # torch
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    batch_axis = 0 if batch_first else 1
    if lengths is None:
        out_t, final_t = module(xt, pack(st))
        finals_t = list(final_t) if is_lstm else [final_t]
    else:
        run = np.flatnonzero(lengths > 0)
        xs = xt.index_select(batch_axis, torch.tensor(run))
        sub = [s[:, run] for s in st]
        packed = pack_padded_sequence(xs, torch.tensor(lengths[run]), batch_first=batch_first, enforce_sorted=False)
        out_p, final_p = module(packed, pack(sub))
        out_run, _ = pad_packed_sequence(out_p, batch_first=batch_first, total_length=T)
        out_t = torch.zeros(out.shape, dtype=TORCH_DTYPES[dtype])
        out_t = out_t.index_copy(batch_axis, torch.tensor(run), out_run)
        finals_t = [s.index_copy(1, torch.tensor(run), f)  # length 0: the initial state itself
                    for s, f in zip(st, final_p if is_lstm else (final_p,))]
    loss = (out_t * torch.tensor(dout)).sum() + sum((f * torch.tensor(d)).sum() for f, d in zip(finals_t, dstates))
    loss.backward()
    theirs = {"out": out_t.detach().numpy(), "dx": xt.grad.numpy(),
              **{n: p.grad.numpy() for n, p in module.named_parameters()}}
    for k, (f, s) in enumerate(zip(finals_t, st)):
        theirs[f"state{k}"], theirs[f"dstate{k}"] = f.detach().numpy(), s.grad.numpy()
    return ours, theirs


def assert_all_close(ours, theirs, dtype):
    assert ours.keys() == theirs.keys()
    for name, expected in theirs.items():
        compare.assert_close(ours[name], expected, dtype, name, f64_tol=F64_TOL, f32_of_scale=F32_RTOL_OF_SCALE)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_layer_matches_torch(case, dtype):
    lengths = LENGTHS if case[4] else None
    ours, theirs = run_both(case, dtype, lengths)
    assert_all_close(ours, theirs, dtype)


ZERO_LENGTH_CASES = [c for c in CASES if c[4] and c[1] == 2]


@pytest.mark.parametrize("case", ZERO_LENGTH_CASES, ids=case_id)
def test_zero_length_sequences(case):
    """Lengths with zeros (first, middle): zero outputs, the initial state back, its gradient passed through; the
    other sequences still equal torch's."""
    lengths = np.array([0, 4, 0, 6, 1])
    ours, theirs = run_both(case, "float64", lengths)
    assert_all_close(ours, theirs, "float64")
    batch_axis = 0 if case[3] else 1
    zero_rows = np.take(ours["out"], [0, 2], axis=batch_axis)
    assert not zero_rows.any()


def test_all_lengths_zero():
    """Every sequence empty: zero outputs, the initial states back, no parameter gradient."""
    layer = pylstm.LSTM(I, H, 2, bidirectional=True, dtype="float64", seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, B, I))
    state = (rng.standard_normal((4, B, H)), rng.standard_normal((4, B, H)))
    out, (h, c) = layer(x, state, lengths=np.zeros(B, np.int64))
    assert out.shape == (T, B, 2 * H) and not out.any()
    np.testing.assert_array_equal(h, state[0])
    np.testing.assert_array_equal(c, state[1])
    dstate = (rng.standard_normal((4, B, H)), rng.standard_normal((4, B, H)))
    dx, (dh0, dc0) = layer.backward(rng.standard_normal(out.shape), dstate)
    assert not dx.any()
    np.testing.assert_array_equal(dh0, dstate[0])
    np.testing.assert_array_equal(dc0, dstate[1])
    assert all(not g.any() for g in layer.grads.values())


@pytest.mark.parametrize("kind", list(KINDS))
def test_full_lengths_equal_no_lengths(kind):
    """lengths all equal to T runs the packed layout; it equals the uniform layout's results."""
    case = (kind, 2, True, False, True, 0)
    with_lengths, _ = run_both(case, "float64", np.full(B, T))
    without, _ = run_both(case, "float64", None)
    for name in without:
        np.testing.assert_allclose(with_lengths[name], without[name], rtol=1e-13, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_of_every_configuration_loads(kind):
    """torch's state_dict of a 3-layer bidirectional module (projected for the LSTM) loads as it is, names and
    shapes in torch's order."""
    case = (kind, 3, True, False, False, P if kind == "lstm" else 0)
    layer, module = make_pair(*case[:4], case[5], "float64", seed=5)
    torch_state = module.state_dict()
    assert list(layer.state_dict()) == list(torch_state)
    for name, value in torch_state.items():
        np.testing.assert_array_equal(layer.params[name], value.numpy())

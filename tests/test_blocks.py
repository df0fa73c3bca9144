"""The blocks around the recurrent layers (pylstm.Embedding, Linear, Dropout, Sequential) and their functional core.

* the C++ functional core against pylstm.reference (float64 to ~1e-12, float32 to a measured scale) on every ISA,
  over odd sizes that leave SIMD tails, and bitwise the same on one and two threads;
* the blocks against torch.nn (same weights: same outputs and gradients), and their initialisation;
* gradients by central differences on the float64 fast path;
* Sequential: torch's parameter names, a chain equal to its modules run by hand, states carried across chunks,
  lengths, the gradients of the initial states, and its errors;
* ``params`` entries cannot be replaced, for every kind of module (they are the arrays the kernels use);
* save/load of every block and of a Sequential, and a doctored header refused before allocating.
"""
import copy
import json
import math

import numpy as np
import pytest
import torch

import pylstm
from pylstm import _core
from pylstm import functional as F
from pylstm import reference as ref

from compare import assert_close, central_differences

F64 = dict(rtol=1e-12, atol=1e-12)
F32_OF_SCALE = 2e-6  # float32 linear against the float64 truth: at most 8.5e-7 measured over these sizes, every ISA

SIZES = [(1, 1, 1), (3, 5, 7), (17, 33, 15), (64, 16, 97), (200, 31, 64)]  # (rows, I, O): SIMD tails on every ISA


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------------------------------------------------
# Functional core against the reference


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows,I,O", SIZES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_reference(isa, dtype, rows, I, O, bias):
    rng = np.random.default_rng(rows * 1000 + I)
    x, w = rand(rng, (rows, I), dtype), rand(rng, (O, I), dtype)
    b = rand(rng, (O,), dtype) if bias else None
    dy = rand(rng, (rows, O), dtype)
    tol = dict(dtype=dtype, f64_tol=F64, f32_of_scale=F32_OF_SCALE)
    assert_close(F.linear_forward(x, w, b), ref.linear_forward(x, w, b), what="y", **tol)
    got = {"dweight": np.full((O, I), 0.5, dtype), "dbias": np.full(O, 0.25, dtype) if bias else None}
    want = {k: None if v is None else v.copy() for k, v in got.items()}
    dx = F.linear_backward(x, w, dy, **got)
    dx_ref = ref.linear_backward(x, w, dy, **want)
    assert_close(dx, dx_ref, what="dx", **tol)
    for k in got:
        if got[k] is not None:  # accumulated onto what was there
            assert_close(got[k], want[k], what=k, **tol)


def test_linear_any_leading_shape_and_no_dx():
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, (4, 3, 5), "float64"), rand(rng, (7, 5), "float64"), rand(rng, (7,), "float64")
    y = F.linear_forward(x, w, b)
    assert y.shape == (4, 3, 7)
    np.testing.assert_allclose(y, x @ w.T + b, **F64)
    dw = np.zeros((7, 5))
    assert F.linear_backward(x, w, np.ones((4, 3, 7)), dweight=dw, need_dx=False) is None
    np.testing.assert_allclose(dw, np.ones((12, 7)).T @ x.reshape(12, 5), **F64)


@pytest.mark.parametrize("rows,I,O", [(5, 8, 4096), (700, 200, 300), (3000, 64, 96)])
def test_linear_bitwise_same_on_one_and_two_threads(num_threads, rows, I, O):
    rng = np.random.default_rng(2)
    x, w, b, dy = (rand(rng, s, "float32") for s in ((rows, I), (O, I), (O,), (rows, O)))
    results = []
    for n in (1, 2):
        num_threads(n)
        dw, db = np.zeros((O, I), np.float32), np.zeros(O, np.float32)
        dx = F.linear_backward(x, w, dy, dweight=dw, dbias=db)
        results.append((F.linear_forward(x, w, b), dx, dw, db))
    for a, b_ in zip(*results):
        assert a.tobytes() == b_.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("padding_idx", [None, 3])
def test_embedding_matches_reference(dtype, padding_idx):
    rng = np.random.default_rng(3)
    w = rand(rng, (11, 6), dtype)
    ids = rng.integers(0, 11, (7, 5))  # duplicates, and the padding row among them
    ids[0, 0] = ids[1, 1] = 3
    np.testing.assert_array_equal(F.embedding_forward(ids, w), ref.embedding_forward(ids, w))
    dout = rand(rng, (7, 5, 6), dtype)
    got, want = np.full_like(w, 0.5), np.full_like(w, 0.5)
    F.embedding_backward(ids, dout, dweight=got, padding_idx=padding_idx)
    ref.embedding_backward(ids, dout, dweight=want, padding_idx=padding_idx)
    assert_close(got, want, dtype, "dweight", f64_tol=F64, f32_of_scale=F32_OF_SCALE)
    if padding_idx is not None:
        assert np.all(got[padding_idx] == 0.5)


def test_embedding_backward_touches_only_rows_looked_up(num_threads):
    """A large table with a few rows used: the rest of the gradient is never written (NaN stays NaN), and the rows
    summed from duplicates come out bitwise the same on one and two threads."""
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 50_000, 20_000) % 40 * 1000  # 40 rows of 50,000, each many times
    dout = rand(rng, (20_000, 128), "float32")
    results = []
    for n in (1, 2):
        num_threads(n)
        dweight = np.full((50_000, 128), np.nan, np.float32)
        dweight[np.unique(ids)] = 0.0
        F.embedding_backward(ids, dout, dweight=dweight)
        results.append(dweight)
    used = np.zeros(50_000, bool)
    used[ids] = True
    assert np.isnan(results[0][~used]).all()
    assert results[0].tobytes() == results[1].tobytes()
    want = np.zeros((50_000, 128), np.float64)
    np.add.at(want, ids, dout.astype(np.float64))
    np.testing.assert_allclose(results[0][used], want[used], rtol=1e-4, atol=1e-3)


# ----------------------------------------------------------------------------------------------------------------------
# The blocks against torch


def test_linear_against_torch():
    lin = pylstm.Linear(5, 3, dtype="float64", seed=0)
    t = torch.nn.Linear(5, 3).double()
    t.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((4, 2, 5))
    xt = torch.tensor(x, requires_grad=True)
    yt = t(xt)
    dy = np.random.default_rng(6).standard_normal(yt.shape)
    yt.backward(torch.tensor(dy))
    y = lin(x)
    dx = lin.backward(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), **F64)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **F64)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(lin.grads[name], p.grad.numpy(), **F64)


def test_embedding_against_torch():
    emb = pylstm.Embedding(10, 4, padding_idx=-2, dtype="float64", seed=0)  # negative: counted from the end, as torch
    assert emb.padding_idx == 8 and not emb.params["weight"][8].any()
    t = torch.nn.Embedding(10, 4, padding_idx=8).double()
    t.load_state_dict({k: torch.tensor(v) for k, v in emb.state_dict().items()})
    ids = np.array([[1, 8, 1], [9, 0, 8]])
    out = emb(ids)
    out_t = t(torch.tensor(ids))
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    dout = np.random.default_rng(7).standard_normal(out.shape)
    assert emb.backward(dout) is None
    out_t.backward(torch.tensor(dout))
    np.testing.assert_allclose(emb.grads["weight"], t.weight.grad.numpy(), **F64)


def test_initialisations_are_torchs():
    """Linear: weight and bias uniform in +-1/sqrt(in_features); Embedding: standard normal; both from seed."""
    lin = pylstm.Linear(400, 300, seed=1)
    bound = 1 / np.sqrt(400)
    for p in lin.params.values():
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.98 * bound
    assert abs(lin.params["weight"].std() - bound / np.sqrt(3)) < 0.01 * bound
    emb = pylstm.Embedding(1000, 100, seed=1)
    w = emb.params["weight"]
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
    assert np.array_equal(pylstm.Linear(400, 300, seed=1).params["weight"], lin.params["weight"])
    assert not np.array_equal(pylstm.Linear(400, 300, seed=2).params["weight"], lin.params["weight"])


def test_dropout():
    drop = pylstm.Dropout(0.25, seed=0)
    x = np.ones((400, 500), np.float32)
    y = drop(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_array_equal(y[kept], np.float32(1 / 0.75))
    assert y.dtype == np.float32
    dout = np.random.default_rng(8).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(drop.backward(dout), dout * (y / x))
    np.testing.assert_array_equal(pylstm.Dropout(0.25, seed=0)(x), y)  # masks from the seed
    assert drop.eval()(x) is x
    with pytest.raises(RuntimeError, match="backward"):
        drop.backward(dout)
    assert not pylstm.Dropout(1.0)(x).any()
    np.testing.assert_array_equal(pylstm.Dropout(0.0)(x), x)


# ----------------------------------------------------------------------------------------------------------------------
# Finite differences on the float64 fast path


def test_linear_and_embedding_gradients_by_central_differences():
    rng = np.random.default_rng(9)
    emb = pylstm.Embedding(6, 3, dtype="float64", seed=0)
    lin = pylstm.Linear(3, 4, dtype="float64", seed=1)
    ids = np.array([[0, 5], [5, 2], [1, 0]])
    weights = rng.standard_normal((3, 2, 4))

    def loss():
        return float((lin(emb(ids)) * weights).sum())

    numeric = central_differences({"0.weight": emb.params["weight"], "1.weight": lin.params["weight"],
                                   "1.bias": lin.params["bias"]}, loss)
    loss()
    emb.backward(lin.backward(weights))
    for name, module in (("0.weight", emb), ("1.weight", lin), ("1.bias", lin)):
        np.testing.assert_allclose(module.grads[name[2:]], numeric[name], rtol=1e-7, atol=1e-8)


def test_sequential_gradients_by_central_differences():
    rng = np.random.default_rng(10)
    model = pylstm.Sequential(pylstm.Linear(3, 4, dtype="float64", seed=0),
                              pylstm.GRU(4, 5, num_layers=2, dtype="float64", seed=1),
                              pylstm.Linear(5, 2, dtype="float64", seed=2))
    x = rng.standard_normal((4, 2, 3))
    h0 = 0.3 * rng.standard_normal((2, 2, 5))
    weights = rng.standard_normal((4, 2, 2))
    wh = rng.standard_normal((2, 2, 5))

    def loss():
        out, (h,) = model(x, [h0])
        return float((out * weights).sum() + (h * wh).sum())

    arrays = {"x": x, "h0": h0, **{k: model.params[k] for k in ("0.weight", "1.weight_hh_l1", "2.bias")}}
    numeric = central_differences(arrays, loss)
    loss()
    dx, (dh0,) = model.backward(weights, [wh])
    np.testing.assert_allclose(dx, numeric["x"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dh0, numeric["h0"], rtol=1e-6, atol=1e-8)
    for k in ("0.weight", "1.weight_hh_l1", "2.bias"):
        np.testing.assert_allclose(model.grads[k], numeric[k], rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------------------------------------------------
# Sequential


def char_model(dtype="float64", seed=0, **lstm):
    return pylstm.Sequential(pylstm.Embedding(12, 5, dtype=dtype, seed=seed),
                             pylstm.LSTM(5, 8, num_layers=2, dtype=dtype, seed=seed + 1, **lstm),
                             pylstm.Linear(8, 12, dtype=dtype, seed=seed + 2))


def test_sequential_names_are_torchs_and_a_torch_state_dict_maps_over():
    model = char_model()
    t = torch.nn.Sequential(torch.nn.Embedding(12, 5), torch.nn.LSTM(5, 8, 2), torch.nn.Linear(8, 12)).double()
    assert list(model.params) == list(t.state_dict())
    assert list(model.grads) == list(model.params)
    model.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    ids = np.random.default_rng(11).integers(0, 12, (6, 3))
    out, states = model(ids)
    e = t[0](torch.tensor(ids))
    o, _ = t[1](e)
    np.testing.assert_allclose(out, t[2](o).detach().numpy(), **F64)


def test_sequential_params_are_the_modules_arrays():
    model = char_model()
    assert model.params["1.weight_hh_l1"] is model[1].params["weight_hh_l1"]
    assert model.grads["2.bias"] is model[2].grads["bias"]
    assert len(model) == 3


def test_sequential_equals_its_modules_run_by_hand():
    model = char_model()
    rng = np.random.default_rng(12)
    ids = rng.integers(0, 12, (7, 2))
    out, [state] = model(ids)
    dout = rng.standard_normal(out.shape)
    dstate = (rng.standard_normal((2, 2, 8)), None)
    dx, [dstate0] = model.backward(dout, [dstate])
    assert dx is None
    grads = {k: g.copy() for k, g in model.grads.items()}

    same = char_model()
    e = same[0](ids)
    o, s = same[1](e)
    y = same[2](o)
    do = same[2].backward(dout)
    de, ds0 = same[1].backward(do, dstate)
    same[0].backward(de)
    np.testing.assert_array_equal(out, y)
    for a, b in zip(state + dstate0, s + ds0):
        np.testing.assert_array_equal(a, b)
    for k in grads:
        np.testing.assert_array_equal(grads[k], same.grads[k])


def test_sequential_states_carry_across_chunks():
    """Running a sequence in two chunks, the states given back, gives the outputs of one call."""
    model = char_model().eval()
    ids = np.random.default_rng(13).integers(0, 12, (10, 3))
    whole, [final] = model(ids)
    first, states = model(ids[:4])
    second, [final2] = model(ids[4:], states)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, **F64)
    for a, b in zip(final, final2):
        np.testing.assert_allclose(a, b, **F64)


def test_sequential_passes_lengths_to_recurrent_layers():
    model = char_model(batch_first=True)
    ids = np.random.default_rng(14).integers(0, 12, (3, 6))  # (B, T)
    lengths = np.array([6, 2, 4])
    out, [(h, c)] = model(ids, lengths=lengths)
    for b, n in enumerate(lengths):
        alone, [(h1, c1)] = model(ids[b:b + 1, :n])
        np.testing.assert_allclose(out[b, :n], alone[0], **F64)
        np.testing.assert_allclose(h[:, b], h1[:, 0], **F64)
        # past the length the LSTM gives zeros, which the Linear maps to its bias
        np.testing.assert_allclose(out[b, n:], np.broadcast_to(model[2].params["bias"], out[b, n:].shape), **F64)


def test_sequential_train_eval_and_zero_grad_reach_every_module():
    model = pylstm.Sequential(pylstm.Linear(3, 3), pylstm.Dropout(0.5), pylstm.RNN(3, 3))
    model.eval()
    assert not any(m.training for m in model) and not model.training
    model.train()
    assert all(m.training for m in model)
    x = np.ones((2, 1, 3), np.float32)
    out, _ = model(x)
    model.backward(np.ones_like(out))
    assert any(g.any() for g in model.grads.values())
    model.zero_grad()
    assert not any(g.any() for g in model.grads.values())


def test_sequential_errors():
    with pytest.raises(ValueError, match="modules"):
        pylstm.Sequential()
    with pytest.raises(TypeError, match=r"modules\[1\].*LSTMCell"):
        pylstm.Sequential(pylstm.Linear(2, 2), pylstm.LSTMCell(2, 2))
    with pytest.raises(TypeError, match=r"modules\[0\].*dict"):
        pylstm.Sequential({})
    with pytest.raises(TypeError, match=r"modules\[1\]: a Sequential with recurrent layers cannot be nested"):
        pylstm.Sequential(pylstm.Linear(2, 2), pylstm.Sequential(pylstm.GRU(2, 2)))
    lin = pylstm.Linear(2, 2)
    with pytest.raises(ValueError, match="twice"):
        pylstm.Sequential(lin, lin)
    with pytest.raises(ValueError, match="twice, here or inside a nested Sequential"):
        pylstm.Sequential(pylstm.Sequential(lin), lin)
    with pytest.raises(ValueError, match="twice, here or inside a nested Sequential"):
        pylstm.Sequential(pylstm.Sequential(pylstm.Sequential(lin)), pylstm.Sequential(lin))
    model = char_model()
    with pytest.raises(TypeError, match="states: expected None or a list of 1"):
        model(np.zeros((2, 2), int), [None, None])
    with pytest.raises(RuntimeError, match="backward"):
        char_model().backward(np.zeros((2, 2, 12)))
    emb_first = pylstm.Sequential(pylstm.Embedding(3, 2), pylstm.Linear(2, 2))
    out, _ = emb_first(np.array([[0, 1]]))
    assert emb_first.backward(np.ones_like(out)) == (None, [])


# ----------------------------------------------------------------------------------------------------------------------
# Argument errors of the blocks


def test_block_argument_errors():
    with pytest.raises(TypeError, match="in_features"):
        pylstm.Linear(2.0, 3)
    with pytest.raises(ValueError, match="out_features"):
        pylstm.Linear(2, 0)
    with pytest.raises(ValueError, match="dtype"):
        pylstm.Linear(2, 3, dtype="int32")
    with pytest.raises(ValueError, match=r"padding_idx.*\[-4, 4\).*got 4"):
        pylstm.Embedding(4, 2, padding_idx=4)
    with pytest.raises(TypeError, match="padding_idx"):
        pylstm.Embedding(4, 2, padding_idx=1.0)
    for p in (1.5, math.nan, 10 ** 400):  # (an int beyond any float too)
        with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\], got"):
            pylstm.Dropout(p)
    lin = pylstm.Linear(3, 2)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 3\)"):
        lin(np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        lin(np.zeros((4, 3)))
    with pytest.raises(RuntimeError, match="backward"):
        lin.backward(np.zeros((4, 2), np.float32))
    lin(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="dout: expected shape"):
        lin.backward(np.zeros((5, 2), np.float32))
    emb = pylstm.Embedding(4, 2)
    with pytest.raises(ValueError, match=r"ids: expected integers in \[0, 4\).*got 4"):
        emb(np.array([1, 4]))
    with pytest.raises(ValueError, match=r"ids: .*got -1"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match="ids: expected an array of integers, got dtype float64"):
        emb(np.array([1.0]))
    for huge in (2 ** 63, 2 ** 64 - 1):  # reported as they are, not wrapped to int64's negatives
        with pytest.raises(ValueError, match=rf"ids: expected integers in \[0, num_embeddings\), got {huge}$"):
            emb(np.array([1, huge], np.uint64))
    assert emb(np.array([1, 2], np.int32)).shape == (2, 2)  # any integer dtype
    assert emb(3).shape == (2,)  # ids of any shape, a scalar too


def test_functional_block_errors_name_the_argument():
    w = np.zeros((3, 2))
    with pytest.raises(TypeError, match="x: expected dtype float64"):
        F.linear_forward(np.zeros((1, 2), np.float32), w)
    with pytest.raises(ValueError, match="bias: expected shape"):
        F.linear_forward(np.zeros((1, 2)), w, np.zeros(2))
    with pytest.raises(ValueError, match="dweight: must not share memory"):
        F.linear_backward(np.zeros((1, 2)), w, np.zeros((1, 3)), dweight=w)
    with pytest.raises(ValueError, match="dweight: expected a writeable"):
        ro = np.zeros((3, 2))
        ro.flags.writeable = False
        F.linear_backward(np.zeros((1, 2)), w, np.zeros((1, 3)), dweight=ro)
    with pytest.raises(TypeError, match="ids: expected dtype int64"):
        F.embedding_forward(np.zeros(2, np.int32), w)
    with pytest.raises(ValueError, match="x: expected a C-contiguous"):
        F.linear_forward(np.zeros((2, 4))[:, ::2], w)


# ----------------------------------------------------------------------------------------------------------------------
# Live parameters


@pytest.mark.parametrize("make", [
    lambda: pylstm.LSTM(2, 3), lambda: pylstm.GRUCell(2, 3), lambda: pylstm.Linear(2, 3),
    lambda: pylstm.Embedding(4, 2), lambda: char_model()], ids=["layer", "cell", "linear", "embedding", "sequential"])
def test_params_entries_cannot_be_replaced(make):
    """The entries are the arrays the kernels compute with: replacing one is refused (a module that keeps references
    to its arrays would silently ignore it), while updating in place changes the next forward."""
    module = make()
    name = next(iter(module.params))
    with pytest.raises(TypeError, match=r"cannot be replaced.*in place"):
        module.params[name] = np.zeros_like(module.params[name])
    with pytest.raises(TypeError):
        module.grads[name] = np.zeros_like(module.params[name])
    with pytest.raises(TypeError):
        del module.params[name]
    before = module.params[name].copy()
    module.params[name][...] += 1
    assert np.array_equal(module.params[name], before + 1)


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoints


@pytest.mark.parametrize("make", [
    lambda: pylstm.Linear(3, 4, bias=False, dtype="float64", seed=1), lambda: pylstm.Embedding(5, 3, padding_idx=0),
    lambda: pylstm.Dropout(0.3, seed=4), lambda: char_model("float32", dropout=0.1),
    lambda: pylstm.Sequential(pylstm.Linear(2, 3), pylstm.Sequential(pylstm.Dropout(0.1), pylstm.Linear(3, 1)))],
    ids=["linear", "embedding", "dropout", "char-model", "nested"])
def test_save_and_load(tmp_path, make):
    module = make()
    rng = np.random.default_rng(0)
    for p in module.params.values():
        p[...] = rng.standard_normal(p.shape)
    pylstm.save(tmp_path / "m.npz", module)
    loaded = pylstm.load(tmp_path / "m.npz")
    assert type(loaded) is type(module) and loaded.config() == module.config()
    assert list(loaded.params) == list(module.params)
    for k, p in module.params.items():
        assert loaded.params[k].tobytes() == p.tobytes() and loaded.params[k].dtype == p.dtype


def test_load_refuses_a_sequential_header_asking_for_more_than_the_file_holds(tmp_path):
    model = char_model("float32")
    path = tmp_path / "m.npz"
    pylstm.save(path, model)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays.pop("__pylstm__").tobytes())
    for k, big in ((0, {"num_embeddings": 10 ** 9}), (2, {"in_features": 10 ** 9}), (1, {"hidden_size": 10 ** 8})):
        doctored = json.loads(json.dumps(header))
        doctored["config"]["modules"][k]["config"].update(big)
        arrays["__pylstm__"] = np.frombuffer(json.dumps(doctored).encode(), np.uint8)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        with pytest.raises(ValueError, match="do not fit the declared"):
            pylstm.load(path)


def test_set_rng_state_refuses_a_forged_state_naming_it():
    """Generator states read from a file: an integer out of the generator's range is a ValueError naming the entry,
    and nothing changes (NumPy raises OverflowError)."""
    model = pylstm.Sequential(pylstm.Dropout(0.5), pylstm.Linear(2, 2))
    before = model.rng_state()
    forged = copy.deepcopy(before)
    forged[0]["state"]["state"] = -1
    with pytest.raises(ValueError, match=r"states\[0\]: not a state of a PCG64"):
        model.set_rng_state(forged)
    assert model.rng_state() == before


@pytest.mark.parametrize("make, x", [(lambda: pylstm.Linear(3, 2, seed=0), np.ones((4, 3), np.float32)),
                                     (lambda: pylstm.Embedding(5, 3, seed=0), np.array([1, 1, 4])),
                                     (lambda: pylstm.Dropout(0.5, seed=0), np.ones((4, 3), np.float32))])
def test_a_blocks_backward_runs_once_per_forward(make, x):
    """As the recurrent layers': a second backward of one forward would add the gradients again."""
    block = make()
    out = block(x)
    dout = np.ones_like(out)
    block.backward(dout)
    grads = {name: g.copy() for name, g in block.grads.items()}
    with pytest.raises(RuntimeError, match="whose backward has not run yet"):
        block.backward(dout)
    for name, g in block.grads.items():
        np.testing.assert_array_equal(g, grads[name])
    block(x)
    block.backward(dout)  # a new forward, a new backward


def test_a_second_sequential_backward_changes_no_gradient():
    model = pylstm.Sequential(pylstm.LSTM(3, 4, seed=0), pylstm.Dropout(0.2, seed=1), pylstm.Linear(4, 2, seed=2))
    y, _ = model(np.ones((5, 1, 3), np.float32))
    model.backward(np.ones_like(y))
    grads = {name: g.copy() for name, g in model.grads.items()}
    with pytest.raises(RuntimeError, match="Linear whose backward has not run yet"):
        model.backward(np.ones_like(y))
    for name, g in model.grads.items():
        np.testing.assert_array_equal(g, grads[name], err_msg=name)


def test_dropout_checks_dtypes():
    drop = pylstm.Dropout(0.5, seed=0)
    with pytest.raises(TypeError, match="x: expected dtype float32 or float64, got float16"):
        drop(np.ones(3, np.float16))
    drop(np.ones(4, np.float32))
    with pytest.raises(TypeError, match="dout: expected dtype float32 .the last forward's., got float64"):
        drop.backward(np.ones(4))


def test_functional_embedding_backward_refuses_a_padding_idx_outside_the_rows():
    """-1 was the kernel's "no padding" and 100 was ignored: both silently excluded nothing."""
    ids, dout, dweight = np.array([1, 4]), np.ones((2, 3), np.float32), np.zeros((5, 3), np.float32)
    for bad in (-1, 5, 100):
        with pytest.raises(ValueError, match=r"padding_idx: expected None or a row of dweight, an int in \[0, 5\)"):
            F.embedding_backward(ids, dout, dweight=dweight, padding_idx=bad)
    with pytest.raises(TypeError, match="padding_idx: expected None or an int"):
        F.embedding_backward(ids, dout, dweight=dweight, padding_idx=1.0)
    assert not dweight.any()
    F.embedding_backward(ids, dout, dweight=dweight, padding_idx=4)
    assert dweight[1].all() and not dweight[4].any()


# ----------------------------------------------------------------------------------------------------------------------
# Unusual inputs: torch tensors that require grad, misaligned arrays.


TENSOR_CALLS = {
    "layer x": (lambda t: pylstm.LSTM(3, 4)(t((5, 2, 3))), "x"),
    "cell x": (lambda t: pylstm.GRUCell(3, 4)(t((2, 3))), "x"),
    "linear x": (lambda t: pylstm.Linear(3, 4)(t((2, 3))), "x"),
    "dropout x": (lambda t: pylstm.Dropout(0.5)(t((2, 3))), "x"),
    "mse pred": (lambda t: pylstm.losses.mse(t((2, 3)), np.zeros((2, 3))), "pred"),
    "cross_entropy logits": (lambda t: pylstm.losses.cross_entropy(t((2, 3)), np.zeros(2, np.int64)), "logits"),
    "pad_sequences": (lambda t: pylstm.pad_sequences([t((2, 3))]), r"sequences\[0\]"),
}


@pytest.mark.parametrize("call", list(TENSOR_CALLS))
def test_a_torch_tensor_that_requires_grad_is_a_type_error_naming_the_argument(call):
    """np.asarray of such a tensor raises torch's RuntimeError: it was let through."""
    run, name = TENSOR_CALLS[call]
    with pytest.raises(TypeError, match=f"^{name}: .*requires grad"):
        run(lambda shape: torch.zeros(shape, requires_grad=True))


def misaligned(a):
    view = np.frombuffer(bytearray(a.nbytes + 1), a.dtype, a.size, 1).reshape(a.shape)
    view[...] = a
    assert not view.flags.aligned
    return view


def test_embedding_and_cross_entropy_copy_misaligned_arrays_as_the_other_blocks_do():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, (4, 3))
    emb = pylstm.Embedding(5, 2, seed=0)
    np.testing.assert_array_equal(emb(misaligned(ids)), emb(ids))
    logits = rng.standard_normal((4, 3, 5)).astype(np.float32)
    for got, want in zip(pylstm.losses.cross_entropy(misaligned(logits), misaligned(ids)),
                         pylstm.losses.cross_entropy(logits, ids)):
        np.testing.assert_array_equal(got, want)


def test_sequential_refuses_recurrent_layers_of_two_layouts():
    """A batch_first layer's (B, T, H) output read as (T, B, H) by the next one: refused, naming both."""
    with pytest.raises(ValueError, match=r"modules\[2\]: batch_first=False, after modules\[1\] with batch_first=True"):
        pylstm.Sequential(pylstm.Embedding(5, 3), pylstm.LSTM(3, 4, batch_first=True), pylstm.GRU(4, 4),
                          pylstm.Linear(4, 5))
    assert pylstm.Sequential(pylstm.LSTM(3, 4, batch_first=True), pylstm.GRU(4, 4, batch_first=True)).batch_first


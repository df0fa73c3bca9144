"""The layer classes against PyTorch: pylstm.LSTM / GRU / RNN vs torch.nn.LSTM / GRU / RNN (num_layers=1).

PyTorch's module is created with its own random initialisation, its state_dict is loaded into the pylstm layer, and
both run the same input from the same random nonzero initial state; then both backpropagate the same loss

    L = sum(out * W_out) + sum(h_n * W_h) (+ sum(c_n * W_c) for the LSTM)

(for pylstm: layer.backward(dout=W_out, dstate=W_h / (W_h, W_c))). Compared: out, the final state(s), dx, the
initial-state gradient(s) and every parameter gradient (layer.grads vs the torch parameters' .grad).

GRU only with reset_after=True: PyTorch has no reset_after=False form.
"""
import numpy as np
import pytest

import compare
import pylstm

torch = pytest.importorskip("torch")

# float64: both sides compute the same formulas in double precision; only summation order differs.
F64_TOL = dict(rtol=1e-10, atol=1e-12)
# float32: each side rounds differently (pylstm's own GEMM and activations vs PyTorch's), so the error is measured
# relative to the size of the compared array: max |ours - torch| / max(1, max |torch|). Measured over every case
# below (4 kinds x bias/no bias x 4 shapes; also with two more seeds each), torch 2.13.0 CPU, 2 threads:
#   out / final states 3.0e-7, dx / dstate0 5.9e-7, parameter grads 5.9e-7 (largest absolute error 5.7e-6, on
#   arrays of magnitude up to 27). Elementwise rtol=1e-4, atol=1e-5 would also pass, with less margin at that scale.
# Tolerance: 5e-6 of the scale, ~8x the worst measured.
F32_RTOL_OF_SCALE = 5e-6

SHAPES = [(1, 1, 1, 1), (5, 3, 4, 7), (7, 2, 13, 13), (20, 4, 8, 17)]
KINDS = {
    "lstm": (pylstm.LSTM, torch.nn.LSTM, {}),
    "gru": (pylstm.GRU, torch.nn.GRU, {}),
    "rnn-tanh": (pylstm.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn-relu": (pylstm.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
}
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def make_pair(kind, I, H, bias, dtype, seed):
    """(pylstm layer, torch module) with the torch module's random parameters loaded into the layer."""
    cls, torch_cls, kwargs = KINDS[kind]
    torch.manual_seed(seed)
    module = torch_cls(I, H, bias=bias, dtype=TORCH_DTYPES[dtype], **kwargs)
    layer = cls(I, H, bias=bias, dtype=dtype, **kwargs)
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    return layer, module


def assert_close(actual, expected, dtype, what):
    compare.assert_close(actual, expected, dtype, what, f64_tol=F64_TOL, f32_of_scale=F32_RTOL_OF_SCALE)


def run_both(kind, T, B, I, H, bias, dtype, seed=0):
    """Forward + backward of the same loss through both; -> (pylstm results, torch results), each a dict of numpy
    arrays with the same keys: out, state<k>, dx, dstate<k>, and the parameter names."""
    layer, module = make_pair(kind, I, H, bias, dtype, seed)
    rng = np.random.default_rng(seed)
    n_states = 2 if kind == "lstm" else 1

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = rand(T, B, I)
    states = [rand(1, B, H) for _ in range(n_states)]
    w_out = rand(T, B, H)
    w_states = [rand(1, B, H) for _ in range(n_states)]

    # pylstm
    state = tuple(states) if n_states == 2 else states[0]
    out, final = layer(x, state)
    dx, dstate0 = layer.backward(w_out, tuple(w_states) if n_states == 2 else w_states[0])
    finals = final if n_states == 2 else (final,)
    dstate0 = dstate0 if n_states == 2 else (dstate0,)
    ours = {"out": out, "dx": dx, **{f"state{k}": f for k, f in enumerate(finals)},
            **{f"dstate{k}": d for k, d in enumerate(dstate0)}, **layer.grads}

    # PyTorch
    tx = torch.tensor(x, requires_grad=True)
    tstates = [torch.tensor(s, requires_grad=True) for s in states]
    tout, tfinal = module(tx, tuple(tstates) if n_states == 2 else tstates[0])
    tfinals = tfinal if n_states == 2 else (tfinal,)
    loss = (tout * torch.tensor(w_out)).sum() + sum((f * torch.tensor(w)).sum() for f, w in zip(tfinals, w_states))
    loss.backward()
    theirs = {"out": tout, "dx": tx.grad, **{f"state{k}": f for k, f in enumerate(tfinals)},
              **{f"dstate{k}": s.grad for k, s in enumerate(tstates)},
              **{name: p.grad for name, p in module.named_parameters()}}
    theirs = {k: v.detach().numpy() for k, v in theirs.items()}
    return ours, theirs


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("T,B,I,H", SHAPES, ids=str)
def test_layer_matches_torch(kind, bias, dtype, T, B, I, H):
    ours, theirs = run_both(kind, T, B, I, H, bias, dtype, seed=T * 1000 + H)
    assert set(ours) == set(theirs)
    for name, expected in theirs.items():
        assert_close(ours[name], expected, dtype, name)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_state_dict_names_and_shapes_match_torch(kind, bias):
    """A fresh layer's state_dict has exactly torch's keys, in torch's order, with torch's shapes (so a torch
    state_dict loads into it and back)."""
    cls, torch_cls, kwargs = KINDS[kind]
    layer = cls(6, 9, bias=bias, **kwargs)
    module = torch_cls(6, 9, bias=bias, **kwargs)
    ours = {k: v.shape for k, v in layer.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert list(ours) == list(theirs) and ours == theirs
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), layer.params[k])


@pytest.mark.parametrize("kind", list(KINDS))
def test_init_range_matches_torch(kind):
    """Both initialise every parameter uniformly in [-1/sqrt(H), 1/sqrt(H)]: the same bound, nearly reached."""
    cls, torch_cls, kwargs = KINDS[kind]
    H = 16
    ours = np.concatenate([p.ravel() for p in cls(5, H, seed=0, **kwargs).params.values()])
    torch.manual_seed(0)
    theirs = np.concatenate([p.detach().numpy().ravel() for p in torch_cls(5, H, **kwargs).parameters()])
    for values in (ours, theirs):
        assert np.abs(values).max() <= 1 / np.sqrt(H)
        assert np.abs(values).max() > 0.95 / np.sqrt(H)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_eval_mode_matches_torch_no_grad(kind):
    """Eval-mode forward (no saved record) gives torch's outputs too."""
    layer, module = make_pair(kind, 4, 6, True, "float64", seed=3)
    x = np.random.default_rng(3).standard_normal((6, 2, 4))
    layer.eval()
    out, _ = layer(x)
    with torch.no_grad():
        tout, _ = module(torch.tensor(x))
    np.testing.assert_allclose(out, tout.numpy(), **F64_TOL)


def test_load_state_dict_names_the_key_of_a_torch_tensor_it_cannot_read():
    """torch's own state_dict() loads; parameters that require grad, or bfloat16 tensors, are a TypeError naming the
    key and the way out (torch's messages named none)."""
    module = torch.nn.LSTM(3, 4)
    layer = pylstm.LSTM(3, 4, seed=0)
    before = {k: v.copy() for k, v in layer.params.items()}
    for state in (dict(module.named_parameters()), {k: v.bfloat16() for k, v in module.state_dict().items()}):
        with pytest.raises(TypeError, match=r"state_dict\['weight_ih_l0'\]: .*\.detach\(\)\.float\(\)"):
            layer.load_state_dict(state)
        assert all((layer.params[k] == v).all() for k, v in before.items())
    layer.load_state_dict(module.state_dict())
    np.testing.assert_array_equal(layer.params["weight_hh_l0"], module.weight_hh_l0.detach().numpy())

"""The front door as torch users know it: constructor arguments positional in torch's order, unbatched inputs, the
warning for dropout with one layer, help() that explains every argument, and the command line's help in sentences.

Comparisons with torch itself skip when torch is not installed; the rest runs without it.
"""
import argparse
import inspect
import re
import warnings

import numpy as np
import pytest

import pylstm
from pylstm import __main__ as cli

LAYERS = (pylstm.LSTM, pylstm.GRU, pylstm.RNN)
STEP_CELLS = (pylstm.LSTMCell, pylstm.GRUCell, pylstm.RNNCell)
F64_TOL = dict(rtol=1e-10, atol=1e-12)

# torch's positional order of each class's arguments after input_size and hidden_size, with a non-default value each.
POSITIONAL = {
    pylstm.LSTM: [("num_layers", 2), ("bias", False), ("batch_first", True), ("dropout", 0.25),
                  ("bidirectional", True), ("proj_size", 3)],
    pylstm.GRU: [("num_layers", 2), ("bias", False), ("batch_first", True), ("dropout", 0.25),
                 ("bidirectional", True)],
    pylstm.RNN: [("num_layers", 2), ("nonlinearity", "relu"), ("bias", False), ("batch_first", True),
                 ("dropout", 0.25), ("bidirectional", True)],
    pylstm.LSTMCell: [("bias", False)],
    pylstm.GRUCell: [("bias", False)],
    pylstm.RNNCell: [("bias", False), ("nonlinearity", "relu")],
}
# pylstm's own options, keyword-only, with a value each.
KEYWORD_ONLY = {pylstm.LSTM: {"peepholes": True, "forget_bias": 1.0, "dtype": "float64", "seed": 1},
                pylstm.GRU: {"reset_after": False, "dtype": "float64", "seed": 1},
                pylstm.RNN: {"dtype": "float64", "seed": 1},
                pylstm.LSTMCell: {"dtype": "float64", "seed": 1},
                pylstm.GRUCell: {"reset_after": False, "dtype": "float64", "seed": 1},
                pylstm.RNNCell: {"dtype": "float64", "seed": 1}}
ids = lambda c: c.__name__  # noqa: E731


# ----------------------------------------------------------------------------------------------------------------------
# 1. Positional arguments in torch's order; pylstm's own options keyword-only.


@pytest.mark.parametrize("cls", list(POSITIONAL), ids=ids)
def test_positional_arguments_in_torchs_order(cls):
    """Every torch argument given positionally configures what the keyword does."""
    names, values = zip(*POSITIONAL[cls])
    positional = cls(4, 8, *values, seed=0)
    keywords = cls(4, 8, seed=0, **dict(zip(names, values)))
    assert positional.config() == keywords.config()
    for name, value in zip(names, values):
        assert positional.config()[name] == value, name


@pytest.mark.parametrize("cls", list(KEYWORD_ONLY), ids=ids)
def test_pylstms_own_options_are_keyword_only(cls):
    """One positional argument more than torch's is refused; pylstm's options work as keywords."""
    values = [value for _, value in POSITIONAL[cls]]
    extra = next(iter(KEYWORD_ONLY[cls].values()))
    with pytest.raises(TypeError):
        cls(4, 8, *values, extra)
    layer = cls(4, 8, **KEYWORD_ONLY[cls])
    for name, value in KEYWORD_ONLY[cls].items():
        assert layer.config()[name] == value, name


@pytest.mark.parametrize("cls", list(POSITIONAL), ids=ids)
def test_positional_arguments_mean_what_they_mean_in_torch(cls):
    """torch's class built with the same positional arguments has the same settings."""
    torch = pytest.importorskip("torch")
    names, values = zip(*POSITIONAL[cls])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch may warn of proj_size > hidden_size etc.
        module = getattr(torch.nn, cls.__name__)(4, 8, *values)
    for name, value in zip(names, values):
        theirs = getattr(module, name)
        if name == "bias" and not isinstance(theirs, bool):  # the step cells' bias attribute is a tensor or None
            theirs = theirs is not None
        assert theirs == value, name


# ----------------------------------------------------------------------------------------------------------------------
# 2. Unbatched input: (T, input_size) for the layers, (input_size,) for the step cells.


LAYER_CASES = [(pylstm.LSTM, {}), (pylstm.LSTM, {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
               (pylstm.GRU, {"num_layers": 2}), (pylstm.GRU, {"bidirectional": True, "batch_first": True}),
               (pylstm.RNN, {"nonlinearity": "relu", "bidirectional": True})]
layer_cases = pytest.mark.parametrize("cls,options", LAYER_CASES,
                                      ids=lambda v: v.__name__ if isinstance(v, type) else
                                      "-".join(f"{k}={w}" for k, w in v.items()) or "plain")


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _unbatched_run(layer, rng, T=5):
    """Forward and backward of an unbatched x with a random state and state gradient -> the arrays used and got."""
    D, L = layer.num_directions, layer.num_layers
    widths = (layer.output_size, layer.hidden_size)[:2 if isinstance(layer, pylstm.LSTM) else 1]
    x = rng.standard_normal((T, layer.input_size))
    state = tuple(rng.standard_normal((D * L, w)) for w in widths)
    dstate = tuple(rng.standard_normal((D * L, w)) for w in widths)
    one = (lambda parts: parts) if len(widths) == 2 else (lambda parts: parts[0])
    out, final = layer(x, one(state))
    dout = rng.standard_normal(out.shape)
    layer.zero_grad()
    dx, dstate0 = layer.backward(dout, one(dstate))
    return dict(x=x, state=state, dstate=dstate, dout=dout, out=out, final=_parts(final), dx=dx,
                dstate0=_parts(dstate0), grads={k: g.copy() for k, g in layer.grads.items()})


@layer_cases
def test_unbatched_layer_is_a_batch_of_one(cls, options):
    """Unbatched x (T, I) and states (D*L, W): out (T, D*H_out), states and dx without the batch axis, and the same
    numbers as the batch of one (bitwise: the same kernels)."""
    layer = cls(3, 4, dtype="float64", seed=0, **options)
    run = _unbatched_run(layer, np.random.default_rng(1))
    T, D = run["x"].shape[0], layer.num_directions
    assert run["out"].shape == (T, D * layer.output_size)
    assert run["dx"].shape == run["x"].shape
    for got, given in zip(run["final"] + run["dstate0"], run["state"] * 2):
        assert got.shape == given.shape
    batch_first = layer.batch_first
    add = (lambda a: a[None]) if batch_first else (lambda a: a[:, None])
    one = (lambda parts: parts) if len(run["state"]) == 2 else (lambda parts: parts[0])
    out, final = layer(add(run["x"]), one(tuple(s[:, None] for s in run["state"])))
    layer.zero_grad()
    dx, dstate0 = layer.backward(add(run["dout"]), one(tuple(s[:, None] for s in run["dstate"])))
    drop = (lambda a: a[0]) if batch_first else (lambda a: a[:, 0])
    np.testing.assert_array_equal(run["out"], drop(out))
    np.testing.assert_array_equal(run["dx"], drop(dx))
    for a, b in zip(run["final"] + run["dstate0"], _parts(final) + _parts(dstate0)):
        np.testing.assert_array_equal(a, b[:, 0])
    for name, g in layer.grads.items():
        np.testing.assert_array_equal(run["grads"][name], g, err_msg=name)


@layer_cases
def test_unbatched_layer_matches_torch(cls, options):
    """The same unbatched call in torch: out, final state, dx, initial-state gradients and parameter gradients."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = getattr(torch.nn, cls.__name__)(3, 4, dtype=torch.float64, **options)
    layer = cls(3, 4, dtype="float64", **options)
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    run = _unbatched_run(layer, np.random.default_rng(2))
    x = torch.tensor(run["x"], requires_grad=True)
    state = [torch.tensor(s, requires_grad=True) for s in run["state"]]
    out, final = module(x, tuple(state) if len(state) == 2 else state[0])
    loss = (out * torch.tensor(run["dout"])).sum() + sum(
        (f * torch.tensor(d)).sum() for f, d in zip(_parts(final), run["dstate"]))
    loss.backward()
    np.testing.assert_allclose(run["out"], out.detach().numpy(), **F64_TOL)
    np.testing.assert_allclose(run["dx"], x.grad.numpy(), **F64_TOL)
    for ours, theirs, s in zip(run["final"], _parts(final), state):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **F64_TOL)
    for ours, s in zip(run["dstate0"], state):
        np.testing.assert_allclose(ours, s.grad.numpy(), **F64_TOL)
    for name, p in module.named_parameters():
        np.testing.assert_allclose(run["grads"][name], p.grad.numpy(), err_msg=name, **F64_TOL)


@pytest.mark.parametrize("cls", STEP_CELLS, ids=ids)
def test_unbatched_step_matches_torch(cls):
    """A step of x (I,) with a state of (H,) parts: the state, then dx and the state's gradient, as torch's."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = getattr(torch.nn, cls.__name__)(3, 4, dtype=torch.float64)
    cell = cls(3, 4, dtype="float64")
    cell.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    rng = np.random.default_rng(3)
    n = 2 if cls is pylstm.LSTMCell else 1
    x, state, dstate = rng.standard_normal(3), [rng.standard_normal(4) for _ in range(n)], \
        [rng.standard_normal(4) for _ in range(n)]
    one = (lambda parts: tuple(parts)) if n == 2 else (lambda parts: parts[0])
    final = _parts(cell(x, one(state)))
    dx, dstart = cell.backward(one(dstate))
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in state]
    tfinal = _parts(module(tx, one(ts)))
    sum((f * torch.tensor(d)).sum() for f, d in zip(tfinal, dstate)).backward()
    for ours, theirs in zip(final, tfinal):
        assert ours.shape == (4,)
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **F64_TOL)
    assert dx.shape == (3,)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **F64_TOL)
    for ours, s in zip(_parts(dstart), ts):
        np.testing.assert_allclose(ours, s.grad.numpy(), **F64_TOL)
    for name, p in module.named_parameters():
        np.testing.assert_allclose(cell.grads[name], p.grad.numpy(), err_msg=name, **F64_TOL)


@pytest.mark.parametrize("cls", LAYERS, ids=ids)
def test_unbatched_layer_errors(cls):
    """lengths make no sense for one sequence; an unbatched state must have no batch axis; dout must be unbatched."""
    layer = cls(3, 4, dtype="float64", seed=0)
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="lengths"):
        layer(x, lengths=[5])
    h = np.zeros((1, 1, 4))
    with pytest.raises(ValueError, match="state") as info:
        layer(x, (h, h) if cls is pylstm.LSTM else h)
    assert "(1, 4)" in str(info.value) and "(1, 1, 4)" in str(info.value)
    with pytest.raises(ValueError, match="x") as info:
        layer(np.zeros((5, 2)))
    assert "(T, input_size)" in str(info.value)
    out, _ = layer(x)
    with pytest.raises(ValueError, match="dout"):
        layer.backward(out[:, None])
    dx, _ = layer.backward(out)  # the failed call kept the forward
    assert dx.shape == x.shape


@pytest.mark.parametrize("cls", STEP_CELLS, ids=ids)
def test_unbatched_step_errors(cls):
    cell = cls(3, 4, dtype="float64", seed=0)
    with pytest.raises(ValueError, match="x") as info:
        cell(np.zeros(2))
    assert "(input_size,)" in str(info.value)
    h = np.zeros((1, 4))
    with pytest.raises(ValueError, match="state"):
        cell(np.zeros(3), (h, h) if cls is pylstm.LSTMCell else h)
    state = _parts(cell(np.zeros(3)))
    with pytest.raises(ValueError, match="dstate"):
        cell.backward(tuple(s[None] for s in state) if len(state) == 2 else state[0][None])
    dx, _ = cell.backward(state if len(state) == 2 else state[0])  # the failed call kept the step
    assert dx.shape == (3,)


# ----------------------------------------------------------------------------------------------------------------------
# 3. dropout with one layer warns, as torch's does.


@pytest.mark.parametrize("cls", LAYERS, ids=ids)
def test_dropout_with_one_layer_warns(cls):
    with pytest.warns(UserWarning, match=r"dropout.*num_layers greater than 1.*dropout=0\.5.*num_layers=1"):
        cls(3, 4, 1, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(3, 4, 2, dropout=0.5)
        cls(3, 4, 1, dropout=0.0)


@pytest.mark.parametrize("cls", LAYERS, ids=ids)
def test_torch_warns_of_the_same(cls):
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        getattr(torch.nn, cls.__name__)(3, 4, 1, dropout=0.5)


# ----------------------------------------------------------------------------------------------------------------------
# 4. help(): every argument, params and grads, the call and backward, an example.


@pytest.mark.parametrize("cls", LAYERS + STEP_CELLS, ids=ids)
def test_help_explains_every_argument(cls):
    doc = inspect.getdoc(cls)
    for name in inspect.signature(cls).parameters:
        assert re.search(rf"``{name}``: \S", doc), name
    for word in ("``params``", "``grads``", "backward", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "Example"):
        assert word in doc, word


@pytest.mark.parametrize("cls", LAYERS + STEP_CELLS, ids=ids)
def test_help_example_runs(cls):
    """The example in the docstring runs as written."""
    doc = inspect.getdoc(cls)
    example = doc[doc.index("Example::"):].split("\n\n", 1)[1]
    code = "\n".join(line[4:] for line in example.splitlines())
    exec(compile(code, f"<{cls.__name__} example>", "exec"), {})


# ----------------------------------------------------------------------------------------------------------------------
# 5. The command line's help is in whole sentences.


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _helps(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield choice.dest, choice.help
        elif action.help is not argparse.SUPPRESS:
            yield action.dest, action.help


def test_cli_help_is_in_sentences():
    for parser in _parsers(cli.parser()):
        assert parser.description and parser.description.rstrip().endswith("."), parser.prog
        for dest, text in _helps(parser):
            assert text and text[0].isupper() and text.rstrip().endswith("."), (parser.prog, dest, text)

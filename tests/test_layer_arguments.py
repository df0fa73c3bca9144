"""Bad arguments to the layers (pylstm.LSTM, GRU, RNN) never crash and get a clear error that names the offending
argument: the constructors, the calls (x, state, lengths), backward (dout, dstate), and failed calls leaving no trace.
Every test asserts the exception type and that the message names the argument (and, where it says so, what was
expected and what came). The functional core's and the bindings' own checks are in test_core_arguments.py.
"""
import re

import numpy as np
import pytest

import pylstm

LAYERS = [pylstm.LSTM, pylstm.GRU, pylstm.RNN]
layers = pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)


def names(name):
    """A pytest.raises match for a message naming ``name`` as a word (so 'x' is not found inside 'max')."""
    return rf"(?<!\w){re.escape(name)}(?!\w)"


# ----------------------------------------------------------------------------------------------------------------------
# 1. Layer constructors.


@layers
@pytest.mark.parametrize("arg", ["input_size", "hidden_size"])
@pytest.mark.parametrize("value,exc", [
    (0, ValueError), (-3, ValueError), (2.0, TypeError), (2.5, TypeError), (True, TypeError), (False, TypeError),
    ("4", TypeError), (None, TypeError), (np.float64(3), TypeError),
], ids=["zero", "negative", "float-integral", "float", "True", "False", "str", "None", "np.float64"])
def test_constructor_rejects_bad_sizes(cls, arg, value, exc):
    kwargs = {"input_size": 3, "hidden_size": 4, arg: value}
    with pytest.raises(exc, match=names(arg)):
        cls(**kwargs)


@layers
def test_constructor_accepts_numpy_integers(cls):
    layer = cls(np.int64(3), np.int32(4))
    assert layer.input_size == 3 and layer.hidden_size == 4
    assert type(layer.input_size) is int and type(layer.hidden_size) is int


@layers
@pytest.mark.parametrize("dtype", ["float16", "int32", "banana", np.int64, "complex128", ">f4", None, [1], {"a": 1}],
                         ids=str)
def test_constructor_rejects_bad_dtype(cls, dtype):
    """Only float32 and float64; None is refused too (np.dtype(None) would silently mean float64)."""
    with pytest.raises(ValueError, match=names("dtype")):
        cls(3, 4, dtype=dtype)


@layers
@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_constructor_rejects_non_bool_bias(cls, value):
    with pytest.raises(TypeError, match=names("bias")):
        cls(3, 4, bias=value)


@pytest.mark.parametrize("value", [1, 0, "True", None])
def test_gru_rejects_non_bool_reset_after(value):
    with pytest.raises(TypeError, match=names("reset_after")):
        pylstm.GRU(3, 4, reset_after=value)


@pytest.mark.parametrize("value", ["sigmoid", "Tanh", "", None, 1])
def test_rnn_rejects_bad_nonlinearity(value):
    with pytest.raises(ValueError, match=names("nonlinearity")):
        pylstm.RNN(3, 4, nonlinearity=value)


def test_numpy_bool_is_accepted_as_bool():
    assert pylstm.LSTM(3, 4, bias=np.bool_(False)).bias is False
    assert pylstm.GRU(3, 4, reset_after=np.bool_(False)).reset_after is False


# ----------------------------------------------------------------------------------------------------------------------
# 2. Layer calls.


def _layer(cls, dtype="float32", I=3, H=4):
    return cls(I, H, dtype=dtype, seed=0)


def _state(cls, batch, dtype="float32", H=4, value=0.1):
    h = np.full((1, batch, H), value, dtype)
    return (h, h.copy()) if cls is pylstm.LSTM else h


@layers
@pytest.mark.parametrize("shape", [(2, 4), (3,), (), (1, 2, 3, 3), (2, 2, 4), (2, 2, 2)], ids=str)
def test_call_rejects_wrong_x_shape(cls, shape):
    with pytest.raises(ValueError, match=names("x")) as info:
        _layer(cls)(np.zeros(shape, np.float32))
    assert str(shape) in str(info.value)


@layers
@pytest.mark.parametrize("layer_dtype,x_dtype", [("float32", np.float64), ("float64", np.float32),
                                                  ("float32", np.int32), ("float32", np.float16),
                                                  ("float32", np.dtype(">f4"))], ids=str)
def test_call_rejects_wrong_x_dtype_without_converting(cls, layer_dtype, x_dtype):
    """An ndarray of another dtype is an error naming x and both dtypes, not a silent conversion."""
    layer = _layer(cls, layer_dtype)
    x = np.zeros((2, 2, 3), x_dtype)
    with pytest.raises(TypeError, match=names("x")) as info:
        layer(x)
    assert layer.dtype.name in str(info.value) and str(x.dtype) in str(info.value)


@layers
@pytest.mark.parametrize("view", ["every_other_batch_row", "transpose", "fortran", "reversed_time"])
def test_call_accepts_non_contiguous_x(cls, view):
    """A strided x gives exactly the result of its contiguous copy, forward and backward (also non-contiguous dout)."""
    rng = np.random.default_rng(1)
    base = rng.standard_normal((4, 6, 3)).astype(np.float32)
    x = {"every_other_batch_row": base[:, ::2],
         "transpose": np.ascontiguousarray(base.transpose(1, 0, 2)).transpose(1, 0, 2),
         "fortran": np.asfortranarray(base),
         "reversed_time": base[::-1]}[view]
    assert not x.flags.c_contiguous
    dout_base = rng.standard_normal((x.shape[0], 2 * x.shape[1], 4)).astype(np.float32)
    dout = dout_base[:, ::2]
    layer, twin = _layer(cls), _layer(cls)
    out, final = layer(x)
    out_c, final_c = twin(np.ascontiguousarray(x))
    np.testing.assert_array_equal(out, out_c)
    dx, d0 = layer.backward(dout)
    dx_c, d0_c = twin.backward(np.ascontiguousarray(dout))
    np.testing.assert_array_equal(dx, dx_c)
    for name in layer.grads:
        np.testing.assert_array_equal(layer.grads[name], twin.grads[name])


@layers
def test_call_converts_a_list(cls):
    """An array-like that is not an ndarray (a nested list) is converted to the layer's dtype."""
    x = np.random.default_rng(2).standard_normal((3, 2, 3))
    layer = _layer(cls, "float64")
    out_list, _ = layer(x.tolist())
    out_array, _ = layer(x)
    np.testing.assert_array_equal(out_list, out_array)
    assert out_list.dtype == np.float64


@layers
@pytest.mark.parametrize("x", [[["a", "b", "c"]], [[[1, 2, 3], [1, 2]]], object()], ids=["strings", "ragged", "obj"])
def test_call_rejects_unconvertible_x(cls, x):
    with pytest.raises(TypeError, match=names("x")):
        _layer(cls)(x)


@layers
def test_call_rejects_wrong_state_batch(cls):
    layer = _layer(cls)
    x = np.zeros((2, 3, 3), np.float32)
    state = _state(cls, 2)
    with pytest.raises(ValueError, match=names("state")):
        layer(x, state)


@layers
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (1, 3, 5), (1, 1, 3, 4)], ids=str)
def test_call_rejects_wrong_state_shape(cls, shape):
    layer = _layer(cls)
    x = np.zeros((2, 3, 3), np.float32)
    bad = np.zeros(shape, np.float32)
    good = np.zeros((1, 3, 4), np.float32)
    if cls is pylstm.LSTM:
        with pytest.raises(ValueError, match=re.escape("state[0]")):
            layer(x, (bad, good))
        with pytest.raises(ValueError, match=re.escape("state[1]")):
            layer(x, (good, bad))
    else:
        with pytest.raises(ValueError, match=names("state")):
            layer(x, bad)


@layers
def test_call_rejects_wrong_state_dtype(cls):
    layer = _layer(cls)
    with pytest.raises(TypeError, match="state") as info:
        layer(np.zeros((2, 3, 3), np.float32), _state(cls, 3, dtype="float64"))
    assert "float32" in str(info.value) and "float64" in str(info.value)


@pytest.mark.parametrize("state", ["h only", "triple", "array", "dict"])
def test_lstm_state_must_be_a_pair(state):
    layer = _layer(pylstm.LSTM)
    h = np.zeros((1, 3, 4), np.float32)
    value = {"h only": h, "triple": (h, h, h), "array": np.stack([h, h]), "dict": {"h": h, "c": h}}[state]
    with pytest.raises(TypeError, match=names("state")):
        layer(np.zeros((2, 3, 3), np.float32), value)


@layers
def test_backward_rejects_wrong_dout(cls):
    layer = _layer(cls)
    out, _ = layer(np.zeros((2, 3, 3), np.float32))
    for shape in [(2, 3, 5), (3, 3, 4), (2, 2, 4), (2, 3), (1, 2, 3, 4)]:
        with pytest.raises(ValueError, match=names("dout")) as info:
            layer.backward(np.zeros(shape, np.float32))
        assert str(shape) in str(info.value) and str(out.shape) in str(info.value)
    with pytest.raises(TypeError, match=names("dout")) as info:
        layer.backward(np.zeros(out.shape, np.float64))
    assert "float32" in str(info.value) and "float64" in str(info.value)
    assert all(not g.any() for g in layer.grads.values())


@layers
def test_backward_rejects_wrong_dstate(cls):
    layer = _layer(cls)
    out, _ = layer(np.zeros((2, 3, 3), np.float32))
    bad = np.zeros((1, 2, 4), np.float32)
    good = np.zeros((1, 3, 4), np.float32)
    if cls is pylstm.LSTM:
        with pytest.raises(ValueError, match=re.escape("dstate[0]")):
            layer.backward(np.zeros_like(out), (bad, good))
        with pytest.raises(ValueError, match=re.escape("dstate[1]")):
            layer.backward(np.zeros_like(out), (good, bad))
        with pytest.raises(TypeError, match=names("dstate")):
            layer.backward(np.zeros_like(out), good)
        with pytest.raises(TypeError, match=re.escape("dstate[0]")):
            layer.backward(np.zeros_like(out), (good.astype(np.float64), good))
    else:
        with pytest.raises(ValueError, match=names("dstate")):
            layer.backward(np.zeros_like(out), bad)
        with pytest.raises(TypeError, match=names("dstate")):
            layer.backward(np.zeros_like(out), good.astype(np.float64))
    assert all(not g.any() for g in layer.grads.values())


# ----------------------------------------------------------------------------------------------------------------------
# 5. The stacked / bidirectional / packed layer API: constructor options, batch_first, (D*L, B, H) states, LSTM
#    projection, lengths, backward, and failed calls leaving no trace.


def _says_expected_and_got(message, value):
    """The message says what was expected and what came (the value itself, or its type's name)."""
    assert "expected" in message, message
    assert "got" in message and (str(value) in message or type(value).__name__ in message), message


@layers
@pytest.mark.parametrize("value,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError),
                                       (2.0, TypeError), ("2", TypeError), (None, TypeError)],
                         ids=["zero", "negative", "float", "True", "float-integral", "str", "None"])
def test_constructor_rejects_bad_num_layers(cls, value, exc):
    with pytest.raises(exc, match=names("num_layers")) as info:
        cls(3, 4, num_layers=value)
    _says_expected_and_got(str(info.value), value)


@layers
@pytest.mark.parametrize("value,exc", [(-0.1, ValueError), (1.5, ValueError), ("a", TypeError), (np.nan, ValueError),
                                       (np.inf, ValueError), (True, TypeError), (10 ** 400, ValueError)],
                         ids=["negative", "above-one", "str", "nan", "inf", "True", "int-beyond-float"])
def test_constructor_rejects_bad_dropout(cls, value, exc):
    with pytest.raises(exc, match=names("dropout")) as info:
        cls(3, 4, num_layers=2, dropout=value)
    _says_expected_and_got(str(info.value), value)


@layers
def test_constructor_rejects_none_dropout_as_type_error(cls):
    with pytest.raises(Exception, match=names("dropout")) as info:
        cls(3, 4, dropout=None)
    assert info.type is TypeError, info.type


@layers
def test_constructor_accepts_dropout_bounds(cls):
    assert cls(3, 4, num_layers=2, dropout=0).dropout == 0.0
    assert cls(3, 4, num_layers=2, dropout=1.0).dropout == 1.0
    assert cls(3, 4, num_layers=2, dropout=np.float32(0.5)).dropout == 0.5


BOOL_ARGS = [(cls, arg) for cls in LAYERS for arg in ("batch_first", "bidirectional")] + [(pylstm.LSTM, "peepholes")]


@pytest.mark.parametrize("cls,arg", BOOL_ARGS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0, np.int64(1)], ids=repr)
def test_constructor_rejects_non_bool_flags(cls, arg, value):
    with pytest.raises(TypeError, match=names(arg)) as info:
        cls(3, 4, **{arg: value})
    _says_expected_and_got(str(info.value), value)
    assert "bool" in str(info.value)


@pytest.mark.parametrize("cls,arg", BOOL_ARGS, ids=lambda v: getattr(v, "__name__", v))
def test_constructor_accepts_numpy_bool_flags(cls, arg):
    assert getattr(cls(3, 4, **{arg: np.bool_(True)}), arg) is True


@pytest.mark.parametrize("value,exc", [(-1, ValueError), (2.0, TypeError), (True, TypeError), ("2", TypeError),
                                       (None, TypeError)], ids=["negative", "float", "True", "str", "None"])
def test_lstm_rejects_bad_proj_size(value, exc):
    with pytest.raises(exc, match=names("proj_size")) as info:
        pylstm.LSTM(3, 4, proj_size=value)
    _says_expected_and_got(str(info.value), value)


@pytest.mark.parametrize("cls", [pylstm.GRU, pylstm.RNN], ids=lambda c: c.__name__)
@pytest.mark.parametrize("arg,value", [("proj_size", 2), ("peepholes", True), ("forget_bias", 1.0)])
def test_lstm_only_options_are_refused_by_gru_and_rnn(cls, arg, value):
    with pytest.raises(TypeError, match=names(arg)):
        cls(3, 4, **{arg: value})


@pytest.mark.parametrize("value,exc", [("x", TypeError), (np.inf, ValueError), (-np.inf, ValueError),
                                       (np.nan, ValueError), (True, TypeError), ([1.0], TypeError),
                                       (-10 ** 400, ValueError)],
                         ids=["str", "inf", "-inf", "nan", "True", "list", "int-beyond-float"])
def test_lstm_rejects_bad_forget_bias(value, exc):
    with pytest.raises(exc, match=names("forget_bias")) as info:
        pylstm.LSTM(3, 4, forget_bias=value)
    _says_expected_and_got(str(info.value), value)


def test_lstm_forget_bias_needs_bias():
    with pytest.raises(ValueError, match=names("forget_bias")) as info:
        pylstm.LSTM(3, 4, bias=False, forget_bias=1.0)
    assert "bias=True" in str(info.value) and "bias=False" in str(info.value)
    assert pylstm.LSTM(3, 4, bias=False, forget_bias=None).forget_bias is None


@layers
@pytest.mark.parametrize("value", [1.5, "s", True, 2.0, [1]], ids=["float", "str", "True", "float-int", "list"])
def test_constructor_rejects_non_int_seed(cls, value):
    with pytest.raises(TypeError, match=names("seed")) as info:
        cls(3, 4, seed=value)
    _says_expected_and_got(str(info.value), value)


@layers
def test_constructor_rejects_negative_seed_as_value_error(cls):
    """A negative int is a ValueError, as for every other argument and for numpy.random.default_rng(-1)."""
    with pytest.raises((TypeError, ValueError), match=names("seed")) as info:
        cls(3, 4, seed=-1)
    _says_expected_and_got(str(info.value), -1)
    assert info.type is ValueError, info.type


# -- calls ------------------------------------------------------------------------------------------------------------

def _big(cls, **kwargs):
    """A two-layer bidirectional layer (D*L = 4), input_size 3, hidden_size 4."""
    return cls(3, 4, num_layers=2, bidirectional=True, seed=0, **kwargs)


@layers
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("shape", [(2, 5), (2, 5, 4), (2, 5, 3, 1), (5,)], ids=str)
def test_call_x_error_shows_the_layout(cls, batch_first, shape):
    """Wrong rank or input size: the message shows the axis order of this layer, (B, T, .) with batch_first."""
    layer = _big(cls, batch_first=batch_first)
    with pytest.raises(ValueError, match=names("x")) as info:
        layer(np.zeros(shape, np.float32))
    message = str(info.value)
    assert str(shape) in message
    assert ("(B, T, input_size)" if batch_first else "(T, B, input_size)") in message
    assert ("(T, B, input_size)" if batch_first else "(B, T, input_size)") not in message
    assert "3" in message  # the expected input_size


@layers
def test_call_batch_first_reads_the_batch_from_axis_0(cls):
    """With batch_first, x (B=2, T=5, I): a state for batch 5 is refused (expected batch 2), batch 2 works."""
    layer = _big(cls, batch_first=True)
    x = np.zeros((2, 5, 3), np.float32)

    def state(batch):
        h = np.zeros((4, batch, 4), np.float32)
        return (h, h.copy()) if cls is pylstm.LSTM else h

    label = "state[0]" if cls is pylstm.LSTM else "state"
    with pytest.raises(ValueError, match=re.escape(label)) as info:
        layer(x, state(5))
    assert "(4, 2, 4)" in str(info.value) and "(4, 5, 4)" in str(info.value)
    out, _ = layer(x, state(2))
    assert out.shape == (2, 5, 8)


@layers
@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 3, 4), (4, 2, 4), (4, 3, 5), (4, 3), (4, 3, 4, 1), (3, 4, 4)],
                         ids=str)
def test_call_rejects_wrong_stacked_state_shape(cls, shape):
    """num_layers=2, bidirectional: the state is (D*L=4, B=3, H=4); anything else is named, with both shapes."""
    layer = _big(cls)
    x = np.zeros((2, 3, 3), np.float32)
    bad, good = np.zeros(shape, np.float32), np.zeros((4, 3, 4), np.float32)
    cases = [((bad, good), "state[0]"), ((good, bad), "state[1]")] if cls is pylstm.LSTM else [(bad, "state")]
    for state, label in cases:
        with pytest.raises(ValueError, match=re.escape(label) + r"(?!\w)") as info:
            layer(x, state)
        assert "(4, 3, 4)" in str(info.value) and str(shape) in str(info.value), str(info.value)
    layer(x, (good, good) if cls is pylstm.LSTM else good)  # the right shape works


def test_lstm_projection_state_widths():
    """With proj_size, h is (D*L, B, proj_size) and c (D*L, B, hidden_size): c at the projected width is refused
    naming state[1], h at the hidden width naming state[0], and the pair swapped is refused."""
    layer = pylstm.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=2, seed=0)
    x = np.zeros((2, 3, 3), np.float32)
    h, c = np.zeros((4, 3, 2), np.float32), np.zeros((4, 3, 6), np.float32)
    out, (h_n, c_n) = layer(x, (h, c))
    assert out.shape == (2, 3, 4) and h_n.shape == (4, 3, 2) and c_n.shape == (4, 3, 6)
    with pytest.raises(ValueError, match=re.escape("state[1]")) as info:
        layer(x, (h, np.zeros((4, 3, 2), np.float32)))
    assert "(4, 3, 6)" in str(info.value) and "(4, 3, 2)" in str(info.value) and "hidden_size" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("state[0]")) as info:
        layer(x, (np.zeros((4, 3, 6), np.float32), c))
    assert "(4, 3, 2)" in str(info.value) and "(4, 3, 6)" in str(info.value) and "proj_size" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("state[0]")):
        layer(x, (c, h))
    # The same widths apply to dstate in backward.
    layer(x, (h, c))
    with pytest.raises(ValueError, match=re.escape("dstate[1]")):
        layer.backward(np.zeros_like(out), (None, np.zeros((4, 3, 2), np.float32)))
    with pytest.raises(ValueError, match=re.escape("dstate[0]")):
        layer.backward(np.zeros_like(out), (np.zeros((4, 3, 6), np.float32), None))
    layer.backward(np.zeros_like(out), (np.zeros((4, 3, 2), np.float32), np.zeros((4, 3, 6), np.float32)))


@layers
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,exc", [
    ([2.0, 1.0, 2.0], TypeError), (np.array([2.0, 1.0, 2.0]), TypeError), (np.array([True, True, False]), TypeError),
    ([True, False, True], TypeError), (["2", "1", "2"], TypeError), ([1, None, 2], TypeError),
    ([2, 1], ValueError), ([2, 1, 2, 1], ValueError), (np.zeros(0, np.int64), ValueError), (2, ValueError), ([[2, 1, 2]], ValueError),
    ([2, -1, 2], ValueError), ([2, 3, 1], ValueError), (np.array([2, 1, 2**40], np.uint64), ValueError),
], ids=["floats", "float-array", "bool-array", "bool-list", "strings", "None-inside", "too-few", "too-many", "empty",
        "scalar", "2-d", "negative", "above-T", "uint64-huge"])
def test_call_rejects_bad_lengths(cls, batch_first, lengths, exc):
    """B = 3 sequences of T = 2 steps (x (2, 3, I), or (3, 2, I) with batch_first: B and T read from the right
    axes)."""
    layer = _big(cls, batch_first=batch_first)
    x = np.zeros((3, 2, 3) if batch_first else (2, 3, 3), np.float32)
    with pytest.raises(exc, match=names("lengths")) as info:
        layer(x, lengths=lengths)
    message = str(info.value)
    assert "expected" in message and "got" in message
    if exc is ValueError and np.ndim(lengths) == 1 and len(lengths) == 3:
        assert "[0, 2]" in message  # the allowed range, T = 2
    elif exc is ValueError:
        assert "(3,)" in message  # one length per sequence, B = 3
    layer(x, lengths=[2, 0, 1])  # valid lengths still work


@layers
def test_call_rejects_ragged_lengths_naming_them(cls):
    layer = _big(cls)
    with pytest.raises((TypeError, ValueError)) as info:
        layer(np.zeros((2, 3, 3), np.float32), lengths=[[1, 2], [3]])
    assert re.search(names("lengths"), str(info.value)), str(info.value)


@layers
def test_call_accepts_empty_lengths_for_an_empty_batch(cls):
    layer = _big(cls)
    x = np.zeros((2, 0, 3), np.float32)
    out, _ = layer(x, lengths=np.zeros(0, np.int64))
    assert out.shape == (2, 0, 8)
    out, _ = layer(x, lengths=[])
    assert out.shape == (2, 0, 8)


# -- backward ---------------------------------------------------------------------------------------------------------

@layers
def test_backward_dout_is_checked_against_the_batch_first_shape(cls):
    """After a batch_first forward, dout must be (B, T, D*H_out): the time-first shape is refused, showing both."""
    layer = _big(cls, batch_first=True)
    out, _ = layer(np.zeros((2, 5, 3), np.float32))
    assert out.shape == (2, 5, 8)
    for shape in [(5, 2, 8), (2, 5, 4), (2, 5, 9), (2, 5), (1, 2, 5, 8)]:
        with pytest.raises(ValueError, match=names("dout")) as info:
            layer.backward(np.zeros(shape, np.float32))
        assert "(2, 5, 8)" in str(info.value) and str(shape) in str(info.value)
    assert all(not g.any() for g in layer.grads.values())
    dx, _ = layer.backward(np.ones((2, 5, 8), np.float32))
    assert dx.shape == (2, 5, 3)


@layers
@pytest.mark.parametrize("shape", [(2, 5, 4), (4, 2, 4), (4, 5, 5), (5, 4)], ids=str)
def test_backward_rejects_wrong_stacked_dstate(cls, shape):
    """dstate is (D*L=4, B, H) in the batch order of x, also after a batch_first forward (B = 5 here)."""
    layer = _big(cls, batch_first=True)
    out, _ = layer(np.zeros((5, 2, 3), np.float32))
    bad, good = np.zeros(shape, np.float32), np.zeros((4, 5, 4), np.float32)
    cases = ([((bad, None), "dstate[0]"), ((None, bad), "dstate[1]"), ((good, bad), "dstate[1]")]
             if cls is pylstm.LSTM else [(bad, "dstate")])
    for dstate, label in cases:
        with pytest.raises(ValueError, match=re.escape(label) + r"(?!\w)") as info:
            layer.backward(np.zeros_like(out), dstate)
        assert "(4, 5, 4)" in str(info.value) and str(shape) in str(info.value)
    assert all(not g.any() for g in layer.grads.values())


@layers
@pytest.mark.parametrize("how", ["no forward", "eval forward", "eval() after forward", "eval() then train()"])
def test_backward_needs_a_training_forward(cls, how):
    layer = _big(cls)
    x = np.zeros((2, 3, 3), np.float32)
    dout = np.zeros((2, 3, 8), np.float32)
    if how == "eval forward":
        layer.eval()
        layer(x)
    elif how == "eval() after forward":
        layer(x)
        layer.eval()
    elif how == "eval() then train()":
        layer(x)
        layer.eval().train()
    with pytest.raises(RuntimeError, match=names("backward")) as info:
        layer.backward(dout)
    assert ("eval mode" in str(info.value)) == (not layer.training)
    assert all(not g.any() for g in layer.grads.values())


# -- failed calls leave no trace --------------------------------------------------------------------------------------

def _bad_calls(cls, x):
    """Calls that must fail on argument checks: bad lengths (several ways), bad state, bad x."""
    B = x.shape[1]
    h = np.zeros((4, B, 4), np.float32)
    bad_state = np.zeros((2, B, 4), np.float32)
    return [dict(x=x, lengths=[9] * B), dict(x=x, lengths=[1.0] * B), dict(x=x, lengths=[1] * (B + 1)),
            dict(x=x, lengths=[-1] * B),
            dict(x=x, state=(bad_state, h) if cls is pylstm.LSTM else bad_state),
            dict(x=x[..., :2]), dict(x=x.astype(np.float64))]


@layers
def test_failed_forward_keeps_the_previous_forward_for_backward(cls):
    """Every check in __call__ runs before ``_saved`` is replaced (and before a dropout mask is drawn), so a call that
    fails on its arguments leaves the last training forward in place: backward after it gives exactly what it gives
    without the failed calls, and later forwards draw the same dropout masks."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3, 3)).astype(np.float32)
    lengths = np.array([4, 1, 3])
    layer, twin = _big(cls, dropout=0.5), _big(cls, dropout=0.5)
    out, _ = layer(x, lengths=lengths)
    out_twin, _ = twin(x, lengths=lengths)
    np.testing.assert_array_equal(out, out_twin)
    for kwargs in _bad_calls(cls, rng.standard_normal((2, 3, 3)).astype(np.float32)):
        with pytest.raises((TypeError, ValueError)):
            layer(**kwargs)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, d0 = layer.backward(dout)
    dx_twin, d0_twin = twin.backward(dout)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx, dx_twin)
    for a, b in zip(d0 if isinstance(d0, tuple) else (d0,), d0_twin if isinstance(d0_twin, tuple) else (d0_twin,)):
        np.testing.assert_array_equal(a, b)
    for name in layer.grads:
        np.testing.assert_array_equal(layer.grads[name], twin.grads[name])
    # The dropout stream was not advanced by the failed calls.
    again, _ = layer(x)
    again_twin, _ = twin(x)
    np.testing.assert_array_equal(again, again_twin)


@layers
def test_failed_backward_keeps_the_forward(cls):
    """A backward refused on dout or dstate adds nothing to grads and leaves the forward for a correct backward."""
    layer, twin = _big(cls, batch_first=True), _big(cls, batch_first=True)
    x = np.random.default_rng(8).standard_normal((3, 2, 3)).astype(np.float32)
    out, _ = layer(x)
    twin(x)
    bad_dstate = np.zeros((4, 2, 4), np.float32)
    for args in [(np.zeros((2, 3, 8), np.float32),), (np.zeros((3, 2, 8), np.float64),),
                 (np.ones_like(out), (bad_dstate, None) if cls is pylstm.LSTM else bad_dstate)]:
        with pytest.raises((TypeError, ValueError)):
            layer.backward(*args)
    assert all(not g.any() for g in layer.grads.values())
    dx, _ = layer.backward(np.ones_like(out))
    dx_twin, _ = twin.backward(np.ones_like(out))
    np.testing.assert_array_equal(dx, dx_twin)
    for name in layer.grads:
        np.testing.assert_array_equal(layer.grads[name], twin.grads[name])


def test_forget_bias_with_a_non_bool_bias_names_bias():
    """The type of bias is checked before forget_bias's need for it."""
    with pytest.raises(TypeError, match=names("bias")):
        pylstm.LSTM(3, 4, bias=0, forget_bias=1.0)

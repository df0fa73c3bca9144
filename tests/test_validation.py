"""Bad input never crashes and gets a clear error that names the offending argument.

Three levels are checked: the layer constructors and calls (pylstm.LSTM, GRU, RNN), the functional core
(pylstm.functional), and the compiled bindings themselves (pylstm._core), which must check every argument on their
own since anything they let through reaches C++ as a raw pointer. Every test asserts the exception type and that the
message names the argument (and, where it says so, what was expected and what came).
"""
import re

import numpy as np
import pytest

import pylstm
from pylstm import _core
from pylstm import functional as F
from pylstm import reference as ref
from pylstm.saved import GRUSaved, LSTMSaved, RNNSaved

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
@pytest.mark.parametrize("shape", [(2, 3), (3,), (), (1, 2, 3, 3), (2, 2, 4), (2, 2, 2)], ids=str)
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
# 3. The functional core and the bindings.
#
# Each case is a valid keyword-argument set for one _core function (computed from a real forward); the tests replace
# one argument with a bad value and expect an error naming it.

T_, B_, I_, H_ = 3, 2, 4, 5
FAMILIES = {"lstm": 4, "gru": 3, "rnn": 1}
CORE_FUNCTIONS = [f"{family}_{direction}" for family in FAMILIES for direction in ("forward", "backward")]


def core_kwargs(function, dtype=np.float64, bias=True, reset_after=True, nonlinearity="tanh", seed=0):
    """A valid keyword-argument dict for pylstm._core.<function>."""
    family, direction = function.split("_")
    G = FAMILIES[family]
    rng = np.random.default_rng(seed)

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, h0, c0 = rand(T_, B_, I_), rand(B_, H_), rand(B_, H_)
    w = dict(weight_ih=rand(G * H_, I_), weight_hh=rand(G * H_, H_),
             bias_ih=rand(G * H_) if bias else None, bias_hh=rand(G * H_) if bias else None)
    # The layout and LSTM extras are None here (their own checks are in test_kernel_sequences.py).
    lstm_extras = dict(weight_hr=None, p_i=None, p_f=None, p_o=None)
    if family == "lstm":
        forward = dict(x=x, h0=h0, c0=c0, **w, **lstm_extras, batch_sizes=None, training=True)
    elif family == "gru":
        forward = dict(x=x, h0=h0, **w, reset_after=reset_after, batch_sizes=None, training=True)
    else:
        forward = dict(x=x, h0=h0, **w, nonlinearity=nonlinearity, batch_sizes=None)
    if direction == "forward":
        return forward
    outputs = getattr(_core, f"{family}_forward")(**forward)
    out = outputs[0]
    grads = dict(dweight_ih=np.zeros_like(w["weight_ih"]), dweight_hh=np.zeros_like(w["weight_hh"]),
                 dbias_ih=np.zeros(G * H_, dtype) if bias else None, dbias_hh=np.zeros(G * H_, dtype) if bias else None)
    common = dict(x=x, h0=h0, weight_ih=w["weight_ih"], weight_hh=w["weight_hh"], batch_sizes=None, out=out)
    if family == "lstm":
        return dict(common, c0=c0, **lstm_extras, gates=outputs[3], cells=outputs[4], dout=rand(T_, B_, H_),
                    dh_n=rand(B_, H_), dc_n=rand(B_, H_), **grads, dweight_hr=None, dp_i=None, dp_f=None, dp_o=None)
    if family == "gru":
        return dict(common, gates=outputs[2], reset_after=reset_after, dout=rand(T_, B_, H_), dh_n=rand(B_, H_),
                    **grads)
    return dict(common, nonlinearity=nonlinearity, dout=rand(T_, B_, H_), dh_n=rand(B_, H_), **grads)


def array_args(function):
    return [k for k, v in core_kwargs(function).items() if isinstance(v, np.ndarray)]


def call(function, kwargs):
    return getattr(_core, function)(**kwargs)


# (function, argument) for every array argument of every binding.
ARRAY_ARGS = [(f, a) for f in CORE_FUNCTIONS for a in array_args(f)]
REQUIRED_ARRAY_ARGS = [(f, a) for f, a in ARRAY_ARGS if a not in ("bias_ih", "bias_hh", "dh_n", "dc_n", "dbias_ih",
                                                                  "dbias_hh")]
every_array_arg = pytest.mark.parametrize("function,arg", ARRAY_ARGS, ids=lambda v: v)
# Arguments whose size defines T, B or I for the later ones: changing that axis moves the error to a later argument.
DEFINING_AXES = {"x": (0, 1), "weight_ih": (1,)}


@pytest.mark.parametrize("function", CORE_FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_valid_core_calls_succeed(function, dtype, bias):
    """The baseline every bad-argument test below mutates is itself accepted."""
    call(function, core_kwargs(function, dtype, bias=bias))


@every_array_arg
@pytest.mark.parametrize("dtypes", [(np.float64, np.float32), (np.float32, np.float64)], ids=["f64<-f32", "f32<-f64"])
def test_core_rejects_mixed_float_dtypes(function, arg, dtypes):
    """One argument of the other float dtype: TypeError naming it and both dtypes. (When weight_hh is the odd one,
    it sets the dtype, so the message is about weight_ih, saying it differs from 'the dtype of weight_hh'.)"""
    call_dtype, bad_dtype = dtypes
    kwargs = core_kwargs(function, call_dtype)
    kwargs[arg] = kwargs[arg].astype(bad_dtype)
    with pytest.raises(TypeError, match=names(arg)) as info:
        call(function, kwargs)
    message = str(info.value)
    assert "float32" in message and "float64" in message, message


@every_array_arg
@pytest.mark.parametrize("bad_dtype", [np.int64, np.int32, np.float16, np.complex128, bool, np.dtype(">f8")],
                         ids=str)
def test_core_rejects_non_float_dtypes(function, arg, bad_dtype):
    kwargs = core_kwargs(function)
    kwargs[arg] = kwargs[arg].astype(bad_dtype)
    with pytest.raises(TypeError, match=names(arg)) as info:
        call(function, kwargs)
    assert str(np.dtype(bad_dtype)) in str(info.value)


@pytest.mark.parametrize("function", CORE_FUNCTIONS)
def test_core_accepts_equivalent_dtype_objects(function):
    """A float64 dtype that is equal to, but not the same object as, numpy's canonical one (here: with metadata) is
    accepted, and gives the same results."""
    kwargs = core_kwargs(function)
    twin = core_kwargs(function)
    dt = np.dtype(np.float64, metadata={"unit": "none"})
    for k, v in twin.items():
        if isinstance(v, np.ndarray):
            twin[k] = v.astype(dt)
    for a, b in zip(call(function, kwargs), call(function, twin)):
        if a is not None:
            np.testing.assert_array_equal(a, b)


@every_array_arg
@pytest.mark.parametrize("bad", ["list", "scalar", "tuple"])
def test_core_rejects_non_arrays(function, arg, bad):
    """A list, tuple or scalar is a TypeError naming the argument: the bindings never convert."""
    kwargs = core_kwargs(function)
    kwargs[arg] = {"list": kwargs[arg].tolist(), "tuple": tuple(kwargs[arg].tolist()), "scalar": 1.0}[bad]
    with pytest.raises(TypeError, match=names(arg)) as info:
        call(function, kwargs)
    assert "numpy.ndarray" in str(info.value)


@pytest.mark.parametrize("function,arg", REQUIRED_ARRAY_ARGS, ids=lambda v: v)
def test_core_rejects_none_for_required_arrays(function, arg):
    kwargs = core_kwargs(function)
    kwargs[arg] = None
    with pytest.raises(TypeError, match=names(arg)) as info:
        call(function, kwargs)
    assert "NoneType" in str(info.value)


def _non_contiguous(a, how):
    """The same values as a, as a non-C-contiguous view."""
    if how == "strided":
        doubled = np.repeat(a, 2, axis=-1)
        return doubled[..., ::2]
    if how == "fortran" and a.ndim > 1:
        return np.asfortranarray(a)
    return a[::-1].copy()[::-1]  # reversed view of a reversed copy


@every_array_arg
@pytest.mark.parametrize("how", ["strided", "fortran"])
def test_core_rejects_non_contiguous(function, arg, how):
    kwargs = core_kwargs(function)
    kwargs[arg] = _non_contiguous(kwargs[arg], how)
    assert not kwargs[arg].flags.c_contiguous
    with pytest.raises(ValueError, match=names(arg)) as info:
        call(function, kwargs)
    assert "C-contiguous" in str(info.value)


def misaligned(a):
    """A copy of a whose data starts one byte past an aligned address (a view into a uint8 buffer)."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    m = buf[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned and m.flags.c_contiguous
    return m


@every_array_arg
def test_core_rejects_misaligned(function, arg):
    kwargs = core_kwargs(function)
    kwargs[arg] = misaligned(kwargs[arg])
    with pytest.raises(ValueError, match=names(arg)) as info:
        call(function, kwargs)
    assert "aligned" in str(info.value)


@layers
def test_layer_rejects_misaligned_x(cls):
    layer = _layer(cls)
    with pytest.raises(ValueError, match=names("x")) as info:
        layer(misaligned(np.zeros((2, 3, 3), np.float32)))
    assert "aligned" in str(info.value)


def _wrong_shapes(arg, shape):
    """Shapes that are wrong for this argument on their own: an extra axis, a missing axis, and each non-defining
    axis one longer."""
    shapes = [shape + (1,), shape[:-1]]
    shapes += [tuple(n + (k == axis) for k, n in enumerate(shape))
               for axis in range(len(shape)) if axis not in DEFINING_AXES.get(arg, ())]
    return shapes


@every_array_arg
def test_core_rejects_wrong_shapes(function, arg):
    base = core_kwargs(function)
    for shape in _wrong_shapes(arg, base[arg].shape):
        kwargs = dict(base)
        kwargs[arg] = np.zeros(shape, base[arg].dtype)
        with pytest.raises(ValueError, match=names(arg)) as info:
            call(function, kwargs)
        assert str(shape).replace(",)", ")") in str(info.value).replace(",)", ")"), (shape, str(info.value))


@pytest.mark.parametrize("function", [f for f in CORE_FUNCTIONS if f.endswith("backward")])
def test_core_rejects_wrong_x_steps_or_batch_in_backward(function):
    """In backward, x defines T and B; an x of another T or B than the saved arrays is caught at the first array
    that disagrees (h0 for B, out for T)."""
    base = core_kwargs(function)
    for shape, culprit in [((T_ + 1, B_, I_), "out"), ((T_, B_ + 1, I_), "h0")]:
        kwargs = dict(base, x=np.zeros(shape))
        with pytest.raises(ValueError, match=names(culprit)):
            call(function, kwargs)


@pytest.mark.parametrize("function", CORE_FUNCTIONS)
@pytest.mark.parametrize("given", ["ih", "hh"])
def test_core_rejects_one_bias_only(function, given):
    """bias_ih and bias_hh (forward), dbias_ih and dbias_hh (backward): both or neither."""
    kwargs = core_kwargs(function)
    prefix = "bias" if function.endswith("forward") else "dbias"
    missing = f"{prefix}_{'hh' if given == 'ih' else 'ih'}"
    kwargs[missing] = None
    with pytest.raises(ValueError, match=names(f"{prefix}_ih")) as info:
        call(function, kwargs)
    assert f"{prefix}_hh" in str(info.value)


@pytest.mark.parametrize("function", [f for f in CORE_FUNCTIONS if f.endswith("backward")])
@pytest.mark.parametrize("arg", ["dweight_ih", "dweight_hh", "dbias_ih", "dbias_hh"])
def test_core_rejects_read_only_accumulators(function, arg):
    kwargs = core_kwargs(function)
    kwargs[arg].flags.writeable = False
    with pytest.raises(ValueError, match=names(arg)) as info:
        call(function, kwargs)
    assert "writeable" in str(info.value) or "read-only" in str(info.value)


def _overlapping(first, second_shape, overlap=1):
    """(a copy of first, a new array of second_shape) sharing the last ``overlap`` elements of the first."""
    buf = np.zeros(first.size + int(np.prod(second_shape)) - overlap, first.dtype)
    a = buf[: first.size].reshape(first.shape)
    a[...] = first
    return a, buf[first.size - overlap:].reshape(second_shape)


def _share_memory(kwargs, acc, source):
    """Make accumulator ``acc`` share memory with ``source`` (identical, or overlapping by one element)."""
    if source.endswith(" (overlapping)"):
        source = source.split()[0]
        kwargs[source], kwargs[acc] = _overlapping(kwargs[source], kwargs[acc].shape)
    else:
        assert kwargs[source].shape == kwargs[acc].shape
        kwargs[acc] = kwargs[source]


SHARING = [("dweight_hh", "weight_hh"), ("dweight_ih", "weight_ih"), ("dweight_hh", "x (overlapping)"),
           ("dweight_ih", "out (overlapping)"), ("dbias_ih", "dout (overlapping)"), ("dbias_hh", "dh_n (overlapping)"),
           ("dweight_hh", "h0 (overlapping)"), ("dbias_hh", "dbias_ih"), ("dweight_hh", "dweight_ih (overlapping)")]


@pytest.mark.parametrize("function", [f for f in CORE_FUNCTIONS if f.endswith("backward")])
@pytest.mark.parametrize("acc,source", SHARING, ids=lambda v: v)
def test_core_rejects_accumulators_sharing_memory(function, acc, source):
    """An accumulator that is, or overlaps, an input of the same call or another accumulator: a ValueError naming
    it (the kernel would read what it is writing, or add twice into one place)."""
    kwargs = core_kwargs(function)
    _share_memory(kwargs, acc, source)
    with pytest.raises(ValueError, match=names(acc)) as info:
        call(function, kwargs)
    assert "share memory" in str(info.value)


@pytest.mark.parametrize("function", [f for f in CORE_FUNCTIONS if f.endswith("backward")])
def test_core_accepts_adjacent_accumulators(function):
    """Accumulators next to each other in one buffer, without overlap, are fine and give the usual result."""
    kwargs, separate = core_kwargs(function), core_kwargs(function)
    expected = call(function, separate)
    kwargs["dweight_ih"], kwargs["dweight_hh"] = _overlapping(kwargs["dweight_ih"], kwargs["dweight_hh"].shape,
                                                              overlap=0)
    for got, want in zip(call(function, kwargs), expected):
        np.testing.assert_array_equal(got, want)
    for name in ("dweight_ih", "dweight_hh"):
        assert separate[name].any()
        np.testing.assert_array_equal(kwargs[name], separate[name])


def test_core_gru_rejects_gates_of_the_other_form():
    """GRU saved gates are (T, B, 4H) with reset_after and (T, B, 3H) without: the wrong width is named."""
    for reset_after in (True, False):
        kwargs = core_kwargs("gru_backward", reset_after=reset_after)
        kwargs["reset_after"] = not reset_after
        with pytest.raises(ValueError, match=names("gates")) as info:
            call("gru_backward", kwargs)
        width = (4 if not reset_after else 3) * H_
        assert str(width) in str(info.value)


@pytest.mark.parametrize("function", ["rnn_forward", "rnn_backward"])
@pytest.mark.parametrize("value", ["bogus", "Tanh", "sigmoid", ""])
def test_core_rejects_bad_nonlinearity(function, value):
    kwargs = core_kwargs(function)
    kwargs["nonlinearity"] = value
    with pytest.raises(ValueError, match=names("nonlinearity")):
        call(function, kwargs)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("arg,mutate,exc,text", [
    ("x", lambda a: a.astype(np.float32), TypeError, "float32"),
    ("h0", lambda a: a[:, :-1], ValueError, "shape"),
    ("weight_hh", np.asfortranarray, ValueError, "C-contiguous"),
    ("weight_ih", lambda a: a.tolist(), TypeError, "ndarray"),
    ("bias_hh", lambda a: None, ValueError, "both"),
], ids=["x-dtype", "h0-shape", "weight_hh-layout", "weight_ih-list", "bias_hh-missing"])
def test_functional_forward_passes_the_bindings_errors_through(family, arg, mutate, exc, text):
    """pylstm.functional converts nothing: a bad argument gets the bindings' error, naming it as functional does."""
    kwargs = functional_forward_kwargs(family)
    kwargs[arg] = mutate(kwargs[arg])
    with pytest.raises(exc, match=names(arg)) as info:
        getattr(F, f"{family}_forward")(**kwargs)
    assert text in str(info.value)


@pytest.mark.parametrize("impl", [F, ref], ids=["functional", "reference"])
def test_functional_rnn_rejects_bad_nonlinearity(impl):
    kwargs = core_kwargs("rnn_forward")
    kwargs["nonlinearity"] = "bogus"
    with pytest.raises(ValueError, match=names("nonlinearity")):
        impl.rnn_forward(**kwargs)


def functional_forward_kwargs(family):
    """core_kwargs of <family>_forward in pylstm.functional's terms: peepholes as one tuple (None here)."""
    kwargs = core_kwargs(f"{family}_forward")
    kwargs.pop("training", None)
    if family == "lstm":
        kwargs["peepholes"] = None
        for name in ("p_i", "p_f", "p_o"):
            del kwargs[name]
    return kwargs


def _functional_saved(family):
    kwargs = functional_forward_kwargs(family)
    forward = getattr(F, f"{family}_forward")
    return forward(**kwargs)[-1], kwargs


@pytest.mark.parametrize("family", list(FAMILIES))
def test_functional_backward_rejects_wrong_saved(family):
    """A saved record of another cell, a plain tuple with the right fields, or None: TypeError naming saved."""
    saved, kwargs = _functional_saved(family)
    others = {"lstm": _functional_saved("gru")[0], "gru": _functional_saved("rnn")[0],
              "rnn": _functional_saved("lstm")[0]}
    backward = getattr(F, f"{family}_backward")
    G = FAMILIES[family]
    grads = dict(dweight_ih=np.zeros((G * H_, I_)), dweight_hh=np.zeros((G * H_, H_)))
    dout = np.zeros((T_, B_, H_))
    backward(saved, kwargs["weight_ih"], kwargs["weight_hh"], dout, **grads)  # the right record works
    for wrong in (others[family], tuple(saved), None):
        with pytest.raises(TypeError, match=names("saved")):
            backward(wrong, kwargs["weight_ih"], kwargs["weight_hh"], dout, **grads)


@pytest.mark.parametrize("record", [LSTMSaved, GRUSaved, RNNSaved])
def test_functional_saved_types_are_distinct(record):
    """The three record types are different classes (what the saved check relies on)."""
    assert sum(issubclass(record, other) for other in (LSTMSaved, GRUSaved, RNNSaved)) == 1


# ----------------------------------------------------------------------------------------------------------------------
# 4. NaN and inf propagate; nothing crashes.

VARIANTS = [(pylstm.LSTM, {}), (pylstm.GRU, {}), (pylstm.GRU, {"reset_after": False}), (pylstm.RNN, {}),
            (pylstm.RNN, {"nonlinearity": "relu"})]
variants = pytest.mark.parametrize("cls,kwargs", VARIANTS, ids=["lstm", "gru", "gru-before", "rnn-tanh", "rnn-relu"])


def _reference_run(layer, x, dout):
    """The layer's forward and backward (zero initial state, no dstate) by pylstm.reference -> out, dx."""
    p = layer.params
    family = type(layer).__name__.lower()
    n_states = 2 if family == "lstm" else 1
    states = [np.zeros((x.shape[1], layer.hidden_size), layer.dtype)] * n_states
    args = (x, *states, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    extra = {"lstm": {}, "gru": {"reset_after": getattr(layer, "reset_after", None)},
             "rnn": {"nonlinearity": getattr(layer, "nonlinearity", None)}}[family]
    out, *_, saved = getattr(ref, f"{family}_forward")(*args, **extra)
    grads = {f"d{k[:-3]}": np.zeros_like(v) for k, v in p.items()}
    dx, *_ = getattr(ref, f"{family}_backward")(saved, p["weight_ih_l0"], p["weight_hh_l0"], dout, **grads)
    return out, dx


@variants
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_in_x_propagates(cls, kwargs, dtype):
    """A NaN in x[1, 0] makes out[t, 0] NaN in every unit for t >= 1 (it enters every gate through W_ih and then
    every unit through W_hh), leaves steps before it and the other batch rows untouched; backward runs."""
    layer = cls(3, 5, dtype=dtype, seed=3, **kwargs)
    x = np.random.default_rng(4).standard_normal((4, 3, 3)).astype(dtype)
    clean, _ = layer(x)
    clean = clean.copy()
    x[1, 0, 1] = np.nan
    out, final = layer(x)
    assert np.isnan(out[1:, 0]).all()
    assert np.isnan(as_first(final)[0, 0]).all()
    np.testing.assert_array_equal(out[0], clean[0])
    np.testing.assert_allclose(out[:, 1:], clean[:, 1:], rtol=1e-6, atol=1e-7)
    dout = np.ones_like(out)
    dx, _ = layer.backward(dout)
    # The NaN reaches the input gradient of row 0 as the reference says (relu's derivative at a NaN output is 0,
    # so there it may not), and no other row's.
    with np.errstate(invalid="ignore"):
        _, dx_expected = _reference_run(layer, x, dout)
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(dx_expected))
    assert np.isfinite(dx[:, 1:]).all()


def as_first(state):
    return state[0] if isinstance(state, tuple) else state


@variants
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_x_gives_the_references_result(cls, kwargs, value):
    """An infinite input saturates the gates; whatever that gives (finite, inf or NaN), the kernels give the same as
    the reference, the other batch rows are unaffected, and nothing crashes."""
    layer = cls(3, 5, dtype="float64", seed=5, **kwargs)
    x = np.random.default_rng(6).standard_normal((4, 3, 3))
    clean, _ = layer(x)
    clean = clean.copy()
    x[1, 0, 1] = value
    out, _ = layer(x)
    dout = np.ones_like(out)
    dx, _ = layer.backward(dout)
    with np.errstate(invalid="ignore", over="ignore"):
        out_expected, dx_expected = _reference_run(layer, x, dout)
    np.testing.assert_allclose(out, out_expected, rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(out[:, 1:], clean[:, 1:], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-12, atol=1e-12, equal_nan=True)


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
                                       (np.inf, ValueError), (True, TypeError)],
                         ids=["negative", "above-one", "str", "nan", "inf", "True"])
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
                                       (np.nan, ValueError), (True, TypeError), ([1.0], TypeError)],
                         ids=["str", "inf", "-inf", "nan", "True", "list"])
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

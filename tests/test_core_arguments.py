"""Bad arguments to the functional core (pylstm.functional) and to the compiled bindings themselves (pylstm._core)
never crash and get a clear error that names the offending argument. The bindings must check every argument on their
own since anything they let through reaches C++ as a raw pointer. Every test asserts the exception type and that the
message names the argument.
"""
import re

import numpy as np
import pytest

import pylstm
from pylstm import _core, cells
from pylstm import functional as F
from pylstm import reference as ref
from pylstm.saved import GRUSaved, LSTMSaved, RNNSaved

LAYERS = [pylstm.LSTM, pylstm.GRU, pylstm.RNN]
layers = pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)


def names(name):
    """A pytest.raises match for a message naming ``name`` as a word (so 'x' is not found inside 'max')."""
    return rf"(?<!\w){re.escape(name)}(?!\w)"


# ----------------------------------------------------------------------------------------------------------------------
# 3. The functional core and the bindings.
#
# Each case is a valid keyword-argument set for one _core function (computed from a real forward); the tests replace
# one argument with a bad value and expect an error naming it.

T_, B_, I_, H_ = 3, 2, 4, 5
FAMILIES = {name.lower(): facts.gates for name, facts in cells.FAMILIES.items()}  # family -> its gates
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
def test_layer_copies_a_misaligned_x_the_kernels_refuse(cls):
    """_core refuses misaligned arrays (above); a layer copies one, as it copies a strided one."""
    layer = cls(3, 4, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer(misaligned(x))[0], layer(x)[0])


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


# pylstm.functional's arguments that are no arrays: each checked, named (they reached pybind11's signature dump, or
# were read by bool(), so that reset_after="False" chose the reset-after form).
_X, _H = np.zeros((2, 1, 3)), np.zeros((1, 4))
FLAG_AND_NAME_CALLS = [
    (lambda: F.rnn_forward(_X, _H, np.zeros((4, 3)), np.zeros((4, 4)), nonlinearity=None), TypeError, "nonlinearity"),
    (lambda: F.rnn_forward(_X, _H, np.zeros((4, 3)), np.zeros((4, 4)), training="yes"), TypeError, "training"),
    (lambda: F.gru_forward(_X, _H, np.zeros((12, 3)), np.zeros((12, 4)), reset_after="False"), TypeError,
     "reset_after"),
    (lambda: F.lstm_forward(_X, _H, _H, np.zeros((16, 3)), np.zeros((16, 4)), reverse=1), TypeError, "reverse"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), reduction=None), TypeError, "reduction"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), ignore_index=2 ** 70), ValueError,
     "ignore_index"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), label_smoothing="a"), TypeError,
     "label_smoothing"),
    (lambda: F.linear_backward(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros((2, 4)), dweight=np.zeros((4, 3)),
                               need_dx=None), TypeError, "need_dx"),
]


@pytest.mark.parametrize("call, error, name", FLAG_AND_NAME_CALLS, ids=[c[2] for c in FLAG_AND_NAME_CALLS])
def test_functional_checks_its_flags_and_names(call, error, name):
    with pytest.raises(error, match=f"^{name}: expected"):
        call()


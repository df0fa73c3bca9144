"""Tests of pylstm.pad_sequences and pylstm.unpad (pylstm/padding.py): shapes, values, padding, lengths, both
layouts, zero-length sequences, the round trip, the view semantics of unpad, and every error message."""
import numpy as np
import pytest

import pylstm
from pylstm import pad_sequences, unpad

layouts = pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])


def seqs(lengths, feature=(3,), dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n,) + feature).astype(dtype) for n in lengths]


def column(padded, b, batch_first):
    return padded[b] if batch_first else padded[:, b]


# ----------------------------------------------------------------------------------------------------------------------
# pad_sequences


@layouts
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_values_and_padding(batch_first, dtype):
    xs = seqs([3, 5, 1], dtype=dtype)
    padded, lengths = pad_sequences(xs, batch_first=batch_first)
    assert padded.shape == ((3, 5, 3) if batch_first else (5, 3, 3))
    assert padded.dtype == dtype
    assert lengths.dtype == np.int64 and lengths.tolist() == [3, 5, 1]
    for b, x in enumerate(xs):
        col = column(padded, b, batch_first)
        np.testing.assert_array_equal(col[:len(x)], x)
        assert (col[len(x):] == 0).all()


@layouts
def test_padding_value(batch_first):
    xs = seqs([2, 4])
    padded, _ = pad_sequences(xs, batch_first=batch_first, padding_value=-7.5)
    assert (column(padded, 0, batch_first)[2:] == -7.5).all()
    np.testing.assert_array_equal(column(padded, 1, batch_first), xs[1])
    padded, _ = pad_sequences(xs, padding_value=np.nan)
    assert np.isnan(padded[2:, 0]).all() and not np.isnan(padded[:2, 0]).any()
    for bad in (None, 1j, True, np.array([1.0, 2.0])):  # None gave NaN padding, the others a cast or a broadcast
        with pytest.raises(TypeError, match="padding_value: expected a real number"):
            pad_sequences(xs, padding_value=bad)


def test_order_is_kept_not_sorted():
    _, lengths = pad_sequences(seqs([1, 4, 2, 4, 0]))
    assert lengths.tolist() == [1, 4, 2, 4, 0]


@pytest.mark.parametrize("feature", [(), (1,), (2, 3)], ids=["scalar-steps", "one-feature", "2d-feature"])
@layouts
def test_any_trailing_shape(feature, batch_first):
    xs = seqs([2, 3], feature=feature)
    padded, lengths = pad_sequences(xs, batch_first=batch_first)
    assert padded.shape == ((2, 3) if batch_first else (3, 2)) + feature
    assert [a.shape for a in unpad(padded, lengths, batch_first=batch_first)] == [x.shape for x in xs]


@layouts
def test_zero_length_sequences(batch_first):
    xs = seqs([0, 3, 0])
    padded, lengths = pad_sequences(xs, batch_first=batch_first)
    assert lengths.tolist() == [0, 3, 0]
    assert padded.shape == ((3, 3, 3) if batch_first else (3, 3, 3))
    assert (column(padded, 0, batch_first) == 0).all() and (column(padded, 2, batch_first) == 0).all()
    padded, lengths = pad_sequences(seqs([0, 0]), batch_first=batch_first)
    assert padded.shape == ((2, 0, 3) if batch_first else (0, 2, 3)) and lengths.tolist() == [0, 0]


def test_lists_are_converted_and_inputs_untouched():
    padded, lengths = pad_sequences([[[1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]]])
    assert padded.dtype == np.float64 and padded.shape == (2, 2, 2)
    np.testing.assert_array_equal(padded[:, 0], [[1, 2], [0, 0]])
    np.testing.assert_array_equal(padded[:, 1], [[3, 4], [5, 6]])
    xs = seqs([2, 1])
    before = [x.copy() for x in xs]
    padded, _ = pad_sequences(tuple(xs))
    padded[...] = 99  # a new array, not sharing memory with the inputs
    assert all(np.array_equal(x, b) for x, b in zip(xs, before))


def test_non_contiguous_inputs():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    xs = [base[::2, ::2], base[1:, 1::2]]
    padded, lengths = pad_sequences(xs)
    for b, x in enumerate(xs):
        np.testing.assert_array_equal(padded[:lengths[b], b], x)


# ----------------------------------------------------------------------------------------------------------------------
# unpad and the round trip


@layouts
@pytest.mark.parametrize("lengths", [[3], [5, 1, 4], [0, 2, 0, 7], [0]])
def test_round_trip(batch_first, lengths):
    xs = seqs(lengths, dtype=np.float64)
    back = unpad(*pad_sequences(xs, batch_first=batch_first), batch_first=batch_first)
    assert len(back) == len(xs)
    for x, y in zip(xs, back):
        assert y.dtype == x.dtype and y.shape == x.shape
        np.testing.assert_array_equal(y, x)


@layouts
def test_unpad_values_and_views(batch_first):
    shape = (3, 4, 2) if batch_first else (4, 3, 2)  # T=4, B=3
    out = np.arange(4 * 3 * 2, dtype=np.float32).reshape(shape)
    pieces = unpad(out, np.array([4, 0, 2]), batch_first=batch_first)
    if batch_first:
        expected = [out[0, :4], out[1, :0], out[2, :2]]
    else:
        expected = [out[:4, 0], out[:0, 1], out[:2, 2]]
    for p, e in zip(pieces, expected):
        np.testing.assert_array_equal(p, e)
    # Documented: views into out, not copies.
    assert np.shares_memory(pieces[0], out)
    pieces[0][0, 0] = -1
    assert out.flat[0] == -1


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.uint64])
def test_unpad_integer_lengths_of_any_kind(dtype):
    out = np.zeros((3, 2, 1))
    assert [len(p) for p in unpad(out, np.array([3, 1], dtype=dtype))] == [3, 1]
    assert [len(p) for p in unpad(out, [0, 2])] == [0, 2]


def test_unpad_empty_batch():
    assert unpad(np.zeros((3, 0, 2)), []) == []
    assert unpad(np.zeros((0, 3, 2)), np.zeros(0, dtype=np.int64), batch_first=True) == []


def test_unpad_layer_output():
    """With a layer: padded in, lengths in, unpad out -> each piece equals the layer run on that sequence alone."""
    layer = pylstm.GRU(3, 4, dtype="float64", seed=0, bidirectional=True).eval()
    xs = seqs([4, 1, 3], dtype=np.float64)
    padded, lengths = pad_sequences(xs)
    out, _ = layer(padded, lengths=lengths)
    for x, piece in zip(xs, unpad(out, lengths)):
        alone, _ = layer(x[:, None])
        np.testing.assert_allclose(piece, alone[:, 0], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------------------------------
# Errors


def test_empty_list():
    with pytest.raises(ValueError, match="sequences: expected at least one sequence"):
        pad_sequences([])


@pytest.mark.parametrize("value", [None, 3, "abc", b"abc"], ids=["none", "int", "str", "bytes"])
def test_not_a_list(value):
    with pytest.raises(TypeError, match="sequences"):
        pad_sequences(value)


def test_mixed_dtypes_named():
    xs = seqs([2, 3, 1])
    xs[2] = xs[2].astype(np.float64)
    with pytest.raises(TypeError, match=r"sequences\[2\]: expected dtype float32 .*sequences\[0\].*got float64"):
        pad_sequences(xs)


@pytest.mark.parametrize("bad", [np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3), dtype=bool),
                                 np.zeros((2, 3), dtype=np.complex64), [["a", "b", "c"]]],
                         ids=["int", "bool", "complex", "strings"])
def test_non_float_named(bad):
    with pytest.raises(TypeError, match=r"sequences\[1\]: expected a floating-point array"):
        pad_sequences([np.zeros((1, 3)), bad])


def test_int_list_refused():
    with pytest.raises(TypeError, match=r"sequences\[0\]: expected a floating-point array, got dtype int"):
        pad_sequences([[1, 2, 3]])


def test_ragged_list_refused():
    with pytest.raises(TypeError, match=r"sequences\[1\]"):
        pad_sequences([np.zeros((1, 2)), [[1.0, 2.0], [3.0]]])


@pytest.mark.parametrize("bad, got", [(np.zeros((2, 4)), r"\(4,\)"), (np.zeros((2, 3, 1)), r"\(3, 1\)"),
                                      (np.zeros(2), r"\(\)")],
                         ids=["feature-size", "extra-dim", "missing-dim"])
def test_trailing_shape_mismatch_named(bad, got):
    with pytest.raises(ValueError, match=rf"sequences\[1\]: expected trailing shape \(3,\) .*got {got}"):
        pad_sequences([np.zeros((5, 3)), bad, np.zeros((1, 3))])


def test_zero_dimensional_named():
    with pytest.raises(ValueError, match=r"sequences\[1\]: expected shape \(T, \*feature\)"):
        pad_sequences([np.zeros(3), np.float64(1.0)])


def test_bad_padding_value():
    with pytest.raises(TypeError, match="padding_value"):
        pad_sequences(seqs([1]), padding_value="x")


@pytest.mark.parametrize("fn", ["pad", "unpad"])
def test_batch_first_must_be_bool(fn):
    with pytest.raises(TypeError, match="batch_first"):
        if fn == "pad":
            pad_sequences(seqs([1]), batch_first="yes")
        else:
            unpad(np.zeros((1, 1, 1)), [1], batch_first=1)


@pytest.mark.parametrize("out", [np.zeros(3), np.float32(1.0)], ids=["1d", "0d"])
def test_unpad_out_needs_two_dims(out):
    with pytest.raises(ValueError, match=r"out: expected shape \(T, B, \*feature\)"):
        unpad(out, [1])


@pytest.mark.parametrize("lengths, error, match", [
    ([1.0, 2.0], TypeError, r"lengths: expected integers, got dtype float64"),
    ([True, False], TypeError, r"lengths: expected integers, got dtype bool"),
    (["1", "2"], TypeError, r"lengths: expected integers"),
    ([[1, 2]], ValueError, r"lengths: expected a 1-D array of 2 lengths, got shape \(1, 2\)"),
    (2, ValueError, r"lengths: expected a 1-D array"),
    ([1, 2, 3], ValueError, r"lengths: expected 2 values \(the batch size B of out \(4, 2, 3\)"),
    ([1], ValueError, r"lengths: expected 2 values"),
    ([1, 5], ValueError, r"lengths\[1\]: expected a value in \[0, 4\] .*got 5"),
    ([-1, 2], ValueError, r"lengths\[0\]: expected a value in \[0, 4\] .*got -1"),
], ids=["float", "bool", "str", "2d", "scalar", "too-many", "too-few", "too-long", "negative"])
def test_unpad_bad_lengths(lengths, error, match):
    with pytest.raises(error, match=match):
        unpad(np.zeros((4, 2, 3)), lengths)


def test_unpad_bad_lengths_batch_first_uses_right_axes():
    out = np.zeros((2, 4, 3))  # (B=2, T=4)
    with pytest.raises(ValueError, match=r"lengths\[1\]: expected a value in \[0, 4\]"):
        unpad(out, [4, 5], batch_first=True)
    with pytest.raises(ValueError, match=r"expected 2 values"):
        unpad(out, [1, 1, 1, 1], batch_first=True)
    assert [len(p) for p in unpad(out, [4, 0], batch_first=True)] == [4, 0]

"""pylstm.text: the compiled loops (pylstm._text) against their pure-Python twins in pylstm.text on random text of
every kind of character (ASCII, Latin, CJK, emoji, any code point including lone surrogates) and on random ids of
every integer dtype and layout; round trips; batchify against torch's word_language_model; every error, with the
same type and message from both paths, naming the argument.
"""
import json
import pickle
import sys
import threading

import numpy as np
import pytest

from pylstm import _text
from pylstm.text import Vocab, _batchify_python, _decode_python, _encode_python, batchify

# Code point ranges to draw characters from.
ALPHABETS = {
    "ascii": [(0x20, 0x7E), (0x0A, 0x0A)],
    "latin": [(0x20, 0x7E), (0xA0, 0x17F)],
    "cjk": [(0x3000, 0x303F), (0x4E00, 0x9FFF), (0x20, 0x7E)],
    "emoji": [(0x1F300, 0x1FAFF), (0x20, 0x7E)],
    "mixed": [(0x20, 0x7E), (0xA0, 0x17F), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF)],
    "any": [(0x0, 0x10FFFF)],  # control characters, lone surrogates, private use, U+10FFFF
}
LENGTHS = [0, 1, 2, 17, 300, 5000, 20000]  # 5000 and more: the loops run without the GIL
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def random_text(rng, alphabet, n, distinct=60):
    """n characters drawn from `distinct` code points of the alphabet's ranges (at least one from each range)."""
    ranges = ALPHABETS[alphabet]
    points = {int(rng.integers(lo, hi + 1)) for lo, hi in ranges}
    while len(points) < distinct:
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        points.add(int(rng.integers(lo, hi + 1)))
    points = sorted(points)
    return "".join(chr(points[i]) for i in rng.integers(len(points), size=n))


def raises_alike(compiled, twin):
    """Both calls raise the same exception type with the same message; -> that message."""
    with pytest.raises((TypeError, ValueError)) as got:
        compiled()
    with pytest.raises((TypeError, ValueError)) as want:
        twin()
    assert type(got.value) is type(want.value)
    assert str(got.value) == str(want.value)
    return str(got.value)


# ----------------------------------------------------------------------------------------------------------------------
# Vocab


@pytest.mark.parametrize("alphabet", ALPHABETS)
def test_from_text_sorts_distinct_characters_by_code_point(alphabet):
    text = random_text(np.random.default_rng(0), alphabet, 3000)
    vocab = Vocab.from_text(text)
    assert vocab.chars == "".join(sorted(set(text)))
    assert [ord(c) for c in vocab.chars] == sorted(ord(c) for c in vocab.chars)
    assert len(vocab) == len(set(text))
    assert vocab.encode(vocab.chars).tolist() == list(range(len(vocab)))
    assert Vocab.from_text("banana").chars == "abn"


def test_ids_follow_the_order_of_chars():
    vocab = Vocab("zay\U0001F600")
    assert vocab.encode("a\U0001F600zy").tolist() == [1, 3, 0, 2]
    assert vocab.decode([3, 0, 1, 2]) == "\U0001F600zay"


def test_constructor_accepts_a_str_or_an_iterable_of_characters():
    want = Vocab("ab\u00e9\U0001F600")
    assert Vocab(["a", "b", "\u00e9", "\U0001F600"]) == want
    assert Vocab(("a", "b", "\u00e9", "\U0001F600")) == want
    assert Vocab(c for c in "ab\u00e9\U0001F600") == want
    assert Vocab(np.array(list("ab\u00e9\U0001F600"))) == want
    assert type(Vocab(np.array(list("ab"))).chars) is str


def test_equality_hash_len_repr_pickle():
    a, b, c = Vocab("abc"), Vocab(list("abc")), Vocab("acb")
    assert a == b and hash(a) == hash(b) and a != c and a != "abc"
    assert len(a) == 3 and len({a, b, c}) == 2
    assert repr(a) == "Vocab('abc')" and eval(repr(a)) == a
    big = Vocab([chr(0x4E00 + i) for i in range(100)])
    assert repr(big).startswith("<Vocab of 100 characters: ")
    assert pickle.loads(pickle.dumps(big)) == big
    with pytest.raises(AttributeError):
        a.chars = "xyz"


@pytest.mark.parametrize("chars", ["abc", "\x00\n\t \"\\", "\u00e9\u4e2d\U0001F600\U0010FFFF",
                                   "\udfff\ud800a\udc80\udbff"])
def test_config_round_trips_through_json(chars):
    vocab = Vocab(chars)
    config = vocab.config()
    assert config == {"chars": chars} and type(config["chars"]) is str
    restored = Vocab.from_config(json.loads(json.dumps(config)))
    assert restored == vocab and restored.chars == chars


def test_config_refuses_surrogates_that_json_would_join():
    """JSON writes a lone high surrogate and a lone low one as two escapes and reads them back as one character."""
    assert json.loads(json.dumps("\ud800\udfff")) == "\U000103ff"
    vocab = Vocab.from_text("a\udfff\ud800")
    with pytest.raises(ValueError, match=r"^config: the vocabulary's characters 1 and 2 are the surrogates"):
        vocab.config()


@pytest.mark.parametrize("chars,kind,message", [
    ("", ValueError, "chars: expected at least one character, got none"),
    ([], ValueError, "chars: expected at least one character, got none"),
    ("abca", ValueError, "chars: expected distinct characters, got 'a' at indices 0 and 3"),
    (["a", "\U0001F600", "\U0001F600"], ValueError, "got '\U0001F600' at indices 1 and 2"),
    (["a", "bc"], ValueError, "chars: expected 1-character strs, got 'bc' (2 characters) at index 1"),
    (["a", ""], ValueError, "chars: expected 1-character strs, got '' (0 characters) at index 1"),
    (["a", 1], TypeError, "chars: expected 1-character strs, got int at index 1"),
    ([b"a"], TypeError, "chars: expected 1-character strs, got bytes at index 0"),
    (b"abc", TypeError, "chars: expected a str of distinct characters or an iterable of 1-character strs, got bytes"),
    (3, TypeError, "got int"),
    (None, TypeError, "got NoneType"),
])
def test_constructor_errors_name_chars(chars, kind, message):
    with pytest.raises(kind) as err:
        Vocab(chars)
    assert message in str(err.value) and str(err.value).startswith("chars: ")


@pytest.mark.parametrize("text,kind,message", [
    ("", ValueError, "text: expected a non-empty str, got ''"),
    (b"abc", TypeError, "text: expected a str, got bytes"),
    (["a"], TypeError, "text: expected a str, got list"),
    (None, TypeError, "text: expected a str, got NoneType"),
])
def test_from_text_errors(text, kind, message):
    with pytest.raises(kind, match=f"^{message}$"):
        Vocab.from_text(text)


@pytest.mark.parametrize("config,kind,message", [
    (None, TypeError, "config: expected a dict {'chars': str}, got NoneType"),
    (["abc"], TypeError, "config: expected a dict {'chars': str}, got list"),
    ("abc", TypeError, "config: expected a dict {'chars': str}, got str"),
    ({}, ValueError, "config: expected a dict {'chars': str}, got no key 'chars' (keys: none)"),
    ({"char": "ab"}, ValueError, "got no key 'chars' (keys: 'char')"),
    ({"chars": "ab", "size": 2}, ValueError, "config: expected only the key 'chars', got also 'size'"),
    ({"chars": ["a", "b"]}, TypeError, "config['chars']: expected a str, got list"),
    ({"chars": None}, TypeError, "config['chars']: expected a str, got NoneType"),
    ({"chars": 7}, TypeError, "config['chars']: expected a str, got int"),
    ({"chars": ""}, ValueError, "config['chars']: expected at least one character, got none"),
    ({"chars": "aba"}, ValueError, "config['chars']: expected distinct characters, got 'a' at indices 0 and 2"),
])
def test_from_config_refuses_a_bad_config(config, kind, message):
    with pytest.raises(kind) as err:
        Vocab.from_config(config)
    assert message in str(err.value) and str(err.value).startswith("config")


# ----------------------------------------------------------------------------------------------------------------------
# encode and decode: compiled == twin


@pytest.mark.parametrize("alphabet", ALPHABETS)
def test_encode_and_decode_equal_the_twins(alphabet):
    rng = np.random.default_rng(list(ALPHABETS).index(alphabet))
    for n in LENGTHS:
        text = random_text(rng, alphabet, n)
        vocab = Vocab.from_text(text + "x")
        ids = vocab.encode(text)
        assert ids.dtype == np.int64 and ids.ndim == 1 and ids.flags.c_contiguous and len(ids) == n
        np.testing.assert_array_equal(ids, _encode_python(vocab, text))
        decoded = vocab.decode(ids)
        assert type(decoded) is str and decoded == text == _decode_python(vocab, ids)
        other = rng.integers(len(vocab), size=n)
        assert vocab.decode(other) == _decode_python(vocab, other)


@pytest.mark.parametrize("alphabet", ["ascii", "latin", "cjk", "emoji", "mixed"])
def test_decode_makes_the_narrowest_str(alphabet):
    """A str's internal width must be that of its widest character: decoding ids of narrower characters than the
    vocabulary's widest (only ASCII ids of a CJK vocabulary, say) gives exactly the str that Python makes (equal,
    same hash, same size), not a wider one."""
    vocab = Vocab.from_text(random_text(np.random.default_rng(1), alphabet, 2000) + "abc")
    widths = [(0, 128), (128, 256), (256, 65536), (65536, 0x110000)]
    by_width = ["".join(c for c in vocab.chars if lo <= ord(c) < hi) for lo, hi in widths]
    for text in ["abc" * 2000, "cab", vocab.chars, vocab.chars[-1] * 5000, *by_width, *(t * 300 for t in by_width)]:
        text = "".join(list(text))  # a fresh str of the width Python chooses
        got = vocab.decode(vocab.encode(text))
        assert got == text and hash(got) == hash(text) and sys.getsizeof(got) == sys.getsizeof(text)
        assert got.isascii() == text.isascii()


def test_encode_accepts_str_subclasses():
    class Text(str):
        pass
    vocab = Vocab("abc")
    assert vocab.encode(Text("cab")).tolist() == [2, 0, 1] == _encode_python(vocab, Text("cab")).tolist()


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_decode_accepts_every_integer_dtype_and_layout(dtype):
    vocab = Vocab.from_text(random_text(np.random.default_rng(2), "mixed", 500))
    ids = np.random.default_rng(3).integers(min(len(vocab), np.iinfo(dtype).max), size=6000).astype(dtype)
    want = _decode_python(vocab, ids)
    assert want == "".join(vocab.chars[i] for i in ids.tolist())
    for layout in [ids, ids[::3], ids[::-1], ids.astype(ids.dtype.newbyteorder()), ids.tolist(), tuple(ids.tolist()),
                   np.asfortranarray(ids), np.broadcast_to(ids[:1], (7,))]:
        assert vocab.decode(layout) == _decode_python(vocab, layout)
    assert vocab.decode(ids[::3]) == want[::3]
    assert vocab.decode([]) == vocab.decode(()) == vocab.decode(np.array([], dtype)) == "" == _decode_python(vocab, [])


@pytest.mark.parametrize("length", [1, 10, 5000])
def test_encode_errors_name_the_first_unknown_character(length):
    vocab = Vocab("abc\u00e9\U0001F600")
    rng = np.random.default_rng(4)
    for unknown in ["d", "\x00", "\u00ff", "\u0100", "\ud800", "\U0001F601", "\U0001F5FF", "\U0010FFFF", "\u00e8"]:
        for at in {0, length // 2, length - 1}:
            text = [vocab.chars[i] for i in rng.integers(len(vocab), size=length)]
            text[at] = unknown
            if at + 1 < length:
                text[-1] = "z"  # a later unknown character: the error names the first one
            text = "".join(text)
            message = raises_alike(lambda: vocab.encode(text), lambda: _encode_python(vocab, text))
            assert message == (f"text: character {unknown!r} (U+{ord(unknown):04X}) at index {at} "
                               "is not in the vocabulary")


@pytest.mark.parametrize("length", [1, 10, 5000])
@pytest.mark.parametrize("chars", ["abc", "ab\u00e9", "a\u4e2d", "a\U0001F600"])
def test_decode_errors_name_the_first_id_outside_the_vocabulary(length, chars):
    vocab = Vocab(chars)
    n = len(chars)
    for bad in [-1, n, n + 1, -(2 ** 63), 2 ** 63 - 1, 2 ** 31, -(2 ** 31) - 1]:
        for at in {0, length // 2, length - 1}:
            ids = np.zeros(length, np.int64)
            ids[at] = bad
            if at + 1 < length:
                ids[-1] = -5
            message = raises_alike(lambda: vocab.decode(ids), lambda: _decode_python(vocab, ids))
            assert message == f"ids: id {bad} at index {at} is outside [0, {n})"
    # ids an int64 cannot hold
    ids = np.array([0, 1, 2 ** 64 - 1, 2 ** 63, 7], np.uint64)
    message = raises_alike(lambda: vocab.decode(ids), lambda: _decode_python(vocab, ids))
    assert message == f"ids: id {2 ** 64 - 1} at index 2 is outside [0, {n})"
    ids = np.array([0, 9, 2 ** 64 - 1], np.uint64)
    assert raises_alike(lambda: vocab.decode(ids), lambda: _decode_python(vocab, ids)) == \
        f"ids: id 9 at index 1 is outside [0, {n})"
    for narrow in [np.int8, np.uint8, np.int16, np.uint32]:
        ids = np.array([0, 1, 100], narrow)
        assert raises_alike(lambda: vocab.decode(ids), lambda: _decode_python(vocab, ids)) == \
            f"ids: id 100 at index 2 is outside [0, {n})"


@pytest.mark.parametrize("text,kind,message", [
    (b"abc", TypeError, "text: expected a str, got bytes"),
    (None, TypeError, "text: expected a str, got NoneType"),
    (["a", "b"], TypeError, "text: expected a str, got list"),
    (np.array(["a"]), TypeError, "text: expected a str, got ndarray"),
    (97, TypeError, "text: expected a str, got int"),
])
def test_encode_type_errors(text, kind, message):
    vocab = Vocab("abc")
    assert raises_alike(lambda: vocab.encode(text), lambda: _encode_python(vocab, text)) == message


@pytest.mark.parametrize("ids,kind,message", [
    (3, ValueError, "ids: expected a 1-D array of integers, got shape ()"),
    (np.int64(3), ValueError, "ids: expected a 1-D array of integers, got shape ()"),
    ([[0, 1]], ValueError, "ids: expected a 1-D array of integers, got shape (1, 2)"),
    (np.zeros((2, 2), np.int64), ValueError, "ids: expected a 1-D array of integers, got shape (2, 2)"),
    ([0, [1]], ValueError, "ids: expected a 1-D array of integers, got a list that is not one"),
    ([0.0, 1.0], TypeError, "ids: expected a 1-D array of integers, got list (of dtype float64 to NumPy)"),
    (np.array([0.0]), TypeError, "ids: expected a 1-D array of integers, got dtype float64"),
    (np.array([], np.float32), TypeError, "ids: expected a 1-D array of integers, got dtype float32"),
    ([True, False], TypeError, "ids: expected a 1-D array of integers, got list (of dtype bool to NumPy)"),
    (np.array([1, 2], object), TypeError, "got dtype object"),
    ([2 ** 70], TypeError, "got list (of dtype object to NumPy)"),
    (None, TypeError, "ids: expected a 1-D array of integers, got NoneType (of dtype object to NumPy)"),
    ("012", TypeError, "ids: expected a 1-D array of integers, got str"),
    (b"\x00\x01", TypeError, "ids: expected a 1-D array of integers, got bytes"),
    (iter([0, 1]), TypeError, "of dtype object to NumPy"),
])
def test_decode_argument_errors(ids, kind, message):
    vocab = Vocab("abc")
    got = raises_alike(lambda: vocab.decode(ids), lambda: _decode_python(vocab, ids))
    assert message in got and got.startswith("ids: ")
    with pytest.raises(kind):
        vocab.decode(ids)


def test_encode_and_decode_from_threads():
    """The loops release the GIL on long inputs: threads encoding and decoding at once all get their own result."""
    rng = np.random.default_rng(5)
    vocab = Vocab.from_text(random_text(rng, "mixed", 4000, distinct=200))
    texts = [random_text(rng, "mixed", 50000, distinct=200) for _ in range(4)]
    texts = ["".join(c if c in vocab.chars else vocab.chars[0] for c in t) for t in texts]
    results = [None] * len(texts)

    def work(i):
        for _ in range(5):
            ids = vocab.encode(texts[i])
            results[i] = vocab.decode(ids) == texts[i] and ids.tolist() == _encode_python(vocab, texts[i]).tolist()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * len(texts)


# ----------------------------------------------------------------------------------------------------------------------
# batchify


def torch_batchify(ids, bsz):
    """torch's word_language_model (main.py, batchify)."""
    torch = pytest.importorskip("torch")
    data = torch.from_numpy(np.asarray(ids, np.int64))
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous().numpy()


@pytest.mark.parametrize("total,batch_size", [(1, 1), (7, 1), (7, 7), (8, 3), (100, 10), (101, 10), (1000, 33),
                                              (64 * 200 + 63, 64), (50000, 20), (50001, 1)])
def test_batchify_equals_torch_and_the_twin(total, batch_size):
    ids = np.random.default_rng(total).integers(-(2 ** 40), 2 ** 40, size=total)
    got = batchify(ids, batch_size)
    steps = total // batch_size
    assert got.shape == (steps, batch_size) and got.dtype == np.int64 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, torch_batchify(ids, batch_size))
    np.testing.assert_array_equal(got, _batchify_python(ids, batch_size))
    for b in range(batch_size):
        np.testing.assert_array_equal(got[:, b], ids[b * steps:(b + 1) * steps])
    got[:] = 0  # a new array, not a view of ids
    assert ids[:steps * batch_size].any()


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_batchify_accepts_every_integer_dtype_and_layout(dtype):
    top = min(np.iinfo(dtype).max, np.iinfo(np.int64).max)
    ids = np.random.default_rng(6).integers(0, top, size=3001, dtype=np.uint64).astype(dtype)
    want = _batchify_python(ids, 8)
    np.testing.assert_array_equal(want, torch_batchify(ids.astype(np.int64), 8))
    for layout in [ids, ids[::2], ids[::-1], ids.astype(ids.dtype.newbyteorder()), ids.tolist(),
                   np.broadcast_to(ids[:1], (50,))]:
        got = batchify(layout, 8)
        assert got.dtype == np.int64 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, _batchify_python(layout, 8))
    assert batchify(ids, np.int32(8)).shape == (375, 8)


@pytest.mark.parametrize("ids,batch_size,kind,message", [
    (np.arange(3), 4, ValueError, "ids: 3 ids are fewer than batch_size=4 (no full step)"),
    ([], 1, ValueError, "ids: 0 ids are fewer than batch_size=1 (no full step)"),
    (np.arange(3), 0, ValueError, "batch_size: expected an int >= 1, got 0"),
    (np.arange(3), -2, ValueError, "batch_size: expected an int >= 1, got -2"),
    (np.arange(3), 2.0, TypeError, "batch_size: expected an int >= 1, got float"),
    (np.arange(3), True, TypeError, "batch_size: expected an int >= 1, got bool"),
    (np.arange(3), "2", TypeError, "batch_size: expected an int >= 1, got str"),
    (np.arange(3), None, TypeError, "batch_size: expected an int >= 1, got NoneType"),
    (np.arange(4.0), 2, TypeError, "ids: expected a 1-D array of integers, got dtype float64"),
    (np.zeros((2, 3), np.int64), 2, ValueError, "ids: expected a 1-D array of integers, got shape (2, 3)"),
    (5, 1, ValueError, "ids: expected a 1-D array of integers, got shape ()"),
    ("abcd", 2, TypeError, "ids: expected a 1-D array of integers, got str"),
    (np.array([1, 2 ** 63, 3, 4], np.uint64), 2, ValueError,
     f"ids: expected integers that fit in int64, got {2 ** 63} at index 1"),
])
def test_batchify_errors(ids, batch_size, kind, message):
    got = raises_alike(lambda: batchify(ids, batch_size), lambda: _batchify_python(ids, batch_size))
    assert got == message
    with pytest.raises(kind):
        batchify(ids, batch_size)


# ----------------------------------------------------------------------------------------------------------------------
# The private loops refuse what pylstm.text would never pass them, without crashing


def test_private_loops_refuse_bad_arguments():
    table = _text.CharTable("ab")
    assert len(table) == 2 and table.chars == "ab" and table.maxchar == ord("b")
    for call in [lambda: _text.CharTable(""), lambda: _text.CharTable("aa"), lambda: table.decode(np.zeros(3)),
                 lambda: table.decode(np.zeros(3, np.int32)), lambda: table.decode(np.zeros(6, np.int64)[::2]),
                 lambda: table.decode(np.array([2], np.int64)), lambda: _text.batchify(np.arange(3), 0),
                 lambda: _text.batchify(np.arange(3), 4), lambda: _text.batchify(np.arange(3, dtype=np.int32), 1),
                 lambda: _text.CharTable(b"ab"), lambda: table.encode(b"ab"), lambda: table.decode(None),
                 lambda: _text.batchify(None, 1), lambda: table.encode("abc")]:
        with pytest.raises((TypeError, ValueError)):
            call()

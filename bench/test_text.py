"""pylstm.text's compiled loops (pylstm._text, Cython) against their pure-Python twins, on 4 MB of text, one
benchmark group per operation and text:

    python -m pytest bench/test_text.py --benchmark-columns=median,iqr,min,rounds

* ``encode-ascii`` / ``encode-unicode``: ``Vocab.encode`` of the whole text (str -> int64 ids);
* ``decode-ascii`` / ``decode-unicode``: ``Vocab.decode`` of those ids back to the text;
* ``batchify``: the ids into 64 parallel streams, ``(N, 64)`` int64.

The text (``make_text``) is 4,000,000 characters of words and punctuation drawn from a fixed seed: ``ascii`` is plain
ASCII (a str of one byte a character inside Python), ``unicode`` the same words with typographic quotes and dashes,
accented letters, a few CJK words and emoji (four bytes a character inside Python: the widest case of both loops).

Implementations: ``cython`` (the API), ``python`` (the twins ``_encode_python``, ``_decode_python``,
``_batchify_python``: plain loops, the specification) and, as a point of comparison, ``numpy`` (the same results
with NumPy only: the text's UTF-32 bytes through the lookup table, the code points back through UTF-32, a reshape,
transpose and copy). Each implementation's result is first checked against the compiled one.
"""
import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

from pylstm import text as T  # noqa: E402

import _common as C  # noqa: E402

CHARS = 4_000_000
BATCH = 64
IMPLS = ["cython", "python", "numpy"]
_TEXTS = {}


def make_text(kind, n=CHARS, seed=0):
    """n characters of words and punctuation, the same for every run: a lexicon of 3000 words of 1-10 letters drawn
    with Zipf-like frequencies, separated by spaces, commas, full stops and line breaks; kind 'unicode' adds
    typographic punctuation, accented words, CJK words and emoji."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    weights = 1.0 / np.arange(1, len(letters) + 1)
    lexicon = ["".join(rng.choice(letters, size=int(rng.integers(1, 11)), p=weights / weights.sum()))
               for _ in range(3000)]
    seps = [" "] * 12 + [", ", ". ", ".\n", "; ", "! ", "? ", ": ", "\n\n"]
    if kind == "unicode":
        special = ["na\u00efve", "caf\u00e9", "\u00fcber", "stra\u00dfe", "se\u00f1or", "\u6f22\u5b57", "\u4e2d\u6587",
                   "\u65e5\u672c\u8a9e"]
        for i in range(0, len(lexicon), 37):
            lexicon[i] += "\u00e9"
        for j, i in enumerate(range(1, len(lexicon), 53)):
            lexicon[i] = special[j % len(special)]
        seps += [" \u2014 ", "\u2019", " \u201c", "\u201d ", " \U0001F600 ", " \U0001F44D\n"]
    elif kind != "ascii":
        raise ValueError(f"kind: expected 'ascii' or 'unicode', got {kind!r}")
    rank = 1.0 / np.arange(1, len(lexicon) + 1)
    words = rng.choice(len(lexicon), size=n // 4, p=rank / rank.sum())
    gaps = rng.integers(len(seps), size=len(words))
    parts = []
    for w, g in zip(words.tolist(), gaps.tolist()):
        parts.append(lexicon[w])
        parts.append(seps[g])
    text = "".join(parts)
    while len(text) < n:
        text += text
    return text[:n]


def _data(kind):
    if kind not in _TEXTS:
        text = make_text(kind)
        vocab = T.Vocab.from_text(text)
        _TEXTS[kind] = (text, vocab, vocab.encode(text))
    return _TEXTS[kind]


def _time(benchmark, fn, config):
    rounds, warmup = C.rounds_for(C.estimate_seconds(fn), config.getoption("--bench-seconds"))
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=warmup, iterations=1)


def _numpy_encode(vocab, text):
    table = np.full(max(ord(c) for c in vocab.chars) + 1, -1, np.int64)
    table[[ord(c) for c in vocab.chars]] = np.arange(len(vocab))
    points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    if points.size and points.max() >= len(table):
        raise ValueError("text: a character is not in the vocabulary")
    ids = table[points]
    if (ids < 0).any():
        raise ValueError("text: a character is not in the vocabulary")
    return ids


def _numpy_decode(vocab, ids):
    points = np.array([ord(c) for c in vocab.chars], np.uint32)
    return points[ids].tobytes().decode("utf-32-le")  # NumPy's indexing raises IndexError for ids >= len(vocab)


def _numpy_batchify(ids, batch_size):
    steps = len(ids) // batch_size
    return np.ascontiguousarray(np.asarray(ids, np.int64)[:steps * batch_size].reshape(batch_size, steps).T)


def _extra(benchmark, kind, items):
    benchmark.extra_info.update(kind=kind, items=items, threads=C.THREADS)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["ascii", "unicode"])
def test_encode(benchmark, request, kind, impl):
    benchmark.group = f"encode-{kind}"
    text, vocab, ids = _data(kind)
    fn = {"cython": lambda: vocab.encode(text), "python": lambda: T._encode_python(vocab, text),
          "numpy": lambda: _numpy_encode(vocab, text)}[impl]
    np.testing.assert_array_equal(fn(), ids)
    _extra(benchmark, "encode", len(text))
    _time(benchmark, fn, request.config)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["ascii", "unicode"])
def test_decode(benchmark, request, kind, impl):
    benchmark.group = f"decode-{kind}"
    text, vocab, ids = _data(kind)
    fn = {"cython": lambda: vocab.decode(ids), "python": lambda: T._decode_python(vocab, ids),
          "numpy": lambda: _numpy_decode(vocab, ids)}[impl]
    assert fn() == text
    _extra(benchmark, "decode", len(ids))
    _time(benchmark, fn, request.config)


@pytest.mark.parametrize("impl", IMPLS)
def test_batchify(benchmark, request, impl):
    benchmark.group = f"batchify-B{BATCH}"
    _, _, ids = _data("ascii")
    fn = {"cython": lambda: T.batchify(ids, BATCH), "python": lambda: T._batchify_python(ids, BATCH),
          "numpy": lambda: _numpy_batchify(ids, BATCH)}[impl]
    np.testing.assert_array_equal(fn(), T.batchify(ids, BATCH))
    _extra(benchmark, "batchify", len(ids))
    _time(benchmark, fn, request.config)

# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The loops of pylstm.text: encode (str -> ids), decode (ids -> str) and batchify (ids -> parallel streams).

Private: pylstm.text checks and converts the arguments first (a str; int64 C-contiguous ids; a batch size), and its
pure-Python twins (_encode_python, _decode_python, _batchify_python) are the specification these loops are tested
against. Every index below is checked by the code itself (hence no bounds checks from Cython), and what pylstm.text
would never pass is refused all the same, with a TypeError or ValueError. The errors that depend on the data (a
character without an id, an id outside the vocabulary) are raised here, with the twins' messages.

The GIL is released around the loops over long inputs. They read a str (immutable), the tables of a CharTable
(read-only) or the caller's ids (a typed memoryview keeps the buffer alive; each id is read once and checked as it
is read, so a concurrent writer can make the values wrong but never an index), and write only into arrays and strs
that no one else holds yet.
"""
import numpy as np

from cpython.unicode cimport (PyUnicode_1BYTE_KIND, PyUnicode_2BYTE_KIND, PyUnicode_DATA, PyUnicode_FromKindAndData,
                              PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_New, PyUnicode_READ)
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from *:
    """
    #if PY_VERSION_HEX < 0x030C0000
    #define pylstm_unicode_ready(op) PyUnicode_READY(op)
    #else
    #define pylstm_unicode_ready(op) 0
    #endif
    """
    # Before Python 3.12 a str made by the old Py_UNICODE C API has no kind and data until it is made ready.
    int pylstm_unicode_ready(object) except -1

# Below this many items the loops keep the GIL: releasing and taking it back costs about as much as the loop.
cdef Py_ssize_t NOGIL_MIN = 4096

# The three widths of a str's characters inside CPython (its "kind": 1, 2 or 4 bytes).
ctypedef fused ucs_t:
    uint8_t
    uint16_t
    uint32_t


cdef inline Py_ssize_t _encode_loop(const ucs_t *text, Py_ssize_t n, const int32_t *table, Py_ssize_t table_size,
                                    int64_t *out) noexcept nogil:
    """out[i] = table[text[i]] for i < n. -> the index of the first code point without an id, or -1."""
    cdef Py_ssize_t i
    cdef int32_t v
    for i in range(n):
        if ucs_t is uint8_t:  # table_size >= 256: every 1-byte code point is inside the table
            v = table[text[i]]
        else:
            v = table[text[i]] if text[i] < <uint32_t> table_size else -1
        if v < 0:
            return i
        out[i] = v
    return -1


cdef inline Py_ssize_t _decode_loop(const int64_t *ids, Py_ssize_t n, const uint32_t *codepoints, int64_t size,
                                    ucs_t *out, uint32_t *maxchar) noexcept nogil:
    """out[i] = codepoints[ids[i]] for i < n, each id read once; *maxchar = the largest code point written.
    -> the index of the first id outside [0, size), or -1."""
    cdef Py_ssize_t i
    cdef int64_t v
    cdef uint32_t cp, m = 0
    for i in range(n):
        v = ids[i]
        if <uint64_t> v >= <uint64_t> size:  # a negative id too
            maxchar[0] = m
            return i
        cp = codepoints[v]
        out[i] = <ucs_t> cp
        if cp > m:
            m = cp
    maxchar[0] = m
    return -1


cdef inline int _width(uint32_t maxchar) noexcept nogil:
    """What PyUnicode_New makes of a largest character: 0 ASCII, 1 Latin-1, 2 two bytes, 4 four bytes."""
    if maxchar < 128:
        return 0
    if maxchar < 256:
        return 1
    if maxchar < 65536:
        return 2
    return 4


cdef class CharTable:
    """A vocabulary's two tables, built once: code point -> id (a dense int32 array up to the largest code point of
    the vocabulary and at least 256 long, -1 where no character; a code point beyond it has no id either) and
    id -> code point. CharTable(chars): chars a non-empty str of distinct characters (pylstm.text.Vocab checks them
    first, with messages naming its own argument)."""
    cdef readonly str chars
    cdef readonly uint32_t maxchar
    cdef const int32_t[::1] table
    cdef const uint32_t[::1] codepoints

    def __cinit__(self, chars):
        if not isinstance(chars, str):
            raise TypeError(f"chars: expected a str, got {type(chars).__name__}")
        pylstm_unicode_ready(chars)
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(chars), i
        if n == 0:
            raise ValueError("chars: expected at least one character, got none")
        cdef int kind = PyUnicode_KIND(chars)
        cdef const void *data = PyUnicode_DATA(chars)
        cdef uint32_t cp, m = 0
        codepoints = np.empty(n, dtype=np.uint32)
        cdef uint32_t[::1] c = codepoints
        for i in range(n):
            cp = PyUnicode_READ(kind, data, i)
            c[i] = cp
            if cp > m:
                m = cp
        table = np.full(max(<Py_ssize_t> m + 1, 256), -1, dtype=np.int32)
        cdef int32_t[::1] t = table
        for i in range(n):  # n <= 0x110000 distinct code points: an id fits in int32
            cp = c[i]
            if t[cp] >= 0:
                raise ValueError(f"chars: expected distinct characters, got {chars[i]!r} at indices {t[cp]} and {i}")
            t[cp] = <int32_t> i
        codepoints.flags.writeable = False
        table.flags.writeable = False
        self.chars = str.__str__(chars)  # an exact str
        self.maxchar = m
        self.table = table
        self.codepoints = codepoints

    def __len__(self):
        return self.codepoints.shape[0]

    def encode(self, text):
        """text (a str, or a subclass of str) -> (len(text),) int64 ids. ValueError naming the first character
        without an id and its index."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        pylstm_unicode_ready(text)
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), bad
        out = np.empty(n, dtype=np.int64)
        if n == 0:
            return out
        cdef int64_t[::1] o = out
        cdef int kind = PyUnicode_KIND(text)
        cdef const void *data = PyUnicode_DATA(text)
        if n >= NOGIL_MIN:
            with nogil:
                bad = self._encode(data, kind, n, &o[0])
        else:
            bad = self._encode(data, kind, n, &o[0])
        if bad >= 0:
            ch = text[bad]
            raise ValueError(f"text: character {ch!r} (U+{ord(ch):04X}) at index {bad} is not in the vocabulary")
        return out

    cdef Py_ssize_t _encode(self, const void *data, int kind, Py_ssize_t n, int64_t *out) noexcept nogil:
        cdef const int32_t *table = &self.table[0]
        cdef Py_ssize_t size = self.table.shape[0]
        if kind == PyUnicode_1BYTE_KIND:
            return _encode_loop(<const uint8_t *> data, n, table, size, out)
        if kind == PyUnicode_2BYTE_KIND:
            return _encode_loop(<const uint16_t *> data, n, table, size, out)
        return _encode_loop(<const uint32_t *> data, n, table, size, out)

    def decode(self, const int64_t[::1] ids not None):
        """ids -> the str of the characters with these ids. ValueError naming the first id outside [0, len(self))
        and its index."""
        cdef Py_ssize_t n = ids.shape[0], bad
        if n == 0:
            return ""
        # Written straight into a str as wide as the vocabulary's widest character. A str must be exactly as wide
        # as its own widest character, so when the ids have none of that width (ASCII ids of a Latin-1 vocabulary,
        # say) the narrower str is made from it; that str is never seen by anyone else.
        result = PyUnicode_New(n, self.maxchar)
        cdef void *data = PyUnicode_DATA(result)
        cdef int kind = PyUnicode_KIND(result)
        cdef uint32_t maxchar = 0
        if n >= NOGIL_MIN:
            with nogil:
                bad = self._decode(&ids[0], n, data, kind, &maxchar)
        else:
            bad = self._decode(&ids[0], n, data, kind, &maxchar)
        if bad >= 0:
            raise ValueError(f"ids: id {ids[bad]} at index {bad} is outside [0, {self.codepoints.shape[0]})")
        if _width(maxchar) != _width(self.maxchar):
            return PyUnicode_FromKindAndData(kind, data, n)
        return result

    cdef Py_ssize_t _decode(self, const int64_t *ids, Py_ssize_t n, void *data, int kind,
                            uint32_t *maxchar) noexcept nogil:
        cdef const uint32_t *codepoints = &self.codepoints[0]
        cdef int64_t size = self.codepoints.shape[0]
        if kind == PyUnicode_1BYTE_KIND:
            return _decode_loop(ids, n, codepoints, size, <uint8_t *> data, maxchar)
        if kind == PyUnicode_2BYTE_KIND:
            return _decode_loop(ids, n, codepoints, size, <uint16_t *> data, maxchar)
        return _decode_loop(ids, n, codepoints, size, <uint32_t *> data, maxchar)


cdef inline void _transpose(const int64_t *src, Py_ssize_t steps, Py_ssize_t batch, int64_t *dst) noexcept nogil:
    """dst[t, b] = src[b * steps + t] for t < steps, b < batch (dst C-contiguous (steps, batch))."""
    cdef Py_ssize_t t, b
    cdef const int64_t *column
    for t in range(steps):
        column = src + t
        for b in range(batch):
            dst[b] = column[b * steps]
        dst += batch


def batchify(const int64_t[::1] ids not None, Py_ssize_t batch_size):
    """ids (N_total,) -> (N, batch_size) int64 C-contiguous, column b = ids[b*N:(b+1)*N], N = N_total // batch_size
    (the rest dropped). ValueError when batch_size < 1 or N_total < batch_size."""
    cdef Py_ssize_t total = ids.shape[0]
    if batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size}")
    if total < batch_size:
        raise ValueError(f"ids: {total} ids are fewer than batch_size={batch_size} (no full step)")
    cdef Py_ssize_t steps = total // batch_size
    out = np.empty((steps, batch_size), dtype=np.int64)
    cdef int64_t[:, ::1] o = out
    if steps * batch_size >= NOGIL_MIN:
        with nogil:
            _transpose(&ids[0], steps, batch_size, &o[0, 0])
    else:
        _transpose(&ids[0], steps, batch_size, &o[0, 0])
    return out

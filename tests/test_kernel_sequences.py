"""The C++ kernels' sequence features against the NumPy reference: packed variable-length batches (batch_sizes) for
every cell, and the LSTM's projection (weight_hr) and peepholes, forward and backward, on every ISA path.

Tolerances are test_kernels.py's: float64 1e-10 and float32 5e-5, relative to max(1, max |reference|) of each compared
array, the float32 kernel compared to the float64 reference run on the same (upcast) values.
"""
import functools

import numpy as np
import pytest
from cells import ALL_CELLS
from test_kernels import FLOAT32_TOLERANCE, FLOAT64_TOLERANCE, relative_error

from pylstm import _core, functional, reference

cells = pytest.mark.parametrize("cell", ALL_CELLS, ids=lambda c: c.name)
dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])

# (lengths of the batch rows, sorted longest first as the packed layout requires, I, H): rows ending at different
# steps, rows that never run (length 0), a single row, B above and at most 4 (packed panels vs dot products), H and I
# on both sides of the SIMD widths.
PACKED = [((5, 3, 3, 1), 3, 7), ((6, 4, 2, 2, 0), 2, 17), ((1,), 4, 5), ((3, 0, 0), 5, 9), ((4, 4, 4, 4, 4, 4), 33, 15),
          ((7, 6, 5, 4, 3, 2, 1, 1, 1), 8, 33), ((2, 1), 1, 64)]


def batch_sizes_of(lengths):
    lengths = np.asarray(lengths)
    return np.array([np.sum(lengths > t) for t in range(lengths.max(initial=0))], dtype=np.int64)


def lstm_extras(rng, H, P, peepholes):
    w_hr = rng.uniform(-1, 1, (P, H)) if P else None
    peep = tuple(rng.uniform(-1, 1, H) for _ in range(3)) if peepholes else None
    return w_hr, peep


def run(impl, cell, x, states, params, dout, dfinals, batch_sizes, w_hr=None, peep=None):
    """Training forward + backward with accumulators starting at 1. -> dict name -> array."""
    kwargs = dict(cell.kwargs)
    args = (x, *states, params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"])
    grads = {k: np.ones_like(v) for k, v in params.items()}
    gkw = dict(dweight_ih=grads["weight_ih"], dweight_hh=grads["weight_hh"], dbias_ih=grads["bias_ih"],
               dbias_hh=grads["bias_hh"])
    if cell.family == "lstm":
        out, h_n, c_n, saved = impl.lstm_forward(*args, weight_hr=w_hr, peepholes=peep, batch_sizes=batch_sizes)
        finals = (h_n, c_n)
        if w_hr is not None:
            grads["weight_hr"] = gkw["dweight_hr"] = np.ones_like(w_hr)
        if peep is not None:
            gkw["dpeepholes"] = tuple(np.ones_like(p) for p in peep)
            grads.update({f"peephole_{k}": g for k, g in zip("ifo", gkw["dpeepholes"])})
        dx, *dstates = impl.lstm_backward(saved, params["weight_ih"], params["weight_hh"], dout, *dfinals,
                                          weight_hr=w_hr, peepholes=peep, **gkw)
    else:
        forward = getattr(impl, f"{cell.family}_forward")
        backward = getattr(impl, f"{cell.family}_backward")
        out, h_n, saved = forward(*args, batch_sizes=batch_sizes, **kwargs)
        finals = (h_n,)
        dx, *dstates = backward(saved, params["weight_ih"], params["weight_hh"], dout, *dfinals, **gkw)
    result = {"out": out, "dx": dx, **{f"final{k}": f for k, f in enumerate(finals)},
              **{f"dstate{k}": d for k, d in enumerate(dstates)}, **{f"d{k}": g for k, g in grads.items()}}
    return result


def problem(cell, lengths, I, H, dtype, seed, P=0, peepholes=False):
    rng = np.random.default_rng(seed)
    G, B = cell.gates, len(lengths)
    Pw = P or H
    bs = batch_sizes_of(lengths)
    N = int(bs.sum())
    params = {"weight_ih": rng.uniform(-1, 1, (G * H, I)), "weight_hh": rng.uniform(-1, 1, (G * H, Pw)),
              "bias_ih": rng.uniform(-1, 1, G * H), "bias_hh": rng.uniform(-1, 1, G * H)}
    w_hr, peep = lstm_extras(rng, H, P, peepholes)
    x = rng.standard_normal((N, I))
    states = (rng.standard_normal((B, Pw)),) + ((rng.standard_normal((B, H)),) if cell.n_states == 2 else ())
    dout = rng.standard_normal((N, Pw))
    dfinals = tuple(rng.standard_normal(s.shape) for s in states)
    cast = (lambda a: None if a is None else a.astype(dtype))
    arrays = (x, states, params, dout, dfinals, w_hr, peep)

    def in_dtype(conv):
        x, states, params, dout, dfinals, w_hr, peep = arrays
        return (conv(x), tuple(conv(s) for s in states), {k: conv(v) for k, v in params.items()}, conv(dout),
                tuple(conv(d) for d in dfinals), conv(w_hr), None if peep is None else tuple(conv(p) for p in peep))

    low = in_dtype(cast)
    # the reference runs in float64 on exactly the values the kernel sees
    high = in_dtype(lambda a: None if a is None else cast(a).astype(np.float64))
    return bs, low, high


def compare(cell, bs, low, high, dtype, got=None):
    """The kernels' run on `low` (or `got`, a run already made) against the reference's on `high`."""
    if got is None:
        got = run(functional, cell, *low[:5], bs, *low[5:])
    x, states, params, dout, dfinals, w_hr, peep = high
    assert_matches(cell, got, run(reference, cell, x, states, params, dout, dfinals, bs, w_hr, peep), dtype)


def assert_matches(cell, got, want, dtype):
    """The kernels' results `got` (run()'s dict) have the reference's names and shapes, are in `dtype`, and are
    within its tolerance of `want`."""
    assert got.keys() == want.keys()
    tol = FLOAT64_TOLERANCE if dtype == np.float64 else FLOAT32_TOLERANCE
    for name in want:
        assert got[name].shape == want[name].shape, name
        assert got[name].dtype == dtype, name
        err = relative_error(got[name], want[name])
        assert err <= tol, f"{cell.name} {name}: relative error {err:.3g} > {tol:g}"


@cells
@dtypes
@pytest.mark.parametrize("lengths,I,H", PACKED, ids=lambda v: str(v))
def test_packed_sequences_match_reference(cell, dtype, lengths, I, H, isa):
    """Packed rows of different lengths: outputs, each row's final state, dx, the initial-state and all parameter
    gradients equal the reference's."""
    bs, low, high = problem(cell, lengths, I, H, dtype, seed=sum(lengths) * 31 + H)
    compare(cell, bs, low, high, dtype)


LSTM = ALL_CELLS[0]


@dtypes
@pytest.mark.parametrize("P,peepholes", [(3, False), (0, True), (5, True), (17, False)], ids=str)
@pytest.mark.parametrize("lengths,I,H,packed", [
    ((4, 4, 4), 3, 7, True), ((4, 4, 4), 3, 7, False), ((2,), 1, 18, True), ((2,), 1, 18, False),
    ((5, 3, 3, 1, 0), 4, 9, True), ((3, 3, 2, 2, 2, 1), 6, 33, True),  # unequal lengths: packed only
], ids=lambda v: str(v))
def test_lstm_projection_and_peepholes_match_reference(dtype, P, peepholes, lengths, I, H, packed, isa):
    """LSTMP (h = W_hr m, P smaller or larger than H) and peepholes, with and without the packed layout: every
    output and gradient (weight_hr's and the peepholes' included) equals the reference's."""
    bs, low, high = problem(LSTM, lengths, I, H, dtype, seed=P * 7 + H, P=P, peepholes=peepholes)
    if not packed:  # the same rows as (T, B, .) arrays

        def uniform(arrays):
            x, states, params, dout, dfinals, w_hr, peep = arrays
            T, B = len(bs), len(lengths)
            return (x.reshape(T, B, -1), states, params, dout.reshape(T, B, -1), dfinals, w_hr, peep)

        low, high, bs = uniform(low), uniform(high), None
    compare(LSTM, bs, low, high, dtype)


# Large outputs of a loop are streamed to memory with non-temporal stores (sequence/outputs.h): a training forward's
# saved gates from four L2s (stream_saved_bytes: 8 MiB with a 2 MiB L2) and, with the loop on two threads, a
# backward loop's pre-activation gradients from eight (stream_gradient_bytes, 16 MiB). H = 388 puts the first gate of
# each row on a cache line and the others off it, with a partial register; the RNN's rows (H = 700) start off the
# line by turns.
STREAMED = {"lstm": (48, 388), "gru": (48, 388), "rnn": (96, 700)}  # family -> (T, H), with B = 64 and I = 8


@functools.lru_cache(maxsize=None)
def streamed_problem(cell, dtype):
    """-> (low, reference results) for test_outputs_streamed_past_the_caches_match_reference, once per cell and dtype."""
    T, H = STREAMED[cell.family]
    bs, low, high = problem(cell, (T,) * 64, 8, H, dtype, seed=13)
    x, states, params, dout, dfinals, _, _ = low
    # PyTorch's weight scale, 1/sqrt(H): weights of up to 1 make sequences this long chaotic enough that float64
    # rounding grows past the tolerance whatever the implementation
    params = {k: (v.astype(np.float64) / np.sqrt(H)).astype(dtype) for k, v in params.items()}
    shape = (T, 64, -1)
    low = (x.reshape(shape), states, params, dout.reshape(shape), dfinals)
    hx, hstates, _, hdout, hdfinals, _, _ = high
    hparams = {k: v.astype(np.float64) for k, v in params.items()}
    want = run(reference, cell, hx.reshape(shape), hstates, hparams, hdout.reshape(shape), hdfinals, None)
    return low, want


@cells
@dtypes
def test_outputs_streamed_past_the_caches_match_reference(cell, dtype, isa):
    """Every cell with streamed saved gates (LSTM, GRU) and pre-activation gradients (LSTM, reset_after GRU, RNN):
    outputs, dx, initial-state and all parameter gradients equal the reference's."""
    T, H = STREAMED[cell.family]
    size, gradients = np.dtype(dtype).itemsize, {"lstm": 4, "gru": 6, "rnn": 1}[cell.family]
    assert T * 64 * gradients * H * size >= 16 << 20  # the pre-activation gradients (2 x 3H wide for the GRU)
    low, want = streamed_problem(cell, dtype)
    assert_matches(cell, run(functional, cell, *low, None), want, dtype)


@cells
def test_packed_equal_lengths_equal_the_uniform_layout_bitwise(cell, isa):
    """batch_sizes = [B] * T computes exactly what the (T, B, .) layout does."""
    lengths = (4, 4, 4, 4, 4)
    bs, low, _ = problem(cell, lengths, 6, 11, np.float32, seed=5)
    x, states, params, dout, dfinals, _, _ = low
    T, B = len(bs), len(lengths)
    packed = run(functional, cell, x, states, params, dout, dfinals, bs)
    uniform = run(functional, cell, x.reshape(T, B, -1), states, params, dout.reshape(T, B, -1), dfinals, None)
    for name in packed:
        np.testing.assert_array_equal(packed[name].reshape(uniform[name].shape), uniform[name], err_msg=name)


@cells
@dtypes
def test_packed_threads_give_bitwise_one_thread_results(cell, dtype, isa, num_threads):
    """A packed batch large enough for the time loop's second thread (and an LSTM with projection and peepholes):
    one and two threads agree bit for bit."""
    lengths = tuple(int(v) for v in np.sort(np.random.default_rng(3).integers(1, 9, 24))[::-1])
    P, peepholes = (40, True) if cell.family == "lstm" else (0, False)
    bs, low, _ = problem(cell, lengths, 64, 160, dtype, seed=9, P=P, peepholes=peepholes)
    x, states, params, dout, dfinals, w_hr, peep = low
    _core.set_adaptive_threads(False)
    try:
        results = []
        for n in (1, 2):
            num_threads(n)
            results.append(run(functional, cell, x, states, params, dout, dfinals, bs, w_hr, peep))
    finally:
        _core.set_adaptive_threads(True)
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)


def test_inference_keeps_each_rows_final_cell_state():
    """Inference updates c in place: a row that stops early keeps its own last c (equal to training's)."""
    bs, low, _ = problem(LSTM, (6, 2, 1, 0), 3, 10, np.float64, seed=8)
    x, (h0, c0), p, *_ = low
    args = (x, h0, c0, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    _, h_t, c_t, _ = functional.lstm_forward(*args, batch_sizes=bs, training=True)
    _, h_i, c_i, _ = functional.lstm_forward(*args, batch_sizes=bs, training=False)
    np.testing.assert_array_equal(c_t, c_i)
    np.testing.assert_array_equal(h_t, h_i)
    np.testing.assert_array_equal(c_i[3], c0[3])  # the row of length 0


# ---------------------------------------------------------------------------------------------------- bad arguments


def lstm_args(B=3, I=2, H=4, P=0, lengths=(3, 2, 1)):
    rng = np.random.default_rng(0)
    bs = batch_sizes_of(lengths)
    Pw = P or H
    return dict(x=rng.standard_normal((int(bs.sum()), I)), h0=np.zeros((B, Pw)), c0=np.zeros((B, H)),
                weight_ih=rng.standard_normal((4 * H, I)), weight_hh=rng.standard_normal((4 * H, Pw)),
                weight_hr=rng.standard_normal((P, H)) if P else None, batch_sizes=bs)


@pytest.mark.parametrize("batch_sizes,error,message", [
    (np.array([3, 2, 1], dtype=np.int32), TypeError, "batch_sizes: expected dtype int64, got int32"),
    (np.array([[3, 2, 1]]), ValueError, "batch_sizes: expected shape (T,), got (1, 3)"),
    (np.array([2, 3, 1]), ValueError, "batch_sizes: expected non-increasing values, got 2 then 3 at index 1"),
    (np.array([4, 1, 1]), ValueError, "batch_sizes: expected values in [0, 3] (B = h0.shape[0]), got 4 at index 0"),
    (np.array([3, 2, -1]), ValueError, "got -1 at index 2"),
    (np.array([3, 2, 2]), ValueError, "x: expected shape (7, 2) (packed rows: N = sum(batch_sizes)"),
    ([3, 2, 1], TypeError, "batch_sizes: expected a numpy.ndarray, got list"),
], ids=["int32", "2d", "increasing", "above-B", "negative", "sum", "list"])
def test_bad_batch_sizes_are_refused_naming_the_argument(batch_sizes, error, message):
    a = lstm_args()
    a["batch_sizes"] = batch_sizes
    with pytest.raises(error) as exc:
        functional.lstm_forward(a["x"], a["h0"], a["c0"], a["weight_ih"], a["weight_hh"],
                                batch_sizes=a["batch_sizes"])
    assert message in str(exc.value)


def test_bad_projection_and_peepholes_are_refused_naming_the_argument():
    a = lstm_args(P=3)
    base = (a["x"], a["h0"], a["c0"], a["weight_ih"])
    with pytest.raises(ValueError, match=r"weight_hh: expected shape \(16, 3\) \(4\*H, P with weight_hr"):
        functional.lstm_forward(*base, np.zeros((16, 4)), weight_hr=a["weight_hr"], batch_sizes=a["batch_sizes"])
    with pytest.raises(ValueError, match=r"weight_hr: expected shape \(P, H\)"):
        functional.lstm_forward(*base, a["weight_hh"], weight_hr=np.zeros(3), batch_sizes=a["batch_sizes"])
    with pytest.raises(ValueError, match=r"h0: expected shape \(3, 3\)"):
        functional.lstm_forward(a["x"], np.zeros((3, 4)), a["c0"], a["weight_ih"], a["weight_hh"],
                                weight_hr=a["weight_hr"], batch_sizes=a["batch_sizes"])
    with pytest.raises(ValueError, match=r"peepholes\[2\] \(p_o\): expected shape \(4,\), got \(3,\)"):
        functional.lstm_forward(*base, a["weight_hh"], weight_hr=a["weight_hr"], batch_sizes=a["batch_sizes"],
                                peepholes=(np.zeros(4), np.zeros(4), np.zeros(3)))
    with pytest.raises(TypeError, match="peepholes: expected None or a tuple"):
        functional.lstm_forward(*base, a["weight_hh"], weight_hr=a["weight_hr"], batch_sizes=a["batch_sizes"],
                                peepholes=np.zeros((3, 4)))


def test_backward_requires_the_extra_accumulators():
    a = lstm_args(P=3)
    peep = tuple(np.zeros(4) for _ in range(3))
    out, _, _, saved = functional.lstm_forward(a["x"], a["h0"], a["c0"], a["weight_ih"], a["weight_hh"],
                                               weight_hr=a["weight_hr"], peepholes=peep,
                                               batch_sizes=a["batch_sizes"])
    grads = dict(dweight_ih=np.zeros_like(a["weight_ih"]), dweight_hh=np.zeros_like(a["weight_hh"]))
    common = (saved, a["weight_ih"], a["weight_hh"], np.zeros(out.shape))
    with pytest.raises(ValueError, match="dweight_hr: expected an array"):
        functional.lstm_backward(*common, weight_hr=a["weight_hr"], peepholes=peep, **grads,
                                 dpeepholes=tuple(np.zeros(4) for _ in range(3)))
    with pytest.raises(ValueError, match="dpeepholes: expected three arrays"):
        functional.lstm_backward(*common, weight_hr=a["weight_hr"], peepholes=peep, **grads,
                                 dweight_hr=np.zeros_like(a["weight_hr"]))


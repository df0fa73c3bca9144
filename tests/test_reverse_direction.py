"""The kernels' reverse direction (``reverse=True`` of pylstm.functional's forwards, in the (T, B, .) layout): the loop
runs the steps from the last, reading and writing the rows of each time in place.

* Bitwise: every result of reverse=True on x is the one the forward direction gives on the flipped copy x[::-1],
  flipped back (outputs, final states, the saved record's per-step arrays, dx, the initial state's gradients and the
  parameter gradients), for every cell variant, dtype, ISA and 1-2 threads, on shapes that take the kernels' routes
  (dot products at batch 1-4, packed panels, projection chunks with a tail, the threaded loops).
* The NumPy reference's reverse=True matches the kernels' within the tolerances of tests/test_cells.py.
* The packed layout does not take the direction (the layers reorder its rows instead): reverse=True with batch_sizes
  raises a ValueError naming ``reverse``, in the kernels and the reference alike.
"""
import numpy as np
import pytest
from cells import ALL_CELLS
from compare import assert_close
from test_cells import F32_OF_SCALE, F64
from test_isa_and_threads import two_threads_stay_two  # noqa: F401  (a fixture)

from pylstm import functional as F
from pylstm import reference as R

# (T, B, I, H): batch 1 and 3-4 (dot products), 5 and 8 (packed panels), T past a projection chunk with a tail, one
# step, and a shape whose time loop runs on two threads.
SHAPES = {"b1": (7, 1, 5, 9), "b3": (11, 3, 6, 10), "b4-T1": (1, 4, 3, 8), "b5": (37, 5, 7, 12),
          "b8-long": (70, 8, 9, 17), "threaded": (6, 8, 64, 384)}
dtypes = pytest.mark.parametrize("dtype", [np.float32, np.float64])
# Every variant, and the LSTM with a projection and peepholes (their own loops and gradient terms).
CASES = [(cell, False) for cell in ALL_CELLS] + [(ALL_CELLS[0], True)]
cases = pytest.mark.parametrize("cell,extras", CASES,
                                ids=[cell.name + ("+proj+peepholes" if extras else "") for cell, extras in CASES])


def problem(cell, extras, T, B, I, H, dtype, seed=3):
    rng = np.random.default_rng(seed)
    G, bound = cell.gates, 1 / np.sqrt(H)
    P = H // 2 + 1 if extras else H

    def uniform(*shape):
        return rng.uniform(-bound, bound, shape).astype(dtype)

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    weights = (uniform(G * H, I), uniform(G * H, P), uniform(G * H), uniform(G * H))
    lstm_extras = (uniform(P, H), (uniform(H), uniform(H), uniform(H))) if extras else (None, None)
    widths = cell.facts.state_widths(H, P)
    return dict(x=normal(T, B, I), states=tuple(normal(B, w) for w in widths), weights=weights, extras=lstm_extras,
                dout=normal(T, B, P), dfinals=tuple(normal(B, w) for w in widths),
                grads={name: normal(*w.shape) for name, w in zip(("ih", "hh", "b_ih", "b_hh"), weights)},
                extra_grads=(normal(P, H), (normal(H), normal(H), normal(H))) if extras else (None, None))


def run(facts, p, x, dout, reverse):
    """Training forward, inference forward and backward of one cell -> name -> array."""
    out, finals, saved = facts.forward(x, p["states"], p["weights"], p["extras"], None, True, reverse)
    out_inf, finals_inf, _ = facts.forward(x, p["states"], p["weights"], p["extras"], None, False, reverse)
    grads = {k: v.copy() for k, v in p["grads"].items()}
    hr, peep = p["extra_grads"]
    extra_grads = (None if hr is None else hr.copy(), None if peep is None else tuple(a.copy() for a in peep))
    dx, dstates = facts.backward(saved, p["weights"][:2] + (None, None), p["extras"], dout, p["dfinals"],
                                 dict(dweight_ih=grads["ih"], dweight_hh=grads["hh"], dbias_ih=grads["b_ih"],
                                      dbias_hh=grads["b_hh"]), extra_grads)
    result = {"out": out, "out (inference)": out_inf, "dx": dx}
    for k, final in enumerate(finals):
        result.update({f"final{k}": final, f"final{k} (inference)": finals_inf[k], f"dstate{k}": dstates[k]})
    for name in ("gates", "cells"):
        if getattr(saved, name, None) is not None:
            result[f"saved.{name}"] = getattr(saved, name)
    result.update({f"d{k}": g for k, g in grads.items()})
    if hr is not None:
        result.update({"dweight_hr": extra_grads[0], **{f"dpeephole{k}": a for k, a in enumerate(extra_grads[1])}})
    assert saved.reverse is reverse
    return result


# The results indexed by time, which the flipped run has backwards.
PER_STEP = ("out", "out (inference)", "dx", "saved.gates", "saved.cells")


@cases
@dtypes
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("threads", [1, 2])
def test_reverse_equals_the_flipped_forward_bitwise(cell, extras, dtype, shape, threads, isa, num_threads,
                                                    two_threads_stay_two):  # noqa: F811
    p = problem(cell, extras, *SHAPES[shape], dtype)
    kernel = cell.facts.on(F)
    num_threads(threads)
    reverse = run(kernel, p, p["x"], p["dout"], True)
    flipped = run(kernel, p, np.ascontiguousarray(p["x"][::-1]), np.ascontiguousarray(p["dout"][::-1]), False)
    assert reverse.keys() == flipped.keys()
    for name, got in reverse.items():
        want = flipped[name][::-1] if name in PER_STEP else flipped[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        if not np.array_equal(got, want):
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            raise AssertionError(f"{name} differs in {np.count_nonzero(diff)} of {diff.size} elements, at most by "
                                 f"{diff.max():.3g}")
    assert all(np.isfinite(v).all() for v in reverse.values())


@cases
@dtypes
@pytest.mark.parametrize("shape", ["b1", "b3", "b5", "b8-long"])
def test_reference_reverse_matches_the_kernels(cell, extras, dtype, shape):
    p = problem(cell, extras, *SHAPES[shape], dtype)
    got = run(cell.facts.on(F), p, p["x"], p["dout"], True)
    want = run(cell.facts.on(R), p, p["x"], p["dout"], True)
    forward = run(cell.facts.on(R), p, p["x"], p["dout"], False)
    assert not np.allclose(want["out"], forward["out"])  # the direction matters on these problems
    for name in want:
        assert_close(got[name], want[name], dtype, name, f64_tol=F64, f32_of_scale=F32_OF_SCALE)


@pytest.mark.parametrize("impl", [F, R], ids=["functional", "reference"])
@pytest.mark.parametrize("cell", ALL_CELLS, ids=lambda c: c.name)
def test_reverse_with_batch_sizes_is_refused(cell, impl):
    p = problem(cell, False, 3, 2, 4, 5, np.float64)
    rows = p["x"].reshape(6, 4)
    with pytest.raises(ValueError, match="reverse"):
        cell.facts.on(impl).forward(rows, p["states"], p["weights"], p["extras"], np.array([2, 2, 2]), True, True)

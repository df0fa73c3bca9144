"""The C++ kernels (pylstm.functional) against the NumPy reference, forward and backward, every cell and GRU form.

float64: the kernel and the reference run on the same inputs and must agree to 1e-10, relative to the largest
magnitude of each compared array (``assert_matches``). float32: the kernel runs on float32 inputs and is compared to
the reference run in float64 on the very same (upcast) values, within FLOAT32_TOLERANCE, the bound documented in the
README, or, on a problem so ill-conditioned that NumPy's own float32 computation (the reference run on the float32
arrays) misses that bound too, within NUMPY32_FACTOR times NumPy's float32 error.

The numerical tests run on every ISA path the machine supports (the ``isa`` fixture of conftest.py).
"""
from functools import lru_cache

import numpy as np
import pytest
from cells import cells, make_problem, with_bias

from pylstm import functional
from pylstm.saved import saved_bytes_per_step

# Relative to max(1, max |reference|) of each compared array. Measured on this suite: float64 at most 7e-14;
# float32 mostly below 5e-6, 1.7e-5 on the 30-step tanh RNN (its recurrence amplifies rounding), and more only on the
# ill-conditioned shape below.
FLOAT64_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 5e-5
# Ill-conditioned float32 problems (large weights over long dot products, amplified by a recurrence; e.g. the two-thread
# shape's tanh RNN, where NumPy's float32 itself is off by 3.5e-5 and the kernels by up to 6.1e-5): at most this many
# times NumPy's float32 error.
NUMPY32_FACTOR = 2.0

# (T, B, I, H): single step, single row, single unit, I != H, H not a multiple of 8 or 16, I = 1, a longer sequence,
# and one large enough that the GEMMs split over threads.
SHAPES = [(1, 1, 1, 1), (1, 3, 5, 7), (6, 2, 3, 5), (4, 5, 17, 13), (3, 4, 8, 16), (5, 3, 40, 33), (2, 9, 1, 20),
          (30, 2, 6, 9), (6, 16, 64, 72)]
# Tails and paths of the SIMD kernels (vectors of 8/16 lanes, micro-kernel panels 8/16/32 units wide): H one below
# and above those widths; odd B; I = 1; B up to 4 (the recurrent GEMM by dot products on the unpacked weights) and
# above (packed panels); T * B up to 4 (the training input projection by dot products too) and above; one larger
# shape, H three panels wide (the shapes that run on two threads are in test_isa_and_threads.py); and H = 256 and
# 512, where a cell's pre-activation gradients (4H for the LSTM; 3H for the GRU and H for the RNN in float64) are a
# multiple of 4 KiB per row and get a padded row stride. Fewer than 8 steps at batch 1-4 read W_hh in place in the
# backward (gemm_axpy), and T * B up to 4 read W_ih in place for dx: the last two shapes give them whole register
# blocks of columns besides a partial one (H = 200 and 150, I = 130 and 200), at one, three and four rows.
TAIL_SHAPES = [(2, 1, 3, 15), (3, 5, 2, 17), (2, 6, 1, 31), (1, 13, 7, 33), (3, 3, 9, 63), (2, 13, 5, 65),
               (4, 1, 4, 7), (5, 1, 1, 7), (1, 4, 1, 17), (2, 2, 3, 31), (1, 5, 33, 1), (2, 3, 2, 64),
               (6, 16, 40, 96), (3, 13, 5, 256), (2, 5, 3, 512), (3, 1, 130, 200), (1, 4, 200, 150)]
shapes = pytest.mark.parametrize("T,B,I,H", SHAPES + TAIL_SHAPES, ids=lambda v: str(v))
dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])


def relative_error(actual, expected):
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    return float(np.abs(actual.astype(np.float64) - expected).max(initial=0.0)) / scale


def assert_matches(actual, expected, dtype, what, numpy_float32=None):
    """``numpy_float32``: None, or a function returning NumPy's float32 result for the same array (called only when
    a float32 result misses FLOAT32_TOLERANCE)."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype} != {np.dtype(dtype)}"
    tol = FLOAT64_TOLERANCE if dtype == np.float64 else FLOAT32_TOLERANCE
    err = relative_error(actual, expected)
    if err > tol and dtype == np.float32 and numpy_float32 is not None:
        numpy_err = relative_error(numpy_float32(), expected)
        tol = max(tol, NUMPY32_FACTOR * numpy_err)
        what += f" (NumPy's float32 error {numpy_err:.3g})"
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def cast_problem(problem, dtype):
    """The problem's arrays in `dtype`, and the float64 copy of those same values for the reference."""
    def both(a):
        low = None if a is None else a.astype(dtype)
        return low, (None if a is None else low.astype(np.float64))

    x, x64 = both(problem.x)
    states = [both(s) for s in problem.states]
    params = {k: both(v) for k, v in problem.params.items()}
    dout, dout64 = both(problem.w_out)
    dfinals = [both(d) for d in problem.w_finals]
    kernel = (x, tuple(s for s, _ in states), {k: v for k, (v, _) in params.items()}, dout,
              tuple(d for d, _ in dfinals))
    ref = (x64, tuple(s for _, s in states), {k: v for k, (_, v) in params.items()}, dout64,
           tuple(d for _, d in dfinals))
    return kernel, ref


def run(cell, x, states, params, dout, dfinals, grads_start):
    """Forward in training mode, then backward into copies of grads_start. -> dict of every output and gradient."""
    out, finals, saved = cell.forward(x, states, params)
    grads = {k: v.copy() for k, v in grads_start.items()}
    dx, dstates = cell.backward(saved, params, dout, dfinals, grads)
    result = {"out": out, "dx": dx, **{f"final{k}": f for k, f in enumerate(finals)},
              **{f"dstate{k}": d for k, d in enumerate(dstates)}, **{f"d{k}": g for k, g in grads.items()}}
    result.update({f"saved.{name}": getattr(saved, name) for name in ("gates", "cells") if hasattr(saved, name)})
    return result


@cells
@with_bias
@dtypes
@shapes
def test_kernel_matches_reference(cell, bias, dtype, T, B, I, H, isa):
    """Outputs, final states, the saved record, dx, the initial-state gradients and all four parameter gradients
    (accumulated onto non-zero starting values) equal the reference's."""
    problem = make_problem(cell, T, B, I, H, bias, seed=T * 1000 + B * 100 + I * 10 + H)
    (x, states, params, dout, dfinals), (x64, states64, params64, dout64, dfinals64) = cast_problem(problem, dtype)
    rng = np.random.default_rng(1)
    grads_start = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items() if v is not None}
    got = run(cell.on(functional), x, states, params, dout, dfinals, grads_start)
    want = run(cell, x64, states64, params64, dout64, dfinals64,
               {k: v.astype(np.float64) for k, v in grads_start.items()})
    assert got.keys() == want.keys()
    numpy32 = lru_cache(maxsize=None)(lambda: run(cell, x, states, params, dout, dfinals, grads_start))
    for name in want:
        assert_matches(got[name], want[name], dtype, f"{cell.name} {name}", lambda name=name: numpy32()[name])


@cells
@dtypes
def test_final_state_gradient_may_be_omitted(cell, dtype, isa):
    """dh_n (and dc_n) = None means zero: the same result as passing zeros."""
    problem = make_problem(cell, 4, 3, 5, 6, True, seed=11)
    (x, states, params, dout, _), _ = cast_problem(problem, dtype)
    kernel = cell.on(functional)
    zeros = tuple(np.zeros_like(s) for s in states)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    a = run(kernel, x, states, params, dout, zeros, grads)
    b = run(kernel, x, states, params, dout, (None,) * len(states), grads)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@cells
@dtypes
# Inference projects the inputs a chunk of ceil(256 / B) steps at a time, training all at once: a small case, one by
# dot products (T * B <= 4), one of two chunks, and one whose time loop runs on two threads.
@pytest.mark.parametrize("T,B,I,H", [(5, 3, 4, 7), (3, 1, 2, 7), (70, 4, 3, 17), (6, 16, 40, 96)],
                         ids=lambda v: str(v))
def test_inference_equals_training_forward(cell, dtype, T, B, I, H, isa):
    """training=False keeps nothing (saved is None) and computes bit for bit the same outputs."""
    problem = make_problem(cell, T, B, I, H, True, seed=3)
    (x, states, params, _, _), _ = cast_problem(problem, dtype)
    kernel = cell.on(functional)
    out_t, finals_t, saved_t = kernel.forward(x, states, params, training=True)
    out_i, finals_i, saved_i = kernel.forward(x, states, params, training=False)
    assert saved_t is not None and saved_i is None
    np.testing.assert_array_equal(out_t, out_i)
    for a, b in zip(finals_t, finals_i):
        np.testing.assert_array_equal(a, b)
    assert not out_t.flags.writeable and out_i.flags.writeable


@cells
def test_saved_record_holds_documented_bytes_per_step(cell):
    """Training keeps per step and batch row: LSTM 5H values (gates, cells), GRU 4H (reset_after) or 3H, RNN none."""
    B, H = 3, 7
    problem = make_problem(cell, 4, B, 5, H, True, seed=2)
    _, _, saved = cell.on(functional).forward(problem.x, problem.states, problem.params)
    per_row = {"lstm": 5 * H, "gru-reset_after": 4 * H, "gru-reset_before": 3 * H, "rnn-tanh": 0, "rnn-relu": 0}
    assert saved_bytes_per_step(saved) == per_row[cell.name] * B * 8
    assert saved.x is problem.x and saved.h0 is problem.states[0]


@cells
@pytest.mark.parametrize("T,B", [(0, 3), (3, 0), (0, 0)])
def test_empty_sequence_or_batch(cell, T, B, isa):
    """T = 0 returns the initial state as the final one; B = 0 returns empty arrays; backward passes dh_n through."""
    I, H = 4, 5
    problem = make_problem(cell, max(T, 1), max(B, 1), I, H, True, seed=4)
    x = np.zeros((T, B, I))
    states = tuple(np.ascontiguousarray(s[:B]) + 1.0 for s in problem.states)
    kernel = cell.on(functional)
    out, finals, saved = kernel.forward(x, states, problem.params)
    assert out.shape == (T, B, H)
    for f, s in zip(finals, states):
        if T == 0:
            np.testing.assert_array_equal(f, s)
        assert f.shape == (B, H)
    grads = {k: np.zeros_like(v) for k, v in problem.params.items()}
    dfinals = tuple(np.full((B, H), 2.0) for _ in states)
    dx, dstates = kernel.backward(saved, problem.params, np.zeros((T, B, H)), dfinals, grads)
    assert dx.shape == (T, B, I)
    if T == 0:
        for d, dn in zip(dstates, dfinals):
            np.testing.assert_array_equal(d, dn)
    for g in grads.values():
        np.testing.assert_array_equal(g, 0.0)


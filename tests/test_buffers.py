"""Large outputs (1 MiB and more) come from blocks recycled between calls (csrc/primitives/buffers.h): a block keeps
whatever its previous array held, so every kernel must write every element of its outputs, and the blocks must really
be reused and released. Outputs of 4 KiB and more start on a cache line."""
import gc

import numpy as np
import pytest
from cells import ALL_CELLS
from test_isa_and_threads import forward_backward_all, random_problem
from test_kernel_sequences import compare, problem, run

import pylstm
from pylstm import _core, functional

cells = pytest.mark.parametrize("cell", ALL_CELLS, ids=lambda c: c.name)

# float64, H = 256: out and the saved gates are over 1 MiB. Rows of different lengths (one that never runs), and the
# same batch as whole sequences.
LENGTHS = [(40,) * 12 + (30, 20, 10, 0), (40,) * 16]


def poison_cache(cell, bs, arrays):
    """Run the kernels on NaN inputs of the same shapes, then free the results: their blocks, full of NaN, wait in the
    cache for the next call of this size. -> the bytes that call left in the cache."""
    x, states, params, dout, dfinals, w_hr, peep = arrays
    nan = (lambda a: np.full_like(a, np.nan))
    run(functional, cell, nan(x), tuple(nan(s) for s in states), params, nan(dout), tuple(nan(d) for d in dfinals),
        bs, w_hr, peep)
    gc.collect()
    return _core.cached_bytes()


@cells
@pytest.mark.parametrize("lengths", LENGTHS, ids=["packed", "uniform"])
def test_outputs_in_recycled_blocks_are_fully_written(cell, lengths, isa):
    """After a call on NaN inputs has filled the cache with NaN blocks, a call of the same sizes reuses them (the
    cache shrinks) and still equals the reference: no output element is left unwritten."""
    bs, low, high = problem(cell, lengths, 8, 256, np.float64, seed=len(lengths))
    for params in (low[2], high[2]):  # weights ~ U(-1/16, 1/16): a well-conditioned recurrence over 40 steps
        for name in params:
            params[name] = params[name] / 16
    if len(set(lengths)) == 1:  # whole sequences: the (T, B, .) layout, no batch_sizes
        T, B = lengths[0], len(lengths)
        bs = None
        low = tuple(a.reshape(T, B, -1) if i in (0, 3) else a for i, a in enumerate(low))
        high = tuple(a.reshape(T, B, -1) if i in (0, 3) else a for i, a in enumerate(high))
    cached = poison_cache(cell, bs, low)
    assert cached >= 2 << 20, f"the NaN call left only {cached} bytes in the cache"
    got = run(functional, cell, *low[:5], bs, *low[5:])
    assert _core.cached_bytes() < cached, "the call did not take its outputs from the cache"
    compare(cell, bs, low, high, np.float64, got=got)


def test_release_memory_frees_the_cache():
    """The blocks of a training step's freed outputs wait in the cache until pylstm.release_memory()."""
    layer = pylstm.LSTM(8, 512, dtype="float32", seed=0).train()
    x = np.zeros((64, 16, 8), np.float32)
    out, _ = layer(x)
    layer.backward(np.ones_like(out))
    del out
    layer.eval()  # drops the saved record
    gc.collect()
    cached = _core.cached_bytes()
    assert cached >= 2 << 20
    assert pylstm.release_memory() >= cached  # (and the kernels' scratch memory: tests/test_hardening.py)
    assert _core.cached_bytes() == 0


@cells
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_from_4_kib_start_on_a_cache_line(cell, dtype):
    """Every output of 4 KiB or more (out, dx, the saved gates, under and over the 1 MiB of recycled blocks) starts
    on a 64-byte boundary: two threads write the rows of h in halves, and a row that starts mid-line shares a line
    between them (NumPy's own arrays start on 16 bytes). Smaller ones stay NumPy's."""
    checked = 0
    for T, H in ((20, 40), (40, 520)):  # out from 9.6 KB, the saved gates up to 2 MB (float64 LSTM)
        arrays = forward_backward_all(cell, random_problem(cell, T, 3, 50, H, dtype, seed=T))
        for name, a in arrays.items():  # all but the weight gradients, which the caller provides
            if a.nbytes >= 4096 and not name.startswith(("dweight", "dbias")):
                offset = a.ctypes.data % 64
                assert offset == 0, f"{name} ({a.nbytes} bytes) starts {offset} bytes into a line"
                checked += 1
    assert checked >= 6

"""Batch layouts: how a padded batch of sequences becomes the rows the kernels run, and back.

A layer receives x (T, B, I) (or (B, T, I) with batch_first) and optionally each sequence's length. The kernels take
one of two layouts (see pylstm.functional):

* uniform, no lengths: the (T, B, .) array itself; the kernels run the reverse direction over it from the last step
  (their ``reverse=True``), with no copy;
* packed, with lengths: PyTorch's PackedSequence rows. Sequences are sorted longest first (a stable sort, so equal
  lengths keep their order), step t runs the first ``batch_sizes[t]`` of them, and the rows of all steps are stacked
  (N, .) with N = sum(lengths). The reverse direction runs the same batch_sizes on the rows permuted so that each
  sequence's step t becomes its step length-1-t: every sequence starts its backward pass at its own last step. (The
  kernels do not take the direction here: a reverse step's rows would be scattered over the forward steps' blocks,
  and each step's input projection, saved rows and gradients are one contiguous block of rows.)

Moving between the padded arrays and packed rows is one gather (in) and one scatter (out, zeros past each length), and
the same gathers serve the gradients in backward.
"""
import numpy as np


def check_lengths(lengths, batch, steps, sequence="x"):
    """lengths: None or B integers in [0, T] (T the steps of the array named `sequence`) -> None or an int64 array
    (B,)."""
    if lengths is None:
        return None
    try:
        arr = np.asarray(lengths)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"lengths: expected {batch} integers, got a ragged sequence ({exc})") from None
    if arr.size == 0 and arr.dtype.kind == "f":
        arr = arr.astype(np.int64)  # [] is float64 to NumPy
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},) (one length per sequence of the batch), got {arr.shape}")
    if batch and (arr.min() < 0 or arr.max() > steps):
        raise ValueError(f"lengths: expected values in [0, {steps}] (T = {steps} steps in {sequence}), "
                         f"got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def steps_past(lengths, steps, batch_first=False):
    """The steps past each sequence's length: a bool array (T, B), or (B, T) with batch_first, for checked lengths
    (B,)."""
    past = np.arange(steps)[:, None] >= np.asarray(lengths)[None, :]
    return past.T if batch_first else past


class Layout:
    """The row layout of one batch: ``Layout(T, B, lengths)``; lengths None means every sequence runs all T steps.

    ``batch_sizes`` is what the kernels take (None for the uniform layout). Row arrays ("rows") are (T, B, W) in the
    uniform layout and (N, W) in the packed one; states are (B, W) in the kernels' row order ("sorted").
    """

    def __init__(self, steps, batch, lengths=None):
        self.steps, self.batch = steps, batch
        self.lengths = lengths
        if lengths is None:
            self.batch_sizes = None
            return
        # Longest first; stable, so the packed order is the one torch's pack_padded_sequence(enforce_sorted=False) uses.
        self.order = np.argsort(-lengths, kind="stable")
        sorted_lengths = lengths[self.order]
        longest = int(sorted_lengths[0]) if batch else 0
        self.batch_sizes = (sorted_lengths[None, :] > np.arange(longest)[:, None]).sum(axis=1).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(self.batch_sizes)])
        # Packed row r runs step src_step[r] of sorted sequence src_rank[r].
        self.src_step = np.repeat(np.arange(longest), self.batch_sizes)
        self.src_rank = np.arange(len(self.src_step)) - offsets[self.src_step]
        self.src_batch = self.order[self.src_rank]
        # The reverse direction's row r is the forward row of the same sequence at step length-1-t (an involution).
        mirrored_step = sorted_lengths[self.src_rank] - 1 - self.src_step
        self.mirror = offsets[mirrored_step] + self.src_rank

    @property
    def packed(self):
        return self.batch_sizes is not None

    def gather(self, padded, batch_first):
        """Padded (T, B, W) or (B, T, W) -> rows (a new C-contiguous array; positions past a length are dropped)."""
        if not self.packed:
            return np.ascontiguousarray(padded.transpose(1, 0, 2) if batch_first else padded)
        if batch_first:
            return padded[self.src_batch, self.src_step]
        return padded[self.src_step, self.src_batch]

    def scatter(self, rows, batch_first):
        """Rows -> padded (T, B, W) or (B, T, W), zeros past each length."""
        if not self.packed:
            return np.ascontiguousarray(rows.transpose(1, 0, 2)) if batch_first else rows
        shape = (self.batch, self.steps) if batch_first else (self.steps, self.batch)
        padded = np.zeros(shape + rows.shape[-1:], dtype=rows.dtype)
        if batch_first:
            padded[self.src_batch, self.src_step] = rows
        else:
            padded[self.src_step, self.src_batch] = rows
        return padded

    def kernel_reverse(self, direction):
        """Whether the kernels run direction d (0 forward, 1 reverse) with ``reverse=True``: the uniform layout's
        reverse direction; the packed layout's runs forward over its own rows (direction_rows)."""
        return direction == 1 and not self.packed

    def direction_rows(self, rows, direction):
        """Rows of the forward direction <-> rows as the kernels run direction d (its own inverse): the same array,
        or for the packed layout's reverse direction a new array of the rows permuted by ``mirror``."""
        return rows[self.mirror] if direction == 1 and self.packed else rows

    def sort_state(self, state):
        """A (B, W) state in the caller's batch order -> a C-contiguous array in the kernels' row order."""
        return np.ascontiguousarray(state if not self.packed else state[self.order])

    def unsort_state(self, state, out):
        """Write a (B, W) state in the kernels' row order into `out` (B, W) in the caller's batch order."""
        if self.packed:
            out[self.order] = state
        else:
            out[...] = state

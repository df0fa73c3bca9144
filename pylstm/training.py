"""The training loop: ``pylstm.fit`` runs the epochs of a model's training (forward, loss, backward, clipping,
optimizer and scheduler steps), shows its progress, validates, stops early, writes a checkpoint each epoch and resumes
from one bit for bit; it returns a ``History``.

Two kinds of data:

* parallel streams (language modelling): an (N, B) integer array, e.g. ``pylstm.text.batchify(ids, B)``. Each epoch
  runs chunks of ``bptt`` steps, ``x = data[i:i + bptt]`` and the targets ``y = data[i + 1:i + 1 + bptt]`` (the next
  token; the last chunk as long as the data leaves), with the model's states carried from chunk to chunk (truncated
  backpropagation through time: the gradient stops at each chunk's start) and reset at each epoch's start. The chunks
  are (T, B), and (B, T) (transposed) for a model whose layers are batch_first;
* a sequence of minibatches ``(x, y)`` or ``(x, y, lengths)`` (a list, or any Sequence, which may make its batches
  on demand), run in order every epoch, each from zero states; ``lengths`` go to the model and to the loss, so
  padded steps neither run nor count.

``model`` is a ``pylstm.Sequential`` (or anything with its interface: ``out, states = model(x, states,
lengths=lengths)``, ``model.backward(dout)``, ``params``/``grads``, ``train()``/``eval()``, ``rng_state()``), ``loss``
a function ``loss(out, y) -> (loss, dout)`` such as ``pylstm.losses.cross_entropy`` (called with ``lengths=`` when a
batch has lengths: after batch_first layers, ``functools.partial(cross_entropy, batch_first=True)``), ``optimizer``
one of ``pylstm.optim``'s.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import math
import numbers
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Literal, Optional, Union

import numpy as np
import numpy.typing as npt

from . import checkpoint as ckpt
from . import losses
from ._checks import positive_int
from ._types import FloatArray
from .module import Module
from .optim import ReduceLROnPlateau, _LRScheduler, _Optimizer, clip_grad_norm
from .sequence import steps_past
from .text import Vocab

#: fit's data: (N, B) integer streams, or a sequence of minibatches (x, y) or (x, y, lengths).
TrainingData = Union[npt.NDArray[np.integer[Any]], Sequence[Sequence[Any]]]
#: A loss: (out, y[, lengths=]) -> (loss, dout), as pylstm.losses' functions.
LossFunction = Callable[..., tuple[Union[float, FloatArray], FloatArray]]
#: A path fit writes a checkpoint to or resumes from.
PathLike = Union[str, "os.PathLike[str]"]


class History:
    """What ``fit`` returns (and keeps in its checkpoints).

    * ``loss``: the loss of every step;
    * ``epoch_loss``: per epoch, the training loss averaged over its target tokens (within the lengths, and for
      ``pylstm.losses.cross_entropy`` not its ``ignore_index``; a batch without any does not count);
    * ``val_loss``: per epoch, the validation loss averaged over its target tokens (empty without ``val_data``);
    * ``tokens_per_s``: per epoch, target tokens trained per second;
    * ``lr``: per epoch, the learning rate it trained with;
    * ``stopped``: None when every epoch ran, else ``"early stopping"`` or ``"interrupted"`` (Ctrl-C);
    * ``epochs``: the number of epochs done.
    """

    _LISTS = ("loss", "epoch_loss", "val_loss", "tokens_per_s", "lr")
    loss: list[float]
    epoch_loss: list[float]
    val_loss: list[float]
    tokens_per_s: list[float]
    lr: list[float]
    stopped: Optional[str]

    def __init__(self) -> None:
        for name in self._LISTS:
            setattr(self, name, [])
        self.stopped = None

    @property
    def epochs(self) -> int:
        return len(self.epoch_loss)

    def as_dict(self) -> dict[str, Any]:
        return {**{name: list(getattr(self, name)) for name in self._LISTS}, "stopped": self.stopped}

    @classmethod
    def from_dict(cls, values: Any) -> History:
        """The inverse of ``as_dict`` (checked: it may come from a checkpoint file)."""
        history = cls()
        if not isinstance(values, dict) or set(values) != set(cls._LISTS) | {"stopped"}:
            raise ValueError(f"history: expected the keys {list(cls._LISTS) + ['stopped']}, got "
                             f"{sorted(values) if isinstance(values, dict) else type(values).__name__}")
        for name in cls._LISTS:
            v = values[name]
            if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype == np.float64:  # as fit's checkpoints keep it
                v = v.tolist()
            if not isinstance(v, list) or not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v):
                raise ValueError(f"history[{name!r}]: expected a list of numbers")
            try:
                setattr(history, name, [float(e) for e in v])
            except OverflowError:  # an int beyond any float
                raise ValueError(f"history[{name!r}]: expected a list of numbers within float range") from None
        if values["stopped"] not in (None, "early stopping", "interrupted"):
            raise ValueError(f"history['stopped']: expected None, 'early stopping' or 'interrupted', got "
                             f"{values['stopped']!r}")
        history.stopped = values["stopped"]
        return history

    def __repr__(self) -> str:
        last = f", epoch_loss {self.epoch_loss[-1]:.4f}" if self.epoch_loss else ""
        val = f", val_loss {self.val_loss[-1]:.4f}" if self.val_loss else ""
        return f"History(epochs={self.epochs}, steps={len(self.loss)}{last}{val}, stopped={self.stopped!r})"


def _lowest(values: Sequence[float]) -> float:
    """The smallest of the values that are not NaN (inf when there are none)."""
    return min((v for v in values if not math.isnan(v)), default=math.inf)


class EarlyStopping:
    """A callback for ``fit``: stop when ``monitor`` (``"val_loss"``, or ``"epoch_loss"`` for the training loss) has
    not fallen below its best earlier value by more than ``min_delta`` in the last ``patience`` epochs. It reads the
    history alone, so it holds no state of its own and a resumed run stops where an unbroken one would."""

    def __init__(self, patience: int = 3, min_delta: float = 0.0,
                 monitor: Literal["val_loss", "epoch_loss"] = "val_loss") -> None:
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 1:
            raise ValueError(f"patience: expected an int >= 1, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not 0 <= min_delta < math.inf:
            raise ValueError(f"min_delta: expected a finite number >= 0, got {min_delta!r}")
        if monitor not in ("val_loss", "epoch_loss"):
            raise ValueError(f"monitor: expected 'val_loss' or 'epoch_loss', got {monitor!r}")
        self.patience: int = int(patience)
        self.min_delta: float = float(min_delta)
        self.monitor: str = monitor

    def on_epoch_end(self, epoch: int, history: History) -> bool:
        values = getattr(history, self.monitor)
        if len(values) <= self.patience:
            return False
        # A NaN (a diverged epoch) is no best: before the window, or in it.
        best_before = _lowest(values[:-self.patience])
        return not _lowest(values[-self.patience:]) < best_before - self.min_delta

    def __repr__(self) -> str:
        return f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, monitor={self.monitor!r})"


# ----------------------------------------------------------------------------------------------------------------------
# The batches of an epoch


class _Batches:
    """The batches of one epoch, for `data` of either kind: iterating yields (x, y, lengths, carry), carry telling
    whether the states run on from the previous batch."""

    streams: Any  # the (N, B) int64 streams, or None for minibatches
    batches: Optional[Sequence[Any]]

    def __init__(self, data: TrainingData, bptt: Optional[int], name: str) -> None:
        self.name = name
        if isinstance(data, memoryview):  # (a Sequence to Python, but its rows are no batches)
            data = np.asarray(data)
        if isinstance(data, np.ndarray):
            if data.ndim != 2 or data.dtype.kind not in "iu":
                raise ValueError(f"{name}: expected parallel streams, an (N, B) integer array (pylstm.text.batchify), "
                                 f"got shape {data.shape} dtype {data.dtype}")
            if data.shape[0] < 2 or data.shape[1] < 1:
                raise ValueError(f"{name}: expected streams of at least 2 steps (an input and its next token) and "
                                 f"at least 1 stream, got shape {data.shape}")
            self.streams = np.ascontiguousarray(data, dtype=np.int64)
            self.bptt = self.streams.shape[0] - 1 if bptt is None else bptt
            self.steps = math.ceil((self.streams.shape[0] - 1) / self.bptt)
            self.batches = None
        else:
            if bptt is not None:
                raise ValueError(f"bptt: applies to parallel streams (an (N, B) integer array), but {name} is a "
                                 f"{type(data).__name__}")
            if isinstance(data, (str, bytes)) or not isinstance(data, Sequence) or len(data) == 0:
                raise TypeError(f"{name}: expected an (N, B) integer array of streams or a non-empty list of "
                                f"batches (x, y) or (x, y, lengths), got {type(data).__name__}")
            self.streams, self.batches, self.steps = None, data, len(data)

    def __iter__(self) -> Iterator[tuple[Any, Any, Any, bool]]:
        if self.batches is None:
            n = self.streams.shape[0]
            for i in range(0, n - 1, self.bptt):
                length = min(self.bptt, n - 1 - i)
                yield self.streams[i:i + length], self.streams[i + 1:i + 1 + length], None, True
        else:
            # Each batch is checked as it comes: a sequence may make its batches on demand (and keep none).
            for k, batch in enumerate(self.batches):
                if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
                    raise TypeError(f"{self.name}[{k}]: expected a batch (x, y) or (x, y, lengths), got "
                                    f"{type(batch).__name__}")
                yield batch[0], batch[1], batch[2] if len(batch) == 3 else None, False


# pylstm.losses.cross_entropy's ignore_index when not given.
_IGNORE_INDEX = inspect.signature(losses.cross_entropy).parameters["ignore_index"].default


def _tokens(y: npt.ArrayLike, lengths: Optional[npt.ArrayLike], loss: LossFunction) -> int:
    """The target tokens a batch's mean loss is over, which weigh it in an epoch's mean: those within the lengths,
    when given, and for pylstm.losses.cross_entropy (or a functools.partial of it) those not equal to its
    ignore_index."""
    func, keywords = (loss.func, loss.keywords) if isinstance(loss, functools.partial) else (loss, {})
    if func is not losses.cross_entropy:
        return int(np.sum(lengths)) if lengths is not None else int(np.size(y))
    counted = np.asarray(y) != keywords.get("ignore_index", _IGNORE_INDEX)
    if lengths is not None:  # (the loss has checked them: (B,) for (T, B) targets, or (B, T) with batch_first)
        batch_first = keywords.get("batch_first", False)
        counted &= ~steps_past(lengths, counted.shape[1 if batch_first else 0], batch_first)
    return int(np.count_nonzero(counted))


def _check_layout(model: Module, loss: LossFunction) -> None:
    """With lengths, the loss must read them along the model's layout: pylstm.losses.cross_entropy as it is reads
    (T, B, V) logits, and after batch_first layers (B, T, V) ones would be masked across the wrong axis (silently so
    when B == T)."""
    if loss is losses.cross_entropy and getattr(model, "batch_first", False):
        raise ValueError("loss: the model's recurrent layers are batch_first, and pylstm.losses.cross_entropy takes "
                         "the lengths along (T, B) unless told otherwise: pass functools.partial("
                         "pylstm.losses.cross_entropy, batch_first=True)")


def _run_batches(model: Module, batches: _Batches, loss: LossFunction, optimizer: Optional[_Optimizer] = None,
                 clip: Optional[float] = None, on_step: Optional[Callable[[float, int], None]] = None
                 ) -> tuple[float, int]:
    """One pass over the batches -> (the loss summed over target tokens, tokens); it trains when given the
    optimizer. Streams' chunks come (T, B): a batch_first model gets them (B, T)."""
    states, total, tokens = None, 0.0, 0
    batch_first = bool(getattr(model, "batch_first", False))
    for x, y, lengths, carry in batches:
        if not carry:
            states = None
        elif batch_first:
            x, y = x.T, y.T
        if optimizer is not None:
            optimizer.zero_grad()
        if lengths is None:
            out, states = model(x, states)
            value, dout = loss(out, y)
        else:
            _check_layout(model, loss)
            out, states = model(x, states, lengths=lengths)
            value, dout = loss(out, y, lengths=lengths)
        if optimizer is not None:
            model.backward(dout)
            if clip is not None:
                clip_grad_norm(model, clip)
            optimizer.step()
        n = _tokens(y, lengths, loss)
        if n > 0:  # (a batch of no target tokens has a NaN mean loss, and no weight)
            total += float(value) * n
            tokens += n
        if on_step is not None:
            on_step(float(value), n)
    return total, tokens


def evaluate(model: Module, data: TrainingData, loss: LossFunction, *, bptt: Optional[int] = None) -> float:
    """The loss of ``model`` on ``data`` (either kind, as ``fit`` takes them) averaged over its target tokens, in
    eval mode (the model's mode is restored after)."""
    return _evaluate(model, _Batches(data, bptt, "data"), loss)


def _evaluate(model: Module, batches: _Batches, loss: LossFunction) -> float:
    was_training = model.training
    model.eval()
    try:
        total, tokens = _run_batches(model, batches, loss)
    finally:
        model.train(was_training)
    return total / tokens if tokens else float("nan")


# ----------------------------------------------------------------------------------------------------------------------
# Progress


class _Progress:
    """A tqdm bar per epoch with the loss and tokens/s (on stderr), or one plain line per epoch on stdout, or
    nothing: see fit's ``progress``."""

    _POSTFIX_EVERY_S = 0.25  # formatting the bar's numbers costs more than a step of a small model

    def __init__(self, mode: Union[bool, str], epochs: int, steps: int) -> None:
        if mode not in (True, False, "bar", "lines"):
            raise ValueError(f"progress: expected True, False, 'bar' or 'lines', got {mode!r}")
        self.enabled, self.epochs, self.steps = bool(mode), epochs, steps
        self.bar: Any = None
        self.tqdm: Any = None
        if mode == "bar" or (mode is True and sys.stderr.isatty()):
            try:
                from tqdm.auto import tqdm

                # No monitor thread: while a second Python thread lives, pylstm leaves NumPy's idle BLAS threads
                # alone (csrc/primitives/blas_pools.h), and the bars are updated every step anyway.
                self.tqdm = type("_Bar", (tqdm,), {"monitor_interval": 0})
            except ImportError:
                pass

    def start_epoch(self, epoch: int) -> None:
        self.started = time.perf_counter()
        self.tokens, self.loss_sum, self.last_postfix = 0, 0.0, 0.0
        if self.tqdm is not None:
            self.bar = self.tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch",
                                 leave=True, dynamic_ncols=True)

    def step(self, value: float, tokens: int) -> None:
        if tokens > 0:  # (no target tokens: a NaN mean, and no weight)
            self.tokens += tokens
            self.loss_sum += value * tokens
        if self.bar is not None:
            self.bar.update(1)
            now = time.perf_counter()
            if self.tokens > 0 and now - self.last_postfix >= self._POSTFIX_EVERY_S:
                self.last_postfix = now
                rate = self.tokens / max(now - self.started, 1e-9)
                self.bar.set_postfix_str(f"loss {self.loss_sum / self.tokens:.4f}, {rate:,.0f} tokens/s",
                                         refresh=False)

    def end_epoch(self, epoch: int, history: History) -> None:
        line = (f"epoch {epoch + 1}/{self.epochs}: loss {history.epoch_loss[-1]:.4f}"
                + (f", val_loss {history.val_loss[-1]:.4f}" if history.val_loss else "")
                + f", {history.tokens_per_s[-1]:,.0f} tokens/s, lr {history.lr[-1]:.3g}")
        if self.bar is not None:
            self.bar.set_postfix_str(line.split(": ", 1)[1], refresh=True)
            self.bar.close()
            self.bar = None
        elif self.enabled:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ----------------------------------------------------------------------------------------------------------------------
# fit


def _check_writable(path: PathLike) -> None:
    """Before the first epoch: a checkpoint path that cannot be written (a directory, or in a missing one)."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"checkpoint: expected a file's path, got the directory {str(path)!r}")
    if not os.path.isdir(directory):
        raise ValueError(f"checkpoint: the directory {directory!r} does not exist")


@contextlib.contextmanager
def _interrupt_after() -> Iterator[None]:
    """Ctrl-C (SIGINT) during the block takes effect at its end, as KeyboardInterrupt: a checkpoint is written whole,
    so the history fit returns and the checkpoint hold the same epochs. Only in the main thread (where Python runs
    signal handlers) and while SIGINT has Python's own handler (another is left alone)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _training_state(epoch: int, optimizer: _Optimizer, scheduler: Union[_LRScheduler, ReduceLROnPlateau, None],
                    history: History, model: Module) -> dict[str, Any]:
    return {"epoch": epoch, "optimizer_class": type(optimizer).__name__, "optimizer": optimizer.state_dict(),
            "scheduler_class": None if scheduler is None else type(scheduler).__name__,
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "history": _history_arrays(history), "rng": model.rng_state()}


def _history_arrays(history: History) -> dict[str, Any]:
    """History.as_dict with its lists as float64 arrays: a checkpoint keeps arrays as they are, where JSON has no NaN
    or inf (a diverged step's loss must not stop the run at its checkpoint)."""
    return {k: np.asarray(v, np.float64) if isinstance(v, list) else v for k, v in history.as_dict().items()}


def _resume(path: PathLike, model: Module, optimizer: _Optimizer,
            scheduler: Union[_LRScheduler, ReduceLROnPlateau, None],
            vocab: Optional[Vocab]) -> tuple[int, History, Optional[Vocab]]:
    """Load a checkpoint written by fit into the model, optimizer and scheduler -> (epochs done, history, the
    vocabulary: the one given, which must be the checkpoint's, or else the checkpoint's)."""
    where = f"resume={str(path)!r}"
    try:
        saved = ckpt.read(path)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if saved.training is None:
        raise ValueError(f"{where}: the file holds a model but no training state (not written by fit)")
    if type(saved.module) is not type(model) or saved.module.config() != model.config():
        raise ValueError(f"{where}: the checkpoint's model ({type(saved.module).__name__}) has another "
                         f"configuration than the model given")
    if vocab is not None and saved.vocab is not None and vocab != saved.vocab:
        raise ValueError(f"{where}: the checkpoint's vocabulary {saved.vocab.chars!r} is not the vocab given "
                         f"{vocab.chars!r} (the model's ids would stand for other characters)")
    t: Any = saved.training  # read from a file: checked below
    try:
        if t.get("optimizer_class") != type(optimizer).__name__:
            raise ValueError(f"the checkpoint's optimizer is {t.get('optimizer_class')}, the one given "
                             f"{type(optimizer).__name__}")
        if t.get("scheduler_class") != (None if scheduler is None else type(scheduler).__name__):
            raise ValueError(f"the checkpoint's scheduler is {t.get('scheduler_class')}, the one given "
                             f"{None if scheduler is None else type(scheduler).__name__}")
        epoch = t.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"the checkpoint's epoch is not a count: {epoch!r}")
        history = History.from_dict(t.get("history"))
        optimizer.load_state_dict(t.get("optimizer"))
        if scheduler is not None:
            scheduler.load_state_dict(t.get("scheduler"))
        model.set_rng_state(t.get("rng"))
        model.load_state_dict(saved.module.state_dict())
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return epoch, history, vocab if vocab is not None else saved.vocab


def fit(model: Module, data: TrainingData, loss: LossFunction, optimizer: _Optimizer, *, epochs: int,
        bptt: Optional[int] = None, clip: Optional[float] = None, val_data: Optional[TrainingData] = None,
        scheduler: Union[_LRScheduler, ReduceLROnPlateau, None] = None, callbacks: Sequence[Any] = (),
        progress: Union[bool, Literal["bar", "lines"]] = True, checkpoint: Optional[PathLike] = None,
        resume: Union[PathLike, bool, None] = None, vocab: Optional[Vocab] = None) -> History:
    """Train ``model`` for ``epochs`` epochs in all -> ``History`` (see the module docstring for the data).

    * ``bptt``: for streams, the steps of a chunk (None: the whole stream in one chunk).
    * ``clip``: clip the gradients' total 2-norm to this value before each optimizer step (None: no clipping).
    * ``val_data``: data of the same kind, whose loss is computed in eval mode after each epoch.
    * ``scheduler``: a ``pylstm.optim`` scheduler, stepped once after each epoch (``ReduceLROnPlateau`` with the
      validation loss, or the training loss without ``val_data``).
    * ``callbacks``: objects with ``on_epoch_end(epoch, history)`` (returning true stops the training after this
      epoch, as ``EarlyStopping`` does) and/or ``on_step_end(step, loss)``. An ``EarlyStopping`` that monitors
      ``"val_loss"`` needs ``val_data``.
    * ``progress``: True: a tqdm bar with the loss and tokens/s when stderr is a terminal,
      else a plain line per epoch on stdout; ``"bar"`` or ``"lines"``: that one; False: silent.
    * ``checkpoint``: a path; after every epoch the model, the optimizer's and scheduler's states, the epoch, the
      history, the random generators' states (and ``vocab``, if given) are saved there atomically.
    * ``resume``: a path of such a checkpoint (or True: ``checkpoint``'s; None or False: none): the model, optimizer,
      scheduler and history continue from it, and the remaining epochs run as they would have without the stop (bit
      for bit: the kernels give the same results for any thread count). A missing file with ``resume=True`` starts
      afresh. A ``vocab`` given must be the checkpoint's; without one, the checkpoint's is kept in the next ones.

    Ctrl-C stops the training, a long forward or backward within milliseconds: fit returns the history with
    ``stopped="interrupted"``, and the last checkpoint holds the last complete epoch.
    """
    epochs = positive_int(epochs, "epochs")
    if bptt is not None:
        bptt = positive_int(bptt, "bptt")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, numbers.Real) or not 0 < clip < math.inf):
        raise ValueError(f"clip: expected None or a finite number > 0, got {clip!r}")
    clip = None if clip is None else float(clip)
    if not callable(loss):
        raise TypeError(f"loss: expected a function (out, targets) -> (loss, dout), got {type(loss).__name__}")
    if not isinstance(optimizer, _Optimizer):
        raise TypeError(f"optimizer: expected a pylstm.optim optimizer, got {type(optimizer).__name__}")
    if scheduler is not None and not isinstance(scheduler, (_LRScheduler, ReduceLROnPlateau)):
        raise TypeError(f"scheduler: expected None or a pylstm.optim scheduler, got {type(scheduler).__name__}")
    if vocab is not None and not isinstance(vocab, Vocab):
        raise TypeError(f"vocab: expected None or a pylstm.text.Vocab, got {type(vocab).__name__}")
    if not isinstance(callbacks, Sequence) or isinstance(callbacks, str):
        raise TypeError(f"callbacks: expected a sequence of callbacks, got {type(callbacks).__name__}")
    if checkpoint is not None:
        _check_writable(checkpoint)
    resume_from: Optional[PathLike]
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True: needs checkpoint= (the path to resume from)")
        resume_from = checkpoint if os.path.exists(checkpoint) else None
    else:
        resume_from = None if resume is False else resume  # False: start afresh, as None
    for k, cb in enumerate(callbacks):
        if not (hasattr(cb, "on_epoch_end") or hasattr(cb, "on_step_end")):
            raise TypeError(f"callbacks[{k}]: expected an object with on_epoch_end and/or on_step_end, got "
                            f"{type(cb).__name__}")
    if model.params and not {id(a) for a in model.params.values()} & {id(p) for p in optimizer._params}:
        raise ValueError("optimizer: holds none of the model's parameters (was it made for another model?)")
    for k, cb in enumerate(callbacks):
        if isinstance(cb, EarlyStopping) and cb.monitor == "val_loss" and val_data is None:
            raise ValueError(f"callbacks[{k}]: {cb!r} monitors the validation loss, which needs val_data (or "
                             f"monitor='epoch_loss' for the training loss)")
    train_batches = _Batches(data, bptt, "data")
    val_batches = None if val_data is None else _Batches(val_data, bptt, "val_data")
    if train_batches.streams is not None and getattr(model, "bidirectional", False):
        raise ValueError("model: has bidirectional layers, and on streams the targets are the next tokens, which "
                         "their reverse direction reads: the model would learn to copy them (use minibatches (x, y) "
                         "for tasks that may look ahead)")
    if resume_from is None:
        start, history = 0, History()
    else:
        start, history, vocab = _resume(resume_from, model, optimizer, scheduler, vocab)
    history.stopped = None  # a resumed run goes on to `epochs` even if the one before stopped early
    step_callbacks = [cb.on_step_end for cb in callbacks if hasattr(cb, "on_step_end")]
    epoch_callbacks = [cb.on_epoch_end for cb in callbacks if hasattr(cb, "on_epoch_end")]
    bar = _Progress(progress, epochs, train_batches.steps)

    def on_step(value: float, tokens: int) -> None:
        history.loss.append(value)
        bar.step(value, tokens)
        for cb in step_callbacks:
            cb(len(history.loss) - 1, value)

    model.train()
    try:
        for epoch in range(start, epochs):
            bar.start_epoch(epoch)
            lr = optimizer.param_groups[0]["lr"]
            started = time.perf_counter()
            total, tokens = _run_batches(model, train_batches, loss, optimizer, clip, on_step)
            elapsed = time.perf_counter() - started
            val_loss = None if val_batches is None else _evaluate(model, val_batches, loss)
            # An epoch enters the history whole, after its validation (Ctrl-C there leaves the epochs before it).
            history.epoch_loss.append(total / tokens if tokens else float("nan"))
            history.tokens_per_s.append(tokens / elapsed if elapsed > 0 else float("inf"))
            history.lr.append(float(lr))
            if val_loss is not None:
                history.val_loss.append(val_loss)
            if scheduler is not None:
                if isinstance(scheduler, ReduceLROnPlateau):
                    scheduler.step(history.val_loss[-1] if val_batches is not None else history.epoch_loss[-1])
                else:
                    scheduler.step()
            stop = any([bool(cb(epoch, history)) for cb in epoch_callbacks])
            if stop:
                history.stopped = "early stopping"
            bar.end_epoch(epoch, history)
            if checkpoint is not None:
                with _interrupt_after():
                    ckpt.save(checkpoint, model, vocab=vocab,
                              training=_training_state(epoch + 1, optimizer, scheduler, history, model))
            if stop:
                break
    except KeyboardInterrupt:
        bar.close()
        history.stopped = "interrupted"
        if progress:
            print(f"interrupted in epoch {history.epochs + 1}"
                  + (f"; {checkpoint} holds the last complete epoch" if checkpoint is not None else ""), flush=True)
    return history

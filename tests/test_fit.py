"""pylstm.fit, pylstm.sample, training checkpoints and the command line (train-char, sample).

* fit equals the hand-written loop of the same steps, bit for bit (streams with truncated backpropagation through
  time and carried states; padded minibatches with lengths), and a tiny model overfits a tiny text through it;
* truncated BPTT carries the state: the chunks' outputs equal one long forward, and a chunk as long as the stream is
  one long BPTT;
* resume= after a stop (between epochs, or by Ctrl-C in the middle of one) equals an unbroken run bit for bit:
  parameters, optimizer state, scheduler, dropout masks and the history;
* early stopping, progress lines, argument errors;
* sample: reproducible with a seed, top_k=1 is the greedy choice, checked arguments;
* the command line end to end on a small file, and its one-line errors.
"""
import functools
import json
import math
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import pylstm
from pylstm import checkpoint
from pylstm.text import Vocab, batchify

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
VOCAB = Vocab.from_text(TEXT)
STREAMS = batchify(VOCAB.encode(TEXT), 6)  # (300, 6)


def model(cell="LSTM", layers=2, dropout=0.0, hidden=24, dtype="float64"):
    layer = getattr(pylstm, cell)(8, hidden, layers, dropout=dropout, dtype=dtype, seed=1)
    return pylstm.Sequential(pylstm.Embedding(len(VOCAB), 8, dtype=dtype, seed=0), layer,
                             pylstm.Linear(hidden, len(VOCAB), dtype=dtype, seed=2))


def params_equal(a, b):
    return list(a.params) == list(b.params) and all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params)


def hand_written(net, data, epochs, bptt, clip, lr):
    """Part 1's loop, written out: the reference for what fit does with streams."""
    opt = pylstm.optim.Adam(net, lr=lr)
    losses = []
    for _ in range(epochs):
        states = None
        for i in range(0, len(data) - 1, bptt):
            x, y = data[i:i + bptt], data[i + 1:i + 1 + bptt]
            x = x[:len(y)]
            opt.zero_grad()
            out, states = net(x, states)
            loss, dout = pylstm.losses.cross_entropy(out, y)
            net.backward(dout)
            pylstm.clip_grad_norm(net, clip)
            opt.step()
            losses.append(loss)
    return losses


def test_fit_equals_the_hand_written_loop():
    a, b = model(), model()
    want = hand_written(a, STREAMS, 2, 35, 1.0, 3e-3)
    history = pylstm.fit(b, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(b, lr=3e-3), epochs=2, bptt=35,
                         clip=1.0, progress=False)
    assert history.loss == want
    assert params_equal(a, b)
    assert history.epochs == 2 and len(history.tokens_per_s) == 2 and history.lr == [3e-3, 3e-3]
    assert history.stopped is None


def batch_first_model():
    return pylstm.Sequential(pylstm.Embedding(len(VOCAB), 8, dtype="float64", seed=0),
                             pylstm.LSTM(8, 24, 2, batch_first=True, dtype="float64", seed=1),
                             pylstm.Linear(24, len(VOCAB), dtype="float64", seed=2))


def test_fit_feeds_streams_to_a_batch_first_model_as_the_time_major_one_gets_them():
    """Streams' chunks are (T, B); a batch_first model gets them transposed (it trained across the streams instead
    of along time, silently, and failed at a shorter last chunk): the same steps as the same weights time-major,
    evaluate too. 299 steps in chunks of 40 end in a shorter one."""
    time_major, batch_first = model(), batch_first_model()
    runs = []
    for net in (time_major, batch_first):
        history = pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(net, lr=3e-3), epochs=2,
                             bptt=40, progress=False)
        runs.append(history.loss + [pylstm.training.evaluate(net, STREAMS[:90], pylstm.losses.cross_entropy,
                                                             bptt=40)])
    # (the same sums over (B, T) rather than (T, B) rows: the last bits differ)
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12)
    for a, b in zip(time_major.params.values(), batch_first.params.values()):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


def test_epoch_losses_weigh_batches_by_the_tokens_their_mean_is_over():
    """An epoch's loss is the mean over its counted tokens: a batch with none (all lengths 0) does not make it NaN,
    and targets at cross_entropy's ignore_index (its default, or a partial's) weigh nothing."""
    net = model(layers=1)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, len(VOCAB), (5, 2)), rng.integers(0, len(VOCAB), (5, 2))
    ce = pylstm.losses.cross_entropy
    net.eval()

    def summed(batches, **kw):  # the loss summed over the counted tokens, and their count
        total = count = 0
        for b in batches:
            lengths = b[2] if len(b) == 3 else None
            out = net(b[0], lengths=lengths)[0]
            total += ce(out, b[1], reduction="sum", lengths=lengths, **kw)[0]
            count += ce(np.zeros(out.shape), b[1], reduction="sum", lengths=lengths, **kw)[0] / math.log(len(VOCAB))
        return total / count

    batches = [(x, y, np.array([5, 3])), (x, y, np.array([0, 0]))]
    assert pylstm.training.evaluate(net, batches, ce) == pytest.approx(summed(batches), rel=1e-12)
    history = pylstm.fit(net, batches, ce, pylstm.optim.SGD(net, lr=0.0), epochs=1, val_data=batches,
                         progress=False)
    assert math.isfinite(history.epoch_loss[0]) and history.epoch_loss == history.val_loss
    ignored = y.copy()
    ignored[1:] = -100  # cross_entropy's default ignore_index
    partial = functools.partial(ce, ignore_index=7)
    ignored7 = np.where(ignored == -100, 7, y)
    for loss, batches, kw in [(ce, [(x, y), (x, ignored)], {}), (partial, [(x, y), (x, ignored7)], {"ignore_index": 7}),
                              (partial, [(x, ignored7, np.array([4, 1]))], {"ignore_index": 7})]:
        assert pylstm.training.evaluate(net, batches, loss) == pytest.approx(summed(batches, **kw), rel=1e-12)


def test_fit_takes_streams_in_a_memoryview():
    a, b = model(layers=1), model(layers=1)
    for net, data in ((a, STREAMS), (b, memoryview(STREAMS))):
        pylstm.fit(net, data, pylstm.losses.cross_entropy, pylstm.optim.SGD(net, lr=0.1), epochs=1, bptt=100,
                   progress=False)
    assert params_equal(a, b)


def test_fit_refuses_what_cannot_train_the_model():
    """An optimizer of another model's parameters (nothing would train); bidirectional layers on streams, whose
    targets (the next tokens) their reverse direction reads. Minibatches may look ahead."""
    net = model(layers=1)
    with pytest.raises(ValueError, match="optimizer: holds none of the model's parameters"):
        pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.SGD(model(layers=1)), epochs=1,
                   progress=False)
    both = pylstm.Sequential(pylstm.Embedding(len(VOCAB), 4), pylstm.GRU(4, 6, bidirectional=True),
                             pylstm.Linear(12, len(VOCAB)))
    assert both.bidirectional and not net.bidirectional
    with pytest.raises(ValueError, match="model: has bidirectional layers.*next tokens"):
        pylstm.fit(both, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.SGD(both), epochs=1, progress=False)
    with pytest.raises(ValueError, match="model: has bidirectional layers.*not drawn yet"):
        pylstm.sample(both, VOCAB, "the", 5)
    history = pylstm.fit(both, [(STREAMS[:20], STREAMS[1:21])], pylstm.losses.cross_entropy, pylstm.optim.SGD(both),
                         epochs=1, progress=False)
    assert history.epochs == 1


def test_early_stopping_on_the_validation_loss_needs_val_data():
    net = model(layers=1)
    with pytest.raises(ValueError, match=r"callbacks\[1\]: EarlyStopping.*val_data"):
        pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.SGD(net, lr=0.0), epochs=3, bptt=100,
                   callbacks=[pylstm.EarlyStopping(monitor="epoch_loss"), pylstm.EarlyStopping()], progress=False)


def test_tiny_model_overfits_tiny_text_through_fit():
    net = model(hidden=48, dtype="float32")
    history = pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(net, lr=1e-2), epochs=25,
                         bptt=30, clip=1.0, progress=False)
    assert history.epoch_loss[0] > 2.0 and history.epoch_loss[-1] < 0.1, history.epoch_loss


def test_truncated_bptt_carries_the_state():
    """Chunks with the state carried give the outputs of one long forward; a chunk as long as the stream (bptt=None)
    is one long backpropagation through time."""
    net = model().eval()
    whole, _ = net(STREAMS[:-1])
    pieces, states = [], None
    for i in range(0, len(STREAMS) - 1, 40):
        out, states = net(STREAMS[i:min(i + 40, len(STREAMS) - 1)], states)
        pieces.append(out)
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=1e-12, atol=1e-12)

    a, b = model(), model()
    opt = pylstm.optim.SGD(a, lr=0.1)
    out, _ = a(STREAMS[:-1])
    loss, dout = pylstm.losses.cross_entropy(out, STREAMS[1:])
    a.backward(dout)
    opt.step()
    history = pylstm.fit(b, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.SGD(b, lr=0.1), epochs=1,
                         progress=False)
    assert history.loss == [loss] and params_equal(a, b)


def test_fit_on_padded_minibatches_with_lengths():
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(3):
        lengths = rng.integers(1, 9, 4)
        x = rng.integers(0, len(VOCAB), (8, 4))
        y = rng.integers(0, len(VOCAB), (8, 4))
        batches.append((x, y, lengths))
    a, b = model(layers=1, cell="GRU"), model(layers=1, cell="GRU")
    opt = pylstm.optim.Adam(a, lr=1e-2)
    want = []
    for x, y, lengths in batches * 2:
        opt.zero_grad()
        out, _ = a(x, lengths=lengths)
        loss, dout = pylstm.losses.cross_entropy(out, y, lengths=lengths)
        a.backward(dout)
        opt.step()
        want.append(loss)
    history = pylstm.fit(b, batches, pylstm.losses.cross_entropy, pylstm.optim.Adam(b, lr=1e-2), epochs=2,
                         progress=False)
    assert history.loss == want and params_equal(a, b)
    tokens = sum(int(l.sum()) for _, _, l in batches)
    np.testing.assert_allclose(history.epoch_loss[0],
                               sum(v * int(l.sum()) for v, (_, _, l) in zip(want, batches)) / tokens)


def test_fit_with_lengths_refuses_a_time_major_loss_after_batch_first_layers():
    """After batch_first layers, cross_entropy as it is would mask the lengths across the wrong axis, silently so when
    B == T: fit refuses it, and trains with the loss told the layout."""
    rng = np.random.default_rng(1)
    x, y, lengths = rng.integers(0, len(VOCAB), (4, 4)), rng.integers(0, len(VOCAB), (4, 4)), np.array([4, 3, 1, 2])
    net = pylstm.Sequential(pylstm.Embedding(len(VOCAB), 8, seed=0), pylstm.GRU(8, 16, batch_first=True, seed=1),
                            pylstm.Linear(16, len(VOCAB), seed=2))
    opt = pylstm.optim.SGD(net, lr=0.0)
    with pytest.raises(ValueError, match=r"loss: .*batch_first.*functools.partial"):
        pylstm.fit(net, [(x, y, lengths)], pylstm.losses.cross_entropy, opt, epochs=1, progress=False)
    loss = functools.partial(pylstm.losses.cross_entropy, batch_first=True)
    history = pylstm.fit(net, [(x, y, lengths)], loss, opt, epochs=1, progress=False)
    net.eval()
    logits, _ = net(x, lengths=lengths)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = [logp[b, t, y[b, t]] for b in range(4) for t in range(lengths[b])]
    np.testing.assert_allclose(history.epoch_loss[0], -np.mean(picked), rtol=1e-5)


def test_a_diverged_loss_is_checkpointed_and_resumed(tmp_path):
    """A NaN loss (JSON has none) neither stops the run at its checkpoint nor is lost in it; a history as lists, as
    as_dict gives it, still loads."""
    net = model()
    net.params["2.bias"][0] = np.nan
    path = tmp_path / "nan.npz"
    history = pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(net, lr=1e-3), epochs=1,
                         bptt=50, checkpoint=path, progress=False)
    assert np.isnan(history.epoch_loss[0]) and np.isnan(history.loss).all()
    again = model()
    resumed = pylstm.fit(again, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(again, lr=1e-3), epochs=1,
                         bptt=50, checkpoint=path, resume=path, progress=False)
    assert resumed.epochs == 1 and len(resumed.loss) == len(history.loss) and np.isnan(resumed.loss).all()
    listed = pylstm.History.from_dict(history.as_dict())
    assert len(listed.loss) == len(history.loss) and np.isnan(listed.epoch_loss[0])
    with pytest.raises(ValueError, match=r"history\['loss'\]: expected a list of numbers within float range"):
        pylstm.History.from_dict({**history.as_dict(), "loss": [10 ** 400]})  # a forged file's JSON int


def run(path, epochs, resume=None, callbacks=(), dropout=0.3):
    net = model(dropout=dropout)
    opt = pylstm.optim.Adam(net, lr=3e-3)
    sched = pylstm.optim.StepLR(opt, step_size=2, gamma=0.5)
    history = pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, opt, epochs=epochs, bptt=50, clip=1.0,
                         val_data=STREAMS[:60], scheduler=sched, checkpoint=path, resume=resume, vocab=VOCAB,
                         callbacks=callbacks, progress=False)
    return net, opt, history


def test_resume_after_a_stop_equals_an_unbroken_run_bit_for_bit(tmp_path):
    unbroken, opt, history = run(tmp_path / "a.npz", 5)
    run(tmp_path / "b.npz", 2)  # stopped after two epochs
    resumed, opt2, history2 = run(tmp_path / "b.npz", 5, resume=tmp_path / "b.npz")
    assert params_equal(unbroken, resumed)
    assert history2.as_dict() == {**history.as_dict(), "tokens_per_s": history2.tokens_per_s}
    for k, state in opt.state.items():
        for name, value in state.items():
            assert np.array_equal(value, opt2.state[k][name]), name
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"] == 3e-3 * 0.25


def test_resume_false_starts_afresh_as_none(tmp_path):
    """resume=False does not resume (it once went on to read a checkpoint at the path False)."""
    run(tmp_path / "a.npz", 1)  # a checkpoint that resume=False must not read
    fresh, _, history = run(tmp_path / "a.npz", 1, resume=False)
    again, _, history_none = run(tmp_path / "b.npz", 1, resume=None)
    assert params_equal(fresh, again) and history.loss == history_none.loss


class Interrupt:
    """Ctrl-C in the middle of an epoch: a KeyboardInterrupt from a step."""

    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, step, loss):
        if step == self.at_step:
            raise KeyboardInterrupt


def test_resume_after_ctrl_c_in_an_epoch_equals_an_unbroken_run(tmp_path):
    unbroken, _, history = run(tmp_path / "a.npz", 4)
    steps_per_epoch = len(history.loss) // 4
    _, _, stopped = run(tmp_path / "b.npz", 4, callbacks=[Interrupt(2 * steps_per_epoch + 2)])
    assert stopped.stopped == "interrupted" and stopped.epochs == 2
    saved = checkpoint.read(tmp_path / "b.npz")
    assert saved.training["epoch"] == 2 and saved.vocab == VOCAB
    resumed, _, history2 = run(tmp_path / "b.npz", 4, resume=True)
    assert params_equal(unbroken, resumed) and history2.loss == history.loss


def test_ctrl_c_during_validation_leaves_the_complete_epochs(tmp_path, capsys):
    """An epoch enters the history after its validation: Ctrl-C there leaves the epochs before it, as the checkpoint
    does, and the message names the epoch it stopped in."""
    net = model(layers=1)
    calls = []

    def loss(out, y):
        if not net.training:
            calls.append(1)
            if len(calls) == 2:  # in the second epoch's validation
                raise KeyboardInterrupt
        return pylstm.losses.cross_entropy(out, y)

    history = pylstm.fit(net, STREAMS, loss, pylstm.optim.Adam(net), epochs=4, bptt=100, val_data=STREAMS[:60],
                         checkpoint=tmp_path / "a.npz", progress="lines")
    assert history.stopped == "interrupted"
    assert history.epochs == len(history.val_loss) == len(history.lr) == len(history.tokens_per_s) == 1
    assert checkpoint.read(tmp_path / "a.npz").training["epoch"] == 1
    assert "interrupted in epoch 2;" in capsys.readouterr().out


def test_ctrl_c_while_a_checkpoint_is_written_takes_effect_after_it(tmp_path, monkeypatch, capsys):
    """SIGINT in the middle of the second epoch's checkpoint write: the write finishes, then the run stops, so the
    history returned and the checkpoint hold the same two epochs (the checkpoint lagged by one)."""
    write = np.savez
    calls = []

    def interrupted_write(file, **arrays):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        write(file, **arrays)

    monkeypatch.setattr(checkpoint.np, "savez", interrupted_write)
    net = model(layers=1)
    history = pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(net), epochs=5, bptt=100,
                         checkpoint=tmp_path / "a.npz", progress="lines")
    assert history.stopped == "interrupted" and history.epochs == 2
    assert checkpoint.read(tmp_path / "a.npz").training["epoch"] == 2
    assert "epoch 2/5: loss" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_checks_the_vocabulary_and_keeps_the_checkpoints(tmp_path):
    """A vocab given on resume must be the checkpoint's (the same size, other characters: the model's ids would
    mean other things); without one, the checkpoint's stays in the next checkpoints. A file that is no checkpoint
    is named as resume's."""
    path = tmp_path / "a.npz"
    run(path, 1)
    other = Vocab("".join(chr(ord(c) + 1) for c in VOCAB.chars))
    assert len(other) == len(VOCAB) and other != VOCAB
    net = model(dropout=0.3)
    opt = pylstm.optim.Adam(net, lr=3e-3)
    sched = pylstm.optim.StepLR(opt, step_size=2, gamma=0.5)
    with pytest.raises(ValueError, match="resume=.*vocabulary.*is not the vocab given"):
        pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, opt, epochs=2, bptt=50, val_data=STREAMS[:60],
                   scheduler=sched, checkpoint=path, resume=True, vocab=other, progress=False)
    pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, opt, epochs=2, bptt=50, val_data=STREAMS[:60],
               scheduler=sched, checkpoint=path, resume=True, progress=False)
    saved = checkpoint.read(path)
    assert saved.training["epoch"] == 2 and saved.vocab == VOCAB
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="^resume='.*junk.npz': "):
        pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, opt, epochs=2, resume=tmp_path / "junk.npz",
                   progress=False)


def test_resume_true_without_a_checkpoint_starts_afresh(tmp_path):
    a, _, h1 = run(tmp_path / "a.npz", 2, dropout=0.0)
    b, _, h2 = run(tmp_path / "b.npz", 2, resume=True, dropout=0.0)
    assert params_equal(a, b) and h1.loss == h2.loss


def test_resume_refuses_another_model(tmp_path):
    run(tmp_path / "a.npz", 1)
    other = model(hidden=16)
    with pytest.raises(ValueError, match="resume=.*another configuration"):
        pylstm.fit(other, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(other), epochs=2,
                   resume=tmp_path / "a.npz", progress=False)
    net = model(dropout=0.3)
    with pytest.raises(ValueError, match="optimizer is Adam"):
        pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.SGD(net, lr=0.1), epochs=2,
                   resume=tmp_path / "a.npz", progress=False)


def test_early_stopping():
    net = model()
    # a learning rate of 0 never improves the validation loss
    history = pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.SGD(net, lr=0.0), epochs=10,
                         bptt=100, val_data=STREAMS[:50], callbacks=[pylstm.EarlyStopping(patience=2)],
                         progress=False)
    assert history.stopped == "early stopping" and history.epochs == 3
    with pytest.raises(ValueError, match="patience"):
        pylstm.EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="min_delta: expected a finite number"):
        pylstm.EarlyStopping(min_delta=math.inf)


def test_early_stopping_counts_no_nan_as_a_best():
    """A diverged (NaN) epoch is never the best: an improving run goes on, a run of NaNs stops."""
    stopper = pylstm.EarlyStopping(patience=np.int64(2), monitor="epoch_loss")
    history = pylstm.History()
    for values, stops in [([math.nan, 0.5, 0.4], False), ([0.5, math.nan, 0.4], False), ([0.3, 0.5, math.nan], True),
                          ([math.nan, math.nan, math.nan], True), ([0.5, 0.6, 0.7], True)]:
        history.epoch_loss[:] = values
        assert stopper.on_epoch_end(len(values) - 1, history) is stops, values


def test_progress_prints_plain_lines_when_not_on_a_terminal(capsys):
    net = model(layers=1)
    pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(net), epochs=2, bptt=100,
               val_data=STREAMS[:50])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2: loss ") and "val_loss" in lines[1]
    assert "tokens/s" in lines[1]


def test_fit_argument_errors():
    net = model(layers=1)
    opt = pylstm.optim.Adam(net)
    ce = pylstm.losses.cross_entropy
    for kwargs, error, match in [({"optimizer": None}, TypeError, "optimizer: expected a pylstm.optim optimizer"),
                                 ({"scheduler": "x"}, TypeError, "scheduler: expected None or a pylstm.optim"),
                                 ({"vocab": "abc"}, TypeError, "vocab: expected None or a pylstm.text.Vocab"),
                                 ({"callbacks": None}, TypeError, "callbacks: expected a sequence"),
                                 ({"clip": math.inf}, ValueError, "clip: expected None or a finite number"),
                                 ({"checkpoint": "/nonexistent-dir/a.npz"}, ValueError, "checkpoint: the directory"),
                                 ({"checkpoint": os.path.dirname(__file__)}, ValueError, "checkpoint: expected a file")]:
        args = {"optimizer": opt, **kwargs}
        with pytest.raises(error, match=match):  # before any training
            pylstm.fit(net, STREAMS, ce, args.pop("optimizer"), epochs=1, progress=False, **args)
    assert net.grads["0.weight"].any() == False  # noqa: E712 (nothing ran)
    history = pylstm.fit(net, STREAMS[:60], ce, opt, epochs=1, bptt=20, clip=np.float32(1.0), progress=False)
    assert history.epochs == 1  # a NumPy scalar is a number
    with pytest.raises(ValueError, match="epochs: expected an int >= 1, got 0"):
        pylstm.fit(net, STREAMS, ce, opt, epochs=0)
    for bad in ("3", 2.0, True):  # the type check every module's sizes get
        with pytest.raises(TypeError, match="epochs: expected an int >= 1"):
            pylstm.fit(net, STREAMS, ce, opt, epochs=bad)
    with pytest.raises(TypeError, match="bptt: expected an int >= 1, got float"):
        pylstm.fit(net, STREAMS, ce, opt, epochs=1, bptt=20.0)
    with pytest.raises(ValueError, match="bptt: applies to parallel streams"):
        pylstm.fit(net, [(STREAMS[:5], STREAMS[1:6])], ce, opt, epochs=1, bptt=5)
    with pytest.raises(ValueError, match=r"data: expected parallel streams.*\(N, B\) integer"):
        pylstm.fit(net, STREAMS.astype(float), ce, opt, epochs=1)
    with pytest.raises(TypeError, match=r"data\[0\]: expected a batch"):
        pylstm.fit(net, [STREAMS], ce, opt, epochs=1)
    with pytest.raises(ValueError, match="clip"):
        pylstm.fit(net, STREAMS, ce, opt, epochs=1, clip=-1)
    with pytest.raises(TypeError, match="callbacks"):
        pylstm.fit(net, STREAMS, ce, opt, epochs=1, callbacks=[object()])
    with pytest.raises(ValueError, match="resume=True: needs checkpoint"):
        pylstm.fit(net, STREAMS, ce, opt, epochs=1, resume=True)


# ----------------------------------------------------------------------------------------------------------------------
# Sampling


def test_sample_is_reproducible_and_top_k_1_is_greedy():
    net = model(dtype="float32")
    pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(net, lr=1e-2), epochs=3, bptt=50,
               progress=False)
    a = pylstm.sample(net, VOCAB, "the ", 80, seed=3)
    assert a == pylstm.sample(net, VOCAB, "the ", 80, seed=3) and len(a) == 80 and set(a) <= set(VOCAB.chars)
    assert net.training  # the mode is restored
    greedy = pylstm.sample(net, VOCAB, "the ", 30, top_k=1)
    net.eval()
    out, states = net(VOCAB.encode("the ")[:, None])
    expected = []
    for _ in range(30):
        expected.append(int(np.argmax(out[-1, 0])))
        out, states = net(np.array([[expected[-1]]]), states)
    assert greedy == VOCAB.decode(expected)
    assert pylstm.sample(net, VOCAB, "t", 0) == ""


def test_sample_argument_errors():
    net = model()
    for kwargs, match in [({"temperature": 0}, "temperature"), ({"top_k": 0}, "top_k"),
                          ({"top_k": len(VOCAB) + 1}, "top_k"), ({"n": -1}, "n: expected")]:
        args = {"prompt": "the", "n": 5, **kwargs}
        with pytest.raises(ValueError, match=match):
            pylstm.sample(net, VOCAB, args.pop("prompt"), args.pop("n"), **args)
    with pytest.raises(ValueError, match="prompt"):
        pylstm.sample(net, VOCAB, "", 5)
    for seed, error in ((-1, ValueError), ("x", TypeError), (1.5, TypeError)):
        with pytest.raises(error, match="seed: expected None or a non-negative int"):
            pylstm.sample(net, VOCAB, "the", 5, seed=seed)
    with pytest.raises(TypeError, match="vocab: expected a pylstm.text.Vocab, got str"):
        pylstm.sample(net, "abc", "the", 5)
    assert len(pylstm.sample(net, VOCAB, "the", 5, temperature=np.float32(0.5), seed=np.int64(1))) == 5
    with pytest.raises(ValueError, match=r"prompt: character 'Z' .* not in the vocabulary"):
        pylstm.sample(net, VOCAB, "the Z", 5)


def test_sample_from_a_batch_first_model_draws_what_the_time_major_one_does():
    """A batch_first model gets the prompt as one sequence (1, T): the same draws as the same weights time-major."""
    time_major, batch_first = model(layers=1), pylstm.Sequential(
        pylstm.Embedding(len(VOCAB), 8, dtype="float64", seed=0),
        pylstm.LSTM(8, 24, batch_first=True, dtype="float64", seed=1),
        pylstm.Linear(24, len(VOCAB), dtype="float64", seed=2))
    assert batch_first.batch_first and not time_major.batch_first
    assert pylstm.sample(batch_first, VOCAB, "the ", 30, seed=5) == pylstm.sample(time_major, VOCAB, "the ", 30, seed=5)


@pytest.mark.parametrize("make", [lambda: pylstm.LSTM(4, 4), lambda: pylstm.Embedding(len(VOCAB), 4),
                                  lambda: pylstm.LSTMCell(4, 4)], ids=["layer", "embedding", "cell"])
def test_sample_names_a_model_of_no_character_ids(make):
    with pytest.raises(TypeError, match=r"^model: expected a model of \(T, B\) character ids"):
        pylstm.sample(make(), VOCAB, "the", 5)


def test_sample_at_a_tiny_temperature_is_greedy():
    """At a temperature whose quotients overflow, the draw is still the most likely character (the limit)."""
    net = model(dtype="float64")
    greedy = pylstm.sample(net, VOCAB, "the ", 20, top_k=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pylstm.sample(net, VOCAB, "the ", 20, temperature=1e-310, seed=0) == greedy


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_sample_refuses_non_finite_logits(value):
    net = model()
    net.params["2.bias"][0] = value
    with pytest.raises(ValueError, match=r"model: expected finite logits, got (NaN|inf) at character 0"):
        pylstm.sample(net, VOCAB, "the ", 5, seed=0)


# ----------------------------------------------------------------------------------------------------------------------
# Training checkpoints


def test_a_training_checkpoint_still_loads_as_a_model(tmp_path):
    net, _, _ = run(tmp_path / "c.npz", 1)
    loaded = pylstm.load(tmp_path / "c.npz")
    assert params_equal(loaded, net)
    saved = checkpoint.read(tmp_path / "c.npz")
    assert saved.vocab == VOCAB and set(saved.training) >= {"epoch", "optimizer", "scheduler", "history", "rng"}


def test_a_doctored_training_state_is_refused(tmp_path):
    run(tmp_path / "c.npz", 1)
    with np.load(tmp_path / "c.npz") as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays["__pylstm__"].tobytes())

    def write(h, extra=None):
        entries = {**arrays, **(extra or {}), "__pylstm__": np.frombuffer(json.dumps(h).encode(), np.uint8)}
        with open(tmp_path / "d.npz", "wb") as f:
            np.savez(f, **entries)
        return tmp_path / "d.npz"

    bad = json.loads(json.dumps(header))
    bad["training"]["optimizer"]["state"]["0"]["exp_avg"] = {"__array__": "__training__.999"}
    with pytest.raises(ValueError, match="refers to an array that the header does not declare"):
        checkpoint.read(write(bad))
    bad = json.loads(json.dumps(header))
    key = next(iter(bad["arrays"]))
    bad["arrays"][key][0] = [10 ** 6]
    with pytest.raises(ValueError, match=f"training array '{key}' is stored as"):
        checkpoint.read(write(bad))
    bad = json.loads(json.dumps(header))
    bad["vocab"] = {"chars": "aa"}
    with pytest.raises(ValueError, match="vocabulary is not valid"):
        checkpoint.read(write(bad))
    bad = json.loads(json.dumps(header))
    bad["training"]["rng"] = [{"bit_generator": "PCG64", "state": "nonsense"}]
    path = write(bad)
    net = model(dropout=0.3)
    with pytest.raises(ValueError, match=r"resume=.*states\[0\]"):
        pylstm.fit(net, STREAMS, pylstm.losses.cross_entropy, pylstm.optim.Adam(net, lr=3e-3), epochs=2,
                   scheduler=pylstm.optim.StepLR(pylstm.optim.Adam(net), 2), resume=path, progress=False)


# ----------------------------------------------------------------------------------------------------------------------
# Command line


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pylstm", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_cli_trains_and_samples_end_to_end(tmp_path):
    text = tmp_path / "tiny.txt"
    text.write_text("hello world, hello pylstm! " * 30, encoding="utf-8")
    out = tmp_path / "m.npz"
    result = cli("train-char", text, "--hidden", 32, "--layers", 1, "--embedding", 8, "--epochs", 3,
                 "--batch-size", 4, "--bptt", 20, "--out", out, "--sample", 40)
    assert result.returncode == 0, result.stderr
    assert "epoch 3/3: loss" in result.stdout and "sample" in result.stdout
    saved = checkpoint.read(out)
    assert saved.training["epoch"] == 3 and saved.vocab == Vocab.from_text(text.read_text())
    first = cli("sample", out, "--prompt", "hello", "-n", 50, "--seed", 7)
    second = cli("sample", out, "--prompt", "hello", "-n", 50, "--seed", 7)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and first.stdout.startswith("hello") and len(first.stdout) == 56
    resumed = cli("train-char", text, "--hidden", 32, "--layers", 1, "--embedding", 8, "--epochs", 4,
                  "--batch-size", 4, "--bptt", 20, "--out", out, "--sample", 0, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 1/4" not in resumed.stdout and "epoch 4/4: loss" in resumed.stdout
    other = cli("train-char", text, "--hidden", 16, "--layers", 1, "--embedding", 8, "--epochs", 5,
                "--batch-size", 4, "--bptt", 20, "--out", out, "--sample", 0, "--resume")
    assert other.returncode == 2 and "Traceback" not in other.stderr, other.stderr
    assert other.stderr.strip().splitlines()[-1].startswith("python -m pylstm train-char: error: --resume: ")


def test_cli_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    text_file = tmp_path / "text.txt"
    text_file.write_text("hello world " * 20)
    layer = tmp_path / "layer.npz"
    pylstm.save(layer, pylstm.LSTM(2, 3))
    with_vocab = tmp_path / "with_vocab.npz"  # a vocabulary, but no model of character ids
    checkpoint.save(with_vocab, pylstm.Embedding(4, 4), vocab=Vocab("abcd"))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"garbage")
    cases = [(("train-char", tmp_path / "missing.txt"), "no such file"),
             (("sample", with_vocab), "with_vocab.npz: model: expected a model of (T, B) character ids"),
             (("train-char", text_file, "--batch-size", "2", "--out", corrupt, "--resume"),
              "--resume: resume='"),
             (("train-char", text_file, "--batch-size", "16", "--val-fraction", "0.9"),
              "24 characters to train on (240 in all, 216 kept for validation by --val-fraction 0.9)"),
             (("train-char", empty), "the file is empty"),
             (("sample", tmp_path / "missing.npz"), "no such file"),
             (("sample", layer), "not a character model"),
             (("sample", empty), "not a valid pylstm checkpoint"),
             (("train-char", text_file, "--out", tmp_path / "missing" / "m.npz"), "--out: checkpoint: the directory"),
             (("train-char", text_file, "--out", tmp_path), "--out: checkpoint: expected a file's path"),
             (("demo", "--quick", "--plots", text_file / "plots"), "--plots: ")]
    for args, message in cases:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, (args, result.stderr)


def test_cli_reads_a_text_without_its_byte_order_mark(tmp_path):
    text_file = tmp_path / "bom.txt"
    text_file.write_bytes("\ufeff".encode() + ("ab " * 40).encode())
    result = cli("train-char", text_file, "--hidden", "4", "--layers", "1", "--epochs", "1", "--batch-size", "2",
                 "--sample", "0", "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    assert "120 characters, a vocabulary of 3" in result.stdout
    assert checkpoint.read(tmp_path / "m.npz").vocab == Vocab(" ab")


@pytest.mark.parametrize("args, option", [(("train-char", "t.txt", "--seed", "-1"), "--seed"),
                                          (("train-char", "t.txt", "--lr", "inf"), "--lr"),
                                          (("train-char", "t.txt", "--clip", "nan"), "--clip"),
                                          (("sample", "m.npz", "--seed", "-2"), "--seed"),
                                          (("demo", "--seed", "-1"), "--seed")])
def test_cli_refuses_bad_option_values_before_running(args, option):
    result = cli(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"argument {option}: expected a" in result.stderr.strip().splitlines()[-1], result.stderr


def test_cli_help():
    for command in ("train-char", "sample"):
        result = cli(command, "--help")
        assert result.returncode == 0 and "usage: python -m pylstm " + command in result.stdout

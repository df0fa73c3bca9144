"""Whole training loops: pylstm's blocks, loss, clipping and optimizers together.

* a character model ``Sequential(Embedding, LSTM 2 layers, Linear)`` trained for 20 steps from torch's weights on the
  same batches, with the state carried from batch to batch, gives torch's losses and weights (Adam + clipping, and
  SGD + clipping + a learning-rate schedule; float64 tightly, float32 within rounding);
* a tiny model overfits a tiny text (the loss falls below a bound), for every cell.
"""
import numpy as np
import pytest
import torch

import pylstm

V, E, H, B, T = 11, 6, 9, 3, 7


def batches(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))) for _ in range(n)]


def torch_model(dtype):
    torch.manual_seed(0)
    model = torch.nn.ModuleList([torch.nn.Embedding(V, E), torch.nn.LSTM(E, H, 2), torch.nn.Linear(H, V)])
    return model.to(dtype)


def run_torch(model, opt_name, opt_args, clip, steps, schedule):
    params = list(model.parameters())
    opt = getattr(torch.optim, opt_name)(params, **opt_args)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5) if schedule else None
    state, losses = None, []
    for x, y in batches(steps):
        opt.zero_grad()
        out, (h, c) = model[1](model[0](torch.from_numpy(x)), state)
        state = (h.detach(), c.detach())
        loss = torch.nn.functional.cross_entropy(model[2](out).reshape(-1, V), torch.from_numpy(y).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        if sched:
            sched.step()
        losses.append(loss.item())
    return losses


def run_pylstm(model, opt_name, opt_args, clip, steps, schedule):
    opt = getattr(pylstm.optim, opt_name)(model, **opt_args)
    sched = pylstm.optim.StepLR(opt, step_size=5, gamma=0.5) if schedule else None
    states, losses = None, []
    for x, y in batches(steps):
        opt.zero_grad()
        logits, states = model(x, states)
        loss, dlogits = pylstm.losses.cross_entropy(logits, y)
        model.backward(dlogits)
        pylstm.clip_grad_norm(model, clip)
        opt.step()
        if sched:
            sched.step()
        losses.append(loss)
    return losses


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("opt_name,opt_args,clip,schedule", [
    ("Adam", {"lr": 1e-2}, 1.0, False),
    ("SGD", {"lr": 2.0, "momentum": 0.9}, 0.25, True),
], ids=["adam-clip", "sgd-momentum-clip-steplr"])
def test_twenty_steps_give_torchs_losses_and_weights(dtype, opt_name, opt_args, clip, schedule):
    tdtype = getattr(torch, dtype)
    reference = torch_model(tdtype)
    weights = {k: v.detach().numpy().copy() for k, v in reference.state_dict().items()}  # the same names
    model = pylstm.Sequential(pylstm.Embedding(V, E, dtype=dtype), pylstm.LSTM(E, H, 2, dtype=dtype),
                              pylstm.Linear(H, V, dtype=dtype))
    model.load_state_dict(weights)
    want = run_torch(reference, opt_name, opt_args, clip, 20, schedule)
    got = run_pylstm(model, opt_name, opt_args, clip, 20, schedule)
    # Rounding differences only, after 20 steps: measured up to 5.4e-16 (losses) and 4.2e-16 (weights) in float64,
    # 1.9e-7 and 3.3e-7 in float32.
    tol = 1e-12 if dtype == "float64" else 5e-6
    np.testing.assert_allclose(got, want, rtol=tol)
    for name, p in reference.state_dict().items():
        np.testing.assert_allclose(model.params[name], p.numpy(), rtol=tol, atol=tol, err_msg=name)
    assert want[-1] < want[0]  # it trained


TEXT = "the quick brown fox jumps over the lazy dog. " * 3


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_tiny_model_overfits_tiny_text(cell):
    """Next-character prediction on a 135-character text: every cell learns it by heart (the loss falls from
    log(vocabulary) ~ 3.3 to below 0.1), in float32 with Adam, clipping and truncated backpropagation through time."""
    chars = sorted(set(TEXT))
    ids = np.array([chars.index(c) for c in TEXT])
    streams = ids[:len(ids) // 3 * 3].reshape(3, -1).T  # (N, 3): three parallel streams
    vocab = len(chars)
    model = pylstm.Sequential(pylstm.Embedding(vocab, 16, seed=0), getattr(pylstm, cell)(16, 64, seed=1),
                              pylstm.Linear(64, vocab, seed=2))
    opt = pylstm.optim.Adam(model, lr=1e-2)
    first = last = None
    for epoch in range(60):
        states = None
        for start in range(0, len(streams) - 1, 15):
            x, y = streams[start:start + 15], streams[start + 1:start + 16]
            x = x[:len(y)]
            opt.zero_grad()
            logits, states = model(x, states)
            loss, dlogits = pylstm.losses.cross_entropy(logits, y)
            model.backward(dlogits)
            pylstm.clip_grad_norm(model, 1.0)
            opt.step()
            first = loss if first is None else first
            last = loss
    assert first > 2.5 and last < 0.1, (first, last)

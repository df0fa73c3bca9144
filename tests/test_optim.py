"""Tests of pylstm.optim: the optimizers' fused C++ updates, the schedulers and gradient clipping.

What is checked:

* every optimizer and option set (momentum, dampening, Nesterov, weight decay; amsgrad; centered, momentum; betas and
  alpha that take either of torch's lerp formulas) against its NumPy twin in pylstm.reference over 100 steps of random
  gradients, in float64 (rtol 1e-12) and float32 (max error 1e-6 of the parameters' scale); on x86-64 they agree bit
  for bit today (the same operations in the same order, no fused multiply-adds on either side);
* the same against torch.optim (the same initial parameters and the same 100 gradients, set as ``p.grad``): float64
  within 1e-12 of the parameters' scale (measured: at most 7e-16; torch's CPU kernels fuse some multiply-adds, these
  do not), float32 within 5e-6 (measured: at most 5e-7); NaN and infinity in a gradient reach the parameters as in
  torch;
* one and two threads give bitwise equal parameters, states and gradient norms on arrays large enough to be split;
* state_dict round trips: five steps, save, a new optimizer on a copy of the parameters, load, five more steps on
  both: bitwise equal (also through JSON for everything but the arrays); the state dict holds copies;
* the schedulers' learning rates equal torch's exactly over 50 steps (each alone, chained, and ReduceLROnPlateau on
  metric sequences), and a whole training loop (optimizer + warm-up + cosine) matches torch's;
* clip_grad_norm (norms 2, inf, 1, 3) and clip_grad_value against torch;
* argument errors: type and message naming the argument.

The kernels are not per-ISA (compiled once), so every test runs on the ISA chosen at import.
"""
import copy
import json
import math
import re

import numpy as np
import pytest
from compare import max_scaled_error

import pylstm
from pylstm import _core
from pylstm import optim
from pylstm import reference as ref

torch = pytest.importorskip("torch")

DTYPES = ("float64", "float32")
SHAPES = [(1,), (7,), (33, 5), (1001,)]  # odd sizes: every loop's remainder runs
STEPS = 100
F64_RTOL = 1e-12  # fast path vs reference, float64
F32_OF_SCALE = 1e-6  # fast path vs reference, float32 (compare.max_scaled_error)
TORCH_F64_OF_SCALE = 1e-12
TORCH_F32_OF_SCALE = 5e-6


class Module:
    """A stand-in module: ``params`` and ``grads`` dicts of live arrays."""

    def __init__(self, params):
        self.params = params
        self.grads = {name: np.zeros_like(p) for name, p in params.items()}


def random_module(dtype, shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    return Module({f"p{k}": rng.standard_normal(shape).astype(dtype) for k, shape in enumerate(shapes)})


def random_gradients(module, steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(p.shape).astype(p.dtype) for p in module.params.values()] for _ in range(steps)]


def set_gradients(module, gradients):
    for g, value in zip(module.grads.values(), gradients):
        g[...] = value


# (optimizer class name, arguments): every option of every optimizer, alone and combined. betas[0] = 0.3 and
# alpha = 0.3 take torch's other lerp formula (weight 1 - beta >= 0.5).
CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.6), "eps": 1e-3, "amsgrad": True, "weight_decay": 0.05}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.2, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "betas": (0.3, 0.9), "weight_decay": 0}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.001, "centered": True}),
    ("RMSprop", {"lr": 0.001, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.001, "alpha": 0.3, "centered": True}),
    ("RMSprop", {"lr": 0.001, "momentum": 0.5, "weight_decay": 0.1, "centered": True, "eps": 1e-4}),
]
configs = pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c[0] + "".join(f"-{k}={v}" for k, v in c[1].items()))

REFERENCE_STEP = {"SGD": ref.sgd_step, "Adam": ref.adam_step, "AdamW": ref.adam_step, "RMSprop": ref.rmsprop_step}


def make_optimizer(config, model):
    name, arguments = config
    return getattr(optim, name)(model, **arguments)


def reference_run(config, params, gradient_steps):
    """The reference's parameters after the given steps from copies of `params` (hyperparameters as the optimizer
    checked them, defaults filled in)."""
    name = config[0]
    group = make_optimizer(config, Module({k: p.copy() for k, p in params.items()})).param_groups[0]
    hyper = {k: v for k, v in group.items() if k != "params"}
    if name == "AdamW":
        hyper["decoupled_weight_decay"] = True
    ps = [p.copy() for p in params.values()]
    states = [{} for _ in ps]
    for gradients in gradient_steps:
        for p, g, s in zip(ps, gradients, states):
            REFERENCE_STEP[name](p, g, s, **hyper)
    return ps, states


def torch_run(config, params, gradient_steps):
    """torch.optim's parameters after the given steps from copies of `params`."""
    name, arguments = config
    ps = [torch.tensor(p.copy(), requires_grad=True) for p in params.values()]
    opt = getattr(torch.optim, name)(ps, foreach=False, **arguments)
    for gradients in gradient_steps:
        for p, g in zip(ps, gradients):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
    return [p.detach().numpy() for p in ps]


def fast_run(config, params, gradient_steps):
    model = Module({k: p.copy() for k, p in params.items()})
    opt = make_optimizer(config, model)
    for gradients in gradient_steps:
        set_gradients(model, gradients)
        opt.step()
    return list(model.params.values()), opt


# ----------------------------------------------------------------------------------------------------------------------
# Updates against the reference and against torch.


@configs
@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_matches_reference(config, dtype):
    """100 steps of every option set: parameters and every state buffer equal the NumPy twin's."""
    start = random_module(dtype).params
    gradient_steps = random_gradients(Module(start), STEPS)
    fast, opt = fast_run(config, start, gradient_steps)
    expected, expected_states = reference_run(config, start, gradient_steps)
    for k, (p, e) in enumerate(zip(fast, expected)):
        assert p.dtype == np.dtype(dtype)
        state = opt.state.get(k, {})
        assert sorted(state) == sorted(expected_states[k]), f"state keys of parameter {k}"
        pairs = [(f"param {k}", p, e)] + [(f"state[{k}][{n!r}]", state[n], expected_states[k][n])
                                          for n in state if n != "step"]
        for what, actual, wanted in pairs:
            if dtype == "float64":
                np.testing.assert_allclose(actual, wanted, rtol=F64_RTOL, atol=0, err_msg=what)
            else:
                assert max_scaled_error(actual, wanted) <= F32_OF_SCALE, what
        if "step" in state:
            assert state["step"] == expected_states[k]["step"] == STEPS


@configs
@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_matches_torch(config, dtype):
    """100 steps from the same parameters with the same gradients: pylstm's parameters equal torch.optim's."""
    start = random_module(dtype).params
    gradient_steps = random_gradients(Module(start), STEPS)
    fast, _ = fast_run(config, start, gradient_steps)
    expected = torch_run(config, start, gradient_steps)
    tol = TORCH_F64_OF_SCALE if dtype == "float64" else TORCH_F32_OF_SCALE
    for k, (p, e) in enumerate(zip(fast, expected)):
        err = max_scaled_error(p, e)
        assert err <= tol, f"parameter {k}: scaled error {err:.3g} > {tol:g}"


@configs
def test_nonfinite_gradients_reach_parameters_as_in_torch(config):
    """A NaN and an infinity in the gradients (from step 3 on) give NaN/inf exactly where torch's do; the rest still
    agrees."""
    start = random_module("float64", shapes=[(9,)]).params
    gradient_steps = random_gradients(Module(start), 6)
    for gradients in gradient_steps[3:]:
        gradients[0][2] = np.nan
        gradients[0][5] = np.inf
    fast, _ = fast_run(config, start, gradient_steps)
    expected = torch_run(config, start, gradient_steps)
    np.testing.assert_array_equal(np.isnan(fast[0]), np.isnan(expected[0]))
    assert np.isnan(fast[0][2])
    np.testing.assert_allclose(fast[0], expected[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[0] in ("SGD", "Adam")][:3], ids=str)
def test_lstm_module_trains_like_torch(config):
    """A real module (pylstm.LSTM, float64) as the model: the optimizer updates its live params."""
    lstm = pylstm.LSTM(3, 4, dtype="float64", seed=0)
    start = {k: p.copy() for k, p in lstm.params.items()}
    gradient_steps = random_gradients(lstm, 20)
    opt = make_optimizer(config, lstm)
    for gradients in gradient_steps:
        set_gradients(lstm, gradients)
        opt.step()
    for p, e in zip(lstm.params.values(), torch_run(config, start, gradient_steps)):
        assert max_scaled_error(p, e) <= TORCH_F64_OF_SCALE


# ----------------------------------------------------------------------------------------------------------------------
# Threads: arrays split across threads give the one-thread bits.

LARGE = 1_048_583  # odd, and past the two-thread threshold of the cheapest update (SGD)
THREAD_CONFIGS = [CONFIGS[5], CONFIGS[6], CONFIGS[10], CONFIGS[12], CONFIGS[14], CONFIGS[18]]


@pytest.fixture
def two_threads_stay_two():
    """The kernels never fall back to one thread on a busy machine during the test (see test_isa_and_threads)."""
    _core.set_adaptive_threads(False)
    try:
        yield
    finally:
        _core.set_adaptive_threads(True)


@pytest.mark.parametrize("config", THREAD_CONFIGS, ids=str)
def test_one_and_two_threads_update_bitwise_equal(config, num_threads, two_threads_stay_two):
    start = random_module("float32", shapes=[(LARGE,)]).params
    gradient_steps = random_gradients(Module(start), 3)
    results = []
    for n in (1, 2):
        num_threads(n)
        params, opt = fast_run(config, start, gradient_steps)
        results.append((params[0], opt.state.get(0, {})))
    (p1, s1), (p2, s2) = results
    np.testing.assert_array_equal(p1, p2)
    assert sorted(s1) == sorted(s2)
    for name in s1:
        np.testing.assert_array_equal(s1[name], s2[name], err_msg=name)


def test_gradient_tools_one_and_two_threads_bitwise_equal(num_threads, two_threads_stay_two):
    """sum_squares, sum_abs_pow and max_abs give the same bits on one and two threads (fixed chunks, summed in
    order) and agree with NumPy; scale_ and clamp_ likewise."""
    rng = np.random.default_rng(5)
    n = (1 << 21) + 5  # past the two-thread threshold of a one-operation loop
    x = rng.standard_normal(n).astype(np.float32)
    wide = x.astype(np.float64)
    results = []
    for threads in (1, 2):
        num_threads(threads)
        scaled, clamped = x.copy(), x.copy()
        _core.scale_(scaled, 0.37)
        _core.clamp_(clamped, 1.5)
        results.append((_core.sum_squares(x), _core.sum_abs_pow(x, 3.0), _core.sum_abs_pow(x, 1.0),
                        _core.max_abs(x), scaled, clamped))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    squares, cubes, absolutes, largest, scaled, clamped = results[0]
    assert squares == pytest.approx(np.sum(wide * wide), rel=1e-13)
    assert cubes == pytest.approx(np.sum(np.abs(wide) ** 3), rel=1e-12)
    assert absolutes == pytest.approx(np.sum(np.abs(wide)), rel=1e-13)
    assert largest == np.max(np.abs(wide))
    np.testing.assert_array_equal(scaled, x * np.float32(0.37))
    np.testing.assert_array_equal(clamped, np.clip(x, np.float32(-1.5), np.float32(1.5)))


def test_gradient_tools_propagate_nan_and_handle_empty_arrays():
    x = np.array([1.0, np.nan, -3.0])
    assert math.isnan(_core.sum_squares(x)) and math.isnan(_core.max_abs(x))
    assert math.isnan(_core.max_abs(np.array([np.nan, 1.0]))) and math.isnan(_core.max_abs(np.array([1.0, np.nan])))
    clamped = x.copy()
    _core.clamp_(clamped, 2.0)
    np.testing.assert_array_equal(clamped, [1.0, np.nan, -2.0])
    empty = np.zeros(0, np.float32)
    assert _core.sum_squares(empty) == 0.0 and _core.max_abs(empty) == 0.0


# ----------------------------------------------------------------------------------------------------------------------
# State dicts.


def json_round_trip(state_dict):
    """The state dict through JSON for everything but the arrays, as a checkpoint writer stores it (the arrays go
    to an .npz): keys become strings, tuples lists."""
    arrays = {}

    def strip(value, path):
        if isinstance(value, np.ndarray):
            arrays[path] = value
            return {"__array__": path}
        if isinstance(value, dict):
            return {k: strip(v, f"{path}/{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strip(v, f"{path}/{k}") for k, v in enumerate(value)]
        return value

    def restore(value):
        if isinstance(value, dict):
            return arrays[value["__array__"]] if set(value) == {"__array__"} else {k: restore(v) for k, v in
                                                                                  value.items()}
        if isinstance(value, list):
            return [restore(v) for v in value]
        return value

    return restore(json.loads(json.dumps(strip(state_dict, ""), allow_nan=False)))


@configs
@pytest.mark.parametrize("through_json", [False, True], ids=["dict", "json"])
def test_state_dict_round_trip_continues_bitwise(config, through_json):
    """Five steps, save; a new optimizer on a copy of the parameters loads it; five more steps on both: equal bits."""
    model = random_module("float64", shapes=[(7,), (4, 3)])
    gradient_steps = random_gradients(model, 10)
    opt = make_optimizer(config, model)
    for gradients in gradient_steps[:5]:
        set_gradients(model, gradients)
        opt.step()
    saved = opt.state_dict()
    if through_json:
        saved = json_round_trip(saved)
    copy_model = Module({k: p.copy() for k, p in model.params.items()})
    resumed = make_optimizer((config[0], {}) if config[0] != "SGD" else ("SGD", {"lr": 0.5}), copy_model)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0] == opt.param_groups[0]
    for gradients in gradient_steps[5:]:
        for m, o in ((model, opt), (copy_model, resumed)):
            set_gradients(m, gradients)
            o.step()
    for a, b in zip(model.params.values(), copy_model.params.values()):
        np.testing.assert_array_equal(a, b)


def test_state_dict_layout_holds_copies_and_load_copies_in():
    model = random_module("float32", shapes=[(5,), (2, 2)])
    opt = optim.Adam(model, lr=0.01, amsgrad=True)
    assert opt.state_dict() == {"state": {}, "param_groups": [
        {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True, "params": [0, 1]}]}
    set_gradients(model, random_gradients(model, 1)[0])
    opt.step()
    saved = opt.state_dict()
    assert sorted(saved["state"]) == [0, 1]
    assert sorted(saved["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert saved["state"][0]["step"] == 1 and type(saved["state"][0]["step"]) is int
    before = copy.deepcopy(saved)
    opt.step()  # the saved dict holds copies: a later step does not change it
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before["state"][0]["exp_avg"])
    other = optim.Adam(Module({k: p.copy() for k, p in model.params.items()}))
    other.load_state_dict(saved)
    saved["state"][0]["exp_avg"][...] = 7  # the loaded state is a copy
    assert not np.any(other.state[0]["exp_avg"] == 7)
    assert other.param_groups[0]["amsgrad"] is True and other.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize("name, before, after", [("SGD", {"lr": 0.1, "momentum": 0.9}, {"momentum": 0.0}),
                                                  ("Adam", {"lr": 0.01, "amsgrad": True}, {"amsgrad": False}),
                                                  ("AdamW", {"lr": 0.01, "amsgrad": True}, {"amsgrad": False}),
                                                  ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5},
                                                   {"centered": False, "momentum": 0.0})])
def test_state_dict_round_trip_after_a_hyperparameter_turns_a_buffer_off(name, before, after):
    """A hyperparameter changed after the first step leaves a buffer the update no longer uses (as torch's state
    does): the state dict still loads, keeps it, and the run continues bit for bit, also after turning it back on."""
    model = random_module("float64", shapes=[(7,), (4, 3)])
    gradient_steps = random_gradients(model, 8)
    opt = make_optimizer((name, before), model)
    for gradients in gradient_steps[:2]:
        set_gradients(model, gradients)
        opt.step()
    opt.param_groups[0].update(after)
    set_gradients(model, gradient_steps[2])
    opt.step()
    saved = json_round_trip(opt.state_dict())
    copy_model = Module({k: p.copy() for k, p in model.params.items()})
    resumed = make_optimizer((name, before), copy_model)
    resumed.load_state_dict(saved)
    assert set(resumed.state[0]) == set(opt.state[0]) and set(opt.state[0]) - {"step"} <= set(type(opt)._buffers)
    for k, gradients in enumerate(gradient_steps[3:]):
        for m, o in ((model, opt), (copy_model, resumed)):
            if k == 2:
                o.param_groups[0].update(before)
            set_gradients(m, gradients)
            o.step()
    for a, b in zip(model.params.values(), copy_model.params.values()):
        np.testing.assert_array_equal(a, b)
    unused = sorted(set(saved["state"]["0"]) - {"step"} - set(type(opt)._state_names(saved["param_groups"][0])[1]))
    assert unused  # (what this test is about)
    wrong = copy.deepcopy(saved)
    wrong["state"]["0"][unused[0]] = wrong["state"]["0"][unused[0]][:1]
    with pytest.raises(ValueError, match=f"{unused[0]}.*expected shape"):  # a kept buffer is checked as the others
        resumed.load_state_dict(wrong)


def test_every_buffer_a_state_can_hold_is_named():
    """_buffers lists every array _state_names can ask for, with every option on."""
    for cls, group in ((optim.SGD, {"momentum": 0.9}), (optim.Adam, {"amsgrad": True}),
                       (optim.AdamW, {"amsgrad": True}), (optim.RMSprop, {"momentum": 0.9, "centered": True})):
        assert set(cls._state_names(group)[1]) == set(cls._buffers), cls.__name__


def test_sgd_without_momentum_keeps_no_state():
    model = random_module("float64", shapes=[(3,)])
    opt = optim.SGD(model, lr=0.1)
    opt.step()
    assert opt.state_dict()["state"] == {}


def test_zero_grad_fills_the_same_arrays_with_zeros():
    model = random_module("float32")
    grads = list(model.grads.values())
    set_gradients(model, random_gradients(model, 1)[0])
    optim.SGD(model, lr=0.1).zero_grad()
    assert all(a is b and not a.any() for a, b in zip(model.grads.values(), grads))


def test_model_lists_share_arrays_once_and_the_group_is_read_at_each_step():
    """A module listed twice counts once; param_groups[0]['lr'] set by hand takes effect at the next step."""
    a, b = random_module("float64", shapes=[(3,)], seed=1), random_module("float64", shapes=[(2,)], seed=2)
    opt = optim.SGD([a, b, a], lr=0.1)
    assert opt.param_groups[0]["params"] == [0, 1]
    a.grads["p0"][...] = 1.0
    before = a.params["p0"].copy()
    opt.param_groups[0]["lr"] = 0.25
    opt.step()
    np.testing.assert_array_equal(a.params["p0"], before - 0.25)


# ----------------------------------------------------------------------------------------------------------------------
# Schedulers against torch.


def both_optimizers(lr=0.1):
    ours = optim.SGD(random_module("float64", shapes=[(2,)]), lr=lr)
    theirs = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr)
    return ours, theirs


SCHEDULERS = [
    [("StepLR", {"step_size": 3})],
    [("StepLR", {"step_size": 5, "gamma": 0.5})],
    [("ExponentialLR", {"gamma": 0.93})],
    [("CosineAnnealingLR", {"T_max": 10})],  # 50 steps: several half-periods, through the restart branch
    [("CosineAnnealingLR", {"T_max": 17, "eta_min": 0.003})],
    [("LinearLR", {})],
    [("LinearLR", {"start_factor": 0.01, "end_factor": 0.5, "total_iters": 20})],
    [("LinearLR", {"start_factor": 0.1, "total_iters": 5}), ("CosineAnnealingLR", {"T_max": 45})],
    [("LinearLR", {"start_factor": 0.25, "total_iters": 8}), ("ExponentialLR", {"gamma": 0.97})],
    [("StepLR", {"step_size": 7, "gamma": 0.3}), ("CosineAnnealingLR", {"T_max": 12})],
]


@pytest.mark.parametrize("chain", SCHEDULERS, ids=lambda c: "+".join(n for n, _ in c))
def test_scheduler_learning_rates_equal_torch(chain):
    """50 epochs of each scheduler (or chain: each stepped in turn, as torch allows): the same float64 learning rates
    as torch's, bit for bit, and the same get_last_lr and last_epoch."""
    ours, theirs = both_optimizers()
    our_schedulers = [getattr(optim, name)(ours, **arguments) for name, arguments in chain]
    their_schedulers = [getattr(torch.optim.lr_scheduler, name)(theirs, **arguments) for name, arguments in chain]
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"]
    for _ in range(50):
        ours.step()
        theirs.step()
        for s, t in zip(our_schedulers, their_schedulers):
            s.step()
            t.step()
        assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"]
        for s, t in zip(our_schedulers, their_schedulers):
            assert s.get_last_lr() == t.get_last_lr() and s.last_epoch == t.last_epoch


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.89999, 0.8, 0.8, 0.81, 0.8, 0.8, 0.8, 0.8, 0.79, 0.7, 0.7,
                   0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.65, 0.7, 0.7, 0.7, 0.7, 0.7, float("nan"), 0.6, 0.6, 0.6, 0.6]
PLATEAUS = [
    {"patience": 2},
    {"patience": 1, "cooldown": 2, "factor": 0.5},
    {"patience": 0, "threshold": 0.01, "threshold_mode": "abs", "min_lr": 0.02},
    {"patience": 1, "threshold": 0.05, "eps": 0.05},
    {"mode": "max", "patience": 2, "factor": 0.3},
    {"mode": "max", "patience": 1, "threshold_mode": "abs", "threshold": 0.0, "cooldown": 1},
]


@pytest.mark.parametrize("arguments", PLATEAUS, ids=str)
def test_reduce_lr_on_plateau_equals_torch(arguments):
    ours, theirs = both_optimizers()
    s = optim.ReduceLROnPlateau(ours, **arguments)
    t = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **arguments)
    sign = -1.0 if arguments.get("mode") == "max" else 1.0
    for metric in PLATEAU_METRICS:
        s.step(sign * metric)
        t.step(sign * metric)
        assert s.get_last_lr() == t.get_last_lr()
        assert (s.best, s.num_bad_epochs, s.cooldown_counter, s.last_epoch) == \
            (t.best, t.num_bad_epochs, t.cooldown_counter, t.last_epoch)
    assert ours.param_groups[0]["lr"] < 0.1  # the sequence did reduce it


def test_training_loop_with_warmup_and_cosine_matches_torch():
    """Adam driven by LinearLR warm-up chained with CosineAnnealingLR: 40 steps, parameters as torch's."""
    start = random_module("float64", shapes=[(6,), (3, 2)]).params
    gradient_steps = random_gradients(Module(start), 40)
    model = Module({k: p.copy() for k, p in start.items()})
    ours = optim.Adam(model, lr=0.05)
    ps = [torch.tensor(p.copy(), requires_grad=True) for p in start.values()]
    theirs = torch.optim.Adam(ps, lr=0.05, foreach=False)
    schedulers = [(optim.LinearLR(ours, start_factor=0.1, total_iters=5), optim.CosineAnnealingLR(ours, T_max=40)),
                  (torch.optim.lr_scheduler.LinearLR(theirs, start_factor=0.1, total_iters=5),
                   torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=40))]
    for gradients in gradient_steps:
        set_gradients(model, gradients)
        for p, g in zip(ps, gradients):
            p.grad = torch.from_numpy(g.copy())
        ours.step()
        theirs.step()
        for s in schedulers[0] + schedulers[1]:
            s.step()
    for p, t in zip(model.params.values(), ps):
        assert max_scaled_error(p, t.detach().numpy()) <= TORCH_F64_OF_SCALE


@pytest.mark.parametrize("chain", SCHEDULERS[2:5] + SCHEDULERS[7:8], ids=lambda c: "+".join(n for n, _ in c))
def test_scheduler_state_dict_round_trip(chain):
    """Ten epochs, save optimizer and schedulers (through JSON), rebuild, load, ten more: the same learning rates."""
    ours, _ = both_optimizers()
    schedulers = [getattr(optim, name)(ours, **arguments) for name, arguments in chain]
    for _ in range(10):
        ours.step()
        for s in schedulers:
            s.step()
    saved = json_round_trip({"optimizer": ours.state_dict(), "schedulers": [s.state_dict() for s in schedulers]})
    resumed, _ = both_optimizers(lr=0.7)
    resumed_schedulers = [getattr(optim, name)(resumed, **arguments) for name, arguments in chain]
    resumed.load_state_dict(saved["optimizer"])  # after the schedulers' construction, which sets the lr
    for s, state in zip(resumed_schedulers, saved["schedulers"]):
        s.load_state_dict(state)
    for _ in range(10):
        for o, ss in ((ours, schedulers), (resumed, resumed_schedulers)):
            o.step()
            for s in ss:
                s.step()
        assert resumed.param_groups[0]["lr"] == ours.param_groups[0]["lr"]
        assert [s.get_last_lr() for s in resumed_schedulers] == [s.get_last_lr() for s in schedulers]


def test_plateau_state_dict_round_trip():
    ours, _ = both_optimizers()
    s = optim.ReduceLROnPlateau(ours, patience=1, cooldown=1)
    fresh = s.state_dict()
    assert fresh["best"] is None  # torch's inf, as plain JSON
    for metric in PLATEAU_METRICS[:12]:
        s.step(metric)
    saved = json_round_trip({"optimizer": ours.state_dict(), "scheduler": s.state_dict()})
    resumed, _ = both_optimizers(lr=0.3)
    r = optim.ReduceLROnPlateau(resumed, patience=7)
    resumed.load_state_dict(saved["optimizer"])
    r.load_state_dict(saved["scheduler"])
    for metric in PLATEAU_METRICS[12:]:
        s.step(metric)
        r.step(metric)
        assert r.get_last_lr() == s.get_last_lr() and r.best == s.best


# ----------------------------------------------------------------------------------------------------------------------
# Gradient clipping against torch.


def clip_pair(dtype, scale=3.0, seed=4):
    """A model with gradients and torch parameters with the same gradients."""
    model = random_module(dtype, seed=seed)
    set_gradients(model, [scale * g for g in random_gradients(model, 1, seed=seed + 1)[0]])
    ps = [torch.zeros(g.shape, dtype=getattr(torch, dtype)) for g in model.grads.values()]
    for p, g in zip(ps, model.grads.values()):
        p.grad = torch.from_numpy(g.copy())
    return model, ps


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0, 3.0])
@pytest.mark.parametrize("max_norm", [1.0, 1e6])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    model, ps = clip_pair(dtype)
    expected_grads = [g.copy() for g in model.grads.values()]
    expected_norm = ref.clip_grad_norm(expected_grads, max_norm, norm_type)
    total = optim.clip_grad_norm(model, max_norm, norm_type)
    torch_total = float(torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type))
    assert type(total) is float
    rtol = 1e-13 if dtype == "float64" else 1e-6  # torch sums float32 gradients in float32
    assert total == pytest.approx(torch_total, rel=rtol) and total == pytest.approx(expected_norm, rel=1e-13)
    for g, e, p in zip(model.grads.values(), expected_grads, ps):
        if dtype == "float64":
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-13)
            np.testing.assert_allclose(g, e, rtol=1e-13)
        else:
            assert max_scaled_error(g, p.grad.numpy()) <= 2e-6 and max_scaled_error(g, e) <= 1e-6
    if max_norm == 1e6:
        for g, e in zip(model.grads.values(), expected_grads):
            np.testing.assert_array_equal(g, e)  # not clipped


def test_clip_grad_norm_nonfinite():
    """A NaN gradient: the norm is NaN and every gradient becomes NaN (as torch), or RuntimeError if asked."""
    model, ps = clip_pair("float64")
    model.grads["p2"][0, 0] = np.nan
    ps[2].grad[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm(model, 1.0, error_if_nonfinite=True)
    assert not np.isnan(model.grads["p0"]).any()  # nothing changed
    assert math.isnan(optim.clip_grad_norm(model, 1.0))
    torch.nn.utils.clip_grad_norm_(ps, 1.0)
    for g, p in zip(model.grads.values(), ps):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(p.grad.numpy()))
    assert all(np.isnan(g).all() for g in model.grads.values())


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 3.0])
def test_clip_grad_norm_of_float32_gradients_near_their_largest(norm_type):
    """float32 gradients of total norm about 1e38 clipped to 1: the factor (about 1e-38) is below float32's smallest
    normal number, which the kernels' threads would read as 0; the gradients are scaled as the reference scales them,
    not zeroed (products below that number may still be flushed to 0)."""
    grads = [np.array([1e38, -2.0, 3e37], np.float32), np.array([5.0, 1e20], np.float32)]
    expected = [g.copy() for g in grads]
    expected_total = ref.clip_grad_norm(expected, 1.0, norm_type)
    total = optim.clip_grads_by_norm(grads, 1.0, norm_type)
    assert total == pytest.approx(expected_total, rel=1e-13)
    assert 0.9 < abs(float(expected[0][0])) <= 1.0  # the reference keeps the largest element near 1
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=float(np.finfo(np.float32).tiny))


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_value_matches_torch(dtype):
    model, ps = clip_pair(dtype)
    model.grads["p3"][3] = np.nan
    ps[3].grad[3] = float("nan")
    expected = [g.copy() for g in model.grads.values()]
    ref.clip_grad_value(expected, 0.5)
    optim.clip_grad_value(model, 0.5)
    torch.nn.utils.clip_grad_value_(ps, 0.5)
    for g, e, p in zip(model.grads.values(), expected, ps):
        np.testing.assert_array_equal(g, p.grad.numpy())
        np.testing.assert_array_equal(g, e)


# ----------------------------------------------------------------------------------------------------------------------
# Errors: the right type, naming the argument.


def small():
    return random_module("float64", shapes=[(3,)])


class Frozen:
    params = {"w": np.zeros(3)}
    grads = {"w": np.zeros(3)}


Frozen.params["w"].flags.writeable = False


class Ints:
    params = {"w": np.zeros(3, np.int64)}
    grads = {"w": np.zeros(3, np.int64)}


class Mismatched:
    params = {"w": np.zeros(3)}
    grads = {"w": np.zeros(4)}


class Views:
    _block = np.zeros(6)
    params = {"a": _block[:4], "b": _block[2:]}
    grads = {"a": np.zeros(4), "b": np.zeros(4)}


ERRORS = [
    (lambda: optim.SGD(small(), lr=-0.1), ValueError, "lr: expected a finite number >= 0, got -0.1"),
    (lambda: optim.SGD(small(), lr="0.1"), TypeError, "lr: expected a finite number >= 0, got str"),
    (lambda: optim.SGD(small(), lr=0.1, momentum=-1), ValueError, "momentum"),
    (lambda: optim.SGD(small(), lr=0.1, nesterov=True), ValueError, "nesterov: Nesterov momentum expects momentum > 0"),
    (lambda: optim.SGD(small(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "dampening=0.1"),
    (lambda: optim.SGD(small(), lr=0.1, weight_decay=-1e-3), ValueError, "weight_decay"),
    (lambda: optim.Adam(small(), betas=(1.0, 0.999)), ValueError,
     "betas[0]: expected a finite number in [0, 1), got 1.0"),
    (lambda: optim.Adam(small(), betas=(0.9, -0.1)), ValueError, "betas[1]"),
    (lambda: optim.Adam(small(), betas=0.9), TypeError, "betas: expected a pair"),
    (lambda: optim.Adam(small(), eps=-1.0), ValueError, "eps"),
    (lambda: optim.AdamW(small(), lr=float("nan")), ValueError, "lr"),
    (lambda: optim.Adam(small(), amsgrad=1), TypeError, "amsgrad: expected a bool, got int"),
    (lambda: optim.RMSprop(small(), alpha=-0.5), ValueError, "alpha"),
    (lambda: optim.RMSprop(small(), centered="yes"), TypeError, "centered"),
    (lambda: optim.Adam(Module({})), ValueError, "empty parameter list"),
    (lambda: optim.Adam([]), ValueError, "empty parameter list"),
    (lambda: optim.Adam(42), TypeError, "model: expected a module"),
    (lambda: optim.Adam([small(), "x"]), TypeError, "model[1]: expected a module"),
    (lambda: optim.Adam(Ints()), TypeError, "model.params['w']: expected a C-contiguous float32 or float64"),
    (lambda: optim.Adam(Mismatched()), ValueError, "model.grads['w']: expected shape (3,)"),
    (lambda: optim.Adam(Frozen()), ValueError, "model.params['w']: expected a writeable array"),
    (lambda: optim.Adam(Views()), ValueError, "share memory"),
    (lambda: optim.Adam(Module({"w": np.zeros((4, 4))[:, ::2]})), TypeError, "non-contiguous"),
    (lambda: optim.StepLR(optim.SGD(small()), step_size=0), ValueError, "step_size: expected an int >= 1, got 0"),
    (lambda: optim.StepLR(torch.optim.SGD([torch.zeros(1)]), 3), TypeError, "optimizer: expected a pylstm.optim"),
    (lambda: optim.ExponentialLR(optim.SGD(small()), gamma=-1), ValueError, "gamma"),
    (lambda: optim.CosineAnnealingLR(optim.SGD(small()), T_max=2.5), TypeError, "T_max: expected an int"),
    (lambda: optim.LinearLR(optim.SGD(small()), start_factor=0), ValueError,
     "start_factor: expected a finite number in (0, 1], got 0"),
    (lambda: optim.LinearLR(optim.SGD(small()), end_factor=1.5), ValueError, "end_factor"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(small()), factor=1.0), ValueError, "factor"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(small()), mode="up"), ValueError, "mode: expected one of 'min', 'max'"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(small()), threshold_mode="x"), ValueError, "threshold_mode"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(small()), min_lr=[0, 0]), ValueError, "min_lr"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(small())).step("low"), TypeError, "metrics"),
    (lambda: optim.clip_grad_norm(small(), -1.0), ValueError, "max_norm"),
    (lambda: optim.clip_grad_norm(small(), 1.0, norm_type=0), ValueError, "norm_type"),
    (lambda: optim.clip_grad_value(small(), "1"), TypeError, "clip_value"),
    (lambda: optim.SGD(small(), lr=10 ** 400), ValueError, "lr: expected a finite number >= 0"),
    (lambda: optim.StepLR(optim.SGD(small()), step_size=2 ** 70), ValueError, "step_size: expected an int <= 2**62"),
]


@pytest.mark.parametrize("make, error, message", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_bad_arguments_raise_naming_the_argument(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


def adam_arrays(dtype="float64", n=4):
    return [np.zeros(n, dtype) for _ in range(4)]


KERNEL_ERRORS = [
    (lambda p, g, m, v: optim.adam_step(p, g.astype(np.float32), {}, lr=0.1, betas=(0.9, 0.99), eps=1e-8,
                                        weight_decay=0, amsgrad=False),
     TypeError, "grad: expected dtype float64 (the dtype of param), got float32"),
    (lambda p, g, m, v: optim.sgd_step(p, np.zeros(5), {}, lr=0.1), ValueError,
     "grad: expected shape (4,) (the shape of param), got (5,)"),
    (lambda p, g, m, v: _core.adam_step(p, g, m, p, None, step=1, lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8,
                                        weight_decay=0, decoupled_weight_decay=False),
     ValueError, "exp_avg_sq: must not share memory with param"),
    (lambda p, g, m, v: _core.adam_step(p, g, m, v, None, step=0, lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8,
                                        weight_decay=0, decoupled_weight_decay=False),
     ValueError, "step: expected an int >= 1"),
    (lambda p, g, m, v: _core.rmsprop_step(p, g, m, None, None, lr=0.1, alpha=0.9, eps=1e-8, weight_decay=0,
                                           momentum=0.5),
     ValueError, "momentum_buffer: expected an array exactly when momentum > 0, got None"),
    (lambda p, g, m, v: _core.sgd_step(p, g, m, lr=0.1, momentum=0.0, dampening=0, weight_decay=0, nesterov=False,
                                       first_step=False),
     ValueError, "momentum_buffer: expected None exactly when momentum != 0"),
    (lambda p, g, m, v: _core.sgd_step(p[::2], g[::2], None, lr=0.1, momentum=0.0, dampening=0, weight_decay=0,
                                       nesterov=False, first_step=False),
     ValueError, "param: expected a C-contiguous array"),
    (lambda p, g, m, v: _core.sgd_step(p, [0.0] * 4, None, lr=0.1, momentum=0.0, dampening=0, weight_decay=0,
                                       nesterov=False, first_step=False),
     TypeError, "grad: expected a numpy.ndarray, got list"),
    (lambda p, g, m, v: _core.sum_squares(np.zeros(3, np.int32)), TypeError, "x: expected dtype float32 or float64"),
    (lambda p, g, m, v: _core.sum_abs_pow(p, 0.0), ValueError, "p: expected a finite number > 0"),
]


@pytest.mark.parametrize("call, error, message", KERNEL_ERRORS, ids=[e[2][:40] for e in KERNEL_ERRORS])
def test_kernel_arguments_are_checked(call, error, message):
    p, g, m, v = adam_arrays()
    p[...] = 1.0
    with pytest.raises(error) as info:
        call(p, g, m, v)
    assert message in str(info.value)
    np.testing.assert_array_equal(p, 1.0)  # nothing was updated


def test_read_only_state_is_refused():
    p, g, m, v = adam_arrays()
    v.flags.writeable = False
    with pytest.raises(ValueError, match="exp_avg_sq: expected a writeable array"):
        optim.adam_step(p, g, {"step": 1, "exp_avg": m, "exp_avg_sq": v}, lr=0.1, betas=(0.9, 0.99), eps=1e-8,
                        weight_decay=0, amsgrad=False)


def trained_adam():
    model = random_module("float64", shapes=[(3,), (2, 2)])
    opt = optim.Adam(model, amsgrad=True)
    set_gradients(model, random_gradients(model, 1)[0])
    opt.step()
    return opt


def edited(change):
    def make():
        state = trained_adam().state_dict()
        change(state)
        return state
    return make


def pop_key(d, key):
    d.pop(key)


BAD_STATE_DICTS = [
    (edited(lambda s: pop_key(s, "state")), ValueError, "state_dict: expected the keys ['state', 'param_groups']"),
    (edited(lambda s: s["param_groups"].append({})), ValueError, "expected a list of one dict, got 2 groups"),
    (edited(lambda s: s["param_groups"][0].update(lr=-1)), ValueError, "state_dict['param_groups'][0]['lr']"),
    (edited(lambda s: s["param_groups"][0].update(foreach=None)), ValueError, "unexpected keys ['foreach']"),
    (edited(lambda s: s["param_groups"][0].update(params=[0])), ValueError,
     "['params']: expected the parameter numbers"),
    (edited(lambda s: s["state"][0].update(exp_avg=np.zeros(4))), ValueError,
     "state_dict['state'][0]['exp_avg']: expected shape (3,)"),
    (edited(lambda s: s["state"][1].update(exp_avg_sq=np.zeros((2, 2), np.float32))), TypeError,
     "state_dict['state'][1]['exp_avg_sq']: expected dtype float64"),
    (edited(lambda s: pop_key(s["state"][1], "max_exp_avg_sq")), ValueError, "missing keys ['max_exp_avg_sq']"),
    (edited(lambda s: s["state"][0].update(step=0)), ValueError, "['step']: expected an int >= 1, got 0"),
    (edited(lambda s: s["state"][0].update(step=2 ** 70)), ValueError, "['step']: expected an int <= 2**62"),
    (edited(lambda s: s["state"].update({5: {}})), ValueError, "expected parameter numbers in [0, 2)"),
    (edited(lambda s: s["state"][0].update(momentum_buffer=np.zeros(3))), ValueError,
     "unexpected keys ['momentum_buffer']"),  # not Adam's (a buffer amsgrad=False leaves unused is: see above)
    (lambda: [1, 2], TypeError, "state_dict: expected a dict, got list"),
]


@pytest.mark.parametrize("make, error, message", BAD_STATE_DICTS, ids=[e[2][:40] for e in BAD_STATE_DICTS])
def test_bad_state_dict_raises_and_changes_nothing(make, error, message):
    opt = trained_adam()
    before = opt.state_dict()
    with pytest.raises(error) as info:
        opt.load_state_dict(make())
    assert message in str(info.value)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for k in before["state"]:
        for name, value in before["state"][k].items():
            np.testing.assert_array_equal(after["state"][k][name], value)


def test_bad_scheduler_state_dict_raises_and_changes_nothing():
    s = optim.StepLR(optim.SGD(small(), lr=0.1), step_size=3)
    good = s.state_dict()
    for change, error, message in [({"step_size": 0}, ValueError, "state_dict['step_size']"),
                                   ({"base_lrs": [0.1, 0.2]}, ValueError, "state_dict['base_lrs']"),
                                   ({"verbose": False}, ValueError, "unexpected keys ['verbose']")]:
        with pytest.raises(error, match=re.escape(message)):
            s.load_state_dict({**good, **change})
        assert s.state_dict() == good


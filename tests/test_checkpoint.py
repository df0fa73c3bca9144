"""Tests of pylstm.save / pylstm.load (pylstm/checkpoint.py).

* round trip for every class and a spread of configs: equal config, bitwise-equal parameters (names, order, dtype),
  bitwise-equal outputs in eval mode; the loaded module is in training mode with zero gradients;
* the file: exactly at the given path (no ".npz" appended), the documented header, overwriting;
* atomic saving: a save that fails at any stage leaves the previous file intact and no temporary file behind;
* bad files: every kind of damage gives a ValueError naming the path, and a pickled object array is refused without
  running its payload.
"""
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

import pylstm
from pylstm import checkpoint

HEADER = "__pylstm__"

# (id, class name, positional args, keywords)
CONFIGS = [
    ("lstm", "LSTM", (3, 4), {}),
    ("lstm-2layers", "LSTM", (3, 4, 2), {}),
    ("lstm-bidir", "LSTM", (3, 4), {"bidirectional": True}),
    ("lstm-2layers-bidir-dropout", "LSTM", (3, 4, 2), {"bidirectional": True, "dropout": 0.25, "seed": 7}),
    ("lstm-proj", "LSTM", (3, 5, 2), {"proj_size": 2, "bidirectional": True}),
    ("lstm-peepholes", "LSTM", (3, 4), {"peepholes": True}),
    ("lstm-proj-peepholes-f64", "LSTM", (3, 5, 2), {"proj_size": 3, "peepholes": True, "dtype": "float64"}),
    ("lstm-forget_bias", "LSTM", (3, 4), {"forget_bias": 1.0}),
    ("lstm-nobias-batch_first", "LSTM", (3, 4), {"bias": False, "batch_first": True}),
    ("gru", "GRU", (3, 4), {}),
    ("gru-reset_before", "GRU", (3, 4, 2), {"reset_after": False}),
    ("gru-bidir-f64-batch_first", "GRU", (3, 4, 2), {"bidirectional": True, "dtype": "float64",
                                                     "batch_first": True}),
    ("rnn", "RNN", (3, 4), {}),
    ("rnn-relu-2layers", "RNN", (3, 4, 2), {"nonlinearity": "relu"}),
    ("rnn-relu-bidir-nobias-f64", "RNN", (3, 4), {"nonlinearity": "relu", "bidirectional": True, "bias": False,
                                                  "dtype": "float64"}),
    ("lstmcell", "LSTMCell", (3, 4), {}),
    ("lstmcell-f64-nobias", "LSTMCell", (3, 4), {"dtype": "float64", "bias": False}),
    ("grucell", "GRUCell", (3, 4), {}),
    ("grucell-reset_before", "GRUCell", (3, 4), {"reset_after": False, "dtype": "float64"}),
    ("rnncell", "RNNCell", (3, 4), {}),
    ("rnncell-relu", "RNNCell", (3, 4), {"nonlinearity": "relu", "seed": 3}),
]
configs = pytest.mark.parametrize("cls_name, args, kwargs", [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])


def make(cls_name, args, kwargs, seed=0):
    """A module whose parameters are random (including peepholes, which start at zero), so that a load which
    forgot to copy the parameters would not pass by rebuilding the same seeded initialisation."""
    module = getattr(pylstm, cls_name)(*args, **kwargs)
    rng = np.random.default_rng(seed)
    for p in module.params.values():
        p[...] = rng.uniform(-0.5, 0.5, size=p.shape)
    return module


def run(module, seed=1):
    """Eval-mode forward on a fixed input -> flat list of output arrays."""
    module.eval()
    rng = np.random.default_rng(seed)
    dtype = module.config()["dtype"]
    inputs = module.config()["input_size"]
    if type(module).__name__.endswith("Cell"):
        x = rng.standard_normal((2, inputs)).astype(dtype)
        result = module(x)
        return list(result) if isinstance(result, tuple) else [result]
    shape = (2, 5, inputs) if module.config()["batch_first"] else (5, 2, inputs)
    x = rng.standard_normal(shape).astype(dtype)
    out, state = module(x)
    return [out] + (list(state) if isinstance(state, tuple) else [state])


def bitwise_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def read_raw(path):
    """-> (arrays dict without the header, header dict) of a checkpoint file."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != HEADER}
        header = json.loads(f[HEADER].tobytes().decode("utf-8"))
    return arrays, header


def write_raw(path, arrays, header=None, raw_header=None):
    """Write an .npz with the given arrays and a header (a dict, encoded like save does, or raw bytes/array)."""
    entries = dict(arrays)
    if header is not None:
        entries[HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    if raw_header is not None:
        entries[HEADER] = raw_header
    with open(path, "wb") as f:
        np.savez(f, **entries)


@pytest.fixture
def saved(tmp_path):
    """A real checkpoint of a 2-layer bidirectional LSTM: (path, module, arrays, header)."""
    module = make("LSTM", (3, 4, 2), {"bidirectional": True})
    path = tmp_path / "model.ckpt"
    pylstm.save(path, module)
    arrays, header = read_raw(path)
    return path, module, arrays, header


def expect_invalid(path, match):
    with pytest.raises(ValueError, match=match) as info:
        pylstm.load(path)
    assert str(path) in str(info.value)
    return info.value


# ----------------------------------------------------------------------------------------------------------------------
# Round trip


@configs
def test_round_trip(tmp_path, cls_name, args, kwargs):
    module = make(cls_name, args, kwargs)
    path = tmp_path / "m.npz"
    pylstm.save(path, module)
    loaded = pylstm.load(path)

    assert type(loaded) is type(module)
    assert loaded.config() == module.config()
    assert list(loaded.params) == list(module.params)
    for name, p in module.params.items():
        assert bitwise_equal(loaded.params[name], p), name
    # Like a fresh module: training mode, zero gradients.
    assert loaded.training
    assert all(not g.any() for g in loaded.grads.values())

    expected, got = run(module), run(loaded)
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert bitwise_equal(g, e)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_kept_exactly(tmp_path, dtype):
    module = make("GRU", (2, 3), {"dtype": dtype})
    pylstm.save(tmp_path / "g", module)
    loaded = pylstm.load(tmp_path / "g")
    assert loaded.config()["dtype"] == dtype
    assert all(p.dtype == np.dtype(dtype) for p in loaded.params.values())


def test_special_values_kept_bitwise(tmp_path):
    module = make("RNNCell", (2, 3), {"dtype": "float64"})
    w = module.params["weight_ih"]
    w.flat[:5] = [np.nan, np.inf, -np.inf, -0.0, 5e-324]
    pylstm.save(tmp_path / "c", module)
    assert bitwise_equal(pylstm.load(tmp_path / "c").params["weight_ih"], w)


def test_loaded_params_are_independent_arrays(tmp_path):
    module = make("LSTMCell", (2, 3), {})
    pylstm.save(tmp_path / "c", module)
    a, b = pylstm.load(tmp_path / "c"), pylstm.load(tmp_path / "c")
    a.params["weight_hh"][...] = 0
    assert b.params["weight_hh"].any()
    assert module.params["weight_hh"].any()
    assert all(p.flags.writeable for p in b.params.values())


# ----------------------------------------------------------------------------------------------------------------------
# The file


@pytest.mark.parametrize("name", ["model", "model.npz", "model.ckpt", "with space.bin"])
@pytest.mark.parametrize("as_path", [False, True], ids=["str", "pathlib"])
def test_file_is_exactly_at_path(tmp_path, name, as_path):
    path = tmp_path / name
    pylstm.save(path if as_path else str(path), make("RNN", (2, 3), {}))
    assert sorted(os.listdir(tmp_path)) == [name]
    assert zipfile.is_zipfile(path)
    assert pylstm.load(str(path) if as_path else path).config()["hidden_size"] == 3


def test_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pylstm.save("rel", make("GRUCell", (2, 3), {}))
    assert os.listdir(".") == ["rel"]
    assert type(pylstm.load("rel")) is pylstm.GRUCell


def test_header_contents(saved):
    path, module, arrays, header = saved
    assert header["format"] == "pylstm-checkpoint"
    assert header["version"] == 1
    assert header["class"] == "LSTM"
    assert header["config"] == module.config()
    assert header["params"] == {k: [list(p.shape), str(p.dtype)] for k, p in module.params.items()}
    assert set(arrays) == set(module.params)
    for k, p in module.params.items():
        assert bitwise_equal(arrays[k], p)
    with np.load(path, allow_pickle=False) as f:
        raw = f[HEADER]
    assert raw.dtype == np.uint8 and raw.ndim == 1


def test_overwrite_replaces_previous(tmp_path):
    path = tmp_path / "m"
    pylstm.save(path, make("LSTM", (2, 3), {}))
    pylstm.save(path, make("GRU", (4, 5), {"reset_after": False}))
    loaded = pylstm.load(path)
    assert type(loaded) is pylstm.GRU and loaded.config()["reset_after"] is False
    assert os.listdir(tmp_path) == ["m"]


def test_new_file_mode_follows_umask(tmp_path):
    old = os.umask(0o027)
    try:
        pylstm.save(tmp_path / "m", make("RNNCell", (2, 3), {}))
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "m").st_mode & 0o777 == 0o640


def test_save_rejects_non_modules(tmp_path):
    with pytest.raises(TypeError, match="pylstm module"):
        pylstm.save(tmp_path / "x", {"weight_ih_l0": np.zeros((4, 3))})

    class MyLSTM(pylstm.LSTM):
        pass

    with pytest.raises(TypeError, match="MyLSTM"):  # load could not rebuild a subclass
        pylstm.save(tmp_path / "x", MyLSTM(2, 3))
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------------------------------
# Atomic saving


def _fail(*args, **kwargs):
    raise OSError("injected failure")


def _partial_savez(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a zip")
    raise OSError("disk full (injected)")


def _interrupted_savez(file, *args, **kwargs):
    file.write(b"PK\x03\x04")
    raise KeyboardInterrupt


@pytest.mark.parametrize("target, replacement, error", [
    ("numpy.savez", _partial_savez, OSError),
    ("numpy.savez", _interrupted_savez, KeyboardInterrupt),
    ("os.fsync", _fail, OSError),
    ("os.chmod", _fail, OSError),
    ("os.replace", _fail, OSError),
], ids=["savez-partial", "savez-interrupted", "fsync", "chmod", "replace"])
def test_failed_save_keeps_previous_file(tmp_path, monkeypatch, target, replacement, error):
    path = tmp_path / "m.npz"
    previous = make("LSTM", (2, 3), {})
    pylstm.save(path, previous)
    before = path.read_bytes()

    monkeypatch.setattr(target, replacement)
    with pytest.raises(error):
        pylstm.save(path, make("GRU", (2, 3), {}, seed=5))
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left
    loaded = pylstm.load(path)
    assert type(loaded) is pylstm.LSTM
    assert all(bitwise_equal(loaded.params[k], p) for k, p in previous.params.items())


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("os.replace", _fail)
    with pytest.raises(OSError):
        pylstm.save(tmp_path / "m", make("RNN", (2, 3), {}))
    assert os.listdir(tmp_path) == []


def test_save_to_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        pylstm.save(tmp_path / "no" / "m", make("RNN", (2, 3), {}))
    assert os.listdir(tmp_path) == []


def test_save_onto_directory_fails_cleanly(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError):
        pylstm.save(tmp_path / "d", make("RNN", (2, 3), {}))
    assert os.listdir(tmp_path) == ["d"] and os.listdir(tmp_path / "d") == []


# ----------------------------------------------------------------------------------------------------------------------
# Bad files


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        pylstm.load(tmp_path / "nothing")


def test_truncated_half(saved):
    path = saved[0]
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    expect_invalid(path, "not a readable .npz")


def test_every_truncation_is_a_value_error(saved, tmp_path):
    data = saved[0].read_bytes()
    cut = tmp_path / "cut"
    for n in list(range(0, len(data), max(1, len(data) // 97))) + [len(data) - 1]:
        cut.write_bytes(data[:n])
        expect_invalid(cut, "not a valid pylstm checkpoint")


def test_corrupted_bytes_are_a_value_error(saved, tmp_path):
    data = saved[0].read_bytes()
    bad = tmp_path / "bad"
    rng = np.random.default_rng(0)
    for _ in range(50):
        damaged = bytearray(data)
        for i in rng.integers(0, len(data), size=3):
            damaged[i] ^= 0xFF
        bad.write_bytes(bytes(damaged))
        try:
            pylstm.load(bad)  # a flip inside the float data is a valid (different) checkpoint
        except ValueError as exc:
            assert str(bad) in str(exc)


@pytest.mark.parametrize("content", [b"", b"\x00", os.urandom(1000), b"PK\x03\x04" + os.urandom(200),
                                     b"\x93NUMPY garbage", b"hello, world\n"],
                         ids=["empty", "one-byte", "random", "zip-magic-random", "npy-magic-garbage", "text"])
def test_not_an_npz(tmp_path, content):
    path = tmp_path / "junk"
    path.write_bytes(content)
    expect_invalid(path, "not a valid pylstm checkpoint")


def test_single_npy_file(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(3))
    expect_invalid(path, "not a .npz")


def test_directory(tmp_path):
    expect_invalid(tmp_path, "not a readable .npz")


def test_plain_npz_without_header(tmp_path, saved):
    path = tmp_path / "plain.npz"
    write_raw(path, saved[2])
    expect_invalid(path, "no '__pylstm__' header")


@pytest.mark.parametrize("raw, match", [
    (np.frombuffer(b"{not json", dtype=np.uint8), "not UTF-8 JSON"),
    (np.frombuffer(b"\xff\xfe", dtype=np.uint8), "not UTF-8 JSON"),
    (np.frombuffer(b"[1, 2]", dtype=np.uint8), "not a JSON object"),
    (np.zeros(4, dtype=np.float32), "1-D uint8"),
    (np.zeros((2, 2), dtype=np.uint8), "1-D uint8"),
], ids=["bad-json", "bad-utf8", "json-list", "float-header", "2d-header"])
def test_unreadable_header(tmp_path, saved, raw, match):
    path = tmp_path / "h.npz"
    write_raw(path, saved[2], raw_header=raw)
    expect_invalid(path, match)


@pytest.mark.parametrize("change, match", [
    ({"format": "something-else"}, "unknown format"),
    ({"format": None}, "unknown format"),
    ({"version": 2}, "unsupported version"),
    ({"version": "1"}, "unsupported version"),
    ({"version": True}, "unsupported version"),
    ({"class": "Transformer"}, "unknown class 'Transformer'"),
    ({"class": "_RecurrentLayer"}, "unknown class"),
    ({"class": None}, "unknown class"),
    ({"config": [3, 4]}, "config is not a JSON object"),
    ({"params": None}, "params is not a JSON object"),
], ids=["format", "no-format", "version-2", "version-str", "version-bool", "class", "private-class", "no-class",
        "config-list", "params-none"])
def test_bad_header_fields(tmp_path, saved, change, match):
    path = tmp_path / "h.npz"
    write_raw(path, saved[2], header={**saved[3], **change})
    expect_invalid(path, match)


def test_header_without_class(tmp_path, saved):
    header = dict(saved[3])
    del header["class"]
    path = tmp_path / "h.npz"
    write_raw(path, saved[2], header=header)
    expect_invalid(path, "unknown class None")


@pytest.mark.parametrize("config_change, match", [
    ({"hidden_size": -1}, "do not fit the declared shape"),
    ({"hidden_size": "four"}, "rejects the saved config"),
    ({"no_such_option": 1}, "rejects the saved config"),
    ({"dtype": "int8"}, "rejects the saved config"),
], ids=["negative", "string", "unknown-keyword", "dtype"])
def test_config_rejected(tmp_path, saved, config_change, match):
    header = dict(saved[3])
    header["config"] = {**header["config"], **config_change}
    path = tmp_path / "h.npz"
    write_raw(path, saved[2], header=header)
    expect_invalid(path, match)


def test_header_config_disagrees_with_params(tmp_path, saved):
    """A consistent file for hidden_size=4, but the header's config says 5: shapes differ from the module's."""
    header = dict(saved[3])
    header["config"] = {**header["config"], "hidden_size": 5}
    path = tmp_path / "h.npz"
    write_raw(path, saved[2], header=header)
    expect_invalid(path, r"do not fit the declared shape of 'weight_ih_l0': \[16, 3\]")


@pytest.mark.parametrize("config_change", [{"hidden_size": 10 ** 9}, {"input_size": 10 ** 12},
                                           {"num_layers": 10 ** 6}])
def test_huge_config_is_refused_before_allocating(tmp_path, saved, config_change):
    """A doctored header asking for a gigantic module is refused by comparing it with the file's own arrays,
    before anything is built (building hidden_size=1e9 would need terabytes)."""
    header = dict(saved[3])
    header["config"] = {**header["config"], **config_change}
    path = tmp_path / "h.npz"
    write_raw(path, saved[2], header=header)
    expect_invalid(path, "do not fit the declared")


def test_param_with_wrong_shape(tmp_path, saved):
    arrays = dict(saved[2])
    arrays["weight_hh_l1"] = np.zeros((16, 3), dtype=np.float32)
    path = tmp_path / "p.npz"
    write_raw(path, arrays, header=saved[3])
    err = expect_invalid(path, "'weight_hh_l1' is stored as")
    assert "(16, 3)" in str(err) and "(16, 4)" in str(err)


def test_header_shape_wrong(tmp_path, saved):
    header = json.loads(json.dumps(saved[3]))
    header["params"]["bias_ih_l0"] = [[15], "float32"]
    path = tmp_path / "p.npz"
    write_raw(path, saved[2], header=header)
    expect_invalid(path, r"header says 'bias_ih_l0' is \(15,\)")


def test_param_with_wrong_dtype(tmp_path, saved):
    arrays = dict(saved[2])
    arrays["weight_ih_l0"] = arrays["weight_ih_l0"].astype(np.float64)
    path = tmp_path / "p.npz"
    write_raw(path, arrays, header=saved[3])
    expect_invalid(path, "'weight_ih_l0' is stored as .* float64")


def test_header_dtype_wrong(tmp_path, saved):
    header = json.loads(json.dumps(saved[3]))
    header["params"]["weight_ih_l0"][1] = "float64"
    path = tmp_path / "p.npz"
    write_raw(path, saved[2], header=header)
    expect_invalid(path, "header says 'weight_ih_l0' is .* float64")


@pytest.mark.parametrize("entry", [[[16, 3]], [16, "float32"], [[16, -3], "float32"], [[16, 3], "not-a-dtype"],
                                   [[16.0, 3], "float32"]],
                         ids=["short", "shape-int", "negative", "bad-dtype", "float-dim"])
def test_header_param_entry_malformed(tmp_path, saved, entry):
    header = json.loads(json.dumps(saved[3]))
    header["params"]["weight_ih_l0"] = entry
    path = tmp_path / "p.npz"
    write_raw(path, saved[2], header=header)
    expect_invalid(path, "'weight_ih_l0'")


def test_missing_param(tmp_path, saved):
    arrays = dict(saved[2])
    del arrays["bias_hh_l0_reverse"]
    path = tmp_path / "p.npz"
    write_raw(path, arrays, header=saved[3])
    expect_invalid(path, r"missing parameters \['bias_hh_l0_reverse'\]")


def test_missing_param_in_header_and_file(tmp_path, saved):
    arrays = dict(saved[2])
    del arrays["weight_hh_l1"]
    header = json.loads(json.dumps(saved[3]))
    del header["params"]["weight_hh_l1"]
    path = tmp_path / "p.npz"
    write_raw(path, arrays, header=header)
    expect_invalid(path, r"header's parameter list: missing parameters \['weight_hh_l1'\]")


def test_extra_param(tmp_path, saved):
    arrays = dict(saved[2], weight_hr_l0=np.zeros((2, 4), dtype=np.float32))
    path = tmp_path / "p.npz"
    write_raw(path, arrays, header=saved[3])
    expect_invalid(path, r"unexpected parameters \['weight_hr_l0'\]")


def test_extra_param_in_header_and_file(tmp_path, saved):
    arrays = dict(saved[2], peephole_i_l0=np.zeros(4, dtype=np.float32))
    header = json.loads(json.dumps(saved[3]))
    header["params"]["peephole_i_l0"] = [[4], "float32"]
    path = tmp_path / "p.npz"
    write_raw(path, arrays, header=header)
    expect_invalid(path, r"unexpected parameters \['peephole_i_l0'\]")


def test_non_npy_member(tmp_path, saved):
    path = tmp_path / "p.npz"
    write_raw(path, saved[2], header=saved[3])
    with zipfile.ZipFile(path, "a") as z:  # a member that is not a .npy: np.load returns its raw bytes
        z.writestr("extra", b"raw bytes")
    expect_invalid(path, r"unexpected parameters \['extra'\]")


# A pickle payload: unpickling it calls _record. load must refuse the array without unpickling it.
PAYLOAD_RUNS = []


def _record(message):
    PAYLOAD_RUNS.append(message)
    return message


class _Payload:
    def __reduce__(self):
        return (_record, ("payload executed",))


@pytest.mark.parametrize("where", ["param", "header", "extra"])
def test_pickled_object_array_is_refused_not_executed(tmp_path, saved, where):
    arrays = dict(saved[2])
    evil = np.array([_Payload()] * 4, dtype=object)
    raw_header = None
    if where == "param":
        arrays["bias_ih_l0"] = evil  # the header still says (16,) float32
    elif where == "header":
        raw_header = evil
    else:
        arrays["evil"] = evil
    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:  # np.savez pickles object arrays (allow_pickle defaults to True when saving)
        np.savez(f, **arrays, **({HEADER: raw_header} if raw_header is not None else
                                 {HEADER: np.frombuffer(json.dumps(saved[3]).encode(), dtype=np.uint8)}))

    PAYLOAD_RUNS.clear()
    expect_invalid(path, "not a valid pylstm checkpoint")
    assert PAYLOAD_RUNS == []

    # The payload is real: loading with pickle allowed would have run it.
    key = {"param": "bias_ih_l0", "header": HEADER, "extra": "evil"}[where]
    with np.load(path, allow_pickle=True) as f:
        f[key]
    assert PAYLOAD_RUNS and PAYLOAD_RUNS[0] == "payload executed"
    PAYLOAD_RUNS.clear()


def test_pickled_param_message(tmp_path, saved):
    arrays = dict(saved[2], bias_ih_l0=np.array([_Payload()] * 16, dtype=object))
    path = tmp_path / "evil.npz"
    write_raw(path, arrays, header=saved[3])
    expect_invalid(path, "parameter 'bias_ih_l0' is unreadable")
    assert PAYLOAD_RUNS == []


def test_error_names_pathlike_and_str(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"junk")
    for p in (path, str(path), pathlib.PurePath(path)):
        expect_invalid(p, "junk")


def test_save_load_module_api_exports():
    assert pylstm.save is checkpoint.save and pylstm.load is checkpoint.load


@pytest.mark.parametrize("training, match", [({1: "a", "1": "b"}, "keys that are the same as strings"),
                                             ({"x": {"__array__": "foo"}}, "only key is '__array__'")])
def test_save_refuses_a_training_state_that_would_not_read_back(tmp_path, training, match):
    """A training state that JSON would lose part of (keys equal as strings) or that read would take for an array
    reference is refused when saving, not found out when reading."""
    with pytest.raises(ValueError, match=match):
        pylstm.checkpoint.save(tmp_path / "m.npz", pylstm.Linear(2, 2), training=training)
    assert not (tmp_path / "m.npz").exists()


def test_save_into_a_missing_directory_names_the_path(tmp_path):
    """(It named the hidden temporary file that the atomic write makes beside the path.)"""
    path = tmp_path / "missing" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        pylstm.save(path, pylstm.Linear(2, 2))
    assert info.value.filename == str(path) and ".tmp" not in str(info.value)


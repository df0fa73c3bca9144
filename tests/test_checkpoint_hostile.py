"""pylstm.load on hostile files, and save killed half-way.

* A forged header (a config and parameter declarations far larger than the arrays the file holds, a million
  layers), a zip bomb (an entry that inflates to a gigabyte) and a .npy header that claims more data than its entry
  holds must raise the documented ValueError before allocating: each is loaded in a subprocess with a timeout, which
  measures the load's time and the growth of its peak memory (ru_maxrss). The bounds (seconds, hundreds of
  megabytes) are far above what a correct load needs and far below what building the claimed module or inflating
  the bomb needs: they tell a bounded load from an unbounded one, they do not time anything.
* A damaged zip directory ("version needed to extract" beyond what zipfile reads) is the same ValueError.
* A save killed by SIGKILL leaves its temporary file; the next save of that path removes it, and only the
  temporaries of writers that are no longer running.
"""
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pylstm
from pylstm import checkpoint

HEADER = checkpoint.HEADER
ROOT = Path(__file__).resolve().parents[1]
SECONDS = 5  # a generous bound: a bounded load of these small files takes a fraction of a second
EXTRA_MB = 500  # the same: building the forged modules or inflating the bomb needs gigabytes


def npy_bytes(array):
    """The .npy serialisation of an array, as np.savez stores it in its zip."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_zip(path, entries, compress=zipfile.ZIP_STORED):
    """entries: name (without .npy) -> array or bytes (a .npy serialisation already)."""
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for name, value in entries.items():
            z.writestr(name + ".npy", value if isinstance(value, bytes) else npy_bytes(value))


def header_array(header):
    return np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)


def lstm_shapes(input_size, hidden_size, num_layers, directions):
    """The parameter shapes of an LSTM (PyTorch's): written out here, not asked of pylstm."""
    shapes = {}
    for k in range(num_layers):
        for d in range(directions):
            s = f"_l{k}" + ("_reverse" if d else "")
            width = input_size if k == 0 else directions * hidden_size
            shapes.update({f"weight_ih{s}": [4 * hidden_size, width], f"weight_hh{s}": [4 * hidden_size, hidden_size],
                           f"bias_ih{s}": [4 * hidden_size], f"bias_hh{s}": [4 * hidden_size]})
    return shapes


@pytest.fixture
def small(tmp_path):
    """A real checkpoint of LSTM(3, 4, 2 layers, bidirectional): (arrays, header)."""
    module = pylstm.LSTM(3, 4, 2, bidirectional=True, seed=0)
    path = tmp_path / "small.ckpt"
    pylstm.save(path, module)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != HEADER}
        header = json.loads(f[HEADER].tobytes().decode("utf-8"))
    return arrays, header


MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    import pylstm
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        pylstm.load(sys.argv[1])
        outcome, message = "loaded", ""
    except Exception as exc:
        outcome, message = type(exc).__name__, str(exc)
    seconds = time.perf_counter() - start
    extra_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps(dict(outcome=outcome, message=message, seconds=seconds, extra_mb=extra_kb / 1024)))
""")


def load_measured(path, timeout=120):
    """pylstm.load(path) in a subprocess -> dict(outcome, message, seconds, extra_mb): the exception's class name
    (or "loaded"), its message, the load's wall time and the growth of the process's peak resident memory."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    try:
        result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True,
                                timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pylstm.load({str(path)!r}) did not finish within {timeout} s")
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.splitlines()[-1])
    print(f"{path.name}: {path.stat().st_size} bytes, {measured['outcome']} in {measured['seconds']:.3f} s, "
          f"peak memory +{measured['extra_mb']:.1f} MB")
    return measured


def assert_refused_within_bounds(path, match):
    measured = load_measured(path)
    assert measured["outcome"] == "ValueError", measured
    assert str(path) in measured["message"] and match in measured["message"], measured["message"]
    assert measured["seconds"] < SECONDS, measured
    assert measured["extra_mb"] < EXTRA_MB, measured


# ----------------------------------------------------------------------------------------------------------------------
# Forged headers


def test_forged_hidden_size_is_refused_before_building(tmp_path, small):
    """The header declares hidden_size=6000 and parameters of that size, consistently; the file holds the small
    arrays. The config must be checked against the arrays in the file, not against the header's word."""
    arrays, header = small
    header = dict(header, config=dict(header["config"], hidden_size=6000))
    header["params"] = {k: [shape, "float32"] for k, shape in lstm_shapes(3, 6000, 2, 2).items()}
    path = tmp_path / "forged-hidden.ckpt"
    write_zip(path, {**arrays, HEADER: header_array(header)})
    assert path.stat().st_size < 10_000
    assert_refused_within_bounds(path, "do not fit the declared shape of 'weight_ih_l0'")


@pytest.mark.parametrize("with_last_layer", [False, True], ids=["header-only", "last-layer-in-file"])
def test_forged_num_layers_is_refused_before_building(tmp_path, small, with_last_layer):
    """num_layers=10**6 on a file with two layers, with or without a (small) entry for the last layer: every layer
    the config asks for must be in the file."""
    arrays, header = small
    header = dict(header, config=dict(header["config"], num_layers=10 ** 6))
    arrays = dict(arrays)
    if with_last_layer:
        for name in ("weight_ih_l999999", "weight_hh_l999999"):
            arrays[name] = np.zeros((16, 4), np.float32)
            header["params"] = dict(header["params"], **{name: [[16, 4], "float32"]})
    path = tmp_path / "forged-layers.ckpt"
    write_zip(path, {**arrays, HEADER: header_array(header)})
    assert_refused_within_bounds(path, "do not fit the declared parameters")


def lying_npy(shape, dtype):
    """A .npy entry whose header claims `shape` but which holds 64 bytes of data."""
    head = np.lib.format.header_data_from_array_1_0(np.zeros(1, dtype))
    head["shape"] = tuple(shape)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, head)
    return buffer.getvalue() + b"\0" * 64


def test_npy_headers_claiming_more_than_their_entries_are_refused(tmp_path, small):
    """Every parameter's .npy header claims the shape of hidden_size=6000, like the pylstm header and its config,
    but the entries hold 64 bytes each: only the entries' sizes tell the truth."""
    arrays, header = small
    shapes = lstm_shapes(3, 6000, 2, 2)
    header = dict(header, config=dict(header["config"], hidden_size=6000))
    header["params"] = {k: [shape, "float32"] for k, shape in shapes.items()}
    entries = {name: lying_npy(shape, np.float32) for name, shape in shapes.items()}
    path = tmp_path / "npy-liar.ckpt"
    write_zip(path, {**entries, HEADER: header_array(header)})
    assert_refused_within_bounds(path, "is unreadable")
    assert "its .npy header declares" in load_measured(path)["message"]


# ----------------------------------------------------------------------------------------------------------------------
# A zip bomb and a damaged zip directory


def write_header_bomb(path, arrays, header, inflated):
    """A checkpoint whose header entry is valid JSON followed by whitespace up to `inflated` bytes, deflated (a
    megabyte or so on disk)."""
    text = json.dumps(header).encode("utf-8")
    body_size = inflated
    head = np.lib.format.header_data_from_array_1_0(np.zeros(body_size, np.uint8))
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, head)
    chunk = b" " * (1 << 24)
    with zipfile.ZipFile(path, "w") as z:
        for name, value in arrays.items():
            z.writestr(name + ".npy", npy_bytes(value))
        info = zipfile.ZipInfo(HEADER + ".npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as entry:
            entry.write(buffer.getvalue() + text)
            left = body_size - len(text)
            while left > 0:
                part = chunk[:min(left, len(chunk))]
                entry.write(part)
                left -= len(part)


def test_zip_bomb_header_is_refused_before_inflating(tmp_path, small):
    arrays, header = small
    path = tmp_path / "bomb.ckpt"
    write_header_bomb(path, arrays, header, inflated=1 << 30)
    assert path.stat().st_size < 5 << 20  # a gigabyte of whitespace in a few megabytes
    assert_refused_within_bounds(path, "claims 1073741")


def test_compressed_entries_within_the_file_size_still_load(tmp_path):
    """The entry-size rule refuses only what could not have been written by save: a compressed archive of a real
    checkpoint whose entries inflate to less than the file's size loads."""
    module = pylstm.LSTM(3, 4, seed=0)
    path = tmp_path / "m.ckpt"
    pylstm.save(path, module)
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    packed = tmp_path / "packed.ckpt"
    write_zip(packed, entries, compress=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(packed) as z:
        assert all(i.file_size <= packed.stat().st_size for i in z.infolist())
    loaded = pylstm.load(packed)
    for name, value in module.params.items():
        assert np.array_equal(loaded.params[name], value)


def central_directory_offsets(data):
    """Offsets of the central directory headers (PK\\x01\\x02) of a zip held in `data`."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        count = len(z.infolist())
    offsets, start = [], 0
    while len(offsets) < count:
        start = data.index(b"PK\x01\x02", start)
        offsets.append(start)
        start += 4
    return offsets


@pytest.mark.parametrize("version", [255, 64], ids=["25.5", "6.4"])
def test_corrupt_version_needed_is_a_value_error(tmp_path, version):
    """zipfile raises NotImplementedError ("zip file version 25.5") for an entry needing a newer zip reader; load
    must turn it into its ValueError naming the file, whichever entry carries it."""
    path = tmp_path / "m.ckpt"
    pylstm.save(path, pylstm.GRU(2, 3, seed=0))
    data = path.read_bytes()
    for k, offset in enumerate(central_directory_offsets(data)):
        damaged = bytearray(data)
        damaged[offset + 6:offset + 8] = version.to_bytes(2, "little")  # "version needed to extract"
        target = tmp_path / f"version-{k}.ckpt"
        target.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="not a valid pylstm checkpoint") as info:
            pylstm.load(target)
        assert str(target) in str(info.value)


def test_two_entries_with_one_name_are_refused(tmp_path, small):
    arrays, header = small
    path = tmp_path / "twice.ckpt"
    write_zip(path, {**arrays, HEADER: header_array(header)})
    with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("bias_ih_l0.npy", npy_bytes(np.ones(16, np.float32)))
    with pytest.raises(ValueError, match="two entries for 'bias_ih_l0'"):
        pylstm.load(path)


# ----------------------------------------------------------------------------------------------------------------------
# A save killed half-way


def temporaries(directory, name):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith(f".{name}.") and
                  p.name.endswith(".tmp"))


SAVE_FOREVER = textwrap.dedent("""
    import sys
    import pylstm
    module = pylstm.LSTM(512, 1024, num_layers=2, dtype="float64", seed=0)  # about 100 MB of parameters
    print("ready", flush=True)
    while True:
        pylstm.save(sys.argv[1], module)
""")


def kill_mid_save(target, attempts=10):
    """Run a process that saves a large model to `target` over and over, and SIGKILL it while a temporary file
    exists -> the temporaries it left (retries when the kill lands between two saves)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for _ in range(attempts):
        process = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(target)], stdout=subprocess.PIPE, env=env)
        try:
            assert process.stdout.readline().strip() == b"ready"
            deadline = time.monotonic() + 60
            while not temporaries(target.parent, target.name):
                assert time.monotonic() < deadline, "the saving process never wrote a temporary file"
                time.sleep(0.001)
            time.sleep(0.02)  # well into writing
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=60)
            process.stdout.close()
        left = temporaries(target.parent, target.name)
        if left:
            return left, process.pid
    pytest.fail(f"no kill in {attempts} attempts landed during a save")


def test_killed_save_leaves_nothing_after_the_next_save(tmp_path):
    target = tmp_path / "model.npz"
    left, pid = kill_mid_save(target)
    assert all(f".{pid}-" in name for name in left), left  # the dead writer's pid is in the name
    if target.exists():  # the previous complete save, if any: never a partial file
        assert pylstm.load(target).hidden_size == 1024

    module = pylstm.GRU(3, 4, seed=1)
    pylstm.save(target, module)
    assert temporaries(tmp_path, "model.npz") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    loaded = pylstm.load(target)
    assert np.array_equal(loaded.params["weight_hh_l0"], module.params["weight_hh_l0"])


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_dead_writers_temporaries_are_removed(tmp_path):
    """The temporaries of live writers (this process, another live process), of another host and of other targets
    stay; a dead writer's temporary of this target goes."""
    host = checkpoint._HOST
    other_host = f"{(int(host, 16) + 1) % (1 << 32):08x}"
    dead = dead_pid()
    names = {
        "live-self": f".model.npz.{os.getpid()}-{host}.abc123.tmp",
        "live-parent": f".model.npz.{os.getppid()}-{host}.abc123.tmp",
        "other-host": f".model.npz.{dead}-{other_host}.abc123.tmp",
        "other-target": f".model.npz.old.{dead}-{host}.abc123.tmp",
        "other-target-2": f".other.npz.{dead}-{host}.abc123.tmp",
        "dead": f".model.npz.{dead}-{host}.abc123.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    pylstm.save(tmp_path / "model.npz", pylstm.RNN(2, 2, seed=0))
    remaining = {p.name for p in tmp_path.iterdir()}
    assert names["dead"] not in remaining
    for key in ("live-self", "live-parent", "other-host", "other-target", "other-target-2"):
        assert names[key] in remaining, key
    assert "model.npz" in remaining


# ----------------------------------------------------------------------------------------------------------------------
# JSON nested beyond Python's recursion limit


@pytest.mark.parametrize("depth", [100_000, 990])
def test_deeply_nested_header_is_a_value_error(tmp_path, depth):
    """An array nested deeper than Python's recursion limit (1000 by default) in the header's training state: json
    or the walk over the training state for its arrays raises RecursionError, which must be the documented
    ValueError."""
    path = tmp_path / "m.ckpt"
    pylstm.checkpoint.save(path, pylstm.GRU(2, 3, seed=0), training={"a": 1})
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    text = entries[HEADER].tobytes().decode("utf-8")
    assert '"training": {"a": 1}' in text
    text = text.replace('"training": {"a": 1}', '"training": {"a": ' + "[" * depth + "]" * depth + "}")
    entries[HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    write_zip(path, entries)
    with pytest.raises(ValueError, match="not a valid pylstm checkpoint") as info:
        pylstm.checkpoint.read(path)
    assert str(path) in str(info.value)

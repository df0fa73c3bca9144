"""Saving and loading modules (layers, cells, blocks, Sequential models): ``pylstm.save(path, module)`` and
``pylstm.load(path) -> module``.

File format: a NumPy ``.npz`` archive (an uncompressed zip of ``.npy`` arrays), holding

* every parameter under its PyTorch name (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``0.weight`` in a Sequential,
  ...), with its exact dtype;
* one extra entry ``"__pylstm__"``: a uint8 array of UTF-8 JSON, the header::

      {"format": "pylstm-checkpoint", "version": 1, "class": "LSTM", "config": {...module.config()...},
       "params": {"weight_ih_l0": [[16, 3], "float32"], ...}}

The format is safe to load from an untrusted source: it holds numbers and JSON only, never pickled Python objects,
and ``load`` reads its arrays with ``allow_pickle=False``, so loading a file can't run code. (An archive
holding an object array, which only pickle can store, is refused with a ValueError.) ``load`` checks the
header against the arrays and against the module that the header's class and config build, and raises a
ValueError that names the file and says what is wrong before it returns anything.

Two optional parts make a training checkpoint (``pylstm.fit`` writes them each epoch): ``"vocab"`` in the header,
a vocabulary's ``config()``, and ``"training"``, a JSON tree (the optimizer's and the scheduler's state dicts, the
epoch, the history, the random generators' states) in which every NumPy array of the tree is stored as an entry of
its own, ``"__training__.<k>"``, referred to as ``{"__array__": "__training__.<k>"}`` and declared with its shape and
dtype under the header's ``"arrays"``. ``pylstm.load`` reads the module alone; ``read`` returns all three.

``save`` is atomic: it writes a temporary file in the same directory, fsyncs it and renames it onto ``path``, so
``path`` holds either the previous file or the whole new one, even if the process dies while saving. A process
killed while saving leaves its temporary file (``.<name>.<pid>-<host>.<random>.tmp``); the next save of the same
path removes the temporaries of writers that are no longer running.

``load`` is safe on untrusted files (see ``_read``): it runs no code and allocates no more than a small multiple of
the file's size, whatever the file's header or zip directory claims.
"""
from __future__ import annotations

import json
import math
import os
import re
import socket
import tempfile
import zipfile
import zlib
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from . import cells
from .blocks import module_classes
from .module import Module
from .text import Vocab

FORMAT = "pylstm-checkpoint"
VERSION = 1
HEADER = "__pylstm__"
TRAINING_ARRAY = "__training__."  # the prefix of the training state's array entries


def _classes():
    return module_classes()


class Checkpoint(NamedTuple):
    """What ``read`` returns: the module, the vocabulary (a ``pylstm.text.Vocab``, or None) and the training state
    (the JSON tree ``save`` was given, with its arrays, or None)."""
    module: Module
    vocab: Optional[Vocab]
    training: Optional[dict[str, Any]]


def save(path: Union[str, os.PathLike[str]], module: Module, *, vocab: Optional[Vocab] = None,
         training: Optional[dict[str, Any]] = None) -> None:
    """Write ``module`` (any pylstm module: a layer, a cell, a block or a Sequential of them) to the file ``path``;
    with ``vocab`` (a ``pylstm.text.Vocab``) and ``training`` (a dict of JSON values and NumPy arrays, nested in
    dicts and lists), a training checkpoint (see the module docstring).

    ``path`` (str or os.PathLike) is used exactly as given: no ``.npz`` suffix is added. The file holds the
    module's class name, its ``config()`` and a copy of every parameter (see the module docstring); gradients,
    training/eval mode and optimizer state are not saved. Saving is atomic: on any error (including a failure
    half-way through writing) an existing file at ``path`` is left untouched and the temporary file is removed.
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    classes = _classes()
    name = type(module).__name__
    if classes.get(name) is not type(module):
        raise TypeError(f"save: expected a pylstm module ({', '.join(classes)}), got {type(module).__name__}")
    params = module.state_dict()
    if HEADER in params:  # pragma: no cover - no module has such a parameter
        raise ValueError(f"save: a parameter may not be called {HEADER!r}")
    header = {"format": FORMAT, "version": VERSION, "class": name, "config": module.config(),
              "params": {k: [list(v.shape), str(v.dtype)] for k, v in params.items()}}
    arrays: dict[str, Any] = dict(params)  # np.savez's keywords
    if vocab is not None:
        header["vocab"] = vocab.config()
    if training is not None:
        if not isinstance(training, dict):
            raise TypeError(f"training: expected a dict of JSON values and arrays, got {type(training).__name__}")
        extra: dict[str, np.ndarray] = {}
        header["training"] = _arrays_out(training, extra)
        header["arrays"] = {k: [list(v.shape), str(v.dtype)] for k, v in extra.items()}
        arrays.update(extra)
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"save: the header is not JSON-serialisable (config, vocab or training state): {exc}") from exc
    arrays[HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    directory = os.path.dirname(os.path.abspath(path))
    mode = _file_mode(path)
    _remove_stale_temporaries(directory, os.path.basename(path))
    writer = f"{os.getpid()}-{_HOST}."
    fd: Optional[int]
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temporary_prefix(os.path.basename(path)) + writer,
                                   suffix=".tmp")
    except OSError as exc:  # a missing or unwritable directory: named by the path asked for, not the temporary's
        raise type(exc)(exc.errno, f"save: cannot write {str(path)!r} ({exc.strerror})", str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            fd = None  # the file object owns it now
            np.savez(f, **arrays)  # a file object: np.savez adds no ".npz" suffix and writes nothing else
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes it 0600; give it the mode a plain open() would have
        os.replace(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def load(path: Union[str, os.PathLike[str]]) -> Module:
    """Read a module written by ``save`` -> a new module of the saved class and configuration (a training
    checkpoint's vocabulary and training state are checked and left: ``read`` returns them). See ``_read``."""
    return _read(path, "pylstm.load").module


def read(path: Union[str, os.PathLike[str]]) -> Checkpoint:
    """Read a file written by ``save`` -> ``Checkpoint(module, vocab, training)``: the module as ``load`` returns
    it, the vocabulary (a ``pylstm.text.Vocab``) or None, and the training state (the dict ``save`` was given, its
    arrays read back, JSON's string keys as they come) or None. Errors as ``load``'s."""
    return _read(path, "pylstm.checkpoint.read")


def _read(path: Union[str, os.PathLike[str]], caller: str) -> Checkpoint:
    """Read a file written by ``save`` -> Checkpoint(module, vocab, training); `caller` names the function in errors.

    The module is built as ``cls.from_config(config)`` and its parameters are loaded from the file with their exact dtype
    and values (bit for bit). Like any freshly constructed module it is in training mode: call ``.eval()`` for
    inference. Its gradients are zero.

    The file is read without pickle (``allow_pickle=False``), so it can't execute code. Any problem with the file —
    not a zip/npz (corrupt or truncated), no or unreadable header, unknown format, version or class, a config the
    class rejects, missing or unexpected parameters, a shape or dtype that differs from the header's or the
    module's — raises a ValueError that names ``path``. A missing file raises FileNotFoundError.

    What reading allocates is bounded by the file's own size, whatever its header and zip directory claim: an
    entry's uncompressed size may not exceed the file's size (``save`` stores entries uncompressed), every array's
    ``.npy`` header must describe exactly the bytes its entry holds, and the config must fit the shapes of the
    arrays actually in the file before the module is built.
    """
    shown = os.fspath(path)
    where = f"{caller}({shown!r})"

    def bad(message):  # the ValueError for every problem with the file's contents
        return ValueError(f"{where}: not a valid pylstm checkpoint: {message}")

    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise bad(f"not a readable .npz (zip) file ({type(exc).__name__}: {exc})") from exc
    with file:
        try:
            size = os.fstat(file.fileno()).st_size
            single_array = file.read(len(_NPY_MAGIC)) == _NPY_MAGIC
            file.seek(0)
            archive = None if single_array else zipfile.ZipFile(file)
        except Exception as exc:  # BadZipFile, OSError, EOFError, ... from a damaged zip directory
            reason = f"{type(exc).__name__}: {exc}"
            raise bad(f"not a readable .npz (zip) file, perhaps corrupt or truncated ({reason})") from exc
        if archive is None:
            raise bad("not a .npz (zip) archive (a single .npy array)")
        with archive:
            return _read_archive(archive, size, bad)


_NPY_MAGIC = b"\x93NUMPY"


def _read_archive(archive, size, bad):
    """_read's work on the open zip `archive` of a file of `size` bytes."""
    entries = _entries(archive, size, bad)

    def member(key, what, read_data):
        """The entry `key` -> (shape, dtype) from its .npy header, checked against the entry's size, or with
        read_data the array itself. Every failure of the zip member (BadZipFile, zlib.error, EOFError,
        NotImplementedError for an unknown zip version or compression, ...) is a ValueError naming `what`."""
        info = entries[key]
        try:
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in _NPY_HEADER_READERS:
                    raise ValueError(f"unsupported .npy format version {version}")
                shape, _, dtype = _NPY_HEADER_READERS[version](f)
                if dtype.hasobject:
                    raise ValueError("an object array, which only pickle can read")
                data = math.prod(shape) * dtype.itemsize
                if f.tell() + data != info.file_size:
                    raise ValueError(f"its .npy header declares {shape} {dtype} ({data} bytes of data after "
                                     f"{f.tell()} bytes of header), but the entry holds {info.file_size} bytes")
                if not read_data:
                    return shape, dtype
                f.seek(0)
                value = np.lib.format.read_array(f, allow_pickle=False)
        except Exception as exc:
            raise bad(f"{what} is unreadable ({type(exc).__name__}: {exc})") from exc
        if not isinstance(value, np.ndarray):  # pragma: no cover - read_array returns arrays
            raise bad(f"{what} is not a .npy array")
        return value

    if HEADER not in entries:
        raise bad(f"no {HEADER!r} header entry (a plain .npz, not written by pylstm.save); "
                  f"entries: {sorted(entries)}")
    what = f"the {HEADER!r} header"
    shape, dtype = member(HEADER, what, False)
    if dtype != np.uint8 or len(shape) != 1:
        raise bad(f"the {HEADER!r} header must be a 1-D uint8 array, got dtype {dtype} shape {shape}")
    raw = member(HEADER, what, True)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested beyond Python's limit
        raise bad(f"the {HEADER!r} header is not UTF-8 JSON ({type(exc).__name__}: {exc})") from exc
    cls, config, declared = _check_header(header, bad)
    extra_declared = _check_extra_arrays(header, bad)
    stored = [k for k in entries if k != HEADER]
    _check_names("the file's arrays", stored, list(declared) + list(extra_declared), "the header", bad)

    # The shapes of the arrays the file holds (not the header's word for them) bound the module's size.
    held = {}
    for key in declared:
        shape, dtype = member(key, f"parameter {key!r}", False)
        held[key] = (list(shape), dtype)
    _check_sizes(cls, config, held, bad)
    try:
        module = cls.from_config(config)
    except (TypeError, ValueError, OverflowError, MemoryError) as exc:  # MemoryError: absurd sizes
        reason = f"{type(exc).__name__}: {exc}"
        raise bad(f"{cls.__name__} rejects the saved config {config!r} ({reason})") from exc

    expected = module.params
    _check_names("the header's parameter list", list(declared), list(expected),
                 f"{cls.__name__} with this config", bad)
    extra = {}
    for key, (shape, dtype) in extra_declared.items():
        value = member(key, f"training array {key!r}", True)
        if value.shape != shape or value.dtype != dtype:
            raise bad(f"training array {key!r} is stored as {value.shape} {value.dtype}, but the header says "
                      f"{shape} {dtype}")
        extra[key] = value
    try:
        training = _arrays_in(header["training"], extra, bad) if "training" in header else None
    except RecursionError as exc:
        raise bad("the header's training state is nested too deeply") from exc
    vocab = _vocab(header["vocab"], bad) if "vocab" in header else None

    arrays = {}
    for key, target in expected.items():
        shape, dtype_name = declared[key]
        dtype = _header_dtype(key, dtype_name, bad)
        if tuple(shape) != target.shape or dtype != target.dtype:
            raise bad(f"the header says {key!r} is {tuple(shape)} {dtype_name}, but {cls.__name__} with this "
                      f"config expects {target.shape} {target.dtype}")
        value = member(key, f"parameter {key!r}", True)
        if value.shape != target.shape or value.dtype != target.dtype:
            raise bad(f"parameter {key!r} is stored as {value.shape} {value.dtype}, but the header and "
                      f"{cls.__name__} expect {target.shape} {target.dtype}")
        arrays[key] = value
    try:
        module.load_state_dict(arrays)
    except (KeyError, TypeError, ValueError) as exc:  # pragma: no cover - everything was checked above
        raise bad(f"{cls.__name__}.load_state_dict refused the parameters ({exc})") from exc
    return Checkpoint(module, vocab, training)


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _entries(archive, size, bad):
    """The zip's entries -> {array name: ZipInfo} (np.load's names: a ".npy" suffix dropped). No entry may claim
    more uncompressed bytes than the whole file holds: ``save`` stores its entries uncompressed, and a compressed
    entry that inflates beyond that (a zip bomb) would make reading it allocate without bound."""
    entries = {}
    for info in archive.infolist():
        name = info.filename
        key = name[:-len(".npy")] if name.endswith(".npy") else name
        if key in entries:
            raise bad(f"the zip holds two entries for {key!r}")
        if info.file_size > size:
            raise bad(f"the zip entry {name!r} claims {info.file_size} bytes uncompressed, more than the whole "
                      f"file's {size} bytes")
        entries[key] = info
    return entries


# -- the optional parts: vocabulary and training state ------------------------------------------------------------


def _arrays_out(tree, arrays):
    """A copy of the JSON tree with every ndarray replaced by a reference to an entry added to `arrays`."""
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind not in "biuf":
            raise TypeError(f"training: arrays must hold numbers, got dtype {tree.dtype}")
        key = f"{TRAINING_ARRAY}{len(arrays)}"
        arrays[key] = tree
        return {"__array__": key}
    if isinstance(tree, dict):
        keys = [str(k) for k in tree]
        if len(set(keys)) < len(keys):  # JSON keys are strings: {1: a, "1": b} would keep one of the two
            raise ValueError(f"training: keys that are the same as strings, {sorted(tree, key=str)!r}")
        if keys == ["__array__"]:
            raise ValueError("training: a dict whose only key is '__array__' stands for an array in the file")
        return {k: _arrays_out(v, arrays) for k, v in zip(keys, tree.values())}
    if isinstance(tree, (list, tuple)):
        return [_arrays_out(v, arrays) for v in tree]
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _arrays_in(tree, arrays, bad):
    """The inverse of _arrays_out: references replaced by the arrays read from the file."""
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            key = tree["__array__"]
            if not isinstance(key, str) or key not in arrays:
                raise bad(f"the training state refers to an array that the header does not declare: {key!r}")
            return arrays[key]
        return {k: _arrays_in(v, arrays, bad) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_arrays_in(v, arrays, bad) for v in tree]
    return tree


def _check_extra_arrays(header, bad):
    """The header's declared training arrays -> {name: (shape, dtype)}; they come only with a training state."""
    declared = header.get("arrays", {})
    if not isinstance(declared, dict) or (declared and "training" not in header):
        raise bad("the header's 'arrays' must be a JSON object that comes with a 'training' state")
    if "training" in header and not isinstance(header["training"], dict):
        raise bad("the header's 'training' is not a JSON object")
    result = {}
    for key, entry in declared.items():
        if not (key.startswith(TRAINING_ARRAY) and _is_shape_and_dtype(entry)):
            raise bad(f"the header's entry for training array {key!r} is not [shape list, dtype string]: {entry!r}")
        result[key] = (tuple(entry[0]), _header_dtype(key, entry[1], bad))
    return result


def _is_shape_and_dtype(entry):
    """A header's declaration of an array: [shape (a list of ints >= 0), dtype name (a str)]."""
    return (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list)
            and all(type(n) is int and n >= 0 for n in entry[0]) and isinstance(entry[1], str))


def _header_dtype(key, name, bad):
    try:
        return np.dtype(name)
    except (TypeError, ValueError) as exc:
        raise bad(f"the header's dtype for {key!r} is not a dtype: {name!r}") from exc


def _vocab(config, bad):
    from .text import Vocab  # only files that carry a vocabulary need the text module
    try:
        return Vocab.from_config(config)
    except (TypeError, ValueError) as exc:
        raise bad(f"the header's vocabulary is not valid ({exc})") from exc


# -- helpers ---------------------------------------------------------------------------------------------------------


def _check_header(header, bad):
    """The parsed JSON header -> (class, config dict, {name: (shape list, dtype str)}), or raise bad(...)."""
    if not isinstance(header, dict):
        raise bad(f"the {HEADER!r} header is not a JSON object")
    if header.get("format") != FORMAT:
        raise bad(f"unknown format {header.get('format')!r} (expected {FORMAT!r})")
    version = header.get("version")
    if type(version) is not int or version != VERSION:
        raise bad(f"unsupported version {version!r} (this pylstm reads version {VERSION})")
    name = header.get("class")
    classes = _classes()
    if not isinstance(name, str) or name not in classes:
        raise bad(f"unknown class {name!r} (expected one of {', '.join(classes)})")
    config = header.get("config")
    if not isinstance(config, dict):
        raise bad(f"the header's config is not a JSON object: {config!r}")
    params = header.get("params")
    if not isinstance(params, dict):
        raise bad(f"the header's params is not a JSON object: {params!r}")
    declared = {}
    for key, entry in params.items():
        if not _is_shape_and_dtype(entry):
            raise bad(f"the header's entry for parameter {key!r} is not [shape list, dtype string]: {entry!r}")
        declared[key] = (entry[0], entry[1])
    return classes[name], config, declared


_TABLES = {"Linear": ("out_features", "in_features"), "Embedding": ("num_embeddings", "embedding_dim")}


def _check_sizes(cls, config, declared, bad, prefix=""):
    """Before building anything: the config's sizes must be those of the weights in the file (``declared``: name ->
    (shape list, dtype), as the arrays' own .npy headers give them), and every layer must have its weights there, so a
    doctored header cannot make ``cls.from_config(config)`` allocate more than a small multiple of the file's own
    arrays. ``prefix`` is a Sequential member's ("0.", "1.", ...)."""
    name = cls.__name__
    if name == "Sequential":
        entries = config.get("modules")
        if not isinstance(entries, list):
            return  # from_config rejects it without allocating
        classes = _classes()
        for k, entry in enumerate(entries):
            if isinstance(entry, dict) and entry.get("class") in classes and isinstance(entry.get("config"), dict):
                _check_sizes(classes[entry["class"]], entry["config"], declared, bad, f"{prefix}{k}.")
        return
    if name == "Dropout":
        return
    if name in _TABLES:
        table_sizes = [config.get(k) for k in _TABLES[name]]
        if not all(v is None or type(v) is int for v in table_sizes):
            return  # not ints: the class's own checks reject them without allocating
        got = declared.get(f"{prefix}weight", (None,))[0]
        if got != table_sizes:
            raise bad(f"the config's sizes {dict(zip(_TABLES[name], table_sizes))} do not fit the declared shape of "
                      f"{prefix + 'weight'!r}: {got}")
        return
    suffix = "" if name.endswith("Cell") else "_l0"
    gates = cells.FAMILIES[name.replace("Cell", "")].gates
    sizes = {k: config.get(k) for k in ("input_size", "hidden_size", "proj_size", "num_layers")}
    if not all(v is None or type(v) is int for v in sizes.values()):
        return  # not ints: the class's own checks reject them without allocating
    hidden, width = sizes["hidden_size"], sizes["proj_size"] or sizes["hidden_size"]
    for weight, expected in ((f"{prefix}weight_ih{suffix}", [gates * (hidden or 0), sizes["input_size"]]),
                             (f"{prefix}weight_hh{suffix}", [gates * (hidden or 0), width])):
        got = declared.get(weight, (None,))[0]
        if got != expected:
            raise bad(f"the config's sizes {sizes} do not fit the declared shape of {weight!r}: {got}")
    layers = sizes["num_layers"]
    # Each layer in the config needs its own entry in the file (which costs the file bytes), else a header could
    # ask for a million layers of the sizes of layer 0; stops at the first missing one.
    for k in range(layers or 0):
        if f"{prefix}weight_ih_l{k}" not in declared:
            raise bad(f"the config's sizes {sizes} do not fit the declared parameters {list(declared)}")


def _check_names(subject, got, expected, source, bad):
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    if missing or unexpected:
        parts = ([f"missing parameters {missing}"] if missing else []) + (
            [f"unexpected parameters {unexpected}"] if unexpected else [])
        raise bad(f"{subject}: {', '.join(parts)} ({source} has exactly {expected})")


# A temporary file is named ".<target name>.<pid>-<host>.<random>.tmp": the writing process and its host, so that a
# later save can tell the temporaries of writers that died (kill -9, power loss) from those of live ones.
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _temporary_prefix(name):
    return f".{name}."


def _remove_stale_temporaries(directory, name):
    """Remove the temporary files that dead writers on this host left for the target `name` (a save killed before
    it could clean up). A temporary of a live process, or of another host (a shared file system, where the pid says
    nothing), is left alone: its writer may still rename it. A reused pid only delays the cleanup. Not on Windows,
    where there is no harmless way to ask whether a pid is alive."""
    if os.name == "nt":
        return
    pattern = re.compile(re.escape(_temporary_prefix(name)) + r"(\d+)-([0-9a-f]{8})\.[^.]+\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for entry in names:
        match = pattern.fullmatch(entry)
        if match is None or match.group(2) != _HOST or _process_alive(int(match.group(1))):
            continue
        try:
            os.unlink(os.path.join(directory, entry))
        except OSError:
            pass  # removed by another writer meanwhile, or not ours to remove


def _process_alive(pid):
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a pid out of range, never ours: keep the file)
    return True


def _file_mode(path):
    """The permission bits the saved file gets: the replaced file's, or 0666 minus the umask for a new file."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask():
    # Read from /proc where possible: os.umask(0) + os.umask(old) would briefly change it for every thread.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _fsync_directory(directory):
    """Make the rename durable: fsync the directory (POSIX; skipped where directories can't be opened)."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:  # Windows
        return
    try:
        dir_fd = os.open(directory, os.O_RDONLY | flags)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)

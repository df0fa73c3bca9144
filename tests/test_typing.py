"""The annotations users' type checkers see: the stubs of the compiled modules (pylstm/_core.pyi, pylstm/_text.pyi)
name exactly what the modules hold, with the bindings' argument names, and a user's script of the public API
type-checks with mypy while wrong calls of it are reported.

The mypy tests are skipped when mypy is not installed (it is in the ``test`` extra).
"""
import ast
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from pylstm import _core, _text

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pylstm"


def _stub(name):
    return ast.parse((PACKAGE / f"{name}.pyi").read_text())


def _stub_names(tree):
    """The public names a stub defines: functions, classes and annotated variables (not its private aliases)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def _stub_parameters(function):
    """A stub function's parameters as names, with "*" where the keyword-only ones start (self dropped)."""
    args = function.args
    names = [a.arg for a in args.posonlyargs + args.args if a.arg != "self"]
    if args.kwonlyargs:
        names += ["*"] + [a.arg for a in args.kwonlyargs]
    return names


def _split_top_level(text):
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:])
    return [p.strip() for p in parts]


def _binding_parameters(function):
    """A pybind11 function's parameters from the signature line pybind11 writes first in its docstring."""
    first = function.__doc__.splitlines()[0]
    match = re.fullmatch(rf"{function.__name__}\((.*)\) -> .*", first)
    assert match, f"unexpected pybind11 signature line: {first!r}"
    return [p.split(":")[0].strip() for p in _split_top_level(match.group(1))]


def _runtime_parameters(function):
    params = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    names = [p.name for p in params if p.kind is not p.KEYWORD_ONLY]
    keyword_only = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    return names + (["*"] + keyword_only if keyword_only else [])


def test_core_stub_names_are_the_modules():
    public = {n for n in dir(_core) if not n.startswith("_")}
    assert _stub_names(_stub("_core")) == public


def test_core_stub_arguments_are_the_bindings():
    functions = [node for node in _stub("_core").body if isinstance(node, ast.FunctionDef)]
    assert functions
    for node in functions:
        assert _stub_parameters(node) == _binding_parameters(getattr(_core, node.name)), node.name


def test_text_stub_names_and_arguments_are_the_modules():
    public = {n for n, v in vars(_text).items()
              if not n.startswith("_") and getattr(v, "__module__", None) == "pylstm._text"}
    tree = _stub("_text")
    assert _stub_names(tree) == public
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            assert _stub_parameters(node) == _runtime_parameters(getattr(_text, node.name)), node.name
        elif isinstance(node, ast.ClassDef):
            cls = getattr(_text, node.name)
            members = {n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
            members |= {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
            assert members == {n for n in dir(cls) if not n.startswith("_")}, node.name
            for method in node.body:
                if isinstance(method, ast.FunctionDef) and not method.name.startswith("_"):
                    is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in method.decorator_list)
                    if is_property:  # a read-only attribute (cdef readonly), as the stub says: not writable
                        assert not callable(getattr(cls, method.name)), method.name
                        with pytest.raises(AttributeError, match="not writable"):
                            setattr(cls("ab"), method.name, getattr(cls("ab"), method.name))
                    else:
                        assert _stub_parameters(method) == _runtime_parameters(getattr(cls, method.name)), method.name


def test_py_typed_ships_with_the_stubs():
    assert (PACKAGE / "py.typed").is_file()
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(ROOT / "pyproject.toml", "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["pylstm"]
    assert "py.typed" in package_data and "*.pyi" in package_data


# A user's script: the public API as the README and the docstrings use it. It runs (below) as well as type-checks.
GOOD = """\
import os
import tempfile
from typing import Optional

import numpy as np

import pylstm
from pylstm import losses, optim
from pylstm.checkpoint import Checkpoint, read

vocab = pylstm.text.Vocab("abcdefgh ")
streams = pylstm.text.batchify(vocab.encode("abc def gh abc def gh"), 2)
model = pylstm.Sequential(pylstm.Embedding(len(vocab), 8, seed=0), pylstm.LSTM(8, 16, seed=1),
                          pylstm.Linear(16, len(vocab), seed=2))
opt = optim.Adam(model, lr=1e-2)
scheduler = optim.StepLR(opt, step_size=1, gamma=0.5)
history: pylstm.History = pylstm.fit(model, streams, losses.cross_entropy, opt, epochs=2, bptt=4,
                                     scheduler=scheduler, progress=False,
                                     callbacks=[pylstm.EarlyStopping(patience=1, monitor="epoch_loss")])
last: float = history.epoch_loss[-1]
lrs: list[float] = scheduler.get_last_lr()

layer = pylstm.LSTM(4, 8, num_layers=2, batch_first=True, dtype="float64", seed=0)
out, state = layer(np.zeros((2, 5, 4)))
dx, dstate = layer.backward(np.ones_like(out))
norm: float = pylstm.clip_grad_norm(layer, 1.0)
pylstm.clip_grad_value([layer], 0.5)
sgd = optim.SGD(layer, lr=0.1, momentum=0.9)
sgd.step()
sgd.zero_grad()
loss, grad = losses.mse(out, np.zeros_like(out), reduction="sum")
ce, dlogits = losses.cross_entropy(np.zeros((3, 2, 5)), np.zeros((3, 2), np.int64), lengths=[3, 1])

cell = pylstm.GRUCell(4, 8, seed=0)
h = cell(np.zeros((3, 4), np.float32))
h2, c2 = pylstm.LSTMCell(4, 8, seed=0)(np.zeros((3, 4), np.float32), None)
padded, lengths = pylstm.pad_sequences([np.zeros((3, 2)), np.zeros((1, 2))], batch_first=True)
pieces: list[np.ndarray] = pylstm.unpad(padded, lengths, batch_first=True)

path = os.path.join(tempfile.mkdtemp(), "model.npz")
pylstm.save(path, model, vocab=vocab, training={"epoch": 2})
loaded = pylstm.load(path)
loaded.eval()
checkpoint: Checkpoint = read(path)
saved_vocab: Optional[pylstm.text.Vocab] = checkpoint.vocab
text: str = pylstm.sample(model, vocab, "ab", 5, temperature=0.8, top_k=3, seed=0)
threads: int = pylstm.get_num_threads()
isas: list[str] = pylstm.supported_isas()
"""

# Wrong uses, one a line, each of which mypy must report (on its own line, and nothing else).
BAD = """\
import numpy as np

import pylstm
from pylstm import losses, optim

model = pylstm.Sequential(pylstm.Embedding(10, 8), pylstm.GRU(8, 16), pylstm.Linear(16, 10))
layer = pylstm.LSTM("8", 16)
loss = losses.mse(np.zeros(3), np.zeros(3), reduction="average")
opt = optim.Adam(model, lr="fast")
name: str = pylstm.load("model.npz")
history = pylstm.fit(model, np.zeros((10, 2), np.int64), losses.cross_entropy, opt)
pylstm.set_num_threads("2")
cell = pylstm.RNNCell(4, 8, nonlinearity="sigmoid")
text: bytes = pylstm.sample(model, pylstm.text.Vocab("abc"), "ab", 5)
pylstm.save("model.npz", "not a module")
pylstm._core.sum_squares([1.0, 2.0])
pylstm._text.CharTable("ab").chars = "x"
"""
FIRST_BAD_LINE = 7  # the lines from here on are the wrong uses


def _mypy(tmp_path, sources):
    pytest.importorskip("mypy")
    for name, source in sources.items():
        (tmp_path / name).write_text(source)
    env = dict(os.environ, MYPYPATH=str(ROOT))  # this tree's pylstm, whatever else is installed
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary",
         "--cache-dir", str(ROOT / ".mypy_cache"), "--show-error-codes", *sources],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode in (0, 1), result.stderr + result.stdout
    errors = {}
    for line in result.stdout.splitlines():
        match = re.match(r"(\w+\.py):(\d+): error: (.*)", line)
        if match:
            errors.setdefault(match.group(1), {}).setdefault(int(match.group(2)), []).append(match.group(3))
    return errors, result.stdout


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_user_script_type_checks_and_wrong_uses_are_reported(tmp_path):
    errors, report = _mypy(tmp_path, {"user_script.py": GOOD, "wrong_uses.py": BAD})
    assert "user_script.py" not in errors, report
    wrong = errors.get("wrong_uses.py", {})
    expected = set(range(FIRST_BAD_LINE, len(BAD.splitlines()) + 1))
    assert set(wrong) == expected, report


def test_user_script_runs(tmp_path, monkeypatch):
    """The script that the type check reads is real code: it runs."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    exec(compile(textwrap.dedent(GOOD), "user_script.py", "exec"), {"__name__": "user_script"})

"""When the compiled extension pylstm._core cannot be imported, ``import pylstm`` fails with an ImportError that says
how to build it, instead of a bare "No module named pylstm._core" deep inside the package.

Each case runs in a fresh interpreter (a subprocess), so the pylstm already imported by the test session is not
involved:

* the package's Python files without the extension (a copy of pylstm/*.py in a temporary directory first on
  sys.path), the situation of a source checkout that was never built;
* the real package with the extension blocked by a meta-path finder (an extension that fails to load).
"""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pylstm

PACKAGE_DIR = Path(pylstm.__file__).resolve().parent

# Prints the ImportError's message, its cause's type and the file that raised it, or "IMPORTED" when the import
# unexpectedly succeeds.
PROBE = textwrap.dedent("""
    import traceback
    try:
        import pylstm
    except ImportError as exc:
        print("MESSAGE:", exc)
        print("CAUSE:", type(exc.__cause__).__name__)
        print("WHERE:", traceback.extract_tb(exc.__traceback__)[-1].filename)
    else:
        print("IMPORTED", pylstm.__file__)
""")

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys

    class BlockCore(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pylstm._core":
                raise ImportError("blocked by the test: pretend the extension does not load")
            return None

    sys.meta_path.insert(0, BlockCore())
""")


def run_probe(code, sys_path_first, cwd):
    """Run ``code`` in a fresh interpreter with ``sys_path_first`` at the front of sys.path."""
    # An editable install's finder would map pylstm._core back to the built tree; drop it so that only the directory
    # put first is seen, as in a checkout that was never built.
    prelude = (f"import sys; sys.path.insert(0, {str(sys_path_first)!r})\n"
               "sys.meta_path = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]\n")
    result = subprocess.run([sys.executable, "-c", prelude + code], cwd=cwd, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_helpful_message(stdout, package_dir):
    """The probe's ImportError names the extension, says how to build it, chains the original error, and was raised
    by ``package_dir``/__init__.py."""
    assert "IMPORTED" not in stdout, f"pylstm imported without its extension: {stdout}"
    fields = dict(line.split(": ", 1) for line in stdout.strip().splitlines())
    message = fields["MESSAGE"]
    assert "pylstm._core" in message, message
    assert "pip install" in message, message
    assert "build_ext --inplace" in message, message
    assert fields["CAUSE"] in ("ModuleNotFoundError", "ImportError"), stdout
    assert Path(fields["WHERE"]).resolve() == (package_dir / "__init__.py").resolve(), stdout


def test_source_tree_without_the_extension(tmp_path):
    """The Python files of the package, no compiled .so/.pyd: the message says how to build it."""
    copy = tmp_path / "pylstm"
    copy.mkdir()
    for source in PACKAGE_DIR.glob("*.py"):
        shutil.copy(source, copy / source.name)
    assert not any(p.suffix in (".so", ".pyd") for p in copy.iterdir())
    stdout = run_probe(PROBE, tmp_path, cwd=tmp_path)
    assert_helpful_message(stdout, copy)


def test_extension_that_fails_to_load(tmp_path):
    """The real package, with importing pylstm._core failing: the same helpful message, chained to the cause."""
    stdout = run_probe(BLOCKER + PROBE, PACKAGE_DIR.parent, cwd=tmp_path)
    assert_helpful_message(stdout, PACKAGE_DIR)
    assert "CAUSE: ImportError" in stdout


def test_real_package_imports_in_a_subprocess(tmp_path):
    """Control: the same probe without the blocker imports the package (so the failures above are the blocked
    extension's, not the harness's)."""
    stdout = run_probe(PROBE, PACKAGE_DIR.parent, cwd=tmp_path)
    assert stdout.startswith("IMPORTED"), stdout

"""Two builds of pylstm timed against each other in one process: the ratio of a change, on a machine whose speed drifts.

    python bench/ab.py OLD_TREE NEW_TREE LSTM-1-256-256-150-inf GRU-1-320-320-100-inf [--blocks 60] [--calls 10]

OLD_TREE and NEW_TREE are checkouts of this repository, each with its extension built in place (`python setup.py
build_ext --inplace`, or `pip install -e .`). Each tree's `pylstm` package is copied under a name of its own (the
extension and the Python code both come from that tree), and both are imported into one process. A case is
`CELL-B-I-H-T-MODE` (MODE: inf, or tr for forward + backward), as the suite's ids are written; any shape may be given.
For each case the two builds run alternating blocks of `--calls` calls (A B, then B A, ...) on the same inputs and
weights, and the per-block ratio old/new is taken (above 1: the new build is faster).

Alternating blocks inside one process keep what changes slowly (a virtual machine's speed, which here moved by 2x
within minutes) out of the ratio; timing each build in its own process, one after the other, does not. What remains
is the order in which a process imports the builds and makes their layers, which moved the ratio of two identical
builds by up to 3% here: each case therefore runs in two processes, one importing the old build first and one the new,
and the printed ratio is the geometric mean of the two (each run's median ratio is printed too). Both builds use the
same threads (`--threads`, default 2) and share OpenMP's thread pool.
"""
import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def check_built(tree):
    package = Path(tree).resolve() / "pylstm"
    if not any(package.glob("_core*")):
        sys.exit(f"bench/ab.py: {package} has no built extension (_core*): build that tree in place first")
    return package


def load_builds(trees, workdir):
    """Copies of each tree's pylstm package as pylstm_a, pylstm_b, imported from `workdir`. -> the modules."""
    modules = []
    for tree, name in zip(trees, ("pylstm_a", "pylstm_b")):
        shutil.copytree(check_built(tree), Path(workdir) / name, ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(workdir))
    for name in ("pylstm_a", "pylstm_b"):
        modules.append(__import__(name))
    return modules


def parse_case(text):
    """CELL-B-I-H-T-MODE (a suite id) -> the suite's Case."""
    parts = text.split("-")
    if len(parts) != 6 or parts[0] not in C.CELLS or parts[5] not in ("inf", "tr"):
        raise argparse.ArgumentTypeError(
            f"case: expected CELL-B-I-H-T-MODE (e.g. LSTM-1-256-256-150-inf), got {text!r}")
    try:
        B, I, H, T = (int(v) for v in parts[1:5])  # noqa: E741
    except ValueError:
        raise argparse.ArgumentTypeError(f"case: B, I, H, T must be integers, got {text!r}") from None
    if min(B, I, H, T) < 1:
        raise argparse.ArgumentTypeError(f"case: B, I, H, T must be at least 1, got {text!r}")
    return C.Case(parts[0], B, I, H, T, parts[5])


def make_call(package, case, threads):
    """The suite's timed call of `case` (its inputs, seed 0) on a layer of `package`."""
    package.set_num_threads(threads)
    return C.pylstm_call(C.make_pylstm_layer(case, None, package=package), C.CaseData(case))


def measure(trees, case, blocks, calls, threads):
    """In this process: the builds of `trees` (first imported first) on one case. -> (median time of each, ratios)."""
    with tempfile.TemporaryDirectory() as workdir:
        first, second = load_builds(trees, workdir)
        a, b, ratios = C.alternating_medians(make_call(first, case, threads), make_call(second, case, threads),
                                            blocks, calls)
    return a, b, ratios


def run_child(trees, case_id, args):
    """measure() in a process of its own. -> (median time of trees[0], of trees[1], median ratio trees[0]/trees[1])."""
    cmd = [sys.executable, __file__, *trees, case_id, "--blocks", str(args.blocks), "--calls", str(args.calls),
           "--threads", str(args.threads), "--child"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr.strip() or f"bench/ab.py: the measuring process failed ({result.returncode})")
    return json.loads(result.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the first tree (the old build)")
    parser.add_argument("new", help="the second tree (the new build)")
    parser.add_argument("cases", nargs="+", help="CELL-B-I-H-T-MODE, e.g. LSTM-1-256-256-150-inf")
    parser.add_argument("--blocks", type=int, default=60, help="blocks of calls per build, case and process (60)")
    parser.add_argument("--calls", type=int, default=10, help="calls per block (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both builds (default 2)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("blocks", "calls", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected at least 1, got {getattr(args, name)}")
    try:
        cases = [parse_case(text) for text in args.cases]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    for tree in (args.old, args.new):
        check_built(tree)
    if args.child:  # one process, one case, the trees in the order given
        a, b, ratios = measure([args.old, args.new], cases[0], args.blocks, args.calls, args.threads)
        print(json.dumps([a, b, statistics.median(ratios)]))
        return
    for case in cases:
        old_1, new_1, forward = run_child([args.old, args.new], case.id, args)   # old imported first
        new_2, old_2, backward = run_child([args.new, args.old], case.id, args)  # new imported first
        ratio = math.sqrt(forward / backward)
        print(f"{case.label}: old/new {ratio:.3f} (old imported first {forward:.3f}, new first "
              f"{1 / backward:.3f}); old {(old_1 + old_2) / 2 * 1e3:.4f} ms, new {(new_1 + new_2) / 2 * 1e3:.4f} ms; "
              f"{args.blocks} blocks of {args.calls} calls in each of two processes, {args.threads} threads")


if __name__ == "__main__":
    main()

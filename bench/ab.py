"""Two builds of pylstm timed against each other in one process: the ratio of a change, on a machine whose speed drifts.

    python bench/ab.py OLD_TREE NEW_TREE LSTM-1-256-256-150-inf GRU-1-320-320-100-inf [--blocks 60] [--calls 10]

OLD_TREE and NEW_TREE are checkouts of this repository, each with its extension built in place (`python setup.py
build_ext --inplace`, or `pip install -e .`). Each tree's `pylstm` package is copied under a name of its own
(pylstm_a, pylstm_b: the extension and the Python code both come from that tree), and both are imported into one
process. A case is `CELL-B-I-H-T-MODE` (MODE: inf, or tr for forward + backward), as the suite's ids are written;
any shape may be given. For each case the two builds run alternating blocks of `--calls` calls (A B, then B A, ...),
on the same inputs and weights, and the script prints each build's median time per call and the median and quartiles
of the per-block ratio old/new (above 1: the new build is faster).

Alternating blocks inside one process keep what changes slowly (a virtual machine's speed, which here moved by 2x
within minutes) out of the ratio; timing each build in its own process, one after the other, does not. Both builds use
the same threads (`--threads`, default 2) and share OpenMP's thread pool.
"""
import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load_builds(trees, workdir):
    """Copies of each tree's pylstm package as pylstm_a, pylstm_b, ... imported from `workdir`. -> the modules."""
    modules = []
    for tree, name in zip(trees, ("pylstm_a", "pylstm_b")):
        package = Path(tree).resolve() / "pylstm"
        if not any(package.glob("_core*")):
            sys.exit(f"bench/ab.py: {package} has no built extension (_core*): build that tree in place first")
        shutil.copytree(package, Path(workdir) / name, ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(workdir))
    for name in ("pylstm_a", "pylstm_b"):
        modules.append(__import__(name))
    return modules


def parse_case(text):
    parts = text.split("-")
    if len(parts) != 6 or parts[0] not in ("LSTM", "GRU", "RNN") or parts[5] not in ("inf", "tr"):
        raise argparse.ArgumentTypeError(f"case: expected CELL-B-I-H-T-MODE (e.g. LSTM-1-256-256-150-inf), got {text!r}")
    try:
        B, I, H, T = (int(v) for v in parts[1:5])  # noqa: E741
    except ValueError:
        raise argparse.ArgumentTypeError(f"case: B, I, H, T must be integers, got {text!r}") from None
    if min(B, I, H, T) < 1:
        raise argparse.ArgumentTypeError(f"case: B, I, H, T must be at least 1, got {text!r}")
    return parts[0], B, I, H, T, parts[5]


def make_call(module, case, threads):
    cell, B, I, H, T, mode = case  # noqa: E741
    module.set_num_threads(threads)
    layer = getattr(module, cell)(I, H, dtype="float32", seed=0)
    layer.train(mode == "tr")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I), dtype=np.float32)
    dout = rng.standard_normal((T, B, H), dtype=np.float32)
    if mode == "inf":
        return lambda: layer(x)

    def train():
        layer(x)
        layer.backward(dout)
    return train


def block_median(call, calls):
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare(call_a, call_b, blocks, calls):
    for _ in range(2):  # warm up both (workspaces, caches, thread pool)
        block_median(call_a, calls)
        block_median(call_b, calls)
    a_times, b_times, ratios = [], [], []
    for i in range(blocks):
        if i % 2 == 0:
            a, b = block_median(call_a, calls), block_median(call_b, calls)
        else:
            b, a = block_median(call_b, calls), block_median(call_a, calls)
        a_times.append(a)
        b_times.append(b)
        ratios.append(a / b)
    return statistics.median(a_times), statistics.median(b_times), ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the first tree (A)")
    parser.add_argument("new", help="the second tree (B)")
    parser.add_argument("cases", nargs="+", type=parse_case, help="CELL-B-I-H-T-MODE")
    parser.add_argument("--blocks", type=int, default=60, help="blocks of calls per build and case (default 60)")
    parser.add_argument("--calls", type=int, default=10, help="calls per block (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both builds (default 2)")
    args = parser.parse_args(argv)
    for name in ("blocks", "calls", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected at least 1, got {getattr(args, name)}")
    with tempfile.TemporaryDirectory() as workdir:
        build_a, build_b = load_builds([args.old, args.new], workdir)
        for case in args.cases:
            a, b, ratios = compare(make_call(build_a, case, args.threads), make_call(build_b, case, args.threads),
                                   args.blocks, args.calls)
            q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
            cell, B, I, H, T, mode = case  # noqa: E741
            print(f"{cell} {B},{I},{H},{T} {mode}: old {a * 1e3:.4f} ms, new {b * 1e3:.4f} ms, old/new "
                  f"{statistics.median(ratios):.3f} (quartiles {q1:.3f}-{q3:.3f}; {args.blocks} blocks of "
                  f"{args.calls} calls, {args.threads} threads)")


if __name__ == "__main__":
    main()

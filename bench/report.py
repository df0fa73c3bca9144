"""Run the benchmark suite (or read a result file) and print it as a markdown table.

    python bench/report.py                          # runs python -m pytest bench/test_suite.py (~5-15 min on 2
                                                    # cores), then prints
    python bench/report.py --json results.json      # only prints, from an earlier run's --benchmark-json file
    python bench/report.py --save results.json      # runs, keeps the JSON there, prints
    python bench/report.py -- -k "LSTM-64"          # arguments after -- go to pytest (here: a subset of the cases)

pytest's own output goes to stderr, the table to stdout (so `python bench/report.py > table.md` keeps just the table).
Columns and FLOP counts: bench/README.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
NOISY_PCT = 5  # flag a case when other processes took more than this share of the CPUs while it was timed

_MATMUL_SNIPPET = """
import time, numpy as np
try:
    from threadpoolctl import threadpool_limits, threadpool_info
    threadpool_limits({threads}, user_api="blas")
    arch = [i.get("architecture") for i in threadpool_info() if i.get("user_api") == "blas"]
except ImportError:
    arch = ["?"]
n = 2048
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32); b = a.copy(); c = np.empty_like(a)
for _ in range(3): np.matmul(a, b, out=c)
ts = []
for _ in range(15):
    t = time.perf_counter(); np.matmul(a, b, out=c); ts.append(time.perf_counter() - t)
print(2 * n ** 3 / sorted(ts)[len(ts) // 2] / 1e9, ",".join(map(str, arch)))
"""


def run_suite(json_path, junit_path, pytest_args, threads):
    env = dict(os.environ)
    env["PYLSTM_BENCH_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "pytest", os.path.join(BENCH_DIR, "test_suite.py"), f"--benchmark-json={json_path}", f"--junitxml={junit_path}",
           "--benchmark-columns=median,iqr,min,rounds", "-rfEs", *pytest_args]
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    start = time.perf_counter()
    # pytest's report goes to our stderr; bench/conftest.py unsets OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE in that process.
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=sys.stderr, stderr=sys.stderr)
    return proc.returncode, time.perf_counter() - start


def machine_busy_pct(seconds=5.0):
    """Percent of all CPUs busy over `seconds` (this process is idle meanwhile), or None without /proc/stat."""
    import _common as C
    a = C.cpu_snapshot()
    time.sleep(seconds)
    return C.others_cpu_share(a, C.cpu_snapshot())[0]


def wait_quiet(max_wait, threshold=5.0, windows=3):
    """Wait (up to max_wait seconds) until the machine has been idle for `windows` consecutive 5-second windows:
    other processes under `threshold`% of the CPUs. Returns the last share measured."""
    if max_wait <= 0:
        return None
    deadline = time.monotonic() + max_wait
    quiet = 0
    while True:
        busy = machine_busy_pct()
        if busy is None:
            return None
        quiet = quiet + 1 if busy <= threshold else 0
        print(f"other processes are using {busy:.0f}% of the CPUs", file=sys.stderr, flush=True)
        if quiet >= windows or time.monotonic() >= deadline:
            return busy


def matmul_gflops(threads):
    """NumPy's float32 2048^3 matmul on `threads` BLAS threads, in a process of its own (this shell's environment):
    (GFLOP/s, the BLAS kernel's architecture), or None when it could not run."""
    code = _MATMUL_SNIPPET.format(threads=threads)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        gflops, arch = out.stdout.split()
        return float(gflops), arch
    except (subprocess.SubprocessError, ValueError):
        return None


def matmul_with_env_openblas(threads):
    """The same matmul with this shell's OPENBLAS_* variables left in place (a note for the header), or None."""
    if not any(v in os.environ for v in OPENBLAS_VARS):
        return None
    return matmul_gflops(threads)


def failed_tests(junit_path):
    """Test names (e.g. 'test_suite[LSTM-1-256-256-1-inf-pylstm]') that failed or errored, from the junit file."""
    if not junit_path or not os.path.exists(junit_path):
        return {}
    failed = {}
    for tc in ET.parse(junit_path).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            el = tc.find(tag)
            if el is not None:
                failed[tc.get("name")] = (el.get("message") or tag).splitlines()[0][:200]
    return failed


def merge_runs(runs):
    """Several (data, failed) runs -> one: every case (all its implementations together, so they stay comparable)
    from the run in which the machine was fastest while that case was timed: the one whose matmul timed side by side
    with pylstm on that case ran fastest (a virtual machine here slowed to half its speed within a run, with no other
    process to see); for runs without that, the one in which other processes took the least CPU. The matmul peaks of
    all runs; the machine info of the first run, marked as merged."""
    def case_of(b):
        return b.get("extra_info", {}).get("case")

    def noise(run, case_id):
        """Lower is better: (0 when the matmul was timed beside pylstm on this case, else 1; its seconds; the
        largest share of the CPUs other processes took while an implementation of the case was timed)."""
        matmul, others = [], []
        for b in run["benchmarks"]:
            if case_of(b) != case_id:
                continue
            others.append(b["extra_info"].get("others_cpu_pct") or 0.0)
            side = b["extra_info"].get("side_by_side")
            if b["extra_info"].get("impl") == "pylstm" and side:
                matmul.append(side["q_s"])
        return (0 if matmul else 1, min(matmul, default=0.0), max(others)) if others else None

    case_ids = []
    for run, _ in runs:
        for b in run["benchmarks"]:
            if case_of(b) and case_of(b) not in case_ids:
                case_ids.append(case_of(b))
    benchmarks = [b for run, _ in runs for b in run["benchmarks"]
                  if b.get("extra_info", {}).get("kind") == "matmul-peak"]
    failed = {}
    chosen_from = []
    for case_id in case_ids:
        candidates = [(noise(run, case_id), k) for k, (run, _) in enumerate(runs) if noise(run, case_id) is not None]
        _, k = min(candidates)
        chosen_from.append(k)
        benchmarks += [b for b in runs[k][0]["benchmarks"] if case_of(b) == case_id]
        failed.update({name: msg for name, msg in runs[k][1].items() if f"[{case_id}-" in name})
    data = dict(runs[0][0])
    data["benchmarks"] = benchmarks
    data["machine_info"] = json.loads(json.dumps(runs[0][0].get("machine_info", {})))
    info = data["machine_info"].setdefault("pylstm_bench", {})
    info["merged"] = (f"merged from {len(runs)} runs ({', '.join(r.get('datetime', '?')[:16] for r, _ in runs)}); "
                      f"each case from the run in which the machine was fastest while it was timed (cases per run: "
                      f"{', '.join(str(chosen_from.count(k)) for k in range(len(runs)))})")
    info.pop("others_cpu_pct_run", None)
    return data, failed


# ----------------------------------------------------------------------------------------------------------------------
# Formatting


def fmt_ms(seconds):
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    if ms >= 0.1:
        return f"{ms:.3f}"
    return f"{ms:.4f}"


def fmt_ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}x"


def fmt_num(v, digits=1):
    return "—" if v is None else f"{v:.{digits}f}"


def table(rows, header):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render(data, failed, wall_seconds=None, env_matmul=None):
    import _common as C
    machine = data.get("machine_info", {})
    info = machine.get("pylstm_bench", {})
    results = {}  # (case id, impl) -> benchmark
    peaks = []  # (position, GFLOP/s, benchmark)
    for b in data["benchmarks"]:
        extra = b.get("extra_info", {})
        if extra.get("kind") == "matmul-peak":
            peaks.append((extra.get("position", "?"), extra["flop"] / b["stats"]["median"] / 1e9, b))
        elif extra.get("kind") == "suite":
            results[(extra["case"], extra["impl"])] = b

    def median(case_id, impl):
        b = results.get((case_id, impl))
        return b["stats"]["median"] if b else None

    # The practical peak: the higher of the matmuls measured at the start and the end of the run.
    peak_gflops = max(g for _, g, _ in peaks) if peaks else None
    peak = max(peaks, key=lambda p: p[1])[2] if peaks else None

    out = []
    threads = info.get("threads", "?")
    blas = ", ".join(f"{x.get('internal_api')} {x.get('version')} {x.get('architecture')} kernel, "
                     f"{x.get('num_threads')} threads" for x in info.get("blas", [])) or "unknown BLAS"
    out.append(f"**Threads: {threads}** for every implementation (pylstm.get_num_threads(): "
               f"{info.get('pylstm_num_threads')}; torch.get_num_threads(): {info.get('torch_num_threads', 'n/a')}; "
               f"ONNX Runtime intra-op {threads} / inter-op 1; NumPy BLAS {threads}).  ")
    caches = info.get("pylstm_cache_sizes")
    caches = (f"; caches L1d {caches['l1d'] >> 10} KiB, L2 {caches['l2'] >> 10} KiB, L3 {caches['l3'] >> 20} MiB "
              f"from {caches['source']}" if caches else "")
    out.append(f"pylstm ISA: `{info.get('pylstm_isa')}` (OpenMP: {info.get('pylstm_has_openmp')}{caches}) · "
               f"CPU: {info.get('cpu_model', machine.get('cpu', {}).get('brand_raw', '?'))}, "
               f"{info.get('cpu_count')} cores ({' '.join(info.get('cpu_flags', []))}) · "
               f"torch {info.get('torch') or 'not installed'} · onnxruntime {info.get('onnxruntime') or 'not installed'}"
               f" · numpy {info.get('numpy')} ({blas}) · python {machine.get('python_version', '?')}.  ")
    if peak_gflops:
        each = ", ".join(f"{pos} {g:.0f}" for pos, g, _ in peaks)
        out.append(f"Matmul peak (NumPy float32 {peak['extra_info']['n']}^3, {threads} threads, medians of "
                   f"{peak['stats']['rounds']} calls at the run's start and end: {each}): "
                   f"**{peak_gflops:.0f} GFLOP/s**, the higher one; the % peak columns divide by it.  ")
    if info.get("merged"):
        out.append(f"Runs {info['merged']}.  ")
    run_others = info.get("others_cpu_pct_run")
    if run_others is not None:
        out.append(f"Other processes took {run_others:.1f}% of the {info.get('cpu_count')} CPUs during the run "
                   f"(hypervisor steal {info.get('steal_cpu_pct_run', 0):.1f}%).  ")
    out.append(f"OpenBLAS environment: {info.get('openblas_env', '?')}.  ")
    if env_matmul:
        out.append(f"(With those variables left in place NumPy uses the {env_matmul[1]} kernel and the same matmul "
                   f"runs at {env_matmul[0]:.0f} GFLOP/s.)  ")
    when = data.get("datetime", "")
    out.append(f"Run: {when[:19].replace('T', ' ')}"
               + (f", {wall_seconds / 60:.1f} min wall for the whole pytest run" if wall_seconds else "") + ".")
    out.append("")

    header = ["case (cell B,I,H,T mode)", "pylstm ms", "torch ms", "ORT ms", "NumPy-ref ms", "vs torch", "vs ORT",
              "vs torch, side by side", "vs ORT, side by side", "pylstm GFLOP/s", "% peak", "% peak, side by side",
              "torch GFLOP/s", "torch % peak", "ORT % peak, side by side", "saved B/step/layer"]
    rows = []
    noisy = []
    for case in C.SUITE:
        ids = {impl: median(case.id, impl) for impl in C.IMPLS}
        busy = {impl: results[(case.id, impl)]["extra_info"].get("others_cpu_pct")
                for impl in C.IMPLS if (case.id, impl) in results}
        busy = {impl: v for impl, v in busy.items() if v is not None and v > NOISY_PCT}
        if not any(v is not None for v in ids.values()) and not any(case.id in k for k in failed):
            continue  # not part of this run (deselected)
        flop = C.flops(case)
        p, t, o, r = ids["pylstm"], ids["torch"], ids["onnxruntime"], ids["numpy-ref"]
        p_cell = fmt_ms(p) if p is not None else ("FAILED" if f"test_suite[{case.id}-pylstm]" in failed else "—")
        o_cell = fmt_ms(o) if o is not None else ("FAILED" if f"test_suite[{case.id}-onnxruntime]" in failed
                                                  else "—")
        p_gf = flop / p / 1e9 if p else None
        t_gf = flop / t / 1e9 if t else None
        saved = results.get((case.id, "pylstm"), {}).get("extra_info", {}).get("saved_bytes_per_step")
        side = {impl: results[(case.id, impl)]["extra_info"].get("side_by_side")
                for impl in ("pylstm", "torch", "onnxruntime") if (case.id, impl) in results}

        def side_ratio(impl):
            return "—" if not side.get(impl) else f"{side[impl]['ratio']:.2f}x"
        # pylstm against the matmul: (flop / p) / (matmul flop / q) = flop / matmul flop * (q / p)
        side_pct = 100 * flop / C.matmul_flops() * side["pylstm"]["ratio"] if side.get("pylstm") else None
        # ONNX Runtime against the matmul, through pylstm (two side-by-side timings): pylstm's share over ORT's ratio.
        ort_side_pct = side_pct / side["onnxruntime"]["ratio"] if side_pct and side.get("onnxruntime") else None
        label = case.label
        if busy:
            label += " †"
            noisy.append(f"{case.label}: " + ", ".join(f"{k} {v:.0f}%" for k, v in busy.items()))
        rows.append([label, p_cell, fmt_ms(t), o_cell, fmt_ms(r), fmt_ratio(t, p), fmt_ratio(o, p),
                     side_ratio("torch"), side_ratio("onnxruntime"),
                     fmt_num(p_gf, 2 if p_gf is not None and p_gf < 10 else 1),
                     fmt_num(100 * p_gf / peak_gflops if p_gf and peak_gflops else None), fmt_num(side_pct),
                     fmt_num(t_gf, 2 if t_gf is not None and t_gf < 10 else 1),
                     fmt_num(100 * t_gf / peak_gflops if t_gf and peak_gflops else None), fmt_num(ort_side_pct),
                     "—" if saved is None else f"{saved:,}"])
    out.append(table(rows, header))
    out.append("")
    out.append("Times are medians. vs torch / vs ORT: the other's time divided by pylstm's (above 1 = pylstm faster). "
               "Side by side: the same ratios (and pylstm's GFLOP/s over the matmul's) from blocks of calls "
               "alternating with pylstm's in the same seconds, the median of the blocks' ratios, which a machine "
               "whose speed drifts does not move as it moves the medians timed one after the other. "
               "ORT % peak, side by side: ONNX Runtime's share of the matmul's rate, pylstm's side-by-side share over the "
               "side-by-side ratio vs ORT (1.3x ORT takes 1.3 times that share). "
               "GFLOP/s counts forward 2·T·B·G·H·(I+H) and training 3x that. — = not run (ORT: inference only; "
               "NumPy reference: small cases only).")
    if noisy:
        out.append("")
        out.append(f"† other processes took more than {NOISY_PCT}% of the CPUs while these were timed (rerun on a "
                   "quiet machine): " + "; ".join(noisy) + ".")

    # The checks behind the numbers.
    check_rows = []
    for case in C.SUITE:
        pb = results.get((case.id, "pylstm"))
        ob = results.get((case.id, "onnxruntime"))
        if pb is None and ob is None:
            continue

        def worst(b, names):
            chk = (b or {}).get("extra_info", {}).get("check", {})
            vals = [(v["err"], v["tol"]) for k, v in chk.items() if names is None or k in names]
            return max(vals) if vals else None

        def cell(w):
            return "—" if w is None else f"{w[0]:.1e} (tol {w[1]:.0e})"
        against = (pb or ob)["extra_info"].get("check_against", "?")
        fwd = ("out", "h_n", "c_n")
        grads = ("dx", "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        check_rows.append([case.label, against, cell(worst(pb, fwd)), cell(worst(pb, grads)), cell(worst(ob, fwd))])
    if check_rows:
        out.append("")
        out.append("Checks done before timing (largest error over the arrays, scaled by max(1, max |oracle|)):")
        out.append("")
        out.append(table(check_rows, ["case", "oracle", "pylstm outputs", "pylstm gradients", "ORT outputs"]))
    if failed:
        out.append("")
        out.append("Failed:")
        out += [f"- `{name}`: {msg}" for name, msg in failed.items()]
    return "\n".join(out)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = []
    if "--" in argv:
        k = argv.index("--")
        argv, pytest_args = argv[:k], argv[k + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="append", metavar="PATH",
                    help="read this pytest-benchmark JSON file instead of running the suite; given several times, "
                         "merge the runs: each case from the run in which the machine was fastest while it was "
                         "timed (its matmul beside pylstm; else the run other processes disturbed least)")
    ap.add_argument("--save", help="when running: keep the pytest-benchmark JSON at this path")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("PYLSTM_BENCH_THREADS", "2")),
                    help="threads for every implementation (default 2)")
    ap.add_argument("--seconds", type=float, help="pytest --bench-seconds: measuring time per implementation per case")
    ap.add_argument("--ref-max-gflop", type=float, help="pytest --ref-max-gflop")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="before running, wait up to SECONDS until other processes have used under 5%% of the CPUs for 15 s")
    args = ap.parse_args(argv)

    wall = None
    failed = {}
    env_matmul = None
    if args.json:
        runs = []
        for path in args.json:
            with open(path) as f:
                run = json.load(f)
            junit = os.path.splitext(path)[0] + ".junit.xml"
            runs.append((run, failed_tests(junit if os.path.exists(junit) else None)))
        data, failed = runs[0] if len(runs) == 1 else merge_runs(runs)
        rc = 0
    else:
        if args.seconds is not None:
            pytest_args = [f"--bench-seconds={args.seconds}", *pytest_args]
        if args.ref_max_gflop is not None:
            pytest_args = [f"--ref-max-gflop={args.ref_max_gflop}", *pytest_args]
        tmpdir = tempfile.mkdtemp(prefix="pylstm-bench-")
        json_path = os.path.abspath(args.save) if args.save else os.path.join(tmpdir, "results.json")
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        junit_path = os.path.splitext(json_path)[0] + ".junit.xml"
        os.environ["PYLSTM_BENCH_THREADS"] = str(args.threads)
        wait_quiet(args.wait_quiet)
        rc, wall = run_suite(json_path, junit_path, pytest_args, args.threads)
        if not os.path.exists(json_path):
            print(f"pytest exited with {rc} and wrote no benchmark results", file=sys.stderr)
            return rc or 1
        with open(json_path) as f:
            data = json.load(f)
        failed = failed_tests(junit_path)
        env_matmul = matmul_with_env_openblas(args.threads)
    print(render(data, failed, wall, env_matmul))
    if rc:
        print(f"\n(pytest exited with status {rc}: see its output above on stderr)", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())

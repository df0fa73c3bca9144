"""The tables of bench/test_training.py runs: python bench/training_report.py OUT.json [OUT2.json ...]

OUT.json is pytest-benchmark's JSON (python -m pytest bench/test_training.py --benchmark-json OUT.json). With several
runs, each cell shows the range over them.
"""
import json
import sys


def load(paths):
    """-> {group: {parameter: [benchmark dicts, one per run]}} and the machine info of the first run."""
    found, machine = {}, None
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        machine = machine or data.get("machine_info", {})
        for b in data["benchmarks"]:
            param = b["name"][b["name"].index("[") + 1:-1]
            found.setdefault(b["group"], {}).setdefault(param, []).append(b)
    return found, machine


def span(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def ratios(numerators, denominators):
    """Per-run ratios of medians (runs paired in order)."""
    return [n["stats"]["median"] / d["stats"]["median"] for n, d in zip(numerators, denominators)]


def training_table(found):
    print("| model | implementation | median ms | tokens/s | peak MB | vs torch | vs torch, side by side | "
          "% of matmul, side by side |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for group in sorted(g for g in found if g.startswith("train-")):
        cases = found[group]
        torch_runs = next((runs for param, runs in cases.items() if param.endswith("-torch")), [])
        for param, runs in sorted(cases.items()):
            info = [r.get("extra_info", {}) for r in runs]
            print(f"| {group[6:]} | {param.split('-', 1)[1]} | {span([r['stats']['median'] * 1e3 for r in runs], '{:.1f}')} "
                  f"| {span([i.get('tokens_per_s') for i in info], '{:,}')} "
                  f"| {span([i.get('peak_memory_mb') for i in info], '{:.0f}')} "
                  f"| {span(ratios(torch_runs, runs), '{:.2f}x')} "
                  f"| {span([i.get('vs_torch_side_by_side') for i in info], '{:.2f}x')} "
                  f"| {span([i.get('pct_matmul_side_by_side') for i in info], '{:.0f}')} |")


def between_table(found):
    cases = found.get("numpy-between", {})
    if not cases:
        return
    alone = cases.get("nothing", [])
    print("\n| before each pylstm call | median ms | vs nothing before |")
    print("|---|---:|---:|")
    for param, runs in cases.items():
        print(f"| {param} | {span([r['stats']['median'] * 1e3 for r in runs], '{:.1f}')} "
              f"| {span(ratios(runs, alone), '{:.2f}x')} |")


def pair_table(found, group, title, numerator, denominator, meaning):
    """Two implementations of a group and the ratio of their medians."""
    cases = found.get(group, {})
    if numerator not in cases or denominator not in cases:
        return
    print(f"\n| {title} | {numerator} ms | {denominator} ms | {meaning} |")
    print("|---|---:|---:|---:|")
    print(f"| {group} | {span([r['stats']['median'] * 1e3 for r in cases[numerator]], '{:.1f}')} "
          f"| {span([r['stats']['median'] * 1e3 for r in cases[denominator]], '{:.1f}')} "
          f"| {span(ratios(cases[numerator], cases[denominator]), '{:.3f}x')} |")


def main(paths):
    found, machine = load(paths)
    print(f"{len(paths)} run(s); CPU: {machine.get('cpu', {}).get('brand_raw', '?')}\n")
    training_table(found)
    between_table(found)
    pair_table(found, "fit-overhead", "an epoch of 5 steps", "fit", "hand-written", "fit / hand-written")
    pair_table(found, "sample", "1,000 characters", "torch", "pylstm", "torch / pylstm")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])

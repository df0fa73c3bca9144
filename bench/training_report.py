"""The table of a bench/test_training.py run: python bench/training_report.py OUT.json [OUT2.json ...]

OUT.json is pytest-benchmark's JSON (python -m pytest bench/test_training.py --benchmark-json OUT.json). With several
runs, each row shows the range over them.
"""
import json
import sys


def rows(paths):
    """-> {(group, name): [benchmark dicts, one per run]} and the machine info of the first run."""
    found, machine = {}, None
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        machine = machine or data.get("machine_info", {})
        for b in data["benchmarks"]:
            found.setdefault((b["group"], b["name"]), []).append(b)
    return found, machine


def span(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def main(paths):
    found, machine = rows(paths)
    cpu = machine.get("cpu", {}).get("brand_raw", "?")
    print(f"{len(paths)} run(s); CPU: {cpu}\n")
    print("| group | implementation | median ms | tokens/s | peak MB | vs torch | vs torch, side by side | "
          "% of matmul, side by side |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (group, name), runs in sorted(found.items()):
        param = name[name.index("[") + 1:-1]
        impl = param.split("-", 1)[-1] if group.startswith("train-") else param
        medians = [r["stats"]["median"] * 1e3 for r in runs]
        info = [r.get("extra_info", {}) for r in runs]
        versus = "—"
        if group.startswith("train-"):
            torch_runs = [b for (g, n), bs in found.items() if g == group and n.endswith("-torch]") for b in bs]
            if torch_runs and len(torch_runs) == len(runs):
                versus = span([t["stats"]["median"] / r["stats"]["median"] for t, r in zip(torch_runs, runs)],
                              "{:.2f}x")
        print(f"| {group} | {impl} | {span(medians, '{:.1f}')} | {span([i.get('tokens_per_s') for i in info], '{:,}')} "
              f"| {span([i.get('peak_memory_mb') for i in info], '{:.0f}')} | {versus} | "
              f"{span([i.get('vs_torch_side_by_side') for i in info], '{:.2f}x')} | "
              f"{span([i.get('pct_matmul_side_by_side') for i in info], '{:.0f}')} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])

"""`python -m pylstm demo`: the experiments behind gated RNNs, trained here and now: a plain RNN forgets, an LSTM and
a GRU remember (pylstm.experiments).

Each experiment prints a table (the mean over seeds with its spread) and a conclusion computed from its numbers, and
writes a PNG plot when matplotlib is installed (pip install "pylstm[plot]"). The default run takes about a minute and
a half on 2 cores; --quick runs tiny versions in seconds (their numbers show little), --full longer and larger ones,
--only one.
"""
import math
import os
import textwrap
import time
from typing import Any, Callable

import numpy as np

from . import experiments as E

NAMES = ("memory", "agreement", "gradients", "adding", "speed")
WIDTH = 110  # the printed conclusions are wrapped to this width

#: The sizes of each run: keyword arguments of each experiment (pylstm.experiments) by preset.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "memory": dict(gaps=(2, 30), hidden=16, steps=150, eval_size=256),
        "agreement": dict(lengths=(2, 30), hidden=16, steps=150, eval_size=256),
        "gradients": dict(gap=10, distances=(1, 5, 11), hidden=16, steps=150, eval_size=128),
        "adding": dict(steps_per_sequence=20, hidden=16, steps=300, eval_size=256),
        "speed": dict(gap=10, hidden=16, steps=150, evaluate_every=50, eval_size=128),
    },
    "default": {
        "memory": dict(gaps=(10, 25, 50, 100, 200)),
        "agreement": dict(lengths=(5, 10, 25, 50, 100)),
        "gradients": dict(gap=50, distances=(1, 10, 25, 51)),
        "adding": dict(steps_per_sequence=100, steps=2000),
        "speed": dict(gap=50),
    },
    "full": {
        "memory": dict(gaps=(10, 25, 50, 100, 200, 400), hidden=64, steps=1000),
        "agreement": dict(lengths=(5, 10, 25, 50, 100, 200), hidden=64, steps=800),
        "gradients": dict(gap=100, distances=(1, 10, 25, 50, 101), hidden=64, steps=1000),
        "adding": dict(steps_per_sequence=100, hidden=64, steps=4000),
        "speed": dict(gap=100, hidden=64, steps=1000),
    },
}
SEEDS = {"quick": 2, "default": 3, "full": 5}


def _mean_spread(values, fmt="{:.2f}"):
    """'mean±std' of the seeds' values."""
    return f"{fmt.format(float(np.mean(values)))}±{fmt.format(float(np.std(values)))}"


def _table(header, rows):
    widths = [max(len(str(r[k])) for r in [header] + rows) for k in range(len(header))]
    line = lambda r: "  ".join(str(v).rjust(w) if k else str(v).ljust(w) for k, (v, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _holds(accuracies, xs, threshold=0.9):
    """The largest x up to which the mean accuracy stays at or above the threshold (None: not even the first)."""
    best = None
    for x, acc in zip(xs, accuracies):
        if np.mean(acc) < threshold:
            break
        best = x
    return best


# ----------------------------------------------------------------------------------------------------------------------
# Reports: (table, conclusion) of each experiment's result, all computed from the numbers


def report_accuracy(result, xs_key, what):
    xs = result[xs_key]
    rows = [[cell] + [_mean_spread(v) for v in result["accuracy"][cell]] for cell in result["cells"]]
    table = _table([f"accuracy / {what}"] + [str(x) for x in xs], rows)
    held = {cell: _holds(result["accuracy"][cell], xs) for cell in result["cells"]}
    last = {cell: float(np.mean(result["accuracy"][cell][-1])) for cell in result["cells"]}
    at_end = ", ".join(f"{cell} {last[cell]:.0%}" for cell in result["cells"])
    holding = "; ".join(f"{cell} holds 90% up to {held[cell]}" if held[cell] is not None else
                        f"{cell} is below 90% already at {xs[0]}" for cell in result["cells"])
    conclusion = f"At {what} {xs[-1]}: {at_end} (chance {result['chance']:.0%}). {holding}."
    near_chance = [c for c in result["cells"] if last[c] < result["chance"] + 0.1]
    above = [c for c in result["cells"] if last[c] >= result["chance"] + 0.1]
    if near_chance and above:
        conclusion += (f" At the longest {what}, {' and '.join(above)} still remember{'s' if len(above) == 1 else ''}"
                       f" the first token; {' and '.join(near_chance)} guess{'es' if len(near_chance) == 1 else ''}.")
    return table, conclusion


def report_gradients(result):
    ks = result["distances"]
    rows = []
    for when in ("before", "after"):
        for cell in result["cells"]:
            rows.append([f"{cell}, {'at initialisation' if when == 'before' else 'trained'}"]
                        + [f"{np.mean(v):.1e}" for v in result[when][cell]])
    key = ks[-1]
    table = _table([f"|dL/dx(T-k)| / |dL/dx(T)|, k ="] + [str(k) + (" (key)" if k == result["gap"] + 1 else "")
                                                           for k in ks], rows)
    if result["forget_gate"]:
        f = np.mean(result["forget_gate"], axis=0)
        T = len(f)
        marks = [0, 1, T // 4, T // 2, 3 * T // 4, T - 2, T - 1]
        table += "\n\n" + textwrap.fill("trained LSTM's forget gate f_t (mean over units): " + ", ".join(
            f"step {t}{' (key)' if t == 0 else ' (query)' if t == T - 1 else ''} {f[t]:.3f}" for t in marks),
            WIDTH)
    reach = {cell: float(np.mean(result["after"][cell][-1])) for cell in result["cells"]}
    reach0 = {cell: float(np.mean(result["before"][cell][-1])) for cell in result["cells"]}
    order = sorted(result["cells"], key=lambda c: -reach[c])
    conclusion = (f"After training, the share of the query's gradient that reaches the key {key} steps back is "
                  + ", ".join(f"{c} {reach[c]:.1e}" for c in order)
                  + " (at initialisation " + ", ".join(f"{c} {reach0[c]:.1e}" for c in order) + ")")
    weakest = order[-1]
    ratio = reach[order[0]] / reach[weakest] if reach[weakest] > 0 else math.inf
    conclusion += (f": the {weakest}'s gradient vanishes on the way ({ratio:.0e} times weaker than the "
                   f"{order[0]}'s)" if ratio > 100 else ": no cell's gradient vanishes by more than 100x here")
    if result["forget_gate"]:
        f = np.mean(result["forget_gate"], axis=0)
        conclusion += (f"; the trained LSTM's forget gate stays at {f[1:-1].min():.3f}-{f[1:-1].max():.3f} between "
                       f"key and query, a carousel held open (f^{len(f) - 2} = {np.prod(f[1:-1]):.2f} of the key's "
                       f"cell state survives).")
    else:
        conclusion += "."
    return table, conclusion


def report_adding(result):
    base = result["baseline"]
    rows = [[cell, _mean_spread(result["mse"][cell], "{:.4f}"), f"{np.mean(result['mse'][cell]) / base:.3f}"]
            for cell in result["cells"]]
    table = _table([f"adding, T={result['T']}", "test MSE", "/ baseline"], rows)
    learned = [c for c in result["cells"] if np.mean(result["mse"][c]) < 0.1 * base]
    stuck = [c for c in result["cells"] if np.mean(result["mse"][c]) > 0.5 * base]
    conclusion = (f"Predicting the mean scores {base:.3f}. "
                  + "; ".join(f"{c}: {np.mean(result['mse'][c]):.4f}" for c in result["cells"]) + ". ")
    if learned:
        conclusion += f"{' and '.join(learned)} learned the sum (MSE below a tenth of the baseline)"
    if stuck:
        conclusion += f"{'; ' if learned else ''}{' and '.join(stuck)} stayed near the baseline (did not learn it)"
    return table, conclusion + "."


def _time_to(curve, level):
    for seconds, acc in curve:
        if acc >= level:
            return seconds
    return None


def report_speed(result, level=0.95):
    rows, reached = [], {}
    for cell in result["cells"]:
        curves = result["curves"][cell]
        total = [c[-1][0] for c in curves]
        times = [_time_to(c, level) for c in curves]
        reached[cell] = [t for t in times if t is not None]
        rows.append([cell, result["parameters"][cell], _mean_spread(total, "{:.2f}"),
                     _mean_spread([c[-1][1] for c in curves]),
                     f"{np.mean(reached[cell]):.2f} s ({len(reached[cell])}/{len(times)})" if reached[cell]
                     else f"never (0/{len(times)})"])
    table = _table([f"memory, gap {result['gap']}", "parameters", "training s", "final accuracy",
                    f"time to {level:.0%}"], rows)
    p = result["parameters"]
    conclusion = ""
    if "GRU" in p and "LSTM" in p:
        conclusion = f"The GRU has {p['GRU'] / p['LSTM']:.0%} of the LSTM's parameters. "
    done = {c: float(np.mean(v)) for c, v in reached.items() if v}
    if done:
        order = sorted(done, key=lambda c: done[c])
        conclusion += f"Time to {level:.0%} accuracy: " + ", ".join(f"{c} {t:.2f} s" for c, t in done.items())
        if len(order) > 1 and done[order[1]] < 1.1 * done[order[0]]:
            conclusion += f"; {' and '.join(order[:2])} get there within 10% of each other"
        else:
            conclusion += f"; the {order[0]} gets there first"
    never = [c for c in result["cells"] if not reached[c]]
    if never:
        conclusion += f"{'; ' if done else ''}{' and '.join(never)} never reach{'es' if len(never) == 1 else ''} it"
    return table, conclusion + "."


# ----------------------------------------------------------------------------------------------------------------------
# Plots (matplotlib, when installed)


def _plot(name, result, directory):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    os.makedirs(directory, exist_ok=True)
    colors = {"RNN": "tab:red", "GRU": "tab:blue", "LSTM": "tab:green"}
    styles = {"RNN": dict(marker="o"), "GRU": dict(marker="s", linestyle="--"), "LSTM": dict(marker="^")}
    if name in ("memory", "agreement"):
        xs = result["gaps" if name == "memory" else "lengths"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for cell in result["cells"]:
            acc = np.array(result["accuracy"][cell])
            ax.errorbar(xs, acc.mean(axis=1), yerr=acc.std(axis=1), capsize=3, label=cell, color=colors.get(cell),
                        **styles.get(cell, {}))
        ax.axhline(result["chance"], color="gray", linestyle=":", label="chance")
        ax.set_xscale("log")
        ax.set_xlabel("gap (filler tokens)" if name == "memory" else "clause length (tokens)")
        ax.set_ylabel("test accuracy")
        ax.set_title("Long-range memory" if name == "memory" else "Agreement over distractors")
        ax.legend()
    elif name == "gradients":
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for when, style in (("before", ":"), ("after", "-")):
            for cell in result["cells"]:
                v = np.mean(result["profiles"][when][cell], axis=0)
                axes[0].plot(np.arange(len(v)), np.maximum(v, 1e-30), style, color=colors.get(cell),
                             label=f"{cell} {'at initialisation' if when == 'before' else 'trained'}")
        axes[0].axvline(result["gap"] + 1, color="gray", linewidth=0.8)
        axes[0].text(result["gap"] + 1, 1e-1, " key", color="gray")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("distance k (steps back from the query)")
        axes[0].set_ylabel("|dL/dx(T-k)| / |dL/dx(T)|")
        axes[0].set_title("Gradient flow")
        axes[0].legend(fontsize=8)
        if result["forget_gate"]:
            f = np.mean(result["forget_gate"], axis=0)
            axes[1].plot(np.arange(len(f)), f, color=colors["LSTM"])
            axes[1].set_xlabel("step (key at 0, query at the end)")
            axes[1].set_ylabel("mean forget gate")
            axes[1].set_title("Trained LSTM: the carousel held open")
    elif name == "adding":
        fig, ax = plt.subplots(figsize=(6, 4))
        cells = result["cells"]
        means = [np.mean(result["mse"][c]) for c in cells]
        ax.bar(cells, means, yerr=[np.std(result["mse"][c]) for c in cells], color=[colors.get(c) for c in cells])
        ax.axhline(result["baseline"], color="gray", linestyle=":", label="predict the mean")
        ax.set_yscale("log")
        ax.set_ylabel("test MSE")
        ax.set_title(f"Adding problem, T={result['T']}")
        ax.legend()
    else:
        fig, ax = plt.subplots(figsize=(6, 4))
        for cell in result["cells"]:
            for k, curve in enumerate(result["curves"][cell]):
                t, a = zip(*curve)
                ax.plot(t, a, color=colors.get(cell), alpha=0.7, label=cell if k == 0 else None)
        ax.set_xlabel("seconds of training")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"Accuracy per second of training (memory, gap {result['gap']})")
        ax.legend()
    path = os.path.join(directory, f"{name}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------------------------------
# The demo


TITLES = {
    "memory": "1. Long-range memory: a key token at the start decides the answer after a gap of filler",
    "agreement": "2. Agreement over distractors: the subject's number decides is/are after a clause of other nouns",
    "gradients": "3. Vanishing gradients, before and after training on task 1",
    "adding": "4. The adding problem (Hochreiter & Schmidhuber 1997)",
    "speed": "5. Parameters and time on task 1",
}
_RUN: dict[str, Callable[..., E.Results]] = {
    "memory": E.long_range_memory, "agreement": E.agreement, "gradients": E.gradient_flow, "adding": E.adding_problem,
    "speed": E.parameters_and_time}


def report(name, result):
    """(table, conclusion) of an experiment's result."""
    if name == "memory":
        return report_accuracy(result, "gaps", "gap")
    if name == "agreement":
        return report_accuracy(result, "lengths", "clause length")
    if name == "gradients":
        return report_gradients(result)
    if name == "adding":
        return report_adding(result)
    return report_speed(result)


def run(preset="default", only=None, seed=0, plots="demo-plots", out=print):
    """Run the experiments of a preset ("quick", "default", "full"), or only the one named -> {name: result}."""
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    names = NAMES if only is None else (only,)
    if only is not None and only not in NAMES:
        raise ValueError(f"only: expected one of {', '.join(NAMES)}, got {only!r}")
    seeds = tuple(range(seed, seed + SEEDS[preset]))
    out(textwrap.fill(f"pylstm demo ({preset}): RNN, GRU and LSTM, hidden sizes and training budgets alike, "
                      f"{len(seeds)} seeds; gated cells start with their memory gates open (gate bias "
                      f"{E.GATE_BIAS:g}).", WIDTH))
    results, started = {}, time.perf_counter()
    for name in names:
        out(f"\n{TITLES[name]}")
        result = _RUN[name](seeds=seeds, **PRESETS[preset][name])
        table, conclusion = report(name, result)
        out(table)
        out(textwrap.fill(f"=> {conclusion}", WIDTH, subsequent_indent="   "))
        try:  # a plot that cannot be written loses nothing of the run
            note = f"; plot: {path}" if plots and (path := _plot(name, result, plots)) else ""
        except OSError as exc:
            note = f"; no plot, {plots} cannot be written: {exc.strerror or exc}"
        out(f"({result['seconds']:.1f} s{note})")
        results[name] = result
    out(f"\nTotal {time.perf_counter() - started:.0f} s.")
    return results

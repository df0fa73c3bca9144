"""pylstm.experiments and `python -m pylstm demo`.

Each experiment at a small size (seconds), asserting the direction of its result where it is robust at that size: on a
short gap every cell learns, at the demo's size the gated cells remember across a long gap where the plain RNN
guesses, the RNN's gradient vanishes on the way back to the key, the gated cells learn the adding problem. The
reports' conclusions follow the numbers they are given, and the demo's command runs end to end with --quick.
"""
import subprocess
import sys

import numpy as np
import pytest

from pylstm import demo
from pylstm import experiments as E


def mean_at(result, k=-1):
    return {cell: float(np.mean(v[k])) for cell, v in result["accuracy"].items()}


def test_long_range_memory_short_gap_every_cell_learns_long_gap_only_the_gated():
    short = E.long_range_memory(gaps=(3,), seeds=(0,), hidden=16, steps=150, eval_size=256)
    assert all(acc >= 0.9 for acc in mean_at(short).values()), short["accuracy"]
    # the demo's sizes at a long gap, one seed
    long = E.long_range_memory(gaps=(100,), seeds=(0,), eval_size=256)
    acc = mean_at(long)
    assert acc["LSTM"] >= 0.9 and acc["GRU"] >= 0.9 and acc["RNN"] <= 0.5, acc
    assert long["chance"] == 0.25 and long["gaps"] == [100]


def test_agreement_needs_memory_of_the_subject():
    make_batch = E.agreement_batch(20)
    x, labels = make_batch(np.random.default_rng(0), 4000)
    nearest_noun = np.array([next((t for t in col[-2::-1] if t < 12), col[0]) for col in x.T])
    # the clause is independent of the subject: its nearest noun's number is right about half the time
    assert abs(np.mean((nearest_noun >= 6) == labels) - 0.5) < 0.05
    assert np.array_equal(x[0] >= 6, labels == 1)  # the subject's number is the label
    result = E.agreement(lengths=(25,), seeds=(0,), eval_size=256)
    acc = mean_at(result)
    assert acc["LSTM"] >= 0.9 and acc["GRU"] >= 0.9 and acc["RNN"] <= 0.7, acc


def test_gradient_flow_vanishes_in_the_rnn():
    result = E.gradient_flow(gap=10, distances=(1, 5, 11), seeds=(0,), hidden=16, steps=150, eval_size=128)
    for when in ("before", "after"):
        key = {cell: float(np.mean(v[-1])) for cell, v in result[when].items()}
        assert key["RNN"] < 1e-2 * key["LSTM"] and key["RNN"] < 1e-2 * key["GRU"], (when, key)
    assert len(result["profiles"]["after"]["LSTM"][0]) == 12 and result["profiles"]["after"]["LSTM"][0][0] == 1.0
    forget = np.array(result["forget_gate"][0])
    assert forget.shape == (12,) and np.all((forget > 0.9) & (forget < 1))  # the carousel starts and stays open


def test_gradient_norms_are_the_inputs_gradients_as_torch_computes_them():
    torch = pytest.importorskip("torch")
    model = E._classifier("GRU", 13, 4, 8, 0, E.GATE_BIAS)
    x, labels = E.memory_batch(3)(np.random.default_rng(1), 2)
    norms = E.input_gradient_norms(model, x, labels)
    assert not any(g.any() for g in model.grads.values())  # it leaves no gradients behind
    emb, gru, lin = model.modules
    t_gru, t_lin = torch.nn.GRU(16, 8), torch.nn.Linear(8, 4)
    t_gru.load_state_dict({k: torch.tensor(v) for k, v in gru.state_dict().items()})
    t_lin.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    e = torch.tensor(emb.params["weight"][x], requires_grad=True)
    out, _ = t_gru(e)
    torch.nn.functional.cross_entropy(t_lin(out[-1]), torch.tensor(labels)).backward()
    np.testing.assert_allclose(norms, e.grad.norm(dim=(1, 2)).numpy(), rtol=1e-4)


def test_adding_problem_gated_cells_learn_rnn_does_not():
    result = E.adding_problem(steps_per_sequence=30, seeds=(0,), steps=800, eval_size=500)
    mse = {cell: float(np.mean(v)) for cell, v in result["mse"].items()}
    base = result["baseline"]
    assert mse["LSTM"] < 0.25 * base and mse["GRU"] < 0.25 * base and mse["RNN"] > 0.5 * base, mse


def test_parameters_and_time():
    result = E.parameters_and_time(gap=5, seeds=(0,), hidden=16, steps=100, evaluate_every=50, eval_size=64)
    p = result["parameters"]
    assert p == {"RNN": 16 * (16 + 16) + 2 * 16, "GRU": 3 * (16 * 32 + 32), "LSTM": 4 * (16 * 32 + 32)}
    curve = result["curves"]["LSTM"][0]
    assert len(curve) == 2 and curve[0][0] < curve[1][0] and 0 <= curve[1][1] <= 1


# ----------------------------------------------------------------------------------------------------------------------
# Reports: conclusions follow the numbers


def fake_accuracy(rnn, gated):
    return {"gaps": [10, 100], "cells": ["RNN", "GRU", "LSTM"], "chance": 0.25,
            "accuracy": {"RNN": [[1.0], [rnn]], "GRU": [[1.0], [gated]], "LSTM": [[1.0], [gated]]}}


def test_accuracy_conclusion_follows_the_numbers():
    _, text = demo.report_accuracy(fake_accuracy(0.25, 1.0), "gaps", "gap")
    assert "RNN 25%" in text and "GRU and LSTM still remember" in text and "RNN guesses" in text
    assert "RNN holds 90% up to 10" in text and "LSTM holds 90% up to 100" in text
    _, text = demo.report_accuracy(fake_accuracy(1.0, 0.25), "gaps", "gap")  # the other way round
    assert "RNN still remembers" in text and "GRU and LSTM guess" in text


def test_adding_and_gradient_conclusions_follow_the_numbers():
    result = {"T": 100, "cells": ["RNN", "LSTM"], "baseline": 1 / 6, "mse": {"RNN": [0.16], "LSTM": [0.001]}}
    _, text = demo.report_adding(result)
    assert "LSTM learned the sum" in text and "RNN stayed near the baseline" in text
    result["mse"] = {"RNN": [0.001], "LSTM": [0.16]}
    _, text = demo.report_adding(result)
    assert "RNN learned the sum" in text and "LSTM stayed near the baseline" in text
    grads = {"gap": 5, "distances": [1, 6], "cells": ["RNN", "LSTM"], "forget_gate": [],
             "before": {"RNN": [[0.5], [1e-6]], "LSTM": [[0.5], [0.3]]},
             "after": {"RNN": [[0.5], [1e-7]], "LSTM": [[0.5], [0.4]]}}
    _, text = demo.report_gradients(grads)
    assert "RNN's gradient vanishes" in text and "LSTM 4.0e-01" in text


def test_speed_conclusion_follows_the_numbers():
    result = {"gap": 5, "cells": ["RNN", "GRU", "LSTM"], "parameters": {"RNN": 1, "GRU": 3, "LSTM": 4},
              "curves": {"RNN": [[(0.3, 0.2)]], "GRU": [[(0.1, 0.5), (0.2, 0.99)]], "LSTM": [[(0.1, 0.5), (0.4, 0.99)]]}}
    _, text = demo.report_speed(result)
    assert "GRU has 75% of the LSTM's parameters" in text and "the GRU gets there first" in text
    assert "RNN never reaches it" in text
    result["curves"]["LSTM"] = [[(0.1, 0.5), (0.21, 0.99)]]
    assert "GRU and LSTM get there within 10% of each other" in demo.report_speed(result)[1]


# ----------------------------------------------------------------------------------------------------------------------
# The command


def test_demo_quick_runs_end_to_end(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pylstm", "demo", "--quick", "--plots", str(tmp_path / "plots")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("=> ") == 5 and "Total" in result.stdout
    for title in demo.TITLES.values():
        assert title in result.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(f"{n}.png" for n in demo.NAMES)


def test_demo_only_and_errors():
    result = subprocess.run([sys.executable, "-m", "pylstm", "demo", "--quick", "--only", "speed", "--no-plots"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.count("=> ") == 1 and "plot:" not in result.stdout
    with pytest.raises(ValueError, match="only"):
        demo.run("quick", only="nothing")
    with pytest.raises(ValueError, match="preset"):
        demo.run("huge")


def test_demo_goes_on_when_its_plot_cannot_be_written(tmp_path):
    """The run's results are not lost to a plot directory that cannot be made: the line says so."""
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    lines = []
    results = demo.run("quick", only="memory", plots=str(blocker / "plots"), out=lines.append)
    assert "memory" in results and any("no plot, " in line and "cannot be written" in line for line in lines), lines


def test_fresh_batches_are_a_sequence_with_sequence_methods():
    """FreshBatches is a Sequence, so its mixin methods (count, index) work: no attribute hides them."""
    make_batch = E.memory_batch(3)
    batches = E.FreshBatches(make_batch, 4, 2, seed=0, targets=lambda x, labels: labels)
    assert len(batches) == 4 and len(list(batches)) == 4
    assert batches.count(None) == 0 and "count" not in vars(batches)
    with pytest.raises(IndexError):
        batches[4]

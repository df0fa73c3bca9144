"""The README's training examples run as written (in a temporary directory) and do what the README says of them."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def training_examples():
    """The Python blocks of the README's section "Training a model", in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Training a model")
    section = text[start:text.index("\n## ", start + 3)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def run(args, cwd):
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr
    return result.stdout


def learns(output):
    """The printed losses fall from above 1 to below 0.05: the model learns the sentence by heart."""
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", output)]
    return len(losses) == 10 and losses[0] > 1.0 and losses[-1] < 0.05


def test_the_fit_example_learns_and_its_checkpoint_samples(tmp_path):
    fit_example, _ = training_examples()
    assert learns(run(["-c", fit_example], tmp_path))
    greedy = run(["-m", "pylstm", "sample", "fox.npz", "--prompt", "the quick brown ", "-n", "3", "--top-k", "1"],
                 tmp_path)
    assert greedy.strip() == "the quick brown fox"


def test_the_hand_written_loop_example_learns(tmp_path):
    _, loop_example = training_examples()
    assert learns(run(["-c", loop_example], tmp_path))

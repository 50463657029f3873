"""The README's example runs and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_readme_example_runs_as_shown(monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "numpy")  # the snippet's backend: XPNET_BACKEND, else auto
    # The DNN snippet (the learner section starts with xpnet.course's, checked with the other snippets below).
    code = next(block for block in _python_blocks() if "net.score" in block)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    score_line = next(line for line in code.splitlines() if "net.score" in line)
    claimed = re.search(r"# ([0-9.]+)", score_line).group(1)
    assert lines[-2] == claimed  # printed exactly as the README shows it


def test_readme_shows_the_l_layer_examples_real_output():
    text = README.read_text()
    intro = "`python examples/l_layer_model.py` trains the lecture's L-layer model; its output on a CPU:"
    block = re.search(re.escape(intro) + r"\n\n```\n(.*?)```", text, re.S).group(1)
    shown = [line for line in block.splitlines() if line.strip() and line.strip() != "..."]
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "l_layer_model.py")], capture_output=True,
                         text=True, env={**os.environ, "XPNET_BACKEND": "numpy"}, timeout=300, check=True)
    actual = run.stdout.splitlines()
    missing = [line for line in shown if line not in actual]
    assert not missing, f"README shows lines the example does not print: {missing}"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_training_and_estimator_snippets_print_what_they_claim(monkeypatch):
    """Every ``print(...)  # claim`` line of the course, mini-batch and scikit-learn snippets prints exactly
    ``claim`` (the DNN snippet's are checked above)."""
    monkeypatch.setenv("XPNET_BACKEND", "numpy")
    checked = 0
    for code in [block for block in _python_blocks() if "net.score" not in block]:
        claims = [re.search(r"#\s*(.+)$", line).group(1).strip() for line in code.splitlines()
                  if line.startswith("print(") and "#" in line]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
        printed = out.getvalue().splitlines()
        assert printed == claims
        checked += len(claims)
    assert checked >= 4


def test_readme_shows_xpnet_trains_real_output():
    text = README.read_text()
    block = re.search(r"pip install -e \. && xpnet train\n```\n\n```\n(.*?)```", text, re.S).group(1)
    run = subprocess.run([sys.executable, "-m", "xpnet", "train"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "XPNET_BACKEND": "numpy"}, check=True)

    def untimed(lines: list[str]) -> list[str]:
        # The run's seconds and each epoch's (" - 0.03 s") vary; every other character must match.
        return [re.sub(r"( in| -) [0-9.]+ s$", "", line) for line in lines if line.strip()]

    assert untimed(block.splitlines()) == untimed(run.stdout.splitlines())

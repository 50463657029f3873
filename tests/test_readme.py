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
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    score_line = next(line for line in code.splitlines() if "net.score" in line)
    claimed = re.search(r"# ([0-9.]+)", score_line).group(1)
    assert lines[-2] == claimed  # printed exactly as the README shows it


def test_readme_shows_the_l_layer_examples_real_output():
    text = README.read_text()
    block = re.search(r"Output of `python examples/l_layer_model.py` on a CPU:\n\n```\n(.*?)```", text, re.S).group(1)
    shown = [line for line in block.splitlines() if line.strip() and line.strip() != "..."]
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "l_layer_model.py")], capture_output=True,
                         text=True, env={**os.environ, "XPNET_BACKEND": "numpy"}, timeout=300, check=True)
    actual = run.stdout.splitlines()
    missing = [line for line in shown if line not in actual]
    assert not missing, f"README shows lines the example does not print: {missing}"

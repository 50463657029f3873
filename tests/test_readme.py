"""The README's example runs and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs_as_shown(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("XPNET_BACKEND", "numpy")
    text = README.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    score_line = next(line for line in code.splitlines() if "net.score" in line)
    claimed = float(re.search(r"# ([0-9.]+)", score_line).group(1))
    assert float(lines[-2]) == pytest.approx(claimed, abs=1e-3)

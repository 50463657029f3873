"""DESIGN principle 1: the math is written once. No math module imports a concrete array library, and
importing xpnet imports none at all."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import xpnet

SRC = Path(xpnet.__file__).parent
# Every module of the lecture layer, and the engine's modules that compute on the device. The engine's loop,
# batch sources, dropout masks and checkpoints are not listed: they draw the shuffling order and dropout masks
# on the host with NumPy (DESIGN principle 5) and pick NumPy's or CuPy's `take(out=)` where it exists; their
# device math goes through the listed modules. The in-place step is NumPy/CuPy by definition.
MATH_MODULES = [*sorted(str(p.relative_to(SRC).with_suffix("")) for p in (SRC / "lecture").glob("*.py")),
                "engine/optimizers", "engine/hooks", "engine/metrics", "engine/steps/generic"]
CONCRETE = {"numpy", "cupy", "torch", "jax", "jaxlib", "array_api_strict", "cupyx"}


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", MATH_MODULES)
def test_math_module_imports_no_array_library(module):
    path = SRC / f"{module}.py"
    assert path.is_file(), f"{path} is gone: update MATH_MODULES"
    found = _imported_modules(path) & CONCRETE
    assert not found, f"xpnet/{module}.py imports {found}: use the namespace from namespace_of(...)"


def test_the_scan_would_see_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import numpy as np\n    from torch import nn\n")
    assert _imported_modules(bad) & CONCRETE == {"numpy", "torch"}


def test_import_xpnet_loads_no_array_library():
    code = ("import sys, xpnet; loaded = sorted(m for m in " + repr(sorted(CONCRETE)) +
            " if m in sys.modules); print(','.join(loaded))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import xpnet loaded {out}"

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
# training.py is not listed: it draws the shuffling order and dropout masks on the host with NumPy (DESIGN
# principle 5); its device math goes through network.fused_gradients and the optimizers, which are listed.
MATH_MODULES = ["activations", "losses", "initializers", "functional", "network", "gradcheck", "optimizers"]
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
    found = _imported_modules(SRC / f"{module}.py") & CONCRETE
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

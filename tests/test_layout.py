"""The package's layout: the layers of DESIGN.md, the old import paths, and modules short enough to read.

The layer contracts themselves are import-linter's (``lint-imports`` in CI, contracts in pyproject.toml);
these tests check what it does not: that every documented path of the flat layout still imports, in a fresh
interpreter, and gives the objects of the new one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import xpnet

SRC = Path(xpnet.__file__).parent

# Old path -> (a name it held, the module that holds it now).
OLD_PATHS = {
    "xpnet.functional": ("linear_forward", "xpnet.lecture.functional"),
    "xpnet.activations": ("get_activation", "xpnet.lecture.activations"),
    "xpnet.losses": ("get_loss", "xpnet.lecture.losses"),
    "xpnet.initializers": ("get_initializer", "xpnet.lecture.initializers"),
    "xpnet.gradcheck": ("gradient_check", "xpnet.lecture.gradcheck"),
    "xpnet.network": ("DNN", "xpnet.dnn"),
    "xpnet.optimizers": ("get_optimizer", "xpnet.engine.optimizers"),
    "xpnet.training": ("Trainer", "xpnet.engine.trainer"),
    "xpnet.io": ("save", "xpnet.files"),
    "xpnet.backend": ("get_backend", "xpnet.device.backend"),
    "xpnet.random": ("host_generator", "xpnet.device.random"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_every_old_import_path_still_imports_in_a_fresh_interpreter(old):
    name, home = OLD_PATHS[old]
    code = (f"import importlib, {old}\n"
            f"from {old} import {name}\n"
            f"assert {name} is getattr(importlib.import_module({home!r}), {name!r})\n"
            f"assert {old}.{name} is {name}\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_old_paths_name_everything_they_held():
    from xpnet.network import fused_gradients, training_loss  # the network's math moved to the lecture layer
    from xpnet.training import Callback, EarlyStopping, History, ModelCheckpoint, check_batch_size, dropout_masks

    assert fused_gradients is xpnet.lecture.network.fused_gradients and training_loss is not None
    assert (Callback, EarlyStopping, History, ModelCheckpoint) == (xpnet.Callback, xpnet.EarlyStopping, xpnet.History,
                                                                  xpnet.ModelCheckpoint)
    assert callable(check_batch_size) and callable(dropout_masks)


def test_every_name_in_all_resolves():
    missing = [n for n in xpnet.__all__ if not hasattr(xpnet, n)]
    assert not missing


def test_every_module_is_short_enough_to_read_in_one_sitting():
    # DESIGN: a module does one thing; the rule of thumb is under about 500 lines. 600 is the hard stop.
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"split these modules: {long}"


def test_the_layers_are_subpackages():
    for layer in ("device", "lecture", "engine", "files", "datasets", "estimators", "bench"):
        assert (SRC / layer / "__init__.py").is_file(), layer


def _cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module in an import graph (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles():
    # import-linter's layers contract sees imports across layers, not cycles inside one: grimp's graph does.
    # Imports under `if TYPE_CHECKING:` are annotations only and do not count.
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter: pip install -e '.[dev]'")
    graph = grimp.build_graph("xpnet", exclude_type_checking_imports=True)
    assert _cycles(graph) == []
    graph.add_import(importer="xpnet.lecture.network", imported="xpnet.lecture.functional")
    graph.add_import(importer="xpnet.lecture.functional", imported="xpnet.lecture.network")
    assert _cycles(graph) == [["xpnet.lecture.functional", "xpnet.lecture.network"]]  # the scan would see one

"""The learner notebooks of examples/ run top to bottom (nbclient, a fresh kernel each), and every cell tagged
``check-output`` prints what the committed notebook shows.

To refresh the committed outputs after an intended change: ``python tests/test_notebooks.py`` (it executes each
notebook and writes it back with its new outputs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))
CHECKED = "check-output"


def execute(path: Path) -> object:
    """Run the notebook in a fresh kernel from examples/ (the learner's working directory) on NumPy."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()
    return notebook


def text_of(cell: object) -> str:
    """What a cell printed: its standard output and plain-text results, as one string (standard error holds
    warnings that name the machine's paths)."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream" and output.name == "stdout":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data") and "text/plain" in output.data \
                and "image/png" not in output.data:
            parts.append(output.data["text/plain"] + "\n")
    return "".join(parts)


def quiet_numpy_environment(setenv) -> None:
    """The kernel inherits the environment: XPNET_BACKEND=numpy so a GPU machine runs the committed outputs'
    backend; Agg so no display is needed (the notebooks use %matplotlib inline anyway)."""
    setenv("XPNET_BACKEND", "numpy")
    setenv("MPLBACKEND", "Agg")


def test_the_learner_notebooks_are_found():
    assert {"course_on_gpu.ipynb", "course_step_by_step.ipynb", "sklearn_user.ipynb"} <= set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_prints_what_it_shows(name, monkeypatch):
    quiet_numpy_environment(monkeypatch.setenv)
    committed = nbformat.read(EXAMPLES / name, as_version=4)
    try:
        executed = execute(EXAMPLES / name)
    except nbclient.exceptions.CellExecutionError as exc:  # a cell raised: the learner would see this traceback
        pytest.fail(f"{name}: a cell failed:\n{exc}")
    checked = 0
    for index, (want, got) in enumerate(zip(committed.cells, executed.cells, strict=True)):
        if CHECKED in want.metadata.get("tags", []):
            assert text_of(got) == text_of(want), f"{name}, cell {index}: the output changed"
            assert text_of(want), f"{name}, cell {index} is checked but the committed notebook shows no output"
            checked += 1
    assert checked >= 3, f"{name}: fewer than 3 checked cells"


if __name__ == "__main__":  # refresh the committed outputs
    quiet_numpy_environment(os.environ.__setitem__)
    for name in sys.argv[1:] or NOTEBOOKS:
        nbformat.write(execute(EXAMPLES / name), EXAMPLES / name)
        print("wrote", name)

"""The examples run as a learner would run them and reach the accuracy their docstrings state."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# (script, stated train accuracy, stated test accuracy), as in each script's docstring.
STATED = [("two_layer_model.py", 0.90, 0.90), ("l_layer_model.py", 0.90, 0.88)]


@pytest.mark.parametrize("backend", ["numpy", "torch", "array_api_strict"])
@pytest.mark.parametrize(("script", "train_min", "test_min"), STATED)
def test_example_reaches_its_stated_accuracy(script, train_min, test_min, backend):
    pytest.importorskip("torch" if backend == "torch" else "numpy")
    if backend == "array_api_strict":
        pytest.importorskip("array_api_strict")
    # Both ways a learner picks a backend: the environment variable, and the --backend flag (strict).
    env = {k: v for k, v in os.environ.items() if k != "XPNET_BACKEND"}
    argv = [sys.executable, str(EXAMPLES / script)]
    if backend == "array_api_strict":
        argv += ["--backend", backend]
    else:
        env["XPNET_BACKEND"] = backend
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert backend in out.splitlines()[0]  # the script reports the backend it ran on
    costs = [float(c) for c in re.findall(r"Cost after iteration \d+: ([0-9.]+)", out)]
    assert len(costs) >= 3 and costs[-1] < 0.5 * costs[0]
    train = float(re.search(r"train accuracy: ([0-9.]+)", out).group(1))
    test = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert train >= train_min and test >= test_min, out


@pytest.mark.parametrize("script", [s for s, _, _ in STATED])
def test_example_reports_a_bad_backend_in_one_line(script):
    run = subprocess.run([sys.executable, str(EXAMPLES / script), "--backend", "cupy:7"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.startswith("error: backend 'cupy' cannot be used") and "Traceback" not in run.stderr


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_optimizers_example_adam_beats_gradient_descent(backend):
    if backend == "array_api_strict":
        pytest.importorskip("array_api_strict")
    run = subprocess.run([sys.executable, str(EXAMPLES / "optimizers_compare.py"), "--backend", backend],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    found = re.findall(r"(\w+): final cost ([0-9.]+), train accuracy ([0-9.]+)", run.stdout)
    rows = {name: (float(cost), float(accuracy)) for name, cost, accuracy in found}
    assert set(rows) == {"gd", "momentum", "adam"}
    assert rows["adam"][1] >= 0.95 and rows["adam"][0] < 0.5 * rows["gd"][0], run.stdout


def test_sklearn_example_reaches_its_stated_accuracy():
    env = {**os.environ, "XPNET_BACKEND": "numpy"}
    run = subprocess.run([sys.executable, str(EXAMPLES / "sklearn_digits.py")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert float(re.search(r"test accuracy: ([0-9.]+)", run.stdout).group(1)) >= 0.95, run.stdout
    assert "backend: numpy" in run.stdout

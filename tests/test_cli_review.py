"""The `xpnet` command after a new user's review: ``-`` as an output name, the label column found by its
header name, the messages of a resume, a CSV's options and a model's columns (exit 1, one line)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from xpnet.cli import main

FAST = ["--dataset", "moons", "--epochs", "2"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def runtime_error(argv, capsys) -> str:
    """``argv`` fails at run time with one ``xpnet: error:`` line; returns it."""
    code, out, err = run(argv, capsys)
    assert code == 1, (argv, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xpnet: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("small") / "moons.safetensors"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", *FAST, "-q", "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize("option", ["--out", "--checkpoint", "--history", "--plot"])
def test_dash_is_refused_as_a_train_output(tmp_path, capsys, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    message = runtime_error(["train", *FAST, option, "-"], capsys)
    assert f"({option} -)" in message and "standard output" in message
    assert list(tmp_path.iterdir()) == []  # no file named '-'


def test_dash_is_refused_as_the_export_output(tmp_path, capsys, monkeypatch, small_model):
    monkeypatch.chdir(tmp_path)
    message = runtime_error(["export", small_model, "-"], capsys)
    assert "standard output" in message and "ONNX" in message
    assert list(tmp_path.iterdir()) == []

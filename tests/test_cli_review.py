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


def _write_csv(path: Path, header: list[str], columns: list) -> Path:
    rows = zip(*columns, strict=True)
    path.write_text(",".join(header) + "\n" + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def abc_files(tmp_path_factory):
    """A model trained on ``a,b,c,label`` without --label-column, and files with the label moved, an id column."""
    import numpy as np

    folder = tmp_path_factory.mktemp("abc")
    rng = np.random.default_rng(0)
    a, b, c = (np.round(rng.normal(size=120), 4) for _ in range(3))
    label = (a + b > 0).astype(int)
    ids = np.arange(120)
    files = {"last": _write_csv(folder / "last.csv", ["a", "b", "c", "label"], [a, b, c, label]),
             "first": _write_csv(folder / "first.csv", ["label", "a", "b", "c"], [label, a, b, c]),
             "idcol": _write_csv(folder / "idcol.csv", ["id", "a", "b", "c"], [ids, a, b, c]),
             "other": _write_csv(folder / "other.csv", ["id", "a", "b", "x"], [ids, a, b, c]),
             "model": folder / "m.safetensors"}
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--dataset", str(files["last"]), "--epochs", "2", "-q", "--out",
                     str(files["model"])]) == 0
    return files


def test_evaluate_finds_the_label_by_its_header_name(abc_files, capsys):
    import xpnet

    assert xpnet.load(abc_files["model"]).xpnet_data_["label_column"] == "label"  # recorded without --label-column
    code, out, err = run(["evaluate", abc_files["model"], abc_files["first"]], capsys)
    assert code == 0, err
    assert out.startswith("accuracy: ") and "all 120 samples of first.csv" in out


def test_predict_matches_the_columns_by_the_recorded_feature_names(abc_files, capsys):
    code, by_name, err = run(["predict", abc_files["model"], abc_files["idcol"]], capsys)
    assert code == 0, err
    code, expected, err = run(["predict", abc_files["model"], abc_files["last"]], capsys)
    assert code == 0, err
    assert by_name == expected  # the id column dropped, a,b,c read as features
    message = runtime_error(["predict", abc_files["model"], abc_files["other"]], capsys)
    assert "the column 'x' was read as the label" in message and "missing ['c']" in message


def test_resume_with_other_early_stopping_names_the_flags(tmp_path, capsys):
    checkpoint = tmp_path / "run.ckpt"
    code, _out, err = run(["train", *FAST, "-q", "--patience", "0", "--checkpoint", checkpoint], capsys)
    assert code == 0, err
    message = runtime_error(["train", "--dataset", "moons", "--epochs", "4", "-q", "--checkpoint", checkpoint,
                             "--resume"], capsys)
    assert "callbacks" in message and "--patience" in message


def test_dataset_messages_name_the_command_flags(tmp_path, capsys):
    from xpnet import datasets
    from xpnet.errors import DatasetError

    semi = tmp_path / "semi.csv"
    semi.write_text("a;b;c\n1;2;0\n3;4;1\n5;6;0\n7;8;1\n")
    message = runtime_error(["train", "--dataset", semi, "--delimiter", ",", "--epochs", "1"], capsys)
    assert "pass --delimiter CHAR" in message and "delimiter=" not in message
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,x,0\n3,4,1\n")
    message = runtime_error(["train", "--dataset", bad, "--epochs", "1"], capsys)
    assert "--label-column" in message and "--header" in message and "label_column" not in message
    with pytest.raises(DatasetError, match=r"pass delimiter=\.\.\."):  # Python callers keep the keyword
        datasets.load(semi, delimiter=",")


def test_train_and_predict_take_a_tsv(tmp_path, capsys):
    rows = ["a\tb\tlabel"] + [f"{i / 10}\t{(i % 3) / 3}\t{i % 2}" for i in range(40)]
    data = tmp_path / "d.tsv"
    data.write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.safetensors"
    code, out, err = run(["train", "--dataset", data, "--epochs", "2", "-q", "--out", model], capsys)
    assert code == 0, err
    code, out, err = run(["predict", model, data], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "prediction,p_0,p_1" and len(out.splitlines()) == 41


def test_resume_without_a_checkpoint_says_it_starts_afresh(tmp_path, capsys):
    checkpoint = tmp_path / "run.ckpt"
    code, out, err = run(["train", *FAST, "--checkpoint", checkpoint, "--resume"], capsys)
    assert code == 0, err
    assert f"no checkpoint {checkpoint} to resume from yet: training from the start" in out
    assert checkpoint.exists()
    code, out, err = run(["train", *FAST, "--checkpoint", checkpoint, "--resume"], capsys)
    assert code == 0, err
    assert "no checkpoint" not in out and "resumed from checkpoint" in out


def test_export_refuses_an_output_that_is_not_onnx(tmp_path, capsys, small_model):
    message = runtime_error(["export", small_model, tmp_path / "out.txt"], capsys)
    assert ".onnx" in message and "out.txt" in message
    assert list(tmp_path.iterdir()) == []

"""The `xpnet` command: train, evaluate, predict, backends; exit codes 0 / 2 (usage) / 1 (runtime, one line).

Most tests call ``xpnet.cli.main`` in-process for speed; two run ``python -m xpnet`` to prove the real entry
point and the promise of no traceback. Training runs are short (``--epochs`` small, moons or tiny files),
except the acceptance tests, which train on the default dataset (digits) with the default settings.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xpnet
from xpnet import datasets
from xpnet.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = ["--dataset", "moons", "--epochs", "2"]


# ------------------------------------------------------------------------------------------------ helpers
def run(argv, capsys):
    """``main(argv)`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(argv, capsys) -> str:
    """``argv`` is refused by argparse: exit 2, nothing on stdout; returns stderr."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert info.value.code == 2, (argv, out, err)
    assert out == ""
    assert "usage: xpnet" in err
    return err


def runtime_error(argv, capsys) -> tuple[str, str]:
    """``argv`` fails at run time: exit 1, exactly one stderr line ``xpnet: error: ...``, no traceback.
    Returns (the error line, stdout)."""
    code, out, err = run(argv, capsys)
    assert code == 1, (argv, out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("xpnet: error: "), err
    return lines[0], out


def test_score(out: str, name: str = "accuracy") -> float:
    """The value of the ``test accuracy: X`` (or ``test R^2: X``) line of ``out``, which must have exactly one."""
    found = re.findall(rf"^test {re.escape(name)}: (-?\d+\.\d{{4}})$", out, flags=re.M)
    assert len(found) == 1, out
    return float(found[0])


test_score.__test__ = False  # a helper, not a test


def write_csv(path: Path, rows, header=None) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if header is not None:
            writer.writerow(header)
        for row in rows:
            writer.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])
    return path


def read_predictions(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def blobs(n_per_class: int = 20, seed: int = 0):
    """Three well separated 2-D classes 0, 1, 2."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    X = np.concatenate([c + 0.5 * rng.standard_normal((n_per_class, 2)) for c in centers])
    y = np.repeat(np.arange(3), n_per_class)
    return X, y


@pytest.fixture(scope="module")
def moons_model(tmp_path_factory) -> Path:
    """A classifier (2 features, classes 0/1) trained by ``xpnet train`` on moons."""
    path = tmp_path_factory.mktemp("moons") / "moons.safetensors"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", *FAST[:2], "--epochs", "20", "-q", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> Path:
    """A classifier that takes 64 features."""
    folder = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 64))
    np.savez(folder / "wide.npz", X=X, y=(X[:, 0] > 0).astype(np.int64))
    path = folder / "wide.safetensors"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--dataset", str(folder / "wide.npz"), "--epochs", "1", "-q", "--out", str(path)]) == 0
    return path


@pytest.fixture
def one_torch_thread():
    """torch on a busy CPU is many times slower with several threads; one keeps the test quick."""
    torch = pytest.importorskip("torch", reason="torch is not installed: the torch backend cannot be tested")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -------------------------------------------------------------------------------------- backends, version
def test_backends_prints_the_report(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("backend")
    assert any(line.startswith("numpy ") and " yes " in line for line in out.splitlines())
    assert "auto -> " in out


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["frobnicate"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "usage: xpnet" in capsys.readouterr().err


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "xpnet", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("xpnet ")


def test_version_in_process(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"xpnet {xpnet.__version__}"


# -------------------------------------------------------------------------------------------- acceptance
def test_acceptance_train_with_no_arguments(capsys):
    """The issue's "done when": ``xpnet train`` alone reaches a test accuracy of at least 0.95."""
    code, out, err = run(["train"], capsys)
    assert code == 0, err
    assert out.startswith("xpnet train: digits (1797 samples, 64 features, 10 classes)")
    assert test_score(out) >= 0.95


def test_acceptance_train_on_torch(capsys, one_torch_thread):
    code, out, err = run(["train", "--backend", "torch", "-q"], capsys)
    assert code == 0, err
    assert out.startswith("test accuracy: ") and len(out.splitlines()) == 1
    assert test_score(out) >= 0.95


def test_acceptance_train_on_array_api_strict(capsys):
    pytest.importorskip("array_api_strict",
                        reason="array_api_strict is not installed: the array_api_strict backend cannot be tested")
    code, out, err = run(["train", "--backend", "array_api_strict", "-q"], capsys)
    assert code == 0, err
    assert out.startswith("test accuracy: ") and len(out.splitlines()) == 1
    assert test_score(out) >= 0.95


# ----------------------------------------------------------------------------------- train: outputs
def test_quiet_prints_only_the_test_score(capsys):
    code, loud, _ = run(["train", *FAST], capsys)
    assert code == 0
    assert len(loud.splitlines()) >= 3  # the description, the network and the summary come first
    code, quiet, err = run(["train", *FAST, "--quiet"], capsys)
    assert code == 0
    assert quiet.splitlines() == [loud.splitlines()[-1]]
    assert quiet.startswith("test accuracy: ")
    assert err == ""


def test_out_writes_a_model_that_loads_and_scores(tmp_path, capsys):
    path = tmp_path / "model.safetensors"
    code, out, _ = run(["train", *FAST, "--seed", "1", "--out", path], capsys)
    assert code == 0
    assert f"saved model to {path}" in out
    printed = test_score(out)
    model = xpnet.load(path)
    assert isinstance(model, xpnet.DNNClassifier)
    assert model.n_features_in_ == 2
    assert model.classes_.tolist() == [0, 1]
    ds = datasets.load("moons", seed=1)
    _, X_test, _, y_test = datasets.train_test_split(ds.X, ds.y, test_size=0.2, seed=1)
    assert round(model.score(X_test, y_test), 4) == printed
    code, out, err = run(["evaluate", path, "moons", "--seed", "1"], capsys)
    assert code == 0, err
    assert re.fullmatch(r"accuracy: \d\.\d{4} on all 400 samples of moons\n", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # no temporary file left


def test_quiet_with_out_and_plot_still_prints_only_the_score(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: --plot cannot be tested")
    code, out, _ = run(["train", *FAST, "-q", "--out", tmp_path / "m.safetensors", "--plot", tmp_path / "p.png"],
                       capsys)
    assert code == 0
    assert out.startswith("test accuracy: ") and len(out.splitlines()) == 1
    assert (tmp_path / "m.safetensors").is_file() and (tmp_path / "p.png").is_file()


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: --plot cannot be tested")
    path = tmp_path / "curves.png"
    code, out, _ = run(["train", *FAST, "--plot", path], capsys)
    assert code == 0
    assert f"saved plot to {path}" in out
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]


def test_plot_without_matplotlib_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    message, out = runtime_error(["train", *FAST, "--plot", tmp_path / "p.png", "--out", tmp_path / "m.safetensors"],
                                 capsys)
    assert "xpnet[plot]" in message and "matplotlib" in message
    assert "test accuracy" not in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_output_into_a_missing_directory_fails_before_training(tmp_path, capsys, option):
    target = tmp_path / "no" / "such" / "dir" / ("m.safetensors" if option == "--out" else "p.png")
    message, out = runtime_error(["train", *FAST, option, target], capsys)
    assert "does not exist" in message and str(tmp_path / "no" / "such" / "dir") in message
    assert out == ""  # not even the description: nothing was loaded or trained
    assert "test accuracy" not in out


def test_out_naming_a_directory_fails_before_training(tmp_path, capsys):
    message, out = runtime_error(["train", *FAST, "--out", tmp_path], capsys)
    assert "directory" in message
    assert "test accuracy" not in out


# ----------------------------------------------------------------------------------- train: options
def _network_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("network ")]
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.parametrize(("options", "expected"), [
    (["--layers", "8,4"], "network 2-8-4-1 relu -> sigmoid"),
    (["--layers", " 5 "], "network 2-5-1 "),
    (["--activation", "relu"], " relu -> sigmoid"),
    (["--activation", "leaky_relu"], " leaky_relu -> sigmoid"),
    (["--activation", "tanh"], " tanh -> sigmoid"),
    (["--activation", "sigmoid"], " sigmoid -> sigmoid"),
    (["--activation", "linear"], " linear -> sigmoid"),
    (["--optimizer", "adam"], ", adam (solver lecture_adam) lr 0.003,"),
    (["--optimizer", "momentum"], ", momentum lr 0.003,"),
    (["--optimizer", "rmsprop"], ", rmsprop lr 0.003,"),
    (["--optimizer", "gd"], ", gd lr 0.003,"),
    (["--lr", "0.05"], " lr 0.05, "),
    (["--batch-size", "16"], ", batch 16, "),
    (["--batch-size", "full"], ", batch full, "),
    (["--batch-size", "FULL"], ", batch full, "),
    (["--batch-size", "auto"], ", batch auto, "),
    (["--dtype", "float64"], ", float64 on "),
    (["--dtype", "float32", "--backend", "numpy"], ", float32 on numpy"),
])
def test_options_reach_the_network(capsys, options, expected):
    code, out, err = run(["train", *FAST, *options], capsys)
    assert code == 0, err
    assert expected in _network_line(out)
    assert 0.0 <= test_score(out) <= 1.0


@pytest.mark.parametrize("options", [
    ["--schedule", "constant"], ["--schedule", "inverse_time"], ["--schedule", "step"],
    ["--schedule", "exponential"], ["--schedule", "cosine"],
    ["--dropout", "0.3"], ["--dropout", "0"], ["--l2", "0"], ["--l2", "0.01"], ["--tol", "0"], ["--tol", "0.5"],
    ["--no-standardize"], ["--seed", "7"], ["--patience", "1"],
])
def test_other_options_are_accepted(capsys, options):
    code, out, err = run(["train", *FAST, "-q", *options], capsys)
    assert code == 0, err
    assert 0.0 <= test_score(out) <= 1.0


def test_val_fraction_zero_and_patience_zero_train_every_epoch(capsys):
    code, out, err = run(["train", "--dataset", "moons", "--epochs", "4", "--val-fraction", "0", "--patience", "0"],
                         capsys)
    assert code == 0, err
    summary = next(line for line in out.splitlines() if line.startswith("epochs "))
    assert summary.startswith("epochs 4, loss ")
    assert "early stop" not in summary and "validation" not in summary
    code, out, err = run(["train", "--dataset", "moons", "--epochs", "4"], capsys)
    assert code == 0, err
    assert "validation accuracy" in out  # the default does hold out a validation set


def test_test_fraction_sets_the_split(capsys):
    code, out, _ = run(["train", *FAST, "--test-fraction", "0.25"], capsys)
    assert code == 0
    assert out.splitlines()[0] == ("xpnet train: moons (400 samples, 2 features, 2 classes); "
                                   "train 270 / validation 30 / test 100")


def test_seed_makes_runs_repeatable(capsys):
    outs = []
    for _ in range(2):
        code, out, _ = run(["train", *FAST, "-q", "--seed", "5", "--dropout", "0.2"], capsys)
        assert code == 0
        outs.append(out)
    assert outs[0] == outs[1]


def _label_first_rows(n: int = 60):
    X, y = blobs(n // 3)
    return [[int(label), a, b] for label, (a, b) in zip(y, X, strict=True)]


def test_label_column_index_for_a_csv_with_the_label_first(tmp_path, capsys):
    path = write_csv(tmp_path / "first.csv", _label_first_rows())
    code, out, err = run(["train", "--dataset", path, "--label-column", "0", "--epochs", "30"], capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("xpnet train: first.csv (60 samples, 2 features, 3 classes)")
    assert test_score(out) >= 0.9
    # Without the option the last column (a float feature) would be the target: a regression.
    code, out, _ = run(["train", "--dataset", path, "--epochs", "1", "-q"], capsys)
    assert code == 0 and out.startswith("test R^2: ")


def test_label_column_name(tmp_path, capsys):
    rows = [[a, label, b] for label, a, b in _label_first_rows()]
    path = write_csv(tmp_path / "named.csv", rows, header=["x1", "label", "x2"])
    code, out, err = run(["train", "--dataset", path, "--label-column", "label", "--epochs", "30"], capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("xpnet train: named.csv (60 samples, 2 features, 3 classes)")
    assert test_score(out) >= 0.9
    message, _ = runtime_error(["train", "--dataset", path, "--label-column", "nope"], capsys)
    assert "'nope'" in message and "'label'" in message


def test_label_column_is_refused_for_a_bundled_dataset(capsys):
    message, _ = runtime_error(["train", "--dataset", "digits", "--label-column", "0"], capsys)
    assert "--label-column 0" in message and "digits" in message


def test_label_column_is_refused_for_a_generated_dataset(capsys):
    message, _ = runtime_error(["train", *FAST, "--label-column", "0"], capsys)
    assert "--label-column 0" in message


def test_string_labels_train_and_predict_with_named_columns(tmp_path, capsys):
    X, y = blobs(15)
    names = np.array(["cat", "dog", "eel"])[y]
    path = write_csv(tmp_path / "pets.csv", [[a, b, n] for (a, b), n in zip(X, names, strict=True)],
                     header=["x1", "x2", "kind"])
    model = tmp_path / "pets.safetensors"
    code, out, err = run(["train", "--dataset", path, "--epochs", "30", "-q", "--out", model], capsys)
    assert code == 0, err
    assert test_score(out) >= 0.9
    code, out, err = run(["predict", model, path], capsys)
    assert code == 0, err
    header, rows = read_predictions(out)
    assert header == ["prediction", "p_cat", "p_dog", "p_eel"]
    assert len(rows) == 45
    assert {r[0] for r in rows} <= {"cat", "dog", "eel"}
    code, out, err = run(["evaluate", model, path], capsys)
    assert code == 0, err
    assert out.startswith("accuracy: ")


# --------------------------------------------------------------------------------------------- usage errors
@pytest.mark.parametrize(("argv", "fragment"), [
    (["train", "--layers", "3,x"], "invalid layer list '3,x'"),
    (["train", "--layers", "0"], "invalid layer list '0'"),
    (["train", "--layers", "4,-2"], "invalid layer list '4,-2'"),
    (["train", "--layers="], "invalid layer list ''"),
    (["train", "--layers", "3,,4"], "invalid layer list '3,,4'"),
    (["train", "--lr=-0.1"], "argument --lr"),
    (["train", "--lr", "0"], "argument --lr"),
    (["train", "--lr", "nan"], "argument --lr"),
    (["train", "--lr", "fast"], "argument --lr"),
    (["train", "--dropout", "1.0"], "argument --dropout"),
    (["train", "--dropout=-0.1"], "argument --dropout"),
    (["train", "--epochs", "0"], "argument --epochs"),
    (["train", "--epochs", "1.5"], "argument --epochs"),
    (["train", "--batch-size", "0"], "argument --batch-size"),
    (["train", "--batch-size", "abc"], "argument --batch-size"),
    (["train", "--test-fraction", "0"], "argument --test-fraction"),
    (["train", "--test-fraction", "1"], "argument --test-fraction"),
    (["train", "--val-fraction", "1"], "argument --val-fraction"),
    (["train", "--seed=-1"], "argument --seed"),
    (["train", "--l2=-1"], "argument --l2"),
    (["train", "--activation", "softplus"], "argument --activation: invalid choice: 'softplus'"),
    (["train", "--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
    (["train", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["train", "--schedule", "adaptive"], "argument --schedule: invalid choice: 'adaptive'"),
    (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["evaluate"], "the following arguments are required: model, data"),
    (["evaluate", "m.safetensors"], "the following arguments are required: data"),
    (["evaluate", "m.safetensors", "moons", "--split", "train"], "argument --split: invalid choice"),
    (["predict"], "the following arguments are required: model, data"),
    (["predict", "m.safetensors"], "the following arguments are required: data"),
])
def test_bad_option_values_are_usage_errors(capsys, argv, fragment):
    err = usage_error(argv, capsys)
    assert fragment in err
    if "unrecognized" not in fragment:  # argparse reports unknown options with the top-level usage
        assert f"usage: xpnet {argv[0]}" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------- runtime errors
def test_unknown_dataset_lists_the_valid_names(capsys):
    message, out = runtime_error(["train", "--dataset", "mnist"], capsys)
    assert "'mnist'" in message
    for name in datasets.DATASETS:
        assert name in message
    assert out == ""


def test_missing_data_files(tmp_path, capsys, moons_model):
    for name in ("absent.csv", "absent.npz"):
        message, _ = runtime_error(["train", "--dataset", tmp_path / name], capsys)
        assert "no such file" in message and name in message
        message, _ = runtime_error(["evaluate", moons_model, tmp_path / name], capsys)
        assert "no such file" in message and name in message
        message, _ = runtime_error(["predict", moons_model, tmp_path / name], capsys)
        assert "no such file" in message and name in message


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_missing_model_file(tmp_path, capsys, command):
    message, out = runtime_error([command, tmp_path / "absent.safetensors", "moons"], capsys)
    assert "absent.safetensors" in message and "no such" in message
    assert out == ""


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_corrupt_model_file(tmp_path, capsys, command):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    message, out = runtime_error([command, path, "moons"], capsys)
    assert "junk.safetensors" in message
    assert out == ""


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_bare_network_file_is_refused_clearly(tmp_path, capsys, command):
    path = tmp_path / "bare.safetensors"
    xpnet.save(xpnet.DNN([2, 3, 1]), path)
    message, out = runtime_error([command, path, "moons"], capsys)
    assert "bare network" in message and "DNN" in message
    assert out == ""


@pytest.mark.parametrize(("content", "fragment"), [
    ("1,2,0\n3,4\n5,6,1\n", "line 2 has 2 fields"),
    ("1,2,0\n3,x,1\n5,6,1\n", "'x', not a number"),
    ("", "empty"),
])
def test_unreadable_csv(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    message, out = runtime_error(["train", "--dataset", path], capsys)
    assert fragment in message and "bad.csv" in message
    assert out == ""


def test_npz_without_X(tmp_path, capsys, moons_model):
    path = tmp_path / "noX.npz"
    np.savez(path, Z=np.zeros((4, 2)), y=np.zeros(4))
    message, _ = runtime_error(["train", "--dataset", path], capsys)
    assert "'X'" in message
    message, _ = runtime_error(["evaluate", moons_model, path], capsys)
    assert "'X'" in message
    message, _ = runtime_error(["predict", moons_model, path], capsys)
    assert "'X'" in message


def test_corrupt_npz(tmp_path, capsys, moons_model):
    path = tmp_path / "junk.npz"
    path.write_bytes(np.random.default_rng(1).bytes(200))
    runtime_error(["train", "--dataset", path], capsys)
    runtime_error(["predict", moons_model, path], capsys)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_model_features_must_match_the_data(capsys, wide_model, command):
    message, out = runtime_error([command, wide_model, "moons"], capsys)
    assert "2 features" in message and "64" in message
    assert out == ""


def test_labels_the_model_never_saw(tmp_path, capsys, moons_model):
    X, y = blobs(5)  # classes 0, 1 and 2; the model knows 0 and 1
    path = tmp_path / "three.npz"
    np.savez(path, X=X, y=y)
    message, out = runtime_error(["evaluate", moons_model, path], capsys)
    assert "not trained on" in message and "[2]" in message
    assert out == ""
    names = tmp_path / "names.csv"
    write_csv(names, [[a, b, "cat"] for a, b in X])
    message, _ = runtime_error(["evaluate", moons_model, names], capsys)
    assert "not trained on" in message and "cat" in message


def test_non_integral_labels_are_not_truncated_into_known_classes(tmp_path, capsys, moons_model):
    ds = datasets.load("moons")
    path = tmp_path / "halves.npz"
    np.savez(path, X=ds.X, y=ds.y + 0.5)
    message, _ = runtime_error(["evaluate", moons_model, path], capsys)
    assert "not trained on" in message


def test_unknown_backend_is_a_runtime_error(capsys):
    message, _ = runtime_error(["train", *FAST, "--backend", "bogus"], capsys)
    assert "bogus" in message and "numpy" in message


def test_no_traceback_from_the_real_command(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 3 + np.random.default_rng(2).bytes(100))
    proc = subprocess.run([sys.executable, "-m", "xpnet", "evaluate", str(junk), "moons"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xpnet: error: ") and "junk.safetensors" in lines[0]


# --------------------------------------------------------------------------------------------- regression
def test_float_labels_train_a_regressor(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 3))
    target = 2.0 * X[:, 0] - X[:, 1] + 0.05 * rng.standard_normal(120)
    path = write_csv(tmp_path / "reg.csv", [[*row, t] for row, t in zip(X, target, strict=True)],
                     header=["a", "b", "c", "target"])
    model = tmp_path / "reg.safetensors"
    code, out, err = run(["train", "--dataset", path, "--epochs", "40", "--out", model], capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("xpnet train: reg.csv (120 samples, 3 features, regression)")
    assert " -> linear" in _network_line(out)
    r2 = test_score(out, "R^2")
    assert r2 > 0.5
    assert isinstance(xpnet.load(model), xpnet.DNNRegressor)
    code, out, err = run(["evaluate", model, path, "--split", "test"], capsys)
    assert code == 0, err
    assert out.startswith(f"R^2: {r2:.4f}, mse: ")
    code, out, err = run(["predict", model, path], capsys)
    assert code == 0, err
    header, rows = read_predictions(out)
    assert header == ["prediction"] and len(rows) == 120
    message, _ = runtime_error(["evaluate", model, write_csv(tmp_path / "s.csv", [[1.0, 2.0, 3.0, "x"]] * 4)],
                               capsys)
    assert "non-numeric labels" in message


# ---------------------------------------------------------------------------------------------- evaluate
def test_evaluate_test_split_matches_the_train_command(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    common = ["--seed", "3", "--test-fraction", "0.3"]
    code, out, _ = run(["train", *FAST[:2], "--epochs", "5", "-q", "--out", model, *common], capsys)
    assert code == 0
    trained = test_score(out)
    code, out, err = run(["evaluate", model, "moons", "--split", "test", *common], capsys)
    assert code == 0, err
    assert out == (f"accuracy: {trained:.4f} on the test split (120 samples, test fraction 0.3, seed 3) "
                   f"of moons\n")
    code, out, err = run(["evaluate", model, "moons", "--split", "all", "--seed", "3"], capsys)
    assert code == 0, err
    ds = datasets.load("moons", seed=3)
    expected = xpnet.load(model).score(ds.X, ds.y)
    assert out == f"accuracy: {expected:.4f} on all 400 samples of moons\n"


def test_evaluate_with_a_label_column(tmp_path, capsys):
    path = write_csv(tmp_path / "first.csv", _label_first_rows())
    model = tmp_path / "m.safetensors"
    code, out, _ = run(["train", "--dataset", path, "--label-column", "0", "--epochs", "30", "-q", "--out", model],
                       capsys)
    assert code == 0
    trained = test_score(out)
    code, out, err = run(["evaluate", model, path, "--label-column", "0", "--split", "test"], capsys)
    assert code == 0, err
    assert out.startswith(f"accuracy: {trained:.4f} on the test split (12 samples, ")


# ------------------------------------------------------------------------------------------------ predict
def _check_prediction_table(text: str, model_path: Path, X) -> None:
    model = xpnet.load(model_path)
    header, rows = read_predictions(text)
    assert header == ["prediction", *(f"p_{c}" for c in model.classes_)]
    assert len(rows) == len(X)
    proba = np.array([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert [r[0] for r in rows] == [str(c) for c in model.classes_[proba.argmax(axis=1)]]
    assert [r[0] for r in rows] == [str(c) for c in model.predict(X)]


def test_predict_to_stdout_and_to_a_file(tmp_path, capsys, moons_model):
    code, out, err = run(["predict", moons_model, "moons"], capsys)
    assert code == 0, err
    _check_prediction_table(out, moons_model, datasets.load("moons").X)
    target = tmp_path / "pred.csv"
    code, printed, err = run(["predict", moons_model, "moons", "--out", target], capsys)
    assert code == 0, err
    assert printed == f"wrote 400 predictions to {target}\n"
    assert target.read_text() == out
    # Overwriting keeps the directory clean too: the temporary file is renamed into place.
    code, _, _ = run(["predict", moons_model, "moons", "--out", target], capsys)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]


def test_predict_into_a_missing_directory(tmp_path, capsys, moons_model):
    message, out = runtime_error(["predict", moons_model, "moons", "--out", tmp_path / "nope" / "p.csv"], capsys)
    assert "does not exist" in message
    assert out == "" and not (tmp_path / "nope").exists()


def test_predict_from_csv_and_npz_files(tmp_path, capsys, moons_model):
    X = datasets.load("moons", seed=9).X[:25]
    y = (X[:, 0] > 0.5).astype(int)
    sources = {
        "plain.csv": write_csv(tmp_path / "plain.csv", X),
        "header.csv": write_csv(tmp_path / "header.csv", X, header=["x1", "x2"]),
        "labelled.csv": write_csv(tmp_path / "labelled.csv", [[a, b, int(t)] for (a, b), t in zip(X, y, strict=True)]),
        "labelled_header.csv": write_csv(tmp_path / "labelled_header.csv",
                                         [[a, b, int(t)] for (a, b), t in zip(X, y, strict=True)],
                                         header=["x1", "x2", "label"]),
        "only_x.npz": tmp_path / "only_x.npz",
        "with_y.npz": tmp_path / "with_y.npz",
    }
    np.savez(sources["only_x.npz"], X=X)
    np.savez(sources["with_y.npz"], X=X, y=y)
    tables = {}
    for name, path in sources.items():
        code, out, err = run(["predict", moons_model, path], capsys)
        assert code == 0, (name, err)
        _check_prediction_table(out, moons_model, X)
        tables[name] = out
    assert len(set(tables.values())) == 1  # the same features give the same table, whatever the file


def test_predict_csv_with_the_wrong_column_count(tmp_path, capsys, moons_model):
    path = write_csv(tmp_path / "four.csv", np.ones((5, 4)))
    message, out = runtime_error(["predict", moons_model, path], capsys)
    assert "4 columns" in message and "2 features" in message
    assert out == ""
    path = write_csv(tmp_path / "one.csv", np.ones((5, 1)))
    runtime_error(["predict", moons_model, path], capsys)


def test_predict_csv_with_a_bad_value(tmp_path, capsys, moons_model):
    path = tmp_path / "bad.csv"
    path.write_text("x1,x2\n1,2\n3,oops\n")
    message, out = runtime_error(["predict", moons_model, path], capsys)
    assert "line 3, column 2 ('x2')" in message and "oops" in message
    assert out == ""


def test_predict_csv_error_names_the_right_row_without_a_header(tmp_path, capsys, moons_model):
    path = tmp_path / "bad.csv"
    path.write_text("1,2\n3,oops\n5,6\n")
    message, _ = runtime_error(["predict", moons_model, path], capsys)
    assert "line 2, column 2 " in message


def test_predict_csv_first_row_with_a_missing_value_is_not_dropped(tmp_path, capsys, moons_model):
    path = tmp_path / "gap.csv"
    path.write_text("0.5,\n1,2\n3,4\n")
    code, out, _ = run(["predict", moons_model, path], capsys)
    # Either refused (a missing value), or one prediction per row: never a silently lost sample.
    assert code == 1, f"exit {code}: {len(read_predictions(out)[1])} predictions for 3 rows"


def test_task_regression_for_integer_valued_targets(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = np.round(10 * X[:, 0] + 50).astype(int)  # integral targets, which auto reads as 40-odd classes
    path = write_csv(tmp_path / "prices.csv", np.column_stack([X, y]).tolist())
    code, out, _ = run(["train", "--dataset", path, "--task", "regression", "-q"], capsys)
    assert code == 0 and test_score(out, "R^2") > 0.9  # targets standardized, predictions in original units
    code, out, _ = run(["train", "--dataset", path, "-q", "--epochs", "2", "--patience", "0"], capsys)
    assert code == 0 and "test accuracy:" in out


def test_task_regression_refuses_text_labels(tmp_path, capsys):
    path = write_csv(tmp_path / "names.csv", [[0.1, 0.2, "cat"], [0.3, 0.1, "dog"]] * 10)
    message, _ = runtime_error(["train", "--dataset", path, "--task", "regression"], capsys)
    assert "non-numeric labels" in message


def test_patience_zero_prints_no_convergence_note(capsys):
    code, out, _ = run(["train", "--dataset", "moons", "--epochs", "3", "--patience", "0"], capsys)
    assert code == 0 and "note:" not in out and "epochs 3," in out


def test_predict_label_column_anywhere(tmp_path, capsys, moons_model):
    X, _ = xpnet.datasets.make_moons(6, seed=5)
    plain = write_csv(tmp_path / "plain.csv", X.tolist())
    first = write_csv(tmp_path / "first.csv", [[9, *row] for row in X.tolist()], header=["label", "a", "b"])
    code, expected, _ = run(["predict", moons_model, plain], capsys)
    assert code == 0
    code, out, _ = run(["predict", moons_model, first, "--label-column", "label"], capsys)
    assert code == 0 and out == expected
    code, out, _ = run(["predict", moons_model, first, "--label-column", "0"], capsys)
    assert code == 0 and out == expected
    message, _ = runtime_error(["predict", moons_model, plain, "--label-column", "0"], capsys)
    assert "no label column" in message


def test_evaluate_split_test_reads_the_split_from_the_model_file(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    code, out, _ = run(["train", *FAST, "--seed", "3", "--test-fraction", "0.3", "--out", path, "-q"], capsys)
    assert code == 0
    trained = test_score(out)
    code, out, _ = run(["evaluate", path, "moons", "--split", "test"], capsys)
    assert code == 0 and "test fraction 0.3, seed 3" in out
    assert float(re.search(r"accuracy: ([0-9.]+)", out).group(1)) == trained


def test_decay_options_build_the_schedule_the_model_keeps(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    code, _, _ = run(["train", *FAST, "--schedule", "step", "--decay-rate", "0.25", "--decay-steps", "1",
                      "--out", path, "-q"], capsys)
    assert code == 0
    model = xpnet.load(path, backend="numpy")
    schedule = model.get_params()["learning_rate"]
    assert (schedule.name, schedule.decay_rate, schedule.decay_steps) == ("step", 0.25, 1)
    assert model.history_["lr"] == [0.003, 0.003 * 0.25]


def test_warnings_are_one_line(tmp_path, capsys, moons_model):
    pytest.importorskip("array_api_strict")
    path = tmp_path / "m64.safetensors"
    code, _, _ = run(["train", *FAST, "--dtype", "float64", "--out", path, "-q"], capsys)
    assert code == 0
    code, out, err = run(["evaluate", path, "moons", "--backend", "array_api_strict:no_float64"], capsys)
    assert code == 0 and "accuracy:" in out
    # Besides the thread count evaluate reports there, stderr holds only one-line warnings.
    lines = [line for line in err.splitlines() if not line.startswith("threads: ")]
    assert lines and lines == [line for line in lines if line.startswith("xpnet: warning: ")]
    assert "loaded in float32" in err


def test_seed_out_of_range_is_a_usage_error(capsys):
    usage_error(["train", "--seed", str(2**32)], capsys)


def test_patience_zero_keeps_the_validation_curve_and_early_stop_reports_the_kept_epoch(capsys):
    code, out, _ = run(["train", *FAST, "--patience", "0"], capsys)
    assert code == 0 and "validation accuracy" in out and "best epoch" not in out
    code, out, _ = run(["train", "--dataset", "moons", "--epochs", "60", "--patience", "2"], capsys)
    found = re.search(r"epochs (\d+) \((early stop; )?best epoch (\d+) kept\)", out)
    assert code == 0 and found and int(found.group(3)) <= int(found.group(1))

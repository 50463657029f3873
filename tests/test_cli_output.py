"""The command's output for people and machines: one line per epoch off a terminal, an 80-column bar on one
(a pseudo-terminal), the dataset and network lines first, --history and --plot files by extension, ``xpnet info``
and ``--threads``."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xpnet
from xpnet.cli import main
from xpnet.engine.callbacks import format_value

SRC = str(Path(xpnet.__file__).resolve().parent.parent)
EPOCH_LINE = re.compile(r"^epoch +(\d+)/(\d+) - loss \d+\.\d{4} - accuracy \d\.\d{4} - val_loss \d+\.\d{4} - "
                        r"val_accuracy \d\.\d{4} - lr 0\.003 - \d+\.\d\d s$")
FAST = ["--dataset", "moons", "--layers", "8", "--batch-size", "512"]


def test_one_line_per_epoch_off_a_terminal(capsys):
    assert main(["train", *FAST, "--epochs", "4", "--patience", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    epochs = [line for line in out if line.startswith("epoch ")]
    assert [EPOCH_LINE.match(line).group(1) for line in epochs] == ["1", "2", "3", "4"], out
    # The dataset, threads and network lines come before the first epoch, the summary after the last.
    first = out.index(epochs[0])
    assert out[0].startswith("xpnet train: moons") and out[1].startswith("threads: ")
    assert out[2].startswith("network 2-8-1 relu -> sigmoid") and first == 3
    assert out[first + 4].startswith("epochs 4") and out[-1].startswith("test accuracy: ")


def test_log_every_keeps_the_first_and_the_last_epoch(capsys):
    assert main(["train", *FAST, "--epochs", "7", "--patience", "0", "--log-every", "3"]) == 0
    epochs = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert epochs == ["1/7", "3/7", "6/7", "7/7"]


def test_quiet_prints_only_the_score_line(capsys):
    assert main(["train", *FAST, "--epochs", "3", "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("test accuracy: ")


def test_dnn_train_verbose_prints_lines_in_a_notebook(capsys):
    # A notebook's stdout and stderr are not terminals: verbose=1 gives lines there, not a silent bar.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 64))
    Y = (X[0:1] > 0).astype(float)
    net = xpnet.DNN([2, 4, 1])
    net.train(X, Y, epochs=3, batch_size=16, verbose=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 3 and lines[-1].startswith("epoch 3/3 - loss ")
    net.train(X, Y, epochs=2, batch_size=16, verbose=0)
    assert capsys.readouterr().out == ""


def test_fixed_precision():
    assert [format_value(v) for v in (0.0006211, 1.0, 0.009117, 123456.0, 0.0, float("nan"))] == \
        ["6.211e-04", "1.0000", "0.0091", "1.235e+05", "0.0000", "nan"]


def test_progress_bar_fits_80_columns_on_a_terminal(tmp_path):
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "80"}
    env.pop("XPNET_BACKEND", None)
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", "train", "--epochs", "12", "--patience", "0",
                             "--backend", "numpy"], stdout=subprocess.PIPE, stderr=follower, env=env, cwd=tmp_path)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=120)
    os.close(leader)
    assert proc.returncode == 0
    bar = b"".join(chunks).decode("utf-8", "replace")
    # What a terminal shows: each redraw of the line (split at carriage returns and newlines), escapes removed.
    frames = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", f) for f in re.split(r"[\r\n]+", bar)]
    frames = [f for f in frames if f.strip()]
    assert frames and max(len(f) for f in frames) <= 80, frames
    last = frames[-1]
    assert re.search(r"12/12 \|.+\| loss \d\.\d{4} val_loss \d\.\d{4} val_accuracy \d\.\d{4} ", last), last
    # The bar itself keeps room: at least 10 cells between the bars.
    assert len(re.search(r"\|(.*)\|", last).group(1)) >= 10
    # The bar replaces the epoch lines: none on stdout (a pipe here), which keeps the other lines.
    lines = out.decode().splitlines()
    assert not any(line.startswith("epoch ") for line in lines) and lines[-1].startswith("test accuracy")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_history_file(tmp_path, capsys, fmt):
    path = tmp_path / f"h.{fmt}"
    assert main(["train", *FAST, "--epochs", "5", "--patience", "0", "-q", "--history", str(path)]) == 0
    if fmt == "csv":
        rows = list(csv.DictReader(path.open()))
        assert [r["epoch"] for r in rows] == ["1", "2", "3", "4", "5"]
        assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
        assert float(rows[-1]["loss"]) < float(rows[0]["loss"]) and float(rows[0]["lr"]) == 0.003
    else:
        data = json.loads(path.read_text())
        assert data["metric_name"] == "accuracy" and data["backend"] and data["dtype"] == "float32"
        assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3, 4, 5]
        assert all(isinstance(e["val_loss"], float) for e in data["epochs"])


def test_history_and_plot_extensions_are_checked_before_training(tmp_path, capsys):
    for flag, name in (("--history", "h.txt"), ("--plot", "p.jpg"), ("--plot", "noext")):
        assert main(["train", *FAST, "--epochs", "2", flag, str(tmp_path / name)]) == 1
        captured = capsys.readouterr()
        assert "the extension names the format" in captured.err and "epoch 1" not in captured.out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("ext", "magic"), [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<svg")])
def test_plot_writes_the_format_its_extension_names(tmp_path, capsys, ext, magic):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"curves.{ext}"
    assert main(["train", *FAST, "--epochs", "6", "-q", "--plot", str(path)]) == 0
    data = path.read_bytes()
    assert magic in data[:400]
    if ext == "svg":
        assert b"best epoch" in data  # the legend of the best-epoch marker


def test_best_epoch_rule():
    from xpnet.cli.train import _best_epoch
    from xpnet.engine.history import History

    h = History("accuracy", "numpy", "cpu", "float32")
    for e, (loss, val) in enumerate([(1.0, 0.9), (0.5, 0.4), (0.3, 0.6)]):
        h.append({"epoch": e, "loss": loss, "val_loss": val})
    assert _best_epoch(h, None) == 1


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("info") / "m.safetensors"
    assert main(["train", *FAST, "--epochs", "3", "-q", "--out", str(path)]) == 0
    return path


def test_info_text_and_json(model_file, capsys):
    assert main(["info", str(model_file)]) == 0
    text = capsys.readouterr().out
    for fragment in ("DNNClassifier (classification)", "architecture   2-8-1 (2 layers), hidden relu, output sigmoid",
                     "dtype          float32", "classes        2: 0, 1", "trained on     numpy (cpu)",
                     "epochs         3", "final          loss 0.", "written by     xpnet ",
                     "checksums      verified: SHA-256 of the tensors and metadata"):
        assert fragment in text, text
    assert main(["info", str(model_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layer_dims"] == [2, 8, 1] and info["classes"] == [0, 1] and info["epochs"] == 3
    assert info["checksums"]["verified"] is True and info["dataset"]["dataset"] == "moons"
    assert info["xpnet_version"] == xpnet.__version__ and info["scores"]["final_val_loss"] > 0


def test_info_on_a_checkpoint_gives_its_epoch_and_losses(tmp_path, capsys):
    # A checkpoint's history holds per-epoch lists and its epoch at the top level, not a model file's
    # summary: info printed "epochs None" and no losses for it.
    ck = tmp_path / "run.ckpt"
    assert main(["train", *FAST, "--epochs", "3", "-q", "--checkpoint", str(ck)]) == 0
    capsys.readouterr()
    assert main(["info", str(ck), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["epochs"] == 3 and info["scores"]["final_loss"] > 0 and info["scores"]["final_val_loss"] > 0
    assert main(["info", str(ck)]) == 0
    text = capsys.readouterr().out
    assert "epochs         3" in text and "None" not in text and "final          loss 0." in text, text


def test_a_full_batch_model_loads(tmp_path, capsys):
    # --batch-size full is a setting the estimators take: its model file must load (and describe itself).
    path = tmp_path / "full.safetensors"
    assert main(["train", "--dataset", "moons", "--layers", "8", "--batch-size", "full", "--epochs", "2", "-q",
                 "--out", str(path)]) == 0
    assert main(["info", str(path)]) == 0
    assert "batch_size full" in capsys.readouterr().out


def test_info_reports_a_damaged_file(model_file, tmp_path, capsys):
    data = bytearray(model_file.read_bytes())
    data[-5] ^= 0x40  # a weight's bit: the tensors' checksum no longer matches
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    assert main(["info", str(bad)]) == 1
    assert "checksums      FAILED: " in capsys.readouterr().out
    assert main(["info", str(tmp_path / "absent.safetensors")]) == 1
    assert "xpnet: error:" in capsys.readouterr().err


def test_threads_are_set_and_printed(model_file, tmp_path, capsys):
    from threadpoolctl import threadpool_info

    assert main(["train", *FAST, "--epochs", "2", "--threads", "1"]) == 0
    assert "threads: 1 BLAS thread (" in capsys.readouterr().out
    before = [p["num_threads"] for p in threadpool_info()]
    assert main(["evaluate", str(model_file), "moons", "--threads", "1"]) == 0
    assert "threads: 1 BLAS thread" in capsys.readouterr().err
    assert [p["num_threads"] for p in threadpool_info()] == before  # restored after the command
    assert main(["predict", str(model_file), "moons", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert "threads: 1 BLAS thread" in captured.err and "threads" not in captured.out  # stdout is the CSV


@pytest.mark.parametrize("rows, extra, flag", [(1, [], "--test-fraction"), (2, [], "--val-fraction"),
                                               (10, ["--val-fraction", "0.99"], "--val-fraction")])
def test_too_few_samples_to_split_name_the_flag(tmp_path, capsys, rows, extra, flag):
    # The split's error said "change test_size" (a library argument) also when the validation split failed,
    # and doubled scikit-learn's full stop.
    path = tmp_path / "few.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(rows)))
    assert main(["train", "--dataset", str(path), "--layers", "4", "--epochs", "1", "-q", *extra]) == 1
    err = capsys.readouterr().err
    assert f"change {flag}" in err and ".." not in err and "change test_size" not in err, err


def test_parquet_errors_name_the_flag(tmp_path, capsys):
    # The Parquet reader's "pick the right label_column" reached the command's user in the Python spelling.
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"a": [0.5, 1.5, 2.5], "s": ["x", "y", "z"], "label": [0, 1, 0]}), path)
    assert main(["train", "--dataset", str(path), "--layers", "4", "--epochs", "1", "-q"]) == 1
    err = capsys.readouterr().err
    assert "pick the right --label-column" in err and "label_column" not in err, err


def test_info_on_a_data_file_says_what_it_looks_like(tmp_path, capsys):
    # A CSV or Parquet file given as the model (an easy mix-up: both are the command's arguments) got only
    # "the header claims 7020034723621776481 bytes"; the message names what the file seems to be.
    csv_path = tmp_path / "data.csv"
    csv_path.write_text("a,b,label\n1,2,0\n3,4,1\n")
    assert main(["info", str(csv_path)]) == 1
    assert "it looks like text (a CSV or other data file)" in capsys.readouterr().err
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    pq_path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "label": [0, 1]}), pq_path)
    assert main(["predict", str(pq_path), str(csv_path)]) == 1
    assert "it looks like a Parquet file" in capsys.readouterr().err


def test_patience_counts_as_the_help_says(tmp_path, capsys):
    # With a validation set training stops once `patience` epochs in a row bring no lower validation loss
    # (Keras's rule); the help and README said "more than this many", which is scikit-learn's rule and holds
    # only without a validation set.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,label\n" + "".join(f"{a:.3f},{b:.3f},{c:.3f},{int(a > 0)}\n" for a, b, c in X))
    for patience in (1, 3):
        hist = tmp_path / f"h{patience}.csv"
        assert main(["train", "--dataset", str(path), "--layers", "4", "--epochs", "40", "--lr", "0.5", "-q",
                     "--patience", str(patience), "--history", str(hist)]) == 0
        val = [float(r["val_loss"]) for r in csv.DictReader(hist.open())]
        best = val.index(min(val))
        assert len(val) == best + 1 + patience < 40, val
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "stop once this many epochs in a row bring no improvement" in help_text, help_text

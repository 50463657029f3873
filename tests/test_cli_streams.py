"""The command and its streams (issue 11): a reader that goes away, a closed stdout, and predictions CSV that
stays a CSV whatever the class names hold."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np

from xpnet.cli import main

FAST = ["--layers", "4", "--epochs", "2"]


def _bash(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=None)


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    # `true` exits without reading: the command's output meets a closed pipe.
    run = _bash(f"'{sys.executable}' -m xpnet train --dataset moons {' '.join(FAST)} 2>err.txt | true; "
                "echo ${PIPESTATUS[0]}", tmp_path)
    assert run.stdout.strip() == "141"  # as a Unix tool killed by SIGPIPE
    assert (tmp_path / "err.txt").read_text() == ""  # no "Broken pipe", no "Exception ignored"


def test_predict_with_stdout_closed_says_so_in_one_line(tmp_path):
    model = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", "moons", *FAST, "-q", "--out", str(model)]) == 0
    run = _bash(f"'{sys.executable}' -m xpnet predict '{model}' moons >&-", tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip() == ("xpnet: error: standard output is closed, so the predictions have nowhere to go: "
                                  "pass --out FILE")


def test_predictions_csv_quotes_class_names_that_need_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    names = np.where(X[:, 0] > 0, "north, east", 'say "hi"')
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x1", "x2", "label"])
        w.writerows([[f"{a:.5f}", f"{b:.5f}", n] for (a, b), n in zip(X, names, strict=True)])
    model = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", str(data), *FAST, "-q", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(data)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["prediction", 'p_north, east', 'p_say "hi"']
    assert len(rows) == 81 and {len(r) for r in rows} == {3}
    assert {r[0] for r in rows[1:]} <= {"north, east", 'say "hi"'}

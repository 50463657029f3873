"""Checkpoints and resume: a run killed with SIGKILL (mid-training, and mid-way through writing a checkpoint)
and resumed ends with the parameters of a run that was never interrupted, bit for bit on NumPy; a checkpoint
is never left half-written. Also: the same in-process on every backend of the matrix, the estimator and the
command line, and the checks that refuse a checkpoint of another run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import xpnet
from xpnet.engine import Trainer
from xpnet.errors import ConfigError, ModelFileError
from xpnet.files import read_metadata, read_model_file, save

EPOCHS = 12
KILL_AFTER_EPOCH = 3
PAUSE_AT_WRITE = 4  # the mid-write kill stops the 4th checkpoint just before its rename

# The training script the subprocesses run. argv: checkpoint path ("-" for none), output .npz, and the number
# of the checkpoint write to pause at just before its rename (0: never). XPNET_TEST_EPOCH_SLEEP stretches
# every epoch in wall time only (the numbers are untouched), so the test can catch the run mid-way.
SCRIPT = f"""
import json, os, sys, time
import numpy as np
import xpnet
from xpnet.engine import EarlyStopping, Trainer

ckpt, out, pause_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
sleep = float(os.environ.get("XPNET_TEST_EPOCH_SLEEP", "0"))
run_epoch = Trainer._run_epoch

def slow_epoch(self, *args):
    time.sleep(sleep)
    return run_epoch(self, *args)

Trainer._run_epoch = slow_epoch
if pause_at:
    replace, writes = os.replace, []

    def paused_replace(src, dst, **kwargs):
        if os.path.basename(os.fspath(dst)) == os.path.basename(ckpt):
            writes.append(dst)
            if len(writes) == pause_at:  # the temporary file is complete; the rename has not happened
                open(ckpt + ".paused", "w").close()
                time.sleep(600)
        return replace(src, dst, **kwargs)

    os.replace = paused_replace

rng = np.random.default_rng(7)
X = rng.standard_normal((2000, 20))
y = np.argmax(X[:, :3] + 0.5 * rng.standard_normal((2000, 3)), axis=1)
net = xpnet.DNN([20, 64, 32, 3], output="softmax", seed=3, backend="numpy")
kwargs = {{}} if ckpt == "-" else dict(checkpoint=ckpt, checkpoint_every=1, resume=True)
history = net.train(X.T, y, epochs={EPOCHS}, batch_size=64, optimizer="adam", learning_rate=0.005, schedule="step",
                    decay_steps=3, dropout=0.2, l2=1e-3, validation_fraction=0.2,
                    early_stopping=EarlyStopping("val_loss", patience=4), **kwargs)
np.savez(out, **net.get_parameters())
with open(out + ".json", "w") as fh:
    json.dump({{k: v for k, v in history.as_dict().items() if k != "time"}}, fh)
"""


def _env(sleep: float = 0.0) -> dict[str, str]:
    env = dict(os.environ, XPNET_BACKEND="numpy", XPNET_TEST_EPOCH_SLEEP=str(sleep))
    src = str(Path(xpnet.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return env


def _start(script: Path, ckpt: str, out: Path, pause_at: int = 0, sleep: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), ckpt, str(out), str(pause_at)], env=_env(sleep),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> None:
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"training script failed:\n{stdout}\n{stderr}"


def _wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _checkpoint_epoch(path: Path) -> int:
    try:
        return int(read_metadata(path)["epoch"])
    except ModelFileError:  # not written yet
        return -1


def _temporaries(path: Path) -> list[str]:
    return sorted(n for n in os.listdir(path.parent) if n.startswith(f".{path.name}.") and n.endswith(".tmp"))


def _assert_same_run(out: Path, reference: Path) -> None:
    got, want = np.load(out), np.load(reference)
    assert sorted(got.files) == sorted(want.files)
    for key in want.files:
        assert np.array_equal(got[key], want[key]), f"{key} differs from the uninterrupted run"
    assert json.loads(Path(f"{out}.json").read_text()) == json.loads(Path(f"{reference}.json").read_text())


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("script") / "train.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def reference(script: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run, without any checkpoint."""
    out = tmp_path_factory.mktemp("reference") / "reference.npz"
    _finish(_start(script, "-", out))
    return out


def test_run_killed_mid_training_resumes_to_the_uninterrupted_result(script, reference, tmp_path):
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "resumed.npz"
    victim = _start(script, str(ckpt), tmp_path / "killed.npz", sleep=0.1)
    try:
        _wait_for(lambda: _checkpoint_epoch(ckpt) >= KILL_AFTER_EPOCH, victim, f"epoch {KILL_AFTER_EPOCH}")
    finally:
        _kill(victim)
    assert not (tmp_path / "killed.npz").exists()  # it really was stopped mid-training
    _, meta = read_model_file(ckpt)  # whatever moment the kill hit, the checkpoint is whole
    assert KILL_AFTER_EPOCH <= meta["epoch"] < EPOCHS and len(meta["history"]["loss"]) == meta["epoch"]
    _finish(_start(script, str(ckpt), out))
    _assert_same_run(out, reference)
    assert _temporaries(ckpt) == []
    assert read_metadata(ckpt)["epoch"] == len(json.loads(Path(f"{out}.json").read_text())["loss"])


def test_run_killed_mid_checkpoint_write_keeps_the_previous_checkpoint(script, reference, tmp_path):
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "resumed.npz"
    victim = _start(script, str(ckpt), tmp_path / "killed.npz", pause_at=PAUSE_AT_WRITE)
    try:
        _wait_for(lambda: Path(f"{ckpt}.paused").exists(), victim, "the paused checkpoint write")
    finally:
        _kill(victim)
    # Killed between writing the new checkpoint's temporary file and renaming it over the old one.
    assert len(_temporaries(ckpt)) == 1
    _, meta = read_model_file(ckpt)
    assert meta["epoch"] == PAUSE_AT_WRITE - 1  # the previous checkpoint, intact
    assert xpnet.load(ckpt).layer_dims == [20, 64, 32, 3]
    _finish(_start(script, str(ckpt), out))
    _assert_same_run(out, reference)
    assert _temporaries(ckpt) == []  # the stale temporary file was removed, no new one left


# ------------------------------------------------------------------------------- in-process resume
def _moons(m: int = 200):
    X, y = xpnet.datasets.make_moons(m, noise=0.25, seed=0)
    return X.T, y


class _Interrupt(xpnet.Callback):
    """Raises KeyboardInterrupt when epoch ``at`` begins (the checkpoint of epoch ``at`` - 1 is on disk)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if epoch == self.at:
            raise KeyboardInterrupt


TRAIN = dict(epochs=6, batch_size=50, optimizer="adam", learning_rate=0.01, schedule="step", decay_steps=2,
             dropout=0.2, l2=1e-3, validation_fraction=0.25)


def _net(case=None, **kwargs):
    backend = None if case is None else case.backend
    dtype = "float32" if case is None else case.dtype_name
    return xpnet.DNN([2, 16, 8, 1], seed=1, backend=backend, dtype=dtype, **kwargs)


def _interrupted_then_resumed(path: Path, at: int, case=None, **train):
    X, y = _moons()
    first = _net(case)
    with pytest.raises(KeyboardInterrupt):
        first.train(X, y, checkpoint=path, callbacks=[_Interrupt(at)], **{**TRAIN, **train})
    assert read_metadata(path)["epoch"] == at
    second = _net(case)
    history = second.train(X, y, checkpoint=path, resume=True, **{**TRAIN, **train})
    return second, history


def test_resume_reproduces_the_uninterrupted_run_on_every_backend(xpb, tmp_path):
    X, y = _moons()
    reference = _net(xpb)
    expected = reference.train(X, y, **TRAIN)
    resumed, history = _interrupted_then_resumed(tmp_path / "run.ckpt", 3, xpb)
    for key, value in reference.get_parameters().items():
        got = resumed.get_parameters()[key]
        assert np.array_equal(got, value), f"{key} differs after resuming on {xpb.id}"
        xpb.check(resumed.parameters[key])
    assert history["loss"] == expected["loss"] and history["val_loss"] == expected["val_loss"]
    assert history["lr"] == expected["lr"] and history["epoch"] == list(range(6))


def test_resume_keeps_the_early_stopping_state(tmp_path):
    X, y = _moons()
    train = dict(TRAIN, epochs=60, learning_rate=0.05, early_stopping=3)
    reference = _net()
    expected = reference.train(X, y, **train)
    assert len(expected) < 60  # it did stop early, and restored its best epoch's weights
    resumed, history = _interrupted_then_resumed(tmp_path / "run.ckpt", len(expected) - 2, **train)
    assert len(history) == len(expected) and history["val_loss"] == expected["val_loss"]
    for key, value in reference.get_parameters().items():
        assert np.array_equal(resumed.get_parameters()[key], value)
    # Resuming a run that early stopping ended trains nothing more and keeps its best weights.
    again = _net()
    assert len(again.train(X, y, checkpoint=tmp_path / "run.ckpt", resume=True, **train)) == len(expected)
    for key, value in reference.get_parameters().items():
        assert np.array_equal(again.get_parameters()[key], value)


def test_checkpoint_holds_the_whole_training_state(tmp_path):
    X, y = _moons()
    net = _net()
    trainer = Trainer(net, optimizer="adam", learning_rate=0.01, batch_size=32, dropout=0.2)
    path = tmp_path / "state.ckpt"
    trainer.fit(net.backend.asarray(X), net.backend.asarray(y.reshape(1, -1), dtype=net.dtype), epochs=3,
                checkpoint=path)
    tensors, meta = read_model_file(path)
    assert meta["kind"] == "TrainingCheckpoint" and meta["epoch"] == 3 and meta["optimizer_t"] == trainer.optimizer.t
    for key, value in net.get_parameters().items():
        assert np.array_equal(tensors[f"param/{key}"], value)
    for key, value in trainer.optimizer.state.items():
        assert np.array_equal(tensors[f"optimizer/{key}"], xpnet.to_numpy(value))
    assert meta["settings"]["optimizer"]["name"] == "adam"
    assert meta["settings"]["network"]["layer_dims"] == [2, 16, 8, 1]
    assert meta["history"]["loss"] == trainer.history["loss"]
    state = trainer._dropout_rng.bit_generator.state
    assert meta["generators"]["dropout"]["state"]["counter"]["data"] == state["state"]["counter"].tolist()
    loaded = xpnet.load(path)  # a checkpoint loads as the network it holds
    assert isinstance(loaded, xpnet.DNN)
    for key, value in net.get_parameters().items():
        assert np.array_equal(loaded.get_parameters()[key], value)


def test_checkpoint_every_counts_the_run_epochs_and_the_end_is_saved(tmp_path):
    X, y = _moons()
    path = tmp_path / "run.ckpt"
    seen = []

    class Watch(xpnet.Callback):
        def on_epoch_begin(self, trainer, epoch):
            seen.append(_checkpoint_epoch(path))

    _net().train(X, y, epochs=8, checkpoint=path, checkpoint_every=3, callbacks=[Watch()])
    assert seen == [-1, -1, -1, 3, 3, 3, 6, 6]
    assert read_metadata(path)["epoch"] == 8  # the end of the run, though 8 is not a multiple of 3


def test_resume_without_a_file_starts_afresh_and_without_resume_overwrites(tmp_path):
    X, y = _moons()
    path = tmp_path / "run.ckpt"
    train = dict(TRAIN, epochs=3)
    plain, fresh = _net(), _net()
    plain.train(X, y, **train)
    fresh.train(X, y, checkpoint=path, resume=True, **train)
    for key, value in plain.get_parameters().items():
        assert np.array_equal(fresh.get_parameters()[key], value)
    _net().train(X, y, checkpoint=path, **dict(train, epochs=2))  # no resume: starts at epoch 0 and replaces it
    assert read_metadata(path)["epoch"] == 2


def test_stale_temporary_files_are_removed_and_others_left_alone(tmp_path):
    X, y = _moons()
    path = tmp_path / "run.ckpt"
    stale = tmp_path / ".run.ckpt.xpnet-k3j_x9a2.tmp"  # as the writer names its temporaries
    stale.write_bytes(b"half a checkpoint")
    others = [tmp_path / ".other.ckpt.xpnet-abcdefgh.tmp", tmp_path / "run.ckpt.tmp", tmp_path / ".run.ckpt.notes",
              tmp_path / ".run.ckpt.k3j_x9a2.tmp"]  # the last: a user's file without the writer's marker
    for other in others:
        other.write_text("keep")
    _net().train(X, y, epochs=1, checkpoint=path)
    assert not stale.exists() and all(other.exists() for other in others)


@pytest.mark.parametrize("change, error", [
    (dict(learning_rate=0.02), "schedule"),
    (dict(optimizer="momentum"), "optimizer"),
    (dict(dropout=0.1), "dropout"),
    (dict(batch_size=16), "batch_size"),
    (dict(validation_fraction=0.3), "examples"),
])
def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, change, error):
    X, y = _moons()
    path = tmp_path / "run.ckpt"
    _net().train(X, y, checkpoint=path, **dict(TRAIN, epochs=2))
    with pytest.raises(ConfigError, match=f"other settings or data.*{error}"):
        _net().train(X, y, checkpoint=path, resume=True, **{**TRAIN, **change})


def test_resume_refuses_another_architecture_a_model_file_and_bad_paths(tmp_path):
    X, y = _moons()
    path = tmp_path / "run.ckpt"
    _net().train(X, y, checkpoint=path, **dict(TRAIN, epochs=2))
    other = xpnet.DNN([2, 12, 1], seed=1)
    with pytest.raises(ConfigError, match="layer_dims"):
        other.train(X, y, checkpoint=path, resume=True, **TRAIN)
    with pytest.raises(ConfigError, match="callbacks"):
        _net().train(X, y, checkpoint=path, resume=True, early_stopping=3, **TRAIN)
    model = tmp_path / "model.safetensors"
    save(_net(), model)
    with pytest.raises(ModelFileError, match="not a training checkpoint"):
        _net().train(X, y, checkpoint=model, resume=True, **TRAIN)
    with pytest.raises(ConfigError, match="checkpoint=PATH"):
        _net().train(X, y, resume=True, **TRAIN)
    with pytest.raises(ModelFileError, match="does not exist"):
        _net().train(X, y, checkpoint=tmp_path / "missing" / "run.ckpt", **TRAIN)
    with pytest.raises(ConfigError, match="checkpoint_every"):
        _net().train(X, y, checkpoint=path, checkpoint_every=0, **TRAIN)
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    with pytest.raises(ModelFileError, match=r"truncated|corrupt"):
        _net().train(X, y, checkpoint=path, resume=True, **TRAIN)


def test_estimator_fit_resumes_to_the_uninterrupted_fit(tmp_path):
    X, y = xpnet.datasets.make_moons(300, noise=0.25, seed=0)
    params = dict(hidden_layer_sizes=(16, 8), max_iter=15, batch_size=32, learning_rate_init=0.01, dropout=0.1,
                  early_stopping=True, n_iter_no_change=3, random_state=0, backend="numpy", standardize=True)
    reference = xpnet.DNNClassifier(**params).fit(X, y)
    path = tmp_path / "est.ckpt"
    with pytest.raises(KeyboardInterrupt):
        xpnet.DNNClassifier(**params).fit(X, y, callbacks=[_Interrupt(5)], checkpoint=path)
    resumed = xpnet.DNNClassifier(**params).fit(X, y, checkpoint=path, resume=True)
    assert resumed.trainer_.resumed_epoch == 5
    assert resumed.n_iter_ == reference.n_iter_ and resumed.loss_curve_ == reference.loss_curve_
    assert resumed.validation_scores_ == reference.validation_scores_
    for got, want in zip(resumed.coefs_ + resumed.intercepts_, reference.coefs_ + reference.intercepts_, strict=True):
        assert np.array_equal(got, want)
    assert np.array_equal(resumed.predict_proba(X), reference.predict_proba(X))


@pytest.mark.parametrize("change", [
    dict(standardize=False), dict(class_weight={0: 1.0, 1: 2.0}), dict(class_weight="balanced"),
    dict(class_weight=None), dict(tol=1e-3), dict(n_iter_no_change=4), dict(early_stopping=False),
    dict(validation_fraction=0.25),
])
def test_estimator_resume_refuses_other_estimator_settings(tmp_path, change):
    # These never reach the trainer's own settings: a resume with `--no-standardize` used to go on silently
    # on raw features with weights trained on standardized ones.
    X, y = xpnet.datasets.make_moons(120, noise=0.25, seed=0)
    params = dict(hidden_layer_sizes=(8,), max_iter=2, batch_size=32, early_stopping=True, n_iter_no_change=3,
                  validation_fraction=0.2, tol=1e-4, class_weight={1: 3.0, 0: 1.0}, random_state=0,
                  backend="numpy", standardize=True)
    path = tmp_path / "est.ckpt"
    with pytest.warns(ConvergenceWarning):
        xpnet.DNNClassifier(**params).fit(X, y, checkpoint=path)
    name = next(iter(change))
    with pytest.raises(ConfigError, match="other settings or data") as info:
        xpnet.DNNClassifier(**{**params, **change, "max_iter": 4}).fit(X, y, checkpoint=path, resume=True)
    message = str(info.value)
    assert str(path) in message
    saved = {"class_weight": [[0, 1.0], [1, 3.0]]}.get(name, params[name])
    now = change[name] if name != "class_weight" or not isinstance(change[name], dict) else \
        [[k, v] for k, v in sorted(change[name].items())]
    assert f"(estimator_{name}: {saved!r} in the checkpoint, {now!r} here" in message, message
    assert read_metadata(path)["epoch"] == 2  # the checkpoint is left as it was
    # The same settings (the class weights given in another order) resume.
    with pytest.warns(ConvergenceWarning):
        resumed = xpnet.DNNClassifier(**{**params, "class_weight": {0: 1.0, 1: 3.0}, "max_iter": 4}).fit(
            X, y, checkpoint=path, resume=True)
    assert resumed.trainer_.resumed_epoch == 2 and resumed.n_iter_ == 4


# ------------------------------------------------------------------------------------ command line
# Runs `xpnet train` with every epoch stretched in wall time only, so the run can be caught mid-way.
CLI = """
import os, sys, time
from xpnet import cli
from xpnet.engine import Trainer
pause = os.environ.get("XPNET_TEST_PAUSE_EPOCH")
run_epoch = Trainer._run_epoch
def paused_epoch(self, *args):
    if pause is not None and self.epoch == int(pause):
        open(os.environ["XPNET_TEST_MARKER"], "w").close()
        time.sleep(600)
    return run_epoch(self, *args)
Trainer._run_epoch = paused_epoch
sys.exit(cli.main(sys.argv[1:]))
"""
# This run stops early after 17 epochs, its best being epoch 14: the kill in epoch 16 (0-based 15) comes
# when early stopping has a best epoch, its weights and one epoch without improvement to carry over.
CLI_OPTIONS = ["train", "--dataset", "digits", "--layers", "32", "--epochs", "30", "--batch-size", "32", "--lr",
               "0.01", "--dropout", "0.1", "--patience", "3", "--schedule", "step", "--seed", "0", "--quiet"]
CLI_PAUSE_EPOCH = 15


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLI, *CLI_OPTIONS, *args], env=env or _env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_train_killed_and_resumed_saves_the_uninterrupted_model(tmp_path):
    ckpt, marker = tmp_path / "train.ckpt", tmp_path / "paused"
    reference = _cli("--out", str(tmp_path / "reference.safetensors"))
    victim = _cli("--checkpoint", str(ckpt), "--out", str(tmp_path / "killed.safetensors"),
                  env=dict(_env(), XPNET_TEST_PAUSE_EPOCH=str(CLI_PAUSE_EPOCH), XPNET_TEST_MARKER=str(marker)))
    try:
        _wait_for(marker.exists, victim, f"epoch {CLI_PAUSE_EPOCH}")
    finally:
        _kill(victim)
    assert read_metadata(ckpt)["epoch"] == CLI_PAUSE_EPOCH
    ref_out, ref_err = reference.communicate(timeout=120)
    assert reference.returncode == 0, ref_err
    assert not (tmp_path / "killed.safetensors").exists()
    resumed = subprocess.run([sys.executable, "-c", CLI, *CLI_OPTIONS, "--checkpoint", str(ckpt), "--resume",
                              "--out", str(tmp_path / "resumed.safetensors")],
                             env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == ref_out  # the same test accuracy
    got, got_meta = read_model_file(tmp_path / "resumed.safetensors")
    want, want_meta = read_model_file(tmp_path / "reference.safetensors")
    assert len(want_meta["history_full"]["loss"]) == 17  # it did stop early, after the resume
    assert sorted(got) == sorted(want)
    for key in want:
        assert np.array_equal(got[key], want[key]), key
    for column in ("epoch", "loss", "metric", "val_loss", "val_metric", "lr"):
        assert got_meta["history_full"][column] == want_meta["history_full"][column]
    assert _temporaries(ckpt) == []


def test_cli_resume_needs_a_checkpoint(tmp_path, capsys):
    from xpnet.cli import main

    assert main(["train", "--dataset", "moons", "--epochs", "1", "--resume"]) == 1
    assert "--resume needs --checkpoint" in capsys.readouterr().err

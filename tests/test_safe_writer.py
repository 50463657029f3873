"""Never destroy a file: every output goes through one safe writer (issue 11, part 1).

It refuses a destination that exists and is not a regular file, refuses one that is among the command's
inputs (the same file, also through links), proves before any work starts that a file can be created in the
target directory, and removes the temporaries that killed writes left, never a live writer's.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import numpy as np
import pytest

import xpnet
from xpnet.cli import main
from xpnet.files import atomic, check_destination

FAST = ["--dataset", "moons", "--layers", "4", "--epochs", "2", "-q"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _data_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    lines = ["a,b,c,label"] + [f"{r[0]:.6f},{r[1]:.6f},{r[2]:.6f},{t}" for r, t in zip(X, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _refused(argv, capsys, *, says: str) -> str:
    code, out, err = run(argv, capsys)
    assert code == 1 and "Traceback" not in err and says in err, (code, out, err)
    return err


def test_train_never_writes_its_model_over_its_dataset(tmp_path, capsys):
    data = _data_csv(tmp_path / "data.csv")
    before = data.read_bytes()
    _refused(["train", "--dataset", data, "--epochs", "2", "-q", "--out", data], capsys, says="same file as the input")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    hard = tmp_path / "hard.csv"
    os.link(data, hard)
    for other in (link, hard):  # another name of the same file
        _refused(["train", "--dataset", data, "--epochs", "2", "-q", "--out", other], capsys, says="same file")
    # --plot names its format by its extension (checked first), so its other names of the dataset end in .png.
    png_link, png_hard = tmp_path / "link.png", tmp_path / "hard.png"
    png_link.symlink_to(data)
    os.link(data, png_hard)
    for other in (png_link, png_hard):
        _refused(["train", "--dataset", data, "--epochs", "2", "-q", "--plot", other], capsys, says="same file")
    assert data.read_bytes() == before


def test_predict_never_writes_over_its_model_or_its_data(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    assert main(["train", *FAST, "--out", str(model)]) == 0
    capsys.readouterr()
    kept = model.read_bytes()
    _refused(["predict", model, "moons", "--out", model], capsys, says="same file as the input")
    data = _data_csv(tmp_path / "d.csv")
    _refused(["predict", model, data, "--out", data], capsys, says="same file as the input")
    assert model.read_bytes() == kept


def test_a_special_file_is_never_replaced(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _refused(["train", *FAST, "--out", fifo], capsys, says="a FIFO")
    assert fifo.is_fifo()
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    with pytest.raises(xpnet.ModelFileError, match="a FIFO"):
        xpnet.save(net, fifo)  # the library refuses it too, not only the command
    assert fifo.is_fifo()
    with pytest.raises(xpnet.ModelFileError, match="it is a device"):
        check_destination("/dev/null")  # root could otherwise replace it with a regular file
    assert Path("/dev/null").is_char_device()


def test_a_directory_where_no_file_can_be_created_fails_before_training(tmp_path, capsys, monkeypatch):
    # Root may write anywhere: make the directory refuse by failing the probe's file creation there.
    blocked = tmp_path / "ro"
    blocked.mkdir()
    real_mkstemp = atomic.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == blocked:
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    start = time.perf_counter()
    err = _refused(["train", "--dataset", "digits", "--epochs", "50", "--out", blocked / "m.safetensors"], capsys,
                   says="cannot create a file in")
    assert "Permission denied" in err and time.perf_counter() - start < 5  # nothing trained first


def test_two_outputs_of_one_command_may_not_share_a_path(tmp_path, capsys):
    path = tmp_path / "same.bin"
    _refused(["train", *FAST, "--out", path, "--checkpoint", path], capsys, says="--out and --checkpoint")


def _temporary(target: Path, name: str, age: float = 60) -> Path:
    """A file named as the writer names its temporaries (``.NAME.xpnet-XXXXXXXX.tmp``)."""
    tmp = target.parent / f".{target.name}.xpnet-{name}.tmp"
    tmp.write_bytes(b"half a model")
    then = time.time() - age
    os.utime(tmp, (then, then))
    return tmp


def test_stale_temporaries_of_every_output_are_removed_but_never_a_live_writers(tmp_path):
    target = tmp_path / "m.safetensors"
    dead = _temporary(target, "killed01")  # its writer was killed between writing and renaming
    young = _temporary(target, "justmade", age=0)  # unlocked: its writer is gone, however recent
    live = _temporary(target, "writing1")  # its writer still holds the lock
    other = _temporary(tmp_path / "other.csv", "killed02")  # another output's: not this write's business
    notes = tmp_path / ".m.safetensors.MyNotes.tmp"  # a user's file that merely looks like one
    notes.write_text("mine")
    fifo = tmp_path / ".m.safetensors.xpnet-fifo0000.tmp"  # a FIFO so named: never opened (it would block)
    os.mkfifo(fifo)
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        xpnet.save(xpnet.DNN([2, 3, 1], backend="numpy"), target)
    finally:
        os.close(holder)
    assert not dead.exists() and not young.exists()
    assert live.exists() and other.exists() and notes.exists() and fifo.is_fifo()
    assert xpnet.load(target).layer_dims == [2, 3, 1]
    # A text output (predictions, plots, benchmark results) cleans its own the same way.
    out = tmp_path / "p.csv"
    stale = _temporary(out, "killed03")
    xpnet.files.write_file_atomically(out, b"prediction\n1\n")
    assert not stale.exists() and out.read_bytes() == b"prediction\n1\n"


def test_a_temporary_removed_before_its_writer_locked_it_is_replaced(tmp_path, monkeypatch):
    """The window between creating a temporary and locking it: a cleaner may remove the file there; the writer
    sees it has no link left and takes a new one."""
    real_flock = atomic.fcntl.flock
    calls = []

    def flock(fd, op):
        if not calls:  # the first temporary vanishes before its lock, as if a cleaner had run
            name = os.readlink(f"/proc/self/fd/{fd}")
            os.unlink(name)
        calls.append(op)
        return real_flock(fd, op)

    monkeypatch.setattr(atomic.fcntl, "flock", flock)
    target = tmp_path / "m.bin"
    xpnet.files.write_file_atomically(target, b"data")
    assert len(calls) == 2 and target.read_bytes() == b"data"
    assert not [p for p in tmp_path.iterdir() if p.name != "m.bin"]


def test_a_filesystem_without_locks_still_saves(tmp_path, monkeypatch):
    import errno

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(atomic.fcntl, "flock", no_locks)
    xpnet.files.write_file_atomically(tmp_path / "m.bin", b"data")
    assert (tmp_path / "m.bin").read_bytes() == b"data"


def test_paths_that_are_not_files_to_replace_are_refused(tmp_path):
    for bad, says in ((str(tmp_path / "newdir") + "/", "ends with a separator"), ("/dev/stdout", "it is a device"),
                      (f"/proc/{os.getpid()}/fd/1", "a process's file")):
        with pytest.raises(xpnet.ModelFileError, match=says):
            check_destination(bad)
    a, b = tmp_path / "loopa", tmp_path / "loopb"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(xpnet.ModelFileError, match="loop of symbolic links"):
        check_destination(a)
    assert a.is_symlink()
    check_destination(tmp_path / "fine.bin")
    assert not list(tmp_path.glob(".fine.bin.*"))  # the probe leaves nothing behind


def test_the_writer_holds_its_lock_until_the_rename(tmp_path, monkeypatch):
    """A cleaner running while a write is in progress must find the write's temporary locked."""
    target = tmp_path / "m.bin"
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        probe = os.open(src, os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append("unlocked")
        except BlockingIOError:
            seen.append("locked")
        finally:
            os.close(probe)
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    xpnet.files.write_file_atomically(target, b"data")
    assert seen == ["locked"] and target.read_bytes() == b"data"


def test_a_checkpoint_over_a_special_file_is_refused_before_the_first_epoch(tmp_path):
    fifo = tmp_path / "ckpt"
    os.mkfifo(fifo)
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    X, y = xpnet.datasets.make_moons(40, seed=0)
    with pytest.raises(xpnet.ModelFileError, match=r"cannot write checkpoint .*a FIFO"):
        net.train(X.T, y, epochs=3, checkpoint=fifo)
    assert net.history is None or len(net.history) == 0
    assert fifo.is_fifo()


def test_a_new_file_gets_the_mode_a_plain_open_would_give_it(tmp_path):
    old = os.umask(0o077)
    try:
        xpnet.files.write_file_atomically(tmp_path / "private.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "private.bin").stat().st_mode & 0o777 == 0o600
    kept = tmp_path / "shared.bin"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    xpnet.files.write_file_atomically(kept, b"new")
    assert kept.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its permissions

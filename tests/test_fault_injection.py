"""Kill training, checkpointing and saving at seeded random points: nothing is lost.

Each case forks a child (so it starts in milliseconds, with xpnet already imported) that trains with a checkpoint
every epoch and then saves the model over an existing model file. The child kills itself with SIGKILL (what
``kill -9``, the OOM killer or a power cut does to a process) at a seeded point: the k-th training step, half-way
through writing the k-th file, the k-th ``os.fsync`` (a temporary written, not yet renamed), just before or just
after the k-th ``os.replace`` (the rename of a checkpoint, of the model, or of the writer's probe of the directory).
Planted bugs it catches: a writer that renames before writing (a truncated checkpoint), a cleaner that leaves
stale temporaries, a resume that does not restore the shuffling generator. Afterwards the parent checks

- the model file is the previous one byte for byte, or the complete new one (never partial or corrupt);
- the checkpoint, when there is one, reads as a valid file;
- resuming from it and saving gives exactly (bit for bit) the model of a run that was never interrupted;
- after that next write no temporary file of the writer is left in the directory.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

import numpy as np
import pytest

import xpnet
import xpnet.files as xio
from xpnet.engine.trainer import Trainer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux",
                                reason="forks children that kill themselves (Linux)")

KILLS = 25
EPOCHS = 8
TRAIN = dict(epochs=EPOCHS, batch_size=40, optimizer="adam", learning_rate=0.02, schedule="step", decay_steps=3,
             dropout=0.1, l2=1e-3)
STEPS = EPOCHS * 5  # 200 examples in batches of 40
SITES = ("step", "write", "fsync", "replace-before", "replace-after")


def _data():
    X, y = xpnet.datasets.make_moons(200, noise=0.25, seed=0)
    return X.T, y


def _run(folder, *, resume):
    """The user's program: train (checkpoint every epoch, resumable), then save the model."""
    net = xpnet.DNN([2, 12, 1], seed=3, backend="numpy")
    X, y = _data()
    net.train(X, y, checkpoint=folder / "run.ckpt", resume=resume, **TRAIN)
    xio.save(net, folder / "model.safetensors")
    return net


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(site: str, k: int) -> None:
    """In the child: die at the k-th occurrence of ``site``."""
    count = [0]

    def hit() -> None:
        count[0] += 1
        if count[0] == k:
            _die()

    if site == "step":
        original_step = Trainer._step

        def step(self, *args, **kwargs):
            hit()
            return original_step(self, *args, **kwargs)

        Trainer._step = step
    elif site == "write":  # half of a file's bytes written (and flushed), then killed
        original_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self.fh.__exit__(*exc)

            def write(self, data):
                if count[0] + 1 == k:
                    self.fh.write(data[: len(data) // 2])
                    self.fh.flush()
                hit()
                return self.fh.write(data)

            def __getattr__(self, name):
                return getattr(self.fh, name)

        def fdopen(fd, *args, **kwargs):
            return HalfWriter(original_fdopen(fd, *args, **kwargs))

        os.fdopen = fdopen
    elif site == "fsync":
        original_fsync = os.fsync

        def fsync(fd):
            hit()
            return original_fsync(fd)

        os.fsync = fsync
    else:
        original_replace = os.replace

        def replace(src, dst, **kwargs):
            if site == "replace-before":
                hit()
            original_replace(src, dst, **kwargs)
            if site == "replace-after":
                hit()

        os.replace = replace


def _killed_child(folder, site: str, k: int) -> int:
    """Fork; the child arms the kill and runs the program. Returns the child's wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            _arm(site, k)
            _run(folder, resume=True)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the child killed at {site} #{k} hung")
        time.sleep(0.005)


def _parameters(path):
    return {k: v for k, v in xio.read_model_file(path)[0].items()}


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_random_kills_lose_nothing_and_resume_to_the_uninterrupted_model(tmp_path):
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    reference = _parameters(xio.save(_run(reference_dir, resume=False), reference_dir / "ref.safetensors"))
    previous = xpnet.DNN([2, 12, 1], seed=99, backend="numpy")  # the model file a run is about to replace

    rng = random.Random(20261204)
    killed = 0
    for case in range(KILLS):
        site = SITES[case % len(SITES)]
        # A whole run makes 40 steps, 18 fsyncs (file and directory of 8 checkpoints and the model) and 10 renames
        # (the checkpoints, the model, the probe of the model's directory): every kill lands inside the run.
        k = rng.randint(1, {"step": STEPS, "write": EPOCHS + 1, "fsync": 2 * (EPOCHS + 1)}.get(site, EPOCHS + 2))
        folder = tmp_path / f"case{case}"
        folder.mkdir()
        old = xio.save(previous, folder / "model.safetensors").read_bytes()

        status = _killed_child(folder, site, k)
        if os.WIFSIGNALED(status):
            assert os.WTERMSIG(status) == signal.SIGKILL
            killed += 1
        else:  # k beyond what the run does: it finished normally
            assert os.WEXITSTATUS(status) == 0

        where = f"case {case}: killed at {site} #{k}"
        model = folder / "model.safetensors"
        now = model.read_bytes()
        if now != old:  # replaced: then completely, by the finished model
            assert _same(_parameters(model), reference), where
        ckpt = folder / "run.ckpt"
        if ckpt.exists():
            xio.read_model_file(ckpt)  # never a partial or corrupt checkpoint

        _run(folder, resume=True)  # the user runs the same command again
        assert _same(_parameters(model), reference), f"{where}: the resumed run differs from the uninterrupted one"
        left = sorted(p.name for p in folder.iterdir())
        assert left == ["model.safetensors", "run.ckpt"], f"{where}: left {left}"
    assert killed == KILLS, f"only {killed} of {KILLS} runs were killed"

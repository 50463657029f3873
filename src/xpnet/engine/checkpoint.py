"""Training checkpoints: the whole state of a run in one safetensors file, written atomically.

A checkpoint holds the parameters, the optimizer's state and update count, the epoch, the shuffle and dropout
generators' states, the history and the state of stateful callbacks (early stopping), so a resumed run
reproduces the uninterrupted one exactly on the same backend (bit for bit on NumPy). Files go through
:mod:`xpnet.files` (atomic: a kill at any moment leaves the previous checkpoint or the new one). The functions
here take the :class:`~xpnet.engine.trainer.Trainer` whose state they write or restore.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ModelFileError
from ..files import check_destination, read_model_file, write_model_file
from ..files.atomic import remove_stale_temporaries as _remove_stale
from .callbacks import Callback
from .history import History

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["CHECKPOINT_KIND", "check_checkpoint_path", "data_fingerprint", "read_checkpoint",
           "remove_stale_temporaries", "restore_callback_states", "restore_checkpoint", "run_config",
           "write_checkpoint"]

#: The ``kind`` of a training checkpoint file (see :meth:`Trainer.fit`'s ``checkpoint``).
CHECKPOINT_KIND = "TrainingCheckpoint"
_CHECKPOINT_VERSION = 1


def write_checkpoint(trainer: Trainer, path: Path, config: dict[str, Any], active: Sequence[Callback]) -> None:
    """Write the training state to ``path`` atomically (one host copy of the arrays per checkpoint)."""
    net = trainer.network
    host = net.backend.to_numpy
    tensors = {f"param/{k}": host(v) for k, v in net.parameters.items()}
    tensors.update({f"optimizer/{k}": host(v) for k, v in trainer.optimizer.state.items()})
    states = []
    for cb in _stateful(active):
        state, arrays = cb._checkpoint_state(trainer)
        tensors.update({f"callback{len(states)}/{k}": host(v) for k, v in arrays.items()})
        states.append({"class": type(cb).__name__, "state": state})
    meta = {
        "kind": CHECKPOINT_KIND,
        "checkpoint_version": _CHECKPOINT_VERSION,
        "epoch": trainer.epoch,
        "stopped": bool(trainer.stop_training),
        # The block DNN files have, so xpnet.load(checkpoint) gives the network.
        "network": {**config["network"], "init": net.init, "seed": net.seed, "n_iter": net.n_iter_},
        "settings": config,
        "optimizer_t": int(trainer.optimizer.t),
        "generators": {"shuffle": _json_state(trainer._shuffle_rng.bit_generator.state),
                       "dropout": _json_state(trainer._dropout_rng.bit_generator.state)},
        "history": trainer.history.as_dict(),
        "callbacks": states,
    }
    write_model_file(path, tensors, meta)

def read_checkpoint(trainer: Trainer, path: Path, config: dict[str, Any], active: Sequence[Callback]
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and check a checkpoint before anything is changed: ``(tensors, meta)``."""
    tensors, meta = read_model_file(path)
    if meta.get("kind") != CHECKPOINT_KIND:
        raise ModelFileError(f"cannot resume from '{path}': it is a {meta.get('kind')} model file, not a "
                             "training checkpoint (those are written by fit(..., checkpoint=PATH))")
    version = meta.get("checkpoint_version")
    if version != _CHECKPOINT_VERSION:
        raise ModelFileError(f"cannot resume from '{path}': checkpoint version {version!r}, this xpnet reads "
                             f"version {_CHECKPOINT_VERSION}")
    saved = meta.get("settings")
    if not isinstance(saved, dict):
        raise ModelFileError(f"cannot resume from '{path}': the checkpoint's settings are missing")
    # A checkpoint written before fingerprints (or of a streamed source, which has none) is not refused for it.
    keys = [k for k, v in config.items() if saved.get(k) != v and k != "data_fingerprint"]
    if keys:
        exc = ConfigError(f"cannot resume from '{path}': it was written by a run with other settings or data ("
                          + "; ".join(f"{k}: {saved.get(k)!r} in the checkpoint, {config[k]!r} here" for k in keys)
                          + "); resume with the same ones, or start afresh without resuming (which overwrites the "
                          "checkpoint)")
        # The keys, so a caller with its own names for them (the command's flags) can say which to change.
        exc.differing_settings = keys  # type: ignore[attr-defined]
        raise exc
    mine, theirs = config.get("data_fingerprint"), saved.get("data_fingerprint")
    if mine is not None and theirs is not None and mine != theirs:
        exc = ConfigError(f"cannot resume from '{path}': it was written by a run on other data (the training "
                          f"examples' fingerprint is {theirs[:12]}... in the checkpoint, {mine[:12]}... here, with "
                          f"{saved.get('examples')} examples in both); resume with the same data, or start afresh "
                          "without resuming (which overwrites the checkpoint)")
        exc.differing_settings = ["data_fingerprint"]  # type: ignore[attr-defined]
        raise exc
    names = [type(cb).__name__ for cb in _stateful(active)]
    saved_names = [c.get("class") for c in meta.get("callbacks") or [] if isinstance(c, dict)]
    if names != saved_names:
        exc = ConfigError(f"cannot resume from '{path}': it holds the state of the callbacks {saved_names}, "
                          f"this run has {names}; resume with the same callbacks")
        exc.differing_settings = ["callbacks"]  # type: ignore[attr-defined]  (the command names its flags)
        raise exc
    net = trainer.network
    want = {f"param/W{l}": (net.layer_dims[l], net.layer_dims[l - 1]) for l in range(1, net.num_layers + 1)}
    want.update({f"param/b{l}": (net.layer_dims[l], 1) for l in range(1, net.num_layers + 1)})
    for key, shape in want.items():
        if key not in tensors or tuple(tensors[key].shape) != shape:
            raise ModelFileError(f"cannot resume from '{path}': tensor {key!r} is missing or not of shape "
                                 f"{shape}")
    try:
        int(meta["epoch"]), int(meta["optimizer_t"]), meta["history"]["loss"]
        for name in ("shuffle", "dropout"):
            # Set on a fresh generator of the run's kind: a state of another kind fails here, not half-way through
            # restoring the run.
            probe = type(getattr(trainer, f"_{name}_rng").bit_generator)()
            probe.state = _state_from_json(meta["generators"][name])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"cannot resume from '{path}': the checkpoint is malformed ({exc!r})") from None
    return tensors, meta

def restore_checkpoint(trainer: Trainer, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Put the checkpoint's state in place (arrays to the backend; new dicts, which the in-place step
    adopts before writing into them)."""
    net = trainer.network
    bk = net.backend
    net.parameters = {k[6:]: bk.asarray(v) for k, v in tensors.items() if k.startswith("param/")}
    trainer.optimizer.state = {k[10:]: bk.asarray(v) for k, v in tensors.items() if k.startswith("optimizer/")}
    trainer.optimizer.t = int(meta["optimizer_t"])
    trainer.epoch = int(meta["epoch"])
    trainer.stop_training = bool(meta.get("stopped"))
    trainer._shuffle_rng.bit_generator.state = _state_from_json(meta["generators"]["shuffle"])
    trainer._dropout_rng.bit_generator.state = _state_from_json(meta["generators"]["dropout"])
    saved = meta["history"]
    h = trainer.history
    trainer.history = History(h.metric_name, h.backend, h.device, h.dtype,
                           {k: list(saved.get(k) or [None] * len(saved["loss"])) for k in History.KEYS})
    trainer.resumed_epoch = trainer.epoch

def restore_callback_states(trainer: Trainer, tensors: dict[str, Any], meta: dict[str, Any],
                        active: Sequence[Callback]) -> None:
    bk = trainer.network.backend
    for i, (cb, saved) in enumerate(zip(_stateful(active), meta["callbacks"], strict=True)):
        prefix = f"callback{i}/"
        arrays = {k[len(prefix):]: bk.asarray(v) for k, v in tensors.items() if k.startswith(prefix)}
        cb._restore_checkpoint_state(trainer, saved["state"], arrays)

def run_config(trainer: Trainer, source: Any, validation_data: Any) -> dict[str, Any]:
    """What a checkpoint records of the run and a resume must share: the trainer's settings, the numbers of
    examples and the data's fingerprint (:func:`data_fingerprint`)."""
    n_val = None if validation_data is None else int(validation_data[0].shape[1])
    return {**trainer._settings(), "examples": int(source.m), "validation_examples": n_val,
            "data_fingerprint": data_fingerprint(trainer.network.backend, source, validation_data)}


def data_fingerprint(backend: Any, source: Any, validation_data: Any) -> str | None:
    """SHA-256 of the examples a run trains and validates on (dtype, shape and bytes of each array), or None for a
    source whose data cannot be read twice to hash it (streamed from files, sharded across processes).

    Recorded in a checkpoint, so ``resume`` on other data of the same shape is refused instead of continuing a
    run on data it never started with. One host copy per array on a device (none for contiguous NumPy), once per
    ``fit`` that checkpoints.
    """
    import hashlib

    import numpy as np

    from .batches import ArrayBatches

    if not isinstance(source, ArrayBatches):
        return None
    h = hashlib.sha256()
    for a in (source.X, source.Y, source.w, *(validation_data or (None, None))):
        if a is None:
            h.update(b"none|")
            continue
        host = np.ascontiguousarray(backend.to_numpy(a))
        h.update(f"{host.dtype.str}|{host.shape}|".encode())
        h.update(memoryview(host.reshape(-1)).cast("B"))
    return h.hexdigest()


def check_checkpoint_path(path: Any) -> Path:
    """The checkpoint path, checked before training starts: a run must not fail after its first epoch."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ConfigError(f"checkpoint must be a file path, got {path!r}")
    # A directory, a special file, a missing or unwritable directory: the safe writer's own check.
    return check_destination(path, what="a checkpoint",
                             error=lambda p, reason: ModelFileError(f"cannot write checkpoint '{p}': {reason}"))


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files that writes of ``path`` left when their process was killed mid-write
    (:func:`xpnet.files.atomic.remove_stale_temporaries`: never a live writer's, which holds a lock on it)."""
    _remove_stale(Path(os.path.realpath(path)))


def _stateful(callbacks: Iterable[Callback]) -> list[Callback]:
    """The callbacks whose state a checkpoint keeps (those overriding ``_checkpoint_state``), in order."""
    return [cb for cb in callbacks if type(cb)._checkpoint_state is not Callback._checkpoint_state]


def _json_state(value: Any) -> Any:
    """A NumPy bit generator's state as JSON: integer arrays as exact lists of Python ints."""
    import numpy as np

    if isinstance(value, Mapping):
        return {k: _json_state(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__array__": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _state_from_json(value: Any) -> Any:
    """The inverse of :func:`_json_state`."""
    import numpy as np

    if isinstance(value, Mapping):
        if "__array__" in value:
            return np.asarray(value["data"], dtype=np.dtype(value["__array__"])).reshape(value["shape"])
        return {k: _state_from_json(v) for k, v in value.items()}
    return value

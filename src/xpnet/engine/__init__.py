"""The training engine: batch sources, steps, the gradient hook, optimizers and schedules, the loop,
callbacks, the history and checkpoints.

Everything here runs on any backend through the lecture layer's math (:mod:`xpnet.lecture`); nothing here
knows about scikit-learn, files of data or the command line. ``xpnet.training`` (the module's name before the
engine became a package) is this package.
"""

from __future__ import annotations

from . import optimizers
from .batches import ArrayBatches, BatchSource, check_batch_size
from .callbacks import Callback, EarlyStopping, ModelCheckpoint, ProgressBar
from .checkpoint import CHECKPOINT_KIND
from .dropout import check_dropout, dropout_masks
from .history import History
from .hooks import IDENTITY, GradientHook, IdentityHook
from .split import split_indices
from .steps import GenericStep, choose_step
from .trainer import Trainer

__all__ = [
    "CHECKPOINT_KIND",
    "IDENTITY",
    "ArrayBatches",
    "BatchSource",
    "Callback",
    "EarlyStopping",
    "GenericStep",
    "GradientHook",
    "History",
    "IdentityHook",
    "ModelCheckpoint",
    "ProgressBar",
    "Trainer",
    "check_batch_size",
    "check_dropout",
    "choose_step",
    "dropout_masks",
    "optimizers",
    "split_indices",
]

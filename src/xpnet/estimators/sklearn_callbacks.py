"""scikit-learn 1.9's callbacks protocol (:mod:`sklearn.callback`) in the estimators: ``est.set_callbacks(
ProgressBar(), ScoringMonitor(scoring=...))``, also inside ``Pipeline`` and ``GridSearchCV`` (which propagate
their callbacks). A ``fit`` call is a task whose subtasks are its epochs (for ``lbfgs``, a task without
subtasks); each epoch's end hands the callbacks the estimator as it is then (ready to predict) with the data
and ``sample_weight`` of the call, and a callback returning True stops training after that epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engine.callbacks import Callback

__all__ = ["EpochTasks", "fit_task"]


class EpochTasks(Callback):
    """A trainer callback opening one scikit-learn subtask per epoch under the fit's context ``ctx``."""

    def __init__(self, est: Any, ctx: Any, X: Any, y: Any, metadata: dict[str, Any]) -> None:
        self.est, self.ctx, self.X, self.y, self.metadata = est, ctx, X, y, metadata
        self._task: Any = None

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        self._task = self.ctx.subcontext(task_name="epoch")
        self._task.call_on_fit_task_begin(estimator=self.est, X=self.X, y=self.y, metadata=self.metadata)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Mapping[str, Any]) -> None:
        stop = self._task.call_on_fit_task_end(estimator=self.est, X=self.X, y=self.y, metadata=self.metadata,
                                               reconstruction_attributes={})
        self._task = None
        if stop:
            trainer.stop_training = True


def fit_task(est: Any, X: Any, y: Any, sample_weight: Any, epochs: int) -> tuple[list[Callback], Any]:
    """Open the fit task of a ``fit``/``partial_fit`` call of ``est`` when it has scikit-learn callbacks (its own
    or propagated by a meta-estimator): returns ``([EpochTasks], finish)``, where ``finish()`` ends the task;
    ``([], no-op)`` without callbacks. ``epochs`` is the most subtasks the call may run (0: none, lbfgs)."""
    if not (getattr(est, "_skl_callbacks", None) or hasattr(est, "_parent_callback_ctx")):
        return [], lambda: None
    ctx = est._init_callback_context(max_subtasks=epochs)
    metadata = {"sample_weight": sample_weight}
    ctx.call_on_fit_task_begin(estimator=est, X=X, y=y, metadata=metadata)

    def finish() -> None:
        ctx.call_on_fit_task_end(estimator=est, X=X, y=y, metadata=metadata, reconstruction_attributes={})

    return ([EpochTasks(est, ctx, X, y, metadata)] if epochs else []), finish

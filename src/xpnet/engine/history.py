"""The per-epoch record of a training run (:class:`History`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch record of a training run.

    ``columns`` maps ``epoch``, ``loss``, ``metric``, ``val_loss``, ``val_metric``, ``lr`` and ``time``
    (seconds since the run began) to lists with one entry per epoch (``None`` where there is no validation
    set). ``metric_name`` is ``"accuracy"`` for classifiers and ``"r2"`` for regression. ``backend``,
    ``device`` and ``dtype`` say where it ran. ``history["loss"]`` is ``history.columns["loss"]``.
    """

    metric_name: str
    backend: str
    device: str
    dtype: str
    columns: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in History.KEYS})

    KEYS = ("epoch", "loss", "metric", "val_loss", "val_metric", "lr", "time")

    def __getitem__(self, key: str) -> list[Any]:
        return self.columns[key]

    def __len__(self) -> int:
        return len(self.columns["epoch"])

    def append(self, logs: Mapping[str, Any]) -> None:
        for key in self.KEYS:
            self.columns[key].append(logs.get(key))

    def last(self) -> dict[str, Any]:
        """The last epoch's logs (empty before the first epoch)."""
        return {k: v[-1] for k, v in self.columns.items()} if len(self) else {}

    def summary(self) -> dict[str, Any]:
        """A small JSON-able summary for model files: where it ran, epochs, final and best values."""
        out: dict[str, Any] = {"metric_name": self.metric_name, "backend": self.backend, "device": self.device,
                               "dtype": self.dtype, "epochs": len(self)}
        if len(self):
            out.update({f"final_{k}": v for k, v in self.last().items() if k not in ("epoch",) and v is not None})
            vals = [v for v in self.columns["val_loss"] if v is not None]
            if vals:
                out["best_val_loss"] = min(vals)
        return out

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-able: the columns plus ``metric_name``, ``backend``, ``device``, ``dtype``."""
        return {"metric_name": self.metric_name, "backend": self.backend, "device": self.device,
                "dtype": self.dtype, **{k: list(v) for k, v in self.columns.items()}}


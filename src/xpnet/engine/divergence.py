"""Divergence: when training has gone wrong beyond repair, and the :class:`~xpnet.errors.DivergenceError` that
says where, with what loss and learning rate, and what the network keeps.

A NaN or infinite loss (or parameters) diverged; so did a finite loss that ran away: more than
:data:`RUNAWAY_FACTOR` times the first epoch loss of the run (:func:`runaway_limit`).
"""

from __future__ import annotations

from typing import Any

from ..errors import DivergenceError

__all__ = ["RUNAWAY_FACTOR", "divergence_error", "runaway_limit"]


#: A finite loss above this many times the run's first one (or above this many, when that was under 1) is a
#: divergence too: a run whose loss grew a millionfold is not going to come back, whatever float64 can hold.
RUNAWAY_FACTOR = 1e6


def runaway_limit(reference: float) -> float:
    """The loss above which a run has run away: ``RUNAWAY_FACTOR * max(reference, 1)``, ``reference`` being the
    run's first epoch loss (the floor at 1 keeps a run that starts near a perfect fit from being flagged for
    a rise that is still a small loss)."""
    return RUNAWAY_FACTOR * max(reference, 1.0)


def divergence_error(trainer: Any, xp: Any, costs: list[Any], loss: float, lr: float, *,
                     parameters_finite: bool = True, validation: bool = False,
                     runaway: float | None = None) -> DivergenceError:
    """The :class:`DivergenceError` of ``trainer``'s current epoch: which batch first had a non-finite loss (its
    costs read back now, once), the loss, the learning rate, what to try and what the network keeps."""
    import numpy as np

    e, n, t_end = trainer.epoch, len(costs), trainer.optimizer.t
    step = None
    if validation:
        what = f"the validation loss became {loss!r} after epoch {e + 1} (the training loss was finite)"
    elif runaway is not None:
        what = (f"the loss ran away to {loss:.3g} in epoch {e + 1}, more than {RUNAWAY_FACTOR:.0e} times the first "
                f"epoch's {runaway:.3g} (finite, but growing without bound)")
    else:
        host = trainer.network.backend.to_numpy(xp.stack(costs)) if costs else np.zeros(0)
        bad = np.flatnonzero(~np.isfinite(host))
        if bad.size:
            step = int(bad[0])
            loss = float(host[step])
            what = f"the loss became {loss!r} in epoch {e + 1}, mini-batch {step + 1} of {n}"
        elif not parameters_finite:
            step = n - 1
            what = (f"the parameters became non-finite (nan or inf) in epoch {e + 1}, at its last update "
                    f"(mini-batch {n} of {n}), while every batch's loss was finite")
        else:
            what = f"the loss summed over epoch {e + 1} overflowed to {loss!r} (each batch's loss was finite)"
    global_step = None if step is None else t_end - n + step + 1
    where = "" if global_step is None else f" (optimizer step {global_step})"
    if global_step == 1 and not validation and runaway is None:
        # The first batch's loss is computed at the initial parameters, before any update: no learning rate
        # made it, the scale of the data did.
        err = DivergenceError(
            f"training diverged: {what}{where}, at the initial parameters, before any update: the data or the "
            "targets are too large to compute the loss in this dtype; rescale them (the estimators' "
            "standardize=True) or compute in float64. The network keeps its initial parameters")
        err.epoch, err.step, err.global_step, err.loss, err.learning_rate = e, step, global_step, loss, lr
        return err
    kept = (f"from the end of epoch {e}, the last epoch whose loss was finite and in bounds" if e > 0 else
            "from before epoch 1, its initial ones")
    a0 = trainer.schedule.initial
    err = DivergenceError(
        f"training diverged: {what}{where}, at learning rate {lr:g}. Try a lower learning rate, e.g. "
        f"{a0 / 10:g} instead of {a0:g}. The network keeps its parameters {kept}")
    err.epoch, err.step, err.global_step, err.loss, err.learning_rate = e, step, global_step, loss, lr
    return err

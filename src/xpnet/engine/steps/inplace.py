"""The in-place training step: the fast path of the training loop on NumPy, CuPy and torch (DESIGN principle 8).

The generic step (:mod:`xpnet.engine.steps.generic`: :func:`~xpnet.lecture.network.fused_gradients`, the
gradient hook, then :meth:`Optimizer.update`) builds a new array
for every intermediate and every updated parameter. That is the Array API way, and on JAX or
array_api_strict the only one. On NumPy it costs time twice over: every large temporary is a fresh
allocation that the OS faults in page by page at every step (about 2.6 us per 4 KiB page on this class of
machine, see PERFORMANCE.md), and every ``a * b + c`` is several passes over memory.

Libraries with NumPy's ufunc interface (NumPy, and CuPy, whose ufuncs take the same ``out=``; torch through
:class:`~xpnet.engine.steps.torch_ops.TorchUfuncs`, its own ``out=`` operations under the same calls) can do better:
this module runs the *same arithmetic in the same order* as the generic step, but writes every result into
buffers allocated once per batch size (``Z``, ``A``, ``dA`` per layer, the gradients, one scratch array) and
updates the parameters and the optimizer's moving averages in place; after its first step (which creates the
optimizer's state) a step allocates only a few scalars and (1, m) rows. Because the operations and their order
are the generic step's, the results are bit-for-bit the generic path's on NumPy (and the parameters on torch, whose
reported softmax cost may differ in its last bits: see the torch tests there); ``tests/test_fast.py``
checks that for every activation, output, optimizer (scikit-learn's Adam and SGD, the estimators' default
solvers, included), L2, dropout and sample weights, and for the estimators' own losses (scikit-learn's
reported costs, computed by their ``fused_cost`` as the generic step does).

Who owns the arrays: the trainer hands this step parameter and state dicts it has copied for it
(:meth:`xpnet.engine.trainer.Trainer._adopt`), so arrays a caller passed in are never written into, and snapshots
(early stopping, divergence) copy. Everything here is used only through :func:`inplace_step`, which returns
``None`` (the generic path runs) for any other namespace, an activation or optimizer it does not know
(a user's subclass, or a user's ``Activation`` under a built-in name), a loss fused with another output, or
when ``XPNET_FAST=0`` is set (read when a trainer takes its first step with given settings; to compare the two
paths).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from ...device import xp as _xp
from ...lecture.activations import ACTIVATIONS
from ...lecture.losses import LOSSES
from ..hooks import IDENTITY, GradientHook, run_hook
from ..optimizers import Adam, GradientDescent, Momentum, RMSprop, SklearnAdam, SklearnSGD
from .torch_ops import TorchUfuncs

__all__ = ["InplaceStep", "inplace_step"]

_HIDDEN = ("relu", "leaky_relu", "sigmoid", "tanh", "linear")
_OUTPUT = ("sigmoid", "softmax", "linear")
_OPTIMIZERS = (GradientDescent, Momentum, RMSprop, Adam, SklearnAdam, SklearnSGD)


def _ufunc_module(xp: Any) -> Any:
    """:func:`xpnet.device.xp.ufunc_module` (a name of this module's own, so a test can stand in another)."""
    return _xp.ufunc_module(xp)


def enabled() -> bool:
    """False when ``XPNET_FAST=0`` asks for the generic path everywhere."""
    return os.environ.get("XPNET_FAST", "1").strip().lower() not in ("0", "false", "no", "off")


def inplace_step(network: Any, optimizer: Any, lambd: float, keep: Mapping[int, float],
                 hook: GradientHook = IDENTITY) -> InplaceStep | None:
    """The in-place step for ``network`` trained by ``optimizer``, or None where the generic path must run.

    Applies to NumPy, CuPy and torch networks (any torch device) whose hidden activation is one of relu,
    leaky_relu, sigmoid, tanh, linear and whose output is sigmoid, softmax or linear, trained by one of xpnet's
    own optimizers (an exact :class:`~xpnet.engine.optimizers.GradientDescent`, ``Momentum``, ``RMSprop``,
    ``Adam``, ``SklearnAdam`` or ``SklearnSGD``, not a subclass). The loss is the built-in one fused with the
    output, or another :class:`~xpnet.lecture.losses.Loss` fused with the same output (the estimators'
    scikit-learn costs): the gradient is the fused ``dZL = A[L] - Y`` either way, and such a loss's
    ``fused_cost`` is called as the generic step calls it. ``hook`` runs between backward and update (see
    :mod:`xpnet.engine.hooks`).
    """
    if not enabled():
        return None
    mod = _ufunc_module(network.backend.xp)
    if mod is None and _xp.is_torch_namespace(network.backend.xp):
        mod = TorchUfuncs(network.backend.device)  # torch's out= operations under the same calls
    if mod is None or network.hidden.name not in _HIDDEN or network.output.name not in _OUTPUT:
        return None
    # The registered objects themselves: a user's Activation that reuses a built-in name has its own math.
    if network.hidden is not ACTIVATIONS[network.hidden.name] or network.output is not ACTIVATIONS[network.output.name]:
        return None
    if type(optimizer) not in _OPTIMIZERS:
        return None
    # The generic step takes only fused_cost from the loss and the fused gradient from the output: a loss of
    # its own (the estimators' scikit-learn costs) runs here too, its fused_cost called as is.
    if getattr(network.loss, "output", None) != network.output.name:
        return None
    return InplaceStep(mod, network, lambd, keep, hook)


class _Buffers:
    """The per-batch-size arrays of one step: ``Z[l]`` (n_l, m) for every layer, ``A[l]`` and ``dA[l]``
    (n_l, m) for the hidden layers, ``D[l]`` (the dropped-out ``A[l] * M[l]``) where dropout is on, the output
    gradient ``dZL`` (n_L, m), a scratch ``T`` as large as the widest layer, and (1, m) rows for softmax."""

    def __init__(self, mod: Any, dims: list[int], m: int, dtype: Any, keep: Mapping[int, float]) -> None:
        L = len(dims) - 1
        self.Z = [None] + [mod.empty((dims[l], m), dtype=dtype) for l in range(1, L + 1)]
        self.A = [None] + [mod.empty((dims[l], m), dtype=dtype) for l in range(1, L + 1)]
        self.dA = [None] + [mod.empty((dims[l], m), dtype=dtype) for l in range(1, L)]
        self.D = {l: mod.empty((dims[l], m), dtype=dtype) for l in keep}
        self.dZL = mod.empty((dims[L], m), dtype=dtype)
        self.T = mod.empty((max(dims[1:]) * m,), dtype=dtype)
        # The scratch viewed in each layer's shape, made once rather than per step.
        self.Tl = [None] + [self.T[: dims[l] * m].reshape((dims[l], m)) for l in range(1, L + 1)]
        self.row = mod.empty((1, m), dtype=dtype)
        self.row2 = mod.empty((1, m), dtype=dtype)


class InplaceStep:
    """One training step with buffers reused across steps and in-place updates.

    ``step(network, optimizer, X, Y, lr, masks, w) -> (cost, AL)`` computes exactly what the generic step
    (:func:`xpnet.lecture.network.fused_gradients`, the hook, ``optimizer.update``) computes (see there for the math:
    ``Z[l] = W[l] A[l-1] + b[l]``, fused ``dZ[L] = w (A[L] - Y) / m``, ``dW[l] = dZ[l] A[l-1]^T
    (+ lambd/m W[l])``, ``db[l] = sum_cols dZ[l]``, ``dA[l-1] = W[l]^T dZ[l]``, no ``dA0``), writing into
    ``network.parameters`` and ``optimizer.state`` in place. The caller has already counted the update in
    ``optimizer.t``. ``AL`` is a buffer that the next step overwrites; ``cost`` is a fresh 0-d value. ``X`` may
    be a transposed view of row-major batch data (the engine's batches are): the products take it as it is.

    With the identity hook each layer is updated as soon as its gradient is ready (while it is in cache);
    with another hook the whole backward pass runs first, the hook gets the gradient buffers, and then the L2
    term and the updates follow, layer by layer.
    """

    writes_in_place = True
    device_scalars = False  # True while xpnet.engine.steps.graph owns self.sc

    def __init__(self, mod: Any, network: Any, lambd: float, keep: Mapping[int, float],
                 hook: GradientHook = IDENTITY) -> None:
        self.mod = mod
        self.xp = network.backend.xp
        self.hook = hook
        self.dims = list(network.layer_dims)
        self.L = len(self.dims) - 1
        self.hidden = network.hidden.name
        self.output = network.output.name
        self.lambd = float(lambd)
        self.keep = dict(keep)
        self.dtype = network.dtype
        # The built-in loss fused with the output: its cost runs here in place; any other runs its own fused_cost.
        self._builtin_loss = next(loss for loss in LOSSES.values() if loss.output == self.output)
        self._keys = [(None, None, None, None)] + [(f"W{l}", f"b{l}", f"dW{l}", f"db{l}") for l in range(1, self.L + 1)]
        self._buffers: dict[int, _Buffers] = {}
        self._grads: dict[str, Any] = {}
        # One scratch as large as the largest parameter, viewed in each parameter's shape by the updates.
        self._scratch_size = max(self.dims[l] * self.dims[l - 1] for l in range(1, self.L + 1))
        self._scratch: Any = None
        if getattr(mod, "__name__", "") == "numpy":  # add.reduce is what np.sum calls, minus ~4 us of Python
            reduce = mod.add.reduce
            self._sum_into = lambda a, axis, out: reduce(a, axis, None, out, True)
        elif hasattr(mod, "sum_into"):  # torch: its own reduction writes into the buffer, the generic bits
            self._sum_into = mod.sum_into
        else:  # CuPy (tests/test_fast.py runs this branch on NumPy)
            self._sum_into = self._sum_by_product
        self._ones: Any = None
        self._no_grad = getattr(mod, "no_grad", None)  # torch's no_grad (TorchUfuncs); None for NumPy and CuPy

    # ------------------------------------------------------------------------------------ helpers
    def _buffers_for(self, m: int) -> _Buffers:
        buf = self._buffers.get(m)
        if buf is None:
            # A run has two batch sizes (the full ones and the last); a few more are kept for hand-written
            # step loops, then a new size starts afresh.
            if len(self._buffers) >= 4:
                self._buffers.clear()
            buf = self._buffers[m] = _Buffers(self.mod, self.dims, m, self.dtype, self.keep)
        return buf

    def _grad(self, key: str, like: Any) -> Any:
        g = self._grads.get(key)
        if g is None or g.shape != like.shape:
            g = self._grads[key] = self.mod.empty(like.shape, dtype=like.dtype)
        return g

    def _add_l2(self, W: Any, dW: Any, inv_m: float) -> None:
        """``dW += (lambd/m) W`` as the generic step computes it (the product first, in the scratch)."""
        S = self._scratch_like(W)
        self.mod.multiply(W, self.lambd * inv_m, out=S)
        self.mod.add(dW, S, out=dW)

    def _own(self, key: str, g: Any) -> Any:
        """A gradient the hook returned, as an array the updates may write into: the step's own buffer (copied
        into it when the hook returned another array)."""
        mine = self._grad(key, g)
        if g is not mine:
            mine[...] = g
        return mine

    def _scratch_like(self, a: Any) -> Any:
        if self._scratch is None:  # released at the end of the last fit
            self._scratch = self.mod.empty((self._scratch_size,), dtype=self.dtype)
        return self._scratch[: math.prod(a.shape)].reshape(a.shape)  # torch's size is a method

    def _sum_by_product(self, a: Any, axis: int, out: Any) -> None:
        """``out = sum(a, axis, keepdims=True)`` for a 2-D ``a``, written straight into ``out`` as a product with a
        vector of ones: ``a @ 1`` (k, 1) for ``axis=1``, ``1^T @ a`` (1, k) for ``axis=0`` (one GEMV).

        CuPy's ``sum(..., out=)`` reduces through CUB, which allocates a temporary and copies it into ``out``:
        the product allocates nothing. The sum is the same up to the order of the additions (rounding only;
        ``tests/test_fast.py`` bounds the difference)."""
        k = a.shape[axis]
        ones = self._ones
        if ones is None or ones.shape[0] < k or ones.dtype != a.dtype:
            ones = self._ones = self.mod.ones((max(k, 1),), dtype=a.dtype)
        if axis == 1:
            self.mod.matmul(a, ones[:k].reshape((k, 1)), out=out)
        else:
            self.mod.matmul(ones[:k].reshape((1, k)), a, out=out)

    def release(self) -> None:
        """Drop every buffer (the end of a ``fit`` call), so a fitted model holds only its parameters and
        optimizer state; the next step allocates them again."""
        self._buffers.clear()
        self._grads.clear()
        self._scratch = self._ones = None

    # --------------------------------------------------------------------------- activations
    def _sigmoid_into(self, Z: Any, out: Any, T: Any) -> None:
        # The generic sigmoid, where(Z >= 0, 1/(1+e), e/(1+e)) with e = exp(-|Z|): its numerator is 1 where
        # Z >= 0 and e elsewhere, that is max([Z >= 0], e) since e <= 1. Same operands, same bits.
        mod = self.mod
        mod.abs(Z, out=T)
        mod.negative(T, out=T)
        mod.exp(T, out=T)
        mod.greater_equal(Z, 0.0, out=out)
        mod.maximum(out, T, out=out)
        mod.add(T, 1.0, out=T)
        mod.divide(out, T, out=out)

    def _hidden_forward(self, Z: Any, A: Any, T: Any) -> None:
        mod, name = self.mod, self.hidden
        if name == "relu":
            mod.maximum(Z, 0.0, out=A)
        elif name == "leaky_relu":
            # where(Z > 0, Z, 0.01 Z) == max(Z, 0.01 Z) for every Z (NaN included).
            mod.multiply(Z, 0.01, out=A)
            mod.maximum(Z, A, out=A)
        elif name == "sigmoid":
            self._sigmoid_into(Z, A, T)
        elif name == "tanh":
            mod.tanh(Z, out=A)
        else:
            A[...] = Z

    def _hidden_backward(self, dA: Any, Z: Any, A: Any, T: Any) -> None:
        """``dA *= g'(Z)`` in place; ``A = g(Z)`` before dropout (sigmoid and tanh take g' from it)."""
        mod, name = self.mod, self.hidden
        if name == "relu":
            mod.greater(Z, 0.0, out=T)
            mod.multiply(dA, T, out=dA)
        elif name == "leaky_relu":
            mod.greater(Z, 0.0, out=T)
            mod.multiply(T, 1.0 - 0.01, out=T)
            mod.add(T, 0.01, out=T)
            mod.multiply(dA, T, out=dA)
        elif name == "sigmoid":
            mod.subtract(1.0, A, out=T)
            mod.multiply(A, T, out=T)
            mod.multiply(dA, T, out=dA)
        elif name == "tanh":
            mod.multiply(A, A, out=T)
            mod.subtract(1.0, T, out=T)
            mod.multiply(dA, T, out=dA)

    def _output_and_cost(self, buf: _Buffers, Y: Any, w: Any, m: int) -> tuple[Any, Any]:
        """``AL = g_L(ZL)`` into its buffer and the fused cost from the logits (as :mod:`xpnet.losses`)."""
        return self._output_into(buf, Y, w, m, want_cost=True)

    def _output_into(self, buf: _Buffers, Y: Any, w: Any, m: int, *, want_cost: bool) -> tuple[Any, Any]:
        """``AL = g_L(ZL)`` into its buffer, and the built-in fused cost when ``want_cost`` (else None)."""
        mod = self.mod
        L = self.L
        ZL, AL, T = buf.Z[L], buf.A[L], buf.Tl[L]
        if self.output == "softmax":
            top, total = buf.row, buf.row2
            mod.max(ZL, axis=0, keepdims=True, out=top)
            mod.subtract(ZL, top, out=T)  # the shifted logits, shared by softmax and its loss
            mod.exp(T, out=AL)
            self._sum_into(AL, 0, total)
            mod.divide(AL, total, out=AL)
            if not want_cost:
                return AL, None
            # losses._cce_fused: terms = Y (log(sum(exp(shifted))) - shifted).
            mod.log(total, out=total)
            mod.subtract(total, T, out=T)
            mod.multiply(Y, T, out=T)
        elif self.output == "sigmoid":
            self._sigmoid_into(ZL, AL, T)
            if not want_cost:
                return AL, None
            # losses._bce_fused: logaddexp(ZL, 0) - Y ZL.
            mod.logaddexp(ZL, 0.0, out=T)
            mod.multiply(Y, ZL, out=buf.dZL)  # dZL is free until the backward pass starts
            mod.subtract(T, buf.dZL, out=T)
        else:
            AL[...] = ZL
            if not want_cost:
                return AL, None
            # losses._mse_fused: 0.5 (1/m) sum (ZL - Y)^2.
            mod.subtract(ZL, Y, out=T)
            mod.multiply(T, T, out=T)
        if w is not None:
            mod.multiply(T, w, out=T)
        cost = (1.0 / m) * mod.sum(T)
        if self.output == "linear":
            cost = 0.5 * cost
        return AL, cost

    # ------------------------------------------------------- what a device-specific step may replace
    # (xpnet.engine.steps.fused: the same arithmetic in fewer kernels)
    def _bias_hidden(self, Z: Any, b: Any, A: Any, T: Any) -> None:
        """``Z += b`` (bias broadcast over the columns), then ``A = g(Z)`` for the hidden activation."""
        self.mod.add(Z, b, out=Z)
        self._hidden_forward(Z, A, T)

    def _output_gradient(self, buf: _Buffers, AL: Any, Y: Any, w: Any, inv_m: float) -> None:
        """The fused output gradient ``dZL = (AL - Y) / m`` (times ``w`` per example) into ``buf.dZL``."""
        mod, dZ = self.mod, buf.dZL
        mod.subtract(AL, Y, out=dZ)
        if w is None:
            mod.multiply(dZ, inv_m, out=dZ)
        else:
            mod.multiply(w, inv_m, out=buf.row)  # the softmax rows are free again
            mod.multiply(dZ, buf.row, out=dZ)

    def _update_rule(self, name: str) -> Any:
        """The in-place update of optimizer ``name``: ``rule(step, optimizer, key, p, g, lr)``."""
        return _UPDATES[name]

    # --------------------------------------------------------------------------------- the step
    def __call__(self, network: Any, optimizer: Any, X: Any, Y: Any, lr: float, masks: Any,
                 w: Any) -> tuple[Any, Any]:
        """One step on ``X`` (n_x, m), ``Y`` (n_L, m) with learning rate ``lr``, dropout ``masks`` (``{l: M[l]}``
        or None) and per-example weights ``w`` ((1, m) or None); updates ``network.parameters`` and
        ``optimizer.state`` in place and returns ``(cost, AL)``. On torch the step runs without autograd (torch
        refuses ``out=`` writes that autograd would have to record, as for tensors that require gradients)."""
        guard = self._no_grad
        if guard is None:
            return self._step(network, optimizer, X, Y, lr, masks, w)
        with guard():
            return self._step(network, optimizer, X, Y, lr, masks, w)

    def _step(self, network: Any, optimizer: Any, X: Any, Y: Any, lr: float, masks: Any,
              w: Any) -> tuple[Any, Any]:
        params = network.parameters
        mod = self.mod
        L, m = self.L, X.shape[1]
        buf = self._buffers_for(m)
        masks = masks or {}
        inputs = [X]  # A[0] .. A[L-1] as the next layer sees them (after dropout)
        A = X
        keys = self._keys
        for l in range(1, L + 1):
            Z = buf.Z[l]
            mod.matmul(params[keys[l][0]], A, out=Z)
            if l < L:
                A = buf.A[l]
                self._bias_hidden(Z, params[keys[l][1]], A, buf.Tl[l])
                if l in masks:
                    mod.multiply(A, masks[l], out=buf.D[l])
                    A = buf.D[l]
                inputs.append(A)
            else:
                mod.add(Z, params[keys[l][1]], out=Z)
        loss = network.loss
        own_cost = loss is not self._builtin_loss
        if own_cost:
            # A loss of its own (the estimators'): the generic step's call, on the same logits; the output and
            # its gradient stay this class's (a subclass's fused cost-and-gradient kernels assume the built-in).
            AL, _ = InplaceStep._output_into(self, buf, Y, w, m, want_cost=False)
            cost = loss.fused_cost(self.xp, buf.Z[L], Y, w)
        else:
            AL, cost = self._output_and_cost(buf, Y, w, m)
        if self.lambd:
            # network.l2_penalty, the same sum in the same order, squares written into the scratch.
            penalty = 0
            for l in range(1, L + 1):
                W = params[keys[l][0]]
                S = self._scratch_like(W)
                mod.multiply(W, W, out=S)
                penalty = penalty + mod.sum(S)
            cost = cost + (0.5 * self.lambd / m) * penalty

        inv_m = 1.0 / m
        dZ = buf.dZL
        (InplaceStep._output_gradient if own_cost else type(self)._output_gradient)(self, buf, AL, Y, w, inv_m)
        update = self._update_rule(optimizer.name)
        if not self.device_scalars:  # a captured graph's step holds device scalars it fills itself
            self.sc = step_scalars(optimizer, lr)
        # The identity hook (one process) lets each layer update while its gradient is in cache; any other
        # hook needs every gradient first.
        deferred = not self.hook.is_identity
        grads: dict[str, Any] = {}
        for l in range(L, 0, -1):
            kW, kb, kdW, kdb = keys[l]
            W, b = params[kW], params[kb]
            dW, db = self._grad(kdW, W), self._grad(kdb, b)
            mod.matmul(dZ, inputs[l - 1].T, out=dW)
            if self.lambd and not deferred:
                self._add_l2(W, dW, inv_m)
            self._sum_into(dZ, 1, db)
            if l > 1:
                # dA[l-1] = W[l]^T dZ[l] needs the old W[l]: computed before layer l is updated.
                dA = buf.dA[l - 1]
                mod.matmul(W.T, dZ, out=dA)
                if l - 1 in masks:
                    mod.multiply(dA, masks[l - 1], out=dA)
                self._hidden_backward(dA, buf.Z[l - 1], buf.A[l - 1], buf.Tl[l - 1])
                dZ = dA
            if deferred:
                grads[kdW], grads[kdb] = dW, db
            else:
                # Updating layer l while its gradient is still in cache; the generic path updates all layers
                # after the backward pass, with the same values.
                update(self, optimizer, kW, W, dW, lr)
                update(self, optimizer, kb, b, db, lr)
        if deferred:
            grads = run_hook(self.hook, self.xp, grads, m)
            inv_m = 1.0 / self.hook.l2_batch_size(m)  # the global batch's, after a sum across processes
            for l in range(L, 0, -1):
                kW, kb, kdW, kdb = keys[l]
                dW = self._own(kdW, grads[kdW])
                if self.lambd:
                    self._add_l2(params[kW], dW, inv_m)
                update(self, optimizer, kW, params[kW], dW, lr)
                update(self, optimizer, kb, params[kb], self._own(kdb, grads[kdb]), lr)
        return cost, AL


# ------------------------------------------------------------------------------------ the updates
# Each mirrors the generic _step of xpnet.optimizers operation for operation (so the bits agree), writing
# into the parameter, the state arrays, the gradient buffer (no longer needed) and the scratch. The scalars
# that change from step to step (the rate, Adam's bias corrections) come from step.sc, which step_scalars fills
# once per step: host numbers, or 0-d device arrays holding them where a captured CUDA graph replays the
# updates (xpnet.engine.steps.graph).
def step_scalars(opt: Any, lr: float) -> dict[str, float]:
    """The per-step scalars of ``opt``'s update at its count ``opt.t`` and rate ``lr``, the same for every
    parameter: ``lr``; for Adam ``c2 = 1/sqrt(1 - beta2^t)`` and ``lr_c1 = lr / (1 - beta1^t)``; for
    scikit-learn's Adam ``neg_lr_t = -lr sqrt(1 - beta2^t) / (1 - beta1^t)``."""
    t = opt.t
    if opt.name == "adam":
        return {"lr": lr, "c2": 1.0 / math.sqrt(1.0 - opt.beta2**t), "lr_c1": lr * (1.0 / (1.0 - opt.beta1**t))}
    if opt.name == "sklearn_adam":
        return {"lr": lr, "neg_lr_t": -(lr * math.sqrt(1.0 - opt.beta2**t) / (1.0 - opt.beta1**t))}
    return {"lr": lr}


def _gd(step: InplaceStep, opt: Any, key: str, p: Any, g: Any, lr: float) -> None:
    mod = step.mod
    mod.multiply(g, step.sc["lr"], out=g)
    mod.subtract(p, g, out=p)


def _ema(step: InplaceStep, opt: Any, name: str, x: Any, beta: float, tmp: Any) -> Any:
    """The moving average ``state[name] = beta state[name] + (1 - beta) x`` in place (``(1 - beta) x`` on the
    first update, a new array the state then owns), as the generic optimizers compute it; ``tmp`` (which may be
    ``x`` itself) receives ``(1 - beta) x``. Returns the state array."""
    mod = step.mod
    v = opt.state.get(name)
    if v is None:
        v = opt.state[name] = (1.0 - beta) * x
    else:
        mod.multiply(x, 1.0 - beta, out=tmp)
        mod.multiply(v, beta, out=v)
        mod.add(v, tmp, out=v)
    return v


def _momentum(step: InplaceStep, opt: Any, key: str, p: Any, g: Any, lr: float) -> None:
    mod = step.mod
    v = _ema(step, opt, f"v_{key}", g, opt.beta, g)
    mod.multiply(v, step.sc["lr"], out=g)
    mod.subtract(p, g, out=p)


def _rmsprop(step: InplaceStep, opt: Any, key: str, p: Any, g: Any, lr: float) -> None:
    mod = step.mod
    T = step._scratch_like(p)
    mod.multiply(g, g, out=T)
    s = _ema(step, opt, f"s_{key}", T, opt.beta, T)
    mod.sqrt(s, out=T)
    mod.add(T, opt.epsilon, out=T)
    mod.divide(g, T, out=T)
    mod.multiply(T, step.sc["lr"], out=T)
    mod.subtract(p, T, out=p)


def _adam(step: InplaceStep, opt: Any, key: str, p: Any, g: Any, lr: float) -> None:
    mod, sc = step.mod, step.sc
    T = step._scratch_like(p)
    v = _ema(step, opt, f"v_{key}", g, opt.beta1, T)
    mod.multiply(g, g, out=g)
    s = _ema(step, opt, f"s_{key}", g, opt.beta2, g)
    mod.sqrt(s, out=T)
    mod.multiply(T, sc["c2"], out=T)
    mod.add(T, opt.epsilon, out=T)
    mod.divide(v, T, out=T)
    mod.multiply(T, sc["lr_c1"], out=T)
    mod.subtract(p, T, out=p)


def _sklearn_adam(step: InplaceStep, opt: Any, key: str, p: Any, g: Any, lr: float) -> None:
    # SklearnAdam._step: the moving averages as Adam's, then p + (-lr_t v) / (sqrt(s) + eps) with the rate
    # SklearnAdam.update computes (t already counted by the caller), in step.sc.
    mod = step.mod
    T = step._scratch_like(p)
    v = _ema(step, opt, f"v_{key}", g, opt.beta1, T)
    mod.multiply(g, g, out=g)
    s = _ema(step, opt, f"s_{key}", g, opt.beta2, g)
    mod.multiply(v, step.sc["neg_lr_t"], out=T)
    mod.sqrt(s, out=g)  # g is free once s has taken g^2
    mod.add(g, opt.epsilon, out=g)
    mod.divide(T, g, out=T)
    mod.add(p, T, out=p)


def _sklearn_sgd(step: InplaceStep, opt: Any, key: str, p: Any, g: Any, lr: float) -> None:
    # SklearnSGD._step: v = mu v - lr g (-lr g on the first update, a new array the state owns), then
    # p + (mu v - lr g) with Nesterov's momentum, else p + v.
    mod, mu, name = step.mod, opt.momentum, f"v_{key}"
    v = opt.state.get(name)
    if v is None:
        v = opt.state[name] = -lr * g
        mod.multiply(g, lr, out=g)
    else:
        mod.multiply(v, mu, out=v)
        mod.multiply(g, step.sc["lr"], out=g)
        mod.subtract(v, g, out=v)
    if opt.nesterov:
        T = step._scratch_like(p)
        mod.multiply(v, mu, out=T)
        mod.subtract(T, g, out=T)  # g holds lr g
        mod.add(p, T, out=p)
    else:
        mod.add(p, v, out=p)


_UPDATES = {"gd": _gd, "momentum": _momentum, "rmsprop": _rmsprop, "adam": _adam,
            "sklearn_adam": _sklearn_adam, "sklearn_sgd": _sklearn_sgd}

"""``solver="lbfgs"``: scipy's L-BFGS-B on the network's parameters as one flat vector, the objective and its
gradient computed by xpnet's network on the device (scikit-learn's ``_fit_lbfgs``, step for step).

The vector packs every ``W[l]^T`` (scikit-learn's ``coefs_`` orientation) row by row, then every ``b[l]``. The
objective is scikit-learn's batch loss on the whole training set,
``J = (1/m) sum_j w_j loss_j + alpha/(2m) sum_l ||W[l]||^2`` (its reported form:
:func:`xpnet.estimators.sklearn_rules.sklearn_loss`), and the gradient the fused backward pass with
``dW[l] += (alpha/m) W[l]``. scipy runs on the host in float64: each evaluation moves the vector to the device
once and the gradient back once. ``max_iter`` bounds the iterations, ``max_fun`` the evaluations, ``tol`` is
scipy's ``gtol``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import DivergenceError
from ..lecture.network import fused_gradients, l2_penalty
from .sparse import SparseRows

__all__ = ["fit_lbfgs"]


def _pack(params: dict[str, np.ndarray], L: int) -> np.ndarray:
    return np.concatenate([params[f"W{l}"].T.ravel() for l in range(1, L + 1)]
                          + [params[f"b{l}"].ravel() for l in range(1, L + 1)]).astype(np.float64)


def fit_lbfgs(est: Any, net: Any, XT: Any, T: Any, weights: Any, alpha: float) -> tuple[int, float]:
    """Minimize the estimator's objective over ``net``'s parameters from where they are; ``XT`` ``(n_x, m)``,
    ``T`` ``(n_L, m)`` and ``weights`` ``(1, m)`` or None on the network's backend, ``alpha`` the L2 strength.
    Sets the network's parameters to the solution and returns ``(iterations, final loss)``; warns
    ``ConvergenceWarning`` when ``max_iter`` or ``max_fun`` ran out first (scipy's status)."""
    import scipy.optimize
    from sklearn.exceptions import ConvergenceWarning

    bk, xp = net.backend, net.backend.xp
    dims, L = list(net.layer_dims), net.num_layers
    shapes = [(f"W{l}", (dims[l - 1], dims[l])) for l in range(1, L + 1)] + \
        [(f"b{l}", (dims[l], 1)) for l in range(1, L + 1)]

    def unpack(theta: np.ndarray) -> dict[str, Any]:
        out, start = {}, 0
        for key, shape in shapes:
            size = shape[0] * shape[1]
            block = theta[start:start + size].reshape(shape)
            out[key] = bk.asarray(np.ascontiguousarray(block.T if key[0] == "W" else block), dtype=net.dtype)
            start += size
        return out

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = unpack(theta)
        if not isinstance(XT, SparseRows):
            grads, cost, _ = fused_gradients(xp, params, XT, T, net.hidden, net.output, net.loss, lambd=alpha,
                                             sample_weight=weights, l2_gradients=True)
        else:
            # Sparse X, a chunk of rows densified at a time: each chunk's mean cost and gradients weighted by its
            # share of the rows, the L2 term added once.
            m = XT.shape[0]
            grads, cost = None, 0.0
            for start, rows in XT.chunks():
                c = rows.shape[0]
                w = None if weights is None else weights[:, start:start + c]
                g, cc, _ = fused_gradients(xp, params, xp.permute_dims(rows, (1, 0)), T[:, start:start + c],
                                           net.hidden, net.output, net.loss, sample_weight=w)
                share = c / m
                cost = cost + share * cc
                grads = {k: share * v for k, v in g.items()} if grads is None else \
                    {k: grads[k] + share * v for k, v in g.items()}
            if alpha:
                cost = cost + (0.5 * alpha / m) * l2_penalty(xp, params)
                grads = {k: v + (alpha / m) * params[k[1:]] if k.startswith("dW") else v for k, v in grads.items()}
        host = {k: bk.to_numpy(v) for k, v in grads.items()}
        return float(bk.to_numpy(cost)), _pack({k[1:]: v for k, v in host.items()}, L)

    iteration = [0]

    def report(intermediate_result: Any) -> None:
        iteration[0] += 1
        if est.verbose:
            print(f"Iteration {iteration[0]}, loss = {float(intermediate_result.fun):.8f}", flush=True)

    theta0 = _pack(net.get_parameters(), L)
    with bk.activate():
        result = scipy.optimize.minimize(objective, theta0, method="L-BFGS-B", jac=True, callback=report,
                                         options={"maxfun": int(est.max_fun), "maxiter": int(est.max_iter),
                                                  "gtol": float(est.tol)})
    if result.status != 0:  # scipy's own reason: the iteration or evaluation budget ran out, or a line search failed
        message = result.message.decode() if isinstance(result.message, bytes) else str(result.message)
        warnings.warn(f"lbfgs failed to converge after {result.nit} iterations ({message}); raise max_iter or "
                      "max_fun, or scale the data (StandardScaler)", ConvergenceWarning, stacklevel=4)
    n_iter = min(int(result.nit), int(est.max_iter))
    if not np.all(np.isfinite(result.x)):
        raise DivergenceError("solver='lbfgs' produced non-finite parameters: the data may hold very large values; "
                              "standardize X (StandardScaler) or set standardize=True")
    net.parameters = unpack(result.x)
    return int(n_iter), float(result.fun)

"""The estimators in model files (:mod:`xpnet.files`): what ``xpnet.save`` writes for a fitted estimator and how
``xpnet.load`` rebuilds it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..device import xp as _xp
from ..dnn import DNN
from ..engine import History
from ..engine.optimizers import Schedule
from ..errors import ModelFileError, XpnetError
from .checks import _check_fitted, _jsonable


class _ModelFileMixin:
    """How :class:`~xpnet.estimators.base._DNNEstimator` takes part in :mod:`xpnet.files`: ``_xpnet_export``,
    the classmethod ``_xpnet_import`` and its subclass hook ``_import_extra``."""

    def _xpnet_export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        _check_fitted(self, "be saved")
        tensors, meta = self.network_._xpnet_export()
        if meta.get("network", {}).get("output") == "exp":
            # The Poisson regressor's e^Z is its own (params loss='poisson' restores it): the file names the layer
            meta["network"]["output"] = "linear"
        if self.mean_ is not None:
            tensors["mean"], tensors["scale"] = np.asarray(self.mean_), np.asarray(self.scale_)
        if getattr(self, "y_mean_", None) is not None:
            tensors["y_mean"], tensors["y_scale"] = np.asarray(self.y_mean_), np.asarray(self.y_scale_)
        params = {k: v for k, v in self.get_params().items() if k != "backend"}
        # What is inside, whatever set_params said since the fit (a warm start refuses another architecture).
        params["hidden_layer_sizes"] = list(self.network_.layer_dims[1:-1])
        try:
            same = self._hidden_activation() == self.network_.hidden.name
        except XpnetError:
            same = False
        if not same:
            params["activation"] = self.network_.hidden.name
        if params.get("dtype") is not None and not isinstance(params["dtype"], str):
            # a dtype object (np.float32, torch.float64) is not JSON: the file keeps its name, which loads back
            params["dtype"] = _xp.dtype_name(self.network_.backend.xp, self.network_.dtype)
        if not isinstance(params.get("init"), str):
            params["init"] = "glorot_uniform"  # the given starting arrays are not kept: the trained weights are
        if isinstance(params.get("dropout"), (list, tuple)):
            params["dropout"] = [float(d) for d in params["dropout"]]
        if isinstance(params.get("learning_rate"), Schedule):
            params["learning_rate"] = {"schedule": params["learning_rate"].describe()}
        if not isinstance(params.get("random_state"), (int, type(None))):
            params["random_state"] = None
        if params.get("class_weight") is not None and isinstance(params["class_weight"], dict):
            params["class_weight"] = [[_jsonable(k), float(v)] for k, v in params["class_weight"].items()]
        meta.update(kind=type(self).__name__, params=params, n_features_in=int(self.n_features_in_),
                    network=meta.get("network"), history=self.history_.summary() if hasattr(self, "history_")
                    else None, loss_curve=[float(v) for v in getattr(self, "loss_curve_", [])],
                    normalization="standard" if self.mean_ is not None else None)
        history = getattr(self, "history_", None)
        meta["history_full"] = history.as_dict() if history is not None else None
        names = getattr(self, "feature_names_in_", None)
        meta["fitted"] = {
            "validation_scores": getattr(self, "validation_scores_", None),
            "best_validation_score": getattr(self, "best_validation_score_", None),
            "best_loss": getattr(self, "best_loss_", None),
            "t": int(getattr(self, "t_", 0)),
            "feature_names_in": None if names is None else [str(n) for n in names],
        }
        # Where the model came from, when `xpnet train` made it (evaluate --split test re-creates the split).
        meta["data"] = getattr(self, "xpnet_data_", None)
        if hasattr(self, "classes_"):
            meta["classes"] = [_jsonable(c) for c in self.classes_]
            meta["classes_dtype"] = str(np.asarray(self.classes_).dtype.kind)
            meta["multilabel"] = bool(getattr(self, "multilabel_", False))
        return tensors, meta

    def __getstate__(self) -> dict[str, Any]:
        """A fitted estimator on a backend other than NumPy pickles portably: its parameters, standardization and
        fitted attributes as host arrays and a model file's metadata (the optimizer state stays behind), so the
        pickle loads where that library or device is missing (:meth:`__setstate__`)."""
        state = super().__getstate__()  # type: ignore[misc]
        bk = state.get("_backend_")
        if bk is None or bk.name == "numpy" or "network_" not in state:
            return state
        tensors, meta = self._xpnet_export()
        params = set(self.get_params(deep=False))  # type: ignore[attr-defined]
        kept = {k: v for k, v in state.items() if k in params or k in ("_sklearn_version", "_skl_callbacks")}
        if not isinstance(kept.get("backend"), (str, type(None))):
            kept["backend"] = bk.spec  # a Backend object holds the device itself
        return {**kept, "_xpnet_portable": ({k: np.asarray(v) for k, v in tensors.items()}, meta, bk.spec)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; a portable pickle (see :meth:`__getstate__`) goes back onto its backend, or, where that backend
        cannot be used here (no CuPy, no GPU), onto NumPy with a warning (its ``backend`` parameter set to
        ``"numpy"``)."""
        portable = state.pop("_xpnet_portable", None)
        if portable is not None:
            import warnings

            from ..device.backend import get_backend
            from ..errors import BackendUnavailableError

            tensors, meta, spec = portable
            try:
                bk = get_backend(spec)
            except (BackendUnavailableError, ImportError) as exc:
                warnings.warn(f"this {type(self).__name__} was pickled on {spec}, which cannot be used here ({exc}); "
                              "it was unpickled onto NumPy (backend='numpy')", RuntimeWarning, stacklevel=2)
                bk = get_backend("numpy")
                state["backend"] = "numpy"
            self.__dict__.update(type(self)._xpnet_import(tensors, meta, bk).__dict__)
        super().__setstate__(state)  # type: ignore[misc]

    def to_backend(self, backend: Any) -> Any:
        """A copy of this fitted estimator computing on ``backend`` (a spec such as ``"numpy"``, ``"cupy:1"``,
        ``"torch:cuda:0"``, or a :class:`~xpnet.device.backend.Backend`): its parameters, standardization, classes
        and fitted attributes, moved through the host as a model file holds them. The optimizer state stays
        behind: a later ``warm_start`` fit or ``partial_fit`` of the copy starts a new optimizer. ``backend=None``
        in the copy's parameters follows the data, as in any estimator."""
        from ..device.backend import get_backend

        _check_fitted(self, "move to another backend")
        tensors, meta = self._xpnet_export()
        bk = get_backend(backend)
        return type(self)._xpnet_import({k: np.asarray(v) for k, v in tensors.items()}, meta, bk)

    @classmethod
    def _xpnet_import(cls, tensors: dict[str, Any], meta: dict[str, Any], backend: Any) -> Any:
        params = dict(meta.get("params") or {})
        if isinstance(params.get("class_weight"), list):
            params["class_weight"] = {(k if not isinstance(k, list) else tuple(k)): v
                                      for k, v in params["class_weight"]}
        if isinstance(params.get("learning_rate"), dict):
            try:
                params["learning_rate"] = Schedule(**params["learning_rate"]["schedule"])
            except (KeyError, TypeError):
                raise ModelFileError("the file's learning-rate schedule is malformed") from None
        for key in ("dropout", "hidden_layer_sizes"):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])  # JSON has no tuples; get_params() should read as it did
        try:
            est = cls(**params)
        except TypeError as exc:
            raise ModelFileError(f"the file's estimator parameters do not fit {cls.__name__}: {exc}") from None
        est.backend = backend
        extra = ("mean", "scale", "y_mean", "y_scale")
        network = DNN._xpnet_import({k: v for k, v in tensors.items() if k not in extra}, meta, backend)
        if params.get("loss") == "poisson":
            from .sklearn_rules import exp_output

            network.output = exp_output()
        est.network_ = network
        est._backend_ = network.backend
        n_in = meta.get("n_features_in")
        if n_in != network.layer_dims[0]:
            raise ModelFileError(f"n_features_in {n_in!r} does not match the network's input size "
                                 f"{network.layer_dims[0]}")
        est.n_features_in_ = int(n_in)
        est.mean_ = est.scale_ = None
        if "mean" in tensors or "scale" in tensors:
            mean, scale = tensors.get("mean"), tensors.get("scale")
            if mean is None or scale is None or mean.shape != (n_in,) or scale.shape != (n_in,):
                raise ModelFileError(f"normalization tensors must be 'mean' and 'scale' of shape ({n_in},)")
            est.mean_, est.scale_ = mean, scale
            est._mean_b = network.backend.asarray(mean, dtype=network.dtype)
            est._scale_b = network.backend.asarray(scale, dtype=network.dtype)
        est.y_mean_ = est.y_scale_ = None
        if "y_mean" in tensors or "y_scale" in tensors:
            y_mean, y_scale = tensors.get("y_mean"), tensors.get("y_scale")
            n_out = (network.layer_dims[-1],)
            if y_mean is None or y_scale is None or y_mean.shape != n_out or y_scale.shape != n_out:
                raise ModelFileError(f"target normalization tensors must be 'y_mean' and 'y_scale' of shape {n_out}")
            est.y_mean_, est.y_scale_ = y_mean, y_scale
            est._y_mean_b = network.backend.asarray(y_mean.reshape(1, -1), dtype=network.dtype)
            est._y_scale_b = network.backend.asarray(y_scale.reshape(1, -1), dtype=network.dtype)
        est.loss_curve_ = list(meta.get("loss_curve") or [])
        est.n_iter_ = len(est.loss_curve_)
        est.loss_ = est.loss_curve_[-1] if est.loss_curve_ else None
        fitted = meta.get("fitted") if isinstance(meta.get("fitted"), dict) else {}
        est.validation_scores_ = fitted.get("validation_scores")
        est.best_validation_score_ = fitted.get("best_validation_score")
        est.best_loss_ = fitted.get("best_loss")
        est.t_ = int(fitted.get("t") or 0)
        if fitted.get("feature_names_in") is not None:
            est.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
        if isinstance(meta.get("data"), dict):
            est.xpnet_data_ = meta["data"]
        full = meta.get("history_full")
        if isinstance(full, dict):
            try:
                history = History(full["metric_name"], full["backend"], full["device"], full["dtype"],
                                  {k: list(full[k]) for k in History.KEYS})
            except (KeyError, TypeError):
                raise ModelFileError("the file's training history is malformed") from None
            est.history_ = history
        est.n_layers_ = network.num_layers + 1
        est.n_outputs_ = network.layer_dims[-1]
        est.out_activation_ = {"sigmoid": "logistic", "softmax": "softmax", "linear": "identity", "exp": "exp"}[
            network.output.name]
        est._import_extra(meta)
        return est

    def _import_extra(self, meta: dict[str, Any]) -> None:
        """Subclass hook: restore what only that estimator has (``classes_``)."""

"""The schemas of the built-in kinds' metadata, checked in full when a file is loaded.

A file whose checksums were recomputed after its metadata was edited passes every integrity check; without a
schema its forged values (``classes: [{}, 1]``, ``hidden_layer_sizes: {}``, a history of strings) would load and
fail later, in ``score`` or ``save``, as some other exception. :func:`validate_metadata` checks the types, ranges
and lengths of everything the built-in kinds read (JSON Schema, by the ``jsonschema`` library) and then the
relations between fields that a schema cannot express (as many classes as output units, as many feature names as
inputs, history columns of one length). Kinds registered by others have no schema here and are read as before.
"""

from __future__ import annotations

import math
from typing import Any

from .paths import _read_error, _write_error

_INT32 = 2**31 - 1
_SEED = 2**64 - 1  # numpy's SeedSequence takes any non-negative integer; a random_state up to 2**32 - 1
_NAME = {"type": "string", "maxLength": 200}
_FINITE = {"type": "number"}  # "number" is finite here (see _finite_number); "real" also takes NaN and inf
_REAL_OR_NULL = {"type": ["real", "null"]}
_COUNT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
# What the estimators accept is what a file must take back (a setting fit took, a file load refuses, is a model
# lost): names in any case with spaces around them, flags as bool or int (shuffle=1).
_FLAG = {"type": ["boolean", "integer"]}

_NETWORK = {
    "type": "object",
    "required": ["layer_dims", "hidden", "output", "dtype"],
    "properties": {
        "layer_dims": {"type": "array", "minItems": 2, "maxItems": 10_000,
                       "items": {"type": "integer", "minimum": 1, "maximum": _INT32}},
        "hidden": _NAME, "output": _NAME, "init": _NAME,
        "dtype": {"enum": ["float32", "float64"]},
        "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": _SEED},
        "n_iter": _COUNT,
    },
}

_HISTORY_FULL = {
    "type": "object",
    "required": ["metric_name", "backend", "device", "dtype", "epoch", "loss", "metric", "val_loss", "val_metric",
                 "lr", "time"],
    "properties": {
        "metric_name": _NAME, "backend": _NAME, "device": _NAME, "dtype": _NAME,
        "epoch": {"type": "array", "items": _COUNT},
        **{key: {"type": "array", "items": _REAL_OR_NULL}
           for key in ("loss", "metric", "val_loss", "val_metric", "lr", "time")},
    },
}

_SUMMARY = {"type": ["object", "null"], "additionalProperties": {"type": ["real", "string", "null"]}}

_PARAMS = {
    "type": "object",
    "properties": {
        "hidden_layer_sizes": {"type": "array", "maxItems": 9_998, "items": {"type": "integer", "minimum": 1,
                                                                               "maximum": _INT32}},
        "activation": _NAME, "solver": _NAME, "init": _NAME,
        "alpha": {"type": "number", "minimum": 0}, "tol": {"type": "number", "minimum": 0},
        "batch_size": {"anyOf": [{"type": "string", "pattern": r"^\s*(?i:auto|full)\s*$"},
                                 {"type": "integer", "minimum": 1}]},
        "learning_rate_init": {"type": "number", "exclusiveMinimum": 0},
        "learning_rate": {"anyOf": [_NAME, {"type": "object", "required": ["schedule"],
                                            "properties": {"schedule": {"type": "object"}}}]},
        "max_iter": {"type": "integer", "minimum": 1}, "n_iter_no_change": {"type": "integer", "minimum": 1},
        "momentum": {"type": "number", "minimum": 0, "maximum": 1},
        "beta_1": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "beta_2": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "epsilon": {"type": "number", "exclusiveMinimum": 0},
        "validation_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "dropout": {"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                              {"type": "array", "maxItems": 9_998,
                               "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}}]},
        "random_state": {"type": ["integer", "null"], "minimum": 0, "maximum": _SEED},
        "dtype": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": r"^\s*(?i:float32|float64)\s*$"}]},
        "verbose": _FLAG,
        "shuffle": _FLAG, "early_stopping": _FLAG, "warm_start": _FLAG, "standardize": _FLAG,
        "class_weight": {"anyOf": [{"type": "null"}, {"const": "balanced"},
                                   {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                                               "prefixItems": [{}, {"type": "number",
                                                                                    "minimum": 0}]}}]},
    },
}

_ESTIMATOR = {
    "type": "object",
    "required": ["kind", "network", "params", "n_features_in"],
    "properties": {
        "network": _NETWORK,
        "params": _PARAMS,
        "n_features_in": {"type": "integer", "minimum": 1, "maximum": _INT32},
        "trained_on": {"type": ["string", "null"]},
        "history": _SUMMARY,
        "costs": {"type": "array", "items": {"type": "real"}},
        "loss_curve": {"type": ["array", "null"], "items": {"type": "real"}},
        "normalization": {"enum": [None, "standard"]},
        "history_full": {"anyOf": [{"type": "null"}, _HISTORY_FULL]},
        "fitted": {"type": ["object", "null"], "properties": {
            "validation_scores": {"type": ["array", "null"], "items": {"type": "real"}},
            "best_validation_score": _REAL_OR_NULL,
            "best_loss": _REAL_OR_NULL,
            "t": _COUNT,
            "feature_names_in": {"type": ["array", "null"], "items": {"type": "string"}},
        }},
        "data": {"type": ["object", "null"], "properties": {
            "dataset": {"type": "string"},
            "test_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "seed": {"type": "integer", "minimum": 0, "maximum": _SEED},
            "task": {"enum": ["classification", "regression"]},
            "label_column": {"type": ["string", "null"]},
            "label_name": {"type": ["string", "null"]},
            "columns": {"type": ["array", "null"], "items": {"type": "string"}},
            "feature_names": {"type": ["array", "null"], "items": {"type": "string"}},
        }},
    },
}

_CLASSIFIER = {
    **_ESTIMATOR,
    "required": [*_ESTIMATOR["required"], "classes"],
    "properties": {
        **_ESTIMATOR["properties"],
        # All of one type (strings, numbers or booleans): checked with the relations below.
        "classes": {"type": "array", "items": {"type": ["string", "number", "boolean"]},
                    "minItems": 2, "maxItems": _INT32, "uniqueItems": True},
        "classes_dtype": {"enum": ["U", "S", "O", "i", "u", "f", "b"]},
    },
}

_DNN = {
    "type": "object",
    "required": ["kind", "network"],
    "properties": {
        "network": _NETWORK,
        "trained_on": {"type": ["string", "null"]},
        "history": _SUMMARY,
        "costs": {"type": ["array", "null"], "items": {"type": "real"}},
    },
}

_CHECKPOINT = {
    "type": "object",
    "required": ["kind", "checkpoint_version", "epoch", "network", "settings", "optimizer_t", "generators",
                 "history", "callbacks"],
    "properties": {
        "checkpoint_version": {"type": "integer"},
        "epoch": _COUNT,
        "stopped": {"type": "boolean"},
        "network": _NETWORK,
        "settings": {"type": "object"},
        "optimizer_t": _COUNT,
        "generators": {"type": "object", "required": ["shuffle", "dropout"],
                       "properties": {"shuffle": {"type": "object"}, "dropout": {"type": "object"}}},
        "history": {"type": "object", "required": ["loss"], "properties": _HISTORY_FULL["properties"]},
        "callbacks": {"type": "array", "items": {"type": "object", "required": ["class", "state"],
                                                 "properties": {"class": _NAME}}},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "DNN": _DNN,
    "DNNClassifier": _CLASSIFIER,
    "DNNRegressor": _ESTIMATOR,
    "TrainingCheckpoint": _CHECKPOINT,
}

_validators: dict[str, Any] = {}


def _finite_number(_checker: Any, value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _real(_checker: Any, value: Any) -> bool:
    # Histories may hold a NaN or inf loss (a run that stopped on it): those fields take any float.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validator(kind: str) -> Any:
    """The compiled validator of a built-in kind (built once; jsonschema is imported on first use)."""
    if kind not in _validators:
        import jsonschema

        base = jsonschema.Draft202012Validator
        checker = base.TYPE_CHECKER.redefine_many({"number": _finite_number, "real": _real})
        cls = jsonschema.validators.extend(base, type_checker=checker)
        _validators[kind] = cls(SCHEMAS[kind])
    return _validators[kind]


def _where(error: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") \
        or "the metadata"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({type(value).__name__})"


def validate_metadata(meta: dict[str, Any], path: Any, *, writing: bool = False) -> None:
    """Check a built-in kind's metadata against its schema and the relations between its fields.

    Parameters
    ----------
    meta : dict
        The model metadata read from a file (``meta["kind"]`` is a registered kind), or about to be written
        (``writing``: as JSON will give it back, so that no file is written that load would refuse).
    path : path-like
        The file, for the message.

    Raises
    ------
    ModelFileError
        Naming the first field that is of the wrong type, out of range, of the wrong length or inconsistent
        with another, and its value.
    """
    error_ = _write_error if writing else _read_error
    what = "the model's metadata would not load back" if writing else "its metadata is invalid"
    kind = meta.get("kind")
    if kind not in SCHEMAS:
        return
    validator = _validator(kind)
    import jsonschema

    # best_match descends into anyOf alternatives: "classes[0] = {} ({} is not of type 'string')" rather than
    # "classes is not valid under any of the given schemas".
    error = jsonschema.exceptions.best_match(validator.iter_errors(meta))
    if error is not None:
        # "is not valid under any of the given schemas" says little: name the field and the value instead.
        message = error.message if len(error.message) < 160 else error.validator + " check failed"
        raise error_(path, f"{what}: {_where(error)} = {_shown(error.instance)} ({message})")
    problem = _relations(meta)
    if problem:
        raise error_(path, f"{what}, it is inconsistent: {problem}" if writing
                     else f"its metadata is inconsistent: {problem}")


def _relations(meta: dict[str, Any]) -> str | None:
    """What a schema cannot say: sizes that must agree across fields."""
    dims = meta["network"]["layer_dims"]
    if meta["kind"] == "TrainingCheckpoint":
        lengths = {k: len(v) for k, v in meta["history"].items() if isinstance(v, list)}
        if len(set(lengths.values())) > 1:
            return f"the history's columns have different lengths {lengths}"
        return None
    if meta["kind"] == "DNN":
        return None
    n_in = meta["n_features_in"]
    if n_in != dims[0]:
        return f"n_features_in {n_in} but the network's input size is {dims[0]}"
    sizes = meta["params"].get("hidden_layer_sizes")
    if sizes is not None and list(sizes) != list(dims[1:-1]):
        return f"params.hidden_layer_sizes {sizes} but the network's hidden layers are {dims[1:-1]}"
    fitted = meta.get("fitted") or {}
    names = fitted.get("feature_names_in")
    if names is not None and len(names) != n_in:
        return f"{len(names)} feature names for {n_in} inputs"
    full = meta.get("history_full")
    if full is not None:
        lengths = {k: len(full[k]) for k in ("epoch", "loss", "metric", "val_loss", "val_metric", "lr", "time")}
        if len(set(lengths.values())) > 1:
            return f"the history's columns have different lengths {lengths}"
    data = meta.get("data") or {}
    columns = data.get("columns")
    if columns is not None and len(columns) != n_in + 1:
        return f"data.columns lists {len(columns)} columns for {n_in} features and a label"
    if meta["kind"] == "DNNClassifier":
        classes = meta["classes"]
        kinds = {str if isinstance(c, str) else bool if isinstance(c, bool) else float for c in classes}
        if len(kinds) > 1:
            return f"classes {_shown(classes)} mix types (strings, numbers, booleans)"
        expected = 1 if len(classes) == 2 and not meta.get("multilabel") else len(classes)
        if dims[-1] != expected:
            return f"{len(classes)} classes need {expected} output units, the network has {dims[-1]}"
        if meta.get("classes_dtype") in ("i", "u", "b") and not all(
                isinstance(c, (int, bool)) for c in classes):
            return f"classes_dtype {meta['classes_dtype']!r} but classes {_shown(classes)} are not integers"
        # Equal as numbers although unique as JSON values (1 and 1.0 and true): argmax would map two to one.
        if len({float(c) if not isinstance(c, str) else c for c in classes}) != len(classes):
            return f"classes {_shown(classes)} repeat a value"
    return None

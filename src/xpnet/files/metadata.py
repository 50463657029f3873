"""xpnet's own metadata in a model file's safetensors header.

The format version, the registry of model kinds (``"kind"`` -> the class that loads it) and the checks of the
model metadata: before a file is written (:func:`_check_meta_for_writing`) and when a header is read
(:func:`_parse_header`). Both consult the registry, so it lives here with them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .format import _METADATA_KEY, _check_entries, _reject_duplicates, _text_digest
from .paths import _read_error, _write_error

#: The model-file layout this xpnet writes, and the newest it reads. Bump it only for a change an older
#: xpnet would misread; adding an optional metadata key is not one.
FORMAT_VERSION = 1

# Model kind -> "module:qualname" (resolved with importlib when a file of that kind is loaded) or a class
# (put there by register_kind). Strings keep `import xpnet.io` from importing the estimators.
_KINDS: dict[str, str | type] = {
    "DNN": "xpnet.dnn:DNN",
    "TrainingCheckpoint": "xpnet.dnn:_TrainingCheckpointFile",
    "DNNClassifier": "xpnet.estimators:DNNClassifier",
    "DNNRegressor": "xpnet.estimators:DNNRegressor",
}

_FORMAT_NAME = "xpnet"
_RESERVED_META_KEYS = ("format_version", "xpnet_version")  # read_metadata adds these; a model may not use them


# --------------------------------------------------------------------------------------------------------
# Registry


def register_kind(kind: str, cls: type | str, *, replace: bool = False) -> type | str:
    """Make files whose metadata says ``"kind": kind`` load as ``cls``.

    Parameters
    ----------
    kind : str
        The name a model's ``_xpnet_export`` metadata uses, usually its class name.
    cls : type or str
        A class with a ``_xpnet_import`` classmethod, or ``"module:qualname"`` to import it lazily.
    replace : bool
        Allow re-pointing a kind that is already registered to something else. Registering the same
        target again is always allowed.

    Returns
    -------
    type or str
        ``cls``, unchanged.

    Raises
    ------
    ConfigError
        ``kind`` is not a non-empty string, ``cls`` is neither a suitable class nor a ``"module:qualname"``
        string, or ``kind`` is taken and ``replace`` is false.
    """
    if not isinstance(kind, str) or not kind.strip():
        raise ConfigError(f"a model kind must be a non-empty string, got {kind!r}")
    if isinstance(cls, str):
        module, sep, qualname = cls.partition(":")
        if not sep or not module or not qualname:
            raise ConfigError(f"register_kind({kind!r}, {cls!r}): a string target must be 'module:qualname'")
    elif not isinstance(cls, type) or not callable(getattr(cls, "_xpnet_import", None)):
        raise ConfigError(
            f"register_kind({kind!r}, {cls!r}): expected a class with an _xpnet_import classmethod "
            "or a 'module:qualname' string"
        )
    current = _KINDS.get(kind)
    if current is not None and current != cls and not replace:
        raise ConfigError(f"model kind {kind!r} is already registered as {current!r}; pass replace=True to re-point it")
    _KINDS[kind] = cls
    return cls


def _resolve_kind(kind: str, path: Any) -> type:
    """The class registered for ``kind``, importing it if registered by name."""
    target = _KINDS.get(kind)
    if target is None:
        raise _read_error(path, f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(_KINDS))}")
    if isinstance(target, type):
        return target
    import importlib

    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        # The file is fine; this xpnet cannot build the class. Still a ModelFileError so that `load` has one
        # failure type, but the message says it is the installation, not the file.
        raise _read_error(
            path, f"model kind {kind!r} is registered as {target!r}, which cannot be imported "
            f"({type(exc).__name__}: {exc}); is this xpnet installation complete?"
        ) from exc
    if not callable(getattr(obj, "_xpnet_import", None)):
        raise _read_error(path, f"model kind {kind!r} resolves to {obj!r}, which has no _xpnet_import")
    return obj


# --------------------------------------------------------------------------------------------------------
# Checks


def _plain_scalar(value: Any) -> Any:
    """A NumPy scalar (``np.int64(8)`` from ``np.arange``, ``np.float32``, ``np.bool_``) as the Python number JSON
    takes; anything else stays unserializable (``json.dumps`` then raises ``TypeError``)."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _check_meta_for_writing(meta: Any, path: Path) -> str:
    """The JSON text of ``meta``, after checking it can be loaded back."""
    if not isinstance(meta, dict):
        raise _write_error(path, f"the model's metadata must be a dict, got {type(meta).__name__}")
    kind = meta.get("kind")
    if not isinstance(kind, str) or not kind:
        raise _write_error(path, f"the model's metadata must name its kind as a non-empty string, got {kind!r}")
    if kind not in _KINDS:
        # Refuse now rather than write a file that load() would refuse later.
        raise _write_error(
            path, f"unknown model kind {kind!r}; register it first with xpnet.io.register_kind "
            f"(known kinds: {', '.join(sorted(_KINDS))})"
        )
    clash = [k for k in _RESERVED_META_KEYS if k in meta]
    if clash:
        raise _write_error(path, f"the model's metadata uses reserved key(s) {clash}")
    try:
        # NaN/Infinity stay allowed (Python's json reads them back): a diverged model can still be saved.
        return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=_plain_scalar)
    except (TypeError, ValueError) as exc:
        raise _write_error(path, f"the model's metadata is not JSON-serializable ({exc})") from exc


def _parse_header(raw: bytes, data_len: int, path: Any) -> tuple[dict[str, Any], dict[str, Any], int, str]:
    """Validate a header; return ``(header, model_meta, format_version, xpnet_version)``."""
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _read_error(path, f"corrupt header: not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _read_error(path, f"corrupt header: expected a JSON object, got {type(header).__name__}")

    file_meta = header.get(_METADATA_KEY)
    if file_meta is None or not isinstance(file_meta, dict) or file_meta.get("format") != _FORMAT_NAME:
        raise _read_error(path, "not an xpnet model file (its safetensors metadata has no format='xpnet'; "
                                "was it written by another tool?); save models with xpnet.io.save")
    if not all(isinstance(v, str) for v in file_meta.values()):
        raise _read_error(path, "corrupt header: safetensors metadata values must all be strings")

    written_by = file_meta.get("xpnet_version", "unknown")
    version_text = file_meta.get("format_version")
    if not isinstance(version_text, str) or not re.fullmatch(r"[0-9]{1,9}", version_text) \
            or int(version_text) < 1:
        raise _read_error(path, f"corrupt header: format_version {version_text!r} is not a positive integer")
    format_version = int(version_text)
    if format_version > FORMAT_VERSION:
        from .._version import __version__

        # Checked before the tensor entries: a newer format may describe them differently, and "upgrade"
        # is the useful message.
        raise _read_error(path, f"written by xpnet {written_by} (format {format_version}); this xpnet "
                                f"{__version__} reads format <= {FORMAT_VERSION}: upgrade xpnet "
                                "(pip install -U xpnet)")

    _check_entries(header, data_len, path)

    model_text = file_meta.get("xpnet")
    if model_text is None:
        raise _read_error(path, "corrupt header: the 'xpnet' model metadata is missing")
    # Files from before the metadata checksum have none and are read as before; a single damaged bit either
    # hits the key's name (and leaves the metadata intact) or the metadata (and is caught here).
    meta_digest = file_meta.get("meta_sha256")
    if meta_digest is not None and _text_digest(model_text) != meta_digest:
        raise _read_error(path, "corrupt file: the model metadata does not match the checksum in its header (the "
                                "file was damaged after it was written)")
    try:
        meta = json.loads(model_text, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError) as exc:
        raise _read_error(path, f"corrupt header: the 'xpnet' model metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise _read_error(path, f"corrupt header: the 'xpnet' model metadata is a {type(meta).__name__}, "
                                "not a JSON object")
    kind = meta.get("kind")
    if not isinstance(kind, str):
        raise _read_error(path, f"corrupt header: the model metadata's 'kind' is {kind!r}, not a string")
    if kind not in _KINDS:
        raise _read_error(path, f"unknown model kind {kind!r} (known kinds: {', '.join(sorted(_KINDS))}); "
                                "was it written by a newer xpnet or a plugin that is not imported?")
    return header, meta, format_version, written_by

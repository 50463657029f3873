"""Safe model files: save and load xpnet models in the safetensors format.

A model file is a plain `safetensors <https://github.com/huggingface/safetensors>`_ file: an 8-byte
little-endian header length, a JSON header, then the raw tensor bytes. Loading one never runs code: there
is no pickle anywhere, so a model file from an untrusted source can at worst be refused, never executed.

The header's string-to-string ``__metadata__`` holds

- ``"format"``: always ``"xpnet"`` (how a foreign safetensors file is told apart);
- ``"format_version"``: :data:`FORMAT_VERSION` as a decimal string;
- ``"xpnet_version"``: the xpnet version that wrote the file (for error messages and ``read_metadata``);
- ``"xpnet"``: the JSON of the model's own metadata dict, which names its ``"kind"`` (``"DNN"``,
  ``"DNNClassifier"``, ...);
- ``"sha256"``: a SHA-256 of the tensors (names, dtypes, shapes, bytes) and ``"meta_sha256"`` one of the
  ``"xpnet"`` text, so a damaged file is refused rather than loaded as a different model.

Models take part through two methods:

- ``model._xpnet_export() -> (tensors, meta)``: host NumPy arrays by name, and a JSON-serializable dict
  with a string ``"kind"``;
- ``cls._xpnet_import(tensors, meta, backend) -> model`` (a classmethod), which may raise
  :class:`~xpnet.errors.ModelFileError` when the tensors do not fit the architecture ``meta`` declares.

``kind`` is looked up in a registry of ``"module:qualname"`` strings, imported only when a file of that
kind is loaded, so importing this module imports neither NumPy nor safetensors.

The package's modules: :mod:`~xpnet.files.models` (``save``, ``load``, reading and writing model files),
:mod:`~xpnet.files.metadata` (the format version, the kinds registry, the checks of xpnet's metadata),
:mod:`~xpnet.files.format` (the safetensors container: dtypes, limits, header checks, digests),
:mod:`~xpnet.files.atomic` (atomic writes) and :mod:`~xpnet.files.paths` (paths and error messages).
"""

from __future__ import annotations

from .atomic import check_destination as check_destination
from .atomic import write_file_atomically as write_file_atomically
from .format import _digest as _digest
from .format import _text_digest as _text_digest
from .metadata import FORMAT_VERSION, register_kind
from .models import load, read_metadata, read_model_file, save, write_model_file

__all__ = [
    "FORMAT_VERSION",
    "check_destination",
    "load",
    "read_metadata",
    "read_model_file",
    "register_kind",
    "save",
    "write_model_file",
]

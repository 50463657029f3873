"""Model files (xpnet.io): round trips, atomic saves, and a refusal with a clear message for every bad file."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import xpnet
from xpnet import files as xio
from xpnet.errors import BackendUnavailableError, ConfigError, ModelFileError
from xpnet.files import atomic as xatomic
from xpnet.files import format as xformat
from xpnet.files import metadata as xmetadata

KIND = "FakeModel"


class FakeModel:
    """The smallest thing that speaks the model-file protocol."""

    def __init__(self, tensors, meta, backend=None):
        self.tensors = tensors
        self.meta = meta
        self.backend = backend

    def _xpnet_export(self):
        return self.tensors, self.meta

    @classmethod
    def _xpnet_import(cls, tensors, meta, backend):
        if "W1" not in tensors:
            raise ModelFileError("FakeModel needs a tensor W1")
        if meta.get("explode") == "key":
            raise KeyError("b7")
        if meta.get("explode") == "backend":
            raise BackendUnavailableError("no such device")
        return cls(tensors, meta, backend)


@pytest.fixture(autouse=True)
def kinds(monkeypatch):
    """A private copy of the registry with the fake kind in it, so no test leaks a registration."""
    monkeypatch.setattr(xmetadata, "_KINDS", dict(xmetadata._KINDS))
    xio.register_kind(KIND, FakeModel)
    return xmetadata._KINDS


def _tensors():
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((3, 4)).astype(np.float32)
    W1[0, 0], W1[0, 1], W1[0, 2] = 1e-45, -0.0, np.finfo(np.float32).max  # bit-identical: these survive too
    return {
        "W1": W1,
        "b1": rng.standard_normal((3, 1)),
        "W2": np.asfortranarray(rng.standard_normal((2, 3))),  # not C-contiguous
        "b2": rng.standard_normal((2, 6))[:, ::2],  # a strided view
        "steps": np.array(17, dtype=np.int64),
        "classes": np.array([3, 1, 4], dtype=np.int32),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 5)),
        "big_endian": np.arange(4, dtype=">f8"),
    }


def _meta():
    return {"kind": KIND, "layer_dims": [4, 3, 2], "activation": "relu", "lr": 0.0075, "note": "ünïcode"}


def _save_valid(tmp_path, name="model.safetensors"):
    path = tmp_path / name
    xio.save(FakeModel(_tensors(), _meta()), path)
    return path


def _raw_file(path, header, data=b"", *, header_bytes=None):
    """A hand-built safetensors file: 8-byte little-endian length, JSON header, data."""
    raw = header_bytes if header_bytes is not None else json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


def _xpnet_header(tensors=None, *, format_version="1", meta=None, xpnet_meta=None):
    file_meta = {"format": "xpnet", "format_version": format_version, "xpnet_version": "0.1.0",
                 "xpnet": json.dumps(meta if meta is not None else {"kind": KIND})}
    if xpnet_meta is not None:
        file_meta = xpnet_meta
    return {"__metadata__": file_meta, **(tensors or {})}


def _refused(path, phrase, reader=xio.read_model_file):
    with pytest.raises(ModelFileError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message, message
    # The path holds the test's name, which could contain the phrase; look for it in the rest.
    assert phrase in message.replace(str(path), ""), message
    return message


# --------------------------------------------------------------------------------------------------------
# Round trip


def test_round_trip_is_bit_identical(tmp_path):
    original = _tensors()
    path = tmp_path / "model.safetensors"
    returned = xio.save(FakeModel(original, _meta()), str(path))
    assert returned == path and isinstance(returned, Path)

    model = xio.load(path, backend="numpy")
    assert isinstance(model, FakeModel)
    assert model.meta == _meta()
    assert model.backend == "numpy"
    assert set(model.tensors) == set(original)
    for name, arr in original.items():
        got = model.tensors[name]
        expected = arr.astype(arr.dtype.newbyteorder("="))
        assert got.dtype == expected.dtype, name
        assert got.shape == arr.shape, name
        assert got.tobytes() == np.ascontiguousarray(expected).tobytes(), name
        # Writeable memory of its own (safetensors' per-tensor buffer, not a view of a memory-mapped file).
        assert got.flags.writeable and got.flags.c_contiguous, name
        from xpnet.files.models import _borrows_file

        assert not _borrows_file(got), name


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_save_refuses_a_non_finite_weight(tmp_path, bad):
    # A NaN weight would load and predict class 0 (argmax of NaN) without a word.
    net = xpnet.DNN([3, 2, 1], backend="numpy")
    net.parameters["W1"][1, 2] = bad
    path = tmp_path / "model.safetensors"
    with pytest.raises(ModelFileError) as info:
        xio.save(net, path)
    message = str(info.value)
    assert message.startswith(f"cannot save model to '{path}': tensor 'W1' holds NaN/inf"), message
    assert f"{bad} at index (1, 2)" in message, message
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_write_model_file_refuses_non_finite_float_tensors_only(tmp_path):
    path = tmp_path / "m.safetensors"
    tensors = {"ok": np.array([1.0, 2.0]), "b9": np.array([[0.0], [np.inf]], dtype=np.float32)}
    with pytest.raises(ModelFileError, match=r"tensor 'b9' holds NaN/inf \(inf at index \(1, 0\)\)"):
        xio.write_model_file(path, tensors, _meta())
    assert not path.exists()
    # Integer and bool tensors cannot hold NaN; finite floats at the extremes are fine.
    xio.write_model_file(path, {"i": np.array([2**62]), "m": np.array([True]),
                                "f": np.array([np.finfo(np.float64).max, -0.0])}, _meta())
    assert path.exists()


def _hand_written(path, tensors, meta):
    """A model file with NaN-carrying tensors and correct checksums, as xpnet itself would never write."""
    meta_json = json.dumps(meta, sort_keys=True)
    header = {"format": "xpnet", "format_version": "1", "xpnet_version": "0.1.0", "xpnet": meta_json,
              "sha256": xio._digest(tensors), "meta_sha256": xio._text_digest(meta_json)}
    path.write_bytes(safetensors.numpy.save(tensors, metadata=header))
    return path


def test_load_refuses_a_file_with_a_nan_weight(tmp_path):
    net = xpnet.DNN([3, 2, 1], backend="numpy")
    tensors, meta = net._xpnet_export()
    good = _hand_written(tmp_path / "good.safetensors", {k: np.ascontiguousarray(v) for k, v in tensors.items()},
                         meta)
    assert isinstance(xio.load(good, backend="numpy"), xpnet.DNN)  # the hand-written container is valid
    tensors = {k: np.array(v, copy=True) for k, v in tensors.items()}
    tensors["W1"][0, 1] = np.nan
    path = _hand_written(tmp_path / "nan.safetensors", tensors, meta)
    for reader in (xio.read_model_file, xio.load):
        message = _refused(path, "tensor 'W1' holds NaN/inf (nan at index (0, 1))", reader)
        assert "checksum" not in message, message


def test_file_metadata_and_read_metadata(tmp_path):
    path = _save_valid(tmp_path)
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    file_meta = json.loads(path.read_bytes()[8:8 + header_len])["__metadata__"]
    assert file_meta["format"] == "xpnet"
    assert file_meta["format_version"] == str(xio.FORMAT_VERSION) == "1"
    assert file_meta["xpnet_version"] == xpnet.__version__
    assert json.loads(file_meta["xpnet"]) == _meta()

    described = xio.read_metadata(path)
    assert described == {**_meta(), "format_version": 1, "xpnet_version": xpnet.__version__}


def test_read_metadata_does_not_load_tensors(tmp_path, monkeypatch):
    path = _save_valid(tmp_path)
    monkeypatch.setattr(safetensors.numpy, "load", lambda data: pytest.fail("read_metadata loaded tensors"))
    assert xio.read_metadata(path)["kind"] == KIND


def test_low_level_layer_round_trip(tmp_path):
    path = tmp_path / "raw.safetensors"
    tensors = {"W1": np.arange(6, dtype=np.float64).reshape(2, 3)}
    assert xio.write_model_file(path, tensors, {"kind": KIND, "x": [1, 2]}) == path
    got, meta = xio.read_model_file(path)
    assert meta == {"kind": KIND, "x": [1, 2]}
    assert list(got) == ["W1"] and got["W1"].tobytes() == tensors["W1"].tobytes()


def test_a_model_without_tensors_round_trips(tmp_path):
    path = tmp_path / "m.safetensors"
    xio.write_model_file(path, {}, {"kind": KIND})
    assert xio.read_model_file(path) == ({}, {"kind": KIND})


def test_save_overwrites_and_keeps_permissions(tmp_path):
    path = _save_valid(tmp_path)
    if hasattr(os, "chmod") and os.name == "posix":
        os.chmod(path, 0o640)
    xio.write_model_file(path, {"W1": np.ones(2)}, {"kind": KIND, "v": 2})
    assert xio.read_model_file(path)[1] == {"kind": KIND, "v": 2}
    if os.name == "posix":
        assert os.stat(path).st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_new_file_is_not_private(tmp_path):
    # mkstemp creates 0600; a saved model should be readable like any other file
    path = _save_valid(tmp_path)
    assert os.stat(path).st_mode & 0o777 == 0o644


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_save_writes_through_a_symlink(tmp_path):
    real = _save_valid(tmp_path, "real.safetensors")
    link = tmp_path / "link.safetensors"
    try:
        link.symlink_to(real)
    except OSError:
        pytest.skip("cannot create symlinks here")
    xio.write_model_file(link, {"W1": np.ones(1)}, {"kind": KIND, "v": 3})
    assert link.is_symlink()
    assert xio.read_model_file(real)[1]["v"] == 3


def test_load_passes_model_file_errors_from_the_class_through(tmp_path):
    path = tmp_path / "m.safetensors"
    xio.write_model_file(path, {"b1": np.ones(1)}, {"kind": KIND})
    with pytest.raises(ModelFileError, match="needs a tensor W1"):
        xio.load(path)


def test_load_wraps_a_key_error_from_the_class(tmp_path):
    path = tmp_path / "m.safetensors"
    xio.write_model_file(path, {"W1": np.ones(1)}, {"kind": KIND, "explode": "key"})
    with pytest.raises(ModelFileError, match="do not describe a valid FakeModel") as info:
        xio.load(path)
    assert isinstance(info.value.__cause__, KeyError)


def test_load_lets_backend_errors_through(tmp_path):
    path = tmp_path / "m.safetensors"
    xio.write_model_file(path, {"W1": np.ones(1)}, {"kind": KIND, "explode": "backend"})
    with pytest.raises(BackendUnavailableError):
        xio.load(path)


# --------------------------------------------------------------------------------------------------------
# Registry


class NamedFake(FakeModel):
    """Registered by "module:qualname" string, to test lazy resolution."""


def test_kind_registered_by_name_resolves_lazily(tmp_path):
    xio.register_kind("Named", f"{__name__}:NamedFake")
    path = tmp_path / "n.safetensors"
    xio.write_model_file(path, {"W1": np.ones(1)}, {"kind": "Named"})
    assert type(xio.load(path)) is NamedFake


def test_kind_that_cannot_be_imported(tmp_path):
    xio.register_kind("Ghost", "xpnet_no_such_module_anywhere:Ghost")
    path = tmp_path / "g.safetensors"
    xio.write_model_file(path, {"W1": np.ones(1)}, {"kind": "Ghost"})
    with pytest.raises(ModelFileError, match="cannot be imported"):
        xio.load(path)


def test_builtin_kinds_are_registered():
    assert xmetadata._KINDS["DNN"] == "xpnet.dnn:DNN"
    assert xmetadata._KINDS["DNNClassifier"] == "xpnet.estimators:DNNClassifier"
    assert xmetadata._KINDS["DNNRegressor"] == "xpnet.estimators:DNNRegressor"


@pytest.mark.parametrize("kind, cls", [("", FakeModel), (3, FakeModel), ("X", object), ("X", "nocolon"),
                                       ("X", ":q"), ("X", FakeModel({}, {}))])
def test_register_kind_rejects_bad_arguments(kind, cls):
    with pytest.raises(ConfigError):
        xio.register_kind(kind, cls)


def test_register_kind_will_not_silently_repoint():
    xio.register_kind(KIND, FakeModel)  # the same target again is fine
    with pytest.raises(ConfigError, match="already registered"):
        xio.register_kind(KIND, NamedFake)
    xio.register_kind(KIND, NamedFake, replace=True)
    assert xmetadata._KINDS[KIND] is NamedFake


# --------------------------------------------------------------------------------------------------------
# Atomic saves


def _no_temp_files(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("where", ["replace", "fsync", "serialize"])
def test_failed_save_leaves_the_old_file_untouched(tmp_path, monkeypatch, where):
    path = _save_valid(tmp_path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if where == "replace":
        monkeypatch.setattr(xatomic.os, "replace", boom)
    elif where == "fsync":
        monkeypatch.setattr(xatomic.os, "fsync", boom)
    else:
        monkeypatch.setattr(safetensors.numpy, "save", boom)
    with pytest.raises(ModelFileError) as info:
        xio.save(FakeModel({"W1": np.zeros(50)}, _meta()), path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert _no_temp_files(tmp_path) == []


def test_interrupted_save_cleans_up_and_reraises(tmp_path, monkeypatch):
    path = _save_valid(tmp_path)
    before = path.read_bytes()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xatomic.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        xio.save(FakeModel({"W1": np.zeros(50)}, _meta()), path)
    assert path.read_bytes() == before
    assert _no_temp_files(tmp_path) == []


def test_successful_save_leaves_no_temp_file(tmp_path):
    _save_valid(tmp_path)
    assert _no_temp_files(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


# --------------------------------------------------------------------------------------------------------
# Refusing to save


def _save_refused(model, path, phrase):
    with pytest.raises(ModelFileError) as info:
        xio.save(model, path)
    message = str(info.value)
    assert str(path) in message, message
    assert phrase in message.replace(str(path), ""), message
    return message


def test_save_into_missing_directory(tmp_path):
    missing = tmp_path / "no" / "such"
    message = _save_refused(FakeModel(_tensors(), _meta()), missing / "m.safetensors", "does not exist")
    assert f"directory '{missing}'" in message


def test_save_under_a_file(tmp_path):
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    _save_refused(FakeModel(_tensors(), _meta()), not_a_dir / "m.safetensors", "is not a directory")


def test_save_onto_a_directory(tmp_path):
    _save_refused(FakeModel(_tensors(), _meta()), tmp_path, "it is a directory")


@pytest.mark.parametrize("bad", [np.zeros(3, np.float16), np.zeros(3, np.complex64), np.array([object()]),
                                 np.array(["text"]), np.zeros(3, np.uint8)])
def test_save_refuses_other_dtypes(tmp_path, bad):
    message = _save_refused(FakeModel({"W1": bad}, _meta()), tmp_path / "m.safetensors", f"dtype {bad.dtype}")
    assert "float32, float64, int64, int32 and bool" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tensors, meta, phrase", [
    ({"W1": [1.0, 2.0]}, None, "not a NumPy array"),
    ({"__metadata__": np.ones(1)}, None, "is not allowed"),
    ({3: np.ones(1)}, None, "is not allowed"),
    ([np.ones(1)], None, "tensors must be a dict"),
    ({"W1": np.ones(1)}, {"kind": "Nope"}, "unknown model kind 'Nope'"),
    ({"W1": np.ones(1)}, {"layers": 2}, "must name its kind"),
    ({"W1": np.ones(1)}, {"kind": KIND, "f": object()}, "not JSON-serializable"),
    ({"W1": np.ones(1)}, {"kind": KIND, "format_version": 9}, "reserved"),
    ({"W1": np.ones(1)}, ["kind"], "metadata must be a dict"),
])
def test_save_refuses_bad_exports(tmp_path, tensors, meta, phrase):
    _save_refused(FakeModel(tensors, meta if meta is not None else _meta()), tmp_path / "m.safetensors", phrase)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_non_model(tmp_path):
    _save_refused(object(), tmp_path / "m.safetensors", "not an xpnet model")


def test_save_refuses_a_non_path():
    with pytest.raises(ModelFileError, match=r"a path must be a str or os\.PathLike"):
        xio.save(FakeModel(_tensors(), _meta()), 42)


# --------------------------------------------------------------------------------------------------------
# Refusing to read


@pytest.mark.parametrize("reader", [xio.read_model_file, xio.read_metadata, xio.load])
def test_missing_file(tmp_path, reader):
    _refused(tmp_path / "nope.safetensors", "no such model file", reader)


def test_missing_directory_in_path(tmp_path):
    (tmp_path / "f").write_text("x")
    _refused(tmp_path / "f" / "m.safetensors", "no such model file")


def test_directory(tmp_path):
    _refused(tmp_path, "is a directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    _refused(path, "empty")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_not_read(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    _refused(path, "not a regular file")  # and does not block


def test_implausibly_large_file(tmp_path, monkeypatch):
    path = _save_valid(tmp_path)
    monkeypatch.setattr(xformat, "_MAX_FILE_BYTES", 100)
    _refused(path, "larger than any plausible model file")


@pytest.mark.parametrize("cut", ["prefix:1", "prefix:7", "header:1", "header:half", "header:-1", "data:1",
                                 "data:half", "data:-1"])
def test_truncated_file(tmp_path, cut):
    path = _save_valid(tmp_path)
    whole = path.read_bytes()
    header_end = 8 + int.from_bytes(whole[:8], "little")
    part, where = cut.split(":")
    start, stop = {"prefix": (0, 8), "header": (8, header_end), "data": (header_end, len(whole))}[part]
    keep = {"half": (start + stop) // 2, "-1": stop - 1}.get(where) or start + int(where)
    path.write_bytes(whole[:keep])
    _refused(path, "too short" if keep < 8 else "corrupt or truncated")


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "noise.safetensors"
    size = int(rng.integers(8, 4096))
    noise = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    if seed % 2:  # a plausible length prefix, so the header itself is noise rather than the prefix
        noise = (size - 8).to_bytes(8, "little") + noise[8:]
    path.write_bytes(noise)
    with pytest.raises(ModelFileError, match="corrupt"):
        xio.read_model_file(path)


def test_every_single_byte_corruption_is_refused_or_read(tmp_path):
    """No byte flip anywhere makes read_model_file raise anything but ModelFileError."""
    path = _save_valid(tmp_path)
    whole = path.read_bytes()
    rng = np.random.default_rng(1)
    positions = sorted(set(range(0, 64)) | set(rng.integers(0, len(whole), 300).tolist()))
    for pos in positions:
        for value in (0x00, 0xFF, whole[pos] ^ 0x01, ord("9"), ord("}")):
            broken = bytearray(whole)
            broken[pos] = value
            path.write_bytes(bytes(broken))
            with contextlib.suppress(ModelFileError):
                xio.read_model_file(path)


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"weight": np.ones((2, 2), np.float32)}, path)
    message = _refused(path, "not an xpnet model file")
    assert "another tool" in message


def test_foreign_file_with_other_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"weight": np.ones(2)}, path, metadata={"format": "pt"})
    _refused(path, "not an xpnet model file", xio.read_metadata)


def test_newer_format_version(tmp_path):
    path = tmp_path / "future.safetensors"
    meta = {"format": "xpnet", "format_version": "2", "xpnet_version": "9.0.0", "xpnet": json.dumps({"kind": KIND})}
    safetensors.numpy.save_file({"W1": np.ones(2)}, path, metadata=meta)
    message = _refused(path, "upgrade xpnet")
    assert "written by xpnet 9.0.0 (format 2)" in message
    assert f"this xpnet {xpnet.__version__} reads format <= 1" in message


def test_newer_format_is_reported_even_with_tensors_this_version_cannot_read(tmp_path):
    path = _raw_file(tmp_path / "future.safetensors",
                     _xpnet_header({"W": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}, format_version="7"),
                     b"\0\0")
    _refused(path, "upgrade xpnet")


@pytest.mark.parametrize("version", ["", "abc", "1.0", "-1", "0", " 1", "1e3", "99999999999"])
def test_bad_format_version(tmp_path, version):
    path = _raw_file(tmp_path / "v.safetensors", _xpnet_header(format_version=version))
    _refused(path, "format_version")


def test_unknown_kind(tmp_path):
    path = _raw_file(tmp_path / "k.safetensors", _xpnet_header(meta={"kind": "Transformer"}))
    message = _refused(path, "unknown model kind")
    assert "'Transformer'" in message and "DNN" in message


def test_kind_removed_after_saving(tmp_path, kinds):
    path = _save_valid(tmp_path)
    del kinds[KIND]
    _refused(path, "unknown model kind", xio.load)


@pytest.mark.parametrize("model_meta, phrase", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"layers": 2}', "'kind'"),
    ('{"kind": 5}', "'kind'"),
    ('{"kind": "FakeModel", "kind": "DNN"}', "duplicate"),
])
def test_bad_model_metadata(tmp_path, model_meta, phrase):
    header = _xpnet_header(xpnet_meta={"format": "xpnet", "format_version": "1", "xpnet_version": "0.1.0",
                                       "xpnet": model_meta})
    _refused(_raw_file(tmp_path / "m.safetensors", header), phrase)


def test_missing_model_metadata(tmp_path):
    header = _xpnet_header(xpnet_meta={"format": "xpnet", "format_version": "1"})
    _refused(_raw_file(tmp_path / "m.safetensors", header), "'xpnet' model metadata is missing")


@pytest.mark.parametrize("shape", [[2**40, 2**40], [2**31], [65536, 32768], [0, 2**62], [10**30]])
def test_huge_shape_is_refused_before_allocation(tmp_path, monkeypatch, shape):
    calls = []
    monkeypatch.setattr(safetensors.numpy, "load", lambda data: calls.append(1) or {})
    header = _xpnet_header({"W1": {"dtype": "F32", "shape": shape, "data_offsets": [0, 16]}})
    path = _raw_file(tmp_path / "huge.safetensors", header, b"\0" * 16)
    _refused(path, "too large")
    assert calls == []


@pytest.mark.parametrize("dtype", ["F16", "BF16", "U8", "C64", "O", "object", "<U10", "|O", 123, None])
def test_disallowed_dtype_in_header(tmp_path, monkeypatch, dtype):
    calls = []
    monkeypatch.setattr(safetensors.numpy, "load", lambda data: calls.append(1) or {})
    header = _xpnet_header({"W1": {"dtype": dtype, "shape": [2], "data_offsets": [0, 4]}})
    _refused(_raw_file(tmp_path / "d.safetensors", header, b"\0" * 4), "xpnet model files hold only F32, F64")
    assert calls == []


@pytest.mark.parametrize("entry, phrase", [
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}, "needs 8 bytes"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}, "corrupt or truncated"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}, "corrupt or truncated"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}, "corrupt or truncated"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0]}, "corrupt or truncated"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [False, 8]}, "corrupt or truncated"),
    ({"dtype": "F32", "shape": [2]}, "corrupt or truncated"),
    ({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}, "shape"),
    ({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}, "shape"),
    ({"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}, "shape"),
    ({"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}, "shape"),
    ({"dtype": "F32", "shape": [1] * 40, "data_offsets": [0, 4]}, "shape"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "cover 4 data bytes"),
    ("W1", "not an object"),
])
def test_bad_tensor_entries(tmp_path, entry, phrase):
    path = _raw_file(tmp_path / "e.safetensors", _xpnet_header({"W1": entry}), b"\0" * 8)
    _refused(path, phrase)


def test_overlapping_tensors(tmp_path):
    entries = {"W1": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "b1": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    _refused(_raw_file(tmp_path / "o.safetensors", _xpnet_header(entries), b"\0" * 12), "overlaps")


@pytest.mark.parametrize("header_bytes, phrase", [
    (b"\xff\xfe{}", "not valid UTF-8 JSON"),
    (b"{not json", "not valid UTF-8 JSON"),
    (b"[]", "expected a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid UTF-8 JSON"),  # deep enough to exhaust the recursion limit
    (b'{"__metadata__": {"format": "xpnet"}, "__metadata__": {"format": "xpnet"}}', "duplicate"),
    (b"{}", "not an xpnet model file"),
    (b'{"__metadata__": {"format": "xpnet", "format_version": 1}}', "must all be strings"),
    (b"{", "cannot be a JSON object"),
])
def test_bad_header(tmp_path, header_bytes, phrase):
    _refused(_raw_file(tmp_path / "h.safetensors", None, header_bytes=header_bytes), phrase)


@pytest.mark.parametrize("claimed", [2**64 - 1, 2**40, 200_000_000])
def test_header_length_beyond_the_file(tmp_path, claimed):
    path = tmp_path / "h.safetensors"
    path.write_bytes(claimed.to_bytes(8, "little") + b"{}" * 10)
    _refused(path, "corrupt or truncated")


@pytest.mark.parametrize("start, kind", [
    (b"\x08\x08\x12\x07pytorch", "ONNX"), (b"\x93NUMPY\x01\x00v\x00", ".npy"), (b"PK\x03\x04\x14\x00\x00\x00", "zip"),
    (b"\x89HDF\r\n\x1a\n", "HDF5"), (b"\x80\x04\x95\x10\x00\x00\x00\x00", "pickle"), (b"a,b,c,label\n", None)])
def test_a_foreign_file_is_named_as_not_written_by_xpnet(tmp_path, start, kind):
    # The usual way to meet this error is the wrong file (an exported .onnx, the data file, another library's
    # weights): its first 8 bytes read as an absurd header length, so the message says it is not xpnet's file.
    path = tmp_path / "m.safetensors"
    path.write_bytes(start + b"\x00" * 200)
    message = _refused(path, "not a model file written by xpnet")
    assert "xpnet.save" in message
    if kind:
        assert kind in message, message


def test_a_truncated_xpnet_file_is_not_called_foreign(tmp_path):
    path = _save_valid(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 3])
    assert "not a model file" not in _refused(path, "corrupt or truncated")


def test_header_over_100_mb_is_refused_without_reading_it(tmp_path, monkeypatch):
    monkeypatch.setattr(xformat, "_MAX_HEADER_BYTES", 10)  # stands in for 100 MB; a file that big is slow to make
    path = _save_valid(tmp_path)
    _refused(path, "corrupt or truncated")


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic in safetensors (pyo3_runtime.PanicException derives from BaseException)."""


@pytest.mark.parametrize("failure", [RuntimeError("safetensors internal error"),
                                     PanicException("safetensors internal error: memory allocation failed")])
def test_safetensors_failure_becomes_model_file_error(tmp_path, monkeypatch, failure):
    path = _save_valid(tmp_path)

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(safetensors, "safe_open", broken)
    _refused(path, "safetensors internal error")
    _refused(path, "safetensors internal error", reader=xio.load)


def test_interrupt_while_reading_is_not_swallowed(tmp_path, monkeypatch):
    path = _save_valid(tmp_path)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors, "safe_open", interrupt)
    with pytest.raises(KeyboardInterrupt):
        xio.read_model_file(path)


@pytest.mark.parametrize("bad", [None, 42, b"bytes-path", ["m.safetensors"], "a\0b"])
def test_read_refuses_a_non_path(bad):
    with pytest.raises(ModelFileError):
        xio.read_model_file(bad)


# --------------------------------------------------------------------------------------------------------
# Safety and lightness

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def _unsafe_constructs(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FORBIDDEN_MODULES:
            found.append(node.module)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in {"eval", "exec"}:
                found.append(node.func.id)
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append("allow_pickle=True")
    if "allow_pickle=True" in source.replace(" ", ""):
        found.append("allow_pickle=True (text)")
    return found


def test_io_source_has_no_pickle_or_eval():
    modules = sorted(Path(xio.__file__).parent.glob("*.py"))  # every module of the model-file package
    assert len(modules) > 1
    for path in modules:
        assert _unsafe_constructs(path.read_text(encoding="utf-8")) == [], path.name


def test_the_safety_scan_would_see_pickle():
    bad = ("import pickle\nfrom cloudpickle import dumps\nimport numpy as np\n"
           "def f(p):\n    eval('1')\n    return np.load(p, allow_pickle = True)\n")
    assert _unsafe_constructs(bad) == ["pickle", "cloudpickle", "eval", "allow_pickle=True",
                                       "allow_pickle=True (text)"]


def test_importing_io_imports_neither_numpy_nor_safetensors():
    code = "import sys, xpnet.io; print(','.join(m for m in ('numpy', 'safetensors') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_a_flipped_bit_in_a_weight_is_caught_by_the_checksum(tmp_path):
    import xpnet

    path = xpnet.save(xpnet.DNN([3, 4, 1], backend="numpy"), tmp_path / "net.safetensors")
    data = bytearray(path.read_bytes())
    assert xpnet.load(path, backend="numpy").layer_dims == [3, 4, 1]
    data[-3] ^= 0x01  # inside the last tensor's bytes: still a well-formed safetensors file
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        xpnet.load(path, backend="numpy")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 2 epochs are enough for a file
def test_a_damaged_class_label_in_the_metadata_is_caught_by_its_checksum(tmp_path):
    # The tensors' checksum does not cover the header: before the metadata had its own, a damaged byte could
    # turn classes [0, 1, 2] into [1, 1, 2] and the file loaded as a model predicting different labels.
    clf = xpnet.DNNClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    X = np.random.default_rng(0).normal(size=(30, 3))
    clf.fit(X, np.arange(30) % 3)
    path = xio.save(clf, tmp_path / "clf.safetensors")
    raw = bytearray(path.read_bytes())
    at = raw.find(b'\\"classes\\": [0')
    assert at > 0
    at += len(b'\\"classes\\": [')
    raw[at] = ord("1")
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(bytes(raw))
    for reader in (xio.read_metadata, xio.read_model_file, xio.load):
        with pytest.raises(ModelFileError, match="metadata does not match the checksum"):
            reader(damaged)
    assert list(xio.load(path).classes_) == [0, 1, 2]

"""Untrusted files, fuzzed: xpnet's model-file readers and the ``.npz`` dataset loader (issue 5).

Every generated file must end in a clean refusal (:class:`~xpnet.ModelFileError` naming the file, or
:class:`~xpnet.DatasetError` for ``.npz``) or in exactly the content that was saved; never another exception,
a hang (a ``SIGALRM`` timer per read, where the platform has one) or a large allocation (``tracemalloc`` traces
every read, numpy's array buffers included, and on Linux an address-space limit turns a runaway allocation into
a MemoryError rather than an out-of-memory kill). Files that would run code are refused without running it.

The runs are reproducible (``derandomize=True``, no example database), so CI sees the same cases every time.
How many ran is printed by the module's last test; each test also checks its own count.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import hashlib
import io
import json
import os
import pickle
import signal
import sys
import threading
import time
import tracemalloc
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xpnet
from xpnet import datasets
from xpnet import files as xio
from xpnet.errors import DatasetError, ModelFileError

# --------------------------------------------------------------------------------------------------------
# Budget and bookkeeping

# Examples per test; the total is checked against the 2,000 in test_the_fuzzing_ran_enough_cases.
BUDGET = {
    "random_bytes": 400,
    "truncated_or_extended": 300,
    "byte_flips": 600,
    "header_length_field": 200,
    "tensor_entries": 500,
    "file_metadata": 300,
    "model_metadata": 500,
    "huge_claims": 300,
    "npz": 400,
}
MIN_TOTAL = 2000
MAX_CASE_SECONDS = 10  # a case takes milliseconds; this only catches a hang
MAX_CASE_BYTES = 64 * 1024**2  # what one read may allocate at its peak (the files are a few KB)
MAX_CASE_ADDRESS_SPACE = 1024**3  # a hard limit on top (Linux), far above what a read needs

CASES: collections.Counter[str] = collections.Counter()
OUTCOMES: collections.Counter[str] = collections.Counter()


def _settings(name: str) -> settings:
    return settings(max_examples=BUDGET[name], deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


class _Hang(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in a loader can turn it into a
    ModelFileError and hide the hang."""


def _address_space_limit() -> contextlib.ExitStack:
    """On Linux, let the process grow by at most MAX_CASE_ADDRESS_SPACE until the returned stack is closed, so
    that a loader that believes a forged size gets a MemoryError instead of the machine's memory (tracemalloc
    only notices after the fact, and an out-of-memory kill ends the whole test run without a report)."""
    stack = contextlib.ExitStack()
    if not sys.platform.startswith("linux"):
        return stack
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        in_use = int(fh.read().split()[0]) * resource.getpagesize()
    limit = in_use + MAX_CASE_ADDRESS_SPACE
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        return stack
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    stack.callback(resource.setrlimit, resource.RLIMIT_AS, (soft, hard))
    return stack


@contextlib.contextmanager
def _watched(what: str):
    """Fail a case that runs longer than MAX_CASE_SECONDS or allocates more than MAX_CASE_BYTES at once.

    Allocations are traced only while the loader runs (tracing the generation of examples too would triple
    the run time).
    """
    use_alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if use_alarm:
        def on_alarm(signum, frame):
            raise _Hang(f"{what}: still running after {MAX_CASE_SECONDS} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        started = time.monotonic()
        outer_timer = signal.setitimer(signal.ITIMER_REAL, MAX_CASE_SECONDS)  # a plugin's (pytest-timeout) timer
    limit = _address_space_limit()
    tracing_already = tracemalloc.is_tracing()
    if tracing_already:
        tracemalloc.reset_peak()
    else:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        limit.close()
        if not tracing_already:
            tracemalloc.stop()
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if outer_timer[0] > 0:  # re-arm what was running before, less the time this case took
                signal.setitimer(signal.ITIMER_REAL, max(outer_timer[0] - (time.monotonic() - started), 1e-3),
                                 outer_timer[1])
    assert peak < MAX_CASE_BYTES, f"{what}: allocated {peak / 1024**2:.0f} MiB for a file of a few KB"


# --------------------------------------------------------------------------------------------------------
# The valid files the mutations start from


@dataclass
class Base:
    name: str
    cls: type
    raw: bytes
    header: dict[str, Any]
    data: bytes
    tensors: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def model_meta_text(self) -> str:
        return self.header["__metadata__"]["xpnet"]


def _split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _container(header: Any, data: bytes) -> bytes:
    """A safetensors container: 8-byte little-endian header length, JSON header, data."""
    text = json.dumps(header, allow_nan=True).encode() if not isinstance(header, bytes) else header
    return len(text).to_bytes(8, "little") + text + data


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("io_fuzz")


@pytest.fixture(scope="module")
def bases(workdir) -> dict[str, Base]:
    """A DNN, a 3-class classifier and a regressor (both standardizing, so they carry extra tensors)."""
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 1.0], [1.0, 2.0]])
    models = {"dnn": xpnet.DNN([2, 3, 1], backend="numpy")}
    kw = dict(hidden_layer_sizes=(3,), max_iter=2, random_state=0, standardize=True, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs do not converge, on purpose
        models["classifier"] = xpnet.DNNClassifier(**kw).fit(X, np.array([0, 1, 2, 0, 1, 2]))
        models["regressor"] = xpnet.DNNRegressor(**kw).fit(X, X[:, 0] * 2 + 1)
    out = {}
    for name, model in models.items():
        path = xio.save(model, workdir / f"{name}.safetensors")
        raw = path.read_bytes()
        header, data = _split(raw)
        tensors, meta = xio.read_model_file(path)
        xio.load(path, backend="numpy")  # imports what loading needs before allocations are traced
        out[name] = Base(name, type(model), raw, header, data, tensors, meta)
    return out


BASE_NAMES = st.sampled_from(["dnn", "classifier", "regressor"])


# --------------------------------------------------------------------------------------------------------
# The one property every model-file case must have


def _declared_model_meta(raw: bytes) -> Any:
    """The model metadata text a file's header declares, or None where the header does not parse."""
    with contextlib.suppress(Exception):
        header, _ = _split(raw)
        return header["__metadata__"]["xpnet"]
    return None


def _fresh_file(workdir: Path, suffix: str, raw: bytes) -> Path:
    """A new file per case: rewriting one file in place is ~50x slower on ext4, which flushes a truncated file."""
    path = workdir / f"case{sum(CASES.values())}{suffix}"
    path.write_bytes(raw)
    return path


def _canon(value: Any) -> str:
    """JSON-able values compared as text, where NaN equals NaN."""
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _same_tensors(got: dict[str, Any], want: dict[str, np.ndarray]) -> bool:
    return set(got) == set(want) and all(
        got[k].dtype == want[k].dtype and got[k].shape == want[k].shape and got[k].tobytes() == want[k].tobytes()
        for k in want)


def _check_model_file(workdir: Path, base: Base, raw: bytes, test: str, *, must_fail: Any = False) -> str:
    """Give ``raw`` to every model-file reader; return "refused" or "read".

    A reader either raises ModelFileError naming the file, or returns exactly what was saved: the original
    tensors bit for bit, and the original metadata unless the file declares other metadata (a header
    mutation the checksum does not cover, since it covers the tensors). ``must_fail``: True when every
    reader must refuse the file, or the names of those that must.
    """
    CASES[test] += 1
    path = _fresh_file(workdir, ".safetensors", raw)
    results: dict[str, Any] = {}
    readers = {"read_metadata": xio.read_metadata, "read_model_file": xio.read_model_file,
               "load": lambda p: xio.load(p, backend="numpy")}
    for name, reader in readers.items():
        with _watched(f"{test}: {name}"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                results[name] = reader(path)
            except ModelFileError as exc:
                assert str(path) in str(exc), f"{name}: the message does not name the file: {exc}"
                results[name] = exc
    ok = {name for name, r in results.items() if not isinstance(r, ModelFileError)}
    must = set(readers) if must_fail is True else set(must_fail or ())
    assert not ok & must, f"{test}: a damaged file was read by {sorted(ok & must)}"
    if "read_model_file" in ok:
        tensors, meta = results["read_model_file"]
        assert _same_tensors(tensors, base.tensors), f"{test}: read different tensors"
        declared = _declared_model_meta(raw)
        assert _canon(meta) == _canon(json.loads(declared)), f"{test}: read other metadata than the file declares"
        if declared == base.model_meta_text:
            assert _canon(meta) == _canon(base.meta), f"{test}: read other metadata"
        assert "read_metadata" in ok, f"{test}: read_model_file read a file read_metadata refused"
        described = results["read_metadata"]
        assert _canon(described) == _canon({**meta, "format_version": 1, "xpnet_version": described["xpnet_version"]})
    if "load" in ok:
        model = results["load"]
        assert "read_model_file" in ok, f"{test}: load read a file read_model_file refused"
        assert hasattr(model, "_xpnet_export"), f"{test}: load returned {model!r}"
        if _canon(results["read_model_file"][1]) == _canon(base.meta):
            assert type(model) is base.cls
            assert _same_tensors(model._xpnet_export()[0], base.tensors), f"{test}: loaded other parameters"
    path.unlink()
    outcome = "read" if ok else "refused"
    OUTCOMES[f"{test}: {outcome} by {'+'.join(sorted(ok))}" if ok and len(ok) < 3 else f"{test}: {outcome}"] += 1
    return outcome


def test_the_valid_files_are_read(workdir, bases):
    """Sanity: the files the mutations start from load, so a refusal is the mutation's doing."""
    for base in bases.values():
        _check_model_file(workdir, base, base.raw, "valid")
    assert OUTCOMES["valid: read"] == len(bases)  # by all three readers


# --------------------------------------------------------------------------------------------------------
# Strategies: JSON junk, with the values that stress a parser or a size computation

BIG_INTS = [0, 1, 2, 3, -1, 255, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63, 2**64, 10**9, 10**30, 10**400]
SPECIAL = [None, True, False, "", "F32", "F64", "BF16", "I64", "BOOL", "DNN", "relu", "softmax", "float64",
           "xpnet", "__metadata__", float("nan"), float("inf"), -float("inf"), 1e400, -0.0, 0.5, "\u0000", "\ud800"]
LEAVES = st.one_of(st.sampled_from(BIG_INTS + SPECIAL), st.integers(), st.floats(), st.text(max_size=8))
JUNK = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                    max_leaves=5)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except (ValueError, RecursionError):
        return "null"


# --------------------------------------------------------------------------------------------------------
# 1. Bytes that are not a model file at all


def test_random_bytes(workdir, bases):
    @_settings("random_bytes")
    @given(st.binary(max_size=3000), st.sampled_from(["as is", "length prefix", "prefix and JSON"]), JUNK)
    def case(noise, shape, junk):
        if shape == "length prefix":  # so that the noise is read as a header
            noise = len(noise).to_bytes(8, "little") + noise
        elif shape == "prefix and JSON":  # a parseable header that is not an xpnet header
            noise = _container(_dumps(junk).encode(), noise)
        _check_model_file(workdir, bases["dnn"], noise, "random_bytes", must_fail=True)

    case()
    assert CASES["random_bytes"] >= BUDGET["random_bytes"] // 2


# --------------------------------------------------------------------------------------------------------
# 2. Valid files, cut short or followed by junk


def test_truncated_or_extended(workdir, bases):
    @_settings("truncated_or_extended")
    @given(BASE_NAMES, st.floats(0, 1, exclude_max=True), st.binary(max_size=64), st.booleans())
    def case(base_name, where, tail, extend):
        base = bases[base_name]
        raw = base.raw + tail if extend and tail else base.raw[:int(where * len(base.raw))]
        _check_model_file(workdir, base, raw, "truncated_or_extended", must_fail=True)

    case()
    assert CASES["truncated_or_extended"] >= BUDGET["truncated_or_extended"] // 2


# --------------------------------------------------------------------------------------------------------
# 3. Valid files with a few bytes changed anywhere


BYTE_OR_BIT = st.one_of(st.integers(0, 255), st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]))


def test_byte_flips(workdir, bases):
    @_settings("byte_flips")
    @given(BASE_NAMES, st.lists(st.tuples(st.floats(0, 1, exclude_max=True), BYTE_OR_BIT), min_size=1, max_size=4),
           st.booleans())
    def case(base_name, flips, xor):
        base = bases[base_name]
        raw = bytearray(base.raw)
        for where, value in flips:
            pos = int(where * len(raw))
            raw[pos] = raw[pos] ^ value if xor else value
        raw = bytes(raw)
        data_start = len(base.raw) - len(base.data)
        changed_data = raw[data_start:] != base.data and raw[:data_start] == base.raw[:data_start]
        # A change only in the tensor bytes leaves a well-formed file: the checksum must catch it (read_metadata
        # does not read the tensors, so it cannot).
        _check_model_file(workdir, base, raw, "byte_flips",
                          must_fail={"read_model_file", "load"} if changed_data else ())

    case()
    assert CASES["byte_flips"] >= BUDGET["byte_flips"] // 2


# --------------------------------------------------------------------------------------------------------
# 4. The 8-byte header length: gigabytes, off by a few, zero


def test_header_length_field(workdir, bases):
    @_settings("header_length_field")
    @given(BASE_NAMES, st.one_of(st.integers(0, 2**64 - 1), st.integers(-40, 40),
                                 st.sampled_from([2**30, 2**32, 100_000_001, 2**63, 2**64 - 1])))
    def case(base_name, claim):
        base = bases[base_name]
        true_length = int.from_bytes(base.raw[:8], "little")
        claimed = true_length + claim if -40 <= claim <= 40 else claim
        raw = claimed.to_bytes(8, "little") + base.raw[8:]
        _check_model_file(workdir, base, raw, "header_length_field", must_fail=claimed != true_length)

    case()
    assert CASES["header_length_field"] >= BUDGET["header_length_field"] // 2


# --------------------------------------------------------------------------------------------------------
# 5. A well-formed container whose tensor entries lie: names, dtypes, shapes, offsets

NAMES = st.one_of(st.sampled_from(["W1", "W2", "W3", "b1", "b2", "b3", "mean", "scale", "y_mean", "w1", "W01",
                                   "", "__metadata__", "W1 "]), st.text(max_size=6))
DTYPES = st.one_of(st.sampled_from(["F32", "F64", "I64", "I32", "BOOL", "BF16", "F16", "U8", "I8", "I16", "U16",
                                    "U32", "U64", "C64", "F8_E4M3", "F8_E5M2", "f32", "float32", "<f4", "O",
                                    "object", "", "F 32"]), JUNK)
DIMS = st.one_of(st.integers(0, 8), st.sampled_from(BIG_INTS))
SHAPES = st.one_of(st.lists(DIMS, max_size=6), st.integers(30, 40).map(lambda n: [1] * n), JUNK)
OFFSETS = st.one_of(st.lists(st.one_of(st.integers(-10, 300), st.sampled_from(BIG_INTS)), max_size=3), JUNK)
ENTRY_OPS = st.one_of(
    st.tuples(st.just("rename"), NAMES),
    st.tuples(st.just("drop"), st.none()),
    st.tuples(st.just("add"), st.fixed_dictionaries({"dtype": DTYPES, "shape": SHAPES, "data_offsets": OFFSETS})),
    st.tuples(st.just("dtype"), DTYPES),
    st.tuples(st.just("shape"), SHAPES),
    st.tuples(st.just("offsets"), OFFSETS),
    st.tuples(st.just("swap offsets"), st.none()),
    st.tuples(st.just("same-size dtype"), st.none()),  # passes the size checks: only the checksum can tell
    st.tuples(st.just("same-size shape"), st.none()),
    st.tuples(st.just("replace entry"), JUNK),
    st.tuples(st.just("drop key"), st.sampled_from(["dtype", "shape", "data_offsets"])),
)


def _mutate_entries(header: dict[str, Any], ops: list[tuple[str, Any, int]], data: bytes) -> bytes:
    names = [k for k in header if k != "__metadata__"]
    for op, value, which in ops:
        if not names:
            break
        name = names[which % len(names)]
        entry = header.get(name)
        if op == "rename":
            header[value] = header.pop(name)
            names = [k for k in header if k != "__metadata__"]
        elif op == "drop":
            del header[name]
            names.remove(name)
        elif op == "add":
            header[f"extra{which}"] = value
        elif op == "replace entry":
            header[name] = value
        elif not isinstance(entry, dict):
            continue
        elif op == "dtype":
            entry["dtype"] = value
        elif op == "shape":
            entry["shape"] = value
        elif op == "offsets":
            entry["data_offsets"] = value
        elif op == "drop key":
            entry.pop(value, None)
        elif op == "swap offsets":
            other = header.get(names[(which + 1) % len(names)])
            if isinstance(other, dict):
                entry["data_offsets"], other["data_offsets"] = other.get("data_offsets"), entry.get("data_offsets")
        elif op == "same-size dtype":
            swap = {"F64": "I64", "I64": "F64", "F32": "I32", "I32": "F32"}
            entry["dtype"] = swap.get(entry["dtype"], "F32") if isinstance(entry.get("dtype"), str) else "F32"
        elif op == "same-size shape" and isinstance(entry.get("shape"), list):
            entry["shape"] = [*reversed(entry["shape"]), 1]
    return _container(header, data)


def test_tensor_entries(workdir, bases):
    @_settings("tensor_entries")
    @given(BASE_NAMES, st.lists(st.tuples(ENTRY_OPS, st.integers(0, 20)), min_size=1, max_size=3))
    def case(base_name, ops):
        base = bases[base_name]
        raw = _mutate_entries(copy.deepcopy(base.header), [(op, v, i) for (op, v), i in ops], base.data)
        _check_model_file(workdir, base, raw, "tensor_entries")

    case()
    assert CASES["tensor_entries"] >= BUDGET["tensor_entries"] // 2


# --------------------------------------------------------------------------------------------------------
# 6. The safetensors __metadata__: not strings, missing, wrong format, version or checksum

FILE_META_VALUES = st.one_of(
    st.sampled_from(["1", "2", "0", "01", "1 ", " 1", "1.0", "-1", "1e3", "99999999999", "\u0661", "\uff11", "",
                     "xpnet", "XPNET", "pt", "0" * 64, "f" * 64, "unknown"]),
    JUNK, st.text(max_size=70))


def test_file_metadata(workdir, bases):
    @_settings("file_metadata")
    @given(BASE_NAMES,
           st.lists(st.tuples(st.sampled_from(["format", "format_version", "xpnet_version", "xpnet", "sha256",
                                               "other"]),
                              FILE_META_VALUES, st.sampled_from(["set", "delete", "upper"])), min_size=1, max_size=3),
           st.one_of(st.none(), JUNK))
    def case(base_name, edits, replace_all):
        base = bases[base_name]
        header = copy.deepcopy(base.header)
        file_meta = header["__metadata__"]
        for key, value, how in edits:
            if how == "delete":
                file_meta.pop(key, None)
            elif how == "upper" and isinstance(file_meta.get(key), str):
                file_meta[key] = file_meta[key].upper()  # an uppercase checksum is still "wrong"
            else:
                file_meta[key] = value
        if replace_all is not None and not isinstance(replace_all, dict):
            header["__metadata__"] = replace_all
        _check_model_file(workdir, base, _container(header, base.data), "file_metadata")

    case()
    assert CASES["file_metadata"] >= BUDGET["file_metadata"] // 2


# --------------------------------------------------------------------------------------------------------
# 7. The model's own metadata (the "xpnet" JSON): anything anywhere in the tree


def _slots(tree: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON tree, depth first."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        out.append((tree, key))
        _slots(value, out)
    return out


def _mutate_tree(tree: Any, edits: list[tuple[int, str, Any, str]]) -> None:
    for where, how, value, new_key in edits:
        slots = _slots(tree, [])
        if not slots:
            return
        parent, key = slots[where % len(slots)]
        if how == "replace":
            parent[key] = value
        elif how == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[new_key] = value
        else:
            parent.insert(key, value)


def test_model_metadata(workdir, bases):
    @_settings("model_metadata")
    @given(BASE_NAMES,
           st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["replace", "delete", "insert"]), JUNK,
                              st.text(max_size=5)), min_size=1, max_size=4),
           st.one_of(st.none(), st.text(max_size=40),
                     st.sampled_from(["[" * 50_000, '{"kind": "DNN"}', '{"kind": "DNN", "network": 5}', "null",
                                      '{"kind": "DNNClassifier", "kind": "DNN"}', "NaN", "{}", "1e400",
                                      # more digits than Python's int() accepts from text (ValueError, 3.11+)
                                      '{"kind": "DNN", "network": {"layer_dims": [1' + "0" * 5000 + "]}}"])))
    def case(base_name, edits, text):
        base = bases[base_name]
        header = copy.deepcopy(base.header)
        meta = json.loads(base.model_meta_text)
        _mutate_tree(meta, edits)
        _set_model_meta(header, text if text is not None else _dumps(meta))
        _check_model_file(workdir, base, _container(header, base.data), "model_metadata")

    case()
    assert CASES["model_metadata"] >= BUDGET["model_metadata"] // 2


# --------------------------------------------------------------------------------------------------------
# 8. Metadata that claims sizes: a loader that believed it would allocate terabytes or loop for hours

HUGE = st.sampled_from([3000, 10**4, 10**5, 10**6, 10**9, 2**31, 2**40, 2**63, 10**30])
# Sizes a network could be built with: 3000 x 3000 is 72 MB in float64, 10**5 x 10**5 is 80 GB.
WIDE = st.sampled_from([3000, 5000, 10**4, 10**5, 10**6, 10**9])
LAYER_DIMS = st.one_of(
    st.lists(WIDE, min_size=2, max_size=4),
    st.lists(st.one_of(st.integers(1, 4), HUGE), min_size=2, max_size=5),
    st.integers(500, 5000).map(lambda n: [1] * n),  # a very deep network of 1x1 layers
    st.integers(50, 200).map(lambda n: [64] * n))
CLAIMS = {
    ("params", "hidden_layer_sizes"): st.one_of(st.lists(HUGE, max_size=3), HUGE),
    ("params", "max_iter"): HUGE,
    ("params", "batch_size"): HUGE,
    ("n_features_in",): st.one_of(HUGE, st.integers(0, 4)),
    ("classes",): st.one_of(st.lists(st.integers(0, 3), max_size=5), st.integers(1000, 3000).map(range).map(list)),
    ("network", "n_iter"): st.sampled_from([1e400, -1e400, float("nan"), 10**400, "7", [1]]),
    ("fitted", "t"): st.sampled_from([1e400, float("nan"), 10**400, "x"]),
    ("costs",): st.one_of(st.lists(st.sampled_from([1e400, float("nan"), 10**400, "x", None]), max_size=5),
                          st.integers(1000, 2000).map(lambda n: [0.5] * n)),
    ("loss_curve",): st.lists(st.sampled_from([1e400, 10**400, "x", None, [1]]), max_size=5),
    ("history_full", "epoch"): st.one_of(st.lists(HUGE, max_size=3), HUGE),
    ("network", "dtype"): st.sampled_from(["float16", "int8", "float32", "float128", "bfloat16", "", 64]),
    ("network", "hidden"): st.sampled_from(["tanh", "softmax", "Relu", "", "leaky_relu", None]),
    ("network", "output"): st.sampled_from(["linear", "softmax", "relu", "sigmoid", "tanh", 3]),
    ("network", "init"): st.sampled_from(["xavier", "zeros", "", None, 1]),
    ("params", "learning_rate"): st.one_of(JUNK, st.fixed_dictionaries({"schedule": JUNK})),
    ("params", "class_weight"): st.one_of(JUNK, st.lists(st.lists(JUNK, max_size=3), max_size=3)),
    ("params", "dropout"): st.one_of(JUNK, st.lists(st.floats(), max_size=3)),
}


def test_huge_claims(workdir, bases):
    @_settings("huge_claims")
    @given(BASE_NAMES, st.one_of(st.none(), LAYER_DIMS),
           st.lists(st.sampled_from(sorted(CLAIMS)).flatmap(lambda k: st.tuples(st.just(k), CLAIMS[k])), max_size=3))
    def case(base_name, layer_dims, claims):
        base = bases[base_name]
        if layer_dims is not None:
            claims = [(("network", "layer_dims"), layer_dims), *claims]
        header = copy.deepcopy(base.header)
        meta = json.loads(base.model_meta_text)
        for path, value in claims:
            node = meta
            for part in path[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[path[-1]] = value
        _set_model_meta(header, _dumps(meta))
        _check_model_file(workdir, base, _container(header, base.data), "huge_claims")

    case()
    assert CASES["huge_claims"] >= BUDGET["huge_claims"] // 2


# --------------------------------------------------------------------------------------------------------
# 9. .npz datasets: damaged archives and members whose .npy header claims what the data does not hold


def _npy(shape: Any, descr: Any, body: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1", "replace")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    length = len(header).to_bytes(2 if version == (1, 0) else 4, "little")
    return b"\x93NUMPY" + bytes(version) + length + header + body


NPY_SHAPES = st.one_of(st.tuples(DIMS, DIMS), st.tuples(DIMS), st.lists(DIMS, max_size=4).map(tuple))
NPY_DESCRS = st.sampled_from(["<f8", "<f4", "<i8", "|b1", "|u1", "<U3", "|O", ">f8", "<c16", "<f2", "|V8", "<M8[s]",
                              "junk", "<f0", "<U0"])


@pytest.fixture(scope="module")
def npz_bases(workdir):
    X = np.arange(24, dtype=np.float64).reshape(12, 2)
    y = np.arange(12) % 3
    out = {}
    for name, save in (("stored", np.savez), ("deflated", np.savez_compressed)):
        buffer = io.BytesIO()
        save(buffer, X=X, y=y)
        out[name] = buffer.getvalue()
    return out, X, y


def test_npz(workdir, npz_bases):
    archives, X, y = npz_bases

    @_settings("npz")
    @given(st.sampled_from(sorted(archives)), st.sampled_from(["truncate", "flip", "member"]),
           st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
           NPY_SHAPES, NPY_DESCRS, st.binary(max_size=200), st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)]),
           st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    def case(base_name, how, flips, shape, descr, body, version, compression):
        raw = archives[base_name]
        if how == "truncate":
            raw = raw[:int(flips[0][0] * len(raw))]
        elif how == "flip":
            raw = bytearray(raw)
            for where, value in flips:
                raw[int(where * len(raw))] = value
            raw = bytes(raw)
        else:  # a well-formed zip whose X member's .npy header says anything
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", compression) as zf:
                zf.writestr("X.npy", _npy(shape, descr, body, version))
                with zf.open("y.npy", "w") as member:
                    np.save(member, y)
            raw = buffer.getvalue()
        CASES["npz"] += 1
        path = _fresh_file(workdir, ".npz", raw)
        with _watched("npz"):
            try:
                X2, y2 = datasets.load_npz(path)
            except DatasetError as exc:
                assert str(path) in str(exc), exc
                OUTCOMES["npz: refused"] += 1
                return
            finally:
                path.unlink()
        OUTCOMES["npz: read"] += 1
        if how != "member":  # a flip that leaves a readable archive must leave the arrays as they were
            assert X2.tobytes() == X.tobytes() and y2.tobytes() == y.tobytes(), "a damaged archive read as other data"
        assert X2.ndim == 2 and X2.dtype == np.float64 and len(X2) == len(y2) == len(y)

    case()
    assert CASES["npz"] >= BUDGET["npz"] // 2


# --------------------------------------------------------------------------------------------------------
# What the fuzzing found, pinned down


def _set_model_meta(header: dict, text: str) -> None:
    # A crafted file, not a damaged one: its maker recomputes the metadata checksum, so the checks behind it
    # are what these cases exercise (damage is the byte-flip cases' job).
    header["__metadata__"]["xpnet"] = text
    header["__metadata__"]["meta_sha256"] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _with_model_meta(base: Base, path: Path, edit) -> Path:
    header = copy.deepcopy(base.header)
    meta = json.loads(base.model_meta_text)
    edit(meta)
    _set_model_meta(header, json.dumps(meta, allow_nan=True))
    path.write_bytes(_container(header, base.data))
    return path


@pytest.mark.parametrize("layer_dims", [[10**9, 10**9], [2, 3000, 3000, 1], [1] * 5000])
def test_a_network_larger_than_the_file_is_refused_before_it_is_built(tmp_path, bases, monkeypatch, layer_dims):
    # load used to build (and randomly initialize) the declared network before comparing it with the tensors:
    # a MemoryError for the first, tens of MB and 0.4 s for the second, from a file of 700 bytes.
    from xpnet import dnn as network

    monkeypatch.setattr(network, "initialize_parameters", lambda *a, **k: pytest.fail("built the network"))
    path = _with_model_meta(bases["dnn"], tmp_path / "m.safetensors",
                            lambda meta: meta["network"].update(layer_dims=layer_dims))
    with pytest.raises(ModelFileError, match="declares layer_dims") as info:
        xio.load(path, backend="numpy")
    assert str(path) in str(info.value)
    assert xio.read_model_file(path)[1]["network"]["layer_dims"] == layer_dims  # only load builds it


@pytest.mark.parametrize("base_name, where", [("dnn", "network.n_iter"), ("classifier", "fitted.t")])
def test_a_number_too_large_for_int_is_a_model_file_error(tmp_path, bases, base_name, where):
    # JSON reads 1e400 as inf, and int(inf) raised OverflowError, which load let through; the schema now
    # refuses it by name before anything is built.
    outer, inner = where.split(".")
    path = _with_model_meta(bases[base_name], tmp_path / "m.safetensors",
                            lambda meta: meta[outer].update({inner: float("inf")}))
    with pytest.raises(ModelFileError, match=rf"metadata is invalid: {where} = inf") as info:
        xio.load(path, backend="numpy")
    assert str(path) in str(info.value)


def test_errors_from_the_model_class_name_the_file(tmp_path, bases):
    path = _with_model_meta(bases["dnn"], tmp_path / "m.safetensors",
                            lambda meta: meta["network"].update(hidden="si moid"))
    with pytest.raises(ModelFileError, match="unknown activation 'si moid'") as info:
        xio.load(path, backend="numpy")
    assert f"cannot read model file '{path}'" in str(info.value)


# --------------------------------------------------------------------------------------------------------
# Files that would run code


class _Plant:
    """Unpickling this creates the directory ``marker`` (with os.mkdir, importable everywhere): proof that code
    ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _pickle_payloads(marker: Path) -> dict[str, bytes]:
    plant = _Plant(marker)
    payloads = {f"pickle protocol {p}": pickle.dumps({"W1": plant}, protocol=p) for p in (0, 2, 5)}
    # A length prefix in front, so the pickle is where the header would be.
    payloads["pickle behind a length prefix"] = _container(pickle.dumps(plant), b"")
    # What torch.save writes: a zip holding archive/data.pkl (and the tensors next to it).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"state_dict": plant}, protocol=2))
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/data/0", np.ones(4, np.float32).tobytes())
    payloads["torch-style zip"] = buffer.getvalue()
    # An .npz whose array is pickled (dtype=object), and a plain .npy of one.
    buffer = io.BytesIO()
    np.savez(buffer, X=np.array([plant], dtype=object), y=np.zeros(1))
    payloads["npz object array"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.save(buffer, np.array([plant], dtype=object), allow_pickle=True)
    payloads["npy object array"] = buffer.getvalue()
    return payloads


def test_the_pickle_payloads_are_live(tmp_path):
    """The payloads below do run code when unpickled; otherwise "the marker was never created" proves nothing."""
    for name, payload in _pickle_payloads(tmp_path / "marker").items():
        marker = tmp_path / "marker"
        if name.startswith("pickle protocol"):
            pickle.loads(payload)
        elif name == "torch-style zip":
            with zipfile.ZipFile(io.BytesIO(payload)) as zf:
                pickle.loads(zf.read("archive/data.pkl"))
        elif name == "npz object array":
            with np.load(io.BytesIO(payload), allow_pickle=True) as npz:
                npz["X"]
        elif name == "npy object array":
            np.load(io.BytesIO(payload), allow_pickle=True)
        else:
            continue
        assert marker.is_dir(), name
        marker.rmdir()


@pytest.mark.parametrize("reader", ["read_metadata", "read_model_file", "load"])
def test_model_loaders_refuse_pickles_without_running_them(tmp_path, reader):
    marker = tmp_path / "marker"
    for name, payload in _pickle_payloads(marker).items():
        path = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        path.write_bytes(payload)
        with pytest.raises(ModelFileError) as info:
            getattr(xio, reader)(path)
        assert str(path) in str(info.value), name
        assert not marker.exists(), f"{reader} ran the code in a {name}"


def test_npz_loader_refuses_pickles_without_running_them(tmp_path):
    marker = tmp_path / "marker"
    for name, payload in _pickle_payloads(marker).items():
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        path.write_bytes(payload)
        for load in (datasets.load_npz, lambda p: datasets.load(str(p))):
            with pytest.raises(DatasetError) as info:
                load(path)
            assert str(path) in str(info.value), name
            assert not marker.exists(), f"the .npz loader ran the code in a {name}"
    with pytest.raises(DatasetError, match="holds Python objects"):
        datasets.load_npz(tmp_path / "npz_object_array.npz")


# --------------------------------------------------------------------------------------------------------
# The count


def test_the_fuzzing_ran_enough_cases(capsys):
    """Runs last in this module (pytest keeps file order): says how many cases ran, and checks the issue's
    2,000 on a full run."""
    total = sum(CASES.values())
    with capsys.disabled():
        detail = ", ".join(f"{name} {CASES[name]}" for name in BUDGET if CASES[name])
        print(f"\n[test_io_fuzz] {total} fuzz cases ran ({detail}); outcomes: {dict(sorted(OUTCOMES.items()))}")
    ran = {name for name in BUDGET if CASES[name]}
    if ran != set(BUDGET):
        pytest.skip(f"only part of the fuzzing ran ({sorted(ran)}); the total is checked on a full run")
    assert total >= MIN_TOTAL, dict(CASES)

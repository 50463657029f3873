"""What a hostile but realistic user tried after issue 11's first fixes: each case failed before, with a raw
exception or a silently wrong answer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xpnet
from xpnet import functional as F
from xpnet.cli.train import _refuse_regression_lookalike
from xpnet.device.xp import cgroup_free_memory
from xpnet.estimators import DNNClassifier, DNNRegressor

BIG = 2**64 - 1
RNG = np.random.default_rng(0)
X = RNG.random((20, 3))


def test_uint64_classes_survive_a_model_file(tmp_path):
    # [0, 2**64 - 1] came back as float64 classes: predict returned 1.8446744073709552e+19, not 2**64 - 1.
    y = np.array([0, BIG] * 10, dtype=np.uint64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DNNClassifier((3,), max_iter=2, random_state=0, backend="numpy").fit(X, y)
    again = xpnet.load(xpnet.save(model, tmp_path / "m.safetensors"), backend="numpy")
    assert again.classes_.dtype == np.uint64 and again.classes_.tolist() == [0, BIG]
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert set(again.predict(X).tolist()) <= {0, BIG}


@pytest.mark.parametrize("spec", ["numpy", "array_api_strict", "torch"])
def test_uint64_labels_out_of_range_are_reported_exactly(spec):
    # The labels were cast to int64 first: 2**64 - 1 wrapped to -1 and was reported as "from -1 to 1".
    b = xpnet.get_backend(spec)
    Y = b.xp.asarray(np.array([0, 1, BIG, 0], dtype=np.uint64))
    with pytest.raises(xpnet.LabelError, match=f"got labels from 0 to {BIG}"):
        F.compute_cost(b.asarray(np.full((3, 4), 1 / 3)), Y, loss="categorical_cross_entropy")
    small = b.xp.asarray(np.array([0, 1, 2, 0], dtype=np.uint8))
    assert F.compute_cost(b.asarray(np.full((3, 4), 1 / 3)), small, loss="cce") == pytest.approx(np.log(3))


@pytest.mark.parametrize("Estimator", [DNNClassifier, DNNRegressor])
@pytest.mark.parametrize("weight", [2.0, np.float64(2.0), np.array(2.0)])
def test_score_with_a_scalar_sample_weight_is_a_clear_error(Estimator, weight):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Estimator((3,), max_iter=2, backend="numpy").fit(X, np.array([0, 1] * 10))
    with pytest.raises(xpnet.ShapeError, match="sample_weight must hold one weight per row of X"):
        model.score(X, np.array([0, 1] * 10), sample_weight=weight)


@pytest.mark.parametrize("y, refused", [
    (np.repeat(np.arange(100), 9), False),  # 100 classes, 900 samples: was refused
    (np.repeat(np.arange(1, 91), 111).astype(float), False),  # labels 1..90 written by pandas as 1.0 ...
    (RNG.integers(18, 108, size=10_000), True),  # ages 18..107 among 10,000 people: was not caught
    (np.arange(100, 220, dtype=float), True),  # a regression target of 120 values in 120 rows
    (np.repeat(np.arange(60), 2), True),  # 60 "classes" of 2 samples each
    (np.arange(30), False),  # up to 50 values are classes, as before
])
def test_regression_lookalike_rule(y, refused):
    if refused:
        with pytest.raises(xpnet.LabelError, match="--task regression"):
            _refuse_regression_lookalike(y)
    else:
        _refuse_regression_lookalike(y)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_free_memory_respects_the_cgroup_limit(tmp_path, version):
    # A container limited to 2 GiB on a 500 GiB host: the estimate said 500 GiB free, so a network the
    # container cannot hold was allocated and the kernel killed the process instead of a DeviceMemoryError.
    membership = tmp_path / "cgroup"
    if version == "v2":
        membership.write_text("0::/job\n")
        folder = tmp_path / "job"
        folder.mkdir()
        (folder / "memory.max").write_text(f"{2 * 2**30}\n")
        (folder / "memory.current").write_text(f"{2**29}\n")
    else:
        membership.write_text("4:memory:/job\n1:cpu:/\n")
        folder = tmp_path / "memory" / "job"
        folder.mkdir(parents=True)
        (folder / "memory.limit_in_bytes").write_text(f"{2 * 2**30}\n")
        (folder / "memory.usage_in_bytes").write_text(f"{2**29}\n")
    assert cgroup_free_memory(str(tmp_path), str(membership)) == 2 * 2**30 - 2**29
    (folder / ("memory.max" if version == "v2" else "memory.limit_in_bytes")).write_text(
        "max\n" if version == "v2" else "9223372036854771712\n")
    assert cgroup_free_memory(str(tmp_path), str(membership)) is None  # no limit


@pytest.mark.parametrize("y, says", [
    (np.array(["a", None, "b"] * 10, dtype=object),
     r"missing label \(None or NaN\) at 10 position\(s\), the first y\[1\]"),
    (np.array(["a", np.nan, "b"] * 10, dtype=object), r"missing label"),
    (np.array(["a", 1, "b"] * 10, dtype=object), r"y mixes numbers and text"),
])
def test_object_labels_with_gaps_or_mixed_types_are_label_errors(y, says):
    # A TypeError ('<' not supported between NoneType and str) from deep inside NumPy's unique before.
    with pytest.raises(xpnet.LabelError, match=says):
        DNNClassifier((3,), max_iter=2, backend="numpy").fit(RNG.random((30, 3)), y)


def test_score_with_labels_of_another_kind_is_a_label_error():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DNNClassifier((3,), max_iter=2, backend="numpy").fit(X, np.array([0, 1] * 10))
    with pytest.raises(xpnet.LabelError, match=r"y does not hold labels of the model's kind .* classes are \[0, 1\]"):
        model.score(X, np.array(["a"] * 20))


@pytest.mark.parametrize("edit", [
    lambda m: m["generators"]["shuffle"].update(bit_generator="MT19937"),
    lambda m: m["generators"].update(dropout={"a": 1}),
])
def test_a_forged_generator_state_is_refused_before_the_run_is_touched(tmp_path, edit):
    # A ValueError ("state must be for a Philox PRNG") half-way through restoring the run before.
    import copy

    Xm, ym = xpnet.datasets.make_moons(60, noise=0.2, seed=0)
    path = tmp_path / "run.ckpt"
    xpnet.DNN([2, 4, 1], seed=1, backend="numpy").train(Xm.T, ym, epochs=2, checkpoint=path, batch_size=20)
    tensors, meta = xpnet.files.read_model_file(path)
    forged = copy.deepcopy(meta)
    edit(forged)
    xpnet.files.write_model_file(path, tensors, forged)
    with pytest.raises(xpnet.ModelFileError, match="the checkpoint is malformed"):
        xpnet.DNN([2, 4, 1], seed=1, backend="numpy").train(Xm.T, ym, epochs=3, checkpoint=path, resume=True,
                                                            batch_size=20)


def test_a_name_too_long_for_the_filesystem_is_a_model_file_error(tmp_path):
    # OSError [Errno 36] from os.path.realpath's stat before.
    with pytest.raises(xpnet.ModelFileError, match="File name too long"):
        xpnet.save(xpnet.DNN([2, 1], backend="numpy"), tmp_path / ("x" * 300 + ".safetensors"))


def test_a_symbolic_link_loop_is_not_replaced(tmp_path):
    # save wrote a regular file over a link pointing at itself (check_destination refused it; save did not).
    import os

    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    with pytest.raises(xpnet.ModelFileError, match="symbolic link loop"):
        xpnet.save(xpnet.DNN([2, 1], backend="numpy"), loop)
    assert loop.is_symlink() and os.readlink(loop) == str(loop)


def test_a_panic_of_the_format_library_while_saving_is_a_model_file_error(tmp_path, monkeypatch):
    import safetensors.numpy

    class PanicException(BaseException):  # pyo3_runtime.PanicException derives from BaseException
        pass

    def panic(*args, **kwargs):
        raise PanicException("called `Result::unwrap()` on an `Err` value")

    monkeypatch.setattr(safetensors.numpy, "save", panic)
    target = tmp_path / "m.safetensors"
    with pytest.raises(xpnet.ModelFileError, match=r"safetensors could not serialize .*PanicException"):
        xpnet.save(xpnet.DNN([2, 1], backend="numpy"), target)
    assert not target.exists()

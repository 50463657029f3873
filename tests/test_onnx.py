"""ONNX export (xpnet.to_onnx, `xpnet export`, the skl2onnx converters): the exported graphs, run in onnxruntime,
predict what the models' own predict and predict_proba do."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import xpnet
from xpnet import cli
from xpnet.estimators import DNNClassifier, DNNRegressor, NotFittedError
from xpnet.export.graph import _light_value_propagation

ndx = pytest.importorskip("ndonnx")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(3)
X = RNG.standard_normal((40, 5)).astype(np.float32) * 3 + 1  # off-centre, so standardization matters
Y3 = RNG.integers(0, 3, 40)
Y2 = np.array(["cat", "dog"])[RNG.integers(0, 2, 40)]
YR = X @ RNG.standard_normal((5, 2)).astype(np.float32) * 5 + 7  # two targets, rescaled
# Every hidden activation, under both its names where scikit-learn has another.
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "logistic", "linear", "identity")
TOL = 1e-6  # float32


def run(proto, Xin: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString())
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"X": Xin}), strict=True))


def shapes(proto) -> dict[str, list]:
    """Each input's and output's declared shape: the symbolic dimension's name, or the size."""
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*proto.graph.input, *proto.graph.output]}


def fit(est, y):
    return est.fit(X, y)


# Every activation on the multiclass classifier and the two-target regressor; one each on the others (an export
# takes about 0.5 s: the suite stays short).
@pytest.mark.parametrize(("activation", "y"), [*((a, Y3) for a in ACTIVATIONS), ("tanh", Y2), ("relu", Y2)],
                         ids=[*(f"multiclass-{a}" for a in ACTIVATIONS), "binary-text-tanh", "binary-text-relu"])
def test_classifier_matches_predict_and_predict_proba(activation, y):
    est = fit(DNNClassifier((6, 5), activation=activation, max_iter=4, random_state=0, standardize=True,
                            learning_rate_init=0.05), y)
    proto = xpnet.to_onnx(est)
    onnx.checker.check_model(proto, full_check=True)  # the declared output shapes agree with shape inference
    assert shapes(proto) == {"X": ["N", 5], "label": ["N"], "probabilities": ["N", len(est.classes_)]}
    out = run(proto, X)
    np.testing.assert_allclose(out["probabilities"], est.predict_proba(X), rtol=0, atol=TOL)
    assert out["probabilities"].dtype == np.float32
    np.testing.assert_array_equal(out["label"], est.predict(X))


@pytest.mark.parametrize(("activation", "targets"), [*((a, 2) for a in ACTIVATIONS), ("relu", 1)])
def test_regressor_matches_predict_with_its_target_rescaling(activation, targets):
    y = YR[:, 0] if targets == 1 else YR
    est = fit(DNNRegressor((6,), activation=activation, max_iter=4, random_state=0, standardize=True), y)
    assert est.y_mean_ is not None and np.abs(est.y_mean_).max() > 1  # the rescaling is really in play
    proto = xpnet.to_onnx(est)
    onnx.checker.check_model(proto, full_check=True)
    got = run(proto, X)["predictions"]
    want = est.predict(X)
    assert shapes(proto)["predictions"] == ["N", *want.shape[1:]]
    assert got.shape == want.shape
    # Compared in the network's own units (before the rescaling to y's): float32 keeps 7 digits of those, and
    # y_scale * ZL + y_mean loses some of them where the two terms cancel.
    np.testing.assert_allclose((got - want) / est.y_scale_.astype(np.float32), 0, atol=TOL)


def test_bool_class_labels_come_back_as_bool():
    est = fit(DNNClassifier((4,), max_iter=2, random_state=0), Y3 == 1)
    out = run(xpnet.to_onnx(est), X)
    assert out["label"].dtype == np.bool_
    np.testing.assert_array_equal(out["label"], est.predict(X))


def test_float64_models_and_other_backends_export_in_their_dtype():
    est = DNNClassifier((4,), max_iter=3, random_state=0, dtype="float64", backend="array_api_strict").fit(X, Y3)
    X64 = X.astype(np.float64)
    out = run(xpnet.to_onnx(est), X64)
    assert out["probabilities"].dtype == np.float64
    np.testing.assert_allclose(out["probabilities"], est.predict_proba(X64), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out["label"], est.predict(X64))


def test_the_batch_dimension_is_symbolic():
    est = fit(DNNClassifier((4,), max_iter=2, random_state=0), Y3)
    proto = xpnet.to_onnx(est)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    for n in (1, 7, 40):
        np.testing.assert_allclose(run(proto, X[:n])["probabilities"], est.predict_proba(X[:n]), atol=TOL)


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
def test_dnn_outputs_are_the_transposes_of_predict(output):
    net = xpnet.DNN([5, 4, 3], hidden="tanh", output=output, seed=2, backend="numpy")
    proto = xpnet.to_onnx(net)
    onnx.checker.check_model(proto, full_check=True)
    out = run(proto, X)
    for name, value in out.items():
        assert shapes(proto)[name] == ["N", *value.shape[1:]]
    if output == "linear":
        np.testing.assert_allclose(out["predictions"], net.predict_proba(X.T).T, atol=TOL)
    else:
        np.testing.assert_allclose(out["probabilities"], net.predict_proba(X.T).T, atol=TOL)
        np.testing.assert_array_equal(out["label"], net.predict(X.T).T)


def test_model_files_export_and_write_through_the_safe_writer(tmp_path):
    est = fit(DNNClassifier((5,), max_iter=3, random_state=0, standardize=True), Y2)
    path = tmp_path / "m.safetensors"
    xpnet.save(est, path)
    target = tmp_path / "m.onnx"
    proto = xpnet.to_onnx(path, target)
    assert target.read_bytes() == proto.SerializeToString()
    np.testing.assert_allclose(run(proto, X)["probabilities"], est.predict_proba(X), atol=TOL)
    with pytest.raises(xpnet.ModelFileError, match="same file as the input"):
        xpnet.to_onnx(path, path)
    with pytest.raises(xpnet.ModelFileError, match="directory"):
        xpnet.to_onnx(est, tmp_path)


def test_the_command_round_trip(tmp_path, capsys):
    est = fit(DNNRegressor((5,), max_iter=3, random_state=0, standardize=True), YR[:, 0])
    model, out = tmp_path / "r.safetensors", tmp_path / "r.onnx"
    xpnet.save(est, model)
    assert cli.main(["export", str(model), str(out)]) == 0
    said = capsys.readouterr().out
    assert "DNNRegressor 5-5-1 (relu), input X (N, 5) float32; outputs predictions (N,) float32" in said
    got = run(onnx.load(str(out)), X)["predictions"]
    np.testing.assert_allclose(got, xpnet.load(model).predict(X), rtol=TOL, atol=TOL)
    # Bad paths: one line, exit 1, nothing written.
    assert cli.main(["export", str(model), str(tmp_path / "no" / "r.onnx")]) == 1
    assert cli.main(["export", str(tmp_path / "missing.safetensors"), str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("xpnet: error: ") == 2 and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_skl2onnx_converts_pipelines_with_xpnet_estimators():
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xpnet.register_skl2onnx()
    xpnet.register_skl2onnx()  # twice is harmless
    pipe = make_pipeline(StandardScaler(), DNNClassifier((5,), activation="tanh", max_iter=3, random_state=0))
    pipe.fit(X, Y3)
    onx = skl2onnx.to_onnx(pipe, X[:1], options={id(pipe[-1]): {"zipmap": False}})
    out = run(onx, X)
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), atol=TOL)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))
    # skl2onnx's default ZipMap, string labels, and a float64 estimator in a float32 pipeline.
    pipe = make_pipeline(StandardScaler(), DNNClassifier((5,), max_iter=3, random_state=0, dtype="float64"))
    pipe.fit(X, Y2)
    out = run(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_array_equal(out["output_label"], pipe.predict(X))
    proba = np.array([[row[c] for c in pipe.classes_] for row in out["output_probability"]])
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=TOL)
    reg = make_pipeline(StandardScaler(), DNNRegressor((5,), max_iter=3, random_state=0, standardize=True))
    reg.fit(X, YR)
    # In the network's units, as the other regressor tests: rescaling by y_scale_ in float32 loses digits
    # where terms cancel, so the tolerance scales with y_scale_ (a fixed 1e-6 failed on 2 of 80 values).
    scale = float(np.max(reg[-1].y_scale_))
    np.testing.assert_allclose(run(skl2onnx.to_onnx(reg, X[:1]), X)["variable"], reg.predict(X), rtol=TOL,
                               atol=TOL * scale)


def test_skl2onnx_errors_name_the_fix():
    skl2onnx = pytest.importorskip("skl2onnx")
    xpnet.register_skl2onnx()
    est = fit(DNNClassifier((4,), max_iter=2, random_state=0), Y3)
    with pytest.raises(xpnet.ConfigError, match="target_opset=21"):
        skl2onnx.to_onnx(est, X[:1], target_opset=17, options={id(est): {"zipmap": False}})
    with pytest.raises(xpnet.DTypeError, match="float32"):
        skl2onnx.to_onnx(est, X[:1].astype(np.int64))
    floats = fit(DNNClassifier((4,), max_iter=2, random_state=0), Y3.astype(np.float64))
    with pytest.raises(xpnet.ConfigError, match="LabelEncoder"):
        skl2onnx.to_onnx(floats, X[:1], options={id(floats): {"zipmap": False}})
    # Outside skl2onnx, float labels are exported as they are.
    np.testing.assert_array_equal(run(xpnet.to_onnx(floats), X)["label"], floats.predict(X))


def test_what_cannot_be_exported_is_a_clear_error(monkeypatch):
    with pytest.raises(NotFittedError, match="fit"):
        xpnet.to_onnx(DNNClassifier())
    with pytest.raises(xpnet.InputTypeError, match="DNNClassifier"):
        xpnet.to_onnx(object())
    est = fit(DNNClassifier((4,), max_iter=2, random_state=0), Y3)
    est.network_.output = xpnet.activations.get_activation("sigmoid")  # a multi-label kind xpnet cannot export
    with pytest.raises(xpnet.ConfigError, match="network_"):
        xpnet.to_onnx(est)
    reg = fit(DNNRegressor((4,), max_iter=2, random_state=0), YR[:, 0])
    reg.network_.output = xpnet.activations.get_activation("sigmoid")
    with pytest.raises(xpnet.ConfigError, match="linear output"):
        xpnet.to_onnx(reg)
    monkeypatch.setitem(sys.modules, "ndonnx", None)
    with pytest.raises(xpnet.BackendUnavailableError, match=r"xpnet\[onnx\]"):
        xpnet.to_onnx(fit(DNNClassifier((4,), max_iter=2, random_state=0), Y3))


def test_the_functional_forward_traces_and_the_finite_check_skips_only_unreadable_arrays():
    """DESIGN principle 1's second proof: the lecture's model_forward, NaN check included, traces with ndonnx."""
    P = xpnet.initialize_parameters([5, 4, 3], seed=1, dtype="float32", backend="numpy")
    constants = {k: ndx.asarray(v) for k, v in P.items()}
    Xa = ndx.argument(shape=(5, "m"), dtype=ndx.float32)
    with _light_value_propagation():  # as xpnet.to_onnx traces (the same graph, faster)
        AL, _ = xpnet.model_forward(Xa, constants, hidden="leaky_relu", output="softmax")
        proto = ndx.build({"X": Xa}, {"AL": AL})
    session = ort.InferenceSession(proto.SerializeToString())
    want, _ = xpnet.model_forward(X.T.copy(), P, hidden="leaky_relu", output="softmax")
    np.testing.assert_allclose(session.run(None, {"X": X.T.copy()})[0], want, atol=TOL)
    # An ndonnx array with values is checked as any other.
    bad = np.array(X.T[:, :3])
    bad[1, 2] = np.nan
    with pytest.raises(xpnet.InvalidValueError, match=r"X\[1, 2\] = nan"):
        xpnet.model_forward(ndx.asarray(bad), constants)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xpnet.device.xp.values_readable(ndx.asarray(bad)) and not xpnet.device.xp.values_readable(Xa)

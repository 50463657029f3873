"""The README's error table, row by row.

Every row of the table in the README's "Errors" section is a :class:`Row` here with the same id: each of its
entry points is called with the bad input on numpy, array_api_strict and torch (rows about devices run where
two devices exist), and the test checks the exception type and that the message names the argument and what
was given. A second test parses the table, so the table and these cases cannot drift apart.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xpnet
from xpnet import cli
from xpnet import functional as F
from xpnet.estimators import DNNClassifier, DNNRegressor, NotFittedError

pytestmark = [pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
              # the nonfinite-output row overflows on purpose
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]

README = Path(__file__).resolve().parent.parent / "README.md"
ALL = ("numpy", "array_api_strict", "torch:cpu")


# ------------------------------------------------------------------------------------------- the backend
@dataclass
class B:
    """One backend of a run, with helpers to build the bad inputs on it."""

    spec: str
    backend: xpnet.Backend
    tmp: Path
    capsys: Any
    model_file: str

    @property
    def xp(self) -> Any:
        return self.backend.xp

    def arr(self, data: Any, dtype: str = "float64") -> Any:
        return self.backend.asarray(np.asarray(data), dtype=dtype)

    def raw(self, data: Any) -> Any:
        """``data`` in this namespace with its dtype kept (complex, int64): no xpnet conversion on the way."""
        return self.xp.asarray(np.asarray(data), device=self.backend.device)

    def foreign(self, data: Any) -> Any:
        """``data`` as an array of another library that is not NumPy (NumPy input is always accepted)."""
        other = "torch:cpu" if self.spec == "array_api_strict" else "array_api_strict"
        return _backend_or_skip(other).asarray(np.asarray(data), dtype="float64")

    def other_device(self) -> xpnet.Backend:
        """The same library on a second device: array_api_strict's device1, or the CPU for torch on CUDA."""
        return _backend_or_skip("array_api_strict:device1" if self.spec.startswith("array_api_strict")
                                else "torch:cpu")


def _backend_or_skip(spec: str) -> xpnet.Backend:
    try:
        return xpnet.get_backend(spec)
    except xpnet.BackendUnavailableError as exc:
        pytest.skip(f"{spec} unavailable: {exc}")


# ------------------------------------------------------------------------------------------- the data
RNG = np.random.default_rng(5)
X35 = RNG.standard_normal((3, 5))  # the lecture's layout: 3 features, 5 examples
Y15 = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
X36 = RNG.standard_normal((3, 6))
Y16 = np.array([[0.0, 1.0, 0.0, 1.0, 1.0, 0.0]])
XS = RNG.standard_normal((20, 3))  # scikit-learn's layout: 20 samples, 3 features
YS = np.array([0, 1] * 10)
YR = RNG.standard_normal(20)


def with_value(a: np.ndarray, index: tuple, value: float) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out[index] = value
    return out


def params(b: B, dims: tuple[int, ...] = (3, 4, 1)) -> dict[str, Any]:
    return F.initialize_parameters(list(dims), seed=1, dtype="float64", backend=b.backend)


def net(b: B, dims: tuple[int, ...] = (3, 4, 1), **kwargs: Any) -> xpnet.DNN:
    return xpnet.DNN(list(dims), dtype="float64", backend=b.backend, **kwargs)


def clf(b: B, **kwargs: Any) -> DNNClassifier:
    return DNNClassifier(**{"hidden_layer_sizes": (4,), "max_iter": 1, "random_state": 0, "backend": b.spec,
                            **kwargs})


def reg(b: B, **kwargs: Any) -> DNNRegressor:
    return DNNRegressor(**{"hidden_layer_sizes": (4,), "max_iter": 1, "random_state": 0, "backend": b.spec,
                           **kwargs})


def fitted_clf(b: B) -> DNNClassifier:
    return clf(b).fit(b.arr(XS), YS)


def fitted_reg(b: B) -> DNNRegressor:
    return reg(b).fit(b.arr(XS), YR)


def _backward_other_hidden(b: B) -> None:
    AL, caches = F.model_forward(b.arr(X35), params(b), hidden="tanh")
    F.model_backward(AL, b.arr(Y15), caches)  # hidden defaults to relu


def _backward_other_network(b: B) -> None:
    AL, _ = F.model_forward(b.arr(X35), params(b))
    other = F.initialize_parameters([3, 4, 1], seed=2, dtype="float64", backend=b.backend)
    F.model_backward(AL, b.arr(Y15), F.model_forward(b.arr(X35), other)[1])  # the caches of another network


def backward(b: B, Y: Any, **kwargs: Any) -> dict[str, Any]:
    AL, caches = F.model_forward(b.arr(X35), params(b))
    return F.model_backward(AL, Y, caches, **kwargs)


def write_csv(b: B, name: str, header: str, rows: list[str]) -> str:
    path = b.tmp / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


def two_class_csv(b: B) -> str:
    return write_csv(b, "two.csv", "x1,x2,y", [f"{a:.4f},{c:.4f},{i % 2}" for i, (a, c) in enumerate(XS[:, :2])])


def cli_fails(b: B, *argv: str, backend: str | None = None) -> None:
    """``xpnet ARGV`` exits 1 with one ``xpnet: error:`` line and no traceback; then the sub-command is run
    directly so that the caller sees the exception it raised."""
    argv = (*argv, "--backend", backend or b.spec)
    code = cli.main(list(argv))
    err = b.capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("xpnet: error: ") and "Traceback" not in err
    args = cli.build_parser().parse_args(list(argv))
    args.func(args)


def cli_usage(b: B, *argv: str) -> None:
    cli.build_parser().parse_args(list(argv))


# ------------------------------------------------------------------------------------------- the rows
Says = tuple[str | Callable[[B], str], ...]


@dataclass(frozen=True)
class Entry:
    where: str  # as the README's "where" column names it
    call: Callable[[B], Any]
    says: Says = ()  # patterns the message must match: the argument, and the value or shape given


@dataclass(frozen=True)
class Row:
    id: str
    error: type[BaseException] | None  # None: a documented cast or fallback; its entries assert the outcome
    entries: tuple[Entry, ...]
    backends: tuple[str, ...] = ALL


def _integer_x_model_forward(b: B) -> None:
    P = params(b)
    AL_int, _ = F.model_forward(b.raw(np.arange(15).reshape(3, 5) % 3), P)
    AL_float, _ = F.model_forward(b.arr(np.arange(15).reshape(3, 5) % 3), P)
    assert AL_int.dtype == P["W1"].dtype
    np.testing.assert_array_equal(xpnet.to_numpy(AL_int), xpnet.to_numpy(AL_float))


def _integer_x_dnn(b: B) -> None:
    n = net(b)
    Xi = (np.arange(18).reshape(3, 6) % 4).astype(np.int64)
    got = n.predict_proba(b.raw(Xi))
    assert got.dtype == n.dtype
    np.testing.assert_array_equal(xpnet.to_numpy(got), xpnet.to_numpy(n.predict_proba(b.arr(Xi))))
    n.fit(b.raw(Xi), b.arr(Y16), num_iterations=2)
    assert n.n_iter_ == 2


def _integer_x_estimator(b: B) -> None:
    Xi = (XS * 10).astype(np.int64)
    est = clf(b).fit(b.raw(Xi), YS)
    assert est.network_.dtype == b.backend.float_dtype("float64")
    np.testing.assert_array_equal(xpnet.to_numpy(est.predict_proba(b.raw(Xi))),
                                  xpnet.to_numpy(est.predict_proba(b.arr(Xi))))


def _fallback_estimator(b: B) -> None:
    est = DNNClassifier((4,), max_iter=1, random_state=0, backend="array_api_strict:no_float64").fit(XS, YS)
    assert xpnet.device.xp.dtype_name(est.network_.backend.xp, est.network_.dtype) == "float32"


def _fallback_asarray(b: B) -> None:
    out = xpnet.get_backend("array_api_strict:no_float64").asarray(XS)
    assert xpnet.device.xp.dtype_name(xpnet.get_backend("array_api_strict").xp, out.dtype) == "float32"


def _fallback_load(b: B) -> None:
    path = b.tmp / "f64.safetensors"
    xpnet.save(xpnet.DNN([3, 2, 1], dtype="float64", backend="numpy"), path)
    with pytest.warns(UserWarning, match="saved in float64.*loaded in float32"):
        loaded = xpnet.load(path, backend="array_api_strict:no_float64")
    assert xpnet.device.xp.dtype_name(loaded.backend.xp, loaded.dtype) == "float32"


def _unseen_partial(b: B) -> None:
    est = clf(b).partial_fit(b.arr(XS), YS, classes=[0, 1])
    est.partial_fit(b.arr(XS), YS + 5)


def _unseen_warm(b: B) -> None:
    est = clf(b, warm_start=True).fit(b.arr(XS), YS)
    est.fit(b.arr(XS), YS + 5)


def _unseen_cli(b: B) -> None:
    path = write_csv(b, "seven.csv", "x1,x2,y", [f"{a:.4f},{c:.4f},7" for a, c in XS[:5, :2]])
    cli_fails(b, "evaluate", b.model_file, path)


def _predict_npz(b: B, name: str, X: np.ndarray) -> None:
    path = b.tmp / name
    np.savez(path, X=X)
    cli_fails(b, "predict", b.model_file, str(path))


def _one_class_cli(b: B) -> None:
    path = write_csv(b, "one.csv", "x1,x2,y", [f"{a:.4f},{c:.4f},1" for a, c in XS[:, :2]])
    cli_fails(b, "train", "--dataset", path, "--epochs", "1", "-q")


def _cli_train_file(b: B, name: str, bad_row: str) -> None:
    rows = [f"{a:.4f},{c:.4f},{i % 2}" for i, (a, c) in enumerate(XS[:, :2])]
    path = write_csv(b, name, "x1,x2,y", [bad_row, *rows])
    cli_fails(b, "train", "--dataset", path, "--epochs", "1", "-q")


def _huge(network: xpnet.DNN) -> xpnet.DNN:
    """Weights so large (finite) that every output overflows: what a forged or diverged model file holds."""
    bk = network.backend
    network.parameters = {k: bk.asarray(np.full(tuple(v.shape), 1e300 if v.dtype == bk.float_dtype("float64")
                                                 and bk.supports_float64 else 3e38), dtype=v.dtype)
                          for k, v in network.parameters.items()}
    return network


def _huge_est(est: Any) -> Any:
    _huge(est.network_)
    return est


def _whole_number_targets(b: B) -> str:
    """A regression target written as whole numbers (pandas writes 151.0): 120 distinct values in 120 rows."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2))
    targets = 100 + np.arange(120)
    return write_csv(b, "diabetes_like.csv", "x1,x2,target",
                     [f"{a:.4f},{c:.4f},{t:.1f}" for (a, c), t in zip(X, rng.permutation(targets), strict=True)])


def _fifo(b: B, name: str = "pipe") -> str:
    import os

    path = b.tmp / name
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def _output_over(b: B, *argv: str) -> None:
    data = write_csv(b, "data.csv", "x1,x2,y", [f"{a:.4f},{c:.4f},{i % 2}" for i, (a, c) in enumerate(XS[:, :2])])
    cli_fails(b, *(a.format(data=data, fifo=_fifo(b)) for a in argv))


def _forged(b: B) -> str:
    """The model file with ``classes[0]`` forged to ``{}`` and its checksums recomputed (by write_model_file)."""
    tensors, meta = xpnet.files.read_model_file(b.model_file)
    meta["classes"][0] = {}
    return str(xpnet.files.write_model_file(b.tmp / "forged.safetensors", tensors, meta))


def _trained_with_label_first(b: B) -> tuple[str, str]:
    """A model trained by ``xpnet train --label-column label`` on a CSV whose label comes first, and that CSV."""
    data = write_csv(b, "label_first.csv", "label,a,b", [f"{i % 2},{x:.4f},{y:.4f}" for i, (x, y) in
                                                           enumerate(XS[:, :2])])
    model = str(b.tmp / "label_first.safetensors")
    assert cli.main(["train", "--dataset", data, "--label-column", "label", "--epochs", "1", "-q", "--out", model,
                     "--backend", b.spec]) == 0
    b.capsys.readouterr()
    return model, data


def _other_columns(b: B) -> str:
    return write_csv(b, "other.csv", "a,c,label", [f"{x:.4f},{y:.4f},{i % 2}" for i, (x, y) in enumerate(XS[:, :2])])


def _resume_on_other_data(b: B) -> None:
    data = two_class_csv(b)
    ckpt = str(b.tmp / "ck.safetensors")
    assert cli.main(["train", "--dataset", data, "--epochs", "1", "-q", "--checkpoint", ckpt, "--backend", b.spec]) == 0
    b.capsys.readouterr()
    shuffled = write_csv(b, "shuffled.csv", "x1,x2,y", [f"{a:.4f},{c:.4f},{(i + 1) % 2}" for i, (a, c) in
                                                         enumerate(XS[:, :2])])
    cli_fails(b, "train", "--dataset", shuffled, "--epochs", "2", "-q", "--checkpoint", ckpt, "--resume")


def _fit_resume_on_other_data(b: B) -> None:
    ckpt = b.tmp / "est.safetensors"
    DNNClassifier((3,), max_iter=1, random_state=0, backend=b.backend).fit(b.arr(XS), YS, checkpoint=ckpt)
    DNNClassifier((3,), max_iter=2, random_state=0, backend=b.backend).fit(b.arr(XS), 1 - YS, checkpoint=ckpt,
                                                                           resume=True)


def _mixed_devices_linear(b: B) -> None:
    other = b.other_device()
    W = b.arr(np.ones((2, 3)), dtype="float32")
    F.linear_forward(other.asarray(np.ones((3, 4)), dtype="float32"), W, b.arr(np.zeros((2, 1)), dtype="float32"))


def _library(b: B) -> str:
    """The module an array of ``b`` comes from, as the messages name it."""
    return type(b.arr(np.zeros(1))).__module__.split(".")[0]


ROWS: tuple[Row, ...] = (
    Row("x-features", xpnet.ShapeError, (
        Entry("model_forward", lambda b: F.model_forward(b.arr(np.ones((2, 5))), params(b)),
              (r"A_prev has shape \(2, 5\)", r"W1 has shape \(4, 3\)", r"A_prev is X")),
        Entry("DNN.fit", lambda b: net(b).fit(b.arr(np.ones((2, 6))), b.arr(Y16), num_iterations=1),
              (r"X has shape \(2, 6\)", r"takes \(3, m\)")),
        Entry("DNN.predict", lambda b: net(b).predict(b.arr(np.ones((4, 2)))),
              (r"X has shape \(4, 2\)", r"takes \(3, m\)")),
        Entry("DNNClassifier.predict", lambda b: fitted_clf(b).predict(b.arr(XS[:, :2])),
              (r"X has 2 features", r"expecting 3")),
        Entry("xpnet predict", lambda b: _predict_npz(b, "three.npz", np.ones((4, 3))),
              (r"three\.npz has 3 features but the model takes 2",)),
    )),
    Row("y-examples", xpnet.ShapeError, (
        Entry("compute_cost", lambda b: F.compute_cost(b.arr(np.full((1, 5), 0.5)), b.arr(np.ones((1, 4)))),
              (r"Y has shape \(1, 4\)", r"output is \(1, 5\)")),
        Entry("model_backward", lambda b: backward(b, b.arr(np.ones((2, 5)))),
              (r"Y has shape \(2, 5\)", r"output is \(1, 5\)")),
        Entry("DNN.fit", lambda b: net(b).fit(b.arr(X36), b.arr(np.ones((1, 5))), num_iterations=1),
              (r"Y has shape \(1, 5\)", r"output is \(1, 6\)")),
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.arr(XS), YS[:10]), (r"y has 10 \w+ but X has 20",)),
    )),
    Row("parameter-shapes", xpnet.ShapeError, (
        Entry("linear_forward", lambda b: F.linear_forward(b.arr(X35), params(b)["W1"], params(b)["b2"], layer=1),
              (r"b1 has shape \(1, 1\)", r"b1 must be \(4, 1\)")),
        Entry("model_forward", lambda b: F.model_forward(b.arr(X35), dict(params(b), W2=b.arr(np.ones((1, 7))))),
              (r"W2 has shape \(1, 7\)", r"A_prev has shape \(4, 5\)")),
        Entry("update_parameters", lambda b: F.update_parameters(
            params(b), {"dW1": b.arr(np.ones((1, 4))), "db1": b.arr(np.zeros((4, 1))),
                        "dW2": b.arr(np.ones((1, 4))), "db2": b.arr(np.zeros((1, 1)))}, 0.1),
              (r"dW1 has shape \(1, 4\)", r"W1 has shape \(4, 3\)")),
    )),
    Row("layer-dims", xpnet.ConfigError, (
        Entry("initialize_parameters", lambda b: F.initialize_parameters([3, 0, 1], backend=b.backend),
              (r"layer_dims", r"got 0 in \[3, 0, 1\]")),
        Entry("DNN", lambda b: net(b, (3, -1)), (r"layer_dims", r"got -1 in \[3, -1\]")),
        Entry("DNNClassifier.fit", lambda b: clf(b, hidden_layer_sizes=(0,)).fit(b.arr(XS), YS),
              (r"hidden_layer_sizes", r"got \(0,\)")),
    )),
    Row("empty-data", xpnet.ShapeError, (
        Entry("compute_cost", lambda b: F.compute_cost(b.arr(np.ones((1, 0))), b.arr(np.ones((1, 0)))),
              (r"AL has no examples", r"0 columns")),
        Entry("DNN.fit", lambda b: net(b).fit(b.arr(np.ones((3, 0))), b.arr(np.ones((1, 0))), num_iterations=1),
              (r"X has shape \(3, 0\)", r"no examples")),
        Entry("DNN.predict", lambda b: net(b).predict(b.arr(np.ones((3, 0)))), (r"X has shape \(3, 0\)",)),
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.arr(np.ones((0, 3))), np.zeros(0)),
              (r"\bX\b", r"\(0, 3\)", r"0 sample")),
        Entry("DNNRegressor.predict", lambda b: fitted_reg(b).predict(b.arr(np.ones((0, 3)))),
              (r"\bX\b", r"\(0, 3\)", r"0 sample")),
    )),
    Row("single-class", xpnet.LabelError, (
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.arr(XS), np.zeros(20, dtype=int)),
              (r"\by holds only one class \(0\)",)),
        Entry("DNNClassifier.partial_fit", lambda b: clf(b).partial_fit(b.arr(XS), YS, classes=[0]),
              (r"classes must hold at least 2 labels, got \[0\]",)),
        Entry("xpnet train", _one_class_cli, (r"\by holds only one class \(1\)",)),
    )),
    Row("unseen-labels", xpnet.LabelError, (
        Entry("DNNClassifier.partial_fit", _unseen_partial,
              (r"\by holds labels the model was not fitted with: \[5, 6\]", r"known classes: \[0, 1\]")),
        Entry("DNNClassifier.fit", _unseen_warm, (r"not fitted with: \[5, 6\]", r"known classes: \[0, 1\]")),
        Entry("xpnet evaluate", _unseen_cli, (r"seven\.csv has labels the model was not trained on: \[7\]",
                                              r"model classes: \[0, 1\]")),
    )),
    Row("labels-out-of-range", xpnet.LabelError, (
        Entry("compute_cost", lambda b: F.compute_cost(b.arr(np.full((3, 5), 1 / 3)), b.raw(np.array([0, 1, 2, 5, 1])),
                                                       loss="categorical_cross_entropy"),
              (r"class labels must lie in 0\.\.2", r"from 0 to 5")),
        Entry("DNN.fit", lambda b: net(b).fit(b.arr(X36), b.arr(Y16 + 1), num_iterations=1),
              (r"labels in \[0, 1\]", r"from 1\.0 to 2\.0")),
        Entry("DNN.train", lambda b: net(b, (3, 4, 3), output="softmax").train(
                  b.arr(X36), b.arr(-np.eye(3)[:, [0, 1, 2, 0, 1, 2]]), epochs=1),
              (r"one-hot \(or probability\) targets in \[0, 1\]", r"from -1\.0 to -?0\.0")),
    )),
    Row("nonfinite-x", xpnet.InvalidValueError, (
        Entry("linear_forward", lambda b: F.linear_forward(b.arr(with_value(X35, (1, 2), np.nan)), params(b)["W1"],
                                                           params(b)["b1"]),
              (r"A_prev contains NaN", r"1 of 15 values", r"A_prev\[1, 2\] = nan")),
        Entry("model_forward", lambda b: F.model_forward(b.arr(with_value(X35, (1, 2), np.inf)), params(b)),
              (r"X contains infinity", r"X\[1, 2\] = inf")),
        Entry("predict", lambda b: F.predict(b.arr(with_value(X35, (0, 4), np.nan)), params(b)),
              (r"X contains NaN", r"X\[0, 4\] = nan")),
        Entry("DNN.fit", lambda b: net(b).fit(b.arr(with_value(X36, (2, 1), np.nan)), b.arr(Y16), num_iterations=1),
              (r"X contains NaN", r"X\[2, 1\] = nan")),
        Entry("DNN.train", lambda b: net(b).train(b.arr(with_value(X36, (2, 1), -np.inf)), b.arr(Y16), epochs=1),
              (r"X contains infinity", r"X\[2, 1\] = -inf")),
        Entry("DNN.predict", lambda b: net(b).predict_proba(b.arr(with_value(X36, (0, 0), np.nan))),
              (r"X contains NaN", r"X\[0, 0\] = nan")),
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.arr(with_value(XS, (4, 1), np.nan)), YS),
              (r"X contains NaN", r"X\[4, 1\] = nan")),
        Entry("DNNRegressor.predict", lambda b: fitted_reg(b).predict(b.arr(with_value(XS, (7, 2), np.inf))),
              (r"X contains infinity", r"X\[7, 2\] = inf")),
    )),
    Row("nonfinite-y", xpnet.InvalidValueError, (
        Entry("compute_cost", lambda b: F.compute_cost(b.arr(np.full((1, 5), 0.5)),
                                                       b.arr(with_value(Y15, (0, 2), np.inf)), loss="mse"),
              (r"Y contains infinity", r"Y\[0, 2\] = inf")),
        Entry("model_backward", lambda b: backward(b, b.arr(with_value(Y15, (0, 3), np.nan))),
              (r"Y contains NaN", r"Y\[0, 3\] = nan")),
        Entry("DNN.fit", lambda b: net(b).fit(b.arr(X36), b.arr(with_value(Y16, (0, 3), np.nan)), num_iterations=1),
              (r"Y contains NaN", r"Y\[0, 3\] = nan")),
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.arr(XS), b.arr(with_value(YS, 3, np.nan))),
              (r"y contains NaN", r"y\[3\] = nan")),
        Entry("DNNRegressor.fit", lambda b: reg(b).fit(b.arr(XS), b.arr(with_value(YR, 5, np.inf))),
              (r"y contains infinity", r"y\[5\] = inf")),
        Entry("DNNRegressor.score", lambda b: fitted_reg(b).score(b.arr(XS), with_value(YR, 0, np.nan)),
              (r"y contains NaN", r"y\[0\] = nan")),
    )),
    Row("float32-overflow", xpnet.InvalidValueError, (
        Entry("DNNRegressor.fit", lambda b: reg(b, dtype="float32").fit(with_value(XS, (2, 0), 1e39), YR),
              (r"\bX\b", r"range of float32", r"X\[2, 0\] = 1e\+39")),
        Entry("DNNRegressor.fit", lambda b: reg(b, dtype="float32").fit(b.arr(XS), with_value(YR, (4,), -3e39)),
              (r"y holds values beyond the range of float32", r"y\[4\] = -3e\+39")),
    )),
    Row("non-real-x", xpnet.DTypeError, (
        Entry("model_forward", lambda b: F.model_forward(b.raw(X35 + 1j), params(b)),
              (r"X has dtype \S*complex128", r"real numbers")),
        Entry("linear_forward", lambda b: F.linear_forward(b.raw(np.ones((3, 5), dtype=np.int64)), params(b)["W1"],
                                                           params(b)["b1"]),
              (r"A_prev has dtype \S*int64", r"float32 or float64")),
    )),
    Row("non-numeric-x", xpnet.InputTypeError, (
        Entry("DNN.fit", lambda b: net(b).fit(np.full((3, 6), "a"), Y16, num_iterations=1),
              (r"\bX\b", r"dtype <U1", r"real numbers")),
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(np.full((20, 3), "a", dtype=object), YS),
              (r"\bX\b", r"could not convert string to float: 'a'")),
    )),
    Row("complex-x-estimator", xpnet.InvalidValueError, (
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.raw(XS + 1j), YS),
              (r"Complex data not supported", r"X has dtype \S*complex128")),
        Entry("DNNRegressor.predict", lambda b: fitted_reg(b).predict(b.raw(XS + 1j)),
              (r"Complex data not supported", r"X has dtype \S*complex128")),
    )),
    Row("integer-x", None, (
        Entry("model_forward", _integer_x_model_forward),
        Entry("DNN.fit", _integer_x_dnn),
        Entry("DNNClassifier.fit", _integer_x_estimator),
    )),
    Row("not-an-array", xpnet.InputTypeError, (
        Entry("linear_forward", lambda b: F.linear_forward([[1.0]], params(b)["W1"], params(b)["b1"]),
              (r"A_prev: expected an array", r"builtins\.list")),
        Entry("model_forward", lambda b: F.model_forward(((1.0,),), params(b)), (r"X: expected an array", r"tuple")),
        Entry("compute_cost", lambda b: F.compute_cost(b.arr(np.full((1, 2), 0.5)), [1, 0]),
              (r"Y: expected an array", r"builtins\.list")),
    )),
    Row("mixed-namespaces", xpnet.NamespaceMismatchError, (
        Entry("model_forward", lambda b: F.model_forward(b.foreign(X35), params(b)),
              (r"different libraries", r"X: (array_api_strict|torch)", lambda b: f"W1: {_library(b)}")),
        Entry("compute_cost", lambda b: F.compute_cost(b.arr(np.full((1, 5), 0.5)), b.foreign(Y15)),
              (r"different libraries", lambda b: f"AL: {_library(b)}", r"Y: (array_api_strict|torch)")),
        Entry("DNN.predict", lambda b: net(b).predict(b.foreign(X36)),
              (r"X is a (array_api_strict|torch)", lambda b: f"computes on {re.escape(b.backend.spec)}")),
        Entry("DNNClassifier.predict", lambda b: fitted_clf(b).predict(b.foreign(XS)),
              (r"X is an array of (array_api_strict|torch)", lambda b: f"computes on {re.escape(b.backend.spec)}")),
    )),
    Row("mixed-devices", xpnet.DeviceMismatchError, (
        Entry("linear_forward", _mixed_devices_linear, (r"A_prev is on device", r"\bW\b is on device")),
        Entry("model_forward", lambda b: F.model_forward(
            b.other_device().asarray(X35, dtype="float32"),
            F.initialize_parameters([3, 4, 1], dtype="float32", backend=b.backend)),
              (r"X is on device", r"W1 is on device")),
        Entry("DNN.predict", lambda b: net(b).predict(b.other_device().asarray(X36, dtype="float32")),
              (r"X is on device", r"this network lives on")),
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.other_device().asarray(XS, dtype="float32"), YS),
              (r"X is on device", lambda b: f"computes on {re.escape(b.backend.spec)}")),
    ), backends=("array_api_strict", "torch:cuda:0")),
    Row("learning-rate", xpnet.ConfigError, (
        Entry("update_parameters", lambda b: F.update_parameters(params(b), {}, -0.1),
              (r"learning_rate", r"got -0\.1")),
        Entry("DNN.fit", lambda b: net(b).fit(b.arr(X36), b.arr(Y16), learning_rate=-1), (r"learning_rate", r"got -1")),
        Entry("DNN.train", lambda b: net(b).train(b.arr(X36), b.arr(Y16), learning_rate=-0.1, epochs=1),
              (r"learning rate", r"got -0\.1")),
        Entry("DNNClassifier.fit", lambda b: clf(b, learning_rate_init=-1).fit(b.arr(XS), YS),
              (r"learning_rate_init", r"got -1")),
    )),
    Row("dropout", xpnet.ConfigError, (
        Entry("DNN.train", lambda b: net(b).train(b.arr(X36), b.arr(Y16), dropout=1.0, epochs=1),
              (r"dropout", r"\[0, 1\)", r"got 1\.0")),
        Entry("DNNClassifier.fit", lambda b: clf(b, dropout=-0.1).fit(b.arr(XS), YS),
              (r"dropout", r"\[0, 1\)", r"got -0\.1")),
    )),
    Row("unknown-activation", xpnet.ConfigError, (
        Entry("model_forward", lambda b: F.model_forward(b.arr(X35), params(b), hidden="swish"),
              (r"activation 'swish'", r"valid activations: relu, leaky_relu, sigmoid, tanh, linear, softmax")),
        Entry("DNN", lambda b: net(b, hidden="swish"), (r"activation 'swish'", r"valid activations: relu")),
        Entry("DNNClassifier.fit", lambda b: clf(b, activation="swish").fit(b.arr(XS), YS),
              (r"activation 'swish'", r"valid: relu, leaky_relu, tanh")),
    )),
    Row("unknown-optimizer", xpnet.ConfigError, (
        Entry("DNN.train", lambda b: net(b).train(b.arr(X36), b.arr(Y16), optimizer="adamw", epochs=1),
              (r"optimizer 'adamw'", r"valid optimizers: gd, momentum, rmsprop, adam")),
        Entry("DNNClassifier.fit", lambda b: clf(b, solver="adamw").fit(b.arr(XS), YS),
              (r"solver 'adamw'", r"valid solvers: adam, sgd, lbfgs, momentum, rmsprop, gd")),
    )),
    Row("unknown-loss", xpnet.ConfigError, (
        Entry("compute_cost", lambda b: F.compute_cost(b.arr(np.full((1, 5), 0.5)), b.arr(Y15), loss="hinge"),
              (r"loss 'hinge'", r"valid losses: binary_cross_entropy, categorical_cross_entropy, mse")),
        Entry("model_backward", lambda b: backward(b, b.arr(Y15), loss="hinge"),
              (r"loss 'hinge'", r"valid losses: binary_cross_entropy")),
    )),
    Row("unknown-init", xpnet.ConfigError, (
        Entry("initialize_parameters", lambda b: F.initialize_parameters([3, 1], init="orthogonal", backend=b.backend),
              (r"init 'orthogonal'", r"valid initializers: he, xavier")),
        Entry("DNN", lambda b: net(b, init="orthogonal"), (r"init 'orthogonal'", r"valid initializers: he")),
        Entry("DNNClassifier.fit", lambda b: clf(b, init="orthogonal").fit(b.arr(XS), YS),
              (r"init 'orthogonal'", r"valid initializers: he")),
    )),
    Row("float64-unavailable", xpnet.DTypeError, (
        Entry("initialize_parameters", lambda b: F.initialize_parameters(
            [3, 1], dtype="float64", backend="array_api_strict:no_float64"),
              (r"float64 is not available on device \S*no_float64", r"\['float32'\]", r"dtype='float32'")),
        Entry("DNN", lambda b: xpnet.DNN([3, 1], dtype="float64", backend="array_api_strict:no_float64"),
              (r"float64 is not available", r"\['float32'\]")),
        Entry("DNNClassifier.fit", lambda b: DNNClassifier(
            (4,), max_iter=1, dtype="float64", backend="array_api_strict:no_float64").fit(XS, YS),
              (r"float64 is not available", r"\['float32'\]")),
        Entry("xpnet train", lambda b: cli_fails(b, "train", "--dataset", two_class_csv(b), "--epochs", "1", "-q",
                                                 "--dtype", "float64", backend="array_api_strict:no_float64"),
              (r"float64 is not available", r"\['float32'\]")),
    ), backends=("array_api_strict",)),
    Row("float64-fallback", None, (
        Entry("DNNClassifier.fit", _fallback_estimator),
        Entry("Backend.asarray", _fallback_asarray),
        Entry("xpnet.load", _fallback_load),
    ), backends=("array_api_strict",)),
    Row("data-file", xpnet.DatasetError, (
        Entry("xpnet train", lambda b: _cli_train_file(b, "nan.csv", "1.0,nan,0"),
              (r"nan\.csv", r"column 2 \('x2'\) holds 'nan'")),
        Entry("xpnet train", lambda b: _cli_train_file(b, "text.csv", "1.0,abc,0"),
              (r"text\.csv", r"holds 'abc', not a number")),
        Entry("xpnet predict", lambda b: _predict_npz(b, "nan.npz", with_value(np.ones((3, 2)), (1, 0), np.nan)),
              (r"X in \S*nan\.npz", r"X\[1, 0\] is nan")),
        Entry("xpnet train", lambda b: cli_fails(b, "train", "--dataset", _fifo(b, "pipe.csv"), "--epochs", "1", "-q"),
              (r"\S*pipe\.csv': it is a FIFO \(named pipe\), not a regular file",)),
        Entry("xpnet predict", lambda b: cli_fails(b, "predict", b.model_file, _fifo(b, "pipe.csv")),
              (r"\S*pipe\.csv': it is a FIFO \(named pipe\), not a regular file",)),
    )),
    Row("not-fitted", NotFittedError, (
        Entry("DNNClassifier.predict", lambda b: clf(b).predict(b.arr(XS)),
              (r"this DNNClassifier is not fitted yet", r"call fit\(X, y\)")),
        Entry("DNNRegressor.score", lambda b: reg(b).score(b.arr(XS), YR), (r"DNNRegressor is not fitted",)),
        Entry("xpnet.save", lambda b: xpnet.save(clf(b), b.tmp / "m.safetensors"), (r"cannot be saved",)),
    )),
    Row("score-lengths", xpnet.ShapeError, (
        Entry("DNNClassifier.score", lambda b: fitted_clf(b).score(b.arr(XS), YS[:-1]),
              (r"y has 19 entries but X has 20 rows",)),
        Entry("DNNRegressor.score", lambda b: fitted_reg(b).score(b.arr(XS), YR, sample_weight=np.ones(3)),
              (r"sample_weight has 3 entries but X has 20 rows",)),
    )),
    Row("bad-caches", xpnet.InputTypeError, (
        Entry("model_backward", lambda b: F.model_backward(b.arr(np.full((1, 4), 0.5)), b.arr(np.ones((1, 4))),
                                                           [1, 2]),
              (r"the cache of layer 2 must be the \(linear_cache, Z\) pair", r"got int")),
        Entry("model_backward", lambda b: F.model_backward(b.arr(np.full((1, 4), 0.5)), b.arr(np.ones((1, 4))), 7),
              (r"caches must be the list of caches model_forward returns, got int",)),
        Entry("linear_backward", lambda b: F.linear_backward(b.arr(np.ones((1, 4))), (b.arr(np.ones((3, 4))),)),
              (r"cache must be the \(A_prev, W, b\) triple", r"tuple of length 1")),
    )),
    Row("network-too-large", xpnet.DeviceMemoryError, (
        Entry("DNN", lambda b: xpnet.DNN([10**6, 10**6, 1], backend=b.backend),
              (r"layer_dims \[1000000, 1000000, 1\] needs \S+ TiB", r"more than the .* free")),
        Entry("initialize_parameters", lambda b: F.initialize_parameters([10**6, 10**6, 1], backend=b.backend),
              (r"1,000,002,000,001 values",)),
        Entry("xpnet train", lambda b: cli_fails(b, "train", "--layers", "1000000000", "--epochs", "1", "-q"),
              (r"layer_dims \[64, 1000000000, 10\]", r"use fewer or smaller layers")),
    )),
    Row("nonfinite-output", xpnet.InvalidValueError, (
        Entry("DNN.predict", lambda b: _huge(net(b, output="linear")).predict(b.arr(np.ones((3, 4)))),
              (r"output is not finite .* for 4 of 4 examples \(rows 0, 1, 2, 3\)",)),
        Entry("DNNRegressor.predict", lambda b: _huge_est(fitted_reg(b)).predict(b.arr(XS)),
              (r"for \d+ of 20 examples \(rows \d+", r"retrain the model")),
    )),
    Row("regression-lookalike", xpnet.LabelError, (
        Entry("xpnet train", lambda b: cli_fails(b, "train", "--dataset", _whole_number_targets(b), "--epochs", "1",
                                                 "-q"),
              (r"the labels hold 120 distinct whole numbers \(100\.\.219\) among 120 samples",
               r"pass --task regression")),
    )),
    Row("output-over-input", cli.CommandError, (
        Entry("xpnet train", lambda b: _output_over(b, "train", "--dataset", "{data}", "--epochs", "1", "-q",
                                                    "--out", "{data}"),
              (r"cannot write model '\S*data\.csv'", r"same file as the input '\S*data\.csv'")),
        Entry("xpnet predict", lambda b: _output_over(b, "predict", b.model_file, "{data}", "--out", b.model_file),
              (r"cannot write predictions", r"same file as the input")),
        Entry("xpnet train", lambda b: _output_over(b, "train", "--dataset", "{data}", "--epochs", "1", "-q",
                                                    "--out", "{fifo}"),
              (r"cannot write model '\S*pipe'", r"it is a FIFO")),
    )),
    Row("special-file-output", xpnet.ModelFileError, (
        Entry("xpnet.save", lambda b: xpnet.save(xpnet.DNN([2, 3, 1], backend="numpy"), _fifo(b)),
              (r"cannot save model to '\S*pipe'", r"it is a FIFO \(named pipe\)")),
    )),
    Row("forged-metadata", xpnet.ModelFileError, (
        Entry("xpnet.load", lambda b: xpnet.load(_forged(b), backend=b.backend),
              (r"cannot read model file '\S*forged\.safetensors'", r"its metadata is invalid: classes\[0\] = \{\}")),
        Entry("xpnet.read_metadata", lambda b: xpnet.files.read_metadata(_forged(b)),
              (r"its metadata is invalid: classes\[0\] = \{\}",)),
        Entry("xpnet predict", lambda b: cli_fails(b, "predict", _forged(b), two_class_csv(b)),
              (r"its metadata is invalid",)),
    )),
    Row("mismatched-pieces", xpnet.ConfigError, (
        Entry("model_backward", _backward_other_hidden,
              (r"layer 1's cache was made with hidden='tanh'", r"given hidden='relu'")),
        Entry("model_backward", _backward_other_network,
              (r"AL is not the output of the forward pass that made these caches",)),
        Entry("model_forward", lambda b: F.model_forward(b.arr(X35), {k: v for k, v in params(b).items() if k != "W2"}),
              (r"parameters is missing 'W2'", r"W1, b1, \.\.\., W2, b2")),
        Entry("model_forward", lambda b: F.model_forward(b.arr(X35), params(b), output="softmax"),
              (r"softmax on a layer of 1 unit",)),
        Entry("compute_cost", lambda b: F.compute_cost(b.arr(np.full((1, 6), 0.5)), b.arr(Y16), loss="cross_entropy"),
              (r"'cross_entropy' means that\), but AL has 1 row", r"binary_cross_entropy")),
    )),
    Row("csv-columns", xpnet.ShapeError, (
        Entry("xpnet predict", lambda b: cli_fails(b, "predict", _trained_with_label_first(b)[0], _other_columns(b)),
              (r"has the feature columns \['a', 'c'\], but the model was trained on \['a', 'b'\]",
               r"missing \['b'\]; not in the model \['c'\]")),
        Entry("xpnet evaluate", lambda b: cli_fails(b, "evaluate", _trained_with_label_first(b)[0], _other_columns(b)),
              (r"missing \['b'\]",)),
    )),
    Row("resume-other-data", xpnet.ConfigError, (
        Entry("xpnet train", _resume_on_other_data,
              (r"written by a run on other data", r"--dataset, --label-column, --seed")),
        Entry("DNNClassifier.fit", _fit_resume_on_other_data, (r"written by a run on other data",)),
    )),
    Row("bad-labels", xpnet.LabelError, (
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.arr(XS), np.array(["a", None] * 10, dtype=object)),
              (r"y holds a missing label \(None or NaN\) at 10 position\(s\), the first y\[1\]",)),
        Entry("DNNClassifier.fit", lambda b: clf(b).fit(b.arr(XS), np.array(["a", 1] * 10, dtype=object)),
              (r"y mixes numbers and text",)),
        Entry("DNNClassifier.score", lambda b: fitted_clf(b).score(b.arr(XS), np.array(["a"] * 20)),
              (r"y does not hold labels of the model's kind", r"classes are \[0, 1\]")),
    )),
    Row("cli-usage", SystemExit, (
        Entry("xpnet train", lambda b: cli_usage(b, "train", "--lr=-0.1"), (r"argument --lr: -0\.1 is outside",)),
        Entry("xpnet train", lambda b: cli_usage(b, "train", "--dropout", "1.0"),
              (r"argument --dropout: 1\.0 is outside \[0, 1\)",)),
        Entry("xpnet train", lambda b: cli_usage(b, "train", "--optimizer", "adamw"),
              (r"argument --optimizer: invalid choice: 'adamw' \(choose from",)),
        Entry("xpnet train", lambda b: cli_usage(b, "train", "--activation", "swish"),
              (r"argument --activation: invalid choice: 'swish' \(choose from",)),
    )),
)


# ------------------------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A classifier of classes 0 and 1 on 2 features, saved as `xpnet train --out` would save it."""
    path = tmp_path_factory.mktemp("model") / "two.safetensors"
    est = DNNClassifier((4,), max_iter=2, random_state=0, backend="numpy").fit(XS[:, :2], YS)
    xpnet.save(est, path)
    return str(path)


CASES = [pytest.param(row, spec, id=f"{row.id}-{spec.split(':')[0].replace('array_api_', '')}"
                      + ("-cuda" if "cuda" in spec else ""))
         for row in ROWS for spec in row.backends]


@pytest.mark.parametrize(("row", "spec"), CASES)
def test_error_table_row(row: Row, spec: str, tmp_path: Path, capsys: Any, model_file: str) -> None:
    b = B(spec, _backend_or_skip(spec), tmp_path, capsys, model_file)
    assert row.entries
    for entry in row.entries:
        if row.error is None:
            entry.call(b)  # asserts the documented cast or fallback itself
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with pytest.raises(row.error) as info:
                entry.call(b)
        if row.error is SystemExit:
            assert info.value.code == 2
            message = capsys.readouterr().err
        else:
            assert isinstance(info.value, xpnet.XpnetError)
            message = str(info.value)
        assert entry.says, f"{row.id} / {entry.where}: no pattern to check the message with"
        for pattern in entry.says:
            regex = pattern(b) if callable(pattern) else pattern
            assert re.search(regex, message), f"{row.id} / {entry.where}: {regex!r} not in {message!r}"


def _readme_table() -> dict[str, dict[str, str]]:
    """The README's error table: ``{id: {"case", "where", "error", "message"}}``."""
    text = README.read_text()
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([a-z0-9-]+)`(.*)", cells[0]) if line.startswith("| `") else None
        if match:
            assert len(cells) == 4, f"the error table's row {line!r} must have 4 cells"
            rows[match.group(1)] = {"case": match.group(2), "where": cells[1], "error": cells[2], "message": cells[3]}
    return rows


def test_readme_table_and_cases_agree() -> None:
    table = _readme_table()
    assert len(table) >= 15
    assert list(table) == [row.id for row in ROWS], "the README's error table and tests/test_errors.py ROWS differ"
    for row in ROWS:
        documented = table[row.id]
        expected = "none" if row.error is None else ("usage error" if row.error is SystemExit else row.error.__name__)
        assert expected in documented["error"], f"{row.id}: the README says {documented['error']!r}"
        for entry in row.entries:
            assert f"`{entry.where}`" in documented["where"], f"{row.id}: the README's where lacks `{entry.where}`"
        assert "numpy" in row.backends or row.id in ("mixed-devices", "float64-unavailable", "float64-fallback")
        assert "array_api_strict" in row.backends

"""The scikit-learn estimators: scikit-learn's own estimator checks, meta-estimators, accuracy, namespaces in
and out, agreement across backends, the fitted attributes against a NumPy forward pass, incremental
training, early stopping, class weights, solvers, dtypes, and pickle / model-file round trips."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import xpnet
from xpnet.estimators import DNNClassifier, DNNRegressor

no_convergence_warning = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@no_convergence_warning
@parametrize_with_checks([DNNClassifier(backend="numpy"), DNNRegressor(backend="numpy")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def moons():
    X, y = xpnet.datasets.make_moons(120, noise=0.2, seed=0)
    order = np.random.default_rng(0).permutation(120)  # make_moons lists the classes (and angles) in order
    return X[order], y[order]


@pytest.fixture(scope="module")
def blobs():
    """Three well separated classes in 3 features."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 0.0], [0.0, 3.0, 3.0]])
    y = np.repeat(np.arange(3), 30)
    X = centers[y] + rng.standard_normal((90, 3)) * 0.5
    return X, y


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (80, 3))
    y = np.column_stack([X[:, 0] - 2 * X[:, 1], np.sin(2 * X[:, 2])])
    return X, y


def _reference_proba(est, X: np.ndarray) -> np.ndarray:
    """A NumPy float64 forward pass from coefs_ / intercepts_ (scikit-learn's orientation, rows are samples)."""
    A = np.asarray(X, dtype=np.float64)
    if est.mean_ is not None:
        A = (A - est.mean_) / est.scale_
    n = len(est.coefs_)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        Z = A @ W + b
        if i < n - 1:
            A = {"relu": np.maximum(Z, 0.0), "tanh": np.tanh(Z)}[est.activation]
        elif est.out_activation_ == "logistic":
            A = 1 / (1 + np.exp(-Z))
        elif est.out_activation_ == "softmax":
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            A = E / E.sum(axis=1, keepdims=True)
        else:
            A = Z
    return A


# ------------------------------------------------------------------------------------ meta-estimators
@no_convergence_warning
def test_pipeline_grid_search_and_cross_val_score(moons):
    X, y = moons
    pipe = make_pipeline(StandardScaler(), DNNClassifier((8,), max_iter=40, learning_rate_init=0.02,
                                                         random_state=0, backend="numpy"))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8
    assert pipe.predict(X).shape == (120,) and set(np.unique(pipe.predict(X))) <= {0, 1}

    grid = GridSearchCV(DNNClassifier(max_iter=30, batch_size=16, learning_rate_init=0.02, random_state=0,
                                      backend="numpy"),
                        {"hidden_layer_sizes": [(4,), (12,)], "alpha": [1e-4, 1e-1]}, cv=3)
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_params_["hidden_layer_sizes"] in [(4,), (12,)]
    assert grid.best_estimator_.coefs_[0].shape == (2, grid.best_params_["hidden_layer_sizes"][0])
    assert grid.best_score_ > 0.7

    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.7)


def test_digits_accuracy():
    X, y = xpnet.datasets.load_digits()
    X_train, X_test, y_train, y_test = xpnet.datasets.train_test_split(X, y, test_size=0.25, seed=0)
    clf = DNNClassifier((64,), standardize=True, max_iter=60, random_state=0, backend="numpy")
    with pytest.warns(ConvergenceWarning):  # the loss is still improving after 60 epochs
        clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95
    assert clf.n_iter_ == 60 and len(clf.loss_curve_) == 60
    assert clf.mean_.shape == (64,) and clf.scale_.shape == (64,)
    np.testing.assert_allclose(clf.mean_, X_train.mean(axis=0), rtol=1e-12)


# ------------------------------------------------------------------------------------------ namespaces
@no_convergence_warning
def test_numpy_in_numpy_out(moons, regression):
    X, y = moons
    clf = DNNClassifier((6,), max_iter=5, random_state=0, backend="numpy").fit(X.tolist(), y.tolist())
    for out in (clf.predict(X), clf.predict_proba(X), clf.predict_log_proba(X)):
        assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)))
    Xr, yr = regression
    reg = DNNRegressor((6,), max_iter=5, random_state=0, backend="numpy").fit(Xr, yr)
    assert isinstance(reg.predict(Xr), np.ndarray)


def _library(name):
    if name == "torch":
        torch = pytest.importorskip("torch", reason="torch is not installed")
        return torch.asarray, torch.Tensor, "torch:cpu"
    xs = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    return xs.asarray, type(xs.asarray(0.0)), "array_api_strict:CPU_DEVICE"


@no_convergence_warning
@pytest.mark.parametrize("library", ["torch", "array_api_strict"])
def test_arrays_of_a_library_in_give_that_library_out(moons, regression, library):
    convert, array_type, spec = _library(library)
    X, y = moons
    clf = DNNClassifier((6,), max_iter=5, random_state=0).fit(convert(X), convert(y))
    assert clf._backend_.spec == spec
    for out in (clf.predict(convert(X)), clf.predict_proba(convert(X))):
        assert isinstance(out, array_type)
    assert tuple(clf.predict_proba(convert(X)).shape) == (120, 2)
    np.testing.assert_array_equal(xpnet.to_numpy(clf.predict(convert(X))), clf.predict(X))  # numpy in: numpy out
    assert isinstance(clf.predict(X), np.ndarray)
    assert clf.score(convert(X), convert(y)) == clf.score(X, y)
    Xr, yr = regression
    reg = DNNRegressor((6,), max_iter=5, random_state=0).fit(convert(Xr), convert(yr))
    assert reg._backend_.spec == spec
    out = reg.predict(convert(Xr))
    assert isinstance(out, array_type) and tuple(out.shape) == (80, 2)


@no_convergence_warning
def test_same_random_state_same_predictions_on_every_backend(moons):
    X, y = moons
    ref = DNNClassifier((8, 4), max_iter=15, dropout=0.1, random_state=3, dtype="float64", backend="numpy")
    ref.fit(X, y)
    for spec in ("torch:cpu", "array_api_strict:CPU_DEVICE"):
        pytest.importorskip(spec.split(":")[0])
        other = DNNClassifier((8, 4), max_iter=15, dropout=0.1, random_state=3, dtype="float64", backend=spec)
        other.fit(X, y)
        assert other._backend_.spec == spec
        np.testing.assert_allclose(other.predict_proba(X), ref.predict_proba(X), rtol=1e-10, atol=1e-13)
        np.testing.assert_array_equal(other.predict(X), ref.predict(X))
        np.testing.assert_allclose(other.loss_curve_, ref.loss_curve_, rtol=1e-10)


# ------------------------------------------------------------------------------------------ classifier
@no_convergence_warning
def test_string_labels_multiclass_softmax(blobs):
    X, y_int = blobs
    names = np.array(["setosa", "versicolor", "virginica"])
    y = names[y_int]
    clf = DNNClassifier((10,), activation="tanh", max_iter=40, learning_rate_init=0.02, random_state=0,
                        backend="numpy").fit(X, y)
    np.testing.assert_array_equal(clf.classes_, names)
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 3 and clf.network_.output.name == "softmax"
    pred = clf.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba, _reference_proba(clf, X), rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(pred, names[proba.argmax(axis=1)])


@no_convergence_warning
def test_binary_sigmoid_head_and_sklearn_orientation(moons):
    X, y = moons
    clf = DNNClassifier((7, 5), max_iter=30, learning_rate_init=0.02, random_state=0, backend="numpy",
                        standardize=True).fit(X, y + 10)
    np.testing.assert_array_equal(clf.classes_, [10, 11])
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1 and clf.n_layers_ == 4
    assert [W.shape for W in clf.coefs_] == [(2, 7), (7, 5), (5, 1)]
    assert [b.shape for b in clf.intercepts_] == [(7,), (5,), (1,)]
    np.testing.assert_array_equal(clf.coefs_[0], clf.network_.get_parameters()["W1"].T)
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba[:, 1], _reference_proba(clf, X)[:, 0], rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(clf.predict(X), np.where(proba[:, 1] > 0.5, 11, 10))
    assert clf.score(X, y + 10) > 0.8


def test_single_class_and_unknown_solver():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(xpnet.LabelError, match="only one class"):
        DNNClassifier(backend="numpy").fit(X, np.ones(10))
    with pytest.raises(xpnet.ConfigError, match="valid solvers: adam, sgd, lbfgs, momentum, rmsprop, gd"):
        DNNClassifier(solver="adamw", backend="numpy").fit(X, np.arange(10) % 2)
    with pytest.raises(xpnet.ConfigError, match="lbfgs"):
        DNNRegressor(solver="lbfgs", backend="numpy").fit(X, np.arange(10.0)).partial_fit(X, np.arange(10.0))


@no_convergence_warning
def test_partial_fit(moons):
    X, y = moons
    clf = DNNClassifier((6,), random_state=0, backend="numpy")
    with pytest.raises(xpnet.ConfigError, match="classes"):
        clf.partial_fit(X, y)
    labels = np.array(["a", "b"])[y]
    clf.partial_fit(X[:60], labels[:60], classes=["b", "a"])
    np.testing.assert_array_equal(clf.classes_, ["a", "b"])
    assert clf.n_iter_ == 1
    first = clf.coefs_[0].copy()
    clf.partial_fit(X[60:], labels[60:])  # later calls may omit classes
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 2  # n_iter_ counts this call's epochs, as scikit-learn
    assert not np.array_equal(first, clf.coefs_[0])
    with pytest.raises(xpnet.LabelError, match="not fitted with"):
        clf.partial_fit(X[:5], np.array(["a", "b", "c", "a", "b"]))
    with pytest.raises(xpnet.LabelError, match="at least 2"):
        DNNClassifier(backend="numpy").partial_fit(X, y, classes=[0])
    reg = DNNRegressor((4,), random_state=0, backend="numpy")
    reg.partial_fit(X, y.astype(float))
    reg.partial_fit(X, y.astype(float))
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 2 and reg.predict(X).shape == (120,)


@no_convergence_warning
def test_partial_fit_equals_fit_epoch_by_epoch(moons):
    """partial_fit is one epoch; three of them train exactly as fit(max_iter=3) (same shuffles)."""
    X, y = moons
    a = DNNClassifier((6,), max_iter=3, random_state=0, backend="numpy", n_iter_no_change=100).fit(X, y)
    b = DNNClassifier((6,), random_state=0, backend="numpy", n_iter_no_change=100)
    for _ in range(3):
        b.partial_fit(X, y, classes=[0, 1])
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    for Wa, Wb in zip(a.coefs_, b.coefs_, strict=True):
        np.testing.assert_array_equal(Wa, Wb)


@no_convergence_warning
def test_warm_start_continues(moons):
    X, y = moons
    clf = DNNClassifier((6,), max_iter=5, warm_start=True, random_state=0, backend="numpy").fit(X, y)
    curve, coefs = list(clf.loss_curve_), clf.coefs_[0].copy()
    clf.fit(X, y)
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[:5] == curve
    assert not np.array_equal(coefs, clf.coefs_[0])
    # without warm_start, a second fit starts over
    cold = DNNClassifier((6,), max_iter=5, random_state=0, backend="numpy").fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 5 and cold.loss_curve_ == curve
    # with a lecture optimizer (its state carries over; scikit-learn's start anew each fit) ten epochs in one go
    # equal five and five with warm_start
    once = DNNClassifier((6,), max_iter=10, random_state=0, backend="numpy", n_iter_no_change=100,
                         solver="momentum").fit(X, y)
    twice = DNNClassifier((6,), max_iter=5, warm_start=True, random_state=0, backend="numpy", solver="momentum")
    twice.fit(X, y).fit(X, y)
    np.testing.assert_allclose(once.loss_curve_, twice.loss_curve_, rtol=1e-12)


def test_early_stopping_uses_a_validation_split(moons):
    X, y = moons
    kwargs = dict(hidden_layer_sizes=(6,), early_stopping=True, validation_fraction=0.25, random_state=0,
                  backend="numpy")
    # tol=1.0: an accuracy can never improve by more than 1, so (scikit-learn's rule) it stops once more than
    # n_iter_no_change epochs in a row brought no such improvement: after 1 + 3 epochs.
    clf = DNNClassifier(max_iter=50, tol=1.0, n_iter_no_change=2, **kwargs).fit(X, y)
    assert clf.n_iter_ == 4
    assert len(clf.validation_scores_) == 4 and clf.best_validation_score_ == max(clf.validation_scores_)
    assert all(0 <= s <= 1 for s in clf.validation_scores_)
    # validation accuracy is counted on the held-out quarter: multiples of 1/30
    np.testing.assert_allclose(np.array(clf.validation_scores_) * 30, np.round(np.array(clf.validation_scores_) * 30),
                               atol=1e-9)
    best = int(np.argmax(clf.validation_scores_))  # the first epoch with the best score
    # best weights restored: those after epoch `best`, as a run of best + 1 epochs on the same split gives
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # whether it warns depends on where best falls
        short = DNNClassifier(max_iter=best + 1, tol=1.0, n_iter_no_change=2, **kwargs).fit(X, y)
    for Wa, Wb in zip(clf.coefs_, short.coefs_, strict=True):
        np.testing.assert_array_equal(Wa, Wb)
    no_split = DNNClassifier((6,), max_iter=3, random_state=0, backend="numpy")
    with pytest.warns(ConvergenceWarning):
        no_split.fit(X, y)
    assert no_split.validation_scores_ is None and no_split.history_["val_loss"] == [None] * 3


def test_validation_data_in_fit_is_used(moons):
    X, y = moons
    Xv, yv = X[:30], y[:30]
    clf = DNNClassifier((6,), max_iter=4, random_state=0, backend="numpy")
    with pytest.warns(ConvergenceWarning):
        clf.fit(X[30:], y[30:], validation_data=(Xv, yv))
    assert len(clf.validation_scores_) == 4 and None not in clf.history_["val_loss"]
    assert clf.validation_scores_[-1] == pytest.approx(clf.score(Xv, yv), abs=1e-12)
    assert clf.t_ == 4 * 90  # trained on all of X: no split is taken when validation data is given
    reg = DNNRegressor((6,), max_iter=3, random_state=0, backend="numpy")
    with pytest.warns(ConvergenceWarning):
        reg.fit(X[30:], y[30:].astype(float), validation_data=(Xv, yv.astype(float)))
    assert reg.validation_scores_[-1] == pytest.approx(reg.score(Xv, yv.astype(float)), rel=1e-9)


def _initial_parameters(est, X, n_out):
    """The initial weights the estimator starts from: scikit-learn's Glorot-uniform scheme, same layer sizes, seed
    and dtype."""
    from xpnet.estimators.sklearn_rules import glorot_uniform_parameters

    return glorot_uniform_parameters([X.shape[1], *est.hidden_layer_sizes, n_out], logistic=False,
                                     seed=est.random_state, dtype_name="float64")


@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 4.0}, {1: 0.5}])
def test_class_weight_scales_each_sample_loss(class_weight):
    """Full batch: the first epoch's loss is (1/m) sum_j w_j loss_j + alpha/(2m) sum ||W||^2 at the initial
    weights, with w_j the weight of sample j's class."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 3))
    y = np.array([0] * 32 + [1] * 8)
    clf = DNNClassifier((5,), max_iter=1, batch_size="full", class_weight=class_weight, alpha=0.1, random_state=2,
                        backend="numpy")
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    p = _initial_parameters(clf, X, 1)
    A1 = np.maximum(p["W1"] @ X.T + p["b1"], 0.0)
    a = 1 / (1 + np.exp(-(p["W2"] @ A1 + p["b2"])))[0]
    per_sample = -(y * np.log(a) + (1 - y) * np.log(1 - a))
    if class_weight == "balanced":
        weight_of = {0: 40 / (2 * 32), 1: 40 / (2 * 8)}
    else:
        weight_of = {0: class_weight.get(0, 1.0), 1: class_weight.get(1, 1.0)}
    w = np.array([weight_of[c] for c in y])
    penalty = np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2)
    assert clf.loss_curve_[0] == pytest.approx(np.mean(w * per_sample) + 0.1 / (2 * 40) * penalty, rel=1e-10)


def test_class_weight_validation():
    X = np.zeros((4, 2))
    y = np.array([0, 1, 0, 1])
    with pytest.raises(xpnet.ConfigError, match="class_weight"):
        DNNClassifier(class_weight="auto", backend="numpy").fit(X, y)
    with pytest.raises(xpnet.ConfigError, match="not in y"):
        DNNClassifier(class_weight={2: 1.0}, backend="numpy").fit(X, y)


@pytest.mark.parametrize(("cls", "weight", "shown"), [
    (0, float("nan"), "nan"), (1, float("inf"), "inf"), (0, np.float64(-np.inf), "-inf"), (1, -0.5, "-0.5"),
    (0, "2", "'2'"), (1, None, "None"), (0, True, "True"), (1, [1.0], "[1.0]"),
])
def test_class_weight_values_must_be_finite_non_negative_numbers(cls, weight, shown):
    # NaN/inf used to surface as a DivergenceError advising a lower learning rate, a negative weight was
    # accepted, and a string failed inside scikit-learn with a builtin ValueError.
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    y = np.array([0, 1, 0, 1])
    weights = {0: 1.0, 1: 2.0, cls: weight}
    with pytest.raises(xpnet.ConfigError) as info:
        DNNClassifier((3,), max_iter=2, class_weight=weights, backend="numpy").fit(X, y)
    assert str(info.value) == f"class_weight for class {cls} must be a finite number >= 0, got {shown}"
    with pytest.raises(xpnet.ConfigError, match=f"class_weight for class {cls} must be"):
        DNNClassifier((3,), class_weight=weights, backend="numpy").partial_fit(X, y, classes=[0, 1])
    ok = DNNClassifier((3,), max_iter=2, class_weight={0: 0, 1: np.int64(3)}, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ok.fit(X, y)  # 0 and NumPy integers are valid weights
    assert np.isfinite(ok.loss_curve_).all()


def test_balanced_class_weight_with_partial_fit_on_a_batch_missing_a_class():
    X = np.random.default_rng(0).standard_normal((10, 2))
    clf = DNNClassifier((4,), class_weight="balanced", random_state=0, backend="numpy")
    try:
        clf.partial_fit(X, np.zeros(10, dtype=int), classes=[0, 1])
    except xpnet.ConfigError:  # refusing balanced weights for partial_fit clearly would be fine too
        return
    assert clf.n_iter_ == 1


# ------------------------------------------------------------------------------------ solvers, dtypes
@pytest.mark.parametrize(("solver", "lr"), [("adam", 0.01), ("sgd", 0.3), ("momentum", 0.3), ("rmsprop", 0.003),
                                            ("gd", 0.3)])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_every_solver_reduces_the_loss(moons, solver, lr, dropout):
    X, y = moons
    clf = DNNClassifier((16,), solver=solver, learning_rate_init=lr, dropout=dropout, max_iter=25, batch_size=20,
                        random_state=0, backend="numpy", n_iter_no_change=100)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert clf.loss_curve_[-1] < 0.8 * clf.loss_curve_[0], clf.loss_curve_
    assert clf.trainer_.optimizer.name == {"sgd": "sklearn_sgd", "adam": "sklearn_adam"}.get(solver, solver)
    assert clf.trainer_.optimizer.t == 25 * 6  # 120 samples in batches of 20
    assert clf.best_loss_ == min(clf.loss_curve_)


@pytest.mark.parametrize(("schedule", "expected"), [
    ("constant", [0.01] * 4),
    ("inverse_time", [0.01, 0.01 / 2, 0.01 / 3, 0.01 / 4]),
    # scikit-learn's invscaling: alpha0 / (t + 1)^power_t, t the samples seen (120 per epoch), sgd only
    ("invscaling", [0.01 / (120 * k + 1) ** 0.25 for k in range(4)]),
    ("step", [0.01, 0.005, 0.0025, 0.00125]),
])
def test_learning_rate_names_the_schedule(moons, schedule, expected):
    X, y = moons
    clf = DNNClassifier((4,), max_iter=4, learning_rate=schedule, learning_rate_init=0.01, random_state=0,
                        backend="numpy", solver="sgd", power_t=0.25)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert clf.history_["lr"] == pytest.approx(expected, rel=1e-12)


def test_cosine_schedule_keeps_learning_after_the_first_epoch(moons):
    X, y = moons
    clf = DNNClassifier((4,), max_iter=5, learning_rate="cosine", learning_rate_init=0.01, random_state=0,
                        backend="numpy", n_iter_no_change=100)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    lrs = clf.history_["lr"]
    assert lrs[0] == 0.01 and all(lr > 0 for lr in lrs) and lrs == sorted(lrs, reverse=True)
    assert clf.loss_curve_[-1] < clf.loss_curve_[1]  # epochs after the first still move the weights


def test_solver_hyperparameters_reach_the_optimizer(moons):
    X, y = moons
    fit = dict(max_iter=1, random_state=0, backend="numpy")
    with pytest.warns(ConvergenceWarning):
        adam = DNNClassifier(solver="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-6, **fit).fit(X, y)
        sgd = DNNClassifier(solver="sgd", momentum=0.5, **fit).fit(X, y)
        plain = DNNClassifier(solver="sgd", momentum=0.0, **fit).fit(X, y)
    assert adam.trainer_.optimizer.hyperparameters() == {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}
    assert sgd.trainer_.optimizer.hyperparameters() == {"momentum": 0.5, "nesterov": 1.0}
    assert plain.trainer_.optimizer.hyperparameters() == {"momentum": 0.0, "nesterov": 1.0}


@no_convergence_warning
def test_dtype_follows_the_input(moons, regression):
    X, y = moons
    f32 = DNNClassifier((4,), max_iter=2, random_state=0, backend="numpy").fit(X.astype(np.float32), y)
    assert f32.network_.dtype == np.float32
    assert f32.predict_proba(X).dtype == np.float32  # float64 input is cast to the network's dtype
    f64 = DNNClassifier((4,), max_iter=2, random_state=0, backend="numpy").fit(X, y)
    assert f64.network_.dtype == np.float64
    ints = DNNClassifier((4,), max_iter=2, random_state=0, backend="numpy").fit((X * 10).astype(np.int64), y)
    assert ints.network_.dtype == np.float64
    forced = DNNClassifier((4,), max_iter=2, random_state=0, backend="numpy", dtype="float32").fit(X, y)
    assert forced.network_.dtype == np.float32
    Xr, yr = regression
    reg = DNNRegressor((4,), max_iter=2, random_state=0, backend="numpy").fit(Xr.astype(np.float32), yr)
    assert reg.network_.dtype == np.float32 and reg.predict(Xr).dtype == np.float32


@no_convergence_warning
@pytest.mark.parametrize(("first", "second"), [(np.float32, np.float64), (np.float64, np.float32)])
def test_refit_follows_the_new_input_dtype(moons, first, second):
    X, y = moons
    clf = DNNClassifier((4,), max_iter=2, random_state=0, backend="numpy").fit(X.astype(first), y)
    clf.fit(X.astype(second), y)  # a new fit (no warm start) starts over and follows the new input
    fresh = DNNClassifier((4,), max_iter=2, random_state=0, backend="numpy").fit(X.astype(second), y)
    assert clf.network_.dtype == second
    assert all(v.dtype == second for v in clf.network_.parameters.values())
    np.testing.assert_array_equal(clf.predict_proba(X), fresh.predict_proba(X))


@no_convergence_warning
def test_t_counts_training_samples_seen(moons):
    """As scikit-learn's MLP: t_ is the number of training samples the solver has seen."""
    X, y = moons
    clf = DNNClassifier((4,), max_iter=3, warm_start=True, random_state=0, backend="numpy").fit(X, y)
    assert clf.t_ == 3 * 120
    clf.fit(X, y)  # warm start: counting goes on
    assert clf.t_ == 6 * 120
    clf.set_params(warm_start=False).fit(X, y)  # a fresh fit counts afresh
    assert clf.t_ == 3 * 120
    inc = DNNClassifier((4,), random_state=0, backend="numpy")
    inc.partial_fit(X[:50], y[:50], classes=[0, 1])
    inc.partial_fit(X[50:], y[50:])
    assert inc.t_ == 120
    early = DNNClassifier((4,), max_iter=50, early_stopping=True, validation_fraction=0.25, tol=1.0,
                          n_iter_no_change=2, random_state=0, backend="numpy").fit(X, y)
    assert early.t_ == early.n_iter_ * 90  # the validation quarter is not trained on


def test_partial_fit_refuses_standardize(moons):
    X, y = moons
    with pytest.raises(xpnet.ConfigError, match="standardize"):
        DNNClassifier(standardize=True, backend="numpy").partial_fit(X, y, classes=[0, 1])
    with pytest.raises(xpnet.ConfigError, match="standardize"):
        DNNRegressor(standardize=True, backend="numpy").partial_fit(X, y.astype(float))


# --------------------------------------------------------------------------------------- round trips
@no_convergence_warning
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_pickle_and_model_file_round_trips(tmp_path, moons, regression, kind):
    if kind == "classifier":
        X, y = moons
        est = DNNClassifier((6, 3), max_iter=5, dropout=(0.1, 0.0), class_weight={"no": 2.0, "yes": 1.0},
                            standardize=True, random_state=0, backend="numpy")
        y = np.array(["no", "yes"])[y]
    else:
        X, y = regression
        est = DNNRegressor((6,), max_iter=5, standardize=True, random_state=0, backend="numpy")
    est.fit(X, y)
    expected = est.predict(X)

    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), expected)
    assert again.get_params() == est.get_params()

    path = tmp_path / f"{kind}.safetensors"
    xpnet.save(est, path)
    loaded = xpnet.load(path, backend="numpy")
    assert type(loaded) is type(est)
    np.testing.assert_array_equal(loaded.predict(X), expected)
    np.testing.assert_array_equal(loaded.mean_, est.mean_)
    assert loaded.loss_curve_ == pytest.approx(est.loss_curve_) and loaded.n_iter_ == est.n_iter_
    if kind == "classifier":
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
        assert loaded.class_weight == est.class_weight and loaded.dropout == est.dropout
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))

    pytest.importorskip("torch")
    on_torch = xpnet.load(path, backend="torch")
    assert on_torch._backend_.spec == "torch:cpu"
    out = on_torch.predict(X)
    assert isinstance(out, np.ndarray)
    if kind == "classifier":
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_allclose(on_torch.predict_proba(X), est.predict_proba(X), rtol=1e-12)
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------- regressor
@no_convergence_warning
def test_regressor_shapes_and_fit(regression):
    X, Y = regression
    one = DNNRegressor((16,), max_iter=80, learning_rate_init=0.01, random_state=0, backend="numpy")
    one.fit(X, Y[:, 0])
    pred = one.predict(X)
    assert pred.shape == (80,) and one.n_outputs_ == 1 and one.out_activation_ == "identity"
    assert one.score(X, Y[:, 0]) > 0.9  # a linear target
    np.testing.assert_allclose(pred, _reference_proba(one, X)[:, 0], rtol=1e-10, atol=1e-12)
    column = DNNRegressor((4,), max_iter=2, random_state=0, backend="numpy").fit(X, Y[:, :1])
    assert column.predict(X).shape == (80,)  # as MLPRegressor: one target predicts 1-D
    two = DNNRegressor((8,), max_iter=5, random_state=0, backend="numpy").fit(X, Y)
    assert two.predict(X).shape == (80, 2) and two.n_outputs_ == 2
    assert [W.shape for W in two.coefs_] == [(3, 8), (8, 2)]
    np.testing.assert_allclose(two.predict(X), _reference_proba(two, X), rtol=1e-10, atol=1e-12)
    with pytest.raises(xpnet.ShapeError, match="targets"):
        two.partial_fit(X, Y[:, 0])


# ------------------------------------------------------------------------------- review findings, pinned down
def test_warm_start_fit_takes_changed_parameters_and_keeps_the_run(moons):
    X, y = moons
    clf = DNNClassifier((6,), warm_start=True, max_iter=3, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        clf.set_params(learning_rate_init=0.05, solver="rmsprop", alpha=0.5)
        clf.fit(X, y)
    trainer = clf.trainer_
    assert trainer.schedule.initial == 0.05 and trainer.optimizer.name == "rmsprop" and trainer.l2 == 0.5
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 6 and trainer.epoch == 6


def test_warm_start_with_the_same_solver_keeps_the_optimizer_state(moons):
    """The lecture's optimizers go on with their state; scikit-learn's (adam, sgd) start anew on every fit, as
    MLPClassifier's do."""
    X, y = moons
    clf = DNNClassifier((6,), warm_start=True, max_iter=2, random_state=0, backend="numpy", solver="rmsprop")
    sk = DNNClassifier((6,), warm_start=True, max_iter=2, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        sk.fit(X, y)
        t = clf.trainer_.optimizer.t
        clf.fit(X, y)
        sk.fit(X, y)
    assert t > 0 and clf.trainer_.optimizer.t == 2 * t  # the moving averages' step count went on
    assert sk.trainer_.optimizer.t == t  # Adam's bias correction started again


def test_partial_fit_after_an_early_stopping_fit(moons):
    X, y = moons
    clf = DNNClassifier((6,), early_stopping=True, max_iter=20, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    n = clf.n_iter_
    with pytest.raises(xpnet.ConfigError, match="early_stopping"):  # as scikit-learn's partial_fit
        clf.partial_fit(X, y)
    assert clf.n_iter_ == n
    clf.set_params(early_stopping=False).partial_fit(X, y)
    assert clf.n_iter_ == 1 and clf.history_["val_loss"][-1] is None and len(clf.loss_curve_) == n + 1


def test_standardize_treats_a_float32_constant_feature_as_constant():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3)).astype(np.float32)
    X[:, 2] = 0.1
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = DNNClassifier((8,), standardize=True, max_iter=20, random_state=0, backend="numpy").fit(X, y)
    assert clf.scale_[2] == 1.0 and clf.scale_[0] == pytest.approx(X[:, 0].astype(np.float64).std(), rel=1e-6)
    moved = X.copy()
    moved[:, 2] = 0.2  # a shift of 0.1 in a constant feature changes its standardized value by 0.1, not 1e5
    assert np.abs(clf.predict_proba(moved) - clf.predict_proba(X)).max() < 0.5


def test_multi_output_validation_score_equals_score(regression):
    X, y = regression
    reg = DNNRegressor((16,), validation_fraction=0.25, early_stopping=True, max_iter=30, random_state=0,
                       backend="numpy", dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y, validation_data=(X[:20], y[:20]))
    # best weights restored, so score on the validation set is the best validation score (uniform R^2 average)
    assert reg.score(X[:20], y[:20]) == pytest.approx(reg.best_validation_score_, abs=1e-12)


def test_regressor_standardize_scales_targets_and_predicts_in_original_units(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = 10 * X[:, 0] + 50
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = DNNRegressor((16,), standardize=True, max_iter=100, batch_size=32, learning_rate_init=0.01,
                           random_state=0, backend="numpy").fit(X, y)
    assert reg.y_mean_[0] == pytest.approx(y.mean()) and reg.y_scale_[0] == pytest.approx(y.std())
    assert reg.score(X, y) > 0.95 and abs(reg.predict(X).mean() - 50) < 1.0
    path = xpnet.save(reg, tmp_path / "reg.safetensors")
    loaded = xpnet.load(path, backend="torch" if _has("torch") else "numpy")
    np.testing.assert_allclose(np.asarray(loaded.predict(X)), reg.predict(X), rtol=1e-5, atol=1e-4)


def test_a_float64_model_loads_in_float32_where_the_device_has_no_float64(tmp_path, moons):
    pytest.importorskip("array_api_strict")
    X, y = moons
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = DNNClassifier((6,), dtype="float64", max_iter=5, random_state=0, backend="numpy").fit(X, y)
    path = xpnet.save(clf, tmp_path / "m.safetensors")
    with pytest.warns(UserWarning, match="loaded in float32"):
        loaded = xpnet.load(path, backend="array_api_strict:no_float64")
    assert "float32" in str(loaded.network_.dtype)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_dnn_train_refuses_unknown_options(moons):
    X, y = moons
    with pytest.raises(xpnet.ConfigError, match=r"unknown option.*foo"):
        xpnet.DNN([2, 3, 1], backend="numpy").train(X.T, y, epochs=1, foo=1)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_learning_rate_may_be_a_schedule_and_survives_save_load(tmp_path, moons):
    from xpnet.engine.optimizers import get_schedule

    X, y = moons
    schedule = get_schedule("exponential", 0.02, decay_rate=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = DNNClassifier((6,), learning_rate=schedule, max_iter=3, random_state=0, backend="numpy").fit(X, y)
    assert clf.history_["lr"] == [0.02, 0.01, 0.005]
    loaded = xpnet.load(xpnet.save(clf, tmp_path / "m.safetensors"), backend="numpy")
    assert loaded.get_params() == clf.get_params()


def test_fit_callbacks_run_and_a_callback_stop_is_not_a_convergence_failure(moons):
    X, y = moons
    stopper = xpnet.EarlyStopping("val_loss", patience=1, min_delta=10.0)  # nothing improves by 10
    clf = DNNClassifier((6,), max_iter=50, n_iter_no_change=100, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X[:90], y[:90], validation_data=(X[90:], y[90:]), callbacks=[stopper])
    assert clf.n_iter_ == 2 and stopper.stopped_epoch == 1


def test_loaded_estimator_keeps_its_fitted_attributes(tmp_path, moons):
    X, y = moons
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = DNNClassifier((6,), early_stopping=True, max_iter=8, random_state=0, backend="numpy").fit(X, y)
    loaded = xpnet.load(xpnet.save(clf, tmp_path / "m.safetensors"), backend="numpy")
    assert loaded.get_params() == clf.get_params()
    for name in ("validation_scores_", "best_validation_score_", "best_loss_", "t_", "n_iter_", "loss_curve_"):
        assert getattr(loaded, name) == getattr(clf, name), name
    assert loaded.history_.as_dict() == clf.history_.as_dict()


def test_an_array_of_another_library_is_a_namespace_mismatch(moons):
    torch = pytest.importorskip("torch")
    X, y = moons
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = DNNClassifier((6,), max_iter=2, random_state=0, backend="numpy").fit(X, y)
    with pytest.raises(xpnet.NamespaceMismatchError, match=r"torch:cpu.*numpy"):
        clf.predict(torch.asarray(X))


def test_hidden_softmax_is_refused(moons):
    X, y = moons
    with pytest.raises(xpnet.ConfigError, match="hidden activation 'softmax'"):
        DNNClassifier((6,), activation="softmax", backend="numpy").fit(X, y)


def test_a_refit_that_fails_leaves_the_previous_fit_in_place():
    # A setting found bad only inside fit (after the old network would have been replaced) must not leave an
    # untrained network that looks fitted.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] > 0).astype(int)
    clf = DNNClassifier(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.05, random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    for bad in ({"learning_rate_init": -1.0}, {"dropout": 1.5}, {"solver": "adamw"}, {"batch_size": 0}):
        clf.set_params(**bad)
        with pytest.raises(xpnet.XpnetError):
            clf.fit(X, y)
        np.testing.assert_array_equal(clf.predict_proba(X), before)
        clf.set_params(learning_rate_init=0.05, dropout=0.0, solver="adam", batch_size="auto")


def test_partial_fit_refuses_classes_other_than_the_first_calls():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    y = np.arange(30) % 2
    clf = DNNClassifier(hidden_layer_sizes=(4,), random_state=0).partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X, y, classes=[1, 0])  # the same classes in another order
    with pytest.raises(xpnet.LabelError, match=r"classes=\[0, 1, 2\] differs .* \[0, 1\]"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert list(clf.classes_) == [0, 1]


def test_standardizing_features_of_huge_magnitude_does_not_overflow():
    # Squares of values beyond ~1e154 overflow float64: the statistics are computed on each feature divided by
    # its largest magnitude (issue 11: scale_ was inf and every such feature became 0).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 1e155
    y = X[:, 0] / 1e155
    est = DNNRegressor(max_iter=60, dtype="float64", backend="numpy", standardize=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    np.testing.assert_allclose(est.scale_, np.std(X / 1e155, axis=0) * 1e155, rtol=1e-12)
    assert np.isfinite(est.mean_).all() and est.score(X, y) > 0.5

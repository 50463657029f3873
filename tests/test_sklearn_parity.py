"""The estimators against scikit-learn's MLP: started from the same weights with the same batch order, a
``DNNClassifier``/``DNNRegressor`` reproduces ``MLPClassifier``/``MLPRegressor``'s ``loss_curve_`` (and its
stopping epoch) for every solver and learning-rate rule; scikit-learn's initialization scheme, attributes and
``verbose`` lines."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

import xpnet
from xpnet import DNNClassifier, DNNRegressor
from xpnet.estimators.sklearn_rules import glorot_uniform_parameters

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _sklearn_from(cls, coefs, intercepts, **params):
    """A scikit-learn MLP whose initialization returns the given arrays (its ``_init_coef``, layer by layer)."""

    class Given(cls):
        def _init_coef(self, fan_in, fan_out, dtype):
            self._layer = getattr(self, "_layer", -1) + 1
            return coefs[self._layer].astype(dtype), intercepts[self._layer].astype(dtype)

    return Given(**params)


def _data(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 5))
    if kind == "binary":
        return X, (X[:, 0] + X[:, 1] ** 2 > 1).astype(int), 1
    if kind == "multiclass":
        return X, np.digitize(X[:, 0], [-0.5, 0.5]), 3
    return X, np.c_[2 * X[:, 0] + np.sin(X[:, 1]), X[:, 2]], 2  # two regression targets


def _weights(n_out, seed=1):
    rng = np.random.default_rng(seed)
    dims = [5, 7, 4, n_out]
    return ([rng.uniform(-0.5, 0.5, (a, b)) for a, b in itertools.pairwise(dims)],
            [rng.uniform(-0.5, 0.5, b) for b in dims[1:]])


SOLVERS = [
    dict(solver="adam"),
    dict(solver="sgd"),  # Nesterov's momentum, scikit-learn's default
    dict(solver="sgd", nesterovs_momentum=False),
    dict(solver="sgd", momentum=0.0),
    dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.2, power_t=0.3),
    dict(solver="sgd", learning_rate="adaptive", tol=1e-2, n_iter_no_change=2),
    dict(solver="adam", early_stopping=False, tol=1e-2, n_iter_no_change=3),  # stops early on the loss
]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("options", SOLVERS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_loss_curve_equals_scikit_learns(kind, options):
    X, y, n_out = _data(kind)
    coefs, intercepts = _weights(n_out)
    params = dict(hidden_layer_sizes=(7, 4), max_iter=40, shuffle=False, alpha=1e-3, batch_size=32,
                  learning_rate_init=0.01)
    params.update(options)
    sk_cls, xp_cls = (MLPRegressor, DNNRegressor) if kind == "regression" else (MLPClassifier, DNNClassifier)
    sk = _sklearn_from(sk_cls, coefs, intercepts, **params).fit(X, y)
    ours = xp_cls(init=(coefs, intercepts), backend="numpy", **params).fit(X, y)
    assert ours.n_iter_ == sk.n_iter_ and ours.t_ == sk.t_
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-6)
    assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-6) and ours.best_loss_ == pytest.approx(sk.best_loss_, rel=1e-6)
    for a, b in zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    # a second, warm-started fit goes on as scikit-learn's does (its counters, t_ and loss_curve_ carried over)
    sk.set_params(warm_start=True, max_iter=5).fit(X, y)
    ours.set_params(warm_start=True, max_iter=5).fit(X, y)
    assert ours.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_lbfgs_equals_scikit_learns(kind):
    X, y, n_out = _data(kind)
    coefs, intercepts = _weights(n_out, seed=2)
    params = dict(hidden_layer_sizes=(7, 4), max_iter=30, alpha=1e-3, solver="lbfgs")
    sk_cls, xp_cls = (MLPRegressor, DNNRegressor) if kind == "regression" else (MLPClassifier, DNNClassifier)
    sk = _sklearn_from(sk_cls, coefs, intercepts, **params).fit(X, y)
    ours = xp_cls(init=(coefs, intercepts), backend="numpy", **params).fit(X, y)
    assert ours.n_iter_ == sk.n_iter_
    assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-6)
    with pytest.warns(ConvergenceWarning, match="lbfgs"):
        xp_cls(init=(coefs, intercepts), backend="numpy", **{**params, "max_fun": 5}).fit(X, y)
    with pytest.raises(xpnet.ConfigError, match="stochastic"):
        ours.partial_fit(X, y)


def test_the_reported_log_loss_is_clipped_as_scikit_learns():
    """A confidently wrong sample costs -log(eps) (scikit-learn clips probabilities to [eps, 1 - eps]), not its
    exact log-loss, in loss_curve_ and so in the stopping rule."""
    X = np.array([[1.0], [-1.0]])
    y = np.array([0, 1])
    coefs, intercepts = [np.array([[100.0]]), np.array([[1.0]])], [np.array([0.0]), np.array([0.0])]
    params = dict(hidden_layer_sizes=(1,), max_iter=1, shuffle=False, learning_rate_init=1e-12, alpha=0.0)
    sk = _sklearn_from(MLPClassifier, coefs, intercepts, **params).fit(X, y)
    ours = DNNClassifier(init=(coefs, intercepts), backend="numpy", **params).fit(X, y)
    assert ours.loss_curve_[0] == pytest.approx(sk.loss_curve_[0], rel=1e-9)
    # the first sample: p = sigmoid(100) clipped to 1 - eps; the second: relu(-100) = 0, p = 1/2 (not 100 / 2)
    assert ours.loss_curve_[0] == pytest.approx((-math.log(np.finfo(np.float64).eps) + math.log(2)) / 2, rel=1e-6)


@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_initial_weights_follow_scikit_learns_scheme(activation):
    """Weights and biases uniform in [-r, r], r = sqrt(6 / (fan_in + fan_out)) (sqrt(2 / ...) for a logistic
    hidden activation), drawn by xpnet's seeded generator: the same seed, the same arrays."""
    dims = [30, 50, 40]
    params = glorot_uniform_parameters(dims, logistic=activation == "logistic", seed=3, dtype_name="float64")
    factor = 2.0 if activation == "logistic" else 6.0
    for l in (1, 2):
        bound = math.sqrt(factor / (dims[l - 1] + dims[l]))
        W, b = params[f"W{l}"], params[f"b{l}"]
        assert W.shape == (dims[l], dims[l - 1]) and b.shape == (dims[l], 1)
        for a in (W, b):
            assert np.abs(a).max() <= bound and np.abs(a).max() > 0.9 * bound  # fills the interval
        assert abs(W.std() - bound / math.sqrt(3)) < 0.05 * bound  # uniform: std = r / sqrt(3)
    est = DNNClassifier((50, 40), activation=activation, max_iter=1, random_state=3, backend="numpy")
    est.fit(np.random.default_rng(0).normal(size=(20, 30)), np.arange(20) % 2)
    again = glorot_uniform_parameters([30, 50, 40, 1], logistic=activation == "logistic", seed=3,
                                      dtype_name="float64")
    assert not np.array_equal(est.coefs_[0], again["W1"].T)  # trained one epoch: moved from ...
    np.testing.assert_allclose(est.coefs_[0], again["W1"].T, atol=0.05)  # ... but not far
    he = DNNClassifier((50,), init="he", max_iter=1, random_state=3, backend="numpy")
    he.fit(np.random.default_rng(0).normal(size=(20, 30)), np.arange(20) % 2)
    assert he.network_.init == "he"  # the lecture's initializers stay available


def test_given_weights_are_checked():
    X, y, _ = _data("binary")
    coefs, intercepts = _weights(1)
    with pytest.raises(xpnet.ShapeError, match="coefs\\[0\\] must be \\(5, 8\\)"):
        DNNClassifier((8, 4), init=(coefs, intercepts), backend="numpy").fit(X, y)
    with pytest.raises(xpnet.ConfigError, match="init must be"):
        DNNClassifier((7, 4), init=42, backend="numpy").fit(X, y)
    est = DNNClassifier((7, 4), max_iter=2, backend="numpy", random_state=0).fit(X, y)
    est.coefs_ = coefs  # settable on a fitted estimator: the next warm-started fit starts there
    est.intercepts_ = intercepts
    np.testing.assert_array_equal(est.coefs_[1], coefs[1])
    np.testing.assert_array_equal(est.intercepts_[2], intercepts[2])
    with pytest.raises(xpnet.ShapeError):
        est.coefs_ = coefs[:2]


def test_warm_start_refuses_a_changed_architecture(tmp_path):
    """warm_start continues the fitted network: after set_params(hidden_layer_sizes=...) or activation=... it
    refuses (get_params and a saved file would otherwise claim a network that is not inside); the estimator keeps
    its fit, and what is saved describes the network inside."""
    X, y, _ = _data("binary")
    est = DNNClassifier((6,), max_iter=3, warm_start=True, random_state=0, backend="numpy").fit(X, y)
    before = est.coefs_
    for change in ({"hidden_layer_sizes": (9,)}, {"activation": "tanh"}):
        est.set_params(**change)
        with pytest.raises(xpnet.ConfigError, match="warm_start=True continues the fitted network"):
            est.fit(X, y)
        np.testing.assert_array_equal(est.coefs_[0], before[0])
        path = tmp_path / "model.xpnet"
        xpnet.save(est, path)
        loaded = xpnet.load(path)
        assert loaded.hidden_layer_sizes == (6,) and loaded.activation == "relu"
        est.set_params(hidden_layer_sizes=(6,), activation="relu")
    est.set_params(hidden_layer_sizes=(9,), warm_start=False).fit(X, y)  # a new network is fine
    assert est.coefs_[0].shape == (5, 9)


def test_attributes_as_scikit_learns():
    X, y, _ = _data("binary")
    est = DNNClassifier((6,), max_iter=4, random_state=0, backend="numpy").fit(X, y)
    assert est.n_iter_ == 4 and est.loss_ == est.loss_curve_[-1] and est.best_loss_ == min(est.loss_curve_)
    assert est.t_ == 4 * 150 and est.validation_scores_ is None and est.best_validation_score_ is None
    early = DNNClassifier((6,), max_iter=30, early_stopping=True, random_state=0, backend="numpy").fit(X, y)
    assert early.best_loss_ is None and len(early.validation_scores_) == early.n_iter_
    assert early.best_validation_score_ == max(early.validation_scores_)
    est.partial_fit(X, y)
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 5 and est.t_ == 5 * 150


def test_verbose_prints_scikit_learns_lines(capsys):
    X, y, _ = _data("binary")
    est = DNNClassifier((6,), max_iter=3, verbose=True, random_state=0, backend="numpy").fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [f"Iteration {i + 1}, loss = {v:.8f}" for i, v in enumerate(est.loss_curve_)]
    DNNClassifier((6,), max_iter=50, tol=10.0, n_iter_no_change=1, verbose=1, random_state=0,
                  backend="numpy").fit(X, y)
    out = capsys.readouterr().out
    assert "Training loss did not improve more than tol=10.000000 for 1 consecutive epochs. Stopping." in out
    DNNClassifier((6,), max_iter=2, random_state=0, backend="numpy").fit(X, y)
    assert capsys.readouterr().out == ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        DNNRegressor((6,), solver="lbfgs", max_iter=2, verbose=True, random_state=0, backend="numpy").fit(X, y * 1.0)
    assert capsys.readouterr().out.startswith("Iteration 1, loss = ")


def test_multilabel_poisson_and_weights_equal_scikit_learns():
    """A label-indicator y (one sigmoid per label), loss="poisson" (e^Z output, half Poisson deviance) and
    sample_weight (full batch: scikit-learn's weighted objective exactly) against scikit-learn."""
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(120, 5, n_classes=3, random_state=0)
    coefs, intercepts = _weights(3)
    params = dict(hidden_layer_sizes=(7, 4), max_iter=15, shuffle=False, learning_rate_init=0.01)
    sk = _sklearn_from(MLPClassifier, coefs, intercepts, **params).fit(X, Y)
    ours = DNNClassifier(init=(coefs, intercepts), backend="numpy", **params).fit(X, Y)
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), rtol=1e-6)
    assert ours.out_activation_ == "logistic" and list(ours.classes_) == [0, 1, 2]

    rng = np.random.default_rng(3)
    X = _data("regression")[0]
    counts = rng.poisson(np.exp(0.5 * X[:, 0]))
    coefs, intercepts = _weights(1, seed=4)
    for solver in ("adam", "sgd", "lbfgs"):
        p = dict(params, loss="poisson", solver=solver)
        sk = _sklearn_from(MLPRegressor, coefs, intercepts, **p).fit(X, counts)
        ours = DNNRegressor(init=(coefs, intercepts), backend="numpy", **p).fit(X, counts)
        assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-6) and ours.out_activation_ == "exp"
        np.testing.assert_allclose(ours.predict(X), sk.predict(X), rtol=1e-5)
    with pytest.raises(xpnet.InvalidValueError, match="targets >= 0"):
        DNNRegressor(loss="poisson", backend="numpy").fit(X, -counts)

    w = rng.uniform(0.2, 3.0, len(X))
    y = (X[:, 1] > 0).astype(int)
    coefs, intercepts = _weights(1, seed=5)
    for solver in ("adam", "lbfgs"):
        p = dict(params, solver=solver, batch_size=len(X), alpha=0.01)
        sk = _sklearn_from(MLPClassifier, coefs, intercepts, **p).fit(X, y, sample_weight=w)
        ours = DNNClassifier(init=(coefs, intercepts), backend="numpy", **p).fit(X, y, sample_weight=w)
        assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-6)
    assert ours.score(X, y, sample_weight=w) == sk.score(X, y, sample_weight=w)
    with pytest.raises(xpnet.InvalidValueError, match="not all zero"):
        DNNClassifier(backend="numpy").fit(X, y, sample_weight=np.zeros(len(X)))


def test_sample_weight_is_routed_as_metadata():
    import sklearn
    from sklearn.model_selection import cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _ = _data("binary")
    w = np.where(y == 1, 5.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        est = DNNClassifier((6,), max_iter=20, random_state=0, backend="numpy").set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=True)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), est)
        weighted = cross_validate(pipe, X, y, params={"sample_weight": w}, cv=2, return_estimator=True)
        plain = cross_validate(make_pipeline(StandardScaler(), DNNClassifier((6,), max_iter=20, random_state=0,
                                                                             backend="numpy")), X, y, cv=2,
                               return_estimator=True)
    # the weighted fits predict class 1 more often: the weights reached fit
    ones = [e.predict(X).mean() for e in weighted["estimator"]]
    assert all(a > b for a, b in zip(ones, [e.predict(X).mean() for e in plain["estimator"]], strict=True))


@pytest.mark.parametrize("est", [DNNClassifier(max_iter=30, backend="numpy"),
                                 DNNRegressor(max_iter=30, backend="numpy")], ids=["classifier", "regressor"])
def test_scikit_learns_training_checks_at_30_epochs(est):
    """scikit-learn's own check_classifiers_train / check_regressors_train pass at max_iter=30, as MLPClassifier
    and MLPRegressor do (He-normal weights with zero biases did not: R^2 <= 0.5)."""
    from sklearn.utils.estimator_checks import check_classifiers_train, check_regressors_train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(est, DNNClassifier):
            check_classifiers_train(type(est).__name__, est)
        else:
            check_regressors_train(type(est).__name__, est)


def test_sparse_X_trains_as_dense_one_batch_at_a_time(monkeypatch):
    """CSR/CSC X gives the dense fit's loss_curve_ and predictions exactly (adam with an early-stopping split,
    lbfgs), densifying at most one mini-batch (or one prediction chunk) of rows at a time."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    X[X < 0.5] = 0.0
    y = (X[:, 0] + X[:, 1] > 0.6).astype(int)
    shapes = []
    real = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        shapes.append(self.shape)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    for params in (dict(early_stopping=True), dict(solver="lbfgs")):
        dense = DNNClassifier((6,), max_iter=10, batch_size=50, random_state=0, backend="numpy", **params).fit(X, y)
        for fmt in (sp.csr_matrix, sp.csc_matrix):
            shapes.clear()
            est = DNNClassifier((6,), max_iter=10, batch_size=50, random_state=0, backend="numpy", **params)
            est.fit(fmt(X), y)
            # adam: batches of 50 (the validation tenth, 30 rows, once); lbfgs: chunks of up to 4096 rows
            assert shapes and max(s[0] for s in shapes) == (50 if "early_stopping" in params else 300)
            np.testing.assert_array_equal(getattr(est, "loss_curve_", [est.loss_]),
                                          getattr(dense, "loss_curve_", [dense.loss_]))
            np.testing.assert_array_equal(est.predict_proba(fmt(X)), dense.predict_proba(X))
    with pytest.raises(xpnet.ConfigError, match="sparse"):
        DNNClassifier(standardize=True, backend="numpy").fit(sp.csr_matrix(X), y)


def test_to_backend_moves_a_fitted_estimator():
    """to_backend gives a copy computing on another backend with the same predictions; back to NumPy, the same
    labels bit for bit."""
    pytest.importorskip("torch")
    import torch

    X, y, _ = _data("multiclass")
    est = DNNClassifier((6,), max_iter=5, standardize=True, random_state=0, backend="numpy").fit(X, y)
    moved = est.to_backend("torch:cpu")
    assert moved._backend_.spec == "torch:cpu" and est._backend_.spec == "numpy"
    out = moved.predict_proba(torch.asarray(X))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), est.predict_proba(X), rtol=1e-12)
    assert moved.loss_curve_ == est.loss_curve_ and moved.loss_ == est.loss_
    np.testing.assert_array_equal(moved.to_backend("numpy").predict(X), est.predict(X))
    with pytest.raises(xpnet.NotFittedError):
        DNNClassifier().to_backend("numpy")


def test_scikit_learns_callbacks_drive_a_fit():
    """scikit-learn 1.9's callbacks protocol: each epoch is a subtask of the fit task (ScoringMonitor scores the
    estimator after every epoch), also inside a Pipeline and a GridSearchCV with a propagated ProgressBar."""
    from sklearn.callback import ProgressBar, ScoringMonitor
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _ = _data("binary")
    monitor = ScoringMonitor(scoring="accuracy")
    est = DNNClassifier((5,), max_iter=4, random_state=0, backend="numpy").set_callbacks(monitor)
    est.fit(X, y)
    rows = monitor.get_logs().data
    assert [r["task_name"] for r in rows] == ["fit"] + ["epoch"] * 4
    assert rows[-1]["accuracy"] == est.score(X, y)  # the last epoch's estimator is the fitted one
    inner = ScoringMonitor(scoring="r2")
    reg = make_pipeline(StandardScaler(), DNNRegressor((5,), max_iter=3, backend="numpy").set_callbacks(inner))
    reg.fit(X, X[:, 0])
    assert len(inner.get_logs().data) == 4
    grid = GridSearchCV(make_pipeline(StandardScaler(), DNNClassifier((5,), max_iter=2, backend="numpy")),
                        {"dnnclassifier__alpha": [1e-4, 1e-2]}, cv=2)
    grid.set_callbacks(ProgressBar(max_propagation_depth=None)).fit(X, y)
    assert hasattr(grid, "best_score_")


def test_a_pickle_from_another_backend_loads_onto_numpy_where_that_backend_is_missing(tmp_path):
    """A fitted estimator on a backend other than NumPy pickles its parameters as host arrays: it unpickles onto
    its backend, and where that library is missing (here torch, blocked in a fresh interpreter) onto NumPy with
    a warning, predicting the same."""
    import pickle
    import subprocess
    import sys

    pytest.importorskip("torch")
    X, y, _ = _data("multiclass")
    est = DNNClassifier((6,), max_iter=3, standardize=True, random_state=0, backend="torch:cpu").fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    assert again._backend_.spec == "torch:cpu" and again.get_params() == est.get_params()
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    path = tmp_path / "est.pkl"
    path.write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    code = ("import sys, pickle, warnings, numpy as np\n"
            "class NoTorch:\n"  # an interpreter where torch cannot be imported
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ImportError('no torch here')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            f"    est = pickle.loads(open({str(path)!r}, 'rb').read())\n"
            "assert any('unpickled onto NumPy' in str(x.message) for x in w), [str(x.message) for x in w]\n"
            f"np.save({str(tmp_path / 'p.npy')!r}, est.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))\n"
            "print(est._backend_.spec, est.backend)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["numpy", "numpy"]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), est.predict_proba(X), rtol=1e-12)


def test_a_dtype_object_parameter_saves_as_its_name(tmp_path):
    """dtype=np.float32 (a type, not a string) is a valid parameter: the model file stores its name, and the
    loaded estimator computes in float32 as the saved one did."""
    X, y, _ = _data("binary")
    est = DNNClassifier((4,), max_iter=2, dtype=np.float32, random_state=0, backend="numpy").fit(X, y)
    xpnet.save(est, tmp_path / "m.xpnet")
    loaded = xpnet.load(tmp_path / "m.xpnet")
    assert loaded.dtype == "float32" and loaded.coefs_[0].dtype == np.float32
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("cls", [DNNClassifier, DNNRegressor])
def test_partial_fit_is_hidden_for_lbfgs_as_in_scikit_learn(cls):
    """scikit-learn hides partial_fit of a non-stochastic solver (available_if): hasattr is False, and a call
    raises xpnet's ConfigError (an AttributeError too) naming the solver; set_params(solver="adam") brings it back."""
    est = cls(solver="lbfgs", backend="numpy")
    assert not hasattr(est, "partial_fit")
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(xpnet.ConfigError, match="solver='lbfgs'") as info:
        est.partial_fit(np.ones((2, 5)), [0, 1])
    assert isinstance(info.value, AttributeError)
    assert hasattr(est.set_params(solver="adam"), "partial_fit")
    assert hasattr(cls(solver="not-a-solver"), "partial_fit")  # fit/partial_fit name the unknown solver


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_early_stopping_scores_the_held_out_part_with_its_sample_weights(kind):
    """scikit-learn's early stopping scores the validation part with its share of sample_weight (weighted accuracy
    or R^2); the best validation score is that of the kept (best) model. Weights all 1 give the unweighted scores."""
    from sklearn.metrics import accuracy_score, r2_score

    from xpnet.engine import split_indices

    X, y, n_out = _data(kind)
    w = np.random.default_rng(7).uniform(0.1, 5.0, len(X))
    coefs, intercepts = _weights(n_out)
    cls, metric = (DNNRegressor, r2_score) if kind == "regression" else (DNNClassifier, accuracy_score)
    params = dict(hidden_layer_sizes=(7, 4), max_iter=8, early_stopping=True, validation_fraction=0.3,
                  learning_rate_init=0.01, random_state=0, backend="numpy", init=(coefs, intercepts))
    est = cls(**params).fit(X, y, sample_weight=w)
    labels = None if kind == "regression" else y
    _, val = split_indices(len(X), 0.3, est.network_.seed, labels)
    expected = metric(y[val], est.predict(X[val]), sample_weight=w[val])
    assert est.best_validation_score_ == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(metric(y[val], est.predict(X[val])), rel=1e-6)  # the weights matter here
    ones = cls(**params).fit(X, y, sample_weight=np.ones(len(X)))
    plain = cls(**params).fit(X, y)
    np.testing.assert_allclose(ones.validation_scores_, plain.validation_scores_, rtol=1e-9)


@pytest.mark.parametrize("cls", [DNNClassifier, DNNRegressor])
def test_partial_fit_refuses_early_stopping_as_scikit_learn(cls):
    """scikit-learn 1.9's partial_fit raises ValueError for early_stopping=True; xpnet's ConfigError is one."""
    X, y, _ = _data("binary")
    sk_cls = MLPClassifier if cls is DNNClassifier else MLPRegressor
    extra = {"classes": [0, 1]} if cls is DNNClassifier else {}
    with pytest.raises(ValueError, match="early_stopping"):
        sk_cls(early_stopping=True).partial_fit(X, y, **extra)
    est = cls(early_stopping=True, backend="numpy")
    with pytest.raises(xpnet.ConfigError, match="early_stopping=True"):
        est.partial_fit(X, y, **extra)
    assert not hasattr(est, "network_")
    est.set_params(early_stopping=False).partial_fit(X, y, **extra)

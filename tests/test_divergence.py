"""Numerical faults: a NaN or infinite loss stops training with a DivergenceError that names the epoch and the
step and suggests a lower learning rate; the network keeps the last finite parameters; the estimators never
return (or keep) a broken model; the command exits 1 with the message."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import xpnet
from xpnet.engine import EarlyStopping, Trainer
from xpnet.engine.optimizers import GradientDescent, get_schedule
from xpnet.errors import DivergenceError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings, on purpose

BLOW_UP_EPOCH = 2  # from this epoch on the learning rate is absurd (1e30): the loss overflows within it


def _regression(m: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((5, m))
    return X, (rng.standard_normal(5) @ X).reshape(1, -1)


class _BlowUp(xpnet.Callback):
    """Switches the trainer to an absurd learning rate when epoch ``at`` begins."""

    def __init__(self, at: int = BLOW_UP_EPOCH) -> None:
        self.at = at

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if epoch == self.at:
            trainer.schedule = get_schedule(None, 1e30)


class _Record(xpnet.Callback):
    """Host copies of the whole trainer state at the end of every epoch."""

    def __init__(self) -> None:
        self.epochs: dict[int, dict] = {}

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs) -> None:
        self.epochs[epoch] = {
            "params": {k: v.copy() for k, v in trainer.network.get_parameters().items()},
            "state": {k: xpnet.to_numpy(v).copy() for k, v in trainer.optimizer.state.items()},
            "t": trainer.optimizer.t,
            "shuffle": trainer._shuffle_rng.bit_generator.state,
            "dropout": trainer._dropout_rng.bit_generator.state,
        }


def _same_generator_state(a: dict, b: dict) -> bool:
    return all(np.array_equal(a["state"][k], b["state"][k]) for k in ("counter", "key")) and \
        np.array_equal(a["buffer"], b["buffer"]) and a["buffer_pos"] == b["buffer_pos"]


def test_divergence_names_epoch_and_step_and_restores_the_last_finite_epoch(xpb):
    X, Y = _regression()
    net = xpnet.DNN([5, 16, 8, 1], output="linear", seed=0, dtype=xpb.dtype_name, backend=xpb.backend)
    record = _Record()
    trainer = Trainer(net, optimizer="momentum", learning_rate=0.01, batch_size=20, dropout=0.1,
                      callbacks=[record, _BlowUp()])
    with pytest.raises(DivergenceError) as info:
        trainer.fit(xpb.asarray(X), xpb.asarray(Y), epochs=10)
    err = info.value
    message = str(err)
    assert f"epoch {BLOW_UP_EPOCH + 1}, mini-batch {err.step + 1} of 10" in message
    assert "learning rate 1e+30" in message and "e.g. 1e+29" in message
    assert f"from the end of epoch {BLOW_UP_EPOCH}, the last epoch whose loss was finite" in message
    last = record.epochs[BLOW_UP_EPOCH - 1]
    assert err.epoch == BLOW_UP_EPOCH and not np.isfinite(err.loss) and err.learning_rate == 1e30
    assert err.global_step == last["t"] + err.step + 1
    assert trainer.divergence is err and trainer.epoch == BLOW_UP_EPOCH and len(trainer.history) == BLOW_UP_EPOCH
    # Parameters, optimizer state and count, and both random streams are those of the last finite epoch.
    for key, value in net.get_parameters().items():
        assert np.isfinite(value).all() and np.array_equal(value, last["params"][key]), key
        xpb.check(net.parameters[key])
    assert trainer.optimizer.t == last["t"]
    assert sorted(trainer.optimizer.state) == sorted(last["state"])
    for key, value in trainer.optimizer.state.items():
        assert np.array_equal(xpnet.to_numpy(value), last["state"][key]), key
    assert _same_generator_state(trainer._shuffle_rng.bit_generator.state, last["shuffle"])
    assert _same_generator_state(trainer._dropout_rng.bit_generator.state, last["dropout"])


def test_divergence_in_the_first_epoch_keeps_the_initial_parameters():
    X, Y = _regression()
    net = xpnet.DNN([5, 16, 1], output="linear", seed=0, dtype="float64", backend="numpy")
    initial = net.get_parameters()
    with pytest.raises(DivergenceError, match=r"epoch 1, mini-batch \d+ of 10 .*from before epoch 1"):
        net.train(X, Y, epochs=5, batch_size=20, optimizer="gd", learning_rate=1e30)
    for key, value in net.get_parameters().items():
        assert np.array_equal(value, initial[key])
    assert len(net.history) == 0


class _PoisonedDescent(GradientDescent):
    """Gradient descent whose update number ``at`` makes the first weight infinite (a finite loss before)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _step(self, xp, key, p, g, lr):
        out = super()._step(xp, key, p, g, lr)
        return out + float("inf") if self.t == self.at and key == "W1" else out


def test_non_finite_parameters_after_the_last_update_of_an_epoch_are_caught():
    X, Y = _regression()
    net = xpnet.DNN([5, 8, 1], output="linear", seed=0, dtype="float64", backend="numpy")
    record = _Record()
    trainer = Trainer(net, optimizer=_PoisonedDescent(at=20), learning_rate=0.01, batch_size=20, callbacks=[record])
    with pytest.raises(DivergenceError, match=r"parameters became non-finite .* epoch 2, at its last update") as info:
        trainer.fit(net.backend.asarray(X), net.backend.asarray(Y), epochs=5)
    assert info.value.epoch == 1 and info.value.step == 9 and info.value.global_step == 20
    for key, value in net.get_parameters().items():
        assert np.array_equal(value, record.epochs[0]["params"][key])


def test_a_non_finite_validation_loss_raises_too():
    X, Y = _regression()
    net = xpnet.DNN([5, 8, 1], output="linear", seed=0, dtype="float64", backend="numpy")
    X_val = X[:, :10] * 1e200  # finite, but its forward pass overflows
    trainer = Trainer(net, optimizer="adam", learning_rate=0.01, batch_size=20)
    bk = net.backend
    with pytest.raises(DivergenceError, match=r"validation loss became inf after epoch 1 .*training loss was finite"):
        trainer.fit(bk.asarray(X), bk.asarray(Y), epochs=3, validation_data=(bk.asarray(X_val), bk.asarray(Y[:, :10])))
    assert trainer.optimizer.t == 0 and trainer.optimizer.state == {} and trainer.epoch == 0


def test_early_stopping_does_not_swap_in_other_weights_after_a_divergence():
    X, Y = _regression()
    net = xpnet.DNN([5, 16, 1], output="linear", seed=0, dtype="float64", backend="numpy")
    stopper = EarlyStopping("loss", patience=50, restore_best_weights=True)
    record = _Record()

    class Decoy(xpnet.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            stopper._best_parameters = {k: v * 0 for k, v in trainer.network.parameters.items()}

    with pytest.raises(DivergenceError):
        net.train(X, Y, epochs=10, batch_size=20, optimizer="gd", learning_rate=0.01,
                  early_stopping=stopper, callbacks=[Decoy(), record, _BlowUp()])
    for key, value in net.get_parameters().items():
        assert np.array_equal(value, record.epochs[BLOW_UP_EPOCH - 1]["params"][key])
    assert len(net.history) == BLOW_UP_EPOCH  # DNN.train keeps the finite epochs' history


# ----------------------------------------------------------------------------- the lecture's loop
def test_dnn_fit_keeps_the_last_recorded_finite_parameters(xpb64, monkeypatch):
    X, Y = _regression(60)
    net = xpnet.DNN([5, 8, 1], output="linear", seed=0, dtype="float64", backend=xpb64.backend)
    # The NaN/inf path itself: the runaway rule (which would stop this run first) is switched off here.
    monkeypatch.setattr(xpnet.dnn, "runaway_limit", lambda reference: float("inf"))
    with pytest.raises(DivergenceError, match=r"the cost became (nan|inf) at iteration \d+ .*record_every=1") as info:
        net.fit(X, Y, learning_rate=1e30, num_iterations=50, record_every=1)
    kept = net.n_iter_
    assert kept == net.cost_iterations[-1] and kept == info.value.step - 1 and kept >= 1
    assert f"parameters of iteration {kept}, the last recorded one whose cost was finite" in str(info.value)
    again = xpnet.DNN([5, 8, 1], output="linear", seed=0, dtype="float64", backend=xpb64.backend)
    again.fit(X, Y, learning_rate=1e30, num_iterations=kept)
    for key, value in net.get_parameters().items():
        assert np.isfinite(value).all() and np.array_equal(value, again.get_parameters()[key]), key


def test_dnn_fit_checks_the_update_after_the_last_recorded_cost():
    X, Y = _regression(60)
    net = xpnet.DNN([5, 8, 1], output="linear", seed=0, dtype="float32", backend="numpy")
    initial = net.get_parameters()
    with pytest.raises(DivergenceError, match=r"parameters became non-finite at the last update \(iteration 0\)"):
        net.fit(X, Y * 1e3, learning_rate=1e37, num_iterations=1, record_every=100)
    assert net.n_iter_ == 0
    for key, value in net.get_parameters().items():
        assert np.array_equal(value, initial[key])


def test_dnn_fit_from_non_finite_parameters_says_so():
    X, Y = _regression(60)
    net = xpnet.DNN([5, 8, 1], output="linear", seed=0, dtype="float64", backend="numpy")
    params = net.get_parameters()
    params["W1"][0, 0] = np.inf
    net.parameters = {k: net.backend.asarray(v) for k, v in params.items()}
    with pytest.raises(DivergenceError, match=r"at iteration 0 .*the parameters fit started from"):
        net.fit(X, Y, learning_rate=0.01, num_iterations=10)
    assert net.n_iter_ == 0 and net.costs == []


# ------------------------------------------------------------------------------------- estimators
def test_estimator_fit_raises_and_leaves_no_fitted_model():
    X, Y = _regression()
    est = xpnet.DNNRegressor((16,), solver="gd", learning_rate_init=1e30, batch_size=20, max_iter=5,
                             random_state=0, backend="numpy")
    with pytest.raises(DivergenceError, match=r"epoch 1, mini-batch .*left as it was before this fit"):
        est.fit(X.T, Y.ravel())
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert not hasattr(est, "network_") and not hasattr(est, "n_features_in_")


def test_estimator_refit_that_diverges_keeps_the_previous_fit():
    X, Y = _regression()
    est = xpnet.DNNRegressor((16,), solver="gd", learning_rate_init=0.01, batch_size=20, max_iter=5,
                             random_state=0, backend="numpy")
    with pytest.warns(Warning):  # max_iter reached
        est.fit(X.T, Y.ravel())
    coefs, n_iter, network = est.coefs_, est.n_iter_, est.network_
    est.set_params(learning_rate_init=1e30)
    with pytest.raises(DivergenceError):
        est.fit(X.T, Y.ravel())
    assert est.network_ is network and est.n_iter_ == n_iter
    for got, want in zip(est.coefs_, coefs, strict=True):
        assert np.array_equal(got, want)
    assert est.get_params()["learning_rate_init"] == 1e30  # parameters are the caller's, not fitted state


def test_partial_fit_that_diverges_keeps_the_state_before_the_call():
    X, Y = _regression()
    est = xpnet.DNNRegressor((16,), solver="adam", batch_size=20, random_state=0, backend="numpy")
    est.partial_fit(X.T, Y.ravel())
    coefs, n_iter, t = est.coefs_, est.n_iter_, est.trainer_.optimizer.t
    with pytest.raises(DivergenceError, match="epoch 2"):
        est.partial_fit(X.T, Y.ravel() * 1e300)  # finite targets whose squared error overflows
    check_is_fitted(est)
    assert est.n_iter_ == n_iter and est.trainer_.optimizer.t == t
    for got, want in zip(est.coefs_, coefs, strict=True):
        assert np.array_equal(got, want)
    est.partial_fit(X.T, Y.ravel())  # and it goes on from there
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 2  # n_iter_ counts this call's epochs, as scikit-learn


# ----------------------------------------------------------------------------------- command line
def test_cli_train_exits_1_with_the_message_and_saves_nothing(tmp_path, capsys):
    from xpnet.cli import main

    out = tmp_path / "model.safetensors"
    code = main(["train", "--dataset", "digits", "--task", "regression", "--optimizer", "gd", "--lr", "1e30",
                 "--epochs", "3", "--layers", "16", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith("xpnet: error: training diverged: the loss became")
    assert "epoch 1, mini-batch" in captured.err and "Try a lower learning rate, e.g. 1e+29" in captured.err
    assert "No model was saved" in captured.err and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1 and not out.exists()


# ----------------------------------------------------------------------------- runaway finite losses
def _exploding(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 200)) * 10, rng.normal(size=(1, 200))


def test_a_finite_loss_that_runs_away_is_a_divergence_in_train():
    X, Y = _exploding()
    net = xpnet.DNN([3, 8, 1], hidden="linear", output="linear", dtype="float64", backend="numpy", seed=0)
    with pytest.raises(DivergenceError, match=r"the loss ran away to \S+ in epoch 3, more than 1e\+06 times the "
                                              r"first epoch's 338") as info:
        net.train(X, Y, epochs=200, optimizer="gd", learning_rate=0.02, batch_size="full", shuffle=False)
    assert np.isfinite(info.value.loss) and info.value.epoch == 2
    assert len(net.history) == 2  # epochs 1 and 2 were in bounds; the network keeps the end of epoch 2
    replay = xpnet.DNN([3, 8, 1], hidden="linear", output="linear", dtype="float64", backend="numpy", seed=0)
    replay.train(X, Y, epochs=2, optimizer="gd", learning_rate=0.02, batch_size="full", shuffle=False)
    for k in replay.parameters:
        assert np.array_equal(net.parameters[k], replay.parameters[k]), k


def test_a_finite_cost_that_runs_away_is_a_divergence_in_fit():
    X, Y = _exploding()
    net = xpnet.DNN([3, 8, 1], hidden="linear", output="linear", dtype="float64", backend="numpy", seed=0)
    with pytest.raises(DivergenceError, match=r"the cost ran away to \S+ at iteration \d+, more than 1e\+06 times"):
        net.fit(X, Y, learning_rate=0.02, num_iterations=50, record_every=1)
    assert all(np.isfinite(net.costs)) and net.costs[-1] <= 1e6 * max(net.costs[0], 1.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_estimator_whose_loss_runs_away_raises_instead_of_scoring_minus_infinity():
    X, Y = _exploding()
    est = xpnet.DNNRegressor(hidden_layer_sizes=(8,), activation="identity", solver="gd", learning_rate_init=0.02,
                             batch_size=200, shuffle=False, max_iter=300, standardize=False, backend="numpy",
                             dtype="float64", random_state=0)
    with pytest.raises(DivergenceError, match="ran away"):
        est.fit(X.T, Y[0])


def test_a_partial_fit_on_data_of_another_scale_is_not_a_runaway():
    # Each partial_fit call is its own measure: a later chunk with targets 10^4 times larger trains normally.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    est = xpnet.DNNRegressor(hidden_layer_sizes=(8,), backend="numpy", dtype="float64", random_state=0)
    est.partial_fit(X, X[:, 0] * 0.1)
    est.partial_fit(X, 5000 + X[:, 0] * 1000)
    est.partial_fit(X, 5000 + X[:, 0] * 1000)
    assert len(est.loss_curve_) == 3 and est.loss_curve_[1] > 1e6 * max(est.loss_curve_[0], 1.0)


def test_a_resumed_run_stops_where_the_uninterrupted_one_does(tmp_path):
    X, Y = _exploding(1)  # at this rate the loss grows about 7-fold an epoch: it runs away in epoch 9

    def run(**kw):
        net = xpnet.DNN([3, 1], hidden="linear", output="linear", dtype="float64", backend="numpy", seed=0)
        with pytest.raises(DivergenceError, match="ran away") as info:
            net.train(X, Y, optimizer="gd", learning_rate=0.03, batch_size="full", shuffle=False, **kw)
        return info.value.epoch, net.get_parameters()

    whole = run(epochs=200)
    ckpt = tmp_path / "run.ckpt"
    first = xpnet.DNN([3, 1], hidden="linear", output="linear", dtype="float64", backend="numpy", seed=0)
    first.train(X, Y, epochs=3, optimizer="gd", learning_rate=0.03, batch_size="full", shuffle=False,
                checkpoint=ckpt)
    resumed = run(epochs=200, checkpoint=ckpt, resume=True)
    assert whole[0] == resumed[0] and whole[0] > 3
    for k, v in whole[1].items():
        assert np.array_equal(v, resumed[1][k]), k


def test_a_loss_not_finite_before_any_update_blames_the_data_not_the_rate():
    rng = np.random.default_rng(0)
    net = xpnet.DNN([2, 3, 1], output="linear", dtype="float32", backend="numpy", seed=0)
    with pytest.raises(DivergenceError, match=r"at the initial parameters, before any update: the data or the "
                                              r"targets are too large") as info:
        net.train(rng.normal(size=(2, 16)), rng.normal(size=(1, 16)) * 1e30, epochs=2, batch_size=16)
    assert "learning rate" not in str(info.value)


def test_the_runaway_rule_never_fires_on_ordinary_training():
    # The README's and the examples' runs are in the suite; here, a run whose loss first rises (a learning rate a
    # little too high) and recovers stays under the limit.
    X, y = xpnet.datasets.make_moons(400, noise=0.2, seed=0)
    net = xpnet.DNN([2, 16, 1], output="sigmoid", backend="numpy", seed=0)
    history = net.train(X.T, y, epochs=40, optimizer="adam", learning_rate=0.3, batch_size=32)
    assert len(history) == 40 and max(history["loss"]) < 1e6 * max(history["loss"][0], 1.0)

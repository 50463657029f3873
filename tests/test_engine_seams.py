"""The engine's seams: sample-major batch sources, the step chosen in one place, and the gradient hook.

A batch is a block of rows of the sample-major data, gathered into a buffer the run reuses (no copy of the
dataset per epoch), and its transposed view is the lecture's layout; the batches are the ones the
column-gathering engine made before (same seed, same examples, same order). The gradient hook sits between
backward and update, with L2 added after it, on the generic and the in-place step alike.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.device.random import host_generator
from xpnet.engine import ArrayBatches, BatchSource, GenericStep, GradientHook, Trainer, choose_step
from xpnet.engine.optimizers import get_optimizer
from xpnet.engine.steps.inplace import InplaceStep
from xpnet.lecture.network import fused_gradients


def _rows(m: int = 23, n_x: int = 4, n_out: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n_x)), rng.normal(size=(m, n_out)), rng.uniform(0.5, 2.0, size=(m, 1))


# ------------------------------------------------------------------------------------------ batch sources
def test_shuffled_batches_are_the_rows_of_the_order_in_the_lecture_layout(xpb):
    X, Y, w = _rows()
    bk = xpb.backend
    src = ArrayBatches(bk, bk.asarray(X, dtype=xpb.dtype), bk.asarray(Y, dtype=xpb.dtype),
                       bk.asarray(w, dtype=xpb.dtype))
    order = np.random.default_rng(1).permutation(23)
    shapes = [(Xb.shape, Yb.shape, wb.shape) for Xb, Yb, wb in src.batches(order, 5)]
    assert shapes == [((4, 5), (2, 5), (1, 5))] * 4 + [((4, 3), (2, 3), (1, 3))]  # the partial batch kept
    # Each batch is read before the next one is drawn (it may live in a buffer the next one overwrites).
    for i, (Xb, Yb, wb) in enumerate(src.batches(order, 5)):
        idx = order[5 * i:5 * i + 5]
        np.testing.assert_array_equal(xpnet.to_numpy(Xb), X[idx].T.astype(xpb.dtype_name))
        np.testing.assert_array_equal(xpnet.to_numpy(Yb), Y[idx].T.astype(xpb.dtype_name))
        np.testing.assert_array_equal(xpnet.to_numpy(wb), w[idx].T.astype(xpb.dtype_name))
        assert bk.owns(Xb) and Xb.dtype == xpb.dtype


def test_unshuffled_batches_are_views_in_stored_order(xpb):
    X, Y, _ = _rows()
    bk = xpb.backend
    src = ArrayBatches(bk, bk.asarray(X, dtype=xpb.dtype), bk.asarray(Y, dtype=xpb.dtype))
    starts = []
    for Xb, Yb, wb in src.batches(None, 10):
        assert wb is None
        start = len(starts) * 10
        starts.append(start)
        np.testing.assert_array_equal(xpnet.to_numpy(Xb), X[start:start + 10].T.astype(xpb.dtype_name))
        np.testing.assert_array_equal(xpnet.to_numpy(Yb), Y[start:start + 10].T.astype(xpb.dtype_name))
    assert starts == [0, 10, 20]


def test_numpy_batches_reuse_one_buffer_and_never_copy_the_dataset():
    X, Y, _ = _rows(m=40, n_x=6)
    bk = xpnet.get_backend("numpy")
    src = ArrayBatches(bk, X, Y)
    order = np.random.default_rng(2).permutation(40)
    homes = set()
    for Xb, _, _ in src.batches(order, 16):
        assert Xb.base is not None and Xb.T.flags.c_contiguous  # a transposed view of row-major rows
        homes.add(id(Xb.base.base if Xb.base.base is not None else Xb.base))
        assert not np.shares_memory(Xb, X)
    assert len(homes) == 1  # every batch, the partial one included, lives in the same buffer
    assert src._buffers["X"].shape == (16, 6)  # one batch of rows, not a shuffled copy of the data
    for Xb, _, _ in src.batches(None, 16):
        assert np.shares_memory(Xb, X)  # no shuffling: slices, no copy at all
    src.release()
    assert not src._buffers


def test_from_columns_takes_transposed_rows_as_they_are_and_copies_c_columns_once():
    X, Y, _ = _rows(m=30)
    bk = xpnet.get_backend("numpy")
    src = ArrayBatches.from_columns(bk, X.T, Y.T)  # the transposed view of row-major data: no copy
    list(src.batches(np.arange(30), 8))
    assert np.shares_memory(src.X, X) and src.X.flags.c_contiguous
    columns = np.ascontiguousarray(X.T)  # a C-ordered (n_x, m) array: its rows are strided
    src = ArrayBatches.from_columns(bk, columns, Y.T)
    list(src.batches(None, 8))  # unshuffled batches are slices of the columns: nothing copied
    assert np.shares_memory(src.X, columns)
    list(src.batches(np.arange(30)[::-1].copy(), 8))  # the first shuffled epoch copies the rows once
    assert not np.shares_memory(src.X, columns) and src.X.flags.c_contiguous
    kept = src.X
    list(src.batches(np.arange(30), 8))
    assert src.X is kept
    np.testing.assert_array_equal(src.X, X)


def test_an_order_that_does_not_index_the_examples_is_refused():
    X, Y, _ = _rows(m=10)
    src = ArrayBatches(xpnet.get_backend("numpy"), X, Y)
    for order in (np.arange(1, 11), np.arange(9), -np.arange(10)):
        with pytest.raises(xpnet.ShapeError, match="must index the 10 examples"):
            list(src.batches(order, 4))


def test_the_trainer_draws_the_same_orders_as_before():
    """The epochs' orders are the seeded shuffle stream's permutations, as the column engine drew them; with
    the row gather (test above) that makes the same batches."""
    X, Y, _ = _rows(m=19, n_x=4, n_out=1)
    bk = xpnet.get_backend("numpy")
    orders = []

    class Recording(ArrayBatches):
        def batches(self, order, batch_size):
            orders.append(order.copy())
            return super().batches(order, batch_size)

    net = xpnet.DNN([4, 3, 1], output="linear", dtype="float64", backend=bk)
    Trainer(net, batch_size=5, seed=13).fit(Recording(bk, X, Y), epochs=3)
    rng = host_generator(13, "shuffle")
    expected = [rng.permutation(19) for _ in range(3)]
    assert len(orders) == 3 and all(np.array_equal(a, b) for a, b in zip(orders, expected, strict=True))


def test_a_source_with_rows_that_do_not_match_is_refused():
    X, Y, _ = _rows()
    with pytest.raises(xpnet.ShapeError, match="one row per example"):
        ArrayBatches(xpnet.get_backend("numpy"), X, Y[:-1])


def _column_engine_run(X, Y, *, seed, epochs, bs, lr, l2):
    """The engine before sample-major batches: a shuffled column copy of the data every epoch, then column
    slices; the generic step by hand. The batches (and so the run) must be the same."""
    net = xpnet.DNN([X.shape[0], 5, Y.shape[0]], output="sigmoid", dtype="float64", backend="numpy", seed=3)
    opt = get_optimizer("adam")
    rng = host_generator(seed, "shuffle")
    for _ in range(epochs):
        perm = rng.permutation(X.shape[1])
        Xs, Ys = np.take(X, perm, axis=1), np.take(Y, perm, axis=1)
        for a in range(0, X.shape[1], bs):
            grads, _, _ = fused_gradients(np, net.parameters, Xs[:, a:a + bs], Ys[:, a:a + bs], net.hidden,
                                          net.output, net.loss, lambd=l2)
            net.parameters = opt.update(np, net.parameters, grads, lr)
    return net.parameters


@pytest.mark.parametrize("fast", ["0", "1"])
def test_the_same_seed_gives_the_same_batches_as_the_column_engine(monkeypatch, fast):
    monkeypatch.setenv("XPNET_FAST", fast)
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(3, 37)), (rng.random((1, 37)) > 0.5).astype(float)
    expected = _column_engine_run(X, Y, seed=9, epochs=3, bs=8, lr=0.01, l2=0.1)
    net = xpnet.DNN([3, 5, 1], output="sigmoid", dtype="float64", backend="numpy", seed=3)
    Trainer(net, optimizer="adam", learning_rate=0.01, batch_size=8, l2=0.1, seed=9).fit(X, Y, epochs=3)
    for k, v in expected.items():
        # The products read a transposed operand now: equal up to the GEMM's rounding order.
        np.testing.assert_allclose(net.parameters[k], v, rtol=1e-12, atol=1e-14, err_msg=k)


class _ListSource(BatchSource):
    """A batch source that is not in-memory arrays: lists of host rows, moved batch by batch."""

    def __init__(self, bk, X, Y):
        self.bk, self.X, self.Y = bk, X, Y
        self.m, self.n_outputs, self.weighted = X.shape[0], Y.shape[1], False
        self.released = False

    def batches(self, order, batch_size):
        order = np.arange(self.m) if order is None else order
        for a in range(0, self.m, batch_size):
            idx = order[a:a + batch_size]
            yield self.bk.asarray(self.X[idx].T), self.bk.asarray(self.Y[idx].T), None

    def targets(self):
        return self.bk.asarray(self.Y.T)

    def release(self):
        self.released = True


def test_trainer_fit_takes_any_batch_source_and_releases_it():
    X, Y, _ = _rows(m=30, n_out=1)
    Y = Y * 0.5
    bk = xpnet.get_backend("numpy")
    a = xpnet.DNN([4, 6, 1], output="linear", dtype="float64", backend=bk, seed=1)
    b = xpnet.DNN([4, 6, 1], output="linear", dtype="float64", backend=bk, seed=1)
    source = _ListSource(bk, X, Y)
    ha = Trainer(a, batch_size=7, seed=2).fit(source, epochs=2)
    hb = Trainer(b, batch_size=7, seed=2).fit(X.T, Y.T, epochs=2)
    assert source.released
    assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-12) and ha["metric"] == pytest.approx(hb["metric"])
    for k in a.parameters:
        np.testing.assert_allclose(a.parameters[k], b.parameters[k], rtol=1e-12, atol=1e-14)
    with pytest.raises(xpnet.ConfigError, match="BatchSource alone"):
        Trainer(a).fit(source, Y.T, epochs=1)


# ------------------------------------------------------------------------------------------------- steps
def test_the_step_is_chosen_in_one_place(monkeypatch):
    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    assert isinstance(choose_step(net, get_optimizer("adam"), 0.0, {}), InplaceStep)
    strict = xpnet.DNN([2, 3, 1], backend="array_api_strict")
    assert isinstance(choose_step(strict, get_optimizer("adam"), 0.0, {}), GenericStep)
    monkeypatch.setenv("XPNET_FAST", "0")
    assert isinstance(choose_step(net, get_optimizer("adam"), 0.0, {}), GenericStep)
    trainer = Trainer(net)
    assert isinstance(trainer._current_step(), GenericStep) and trainer._choose_step() is False


# -------------------------------------------------------------------------------------------------- hooks
class _Scale(GradientHook):
    """Multiplies every gradient by ``factor`` (in place where it can, as a reducing hook would)."""

    def __init__(self, factor):
        self.factor, self.calls = factor, 0

    def __call__(self, xp, grads, batch_size):
        self.calls += 1
        for k in grads:
            grads[k] = grads[k] * self.factor
        return grads


@pytest.mark.parametrize("fast", ["0", "1"])
def test_the_hook_runs_between_backward_and_update_with_l2_after_it(monkeypatch, fast):
    monkeypatch.setenv("XPNET_FAST", fast)
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(3, 20)), (rng.random((1, 20)) > 0.5).astype(float)
    lr, l2 = 0.1, 0.3
    net = xpnet.DNN([3, 4, 1], output="sigmoid", dtype="float64", backend="numpy", seed=4)
    start = {k: v.copy() for k, v in net.parameters.items()}
    hook = _Scale(2.0)
    trainer = Trainer(net, optimizer="gd", learning_rate=lr, l2=l2, batch_size=20, shuffle=False,
                      gradient_hook=hook)
    trainer.fit(X, Y, epochs=1)
    assert hook.calls == 1 and (trainer._fast is not False) == (fast == "1")
    grads, _, _ = fused_gradients(np, start, X, Y, net.hidden, net.output, net.loss, lambd=l2, l2_gradients=False)
    for k, W in start.items():
        g = 2.0 * grads[f"d{k}"] + ((l2 / 20) * W if k[0] == "W" else 0.0)  # L2 once, after the hook
        np.testing.assert_allclose(net.parameters[k], W - lr * g, rtol=1e-13, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("optimizer", ["adam", "sklearn_adam", "sklearn_sgd"])
def test_a_non_identity_hook_gives_the_generic_bits_on_the_in_place_step(monkeypatch, optimizer):
    from xpnet.estimators.sklearn_rules import sklearn_loss

    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(4, 33)), np.eye(3)[:, rng.integers(0, 3, 33)]
    runs = []
    for fast in ("1", "0"):
        monkeypatch.setenv("XPNET_FAST", fast)
        net = xpnet.DNN([4, 6, 5, 3], output="softmax", dtype="float64", backend="numpy", seed=2)
        if optimizer.startswith("sklearn"):  # as the estimators train: scikit-learn's solver and reported loss
            net.loss = sklearn_loss("softmax")
        tr = Trainer(net, optimizer=optimizer, learning_rate=0.01, batch_size=8, l2=0.05, dropout=0.2,
                     gradient_hook=_Scale(0.5), seed=1)
        runs.append((tr.fit(X, Y, epochs=2)["loss"], net.parameters, tr._fast))
    (loss_f, params_f, step_f), (loss_g, params_g, step_g) = runs
    assert step_f and step_g is False
    assert loss_f == loss_g
    for k in params_g:
        assert np.array_equal(params_f[k], params_g[k]), k


def test_a_trainer_refuses_a_hook_that_is_not_one():
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    with pytest.raises(xpnet.ConfigError, match=r"gradient_hook must be .* subclass GradientHook and define __call__"):
        Trainer(net, gradient_hook=lambda xp, g, m: g)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 2 epochs, on purpose
def test_dnn_fit_and_the_estimators_run_through_the_engine_step(monkeypatch):
    calls = []
    original = Trainer._step

    def counting(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_step", counting)
    X, y = xpnet.datasets.make_moons(40, seed=0)
    xpnet.DNN([2, 3, 1], backend="numpy").fit(X.T, y, num_iterations=3)
    assert len(calls) == 3
    xpnet.DNNClassifier(hidden_layer_sizes=(3,), max_iter=2, batch_size=20, backend="numpy").fit(X, y)
    assert len(calls) == 3 + 4


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the probe's sum, on purpose
def test_finite_parameters_whose_sum_overflows_are_not_a_divergence(xpb):
    # The per-epoch probe sums every parameter; two float32-sized weights overflow that sum while every entry
    # is finite. They sit on an input feature that is always 0, so the loss stays finite and they never move.
    if xpb.dtype_name != "float32":
        pytest.skip("the overflow is float32's")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 16))
    X[0] = 0.0
    Y = (rng.random((1, 16)) > 0.5).astype(float)
    net = xpnet.DNN([3, 4, 1], output="sigmoid", dtype="float32", backend=xpb.backend, seed=1)
    W1 = xpnet.to_numpy(net.parameters["W1"]).copy()
    W1[:2, 0] = 3e38
    net.parameters["W1"] = xpb.backend.asarray(W1)
    history = Trainer(net, optimizer="gd", learning_rate=0.1, batch_size=8).fit(
        xpb.backend.asarray(X, dtype=net.dtype), xpb.backend.asarray(Y, dtype=net.dtype), epochs=2)
    assert len(history) == 2 and np.isfinite(history["loss"]).all()
    assert (xpnet.to_numpy(net.parameters["W1"])[:2, 0] == np.float32(3e38)).all()


# ------------------------------------------------------------------------------- what the seams refuse
class _Rows(BatchSource):
    """A source of host rows that can be told to get things wrong."""

    def __init__(self, bk, X, Y, *, m=None, n_outputs=None, transpose_y=False, drop_last=False, dtype=None):
        self.bk, self.X, self.Y, self.dtype = bk, X, Y, dtype
        self.m = X.shape[0] if m is None else m
        self.n_outputs = Y.shape[1] if n_outputs is None else n_outputs
        self.weighted, self.transpose_y, self.drop_last = False, transpose_y, drop_last

    def batches(self, order, batch_size):
        order = np.arange(self.X.shape[0]) if order is None else order
        for a in range(0, self.X.shape[0], batch_size):
            idx = order[a:a + batch_size]
            if self.drop_last and a + batch_size >= self.X.shape[0]:
                return
            Yb = self.Y[idx] if self.transpose_y else self.Y[idx].T
            yield self.bk.asarray(self.X[idx].T, dtype=self.dtype), self.bk.asarray(Yb, dtype=self.dtype), None

    def targets(self):
        return self.bk.asarray(self.Y.T)


def test_a_source_is_checked_as_its_batches_pass(xpb):
    X, Y, _ = _rows(m=20, n_x=3, n_out=2)
    Y = np.eye(2)[(Y[:, 0] > 0).astype(int)]
    bk = xpb.backend
    net = xpnet.DNN([3, 4, 2], output="softmax", dtype=xpb.dtype_name, backend=bk, seed=0)
    with pytest.raises(xpnet.ShapeError, match="targets of 1 rows but the network has 2 outputs"):
        Trainer(net, batch_size=8).fit(_Rows(bk, X, Y, n_outputs=1), epochs=1)
    with pytest.raises(xpnet.ShapeError, match=r"yielded Y_b of shape \(8, 2\); the network needs"):
        Trainer(net, batch_size=8).fit(_Rows(bk, X, Y, transpose_y=True), epochs=1)
    with pytest.raises(xpnet.ShapeError, match="yielded 16 examples in an epoch but says m = 20"):
        Trainer(net, batch_size=8).fit(_Rows(bk, X, Y, drop_last=True), epochs=1)
    with pytest.raises(xpnet.ConfigError, match="needs m"):
        Trainer(net, batch_size=8).fit(_Rows(bk, X, Y, m=0), epochs=1)
    # Batches in another dtype are cast, as arrays handed to fit are: the parameters keep the network's dtype.
    other = "float32" if xpb.dtype_name == "float64" else ("float64" if bk.supports_float64 else None)
    if other is not None:
        Trainer(net, batch_size=8).fit(_Rows(bk, X, Y, dtype=bk.float_dtype(other)), epochs=1)
        assert all(p.dtype == net.dtype for p in net.parameters.values())


def test_trainer_fit_refuses_arrays_of_another_library_and_suggests_the_transpose():
    strict = xpnet.DNN([3, 4, 1], backend="array_api_strict", dtype="float32")
    X, Y = np.zeros((3, 10), dtype=np.float32), np.zeros((1, 10), dtype=np.float32)
    with pytest.raises(xpnet.NamespaceMismatchError,
                       match=r"X is a numpy.ndarray but the network computes on .*backend.asarray\(X\)"):
        Trainer(strict).fit(X, Y, epochs=1)
    net = xpnet.DNN([3, 4, 1], backend="numpy", dtype="float32")
    with pytest.raises(xpnet.ShapeError, match=r"pass X.T and Y.T"):
        Trainer(net).fit(X.T, Y.T, epochs=1)


class _Returns(GradientHook):
    def __init__(self, make):
        self.make = make

    def __call__(self, xp, grads, batch_size):
        return self.make(grads)


@pytest.mark.parametrize("fast", ["0", "1"])
@pytest.mark.parametrize(("make", "message"), [
    (lambda g: None, "returned NoneType"),
    (lambda g: {k: v for k, v in g.items() if k != "db2"}, "returned nothing for db2"),
    (lambda g: {**g, "dW2": g["dW2"].T}, r"returned \(4, 1\) .* for dW2; it must keep each gradient's shape \(1, 4\)"),
    (lambda g: {**g, "dW1": g["dW1"].astype(np.float32)}, r"for dW1; it must keep .* dtype float64"),
])
def test_what_a_hook_returns_is_checked(monkeypatch, fast, make, message):
    monkeypatch.setenv("XPNET_FAST", fast)
    net = xpnet.DNN([3, 4, 1], backend="numpy", dtype="float64")
    X, Y = np.zeros((3, 10)), np.zeros((1, 10))
    with pytest.raises(xpnet.ConfigError, match=message):
        Trainer(net, gradient_hook=_Returns(make)).fit(X, Y, epochs=1)

"""The captured step (xpnet.engine.steps.graph) against the eager in-place step: the same bits.

No GPU here: a stand-in capturer gives NumPy CUDA-graph semantics. While it captures, every ufunc call on the
step's arrays (an ndarray subclass, :class:`Rec`) is recorded with its arguments instead of run, a result it would
allocate is allocated then (as a capture allocates from its pool) and filled only at replay; a replay re-runs the
record. So a number passed to a kernel at capture is frozen into the graph, as on a GPU, and a replay reads every
array where the capture saw it. The real libraries run the same tests under ``-m gpu``.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any

import numpy as np
import pytest

import fit_data
import xpnet
from xpnet.engine import Trainer
from xpnet.engine.steps import graph as _graph
from xpnet.engine.steps import inplace as _inplace


class Rec(np.ndarray):
    """An array whose ufunc calls are recorded while :attr:`tape` is a list (a capture), run otherwise."""

    tape: list[Any] | None = None

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, out: Any = None, **kw: Any) -> Any:
        plain = tuple(_plain(x) for x in inputs)
        call = getattr(ufunc, method)
        if Rec.tape is None:
            if out is not None:
                call(*plain, out=tuple(_plain(o) for o in out), **kw)
                return out[0] if len(out) == 1 else out
            return _rec(call(*plain, **kw))
        if out is None:  # a new array, allocated at capture, written at every replay
            like = call(*(np.zeros_like(x) if isinstance(x, np.ndarray) else x for x in plain), **kw)
            out = (np.empty_like(np.asarray(like)).view(Rec),)
        outs = tuple(_plain(o) for o in out)
        Rec.tape.append(lambda: call(*(_plain(x) for x in inputs), out=outs, **kw))
        return out[0] if len(out) == 1 else out

    def __setitem__(self, key: Any, value: Any) -> None:
        if Rec.tape is None:
            _plain(self)[key] = _plain(value)
        else:
            target = _plain(self)
            Rec.tape.append(lambda: target.__setitem__(key, _plain(value)))


def _plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, Rec) else x


def _rec(x: Any) -> Any:
    return x.view(Rec) if isinstance(x, np.ndarray) else x


class RecNumpy:
    """NumPy for the in-place step, its new arrays being :class:`Rec`."""

    __name__ = "numpy"

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    def empty(self, shape: Any, dtype: Any) -> Rec:
        return np.empty(shape, dtype=dtype).view(Rec)

    def ones(self, shape: Any, dtype: Any) -> Rec:
        return np.ones(shape, dtype=dtype).view(Rec)

    def zeros_like(self, a: Any) -> Rec:
        return np.zeros_like(_plain(a)).view(Rec)

    def copyto(self, dst: Any, src: Any) -> None:
        assert Rec.tape is None, "inputs are copied outside the capture"
        np.copyto(_plain(dst), _plain(src))


class TapeCapturer:
    """The capture API of xpnet.engine.steps.graph, recording into a tape and replaying it."""

    def __init__(self) -> None:
        self.captures = 0

    def on_side(self, pool: bool = False) -> Any:
        return nullcontext()

    def capture(self, fn: Any) -> tuple[list[Any], Any]:
        Rec.tape = []
        try:
            result = fn()
        finally:
            tape, Rec.tape = Rec.tape, None
        self.captures += 1
        return tape, result

    def launch(self, tape: list[Any]) -> None:
        for call in tape:
            call()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[TapeCapturer]:
    """The in-place step on :class:`RecNumpy` and graphs captured by :class:`TapeCapturer` (the ones made)."""
    made: list[TapeCapturer] = []

    def capturer(backend: Any) -> TapeCapturer:
        made.append(TapeCapturer())
        return made[-1]

    monkeypatch.setattr(_inplace, "_ufunc_module", lambda xp: RecNumpy())
    monkeypatch.setattr(_graph, "_capturer_for", capturer)
    return made


def _train(monkeypatch: pytest.MonkeyPatch, graph: bool, *, optimizer: Any, output: str = "softmax",
           dtype: str = "float64", weights: bool = False, l2: float = 0.0, epochs: int = 4,
           batch_size: int = 16) -> tuple[xpnet.DNN, Trainer, list[float]]:
    monkeypatch.setenv("XPNET_CUDA_GRAPH", "1" if graph else "0")
    n_out = 3 if output == "softmax" else 2
    net = xpnet.DNN([5, 7, 6, n_out], hidden="tanh", output=output, dtype=dtype, backend="numpy", seed=1)
    net.parameters = {k: v.view(Rec) for k, v in net.parameters.items()}
    X, Y = fit_data.xy(5, n_out, output)
    w = np.linspace(0.5, 2.0, 45)[None, :] if weights else None
    trainer = Trainer(net, optimizer=optimizer, learning_rate=0.05, batch_size=batch_size, l2=l2,
                      schedule="inverse_time", decay_rate=0.3)  # a rate that changes every epoch
    history = trainer.fit(X.astype(dtype), Y.astype(dtype), epochs=epochs,
                          sample_weight=None if w is None else w.astype(dtype))
    return net, trainer, history["loss"] + history["metric"]


def _assert_same_bits(monkeypatch: pytest.MonkeyPatch, recorded: list[TapeCapturer], **kw: Any) -> None:
    net_g, tr_g, curve_g = _train(monkeypatch, True, **kw)
    assert isinstance(tr_g._impl, _graph.GraphStep)
    replays = tr_g._impl.replays
    assert replays > 0 and recorded[-1].captures >= 1
    net_e, tr_e, curve_e = _train(monkeypatch, False, **kw)
    assert type(tr_e._impl) is _inplace.InplaceStep
    assert curve_g == curve_e
    for k in net_e.parameters:
        assert np.array_equal(net_g.parameters[k], net_e.parameters[k]), k
    assert tr_g.optimizer.state.keys() == tr_e.optimizer.state.keys()
    for k in tr_e.optimizer.state:
        assert np.array_equal(tr_g.optimizer.state[k], tr_e.optimizer.state[k]), k


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam", "sklearn_adam", "sklearn_sgd"])
def test_replays_give_the_eager_bits_with_a_changing_rate(monkeypatch, recorded, optimizer):
    # Adam's bias corrections change every step and the rate every epoch: a value frozen at capture fails here.
    _assert_same_bits(monkeypatch, recorded, optimizer=optimizer)


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
def test_replays_with_weights_l2_float32_and_a_last_partial_batch(monkeypatch, recorded, output):
    _assert_same_bits(monkeypatch, recorded, optimizer="adam", output=output, dtype="float32", weights=True,
                      l2=0.2, batch_size=20)


def test_two_batch_sizes_get_a_graph_each_and_new_arrays_a_new_capture(monkeypatch, recorded):
    monkeypatch.setenv("XPNET_CUDA_GRAPH", "1")
    net = xpnet.DNN([3, 4, 1], dtype="float64", backend="numpy", seed=0)
    net.parameters = {k: v.view(Rec) for k, v in net.parameters.items()}
    trainer = Trainer(net, optimizer="adam", learning_rate=0.05)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 10)), (rng.random((1, 10)) > 0.5).astype(float)
    steps = [(X, Y), (X[:, :6], Y[:, :6])] * 4
    for Xb, Yb in steps:
        trainer.step(Xb, Yb)
    step = trainer._impl
    assert isinstance(step, _graph.GraphStep)
    assert sorted(step._graphs) == [(6, False), (10, False)]
    # step 1 creates Adam's state, 2-3 warm up (no new state), 4-5 capture, 6-8 replay (captures run too)
    assert step.replays == 5 and recorded[-1].captures == 2
    # Arrays put in by hand: the captured graph no longer fits; one eager step, then a new capture.
    net.parameters = {k: v.copy() for k, v in net.parameters.items()}
    trainer.step(X, Y)
    trainer.step(X, Y)
    assert recorded[-1].captures == 3 and step.replays == 6


def test_off_by_default_and_not_with_dropout_or_a_hook(monkeypatch, recorded):
    net = xpnet.DNN([3, 4, 1], backend="numpy")
    monkeypatch.delenv("XPNET_CUDA_GRAPH", raising=False)
    assert _graph.graph_step(net, Trainer(net).optimizer, 0.0, {}) is None
    monkeypatch.setenv("XPNET_CUDA_GRAPH", "1")
    assert isinstance(_graph.graph_step(net, Trainer(net).optimizer, 0.0, {}), _graph.GraphStep)
    monkeypatch.setattr(_graph, "_SAID", set())
    with pytest.warns(RuntimeWarning, match="XPNET_CUDA_GRAPH=1 is set but does not apply to dropout"):
        assert _graph.graph_step(net, Trainer(net).optimizer, 0.0, {1: 0.8}) is None
    monkeypatch.setattr(_graph, "_capturer_for", lambda backend: None)  # NumPy itself has no graphs
    with pytest.warns(RuntimeWarning, match="does not apply to a network on numpy"):
        assert _graph.graph_step(net, Trainer(net).optimizer, 0.0, {}) is None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per process and reason
        assert _graph.graph_step(net, Trainer(net).optimizer, 0.0, {}) is None


def test_a_failed_capture_warns_and_the_fit_goes_on_uncaptured(monkeypatch, recorded):
    # A capture the driver refuses (an operation not allowed in a graph) must not end the fit: nothing ran on the
    # device, so the step runs eagerly and so do the rest, with the same bits as the in-place step.
    def refuse(self: TapeCapturer, fn: Any) -> Any:
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(TapeCapturer, "capture", refuse)
    monkeypatch.setattr(_graph, "_SAID", set())
    with pytest.warns(RuntimeWarning, match="capture failed .*operation not permitted"):
        net_g, tr_g, curve_g = _train(monkeypatch, True, optimizer="adam")
    assert tr_g._impl.failed and tr_g._impl.replays == 0
    net_e, _, curve_e = _train(monkeypatch, False, optimizer="adam")
    assert curve_g == curve_e
    assert all(np.array_equal(net_g.parameters[k], net_e.parameters[k]) for k in net_e.parameters)


# ---------------------------------------------------------------------------------------------- GPU
GPU_SPECS = [pytest.param("cupy:0", id="cupy", marks=pytest.mark.gpu),
             pytest.param("torch:cuda:0", id="torch-cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("spec", GPU_SPECS)
@pytest.mark.parametrize("optimizer", ["gd", "adam", "sklearn_adam"])
def test_on_a_gpu_replays_give_the_eager_bits(monkeypatch, spec, optimizer):
    try:
        backend = xpnet.get_backend(spec)
    except Exception as exc:  # no CuPy, no CUDA torch
        if os.environ.get("XPNET_REQUIRE_GPU") == "1":  # scripts/gpu_check.sh: a skip there would hide a failure
            raise
        pytest.skip(f"{spec} unavailable here: {exc}")
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("XPNET_CUDA_GRAPH", flag)
        net = xpnet.DNN([20, 32, 16, 3], output="softmax", dtype="float32", backend=backend, seed=1)
        rng = np.random.default_rng(3)
        X = backend.asarray(rng.normal(size=(20, 100)), dtype=net.dtype)
        Y = backend.asarray(np.eye(3)[:, rng.integers(0, 3, 100)], dtype=net.dtype)
        trainer = Trainer(net, optimizer=optimizer, learning_rate=0.01, batch_size=32, schedule="inverse_time",
                          decay_rate=0.3)
        history = trainer.fit(X, Y, epochs=4)
        if flag == "1":
            assert isinstance(trainer._impl, _graph.GraphStep) and trainer._impl.replays > 0
        results.append((history["loss"], {k: xpnet.to_numpy(v) for k, v in net.parameters.items()}))
    (loss_g, p_g), (loss_e, p_e) = results
    assert loss_g == loss_e
    for k in p_e:
        assert np.array_equal(p_g[k], p_e[k]), k

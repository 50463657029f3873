"""xpnet.plot: the cost curve, the decision boundary and the train/validation curves (matplotlib's Agg)."""

from __future__ import annotations

import os

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import xpnet  # noqa: E402
from xpnet import plot  # noqa: E402
from xpnet.course import L_layer_model  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_cost_curve_of_a_course_run_on_any_backend(xpb, tmp_path):
    costs = [xpb.asarray(np.array(c)) for c in (0.69, 0.5, 0.3)]  # 0-d arrays, as the course's models record
    ax = plot.plot_costs(costs, learning_rate=0.0075, path=tmp_path / "costs.png")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.69, 0.5, 0.3], rtol=1e-6)
    assert ax.get_title() == "Learning rate = 0.0075" and ax.get_xlabel() == "iterations (per hundreds)"
    assert (tmp_path / "costs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("dataset", ["flower", "moons", "circles"])
def test_decision_boundary_of_2d_classifiers(dataset, tmp_path):
    make = {"flower": xpnet.datasets.generated.make_flower, "moons": xpnet.datasets.generated.make_moons,
            "circles": xpnet.datasets.generated.make_circles}[dataset]
    X, y = make(120, seed=1)
    params, _ = L_layer_model(X.T, y.reshape(1, -1), [2, 6, 1], 0.5, 60)
    ax = plot.plot_decision_boundary(params, X.T, y, steps=40, path=tmp_path / f"{dataset}.svg")
    filled = ax.collections[0]
    assert len(ax.collections) == 2  # the filled regions and the points
    assert ax.collections[1].get_offsets().shape == (120, 2)
    assert filled is not None and (tmp_path / f"{dataset}.svg").read_text().lstrip().startswith("<?xml")


def test_decision_boundary_takes_estimators_dnn_and_the_course_lambda():
    X, y = xpnet.datasets.generated.make_moons(80, seed=2)
    calls = []

    def course_style(rows):  # the course's lambda x: predict_dec(parameters, x.T): rows in, labels out
        calls.append(rows.shape)
        return (rows[:, 0] > 0).astype(int)

    ax = plot.plot_decision_boundary(course_style, X.T, y, steps=10)
    assert calls == [(100, 2)]
    # the regions are the model's: x1 > 0 is class 1
    levels = ax.collections[0].get_array() if hasattr(ax.collections[0], "get_array") else None
    assert levels is not None
    net = xpnet.DNN([2, 4, 1], seed=0, backend="numpy")
    net.fit(X.T, y.reshape(1, -1), num_iterations=5)  # full-batch, the lecture's
    plot.plot_decision_boundary(net, X, y, steps=10)  # (m, 2) rows are accepted too
    from sklearn.linear_model import LogisticRegression

    plot.plot_decision_boundary(LogisticRegression().fit(X, y), X, y, steps=10)
    with pytest.raises(xpnet.ShapeError, match="two features"):
        plot.plot_decision_boundary(course_style, np.ones((3, 5)), np.ones(5))
    with pytest.raises(xpnet.ShapeError, match="one label per row"):
        plot.plot_decision_boundary(lambda rows: np.ones(3), X, y, steps=10)


def test_decision_boundary_calls_the_model_on_the_grid_it_draws():
    X = np.array([[-1.0, 1.0, -1.0, 1.0], [-1.0, -1.0, 1.0, 1.0]])
    ax = plot.plot_decision_boundary(lambda rows: rows[:, 0] > 0, X, [0, 1, 0, 1], steps=5, padding=0.0)
    xlim = ax.get_xlim()
    assert xlim[0] <= -1.0 and xlim[1] >= 1.0


def test_history_curves(tmp_path):
    X, y = xpnet.datasets.generated.make_circles(100, seed=0)
    net = xpnet.DNN([2, 5, 1], seed=0, backend="numpy")
    history = net.train(X.T, y.reshape(1, -1), epochs=4, validation_data=(X.T[:, :20], y.reshape(1, -1)[:, :20]))
    figure = plot.plot_history(history, path=tmp_path / "history.pdf")
    loss_ax, metric_ax = figure.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "validation"]
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), history["loss"])
    assert metric_ax.get_ylabel() == history.metric_name
    assert (tmp_path / "history.pdf").read_bytes()[:4] == b"%PDF"
    only_loss = plot.plot_history({"loss": [1.0, 0.5]})
    assert len(only_loss.axes) == 1


def test_pictures_go_through_the_safe_writer(tmp_path):
    ax = plot.plot_costs([1.0, 0.5])
    with pytest.raises(xpnet.ConfigError, match="picture format"):
        plot.save_figure(ax.figure, tmp_path / "costs.bmp")
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(xpnet.ConfigError, match="is a directory"):
        plot.save_figure(ax.figure, tmp_path / "taken.png")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(xpnet.ConfigError, match="cannot write the picture"):
        plot.save_figure(ax.figure, fifo)
    assert fifo.is_fifo()  # never replaced


@pytest.mark.parametrize("costs", [["a", 1.0], [np.ones(2)], [[0.5]]])
def test_costs_that_are_not_numbers_are_an_input_type_error(costs):
    with pytest.raises(xpnet.InputTypeError, match=r"costs\[0\] is .*not a number"):
        plot.plot_costs(costs)


def test_no_costs_is_a_config_error():
    with pytest.raises(xpnet.ConfigError, match="no costs"):
        plot.plot_costs([])

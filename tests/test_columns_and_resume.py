"""`xpnet predict`/`evaluate` use the model file's recorded columns; a checkpoint refuses other data; `--resume`
with more `--epochs` (the total) continues the run; the building blocks refuse pieces that do not belong together.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import xpnet
from xpnet import cli
from xpnet import functional as F
from xpnet.estimators import DNNClassifier

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 3))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def _csv(path, header, rows):
    path.write_text("\n".join([header, *(",".join(f"{v:.6g}" for v in r) for r in rows)]) + "\n")
    return str(path)


def _run(capsys, *argv):
    code = cli.main([*argv, "--backend", "numpy"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_predict_uses_the_trained_label_column(tmp_path, capsys):
    # The issue: trained with the label first (--label-column label), predict read the label as a feature and
    # dropped a real one: 118 of 200 predictions changed, exit 0.
    data = _csv(tmp_path / "label_first.csv", "label,a,b,c", np.column_stack([Y, X]))
    features = _csv(tmp_path / "features.csv", "a,b,c", X)
    model = str(tmp_path / "m.safetensors")
    assert _run(capsys, "train", "--dataset", data, "--label-column", "label", "--epochs", "5", "-q",
                "--out", model)[0] == 0
    code, with_label, err = _run(capsys, "predict", model, data)
    assert code == 0, err
    code, features_only, err = _run(capsys, "predict", model, features)
    assert code == 0, err
    assert with_label == features_only  # the label was not read as a feature
    code, out, err = _run(capsys, "evaluate", model, data)
    assert code == 0 and "accuracy" in out, err
    # A file without a header (the label last) has no column named 'label': the last column is the label.
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(",".join(f"{v:.6g}" for v in row) + "\n" for row in np.column_stack([X, Y])))
    code, out_bare, err = _run(capsys, "evaluate", model, str(bare))
    assert code == 0 and out_bare.split(" on ")[0] == out.split(" on ")[0], err


@pytest.mark.parametrize("header, says", [("b,a,c", "the same names in another order: column 1 is 'b' here"),
                                          ("a,b,d", "missing ['c']; not in the model ['d']")])
def test_predict_refuses_other_columns_showing_the_difference(tmp_path, capsys, header, says):
    data = _csv(tmp_path / "train.csv", "a,b,c,label", np.column_stack([X, Y]))
    model = str(tmp_path / "m.safetensors")
    assert _run(capsys, "train", "--dataset", data, "--epochs", "2", "-q", "--out", model)[0] == 0
    other = _csv(tmp_path / "other.csv", header, X)
    code, out, err = _run(capsys, "predict", model, other)
    assert code == 1 and says in err and out == ""
    with_label = _csv(tmp_path / "other_label.csv", header + ",label", np.column_stack([X, Y]))
    for command in ("predict", "evaluate"):
        code, _, err = _run(capsys, command, model, with_label)
        assert code == 1 and says in err


def test_resume_on_other_data_of_the_same_shape_is_refused(tmp_path):
    ckpt = tmp_path / "ck.safetensors"
    kw = dict(hidden_layer_sizes=(4,), random_state=0, backend="numpy")
    DNNClassifier(max_iter=2, **kw).fit(X, Y, checkpoint=ckpt)
    with pytest.raises(xpnet.ConfigError, match="written by a run on other data"):
        DNNClassifier(max_iter=4, **kw).fit(X[::-1].copy(), Y[::-1].copy(), checkpoint=ckpt, resume=True)
    # The same data resumes (and the refused attempt left the checkpoint as it was).
    DNNClassifier(max_iter=4, **kw).fit(X, Y, checkpoint=ckpt, resume=True)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_with_more_epochs_continues_the_run(tmp_path, capsys, schedule):
    # --epochs is the total (README): 3 epochs, then --resume --epochs 6, equals 6 epochs at once, also for a
    # schedule whose default decay steps depend on --epochs (the resumed run keeps the checkpoint's).
    data = _csv(tmp_path / "d.csv", "a,b,c,label", np.column_stack([X, Y]))
    common = ["--dataset", data, "-q", "--schedule", schedule, "--patience", "0"]
    ckpt = str(tmp_path / "ck.safetensors")
    assert _run(capsys, "train", *common, "--epochs", "3", "--checkpoint", ckpt)[0] == 0
    code, _, err = _run(capsys, "train", *common, "--epochs", "6", "--checkpoint", ckpt, "--resume",
                        "--out", str(tmp_path / "resumed.safetensors"))
    assert code == 0, err
    steps = ["--decay-steps", "3"] if schedule == "cosine" else []
    assert _run(capsys, "train", *common, *steps, "--epochs", "6", "--out", str(tmp_path / "full.safetensors"))[0] == 0
    resumed, _ = xpnet.files.read_model_file(tmp_path / "resumed.safetensors")
    full, _ = xpnet.files.read_model_file(tmp_path / "full.safetensors")
    for name in full:
        np.testing.assert_array_equal(resumed[name], full[name], err_msg=name)


def test_resume_with_another_setting_names_the_flags(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv", "a,b,c,label", np.column_stack([X, Y]))
    ckpt = str(tmp_path / "ck.safetensors")
    assert _run(capsys, "train", "--dataset", data, "--epochs", "2", "-q", "--checkpoint", ckpt)[0] == 0
    code, _, err = _run(capsys, "train", "--dataset", data, "--epochs", "4", "-q", "--checkpoint", ckpt, "--resume",
                        "--batch-size", "7")
    assert code == 1 and "--batch-size" in err and "estimator" not in err.split("The options")[1]


# ---------------------------------------------------------------------------------------- building blocks
def test_caches_unpack_as_the_lecture_says_and_survive_copies():
    params = F.initialize_parameters([3, 4, 1], seed=0, backend="numpy")
    Xc = RNG.normal(size=(3, 5))
    AL, caches = F.model_forward(Xc, params, hidden="tanh")
    (A_prev, W, _b), _Z = caches[0]
    assert A_prev is Xc and W is params["W1"] and isinstance(caches[0], tuple) and len(caches[0]) == 2
    Yc = (RNG.random((1, 5)) > 0.5).astype(float)
    expected = F.model_backward(AL, Yc, caches, hidden="tanh")
    for again in (copy.deepcopy(caches), pickle.loads(pickle.dumps(caches)), [tuple(c) for c in caches]):
        grads = F.model_backward(AL, Yc, again, hidden="tanh")
        for k in expected:
            np.testing.assert_array_equal(grads[k], expected[k])
    F.model_backward(np.clip(AL, 1e-12, 1 - 1e-12), Yc, caches, hidden="tanh")  # a clipped copy is the same AL


def test_mismatched_pieces_name_both_sides():
    params = F.initialize_parameters([3, 4, 4, 1], seed=0, backend="numpy")
    Xc = RNG.normal(size=(3, 5))
    Yc = np.ones((1, 5))
    AL, caches = F.model_forward(Xc, params, output="sigmoid")
    with pytest.raises(xpnet.ConfigError, match=r"layer 3's cache was made with output='sigmoid' .* output='linear'"):
        F.model_backward(AL, Yc, caches, output="linear", loss="mse")
    with pytest.raises(xpnet.ConfigError, match="caches holds 2 layers but the forward pass that made them had 3"):
        F.model_backward(AL, Yc, caches[1:])
    with pytest.raises(xpnet.ConfigError, match="caches\\[0\\] is the cache of layer 2"):
        F.model_backward(AL, Yc, [caches[1], caches[0], caches[2]])
    with pytest.raises(xpnet.ConfigError, match="unexpected keys 'W9x'"):
        F.model_forward(Xc, {**params, "W9x": 1})
    with pytest.raises(xpnet.ConfigError, match="missing 'W3'"):
        F.predict(Xc, {k: v for k, v in params.items() if k != "W3"})
    net = xpnet.DNN([3, 4, 4, 1], backend="numpy")
    net.parameters = {k: v for k, v in net.parameters.items() if k != "W3"}
    with pytest.raises(xpnet.ConfigError, match="missing 'W3'"):  # ran as a 2-layer network before
        net.predict(Xc)


def test_a_layer_backward_with_another_activation_is_refused():
    _A, cache = F.linear_activation_forward(np.ones((3, 2)), np.ones((2, 3)), np.zeros((2, 1)), "relu")
    with pytest.raises(xpnet.ConfigError, match=r"made with activation 'relu' .* given 'tanh'"):
        F.linear_activation_backward(np.ones((2, 2)), cache, "tanh")
    assert len(F.linear_activation_backward(np.ones((2, 2)), cache, "relu")) == 3

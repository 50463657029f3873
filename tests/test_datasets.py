"""xpnet.datasets: generated and bundled datasets, .npz / .csv files, load() and train_test_split()."""

from __future__ import annotations

import dataclasses
import zipfile

import numpy as np
import pytest

from xpnet import datasets
from xpnet.errors import ConfigError, DatasetError, XpnetError

GENERATED = {"moons": datasets.make_moons, "circles": datasets.make_circles, "flower": datasets.make_flower}


# --------------------------------------------------------------------------------------------------------------
# Built-ins
# --------------------------------------------------------------------------------------------------------------


def test_public_api():
    for name in ["make_flower", "make_moons", "make_circles", "load_digits", "load_breast_cancer", "load_npz",
                 "load_csv", "load", "Dataset", "DATASETS", "train_test_split"]:
        assert name in datasets.__all__
        assert hasattr(datasets, name)
    assert datasets.DATASETS == ("digits", "breast_cancer", "moons", "circles", "flower")


@pytest.mark.parametrize("name", sorted(GENERATED))
@pytest.mark.parametrize("n", [2, 7, 400])
def test_generated_shapes_and_dtypes(name, n):
    X, y = GENERATED[name](n, seed=3)
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [n // 2, n - n // 2]


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_deterministic_by_seed(name):
    make = GENERATED[name]
    X1, y1 = make(100, seed=5)
    X2, y2 = make(100, seed=5)
    X3, _ = make(100, seed=6)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)


def test_circles_radii():
    X, y = datasets.make_circles(400, noise=0.0, factor=0.3, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0)
    np.testing.assert_allclose(r[y == 1], 0.3)
    # Evenly spaced angles: no two points of a class coincide.
    assert len(np.unique(np.round(X[y == 0], 9), axis=0)) == 200

    X, y = datasets.make_circles(4000, noise=0.05, factor=0.5, seed=1)
    r = np.hypot(X[:, 0], X[:, 1])
    assert abs(r[y == 0].mean() - 1.0) < 0.01
    assert abs(r[y == 1].mean() - 0.5) < 0.01
    assert 0.04 < r[y == 0].std() < 0.06
    # The noise is N(0, noise) on each feature, so the points are centred on the origin.
    assert np.all(np.abs(X.mean(axis=0)) < 0.01)


@pytest.mark.parametrize(("kwargs", "phrase"), [
    ({"factor": 1.0}, "factor must be a number in (0, 1)"),
    ({"factor": 0.0}, "factor must be a number in (0, 1)"),
    ({"factor": float("nan")}, "factor must be a number in (0, 1)"),
    ({"noise": -0.1}, "noise must be a finite number >= 0"),
    ({"noise": float("inf")}, "noise must be a finite number >= 0"),
    ({"n_samples": 1}, "n_samples must be an integer >= 2"),
])
def test_circles_bad_parameters(kwargs, phrase):
    with pytest.raises(ConfigError) as info:
        datasets.make_circles(**kwargs)
    assert phrase in str(info.value)


def test_load_digits():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert sorted(np.unique(y).tolist()) == list(range(10))
    assert X.min() == 0.0 and X.max() == 16.0


def test_load_breast_cancer():
    X, y = datasets.load_breast_cancer()
    assert X.shape == (569, 30) and X.dtype == np.float64
    assert y.shape == (569,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [212, 357]


@pytest.mark.parametrize(("name", "shape", "n_classes"), [
    ("digits", (1797, 64), 10),
    ("breast_cancer", (569, 30), 2),
    ("moons", (400, 2), 2),
    ("circles", (400, 2), 2),
    ("flower", (400, 2), 2),
])
def test_load_builtin(name, shape, n_classes):
    ds = datasets.load(name)
    assert isinstance(ds, datasets.Dataset)
    assert ds.name == name and ds.task == "classification"
    assert ds.X.shape == shape and ds.X.dtype == np.float64
    assert ds.y.shape == (shape[0],) and ds.y.dtype == np.int64
    assert len(np.unique(ds.y)) == n_classes
    assert (ds.n_samples, ds.n_features) == shape
    if ds.feature_names is not None:
        assert len(ds.feature_names) == shape[1]
    if ds.target_names is not None:
        assert len(ds.target_names) == n_classes


def test_load_default_is_digits_and_names_are_case_insensitive():
    ds = datasets.load()
    assert ds.name == "digits"
    assert ds.target_names == tuple(str(k) for k in range(10))
    assert datasets.load("Breast_Cancer").target_names == ("malignant", "benign")
    assert datasets.load("MOONS").name == "moons"


def test_load_generated_options():
    ds = datasets.load("circles", n_samples=50, noise=0.0, seed=2)
    assert ds.X.shape == (50, 2)
    np.testing.assert_allclose(np.hypot(*ds.X[ds.y == 0].T), 1.0)
    np.testing.assert_array_equal(ds.X, datasets.make_circles(50, noise=0.0, seed=2)[0])
    # Defaults are those of the make_* functions.
    np.testing.assert_array_equal(datasets.load("flower", seed=4).X, datasets.make_flower(seed=4)[0])
    assert not np.allclose(datasets.load("moons", seed=1).X, datasets.load("moons", seed=2).X)


@pytest.mark.parametrize("kwargs", [{"n_samples": 100}, {"noise": 0.1}, {"label_column": 0}])
def test_load_refuses_options_that_do_not_apply(kwargs):
    with pytest.raises(ConfigError) as info:
        datasets.load("digits", **kwargs)
    assert "does not apply to 'digits'" in str(info.value)


def test_load_bad_noise_and_seed():
    with pytest.raises(ConfigError, match="noise must be"):
        datasets.load("moons", noise=-1.0)
    with pytest.raises(ConfigError, match="seed must be"):
        datasets.load("moons", seed=-1)


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(DatasetError) as info:
        datasets.load("mnist")
    msg = str(info.value)
    assert msg.startswith("unknown dataset 'mnist': expected one of digits, breast_cancer, moons, circles, flower, "
                          "or a path to a .npz, .csv, .tsv, .parquet or .npy file")
    assert isinstance(info.value, ValueError) and isinstance(info.value, XpnetError)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("1,2,0\n")
    with pytest.raises(DatasetError, match="unknown dataset"):
        datasets.load(str(path))


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".CSV"])
def test_load_missing_file(tmp_path, suffix):
    with pytest.raises(DatasetError) as info:
        datasets.load(str(tmp_path / f"absent{suffix}"))
    assert "no such file" in str(info.value)
    assert "absent" in str(info.value)


def test_dataset_is_frozen_and_checks_task():
    ds = datasets.load("moons", n_samples=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"
    assert "X=(10, 2) float64" in repr(ds)
    with pytest.raises(ConfigError, match="task must be one of"):
        datasets.Dataset(ds.X, ds.y, "x", "clustering")


# --------------------------------------------------------------------------------------------------------------
# .npz
# --------------------------------------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    X, y = datasets.make_moons(30, seed=0)
    path = tmp_path / "moons.npz"
    np.savez(path, X=X, y=y, extra=np.arange(3))
    X2, y2 = datasets.load_npz(path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert X2.dtype == np.float64 and y2.dtype == np.int64

    ds = datasets.load(str(path))
    assert ds.name == "moons.npz" and ds.task == "classification"
    np.testing.assert_array_equal(ds.X, X)


def test_npz_int_features_column_labels_and_regression(tmp_path):
    path = tmp_path / "r.NPZ"  # numpy.savez(path) would append ".npz" to this suffix; a file handle keeps it
    with open(path, "wb") as f:
        np.savez(f, X=np.arange(6, dtype=np.int32).reshape(3, 2), y=np.array([[0.5], [1.0], [2.25]]))
    X, y = datasets.load_npz(path)
    assert X.dtype == np.float64 and X.tolist() == [[0, 1], [2, 3], [4, 5]]
    assert y.shape == (3,) and y.tolist() == [0.5, 1.0, 2.25]
    assert datasets.load(str(path)).task == "regression"


def test_npz_str_labels(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, X=np.eye(3), y=np.array(["cat", "dog", "cat"]))
    ds = datasets.load(path)
    assert ds.task == "classification"
    assert ds.target_names == ("cat", "dog")


def test_npz_missing_key(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, features=np.eye(2), y=np.zeros(2))
    with pytest.raises(DatasetError) as info:
        datasets.load_npz(path)
    msg = str(info.value)
    assert "no array named 'X'" in msg
    assert "'features'" in msg and "'y'" in msg


def test_npz_object_array_is_refused(tmp_path):
    path = tmp_path / "o.npz"
    np.savez(path, X=np.eye(2), y=np.array([1, "a"], dtype=object))
    with pytest.raises(DatasetError) as info:
        datasets.load_npz(path)
    assert "array 'y' holds Python objects" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04 truncated"])
def test_npz_not_an_archive(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        datasets.load_npz(path)
    assert "not a readable npz archive" in str(info.value)
    assert str(path) in str(info.value)


def test_npz_corrupt_member(tmp_path):
    path = tmp_path / "c.npz"
    np.savez_compressed(path, X=np.arange(1000.0).reshape(100, 10), y=np.zeros(100))
    raw = bytearray(path.read_bytes())
    raw[100:140] = bytes(40)  # inside the compressed X
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="not a readable npz archive"):
        datasets.load_npz(path)


def test_npy_is_not_an_npz(tmp_path):
    path = tmp_path / "a.npz"
    with open(path, "wb") as f:
        np.save(f, np.eye(2))
    with pytest.raises(DatasetError, match="not a readable npz archive"):
        datasets.load_npz(path)


def _npz_with_X_header(path, shape, descr="<f8", body=b""):
    """An archive whose X.npy header claims ``shape`` but holds only ``body``; y is a valid empty array."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body)
        with zf.open("y.npy", "w") as member:
            np.save(member, np.zeros(0))


@pytest.mark.parametrize("shape", [(10**6, 10**6), (2**31 - 1,), (0, 2**64), (-1, 2), (3, 2)])
def test_npz_header_claiming_more_than_the_archive_holds(tmp_path, shape):
    # Before numpy allocates: a 300-byte file used to ask for 7 TiB (MemoryError), overflow a C long, or get a
    # 16 GiB buffer that the read then failed to fill.
    path = tmp_path / "forged.npz"
    _npz_with_X_header(path, shape, body=bytes(16))
    with pytest.raises(DatasetError) as info:
        datasets.load_npz(path)
    assert "array 'X' claims shape" in str(info.value) and str(path) in str(info.value)


def test_npz_with_zip_features_numpy_does_not_write(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, X=np.eye(2), y=np.zeros(2))
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 0x40  # the "strong encryption" flag: zipfile raised NotImplementedError
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="not a readable npz archive"):
        datasets.load_npz(path)


def test_npz_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        datasets.load_npz(tmp_path / "absent.npz")
    with pytest.raises(DatasetError, match="is a directory"):
        datasets.load_npz(tmp_path)


@pytest.mark.parametrize(("X", "y", "phrase"), [
    (np.arange(3.0), np.zeros(3), "X must be 2-D"),
    (np.array([["a", "b"]]), np.zeros(1), "X must hold bool, integer or floating-point"),
    (np.eye(3), np.zeros(2), "X has 3 rows but y has 2 labels"),
    (np.eye(3), np.zeros((3, 2)), "y must be 1-D"),
    (np.array([[1.0, np.nan]]), np.zeros(1), "X[0, 1] is nan"),
    (np.zeros((0, 2)), np.zeros(0), "expected at least one sample"),
])
def test_npz_bad_arrays(tmp_path, X, y, phrase):
    path = tmp_path / "b.npz"
    np.savez(path, X=X, y=y)
    with pytest.raises(DatasetError) as info:
        datasets.load_npz(path)
    assert phrase in str(info.value)


# --------------------------------------------------------------------------------------------------------------
# .csv
# --------------------------------------------------------------------------------------------------------------


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_without_header(tmp_path):
    path = _write(tmp_path, "1,2,0\n3,4.5,1\n\n-1e3,0,1\n")
    X, y = datasets.load_csv(path)
    assert X.dtype == np.float64 and X.tolist() == [[1, 2], [3, 4.5], [-1000, 0]]
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 1]
    ds = datasets.load(str(path))
    assert ds.feature_names is None and ds.target_names is None and ds.task == "classification"


def test_csv_with_header(tmp_path):
    path = _write(tmp_path, "width, height ,label\n1,2,0\n3,4,1\n")
    X, y = datasets.load_csv(path)
    assert X.tolist() == [[1, 2], [3, 4]]
    assert y.tolist() == [0, 1]
    ds = datasets.load(str(path))
    assert ds.feature_names == ("width", "height")
    assert ds.n_samples == 2


def test_csv_header_forced(tmp_path):
    # All-numeric first row: "auto" reads it as data, header=True as names.
    path = _write(tmp_path, "10,20,30\n1,2,0\n3,4,1\n")
    assert datasets.load_csv(path)[0].shape == (3, 2)
    X, y = datasets.load_csv(path, header=True)
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    with pytest.raises(DatasetError, match="not a number"):
        datasets.load_csv(_write(tmp_path, "a,b,c\n1,2,0\n", "h.csv"), header=False)


def test_csv_string_labels(tmp_path):
    path = _write(tmp_path, "sepal,petal,species\n5.1,1.4,setosa\n6.3,6.0,virginica\n4.9,1.4,setosa\n")
    X, y = datasets.load_csv(path)
    assert X.shape == (3, 2)
    assert y.dtype.kind == "U" and y.tolist() == ["setosa", "virginica", "setosa"]
    ds = datasets.load(str(path))
    assert ds.task == "classification" and ds.target_names == ("setosa", "virginica")


def test_csv_string_labels_without_header(tmp_path):
    # Only the label field of the first row is text, and so are the labels below it: that row is data.
    path = _write(tmp_path, "5.1,1.4,setosa\n6.3,6.0,virginica\n")
    X, y = datasets.load_csv(path)
    assert X.shape == (2, 2) and y.tolist() == ["setosa", "virginica"]


def test_csv_numeric_looking_feature_names_with_text_label_name(tmp_path):
    # Only the label field of the first row is text but the labels below are numbers: that row is a header.
    path = _write(tmp_path, "1,2,label\n1,2,0\n3,4,1\n")
    X, y = datasets.load_csv(path)
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]


def test_csv_label_column_by_name_and_index(tmp_path):
    path = _write(tmp_path, "y,a,b\n1,10,20\n0,30,40\n")
    X, y = datasets.load_csv(path, label_column="y")
    assert X.tolist() == [[10, 20], [30, 40]] and y.tolist() == [1, 0]
    X, y = datasets.load_csv(path, label_column=0)
    assert X.tolist() == [[10, 20], [30, 40]] and y.tolist() == [1, 0]
    X, y = datasets.load_csv(path, label_column=-3)
    assert y.tolist() == [1, 0]
    X, y = datasets.load_csv(path, label_column="a")
    assert X.tolist() == [[1, 20], [0, 40]] and y.tolist() == [10, 30]
    ds = datasets.load(str(path), label_column="b")
    assert ds.feature_names == ("y", "a") and ds.y.tolist() == [20, 40]


def test_csv_label_column_errors(tmp_path):
    path = _write(tmp_path, "a,b,c\n1,2,0\n")
    with pytest.raises(DatasetError) as info:
        datasets.load_csv(path, label_column="target")
    assert "no column named 'target'" in str(info.value) and "'a', 'b', 'c'" in str(info.value)
    with pytest.raises(DatasetError, match=r"label_column=3 is out of range for its 3 columns"):
        datasets.load_csv(path, label_column=3)
    with pytest.raises(DatasetError, match="out of range"):
        datasets.load_csv(path, label_column=-4)
    with pytest.raises(ConfigError, match="needs a header row"):
        datasets.load_csv(path, label_column="c", header=False)
    with pytest.raises(ConfigError, match="label_column must be"):
        datasets.load_csv(path, label_column=1.0)


def test_csv_float_labels_are_regression(tmp_path):
    path = _write(tmp_path, "x,target\n1,0.5\n2,1.25\n3,2\n")
    _, y = datasets.load_csv(path)
    assert y.dtype == np.float64 and y.tolist() == [0.5, 1.25, 2.0]
    assert datasets.load(str(path)).task == "regression"


def test_csv_integral_float_labels_are_int(tmp_path):
    path = _write(tmp_path, "1,0.0\n2,1.0\n3,2.0\n")
    _, y = datasets.load_csv(path)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2]
    assert datasets.load(str(path)).task == "classification"


def test_csv_ragged_row(tmp_path):
    path = _write(tmp_path, "a,b,c\n1,2,0\n3,4\n5,6,1\n")
    with pytest.raises(DatasetError) as info:
        datasets.load_csv(path)
    assert "line 3 has 2 fields but line 1 has 3" in str(info.value)


def test_csv_non_numeric_feature(tmp_path):
    path = _write(tmp_path, "a,b,c\n1,2,0\n3,four,1\n")
    with pytest.raises(DatasetError) as info:
        datasets.load_csv(path)
    msg = str(info.value)
    assert "line 3, column 2 ('b') holds 'four', not a number" in msg


def test_csv_missing_values(tmp_path):
    with pytest.raises(DatasetError, match="line 2, column 1 holds '', not a number"):
        datasets.load_csv(_write(tmp_path, "1,2,0\n,4,1\n"))
    with pytest.raises(DatasetError, match=r"holds 'nan'\. Expected finite numbers"):
        datasets.load_csv(_write(tmp_path, "1,2,0\nnan,4,1\n"))
    with pytest.raises(DatasetError, match="line 2, column 3 has no label"):
        datasets.load_csv(_write(tmp_path, "1,2,0\n3,4,\n"))


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-inf", " nan "])
def test_csv_non_finite_numeric_label_is_refused(tmp_path, bad):
    # It used to load, train and fail later with an index into a split.
    path = _write(tmp_path, f"a,b,label\n1,2,0\n3,4,1.5\n5,6,{bad}\n7,8,{bad}\n", name="nanlabel.csv")
    for load in (datasets.load_csv, datasets.load):
        with pytest.raises(DatasetError) as info:
            load(path)
        assert str(info.value) == (
            f"cannot load '{path}': line 4, column 3 ('label') (the label column) holds {bad.strip()!r}. Expected "
            "finite numeric labels; drop the unlabelled samples (line 4 is the first)")
    # Without a header, with the label first: the column is named by its number.
    path = _write(tmp_path, f"0,1,2\n{bad},3,4\n")
    with pytest.raises(DatasetError, match=r"line 2, column 1 \(the label column\) holds"):
        datasets.load_csv(path, label_column=0)


def test_csv_float_labels_and_nan_class_names_still_load(tmp_path):
    _, y = datasets.load_csv(_write(tmp_path, "1,2,0.5\n3,4,-1e300\n"))
    assert y.dtype == np.float64 and y.tolist() == [0.5, -1e300]
    _, y = datasets.load_csv(_write(tmp_path, "1,2,cat\n3,4,nan\n5,6,dog\n"))  # text labels: 'nan' is a name
    assert y.tolist() == ["cat", "nan", "dog"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npz_non_finite_label_is_refused(tmp_path, bad):
    path = tmp_path / "nanlabel.npz"
    np.savez(path, X=np.eye(4), y=np.array([0.0, 1.0, bad, bad]))
    for load in (datasets.load_npz, datasets.load):
        with pytest.raises(DatasetError) as info:
            load(path)
        assert str(info.value) == (f"'{path}': the labels y hold {bad} at row 2 (y[2]), expected finite labels; "
                                   "drop the unlabelled samples")


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_csv_empty_file(tmp_path, text):
    with pytest.raises(DatasetError, match="the file is empty"):
        datasets.load_csv(_write(tmp_path, text))


def test_csv_header_only(tmp_path):
    with pytest.raises(DatasetError, match="no data rows"):
        datasets.load_csv(_write(tmp_path, "a,b,label\n"))


def test_csv_needs_a_feature_column(tmp_path):
    with pytest.raises(DatasetError, match="at least 2"):
        datasets.load_csv(_write(tmp_path, "0\n1\n"))


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        datasets.load_csv(tmp_path / "absent.csv")


def test_csv_delimiter_quotes_and_bom(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text('"first; name";b;label\n1;2;"class A"\n3;4;class B\n', encoding="utf-8-sig")
    X, y = datasets.load_csv(path, delimiter=";")
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == ["class A", "class B"]
    ds = datasets.load_csv(path, delimiter=";", label_column="label")
    assert ds[1].tolist() == ["class A", "class B"]
    with pytest.raises(ConfigError, match="delimiter must be one character"):
        datasets.load_csv(path, delimiter=";;")


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("caf\u00e9,1,0\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        datasets.load_csv(path)


# --------------------------------------------------------------------------------------------------------------
# train_test_split
# --------------------------------------------------------------------------------------------------------------


def _imbalanced(n0=90, n1=10):
    X = np.arange(2.0 * (n0 + n1)).reshape(-1, 2)
    y = np.array([0] * n0 + [1] * n1, dtype=np.int64)
    return X, y


def test_split_shapes_and_determinism():
    X, y = datasets.load_digits()
    X_train, X_test, y_train, y_test = datasets.train_test_split(X, y, test_size=0.25, seed=1)
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    again = datasets.train_test_split(X, y, test_size=0.25, seed=1)
    np.testing.assert_array_equal(again[1], X_test)
    other = datasets.train_test_split(X, y, test_size=0.25, seed=2)
    assert not np.array_equal(other[1], X_test)
    # Rows stay paired with their labels.
    rows = {tuple(r): label for r, label in zip(X.tolist(), y.tolist(), strict=True)}
    assert all(rows[tuple(r)] == label for r, label in zip(X_test.tolist(), y_test.tolist(), strict=True))


def test_split_stratifies_class_labels_by_default():
    X, y = _imbalanced()
    for seed in range(5):
        _, _, y_train, y_test = datasets.train_test_split(X, y, test_size=0.2, seed=seed)
        assert np.bincount(y_test).tolist() == [18, 2]
        assert np.bincount(y_train).tolist() == [72, 8]


def test_split_string_labels_are_stratified():
    X, y = _imbalanced()
    names = np.where(y == 1, "rare", "common")
    _, _, _, y_test = datasets.train_test_split(X, names, test_size=0.2, seed=0)
    assert (y_test == "rare").sum() == 2


def test_split_stratify_false_can_lose_proportions():
    X, y = _imbalanced()
    counts = {int((datasets.train_test_split(X, y, seed=s, stratify=False)[3] == 1).sum()) for s in range(20)}
    assert counts != {2}


def test_split_falls_back_when_a_class_is_a_singleton():
    X, y = _imbalanced(9, 1)
    _, X_test, _, y_test = datasets.train_test_split(X, y, test_size=0.3, seed=0)
    assert len(X_test) == 3 and len(y_test) == 3
    with pytest.raises(DatasetError, match="cannot make a stratified split"):
        datasets.train_test_split(X, y, test_size=0.3, stratify=True)


def test_split_regression_targets_are_not_stratified():
    X = np.arange(20.0).reshape(10, 2)
    y = np.linspace(0.1, 1.3, 10)
    # Stratifying on ten distinct real values would fail (one member per "class"), so this split is plain.
    _, X_test, y_train, _ = datasets.train_test_split(X, y, test_size=0.3, seed=0)
    assert len(X_test) == 3 and len(y_train) == 7


@pytest.mark.parametrize("test_size", [0, 0.0, 1, 1.0, -0.2, 1.5, 20, True, "0.2", float("nan")])
def test_split_bad_test_size(test_size):
    X, y = _imbalanced()
    with pytest.raises(ConfigError) as info:
        datasets.train_test_split(X, y, test_size=test_size)
    assert "test_size must be a fraction in (0, 1)" in str(info.value)


def test_split_length_mismatch():
    with pytest.raises(DatasetError, match="X has 4 samples but y has 3"):
        datasets.train_test_split(np.zeros((4, 2)), np.zeros(3))


@pytest.mark.parametrize("make", ["make_moons", "make_flower", "make_circles"])
@pytest.mark.parametrize("noise", [None, "a", -1.0, float("nan")])
def test_generators_refuse_bad_noise(make, noise):
    with pytest.raises(ConfigError, match="noise"):
        getattr(datasets, make)(50, noise=noise)


@pytest.mark.parametrize("make", ["make_moons", "make_flower", "make_circles"])
def test_shuffle_mixes_the_rows_and_keeps_the_points(make):
    X, y = getattr(datasets, make)(200, seed=3)
    Xs, ys = getattr(datasets, make)(200, seed=3, shuffle=True)
    assert (y[:100] == 0).all() and not (ys[:100] == 0).all()  # ordered by class unless shuffled
    order = np.lexsort(X.T)
    order_s = np.lexsort(Xs.T)
    np.testing.assert_array_equal(X[order], Xs[order_s])  # the same points, in another order
    np.testing.assert_array_equal(y[order], ys[order_s])
    again, _ = getattr(datasets, make)(200, seed=3, shuffle=True)
    np.testing.assert_array_equal(again, Xs)  # seeded


def test_tsv_is_read_as_a_tab_separated_csv(tmp_path):
    rows = ["a\tb\tlabel"] + [f"{i}\t{i % 3}\t{i % 2}" for i in range(10)]
    (tmp_path / "d.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "d.csv").write_text("\n".join(r.replace("\t", ",") for r in rows) + "\n")
    tsv, csv = datasets.load(tmp_path / "d.tsv"), datasets.load(tmp_path / "d.csv")
    np.testing.assert_array_equal(tsv.X, csv.X)
    np.testing.assert_array_equal(tsv.y, csv.y)
    assert tsv.feature_names == ("a", "b") and tsv.label_name == "label"

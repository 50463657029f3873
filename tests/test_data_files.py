"""Data files read fast: CSV through pyarrow's streaming parser (delimiter detection, header rules, a pandas index,
missing values named by line and column), Parquet and memory-mapped ``.npy``; the command's ``--delimiter`` and
``--header``/``--no-header``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xpnet import datasets
from xpnet.cli import main
from xpnet.datasets import csv_arrow, csv_files, csv_layout
from xpnet.errors import DatasetError


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _table(m=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = np.round(rng.standard_normal((m, d)), 6)
    y = (X[:, 0] > 0).astype(np.int64)
    return X, y


def _csv_text(X, y, delimiter=",", header=True):
    lines = [delimiter.join([f"x{j}" for j in range(X.shape[1])] + ["label"])] if header else []
    lines += [delimiter.join([*(repr(float(v)) for v in row), str(t)]) for row, t in zip(X, y, strict=True)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def small_blocks(monkeypatch):
    # Many blocks on a small file: the block-by-block fill and an error in a later block are exercised.
    monkeypatch.setattr(csv_arrow, "BLOCK_BYTES", 4096)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_detected_and_can_be_given(tmp_path, small_blocks, delimiter):
    X, y = _table()
    path = _write(tmp_path, _csv_text(X, y, delimiter))
    Xr, yr = datasets.load_csv(path)
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(yr, y)
    assert datasets.load_csv(path, delimiter=delimiter)[0].shape == X.shape
    ds = datasets.load(str(path))
    assert ds.feature_names == ("x0", "x1", "x2", "x3") and ds.label_name == "label"


def test_the_fast_path_reads_what_the_stdlib_reader_reads(tmp_path, small_blocks, monkeypatch):
    X, y = _table(500, 6, seed=3)
    path = _write(tmp_path, _csv_text(X, y))
    fast = datasets.load_csv(path)
    monkeypatch.setattr(csv_arrow, "read_arrow", lambda layout: None)  # the stdlib reader alone
    slow = datasets.load_csv(path)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert fast[0].dtype == np.float64 and fast[0].flags.c_contiguous


@pytest.mark.parametrize(("field", "phrase"), [("", "holds '', not a number (a missing value)"),
                                               ("NA", "holds 'NA', not a number"),
                                               ("nan", "holds 'nan'. Expected finite numbers"),
                                               ("inf", "holds 'inf'. Expected finite numbers"),
                                               ("abc", "holds 'abc', not a number")])
def test_csv_bad_value_in_a_later_block_names_line_and_column(tmp_path, small_blocks, field, phrase):
    X, y = _table(400)
    lines = _csv_text(X, y).splitlines()
    fields = lines[351].split(",")
    fields[2] = field
    lines[351] = ",".join(fields)
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as info:
        datasets.load_csv(path)
    assert f"line 352, column 3 ('x2') {phrase}" in str(info.value)


def test_csv_ragged_row_and_missing_label_in_a_later_block(tmp_path, small_blocks):
    X, y = _table(400)
    lines = _csv_text(X, y).splitlines()
    lines[300] = lines[300] + ",7"
    with pytest.raises(DatasetError, match="line 301 has 6 fields but line 1 has 5"):
        datasets.load_csv(_write(tmp_path, "\n".join(lines) + "\n"))
    lines = _csv_text(X, y).splitlines()
    lines[250] = lines[250].rsplit(",", 1)[0] + ","
    with pytest.raises(DatasetError, match=r"line 251, column 5 \('label'\) has no label"):
        datasets.load_csv(_write(tmp_path, "\n".join(lines) + "\n"))


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_csv_line_ends(tmp_path, small_blocks, end):
    X, y = _table(300)
    path = tmp_path / "ends.csv"
    path.write_bytes(_csv_text(X, y).encode().replace(b"\n", end))
    Xr, yr = datasets.load_csv(path)
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(yr, y)


def test_csv_that_pyarrow_refuses_but_python_reads_still_loads(tmp_path):
    # Python's float() takes underscores in numbers; pyarrow does not: the stdlib reader reads the file.
    X, y = datasets.load_csv(_write(tmp_path, "a,b,label\n1_000,2,0\n3,4,1\n"))
    assert X.tolist() == [[1000, 2], [3, 4]] and y.tolist() == [0, 1]


def test_numeric_header_of_a_features_file(tmp_path):
    # Wavelengths as column names above fractional data: a header, said in a note; 5 samples, never 6.
    rng = np.random.default_rng(0)
    rows = "\n".join(",".join(f"{v:.4f}" for v in r) for r in rng.random((5, 3)))
    path = _write(tmp_path, "400,410,420\n" + rows + "\n")
    with pytest.warns(UserWarning, match=r"line 1 \(400, 410, 420\) is read as a header of numeric column names"):
        data = csv_files._read_csv(path, None, "auto", None)
    assert data.X.shape == (5, 3) and data.feature_names == ("400", "410", "420") and data.y is None
    assert csv_files._read_csv(path, None, False, None).X.shape == (6, 3)
    # Whole-number data below: the first row is a sample, unless it is the model's recorded feature names.
    ints = _write(tmp_path, "400,410,420\n1,2,3\n4,5,6\n", "ints.csv")
    assert csv_files._read_csv(ints, None, "auto", None).X.shape == (3, 3)
    with pytest.warns(UserWarning, match="the model's feature names"):
        assert csv_files._read_csv(ints, None, "auto", None, ["400", "410", "420"]).X.shape == (2, 3)


def test_pandas_index_column_is_dropped_with_a_note(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    X, y = _table(50, 2)
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(label=y)
    path = tmp_path / "indexed.csv"
    frame.to_csv(path)  # index=True: ",a,b,label" and row numbers first
    with pytest.warns(UserWarning, match=r"dropped column 1, an unnamed index of row numbers \(0\.\.49\)"):
        ds = datasets.load(str(path))
    assert ds.X.shape == (50, 2) and ds.feature_names == ("a", "b")
    np.testing.assert_array_equal(ds.X, X)
    # Shuffled rows keep their old numbers: still an index.
    frame.sample(frac=1, random_state=0).to_csv(path)
    with pytest.warns(UserWarning, match="dropped column 1"):
        assert datasets.load(str(path)).X.shape == (50, 2)
    # An unnamed first column that stops being row numbers past the rows the layout is decided on: refused.
    monkeypatch.setattr(csv_layout, "HEAD_BYTES", 2000)
    text = ",a,b,label\n" + "".join(f"{i},{i}.5,1,0\n" for i in range(300)) + "7.5,1,2,1\n"
    with pytest.raises(DatasetError, match="not distinct whole numbers"):
        datasets.load_csv(_write(tmp_path, text, "fake.csv"))


def test_parquet_dataset(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X, y = _table(200, 3)
    table = pa.table({"a": X[:, 0], "b": X[:, 1].astype(np.float32), "n": np.arange(200), "species":
                      np.where(y == 1, "yes", "no")})
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=64)
    ds = datasets.load(str(path))
    assert ds.X.shape == (200, 3) and ds.X.dtype == np.float64 and ds.feature_names == ("a", "b", "n")
    assert ds.label_name == "species" and ds.task == "classification" and set(ds.y) == {"yes", "no"}
    np.testing.assert_array_equal(ds.X[:, 0], X[:, 0])
    with pytest.raises(DatasetError, match=r"column 4 \('species'\) holds string, not numbers"):
        datasets.load(str(path), label_column="n")
    pq.write_table(table.drop_columns(["species"]), path)
    ds = datasets.load(str(path), label_column=2)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == list(range(200)) and ds.feature_names == ("a", "b")
    bad = pa.table({"a": pa.array([1.0, None, 3.0]), "label": [0, 1, 0]})
    pq.write_table(bad, tmp_path / "null.parquet")
    with pytest.raises(DatasetError, match=r"row 1 \(from 0\), column 1 \('a'\) is missing \(null\)"):
        datasets.load(str(tmp_path / "null.parquet"))
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        datasets.load(str(_write(tmp_path, "a,b\n1,2\n", "fake.parquet")))


def test_npy_dataset_is_memory_mapped(tmp_path):
    X, y = _table(100, 3)
    path = tmp_path / "d.npy"
    np.save(path, np.column_stack([X, y]))
    ds = datasets.load(str(path))
    assert isinstance(ds.X.base, np.memmap) or isinstance(ds.X, np.memmap)
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == y.tolist()
    ds = datasets.load(str(path), label_column=0)
    assert ds.X.shape == (100, 3) and ds.task == "regression"
    data = np.column_stack([X, y]).astype(np.float32)
    data[42, 1] = np.nan
    np.save(path, data)
    with pytest.raises(DatasetError, match=r"row 42 \(from 0\), column 2 holds a missing value \(NaN\)"):
        datasets.load(str(path))
    np.save(path, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="Python objects"):
        datasets.load(str(path))


def test_csv_options_only_for_csv():
    with pytest.raises(Exception, match="delimiter=';' does not apply"):
        datasets.load("digits", delimiter=";")


def test_command_reads_a_semicolon_csv_parquet_and_npy(tmp_path, capsys):
    X, y = _table(120, 3)
    semi = _write(tmp_path, _csv_text(X, y, ";"), "semi.csv")
    for args in (["--dataset", str(semi)], ["--dataset", str(semi), "--delimiter", ";"]):
        assert main(["train", *args, "--epochs", "2", "-q"]) == 0
    assert main(["train", "--dataset", str(semi), "--delimiter", ",", "--epochs", "2", "-q"]) == 1
    assert "semi.csv" in capsys.readouterr().err
    np.save(tmp_path / "d.npy", np.column_stack([X, y]))
    assert main(["train", "--dataset", str(tmp_path / "d.npy"), "--epochs", "2", "-q"]) == 0
    with pytest.raises(SystemExit):
        main(["train", "--header", "--no-header"])


def test_predict_features_file_with_a_numeric_header(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.random((40, 3))
    y = (X[:, 0] > 0.5).astype(int)
    train = _write(tmp_path, "400,410,420,label\n" + "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in
                                                            zip(X, y, strict=True)), "train.csv")
    model = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", str(train), "--epochs", "2", "-q", "--out", str(model)]) == 0
    feats = _write(tmp_path, "400,410,420\n" + "".join(f"{a:.4f},{b:.4f},{c:.4f}\n" for a, b, c in X[:5]),
                   "features.csv")
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["predict", str(model), str(feats)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + 5  # the header line and one row per sample: the numeric header is not a sample
    assert main(["predict", str(model), str(feats), "--no-header"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 6


def test_predict_from_parquet_and_npy_with_and_without_labels(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X, y = _table(80, 3)
    train = tmp_path / "train.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y}), train)
    model = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", str(train), "--epochs", "2", "-q", "--out", str(model)]) == 0
    assert main(["info", str(model), "--json"]) == 0
    assert '"feature_names": [\n  "a",\n  "b",\n  "c"\n ]' in capsys.readouterr().out
    pq.write_table(pa.table({"a": X[:5, 0], "b": X[:5, 1], "c": X[:5, 2]}), tmp_path / "features.parquet")
    np.save(tmp_path / "features.npy", X[:7])
    np.save(tmp_path / "labelled.npy", np.column_stack([X[:9], y[:9]]))
    for name, rows in (("train.parquet", 80), ("features.parquet", 5), ("features.npy", 7), ("labelled.npy", 9)):
        assert main(["predict", str(model), str(tmp_path / name)]) == 0, name
        assert len(capsys.readouterr().out.splitlines()) == 1 + rows, name
    # Other columns than the model's (by name): refused, as for a CSV.
    pq.write_table(pa.table({"a": X[:5, 0], "c": X[:5, 2], "b": X[:5, 1]}), tmp_path / "swapped.parquet")
    assert main(["predict", str(model), str(tmp_path / "swapped.parquet")]) == 1
    assert "another order" in capsys.readouterr().err

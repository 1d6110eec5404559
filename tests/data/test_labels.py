"""Labels: one class for what is clearly one label, said in the log; missing and NaN labels refused."""

import json

import numpy as np
import pytest

from protege.data.build import load_data
from protege.data.labels import canonical, class_index, is_missing
from protege.errors import DataError


def _csv(path, labels, extra=None):
    rows = ["a,label" + (",split" if extra else "")]
    for i, label in enumerate(labels):
        rows.append(f"{i},{label}" + (f",{extra[i]}" if extra else ""))
    path.write_text("\n".join(rows) + "\n")
    return f"csv:{path}"


def test_spaces_around_a_label_do_not_make_another_class(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROTEGE_QUIET", "0")
    data = load_data(_csv(tmp_path / "d.csv", ["cat", " cat", "dog ", "dog"] * 5), val_fraction=0)
    assert data.class_names == ["cat", "dog"]
    assert "read as one class each: ' cat' / 'cat'" in capsys.readouterr().err


def test_numbers_written_two_ways_are_one_class(tmp_path):
    data = load_data(_csv(tmp_path / "d.csv", ["0", "0.0", "1", "1.0", "+1", "00"] * 4), val_fraction=0)
    assert data.class_names == ["0", "1"]
    assert sorted(np.bincount(np.concatenate([data.train.y.numpy(), data.test.y.numpy()]))) == [12, 12]


def test_a_label_written_one_way_keeps_its_name(tmp_path):
    data = load_data(_csv(tmp_path / "d.csv", ["02139", "10001"] * 5), val_fraction=0)
    assert data.class_names == ["02139", "10001"]


def test_a_given_test_split_reads_its_labels_the_same_way(tmp_path):
    labels = ["cat", "dog"] * 4 + [" cat", "dog  "]
    splits = ["train"] * 8 + ["test"] * 2
    data = load_data(_csv(tmp_path / "d.csv", labels, splits), {"split_column": "split"}, val_fraction=0)
    assert data.test.y.tolist() == [0, 1]


def test_a_jsonl_row_without_a_label_is_refused(tmp_path):
    rows = [{"a": 1, "label": "x"}, {"a": 2, "label": None}, {"a": 3, "label": "y"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match="line 2 has no label"):
        load_data(f"jsonl:{tmp_path / 'd.jsonl'}")


def test_nan_labels_are_refused_never_a_class(tmp_path):
    with pytest.raises(DataError, match="line 4 has a NaN label"):
        load_data(_csv(tmp_path / "d.csv", ["x", "y", "NaN", "x"]))
    np.savez(tmp_path / "d.npz", x=np.ones((4, 2)), y=np.array([0.0, 1.0, 1.0, np.nan]))
    with pytest.raises(DataError, match="example 4 has a NaN label"):
        load_data(f"npz:{tmp_path / 'd.npz'}")


def test_canonical_forms_and_missing_values():
    assert [canonical(v) for v in (" a ", 0, 0.0, "1.50", "1e3", True, "inf")] == [
        "a",
        "0",
        "0",
        "1.5",
        "1000",
        "True",
        "inf",
    ]
    assert [is_missing(v) for v in (None, "", "  ", float("nan"), "nan", "None", 0)] == [
        True, True, True, True, True, False, False,
    ]  # fmt: skip


def test_integer_labels_with_class_names_index_them():
    names, encode = class_index(np.array([0, 2, 1]), ["a", "b", "c"], "src")
    assert names == ["a", "b", "c"] and encode(np.array([2, 0]), "test").tolist() == [2, 0]


def test_a_constant_feature_is_scaled_by_one(tmp_path):
    x = np.zeros((40, 2), dtype=np.float32)
    x[:, 1] = np.arange(40) % 2
    x_test = np.array([[5.0, 0.0], [-3.0, 1.0]], dtype=np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(40) % 2, x_test=x_test, y_test=np.array([0, 1]))
    data = load_data(f"npz:{tmp_path / 'd.npz'}", standardize=True, val_fraction=0)
    assert data.preprocess["standardize"]["std"][0] == 1.0
    assert data.test.x[:, 0].tolist() == [5.0, -3.0]  # (x - 0) / 1, not (x - 0) / 1e-6

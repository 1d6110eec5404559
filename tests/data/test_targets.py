"""Targets of each task type from CSV and npz files: real values per target, 0/1 per label (several
columns or one column of label lists), with the rows and columns named in the errors."""

import numpy as np
import pytest

from protege.data.build import load_data
from protege.errors import DataError


def _csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return f"csv:{path}"


def test_regression_targets_from_several_columns(tmp_path):
    rows = [(i, i * 0.5, 2 * i, -i) for i in range(20)]
    source = _csv(tmp_path / "r.csv", ["a", "b", "y1", "y2"], rows)
    data = load_data(source, {"label_columns": ["y1", "y2"]}, task="regression", val_fraction=0)
    assert data.class_names == ["y1", "y2"] and data.task == "regression"
    assert data.train.y.dtype.is_floating_point and data.train.y.shape[1] == 2
    assert data.preprocess["features"] == ["a", "b"]
    np.testing.assert_allclose(data.train.y[:, 0].numpy(), 2 * data.train.x[:, 0].numpy())


def test_multilabel_from_a_column_of_label_lists(tmp_path):
    rows = [(i, ["sport|news", "news", "tech | sport", "tech"][i % 4]) for i in range(16)]
    source = _csv(tmp_path / "m.csv", ["a", "tags"], rows)
    data = load_data(source, {"label_column": "tags", "label_delimiter": "|"}, task="multilabel", val_fraction=0)
    assert data.class_names == ["news", "sport", "tech"]
    assert set(data.train.y.sum(1).tolist()) <= {1.0, 2.0}


def test_multilabel_from_indicator_columns_and_words(tmp_path):
    rows = [(i, ["1", "0", "true", "no"][i % 4], i % 2) for i in range(16)]
    source = _csv(tmp_path / "m.csv", ["a", "p", "q"], rows)
    data = load_data(source, {"label_columns": ["p", "q"]}, task="multilabel", val_fraction=0)
    assert data.class_names == ["p", "q"] and set(data.test.y.unique().tolist()) <= {0.0, 1.0}


def test_npz_targets_with_names(tmp_path):
    np.savez(
        tmp_path / "d.npz", x=np.ones((30, 3)), y=np.arange(60, dtype=float).reshape(30, 2), label_names=["u", "v"]
    )
    data = load_data(f"npz:{tmp_path / 'd.npz'}", task="regression")
    assert data.class_names == ["u", "v"] and data.train.y.shape[1:] == (2,)


def test_a_missing_regression_value_names_the_line_or_the_example(tmp_path):
    source = _csv(tmp_path / "r.csv", ["a", "y"], [(i, "" if i == 4 else i) for i in range(10)])
    with pytest.raises(DataError, match="column 'y': line 6 has no label"):
        load_data(source, {"label_column": "y"}, task="regression")
    np.savez(tmp_path / "d.npz", x=np.ones((10, 2)), y=np.array([1.0, np.nan] * 5), label_names=["y"])
    with pytest.raises(DataError, match="example 2 has no value for target 'y'"):
        load_data(f"npz:{tmp_path / 'd.npz'}", task="regression")


def test_a_test_label_unseen_in_training_is_refused(tmp_path):
    rows = [(i, "a|b" if i < 8 else "c", "train" if i < 8 else "test") for i in range(10)]
    source = _csv(tmp_path / "m.csv", ["x", "tags", "split"], rows)
    with pytest.raises(DataError, match="label 'c' is not among the training labels"):
        load_data(source, {"label_column": "tags", "label_delimiter": "|", "split_column": "split"}, task="multilabel")

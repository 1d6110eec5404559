"""Data sources and splits."""

import csv

import numpy as np
import pytest
import torch

from protege.data.build import load_data, load_unlabeled
from protege.data.dataset import EpochBatchSampler, batch_loader
from protege.errors import ConfigError, DataError


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_digits_shapes_and_stratified_split():
    data = load_data("digits", val_fraction=0.1, test_fraction=0.25, seed=0)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert sum(data.sizes().values()) == 1797
    assert float(data.train.x.max()) <= 1.0
    train_share = torch.bincount(data.train.y) / len(data.train)
    test_share = torch.bincount(data.test.y) / len(data.test)
    assert (train_share - test_share).abs().max() < 0.02


def test_split_depends_on_seed_only():
    a, b = load_data("digits", seed=3), load_data("digits", seed=3)
    assert torch.equal(a.test.x, b.test.x)
    assert not torch.equal(load_data("digits", seed=4).test.x, a.test.x)


def test_mnist1d_keeps_the_standard_split():
    data = load_data("mnist1d", val_fraction=0.1)
    assert data.sizes() == {"train": 3600, "val": 400, "test": 1000}
    assert data.input_shape == (1, 40)


def test_mnist1d_transfer_set_is_unlabeled_and_new():
    extra = load_unlabeled("mnist1d", {"num_samples": 500, "seed": 1})
    assert len(extra) == 500 and bool((extra.y == -1).all())
    base = load_data("mnist1d", {"num_samples": 500})
    assert not torch.equal(extra.x[:10], base.train.x[:10])


def test_csv_numeric_features_with_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[*rng.normal(size=3).round(3), ["cat", "dog"][i % 2]] for i in range(40)]
    path = _write_csv(tmp_path / "d.csv", ["a", "b", "c", "kind"], rows)
    data = load_data(f"csv:{path}", {"label_column": "kind"}, seed=0)
    assert data.class_names == ["cat", "dog"] and data.input_shape == (3,)


def test_csv_split_column_is_kept(tmp_path):
    rows = [[i, i % 2, ["train", "train", "val", "test"][i % 4]] for i in range(40)]
    path = _write_csv(tmp_path / "d.csv", ["f", "label", "split"], rows)
    data = load_data(f"csv:{path}", {"split_column": "split"})
    assert data.sizes() == {"train": 20, "val": 10, "test": 10}


def test_csv_group_column_follows_the_test_split_and_is_not_a_feature(tmp_path):
    rows = [[i, i * 0.5, i % 2, ["north", "south", "east"][i % 3]] for i in range(60)]
    path = _write_csv(tmp_path / "d.csv", ["f", "g", "label", "region"], rows)
    plain = load_data(f"csv:{path}", {"feature_columns": ["f", "g"]}, seed=3)
    grouped = load_data(f"csv:{path}", {"group_column": "region"}, seed=3)
    assert grouped.input_shape == (2,)
    assert torch.equal(plain.test.x, grouped.test.x)  # carrying groups leaves the split as it was
    expected = [["north", "south", "east"][int(f) % 3] for f in grouped.test.x[:, 0]]
    assert grouped.test_groups == expected
    assert plain.test_groups is None


def test_csv_group_column_with_the_files_own_split(tmp_path):
    rows = [[i, i % 2, ["train", "test"][i % 2 == 0 and i > 30], f"g{i % 4}"] for i in range(40)]
    path = _write_csv(tmp_path / "d.csv", ["f", "label", "split", "grp"], rows)
    data = load_data(f"csv:{path}", {"split_column": "split", "group_column": "grp"})
    assert data.test_groups == [f"g{int(f) % 4}" for f in data.test.x[:, 0]]
    with pytest.raises(DataError, match="no column 'grop'"):
        load_data(f"csv:{path}", {"group_column": "grop"})


def test_csv_text_column_becomes_tfidf_features(tmp_path):
    rows = [["good great fine", "pos"], ["bad awful poor", "neg"]] * 10
    path = _write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    data = load_data(f"csv:{path}", {"text_column": "text"}, val_fraction=0)
    assert data.input_shape == (6,)
    assert "tfidf" in data.preprocess and "good" in data.preprocess["tfidf"]["vocabulary"]


def test_csv_missing_label_column_names_the_columns(tmp_path):
    path = _write_csv(tmp_path / "d.csv", ["a", "target"], [[1, 0], [2, 1]])
    with pytest.raises(DataError, match=r"no column 'label'.*columns: a, target"):
        load_data(f"csv:{path}")


def test_csv_non_numeric_feature_names_line_and_column(tmp_path):
    path = _write_csv(tmp_path / "d.csv", ["a", "label"], [[1, 0], ["x", 1]])
    with pytest.raises(DataError, match=r"line 3, column 'a': 'x' is not a number"):
        load_data(f"csv:{path}")


def test_csv_nan_feature_is_refused(tmp_path):
    path = _write_csv(tmp_path / "d.csv", ["a", "label"], [[1, 0], ["nan", 1]])
    with pytest.raises(DataError, match="nan"):
        load_data(f"csv:{path}")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        load_data(f"csv:{tmp_path / 'nope.csv'}")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_data(f"csv:{tmp_path / 'empty.csv'}")
    (tmp_path / "header.csv").write_text("a,label\n")
    with pytest.raises(DataError, match="no data rows"):
        load_data(f"csv:{tmp_path / 'header.csv'}")


def test_single_class_is_refused(tmp_path):
    path = _write_csv(tmp_path / "d.csv", ["a", "label"], [[i, "only"] for i in range(10)])
    with pytest.raises(DataError, match="only one class"):
        load_data(f"csv:{path}")


def test_npz_with_its_own_test_split(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(
        path, x=rng.normal(size=(50, 4)), y=np.arange(50) % 2, x_test=rng.normal(size=(10, 4)), y_test=np.arange(10) % 2
    )
    data = load_data(f"npz:{path}", val_fraction=0.2)
    assert data.sizes() == {"train": 40, "val": 10, "test": 10}


def test_npz_test_label_outside_the_classes(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((6, 2)), y=np.array(["a", "b"] * 3), x_test=np.zeros((2, 2)), y_test=np.array(["a", "z"]))
    with pytest.raises(DataError, match="test label 'z' is not among the training classes"):
        load_data(f"npz:{path}", val_fraction=0)


def test_npz_refuses_pickled_objects(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(DataError, match="unpickling"):
        load_data(f"npz:{path}")


def test_unknown_source_and_option():
    with pytest.raises(ConfigError, match="unknown data source"):
        load_data("imagenet")
    with pytest.raises(DataError, match='did you mean "num_samples"'):
        load_data("mnist1d", {"num_sample": 10})
    with pytest.raises(DataError, match="needs a path"):
        load_data("csv")


def test_batch_sampler_order_depends_on_seed_and_epoch_and_can_skip():
    sampler = EpochBatchSampler(10, 3, shuffle=True, seed=1)
    sampler.start_epoch(0)
    first = list(sampler)
    assert sorted(i for b in first for i in b) == list(range(10)) and len(first) == 4
    sampler.start_epoch(0, skip_batches=2)
    assert list(sampler) == first[2:]
    sampler.start_epoch(1)
    assert list(sampler) != first


def test_batch_loader_slices_whole_batches():
    data = load_data("digits")
    batch = next(iter(batch_loader(data.train, 32)))
    assert batch["x"].shape == (32, 1, 8, 8) and batch["index"].tolist() == list(range(32))


def test_mixup_transfer_set_is_seeded_and_between_training_inputs():
    from protege.data.transfer import build_transfer_set

    data = load_data("digits")
    a = build_transfer_set("mixup", {"num_samples": 300, "alpha": 0.5}, data, seed=1).for_data(data)
    b = build_transfer_set("mixup", {"num_samples": 300, "alpha": 0.5}, data, seed=1).for_data(data)
    c = build_transfer_set("mixup", {"num_samples": 300, "alpha": 0.5}, data, seed=2).for_data(data)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert a.x.shape == (300, 1, 8, 8) and bool((a.y == -1).all())
    assert float(a.x.min()) >= 0.0 and float(a.x.max()) <= 1.0  # convex combinations of [0, 1] pixels


def test_transfer_set_errors():
    from protege.data.transfer import build_transfer_set

    data = load_data("digits")
    with pytest.raises(DataError, match='did you mean "num_samples"'):
        build_transfer_set("mixup", {"samples": 3}, data, seed=0)
    with pytest.raises(DataError, match="transfer set inputs have shape"):
        build_transfer_set("mnist1d", {"num_samples": 100}, data, seed=0)


def test_a_text_transfer_set_reuses_the_training_vocabulary(tmp_path):
    from protege.data.transfer import build_transfer_set

    rows = ["text,label", "good movie,pos", "great film,pos", "bad movie,neg", "awful plot,neg"] * 5
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "more.csv").write_text("text\ngreat movie\nunseen words only\nbad film\n")  # no label column
    data = load_data(f"csv:{tmp_path / 'train.csv'}", {"text_column": "text"}, val_fraction=0.0, seed=0)
    more = f"csv:{tmp_path / 'more.csv'}"
    extra = build_transfer_set(more, {}, data, seed=0).for_data(data)
    assert extra.x.shape == (3, *data.train.x.shape[1:]) and bool((extra.y == -1).all())
    assert float(extra.x[1].abs().sum()) == 0.0  # words the training texts never had get no feature
    vocabulary = data.preprocess["tfidf"]["vocabulary"]
    assert float(extra.x[0, vocabulary["great"]]) > 0 and float(extra.x[0, vocabulary["movie"]]) > 0


def test_a_transfer_set_from_another_source_is_standardised_like_the_training_data(tmp_path):
    from protege.data.transfer import build_transfer_set

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.normal(5, 2, (60, 3)), y=np.arange(60) % 2)
    np.savez(tmp_path / "more.npz", x=rng.normal(5, 2, (10, 3)), y=np.zeros(10, dtype=int))
    data = load_data(f"npz:{tmp_path / 'train.npz'}", standardize=True, val_fraction=0.0, seed=0)
    extra = build_transfer_set(f"npz:{tmp_path / 'more.npz'}", {}, data, seed=0).for_data(data)
    mean = np.asarray(data.preprocess["standardize"]["mean"])
    std = np.asarray(data.preprocess["standardize"]["std"])
    expected = (np.load(tmp_path / "more.npz")["x"] - mean) / std
    np.testing.assert_allclose(extra.x.numpy(), expected, atol=1e-5)


def test_errors_name_the_real_line_when_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("a,label\n1,x\n\n\n2,y\nfoo,x\n")
    with pytest.raises(DataError, match="line 6, column 'a': 'foo' is not a number"):
        load_data(f"csv:{path}")
    path.write_text("a,label\n1,x\n\n2,y,extra\n")
    with pytest.raises(DataError, match=r"a row has 3 fields, the header has 2 \(line 4\)"):
        load_data(f"csv:{path}")

import pytest
import torch

from protege.data.build import load_data
from protege.errors import ConfigError
from protege.unlearning.config import ForgetConfig
from protege.unlearning.forget_set import example_hashes, forget_positions, split_training


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", seed=0)


def test_rows_survive_the_split_as_ids(digits):
    rows = torch.cat([digits.rows[s] for s in ("train", "val", "test")])
    assert sorted(rows.tolist()) == list(range(1797))  # every source row once, in exactly one split
    raw = load_data("digits", seed=0, val_fraction=0, test_fraction=0.5)
    assert len(raw.rows["train"]) == len(raw.train)


def test_listed_rows_name_their_training_examples(digits):
    wanted = digits.rows["train"][[3, 10]].tolist()
    positions, how = forget_positions(digits, ForgetConfig(rows=wanted), seed=0)
    assert positions.tolist() == [3, 10] and how == "2 listed rows"


def test_a_fraction_and_a_class(digits):
    positions, _ = forget_positions(digits, ForgetConfig(fraction=0.1), seed=0)
    assert len(positions) == round(0.1 * len(digits.train)) and len(set(positions.tolist())) == len(positions)
    positions, how = forget_positions(digits, ForgetConfig.model_validate({"class": "3"}), seed=0)
    assert (digits.train.y[positions] == 3).all() and (digits.train.y == 3).sum() == len(positions)
    split = split_training(digits, positions, how)
    assert len(split.forget) + len(split.retain) == len(digits.train) and not (split.retain.y == 3).any()


def test_rows_outside_the_training_data_are_refused(digits):
    test_row = int(digits.rows["test"][0])
    with pytest.raises(ConfigError, match=f"row {test_row} is in the test split, not the training data"):
        forget_positions(digits, ForgetConfig(rows=[test_row]), seed=0)
    with pytest.raises(ConfigError, match="row 5000 is not in the data \\(1797 rows"):
        forget_positions(digits, ForgetConfig(rows=[5000]), seed=0)


def test_a_rows_file_is_one_integer_per_line(tmp_path, digits):
    good = tmp_path / "rows.txt"
    good.write_text(f"# to forget\n{int(digits.rows['train'][0])}\n\n{int(digits.rows['train'][1])}  # two\n")
    positions, _ = forget_positions(digits, ForgetConfig(file=str(good)), seed=0)
    assert positions.tolist() == [0, 1]
    bad = tmp_path / "bad.txt"
    bad.write_text("12\nseven\n")
    with pytest.raises(ConfigError, match="line 2: 'seven' is not a row number"):
        forget_positions(digits, ForgetConfig(file=str(bad)), seed=0)


def test_one_way_to_name_the_examples():
    with pytest.raises(ValueError, match="exactly one of fraction, class, rows or file"):
        ForgetConfig(fraction=0.1, rows=[1])


def test_hashes_name_examples_without_their_content(digits):
    split = split_training(digits, torch.tensor([0, 1]), "two")
    hashes = example_hashes(split.forget)
    assert len(hashes) == 2 and all(len(h) == 64 for h in hashes) and hashes[0] != hashes[1]
    assert example_hashes(split.forget) == hashes  # the same content, the same hash

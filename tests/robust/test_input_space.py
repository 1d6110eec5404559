"""The input space: the data's range and standardisation, token ids refused, budgets that fit the range."""

import pytest
import torch

from protege.data.build import load_data
from protege.data.dataset import ArrayDataset, DataBundle
from protege.errors import DataError
from protege.robust.space import check_budget, input_space


def _bundle(train: torch.Tensor, test: torch.Tensor) -> DataBundle:
    labels = lambda x: torch.zeros(len(x), dtype=torch.long)  # noqa: E731
    return DataBundle(ArrayDataset(train, labels(train)), ArrayDataset(test, labels(test)), None, ["a"], "t")


def test_standardised_digits_map_back_to_pixels():
    data = load_data("digits", standardize=True, seed=0)
    space = input_space(data, (0.0, 1.0))
    raw = space.to_raw(data.test.x)
    assert raw.min() > -1e-5 and raw.max() < 1 + 1e-5
    assert torch.allclose(space.to_model(raw), data.test.x, atol=1e-4)
    assert space.describe() == {"input_range": [0.0, 1.0], "standardized": True, "units": "raw"}


def test_the_data_range_covers_every_split():
    space = input_space(_bundle(torch.tensor([[0.0, 2.0]]), torch.tensor([[-1.0, 3.0]])), "data")
    assert (space.low, space.high, space.mean) == (-1.0, 3.0, None)
    with pytest.raises(DataError, match="the test inputs reach 3"):
        input_space(_bundle(torch.tensor([[0.0, 2.0]]), torch.tensor([[-0.0, 3.0]])), (0.0, 2.0))
    with pytest.raises(DataError, match="there is no range to attack in"):
        input_space(_bundle(torch.ones(2, 2), torch.ones(1, 2)), "data")


def test_token_ids_cannot_be_attacked():
    ids = torch.tensor([[101, 7, 102]])
    with pytest.raises(DataError, match="the inputs are token ids"):
        input_space(_bundle(ids, ids), "data")


def test_a_budget_must_be_smaller_than_the_range():
    space = input_space(_bundle(torch.tensor([[0.0, 2.0]]), torch.tensor([[0.0, 2.0]])), "data")
    check_budget(space, "linf", 1.99, (4,), "robust.epsilon")
    with pytest.raises(DataError, match="an L∞ budget must be smaller than the range's width"):
        check_budget(space, "linf", 2.0, (4,), "robust.epsilon")
    check_budget(space, "l2", 3.99, (4,), "robust.epsilon")  # the box's diagonal: 2 · √4 = 4
    with pytest.raises(DataError, match=r"the diagonal of the input box \(4 = 2 · √4\)"):
        check_budget(space, "l2", 4.0, (4,), "robust.epsilon")

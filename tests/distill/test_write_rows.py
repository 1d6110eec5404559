"""The teacher cache's row writer and input choice: rows of a batch land at the batch's example indices,
whether they are consecutive (a slice) or not (texts grouped by length), in a tensor or a memory map; a
batch that carries the teacher's own view is read in that view."""

import numpy as np
import pytest
import torch

from protege.data.views import TEACHER_INPUTS
from protege.distill.teacher import _write_rows, teacher_inputs


@pytest.mark.parametrize("index", [[2, 3, 4], [5, 1, 3], [0, 1, 2], [4, 2, 3]], ids=str)
@pytest.mark.parametrize("kind", ["tensor", "memmap"])
def test_rows_land_at_the_batch_indices(tmp_path, index, kind):
    value = torch.arange(6.0).view(3, 2) + 1
    if kind == "tensor":
        table = torch.zeros(6, 2)
    else:
        table = np.memmap(tmp_path / "t.f32", dtype=np.float32, mode="w+", shape=(6, 2))
    _write_rows(table, torch.tensor(index), value)
    expected = np.zeros((6, 2), dtype=np.float32)
    expected[index] = value.numpy()
    np.testing.assert_array_equal(np.asarray(table), expected)


def test_the_teacher_reads_its_own_view_when_the_batch_carries_it():
    x, own = torch.zeros(2, 3), torch.ones(2, 5)
    assert teacher_inputs({"x": x, TEACHER_INPUTS: own}) is own
    assert teacher_inputs({"x": x}) is x

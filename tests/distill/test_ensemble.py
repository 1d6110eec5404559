"""Several teachers: the ensemble's soft targets are the weighted mean of each teacher's."""

import pytest
import torch

from protege.distill.ensemble import EnsembleTeacher
from protege.models.builtin import cnn1d, mlp


def test_softmax_at_t_of_the_ensemble_is_the_weighted_mean_of_soft_targets():
    torch.manual_seed(0)
    teachers = [mlp((8,), 3, hidden=5), cnn1d((8,), 3, width=4, depth=1)]  # architectures may differ
    ensemble = EnsembleTeacher(teachers, weights=[3.0, 1.0], temperature=4.0)
    x = torch.randn(5, 8)
    expected = 0.75 * torch.softmax(teachers[0](x) / 4, -1) + 0.25 * torch.softmax(teachers[1](x) / 4, -1)
    torch.testing.assert_close(torch.softmax(ensemble(x) / 4, -1), expected)


def test_equal_weights_by_default_and_bad_weights_refused():
    torch.manual_seed(0)
    a, b = mlp((4,), 2), mlp((4,), 2)
    x = torch.randn(3, 4)
    mean = (torch.softmax(a(x), -1) + torch.softmax(b(x), -1)) / 2
    torch.testing.assert_close(torch.softmax(EnsembleTeacher([a, b])(x), -1), mean)
    with pytest.raises(ValueError, match="one positive weight per teacher"):
        EnsembleTeacher([a, b], weights=[1.0])
    with pytest.raises(ValueError, match="at least two"):
        EnsembleTeacher([a])

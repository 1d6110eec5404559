"""The gradient reversal layer and the schedule of its weight (Ganin et al. 2016)."""

import math

import pytest
import torch

from protege.adaptation.grl import reversal_weight, reverse_gradient


def test_reversal_is_the_identity_forward_and_flips_the_gradient_by_minus_lambda():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.25, -0.5, -0.75]))


def test_the_weight_follows_two_over_one_plus_exp_minus_ten_p_minus_one():
    assert reversal_weight(0.0) == 0.0
    assert reversal_weight(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.9866
    assert reversal_weight(1.0) == pytest.approx(0.9999092, abs=1e-7)
    assert reversal_weight(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)  # 0.4621
    assert reversal_weight(0.5, gamma=1.0, high=0.1) == pytest.approx(0.1 * (2 / (1 + math.exp(-0.5)) - 1))
    assert reversal_weight(-1.0) == 0.0 and reversal_weight(2.0) == reversal_weight(1.0)  # progress is clamped

import torch
from torch import nn
from torch.nn import functional as F

from protege.continual.importance import fisher_diagonal, mas_importance
from protege.data.dataset import ArrayDataset


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _data():
    torch.manual_seed(1)
    return ArrayDataset(torch.randn(7, 3), torch.tensor([0, 1, 1, 0, 1, 0, 0]))


def _reference(model, data, loss_of, reduce):
    """One backward per example, the way the papers write it."""
    totals = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for x, y in zip(data.x, data.y, strict=True):
        model.zero_grad()
        loss_of(model(x.unsqueeze(0)), y.unsqueeze(0)).backward()
        for n, p in model.named_parameters():
            totals[n] += reduce(p.grad)
    return {n: t / len(data) for n, t in totals.items()}


def test_fisher_is_the_mean_squared_per_example_gradient():
    model, data = _model(), _data()
    expected = _reference(model, data, F.cross_entropy, torch.square)
    got = fisher_diagonal(model, data, batch_size=3)  # batches that do not divide the data
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value)


def test_mas_is_the_mean_absolute_gradient_of_the_squared_output_norm():
    model, data = _model(), _data()
    expected = _reference(model, data, lambda out, _y: out.pow(2).sum(), torch.abs)
    got = mas_importance(model, data)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value)

"""AdaBN re-estimates BatchNorm running statistics on the target and changes nothing else."""

import pytest
import torch

from protege.adaptation.adabn import adapt_batchnorm, require_batchnorm
from protege.errors import ConfigError
from protege.models.builtin import cnn2d, mlp


def test_only_the_batchnorm_statistics_change_and_become_the_targets():
    torch.manual_seed(0)
    model = cnn2d((1, 8, 8), 3, width=4, depth=1)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = 3.0 + 2.0 * torch.randn(64, 1, 8, 8)
    adapt_batchnorm(model, target, batch_size=64)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"}
    assert model.training and model.features[1].momentum == 0.1  # modes and momentum come back
    conv = model.features[0](target)
    assert torch.allclose(after["features.1.running_mean"], conv.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(after["features.1.running_var"], conv.var((0, 2, 3), unbiased=True), rtol=1e-4)


def test_the_statistics_are_a_cumulative_average_over_batches():
    torch.manual_seed(0)
    model = cnn2d((1, 8, 8), 3, width=4, depth=1)
    target = torch.randn(64, 1, 8, 8)
    adapt_batchnorm(model, target, batch_size=16)
    means = torch.stack([model.features[0](target[i : i + 16]).mean((0, 2, 3)) for i in range(0, 64, 16)])
    assert torch.allclose(model.features[1].running_mean, means.mean(0), atol=1e-5)


def test_a_model_without_batchnorm_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="has no BatchNorm layer"):
        require_batchnorm(mlp((1, 8, 8), 3, hidden=4), "mlp")

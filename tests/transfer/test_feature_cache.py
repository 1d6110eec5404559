"""A linear probe on cached backbone features gives the result of the probe that runs the backbone every step."""

import torch
from torch.utils.data import DataLoader, TensorDataset

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset
from protege.engine import fit
from protege.models.builtin import resnet
from protege.objectives import build_objective
from protege.transfer import build_strategy
from protege.transfer.feature_cache import cache_refusal


def _images(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return ArrayDataset(torch.randn(n, 3, 8, 8, generator=g) + y[:, None, None, None].float(), y)


def _probe(cache: bool, train, val, tmp_path=None):
    torch.manual_seed(0)
    model = resnet((3, 8, 8), 3, width=4, blocks=[1, 1], dropout=0.2)
    config = TrainConfig(epochs=3, batch_size=16, lr=0.05)
    strategy = build_strategy("linear_probe", {"cache_features": cache})
    ce = build_objective([("ce", {}, 1.0)])
    return fit(model, train, ce, config, val=val, seed=1, strategy=strategy, workdir=tmp_path)


def test_cached_probe_matches_the_online_probe(tmp_path):
    train, val = _images(64, 0), _images(24, 1)
    online = _probe(False, train, val)
    cached = _probe(True, train, val, tmp_path)
    for a, b in zip(online.history, cached.history, strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-5
        assert a["val_accuracy"] == b["val_accuracy"]
    for (name, p), q in zip(online.model.state_dict().items(), cached.model.state_dict().values(), strict=True):
        assert torch.allclose(p, q, atol=1e-5), name
    assert (tmp_path / "checkpoints" / "latest").is_file()


def _refusal_inputs():
    """In-memory data, the same examples as a plain DataLoader (inputs that may change), a model that can cache."""
    train = _images(32, 0)
    loader = DataLoader(TensorDataset(train.x, train.y), batch_size=16)
    return train, loader, resnet((3, 8, 8), 3, width=4, blocks=[1])


def test_data_that_may_change_runs_the_backbone_online():
    train, loader, model = _refusal_inputs()
    assert cache_refusal(model, loader, None, False, False).startswith("the data is not an in-memory")
    assert cache_refusal(model, train, None, True, False) == "the objective needs a teacher"
    assert cache_refusal(torch.nn.Linear(3, 3), train, None, False, False).startswith("the model has no")
    assert cache_refusal(model, train, train, False, False) is None
    result = _probe(True, loader, None)
    assert len(result.history) == 3


def test_each_reason_to_run_the_backbone_online_is_named():
    train, loader, model = _refusal_inputs()
    assert cache_refusal(model, train, loader, False, False).startswith("the data is not an in-memory")
    assert cache_refusal(model, train, None, False, True) == "the objective reads inner layers"
    assert cache_refusal(model, train, None, False, False) is None

    class FeaturesOnly(torch.nn.Module):
        def forward_features(self, x):
            return x

    assert cache_refusal(FeaturesOnly(), train, None, False, False) == "the model has no forward_features/forward_head"

    class Changing(TensorDataset):
        changes = "the training inputs are augmented each epoch"

    changing = Changing(train.x, train.y)
    assert cache_refusal(model, changing, None, False, False) == "the training inputs are augmented each epoch"


def test_features_come_back_in_the_datasets_order_with_its_targets_and_mask():
    from protege.transfer.feature_cache import compute_features

    model = resnet((3, 8, 8), 3, width=4, blocks=[1]).eval()
    data = ArrayDataset(_images(40, 3).x, torch.arange(40) % 3, torch.arange(40) % 4 != 0)
    features = compute_features(model, data, torch.device("cpu"), batch_size=16)
    with torch.no_grad():
        expected = model.forward_features(data.x)
    assert torch.allclose(features.x, expected, atol=1e-6)
    assert torch.equal(features.y, data.y) and torch.equal(features.labeled, data.labeled)

"""The Python API on a user's own modules and data."""

import torch
from tests.conftest import make_blobs
from torch import nn

import protege


class UserNet(nn.Module):
    """A model protege has never seen: no forward_features, no head attribute."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, width), nn.Tanh(), nn.Linear(width, 3))

    def forward(self, x):
        return self.body(x)


def test_train_a_user_module_on_a_user_dataloader():
    data = make_blobs(96)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.x, data.y), batch_size=16, shuffle=True)
    torch.manual_seed(0)
    result = protege.train(
        UserNet(), loader, val_data=(make_blobs(30, seed=1).x, make_blobs(30, seed=1).y), epochs=5, lr=0.02
    )
    assert isinstance(result.model, UserNet)
    assert result.metrics["val_accuracy"] > 0.9 and len(result.history) == 5


def test_train_on_a_bundle_reports_test_metrics(blobs):
    result = protege.train(UserNet(), blobs, epochs=3, lr=0.02)
    assert {"test_accuracy", "test_nll"} <= set(result.metrics)


def test_distill_with_a_transfer_set(blobs):
    torch.manual_seed(0)
    teacher = protege.train(UserNet(64), blobs, epochs=5, lr=0.02).model
    transfer = make_blobs(200, seed=9).x
    result = protege.distill(
        teacher, UserNet(4), blobs, transfer=transfer, temperature=2.0, alpha=0.5, epochs=10, lr=0.05
    )
    assert result.teacher_mode == "cached (memory)"
    assert {"test_accuracy", "test_agreement", "test_kl_to_teacher"} <= set(result.metrics)
    assert result.metrics["test_agreement"] > 0.8


def test_distill_writes_checkpoints_when_given_a_directory(blobs, tmp_path):
    teacher = protege.train(UserNet(), blobs, epochs=1).model
    protege.distill(teacher, UserNet(4), blobs, epochs=2, output_dir=tmp_path)
    assert (tmp_path / "checkpoints" / "latest").is_file()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_bad_training_option_is_a_protege_error(blobs):
    import pytest

    with pytest.raises(protege.ProtegeError, match='lrr: unknown field \\(did you mean "lr"\\?\\)'):
        protege.train(UserNet(), blobs, lrr=0.1)


def test_train_with_a_strategy_on_a_user_module():
    torch.manual_seed(0)
    model = UserNet()
    first = model.body[0].weight.detach().clone()
    result = protege.train(
        model,
        make_blobs(96),
        epochs=3,
        lr=0.05,
        strategy="linear_probe",
        strategy_options={"head": "body.2"},
    )
    assert torch.equal(result.model.body[0].weight, first)  # the backbone stayed frozen
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]

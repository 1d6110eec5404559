"""Files a user hands over are never unpickled: a malicious pickle is refused and does not run."""

import pickle

import pytest
from tests.conftest import make_blobs

from protege.config import TrainConfig
from protege.engine import fit
from protege.errors import CheckpointError
from protege.models import build_model, save_model
from protege.objectives import build_objective


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_weights_are_refused_without_running_them(tmp_path):
    built = build_model("mlp", {"hidden": 4}, (6,), ["a", "b", "c"])
    save_model(built.module, built.card, tmp_path / "model")
    marker = tmp_path / "pwned"
    (tmp_path / "model" / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="cannot read weights"):
        build_model(f"run:{tmp_path}", {}, (6,), ["a", "b", "c"])
    assert not marker.exists()


def test_pickled_training_state_is_refused_without_running_it(tmp_path):
    config = TrainConfig(epochs=1, batch_size=16)
    model = build_model("mlp", {"hidden": 4}, (6,), ["a", "b", "c"]).module
    fit(model, make_blobs(48), build_objective([("ce", {}, 1.0)]), config, workdir=tmp_path)
    latest = (tmp_path / "checkpoints" / "latest").read_text()
    marker = tmp_path / "pwned"
    import torch

    torch.save({"optimizer": _Payload(marker)}, tmp_path / "checkpoints" / latest / "trainer.pt")
    with pytest.raises(CheckpointError, match="unreadable"):
        fit(model, make_blobs(48), build_objective([("ce", {}, 1.0)]), config, workdir=tmp_path, resume=True)
    assert not marker.exists()

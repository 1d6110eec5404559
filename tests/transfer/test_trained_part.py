"""A linear probe's head saved alone and reloaded onto the pretrained backbone gives the same metrics."""

from pathlib import Path

import pytest
import torch
from tests.conftest import make_blobs

from protege.config import TrainConfig
from protege.engine import fit
from protege.errors import CheckpointError
from protege.evaluate import predict_logits, quality
from protege.models.builtin import mlp
from protege.objectives import build_objective
from protege.transfer import build_strategy, load_trained_part, save_trained_part


def _pretrained():
    torch.manual_seed(0)
    return mlp((6,), 3, hidden=[8])


def test_head_round_trips_exactly(tmp_path):
    strategy = build_strategy("linear_probe", {})
    config = TrainConfig(epochs=3, batch_size=16, lr=0.05)
    result = fit(_pretrained(), make_blobs(48), build_objective([("ce", {}, 1.0)]), config, strategy=strategy)
    path = save_trained_part(strategy, result.model, tmp_path)
    assert path.name == "head.safetensors"
    reloaded = load_trained_part(_pretrained(), path)
    test = make_blobs(30, seed=4)
    assert quality(predict_logits(reloaded, test), test.y) == quality(predict_logits(result.model, test), test.y)
    assert torch.equal(predict_logits(reloaded, test), predict_logits(result.model, test))


def test_a_head_that_does_not_fit_is_a_checkpoint_error(tmp_path):
    strategy = build_strategy("linear_probe", {})
    strategy.prepare(_pretrained())
    path = save_trained_part(strategy, _pretrained(), tmp_path)
    with pytest.raises(CheckpointError, match="does not fit the head 'head'"):
        load_trained_part(mlp((6,), 5, hidden=[8]), path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_trained_part(_pretrained(), tmp_path / "junk.safetensors")


def test_strategies_that_train_everything_save_no_separate_part(tmp_path):
    strategy = build_strategy("finetune", {})
    strategy.prepare(_pretrained())
    assert save_trained_part(strategy, _pretrained(), tmp_path) is None


def _saved_head(tmp_path, directory=None):
    strategy = build_strategy("linear_probe", {})
    strategy.prepare(_pretrained())
    return save_trained_part(strategy, _pretrained(), directory or tmp_path)


def test_the_part_is_written_into_new_folders_through_a_hidden_temporary_file_beside_it(tmp_path, monkeypatch):
    from protege.transfer import trained_part as module

    written = []
    real = module.save_file

    def spy(tensors, path, metadata=None):
        written.append(path)
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(module, "save_file", spy)
    path = _saved_head(tmp_path, tmp_path / "runs" / "a" / "model")
    assert path == tmp_path / "runs" / "a" / "model" / "head.safetensors" and path.is_file()
    (temporary,) = written
    temporary = Path(temporary)
    assert temporary.parent == path.parent and temporary.name.startswith(".head.safetensors.")
    assert temporary.name.endswith(".tmp") and not temporary.exists()


def test_a_crash_while_writing_leaves_nothing_and_raises_the_crash(tmp_path, monkeypatch):
    from protege.transfer import trained_part as module

    def crash(tensors, path, metadata=None):
        raise OSError("disk full")

    monkeypatch.setattr(module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        _saved_head(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_safetensors_file_that_protege_did_not_write_is_named_as_such(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match=r"plain.safetensors is not a protege head or adapter file$"):
        load_trained_part(_pretrained(), tmp_path / "plain.safetensors")


def test_a_head_that_does_not_fit_names_the_mismatch(tmp_path):
    path = _saved_head(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        load_trained_part(mlp((6,), 5, hidden=[8]), path)
    assert str(caught.value) == (
        f"{path} does not fit the head 'head': size mismatch for bias: copying a param with shape "
        "torch.Size([3]) from checkpoint, the shape in current model is torch.Size([5])."
    )

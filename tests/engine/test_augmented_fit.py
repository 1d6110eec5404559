"""Training under train.augment: only the training batches change, a distilling stage's teacher reads the
very batch the student reads (function matching), streamed folders are augmented in their workers, and
an interrupted run resumes on the same draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.interrupt import StepCounter, Stop
from torch import nn

import protege.engine.loop as loop
import protege.engine.run as engine_run
from protege.config import TrainConfig
from protege.data.augmented import AugmentedDataset
from protege.data.build import load_data
from protege.data.dataset import ArrayDataset, batch_loader
from protege.engine import fit
from protege.objectives import build_objective

AUGMENT = ["random_resized_crop", "horizontal_flip", {"name": "mixup", "alpha": 0.4, "cutmix_alpha": 1.0}]


class Recorder(nn.Module):
    """A linear classifier that keeps every input it is given, apart by training and eval mode."""

    def __init__(self, shape=(3, 8, 8), classes: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), classes))
        self.seen: dict[bool, list[torch.Tensor]] = {True: [], False: []}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen[self.training].append(x.detach().clone())
        return self.net(x)


def _images(n: int, seed: int) -> ArrayDataset:
    return ArrayDataset(torch.rand((n, 3, 8, 8), generator=torch.Generator().manual_seed(seed)), torch.arange(n) % 3)


def _config(**changes) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 8, "augment": AUGMENT, "checkpoint_seconds": 0, **changes})


def test_only_training_batches_are_augmented_never_the_validation_split():
    train, val = _images(24, 0), _images(10, 1)
    model = Recorder()
    fit(model, train, build_objective([("ce", {}, 1.0)]), _config(), val=val, num_classes=3)
    validation = model.seen[False]
    assert len(validation) == 2  # one batch per epoch, each the validation split as it is
    assert all(torch.equal(batch, val.x) for batch in validation)
    trained = torch.cat(model.seen[True])
    assert trained.shape == (48, 3, 8, 8)
    assert not any(torch.equal(row, original) for row in trained[:8] for original in train.x)


def test_a_distilling_stage_runs_its_teacher_online_on_the_augmented_batch(monkeypatch):
    messages, batches = [], []
    monkeypatch.setattr(engine_run, "log", messages.append)
    real_step = loop.train_step
    monkeypatch.setattr(loop, "train_step", lambda run, batch: batches.append(batch) or real_step(run, batch))
    train = _images(24, 0)
    teacher = Recorder().eval()
    result = fit(Recorder(), train, build_objective([("kd", {}, 1.0)]), _config(), teacher=teacher,
                 teacher_cache="memory", num_classes=3)  # fmt: skip
    assert result.teacher_mode == "online"
    assert any("teacher online: train.augment draws new inputs every epoch" in m for m in messages), "\n".join(messages)
    assert len(batches) == 6
    with torch.no_grad():
        for batch in batches:
            torch.testing.assert_close(batch["teacher_logits"], teacher.net(batch["x"]))
            assert not torch.equal(batch["x"], train.x[batch["index"]])  # the teacher saw the augmented inputs
            torch.testing.assert_close(batch["y"].sum(-1), torch.ones(len(batch["y"])))


def _folder(tmp_path, n: int = 24):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        (tmp_path / "images" / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
            tmp_path / "images" / f"c{i % 3}" / f"{i}.png"
        )
    return f"imagefolder:{tmp_path / 'images'}"


@pytest.mark.slow
def test_streamed_images_are_augmented_in_the_workers_as_in_the_training_process(tmp_path):
    from protege.data.train_augmentation import augmented_train_set

    source, entries = _folder(tmp_path), _config().augment
    batches = {}
    for workers in (0, 1):
        data = load_data(source, {"load": "stream", "num_workers": workers}, val_fraction=0, test_fraction=0.2)
        augmented = augmented_train_set(data.train, entries, 0, 3, "classification")
        assert isinstance(augmented, AugmentedDataset) and augmented.num_workers == workers
        loader = batch_loader(augmented, 5, shuffle=True, seed=1)
        loader.batch_sampler.start_epoch(1)
        batches[workers] = list(loader)
    plain = load_data(source, {"load": "stream", "num_workers": 0}, val_fraction=0, test_fraction=0.2).train
    for a, b in zip(batches[0], batches[1], strict=True):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
        assert not torch.equal(a["x"], plain.__getitems__(a["index"].tolist())["x"])


def test_an_interrupted_augmented_run_resumes_to_the_same_metrics(tmp_path, monkeypatch):
    train, val = _images(40, 0), _images(10, 1)
    config = _config(epochs=3, checkpoint_every=2)
    calls = StepCounter(monkeypatch)

    def run(folder, resume=False):
        torch.manual_seed(0)
        model = Recorder()
        return fit(model, train, build_objective([("ce", {}, 1.0)]), config, val=val, num_classes=3,
                   workdir=tmp_path / folder, resume=resume)  # fmt: skip

    whole = run("whole")
    calls.reset(stop_at=8)  # in the second epoch, after the checkpoint of step 6
    with pytest.raises(Stop):
        run("cut")
    calls.reset()
    resumed = run("cut", resume=True)
    assert calls.n == 15 - 6
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in whole.history]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history] == strip


def test_the_python_api_takes_augment_as_a_training_option():
    import protege
    from protege.errors import ConfigError
    from protege.models.builtin import mlp

    result = protege.train(mlp((1, 8, 8), 10, hidden=8), "digits", epochs=1, augment=["gaussian_noise", "mixup"])
    assert 0 <= result.metrics["test_accuracy"] <= 1
    x, y = torch.rand(16, 4), torch.arange(16) % 2
    with pytest.raises(ConfigError, match="mixup needs the number of classes: give the data as a DataBundle"):
        protege.train(mlp((4,), 2, hidden=4), (x, y), epochs=1, augment=["mixup"])

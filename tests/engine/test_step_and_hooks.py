"""The seams of the loop: a step that owns the forward (two forwards per batch with R-Drop), hooks at
their named moments in order, and a hook's state carried through a checkpoint so resume stays exact."""

import pytest
import torch
from tests.conftest import make_blobs
from torch.nn import functional as F

from protege.averaging import WeightAverage
from protege.config import TrainConfig
from protege.engine import RDropStep, StepResult, fit
from protege.hooks import Hook
from protege.models.builtin import mlp
from protege.objectives import build_objective


def _model(seed=0, dropout=0.3):
    torch.manual_seed(seed)
    return mlp((6,), 3, hidden=16, dropout=dropout)


class _Counting(torch.nn.Module):
    """Wraps a model and counts its forward calls."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x):
        self.calls += 1
        return self.model(x)


def test_rdrop_runs_two_forwards_per_batch_and_matches_its_equation():
    step = RDropStep(alpha=0.7)
    model = _Counting(_model())
    model.train()
    batch = {"x": torch.randn(8, 6), "y": torch.tensor([0, 1, 2, 0, 1, 2, -1, -1])}
    torch.manual_seed(3)
    result = step(model, batch, run=None)
    assert model.calls == 2 and isinstance(result, StepResult)
    torch.manual_seed(3)  # the same two dropout masks, by hand
    first, second = model.model(batch["x"]), model.model(batch["x"])
    labeled = batch["y"] >= 0
    ce = 0.5 * (
        F.cross_entropy(first[labeled], batch["y"][labeled]) + F.cross_entropy(second[labeled], batch["y"][labeled])
    )
    p, q = first.softmax(-1), second.softmax(-1)
    kl = 0.5 * ((p * (p.log() - q.log())).sum(-1).mean() + (q * (q.log() - p.log())).sum(-1).mean())
    torch.testing.assert_close(result.terms["ce"], ce)
    torch.testing.assert_close(result.terms["rdrop"], 0.7 * kl)


def test_a_second_step_trains_through_the_same_loop():
    data, val = make_blobs(96), make_blobs(30, seed=2)
    counted = _Counting(_model())
    config = TrainConfig(epochs=6, batch_size=16, lr=0.02)
    result = fit(counted, data, RDropStep(alpha=1.0), config, val=val)
    assert counted.calls >= 2 * 6 * 6  # two forwards for each of the 6 batches of 6 epochs (plus validation)
    assert {"train_ce", "train_rdrop"} <= set(result.final) and result.final["val_accuracy"] > 0.9


class _Recorder(Hook):
    """Writes down each moment it is called at."""

    name = "recorder"

    def __init__(self):
        self.moments = []

    def setup(self, run):
        self.moments.append("setup")

    def on_epoch_start(self, run):
        self.moments.append(f"epoch_start {run.state.epoch}")

    def loss_terms(self, run, batch, result):
        self.moments.append("loss_terms")
        return {"zero": result.outputs.sum() * 0.0}

    def after_optimizer_step(self, run):
        self.moments.append("step")

    def on_epoch_end(self, run, record):
        self.moments.append(f"epoch_end {record['epoch']}")

    def finish(self, run, model):
        self.moments.append("finish")
        return model


def test_hooks_are_called_at_their_moments_in_order():
    recorder = _Recorder()
    config = TrainConfig(epochs=2, batch_size=24)
    result = fit(_model(), make_blobs(48), build_objective([("ce", {}, 1.0)]), config, hooks=[recorder])
    per_epoch = ["loss_terms", "step"] * 2
    assert recorder.moments == [
        "setup", "epoch_start 0", *per_epoch, "epoch_end 1", "epoch_start 1", *per_epoch, "epoch_end 2", "finish",
    ]  # fmt: skip
    assert "train_zero" in result.final  # a hook's loss term is summed and logged like the step's


class _Stop(Hook):
    """Raises after a number of optimizer steps, as a kill would."""

    name = "stop"

    def __init__(self, after):
        self.after, self.steps = after, 0

    def after_optimizer_step(self, run):
        self.steps += 1
        if self.steps > self.after:
            raise KeyboardInterrupt


def test_a_hooks_state_is_checkpointed_and_resumes_exactly(tmp_path):
    data = make_blobs(96)
    config = TrainConfig(epochs=3, batch_size=16, checkpoint_every=4, lr=0.02)
    ce = lambda: build_objective([("ce", {}, 1.0)])  # noqa: E731
    whole = WeightAverage(decay=0.9)
    fit(_model(), data, ce(), config, seed=1, workdir=tmp_path / "a", hooks=[whole])
    killed = WeightAverage(decay=0.9)
    with pytest.raises(KeyboardInterrupt):
        fit(_model(), data, ce(), config, seed=1, workdir=tmp_path / "b", hooks=[killed, _Stop(after=9)])
    resumed = WeightAverage(decay=0.9)
    result = fit(_model(seed=5), data, ce(), config, seed=1, workdir=tmp_path / "b", resume=True, hooks=[resumed])
    assert resumed.updates == whole.updates == 18
    for key, value in whole.average.items():
        torch.testing.assert_close(resumed.average[key], value, rtol=0, atol=0)
    torch.testing.assert_close(result.model.state_dict()["head.weight"], whole.average["head.weight"], rtol=0, atol=0)


def test_the_weight_average_follows_its_equation():
    model = _model(dropout=0.0)
    average = WeightAverage(decay=0.5, swap_at_end=False)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(epochs=1, batch_size=48, optimizer="sgd", momentum=0, weight_decay=0, lr=0.1)
    result = fit(model, make_blobs(48), build_objective([("ce", {}, 1.0)]), config, hooks=[average])
    for key, value in result.model.state_dict().items():  # one step: w_ema = 0.5 w0 + 0.5 w1
        torch.testing.assert_close(average.average[key], 0.5 * start[key] + 0.5 * value)

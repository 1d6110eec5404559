"""The training loop: determinism, resume, early stopping, accumulation, schedules, errors."""

import json
import math

import pytest
import torch
from tests.conftest import make_blobs

from protege.config import TrainConfig
from protege.engine import TrainingError, fit
from protege.errors import ProtegeError
from protege.models.builtin import mlp
from protege.objectives import Objective, build_objective
from protege.schedules import build_scheduler


def _ce():
    return build_objective([("ce", {}, 1.0)])


def _model(seed=0):
    torch.manual_seed(seed)
    return mlp((6,), 3, hidden=8, dropout=0.1)


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_same_seed_same_metrics():
    data, val = make_blobs(96), make_blobs(30, seed=2)
    config = TrainConfig(epochs=3, batch_size=16, lr=0.01)
    a = fit(_model(), data, _ce(), config, val=val, seed=7)
    b = fit(_model(), data, _ce(), config, val=val, seed=7)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    assert all(torch.equal(p, q) for p, q in zip(_weights(a.model), _weights(b.model), strict=True))


def test_training_learns_the_task():
    result = fit(_model(), make_blobs(96), _ce(), TrainConfig(epochs=8, batch_size=16, lr=0.02), val=make_blobs(30))
    assert result.final["val_accuracy"] > 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


class _Crash(Objective):
    """Cross-entropy that raises after a number of calls, as a kill in the middle of an epoch would."""

    def __init__(self, after: int):
        super().__init__()
        self.inner, self.calls, self.after = _ce(), 0, after

    def forward(self, out):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return self.inner(out)


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path):
    data, val = make_blobs(96), make_blobs(30, seed=2)
    config = TrainConfig(epochs=4, batch_size=16, lr=0.01, checkpoint_every=4, schedule="cosine", warmup_epochs=1)
    whole = fit(
        _model(), data, _ce(), config, val=val, seed=3, workdir=tmp_path / "a", metrics_path=tmp_path / "a.jsonl"
    )

    # 6 steps per epoch: crash in epoch 2 (step 10), after the checkpoint at step 8
    with pytest.raises(KeyboardInterrupt):
        fit(
            _model(),
            data,
            _Crash(after=10),
            config,
            val=val,
            seed=3,
            workdir=tmp_path / "b",
            metrics_path=tmp_path / "b.jsonl",
        )
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text().startswith("step-00000008")
    resumed = fit(
        _model(seed=99),
        data,
        _ce(),
        config,
        val=val,
        seed=3,
        workdir=tmp_path / "b",
        resume=True,
        metrics_path=tmp_path / "b.jsonl",
    )

    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history)
    for p, q in zip(_weights(whole.model), _weights(resumed.model), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    lines = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    result = fit(_model(), make_blobs(48), _ce(), TrainConfig(epochs=1), workdir=tmp_path, resume=True)
    assert len(result.history) == 1


def test_checkpoints_are_pruned_and_atomic(tmp_path):
    config = TrainConfig(epochs=5, batch_size=16, keep_checkpoints=2, checkpoint_seconds=0)
    fit(_model(), make_blobs(96), _ce(), config, workdir=tmp_path)
    saved = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert len(saved) == 2
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    assert (tmp_path / "checkpoints" / "latest").read_text() == saved[-1]


def test_early_stopping_stops_after_patience():
    config = TrainConfig(epochs=20, lr=1e-12, patience=2, schedule="constant")
    result = fit(_model(), make_blobs(48), _ce(), config, val=make_blobs(30, seed=1))
    assert result.stopped_early
    assert len(result.history) == 3


def test_restore_best_returns_the_best_epoch_weights(tmp_path):
    config = TrainConfig(epochs=6, batch_size=16, lr=0.05, restore_best=True)
    val = make_blobs(30, seed=4)
    result = fit(_model(), make_blobs(96), _ce(), config, val=val, workdir=tmp_path)
    from protege.evaluate import predict_logits

    accuracy = (predict_logits(result.model, val).argmax(-1) == val.y).float().mean().item()
    assert accuracy == pytest.approx(result.history[result.best_epoch - 1]["val_accuracy"])


def test_gradient_accumulation_matches_a_larger_batch():
    data = make_blobs(32)
    one = fit(
        _model(),
        data,
        _ce(),
        TrainConfig(epochs=1, batch_size=32, lr=0.1, optimizer="sgd", momentum=0, weight_decay=0, schedule="constant"),
    )
    two = fit(
        _model(),
        data,
        _ce(),
        TrainConfig(
            epochs=1,
            batch_size=16,
            grad_accumulation=2,
            lr=0.1,
            optimizer="sgd",
            momentum=0,
            weight_decay=0,
            schedule="constant",
        ),
    )
    assert one.final["step"] == two.final["step"] == 1
    # the two halves of one shuffled batch of 32 are the two batches of 16, so the updates agree
    for p, q in zip(_weights(one.model), _weights(two.model), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_gradient_clipping_bounds_the_update():
    data = make_blobs(16)
    config = TrainConfig(
        epochs=1,
        batch_size=16,
        lr=1.0,
        optimizer="sgd",
        momentum=0,
        weight_decay=0,
        grad_clip=0.01,
        schedule="constant",
    )
    model = _model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    fit(model, data, _ce(), config)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-3)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step", "onecycle"])
def test_schedules(schedule):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    config = TrainConfig(epochs=10, lr=1.0, schedule=schedule, warmup_epochs=2, step_epochs=4, step_gamma=0.5)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=10)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    if schedule != "onecycle":
        assert lrs[0] == pytest.approx(1 / 20)  # linear warm-up over 20 steps
        assert lrs[19] == pytest.approx(1.0)
    if schedule == "constant":
        assert lrs[-1] == pytest.approx(1.0)
    if schedule == "cosine":
        assert lrs[60] == pytest.approx(0.5 * (1 + math.cos(math.pi * 40 / 80)))
        assert lrs[-1] < 0.01
    if schedule == "step":
        assert lrs[45] == pytest.approx(0.5**1) and lrs[85] == pytest.approx(0.5**2)
    if schedule == "onecycle":
        assert max(lrs) == pytest.approx(1.0, rel=1e-3) and lrs[0] < 0.1 and lrs[-1] < 1e-3


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    class Nan(Objective):
        def forward(self, out):
            return {"ce": out.logits.sum() * float("nan")}

    with pytest.raises(TrainingError, match="not finite at epoch 1"):
        fit(_model(), make_blobs(48), Nan(), TrainConfig(epochs=2, log_every=1), workdir=tmp_path)


class _NanOnFirstExample(Objective):
    """Cross-entropy, except that a batch holding example 0 gets a NaN loss."""

    def forward(self, out):
        loss = torch.nn.functional.cross_entropy(out.logits, out.target)
        return {"ce": loss * float("nan") if bool((out.index == 0).any()) else loss}


def test_non_finite_batches_can_be_skipped_up_to_a_limit(tmp_path):
    config = TrainConfig(epochs=3, batch_size=16, lr=0.02, skip_nonfinite_steps=3)
    result = fit(_model(), make_blobs(48), _NanOnFirstExample(), config, workdir=tmp_path)
    assert len(result.history) == 3 and math.isfinite(result.final["train_loss"])
    assert result.final["step"] == 3 * 3 - 3  # one batch per epoch dropped, no optimizer step for it
    with pytest.raises(TrainingError, match=r"3 batches had a non-finite loss, more than skip_nonfinite_steps=2"):
        fit(_model(), make_blobs(48), _NanOnFirstExample(), config.model_copy(update={"skip_nonfinite_steps": 2}))


def test_distillation_without_teacher_is_an_error():
    with pytest.raises(ProtegeError, match="needs a teacher"):
        fit(_model(), make_blobs(48), build_objective([("kd", {}, 1.0)]), TrainConfig(epochs=1))


def test_patience_without_validation_is_an_error():
    with pytest.raises(ProtegeError, match="validation"):
        fit(_model(), make_blobs(48), _ce(), TrainConfig(epochs=1, patience=2))


def test_user_dataloader_of_tuples():
    data = make_blobs(48)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.x, data.y), batch_size=8, shuffle=True)
    result = fit(_model(), loader, _ce(), TrainConfig(epochs=2, lr=0.02))
    assert len(result.history) == 2 and result.final["step"] == 12


def test_resume_on_other_training_data_is_refused(tmp_path):
    fit(_model(), make_blobs(48), _ce(), TrainConfig(epochs=1), workdir=tmp_path)
    with pytest.raises(ProtegeError, match="other training data"):
        fit(_model(), make_blobs(48, seed=5), _ce(), TrainConfig(epochs=2), workdir=tmp_path, resume=True)


def test_resume_from_a_checkpoint_of_another_format_is_refused(tmp_path):
    fit(_model(), make_blobs(48), _ce(), TrainConfig(epochs=1), workdir=tmp_path)
    state_path = next((tmp_path / "checkpoints").glob("step-*/state.json"))
    meta = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**meta, "checkpoint_version": 99}))
    with pytest.raises(ProtegeError, match="has format 99, this protege reads format 1"):
        fit(_model(), make_blobs(48), _ce(), TrainConfig(epochs=2), workdir=tmp_path, resume=True)


def test_channels_last_trains_the_same_model_as_the_default_layout():
    from protege.models.builtin import cnn2d

    data = make_blobs(48, features=16)
    data.x = data.x.view(48, 1, 4, 4)
    results = []
    for layout in (False, True):
        torch.manual_seed(0)
        model = cnn2d((1, 4, 4), 3, width=4)
        results.append(fit(model, data, _ce(), TrainConfig(epochs=2, lr=0.02, channels_last=layout)))
    assert results[1].model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert results[0].final["train_loss"] == pytest.approx(results[1].final["train_loss"], rel=1e-4)


@pytest.mark.slow
def test_compiled_model_trains_and_saves_plain_weights(tmp_path):
    torch.manual_seed(0)
    model = _model()
    result = fit(model, make_blobs(48), _ce(), TrainConfig(epochs=2, lr=0.02, compile=True), workdir=tmp_path)
    assert result.model is model and result.final["train_accuracy"] > 0.5
    assert not any("_orig_mod" in key for key in result.model.state_dict())


def test_optimizer_is_fused_on_a_cpu_and_steps_like_the_reference():
    from protege.engine import build_optimizer

    torch.manual_seed(0)
    model = mlp((6,), 3, hidden=8)
    reference = mlp((6,), 3, hidden=8)
    reference.load_state_dict(model.state_dict())
    config = TrainConfig(lr=0.01, weight_decay=0.05)
    fused = build_optimizer(model, config, device=torch.device("cpu"))
    plain = build_optimizer(reference, config)  # no device: PyTorch's default loop
    assert all(g["fused"] for g in fused.param_groups) and not any(g["fused"] for g in plain.param_groups)
    data = make_blobs(32)
    for _ in range(5):
        for net, optimizer in ((model, fused), (reference, plain)):
            torch.nn.functional.cross_entropy(net(data.x), data.y).backward()
            optimizer.step()
            optimizer.zero_grad()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    sgd = build_optimizer(model, TrainConfig(optimizer="sgd"), device=torch.device("cpu"))
    assert sgd.param_groups[0]["fused"]
    assert not build_optimizer(model, config, device=torch.device("mps")).param_groups[0]["fused"]


def test_optimizer_wrapper_is_bypassed_only_when_it_has_nothing_to_do():
    from protege.engine import _lean_optimizer, build_optimizer, make_accelerator

    model = mlp((6,), 3, hidden=8)
    one_step = TrainConfig()
    accelerator = make_accelerator(one_step)
    wrapped = accelerator.prepare(build_optimizer(model, one_step))
    assert _lean_optimizer(accelerator, wrapped, one_step) is wrapped.optimizer
    accumulating = TrainConfig(grad_accumulation=2)  # the wrapper skips steps between accumulation boundaries
    assert _lean_optimizer(accelerator, wrapped, accumulating) is wrapped
    wrapped.scaler = object()  # fp16: the wrapper unscales and steps through the scaler
    assert _lean_optimizer(accelerator, wrapped, one_step) is wrapped


def test_epoch_checkpoints_are_spaced_in_time_but_the_last_epoch_always_has_one(tmp_path):
    config = TrainConfig(epochs=5, batch_size=16, keep_checkpoints=5, checkpoint_seconds=3600)
    fit(_model(), make_blobs(96), _ce(), config, workdir=tmp_path)
    saved = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert saved == ["step-00000030-e0005-b000000"]  # 6 steps per epoch; only the stage's end was due

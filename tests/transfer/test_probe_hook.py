"""The linear probe's hook at stage start, on a stand-in for the training run: when it caches the backbone's
features, which runtime computes them and over how many examples, what it logs, and what it hands the
optimizer and the end of the stage in each case."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset
from protege.errors import ConfigError
from protege.models.builtin import resnet
from protege.transfer import build_strategy
from protege.transfer import feature_cache as feature_cache_module
from protege.transfer.base import StrategyHook
from protege.transfer.feature_cache import CachedFeaturesProbe, HeadOnly


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ArrayDataset(torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % 3)


def _run(train, val=None, needs_teacher=False, layers=(), processes=1, **config):
    torch.manual_seed(0)
    model = resnet((3, 8, 8), 3, width=4, blocks=[1])
    step = SimpleNamespace(needs_teacher=needs_teacher, objective=SimpleNamespace(student_layers=list(layers)))
    accelerator = SimpleNamespace(is_main_process=True, device=torch.device("cpu"), num_processes=processes)
    return SimpleNamespace(model=model, train=train, val=val, step=step, accelerator=accelerator, stage="student",
                           config=TrainConfig(epochs=3, **config))  # fmt: skip


@pytest.fixture
def logged(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(feature_cache_module, "log", lines.append)
    return lines


def test_cached_features_come_from_the_chosen_runtime_over_train_and_val(monkeypatch, logged):
    calls = []

    def choose_runner(model, examples, **options):
        calls.append((examples, options))
        return lambda x: torch.full((len(x), 5), 7.0)  # a runtime's output, told apart from eager's

    monkeypatch.setattr(feature_cache_module, "choose_runner", choose_runner)
    run = _run(_data(20), _data(6, seed=1), inference_runtime="onnxruntime", inference_tolerance=0.01)
    hook = CachedFeaturesProbe(build_strategy("linear_probe", {}))
    full = run.model
    hook.setup(run)
    assert calls == [(26, {"requested": "onnxruntime", "method": "forward_features", "tolerance": 0.01,
                           "what": "student: backbone runtime"})]  # fmt: skip
    assert torch.equal(run.train.x, torch.full((20, 5), 7.0)) and torch.equal(run.val.x, torch.full((6, 5), 7.0))
    assert isinstance(run.model, HeadOnly) and hook.cached and hook.full_model is full
    assert hook.param_groups(run) is None  # the head alone is the stage's model
    assert hook.loss_terms(run, {}, None) == {}
    assert hook.finish(run, run.model) is full
    (line,) = logged
    assert line.startswith("[bold]student[/]: backbone features cached (20 examples × 5, ")
    seconds = float(line.split(", ")[1].removesuffix("s); only the head trains"))
    assert 0 <= seconds < 60


@pytest.mark.parametrize("step", [SimpleNamespace(needs_teacher=False),
                                  SimpleNamespace(needs_teacher=False, objective=SimpleNamespace())])  # fmt: skip
def test_a_step_without_an_objective_or_without_inner_layers_still_caches(step, logged):
    run = _run(_data(12))
    run.step = step
    hook = CachedFeaturesProbe(build_strategy("linear_probe", {}))
    hook.setup(run)
    assert hook.cached and isinstance(run.model, HeadOnly)


def test_no_validation_split_counts_the_training_examples_alone(monkeypatch, logged):
    seen = []
    monkeypatch.setattr(feature_cache_module, "choose_runner", lambda model, examples, **_: seen.append(examples))
    run = _run(_data(12))
    CachedFeaturesProbe(build_strategy("linear_probe", {})).setup(run)
    assert seen == [12] and run.val is None


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"needs_teacher": True}, "the objective needs a teacher"),
        ({"layers": ["features.0"]}, "the objective reads inner layers"),
        ({"val": "loader"}, "the data is not an in-memory data set (its inputs may change between epochs)"),
    ],
)
def test_a_probe_that_cannot_cache_trains_the_whole_model_and_says_why(options, reason, logged):
    if options.get("val") == "loader":
        options["val"] = DataLoader(TensorDataset(torch.zeros(4, 3, 8, 8), torch.zeros(4)), batch_size=2)
    run = _run(_data(12), **options)
    full = run.model
    hook = CachedFeaturesProbe(build_strategy("linear_probe", {}))
    hook.setup(run)
    assert logged == [f"[bold]student[/]: backbone runs online ({reason})"]
    assert not hook.cached and run.model is full and run.train.x.shape == (12, 3, 8, 8)
    groups = hook.param_groups(run)
    assert groups and {g["name"] for g in groups} >= {"head", "head.no_decay"}
    assert hook.finish(run, full) is full


def test_an_online_probe_reapplies_frozen_batchnorm_statistics_each_epoch(logged):
    run = _run(_data(12), needs_teacher=True)
    hook = CachedFeaturesProbe(build_strategy("linear_probe", {}))
    hook.setup(run)
    run.model.train()
    run.state = SimpleNamespace(epoch=1)
    hook.on_epoch_start(run)
    norms = [m for m in run.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)


def test_the_strategy_hook_freezes_for_the_first_epoch_and_checks_the_processes():
    run = _run(_data(12))
    StrategyHook(build_strategy("gradual_unfreeze", {})).setup(run)
    trainable = {n.split(".")[0] for n, p in run.model.named_parameters() if p.requires_grad}
    assert trainable == {"head"}
    with pytest.raises(ConfigError, match="unfreezes parameters during training, which 2 processes"):
        StrategyHook(build_strategy("gradual_unfreeze", {})).setup(_run(_data(12), processes=2))

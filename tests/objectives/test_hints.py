"""FitNet (Romero et al. 2015) and attention transfer (Zagoruyko & Komodakis 2017)."""

import pytest
import torch
from torch import nn

from protege.config import TrainConfig
from protege.engine import fit
from protege.errors import ConfigError
from protege.models import build_model
from protege.objectives import StepOutputs, build_objective
from protege.objectives.hints import attention_map


def _resnet(width, seed, classes=3):
    torch.manual_seed(seed)
    names = [str(i) for i in range(classes)]
    return build_model("resnet", {"width": width, "blocks": [1, 1]}, (1, 8, 8), names).module


def test_attention_map_matches_eq_2_by_hand():
    x = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]], [[2.0, 0.0], [1.0, -1.0]]]])  # 1 example, 2 channels, 2×2
    q = [(1 + 4) / 2, (4 + 0) / 2, (0 + 1) / 2, (9 + 1) / 2]
    norm = sum(v * v for v in q) ** 0.5
    torch.testing.assert_close(attention_map(x), torch.tensor([[v / norm for v in q]]))


def test_attention_loss_is_beta_half_of_the_mean_squared_map_difference():
    s = torch.randn(3, 4, 4, 4)
    t = torch.randn(3, 8, 4, 4)  # channels may differ
    at = build_objective(
        [("attention", {"student_layers": ["a"], "teacher_layers": ["b"], "beta": 10.0, "ce_weight": 0.0}, 1.0)]
    )
    out = StepOutputs(torch.zeros(3, 2), torch.tensor([0, 1, 0]), torch.zeros(3, 2), {"a": s}, {"b": t})
    expected = 10.0 / 2 * (attention_map(s) - attention_map(t)).pow(2).mean()
    torch.testing.assert_close(at(out)["attention"], expected)
    # a larger student map is pooled to the teacher's size
    big = torch.randn(3, 4, 8, 8)
    out.features = {"a": big}
    pooled = nn.functional.adaptive_avg_pool2d(big, (4, 4))
    torch.testing.assert_close(at(out)["attention"], 5.0 * (attention_map(pooled) - attention_map(t)).pow(2).mean())


def test_fitnet_sizes_a_1x1_adapter_from_a_dry_run_and_regresses_onto_the_hint():
    student, teacher = _resnet(4, 0), _resnet(8, 1)
    fitnet = build_objective(
        [("fitnet", {"student_layer": "features.3", "teacher_layer": "features.3", "ce_weight": 0.0}, 1.0)]
    )
    stats = student.features[1].running_mean.clone()
    fitnet.setup(student, teacher, torch.randn(2, 1, 8, 8), 2)
    adapter = fitnet.parts[0].adapter
    assert isinstance(adapter, nn.Conv2d) and (adapter.in_channels, adapter.out_channels) == (4, 8)
    assert torch.equal(student.features[1].running_mean, stats)  # the dry run left BatchNorm alone
    s, t = torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(2, 8, 8, 8)
    out = StepOutputs(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(2, 3), {"features.3": s}, {"features.3": t})
    loss = fitnet(out)["hint"]
    torch.testing.assert_close(loss, ((adapter(s) - t) ** 2).mean())
    loss.backward()
    assert adapter.weight.grad is not None and s.grad is not None


def test_fitnet_on_vectors_uses_a_linear_adapter_and_refuses_mismatched_kinds():
    student = build_model("mlp", {"hidden": 6}, (1, 8, 8), list("abc")).module
    teacher = _resnet(8, 1)
    fitnet = build_objective([("fitnet", {}, 1.0)])
    fitnet.setup(student, teacher, torch.randn(2, 1, 8, 8), 2)  # both "features": vectors of 6 and 16
    assert isinstance(fitnet.parts[0].adapter, nn.Linear)
    wrong = build_objective([("fitnet", {"teacher_layer": "features.3"}, 1.0)])
    with pytest.raises(ConfigError, match="pick layers of the same kind"):
        wrong.setup(student, teacher, torch.randn(2, 1, 8, 8), 2)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("fitnet", {"student_layer": "features.4", "teacher_layer": "features.4"}),
        ("attention", {"student_layers": ["features.3", "features.4"], "teacher_layers": ["features.3", "features.4"]}),
    ],
)
def test_training_with_hints_updates_student_and_adapter_only(name, options):
    from protege.data.build import load_data

    data = load_data("digits")
    student, teacher = _resnet(4, 0, classes=10), _resnet(8, 1, classes=10)
    teacher_before = [p.clone() for p in teacher.parameters()]
    objective = build_objective([(name, options, 1.0)])
    result = fit(student, data.train, objective, TrainConfig(epochs=1, batch_size=256), teacher=teacher)
    assert any(k.startswith(f"train_{'hint' if name == 'fitnet' else 'attention'}") for k in result.final)
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, teacher.parameters(), strict=True))
    assert "adapter" not in "".join(student.state_dict())


def test_fitnet_resume_restores_the_adapter_exactly(tmp_path):
    from protege.data.build import load_data

    data = load_data("digits")
    options = {"student_layer": "features.3", "teacher_layer": "features.3", "ce_weight": 0.5}
    config = TrainConfig(epochs=2, batch_size=128, checkpoint_every=3)

    def run(workdir, student, resume=False):
        objective = build_objective([("fitnet", options, 1.0)])
        return fit(
            student, data.train, objective, config, teacher=_resnet(8, 1, classes=10), workdir=workdir, resume=resume
        )

    whole = run(tmp_path / "a", _resnet(4, 0, classes=10))

    doomed = _resnet(4, 0, classes=10)
    steps = []

    def stop_after_five_steps(module, inputs, output):
        if module.training:
            steps.append(1)
            if len(steps) > 5:
                raise KeyboardInterrupt

    doomed.head.register_forward_hook(stop_after_five_steps)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", doomed)
    checkpoints = tmp_path / "b" / "checkpoints"
    assert (checkpoints / (checkpoints / "latest").read_text() / "objective.safetensors").is_file()
    resumed = run(tmp_path / "b", _resnet(4, 0, classes=10), resume=True)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]

"""The runtime of frozen inference passes (protege.inference_runtime): ONNX Runtime gives eager PyTorch's
outputs at every batch size and text length, ``auto`` keeps eager on short passes without an extra
forward and switches only to a runtime that agrees and is faster, and a runtime the recipe names is
refused in one line when it disagrees."""

import time

import pytest
import torch
from tests.conftest import write_tiny_hf_model
from torch import nn

from protege import inference_runtime
from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset
from protege.distill.teacher import compute_outputs, prepare_teacher
from protege.engine import fit
from protege.errors import ConfigError
from protege.inference_runtime import AUTO_MIN_SECONDS, choose_runner
from protege.models import build_model
from protege.models.builtin import mlp
from protege.models.hf import text_encoder
from protege.objectives import build_objective

TEXTS = ["good", "the film was very good", "awful food", "quite poor very bad film", "fine", "the food was great"]


class Counting(nn.Module):
    """A linear model that counts its forwards (and can be made slow, to look worth another runtime)."""

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(6, 3)
        self.calls, self.delay = 0, delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(self.delay)
        return self.linear(x)


def test_onnxruntime_gives_eager_outputs_at_other_batch_sizes():
    torch.manual_seed(0)
    model = mlp((6,), 3, hidden=8).eval()
    runner = choose_runner(model, 10, requested="onnxruntime")
    x = torch.randn(40, 6)
    torch.testing.assert_close(runner(x), model(x).detach())  # the first batch is the eager one, timed
    assert runner.name == "onnxruntime"
    for rows in (1, 3, 40):
        torch.testing.assert_close(runner(x[:rows]), model(x[:rows]).detach(), atol=1e-5, rtol=1e-5)


def test_onnxruntime_reads_token_ids_of_any_length_up_to_the_padded_one(tmp_path):
    folder = write_tiny_hf_model(tmp_path / "bert")
    encoder = text_encoder(f"hf:{folder}", {"max_length": 12})
    encoder.fit(TEXTS)
    model = build_model(f"hf:{folder}", {"max_length": 12}, (12,), ["a", "b"], encoder.describe()).module.eval()
    ids = torch.as_tensor(encoder.transform(TEXTS))
    runner = choose_runner(model, 10, requested="onnxruntime")
    runner(ids)
    assert runner.name == "onnxruntime"
    with torch.no_grad():
        for cut in (ids[:, :5], ids[:1, :3], ids):
            torch.testing.assert_close(runner(cut), model(cut), atol=1e-5, rtol=1e-5)
    features = choose_runner(model, 10, requested="onnxruntime", method="forward_features")
    features(ids)
    with torch.no_grad():
        torch.testing.assert_close(features(ids[:, :6]), model.forward_features(ids[:, :6]), atol=1e-5, rtol=1e-5)


def test_auto_keeps_eager_on_a_short_pass_without_an_extra_forward():
    model = Counting()
    runner = choose_runner(model, 100)
    runner(torch.randn(8, 6))
    runner(torch.randn(8, 6))
    assert runner.name == "eager" and model.calls == 2 and "too short" in runner.note


def _fake_runtime(monkeypatch, shift: float) -> None:
    """A runtime that is fast and returns eager's outputs plus ``shift``."""
    monkeypatch.setattr(inference_runtime, "candidates", lambda device: ["onnxruntime"])

    def build(name, model, probe, device):
        return lambda x: model.linear(x).detach() + shift

    monkeypatch.setattr(inference_runtime, "_build", build)


def test_auto_switches_on_a_long_pass_to_a_faster_runtime_that_agrees(monkeypatch):
    _fake_runtime(monkeypatch, shift=1e-6)
    model = Counting(delay=0.02)
    runner = choose_runner(model, int(AUTO_MIN_SECONDS / 0.02 * 8) + 8)
    runner(torch.randn(8, 6))
    assert runner.name == "onnxruntime" and "× eager" in runner.note
    calls = model.calls
    runner(torch.randn(8, 6))
    assert model.calls == calls  # the rest of the pass no longer runs the module


def test_auto_stays_eager_when_the_other_runtime_disagrees_and_a_named_one_is_refused(monkeypatch):
    _fake_runtime(monkeypatch, shift=0.5)
    long_pass = int(AUTO_MIN_SECONDS / 0.02 * 8) + 8
    runner = choose_runner(Counting(delay=0.02), long_pass)
    runner(torch.randn(8, 6))
    assert runner.name == "eager" and "onnxruntime differs by 0.5" in runner.note
    named = choose_runner(Counting(), 10, requested="onnxruntime", tolerance=1e-3)
    with pytest.raises(ConfigError, match=r"^inference_runtime onnxruntime: outputs differ from eager PyTorch by 0.5"):
        named(torch.randn(8, 6))


def test_a_named_runtime_that_cannot_run_the_model_is_one_line(monkeypatch):
    def fails(name, model, probe, device):
        raise RuntimeError("Unsupported operator\nstack trace")

    monkeypatch.setattr(inference_runtime, "_build", fails)
    runner = choose_runner(Counting(), 10, requested="onnxruntime")
    with pytest.raises(ConfigError) as error:
        runner(torch.randn(4, 6))
    assert (
        str(error.value)
        == "inference_runtime onnxruntime cannot run this model (Unsupported operator); use auto or eager"
    )


def test_bf16_beyond_the_tolerance_is_refused():
    torch.manual_seed(0)
    runner = choose_runner(mlp((6,), 3, hidden=64).eval(), 10, requested="bf16", tolerance=1e-7)
    with pytest.raises(ConfigError, match="bf16: outputs differ from eager PyTorch by"):
        runner(torch.randn(32, 6) * 10)


def test_the_teacher_pass_on_onnxruntime_caches_the_eager_logits_and_serves_online():
    torch.manual_seed(0)
    teacher = mlp((6,), 3, hidden=16).eval()
    data = ArrayDataset(torch.randn(50, 6), torch.zeros(50, dtype=torch.long))
    cpu = torch.device("cpu")
    eager_logits = compute_outputs(teacher, data, cpu, torch.no_grad)["logits"]
    signal = prepare_teacher(teacher, data, "auto", cpu, torch.no_grad, runtime="onnxruntime")
    assert signal.detail.endswith(", on onnxruntime")
    torch.testing.assert_close(signal.tables["logits"], eager_logits, atol=1e-5, rtol=1e-5)
    online = prepare_teacher(teacher, data, "off", cpu, torch.no_grad, runtime="onnxruntime")
    batches = [{"x": data.x[i : i + 5], "index": torch.arange(i, i + 5)} for i in (0, 5)]
    for batch in batches:
        torch.testing.assert_close(online.logits(batch), eager_logits[batch["index"]], atol=1e-5, rtol=1e-5)
    assert online.runner.name == "onnxruntime"


def test_distilling_with_the_teacher_on_onnxruntime_trains_like_eager():
    torch.manual_seed(0)
    x, y = torch.randn(96, 6), torch.randint(0, 3, (96,))
    teacher = mlp((6,), 3, hidden=16).eval()
    kd = build_objective([("kd", {"temperature": 2.0, "alpha": 0.5}, 1.0)])
    runs = {}
    for runtime in ("eager", "onnxruntime"):
        config = TrainConfig(epochs=2, batch_size=16, lr=0.01, inference_runtime=runtime)
        torch.manual_seed(1)
        runs[runtime] = fit(mlp((6,), 3, hidden=8), ArrayDataset(x, y), kd, config, teacher=teacher)
    assert runs["onnxruntime"].teacher_mode == "cached (memory)"
    for p, q in zip(runs["eager"].model.parameters(), runs["onnxruntime"].model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-4)

"""The online teacher runs once per few training batches: same outputs per batch, fewer switches."""

import contextlib

import pytest
import torch
from tests.conftest import make_blobs

from protege.config import TrainConfig
from protege.data.dataset import batch_loader
from protege.distill.teacher import CPU_TEACHER_EXAMPLES, OnlineTeacher, online_lookahead, prepare_teacher
from protege.engine import fit
from protege.models.builtin import mlp
from protege.objectives import build_objective

CPU = torch.device("cpu")


class CountingTeacher(torch.nn.Module):
    """An MLP teacher that counts its forward passes and the batch size of each."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.net = mlp((6,), 3, hidden=16)
        self.sizes: list[int] = []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.net(x)


def _batches(data, batch_size=10):
    return list(batch_loader(data, batch_size, shuffle=True, seed=2))


def test_grouped_forward_gives_each_batch_its_own_outputs_and_layers():
    data = make_blobs(95)
    teacher = CountingTeacher()
    layers = ("net.features",)
    grouped = prepare_teacher(teacher, data, "off", CPU, contextlib.nullcontext, layers=layers, lookahead=4)
    single = prepare_teacher(teacher, data, "off", CPU, contextlib.nullcontext, layers=layers, lookahead=1)
    batches = _batches(data)
    teacher.sizes.clear()
    streamed = list(grouped.stream(batches))
    assert teacher.sizes == [40, 40, 15]  # 10 batches (the last of 5) in groups of 4
    assert "one teacher forward per 4 batches" in grouped.detail
    for batch, (same, logits, features) in zip(batches, streamed, strict=True):
        assert same is batch
        torch.testing.assert_close(logits, single.logits(batch), rtol=0, atol=1e-6)
        expected = single.features()["net.features"]
        assert features["net.features"].shape == expected.shape
        torch.testing.assert_close(features["net.features"], expected, rtol=0, atol=1e-6)
    grouped.close()
    single.close()


class CountingFlatten(torch.nn.Module):
    """Flattens each example; records the batch size of every call."""

    def __init__(self):
        super().__init__()
        self.sizes: list[int] = []

    def forward(self, x):
        self.sizes.append(len(x))
        return x.flatten(1)


def test_batches_of_different_shapes_run_one_at_a_time():
    model = CountingFlatten()
    signal = OnlineTeacher(model, contextlib.nullcontext, "off", lookahead=2)
    same = [{"x": torch.randn(4, 6)}, {"x": torch.randn(3, 6)}]
    assert [len(logits) for _, logits, _ in signal.stream(same)] == [4, 3] and model.sizes == [7]
    model.sizes.clear()
    padded_differently = [{"x": torch.randn(2, 6)}, {"x": torch.randn(2, 1, 6)}]
    assert [tuple(out.shape) for _, out, _ in signal.stream(padded_differently)] == [(2, 6), (2, 6)]
    assert model.sizes == [2, 2]


@pytest.mark.parametrize(
    ("device", "batch", "example_bytes", "asked", "expected"),
    [
        ("cpu", 256, 160, None, CPU_TEACHER_EXAMPLES // 256),  # small inputs: about 1024 examples
        ("cpu", 64, 160, None, CPU_TEACHER_EXAMPLES // 64),
        ("cpu", 32, 3 * 224 * 224 * 4, None, 1),  # 224² images: 16 MiB is 27 of them, less than a batch
        ("cpu", 2048, 160, None, 1),  # the batch alone is already large
        ("cuda", 256, 160, None, 1),  # a GPU: one batch unless asked
        ("cuda", 256, 160, 1024, 4),
        ("cpu", 256, 160, 600, 2),  # rounded down to whole batches
        ("cpu", 256, 160, 100, 1),
    ],
)
def test_lookahead_policy(device, batch, example_bytes, asked, expected):
    assert online_lookahead(torch.device(device), batch, example_bytes, asked) == expected


def test_training_online_with_lookahead_matches_one_batch_at_a_time():
    data = make_blobs(96)
    kd = lambda: build_objective([("kd", {"temperature": 2.0, "alpha": 0.8}, 1.0)])  # noqa: E731
    runs, teachers = {}, {}
    for size in (16, 64):
        config = TrainConfig(epochs=2, batch_size=16, lr=0.01, teacher_batch_size=size)
        torch.manual_seed(0)
        teachers[size] = CountingTeacher()
        runs[size] = fit(mlp((6,), 3, hidden=8), data, kd(), config, teacher=teachers[size], teacher_cache="off")
    assert set(teachers[16].sizes) == {16} and set(teachers[64].sizes) == {64, 32}
    for a, b in zip(runs[16].history, runs[64].history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    for p, q in zip(runs[16].model.parameters(), runs[64].model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-5)


def test_gradient_accumulation_keeps_one_batch_per_teacher_forward():
    teacher = CountingTeacher()
    config = TrainConfig(epochs=1, batch_size=8, lr=0.01, grad_accumulation=2, teacher_batch_size=64)
    fit(mlp((6,), 3, hidden=8), make_blobs(40), build_objective([("kd", {}, 1.0)]), config, teacher=teacher,
        teacher_cache="off")  # fmt: skip
    assert set(teacher.sizes) == {8}

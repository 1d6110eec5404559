"""The teacher cache: cached logits give exactly the loss the online teacher gives."""

import contextlib
import sys

import pytest
import torch
from tests.conftest import make_blobs

from protege.config import TrainConfig
from protege.data.dataset import batch_loader
from protege.distill.teacher import CachedTeacher, OnlineTeacher, prepare_teacher
from protege.engine import fit
from protege.models.builtin import mlp
from protege.objectives import StepOutputs, build_objective

nullcontext = contextlib.nullcontext


def _teacher():
    torch.manual_seed(1)
    return mlp((6,), 3, hidden=16)


def test_cached_and_online_logits_and_losses_agree():
    data = make_blobs(64)
    teacher = _teacher()
    cached = prepare_teacher(teacher, data, "memory", torch.device("cpu"), nullcontext)
    online = prepare_teacher(teacher, data, "off", torch.device("cpu"), nullcontext)
    assert isinstance(cached, CachedTeacher) and isinstance(online, OnlineTeacher)
    kd = build_objective([("kd", {"temperature": 4.0, "alpha": 0.9}, 1.0)])
    torch.manual_seed(0)
    student_logits = torch.randn(64, 3)
    loader = batch_loader(data, 16, shuffle=True, seed=3)
    for batch in loader:
        a, b = cached.logits(batch), online.logits(batch)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        s, y = student_logits[batch["index"]], batch["y"]
        loss_cached = sum(kd(StepOutputs(s, y, a)).values()).item()
        loss_online = sum(kd(StepOutputs(s, y, b)).values()).item()
        assert loss_cached == pytest.approx(loss_online, abs=1e-6)


def test_disk_cache_matches_memory_and_is_reused(tmp_path):
    data = make_blobs(50)
    teacher = _teacher()
    memory = prepare_teacher(teacher, data, "memory", torch.device("cpu"), nullcontext)
    disk = prepare_teacher(teacher, data, "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    assert disk.mode == "cached (disk)"
    batch = data.__getitems__([4, 0, 49])
    torch.testing.assert_close(memory.logits(batch), disk.logits(batch), rtol=0, atol=1e-6)
    stamp = (tmp_path / "teacher_0.f32").stat().st_mtime_ns
    prepare_teacher(teacher, data, "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    assert (tmp_path / "teacher_0.f32").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("damage", ["description", "table"])
def test_a_damaged_disk_cache_is_recomputed(damage, tmp_path):
    data = make_blobs(50)
    teacher = _teacher()
    prepare_teacher(teacher, data, "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    if damage == "description":
        (tmp_path / "teacher_cache.json").write_bytes(b"\xff{ not json")
    else:
        (tmp_path / "teacher_0.f32").write_bytes(b"\0" * 12)  # cut short: a memory map of it would fail
    disk = prepare_teacher(teacher, data, "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    fresh = prepare_teacher(teacher, data, "memory", torch.device("cpu"), nullcontext)
    batch = data.__getitems__(list(range(50)))
    torch.testing.assert_close(disk.logits(batch), fresh.logits(batch), rtol=0, atol=1e-6)


def _assert_disk_cache_is_fresh(teacher, data, tmp_path):
    """The disk cache in ``tmp_path`` gives ``teacher``'s logits of ``data``, as a cache made now does."""
    disk = prepare_teacher(teacher, data, "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    fresh = prepare_teacher(teacher, data, "memory", torch.device("cpu"), nullcontext)
    batch = data.__getitems__(list(range(len(data))))
    torch.testing.assert_close(disk.logits(batch), fresh.logits(batch), rtol=0, atol=1e-6)


def test_disk_cache_of_other_data_is_recomputed(tmp_path):
    teacher = _teacher()
    prepare_teacher(teacher, make_blobs(50, seed=0), "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    _assert_disk_cache_is_fresh(teacher, make_blobs(50, seed=5), tmp_path)


def test_disk_cache_of_another_teacher_is_recomputed(tmp_path):
    data = make_blobs(50)
    prepare_teacher(_teacher(), data, "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    torch.manual_seed(7)
    second = mlp((6,), 3, hidden=16)  # same architecture, same data, other weights
    _assert_disk_cache_is_fresh(second, data, tmp_path)


def test_a_cache_description_that_is_not_json_is_recomputed(tmp_path):
    data = make_blobs(50)
    prepare_teacher(_teacher(), data, "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    (tmp_path / "teacher_cache.json").write_bytes(b"\xff not json")
    disk = prepare_teacher(_teacher(), data, "disk", torch.device("cpu"), nullcontext, cache_dir=tmp_path)
    assert disk.mode == "cached (disk)" and (tmp_path / "teacher_cache.json").read_text().startswith("{")


def test_non_array_dataset_runs_the_teacher_online():
    data = make_blobs(20)
    wrapped = torch.utils.data.TensorDataset(data.x, data.y)
    signal = prepare_teacher(_teacher(), wrapped, "auto", torch.device("cpu"), nullcontext)
    assert signal.mode == "online" and "in-memory" in signal.detail


def test_training_with_cache_equals_training_online():
    data = make_blobs(96)
    config = TrainConfig(epochs=3, batch_size=16, lr=0.01)
    kd = lambda: build_objective([("kd", {"temperature": 2.0, "alpha": 0.8}, 1.0)])  # noqa: E731
    runs = {}
    for mode in ("memory", "off"):
        torch.manual_seed(0)
        student = mlp((6,), 3, hidden=8)
        runs[mode] = fit(student, data, kd(), config, teacher=_teacher(), teacher_cache=mode)
    assert runs["memory"].teacher_mode == "cached (memory)" and runs["off"].teacher_mode == "online"
    for a, b in zip(runs["memory"].history, runs["off"].history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    for p, q in zip(runs["memory"].model.parameters(), runs["off"].model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-5)


def test_teacher_is_frozen_during_distillation():
    teacher = _teacher()
    before = [p.clone() for p in teacher.parameters()]
    fit(
        mlp((6,), 3, hidden=8),
        make_blobs(48),
        build_objective([("kd", {}, 1.0)]),
        TrainConfig(epochs=2, lr=0.1),
        teacher=teacher,
        teacher_cache="off",
    )
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))
    assert not teacher.training


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_tapped_teacher_layers_are_cached_exactly(tmp_path, mode):
    data = make_blobs(40)
    teacher = _teacher()
    layers = ("features", "features.0")
    cached = prepare_teacher(teacher, data, mode, torch.device("cpu"), nullcontext, tmp_path, layers)
    online = prepare_teacher(teacher, data, "off", torch.device("cpu"), nullcontext, layers=layers)
    assert cached.mode == f"cached ({mode})" and "2 layer(s)" in cached.detail
    batch = data.__getitems__([7, 3, 39])
    torch.testing.assert_close(cached.logits(batch), online.logits(batch), rtol=0, atol=1e-6)
    for path in layers:
        torch.testing.assert_close(cached.features()[path], online.features()[path], rtol=0, atol=1e-6)
    online.close()


def test_a_cache_too_big_for_memory_goes_to_disk_or_online(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[prepare_teacher.__module__], "MEMORY_LIMIT_BYTES", 100)
    data = make_blobs(40)
    assert prepare_teacher(_teacher(), data, "auto", torch.device("cpu"), nullcontext, tmp_path).mode == "cached (disk)"
    signal = prepare_teacher(_teacher(), data, "auto", torch.device("cpu"), nullcontext, None, ("features",))
    assert signal.mode == "online" and "GiB" in signal.detail
    signal.close()


def test_disk_cache_with_other_layers_is_recomputed(tmp_path):
    data = make_blobs(30)
    teacher = _teacher()
    prepare_teacher(teacher, data, "disk", torch.device("cpu"), nullcontext, tmp_path)
    with_layer = prepare_teacher(teacher, data, "disk", torch.device("cpu"), nullcontext, tmp_path, ("features",))
    batch = data.__getitems__([0, 1])
    with_layer.logits(batch)
    assert with_layer.features()["features"].shape == (2, 16)
    assert not list(tmp_path.glob("*.partial"))


def test_stages_of_one_run_share_the_teachers_cached_outputs_on_the_same_examples():
    """Several students of one view: the teacher labels the examples once; another teacher (other weights)
    or other examples are labelled again."""
    data, memo, cpu = make_blobs(64), {}, torch.device("cpu")
    teacher = _teacher()
    first = prepare_teacher(teacher, data, "auto", cpu, contextlib.nullcontext, memo=memo)
    again = prepare_teacher(teacher, data, "auto", cpu, contextlib.nullcontext, memo=memo)
    assert (
        first.detail.startswith("labelled 64 examples") and "read from an earlier stage's teacher pass" in again.detail
    )
    assert again.tables["logits"] is first.tables["logits"]
    other = _teacher()
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    relabelled = prepare_teacher(other, data, "auto", cpu, contextlib.nullcontext, memo=memo)
    assert relabelled.detail.startswith("labelled") and not torch.equal(
        relabelled.tables["logits"], first.tables["logits"]
    )
    fewer = prepare_teacher(teacher, make_blobs(32), "auto", cpu, contextlib.nullcontext, memo=memo)
    assert fewer.detail.startswith("labelled 32 examples") and len(memo) == 3
    tapped = prepare_teacher(teacher, data, "auto", cpu, contextlib.nullcontext, layers=("features",), memo=memo)
    assert tapped.detail.startswith("labelled 64 examples") and set(tapped.tables) == {"logits", "features"}

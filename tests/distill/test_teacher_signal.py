"""How the teacher signal is chosen and what it says in the log: the mode, the reason an online
teacher runs, the size that sent a cache to disk, and the ensemble's documented formula."""

from __future__ import annotations

import contextlib
import re
import sys

import pytest
import torch
from tests.conftest import make_blobs

from protege.data.dataset import ArrayDataset, concat
from protege.distill.ensemble import EnsembleTeacher
from protege.distill.teacher import (
    CachedTeacher,
    OnlineTeacher,
    freeze,
    labelling_detail,
    online_lookahead,
    prepare_teacher,
    teacher_runner,
    unlabeled_count,
)
from protege.inference_runtime import DEFAULT_TOLERANCE, Runner
from protege.models.builtin import mlp

CPU = torch.device("cpu")
TEACHER_MODULE = sys.modules[prepare_teacher.__module__]


def _teacher() -> torch.nn.Module:
    torch.manual_seed(1)
    return mlp((6,), 3, hidden=16)


def _tripled(teacher: torch.nn.Module) -> Runner:
    """A stand-in runtime whose outputs tell it apart from eager: three times the teacher's logits."""
    return Runner("stand-in", lambda x: 3 * teacher(x), "a stand-in runtime")


class Autocast:
    """An autocast context that counts how often the teacher ran inside it."""

    def __init__(self):
        self.entered = 0

    def __call__(self):
        self.entered += 1
        return contextlib.nullcontext()


class Listed(torch.utils.data.Dataset):
    """A dataset that is not in memory as protege's arrays: its inputs may change between epochs."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]


def test_an_online_teacher_says_why_and_how_often_it_runs():
    data = make_blobs(20)
    off = prepare_teacher(_teacher(), data, "off", CPU, contextlib.nullcontext)
    assert (off.mode, off.detail) == ("online", "teacher cache switched off")
    grouped = prepare_teacher(_teacher(), data, "off", CPU, contextlib.nullcontext, lookahead=3)
    assert grouped.detail == "teacher cache switched off; one teacher forward per 3 batches"
    autocast = Autocast()
    streamed = prepare_teacher(_teacher(), Listed(data), "auto", CPU, autocast, layers=("features",), lookahead=2)
    assert isinstance(streamed, OnlineTeacher)
    assert streamed.detail == (
        "inputs may change between epochs (not an in-memory dataset); one teacher forward per 2 batches"
    )
    streamed.logits(data.__getitems__([0, 1, 2]))
    assert autocast.entered == 1 and streamed.features()["features"].shape == (3, 16)
    streamed.close()
    streamed.close()  # closing twice is harmless


def test_a_cache_says_what_it_holds():
    data = make_blobs(12)
    plain = prepare_teacher(_teacher(), data, "memory", CPU, contextlib.nullcontext)
    assert plain.mode == "cached (memory)"
    said = re.fullmatch(r"labelled 12 examples in (\d+\.\d) s \(([\d,]+) a second\); logits", plain.detail)
    assert said is not None, plain.detail
    seconds, rate = float(said[1]), int(said[2].replace(",", ""))
    assert 0 <= seconds < 60 and rate > 0  # the seconds the teacher pass took
    assert plain.features() == {}
    tapped = prepare_teacher(_teacher(), data, "memory", CPU, contextlib.nullcontext, layers=("features",))
    assert tapped.detail.startswith("labelled 12 examples in ") and tapped.detail.endswith("; logits and 1 layer(s)")
    tapped.logits(data.__getitems__([3]))
    assert set(tapped.features()) == {"features"}
    tapped.close()
    assert tapped.features() == {}


def test_auto_keeps_a_cache_of_exactly_the_limit_in_memory(monkeypatch, tmp_path):
    """12 examples × 3 logits × 4 bytes = 144 bytes: at a limit of 144 the cache stays in memory, at 143 it
    goes to disk (or online, without a run directory, saying how big it would be)."""
    data = make_blobs(12)
    monkeypatch.setattr(TEACHER_MODULE, "MEMORY_LIMIT_BYTES", 144)
    assert prepare_teacher(_teacher(), data, "auto", CPU, contextlib.nullcontext, tmp_path).mode == "cached (memory)"
    monkeypatch.setattr(TEACHER_MODULE, "MEMORY_LIMIT_BYTES", 143)
    disk = prepare_teacher(_teacher(), data, "auto", CPU, contextlib.nullcontext, tmp_path)
    assert disk.mode == "cached (disk)" and disk.detail.startswith("labelled 12 examples in ")
    again = prepare_teacher(_teacher(), data, "auto", CPU, contextlib.nullcontext, tmp_path)
    assert again.detail.startswith("logits of 12 examples read from the disk cache in ")  # nothing labelled again


def test_the_teacher_pass_says_how_many_unlabeled_examples_it_labelled_and_how_fast():
    """12 labelled examples and 3,000 of a transfer set counted from the mask; the rate is the count over
    the seconds (12,060 in 8.3 s: 1,453.0 a second)."""
    data = make_blobs(12)
    transfer = ArrayDataset.unlabeled(torch.randn(3000, *data.x.shape[1:]))
    signal = prepare_teacher(_teacher(), concat(data, transfer), "memory", CPU, contextlib.nullcontext)
    assert re.fullmatch(r"labelled 3,012 examples \(3,000 of them unlabeled\) in \d+\.\d s \([\d,]+ a second\); logits",
                        signal.detail), signal.detail  # fmt: skip
    tables = {"logits": torch.zeros(12060, 3), "layer": torch.zeros(12060, 2)}
    expected = "labelled 12,060 examples (12,000 of them unlabeled) in 8.3 s (1,453 a second); logits and 1 layer(s)"
    assert labelling_detail(tables, 8.3, unlabeled=12000) == expected


def test_the_online_fallback_names_the_cache_size_in_gib(monkeypatch):
    """A 1.2502 GiB cache is reported as 1.3 GiB (1024³ bytes to the GiB)."""
    data = make_blobs(50)
    monkeypatch.setattr(TEACHER_MODULE, "output_shapes", lambda *args: {"logits": (6_712_000,)})
    monkeypatch.setattr(TEACHER_MODULE, "MEMORY_LIMIT_BYTES", 2**30)
    autocast = Autocast()
    signal = prepare_teacher(_teacher(), data, "auto", CPU, autocast, None, ("features",), lookahead=2)
    assert signal.detail == "the cache would take 1.3 GiB and there is no run dir; one teacher forward per 2 batches"
    signal.logits(data.__getitems__([0, 1]))
    assert autocast.entered == 1 and signal.features()["features"].shape == (2, 16)
    signal.close()


def test_a_disk_cache_needs_a_directory_and_makes_its_parents(tmp_path):
    data = make_blobs(10)
    with pytest.raises(ValueError) as caught:
        prepare_teacher(_teacher(), data, "disk", CPU, contextlib.nullcontext)
    assert str(caught.value) == "a disk teacher cache needs a directory"
    nested = tmp_path / "run" / "student" / "teacher_cache"
    signal = prepare_teacher(_teacher(), data, "disk", CPU, contextlib.nullcontext, nested)
    assert isinstance(signal, CachedTeacher) and (nested / "teacher_cache.json").is_file()


def test_lookahead_is_a_whole_number_of_batches():
    for example_bytes in (1, 160, 100_000, 3 * 224 * 224 * 4):
        assert isinstance(online_lookahead(CPU, 64, example_bytes, None), int)
    assert online_lookahead(CPU, 64, 100_000, None) == 2  # 16 MiB holds 167 such examples: two batches


def test_a_teacher_is_frozen_and_runs_one_batch_at_a_time_by_default():
    teacher = freeze(_teacher().train())
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    signal = OnlineTeacher(_teacher(), contextlib.nullcontext, "a reason")
    assert (signal.lookahead, signal.detail) == (1, "a reason")


def test_the_ensemble_returns_the_documented_logits():
    """T·log Σ_k w_k·softmax(z_k / T), with the weights normalised to sum to 1."""
    torch.manual_seed(0)
    teachers = [mlp((4,), 3, hidden=5), mlp((4,), 3, hidden=6)]
    x = torch.randn(6, 4)
    ensemble = EnsembleTeacher(teachers, weights=[1.0, 3.0], temperature=2.0)
    mixed = 0.25 * torch.softmax(teachers[0](x) / 2, -1) + 0.75 * torch.softmax(teachers[1](x) / 2, -1)
    torch.testing.assert_close(ensemble(x), 2.0 * mixed.log())


@pytest.mark.parametrize(
    ("teachers", "weights", "temperature", "message"),
    [
        (1, None, 1.0, "an ensemble needs at least two teachers"),
        (2, [1.0, 0.0], 1.0, "give one positive weight per teacher (2), got [1.0, 0.0]"),
        (2, None, 0.0, "temperature must be positive, got 0.0"),
    ],
)
def test_an_ensemble_refuses_what_cannot_be_averaged(teachers, weights, temperature, message):
    with pytest.raises(ValueError) as caught:
        EnsembleTeacher([mlp((4,), 3) for _ in range(teachers)], weights=weights, temperature=temperature)
    assert str(caught.value) == message


def test_the_log_line_of_a_plain_pass_and_of_a_reused_one():
    tables = {"logits": torch.zeros(5, 3)}
    assert labelling_detail(tables, 1.0) == "labelled 5 examples in 1.0 s (5 a second); logits"
    assert labelling_detail(tables, 1.0, reused=True) == "logits of 5 examples read from the disk cache in 1.0 s"
    # a pass under a second (small data): the rate is still the count over the seconds, and a pass the clock
    # did not see (0 s) gives a huge rate, never a division by zero
    fast = labelling_detail({"logits": torch.zeros(300, 3)}, 0.25)
    assert fast == "labelled 300 examples in 0.2 s (1,200 a second); logits"
    assert labelling_detail(tables, 0.0).startswith("labelled 5 examples in 0.0 s (5,000,000,000 a second)")
    plain = CachedTeacher(tables, "cached (memory)", 1.0, CPU)
    assert plain.detail == "labelled 5 examples in 1.0 s (5 a second); logits"
    on_onnx = CachedTeacher(tables, "cached (memory)", 1.0, CPU, runtime="onnxruntime (2.1x eager)")
    assert on_onnx.detail.endswith("; logits, on onnxruntime (2.1x eager)")


def test_an_online_teacher_runs_under_the_runs_autocast_unless_given_a_runner():
    data, autocast = make_blobs(6), Autocast()
    signal = OnlineTeacher(_teacher(), autocast, "a reason")
    signal.logits(data.__getitems__([0, 1]))
    assert autocast.entered == 1
    doubled = OnlineTeacher(_teacher(), autocast, "a reason", runner=lambda x: 2 * _teacher()(x))
    expected = 2 * _teacher()(data.x[:2])
    assert torch.allclose(doubled.logits(data.__getitems__([0, 1])), expected) and autocast.entered == 1


def test_a_disk_cache_is_labelled_on_the_chosen_runtime(tmp_path, monkeypatch):
    data = make_blobs(8)
    teacher = _teacher()
    with torch.no_grad():
        expected = 3 * teacher(data.x)
    runner = _tripled(_teacher())
    monkeypatch.setattr(TEACHER_MODULE, "teacher_runner", lambda *args: runner)
    signal = prepare_teacher(teacher, data, "disk", CPU, contextlib.nullcontext, tmp_path / "cache")
    assert torch.allclose(signal.logits(data.__getitems__(list(range(8)))), expected, atol=1e-6)


def test_unlabeled_examples_are_counted_from_the_mask_and_a_dataset_without_one_has_none():
    data = make_blobs(5)
    assert unlabeled_count(data) == 0
    assert unlabeled_count(concat(data, ArrayDataset.unlabeled(torch.randn(4, *data.x.shape[1:])))) == 4
    assert unlabeled_count(Listed([data[i] for i in range(5)])) == 0  # streamed: it keeps no mask


def test_an_online_teachers_runtime_is_chosen_for_every_epochs_pass_with_its_layers_and_tolerance(monkeypatch):
    """``auto`` weighs a runtime's set-up against the examples it will label: online, every epoch's."""
    data, asked = make_blobs(10), []

    def stand_in(teacher, examples, autocast, layers, runtime, tolerance):
        asked.append((examples, layers, runtime, tolerance))
        return _tripled(teacher)

    monkeypatch.setattr(TEACHER_MODULE, "teacher_runner", stand_in)
    teacher = _teacher()
    signal = prepare_teacher(
        teacher, data, "off", CPU, contextlib.nullcontext, runtime="auto", tolerance=0.01, epochs=3
    )
    with torch.no_grad():
        assert torch.allclose(signal.logits(data.__getitems__([0, 1])), 3 * teacher(data.x[:2]))
    prepare_teacher(teacher, data, "off", CPU, contextlib.nullcontext, layers=("features",)).close()
    cached = prepare_teacher(
        teacher,
        data,
        "memory",
        CPU,
        contextlib.nullcontext,
        layers=("features",),
        runtime="auto",
        tolerance=0.02,
        epochs=3,
    )
    assert cached.mode == "cached (memory)"  # labelled once: one pass whatever the epochs
    assert asked == [
        (30, (), "auto", 0.01),
        (10, ("features",), "eager", DEFAULT_TOLERANCE),
        (10, ("features",), "auto", 0.02),
    ]


def test_a_dataset_whose_inputs_change_says_why_its_teacher_runs_online():
    data = make_blobs(4)
    changing = Listed([data[i] for i in range(4)])
    changing.changes = "inputs are augmented each epoch (train.augment)"
    signal = prepare_teacher(_teacher(), changing, "auto", CPU, contextlib.nullcontext)
    assert signal.mode == "online" and signal.detail == "inputs are augmented each epoch (train.augment)"


def test_a_memory_cache_is_labelled_on_the_chosen_runtime(monkeypatch):
    data, teacher = make_blobs(8), _teacher()
    runner = _tripled(teacher)
    monkeypatch.setattr(TEACHER_MODULE, "teacher_runner", lambda *args: runner)
    signal = prepare_teacher(teacher, data, "memory", CPU, contextlib.nullcontext)
    with torch.no_grad():
        assert torch.allclose(signal.logits(data.__getitems__(list(range(8)))), 3 * teacher(data.x), atol=1e-6)
    assert signal.detail.endswith(", on stand-in")  # a runtime other than eager is named in the log


def test_a_cache_read_back_names_no_runtime_when_none_ran(tmp_path, monkeypatch):
    """A disk cache read again never calls its runtime chooser, which then reports "undecided": the log names
    no runtime rather than that word."""
    data, teacher = make_blobs(8), _teacher()
    prepare_teacher(teacher, data, "disk", CPU, contextlib.nullcontext, tmp_path)
    monkeypatch.setattr(TEACHER_MODULE, "teacher_runner", lambda *args: Runner("undecided", teacher, "not chosen"))
    again = prepare_teacher(teacher, data, "disk", CPU, contextlib.nullcontext, tmp_path)
    assert "read from the disk cache" in again.detail and ", on" not in again.detail


def test_the_teachers_runtime_is_eager_with_tapped_layers_and_chosen_otherwise(monkeypatch):
    teacher, asked = _teacher(), {}
    tapped = teacher_runner(teacher, 100, contextlib.nullcontext, ("features",), "auto", 0.01)
    assert (tapped.name, tapped.note) == ("eager", "eager (tapped layers are read from the PyTorch module)")

    def choose(model, examples, **options):
        asked.update(options, examples=examples)
        return "chosen"

    monkeypatch.setattr(TEACHER_MODULE, "choose_runner", choose)
    autocast = Autocast()
    assert teacher_runner(teacher, 100, autocast, (), "auto", 0.01) == "chosen"
    assert asked == {
        "examples": 100,
        "requested": "auto",
        "autocast": autocast,
        "tolerance": 0.01,
        "what": "teacher runtime",
    }

"""train.augment_views: K augmented views per example drawn once, the teacher cached on all K×N of them, and
the student reading view epoch mod K, so the cached outputs always belong to the very input it reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.engine.test_augmented_fit import Recorder, _folder, _images
from tests.interrupt import StepCounter, Stop

import protege.data.cached_views as cached_views
import protege.engine.loop as loop
import protege.engine.run as engine_run
from protege.config import AugmentConfig, TrainConfig
from protege.data.augment import build_augmentation
from protege.data.augmented import AugmentedDataset, EpochIndices
from protege.data.build import load_data
from protege.data.cached_views import CachedViews
from protege.engine import fit
from protege.errors import ConfigError

AUGMENT = ["random_resized_crop", "horizontal_flip", "gaussian_noise"]  # noise: no view is the original


def _config(**changes) -> TrainConfig:
    values = {"epochs": 3, "batch_size": 8, "augment": AUGMENT, "augment_views": 2, "checkpoint_seconds": 0}
    return TrainConfig(**{**values, **changes})


def _augmentation(entries=AUGMENT):
    return build_augmentation([AugmentConfig(name=e) for e in entries], (3, 8, 8), torch.float32, "classification")


def _recorded(monkeypatch) -> tuple[list[dict], list[str]]:
    """The batches the loop trains on and the lines it logs."""
    batches, messages = [], []
    monkeypatch.setattr(engine_run, "log", messages.append)
    real_step = loop.train_step
    monkeypatch.setattr(loop, "train_step", lambda run, batch: batches.append(batch) or real_step(run, batch))
    return batches, messages


def _distil(train, config, teacher, **options):
    from protege.objectives import build_objective

    return fit(Recorder(), train, build_objective([("kd", {}, 1.0)]), config, teacher=teacher, num_classes=3,
               **options)  # fmt: skip


def test_the_cached_teacher_outputs_are_the_teacher_on_the_view_the_student_reads_in_every_epoch(monkeypatch):
    batches, messages = _recorded(monkeypatch)
    train, teacher = _images(24, 0), Recorder().eval()
    result = _distil(train, _config(epochs=5), teacher, teacher_cache="memory")
    assert result.teacher_mode == "cached (memory)"
    note = "on 2 augmented view(s) per example (48 rows): an approximation of function matching"
    assert any(note in m and "teacher cached (memory)" in m for m in messages), "\n".join(messages)
    # one sample (its output shapes) and then every view once: the teacher never ran during training
    assert sum(len(x) for x in teacher.seen[False]) == 1 + 2 * 24
    views = torch.cat(teacher.seen[False][1:])
    assert len(batches) == 5 * 3
    by_epoch = {}
    with torch.no_grad():
        for b, batch in enumerate(batches):
            epoch, index = b // 3, batch["index"]
            torch.testing.assert_close(batch["teacher_logits"], teacher.net(batch["x"]))
            torch.testing.assert_close(batch["x"], views[(epoch % 2) * 24 + index])
            by_epoch.setdefault(epoch, {}).update(zip(index.tolist(), batch["x"], strict=True))
    for i in range(24):  # epochs 0, 2, 4 read view 0; epochs 1, 3 view 1
        assert torch.equal(by_epoch[0][i], by_epoch[2][i]) and torch.equal(by_epoch[2][i], by_epoch[4][i])
        assert torch.equal(by_epoch[1][i], by_epoch[3][i])
        assert not torch.equal(by_epoch[0][i], by_epoch[1][i])


def test_view_k_is_the_fresh_draw_of_epoch_k_and_views_differ_from_each_other_and_the_original():
    base, augmentation = _images(20, 3), _augmentation()
    views = CachedViews(base, augmentation, seed=7, views=3)
    fresh = AugmentedDataset(base, augmentation, seed=7, num_classes=3)
    everything = list(range(20))
    drawn = views.inputs.reshape(3, 20, 3, 8, 8)
    for k in range(3):
        batch = views.__getitems__(EpochIndices(everything, k))
        assert torch.equal(batch["x"], fresh.__getitems__(EpochIndices(everything, k))["x"])
        assert torch.equal(batch["index"], torch.arange(20))
        assert torch.equal(batch["teacher_row"], torch.arange(20) + 20 * k)
        assert torch.equal(batch["x"], drawn[k])
    for i in range(20):
        assert not any(torch.equal(drawn[k, i], base.x[i]) for k in range(3))
        assert not torch.equal(drawn[0, i], drawn[1, i]) and not torch.equal(drawn[1, i], drawn[2, i])
    assert torch.equal(views.__getitems__(EpochIndices([4, 2], 5))["x"], drawn[2, [4, 2]])  # epoch 5: view 2
    assert views.fingerprint() == CachedViews(base, augmentation, seed=7, views=3).fingerprint()
    assert views.fingerprint() != CachedViews(base, augmentation, seed=8, views=3).fingerprint()


def test_one_view_is_a_single_fixed_augmented_version_of_each_example(monkeypatch):
    batches, _ = _recorded(monkeypatch)
    train = _images(16, 1)
    _distil(train, _config(augment_views=1), Recorder().eval())
    seen: dict[int, list[torch.Tensor]] = {}
    for batch in batches:
        for i, x in zip(batch["index"].tolist(), batch["x"], strict=True):
            seen.setdefault(i, []).append(x)
    assert all(len(xs) == 3 for xs in seen.values())
    for i, xs in seen.items():
        assert all(torch.equal(x, xs[0]) for x in xs) and not torch.equal(xs[0], train.x[i])


def test_a_disk_cache_of_the_views_is_looked_up_by_row(tmp_path, monkeypatch):
    batches, messages = _recorded(monkeypatch)
    teacher = Recorder().eval()
    result = _distil(_images(24, 0), _config(), teacher, teacher_cache="disk", workdir=tmp_path)
    assert result.teacher_mode == "cached (disk)"
    assert (tmp_path / "teacher_cache" / "teacher_0.f32").stat().st_size == 4 * 48 * 3
    with torch.no_grad():
        for batch in batches:
            torch.testing.assert_close(batch["teacher_logits"], teacher.net(batch["x"]))
    labelled = len(teacher.seen[False])
    _distil(_images(24, 0), _config(), teacher, teacher_cache="disk", workdir=tmp_path)
    assert any("logits of 48 examples read from the disk cache" in m for m in messages), "\n".join(messages)
    assert len(teacher.seen[False]) == labelled + 1  # one sample for the output shapes, no view labelled again


def test_an_interrupted_run_on_cached_views_resumes_to_the_same_history(tmp_path, monkeypatch):
    train, val = _images(40, 0), _images(10, 1)
    config = _config(epochs=3, checkpoint_every=2, augment_views=2)
    calls = StepCounter(monkeypatch)
    teacher = Recorder().eval()

    def run(folder, resume=False):
        torch.manual_seed(0)
        return _distil(train, config, teacher, val=val, workdir=tmp_path / folder, resume=resume)

    whole = run("whole")
    calls.reset(stop_at=8)  # in the second epoch (view 1), after the checkpoint of step 6
    with pytest.raises(Stop):
        run("cut")
    calls.reset()
    resumed = run("cut", resume=True)
    assert calls.n == 15 - 6
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in whole.history]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history] == strip


def _one_line(message: str) -> str:
    assert "\n" not in message
    return message


def test_views_of_mixed_batches_are_refused_in_one_line():
    with pytest.raises(ConfigError) as caught:
        _distil(_images(16, 0), _config(augment=["horizontal_flip", "mixup"]), Recorder().eval())
    assert "train.augment_views: mixup mixes each batch anew, which no cached view" in _one_line(str(caught.value))


def test_views_without_augmentations_are_refused_in_one_line():
    with pytest.raises(ConfigError) as caught:
        _distil(_images(16, 0), _config(augment=[]), Recorder().eval())
    assert "train.augment_views caches augmented views of each example; give train.augment" in _one_line(
        str(caught.value)
    )


def test_views_beyond_the_memory_limit_are_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(cached_views, "VIEWS_LIMIT_BYTES", 1024**2)
    train = _images(600, 0)  # 0.44 MiB a view
    cached_views.check_views(train, 2)
    with pytest.raises(ConfigError) as caught:
        cached_views.check_views(train, 3)
    message = _one_line(str(caught.value))
    assert "train.augment_views: 3 views of 600 examples would take 1.3 MiB of memory (at most 1.0 MiB)" in message


def test_views_of_streamed_images_are_refused_in_one_line(tmp_path):
    data = load_data(_folder(tmp_path), {"load": "stream", "num_workers": 0}, val_fraction=0, test_fraction=0.2)
    with pytest.raises(ConfigError) as caught:
        cached_views.check_views(data.train, 4)
    assert "are streamed from files; set data.options.load: memory" in _one_line(str(caught.value))


def test_a_linear_probe_does_not_cache_features_of_views_that_change_by_epoch():
    from protege.transfer.feature_cache import cache_refusal

    class Split(Recorder):
        def forward_features(self, x):
            return x.flatten(1)

        def forward_head(self, features):
            return self.net[1](features)

    views = CachedViews(_images(8, 0), _augmentation(), 0, 2)
    assert cache_refusal(Split(), _images(8, 0), None, False, False) is None
    reason = cache_refusal(Split(), views, None, False, False)
    assert reason is not None and "augment_views cycles 2 augmented views" in reason
    assert np.isfinite(views.inputs.numpy()).all()


def test_a_stage_without_a_teacher_trains_on_the_views_too():
    from protege.objectives import build_objective

    model, train = Recorder(), _images(16, 2)
    fit(model, train, build_objective([("ce", {}, 1.0)]), _config(epochs=2), num_classes=3)
    views = CachedViews(train, _augmentation(), 0, 2).inputs
    trained = model.seen[True]
    assert len(trained) == 4
    assert all(any(torch.equal(row, v) for v in views[k * 16 : (k + 1) * 16]) for k in (0, 1)
               for row in torch.cat(trained[2 * k : 2 * k + 2]))  # fmt: skip

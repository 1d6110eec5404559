"""train.augment: per-example transforms and mixup over the training batches, seeded, never of val/test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from protege.config import AugmentConfig, TrainConfig
from protege.data.augment import build_augmentation
from protege.data.augmented import AugmentedDataset, EpochIndices
from protege.data.dataset import ArrayDataset, batch_loader
from protege.data.train_augmentation import augmented_train_set
from protege.errors import ConfigError, DataError

PER_EXAMPLE = [
    "random_resized_crop",
    {"name": "random_crop", "padding": 3},
    {"name": "random_crop", "size": [12, 10]},
    {"name": "horizontal_flip", "p": 1.0},
    "trivial_augment",
    "rand_augment",
    {"name": "random_erasing", "p": 1.0},
    "gaussian_noise",
]


def _images(n: int = 12, shape=(3, 16, 16), classes: int = 3) -> ArrayDataset:
    x = torch.rand((n, *shape), generator=torch.Generator().manual_seed(0))
    return ArrayDataset(x, torch.arange(n) % classes)


def _entries(*items) -> list[AugmentConfig]:
    return TrainConfig(augment=list(items)).augment


def _augmented(data, *items, seed=0, classes=3) -> AugmentedDataset:
    return augmented_train_set(data, _entries(*items), seed, classes, "classification")


def _batch(data: AugmentedDataset, epoch: int = 0, indices=range(8)) -> dict[str, torch.Tensor]:
    return data.__getitems__(EpochIndices(list(indices), epoch))


@pytest.mark.parametrize("entry", PER_EXAMPLE, ids=str)
def test_an_image_augmentation_changes_the_pixels_and_keeps_shape_and_dtype(entry):
    data = _images()
    batch = _batch(_augmented(data, entry))
    assert batch["x"].shape == data.x[:8].shape and batch["x"].dtype == data.x.dtype
    assert not torch.equal(batch["x"], data.x[:8])
    assert torch.equal(batch["y"], data.y[:8]) and torch.equal(batch["index"], torch.arange(8))


def test_the_same_seed_and_epoch_draw_the_same_batch_and_another_epoch_or_seed_another():
    data = _images()
    items = ["random_resized_crop", "horizontal_flip", "trivial_augment", {"name": "mixup", "cutmix_alpha": 1.0}]
    first, again = _batch(_augmented(data, *items)), _batch(_augmented(data, *items))
    assert torch.equal(first["x"], again["x"]) and torch.equal(first["y"], again["y"])
    assert not torch.equal(first["x"], _batch(_augmented(data, *items), epoch=1)["x"])
    assert not torch.equal(first["x"], _batch(_augmented(data, *items, seed=1))["x"])


def test_an_example_is_drawn_the_same_in_any_batch_and_the_callers_random_state_is_untouched():
    data = _images()
    augmented = _augmented(data, "random_resized_crop", "gaussian_noise")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    alone = _batch(augmented, indices=[4])["x"][0]
    within = _batch(augmented, indices=[7, 4, 1])["x"][1]
    assert torch.equal(alone, within)
    assert torch.equal(torch.rand(3), expected)


def test_mixup_targets_are_soft_and_sum_to_one_and_an_odd_last_example_keeps_its_own():
    data = _images(n=9)
    batch = _batch(_augmented(data, {"name": "mixup", "alpha": 1.0}), indices=range(9))
    y = batch["y"]
    assert y.shape == (9, 3) and y.is_floating_point()
    torch.testing.assert_close(y.sum(-1), torch.ones(9))
    assert ((y > 0) & (y < 1)).any()  # mixed, not one-hot
    assert torch.equal(y[-1], nn.functional.one_hot(data.y[8], 3).float())
    assert torch.equal(batch["x"][-1], data.x[8])


def test_mixup_of_a_transfer_example_is_unlabelled():
    data = ArrayDataset(torch.rand(4, 5), torch.tensor([0, 1, -1, 1]), torch.tensor([True, True, False, True]))
    batch = _batch(_augmented(data, "mixup", classes=2), indices=range(4))
    assert batch["labeled"].tolist() == [True, False, False, True]  # example i is mixed with example 3 - i


def test_tabular_rows_take_gaussian_noise_and_mixup():
    data = ArrayDataset(torch.randn(10, 6), torch.arange(10) % 2)
    batch = _batch(_augmented(data, {"name": "gaussian_noise", "sigma": 0.5}, "mixup", classes=2))
    assert batch["x"].shape == (8, 6) and not torch.equal(batch["x"], data.x[:8])
    torch.testing.assert_close(batch["y"].sum(-1), torch.ones(8))


@pytest.mark.parametrize(
    ("shape", "dtype", "entry", "message"),
    [
        (
            (6,),
            torch.float32,
            "horizontal_flip",
            "horizontal_flip transforms images (channels, height, width); the inputs are tabular rows of shape (6,)",
        ),
        ((1, 40), torch.float32, "cutmix", "the inputs are 1-D signals (channels, length) of shape (1, 40)"),
        ((12,), torch.int64, "gaussian_noise", "the inputs are token ids (torch.int64), which take no augmentation"),
        ((3, 8, 8), torch.float32, {"name": "random_crop", "size": [9, 9]}, "the images are 8×8 pixels, smaller"),
        ((3, 8, 8), torch.float32, {"name": "mixup", "cutmix_alpha": 1}, None),
    ],
)
def test_an_augmentation_that_does_not_fit_the_inputs_is_refused(shape, dtype, entry, message):
    if message is None:
        assert build_augmentation(_entries(entry), shape, dtype, "classification").mixing["cutmix_alpha"] == 1
        return
    with pytest.raises(DataError, match=re.escape(message)):
        build_augmentation(_entries(entry), shape, dtype, "classification")


@pytest.mark.parametrize(
    ("items", "task", "message"),
    [
        (["flip"], "classification", "train.augment[0]: unknown augmentation 'flip'"),
        ([{"name": "horizontal_flip", "prob": 0.5}], "classification", "has no option 'prob'"),
        ([{"name": "horizontal_flip", "p": 2}], "classification", "p: Input should be less than or equal to 1"),
        (["mixup", "cutmix"], "classification", "mixup and cutmix both mix the batch; give one"),
        (["mixup"], "regression", "a regression task has no classes"),
        ([{"name": "random_resized_crop", "scale": [0.9, 0.2]}], "classification", "lower bound 0.9 is above"),
    ],
)
def test_a_bad_name_option_or_combination_is_one_config_error(items, task, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_augmentation(_entries(*items), (3, 8, 8), torch.float32, task)


def test_the_augmented_loader_tags_batches_with_their_epoch_and_resumes_mid_epoch_on_the_same_draws():
    augmented = _augmented(_images(n=20), "random_resized_crop", "mixup")
    loader = batch_loader(augmented, 4, shuffle=True, seed=3)
    loader.batch_sampler.start_epoch(2)
    whole = list(loader)
    loader.batch_sampler.start_epoch(2, skip_batches=3)
    resumed = list(loader)
    assert len(resumed) == len(whole) - 3
    for a, b in zip(whole[3:], resumed, strict=True):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
    loader.batch_sampler.start_epoch(3)
    assert not torch.equal(next(iter(loader))["x"], whole[0]["x"])


def _documented() -> dict[str, dict[str, str]]:
    """Augmentation name → {option: the default the README's table gives}."""
    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \| (?:images|real values) \|", readme, flags=re.MULTILINE)
    parse = {"`": lambda v: v.strip("`"), "[": yaml.safe_load}
    return {
        name: {option: parse.get(value[:1], yaml.safe_load)(value) for option, value in
               re.findall(r"`(\w+)` \(([^)]*)\)", options) if value != "the image's"}
        for name, options in rows
    }  # fmt: skip


def test_the_readme_documents_every_augmentation_with_its_defaults():
    import inspect

    from protege.data.augment import AUGMENTATIONS

    documented = _documented()
    assert set(documented) == set(AUGMENTATIONS)
    for name, options in documented.items():
        parameters = inspect.signature(AUGMENTATIONS.get(name)).parameters
        assert set(options) <= set(parameters) and set(parameters) - {"shape"} - set(options) <= {"size"}, name
        for option, value in options.items():
            default = parameters[option].default
            expected = list(default) if isinstance(default, tuple) else default
            assert value == pytest.approx(expected, abs=1e-3), (name, option)

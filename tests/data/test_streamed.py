"""imagefolder's loading modes: memory, stream and cache give the same batches; the cache is reused and
rebuilt; a damaged file is named before training."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from protege.data.build import load_data
from protege.data.dataset import batch_loader
from protege.data.streamed import StreamedImages
from protege.errors import DataError


def _folder(root, per_class=6, size=(9, 7), suffix="png"):
    rng = np.random.default_rng(0)
    for c, label in enumerate(("cat", "dog", "owl")):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (size[1], size[0], 3), dtype=np.uint8)
            pixels[..., c] += 100
            Image.fromarray(pixels).save(root / label / f"{i}.{suffix}")
    return root


def _load(root, tmp_path, **options):
    options = {"num_workers": 0, "cache_dir": str(tmp_path / "cache"), **options}
    return load_data(f"imagefolder:{root}", options, val_fraction=0.2, test_fraction=0.2, seed=3)


def _batches(dataset, seed=5):
    return list(batch_loader(dataset, 4, shuffle=True, seed=seed))


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_stream_and_memory_give_the_same_batches_in_the_same_order(tmp_path, suffix):
    root = _folder(tmp_path / "pets", suffix=suffix)
    memory = _load(root, tmp_path, load="memory", size=[6, 8])
    stream = _load(root, tmp_path, load="stream", size=[6, 8], num_workers=2)
    assert isinstance(stream.train, StreamedImages) and stream.input_shape == memory.input_shape == (3, 6, 8)
    assert stream.preprocess == memory.preprocess and stream.sizes() == memory.sizes()
    for a, b in zip(_batches(memory.train), _batches(stream.train), strict=True):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["y"], b["y"])
        assert torch.allclose(a["x"], b["x"], atol=1e-6) and torch.equal(a["labeled"], b["labeled"])
    assert stream.train.fingerprint() == _load(root, tmp_path, load="stream", size=[6, 8]).train.fingerprint()


def test_cache_matches_stream_within_one_step_of_255_and_is_reused(tmp_path):
    root = _folder(tmp_path / "pets")
    stream = _load(root, tmp_path, load="stream")
    cached = _load(root, tmp_path, load="cache")
    (cache,) = (tmp_path / "cache" / "images").glob("*.npy")
    assert cached.train.folder.cache == cache and np.load(cache, mmap_mode="r").dtype == np.uint8
    for a, b in zip(_batches(stream.train), _batches(cached.train), strict=True):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["y"], b["y"])
        assert float((a["x"] - b["x"]).abs().max()) <= 1 / 255
    built = cache.stat().st_mtime_ns
    again = _load(root, tmp_path, load="cache")
    assert again.train.folder.cache == cache and cache.stat().st_mtime_ns == built  # reused, not rebuilt


def test_a_changed_file_rebuilds_the_cache_and_the_old_one_goes(tmp_path):
    root = _folder(tmp_path / "pets")
    first = _load(root, tmp_path, load="cache").train.folder.cache
    Image.new("RGB", (9, 7), (255, 255, 255)).save(root / "cat" / "0.png")
    os.utime(root / "cat" / "0.png", ns=(1, 1))  # a new modification time even on a coarse clock
    second = _load(root, tmp_path, load="cache")
    assert second.train.folder.cache != first and not first.exists()
    row = second.train.folder.files.index(root / "cat" / "0.png")
    assert np.load(second.train.folder.cache, mmap_mode="r")[row].min() == 255
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.startswith(".")]  # no temporary left


def test_auto_keeps_a_small_folder_in_memory_and_streams_a_large_one(tmp_path, monkeypatch):
    root = _folder(tmp_path / "pets")
    assert not isinstance(_load(root, tmp_path).train, StreamedImages)
    monkeypatch.setattr("protege.data.images.AUTO_MEMORY_BYTES", 100)
    assert isinstance(_load(root, tmp_path).train, StreamedImages)


def test_a_corrupt_file_is_named_before_any_batch_is_read(tmp_path):
    root = _folder(tmp_path / "pets")
    (root / "dog" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"broken.png: not a readable image .*remove or replace"):
        _load(root, tmp_path, load="stream")


def test_a_file_damaged_after_its_header_is_one_line_from_a_worker(tmp_path):
    root = _folder(tmp_path / "pets")
    damaged = root / "owl" / "1.png"
    damaged.write_bytes(damaged.read_bytes()[:60])  # the header reads, the pixels do not
    data = _load(root, tmp_path, load="stream", num_workers=1)
    with pytest.raises(DataError) as caught:
        for split in (data.train, data.val, data.test):
            for _ in batch_loader(split, 64):
                pass
    assert str(caught.value).startswith(f"{damaged}: not a readable image") and "\n" not in str(caught.value)


def test_mixed_sizes_in_a_streamed_folder_need_a_size(tmp_path):
    root = _folder(tmp_path / "pets")
    Image.new("RGB", (12, 10)).save(root / "cat" / "big.png")
    with pytest.raises(DataError, match=r"is 12×10 pixels but .* is 9×7; set options.size"):
        _load(root, tmp_path, load="stream")
    assert _load(root, tmp_path, load="stream", size=[4, 4]).input_shape == (3, 4, 4)


def test_a_worker_does_not_keep_the_run_directory_locked(tmp_path):
    """Forked workers inherit the run's flock; they close it, so a run killed while its workers live on
    can be resumed at once."""
    from protege import rundir

    data = _load(_folder(tmp_path / "pets"), tmp_path, load="stream", num_workers=1)
    (tmp_path / "run").mkdir()
    with rundir.locked(tmp_path / "run"):
        batches = iter(batch_loader(data.train, 2))
        next(batches)  # the worker is alive, forked while the lock was held
    with rundir.locked(tmp_path / "run"):  # refused if the living worker still held the lock
        next(batches)

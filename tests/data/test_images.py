"""imagefolder: class folders of image files, their splits, and the errors a messy folder gets."""

import re

import numpy as np
import pytest
from PIL import Image

from protege.data.build import load_data
from protege.errors import DataError


def _image(path, size=(6, 5), mode="L", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255)).save(path)


def _folder(root, per_class=6, **kwargs):
    for label, value in (("cat", 40), ("dog", 200)):
        for i in range(per_class):
            _image(root / label / f"{i}.png", value=value + i, **kwargs)
    return root


def test_class_folders_become_labelled_tensors(tmp_path):
    data = load_data(f"imagefolder:{_folder(tmp_path / 'pets')}", val_fraction=0.0, test_fraction=0.25, seed=0)
    assert data.class_names == ["cat", "dog"] and data.input_shape == (1, 5, 6)
    assert len(data.train) + len(data.test) == 12
    x, y = data.train.x, data.train.y
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert bool(((x.mean((1, 2, 3)) > 0.5) == (y == 1)).all())  # dogs are the bright ones
    assert data.preprocess["image"] == {"size": [5, 6], "mode": "L"}


def test_train_and_test_folders_keep_the_data_sets_split(tmp_path):
    _folder(tmp_path / "pets" / "train")
    _folder(tmp_path / "pets" / "test", per_class=2)
    data = load_data(f"imagefolder:{tmp_path / 'pets'}", val_fraction=0.0)
    assert len(data.train) == 12 and len(data.test) == 4


def test_a_corrupt_file_is_named(tmp_path):
    root = _folder(tmp_path / "pets")
    (root / "dog" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"broken.png: not a readable image .*remove or replace"):
        load_data(f"imagefolder:{root}")


def test_mixed_sizes_are_refused_unless_a_size_is_given(tmp_path):
    root = _folder(tmp_path / "pets")
    _image(root / "cat" / "big.png", size=(12, 10))
    with pytest.raises(DataError, match=r"is 12×10 pixels but .* is 6×5; set options.size"):
        load_data(f"imagefolder:{root}")
    data = load_data(f"imagefolder:{root}", {"size": [8, 8]}, val_fraction=0.0)
    assert data.input_shape == (1, 8, 8)


def test_mixed_colour_modes_are_refused_unless_a_mode_is_given(tmp_path):
    root = _folder(tmp_path / "pets")
    _image(root / "dog" / "colour.png", mode="RGB")
    with pytest.raises(DataError, match=r"has colour mode (RGB|L) but .* has (L|RGB); set options.mode"):
        load_data(f"imagefolder:{root}")
    data = load_data(f"imagefolder:{root}", {"mode": "RGB"}, val_fraction=0.0)
    assert data.input_shape == (3, 5, 6)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (lambda root: root.mkdir(), "no class folders"),
        (lambda root: (root / "cat").mkdir(parents=True), "no image files"),
        (lambda root: _folder(root / "test"), "no train/ folder"),
    ],
)
def test_empty_or_misshapen_folders(tmp_path, layout, message):
    root = tmp_path / "pets"
    layout(root)
    with pytest.raises(DataError, match=message):
        load_data(f"imagefolder:{root}")


def test_a_missing_folder_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_data(f"imagefolder:{tmp_path / 'nope'}")
    root = _folder(tmp_path / "pets")
    with pytest.raises(DataError, match="mode: Input should be 'L', 'RGB' or 'RGBA'"):
        load_data(f"imagefolder:{root}", {"mode": "XYZ"})
    with pytest.raises(DataError, match=re.escape("size[0]: Input should be greater than or equal to 1 (got 0)")):
        load_data(f"imagefolder:{root}", {"size": [0, 4]})


def test_predict_reads_image_files_like_training(tmp_path):
    from protege.models import ModelCard
    from protege.preprocess import Preprocessor

    card = ModelCard("mlp", {}, [1, 5, 6], ["cat", "dog"], {"image": {"size": [5, 6], "mode": "L"}})
    _image(tmp_path / "big.png", size=(12, 10), mode="RGB", value=255)
    x = Preprocessor(card).from_image_file(tmp_path / "big.png")
    assert x.shape == (1, 1, 5, 6) and np.isfinite(x).all()


def test_16_bit_grey_images_are_scaled_by_their_own_range(tmp_path):
    from PIL import Image

    from protege.data.images import load_image

    values = np.array([[0, 16384], [32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    grey = load_image(tmp_path / "deep.png", None, "L")
    np.testing.assert_allclose(grey[0], values / 65535, atol=1e-6)
    colour = load_image(tmp_path / "deep.png", None, "RGB")
    assert colour.shape == (3, 2, 2) and np.allclose(colour[2], values / 65535, atol=1e-6)

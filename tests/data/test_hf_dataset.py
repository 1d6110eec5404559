"""``hf_dataset:``: a Hugging Face dataset saved with ``save_to_disk``, Parquet and Arrow files, and local
folders ``load_dataset`` reads; their splits and class names kept; images equal to imagefolder's, in memory
and streamed from the rows; texts through TF-IDF as a CSV's; each bad input one line. Every dataset is
built here, offline."""

import csv
import json
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from protege.cli import main
from protege.data.build import load_data
from protege.data.dataset import batch_loader
from protege.data.raw import call_source
from protege.data.streamed import StreamedImages
from protege.data.unlabeled import unlabeled_texts
from protege.errors import DataError

datasets = pytest.importorskip("datasets")
Features, ClassLabel, Value = datasets.Features, datasets.ClassLabel, datasets.Value
CLASSES = ["cat", "dog", "owl"]


def _png_folder(root, per_class=6):
    """Three class folders of 7×9 RGB PNGs, each class brighter in its own channel."""
    rng = np.random.default_rng(0)
    for c, label in enumerate(CLASSES):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (7, 9, 3), dtype=np.uint8)
            pixels[..., c] += 100
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


def _saved_like_folder(folder, target):
    """The folder's PNGs, in imagefolder's order, as a saved dataset (save_to_disk embeds their bytes)."""
    files = [(str(f), c) for c, label in enumerate(CLASSES) for f in sorted((folder / label).glob("*.png"))]
    features = Features({"image": datasets.Image(), "label": ClassLabel(names=CLASSES)})
    rows = {"image": [f for f, _ in files], "label": [c for _, c in files]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(target))
    return target


def _load(source, **options):
    return load_data(source, {"num_workers": 0, **options}, val_fraction=0.2, test_fraction=0.2, seed=3)


def _batches(dataset):
    return list(batch_loader(dataset, 4, shuffle=True, seed=5))


@pytest.mark.parametrize("stored", ["bytes (save_to_disk)", "paths (load_dataset of the folder)"])
def test_the_same_pngs_give_imagefolders_tensors_in_memory_and_streamed(tmp_path, monkeypatch, stored):
    folder = _png_folder(tmp_path / "pets")
    dataset = _saved_like_folder(folder, tmp_path / "saved") if stored.startswith("bytes") else folder
    said = []
    monkeypatch.setattr("protege.data.hf_images.log", said.append)
    reference = _load(f"imagefolder:{folder}", load="memory")
    memory = _load(f"hf_dataset:{dataset}", load="memory")
    stream = _load(f"hf_dataset:{dataset}", load="stream")
    assert said[0].startswith("hf_dataset: 18 images decoded into memory (options.load: memory)")
    assert said[1].startswith("hf_dataset: 18 images read from the dataset's rows by no worker processes")
    assert isinstance(stream.train, StreamedImages) and not isinstance(memory.train, StreamedImages)
    assert reference.class_names == memory.class_names == stream.class_names == CLASSES
    assert memory.input_shape == stream.input_shape == (3, 7, 9) and memory.preprocess == reference.preprocess
    for split in ("train", "val", "test"):
        ref, mem, streamed = (getattr(d, split) for d in (reference, memory, stream))
        assert torch.equal(ref.x, mem.x) and torch.equal(ref.y, mem.y)
        for a, b in zip(_batches(ref), _batches(streamed), strict=True):
            assert torch.equal(a["index"], b["index"]) and torch.equal(a["y"], b["y"]) and torch.equal(a["x"], b["x"])


def test_streamed_rows_are_read_by_worker_processes_and_fingerprinted_without_decoding(tmp_path):
    saved = _saved_like_folder(_png_folder(tmp_path / "pets"), tmp_path / "saved")
    stream = _load(f"hf_dataset:{saved}", load="stream", num_workers=1, size=[4, 5])
    memory = _load(f"hf_dataset:{saved}", load="memory", size=[4, 5])
    assert stream.train.num_workers == 1 and stream.input_shape == (3, 4, 5)
    assert torch.equal(torch.cat([b["x"] for b in batch_loader(stream.train, 4)]), memory.train.x)
    again = _load(f"hf_dataset:{saved}", load="stream", size=[4, 5])
    assert again.train.fingerprint() == stream.train.fingerprint() != stream.test.fingerprint()
    assert _load(f"hf_dataset:{saved}", load="stream").train.fingerprint() != stream.train.fingerprint()


def test_auto_keeps_a_small_dataset_in_memory_and_streams_a_large_one(tmp_path, monkeypatch):
    saved = _saved_like_folder(_png_folder(tmp_path / "pets"), tmp_path / "saved")
    assert not isinstance(_load(f"hf_dataset:{saved}").train, StreamedImages)
    monkeypatch.setattr("protege.data.images.AUTO_MEMORY_BYTES", 100)
    assert isinstance(_load(f"hf_dataset:{saved}").train, StreamedImages)


def _table(n=30):
    """Rows of two numeric features, a text and a label, every class in every tenth of the rows."""
    words = {"cat": "purr whiskers", "dog": "bark fetch", "owl": "hoot night"}
    labels = [CLASSES[i % 3] for i in range(n)]
    return {
        "x1": [float(i) for i in range(n)],
        "x2": [float(i % 7) for i in range(n)],
        "text": [f"{words[label]} {i}" for i, label in enumerate(labels)],
        "label": labels,
    }


def _splits_dict(tmp_path, extra_split=True):
    features = Features({"x1": Value("float32"), "x2": Value("int64"), "text": Value("string"),
                         "label": ClassLabel(names=CLASSES)})  # fmt: skip
    rows = _table()
    rows["label"] = [CLASSES.index(label) for label in rows["label"]]
    whole = datasets.Dataset.from_dict(rows, features=features)
    parts = {"train": whole.select(range(18)), "validation": whole.select(range(18, 24)),
             "test": whole.select(range(24, 30))}  # fmt: skip
    if extra_split:
        parts["unsupervised"] = whole.select(range(3))
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "dict"))
    return tmp_path / "dict"


def test_a_dataset_dicts_train_validation_and_test_splits_are_kept_with_their_class_names(tmp_path):
    data = _load(f"hf_dataset:{_splits_dict(tmp_path)}", feature_columns=["x1", "x2"])
    assert data.sizes() == {"train": 18, "val": 6, "test": 6} and data.class_names == CLASSES
    assert data.split["test"] == data.split["val"] == "source"
    assert data.test.x[:, 0].tolist() == list(range(24, 30)) and data.test.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert data.preprocess["features"] == ["x1", "x2"]


def test_split_names_the_one_split_to_read_and_the_loader_draws_the_others(tmp_path):
    data = _load(f"hf_dataset:{_splits_dict(tmp_path)}", split="train", feature_columns=["x1"])
    assert sum(data.sizes().values()) == 18 and data.split["test"] == "drawn"


def test_parquet_and_arrow_files_and_a_folder_of_them_give_the_same_rows(tmp_path):
    saved = _splits_dict(tmp_path, extra_split=False)
    train = datasets.load_from_disk(str(saved))["train"]
    train.to_parquet(str(tmp_path / "train.parquet"))
    (arrow,) = (saved / "train").glob("*.arrow")
    shutil.copy(arrow, tmp_path / "train.arrow")
    (tmp_path / "folder").mkdir()
    for split in ("train", "test"):
        datasets.load_from_disk(str(saved))[split].to_parquet(str(tmp_path / "folder" / f"{split}.parquet"))
    options = {"feature_columns": ["x1", "x2"], "cache_dir": str(tmp_path / "cache")}
    raws = [call_source(f"hf_dataset:{tmp_path / name}", **options) for name in ("train.parquet", "train.arrow")]
    for raw in raws:
        assert np.array_equal(raw.x, np.array([train["x1"], train["x2"]]).T) and raw.class_names == CLASSES
        assert raw.y.tolist() == train["label"] and raw.x_test is None
    folder = call_source(f"hf_dataset:{tmp_path / 'folder'}", **options)
    assert folder.x_test[:, 0].tolist() == list(range(24, 30)) and folder.class_names == CLASSES
    assert list((tmp_path / "cache" / "datasets").iterdir())  # the Arrow copies went where the recipe said


def test_texts_give_the_tfidf_features_a_csv_text_column_gives(tmp_path):
    rows = _table()
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "texts"))
    with (tmp_path / "texts.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows))
        writer.writeheader()
        writer.writerows([dict(zip(rows, values, strict=True)) for values in zip(*rows.values(), strict=True)])
    hf = _load(f"hf_dataset:{tmp_path / 'texts'}", text_column="text", max_features=50)
    table = load_data(f"csv:{tmp_path / 'texts.csv'}", {"text_column": "text", "max_features": 50},
                      val_fraction=0.2, test_fraction=0.2, seed=3)  # fmt: skip
    assert hf.class_names == table.class_names == CLASSES and hf.texts.tolist() == table.texts.tolist()
    assert torch.equal(hf.train.x, table.train.x) and torch.equal(hf.test.y, table.test.y)
    assert hf.preprocess == table.preprocess


def test_texts_reach_a_hugging_face_model_as_its_tokenizers_ids(tmp_path):
    from tests.conftest import WORDS, write_tiny_hf_model

    from protege.models.hf import text_encoder

    rows = {"text": [" ".join(WORDS[i % 6 : i % 6 + 3]) for i in range(30)], "label": [i % 2 for i in range(30)]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "texts"))
    tokens = text_encoder(f"hf:{write_tiny_hf_model(tmp_path / 'bert')}", {"max_length": 6})
    data = load_data(f"hf_dataset:{tmp_path / 'texts'}", {"text_column": "text"}, text_encoder=tokens, seed=3)
    assert data.train.x.dtype == torch.long and data.train.x.shape[1] == 6
    first = int(data.rows["train"][0])
    assert data.train.x[0].tolist() == tokens.transform([rows["text"][first]])[0].tolist()


def test_a_transfer_set_reads_a_text_column_of_every_split_with_no_labels(tmp_path):
    texts = [f"words {i}" for i in range(10)]
    parts = {"train": {"text": texts}, "unsupervised": {"text": ["more words"] * 3}}
    datasets.DatasetDict({k: datasets.Dataset.from_dict(v) for k, v in parts.items()}).save_to_disk(str(tmp_path / "d"))
    source = f"hf_dataset:{tmp_path / 'd'}"
    assert unlabeled_texts(source, {}, text_column="text") == [*texts, "more words", "more words", "more words"]
    assert unlabeled_texts(source, {"split": "unsupervised"}) == ["more words"] * 3
    assert unlabeled_texts(source, {}, limit=11) == [*texts, "more words"]
    with pytest.raises(DataError, match=r"no column 'body'; columns: text$"):
        unlabeled_texts(source, {"text_column": "body"})


def test_integer_labels_without_class_label_are_read_as_names(tmp_path):
    rows = {"x": [float(i) for i in range(12)], "label": [i % 2 for i in range(12)]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ints"))
    raw = call_source(f"hf_dataset:{tmp_path / 'ints'}")
    assert raw.class_names is None and raw.x.shape == (12, 1)
    assert _load(f"hf_dataset:{tmp_path / 'ints'}").class_names == ["0", "1"]


def _one_line(source, **options):
    with pytest.raises(DataError) as caught:
        call_source(source, **options)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_each_bad_column_or_split_is_one_line_naming_what_there_is(tmp_path):
    saved = f"hf_dataset:{_splits_dict(tmp_path)}"
    assert "no column 'labl' (did you mean \"label\"?); columns: x1, x2, text, label" in _one_line(
        saved, label_column="labl"
    )
    assert "no split 'dev'; splits: train, validation, test, unsupervised" in _one_line(saved, split="dev")
    assert "text column 'x2' holds int64, not strings" in _one_line(saved, text_column="x2")
    assert "column 'text' holds string, not numbers; name the numeric feature_columns" in _one_line(saved)
    images = _saved_like_folder(_png_folder(tmp_path / "pets"), tmp_path / "saved")
    assert "label column 'image' holds Image; a label is an integer, a ClassLabel, a string" in _one_line(
        f"hf_dataset:{images}", label_column="image"
    )
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.md").write_text("no data here\n")
    assert "not a Hugging Face dataset protege reads" in _one_line(f"hf_dataset:{tmp_path / 'notes'}")
    assert "data file or folder not found" in _one_line(f"hf_dataset:{tmp_path / 'nowhere'}")


def test_without_the_datasets_package_the_source_says_how_to_install_it(tmp_path, monkeypatch):
    saved = _splits_dict(tmp_path)
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now raises ImportError
    assert _one_line(f"hf_dataset:{saved}") == "hf_dataset reads Hugging Face datasets: pip install 'protege[datasets]'"


def test_protege_run_trains_on_a_saved_image_dataset_streamed_from_its_rows(tmp_path):
    saved = _saved_like_folder(_png_folder(tmp_path / "pets", per_class=10), tmp_path / "saved")
    recipe = {
        "name": "hf",
        "seed": 0,
        "data": {"source": f"hf_dataset:{saved}", "options": {"load": "stream", "num_workers": 0}},
        "student": {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 6, "batch_size": 8, "lr": 0.05}},
        "evaluate": {"latency": False},
    }
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    assert main(["run", str(tmp_path / "recipe.json"), "-o", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    card = json.loads((tmp_path / "run" / "student" / "model" / "model.json").read_text())
    assert card["class_names"] == report["data"]["class_names"] == CLASSES and card["input_shape"] == [3, 7, 9]
    assert report["data"]["sizes"] == {"train": 21, "val": 3, "test": 6}
    assert report["models"]["student"]["accuracy"] > 0.8  # each class is brighter in its own channel


def test_a_text_model_is_evaluated_on_another_dataset_through_the_column_it_was_trained_on(tmp_path):
    datasets.Dataset.from_dict(_table()).save_to_disk(str(tmp_path / "reviews"))
    datasets.Dataset.from_dict(_table(60)).save_to_disk(str(tmp_path / "more"))
    recipe = {
        "name": "texts",
        "data": {"source": f"hf_dataset:{tmp_path / 'reviews'}", "options": {"text_column": "text"}},
        "student": {"model": {"source": "fasttext", "dim": 8, "max_length": 8}, "train": {"epochs": 1}},
        "evaluate": {"latency": False, "html": False},
    }
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    assert main(["run", str(tmp_path / "recipe.json"), "-o", str(tmp_path / "run")]) == 0
    model = f"run:{tmp_path / 'run' / 'student' / 'model'}"
    argv = ["evaluate", model, "--data", f"hf_dataset:{tmp_path / 'more'}", "--test-fraction", "0.2"]
    assert main([*argv, "--no-latency", "--no-html", "-o", str(tmp_path / "eval")]) == 0  # no text_column named
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["data"]["sizes"]["test"] == 12

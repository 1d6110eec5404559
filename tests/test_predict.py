"""protege predict: the training preprocessing is replayed exactly, every model form gives the same
answers, every input kind is read, and bad input gets a one-line error naming the problem."""

import csv
import json
import pickle

import numpy as np
import pytest
import torch
from tests.export_runs import FEATURES, tabular_run, text_recipe, text_run

import protege
from protege.cli import main
from protege.errors import CheckpointError, ConfigError, DataError, ModelError
from protege.export import export_model
from protege.models import load_run_model
from protege.models.store import read_card
from protege.pipeline import load_recipe_data
from protege.predict import Predictor, load_predictor, predict
from protege.preprocess import Preprocessor


def _write_csv(path, rows, columns):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _pipeline_probabilities(run_dir, recipe):
    """What the model gives on the test split exactly as training preprocessed it."""
    data = load_recipe_data(recipe)
    model = load_run_model(f"run:{run_dir}", None, None).module.eval()
    with torch.no_grad():
        return torch.softmax(model(data.test.x), -1).numpy()


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    base = tmp_path_factory.mktemp("predict")
    result = tabular_run(base)
    test_rows = [row for row in _rows(base / "data.csv") if row["split"] == "test"]
    # columns in another order than training's, with the label and an unused column still there
    inputs = _write_csv(base / "inputs.csv", test_rows, ["label", "f1", "note", "f3", "f0", "f2"])
    expected = _pipeline_probabilities(result.run_dir, _recipe_of(result))
    exports = {fmt: export_model(result.run_dir, fmt).path for fmt in ("onnx", "torchscript", "safetensors")}
    return {"run": result.run_dir, "inputs": inputs, "rows": test_rows, "expected": expected, "exports": exports}


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    base = tmp_path_factory.mktemp("predict_text")
    result = text_run(base)
    test_rows = [row for row in _rows(base / "text.csv") if row["split"] == "test"]
    expected = _pipeline_probabilities(result.run_dir, text_recipe(base / "text.csv"))
    return {"run": result.run_dir, "rows": test_rows, "expected": expected, "base": base}


def _recipe_of(result):
    from protege.recipe_reader import load_recipe

    return load_recipe(result.run_dir / "config.yaml")


def _probabilities(predictions, classes):
    """Full probability rows back from top-k predictions (top_k = number of classes)."""
    return np.array([[dict(zip(p.classes, p.probabilities, strict=True))[c] for c in classes] for p in predictions])


def test_csv_rows_get_the_training_preprocessing(tabular):
    predictions = predict(tabular["run"], tabular["inputs"], top_k=3)
    assert [p.input for p in predictions][:2] == ["inputs.csv:2", "inputs.csv:3"]
    np.testing.assert_allclose(_probabilities(predictions, "abc"), tabular["expected"], atol=1e-6)
    accuracy = np.mean([p.classes[0] == row["label"] for p, row in zip(predictions, tabular["rows"], strict=True)])
    assert accuracy > 0.8


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "safetensors"])
def test_every_exported_format_gives_the_same_predictions(tabular, fmt):
    predictor = load_predictor(tabular["exports"][fmt])
    assert predictor.runtime == {"onnx": "onnxruntime", "torchscript": "torchscript", "safetensors": "pytorch"}[fmt]
    predictions = predict(predictor, tabular["inputs"], top_k=3)
    probabilities = _probabilities(predictions, "abc")
    np.testing.assert_allclose(probabilities, tabular["expected"], atol=1e-5)
    assert (probabilities.argmax(1) == tabular["expected"].argmax(1)).all()


def test_npy_and_npz_inputs_are_raw_features_in_the_stored_order(tabular, tmp_path):
    raw = np.array([[float(row[name]) for name in FEATURES] for row in tabular["rows"]], dtype=np.float32)
    np.save(tmp_path / "x.npy", raw)
    np.savez(tmp_path / "x.npz", x=raw, y=np.zeros(len(raw)))
    np.save(tmp_path / "one.npy", raw[0])
    for name in ("x.npy", "x.npz"):
        predictions = predict(tabular["run"], tmp_path / name, top_k=3)
        np.testing.assert_allclose(_probabilities(predictions, "abc"), tabular["expected"], atol=1e-5)
    (single,) = predict(tabular["run"], tmp_path / "one.npy")
    assert single.input == "one.npy[0]" and single.classes[0] == "abc"[tabular["expected"][0].argmax()]
    from_array = predict(tabular["run"], raw, top_k=1)
    assert [p.classes[0] for p in from_array] == ["abc"[i] for i in tabular["expected"].argmax(1)]


def test_top_k_is_sorted_and_capped(tabular):
    predictions = predict(tabular["run"], tabular["inputs"], top_k=2)
    assert all(len(p.classes) == 2 and p.probabilities[0] >= p.probabilities[1] for p in predictions)
    assert len(predict(tabular["run"], tabular["inputs"], top_k=10)[0].classes) == 3
    with pytest.raises(ConfigError, match="top_k must be at least 1"):
        predict(tabular["run"], tabular["inputs"], top_k=0)


def test_text_lines_and_text_csv_get_the_stored_tfidf(text, tmp_path):
    card = read_card(text["run"] / "student" / "model")
    assert card.preprocess["tfidf"]["column"] == "text" and "standardize" in card.preprocess
    lines = tmp_path / "reviews.txt"
    lines.write_text("\n".join(row["text"] for row in text["rows"]) + "\n\n", encoding="utf-8")
    by_line = predict(text["run"], lines, top_k=2)
    assert len(by_line) == len(text["rows"]) and by_line[1].input == "reviews.txt:2"
    np.testing.assert_allclose(_probabilities(by_line, ["neg", "pos"]), text["expected"], atol=1e-6)
    by_row = predict(text["run"], _write_csv(tmp_path / "t.csv", text["rows"], ["id", "text"]), top_k=2)
    np.testing.assert_allclose(_probabilities(by_row, ["neg", "pos"]), text["expected"], atol=1e-6)
    by_api = protege.predict(text["run"], texts=[row["text"] for row in text["rows"]], top_k=2)
    assert [p.classes for p in by_api] == [p.classes for p in by_line]


def test_text_models_predict_from_an_exported_onnx_file(text, tmp_path):
    path = export_model(text["run"], "onnx", output=tmp_path / "text.onnx").path
    predictions = predict(path, texts=["good great movie", "awful poor sad"], top_k=1)
    reference = predict(text["run"], texts=["good great movie", "awful poor sad"], top_k=1)
    assert [p.classes for p in predictions] == [p.classes for p in reference]


def test_cards_without_the_tokenizer_settings_use_the_training_defaults(text):
    card = read_card(text["run"] / "student" / "model")
    old = {k: v for k, v in card.preprocess["tfidf"].items() if k in ("vocabulary", "idf")}
    card.preprocess = {**{k: v for k, v in card.preprocess.items() if k != "text_column"}, "tfidf": old}
    texts = [row["text"] for row in text["rows"]]
    new_x = Preprocessor(read_card(text["run"] / "student" / "model")).from_texts(texts, "t")
    np.testing.assert_array_equal(Preprocessor(card).from_texts(texts, "t"), new_x)
    only_column = [{"words": t} for t in texts]
    np.testing.assert_array_equal(Preprocessor(card).from_rows(only_column, ["words"], "t"), new_x)


# Bad input: one ProtegeError naming the problem


def test_missing_feature_column(tabular, tmp_path):
    path = _write_csv(tmp_path / "m.csv", tabular["rows"], ["f0", "f1", "f3"])
    with pytest.raises(DataError, match=r"no column 'f2'.*the model needs columns f2, f0, f3, f1"):
        predict(tabular["run"], path)


def test_non_numeric_value_names_line_and_column(tabular, tmp_path):
    rows = [dict(row) for row in tabular["rows"][:3]]
    rows[1]["f3"] = "n/a"
    path = _write_csv(tmp_path / "bad.csv", rows, ["f0", "f1", "f2", "f3"])
    with pytest.raises(DataError, match=r"line 3, column 'f3': 'n/a' is not a number"):
        predict(tabular["run"], path)


def test_wrong_number_of_features_and_wrong_shape(tabular, tmp_path):
    np.save(tmp_path / "five.npy", np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(DataError, match="wrong number of features: 5, the model takes 4"):
        predict(tabular["run"], tmp_path / "five.npy")
    np.save(tmp_path / "cube.npy", np.zeros((3, 4, 2), dtype=np.float32))
    with pytest.raises(DataError, match=r"inputs of shape \(3, 4, 2\) do not fit the model"):
        predict(tabular["run"], tmp_path / "cube.npy")
    np.save(tmp_path / "nan.npy", np.array([[0, 1, 2, np.nan]], dtype=np.float32))
    with pytest.raises(DataError, match="input 0 holds NaN"):
        predict(tabular["run"], tmp_path / "nan.npy")


def test_text_for_a_numeric_model(tabular, tmp_path):
    (tmp_path / "t.txt").write_text("hello\n")
    with pytest.raises(DataError, match="text inputs need a text model; this model takes 4 numeric columns"):
        predict(tabular["run"], tmp_path / "t.txt")


def test_text_csv_without_the_text_column(text, tmp_path):
    path = _write_csv(tmp_path / "t.csv", text["rows"], ["id", "txt"])
    message = r"no column 'text', where the model reads its text \(did you mean \"txt\"\?\); columns: id, txt"
    with pytest.raises(DataError, match=message):
        predict(text["run"], path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_arrays_are_refused_without_running(tabular, tmp_path):
    marker = tmp_path / "pwned"
    np.save(tmp_path / "evil.npy", np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="without unpickling"):
        predict(tabular["run"], tmp_path / "evil.npy")
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_predictor(tmp_path / "evil.safetensors")
    assert not marker.exists()


def test_unusable_files(tabular, tmp_path):
    with pytest.raises(DataError, match="input file not found"):
        predict(tabular["run"], tmp_path / "gone.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match=r"unknown input type '\.json'"):
        predict(tabular["run"], tmp_path / "x.json")
    with pytest.raises(ModelError, match="model not found"):
        load_predictor(tmp_path / "nothing")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_predictor(tmp_path / "junk.onnx")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable TorchScript archive"):
        load_predictor(tmp_path / "junk.pt")


def test_exported_files_without_protege_metadata(tabular, tmp_path):
    import onnx
    from safetensors.torch import save_file

    proto = onnx.load(str(tabular["exports"]["onnx"]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(CheckpointError, match="no protege metadata in this ONNX model"):
        load_predictor(tmp_path / "bare.onnx")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(CheckpointError, match="no protege metadata in the file or beside it"):
        load_predictor(tmp_path / "bare.safetensors")


def test_unknown_preprocessing_is_refused(tabular):
    card = read_card(tabular["run"] / "student" / "model")
    card.preprocess = {**card.preprocess, "spectrogram": {"bins": 64}}
    with pytest.raises(ModelError, match="preprocessing step 'spectrogram'"):
        Preprocessor(card)


def test_predictor_is_reusable(tabular):
    predictor = load_predictor(f"run:{tabular['run']}")
    assert isinstance(predictor, Predictor) and predictor.runtime == "pytorch"
    assert len(predict(predictor, [tabular["inputs"], tabular["inputs"]])) == 2 * len(tabular["rows"])


# The command line


def test_cli_table_and_json(tabular, capsys):
    assert main(["predict", str(tabular["exports"]["onnx"]), str(tabular["inputs"]), "--top-k", "2"]) == 0
    table = capsys.readouterr().out
    assert "inputs.csv:2" in table and "#2" in table and "%" in table
    assert main(["predict", str(tabular["run"]), str(tabular["inputs"]), "--json", "--top-k", "1"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert len(parsed) == len(tabular["rows"]) and set(parsed[0]) == {"input", "predictions"}
    assert parsed[0]["predictions"][0]["class"] == "abc"[tabular["expected"][0].argmax()]


def test_cli_errors_are_one_line(tabular, tmp_path, capsys):
    np.save(tmp_path / "five.npy", np.zeros((3, 5), dtype=np.float32))
    assert main(["predict", str(tabular["run"]), str(tmp_path / "five.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("protege: error: ") and err.count("\n") == 1 and "wrong number of features" in err


def test_cli_export(tabular, tmp_path, capsys):
    target = tmp_path / "cli.pt"
    assert main(["export", str(tabular["run"]), "--format", "torchscript", "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert str(target) in out and "30 test inputs" in out and target.is_file()
    assert main(["export", str(tabular["run"]), "--stage", "teachr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no saved 'teachr' model; stages there: student" in err


def test_image_models_take_arrays_or_flattened_csv_rows(tmp_path):
    from protege.models import build_model, save_model

    torch.manual_seed(0)
    built = build_model("cnn2d", {"width": 4}, (1, 8, 8), [str(d) for d in range(10)])
    save_model(built.module, built.card, tmp_path / "model")
    images = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        expected = torch.softmax(built.module.eval()(torch.from_numpy(images)), -1).numpy()
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "flat.npy", images.reshape(5, 64))
    columns = [f"p{i}" for i in range(64)]
    rows = [dict(zip(columns, map(str, image.ravel().tolist()), strict=True)) for image in images]
    _write_csv(tmp_path / "pixels.csv", rows, columns)
    digits = [str(d) for d in range(10)]
    for name in ("images.npy", "flat.npy", "pixels.csv"):
        predictions = predict(tmp_path / "model", tmp_path / name, top_k=10)
        np.testing.assert_allclose(_probabilities(predictions, digits), expected, atol=1e-6, err_msg=name)
    _write_csv(tmp_path / "extra.csv", [{**row, "label": "3"} for row in rows], [*columns, "label"])
    with pytest.raises(DataError, match=r"wrong number of features: 65 columns, the model takes 64 values per input"):
        predict(tmp_path / "model", tmp_path / "extra.csv")


def test_table_prints_names_verbatim(tmp_path, capsys):
    from protege.models import build_model, save_model

    built = build_model("mlp", {"hidden": 4}, (3,), ["[red]", "[/]"])
    save_model(built.module, built.card, tmp_path / "model")
    np.save(tmp_path / "x[1].npy", np.zeros((1, 3), dtype=np.float32))
    assert main(["predict", str(tmp_path / "model"), str(tmp_path / "x[1].npy")]) == 0
    out = capsys.readouterr().out
    assert "[red]" in out and "[/]" in out and "x[1].npy[0]" in out


def test_output_piped_into_head_ends_quietly(tmp_path):
    import os
    import subprocess
    import sys

    from protege.models import build_model, save_model

    built = build_model("mlp", {"hidden": 4}, (3,), ["a", "b"])
    save_model(built.module, built.card, tmp_path / "model")
    np.save(tmp_path / "many.npy", np.zeros((20000, 3), dtype=np.float32))  # far more output than a pipe holds
    command = [sys.executable, "-m", "protege.cli", "predict", str(tmp_path / "model"), str(tmp_path / "many.npy")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([*command, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout.readline() == b"[\n"
    process.stdout.close()
    stderr = process.communicate(timeout=120)[1].decode()
    assert "Traceback" not in stderr and process.returncode == 141, stderr

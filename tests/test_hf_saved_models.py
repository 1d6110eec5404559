"""A trained hf: model after its run: ``protege evaluate`` tokenises with its saved tokenizer, and every
export format works quietly and carries the tokenizer, so the file predicts on its own."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from tests.conftest import write_sentiment_csv, write_tiny_hf_model

from protege.cli import main
from protege.export import export_model
from protege.pipeline import run_recipe
from protege.predict import predict
from protege.recipe_reader import recipe_from_dict

TEXTS = ["the film was good", "awful food", "quite poor very bad", "great"]


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    """A tiny-bert student trained on the sentiment CSV, with its own copy of the pretrained folder."""
    tmp = tmp_path_factory.mktemp("hf-run")
    folder = write_tiny_hf_model(tmp / "tiny-bert")
    csv = write_sentiment_csv(tmp / "sentiment.csv", n=80)
    raw = {
        "name": "text",
        "data": {"source": f"csv:{csv}", "options": {"text_column": "text"}},
        "student": {
            "model": {"source": f"hf:{folder}", "max_length": 12, "padding": "longest"},
            "train": {"epochs": 3, "batch_size": 16, "lr": 0.005},
        },
        "evaluate": {"latency": False, "html": False},
    }
    result = run_recipe(recipe_from_dict(raw), tmp / "run")
    return {"tmp": tmp, "folder": folder, "csv": csv, "run": result.run_dir, "report": result.report}


def _scores(report: dict, name: str) -> tuple[float, float]:
    model = report["models"][name]
    return model["accuracy"], model["nll"]


def test_evaluate_a_run_reproduces_its_report(hf_run, tmp_path):
    assert main(["evaluate", str(hf_run["run"]), "--no-latency", "--no-html", "-o", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert _scores(report, "student") == pytest.approx(_scores(hf_run["report"], "student"), abs=1e-6)


def test_evaluate_a_model_folder_on_named_data_reads_its_text_column(hf_run, tmp_path):
    model = hf_run["run"] / "student" / "model"
    argv = ["evaluate", str(model), "--data", f"csv:{hf_run['csv']}", "--no-latency", "--no-html", "-o", str(tmp_path)]
    assert main(argv) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    # the same seed and test fraction draw the run's test split; the tokenizer pads to the trained length
    assert _scores(report, "model") == pytest.approx(_scores(hf_run["report"], "student"), abs=1e-6)


def test_every_export_predicts_alone_after_the_run_and_the_pretrained_folder_are_gone(hf_run, tmp_path):
    exports = {
        fmt: export_model(hf_run["run"], fmt, output=tmp_path / f"model.{ext}").path
        for fmt, ext in [("onnx", "onnx"), ("torchscript", "pt"), ("safetensors", "safetensors")]
    }
    proto = onnx.load(str(exports["onnx"]))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64  # token ids
    assert "tokenizer.json" in json.loads({p.key: p.value for p in proto.metadata_props}["hf_files"])
    expected = predict(hf_run["run"], texts=TEXTS, top_k=2)
    moved = hf_run["tmp"] / "moved"
    moved.mkdir()
    for path in (hf_run["run"], hf_run["folder"]):
        shutil.move(path, moved / path.name)
    try:
        for fmt, path in exports.items():
            got = predict(path, texts=TEXTS, top_k=2)
            assert [p.classes for p in got] == [p.classes for p in expected], fmt
            np.testing.assert_allclose(
                [p.probabilities for p in got], [p.probabilities for p in expected], atol=1e-5, err_msg=fmt
            )
    finally:
        for path in (hf_run["run"], hf_run["folder"]):
            shutil.move(moved / path.name, path)


def test_exports_print_nothing_but_the_result(hf_run, tmp_path):
    script = (
        "import sys; from protege.cli import main\n"
        f"sys.exit(main(['export', {str(hf_run['run'])!r}, '-f', 'onnx', '-o', {str(tmp_path / 'm.onnx')!r}])"
        f" or main(['export', {str(hf_run['run'])!r}, '-f', 'torchscript', '-o', {str(tmp_path / 'm.pt')!r}]))"
    )
    env = {**os.environ, "PROTEGE_QUIET": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no "Evaluation failed", no TracerWarning, no transformers warning
    assert done.stdout.count("max |difference| from PyTorch") == 2


def test_a_bare_hf_model_folder_exports_checked_on_random_token_ids(hf_run, tmp_path):
    model = hf_run["run"] / "student" / "model"
    shutil.copytree(model, tmp_path / "model")
    for fmt, ext in [("onnx", "onnx"), ("torchscript", "pt"), ("safetensors", "safetensors")]:
        result = export_model(tmp_path / "model", fmt, output=tmp_path / f"m.{ext}")
        assert result.samples == "64 random inputs" and result.max_abs_diff < 1e-4, fmt

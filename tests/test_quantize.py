"""int8 export: the file predicts like the float model within a stated tolerance and runs in every reader,
its measurements (float and int8) land beside it and in the run's report, and an int8 model that loses
more of the test metric than --max-drop is refused with nothing written."""

import json
import shutil

import numpy as np
import pytest
from tests.conftest import write_sentiment_csv, write_tiny_hf_model
from tests.export_runs import FEATURES, add_outlier_weight, tabular_run, text_run

import protege
from protege.cli import main
from protege.errors import ConfigError, ModelError, QuantizationError
from protege.export import export_model, read_exported
from protege.pipeline import run_recipe
from protege.quantize import DEFAULT_MAX_DROP, export_int8
from protege.recipe_reader import recipe_from_dict

AGREEMENT = 0.9
"""int8 and float agree on the top class of at least this share of the test split..."""
LOGIT_GAP = 0.1
"""...and their logits differ by at most this share of the largest float logit."""


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    run = tabular_run(tmp_path_factory.mktemp("int8")).run_dir
    return {"run": run, "float": export_model(run, "onnx"), "int8": export_int8(run)}


def _examples(csv_path) -> np.ndarray:
    """The data's own rows in the order the model reads its features: int8's per-tensor activation scale is
    sized for them (random normal inputs are far outside features of mean 500 and scale 100)."""
    import csv

    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([[float(row[name]) for name in FEATURES] for row in rows], dtype=np.float32)


def _assert_close(float_path, int8_path, x):
    plain, int8 = read_exported(float_path), read_exported(int8_path)
    assert int8.runtime == "onnxruntime" and int8.card == plain.card
    expected, got = plain.logits(x), int8.logits(x)
    assert (expected.argmax(-1) == got.argmax(-1)).mean() >= AGREEMENT
    assert np.abs(got - expected).max() <= LOGIT_GAP * np.abs(expected).max()


def test_int8_file_is_written_beside_the_float_one_and_predicts_like_it(tabular):
    result = tabular["int8"]
    assert result.path == tabular["run"] / "student" / "export" / "model.int8.onnx"
    assert result.path.stat().st_size < tabular["float"].path.stat().st_size
    assert not list(result.path.parent.glob(".*")), "no temporary files left behind"
    _assert_close(tabular["float"].path, result.path, _examples(tabular["run"].parent / "data.csv"))
    assert result.measures["agreement"] >= AGREEMENT


def test_measurements_hold_float_and_int8_beside_the_file_and_in_the_report(tabular):
    result, run = tabular["int8"], tabular["run"]
    measures = json.loads(result.measures_path.read_text())
    assert result.measures_path.name == "model.int8.quantization.json" and measures == result.measures
    assert measures["metric"] == "accuracy" and measures["test_examples"] == 30
    assert measures["int8"]["file_bytes"] == result.path.stat().st_size
    for kind in ("float", "int8"):
        assert 0.8 <= measures[kind]["accuracy"] <= 1.0
        assert set(measures[kind]["latency_ms"]) == {"1", "64"}
        assert all(ms > 0 for ms in measures[kind]["latency_ms"].values())
    assert measures["drop"] == pytest.approx(measures["float"]["accuracy"] - measures["int8"]["accuracy"])
    assert measures["float"]["accuracy"] == pytest.approx(json.loads((run / "report.json").read_text())["models"]
                                                         ["student"]["accuracy"], abs=1e-6)  # fmt: skip
    report = json.loads((run / "report.json").read_text())
    assert report["quantization"]["student"] == measures and result.report == run / "report.json"
    page = (run / "report.html").read_text()
    assert "int8 export: float versus int8" in page and "student/export/model.int8.onnx" in page
    assert f"{measures['int8']['accuracy']:.4f}" in page and f"{measures['float']['accuracy']:.4f}" in page


def test_predict_runs_the_int8_file(tabular, tmp_path, capsys):
    rows = "f0,f1,f2,f3\n500,20,0,-3\n" + "\n".join("1,2,3,4" for _ in range(3)) + "\n"
    (tmp_path / "rows.csv").write_text(rows)
    outputs = {}
    for kind in ("float", "int8"):
        capsys.readouterr()
        assert main(["predict", str(tabular[kind].path), str(tmp_path / "rows.csv"), "--json", "--top-k", "1"]) == 0
        outputs[kind] = [p["predictions"][0]["class"] for p in json.loads(capsys.readouterr().out)]
    assert outputs["int8"] == outputs["float"] and len(outputs["int8"]) == 4


def test_an_int8_model_beyond_max_drop_is_refused_and_nothing_is_written(tabular, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tabular["run"], run, ignore=shutil.ignore_patterns("export"))
    add_outlier_weight(run / "student" / "model")
    report = (run / "report.json").read_bytes()
    with pytest.raises(QuantizationError) as refused:
        export_int8(run)
    message = str(refused.value)
    float_accuracy, int8_accuracy = (float(v) for v in _accuracies(message))
    assert float_accuracy >= int8_accuracy + 0.3  # the outlier leaves int8 at chance, the float model not
    assert f"beyond --max-drop {DEFAULT_MAX_DROP:g}; nothing written" in message and "\n" not in message
    assert not (run / "student" / "export").exists() and (run / "report.json").read_bytes() == report
    allowed = message.split("Allow it with --max-drop ")[1].split(",")[0]
    assert export_int8(run, max_drop=float(allowed)).path.is_file()  # the suggested value lets it through


def _accuracies(message: str) -> tuple[str, str]:
    """The two accuracies of a refusal: 'test accuracy 0.9667 (float) -> 0.3333 (int8)'."""
    head = message.split("test accuracy ")[1]
    return head.split(" (float)")[0], head.split("-> ")[1].split(" (int8)")[0]


def test_a_tfidf_text_model_quantizes_and_predicts_texts(tmp_path):
    run = text_run(tmp_path).run_dir
    result = export_int8(run, output=tmp_path / "text.int8.onnx")
    assert result.report == run / "report.json" and result.measures["int8"]["accuracy"] >= 0.8
    texts = ["good great movie", "awful sad bad", "the movie was fine", "poor nice film"]
    expected = [p.classes[0] for p in protege.predict(run, texts=texts)]
    assert [p.classes[0] for p in protege.predict(result.path, texts=texts)] == expected
    assert expected[:2] == ["pos", "neg"]


def test_a_cnn_quantizes_its_linear_head_and_keeps_its_convolutions_float(tmp_path):
    import onnx

    raw = {
        "name": "cnn",
        "data": {"source": "digits"},
        "student": {"model": {"source": "cnn2d", "width": 4}, "train": {"epochs": 2, "batch_size": 128}},
        "evaluate": {"latency": False, "html": False},
    }
    run = run_recipe(recipe_from_dict(raw), tmp_path / "run").run_dir
    result = protege.export(run, "onnx", quantize="int8", max_drop=1.0)
    ops = {node.op_type for node in onnx.load(str(result.path)).graph.node}
    assert {"Conv", "MatMulInteger"} <= ops and "ConvInteger" not in ops
    assert result.measures["drop"] <= 1.0 and "quantization" in json.loads((run / "report.json").read_text())


def test_an_hf_transformer_quantizes_to_int8_onnx(tmp_path):
    folder = write_tiny_hf_model(tmp_path / "tiny-bert")
    csv = write_sentiment_csv(tmp_path / "sentiment.csv", n=60)
    raw = {
        "name": "text",
        "data": {"source": f"csv:{csv}", "options": {"text_column": "text"}},
        "student": {
            "model": {"source": f"hf:{folder}", "max_length": 12, "padding": "longest"},
            "train": {"epochs": 1, "batch_size": 16, "lr": 0.005},
        },
        "evaluate": {"latency": False, "html": False},
    }
    run = run_recipe(recipe_from_dict(raw), tmp_path / "run").run_dir
    result = export_int8(run, max_drop=1.0)
    texts = ["the film was good", "awful food"]
    got = protege.predict(result.path, texts=texts, top_k=2)
    assert [sorted(p.classes) for p in got] == [["neg", "pos"]] * 2 and result.measures["max_abs_diff"] < 1.0


def test_refused_up_front_other_format_bad_tolerance_or_a_model_outside_a_run(tabular, tmp_path):
    run = tabular["run"]
    with pytest.raises(ConfigError, match=r"writes ONNX only .*, not torchscript; use --format onnx"):
        export_int8(run, format="torchscript")
    for bad in (-0.01, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=r"--max-drop must be a finite number at least 0"):
            export_int8(run, max_drop=bad)
    with pytest.raises(ConfigError, match=r"unknown quantization 'int4' \(did you mean \"int8\"\?\)"):
        export_int8(run, "int4")
    with pytest.raises(ConfigError, match=r"must end in \.onnx"):
        export_int8(run, output=tmp_path / "model.pt")
    shutil.copytree(run / "student" / "model", tmp_path / "model")
    with pytest.raises(ModelError, match=r"is not a stage of a run, and --quantize int8 measures"):
        export_int8(tmp_path / "model")
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.parametrize(("task", "metric"), [("regression", "r2"), ("multilabel", "micro_f1")])
def test_regression_and_multilabel_compare_their_headline_metric(task, metric, tmp_path):
    from protege.recipe_reader import load_recipe

    overrides = ["teacher.train.epochs=2", "student.train.epochs=1", "student.baseline.epochs=1"]
    overrides += ["evaluate.latency=false", "data.options.num_samples=300", "transfer.options.num_samples=300"]
    run = run_recipe(load_recipe(f"recipes/{task}.yaml", overrides), tmp_path / "run").run_dir
    measures = export_int8(run, max_drop=1.0).measures
    assert measures["metric"] == metric and measures["task"] == task
    assert measures["drop"] == pytest.approx(measures["float"][metric] - measures["int8"][metric])
    assert ("agreement" in measures) == (task == "multilabel")
    assert json.loads((run / "report.json").read_text())["quantization"]["student"] == measures


def test_the_command_prints_float_and_int8_and_where_it_wrote(tabular, tmp_path, capsys):
    run, target = tmp_path / "run", tmp_path / "cli.int8.onnx"
    shutil.copytree(tabular["run"], run, ignore=shutil.ignore_patterns("export"))  # its report changes
    argv = ["export", str(run), "--quantize", "int8", "-o", str(target), "--max-drop", "0.5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "latency b64" in out and "file size" in out
    assert str(target) in out and (tmp_path / "cli.int8.quantization.json").is_file()
    report = json.loads((run / "report.json").read_text())
    assert report["quantization"]["student"]["file"] == str(target)  # outside the run: the path as given

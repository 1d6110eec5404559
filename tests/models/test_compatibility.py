"""A saved model meets data: classes in another order are reordered, everything else that differs from
its training is refused or, in ``protege evaluate``, applied from its card."""

import json

import numpy as np
import pytest
import torch
from tests.export_runs import FEATURES, tabular_run

from protege.cli import main
from protege.errors import ModelError
from protege.export import export_model
from protege.models import ModelCard, load_run_model, save_model
from protege.models.builtin import mlp
from protege.predict import predict


def _saved(tmp_path, names):
    torch.manual_seed(0)
    module = mlp((4,), len(names), hidden=8)
    save_model(module, ModelCard("mlp", {"hidden": 8}, [4], list(names)), tmp_path / "model")
    return module.eval()


def test_classes_in_another_order_are_reordered_to_the_data(tmp_path):
    original = _saved(tmp_path, ["cat", "dog", "owl"])
    loaded = load_run_model(f"run:{tmp_path / 'model'}", (4,), ["owl", "cat", "dog"])
    x = torch.randn(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module.eval()(x), original(x)[:, [2, 0, 1]])
    assert loaded.card.class_names == ["owl", "cat", "dog"]


def test_other_classes_are_refused(tmp_path):
    _saved(tmp_path, ["cat", "dog", "owl"])
    with pytest.raises(ModelError, match="predicts class 'owl', which the data does not have"):
        load_run_model(f"run:{tmp_path / 'model'}", (4,), ["cat", "dog", "emu"])


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    base = tmp_path_factory.mktemp("compat")
    result = tabular_run(base)
    rows = [line.split(",") for line in (base / "data.csv").read_text().splitlines()]
    return base, result, rows


def _write_columns(path, rows, columns, rename=None):
    header = rows[0]
    out = [[(rename or {}).get(c, c) for c in columns]]
    out += [[row[header.index(c)] for c in columns] for row in rows[1:]]
    path.write_text("\n".join(",".join(r) for r in out) + "\n")
    return path


def test_evaluate_picks_the_models_columns_by_name(tabular, tmp_path):
    _, result, rows = tabular
    shuffled = _write_columns(tmp_path / "shuffled.csv", rows, ["f3", "label", "f1", "f0", "split", "f2"])
    argv = ["evaluate", str(result.run_dir / "student" / "model"), "--data", f"csv:{shuffled}"]
    argv += ["--data-option", "split_column=split", "--no-latency", "--no-html", "-o", str(tmp_path / "report")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["models"]["model"]["accuracy"] == pytest.approx(result.report["models"]["student"]["accuracy"])


def test_evaluate_names_a_renamed_column(tabular, tmp_path, capsys):
    _, result, rows = tabular
    renamed = _write_columns(tmp_path / "renamed.csv", rows, [*FEATURES, "label", "split"], rename={"f0": "x0"})
    argv = ["evaluate", str(result.run_dir / "student" / "model"), "--data", f"csv:{renamed}"]
    assert main([*argv, "--data-option", "split_column=split", "--no-latency", "--no-html"]) == 2
    assert "no column 'f0'" in capsys.readouterr().err


def test_evaluate_uses_the_models_own_split_of_its_source(tmp_path):
    run = tmp_path / "run"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: s\nseed: 4\ndata: {source: digits, test_fraction: 0.25}\n"
        "student: {model: {source: mlp, hidden: 8}, train: {epochs: 1, batch_size: 256}}\n"
        "evaluate: {latency: false, html: false}\n"
    )
    assert main(["run", str(recipe), "-o", str(run)]) == 0
    out = tmp_path / "eval"
    assert (
        main(["evaluate", str(run / "student"), "--data", "digits", "--no-latency", "--no-html", "-o", str(out)]) == 0
    )
    report = json.loads((out / "report.json").read_text())
    trained = json.loads((run / "report.json").read_text())
    assert report["seed"] == 4 and report["models"]["model"]["accuracy"] == trained["models"]["student"]["accuracy"]


def test_an_export_whose_card_names_more_classes_than_it_has_outputs(tabular, tmp_path):
    import onnx

    _, result, _ = tabular
    path = export_model(result.run_dir, "onnx", output=tmp_path / "model.onnx").path
    proto = onnx.load(str(path))
    for entry in proto.metadata_props:
        if entry.key == "protege":
            card = json.loads(entry.value)
            card["class_names"].append("extra")
            entry.value = json.dumps(card)
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match=r"outputs of shape \(3,\) but its card names 4 classes"):
        predict(path, np.zeros((2, 4), dtype=np.float32))

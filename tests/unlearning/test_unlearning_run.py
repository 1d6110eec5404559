"""Unlearning end to end: a recipe with every method and SISA, the audit trail, the report, and
``protege forget`` on a finished run, which leaves that run byte for byte as it was."""

import hashlib
import json

import pytest

from protege.cli import main
from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

RECIPE = {
    "name": "forget",
    "seed": 1,
    "data": {"source": "digits", "standardize": True},
    "unlearning": {
        "forget": {"fraction": 0.1},
        "methods": ["finetune", "neggrad", "random_label", "scrub", "bad_teacher"],
        "sisa": {"shards": 3, "slices": 2},
        "epochs": 2,
    },
    "student": {"model": {"source": "mlp", "hidden": 32}, "train": {"epochs": 6, "batch_size": 64, "lr": 0.003}},
    "evaluate": {"latency": False},
}


@pytest.fixture(scope="module")
def unlearned(tmp_path_factory):
    out = tmp_path_factory.mktemp("ul") / "run"
    return out, run_recipe(recipe_from_dict(RECIPE), out)


def _digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_every_method_is_measured_against_the_retrained_model(unlearned):
    _, result = unlearned
    block = result.report["unlearning"]
    models = block["models"]
    assert set(models) == {"original", "retrained", "finetune", "neggrad", "random_label", "scrub", "bad_teacher",
                           "sisa_before", "sisa"}  # fmt: skip
    for name, entry in models.items():
        for key in ("forget_accuracy", "retain_accuracy", "test_accuracy", "mia_auc", "seconds"):
            assert entry[key] is not None, (name, key)
        assert 0 <= entry["mia_auc"] <= 1
        assert sum(entry["loss_histogram"]["forget"]) == block["forget_size"]
    assert models["retrained"]["agreement_test"] == 1.0 and models["retrained"]["mia_auc_gap"] == 0.0
    assert models["original"]["forget_accuracy"] >= models["retrained"]["forget_accuracy"]  # it saw them
    assert block["sisa"]["shards_retrained"] == 3 and block["forget_size"] == round(0.1 * 1293)


def test_the_audit_trail_names_examples_by_hash(unlearned):
    out, result = unlearned
    audit = json.loads((out / "unlearning.json").read_text())
    assert audit["forgotten_examples"] == result.report["unlearning"]["forget_size"]
    assert len(audit["forgotten_sha256"]) == audit["forgotten_examples"]
    assert "sisa" in audit["methods"] and "scrub" in audit["evaluation"]
    page = (out / "report.html").read_text()
    assert "Unlearning" in page and "MIA AUC" in page


def test_forget_writes_a_new_run_and_leaves_the_old_one_unchanged(unlearned, tmp_path, capsys):
    out, _ = unlearned
    before = _digest(out)
    rows = tmp_path / "rows.txt"
    from protege.data.build import load_data

    train_rows = load_data("digits", seed=1).rows["train"]
    rows.write_text(f"{int(train_rows[0])}\n{int(train_rows[5])}\n")
    assert main(["forget", str(out), "--examples", str(rows), "--method", "neggrad", "-o", str(tmp_path / "a")]) == 0
    assert main(["forget", str(out), "--examples", str(rows), "--method", "sisa", "-o", str(tmp_path / "b")]) == 0
    assert _digest(out) == before  # not a byte of the run it started from changed
    made = json.loads((tmp_path / "a" / "report.json").read_text())["unlearning"]
    assert made["forget_size"] == 2 and "neggrad" in made["models"] and made["trained_run"] == str(out)
    exact = json.loads((tmp_path / "b" / "report.json").read_text())["unlearning"]["sisa"]
    assert 1 <= exact["shards_retrained"] <= 2 and exact["slices_retrained"] <= 4
    assert (tmp_path / "b" / "unlearning.json").is_file()

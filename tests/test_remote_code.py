"""Code named by a Hugging Face folder runs only when the user allows it (recipe or command line): not
when a saved model's card says trust_remote_code, not for a run: teacher, a rank candidate or evaluate."""

import sys

import pytest
import transformers
from tests.catalogue.hf import CASES, code_model, text_recipe
from tests.conftest import write_tiny_hf_model
from tests.hf_files import name_code, saved_hf_model

from protege.cli import main
from protege.models import build_model

REFUSED = [
    "predict with a saved model whose config names code",
    "export of a saved model whose config names code",
    "evaluate a saved model whose config names code",
    "a card that trusts code its config does not name, and a tokenizer config that does",
    "a run: teacher that needs code, not allowed by the recipe",
    "an hf: folder whose tokenizer names code, not allowed by the recipe",
    "a rank candidate that needs code",
    "an export whose embedded tokenizer names code",
]


@pytest.fixture
def modules_cache(tmp_path, monkeypatch):
    """Where transformers copies a folder's code before importing it: here, not in ~/.cache."""
    import transformers.dynamic_module_utils as dynamic

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.mark.parametrize("case", REFUSED)
def test_code_a_loaded_folder_names_does_not_run(case, tmp_path, capsys, modules_cache):
    make, expected = CASES[case]
    assert main(make(tmp_path)) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "ran").exists()


def test_the_users_flag_lets_the_code_run(tmp_path, capsys, modules_cache):
    model = code_model(tmp_path)
    assert main(["predict", str(model), str(tmp_path / "texts.txt"), "--trust-remote-code", "--json"]) == 0
    assert (tmp_path / "ran").is_file() and '"input": "texts.txt:2"' in capsys.readouterr().out


def test_a_recipe_lets_a_run_teacher_run_its_code(tmp_path, modules_cache):
    argv = text_recipe(tmp_path, teacher={"source": f"run:{code_model(tmp_path)}", "trust_remote_code": True})
    assert main(argv) == 0
    assert (tmp_path / "ran").is_file() and (tmp_path / "run" / "report.json").is_file()


def test_resuming_a_run_keeps_the_recipes_permission(tmp_path, modules_cache):
    folder = name_code(write_tiny_hf_model(tmp_path / "tiny-bert"), tmp_path / "ran")
    saved_hf_model(tmp_path / "data")  # the sentiment CSV and texts
    (tmp_path / "sentiment.csv").write_bytes((tmp_path / "data" / "sentiment.csv").read_bytes())
    argv = text_recipe(tmp_path, student={"source": f"hf:{folder}", "max_length": 12, "trust_remote_code": True})
    assert main(argv) == 0
    saved = tmp_path / "run" / "student" / "model"
    assert "auto_map" in (saved / "config.json").read_text()  # the saved model needs the code too
    (tmp_path / "ran").unlink()
    assert main([*argv, "--resume"]) == 0  # the finished stage is loaded with the recipe's permission
    assert (tmp_path / "ran").is_file()


def test_a_cards_trust_is_not_passed_to_transformers(tmp_path, monkeypatch):
    model = saved_hf_model(tmp_path)
    card = (model / "model.json").read_text()
    (model / "model.json").write_text(card.replace('"max_length": 12', '"max_length": 12, "trust_remote_code": true'))
    seen = []
    for name in ("AutoConfig", "AutoTokenizer", "AutoModel"):
        loader = getattr(transformers, name)
        real = loader.from_pretrained

        def spy(*args, real=real, **kwargs):
            seen.append(kwargs.get("trust_remote_code"))
            return real(*args, **kwargs)

        monkeypatch.setattr(loader, "from_pretrained", spy)
    built = build_model(f"run:{model}", {}, (12,), ["neg", "pos"])
    assert built.card.options["trust_remote_code"] is True  # kept as a record of how it was trained
    assert seen and not any(seen)

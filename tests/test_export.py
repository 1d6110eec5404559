"""Export to safetensors, ONNX and TorchScript: outputs match PyTorch, the card travels inside the file,
files land atomically where asked, and objective adapters stay out."""

import importlib
import json

import numpy as np
import onnx
import pytest
import torch
from safetensors import safe_open
from tests.export_runs import tabular_recipe, tabular_run, write_tabular_csv

import protege
from protege.errors import ConfigError, ModelError
from protege.export import CARD_KEY, LABELS_KEY, TORCHSCRIPT_CARD, export_model, read_exported
from protege.models import build_model, load_run_model, save_model
from protege.models.store import card_from_json, read_card
from protege.pipeline import run_recipe

export_module = importlib.import_module("protege.export")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tabular_run(tmp_path_factory.mktemp("export")).run_dir


@pytest.fixture(scope="module")
def exported(run):
    return {fmt: export_model(run, fmt) for fmt in ("safetensors", "onnx", "torchscript")}


def test_each_format_matches_pytorch_on_the_test_split(exported):
    for fmt, result in exported.items():
        assert result.samples == "30 test inputs", fmt
        assert result.max_abs_diff < 1e-5, (fmt, result.max_abs_diff)


def test_default_paths_sit_beside_the_stage_model(run, exported):
    assert exported["onnx"].path == run / "student" / "export" / "model.onnx"
    assert exported["torchscript"].path == run / "student" / "export" / "model.pt"
    assert exported["safetensors"].path == run / "student" / "export" / "model.safetensors"
    assert not list((run / "student" / "export").glob(".*")), "no temporary files left behind"


def test_exported_files_reproduce_pytorch_on_fresh_inputs(run, exported):
    built = load_run_model(f"run:{run}", None, None)
    x = torch.randn(7, *built.card.input_shape)
    with torch.no_grad():
        expected = built.module.eval()(x).numpy()
    for fmt, result in exported.items():
        loaded = read_exported(result.path)
        assert loaded.card == built.card and loaded.files is None, fmt  # a builtin model needs no other files
        np.testing.assert_allclose(loaded.logits(x.numpy()), expected, atol=1e-5, err_msg=fmt)


def test_onnx_metadata_and_dynamic_batch(run, exported):
    proto = onnx.load(str(exported["onnx"].path))
    meta = {p.key: p.value for p in proto.metadata_props}
    card = card_from_json(meta[CARD_KEY], "onnx")
    assert card == read_card(run / "student" / "model")
    assert json.loads(meta[LABELS_KEY]) == ["a", "b", "c"]
    assert card.preprocess["features"] == ["f2", "f0", "f3", "f1"]
    assert len(card.preprocess["standardize"]["mean"]) == 4
    batch_axis = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_axis.dim_param and not batch_axis.dim_value


def test_safetensors_header_and_sidecar_make_a_model_directory(run, exported):
    path = exported["safetensors"].path
    with safe_open(str(path), "pt") as handle:
        header = handle.metadata()
        keys = set(handle.keys())
    card = card_from_json(header[CARD_KEY], "header")
    assert card == read_card(run / "student" / "model")
    assert json.loads(header[LABELS_KEY]) == card.class_names
    assert keys == set(load_run_model(f"run:{run}", None, None).module.state_dict())
    # model.safetensors + model.json: the export folder is itself a protege model source
    assert load_run_model(f"run:{path.parent}", None, None).card == card


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_carries_the_card(run, exported):
    extra = {TORCHSCRIPT_CARD: ""}
    torch.jit.load(str(exported["torchscript"].path), _extra_files=extra)
    assert card_from_json(extra[TORCHSCRIPT_CARD].decode(), "ts") == read_card(run / "student" / "model")


@pytest.mark.parametrize(
    ("architecture", "shape", "options"),
    [
        ("mlp", (6,), {"hidden": 8}),
        ("cnn1d", (1, 40), {"width": 4}),
        ("cnn2d", (1, 8, 8), {"width": 4}),
        ("resnet", (3, 16, 16), {"width": 4, "blocks": [1, 1]}),
    ],
)
def test_builtin_architectures_export_to_every_format(tmp_path, architecture, shape, options):
    torch.manual_seed(0)
    built = build_model(architecture, options, shape, ["x", "y", "z"])
    save_model(built.module, built.card, tmp_path / "model")
    for fmt in ("onnx", "torchscript", "safetensors"):
        result = export_model(tmp_path / "model", fmt, output=tmp_path / f"m{export_module.FORMATS[fmt]}")
        assert result.samples == "64 random inputs"  # a bare model directory has no data to sample
        assert result.max_abs_diff < 1e-5, (fmt, result.max_abs_diff)


def test_a_timm_model_exports_to_every_format_and_safetensors_rebuilds_it(tmp_path):
    torch.manual_seed(0)
    built = build_model("timm:test_resnet", {"pretrained": False}, (3, 16, 16), ["x", "y"])
    save_model(built.module, built.card, tmp_path / "model")
    for fmt in ("onnx", "torchscript", "safetensors"):
        result = export_model(tmp_path / "model", fmt, output=tmp_path / f"m{export_module.FORMATS[fmt]}")
        assert result.max_abs_diff < 1e-4, (fmt, result.max_abs_diff)
    assert read_exported(tmp_path / "m.safetensors").card.architecture == "timm:test_resnet"


def test_a_mismatch_beyond_tolerance_fails_and_writes_nothing(run, tmp_path, monkeypatch):
    write, read = export_module._FORMATS["torchscript"]

    def off_by_a_little(data, origin, trust_remote_code):
        runtime, card, files = read(data, origin, trust_remote_code)
        return (lambda x: runtime(x) + 1e-2), card, files

    monkeypatch.setitem(export_module._FORMATS, "torchscript", (write, off_by_a_little))
    target = tmp_path / "bad.pt"
    with pytest.raises(ModelError, match=r"differs from PyTorch by up to 0\.01.*nothing written"):
        export_model(run, "torchscript", output=target)
    assert not target.exists() and not list(tmp_path.iterdir())
    assert export_model(run, "torchscript", output=target, tolerance=0.1).max_abs_diff == pytest.approx(1e-2, abs=1e-5)


def test_fitnet_adapter_is_not_exported(tmp_path):
    write_tabular_csv(tmp_path / "data.csv")
    recipe = tabular_recipe(
        tmp_path / "data.csv",
        teacher={"model": {"source": "mlp", "hidden": 16}, "train": {"epochs": 1, "batch_size": 32}},
        student={
            "model": {"source": "mlp", "hidden": 8},
            "objective": {"name": "fitnet"},
            "train": {"epochs": 1, "batch_size": 32},
        },
    )
    run_dir = run_recipe(recipe, tmp_path / "run").run_dir
    latest = (run_dir / "student" / "checkpoints" / "latest").read_text().strip()
    with safe_open(str(run_dir / "student" / "checkpoints" / latest / "objective.safetensors"), "pt") as handle:
        trained_keys = list(handle.keys())
    assert any("adapter" in key for key in trained_keys)  # the adapter exists while training

    student_keys = set(build_model("mlp", {"hidden": 8}, (4,), ["a", "b", "c"]).module.state_dict())
    result = export_model(run_dir, "safetensors")
    with safe_open(str(result.path), "pt") as handle:
        assert set(handle.keys()) == student_keys
    onnx_result = export_model(run_dir, "onnx")
    initializers = {init.name for init in onnx.load(str(onnx_result.path)).graph.initializer}
    assert not any("adapter" in name for name in initializers)
    # an 8 -> 16 adapter would add 8*16+16 weights to the student's
    n_weights = sum(int(np.prod(init.dims)) for init in onnx.load(str(onnx_result.path)).graph.initializer)
    assert n_weights == sum(p.numel() for p in load_run_model(f"run:{run_dir}", None, None).module.parameters())
    assert export_model(run_dir, "onnx", stage="teacher").path == run_dir / "teacher" / "export" / "model.onnx"


def test_unknown_stage_names_the_stages_there(run):
    with pytest.raises(ModelError, match=r"no saved 'teacher' model; stages there: student"):
        export_model(run, "onnx", stage="teacher")


def test_bad_format_and_output_suffix(run, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown export format 'onxx' \(did you mean \"onnx\"\?\)"):
        export_model(run, "onxx")
    with pytest.raises(ConfigError, match=r"must end in \.onnx"):
        export_model(run, "onnx", output=tmp_path / "model.pt")


def test_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no saved model there"):
        export_model(tmp_path / "nothing", "onnx")


def test_python_api_exports(run, tmp_path):
    result = protege.export(run, "torchscript", output=tmp_path / "api.pt")
    assert result.path.is_file() and result.card.class_names == ["a", "b", "c"]

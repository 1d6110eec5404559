"""Builtin models and the saved-model format (run:path)."""

import pytest
import torch

from protege.errors import CheckpointError, ModelError
from protege.models import build_model, resolve_run_path, save_model


@pytest.mark.parametrize(
    ("source", "shape", "options"),
    [
        ("mlp", (1, 8, 8), {"hidden": [16, 8]}),
        ("mlp", (40,), {"hidden": 4, "layers": 3}),
        ("cnn1d", (1, 40), {"width": 6}),
        ("cnn1d", (40,), {"width": 6, "depth": 2}),
        ("cnn2d", (1, 8, 8), {"width": 4, "depth": 3}),
        ("resnet", (3, 16, 16), {"width": 4, "blocks": [1, 2]}),
    ],
)
def test_builtin_models_share_one_interface(source, shape, options):
    built = build_model(source, options, shape, [str(i) for i in range(5)])
    x = torch.randn(2, *shape)
    model = built.module.eval()
    features = model.forward_features(x)
    assert model(x).shape == (2, 5)
    torch.testing.assert_close(model.forward_head(features), model(x))
    assert model.head.out_features == 5


def test_image_models_refuse_flat_inputs():
    with pytest.raises(ModelError, match="needs image inputs"):
        build_model("cnn2d", {}, (40,), ["a", "b"])


def test_save_and_load_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    built = build_model("cnn2d", {"width": 4}, (1, 8, 8), ["a", "b", "c"], {"note": 1})
    save_model(built.module, built.card, tmp_path / "model")
    loaded = build_model(f"run:{tmp_path}", {}, (1, 8, 8), ["a", "b", "c"])
    assert loaded.trained and loaded.card.preprocess == {"note": 1}
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(loaded.module.eval()(x), built.module.eval()(x), rtol=0, atol=0)
    assert resolve_run_path(f"run:{tmp_path}") == tmp_path / "model"
    assert not list(tmp_path.glob(".model*"))  # no staging leftovers


def test_saving_again_replaces_the_model(tmp_path):
    built = build_model("mlp", {"hidden": 4}, (3,), ["a", "b"])
    save_model(built.module, built.card, tmp_path / "model")
    torch.nn.init.zeros_(built.module.head.weight)
    save_model(built.module, built.card, tmp_path / "model")
    loaded = build_model(f"run:{tmp_path / 'model'}", {}, (3,), ["a", "b"])
    assert loaded.module.head.weight.abs().sum() == 0


def test_loaded_model_must_fit_the_data(tmp_path):
    built = build_model("mlp", {"hidden": 4}, (3,), ["a", "b"])
    save_model(built.module, built.card, tmp_path / "model")
    with pytest.raises(ModelError, match="predicts 2 classes but the data has 3"):
        build_model(f"run:{tmp_path}", {}, (3,), ["a", "b", "c"])
    with pytest.raises(ModelError, match=r"inputs of shape \(3,\)"):
        build_model(f"run:{tmp_path}", {}, (4,), ["a", "b"])


def test_missing_or_foreign_run_dirs(tmp_path):
    with pytest.raises(ModelError, match="no saved model there"):
        build_model(f"run:{tmp_path}", {}, (3,), ["a", "b"])
    (tmp_path / "model.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a protege model"):
        build_model(f"run:{tmp_path}", {}, (3,), ["a", "b"])
    (tmp_path / "model.json").write_text('{"format": "protege-model", "version": 99}')
    with pytest.raises(CheckpointError, match="newer protege"):
        build_model(f"run:{tmp_path}", {}, (3,), ["a", "b"])


def test_corrupt_weights_are_a_clear_error(tmp_path):
    built = build_model("mlp", {"hidden": 4}, (3,), ["a", "b"])
    save_model(built.module, built.card, tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        build_model(f"run:{tmp_path}", {}, (3,), ["a", "b"])


def test_residual_mlp_adds_its_input_between_equal_widths():
    torch.manual_seed(0)
    plain = build_model("mlp", {"hidden": 5, "layers": 2}, (3,), ["a", "b"]).module
    torch.manual_seed(0)
    skip = build_model("mlp", {"hidden": 5, "layers": 2, "residual": True}, (3,), ["a", "b"]).module
    x = torch.randn(4, 3)
    first = torch.relu(skip.features[1].linear(x))  # width 3 -> 5: no skip possible
    expected = first + torch.relu(skip.features[2].linear(first))
    torch.testing.assert_close(skip.forward_features(x), expected)
    assert not torch.allclose(plain.forward_features(x), skip.forward_features(x))

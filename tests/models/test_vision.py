"""timm: and torchvision: sources: a new head by module path, one interface, offline rebuild, local weights."""

import pytest
import torch
from safetensors.torch import save_file

from protege.errors import CheckpointError, ModelError
from protege.models import build_model, save_model
from protege.models.taps import FeatureTaps


def test_timm_model_gets_a_new_head_and_the_shared_interface():
    built = build_model("timm:test_resnet", {"pretrained": False}, (1, 16, 16), ["a", "b", "c"])
    model = built.module.eval()
    x = torch.randn(2, 1, 16, 16)
    features = model.forward_features(x)
    assert features.dim() == 2 and model.head.in_features == features.shape[1]
    assert model.head.out_features == 3
    torch.testing.assert_close(model.forward_head(features), model(x))
    assert built.card.architecture == "timm:test_resnet" and not built.trained


def test_torchvision_classifier_is_found_by_module_path_and_replaced():
    built = build_model("torchvision:mobilenet_v3_small", {"pretrained": False}, (3, 32, 32), ["a", "b"])
    model = built.module.eval()
    assert isinstance(model.backbone.classifier[3], torch.nn.Identity)  # the 1000-way layer is gone
    assert model.head.in_features == 1024 and model.head.out_features == 2
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    with FeatureTaps(model, ["backbone.features.3"]) as taps:  # library paths stay addressable
        model(torch.randn(1, 3, 32, 32))
        assert taps["backbone.features.3"].dim() == 4


def test_torchvision_head_option_names_another_module():
    with pytest.raises(ModelError, match="is a Conv2d, not a linear layer"):
        build_model("torchvision:mobilenet_v3_small", {"pretrained": False, "head": "features.0.0"}, (3, 32, 32), "ab")


@pytest.mark.parametrize("source", ["timm:test_vit", "torchvision:mobilenet_v3_small"])
def test_saved_library_model_rebuilds_offline_and_exactly(tmp_path, source):
    shape = (3, 32, 32)
    built = build_model(source, {"pretrained": False}, shape, ["a", "b", "c"])
    save_model(built.module, built.card, tmp_path / "model")
    loaded = build_model(f"run:{tmp_path}", {}, shape, ["a", "b", "c"])
    x = torch.randn(2, *shape)
    torch.testing.assert_close(loaded.module.eval()(x), built.module.eval()(x), rtol=0, atol=0)


def test_local_weights_load_into_the_backbone_and_skip_the_old_head(tmp_path):
    import timm

    original = timm.create_model("test_resnet", pretrained=False, num_classes=7)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in original.state_dict().items()}, str(path))
    built = build_model("timm:test_resnet", {"weights": str(path)}, (3, 16, 16), ["a", "b"])
    backbone = built.module.backbone.state_dict()
    assert all(torch.equal(backbone[k], v) for k, v in original.state_dict().items() if k in backbone)
    assert "fc.weight" not in backbone


def test_pth_weights_are_read_without_unpickling_code(tmp_path):
    from torchvision.models import get_model

    original = get_model("mobilenet_v3_small", weights=None)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": original.state_dict()}, path)
    built = build_model("torchvision:mobilenet_v3_small", {"weights": str(path)}, (3, 32, 32), ["a", "b"])
    torch.testing.assert_close(built.module.backbone.features[0][0].weight, original.features[0][0].weight)


def test_weights_that_do_not_fit_are_one_line_errors(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"conv1.weight": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match=r"lack .* backbone tensors"):
        build_model("timm:test_resnet", {"weights": str(path)}, (3, 16, 16), ["a", "b"])
    with pytest.raises(CheckpointError, match="not found"):
        build_model("timm:test_resnet", {"weights": str(tmp_path / "none.safetensors")}, (3, 16, 16), ["a", "b"])


def test_unknown_names_and_wrong_inputs_are_one_line_errors():
    with pytest.raises(ModelError, match='did you mean "test_resnet"'):
        build_model("timm:test_resnt", {}, (3, 16, 16), ["a", "b"])
    with pytest.raises(ModelError, match="torchvision has no model"):
        build_model("torchvision:resnet_tiny", {}, (3, 16, 16), ["a", "b"])
    with pytest.raises(ModelError, match=r"cannot take inputs of shape \(1, 8\)"):
        build_model("torchvision:mobilenet_v3_small", {"pretrained": False}, (1, 8), ["a", "b"])
    with pytest.raises(ModelError, match="needs a name"):
        build_model("timm:", {}, (3, 16, 16), ["a", "b"])

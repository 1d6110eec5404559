"""Feature taps by module path."""

import pytest
import torch

from protege.errors import ModelError
from protege.models import build_model
from protege.models.taps import FeatureTaps, module_paths, resolve_module


def _model():
    torch.manual_seed(0)
    return build_model("resnet", {"width": 4, "blocks": [1, 1]}, (1, 8, 8), list("abc")).module.eval()


def test_taps_capture_the_named_outputs_and_then_remove_their_hooks():
    model = _model()
    x = torch.randn(2, 1, 8, 8)
    with FeatureTaps(model, ["features.3", "features.4.conv1"]) as taps:
        logits = model(x)
        block = taps["features.3"]
        conv = taps["features.4.conv1"]
    # the first residual block's output, recomputed by hand
    stem = model.features[2](model.features[1](model.features[0](x)))
    torch.testing.assert_close(block, model.features[3](stem))
    assert conv.shape == (2, 8, 4, 4) and logits.shape == (2, 3)
    assert all(not m._forward_hooks for m in model.modules())


def test_gradient_flows_through_tapped_features_unless_detached():
    model = _model()
    with FeatureTaps(model, ["features.3"]) as taps:
        model(torch.randn(2, 1, 8, 8))
        taps["features.3"].sum().backward()
    assert model.features[0].weight.grad is not None
    with FeatureTaps(model, ["features.3"], detach=True) as taps:
        model(torch.randn(2, 1, 8, 8))
        assert not taps["features.3"].requires_grad


def test_a_wrong_path_names_the_closest_valid_ones():
    with pytest.raises(ModelError, match=r"no module 'features.4.conv3' in Classifier; closest: features.4.conv"):
        resolve_module(_model(), "features.4.conv3")
    with pytest.raises(ModelError, match="closest"):
        FeatureTaps(_model(), ["layer3"])


def test_module_paths_lists_every_submodule():
    paths = module_paths(_model())
    assert "head" in paths and "features.4.shortcut.0" in paths and "" not in paths


def test_reading_before_a_forward_pass_says_so():
    with FeatureTaps(_model(), ["head"]) as taps, pytest.raises(KeyError, match="no output yet"):
        taps["head"]

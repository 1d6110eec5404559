"""Each adaptation step's loss terms on a tiny batch against hand computations, and where its gradients go."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from protege.adaptation.features import FeatureReader
from protege.adaptation.heads import MultilinearMap
from protege.adaptation.steps import TARGET, CDANStep, DANNStep, MDDStep, domain_loss, entropy
from protege.models.builtin import Classifier


def tiny_model() -> Classifier:
    torch.manual_seed(0)
    return Classifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Tanh()), 3, 2)


def batch() -> dict:
    torch.manual_seed(1)
    return {
        "x": torch.randn(4, 4),
        "y": torch.tensor([0, 1, -1, -1]),
        "labeled": torch.tensor([True, True, False, False]),
        TARGET: torch.tensor([False, False, True, True]),
    }


def opened(step, model):
    """The step set up as a stage would (reader on the model, heads sized on a sample), progress p = 1."""
    step.configure(None, 2, seed=0)
    step.reader = FeatureReader(model).__enter__()
    step.setup(SimpleNamespace(model=model, accelerator=SimpleNamespace(device=torch.device("cpu"))), torch.randn(2, 4))
    return step


def test_domain_loss_averages_each_domains_binary_cross_entropy():
    d = torch.tensor([2.0, -1.0, 0.5])
    target = torch.tensor([False, True, True])
    source_term = -math.log(torch.sigmoid(torch.tensor(2.0)).item())
    target_term = (-math.log(1 - torch.sigmoid(torch.tensor(-1.0)).item())
                   - math.log(1 - torch.sigmoid(torch.tensor(0.5)).item())) / 2  # fmt: skip
    assert domain_loss(d, target).item() == pytest.approx(0.5 * (source_term + target_term), rel=1e-6)


def test_dann_terms_are_the_source_cross_entropy_and_the_discriminators_loss():
    model = tiny_model()
    step = opened(DANNStep(trade_off=0.5, hidden=4), model)
    b = batch()
    result = step(model, b, None)
    logits = model(b["x"])
    assert result.terms["ce"].item() == pytest.approx(F.cross_entropy(logits[:2], b["y"][:2]).item(), rel=1e-6)
    features = model.features(b["x"])
    d = step.heads["discriminator"](features)
    assert result.terms["domain"].item() == pytest.approx(0.5 * domain_loss(d, b[TARGET]).item(), rel=1e-5)
    assert result.outputs.shape == (2, 2) and torch.equal(result.target, b["y"][:2])


def test_dann_reverses_the_domain_gradient_into_the_features_only():
    """The discriminator descends its loss; the layers below the reversal get −λ times that gradient."""
    model = tiny_model()
    step = opened(DANNStep(hidden=4), model)
    b = batch()
    step.heads.eval()  # BatchNorm in eval mode, so both forwards below compute the same function
    result = step(model, b, None)
    result.terms["domain"].backward()
    reversed_grad = model.features[1].weight.grad.clone()
    head_grad = step.heads["discriminator"][0].weight.grad.clone()
    model.zero_grad()
    step.heads.zero_grad()
    plain = domain_loss(step.heads["discriminator"](model.features(b["x"])), b[TARGET])
    plain.backward()
    weight = step.reversal(None)
    assert torch.allclose(reversed_grad, -weight * model.features[1].weight.grad, atol=1e-7)
    assert torch.allclose(head_grad, step.heads["discriminator"][0].weight.grad, atol=1e-7)


def test_cdan_conditions_on_the_outer_product_and_weighs_by_entropy():
    model = tiny_model()
    step = opened(CDANStep(hidden=4), model)
    assert not step.heads["map"].randomized and step.heads["map"].out_features == 6
    b = batch()
    result = step(model, b, None)
    logits = model(b["x"])
    g = F.softmax(logits, 1)
    f = model.features(b["x"])
    h = torch.stack([torch.outer(g[i], f[i]).flatten() for i in range(4)])
    d = step.heads["discriminator"](h)
    w = 1 + torch.exp(-entropy(g))
    target = b[TARGET]
    w = torch.where(target, w / w[target].sum(), w / w[~target].sum())
    assert result.terms["domain"].item() == pytest.approx(domain_loss(d, target, w).item(), rel=1e-5)
    plain = CDANStep(hidden=4, entropy=False)
    assert plain.entropy is False


def test_the_randomized_multilinear_map_is_fixed_and_scaled():
    mapping = MultilinearMap(features=50, classes=10, max_dim=100, randomized_dim=8, seed=3)
    again = MultilinearMap(features=50, classes=10, max_dim=100, randomized_dim=8, seed=3)
    assert mapping.randomized and torch.equal(mapping.r_f, again.r_f)
    f, g = torch.randn(2, 50), torch.softmax(torch.randn(2, 10), 1)
    assert torch.allclose(mapping(f, g), (f @ mapping.r_f) * (g @ mapping.r_g) / math.sqrt(8))
    assert "r_f" in mapping.state_dict()  # checkpointed with the step


def test_mdd_disparity_is_margin_times_source_agreement_plus_target_disagreement():
    model = tiny_model()
    step = opened(MDDStep(hidden=4, margin=4.0, trade_off=1.0), model)
    step.heads.eval()  # dropout off, so the hand computation sees the same head
    b = batch()
    result = step(model, b, None)
    logits = model(b["x"])
    predicted = logits.argmax(1)
    adversarial = step.heads["auxiliary"](model.features(b["x"]))
    agree = F.cross_entropy(adversarial[:2], predicted[:2])
    p_t = F.softmax(adversarial[2:], 1).gather(1, predicted[2:, None]).squeeze(1)
    expected = 4.0 * agree - torch.log(1 - p_t).mean()
    assert result.terms["disparity"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert step.reversal(None) == pytest.approx(0.1 * (2 / (1 + math.exp(-10)) - 1))


def test_features_are_the_heads_input_or_a_named_modules_output():
    model = tiny_model()
    x = torch.randn(3, 4)
    with FeatureReader(model) as reader:
        model(x)
        assert torch.equal(reader.value, model.features(x))
    with FeatureReader(model, "features.1") as reader:
        model(x)
        assert torch.equal(reader.value, model.features[1](x))
    assert not model.head._forward_pre_hooks and not model.features[1]._forward_hooks  # removed on exit

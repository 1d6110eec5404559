"""protege's PGD against torchattacks (3.5) on the same model and inputs: the same adversarial examples and
the same robust accuracy (within 0.5 points), without random starts so both begin at x. torchattacks
takes raw inputs in [0, 1], so it attacks the model behind the data's standardisation, which is what
protege's attack does from the standardised inputs."""

import pytest
import torch
from torch import nn

from protege.data.build import load_data
from protege.models.builtin import cnn2d
from protege.robust.attacks import Attack, cross_entropy_loss, pgd
from protege.robust.space import RawInputModel, input_space

torchattacks = pytest.importorskip("torchattacks", reason="torchattacks is a test-only dependency")


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    data = load_data("digits", standardize=True, seed=0)
    space = input_space(data, (0.0, 1.0))
    model = cnn2d(data.input_shape, 10, width=8)  # BatchNorm: both libraries attack it in eval mode
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(8):
        for start in range(0, len(data.train), 64):
            x, y = data.train.x[start : start + 64], data.train.y[start : start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()
    return model, space, data.test


@pytest.mark.parametrize(
    ("norm", "epsilon", "make"),
    [
        ("linf", 0.1, lambda m, e, a: torchattacks.PGD(m, eps=e, alpha=a, steps=10, random_start=False)),
        ("l2", 0.8, lambda m, e, a: torchattacks.PGDL2(m, eps=e, alpha=a, steps=10, random_start=False)),
    ],
)
def test_the_same_adversarial_examples_and_robust_accuracy(trained, norm, epsilon, make):
    model, space, test = trained
    x, y = test.x, test.y
    attack = Attack(epsilon, norm, steps=10, random_start=False)
    ours = pgd(model, x, cross_entropy_loss(y), attack, space)
    theirs = make(RawInputModel(model, space), epsilon, attack.alpha)(space.to_raw(x).clamp(0, 1), y)
    with torch.no_grad():
        our_accuracy = (model(ours).argmax(1) == y).float().mean().item()
        their_accuracy = (model(space.to_model(theirs)).argmax(1) == y).float().mean().item()
        clean = (model(x).argmax(1) == y).float().mean().item()
    assert our_accuracy < clean - 0.2  # the attack bites
    assert abs(our_accuracy - their_accuracy) <= 0.005
    assert (space.to_raw(ours) - theirs).abs().max() < 1e-3

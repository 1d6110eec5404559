"""Robust accuracy: the share of test examples a model classifies correctly on the natural input and on
the adversarial input of every PGD restart (each restart from its own random start, drawn from a
generator seeded with the recipe's seed, so the number is the same on every run). The report gets it in
each model entry beside clean accuracy and cost, and the attack in ``evaluation.robust`` (docs/report.md)."""

from __future__ import annotations

import time

import torch
from torch import nn

from protege.config import Recipe
from protege.console import log
from protege.data.dataset import ArrayDataset, DataBundle, batch_loader
from protege.robust.attacks import Attack, cross_entropy_loss, frozen_mode, pgd
from protege.robust.plan import checked_space, evaluation_attack
from protege.robust.space import InputSpace

ROBUST_IF = "correct on the natural input and on the adversarial input of every restart"


def robust_accuracy(
    model: nn.Module,
    dataset: ArrayDataset,
    space: InputSpace,
    attack: Attack,
    restarts: int = 1,
    seed: int = 0,
    batch_size: int = 256,
) -> float:
    """The share of ``dataset`` that ``model`` classifies correctly under ``restarts`` PGD attacks; only the
    examples still standing are attacked again."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    standing = []
    with frozen_mode(model):
        for batch in batch_loader(dataset, batch_size):
            x, y = batch["x"].to(device), batch["y"].to(device)
            with torch.no_grad():
                correct = model(x).argmax(-1) == y
            for _ in range(restarts):
                alive = correct.nonzero().squeeze(1)
                if not len(alive):
                    break
                adversarial = pgd(model, x[alive], cross_entropy_loss(y[alive]), attack, space, generator=generator)
                with torch.no_grad():
                    correct[alive] = model(adversarial).argmax(-1) == y[alive]
            standing.append(correct.cpu())
    return float(torch.cat(standing).float().mean()) if standing else 0.0


def add_robust_accuracy(report: dict, models: dict[str, nn.Module], data: DataBundle, recipe: Recipe) -> None:
    """Each model entry of ``report`` gets ``robust_accuracy`` (and, beside the reference,
    ``robust_accuracy_retained``) and ``robust_seconds``; ``evaluation.robust`` says how it was measured."""
    config = recipe.robust
    assert config is not None
    space = checked_space(config, data)
    attack, restarts = evaluation_attack(config), config.evaluate.restarts
    for name, module in models.items():
        entry = report["models"][name]
        started = time.perf_counter()
        log(f"robust accuracy of {name}: PGD-{attack.steps}, {restarts} restart(s), on {len(data.test)} test examples")
        entry["robust_accuracy"] = robust_accuracy(module, data.test, space, attack, restarts, recipe.seed)
        entry["robust_seconds"] = time.perf_counter() - started
    reference = report.get("reference")
    teacher = report["models"][reference]["robust_accuracy"] if reference in report["models"] else None
    for name, entry in report["models"].items():
        if name != reference and teacher is not None:
            entry["robust_accuracy_retained"] = entry["robust_accuracy"] / teacher if teacher else None
    report.setdefault("evaluation", {})["robust"] = {
        "attack": "pgd",
        **attack.describe(),
        "restarts": restarts,
        "loss": "cross_entropy",
        "model_mode": "eval",
        **space.describe(),
        "examples": len(data.test),
        "seed": recipe.seed,
        "robust_if": ROBUST_IF,
    }

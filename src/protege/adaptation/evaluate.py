"""What the report says of each adapted model: its quality on the target's test split (the goal) and on
the source's (for reference), the gain over source-only training, and the proxy A-distance of its
features (Ben-David et al. 2007; Ganin et al. 2016, Sec. 5.1.5): Ā = 2 (1 − 2ε), with ε the held-out
error of a linear classifier telling source from target features apart (0: indistinguishable, 2: apart)."""

from __future__ import annotations

import torch
from torch import nn

from protege.adaptation.features import extract
from protege.adaptation.methods import SOURCE_ONLY
from protege.adaptation.target import Domains
from protege.data.dataset import ArrayDataset, DataBundle
from protege.evaluate import confusion_matrix, per_class_accuracy, predict_logits, quality

A_DISTANCE = (
    "2 (1 − 2ε): ε the held-out error of a logistic regression on standardised features telling source from "
    "target test examples"
)


def scores(model: nn.Module, dataset: ArrayDataset) -> dict:
    """Accuracy and the other classification metrics on ``dataset``, with per-class accuracy."""
    logits = predict_logits(model, dataset)
    entry = quality(logits, dataset.y)
    entry["per_class_accuracy"] = per_class_accuracy(confusion_matrix(logits, dataset.y))
    return entry


def proxy_a_distance(source: torch.Tensor, target: torch.Tensor, seed: int) -> float:
    """Ā from features of the two domains (as many of each): half to fit the domain classifier, half to score it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    count = min(len(source), len(target))
    generator = torch.Generator().manual_seed(seed)
    picked = [x[torch.randperm(len(x), generator=generator)[:count]] for x in (source, target)]
    x = torch.cat(picked).double().numpy()
    y = torch.cat([torch.ones(count), torch.zeros(count)]).numpy()
    order = torch.randperm(2 * count, generator=generator).numpy()
    fit, held = order[:count], order[count:]
    scaler = StandardScaler().fit(x[fit])
    classifier = LogisticRegression(max_iter=2_000).fit(scaler.transform(x[fit]), y[fit])
    error = 1.0 - float(classifier.score(scaler.transform(x[held]), y[held]))
    return 2.0 * (1.0 - 2.0 * error)


def measure(models: dict, data: DataBundle, domains: Domains, features: str | None, seed: int) -> dict:
    """The report's ``adaptation`` block: per method, target and source test scores, Ā and training time."""
    entries = {}
    for name, result in models.items():
        model = result.model.cpu().eval()
        source_features = extract(model, features, data.test.x)
        target_features = extract(model, features, domains.target_test.x)
        entries[name] = {
            "target": scores(model, domains.target_test),
            "source": scores(model, data.test),
            "a_distance": proxy_a_distance(source_features, target_features, seed),
            "seconds": float(result.card.metrics.get("train_seconds") or 0.0),
            "best_epoch": result.card.metrics.get("best_epoch"),
        }
        if domains.target_val is not None and len(domains.target_val):
            entries[name]["target_val_accuracy"] = scores(model, domains.target_val)["accuracy"]
    if SOURCE_ONLY in entries:
        reference = entries[SOURCE_ONLY]["target"]["accuracy"]
        for entry in entries.values():
            entry["target_accuracy_gain"] = entry["target"]["accuracy"] - reference
    return {"methods": entries, "reference": SOURCE_ONLY if SOURCE_ONLY in entries else None}

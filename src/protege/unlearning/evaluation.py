"""How well a model forgot, measured as the unlearning literature does against the model retrained
without the forgotten examples: accuracy on the forget, retain and test sets, agreement with the
retrained model, and a loss-based membership-inference attack (forgotten against test examples: its ROC
AUC is 0.5 when the model treats forgotten examples like unseen ones)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from protege.data.dataset import ArrayDataset
from protege.evaluate import predict_logits
from protege.unlearning.forget_set import ForgetSplit

LOSS_BINS = 30


def losses(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target, reduction="none")


def membership_auc(forget_losses: torch.Tensor, test_losses: torch.Tensor) -> float:
    """ROC AUC of "lower loss means a training member", forgotten examples as members and test examples
    as non-members (Shokri et al. 2017's loss threshold attack, all thresholds at once)."""
    from sklearn.metrics import roc_auc_score

    scores = torch.cat([-forget_losses, -test_losses]).numpy()
    members = [1] * len(forget_losses) + [0] * len(test_losses)
    return float(roc_auc_score(members, scores))


def evaluate_forgetting(
    model: nn.Module, split: ForgetSplit, test: ArrayDataset, retrained: dict[str, torch.Tensor] | None
) -> tuple[dict, dict[str, torch.Tensor]]:
    """The measures of one model, and its logits on the three sets (the retrained model's are the
    reference of the others' agreement)."""
    logits = {
        "forget": predict_logits(model, split.forget),
        "retain": predict_logits(model, split.retain),
        "test": predict_logits(model, test),
    }
    targets = {"forget": split.forget.y, "retain": split.retain.y, "test": test.y}
    entry: dict = {f"{name}_accuracy": _accuracy(logits[name], targets[name]) for name in logits}
    per_set = {name: losses(logits[name], targets[name]) for name in logits}
    entry["mia_auc"] = membership_auc(per_set["forget"], per_set["test"])
    if retrained is not None:
        for name in ("forget", "test"):
            same = logits[name].argmax(1) == retrained[name].argmax(1)
            entry[f"agreement_{name}"] = float(same.float().mean())
    top = max(float(v.max()) for v in per_set.values())
    edges = torch.linspace(0, max(top, 1e-6), LOSS_BINS + 1)
    entry["loss_histogram"] = {
        "edges": edges.tolist(),
        **{name: torch.histogram(values.float(), bins=edges).hist.int().tolist() for name, values in per_set.items()},
    }
    return entry, logits


def _accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    return float((logits.argmax(1) == target).float().mean()) if len(target) else float("nan")

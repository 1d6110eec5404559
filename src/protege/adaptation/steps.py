"""Two-stream training steps of domain adaptation. Each batch holds ``batch_size`` labelled source
examples and as many unlabelled target ones (protege.data.paired, flag ``target``); one forward pass
runs on both (BatchNorm sees both domains, as in the reference implementations), the cross-entropy
reads the source rows only, and the method's term aligns the two domains through the features.

Progress p (for the gradient reversal weight λ(p)) is the share of the stage's optimizer steps done.
"""

from __future__ import annotations

import abc
import contextlib
import math
from typing import TYPE_CHECKING, Annotated, ClassVar

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from protege.adaptation.features import FeatureReader, feature_dim
from protege.adaptation.grl import reversal_weight, reverse_gradient
from protege.adaptation.heads import MultilinearMap, auxiliary_classifier, discriminator
from protege.engine.step import Step, StepResult
from protege.objectives import hard_label_loss

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun

TARGET = "target"
"""The batch key flagging a target example."""
TINY = 1e-6
Weight = Annotated[float, Field(ge=0, le=1e4)]
Hidden = Annotated[int, Field(ge=1, le=65_536)]
Gamma = Annotated[float, Field(gt=0, le=1e3)]


def progress(run: TrainingRun | None) -> float:
    """The share of the stage's optimizer steps done (1 outside a run)."""
    if run is None or run.loader is None:
        return 1.0
    total = run.config.epochs * math.ceil(len(run.loader) / run.config.grad_accumulation)
    return run.state.global_step / max(total, 1)


class AdaptationStep(Step):
    """What the two-stream steps share: the feature reader, the split of a batch into its source and
    target rows, the source cross-entropy and the reversal weight's schedule."""

    method: ClassVar[str] = "adaptation"
    paper: ClassVar[str] = ""

    def __init__(self, trade_off: Weight = 1.0, gamma: Gamma = 10.0):
        self.trade_off, self.gamma = trade_off, gamma
        self.features: str | None = None
        self.num_classes = 0
        self.seed = 0
        self.reader: FeatureReader | None = None
        self.heads = nn.Module()

    def configure(self, features: str | None, num_classes: int, seed: int) -> AdaptationStep:
        """Where the features are read, how many classes the model predicts, the seed of fixed random parts."""
        self.features, self.num_classes, self.seed = features, num_classes, seed
        return self

    @property
    def trainable(self) -> nn.Module:
        return self.heads

    @property
    def needs_sample(self) -> bool:
        return True

    def open(self, run: TrainingRun, cleanup: contextlib.ExitStack) -> None:
        self.reader = cleanup.enter_context(FeatureReader(run.model, self.features))

    def setup(self, run: TrainingRun, sample: torch.Tensor | None) -> None:
        assert sample is not None
        torch.manual_seed(self.seed + 17)  # the heads' initial weights, the same on resume
        self.build(feature_dim(run.model, self.features, sample))
        self.heads = self.heads.to(run.accelerator.device)

    @abc.abstractmethod
    def build(self, dim: int) -> None:
        """Create the heads for features of size ``dim``."""

    def reversal(self, run: TrainingRun | None) -> float:
        return reversal_weight(progress(run), self.gamma)

    def describe(self) -> dict:
        return {"method": self.method, "paper": self.paper, "trade_off": self.trade_off, "gamma": self.gamma}

    @property
    def summary(self) -> str:
        """One line for ``--dry-run``."""
        options = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in self.describe().items() if k not in ("method", "paper"))  # fmt: skip
        return f"{self.method} ({options}): source cross-entropy + its term, source + target batches"

    def forward(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The logits and features of the whole batch, and the target flag of each row."""
        assert self.reader is not None, "the step reads features once the stage has opened it"
        logits = model(batch["x"])
        return logits, self.reader.value, batch[TARGET].bool()

    def source_result(self, terms: dict, logits: torch.Tensor, batch: dict, target: torch.Tensor) -> StepResult:
        """The source cross-entropy joins ``terms``; the metrics read the source rows only."""
        source = ~target
        y, labeled = batch["y"][source], batch["labeled"][source]
        terms = {"ce": hard_label_loss(logits[source], y, 0.0, labeled), **terms}
        return StepResult(terms, logits[source], y, labeled)


def domain_loss(d: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of the domain logit (source = 1, target = 0), the two domains' means averaged
    (each domain counts equally); ``weight``: per-example weights, each domain's summing to one."""
    label = (~target).float()
    per_example = F.binary_cross_entropy_with_logits(d.float().flatten(), label, reduction="none")
    if weight is None:
        weight = torch.where(target, 1.0 / target.sum().clamp(min=1), 1.0 / (~target).sum().clamp(min=1))
    return 0.5 * (per_example * weight).sum()


class DANNStep(AdaptationStep):
    """DANN (Ganin et al. 2016, eq. 9 and 10): a domain discriminator D on the features f, trained through
    the gradient reversal layer: min over (F, C) and max over D of CE(C(F(x_s)), y_s) − λ·BCE(D(F(x)), d),
    one backward pass, so the features learn to fool D. Terms ``ce`` and ``domain`` (trade-off · BCE)."""

    method = "dann"
    paper = "Ganin et al. 2016, Domain-Adversarial Training of Neural Networks (JMLR)"

    def __init__(self, trade_off: Weight = 1.0, gamma: Gamma = 10.0, hidden: Hidden = 256):
        super().__init__(trade_off, gamma)
        self.hidden = hidden

    def build(self, dim: int) -> None:
        self.heads = nn.ModuleDict({"discriminator": discriminator(dim, self.hidden)})

    def describe(self) -> dict:
        return {**super().describe(), "hidden": self.hidden}

    def __call__(self, model: nn.Module, batch: dict, run: TrainingRun) -> StepResult:
        logits, f, target = self.forward(model, batch)
        d = self.heads["discriminator"](reverse_gradient(f, self.reversal(run)))
        return self.source_result({"domain": self.trade_off * domain_loss(d, target)}, logits, batch, target)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = −Σ_c p_c log p_c per row."""
    return -(p * torch.log(p + TINY)).sum(1)


class CDANStep(AdaptationStep):
    """CDAN+E (Long et al. 2018, eq. 7 and 8): the discriminator reads T(f, g), the multilinear map of the
    features and the (detached) class probabilities g, randomized above ``max_dim`` values; with
    ``entropy``, each example weighs w = 1 + exp(−H(g)), normalised within its domain, so confident
    predictions count more. Terms ``ce`` and ``domain``."""

    method = "cdan"
    paper = "Long et al. 2018, Conditional Adversarial Domain Adaptation (NeurIPS)"

    def __init__(
        self,
        trade_off: Weight = 1.0,
        gamma: Gamma = 10.0,
        hidden: Hidden = 256,
        entropy: bool = True,
        max_dim: Annotated[int, Field(ge=1)] = 4096,
        randomized_dim: Hidden = 1024,
    ):
        super().__init__(trade_off, gamma)
        self.hidden, self.entropy, self.max_dim, self.randomized_dim = hidden, entropy, max_dim, randomized_dim

    def build(self, dim: int) -> None:
        mapping = MultilinearMap(dim, self.num_classes, self.max_dim, self.randomized_dim, self.seed)
        self.heads = nn.ModuleDict({"map": mapping, "discriminator": discriminator(mapping.out_features, self.hidden)})

    def describe(self) -> dict:
        return {**super().describe(), "hidden": self.hidden, "entropy": self.entropy, "max_dim": self.max_dim,
                "randomized_dim": self.randomized_dim}  # fmt: skip

    def __call__(self, model: nn.Module, batch: dict, run: TrainingRun) -> StepResult:
        logits, f, target = self.forward(model, batch)
        g = F.softmax(logits.float(), dim=1).detach()
        h = self.heads["map"](f.float(), g)
        d = self.heads["discriminator"](reverse_gradient(h, self.reversal(run)))
        weight = None
        if self.entropy:
            w = 1.0 + torch.exp(-entropy(g))
            totals = (w * target).sum().clamp(min=TINY), (w * ~target).sum().clamp(min=TINY)
            weight = torch.where(target, w / totals[0], w / totals[1])
        return self.source_result({"domain": self.trade_off * domain_loss(d, target, weight)}, logits, batch, target)


class MDDStep(AdaptationStep):
    """MDD (Zhang et al. 2019, eq. 29–31): an auxiliary head h′ on the reversed features measures the
    margin disparity D_γ = γ·E_s log σ(h′(f_s))[ŷ_s] + E_t log(1 − σ(h′(f_t))[ŷ_t]), with ŷ the main
    head's predictions and σ the softmax. h′ maximises D_γ (it agrees with the head on the source and
    disagrees on the target) and the features minimise it through the reversal layer; the term is −D_γ,
    ``disparity`` (trade-off · (γ·CE(h′(f_s), ŷ_s) − log(1 − σ(h′(f_t))[ŷ_t]))). λ's ceiling is 0.1, as
    in the reference implementation (Transfer-Learning-Library)."""

    method = "mdd"
    paper = "Zhang et al. 2019, Bridging Theory and Algorithm for Domain Adaptation (ICML)"

    def __init__(
        self,
        trade_off: Weight = 1.0,
        gamma: Gamma = 10.0,
        hidden: Hidden = 256,
        margin: Annotated[float, Field(gt=0, le=100)] = 4.0,
        reversal_max: Annotated[float, Field(gt=0, le=10)] = 0.1,
    ):
        super().__init__(trade_off, gamma)
        self.hidden, self.margin, self.reversal_max = hidden, margin, reversal_max

    def build(self, dim: int) -> None:
        self.heads = nn.ModuleDict({"auxiliary": auxiliary_classifier(dim, self.hidden, self.num_classes)})

    def reversal(self, run: TrainingRun | None) -> float:
        return reversal_weight(progress(run), self.gamma, self.reversal_max)

    def describe(self) -> dict:
        return {**super().describe(), "hidden": self.hidden, "margin": self.margin, "reversal_max": self.reversal_max}

    def __call__(self, model: nn.Module, batch: dict, run: TrainingRun) -> StepResult:
        logits, f, target = self.forward(model, batch)
        adversarial = self.heads["auxiliary"](reverse_gradient(f, self.reversal(run))).float()
        predicted = logits.detach().argmax(1)
        source = ~target
        agree = F.cross_entropy(adversarial[source], predicted[source]) if source.any() else adversarial.sum() * 0
        p_t = F.softmax(adversarial[target], 1).gather(1, predicted[target].unsqueeze(1)).squeeze(1)
        disagree = -torch.log((1.0 - p_t + TINY).clamp(max=1.0)).mean() if target.any() else adversarial.sum() * 0
        disparity = self.margin * agree + disagree
        return self.source_result({"disparity": self.trade_off * disparity}, logits, batch, target)

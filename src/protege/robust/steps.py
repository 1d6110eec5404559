"""Adversarial training and robust distillation as training steps: each step attacks the batch (on the
model without its distributed wrapper, in eval mode: attacks.py) and returns its named loss terms.

KL(p ‖ q) below is the KL divergence of the softmax outputs, summed over classes and averaged over the
batch. The reference implementations of ARD and RSLAD average it over classes as well (``nn.KLDivLoss``'s
old default and ``torch.mean``); that only divides the loss by the number of classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pydantic import PositiveFloat
from torch import nn

from protege.engine.step import TEACHER_LOGITS, Step, StepResult
from protege.objectives import hard_label_loss, soft_target_loss
from protege.options import Share
from protege.robust.attacks import Attack, LossFn, Start, cross_entropy_loss, frozen_mode, kl_loss, pgd
from protege.robust.space import InputSpace

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun


class AdversarialStep(Step):
    """What every robust step shares: the training attack and the input space it runs in."""

    method = "adversarial"

    def __init__(self, attack: Attack, space: InputSpace):
        self.attack, self.space = attack, space

    def options(self) -> dict:
        """The method's own options, as the recipe may give them (for the model card and the report)."""
        return {}

    def describe(self) -> dict:
        return {"method": self.method, **self.options(), "attack": self.attack.describe()}

    @property
    def summary(self) -> str:
        """One line for ``--dry-run``."""
        a = self.attack
        options = "".join(f", {k}={v:.3g}" for k, v in self.options().items())
        ball = "L∞" if a.norm == "linf" else "L2"
        return f"{self.method}{options}: PGD-{a.steps} {ball} ε={a.epsilon:g} (step {a.alpha:.3g}, raw units)"

    def perturb(
        self, model: nn.Module, run: TrainingRun | None, x: torch.Tensor, loss_fn: LossFn, start: Start | None = None
    ) -> torch.Tensor:
        """``x`` attacked on the plain model (a distributed wrapper would wait for a backward pass that
        the attack never makes); the random start comes from torch's checkpointed generator."""
        target = run.plain_model if run is not None else model
        return pgd(target, x, loss_fn, self.attack, self.space, start=start)

    def small_start(self) -> Start | None:
        """The start of attacks on a KL loss: x + 0.001 · N(0, 1) without a random start (at x the KL's
        gradient is zero and the attack could not move)."""
        return None if self.attack.random_start else "small"


class PGDStep(AdversarialStep):
    """PGD adversarial training (Madry et al. 2018, eq. 2.1): min_θ E[max_{δ ∈ S} L(θ, x + δ, y)], the
    inner maximum by PGD on the cross-entropy, the outer minimum by training on the adversarial batch.
    Term ``adv_ce``; the metrics read the adversarial predictions (training accuracy is robust accuracy
    against the training attack)."""

    method = "pgd"

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        x, target, labeled = batch["x"], batch["y"], batch.get("labeled")
        adversarial = model(self.perturb(model, run, x, cross_entropy_loss(target)))
        return StepResult({"adv_ce": hard_label_loss(adversarial, target, 0.0, labeled)}, adversarial, target, labeled)


class TRADESStep(AdversarialStep):
    """TRADES (Zhang et al. 2019, Sec. 4): min_f E[CE(f(x), y) + β · max_{x' ∈ B(x, ε)} KL(f(x) ‖ f(x'))]
    with β = 1/λ. The attack climbs KL(f(x) ‖ f(x')) from the prediction on x in eval mode, as the
    paper's code; in the loss both f(x) and f(x') carry gradients. Terms ``ce`` and ``trades``."""

    method = "trades"

    def __init__(self, attack: Attack, space: InputSpace, beta: PositiveFloat = 6.0):
        super().__init__(attack, space)
        self.beta = beta

    def options(self) -> dict:
        return {"beta": self.beta}

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        x, target, labeled = batch["x"], batch["y"], batch.get("labeled")
        plain = run.plain_model if run is not None else model
        with torch.no_grad(), frozen_mode(plain):
            reference = plain(x)
        perturbed = self.perturb(model, run, x, kl_loss(reference), self.small_start())
        natural, adversarial = model(x), model(perturbed)
        terms = {
            "ce": hard_label_loss(natural, target, 0.0, labeled),
            "trades": soft_target_loss(adversarial, natural, 1.0, self.beta),
        }
        return StepResult(terms, natural, target, labeled)


class ARDStep(AdversarialStep):
    """Adversarially Robust Distillation (Goldblum et al. 2020, Sec. 3):

        min_θ E[(1 − α) · CE(S(x), y) + α · t² · KL(T_t(x) ‖ S_t(x + δ))],  δ = argmax_{‖δ‖ ≤ ε} CE(S(x + δ), y)

    the student's outputs on its own adversarial examples follow the robust teacher's soft labels at
    temperature t on the natural inputs (the teacher's cached logits: the teacher never sees an attack).
    The defaults are the paper's code (α = 1, t = 30). Terms ``ce`` and ``ard``."""

    method = "ard"
    needs_teacher = True

    def __init__(self, attack: Attack, space: InputSpace, alpha: Share = 1.0, temperature: PositiveFloat = 30.0):
        super().__init__(attack, space)
        self.alpha, self.temperature = alpha, temperature

    def options(self) -> dict:
        return {"alpha": self.alpha, "temperature": self.temperature}

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        x, target, labeled = batch["x"], batch["y"], batch.get("labeled")
        perturbed = self.perturb(model, run, x, cross_entropy_loss(target))
        natural, adversarial = model(x), model(perturbed)
        terms = {
            "ce": (1.0 - self.alpha) * hard_label_loss(natural, target, 0.0, labeled),
            "ard": soft_target_loss(adversarial, batch[TEACHER_LOGITS], self.temperature, self.alpha),
        }
        return StepResult(terms, natural, target, labeled)


class RSLADStep(AdversarialStep):
    """Robust Soft Label Adversarial Distillation (Zhu et al. 2022, Sec. 4): the robust teacher's soft labels
    on the natural inputs replace the hard labels everywhere, in the attack and in both loss terms:

        min_θ E[w · KL(T(x) ‖ S(x')) + (1 − w) · KL(T(x) ‖ S(x))],  x' = argmax_{x' ∈ B(x, ε)} KL(T(x) ‖ S(x'))

    with w = 5/6 as the paper's code. No labels are read, so unlabelled examples count like any other.
    Terms ``rslad_adv`` and ``rslad_nat``."""

    method = "rslad"
    needs_teacher = True

    def __init__(self, attack: Attack, space: InputSpace, adversarial_weight: Share = 5 / 6):
        super().__init__(attack, space)
        self.adversarial_weight = adversarial_weight

    def options(self) -> dict:
        return {"adversarial_weight": self.adversarial_weight}

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        x, teacher = batch["x"], batch[TEACHER_LOGITS]
        perturbed = self.perturb(model, run, x, kl_loss(teacher), self.small_start())
        natural, adversarial = model(x), model(perturbed)
        weight = self.adversarial_weight
        terms = {
            "rslad_adv": soft_target_loss(adversarial, teacher, 1.0, weight),
            "rslad_nat": soft_target_loss(natural, teacher, 1.0, 1.0 - weight),
        }
        return StepResult(terms, natural, batch["y"], batch.get("labeled"))

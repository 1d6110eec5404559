"""Objectives on the geometry of a batch's embeddings: the student keeps the teacher's relations
between examples, not its values, so student and teacher widths may differ (no adapter needed).

``student_layer``/``teacher_layer`` name the tapped modules (default ``features``: the penultimate
embedding of protege's builtin models); outputs are flattened to one vector per example.
"""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat
from torch.nn import functional as F

from protege.objectives.base import Objective, StepOutputs, hard_label_loss


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.float().flatten(1)


def rkd_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Park et al. 2019, eq. 4: Huber loss between pairwise distances, each normalised by its mean
    over distinct pairs; averaged over ordered pairs i ≠ j."""
    s, t = _flat(student), _flat(teacher)
    off = ~torch.eye(len(s), dtype=torch.bool, device=s.device)
    d_s, d_t = torch.cdist(s, s)[off], torch.cdist(t, t)[off]
    return F.smooth_l1_loss(d_s / d_s.mean().clamp_min(1e-12), d_t / d_t.mean().clamp_min(1e-12))


def rkd_angle(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Park et al. 2019, eq. 5: Huber loss between the cosines of the angles t_i t_j t_k, over all
    triplets (degenerate ones, with a zero edge, give 0 on both sides)."""

    return F.smooth_l1_loss(_angle_cosines(_flat(student)), _angle_cosines(_flat(teacher)))


def _angle_cosines(x: torch.Tensor) -> torch.Tensor:
    """cos∠(x_i, x_j, x_k) for every triplet, flattened in (j, i, k) order, from the Gram matrix:
    ⟨x_i − x_j, x_k − x_j⟩ = G_ik − G_ij − G_jk + G_jj. Materialising the B×B×D edge vectors instead
    costs B³·D; this costs B²·D + B³, which keeps RKD-A affordable for wide embeddings."""
    centred = x - x.mean(0, keepdim=True)  # angles are translation-invariant; centring limits rounding
    gram = centred @ centred.T
    squared = gram.diagonal()
    distance = (squared.unsqueeze(0) + squared.unsqueeze(1) - 2 * gram).clamp_min(0).sqrt()
    # a zero edge (i = j, k = j, or a repeated example) has no direction: its cosines are 0, as with
    # normalised edges; "zero" allows for the rounding of the expansion
    scale = squared.max().clamp_min(1e-12).sqrt()
    distance = torch.where(distance > 1e-4 * scale, distance, torch.zeros_like(distance))
    distance.fill_diagonal_(0.0)
    dot = gram.unsqueeze(0) - gram.unsqueeze(2) - gram.unsqueeze(1) + squared.view(-1, 1, 1)
    lengths = distance.unsqueeze(2) * distance.unsqueeze(1)  # [j, i, k] = |x_i − x_j|·|x_k − x_j|
    safe = torch.where(lengths > 0, lengths, torch.ones_like(lengths))
    return torch.where(lengths > 0, dot / safe, torch.zeros_like(dot)).flatten()


class _EmbeddingObjective(Objective):
    """Reads one tapped student layer and one tapped teacher layer per step."""

    needs_teacher = True

    def __init__(self, student_layer: str, teacher_layer: str):
        super().__init__()
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_layers, self.teacher_layers = (student_layer,), (teacher_layer,)

    def embeddings(self, out: StepOutputs) -> tuple[torch.Tensor, torch.Tensor]:
        return out.features[self.student_layer], out.teacher_features[self.teacher_layer]


class RelationalKD(_EmbeddingObjective):
    """``distance_weight``·RKD-D + ``angle_weight``·RKD-A + ``ce_weight``·CE (defaults: 25, 50, 1)."""

    def __init__(
        self,
        distance_weight: NonNegativeFloat = 25.0,
        angle_weight: NonNegativeFloat = 50.0,
        ce_weight: NonNegativeFloat = 1.0,
        student_layer: str = "features",
        teacher_layer: str = "features",
    ):
        super().__init__(student_layer, teacher_layer)
        self.distance_weight, self.angle_weight, self.ce_weight = distance_weight, angle_weight, ce_weight

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        s, t = self.embeddings(out)
        terms = {}
        if self.distance_weight:
            terms["rkd_distance"] = self.distance_weight * rkd_distance(s, t)
        if self.angle_weight:
            terms["rkd_angle"] = self.angle_weight * rkd_angle(s, t)
        if self.ce_weight:
            terms["ce"] = self.ce_weight * hard_label_loss(out.logits, out.target, labeled=out.labeled)
        return terms


def pkt_loss(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Passalis & Tefas 2018, eqs. 9-13: the cosine kernel (cos + 1) / 2 between examples, made
    row-stochastic, and the KL divergence of the student's from the teacher's, averaged over entries."""

    def conditional(x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(_flat(x), p=2, dim=1, eps=eps)
        kernel = (x @ x.t() + 1.0) / 2.0
        return kernel / kernel.sum(dim=1, keepdim=True)

    p_s, p_t = conditional(student), conditional(teacher)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


class ProbabilisticKT(_EmbeddingObjective):
    """``pkt_weight``·PKT + ``ce_weight``·CE."""

    def __init__(
        self,
        pkt_weight: NonNegativeFloat = 1.0,
        ce_weight: NonNegativeFloat = 1.0,
        student_layer: str = "features",
        teacher_layer: str = "features",
    ):
        super().__init__(student_layer, teacher_layer)
        self.pkt_weight, self.ce_weight = pkt_weight, ce_weight

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        s, t = self.embeddings(out)
        terms = {"pkt": self.pkt_weight * pkt_loss(s, t)}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * hard_label_loss(out.logits, out.target, labeled=out.labeled)
        return terms

"""Contrastive representation distillation (Tian, Krishnan & Isola 2020).

The student's embedding of an example should be closer to the teacher's embedding of the same
example than to the teacher's embeddings of other examples. Negatives come from two memory banks
(one per model) holding a running embedding of every training example, so a batch of 64 can still
be contrasted against thousands of negatives.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field, NonNegativeFloat, PositiveFloat
from torch import nn
from torch.nn import functional as F

from protege.distributed import gather_rows, mean_across_processes
from protege.errors import ConfigError
from protege.models.taps import layer_output
from protege.objectives.base import Objective, StepOutputs, hard_label_loss
from protege.options import DropRate, Width

EPSILON = 1e-7


def nce_loss(scores: torch.Tensor, num_examples: int) -> torch.Tensor:
    """Tian et al. 2020, eq. 18-19: the NCE critic loss −log h(pos) − Σ_neg log(1 − h(neg)), averaged
    over the batch, where h(x) = P(x) / (P(x) + K/M) for K negatives drawn uniformly from M examples.

    ``scores`` holds normalised similarities P, shape (batch, 1 + K), the positive in column 0.
    """
    negatives = scores.shape[1] - 1
    noise = negatives / num_examples  # K · P_noise with P_noise = 1/M
    positive = scores[:, 0]
    log_h_positive = torch.log(positive / (positive + noise + EPSILON))
    log_one_minus_h = torch.log(noise / (scores[:, 1:] + noise + EPSILON))
    return -(log_h_positive.sum() + log_one_minus_h.sum()) / len(scores)


class CRD(Objective):
    """``crd_weight``·(NCE(student → teacher memory) + NCE(teacher → student memory)) + ``ce_weight``·CE.

    Embeddings are the tapped layers (default ``features``, the penultimate embedding of builtin
    models) projected to ``feat_dim`` by a linear head per model and L2-normalised. Both heads train
    with the student; the teacher stays frozen. The memory banks and the normalisation constants Z
    are buffers, so they are checkpointed and a resumed run continues exactly.
    """

    needs_teacher = True

    def __init__(
        self,
        student_layer: str = "features",
        teacher_layer: str = "features",
        feat_dim: Width = 128,
        negatives: Annotated[int, Field(ge=1, le=65536)] = 4096,
        temperature: PositiveFloat = 0.07,
        momentum: DropRate = 0.5,
        crd_weight: NonNegativeFloat = 0.8,
        ce_weight: NonNegativeFloat = 1.0,
    ):
        super().__init__()
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_layers, self.teacher_layers = (student_layer,), (teacher_layer,)
        self.feat_dim, self.negatives = feat_dim, negatives
        self.temperature, self.momentum = temperature, momentum
        self.crd_weight, self.ce_weight = crd_weight, ce_weight
        self.embed_student: nn.Module | None = None
        self.embed_teacher: nn.Module | None = None

    def setup(self, student: nn.Module, teacher: nn.Module | None, sample: torch.Tensor, num_examples: int) -> None:
        """Size the two projection heads from a dry run and fill the memory banks with random unit-scale rows."""
        assert teacher is not None, "crd always has a teacher"
        if num_examples < 2:
            raise ConfigError("crd needs at least 2 training examples to draw negatives from")
        s = layer_output(student, self.student_layer, sample).flatten(1)
        t = layer_output(teacher, self.teacher_layer, sample).flatten(1)
        self.embed_student = nn.Linear(s.shape[1], self.feat_dim)
        self.embed_teacher = nn.Linear(t.shape[1], self.feat_dim)
        bound = 1.0 / math.sqrt(self.feat_dim / 3)
        self.register_buffer("memory_student", torch.rand(num_examples, self.feat_dim) * 2 * bound - bound)
        self.register_buffer("memory_teacher", torch.rand(num_examples, self.feat_dim) * 2 * bound - bound)
        self.register_buffer("z_student", torch.tensor(-1.0))  # estimated on the first batch, then fixed
        self.register_buffer("z_teacher", torch.tensor(-1.0))

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        assert self.embed_student is not None and self.embed_teacher is not None, "setup() runs before training"
        if out.index is None:
            raise ConfigError("crd needs each example's position in the training set; use a protege dataset")
        e_s = F.normalize(self.embed_student(out.features[self.student_layer].float().flatten(1)), dim=1)
        e_t = F.normalize(self.embed_teacher(out.teacher_features[self.teacher_layer].float().flatten(1)), dim=1)
        index = out.index.to(e_s.device)
        num_examples = len(self.memory_student)
        negatives = min(self.negatives, num_examples - 1)
        contrast = torch.randint(0, num_examples, (len(index), negatives + 1), device=e_s.device)
        contrast[:, 0] = index
        scores_s = self._scores(e_s, self.memory_teacher, contrast, self.z_student)
        scores_t = self._scores(e_t, self.memory_student, contrast, self.z_teacher)
        loss = nce_loss(scores_s, num_examples) + nce_loss(scores_t, num_examples)
        self._update_memory(index, e_s, e_t)
        terms = {"crd": self.crd_weight * loss}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * hard_label_loss(out.logits, out.target, labeled=out.labeled)
        return terms

    def _scores(self, embedding: torch.Tensor, memory: torch.Tensor, contrast: torch.Tensor, z: torch.Tensor):
        """exp(⟨memory row, embedding⟩ / τ) / Z for the positive and the sampled negatives (eq. 19's P)."""
        if len(memory) <= 16 * contrast.shape[1]:
            # a small bank: one matmul against every row, then pick the sampled ones (much faster than
            # gathering a batch × samples × width block of the bank)
            similarity = (embedding @ memory.detach().clone().T).gather(1, contrast)  # clone: updated in place
        else:
            similarity = torch.bmm(memory[contrast].detach(), embedding.unsqueeze(2)).squeeze(2)
        scores = torch.exp(similarity / self.temperature)
        if z < 0:
            z.copy_(mean_across_processes(scores.detach().mean() * len(memory)))
        return scores / z

    @torch.no_grad()
    def _update_memory(self, index: torch.Tensor, e_s: torch.Tensor, e_t: torch.Tensor) -> None:
        """Momentum update of the batch's rows; with several processes, every process applies every
        process's rows, so the banks stay identical everywhere."""
        index, e_s, e_t = gather_rows(index), gather_rows(e_s.detach()), gather_rows(e_t.detach())
        for memory, embedding in ((self.memory_student, e_s), (self.memory_teacher, e_t)):
            mixed = self.momentum * memory[index] + (1 - self.momentum) * embedding.detach()
            memory[index] = F.normalize(mixed, dim=1)

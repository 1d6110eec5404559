"""A quadratic penalty that holds important parameters near their values after earlier experiences:

    L_penalty = λ/2 · Σ_i Ω_i (θ_i − θ*_i)²

(EWC, Kirkpatrick et al. 2017, eq. 3, with Ω the Fisher; MAS, Aljundi et al. 2018, eq. 3, with Ω its
importance). A head that grew is penalised on its old rows only: the new classes' rows are free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from protege.hooks import Hook

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun
    from protege.engine.step import StepResult


class QuadraticPenalty(Hook):
    """The penalty as a hook's loss term; ``importance`` and ``anchor`` are its checkpointed state."""

    def __init__(
        self, name: str, strength: float, importance: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]
    ):
        self.name = name  # type: ignore[misc]
        self.strength = strength
        self.importance, self.anchor = importance, anchor
        self._params: list[tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]] = []

    def setup(self, run: TrainingRun) -> None:
        named = dict(run.model.named_parameters())
        self._params = [(named[n], self.importance[n], self.anchor[n]) for n in self.importance if n in named]

    def loss_terms(self, run: TrainingRun, batch: dict, result: StepResult) -> dict[str, torch.Tensor]:
        if not self._params:
            return {}
        total = 0.0
        for i, (param, importance, anchor) in enumerate(self._params):
            if importance.device != param.device:
                importance, anchor = importance.to(param.device), anchor.to(param.device)
                self._params[i] = (param, importance, anchor)
            current = param[: anchor.shape[0]] if param.shape != anchor.shape else param
            total = total + (importance * (current.float() - anchor).pow(2)).sum()
        return {self.name: 0.5 * self.strength * total}

    def state_dict(self) -> dict:
        return {"importance": dict(self.importance), "anchor": dict(self.anchor)}

    def load_state_dict(self, state: dict) -> None:
        self.importance, self.anchor = dict(state["importance"]), dict(state["anchor"])

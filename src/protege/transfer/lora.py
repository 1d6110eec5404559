"""``lora`` (Hu et al. 2021): low-rank adapters on named linear layers, through the PEFT library.

The pretrained weights stay frozen; each target layer learns ``W + (alpha / r) · B A`` with rank-``r``
matrices ``A`` and ``B``, and the head trains whole. Once training ends the adapters are merged into the
weights, so the saved model is a plain model; the adapter alone is kept for ``adapter.safetensors``.
"""

from __future__ import annotations

import torch
from pydantic import PositiveFloat
from torch import nn

from protege.errors import ConfigError
from protege.options import DropRate, Width
from protege.transfer.base import Strategy
from protege.transfer.batchnorm import batchnorm_layers
from protege.transfer.checkpointing import enable_gradient_checkpointing
from protege.transfer.split import Group, ModelSplit, closest_paths, find_head, guess_blocks, is_within


def default_targets(model: nn.Module, head_path: str) -> list[str]:
    """PEFT's defaults for a known transformers architecture (``query``, ``value`` for BERT), else every
    linear layer outside the head, by module path."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

    for module in model.modules():
        model_type = getattr(getattr(module, "config", None), "model_type", None)
        if model_type in KNOWN:
            return list(KNOWN[model_type])
    return [p for p, m in model.named_modules() if isinstance(m, nn.Linear) and not is_within(p, head_path)]


def matches_target(path: str, target: str) -> bool:
    """PEFT's rule: a target names a module by its full path or by its last components."""
    return path == target or path.endswith("." + target)


class LoRA(Strategy):
    """Adapters of rank ``r`` (scale ``alpha / r``, ``dropout`` on their input) on ``target_modules``
    (module paths or name suffixes); the backbone is frozen, the head and the adapters train."""

    name = "lora"

    def __init__(
        self,
        r: Width = 8,
        alpha: PositiveFloat = 16,
        dropout: DropRate = 0.0,
        target_modules: list[str] | None = None,
        **common,
    ):
        super().__init__(**common)
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = target_modules
        self.adapter_config: dict = {}
        self.adapter_state: dict[str, torch.Tensor] = {}

    def prepare(self, model: nn.Module) -> nn.Module:
        from peft import get_peft_model

        head = find_head(model, self.head)
        targets = list(self.target_modules) if self.target_modules else default_targets(model, head)
        if not targets:
            raise ConfigError(f"lora: {type(model).__name__} has no linear layer outside its head; name target_modules")
        paths = [p for p, _ in model.named_modules() if p]
        for target in targets:
            if not any(matches_target(p, target) for p in paths):
                raise ConfigError(
                    f"lora target_modules {target!r} matches no module of {type(model).__name__}; "
                    f"closest: {closest_paths(model, target)}"
                )
        if self.gradient_checkpointing:
            enable_gradient_checkpointing(model, guess_blocks(model, head))
        self.adapter_config = {
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": targets,
            "modules_to_save": [head],
        }
        wrapped = get_peft_model(model, lora_config(self.adapter_config))
        params = dict(wrapped.named_parameters())
        head_params = {n: p for n, p in params.items() if ".modules_to_save." in n}
        adapter = {n: p for n, p in params.items() if "lora_" in n}
        backbone = {n: p for n, p in params.items() if n not in head_params and n not in adapter}
        groups = [Group("head", 0, head_params), Group("adapter", 0, adapter), Group("backbone", 1, backbone)]
        self.split = ModelSplit(head, [], [g for g in groups if g.params], f"adapters on {', '.join(targets)}")
        self._batchnorm_layers = batchnorm_layers(wrapped)
        return wrapped

    def trainable(self, group: Group, epoch: int) -> bool:
        return group.name != "backbone"

    def finalize(self, model: nn.Module) -> nn.Module:
        from peft import get_peft_model_state_dict

        self.adapter_state = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}
        return model.merge_and_unload()


def lora_config(options: dict):
    """A PEFT LoraConfig from the stored adapter options."""
    from peft import LoraConfig

    return LoraConfig(**options)

"""``linear_probe``: the pretrained backbone is frozen (and runs in eval mode, BatchNorm statistics
and dropout included); only the head trains. With ``cache_features`` the backbone's features are
computed once, and the head trains on them, when that gives the same result (see feature_cache.py)."""

from __future__ import annotations

from torch import nn

from protege.hooks import Hook
from protege.transfer.base import Strategy, StrategyHook
from protege.transfer.feature_cache import CachedFeaturesProbe
from protege.transfer.split import Group, is_within


class LinearProbe(Strategy):
    """Only the head trains; the rest of the model is a fixed feature extractor."""

    name = "linear_probe"

    def __init__(self, cache_features: bool = True, **common):
        super().__init__(**common)
        self.cache_features = cache_features
        self._backbone_modules: list[nn.Module] = []

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        head = self.prepared_split().head_path
        self._backbone_modules = [
            m for path, m in model.named_modules() if path and not is_within(path, head) and not is_within(head, path)
        ]
        return model

    def as_hook(self) -> Hook:
        """With ``cache_features``, the probe that trains the head on the backbone's cached features."""
        return CachedFeaturesProbe(self) if self.cache_features else StrategyHook(self)

    def trainable(self, group: Group, epoch: int) -> bool:
        return group.name == "head"

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        if self.batchnorm != "train":
            for module in self._backbone_modules:
                module.training = False
        else:  # statistics update on request; dropout stays off in the frozen backbone
            for module in self._backbone_modules:
                module.training = isinstance(module, nn.modules.batchnorm._BatchNorm)

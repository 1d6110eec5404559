"""Image models from timm (``timm:<name>``) and torchvision (``torchvision:<name>``), with a new head.

The library's classifier is removed by module path (timm: ``num_classes=0``; torchvision: the last
linear layer, or the ``head`` option), so the backbone returns the pooled embedding, and a new linear
head sized from the data's classes sits on top. Every model so built has timm's interface:
``forward_features`` (the embedding), ``forward_head``, and ``head``; the backbone's own module paths
stay under ``backbone.`` (``backbone.layer4``) for taps and strategies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from protege.console import log
from protege.errors import ModelError, did_you_mean
from protege.models.taps import resolve_module
from protege.models.weights import load_backbone_weights


class BackboneClassifier(nn.Module):
    """A pretrained backbone that returns a pooled embedding, followed by a new linear head; with ``normalize``
    (mean, std per channel: the pretrained configuration's) the images in [0, 1] are normalised first, so the
    step travels with the model into checkpoints' rebuilds and exported files."""

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)
        self.normalizes = normalize is not None
        mean, std = normalize if normalize is not None else ((0.0,), (1.0,))
        # not in the state dict: the card records them, and weights saved before they existed still load
        self.register_buffer("input_mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalizes:
            x = (x - self.input_mean) / self.input_std
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@contextlib.contextmanager
def _building(label: str, fetch: bool, offline_fix: str) -> Iterator[None]:
    """Turn a library's failure to build a model into one line; a failed download says how to work offline."""
    try:
        yield
    except TypeError as exc:
        raise ModelError(f"{label}: {exc}") from None
    except Exception as exc:
        if not fetch:
            raise ModelError(f"cannot build {label}: {exc}") from None
        raise ModelError(
            f"could not fetch pretrained weights for {label} ({type(exc).__name__}); without the internet, "
            f"set {offline_fix}, or pretrained: false"
        ) from None


def build_timm(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    pretrained: bool = True,
    weights: str | None = None,
    normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    **kwargs,
) -> BackboneClassifier:
    """``timm.create_model(name, num_classes=0)`` (pretrained unless ``weights`` names a local file),
    adapted to the data's channel count, plus a new head; ``normalize``: the inputs' mean and std."""
    import timm

    if not timm.is_model(name):
        raise ModelError(f"timm has no model {name!r}{did_you_mean(name, timm.list_models())}")
    if len(input_shape) == 3:
        kwargs.setdefault("in_chans", input_shape[0])
    fetch = pretrained and weights is None
    with _building(f"timm:{name}", fetch, "weights: path/to/file.safetensors"):
        backbone = timm.create_model(name, pretrained=fetch, num_classes=0, **kwargs)
    if weights is not None:
        classifier = backbone.pretrained_cfg.get("classifier") or "head"
        load_backbone_weights(backbone, weights, skip=[classifier] if isinstance(classifier, str) else classifier)
    size = _embedding_size(backbone, input_shape, f"timm:{name}")
    return BackboneClassifier(backbone, size, num_classes, normalize)


def build_torchvision(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    pretrained: bool = True,
    weights: str | None = None,
    head: str | None = None,
    normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    **kwargs,
) -> BackboneClassifier:
    """``torchvision.models.get_model(name)`` with its default weights (or a local ``weights`` file),
    its classifier (the last linear layer, or the module at ``head``) replaced by a new head;
    ``normalize``: the inputs' mean and std."""
    from torchvision import models

    known = models.list_models()
    if name not in known:
        raise ModelError(f"torchvision has no model {name!r}{did_you_mean(name, known)}")
    fetch = pretrained and weights is None
    with _building(f"torchvision:{name}", fetch, "weights: path/to/file.safetensors (or .pth)"):
        backbone = models.get_model(name, weights="DEFAULT" if fetch else None, **kwargs)
    path = head or classifier_path(backbone, f"torchvision:{name}")
    old = resolve_module(backbone, path)
    if not isinstance(old, nn.Linear):
        raise ModelError(f"torchvision:{name}: the head {path!r} is a {type(old).__name__}, not a linear layer")
    replace_module(backbone, path, nn.Identity())
    log(f"torchvision:{name}: removed the classifier {path} ({old.in_features}→{old.out_features})")
    if weights is not None:
        load_backbone_weights(backbone, weights, skip=[path])
    size = _embedding_size(backbone, input_shape, f"torchvision:{name}")
    return BackboneClassifier(backbone, size, num_classes, normalize)


def classifier_path(model: nn.Module, label: str) -> str:
    """The module path of the classifier: the last linear layer in registration order (``fc``,
    ``classifier.1``, ``heads.head``), which is where torchvision puts it in every architecture."""
    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise ModelError(f"{label}: no linear classifier found; name its module with the 'head' option")
    return linear[-1]


def replace_module(model: nn.Module, path: str, new: nn.Module) -> None:
    """Put ``new`` at the dotted ``path`` (works inside Sequential and ModuleList, where the last part is an index)."""
    parent_path, _, leaf = path.rpartition(".")
    parent = resolve_module(model, parent_path) if parent_path else model
    setattr(parent, leaf, new)


@torch.no_grad()
def _embedding_size(backbone: nn.Module, input_shape: tuple[int, ...], label: str) -> int:
    """The embedding width, from one forward pass in eval mode; also proves the backbone takes the data."""
    was_training = backbone.training
    backbone.eval()
    try:
        out = backbone(torch.zeros(1, *input_shape))
    except Exception as exc:
        raise ModelError(f"{label} cannot take inputs of shape {tuple(input_shape)}: {exc}".splitlines()[0]) from None
    finally:
        backbone.train(was_training)
    if out.dim() != 2:
        raise ModelError(f"{label} returns a {tuple(out.shape[1:])} map, not a pooled embedding; pick another model")
    return int(out.shape[1])

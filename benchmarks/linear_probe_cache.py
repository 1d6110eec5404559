"""A linear probe with the backbone run every step (online) against one on cached backbone features.

    python benchmarks/linear_probe_cache.py [--examples 4000] [--epochs 5] [--model resnet18] [--threads N]

A timm model (random weights: speed and agreement do not depend on them) probes synthetic 32×32 images;
prints wall time of each whole probe, the speed-up, and how far apart the two results are.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

os.environ.setdefault("PROTEGE_QUIET", "1")

import timm

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset
from protege.engine import fit
from protege.objectives import build_objective
from protege.transfer import build_strategy


def images(n: int, seed: int) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.randn(n, 3, 32, 32, generator=g) + 0.5 * y[:, None, None, None].float() / 10
    return ArrayDataset(x, y)


def probe(name: str, cache: bool, train: ArrayDataset, val: ArrayDataset, epochs: int):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10)
    config = TrainConfig(epochs=epochs, batch_size=128, lr=0.01, mixed_precision="no")
    strategy = build_strategy("linear_probe", {"cache_features": cache})
    start = time.perf_counter()
    result = fit(model, train, build_objective([("ce", {}, 1.0)]), config, val=val, seed=0, strategy=strategy)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, val = images(args.examples, 0), images(max(args.examples // 10, 100), 1)
    online_s, online = probe(args.model, False, train, val, args.epochs)
    cached_s, cached = probe(args.model, True, train, val, args.epochs)
    gap = max(abs(a["val_loss"] - b["val_loss"]) for a, b in zip(online.history, cached.history, strict=True))
    head = max(
        (p - q).abs().max().item()
        for p, q in zip(
            online.model.get_classifier().parameters(), cached.model.get_classifier().parameters(), strict=True
        )
    )
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.model}, {args.examples} train examples, {args.epochs} epochs, batch 128")
    print(f"online probe: {online_s:.1f} s, cached probe: {cached_s:.1f} s, speed-up {online_s / cached_s:.1f}x")
    print(f"largest val-loss gap per epoch {gap:.2e}, largest head-weight gap {head:.2e}")
    print(f"final val accuracy online {online.final['val_accuracy']:.4f}, cached {cached.final['val_accuracy']:.4f}")


if __name__ == "__main__":
    main()

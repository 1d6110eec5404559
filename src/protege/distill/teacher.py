"""The teacher's logits for a batch: computed once and looked up (cache), or run on every step (online).

Caching is exact when the teacher is frozen and each example's input never changes, which holds
for in-memory datasets without random augmentation. Anything else runs the teacher online.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from protege.data.dataset import ArrayDataset, batch_loader
from protege.models.taps import FeatureTaps

MEMORY_LIMIT_BYTES = 2 * 1024**3
"""Above this, ``auto`` keeps the cache in a memory-mapped file instead of RAM."""


class TeacherSignal(Protocol):
    mode: str
    detail: str

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def features(self) -> dict[str, torch.Tensor]:
        """The tapped teacher layers of the last batch (empty when none were asked for)."""
        ...


def freeze(teacher: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm statistics and dropout fixed) and no gradients: a teacher never trains."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


class OnlineTeacher:
    """Runs the frozen teacher on each batch."""

    mode = "online"

    def __init__(
        self,
        teacher: nn.Module,
        autocast: Callable[[], contextlib.AbstractContextManager],
        reason: str,
        layers: tuple[str, ...] = (),
    ):
        self.teacher = freeze(teacher)
        self.autocast = autocast
        self.detail = reason
        # the taps stay open while this signal lives: hooks cost nothing when no layer is tapped
        self.taps = FeatureTaps(self.teacher, layers, detach=True).__enter__() if layers else None

    @torch.no_grad()
    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.autocast():
            return self.teacher(batch["x"])

    def features(self) -> dict[str, torch.Tensor]:
        return dict(self.taps.outputs) if self.taps is not None else {}

    def close(self) -> None:
        if self.taps is not None:
            self.taps.__exit__(None, None, None)
            self.taps = None


class CachedTeacher:
    """Teacher logits computed once per example, looked up by the example's index in the dataset."""

    def __init__(self, table: torch.Tensor | np.ndarray, mode: str, seconds: float, device: torch.device):
        self.table = table
        self.mode = mode
        self.device = device
        self.detail = f"{len(table)} examples in {seconds:.2f}s"

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        index = batch["index"]
        if isinstance(self.table, torch.Tensor):
            return self.table[index.to(self.table.device)]
        return torch.from_numpy(self.table[index.cpu().numpy()]).to(self.device, non_blocking=True)

    def features(self) -> dict[str, torch.Tensor]:
        return {}

    def close(self) -> None:
        pass


@torch.no_grad()
def compute_logits(
    teacher: nn.Module,
    dataset: ArrayDataset,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
    batch_size: int = 512,
    out: np.ndarray | None = None,
) -> torch.Tensor | np.ndarray:
    """The teacher's logits for every example in order, into ``out`` (a memmap) or a tensor on ``device``."""
    freeze(teacher)
    chunks = []
    for batch in batch_loader(dataset, batch_size):
        with autocast():
            logits = teacher(batch["x"].to(device)).float()
        if out is not None:
            index = batch["index"].numpy()
            out[index[0] : index[-1] + 1] = logits.cpu().numpy()
        else:
            chunks.append(logits)
    if out is not None:
        return out
    return torch.cat(chunks)


def prepare_teacher(
    teacher: nn.Module,
    dataset: object,
    mode: str,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
    cache_dir: Path | None = None,
    num_classes: int | None = None,
    layers: tuple[str, ...] = (),
) -> TeacherSignal:
    """Choose and build the teacher signal: ``mode`` is auto, memory, disk or off (always online).
    ``layers`` are teacher modules whose outputs the objective needs (their cache is not built yet)."""
    teacher = freeze(teacher).to(device)
    if mode == "off":
        return OnlineTeacher(teacher, autocast, "teacher cache switched off", layers)
    if not isinstance(dataset, ArrayDataset):
        reason = "inputs may change between epochs (not an in-memory dataset)"
        return OnlineTeacher(teacher, autocast, reason, layers)
    if layers:
        return OnlineTeacher(teacher, autocast, "intermediate teacher features are computed online", layers)
    start = time.perf_counter()
    if mode == "auto":
        classes = num_classes or int(teacher(dataset.x[:1].to(device)).shape[-1])
        size = len(dataset) * classes * 4
        mode = "memory" if size <= MEMORY_LIMIT_BYTES or cache_dir is None else "disk"
    if mode == "disk":
        if cache_dir is None:
            raise ValueError("a disk teacher cache needs a directory")
        table = _disk_cache(teacher, dataset, device, autocast, cache_dir)
        return CachedTeacher(table, "cached (disk)", time.perf_counter() - start, device)
    table = compute_logits(teacher, dataset, device, autocast)
    return CachedTeacher(table, "cached (memory)", time.perf_counter() - start, device)


def _disk_cache(teacher, dataset: ArrayDataset, device, autocast, cache_dir: Path) -> np.ndarray:
    """A float32 memory-mapped table of logits, reused when the data fingerprint matches."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    table_path, meta_path = cache_dir / "teacher_logits.f32", cache_dir / "teacher_logits.json"
    fingerprint = dataset.fingerprint()
    if meta_path.is_file() and table_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint:
            return np.memmap(table_path, dtype=np.float32, mode="r", shape=tuple(meta["shape"]))
    with torch.no_grad():
        classes = int(freeze(teacher)(dataset.x[:1].to(device)).shape[-1])
    shape = (len(dataset), classes)
    partial = table_path.with_suffix(".partial")
    table = np.memmap(partial, dtype=np.float32, mode="w+", shape=shape)
    compute_logits(teacher, dataset, device, autocast, out=table)
    table.flush()
    del table
    partial.replace(table_path)
    meta_path.write_text(json.dumps({"fingerprint": fingerprint, "shape": list(shape)}))
    return np.memmap(table_path, dtype=np.float32, mode="r", shape=shape)

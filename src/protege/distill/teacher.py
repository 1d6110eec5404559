"""The teacher's logits for a batch: computed once and looked up (cache), or run on every step (online).

Caching is exact when the teacher is frozen and each example's input never changes, which holds
for in-memory datasets without random augmentation. Anything else runs the teacher online: under
``train.augment`` it reads the very batch the student reads (same crops, same mixup), whatever
``teacher_cache`` asks, as function matching needs (Beyer et al. 2022).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from protege.data.cached_views import TEACHER_ROW
from protege.data.dataset import ArrayDataset, batch_loader, first_inputs, fixed_inputs
from protege.data.lengths import inference_batches
from protege.data.views import TEACHER_INPUTS, teacher_view
from protege.inference_runtime import DEFAULT_TOLERANCE, Chooser, Runner, choose_runner, eager
from protege.models.store import TEMPORARY_SUFFIX, atomic_write_text
from protege.models.taps import FeatureTaps

MEMORY_LIMIT_BYTES = 2 * 1024**3
"""Above this, ``auto`` keeps the cache in a memory-mapped file instead of RAM."""

CPU_TEACHER_EXAMPLES = 1024
"""On a CPU the online teacher runs on about this many examples at once (several training batches)."""

CPU_TEACHER_INPUT_BYTES = 16 * 1024**2
"""...as long as their inputs take at most this much memory (images stay one batch per forward)."""

TeacherBatch = tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]
"""A training batch with the teacher's logits and tapped layers for it."""


class TeacherSignal(Protocol):
    mode: str
    detail: str

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def features(self) -> dict[str, torch.Tensor]:
        """The tapped teacher layers of the last batch (empty when none were asked for)."""
        ...

    def stream(self, batches: Iterable[dict[str, torch.Tensor]]) -> Iterator[TeacherBatch]:
        """Each batch with the teacher's outputs for it, in order."""
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
        lookahead: int = 1,
        runner: Runner | Chooser | None = None,
    ):
        self.teacher = freeze(teacher)
        self.runner = runner if runner is not None else eager(self.teacher, autocast=autocast)
        self.detail = reason if lookahead <= 1 else f"{reason}; one teacher forward per {lookahead} batches"
        self.lookahead = lookahead
        # the taps stay open while this signal lives: hooks cost nothing when no layer is tapped
        self.taps = FeatureTaps(self.teacher, layers, detach=True).__enter__() if layers else None

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.runner(teacher_inputs(batch))

    def features(self) -> dict[str, torch.Tensor]:
        return dict(self.taps.outputs) if self.taps is not None else {}

    def stream(self, batches: Iterable[dict[str, torch.Tensor]]) -> Iterator[TeacherBatch]:
        """Runs the teacher once per ``lookahead`` consecutive batches: on a CPU, alternating a teacher
        forward with every student step costs more than the two apart (each evicts the other's working set
        from the caches), and a frozen teacher in eval mode gives each example the same output in any batch."""
        if self.lookahead <= 1:
            yield from one_at_a_time(self, batches)
            return
        iterator = iter(batches)
        while group := [batch for _, batch in zip(range(self.lookahead), iterator, strict=False)]:
            yield from self._grouped(group)

    @torch.no_grad()
    def _grouped(self, group: list[dict[str, torch.Tensor]]) -> Iterator[TeacherBatch]:
        shapes = {tuple(teacher_inputs(batch).shape[1:]) for batch in group}
        if len(group) == 1 or len(shapes) > 1:  # batches padded to different lengths: one at a time
            yield from one_at_a_time(self, group)
            return
        sizes = [len(batch["x"]) for batch in group]
        logits = self.runner(torch.cat([teacher_inputs(batch) for batch in group])).split(sizes)
        layers = {name: value.split(sizes) for name, value in self.features().items()}
        for i, batch in enumerate(group):
            yield batch, logits[i], {name: parts[i] for name, parts in layers.items()}

    def close(self) -> None:
        if self.taps is not None:
            self.taps.__exit__(None, None, None)
            self.taps = None


class CachedTeacher:
    """Teacher logits (and tapped layers) computed once per example, looked up by the example's index."""

    def __init__(
        self,
        tables: dict[str, torch.Tensor | np.ndarray],
        mode: str,
        seconds: float,
        device: torch.device,
        unlabeled: int = 0,
        reused: bool = False,
        runtime: str = "",
    ):
        self.tables = tables
        self.mode = mode
        self.device = device
        source = "the disk cache" if mode == "cached (disk)" else "an earlier stage's teacher pass"
        self.detail = labelling_detail(tables, seconds, unlabeled, reused, source) + (
            f", on {runtime}" if runtime else ""
        )
        self._features: dict[str, torch.Tensor] = {}

    def _lookup(self, table: torch.Tensor | np.ndarray, index: torch.Tensor) -> torch.Tensor:
        if isinstance(table, torch.Tensor):
            return table.index_select(0, index.to(table.device))
        return torch.from_numpy(table[index.cpu().numpy()]).to(self.device, non_blocking=True)

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        index = batch.get(TEACHER_ROW, batch["index"])  # a cached view's row, else the example's position
        self._features = {name: self._lookup(t, index) for name, t in self.tables.items() if name != LOGITS}
        return self._lookup(self.tables[LOGITS], index)

    def features(self) -> dict[str, torch.Tensor]:
        return self._features

    def stream(self, batches: Iterable[dict[str, torch.Tensor]]) -> Iterator[TeacherBatch]:
        return one_at_a_time(self, batches)

    def close(self) -> None:
        self._features = {}


def labelling_detail(
    tables: dict, seconds: float, unlabeled: int = 0, reused: bool = False, reused_from: str = "the disk cache"
) -> str:
    """What the teacher pass did, for the one log line of the teacher signal: how many examples (how many of
    them unlabeled, a transfer set's) it labelled, in how long and how many a second, and what it kept
    ("labelled 12,060 examples (12,000 of them unlabeled) in 8.3 s (1,453 a second); logits")."""
    count = len(tables[LOGITS])
    layers = [name for name in tables if name != LOGITS]
    kept = f"logits and {len(layers)} layer(s)" if layers else "logits"
    if reused:
        return f"{kept} of {count:,} examples read from {reused_from} in {seconds:.1f} s"
    of_them = f" ({unlabeled:,} of them unlabeled)" if unlabeled else ""
    rate = count / max(seconds, 1e-9)
    return f"labelled {count:,} examples{of_them} in {seconds:.1f} s ({rate:,.0f} a second); {kept}"


def unlabeled_count(dataset: object) -> int:
    """How many examples of a training set have no label (a transfer set's), 0 where it keeps no mask."""
    labeled = getattr(dataset, "labeled", None)
    return int((~labeled).sum()) if isinstance(labeled, torch.Tensor) else 0


def teacher_inputs(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The batch's examples as the teacher reads them: its own view's inputs when the batch carries them
    (protege.data.views), else the student's."""
    return batch.get(TEACHER_INPUTS, batch["x"])


def one_at_a_time(signal: TeacherSignal, batches: Iterable[dict[str, torch.Tensor]]) -> Iterator[TeacherBatch]:
    """Each batch with the teacher's logits and tapped layers, asked for batch by batch."""
    for batch in batches:
        yield batch, signal.logits(batch), signal.features()


LOGITS = "logits"
"""The key of the logits table; the other tables are named by the tapped module path."""


@torch.no_grad()
def compute_outputs(
    teacher: nn.Module,
    dataset: ArrayDataset,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
    layers: tuple[str, ...] = (),
    batch_size: int = 512,
    out: dict[str, np.ndarray] | None = None,
    runner: Runner | Chooser | None = None,
) -> dict[str, torch.Tensor | np.ndarray]:
    """The teacher's logits and ``layers`` outputs for every example in order, written into ``out``
    (memmaps) or into float32 tensors on ``device`` allocated once at their full size (no second copy
    from concatenating the batches, so a large cache peaks at its own size). Logits alone of a text
    teacher are computed over texts grouped by length (protege.data.lengths); tapped layers keep every
    position, so with ``layers`` the batches come in order at the full length. Logits alone run on
    ``runner`` (another runtime, protege.inference_runtime) when one is given."""
    freeze(teacher)
    tables: dict[str, torch.Tensor | np.ndarray] = dict(out) if out is not None else {}
    batches = batch_loader(dataset, batch_size) if layers else inference_batches(teacher, dataset, batch_size)
    forward = runner if runner is not None and not layers else eager(teacher, autocast=autocast)
    with FeatureTaps(teacher, layers, detach=True) as taps:
        for batch in batches:
            logits = forward(batch["x"].to(device))
            values = {LOGITS: logits, **{path: taps[path] for path in layers}}
            for name, value in values.items():
                if name not in tables:
                    tables[name] = torch.empty((len(dataset), *value.shape[1:]), dtype=torch.float32, device=device)
                _write_rows(tables[name], batch["index"], value)
    return tables


def _write_rows(table: torch.Tensor | np.ndarray, index: torch.Tensor, value: torch.Tensor) -> None:
    """``value`` into the rows ``index`` of a table: a slice where the rows are consecutive (every
    in-order batch), else the rows themselves."""
    start = int(index[0])
    consecutive = torch.equal(index, torch.arange(start, start + len(index), device=index.device))
    rows: slice | torch.Tensor = slice(start, start + len(index)) if consecutive else index
    if isinstance(table, np.ndarray):
        table[rows if isinstance(rows, slice) else rows.numpy()] = value.float().cpu().numpy()
    else:
        table[rows if isinstance(rows, slice) else rows.to(table.device)] = value


@torch.no_grad()
def output_shapes(teacher: nn.Module, dataset: ArrayDataset, device: torch.device, layers: tuple[str, ...]):
    """Per-example shapes of the logits and of each tapped layer, from one example."""
    freeze(teacher)
    with FeatureTaps(teacher, layers, detach=True) as taps:
        logits = teacher(first_inputs(dataset, 1).to(device))
        shapes = {LOGITS: tuple(logits.shape[1:]), **{p: tuple(taps[p].shape[1:]) for p in layers}}
    return shapes


def online_lookahead(device: torch.device, batch_size: int, example_bytes: int, teacher_batch_size: int | None) -> int:
    """How many training batches one online teacher forward covers: ``teacher_batch_size`` examples
    (rounded down to whole batches) when given; by default one batch on a GPU, and on a CPU about
    ``CPU_TEACHER_EXAMPLES`` examples whose inputs fit in ``CPU_TEACHER_INPUT_BYTES``."""
    if teacher_batch_size is None:
        if device.type != "cpu":
            return 1
        teacher_batch_size = min(CPU_TEACHER_EXAMPLES, CPU_TEACHER_INPUT_BYTES // max(example_bytes, 1))
    return max(1, teacher_batch_size // batch_size)


def prepare_teacher(
    teacher: nn.Module,
    dataset: object,
    mode: str,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
    cache_dir: Path | None = None,
    layers: tuple[str, ...] = (),
    lookahead: int = 1,
    runtime: str = "eager",
    tolerance: float = DEFAULT_TOLERANCE,
    epochs: int = 1,
    memo: dict | None = None,
) -> TeacherSignal:
    """Choose and build the teacher signal: ``mode`` is auto, memory, disk or off (always online).

    ``layers`` are teacher modules whose outputs the objective needs; they are cached with the logits
    (``auto``: in memory up to ``MEMORY_LIMIT_BYTES``, then memory-mapped on disk, else online).
    Online, the teacher runs once per ``lookahead`` training batches. A dataset whose teacher reads
    another view of the examples is cached on that view, by the same example indices; one of cached
    augmented views (``teacher_rows``, protege.data.cached_views) on every view, by its row. The teacher's
    logits run on ``runtime`` (protege.inference_runtime; ``auto`` picks one, online over ``epochs``
    passes) when no layer is tapped. With ``memo`` (one per run), outputs kept in memory are shared by the
    stages that ask for the same teacher on the same examples (several students of one view).
    """
    teacher = freeze(teacher).to(device)
    dataset = teacher_view(dataset)

    def online(reason: str) -> OnlineTeacher:
        runner = teacher_runner(teacher, len(dataset) * epochs, autocast, layers, runtime, tolerance)
        return OnlineTeacher(teacher, autocast, reason, layers, lookahead, runner)

    if mode == "off":
        return online("teacher cache switched off")
    rows, approximation = labelled_rows(dataset)
    if not fixed_inputs(dataset) and rows is dataset:
        changes = getattr(dataset, "changes", None)
        return online(changes or "inputs may change between epochs (not an in-memory dataset)")
    start = time.perf_counter()
    shapes = output_shapes(teacher, rows, device, layers)
    size = len(rows) * sum(math.prod(shape) for shape in shapes.values()) * 4
    if mode == "auto" and size > MEMORY_LIMIT_BYTES:  # else the cache fits in memory
        if cache_dir is None:
            return online(f"the cache would take {size / 1024**3:.1f} GiB and there is no run dir{approximation}")
        mode = "disk"
    runner = teacher_runner(teacher, len(rows), autocast, layers, runtime, tolerance)
    if mode == "disk":
        if cache_dir is None:
            raise ValueError("a disk teacher cache needs a directory")
        tables, reused = _disk_cache(teacher, rows, device, autocast, cache_dir, shapes, runner)
    else:
        compute = lambda: compute_outputs(teacher, rows, device, autocast, layers, runner=runner)  # noqa: E731
        tables, reused = _remembered(memo, teacher, rows, layers, compute) if memo is not None else (compute(), False)
    where = "disk" if mode == "disk" else "memory"
    note = runner.name if runner.name not in ("eager", "undecided") else ""
    seconds = time.perf_counter() - start
    signal = CachedTeacher(tables, f"cached ({where})", seconds, device, unlabeled_count(rows), reused, note)
    signal.detail += approximation
    return signal


def labelled_rows(dataset: object) -> tuple[object, str]:
    """What a cached teacher labels, row by row: every cached augmented view (``train.augment_views``), with
    the log's note that this approximates function matching; else the training set itself."""
    views = getattr(dataset, "teacher_rows", None)
    return (dataset, "") if views is None else (views, f"; {dataset.approximation}")


def _remembered(memo: dict, teacher: nn.Module, dataset: ArrayDataset, layers: tuple[str, ...], compute) -> tuple:
    """The tables an earlier stage computed for this teacher (same weights) on these examples (same
    fingerprint) and layers, with True; else computed now and remembered, with False."""
    key = (weights_digest(teacher), dataset.fingerprint(), layers)
    if key in memo:
        return memo[key], True
    memo[key] = compute()
    return memo[key], False


def teacher_runner(
    teacher: nn.Module,
    examples: int,
    autocast: Callable[[], contextlib.AbstractContextManager],
    layers: tuple[str, ...],
    runtime: str,
    tolerance: float,
) -> Runner | Chooser:
    """The runtime of the teacher's logits: eager PyTorch where layers are tapped (hooks need the module),
    else what :func:`protege.inference_runtime.choose_runner` picks for ``runtime``."""
    if layers:
        return eager(teacher, autocast=autocast, note="eager (tapped layers are read from the PyTorch module)")
    return choose_runner(
        teacher, examples, requested=runtime, autocast=autocast, tolerance=tolerance, what="teacher runtime"
    )


def _disk_cache(
    teacher,
    dataset: ArrayDataset,
    device,
    autocast,
    cache_dir: Path,
    shapes: dict[str, tuple[int, ...]],
    runner: Runner | Chooser | None = None,
) -> tuple[dict[str, np.ndarray], bool]:
    """Float32 memory-mapped tables (logits, then one per tapped layer), reused when the data
    fingerprint, the teacher's weights and the layers match (then True beside them); written under
    temporary names and renamed when complete."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_path = cache_dir / "teacher_cache.json"
    names = list(shapes)
    files = {name: cache_dir / f"teacher_{i}.f32" for i, name in enumerate(names)}
    expected = {
        "fingerprint": dataset.fingerprint(),
        "teacher": weights_digest(teacher),
        "tables": {n: list((len(dataset), *shapes[n])) for n in names},
    }

    def table(name: str, path: Path, mode: str) -> np.memmap:
        return np.memmap(path, dtype=np.float32, mode=mode, shape=(len(dataset), *shapes[name]))

    if _cache_matches(meta_path, files, expected):
        return {n: table(n, files[n], "r") for n in names}, True
    meta_path.unlink(missing_ok=True)
    partial_files = {n: files[n].with_name(f".{files[n].name}.partial{TEMPORARY_SUFFIX}") for n in names}
    partial = {n: table(n, partial_files[n], "w+") for n in names}
    layers = tuple(n for n in names if n != LOGITS)
    compute_outputs(teacher, dataset, device, autocast, layers, out=partial, runner=runner)
    for name, written in partial.items():
        written.flush()
        partial_files[name].replace(files[name])
    del partial
    atomic_write_text(meta_path, json.dumps(expected))
    return {n: table(n, files[n], "r") for n in names}, False


def weights_digest(module: nn.Module) -> str:
    """A hash of every parameter and buffer (names, shapes, dtypes and bytes): another teacher, or the same
    one trained further, gets another digest, so a cache on disk is never reused for it."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _cache_matches(meta_path: Path, files: dict[str, Path], expected: dict) -> bool:
    """Whether the disk cache was completed for this data and these layers; a damaged or edited one (a
    description that is not JSON, a table of another size) does not match and is computed again."""
    try:
        if json.loads(meta_path.read_text(encoding="utf-8")) != expected:
            return False
        sizes = {name: 4 * math.prod(shape) for name, shape in expected["tables"].items()}
        return all(files[name].stat().st_size == size for name, size in sizes.items())
    except (OSError, ValueError):  # missing files, text that is not UTF-8 or not JSON
        return False

"""Which runtime runs a frozen model's inference passes (the teacher's labelling pass, cached backbone
features, the online teacher): eager PyTorch, ONNX Runtime, bf16 autocast or torch.compile.

A frozen model in eval mode is an inference-only graph, so another runtime may run it faster; ``auto``
tries the ones that can pay off on this device (ONNX Runtime on a CPU, bf16 on a GPU that has it) on a
probe batch, keeps the fastest that agrees with eager PyTorch within the tolerance and is clearly
faster, and otherwise stays eager. The choice and its measured gain go to the log. A runtime named in
the recipe is used if it agrees, and refused in one line if it does not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from protege.console import log, without_log
from protege.errors import ConfigError

RUNTIMES = ("auto", "eager", "onnxruntime", "bf16", "compile")

DEFAULT_TOLERANCE = 1e-3
"""Largest difference from eager PyTorch allowed, relative to the largest eager output (at least 1)."""

AUTO_MIN_SECONDS = 20.0
"""``auto`` stays eager when the whole pass would take less than this eagerly: exporting a small
transformer to ONNX costs about 10 s on 2 CPU cores, which a shorter pass does not win back."""

MIN_GAIN = 1.1
"""``auto`` keeps another runtime only when it is at least this many times faster on the probe."""

PROBE_ROWS = 16


@dataclass
class Runner:
    """A frozen model's forward under one runtime, and what the log says about the choice."""

    name: str
    run: Callable[[torch.Tensor], torch.Tensor]
    note: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


class _Method(nn.Module):
    """One method of a model (``forward_features``) as a module's forward, for export and compile."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.method)(x)


def eager(model: nn.Module, method: str = "forward", autocast=contextlib.nullcontext, note: str = "eager") -> Runner:
    function = getattr(model, method)

    @torch.no_grad()
    def run(x: torch.Tensor) -> torch.Tensor:
        with autocast():
            return function(x)

    return Runner("eager", run, note)


def onnxruntime_forward(model: nn.Module, probe: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` exported by torch.onnx's dynamo exporter with a dynamic batch axis (and a dynamic length
    up to the probe's for token ids, whose batches are cut to their longest text) in an ONNX Runtime CPU
    session with torch's thread count."""
    import onnxruntime as ort

    dims = {0: torch.export.Dim("batch")}
    if probe.dim() == 2 and not probe.is_floating_point() and probe.shape[1] > 2:
        dims[1] = torch.export.Dim("length", min=2, max=int(probe.shape[1]))
    with without_log("onnxscript.optimizer._constant_folding", "Evaluation failed"):
        program = torch.onnx.export(
            model, (probe,), dynamo=True, input_names=["x"], output_names=["y"], dynamic_shapes=(dims,), verbose=False
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    session = ort.InferenceSession(program.model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"x": x.detach().cpu().contiguous().numpy()})[0])

    return run


def _build(name: str, model: nn.Module, probe: torch.Tensor, device: torch.device) -> Callable:
    """The forward of runtime ``name`` (not yet checked against eager)."""
    if name == "onnxruntime":
        if device.type != "cpu":
            raise RuntimeError(f"protege runs ONNX Runtime on the CPU only, and the model is on {device.type}")
        return onnxruntime_forward(model, probe)
    if name == "bf16":
        bf16 = eager(model, autocast=lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        return lambda x: bf16(x).float()
    if name == "compile":
        compiled = torch.compile(model, dynamic=True)
        return torch.no_grad()(compiled)
    raise ValueError(name)


def candidates(device: torch.device) -> list[str]:
    """The runtimes ``auto`` tries here: ONNX Runtime on a CPU when installed, bf16 on a GPU that has it
    (on a CPU, bf16 matmuls were no faster than float32 on the 2-core machine of BENCHMARKS.md)."""
    found = []
    if device.type == "cpu":
        with contextlib.suppress(ImportError):
            import onnxruntime  # noqa: F401

            found.append("onnxruntime")
    elif device.type == "cuda" and torch.cuda.is_bf16_supported():
        found.append("bf16")
    return found


def _seconds(forward: Callable, probe: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The time of one call after a warm-up call, and its output."""
    with torch.no_grad():
        forward(probe)
        started = time.perf_counter()
        out = forward(probe)
    return time.perf_counter() - started, out


class Chooser:
    """A runner that decides on its first batch: that batch runs eagerly and is timed; when the whole pass
    would take ``AUTO_MIN_SECONDS`` or more (or a runtime was named), the candidates are measured on its
    first ``PROBE_ROWS`` rows and the rest of the pass runs on the one chosen. Small passes thus cost no
    extra forward, and the probe is a real batch (the longest one, where batches come longest first)."""

    def __init__(self, model, examples, requested, method, autocast, tolerance, what):
        self.model, self.examples, self.requested = model, examples, requested
        self.method, self.autocast, self.tolerance, self.what = method, autocast, tolerance, what
        self.base = eager(model, method, autocast)
        self.chosen: Runner | None = None

    @property
    def name(self) -> str:
        return self.chosen.name if self.chosen is not None else "undecided"

    @property
    def note(self) -> str:
        return self.chosen.note if self.chosen is not None else "not run yet"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.chosen is not None:
            return self.chosen(x)
        started = time.perf_counter()
        out = self.base(x)
        estimate = (time.perf_counter() - started) * self.examples / max(len(x), 1)
        self.chosen = self._decide(x[:PROBE_ROWS], estimate)
        if self.chosen.name != "eager" or self.requested != "auto" or estimate >= AUTO_MIN_SECONDS:
            log(f"{self.what}: {self.chosen.note}")
        return out

    def _decide(self, probe: torch.Tensor, estimate: float) -> Runner:
        if self.requested == "auto":
            if estimate < AUTO_MIN_SECONDS:
                return Runner(
                    "eager", self.base.run, f"eager (about {estimate:.0f} s eagerly: too short to try another)"
                )
            names = candidates(probe.device)
            if not names:
                return Runner("eager", self.base.run, f"eager (no other runtime to try on {probe.device.type})")
        else:
            names = [self.requested]
        target = _Method(self.model, self.method).eval() if self.method != "forward" else self.model
        eager_seconds, reference = _seconds(self.base, probe)
        return _fastest(names, target, probe, reference, eager_seconds, self.requested, self.tolerance, self.base)


def choose_runner(
    model: nn.Module,
    examples: int,
    *,
    requested: str = "auto",
    method: str = "forward",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    tolerance: float = DEFAULT_TOLERANCE,
    what: str = "inference runtime",
) -> Runner | Chooser:
    """The runtime for a pass of ``examples`` examples through frozen ``model`` (``method`` of it): eager
    when asked, else a :class:`Chooser` that decides on the first batch and logs its choice as ``what``."""
    if requested not in RUNTIMES:
        raise ConfigError(f"inference_runtime {requested!r} is not one of {', '.join(RUNTIMES)}")
    if requested == "eager":
        return eager(model, method, autocast, "eager, as the recipe asks")
    return Chooser(model, examples, requested, method, autocast, tolerance, what)


def _fastest(names, target, probe, reference, eager_seconds, requested, tolerance, base) -> Runner:
    """The fastest runtime of ``names`` that agrees with eager; eager when none does (``auto``) or an
    error naming the difference (a runtime the recipe asked for)."""
    bound = tolerance * max(1.0, float(reference.float().abs().max()))
    best: Runner | None = None
    best_seconds = eager_seconds / MIN_GAIN if requested == "auto" else float("inf")
    reasons = []
    for name in names:
        try:
            forward = _build(name, target, probe, probe.device)
            seconds, out = _seconds(forward, probe)
        except Exception as exc:  # an export or compile that fails: the model stays eager under auto
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if requested != "auto":
                raise ConfigError(
                    f"inference_runtime {name} cannot run this model ({first}); use auto or eager"
                ) from None
            reasons.append(f"{name} failed ({first[:80]})")
            continue
        delta = float((out.to(reference.device).float() - reference.float()).abs().max())
        if delta > bound:
            if requested != "auto":
                raise ConfigError(
                    f"inference_runtime {name}: outputs differ from eager PyTorch by {delta:.2g}, more than "
                    f"the tolerance {bound:.2g}; raise inference_tolerance or use eager"
                )
            reasons.append(f"{name} differs by {delta:.2g}")
            continue
        gain = eager_seconds / max(seconds, 1e-9)
        if seconds < best_seconds:
            rows = "×".join(str(n) for n in probe.shape)
            best = Runner(name, forward, f"{name}: {gain:.1f}× eager on a {rows} probe, within {delta:.1g} of eager")
            best_seconds = seconds
        else:
            reasons.append(f"{name} only {gain:.2f}× eager")
    if best is not None:
        return best
    return Runner("eager", base.run, f"eager ({'; '.join(reasons)})")

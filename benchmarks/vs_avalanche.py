"""protege's continual strategies beside Avalanche's on the same streams, model, initial weights and budget.

Streams (both built by protege.continual.streams and handed to Avalanche experience by experience, so the
two libraries see the same examples in the same experiences):

- ``split_digits``: scikit-learn's digits, class-incremental, 5 experiences of 2 classes (Split-MNIST's
  protocol: MNIST itself cannot be had offline here), standardised;
- ``permuted_mnist1d``: MNIST-1D (4,000 train / 1,000 test), domain-incremental, 5 experiences, each a
  fixed permutation of the 40 inputs (the first unpermuted), as Permuted MNIST.

Model: protege's builtin MLP (2 × 200, ReLU); Avalanche gets a copy of the same initial weights, its head
an ``IncrementalClassifier`` for the class-incremental stream (the same growth as protege's head: new rows
for new classes, unseen ones never predicted). Budget: AdamW (weight decay 0), lr 1e-3, batch 32, 10 epochs
per experience, the last epoch's weights (no selection on the test split). Strategies:

- naive; replay with a class-balanced buffer of 200 (Avalanche: ``ReplayPlugin`` with
  ``ClassBalancedBuffer(200, adaptive_size=True)``; each of its steps adds a replay batch of 32, protege
  repeats the buffer to the size of the new data, the same number of replayed examples per epoch);
- online EWC: Avalanche's Fisher is the mean over minibatches of the squared minibatch gradient and
  protege's the mean over examples of squared per-example gradients, so the same λ means different
  penalties: each library's λ is picked from {10, 100, 1000, 10000} on the validation split of the first
  seed (the accuracy averaged over the experiences' validation splits after the last one);
- LwF at T = 2: Avalanche's α multiplies the KL, protege's α the KL times T² (Hinton's scaling), so
  protege's α = 0.25 is Avalanche's α = 1.

Accuracy of both libraries is measured by the same function (protege.continual.plan's rows) on the
models each trained. Wall time: the training of the whole stream, one torch thread.

    python benchmarks/vs_avalanche.py [--seeds 0 1 2] [--streams split_digits permuted_mnist1d] [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("PROTEGE_QUIET", "1")

import torch
from torch import nn

from protege.config import Recipe
from protege.continual.config import ContinualConfig
from protege.continual.metrics import summarise
from protege.continual.streams import Stream, build_stream
from protege.data.build import load_data
from protege.evaluate import predict_logits
from protege.models import build_model
from protege.pipeline import run_recipe

warnings.filterwarnings("ignore")  # Avalanche's deprecation notices, once per experience

STREAMS = {
    "split_digits": {
        "data": {"source": "digits", "standardize": True},
        "continual": {"scenario": "class_incremental", "experiences": 5},
    },
    "permuted_mnist1d": {
        "data": {"source": "mnist1d", "options": {"num_samples": 5000}, "standardize": True},
        "continual": {"scenario": "domain_incremental", "experiences": 5, "shift": "permute"},
    },
}
STRATEGIES = ("naive", "replay", "ewc", "lwf")
EWC_GRID = (10.0, 100.0, 1000.0, 10000.0)
HIDDEN, BATCH, LR = 200, 32, 1e-3


def recipe_for(stream: str, seed: int, epochs: int, strategies: list) -> Recipe:
    spec = STREAMS[stream]
    return Recipe.model_validate(
        {
            "name": f"cl-{stream}",
            "seed": seed,
            "data": spec["data"],
            "continual": {**spec["continual"], "strategies": strategies},
            "student": {
                "model": {"source": "mlp", "hidden": HIDDEN, "layers": 2},
                "train": {
                    "epochs": epochs,
                    "batch_size": BATCH,
                    "lr": LR,
                    "schedule": "constant",
                    "weight_decay": 0.0,
                    "restore_best": False,
                },
            },
            "evaluate": {"latency": False, "html": False},
        }
    )


def protege_strategy(name: str, ewc_lambda: float) -> dict:
    return {
        "naive": {"name": "naive"},
        "replay": {"name": "replay", "buffer_size": 200, "selection": "class_balanced"},
        "ewc": {"name": "ewc", "strength": ewc_lambda},
        "lwf": {"name": "lwf", "alpha": 0.25, "temperature": 2.0},
    }[name]


def run_protege(stream: str, seed: int, epochs: int, name: str, ewc_lambda: float) -> dict:
    recipe = recipe_for(stream, seed, epochs, [protege_strategy(name, ewc_lambda)])
    with tempfile.TemporaryDirectory() as tmp:
        report = run_recipe(recipe, Path(tmp) / "run").report
    entry = report["continual"]["strategies"][name]
    seconds = sum(cost["train_seconds"] for cost in entry["per_experience"])
    return {"matrix": entry["accuracy_matrix"], "seconds": seconds}


def the_stream(stream: str, seed: int) -> Stream:
    spec = STREAMS[stream]
    data = spec["data"]
    bundle = load_data(data["source"], data.get("options", {}), standardize=data["standardize"], seed=seed)
    return build_stream(bundle, ContinualConfig(**spec["continual"]), seed)


def rows(model: nn.Module, stream: Stream, split: str = "test") -> list[float]:
    """Accuracy on every experience's ``split``, measured as protege measures it."""
    out = []
    for e in stream.experiences:
        dataset = getattr(e, split)
        logits = predict_logits(model, dataset)
        out.append(float((logits.argmax(1) == dataset.y).float().mean()))
    return out


def avalanche_model(stream: Stream, seed: int) -> nn.Module:
    """protege's initial MLP; for a class-incremental stream its head becomes an IncrementalClassifier with
    the same initial rows."""
    from accelerate.utils import set_seed
    from avalanche.models import IncrementalClassifier

    set_seed(seed)  # as the plan seeds its first stage
    data = stream.data
    names = stream.known_classes(1)
    model = build_model("mlp", {"hidden": HIDDEN, "layers": 2}, data.input_shape, names).module
    if not stream.grows:
        return model
    head = IncrementalClassifier(model.head.in_features, initial_out_features=len(names))
    with torch.no_grad():
        head.classifier.weight.copy_(model.head.weight)
        head.classifier.bias.copy_(model.head.bias)
    model.head = head
    return model


def avalanche_benchmark(stream: Stream):
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensors

    def dataset(part):
        return tensors(part.x, part.y)

    return with_classes_timeline(
        benchmark_from_datasets(
            train=[dataset(e.train) for e in stream.experiences], test=[dataset(e.test) for e in stream.experiences]
        )
    )


def run_avalanche(stream: Stream, seed: int, epochs: int, name: str, ewc_lambda: float, split: str = "test") -> dict:
    from avalanche.training import EWC, LwF, Naive
    from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
    from avalanche.training.storage_policy import ClassBalancedBuffer

    model = avalanche_model(stream, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    common = {
        "model": model,
        "optimizer": optimizer,
        "criterion": nn.CrossEntropyLoss(),
        "train_mb_size": BATCH,
        "train_epochs": epochs,
        "eval_mb_size": 512,
        "device": "cpu",
        "evaluator": EvaluationPlugin(loggers=[]),
    }
    if name == "naive":
        strategy = Naive(**common)
    elif name == "replay":
        buffer = ClassBalancedBuffer(max_size=200, adaptive_size=True)
        strategy = Naive(**common, plugins=[ReplayPlugin(mem_size=200, storage_policy=buffer)])
    elif name == "ewc":
        strategy = EWC(**common, ewc_lambda=ewc_lambda, mode="online", decay_factor=1.0)
    else:
        strategy = LwF(**common, alpha=1.0, temperature=2.0)
    benchmark = avalanche_benchmark(stream)
    matrix, seconds = [], 0.0
    torch.manual_seed(seed)
    for experience in benchmark.train_stream:
        started = time.perf_counter()
        strategy.train(experience)
        seconds += time.perf_counter() - started
        matrix.append(rows(strategy.model, stream, split))
    return {"matrix": matrix, "seconds": seconds}


def pick_ewc_lambda(stream_name: str, epochs: int) -> tuple[float, float]:
    """Each library's λ with the best final average validation accuracy on seed 0."""
    stream = the_stream(stream_name, 0)
    protege_scores, avalanche_scores = {}, {}
    for value in EWC_GRID:
        avalanche_scores[value] = statistics.mean(run_avalanche(stream, 0, epochs, "ewc", value, "val")["matrix"][-1])
        protege_scores[value] = protege_val_score(stream_name, epochs, value)
        print(f"  {stream_name} EWC λ={value:g}: val protege {protege_scores[value]:.3f}, "
              f"avalanche {avalanche_scores[value]:.3f}", flush=True)  # fmt: skip
    return max(protege_scores, key=protege_scores.get), max(avalanche_scores, key=avalanche_scores.get)


def protege_val_score(stream_name: str, epochs: int, ewc_lambda: float) -> float:
    """protege's EWC at ``ewc_lambda`` on seed 0, scored on the experiences' validation splits."""
    from protege.models import load_run_model

    recipe = recipe_for(stream_name, 0, epochs, [protege_strategy("ewc", ewc_lambda)])
    stream = the_stream(stream_name, 0)
    with tempfile.TemporaryDirectory() as tmp:
        run_recipe(recipe, Path(tmp) / "run")
        model = load_run_model(f"run:{Path(tmp) / 'run' / 'ewc' / 'exp5'}", None, None).module
        return statistics.mean(rows(model, stream, "val"))


def measure(stream_name: str, seeds: list[int], epochs: int) -> dict:
    lambdas = pick_ewc_lambda(stream_name, epochs)
    print(f"  {stream_name}: EWC λ protege {lambdas[0]:g}, avalanche {lambdas[1]:g}", flush=True)
    results: dict = {}
    for name in STRATEGIES:
        for seed in seeds:
            stream = the_stream(stream_name, seed)
            mine = run_protege(stream_name, seed, epochs, name, lambdas[0])
            theirs = run_avalanche(stream, seed, epochs, name, lambdas[1])
            for library, outcome in (("protege", mine), ("avalanche", theirs)):
                measures = summarise(outcome["matrix"], [0.0] * len(outcome["matrix"]))
                results.setdefault((name, library), []).append({**measures, "seconds": outcome["seconds"]})
            ours, others = results[(name, "protege")][-1], results[(name, "avalanche")][-1]
            print(f"  {stream_name} {name} seed {seed}: protege {ours['average_accuracy']:.3f} "
                  f"({mine['seconds']:.1f} s), avalanche {others['average_accuracy']:.3f} ({theirs['seconds']:.1f} s)",
                  flush=True)  # fmt: skip
    return {"lambdas": lambdas, "results": results}


def _mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def table(stream_name: str, measured: dict) -> str:
    results = measured["results"]
    lines = [
        f"| {stream_name} | protege accuracy | Avalanche accuracy | Δ (points) | protege forgetting | "
        "Avalanche forgetting | protege s | Avalanche s | time ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in STRATEGIES:
        mine, theirs = results[(name, "protege")], results[(name, "avalanche")]
        acc_mine = [r["average_accuracy"] for r in mine]
        acc_theirs = [r["average_accuracy"] for r in theirs]
        delta = 100 * (statistics.mean(acc_mine) - statistics.mean(acc_theirs))
        t_mine = statistics.mean(r["seconds"] for r in mine)
        t_theirs = statistics.mean(r["seconds"] for r in theirs)
        lines.append(
            f"| {name} | {_mean_std(acc_mine)} | {_mean_std(acc_theirs)} | {delta:+.1f} | "
            f"{_mean_std([r['forgetting'] for r in mine])} | {_mean_std([r['forgetting'] for r in theirs])} | "
            f"{t_mine:.1f} | {t_theirs:.1f} | {t_mine / t_theirs:.2f} |"
        )
    protege_lambda, avalanche_lambda = measured["lambdas"]
    lines.append(f"\nEWC λ chosen on validation (seed 0): protege {protege_lambda:g}, Avalanche {avalanche_lambda:g}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--streams", nargs="+", default=list(STREAMS), choices=list(STREAMS))
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # the first optimizer a process builds imports torch._dynamo (about 2 s): pay it before any timing
    torch.optim.AdamW([nn.Parameter(torch.zeros(1))])
    started = time.perf_counter()
    tables = [table(name, measure(name, args.seeds, args.epochs)) for name in args.streams]
    print(f"\nseeds {args.seeds}, {args.epochs} epochs per experience, {time.perf_counter() - started:.0f} s in all\n")
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()

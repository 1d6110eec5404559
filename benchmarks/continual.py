"""Every continual strategy of protege over several seeds, on a class-incremental and a
domain-incremental stream, against the ordering the literature reports (van de Ven et al. 2022 on
Split-MNIST, class-incremental, 5 experiences: naive, EWC, SI ≈ 0.20, LwF ≈ 0.22, replay ≈ 0.90,
iCaRL ≈ 0.93, joint ≈ 0.98).

- ``split_digits``: ``recipes/continual.yaml`` as shipped (scikit-learn's digits, 5 experiences of 2
  classes; MNIST itself cannot be had offline here: the PyPI packages named after it download it);
- ``permuted_mnist1d``: the same recipe on MNIST-1D (5,000 examples), domain-incremental, each experience
  a fixed permutation of the 40 inputs (iCaRL left out: it is a class-incremental method).

The last epoch of each experience is kept (no selection on any split); numbers are final average test
accuracy and forgetting, mean ± std over the seeds.

    python benchmarks/continual.py [--seeds 0 1 2] [--streams split_digits permuted_mnist1d]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.pipeline import run_recipe
from protege.recipe_reader import load_recipe

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "continual.yaml"
STREAMS = {
    "split_digits": [],
    "permuted_mnist1d": [
        "data.source=mnist1d",
        "data.options={num_samples: 5000}",
        "continual.scenario=domain_incremental",
        "continual.shift=permute",
        "continual.strategies=[naive, {name: replay, buffer_size: 200}, {name: ewc, strength: 10}, "
        "{name: lwf, alpha: 1.0, temperature: 2.0}, {name: der, buffer_size: 200, alpha: 0.3, beta: 0.5}, joint]",
    ],
}
LITERATURE = {"naive": 0.20, "ewc": 0.20, "lwf": 0.22, "replay": 0.90, "icarl": 0.93, "joint": 0.98}


def run_seeds(stream: str, seeds: list[int]) -> dict[int, dict]:
    blocks = {}
    for seed in seeds:
        overrides = [f"seed={seed}", "evaluate.latency=false", "evaluate.html=false", *STREAMS[stream]]
        recipe = load_recipe(RECIPE, overrides)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            blocks[seed] = run_recipe(recipe, Path(tmp) / "run").report["continual"]
            print(f"{stream} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    return blocks


def _mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def table(stream: str, blocks: dict[int, dict]) -> str:
    first = next(iter(blocks.values()))
    lines = [
        f"| {stream} ({first['scenario']}) | average accuracy | forgetting | per seed | train s "
        "| literature (Split-MNIST) |",
        "|---|---|---|---|---|---|",
    ]
    for name in first["strategies"]:
        entries = [block["strategies"][name] for block in blocks.values()]
        accuracy = [e["average_accuracy"] for e in entries]
        seconds = statistics.mean(sum(c["train_seconds"] for c in e["per_experience"]) for e in entries)
        anchor = LITERATURE.get(name) if stream == "split_digits" else None
        lines.append(
            f"| {name} | {_mean_std(accuracy)} | {_mean_std([e['forgetting'] for e in entries])} | "
            f"{', '.join(f'{a:.3f}' for a in accuracy)} | {seconds:.1f} | {f'≈ {anchor:.2f}' if anchor else '–'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--streams", nargs="+", default=list(STREAMS), choices=list(STREAMS))
    args = parser.parse_args()
    started = time.perf_counter()
    tables = [table(stream, run_seeds(stream, args.seeds)) for stream in args.streams]
    print(f"\nseeds {args.seeds}, {time.perf_counter() - started:.0f} s in all\n")
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()

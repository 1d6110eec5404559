"""recipes/text_distill.yaml over several seeds (issue 19): MiniLM fine-tuned on BBC News, distilled into
fastText, TextCNN and a 2-layer cut of itself; then each student exported to int8 (ONNX Runtime dynamic
quantization) and timed again.

    python benchmarks/text_distill.py                         # seeds 0 1 2, with and without the transfer set
    python benchmarks/text_distill.py --seeds 0 --no-ablation # one run

Per student: accuracy as a share of the teacher's (mean ± std over seeds), the CPU speed-up over the
teacher at batch 1 and 64 (1 thread) from raw text to probabilities (tokenizer or vocabulary included) and
model only, in float (PyTorch, from the run's report) and int8 (ONNX Runtime, from raw text through
``protege.predict``'s reader and model only, from the export's measurements). ``--ablation`` runs the
same recipe without the transfer set, so what the students learned from the teacher-labelled texts shows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import torch

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.evaluate import time_calls
from protege.pipeline import run_recipe
from protege.predict import load_predictor
from protege.quantize import export_int8
from protege.recipe_reader import load_recipe

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "text_distill.yaml"
BATCHES = ("1", "64")


def int8_from_text_ms(path: Path, texts: list[str], batch: int) -> float:
    """Median milliseconds from ``batch`` raw texts to probabilities through the int8 ONNX file, one thread."""
    predictor = load_predictor(path)
    chosen = [texts[i % len(texts)] for i in range(batch)]
    return (
        time_calls(lambda: predictor.probabilities(predictor.preprocessor.from_texts(chosen, "texts"))).median_s * 1e3
    )


def seed_runs(seed: int, ablation: bool, texts: list[str], changes: list[str]) -> dict[bool, dict[str, dict]]:
    """The figures of the recipe at ``seed`` (key True), and without its transfer set (False) with the same
    teacher, loaded from the first run rather than trained again."""
    with tempfile.TemporaryDirectory() as tmp:
        first = Path(tmp) / "run"
        runs = {True: one_run(seed, True, texts, changes, first)}
        if ablation:
            saved = f'teacher={{model: {{source: "run:{first}"}}}}'
            runs[False] = one_run(seed, False, texts, [*changes, saved], Path(tmp) / "alone")
        return runs


def one_run(seed: int, transfer: bool, texts: list[str], changes: list[str], run_dir: Path) -> dict[str, dict]:
    """The per-student figures of one run of the recipe (with ``changes``, ``--set`` overrides) in ``run_dir``."""
    overrides = [f"seed={seed}", *changes, *([] if transfer else ["transfer=null"])]
    recipe = load_recipe(RECIPE, overrides)
    run_recipe(recipe, run_dir)
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    teacher = report["models"]["teacher"]
    rows = {"teacher": {"accuracy": teacher["accuracy"]}}
    for name, entry in report["models"].items():
        if name == "teacher":
            continue
        row = {
            "accuracy": entry["accuracy"],
            "share": entry["accuracy_retained"],
            "text": {b: entry["speedup_from_text"][b] for b in BATCHES},
            "model": {b: entry["speedup"][b] for b in BATCHES},
        }
        if transfer:
            torch.set_num_threads(1)
            quantized = export_int8(run_dir, stage=name, max_drop=1.0, threads=1)
            int8 = quantized.measures["int8"]
            row["int8_share"] = int8["accuracy"] / teacher["accuracy"]
            row["int8_model"] = {b: teacher["latency_ms"][b] / int8["latency_ms"][b] for b in BATCHES}
            row["int8_text"] = {
                b: teacher["latency_from_text_ms"][b] / int8_from_text_ms(quantized.path, texts, int(b))
                for b in BATCHES
            }
        rows[name] = row
    return rows


def spread(values: list[float], form: str = "{:.1%}") -> str:
    mean = statistics.mean(values)
    return form.format(mean) + (f" ± {form.format(statistics.stdev(values))}" if len(values) > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-ablation", dest="ablation", action="store_false")
    parser.add_argument("--set", nargs="*", default=[], help="recipe overrides (a smaller run), as protege run --set")
    args = parser.parse_args()
    from protege.data.sources import bbc_news

    texts = [str(t) for t in bbc_news(per_class=120).x[:64]]
    by_seed = [seed_runs(seed, args.ablation, texts, args.set) for seed in args.seeds]
    runs = {arm: [seed[arm] for seed in by_seed] for arm in by_seed[0]}
    first = runs[True]
    print(f"\nteacher test accuracy: {spread([r['teacher']['accuracy'] for r in first])} (seeds {args.seeds})\n")
    print("| student | accuracy | share of teacher | without transfer set | from text b1 / b64 | model only b1 / b64 "
          "| int8 share | int8 from text b1 / b64 | int8 model only b1 / b64 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name in [n for n in first[0] if n != "teacher"]:
        rows = [r[name] for r in first]
        alone = spread([r[name]["share"] for r in runs[False]]) if False in runs else "–"

        def speed(key: str, rows: list[dict] = rows) -> str:
            return " / ".join(spread([r[key][b] for r in rows], "{:.1f}×") for b in BATCHES)

        print(
            f"| {name} | {spread([r['accuracy'] for r in rows])} | {spread([r['share'] for r in rows])} | {alone} | "
            f"{speed('text')} | {speed('model')} | {spread([r['int8_share'] for r in rows])} | {speed('int8_text')} | "
            f"{speed('int8_model')} |"
        )


if __name__ == "__main__":
    main()

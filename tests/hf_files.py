"""Saved Hugging Face models for the tests: a tiny one (untrained, saved in milliseconds), and the same
with files that name Python code to import, whose import writes a marker file: proof that code ran."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write_sentiment_csv, write_tiny_hf_model

from protege.data.build import load_data
from protege.models import build_model, save_model
from protege.models.hf import shared_text_encoder

CODE = """
from pathlib import Path

Path({marker!r}).write_text("code from the model folder ran")

from transformers import BertConfig, BertModel


class CodeConfig(BertConfig):
    model_type = "bert"


class CodeModel(BertModel):
    config_class = CodeConfig
"""


def write_tiny_distilbert(directory: Path, seed: int = 0) -> Path:
    """A 2-layer DistilBERT (its config says ``dim``, ``n_layers``, ``hidden_dim``) with the tiny BERT's
    word-level tokenizer: a model whose layers live elsewhere and whose config has no ``intermediate_size``."""
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    write_tiny_hf_model(directory)
    torch.manual_seed(seed)
    config = DistilBertConfig(vocab_size=16, dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=64)
    DistilBertModel(config).save_pretrained(str(directory))
    return directory


def sentiment_data(tmp: Path, folder: Path, max_length: int = 12):
    """The sentiment CSV (written into ``tmp``) tokenised by the hf model at ``folder``."""
    csv = write_sentiment_csv(tmp / "sentiment.csv")
    encoder = shared_text_encoder([("student", f"hf:{folder}", {"max_length": max_length})])
    return load_data(f"csv:{csv}", {"text_column": "text"}, text_encoder=encoder)


def saved_hf_model(tmp: Path, name: str = "model") -> Path:
    """An untrained hf classifier saved as a protege model folder ``tmp/name`` (the tiny encoder and the
    sentiment CSV alongside), plus ``tmp/texts.txt`` to predict."""
    folder = write_tiny_hf_model(tmp / "tiny-bert")
    data = sentiment_data(tmp, folder)
    built = build_model(f"hf:{folder}", {"max_length": 12}, data.input_shape, data.class_names, data.preprocess)
    (tmp / "texts.txt").write_text("the film was good\nawful food\n", encoding="utf-8")
    return save_model(built.module, built.card, tmp / name)


def name_code(folder: Path, marker: Path, file: str = "config.json", card_trusts: bool = False) -> Path:
    """Make a Hugging Face (or saved protege) folder's ``file`` (config.json or tokenizer_config.json) name a
    module in the folder whose import writes ``marker``; ``card_trusts`` also writes trust_remote_code: true
    into its model.json, as a card may record it."""
    (folder / "custom_code.py").write_text(CODE.format(marker=str(marker)), encoding="utf-8")
    meta = json.loads((folder / file).read_text(encoding="utf-8"))
    if file == "config.json":
        meta["auto_map"] = {"AutoConfig": "custom_code.CodeConfig", "AutoModel": "custom_code.CodeModel"}
    else:
        meta["auto_map"] = {"AutoTokenizer": [None, "custom_code.CodeTokenizer"]}
    (folder / file).write_text(json.dumps(meta), encoding="utf-8")
    if card_trusts:
        card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        card["options"]["trust_remote_code"] = True
        (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    return folder

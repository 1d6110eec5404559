"""Hugging Face models: files that name code to run (refused unless the user allows it), run: model
blocks, evaluation against models that read other inputs, and exported files whose tokenizer is missing
or whose embedded files are malformed."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import torch
from tests.catalogue import recipe, saved_model
from tests.hf_files import CODE, name_code, saved_hf_model, sentiment_data, write_tiny_distilbert

from protege.models.store import ModelCard, card_from_json, read_card

NEEDS_CODE = "needs remote code (config.json auto_map names custom_code.CodeConfig)"
ALLOW = "set trust_remote_code: true on the model in the recipe, or pass --trust-remote-code"


def code_model(tmp: Path, file: str = "config.json", card_trusts: bool = True) -> Path:
    """A saved hf model whose ``file`` names code (writing ``tmp/ran`` when imported), its card trusting it."""
    return name_code(saved_hf_model(tmp), tmp / "ran", file, card_trusts)


def text_recipe(
    tmp: Path,
    teacher: dict | None = None,
    student: dict | None = None,
    transfer: bool | dict = False,
    teachers: list[dict] | None = None,
) -> list[str]:
    """A recipe on the sentiment CSV that ``saved_hf_model`` wrote: a trained tiny-bert student by default;
    with ``teacher`` (or ``teachers``, each trained for an epoch) the student distils, from a ``transfer``
    set of the same texts when asked (a dict: those fields of the transfer block instead)."""
    train = {"epochs": 1, "batch_size": 16}
    stages = {"student": {"model": student or {"source": f"hf:{tmp / 'tiny-bert'}", "max_length": 12}, "train": train}}
    if teacher is not None:
        stages["teacher"] = {"model": teacher, **({} if teacher["source"].startswith("run:") else {"train": train})}
        stages["student"]["objective"] = {"name": "kd"}
    if teachers is not None:
        stages["teacher"] = [{"model": model, "train": train} for model in teachers]
    raw = {"name": "text", "data": {"source": f"csv:{tmp / 'sentiment.csv'}", "options": {"text_column": "text"}}}
    if transfer:
        same_texts = {"source": f"csv:{tmp / 'sentiment.csv'}", "options": {"text_column": "text"}}
        raw["transfer"] = {**same_texts, **(transfer if isinstance(transfer, dict) else {})}
    return recipe(tmp, raw={**raw, **stages, "evaluate": {"latency": False}})


MLP = {"source": "mlp", "hidden": 4}


def TINY_BERT(tmp: Path) -> dict:
    """The tiny hf model of ``saved_hf_model`` (written with the sentiment CSV) as a model block."""
    saved_hf_model(tmp)
    return {"source": f"hf:{tmp / 'tiny-bert'}", "max_length": 12}


def cut_student(tmp: Path, **cut) -> list[str]:
    """A recipe whose student is the tiny 2-layer hf model (hidden 16, 2 heads) cut by ``cut``, distilled
    from the full model: a bad cut must stop the run before the teacher trains."""
    return text_recipe(tmp, teacher=TINY_BERT(tmp), student={**TINY_BERT(tmp), **cut})


def cut_distilbert(tmp: Path, **cut) -> list[str]:
    """A recipe whose student is a tiny DistilBERT (its config says dim, n_layers, hidden_dim) cut by ``cut``."""
    saved_hf_model(tmp)
    folder = write_tiny_distilbert(tmp / "distil")
    return text_recipe(tmp, student={"source": f"hf:{folder}", "max_length": 12, **cut})


def TEXT_STUDENT(tmp: Path) -> dict:
    """A textcnn student that reads the tiny hf model's token ids (written with the sentiment CSV)."""
    saved_hf_model(tmp)
    return {"source": "textcnn", "tokenizer": f"hf:{tmp / 'tiny-bert'}", "max_length": 12}


def reversed_hf(tmp: Path) -> Path:
    """A tiny hf model whose tokenizer numbers the same words the other way round: another vocabulary."""
    from tests.conftest import write_tiny_hf_model

    return write_tiny_hf_model(tmp / "reversed", reverse=True)


def hf_model_of_classes(tmp: Path, classes: list[str]) -> Path:
    """A saved (untrained) tiny hf classifier whose head predicts ``classes``: trained on other data."""
    from protege.models import build_model, save_model

    saved_hf_model(tmp)
    folder = tmp / "tiny-bert"
    data = sentiment_data(tmp, folder)
    built = build_model(f"hf:{folder}", {"max_length": 12}, data.input_shape, classes, data.preprocess)
    return save_model(built.module, built.card, tmp / "other_classes")


def hf_folder_whose_tokenizer_names_code(tmp: Path) -> list[str]:
    saved_hf_model(tmp)
    name_code(tmp / "tiny-bert", tmp / "ran", "tokenizer_config.json")
    return text_recipe(tmp)


def rank_a_saved_model_that_needs_code(tmp: Path) -> list[str]:
    model = code_model(tmp)
    return [
        "rank",
        "--models",
        f"run:{model}",
        "--data",
        f"csv:{tmp / 'sentiment.csv'}",
        "--data-option",
        "text_column=text",
    ]


def exported_file(tmp: Path, files: dict[str, bytes] | None) -> Path:
    """A safetensors file with an hf model's card in its header, carrying ``files`` (or none)."""
    from safetensors.torch import save_file

    from protege.export import CARD_KEY, FILES_KEY
    from protege.models.store import card_to_json

    model = saved_hf_model(tmp)
    metadata = {CARD_KEY: card_to_json(read_card(model))}
    if files is not None:
        metadata[FILES_KEY] = json.dumps({k: base64.b64encode(v).decode() for k, v in files.items()})
    path = tmp / "model.safetensors"
    save_file({"head.weight": torch.zeros(2, 16)}, str(path), metadata=metadata)
    return path


def onnx_with(tmp: Path, change: Callable[[ModelCard, dict[str, str]], None]) -> list[str]:
    """``predict`` on an ONNX export of a saved hf model whose card and embedded files ``change`` edits."""
    import onnx

    from protege.export import CARD_KEY, FILES_KEY, export_model
    from protege.models.store import card_to_json

    path = export_model(saved_hf_model(tmp), "onnx", output=tmp / "model.onnx").path
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    card, files = card_from_json(meta[CARD_KEY], "onnx"), json.loads(meta[FILES_KEY])
    change(card, files)
    meta.update({CARD_KEY: card_to_json(card), FILES_KEY: json.dumps(files)})
    if not files:
        del meta[FILES_KEY]
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return ["predict", str(path), str(tmp / "texts.txt")]


def without_tokenizer(card: ModelCard, files: dict[str, str]) -> None:
    """As exported before exports carried the tokenizer, and the folder it was trained from is gone."""
    card.preprocess["tokenizer"]["source"] = "hf:/no/such/folder"
    files.clear()


def tokenizer_naming_code(tmp: Path) -> Callable[[ModelCard, dict[str, str]], None]:
    """Embedded tokenizer files whose tokenizer_config.json names a module (also embedded) writing ``tmp/ran``."""

    def change(card: ModelCard, files: dict[str, str]) -> None:
        config = json.loads(base64.b64decode(files["tokenizer_config.json"]))
        config["auto_map"] = {"AutoTokenizer": [None, "custom_code.CodeTokenizer"]}
        files["tokenizer_config.json"] = base64.b64encode(json.dumps(config).encode()).decode()
        files["custom_code.py"] = base64.b64encode(CODE.format(marker=str(tmp / "ran")).encode()).decode()

    return change


def texts(tmp: Path) -> str:
    return str(tmp / "texts.txt")


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "predict with a saved model whose config names code": (
        lambda t: ["predict", str(code_model(t)), texts(t)],
        f"model needs remote code (config.json auto_map names custom_code.CodeConfig), which protege does not "
        f"run unless you allow it: if you trust these files, {ALLOW}",
    ),
    "export of a saved model whose config names code": (
        lambda t: ["export", str(code_model(t)), "-o", str(t / "m.onnx")],
        NEEDS_CODE,
    ),
    "evaluate a saved model whose config names code": (
        lambda t: ["evaluate", str(code_model(t)), "--data", f"csv:{t / 'sentiment.csv'}", "--no-latency"],
        NEEDS_CODE,
    ),
    "a card that trusts code its config does not name, and a tokenizer config that does": (
        lambda t: ["predict", str(code_model(t, "tokenizer_config.json")), texts(t)],
        "needs remote code (tokenizer_config.json auto_map names custom_code.CodeTokenizer)",
    ),
    "a run: teacher that needs code, not allowed by the recipe": (
        lambda t: text_recipe(t, teacher={"source": f"run:{code_model(t)}"}),
        NEEDS_CODE,
    ),
    "an hf: folder whose tokenizer names code, not allowed by the recipe": (
        hf_folder_whose_tokenizer_names_code,
        "tiny-bert needs remote code (tokenizer_config.json auto_map",
    ),
    "a rank candidate that needs code": (rank_a_saved_model_that_needs_code, NEEDS_CODE),
    "a run: model block with an architecture option": (
        lambda t: recipe(t, {"teacher": {"model": {"source": f"run:{saved_model(t, 10)}", "hidden": 8}}}),
        "takes only trust_remote_code (got hidden); its architecture and options come from the saved model",
    ),
    "trust_remote_code that is not a boolean": (
        lambda t: text_recipe(
            t,
            student={
                "source": f"hf:{saved_hf_model(t).parent / 'tiny-bert'}",
                "max_length": 12,
                "trust_remote_code": "yes",
            },
        ),
        "trust_remote_code must be true or false",
    ),
    "max_length beyond the positions the model has": (
        lambda t: text_recipe(t, student={"source": f"hf:{saved_hf_model(t).parent / 'tiny-bert'}"}),
        "reads at most 64 tokens, but the texts are padded to 128; set max_length to at most 64",
    ),
    "evaluate an hf model with a teacher trained on other data (it cannot read these examples)": (
        lambda t: [
            "evaluate",
            str(saved_hf_model(t)),
            "--data",
            f"csv:{t / 'sentiment.csv'}",
            "--teacher",
            str(saved_model(t, 2)),
        ],
        "other_model takes inputs of shape (1, 8, 8), the data has (12,)",
    ),
    "a run: hf teacher trained on other classes, distilled into a TF-IDF student": (
        lambda t: text_recipe(t, teacher={"source": f"run:{hf_model_of_classes(t, ['a', 'b', 'c'])}"}, student=MLP),
        "other_classes predicts 3 classes but the data has 2; use a model trained on the same classes",
    ),
    "a tokenizer teacher and a TF-IDF student with a mixup transfer set (one view's inputs mixed)": (
        lambda t: text_recipe(t, teacher=TINY_BERT(t), student=MLP, transfer={"source": "mixup"}),
        "with a mixup transfer set every stage must be an hf: model with the same tokenizer",
    ),
    "several teachers reading different views of the texts": (
        lambda t: text_recipe(t, teacher=TINY_BERT(t), student=MLP, teachers=[TINY_BERT(t), MLP]),
        "with several teachers every stage must be an hf: model with the same tokenizer",
    ),
    "a cut with heads that do not divide the hidden size": (
        lambda t: cut_student(t, hidden_size=12, num_attention_heads=5),
        "num_attention_heads 5 does not divide hidden_size 12; pick a number of heads that does (1, 2, 3, 4, 6, 12)",
    ),
    "a cut whose heads do not divide the model's own hidden size": (
        lambda t: cut_student(t, num_attention_heads=3),
        "num_attention_heads 3 does not divide hidden_size 16; pick a number of heads that does (1, 2, 4, 8, 16)",
    ),
    "a cut whose hidden size the model's heads do not divide": (
        lambda t: cut_student(t, hidden_size=9),
        "num_attention_heads 2 does not divide hidden_size 9; pick a number of heads that does (1, 3, 9)",
    ),
    "a cut to no layers": (
        lambda t: cut_student(t, num_hidden_layers=0),
        "num_hidden_layers: Input should be greater than or equal to 1 (got 0)",
    ),
    "a misspelled cut option": (
        lambda t: cut_student(t, num_hidden_layer=1),
        "has no option 'num_hidden_layer' (did you mean \"num_hidden_layers\"?)",
    ),
    "a cut from a layer the model does not have": (
        lambda t: cut_student(t, layers_from=[0, 2]),
        "layers_from names layer 2, but the pretrained model has layers 0 to 1",
    ),
    "a cut from a negative layer": (
        lambda t: cut_student(t, layers_from=[-1]),
        "layers_from[0]: Input should be greater than or equal to 0 (got -1)",
    ),
    "a cut whose layers_from and num_hidden_layers disagree": (
        lambda t: cut_student(t, num_hidden_layers=1, layers_from=[0, 1]),
        "layers_from names 2 layers but num_hidden_layers is 1; name one pretrained layer for each student layer",
    ),
    "a cut that copies layers into a model without pretrained weights": (
        lambda t: cut_student(t, layers_from=[1], pretrained=False),
        "layers_from picks pretrained layers to copy; remove it or set pretrained: true",
    ),
    "a cut to more layers than the pretrained model has, none named": (
        lambda t: cut_student(t, num_hidden_layers=3),
        "num_hidden_layers 3 is more than the 2 pretrained layers; name the layer each starts from with layers_from",
    ),
    "a cut naming a size the model's config does not have": (
        lambda t: cut_distilbert(t, intermediate_size=8),
        "its distilbert config has no intermediate_size; leave intermediate_size out for this model",
    ),
    "a fasttext student on numeric data": (
        lambda t: recipe(t, {"student.model": {"source": "fasttext"}}),
        "digits gives numeric inputs, but fasttext reads text: use a text source",
    ),
    "a text student whose tokenizer is not an hf: source": (
        lambda t: text_recipe(t, student={"source": "textcnn", "tokenizer": "bert-base-uncased"}),
        "tokenizer must be a Hugging Face source, hf:<model id or folder> (got 'bert-base-uncased')",
    ),
    "a text student's own vocabulary option beside a tokenizer": (
        lambda t: text_recipe(t, student={**TEXT_STUDENT(t), "min_count": 2}),
        "min_count sets the student's own vocabulary, and with tokenizer the vocabulary is hf:",
    ),
    "text student embeddings without the tokenizer they belong to": (
        lambda t: text_recipe(t, student={"source": "fasttext", "embeddings_from": TEXT_STUDENT(t)["tokenizer"]}),
        "embeddings_from needs the student to read that model's token ids; set tokenizer: hf:",
    ),
    "text student embeddings from a model of another vocabulary": (
        lambda t: text_recipe(t, student={**TEXT_STUDENT(t), "embeddings_from": f"hf:{reversed_hf(t)}"}),
        "has another vocabulary than the student's tokenizer hf:",
    ),
    "text student embeddings narrower than its dim": (
        lambda t: text_recipe(t, student={**TEXT_STUDENT(t), "embeddings_from": TEXT_STUDENT(t)["tokenizer"]}),
        "input embeddings are 16 wide, narrower than the student's dim 64; set dim to at most 16",
    ),
    "a text student of its own vocabulary with an hf teacher and a mixup transfer set (one view)": (
        lambda t: text_recipe(t, teacher=TINY_BERT(t), student={"source": "fasttext"}, transfer={"source": "mixup"}),
        "tokenise differently (vocabulary, padding id or max_length/padding/truncation differ)",
    ),
    "a transfer set whose table has no such text column": (
        lambda t: text_recipe(
            t, teacher=TINY_BERT(t), student={"source": "fasttext"}, transfer={"options": {"text_column": "body"}}
        ),
        "sentiment.csv: no text column 'body'; columns: text, label; name it with transfer.options.text_column",
    ),
    "an exported file whose embedded file names a path outside its folder": (
        lambda t: ["predict", str(exported_file(t, {"../config.json": b"{}"})), texts(t)],
        "embedded file name '../config.json' is not a plain file name",
    ),
    "an exported hf model without its config": (
        lambda t: ["predict", str(exported_file(t, None)), texts(t)],
        "no Hugging Face config in the file; export the model again with protege",
    ),
    "an old export without its tokenizer, whose training folder is gone": (
        lambda t: onnx_with(t, without_tokenizer),
        "the exported model carries no tokenizer and its training source cannot be loaded",
    ),
    "an export whose embedded tokenizer names code": (
        lambda t: onnx_with(t, tokenizer_naming_code(t)),
        "the exported model (its tokenizer) needs remote code (tokenizer_config.json auto_map names custom_code.",
    ),
}

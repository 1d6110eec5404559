"""Shared fixtures: tiny in-memory data and models, quiet output, few threads."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("PROTEGE_QUIET", "1")
# pytest-xdist workers see COLUMNS=80: the tables would wrap where the tests read them at 160 columns
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.pop("COLUMNS", None)
# never ~/.cache, and one folder per process: pytest-xdist workers inherit the controller's environment
os.environ["PROTEGE_CACHE_DIR"] = tempfile.mkdtemp(prefix="protege-test-cache-")

import pytest
import torch

from protege.data.dataset import ArrayDataset, DataBundle


def make_blobs(n: int = 96, features: int = 6, classes: int = 3, seed: int = 0) -> ArrayDataset:
    """Separable Gaussian blobs: a tiny task every model learns in a few steps. The class centres are
    fixed; ``seed`` draws other samples around them (another split of the same task)."""
    centers = torch.randn(classes, features, generator=torch.Generator().manual_seed(1234)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = centers[y] + torch.randn(n, features, generator=g)
    return ArrayDataset(x, y)


@pytest.fixture
def blobs() -> DataBundle:
    return DataBundle(
        train=make_blobs(96, seed=0),
        val=make_blobs(30, seed=1),
        test=make_blobs(30, seed=2),
        class_names=["a", "b", "c"],
        source="blobs",
    )


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


WORDS = ["good", "great", "fine", "bad", "awful", "poor", "the", "film", "was", "food", "very", "quite"]


def write_tiny_hf_model(directory, hidden: int = 16, layers: int = 2, seed: int = 0, reverse: bool = False):
    """A randomly initialised 2-layer BERT and a word-level tokenizer over ``WORDS``, saved as a Hugging
    Face folder: what ``hf:<folder>`` loads, built in milliseconds and without the hub. ``reverse`` numbers
    the words the other way round: another tokenizer (other ids) for the same texts."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = WORDS[::-1] if reverse else WORDS
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, **{w: i + 4 for i, w in enumerate(words)}}
    core = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    tokenizer.save_pretrained(str(directory))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    BertModel(config).save_pretrained(str(directory))
    return directory


def write_sentiment_csv(path, n: int = 60, seed: int = 0):
    """Short texts whose label is carried by one word (good/great/fine vs bad/awful/poor)."""
    import random

    rng = random.Random(seed)
    lines = ["text,label"]
    for i in range(n):
        label = i % 2
        word = rng.choice(WORDS[:3] if label else WORDS[3:6])
        filler = " ".join(rng.choice(WORDS[6:]) for _ in range(rng.randint(1, 5)))
        lines.append(f"{filler} {word} {filler},{'pos' if label else 'neg'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory):
    return write_tiny_hf_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def sentiment_csv(tmp_path):
    return write_sentiment_csv(tmp_path / "sentiment.csv")


class FixedLogits(torch.nn.Module):
    """A "model" whose outputs are given logits, one row per example id (the batch's x): losses of steps
    can then be checked against hand computations."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = torch.nn.Parameter(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[x.long()]

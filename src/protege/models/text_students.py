"""Small text students that are fast on a CPU, with timm's interface (``forward_features``,
``forward_head``, ``head``): fastText's bag of n-gram embeddings and Kim's 1-D CNN over word embeddings.

Both read one padded row of token ids per example (protege.data.text.WordIds, or a Hugging Face
tokenizer's ids with ``tokenizer: hf:<model>``) and skip the padding id, so padding a text further never
changes its output. Everything is plain tensor arithmetic of fixed shapes (no offsets, no Python loop over
a batch), so the models trace, export to ONNX and run in onnxruntime as they run in PyTorch.
"""

from __future__ import annotations

import inspect
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from protege.errors import ModelError
from protege.options import DropRate, Width

MAX_BUCKETS = 2**24
"""The most hash buckets of fastText's n-grams: with ids below 2**31 the rolling hash stays in int64."""
HASH_PRIME = 1_000_003
"""The multiplier of the n-gram hash (a prime, so consecutive ids spread over the buckets)."""
KernelSizes = Annotated[list[Annotated[int, Field(ge=1, le=64)]], Field(min_length=1, max_length=8)]


class TextStudent(nn.Module):
    """What both students share: the embedding table (row ``pad_id`` is padding), the head, and the
    tokenizer a student that reads a Hugging Face tokenizer's ids saves beside its weights."""

    def __init__(self, rows: int, vocab_size: int, pad_id: int, dim: int, features: int, classes: int, drop: float):
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.pad_id = int(pad_id)
        self.embedding = nn.Embedding(rows, dim, padding_idx=self.pad_id)
        self.dropout = nn.Dropout(drop) if drop > 0 else nn.Identity()
        self.head = nn.Linear(features, classes)
        self.tokenizer = None

    def token_ids(self, x: torch.Tensor) -> torch.Tensor:
        # generic probes (FLOP counts, latency, dry runs) feed float tensors shaped like the inputs
        if x.is_floating_point():
            x = x.round().long().clamp(0, self.vocab_size - 1)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def save_assets(self, directory) -> None:
        """The Hugging Face tokenizer's files beside the weights, for a student that reads its ids."""
        self.save_tokenizer(directory)

    def save_tokenizer(self, directory) -> None:
        """The tokenizer files alone: what an exported graph (ONNX, TorchScript) needs to read text."""
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(directory))


class FastText(TextStudent):
    """fastText (Joulin et al. 2017, "Bag of Tricks for Efficient Text Classification"): the mean of the
    embeddings of a text's tokens and of its n-grams up to ``ngrams`` long, each n-gram hashed into one of
    ``buckets`` rows after the vocabulary's, then a linear head. The hash is of the n-gram's ids, computed
    in the graph: the same buckets in every process and every runtime."""

    def __init__(self, vocab_size: int, pad_id: int, classes: int, dim: int, ngrams: int, buckets: int, drop: float):
        rows = vocab_size + (buckets if ngrams > 1 else 0)
        super().__init__(rows, vocab_size, pad_id, dim, dim, classes, drop)
        self.ngrams, self.buckets = int(ngrams), int(buckets)
        nn.init.uniform_(self.embedding.weight, -1.0 / dim, 1.0 / dim)  # fastText's initialisation
        with torch.no_grad():
            self.embedding.weight[self.pad_id].zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        ids = self.token_ids(x)
        mask = ids != self.pad_id
        every, kept = [ids], [mask]
        for n in range(2, self.ngrams + 1):
            grams, present = ngram_buckets(ids, mask, n, self.buckets)
            every.append(grams + self.vocab_size)
            kept.append(present)
        weights = torch.cat(kept, 1).unsqueeze(-1).to(self.embedding.weight.dtype)
        total = (self.embedding(torch.cat(every, 1)) * weights).sum(1)
        return total / weights.sum(1).clamp(min=1.0)


def ngram_buckets(ids: torch.Tensor, mask: torch.Tensor, n: int, buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each run of ``n`` consecutive ids as a bucket in [0, buckets) (a rolling polynomial hash, seeded by
    ``n`` so bigrams and trigrams differ), and whether all its ids are tokens rather than padding."""
    width = ids.shape[1] - n + 1
    if width <= 0:
        return ids[:, :0], mask[:, :0]
    h = torch.full_like(ids[:, :width], n)
    present = torch.ones_like(mask[:, :width])
    for k in range(n):
        h = (h * HASH_PRIME + ids[:, k : k + width]) % buckets
        present = present & mask[:, k : k + width]
    return h, present


class TextCNN(TextStudent):
    """A CNN for sentence classification (Kim 2014): word embeddings, one 1-D convolution per kernel width
    (``channels`` each), ReLU, max over time of the windows that hold a token, then a linear head. The
    convolutions pad by ``k - 1`` and padding ids embed as zeros, so trailing padding changes nothing."""

    def __init__(
        self, vocab_size: int, pad_id: int, classes: int, dim: int, channels: int, kernels: list[int], drop: float
    ):
        super().__init__(vocab_size, vocab_size, pad_id, dim, channels * len(kernels), classes, drop)
        self.convs = nn.ModuleList(nn.Conv1d(dim, channels, k, padding=k - 1) for k in kernels)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        ids = self.token_ids(x)
        mask = (ids != self.pad_id).unsqueeze(1).to(self.embedding.weight.dtype)  # (batch, 1, length)
        hidden = self.embedding(ids).transpose(1, 2) * mask
        pooled = []
        for conv in self.convs:
            k = conv.kernel_size[0]
            covered = F.max_pool1d(F.pad(mask, (k - 1, k - 1)), k, 1)  # the windows holding a token
            pooled.append((torch.relu(conv(hidden)) * covered).amax(-1))  # ReLU >= 0: 0 stands for -inf
        return torch.cat(pooled, 1)


def fasttext(
    input_shape: tuple[int, ...],
    num_classes: int,
    vocab_size: int,
    pad_id: int,
    dim: Width = 64,
    ngrams: Annotated[int, Field(ge=1, le=4)] = 2,
    buckets: Annotated[int, Field(ge=1, le=MAX_BUCKETS)] = 2**16,
    dropout: DropRate = 0.0,
) -> FastText:
    """A fastText student over token ids: ``dim``-wide embeddings of the tokens and of their hashed
    n-grams up to ``ngrams`` long (``buckets`` rows; 1: tokens only), averaged, then a linear head."""
    _check_tokens(input_shape, "fasttext")
    return FastText(vocab_size, pad_id, num_classes, dim, ngrams, buckets, dropout)


def textcnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    vocab_size: int,
    pad_id: int,
    dim: Width = 64,
    channels: Width = 64,
    kernel_sizes: KernelSizes | None = None,
    dropout: DropRate = 0.0,
) -> TextCNN:
    """A Kim (2014) CNN student over token ids: ``dim``-wide embeddings, ``channels`` filters of each of
    ``kernel_sizes`` (3, 4, 5), max-pooled over time, then ``dropout`` and a linear head."""
    _check_tokens(input_shape, "textcnn")
    return TextCNN(vocab_size, pad_id, num_classes, dim, channels, list(kernel_sizes or [3, 4, 5]), dropout)


def _check_tokens(input_shape: tuple[int, ...], name: str) -> None:
    if len(input_shape) != 1:
        raise ModelError(f"{name} reads text: use a text data source (csv:/jsonl: with text_column, bbc_news)")


TEXT_STUDENTS = {"fasttext": fasttext, "textcnn": textcnn}
"""The builtin models that read token ids rather than TF-IDF features."""


WORD_OPTIONS = ("max_words", "min_count", "lowercase")
"""The options of a student's own vocabulary, which a Hugging Face tokenizer's ids do not take."""


def architecture_options(builder, options: dict) -> dict:
    """The options ``builder`` takes: how the student reads text (max_length, tokenizer...) is its view's."""
    taken = inspect.signature(builder).parameters
    return {k: v for k, v in options.items() if k in taken}


def check_student_options(name: str, options: dict) -> None:
    """Refuse text options that cannot go together, before any data or model is read."""
    for option in ("tokenizer", "embeddings_from"):
        value = options.get(option)
        if value is not None and (not str(value).startswith("hf:") or value == "hf:"):
            raise ModelError(
                f"model {name!r}: {option} must be a Hugging Face source, hf:<model id or folder> (got {value!r})"
            )
    if options.get("tokenizer") is not None:
        own = [option for option in WORD_OPTIONS if option in options]
        if own:
            raise ModelError(
                f"model {name!r}: {own[0]} sets the student's own vocabulary, and with tokenizer the vocabulary "
                f"is {options['tokenizer']}'s; drop {own[0]}"
            )
    elif options.get("embeddings_from") is not None:
        raise ModelError(
            f"model {name!r}: embeddings_from needs the student to read that model's token ids; set tokenizer: "
            f"{options['embeddings_from']} too (or drop embeddings_from)"
        )


def token_vocabulary(preprocess: dict | None, name: str, options: dict) -> tuple[int, int]:
    """The number of token ids and the padding id of the view a student reads: its own vocabulary's
    (``word_ids``), or with ``tokenizer`` that tokenizer's; a view of anything else is refused."""
    step = "tokenizer" if options.get("tokenizer") is not None else "word_ids"
    stored = (preprocess or {}).get(step) or {}
    if "vocab_size" not in stored:
        raise ModelError(f"{name} reads text: use a text data source (csv:/jsonl: with text_column, bbc_news)")
    return int(stored["vocab_size"]), int(stored["pad_id"])


def set_embeddings(module: TextStudent, weights: torch.Tensor, origin: str) -> str:
    """Start ``module``'s token rows from ``weights`` (one row per token id): copied when the widths match,
    else projected onto their first principal components (a fixed PCA: signs set so the largest entry of
    each component is positive). The padding row stays zero. Returns how, for the log."""
    rows, dim = module.vocab_size, module.embedding.embedding_dim
    if weights.shape[0] < rows:
        raise ModelError(f"{origin} has {weights.shape[0]} input embeddings, fewer than the student's {rows} token ids")
    if weights.shape[1] < dim:
        raise ModelError(
            f"{origin}'s input embeddings are {weights.shape[1]} wide, narrower than the student's dim {dim}; "
            f"set dim to at most {weights.shape[1]}"
        )
    table = weights[:rows].detach().double()
    how = "copied"
    if weights.shape[1] > dim:
        centred = table - table.mean(0)
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        components = vh[:dim]
        signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
        table, how = centred @ (components * signs).T, f"projected from {weights.shape[1]} to {dim} dimensions (PCA)"
    with torch.no_grad():
        module.embedding.weight[:rows] = table.to(module.embedding.weight.dtype)
        module.embedding.weight[module.pad_id].zero_()
    return how

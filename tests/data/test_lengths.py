"""Inference passes over token ids grouped by length: the same outputs, in the examples' order, as reading
them in order at the full padded length, with less padding in every batch."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from tests.conftest import write_tiny_hf_model
from tests.hf_files import sentiment_data
from torch import nn

from protege.api import train
from protege.data.dataset import ArrayDataset
from protege.data.lengths import (
    cut_padding,
    groups_by_length,
    in_order,
    inference_batches,
    pad_id_of,
    token_lengths,
)
from protege.distill.teacher import compute_outputs
from protege.engine.batches import padding_to_cut
from protege.evaluate import predict_logits
from protege.models import build_model
from protege.transfer.feature_cache import compute_features


class PaddedTokens(nn.Module):
    """A model over right-padded ids whose output ignores the padding, recording each batch's width."""

    pad_token_id = 0

    def __init__(self, classes: int = 3):
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.head = nn.Linear(4, classes)
        self.widths: list[int] = []

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.widths.append(x.shape[1])
        mask = (x != 0).unsqueeze(-1).float()
        return (self.embed(x) * mask).sum(1) / mask.sum(1).clamp(min=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def padded(lengths: list[int], width: int = 8, seed: int = 0) -> ArrayDataset:
    """Rows of random ids 1..19 followed by padding (0) to ``width``, one per length."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        x[row, :n] = torch.randint(1, 20, (n,), generator=generator)
    return ArrayDataset(x, torch.arange(len(lengths)) % 3)


def test_a_rows_length_ends_after_its_last_token_that_is_not_padding():
    ids = torch.tensor([[5, 6, 0, 0], [5, 0, 6, 0], [0, 0, 0, 0], [1, 2, 3, 4]])
    assert token_lengths(ids, 0).tolist() == [2, 3, 0, 4]
    other = torch.tensor([[5, 6, 6, 6], [6, 5, 6, 6], [6, 6, 6, 6], [0, 0, 0, 0]])
    assert token_lengths(other, 6).tolist() == [1, 2, 0, 4]  # another padding id: 0 is a token


def test_batches_come_longest_first_each_cut_to_its_longest_text_and_hold_every_example_once():
    data = padded([3, 8, 1, 5, 5, 2, 7])
    batches = list(inference_batches(PaddedTokens(), data, batch_size=3))
    assert [b["index"].tolist() for b in batches] == [[1, 6, 3], [4, 0, 5], [2]]  # ties keep their order
    assert [b["x"].shape[1] for b in batches] == [8, 5, 1]
    for batch in batches:
        assert torch.equal(batch["x"], data.x[batch["index"], : batch["x"].shape[1]])
        assert torch.equal(batch["y"], data.y[batch["index"]])
        assert (data.x[batch["index"], batch["x"].shape[1] :] == 0).all()  # only padding was cut


def test_a_batch_of_padding_alone_keeps_one_position():
    batches = list(inference_batches(PaddedTokens(), padded([0, 0]), batch_size=4))
    assert [b["x"].shape[1] for b in batches] == [1]


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (nn.Linear(8, 3), padded([3, 8, 1])),  # no padding id: its outputs may depend on every column
        (PaddedTokens(), ArrayDataset(torch.randn(3, 8), torch.zeros(3, dtype=torch.long))),  # numbers
        (PaddedTokens(), ArrayDataset(torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, dtype=torch.long))),
    ],
)
def test_other_models_and_data_are_read_in_order_at_full_width(model, data):
    assert not groups_by_length(model, data)
    batches = list(inference_batches(model, data, batch_size=2))
    assert [b["index"].tolist() for b in batches] == [[0, 1], [2]]
    assert all(b["x"].shape[1:] == data.x.shape[1:] for b in batches)


def test_a_wrapped_model_gives_its_padding_id_and_a_flag_is_no_padding_id():
    wrapped = nn.Module()
    wrapped.module = PaddedTokens()
    assert pad_id_of(wrapped) == 0
    flagged = nn.Linear(2, 2)
    flagged.pad_token_id = True
    assert pad_id_of(flagged) is None


def test_outputs_go_back_to_the_examples_order():
    outputs = [torch.tensor([[1.0], [6.0]]), torch.tensor([[3.0]])]
    assert in_order(outputs, [torch.tensor([1, 2]), torch.tensor([0])]).flatten().tolist() == [3.0, 1.0, 6.0]
    same = [torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0]])]
    assert in_order(same, [torch.tensor([0, 1]), torch.tensor([2])]).flatten().tolist() == [1.0, 2.0, 3.0]


def test_predicted_logits_match_reading_in_order_at_full_length():
    model, data = PaddedTokens(), padded([3, 8, 1, 5, 5, 2, 7])
    expected = model(data.x).detach()
    model.widths.clear()
    assert torch.allclose(predict_logits(model, data, batch_size=3), expected, atol=1e-6)
    assert model.widths == [8, 5, 1]


def test_cached_features_match_and_keep_the_labelled_mask():
    model = PaddedTokens()
    data = padded([3, 8, 1, 5])
    data = ArrayDataset(data.x, data.y, torch.tensor([True, False, True, True]))
    features = compute_features(model, data, torch.device("cpu"), batch_size=2)
    assert torch.allclose(features.x, model.forward_features(data.x).detach(), atol=1e-6)
    assert features.labeled.tolist() == [True, False, True, True]


def test_the_teacher_cache_holds_each_examples_logits_in_memory_and_on_disk(tmp_path):
    model, data = PaddedTokens(), padded([3, 8, 1, 5, 5, 2, 7])
    expected = model(data.x).detach()
    tables = compute_outputs(model, data, torch.device("cpu"), contextlib.nullcontext, batch_size=3)
    assert torch.allclose(tables["logits"], expected, atol=1e-6)
    disk = {"logits": np.lib.format.open_memmap(tmp_path / "t.npy", "w+", np.float32, (7, 3))}
    compute_outputs(model, data, torch.device("cpu"), contextlib.nullcontext, batch_size=3, out=disk)
    assert np.allclose(disk["logits"], expected.numpy(), atol=1e-6)


def test_with_tapped_layers_the_teacher_reads_every_position_in_order():
    model, data = PaddedTokens(), padded([3, 8, 1, 5])
    model.widths.clear()
    tables = compute_outputs(model, data, torch.device("cpu"), contextlib.nullcontext, ("embed",), batch_size=2)
    assert model.widths == [8, 8]
    assert tables["embed"].shape == (4, 8, 4)


def test_a_hugging_face_classifier_gives_the_same_logits_grouped_by_length(tmp_path):
    folder = write_tiny_hf_model(tmp_path / "tiny-bert")
    data = sentiment_data(tmp_path, folder, max_length=24)
    built = build_model(f"hf:{folder}", {"max_length": 24}, data.input_shape, data.class_names, data.preprocess)
    model = built.module.eval()
    assert groups_by_length(model, data.train)
    lengths = token_lengths(data.train.x, model.pad_token_id)
    assert int(lengths.min()) < int(lengths.max()) <= 24  # the texts differ in length: batches get cut
    with torch.no_grad():
        expected = torch.cat([model(data.train.x[i : i + 4]) for i in range(0, len(data.train), 4)])
    assert torch.allclose(predict_logits(model, data.train, batch_size=4), expected, atol=1e-5)


def test_a_batch_loses_only_its_all_padding_columns():
    ids = torch.tensor([[3, 4, 0, 0, 0], [5, 0, 6, 0, 0]])
    assert torch.equal(cut_padding(ids, 0), ids[:, :3])
    assert cut_padding(ids[:, :3], 0).shape == (2, 3)  # nothing to cut
    assert cut_padding(torch.zeros(2, 4, dtype=torch.long), 0).shape == (2, 1)
    numbers = torch.zeros(2, 5)
    assert cut_padding(numbers, 0) is numbers  # features, not token ids


class UnpaddedTokens(PaddedTokens):
    """The same model, not declaring that its outputs ignore the padding: its batches keep every column."""

    pad_token_id = None


def test_training_on_cut_batches_gives_the_weights_of_training_at_full_width():
    data = padded([3, 8, 1, 5, 5, 2, 7, 4, 2, 6] * 4, seed=1)
    final = {}
    for model_class in (PaddedTokens, UnpaddedTokens):
        torch.manual_seed(0)
        model = model_class()
        train(model, data, epochs=2, batch_size=8, lr=0.05)
        final[model_class] = (model.state_dict(), sorted(set(model.widths)))
    (cut, cut_widths), (full, full_widths) = final[PaddedTokens], final[UnpaddedTokens]
    assert full_widths == [8] and cut_widths[0] < 8  # some batches were cut
    for name, value in full.items():
        assert torch.allclose(cut[name], value, atol=1e-5), name


def test_a_step_that_reads_inner_layers_keeps_every_column():
    class Reads:
        teacher_layers = ("embed",)

    class Objective:
        student_layers = ("embed",)

    class Student:
        teacher_layers = ()
        objective = Objective()

    assert padding_to_cut(PaddedTokens(), Reads()) is None
    assert padding_to_cut(PaddedTokens(), Student()) is None
    assert padding_to_cut(PaddedTokens(), object()) == 0
    assert padding_to_cut(nn.Linear(2, 2), object()) is None

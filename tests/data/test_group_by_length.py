"""Training batches grouped by length (``train.group_by_length``): every example once per epoch, batches
of similar token counts (less padding than plain shuffling), the same batches for a (seed, epoch), so a
resumed run skips exactly what was done; a model that does not read token ids is refused in one line."""

import pytest
import torch
from tests.conftest import write_sentiment_csv, write_tiny_hf_model

from protege.cli import main
from protege.data.dataset import EpochBatchSampler, group_by_length


def _sampler(lengths: torch.Tensor, batch_size: int = 4, seed: int = 0) -> EpochBatchSampler:
    sampler = EpochBatchSampler(len(lengths), batch_size, shuffle=True, seed=seed)
    sampler.lengths = lengths
    return sampler


def test_each_example_comes_once_and_batches_hold_similar_lengths():
    lengths = torch.randint(1, 100, (203,), generator=torch.Generator().manual_seed(0))
    grouped, plain = _sampler(lengths), EpochBatchSampler(203, 4, shuffle=True, seed=0)
    batches = list(grouped)
    assert sorted(i for b in batches for i in b) == list(range(203)) and len(batches) == len(grouped) == 51
    assert len(batches[-1]) == 3  # the partial batch stays last

    def padding(batches):  # padded positions when each batch is cut to its longest text
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)

    assert padding(batches) < 0.2 * padding(list(plain))


def test_the_batches_depend_on_the_seed_and_epoch_alone_and_skip_resumes():
    lengths = torch.randint(1, 50, (64,), generator=torch.Generator().manual_seed(1))
    first, again = _sampler(lengths), _sampler(lengths)
    first.start_epoch(3)
    again.start_epoch(3, skip_batches=5)
    assert list(again) == list(first)[5:]
    other = _sampler(lengths)
    other.start_epoch(4)
    assert list(other) != list(first)


def test_a_group_sorted_longest_first_before_the_batches_are_shuffled():
    order, lengths = torch.arange(8), torch.tensor([1, 5, 2, 8, 3, 7, 4, 6])
    out = group_by_length(order, lengths, 2, torch.Generator().manual_seed(0))
    pairs = {tuple(lengths[out[i : i + 2]].tolist()) for i in range(0, 8, 2)}
    assert pairs == {(8, 7), (6, 5), (4, 3), (2, 1)}


def test_a_recipe_groups_an_hf_students_batches_and_refuses_a_model_of_whole_inputs(tmp_path, capsys):
    import yaml

    model, csv = write_tiny_hf_model(tmp_path / "bert"), write_sentiment_csv(tmp_path / "sentiment.csv")
    train = {"epochs": 1, "batch_size": 8, "group_by_length": True}
    raw = {
        "name": "grouped",
        "data": {"source": f"csv:{csv}", "options": {"text_column": "text"}},
        "student": {"model": {"source": f"hf:{model}", "max_length": 12}, "train": train},
        "evaluate": {"latency": False, "html": False},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "-o", str(tmp_path / "run")]) == 0
    raw["student"]["model"] = {"source": "mlp", "hidden": 4}
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "-o", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "student.train.group_by_length: groups texts by token count for a Hugging Face model (hf:)" in err


@pytest.mark.parametrize("batch_size", [1, 7])
def test_batches_of_any_size_keep_every_example(batch_size):
    lengths = torch.arange(30) % 9
    assert sorted(i for b in _sampler(lengths, batch_size) for i in b) == list(range(30))


def test_texts_of_equal_length_keep_their_shuffled_order():
    # a stable sort: ties stay in the shuffle's order, so equal-length texts are still shuffled and the
    # batches do not depend on how a sort algorithm breaks ties (at 100+ rows torch's unstable one differs)
    order = torch.randperm(400, generator=torch.Generator().manual_seed(3))
    lengths = torch.where(torch.arange(400) % 2 == 0, 7, 3)
    out = group_by_length(order, lengths, 400, torch.Generator().manual_seed(0))  # one batch: no shuffle of batches
    assert out.tolist() == order[lengths[order] == 7].tolist() + order[lengths[order] == 3].tolist()

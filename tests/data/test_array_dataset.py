"""The in-memory dataset every source ends in: its targets and labelled mask, the batches it serves,
its fingerprint, joining a transfer set, and a batch order that depends on (seed, epoch) alone."""

import pytest
import torch
from torch.utils.data import Dataset

from protege.data.dataset import (
    UNLABELED,
    ArrayDataset,
    DataBundle,
    EpochBatchSampler,
    batch_loader,
    concat,
    first_inputs,
    fixed_inputs,
)


def _classes(n: int = 10) -> ArrayDataset:
    return ArrayDataset(torch.arange(n * 3, dtype=torch.float32).view(n, 3), torch.arange(n) % 3)


def test_inputs_and_targets_of_different_lengths_are_refused_with_both_counts():
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        ArrayDataset(torch.zeros(3, 2), torch.zeros(2))


def test_class_ids_become_long_and_real_targets_stay_as_given():
    assert ArrayDataset(torch.zeros(2, 1), torch.tensor([0, 1], dtype=torch.int32)).y.dtype == torch.long
    real = torch.tensor([[0.5], [1.5]], dtype=torch.float64)
    assert torch.equal(ArrayDataset(torch.zeros(2, 1), real).y, real)


def test_the_mask_is_what_says_an_example_is_unlabelled():
    data = ArrayDataset(torch.zeros(4, 1), torch.tensor([0, 1, 2, 1]), torch.tensor([1, 0, 1, 0]))
    assert data.labeled.dtype == torch.bool and data.labeled.tolist() == [True, False, True, False]
    assert data.y.tolist() == [0, UNLABELED, 2, UNLABELED]  # losses skip them by the id as well
    values = torch.tensor([[0.5], [1.5]])
    real = ArrayDataset(torch.zeros(2, 1), values, torch.tensor([True, False]))
    assert torch.equal(real.y, values) and real.labeled.tolist() == [True, False]  # a real value stays


def test_without_a_mask_class_id_minus_one_is_unlabelled_and_real_targets_are_labelled():
    ids = ArrayDataset(torch.zeros(3, 1), torch.tensor([0, UNLABELED, 2]))
    assert ids.labeled.tolist() == [True, False, True]
    real = ArrayDataset(torch.zeros(2, 1), torch.tensor([[-1.0], [3.0]]))
    assert real.labeled.dtype == torch.bool and real.labeled.tolist() == [True, True]


def test_unlabelled_examples_take_placeholder_targets_shaped_like_the_labelled_ones():
    x = torch.randn(3, 2)
    plain = ArrayDataset.unlabeled(x)
    assert plain.y.dtype == torch.long and plain.y.tolist() == [UNLABELED] * 3 and not plain.labeled.any()
    assert torch.equal(plain.x, x)
    like_ids = ArrayDataset.unlabeled(x, like=_classes())
    assert like_ids.y.dtype == torch.long and like_ids.y.tolist() == [UNLABELED] * 3
    like_real = ArrayDataset.unlabeled(x, like=ArrayDataset(torch.zeros(2, 2), torch.ones(2, 4, dtype=torch.float64)))
    assert like_real.y.shape == (3, 4) and like_real.y.dtype == torch.float64 and not like_real.y.any()
    assert like_real.labeled.dtype == torch.bool and not like_real.labeled.any() and len(like_real) == 3


def test_one_example_and_a_batch_carry_inputs_targets_mask_and_positions():
    data = ArrayDataset(torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([1, 1, 0, 1, 1, 1]))
    one = data[4]
    assert set(one) == {"x", "y", "labeled", "index"} and one["index"].item() == 4
    assert torch.equal(one["x"], data.x[4]) and one["y"].item() == 1 and one["labeled"].item()
    batch = data.__getitems__([5, 2, 0])
    assert set(batch) == {"x", "y", "labeled", "index"}
    assert batch["index"].dtype == torch.long and batch["index"].tolist() == [5, 2, 0]
    assert torch.equal(batch["x"], data.x[[5, 2, 0]])
    assert batch["y"].tolist() == [2, UNLABELED, 0] and batch["labeled"].tolist() == [True, False, True]


def test_the_fingerprint_changes_with_inputs_targets_and_shape_and_only_with_them():
    data = _classes(4)
    print_ = data.fingerprint()
    assert len(print_) == 16 and int(print_, 16) >= 0
    assert _classes(4).fingerprint() == print_
    other_x = ArrayDataset(data.x + 1, data.y)
    other_y = ArrayDataset(data.x, (data.y + 1) % 3)
    reshaped = ArrayDataset(data.x.view(4, 3, 1), data.y)  # the same bytes in another shape
    assert len({print_, other_x.fingerprint(), other_y.fingerprint(), reshaped.fingerprint()}) == 4


def test_a_transfer_set_joins_after_the_training_set_with_its_mask():
    train = _classes(4)
    extra = ArrayDataset.unlabeled(torch.full((2, 3), 7.0, dtype=torch.float64))
    joined = concat(train, extra)
    assert joined.x.dtype == torch.float32 and torch.equal(joined.x[:4], train.x) and (joined.x[4:] == 7).all()
    assert joined.y.tolist() == [0, 1, 2, 0, UNLABELED, UNLABELED]
    assert joined.labeled.tolist() == [True] * 4 + [False] * 2
    labelled_extra = ArrayDataset(torch.zeros(2, 3), torch.tensor([2, 1]))
    assert concat(train, labelled_extra).y.tolist() == [0, 1, 2, 0, 2, 1]


def test_an_unlabelled_set_joining_real_targets_gets_real_placeholders():
    train = ArrayDataset(torch.zeros(3, 2), torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    joined = concat(train, ArrayDataset.unlabeled(torch.ones(2, 2)))  # its class-id placeholders do not fit
    assert joined.y.shape == (5, 2) and joined.y.dtype == torch.float32
    assert joined.labeled.tolist() == [True, True, True, False, False]


def test_inputs_of_another_shape_cannot_join():
    with pytest.raises(ValueError, match=r"input shapes differ: \(3,\) vs \(4,\)"):
        concat(_classes(2), ArrayDataset.unlabeled(torch.zeros(2, 4)))
    with pytest.raises(ValueError, match=r"input shapes differ: \(3,\) vs \(3, 1\)"):
        concat(_classes(2), ArrayDataset.unlabeled(torch.zeros(2, 3, 1)))


def test_the_number_of_batches_counts_a_last_partial_batch_unless_dropped():
    assert len(EpochBatchSampler(10, 4, shuffle=False, seed=0)) == 3
    assert len(EpochBatchSampler(10, 4, shuffle=False, seed=0, drop_last=True)) == 2
    assert len(EpochBatchSampler(8, 4, shuffle=False, seed=0)) == 2
    assert [len(b) for b in EpochBatchSampler(10, 4, shuffle=True, seed=0, drop_last=True)] == [4, 4]


def test_the_order_is_a_fixed_function_of_seed_and_epoch():
    """Pinned values: a checkpoint written by an earlier version resumes into the same batches."""
    sampler = EpochBatchSampler(10, 10, shuffle=True, seed=0)
    assert next(iter(sampler)) == [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]  # epoch 0 before any start_epoch
    later = EpochBatchSampler(10, 10, shuffle=True, seed=3)
    later.start_epoch(2)
    assert next(iter(later)) == [0, 7, 1, 6, 3, 8, 9, 4, 2, 5]
    later.start_epoch(2, skip_batches=0)
    assert next(iter(later)) == [0, 7, 1, 6, 3, 8, 9, 4, 2, 5]


def test_a_resumed_epoch_skips_the_batches_already_done():
    sampler = EpochBatchSampler(10, 3, shuffle=True, seed=1)
    sampler.start_epoch(4)
    whole = list(sampler)
    sampler.start_epoch(4, skip_batches=2)
    assert list(sampler) == whole[2:] and len(whole) == 4


def test_the_loader_serves_whole_batches_in_the_samplers_order():
    data = _classes(10)
    loader = batch_loader(data, 4, shuffle=True, seed=5)
    loader.batch_sampler.start_epoch(1)
    expected = EpochBatchSampler(10, 4, shuffle=True, seed=5)
    expected.start_epoch(1)
    assert [b["index"].tolist() for b in loader] == list(expected)
    assert [len(b["y"]) for b in batch_loader(data, 4)] == [4, 4, 2]  # nothing dropped by default
    assert [b["index"].tolist() for b in batch_loader(data, 4, shuffle=True)] == [
        b["index"].tolist() for b in batch_loader(data, 4, shuffle=True, seed=0)
    ]


def test_making_the_loaders_iterator_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    iter(batch_loader(_classes(10), 4, shuffle=True, seed=2))
    assert torch.equal(torch.rand(3), expected)  # a resumed run draws the same dropout masks


class _Replay(Dataset):
    """A dataset that composes its own batches (as the replay buffers do), without ``__getitems__``."""

    def __init__(self):
        self.asked = None

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i)]), "index": torch.tensor(i)}

    def batch_sampler(self, batch_size, shuffle, seed):
        self.asked = (batch_size, shuffle, seed)
        return [[5, 0], [3]]


def test_a_dataset_with_its_own_batches_is_served_in_them_through_default_collation():
    data = _Replay()
    batches = list(batch_loader(data, 2, shuffle=True, seed=9))
    assert data.asked == (2, True, 9)
    assert [b["index"].tolist() for b in batches] == [[5, 0], [3]]
    assert batches[0]["x"].shape == (2, 1)  # collated per example into one tensor


def _bundle(task: str, names: list[str], val: bool = True) -> DataBundle:
    data = _classes(6)
    return DataBundle(data, _classes(3), _classes(2) if val else None, names, "digits", task=task)


@pytest.mark.parametrize(
    ("task", "names", "words"),
    [
        ("classification", ["a", "b", "c"], "3 classes"),
        ("classification", ["a"], "1 class,"),
        ("multilabel", ["a", "b"], "2 labels"),
        ("regression", ["a"], "1 target,"),
        ("regression", ["a", "b"], "2 targets"),
        ("ranking", ["a", "b"], "2 outputs"),
    ],
)
def test_a_bundle_describes_its_outputs_and_splits(task, names, words):
    text = _bundle(task, names).describe()
    assert text == f"digits, {words}{'' if words.endswith(',') else ','} inputs (3,), train 6 / val 2 / test 3"


def test_a_bundle_without_validation_counts_zero_there():
    bundle = _bundle("classification", ["a", "b"], val=False)
    assert bundle.sizes() == {"train": 6, "val": 0, "test": 3} and bundle.input_shape == (3,)


def test_the_loader_drops_a_last_partial_batch_when_asked():
    assert [len(b["y"]) for b in batch_loader(_classes(10), 4, drop_last=True)] == [4, 4]


def test_a_labelled_set_with_targets_of_another_float_type_keeps_its_labels():
    train = ArrayDataset(torch.zeros(2, 1), torch.tensor([[1.0], [2.0]]))
    extra = ArrayDataset(torch.zeros(2, 1), torch.tensor([[3.0], [4.0]], dtype=torch.float64))
    joined = concat(train, extra)
    assert joined.y.flatten().tolist() == [1.0, 2.0, 3.0, 4.0] and joined.labeled.all()


class _ReadsBatches(Dataset):
    """A dataset that reads its batches itself (as streamed image folders do), with optional attributes."""

    def __init__(self, n: int = 5, **attributes):
        self.n, self.asked = n, []
        self.__dict__.update(attributes)

    def __len__(self):
        return self.n

    def __getitems__(self, indices):
        self.asked.append(list(indices))
        return {"x": torch.tensor(indices, dtype=torch.float32).view(-1, 1) * 10, "index": torch.tensor(indices)}


def test_the_first_inputs_of_a_dataset_that_reads_its_batches_are_its_first_rows():
    data = _ReadsBatches(5)
    assert first_inputs(data, 3).flatten().tolist() == [0.0, 10.0, 20.0] and data.asked == [[0, 1, 2]]
    assert first_inputs(data, 9).flatten().tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]  # at most the whole set
    assert torch.equal(first_inputs(_classes(4), 2), _classes(4).x[:2])


def test_only_inputs_that_are_the_same_every_epoch_can_have_their_teacher_outputs_cached():
    assert fixed_inputs(_classes(3)) is True
    assert fixed_inputs(_ReadsBatches(fixed_inputs=True)) is True  # files read unchanged
    assert fixed_inputs(_ReadsBatches(fixed_inputs=False)) is False  # augmented on reading
    assert fixed_inputs(_ReadsBatches()) is False  # unknown: not cached
    assert fixed_inputs(object()) is False


def test_a_dataset_with_workers_is_read_by_that_many_processes_kept_for_the_run():
    loader = batch_loader(_ReadsBatches(num_workers=1), 2)
    assert loader.num_workers == 1 and loader.persistent_workers
    assert loader.worker_init_fn is not None  # each worker lets go of the run directory's lock
    alone = batch_loader(_ReadsBatches(), 2)
    assert alone.num_workers == 0 and not alone.persistent_workers

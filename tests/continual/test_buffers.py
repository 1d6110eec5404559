import torch

from protege.continual.buffers import ReplayBuffer, _herding_order
from protege.continual.streams import TaggedDataset


def _examples(classes, per_class, start=0):
    y = torch.arange(start, start + classes).repeat_interleave(per_class)
    x = torch.arange(len(y), dtype=torch.float32).unsqueeze(1) + 1000 * start
    return TaggedDataset(x, y, extras={"task": torch.full((len(y),), start)})


def test_reservoir_keeps_size_and_gives_every_example_the_same_chance():
    counts = torch.zeros(2)
    for seed in range(200):
        buffer = ReplayBuffer(10, "reservoir", seed)
        buffer.add(_examples(1, 50, start=0), 1)
        buffer.add(_examples(1, 50, start=1), 2)
        assert len(buffer) == 10 and buffer.seen == 100
        counts += torch.bincount(buffer.data.y, minlength=2)
    share = counts / counts.sum()
    assert abs(share[0] - 0.5) < 0.05  # the first experience is not crowded out


def test_reservoir_rows_stay_whole():
    buffer = ReplayBuffer(5, "reservoir", 0)
    buffer.add(_examples(1, 8, start=0), 1)
    buffer.add(_examples(1, 8, start=1), 2)
    data = buffer.data
    assert torch.equal(data.extras["task"], data.y)  # each example kept its own task id
    assert torch.equal(data.x[:, 0] >= 1000, data.y == 1)


def test_class_balanced_gives_every_class_its_share_and_trims_old_classes():
    buffer = ReplayBuffer(12, "class_balanced", 0)
    buffer.add(_examples(2, 20), 1)
    assert torch.bincount(buffer.data.y).tolist() == [6, 6]
    first = buffer.data.x[buffer.data.y == 0][:4].clone()
    buffer.add(_examples(2, 20, start=2), 2)
    assert torch.bincount(buffer.data.y).tolist() == [3, 3, 3, 3]
    assert torch.equal(buffer.data.x[buffer.data.y == 0], first[:3])  # trimming keeps the first picks


def test_herding_picks_the_examples_whose_mean_tracks_the_class_mean():
    features = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-10.0, 0.0], [1.0, 0.0]])
    labels = torch.zeros(4, dtype=torch.long)
    # class mean (0.25, 0): the first pick is the closest point, (0, 0); then the one that keeps the
    # running mean closest: (1, 0) gives 0.5, ±10 give ±5
    assert _herding_order(features, labels, 2).tolist() == [0, 3]


def test_buffer_state_round_trips():
    buffer = ReplayBuffer(6, "class_balanced", 3)
    buffer.add(_examples(3, 5), 1)
    copy = ReplayBuffer(6, "class_balanced", 3)
    copy.load_state_dict(buffer.state_dict())
    assert copy.seen == buffer.seen and torch.equal(copy.data.x, buffer.data.x)
    assert torch.equal(copy.data.extras["task"], buffer.data.extras["task"])


def test_replay_batches_pair_new_and_replayed_examples():
    from protege.data.dataset import batch_loader
    from protege.data.paired import PairedBatches, with_replay

    sampler = PairedBatches(new=10, replayed=3, batch_size=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    assert sorted(i for b in batches for i in b if i < 10) == list(range(10))  # every new example once
    assert all(len([i for i in b if i >= 10]) == len([i for i in b if i < 10]) for b in batches)
    sampler.start_epoch(0, skip_batches=1)
    assert list(sampler) == batches[1:]  # a resumed epoch continues with the same batches
    sampler.start_epoch(1)
    assert list(sampler) != batches

    new, buffer = _examples(2, 5), _examples(1, 3, start=5)
    dataset = with_replay(new, buffer)
    training = next(iter(batch_loader(dataset, 4, shuffle=True, seed=0)))
    assert training["replayed"].tolist() == [False] * 4 + [True] * 4
    in_order = [b["index"].tolist() for b in batch_loader(dataset, 4)]  # other passes read each example once
    assert [i for batch in in_order for i in batch] == list(range(13))

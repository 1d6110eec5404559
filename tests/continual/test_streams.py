import pytest
import torch
from tests.continual.helpers import bundle, stream

from protege.continual.streams import TaggedDataset, join
from protege.errors import ConfigError, DataError


def test_class_incremental_splits_every_split_by_class_in_arrival_order():
    s = stream(experiences=3)
    assert [e.classes for e in s.experiences] == [(0, 1), (2, 3), (4, 5)]
    for e in s.experiences:
        for split in (e.train, e.val, e.test):
            assert set(split.y.tolist()) == set(e.classes)
            assert (split.extras["task"] == e.number - 1).all()
    assert s.known_classes(2) == ["c0", "c1", "c2", "c3"]
    assert len(s.data.test) == 60  # the whole bundle stays, renumbered


def test_a_given_class_order_renumbers_the_classes():
    s = stream(experiences=2, class_order=["c5", "c4", "c3", "c2", "c1", "c0"])
    assert s.class_names == ["c5", "c4", "c3", "c2", "c1", "c0"]
    original = bundle()
    first = s.experiences[0].train  # classes c5 and c4, now 0 and 1
    assert set(first.y.tolist()) == {0, 1, 2}
    assert torch.equal(first.x[first.y == 0], original.train.x[original.train.y == 5])


def test_a_seeded_order_is_a_permutation_fixed_by_the_seed():
    a, b = stream(class_order="seeded"), stream(class_order="seeded")
    assert a.class_names == b.class_names and sorted(a.class_names) == [f"c{i}" for i in range(6)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"class_order": ["c0", "nope", "c1", "c2", "c3", "c4"]}, "names class 'nope', which the data does not have"),
        ({"class_order": ["c0", "c1"]}, "leaves out class 'c2'"),
        ({"experiences": 7}, "more than the data's 6 classes"),
    ],
)
def test_bad_class_splits_are_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        stream(**{"experiences": 3, **options})


def test_an_experience_without_test_examples_is_refused():
    data = bundle()
    keep = data.test.y != 5
    data.test = type(data.test)(data.test.x[keep], data.test.y[keep])
    with pytest.raises(DataError, match=r"experience 3 \(classes c4, c5\)|experience 6 \(classes c5\)"):
        stream(experiences=6, data=data)


def test_permuted_domains_share_one_permutation_across_splits_and_keep_the_first_domain():
    s = stream("domain_incremental", experiences=3, shift="permute")
    original = bundle()
    assert torch.equal(s.experiences[0].test.x, original.test.x)
    second = s.experiences[1]
    order = [torch.nonzero(original.train.x[0] == v).item() for v in second.train.x[0]]
    assert torch.equal(second.test.x, original.test.x[:, order])  # the test split got the same permutation
    assert not torch.equal(second.train.x, s.experiences[2].train.x)
    assert [e.classes for e in s.experiences] == [tuple(range(6))] * 3


def test_noise_grows_to_the_given_amount_at_the_last_experience():
    s = stream("domain_incremental", experiences=3, shift="noise", shift_amount=2.0)
    original = bundle()
    scale = original.train.x.std()
    last = (s.experiences[2].train.x - original.train.x).std() / scale
    middle = (s.experiences[1].train.x - original.train.x).std() / scale
    assert abs(last - 2.0) < 0.25 and abs(middle - 1.0) < 0.15


def test_rotation_needs_images():
    with pytest.raises(ConfigError, match="rotate turns images"):
        stream("domain_incremental", shift="rotate")
    s = stream("domain_incremental", experiences=2, shift="rotate", data=bundle(shape=(1, 5, 5)))
    assert s.experiences[1].train.x.shape == (60, 1, 5, 5)


def test_task_masks_name_each_experiences_outputs():
    s = stream("task_incremental", experiences=3)
    mask = s.task_classes(4)  # after two experiences the head has four outputs
    assert mask.tolist() == [[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]]


def test_joined_datasets_fill_missing_extras():
    a = TaggedDataset(torch.zeros(2, 1), torch.tensor([0, 1]), extras={"stored": torch.ones(2, 3)})
    b = TaggedDataset(torch.ones(1, 1), torch.tensor([2]), extras={"task": torch.tensor([4])})
    both = join([a, b])
    batch = both.__getitems__([0, 2])
    assert batch["task"].tolist() == [0, 4]
    assert torch.isnan(batch["stored"][1]).all() and batch["stored"][0].tolist() == [1, 1, 1]


def _csv_with_domains(tmp_path, rows=90):
    lines = ["a,b,site,label"] + [
        f"{i},{(i * 7) % 11},{['north', 'east', 'south'][i % 3]},{i % 2}" for i in range(rows)
    ]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_group_column_names_each_experiences_domain(tmp_path):
    from protege.data.build import load_data

    data = load_data(f"csv:{_csv_with_domains(tmp_path)}", {"label_column": "label", "group_column": "site"})
    s = stream("domain_incremental", experiences=3, shift="column", data=data)
    assert s.domains == ["east", "north", "south"]
    for e, domain in zip(s.experiences, s.domains, strict=True):
        rows = e.train.x[:, 0].long() % 3
        assert set(rows.tolist()) == {["north", "east", "south"].index(domain)}
    assert sum(len(e.test) for e in s.experiences) == len(data.test)
    with pytest.raises(ConfigError, match="names 3 domains \\(east, north, south\\); set experiences to 3"):
        stream("domain_incremental", experiences=2, shift="column", data=data)


def test_a_domain_column_needs_the_group_column():
    with pytest.raises(ConfigError, match=r"give the csv source options\.group_column"):
        stream("domain_incremental", shift="column")

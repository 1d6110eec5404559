"""The two domains: a shifted target shares no example with the source and carries no training label; a
target source is read in the source's class numbering and standardisation."""

import numpy as np
import pytest
import torch

from protege.adaptation.config import AdaptationConfig
from protege.adaptation.target import build_domains
from protege.data.build import load_data
from protege.errors import DataError


def digits(**options):
    return load_data("digits", seed=0, **options)


def test_a_shifted_target_is_a_disjoint_unlabelled_share_of_the_training_split():
    data = digits()
    domains = build_domains(data, AdaptationConfig(target={"shift": "rotate", "amount": 30, "share": 0.4}), 0)
    assert len(domains.source_train) + len(domains.target_train) == len(data.train)
    assert len(domains.target_train) == round(0.4 * len(data.train))
    assert (domains.target_train.y == -1).all() and not domains.target_train.labeled.any()
    assert torch.equal(domains.target_test.y, data.test.y) and not torch.equal(domains.target_test.x, data.test.x)
    rows = {tuple(x.flatten().tolist()) for x in domains.source_train.x}
    unrotated = build_domains(data, AdaptationConfig(target={"shift": "rotate", "amount": 1e-9, "share": 0.4}), 0)
    assert not rows & {tuple(x.flatten().tolist()) for x in unrotated.target_train.x}
    paired = domains.paired()
    assert int(paired.extras["target"].sum()) == len(domains.target_train)


def test_a_target_source_uses_the_sources_classes_and_statistics(tmp_path):
    data = digits(standardize=True)
    rng = np.random.default_rng(0)
    labels = np.array([str(i % 3 + 5) for i in range(300)])  # classes 5, 6, 7 only
    np.savez(tmp_path / "t.npz", x=rng.random((300, 1, 8, 8)).astype(np.float32), y=labels)
    config = AdaptationConfig(target={"source": f"npz:{tmp_path / 't.npz'}"})
    domains = build_domains(data, config, 0)
    assert set(domains.target_test.y.tolist()) == {5, 6, 7}  # the source's class ids of "5", "6", "7"
    other = load_data(f"npz:{tmp_path / 't.npz'}", val_fraction=0.1, test_fraction=0.3, seed=0)
    mean = torch.tensor(data.preprocess["standardize"]["mean"]).reshape(1, 8, 8)
    std = torch.tensor(data.preprocess["standardize"]["std"]).reshape(1, 8, 8)
    assert torch.allclose(domains.target_test.x, (other.test.x - mean) / std)
    assert len(domains.source_train) == len(data.train)


def test_a_target_of_another_shape_is_one_line(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.zeros((300, 40), np.float32), y=np.array([str(i % 10) for i in range(300)]))
    config = AdaptationConfig(target={"source": f"npz:{tmp_path / 't.npz'}"})
    with pytest.raises(DataError, match=r"its inputs have shape \(40,\)"):
        build_domains(digits(), config, 0)

"""The generated data sets: Friedman #1 follows its formula, the multi-label generators give one task
whose later examples (offset, another seed) are new inputs of the same task."""

import numpy as np

from protege.data import call_source


def test_friedman1_follows_its_formula_without_noise():
    raw = call_source("friedman1", num_samples=50, noise=0.0, seed=3)
    x = raw.x.astype(np.float64)
    y = 10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]
    np.testing.assert_allclose(raw.y, y, rtol=1e-5)
    assert raw.x.shape == (50, 10) and raw.label_names == ["y"]


def test_multilabel_synthetic_offset_gives_later_examples_of_the_same_task():
    whole = call_source("multilabel_synthetic", num_samples=60, seed=2)
    later = call_source("multilabel_synthetic", num_samples=20, seed=2, offset=40)
    np.testing.assert_array_equal(whole.x[40:], later.x)
    np.testing.assert_array_equal(whole.y[40:], later.y)
    assert whole.y.shape == (60, 5) and whole.y.sum(1).min() >= 1


def test_mnist1d_pairs_are_two_signals_and_their_digits():
    raw = call_source("mnist1d_pairs", num_samples=30, seed=0)
    assert raw.x.shape == (30, 1, 80) and raw.y.shape == (30, 10)
    assert set(raw.y.sum(1).tolist()) <= {1, 2}
    other = call_source("mnist1d_pairs", num_samples=30, seed=1)
    assert not np.array_equal(raw.x, other.x)

"""protege rank: transferability scores checked against closed forms and against informative vs noise features."""

import json

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from protege.cli import main
from protege.rank import h_score, kendall_tau, knn_accuracy, linear_probe_accuracy, log_evidence, logme, rank_models


def _features(n=120, classes=3, dim=8, informative=True, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    noise = rng.normal(size=(n, dim))
    if not informative:
        return noise, labels
    centres = rng.normal(size=(classes, dim)) * 3
    return centres[labels] + noise, labels


def test_log_evidence_is_the_gaussian_marginal_likelihood():
    rng = np.random.default_rng(1)
    f, y = rng.normal(size=(7, 3)), rng.normal(size=7)
    for alpha, beta in [(1.0, 1.0), (0.3, 4.0), (5.0, 0.2)]:
        covariance = f @ f.T / alpha + np.eye(7) / beta
        expected = multivariate_normal(mean=np.zeros(7), cov=covariance).logpdf(y)
        assert log_evidence(f, y, alpha, beta) == pytest.approx(expected, rel=1e-9)
    wide = rng.normal(size=(4, 9))  # more features than examples: the zero eigenvalues count too
    covariance = wide @ wide.T / 0.5 + np.eye(4) / 2.0
    assert log_evidence(wide, y[:4], 0.5, 2.0) == pytest.approx(
        multivariate_normal(mean=np.zeros(4), cov=covariance).logpdf(y[:4]), rel=1e-9
    )


def test_logme_maximises_the_evidence_over_alpha_and_beta():
    f, labels = _features(n=60, dim=5)
    best = logme(f, labels)
    for alpha in (0.01, 0.1, 1.0, 10.0):
        for beta in (0.1, 1.0, 10.0):
            fixed = np.mean([log_evidence(f, (labels == c).astype(float), alpha, beta) / len(f) for c in range(3)])
            assert best >= fixed - 1e-9


@pytest.mark.parametrize("score", [logme, h_score])
def test_label_evidence_scores_prefer_informative_features(score):
    good, labels = _features(informative=True)
    noise, _ = _features(informative=False)
    assert score(good, labels) > score(noise, labels)


def test_held_out_accuracies_separate_informative_from_noise():
    good, labels = _features(n=200, informative=True)
    noise, _ = _features(n=200, informative=False)
    for accuracy in (knn_accuracy, linear_probe_accuracy):
        assert accuracy(good[:150], labels[:150], good[150:], labels[150:]) > 0.9
        assert accuracy(noise[:150], labels[:150], noise[150:], labels[150:]) < 0.6


def test_h_score_equals_the_trace_formula_without_shrinkage_need():
    f, labels = _features(n=400, dim=3)
    centred = f - f.mean(0)
    means = np.stack([centred[labels == c].mean(0) for c in labels])
    plain = np.trace(np.linalg.inv(np.cov(centred.T, bias=True)) @ (means.T @ means / len(f)))
    assert h_score(f, labels) == pytest.approx(plain, rel=0.05)  # shrinkage is slight with many examples


def test_kendall_tau_counts_order_agreement():
    assert kendall_tau([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_rank_scores_builtin_and_timm_candidates_on_the_same_examples():
    ranking = rank_models(
        [("mlp", {"hidden": 32}), ("timm:test_resnet", {"pretrained": False})], "digits", limit=120, seed=0
    )
    assert [c.source for c in ranking.candidates] == ["mlp", "timm:test_resnet"]
    assert ranking.candidates[1].label() == "timm:test_resnet[pretrained=False]"
    assert ranking.train_examples == 120 and ranking.held_out == "val"
    for candidate in ranking.candidates:
        assert set(candidate.scores) == {"logme", "h_score", "knn_accuracy", "linear_probe_accuracy"}
        assert sorted(candidate.ranks.values()) and set(candidate.ranks.values()) <= {1, 2}
        assert candidate.seconds["features"] > 0
    assert "mean" in ranking.agreement and -1 <= ranking.agreement["mean"] <= 1
    assert ranking.best.source in ("mlp", "timm:test_resnet")
    assert ranking.to_dict()["best_model"]["source"] == ranking.best.source


def test_rank_tokenises_texts_for_each_hf_candidate(tiny_hf, sentiment_csv, tmp_path):
    from tests.conftest import write_tiny_hf_model

    other = write_tiny_hf_model(tmp_path / "other", hidden=8, layers=1)
    ranking = rank_models(
        [(f"hf:{tiny_hf}", {"max_length": 12}), (f"hf:{other}", {"max_length": 16})],
        f"csv:{sentiment_csv}",
        {"text_column": "text"},
        held_out="test",
    )
    assert [c.feature_dim for c in ranking.candidates] == [16, 8]
    assert ranking.to_dict()["scored"]["knn_and_linear_probe"].endswith("test split (12 examples)")


def test_cli_prints_json_with_the_scored_splits(capsys):
    code = main(["rank", "--models", "mlp,cnn2d", "--data", "digits", "--limit", "150", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["source"] for c in out["candidates"]] == ["mlp", "cnn2d"]
    assert out["scored"]["logme_and_h_score"] == "train split (150 examples)"
    assert out["best"] in ("mlp", "cnn2d") and "logme~h_score" in out["agreement_kendall_tau"]


def test_cli_table_and_errors(capsys):
    assert main(["rank", "--models", "mlp", "--data", "digits", "--limit", "100"]) == 0
    out = capsys.readouterr().out
    assert "linear probe" in out and "best by mean rank: mlp" in out and "val split" in out
    assert "as a teacher: model: {source: mlp}" in out
    assert main(["rank", "--models", "mpl", "--data", "digits"]) == 2
    assert 'did you mean "mlp"' in capsys.readouterr().err


def test_candidates_carry_options_in_brackets():
    from protege.errors import ConfigError
    from protege.rank import parse_candidates

    parsed = parse_candidates("mlp[hidden=[8, 4],layers=2], timm:test_resnet[pretrained=false],hf:/x")
    assert parsed == [
        ("mlp", {"hidden": [8, 4], "layers": 2}),
        ("timm:test_resnet", {"pretrained": False}),
        ("hf:/x", {}),
    ]
    with pytest.raises(ConfigError, match="without its"):
        parse_candidates("mlp[hidden=3")


def test_rank_reads_saved_models_and_torchvision_candidates(tmp_path):
    from protege.data.build import load_data
    from protege.models import build_model, save_model

    data = load_data("digits", val_fraction=0.2)
    torch.manual_seed(123)  # other weights than rank's seed-0 draw
    built = build_model("mlp", {"hidden": 16}, data.input_shape, data.class_names)
    save_model(built.module, built.card, tmp_path / "model")
    ranking = rank_models([f"run:{tmp_path}", ("mlp", {"hidden": 16})], "digits", limit=100)
    saved, fresh = ranking.candidates
    assert saved.feature_dim == fresh.feature_dim == 16
    assert saved.label() == f"run:{tmp_path}" and all(np.isfinite(v) for v in saved.scores.values())
    again = rank_models([("mlp", {"hidden": 16})], "digits", limit=100).candidates[0]
    assert again.scores == fresh.scores  # seeded: an untrained candidate scores the same on every run
    assert saved.scores != fresh.scores  # the saved weights, not a fresh draw, were scored
    image = rank_models([("torchvision:mobilenet_v3_small", {"pretrained": False})], "npz:" + _rgb_npz(tmp_path))
    assert image.candidates[0].feature_dim == 1024 and image.agreement == {}


def _rgb_npz(tmp_path) -> str:
    rng = np.random.default_rng(0)
    path = tmp_path / "rgb.npz"
    np.savez(path, x=rng.normal(size=(60, 3, 32, 32)).astype(np.float32), y=np.arange(60) % 2)
    return str(path)

"""``protege rank``: how well each candidate model's features fit a task, before any training.

Each candidate's ``forward_features`` embeds a (possibly subsampled) training split and a held-out
split; four scores then judge the embedding: LogME and H-score on the training features alone, and
the accuracy of a kNN classifier and of a linear probe fitted on them and measured on the held-out
split. No single score is best everywhere (Agostinelli et al. 2022), so all four are printed with
their times, and Kendall's tau says how far their rankings agree.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from protege.data.build import load_data
from protege.data.dataset import ArrayDataset, DataBundle, batch_loader
from protege.data.streamed import StreamedImages
from protege.errors import ConfigError, DataError, ModelError
from protege.models import build_model, check_model_options, load_run_model

SCORES = ("logme", "h_score", "knn_accuracy", "linear_probe_accuracy")


def log_evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log p(y | F, α, β) of Bayesian linear regression y = F w + ε, w ~ N(0, I/α), ε ~ N(0, I/β):
    the marginal likelihood log N(y | 0, F Fᵀ/α + I/β), computed through the SVD of F (Bishop 2006, eq. 3.86)."""
    n, dim = features.shape
    u, s, _ = np.linalg.svd(features.astype(np.float64), full_matrices=False)
    return _evidence(s**2, u.T @ y, float(y @ y), n, dim, alpha, beta)[0]


def _evidence(
    sigma: np.ndarray, uy: np.ndarray, y2: float, n: int, dim: int, alpha: float, beta: float
) -> tuple[float, float, float, float]:
    """Evidence, γ (effective number of parameters), ‖m‖² and ‖F m − y‖² at (α, β), from the
    eigenvalues ``sigma`` of FᵀF and the projections ``uy`` of y on F's left singular vectors."""
    denominator = alpha + beta * sigma
    gamma = float((beta * sigma / denominator).sum())
    m2 = float(((beta * np.sqrt(sigma) * uy / denominator) ** 2).sum())
    residual = float(((alpha * uy / denominator) ** 2).sum()) + max(y2 - float(uy @ uy), 0.0)
    log_det = float(np.log(denominator).sum()) + (dim - len(sigma)) * np.log(alpha)
    evidence = (
        n / 2 * np.log(beta)
        + dim / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * residual
        - alpha / 2 * m2
        - log_det / 2
    )
    return float(evidence), gamma, m2, residual


def logme(features: np.ndarray, labels: np.ndarray, iterations: int = 100, tolerance: float = 1e-4) -> float:
    """LogME (You et al. 2021, Algorithm 1): for each class's one-hot target, the log evidence of Bayesian
    linear regression on the features, maximised over α and β by MacKay's fixed-point updates
    (α ← γ/‖m‖², β ← (n − γ)/‖Fm − y‖²), divided by n and averaged over classes. Higher is better."""
    f = np.asarray(features, dtype=np.float64)
    n, dim = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    total = 0.0
    classes = np.unique(labels)
    for c in classes:
        y = (labels == c).astype(np.float64)
        uy, y2 = u.T @ y, float(y @ y)
        alpha, beta = 1.0, 1.0
        for _ in range(iterations):
            _, gamma, m2, residual = _evidence(sigma, uy, y2, n, dim, alpha, beta)
            new_alpha = gamma / max(m2, 1e-12)
            new_beta = (n - gamma) / max(residual, 1e-12)
            done = abs(new_alpha - alpha) / alpha < tolerance and abs(new_beta - beta) / beta < tolerance
            alpha, beta = new_alpha, new_beta
            if done:
                break
        total += _evidence(sigma, uy, y2, n, dim, alpha, beta)[0] / n
    return total / len(classes)


def h_score(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score (Bao et al. 2019): tr(cov(f)⁻¹ cov(E[f | y])), how much of the features' variance lies
    between the classes. The covariance is shrunk (Ledoit-Wolf) as Ibrahim et al. (2022) advise, since
    the plain inverse is unstable when features outnumber examples. Higher is better."""
    from sklearn.covariance import LedoitWolf

    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(0)
    covariance = LedoitWolf(assume_centered=True).fit(f).covariance_
    class_means = np.zeros_like(f)
    for c in np.unique(labels):
        class_means[labels == c] = f[labels == c].mean(0)
    between = class_means.T @ class_means / len(f)
    try:
        return float(np.trace(np.linalg.solve(covariance, between)))
    except np.linalg.LinAlgError:  # features without any variance (all constant): the least-squares answer
        return float(np.trace(np.linalg.lstsq(covariance, between, rcond=None)[0]))


def knn_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray, k: int = 5) -> float:
    """Held-out accuracy of a k-nearest-neighbour vote under cosine similarity."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=min(k, len(train)), metric="cosine")
    return float((knn.fit(train, train_y).predict(test) == test_y).mean())


def linear_probe_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray) -> float:
    """Held-out accuracy of logistic regression on standardised features (a linear probe)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float((probe.fit(train, train_y).predict(test) == test_y).mean())


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's τ-b between two score lists over the same candidates (1: same order, −1: reversed)."""
    from scipy.stats import kendalltau

    tau = kendalltau(a, b).statistic
    return float(tau) if np.isfinite(tau) else 0.0


@torch.no_grad()
def embed(model: nn.Module, dataset: ArrayDataset, batch_size: int = 128) -> np.ndarray:
    """``forward_features`` of every example, in eval mode, as a float64 array (one row per example)."""
    if not hasattr(model, "forward_features"):
        raise ModelError(f"{type(model).__name__} has no forward_features; rank needs an embedding")
    model.eval()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    parts = [
        model.forward_features(batch["x"].to(device)).float().flatten(1).cpu()
        for batch in batch_loader(dataset, batch_size)
    ]
    return torch.cat(parts).double().numpy()


@dataclass
class CandidateScore:
    """One candidate's scores, the seconds each took, and its rank (1 = best) under each score."""

    source: str
    options: dict
    feature_dim: int
    scores: dict[str, float]
    seconds: dict[str, float]
    ranks: dict[str, int] = field(default_factory=dict)

    def label(self) -> str:
        """The source with its options, as ``--models`` takes it: ``mlp[hidden=64]``."""
        options = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.source}[{options}]" if options else self.source

    def model_block(self) -> str:
        """The recipe's ``model:`` block that builds this candidate (as a teacher, say)."""
        return "{" + ", ".join([f"source: {self.source}", *(f"{k}: {v}" for k, v in self.options.items())]) + "}"


@dataclass
class Ranking:
    """Every candidate scored on the same examples, how the scores agree, and which model comes first."""

    data: str
    train_examples: int
    held_out: str
    held_out_examples: int
    candidates: list[CandidateScore]
    agreement: dict[str, float]
    best: CandidateScore

    def to_dict(self) -> dict:
        return {
            "data": self.data,
            "scored": {
                "logme_and_h_score": f"train split ({self.train_examples} examples)",
                "knn_and_linear_probe": f"fitted on train ({self.train_examples}), accuracy on the "
                f"{self.held_out} split ({self.held_out_examples} examples)",
            },
            "candidates": [c.__dict__ for c in self.candidates],
            "agreement_kendall_tau": self.agreement,
            "best": self.best.source,
            "best_model": {"source": self.best.source, **self.best.options},
        }


def _subsample(dataset: ArrayDataset | StreamedImages, limit: int | None, seed: int) -> ArrayDataset | StreamedImages:
    """At most ``limit`` examples, drawn stratified by class with ``seed``."""
    if limit is None or len(dataset) <= limit:
        return dataset
    from sklearn.model_selection import train_test_split

    index = np.arange(len(dataset))
    labels = dataset.y.numpy()
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 and limit >= len(counts[counts > 0]) else None
    keep, _ = train_test_split(index, train_size=limit, random_state=seed, stratify=stratify)
    keep = torch.as_tensor(np.sort(keep))
    if isinstance(dataset, StreamedImages):
        return dataset.subset(keep)
    return ArrayDataset(dataset.x[keep], dataset.y[keep])


def _split_outside_brackets(text: str, origin: str) -> list[str]:
    """Split on commas that no ``[...]`` encloses."""
    from protege.errors import ConfigError

    parts, depth, current = [], 0, ""
    for char in text + ",":
        if char == "," and depth == 0:
            if current.strip():
                parts.append(current.strip())
            current = ""
            continue
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            raise ConfigError(f"{origin}: a ']' without its '[' in {text!r}")
        current += char
    if depth:
        raise ConfigError(f"{origin}: a '[' without its ']' in {text!r}")
    return parts


def parse_candidates(text: str) -> list[tuple[str, dict]]:
    """``"mlp[hidden=64],timm:resnet18[pretrained=false]"`` as (source, options) pairs; values are read as YAML."""
    import yaml

    from protege.errors import ConfigError

    parsed = []
    for candidate in _split_outside_brackets(text, "--models"):
        source, _, rest = candidate.partition("[")
        options = {}
        for pair in _split_outside_brackets(rest.removesuffix("]"), f"--models {source}"):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--models: option {pair!r} of {source} must look like name=value")
            options[key.strip()] = yaml.safe_load(value)
        parsed.append((source.strip(), options))
    return parsed


def score_features(
    train: np.ndarray, train_y: np.ndarray, held_out: np.ndarray, held_out_y: np.ndarray
) -> tuple[dict[str, float], dict[str, float]]:
    """The four scores of one embedding, and the seconds each took."""
    jobs = {
        "logme": lambda: logme(train, train_y),
        "h_score": lambda: h_score(train, train_y),
        "knn_accuracy": lambda: knn_accuracy(train, train_y, held_out, held_out_y),
        "linear_probe_accuracy": lambda: linear_probe_accuracy(train, train_y, held_out, held_out_y),
    }
    scores, seconds = {}, {}
    for name, job in jobs.items():
        started = time.perf_counter()
        scores[name] = job()
        seconds[name] = time.perf_counter() - started
    return scores, seconds


def rank_models(
    candidates: list[str | tuple[str, dict]],
    data: str,
    data_options: dict | None = None,
    *,
    limit: int | None = 2000,
    held_out: str = "val",
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Ranking:
    """Score each candidate model source (``mlp``, ``run:path``, ``timm:name``, ``hf:folder``...; or a
    ``(source, options)`` pair) on ``data``. Texts are tokenised separately for each Hugging Face candidate."""
    from protege.models.view_encoders import view_encoder

    if not candidates:
        raise ModelError("rank needs at least one candidate model")
    if held_out not in ("val", "test"):
        raise DataError(f"held_out must be val or test (got {held_out!r})")
    # every candidate's options are checked before the first one is scored
    specs = [(c, {}) if isinstance(c, str) else (c[0], dict(c[1])) for c in candidates]
    specs = [(source, check_model_options(source, options)) for source, options in specs]
    results: list[CandidateScore] = []
    sizes = (0, 0)
    for source, options in specs:
        encoder = view_encoder(source, options)
        bundle: DataBundle = load_data(data, data_options, val_fraction=val_fraction, seed=seed, text_encoder=encoder)
        evaluation = bundle.val if held_out == "val" else bundle.test
        if evaluation is None:
            raise DataError(f"{data} has no {held_out} split; use held_out=test or a val_fraction above 0")
        if limit is not None and limit < 2 * len(bundle.class_names):
            raise ConfigError(
                f"limit {limit} is too small for {len(bundle.class_names)} classes: the scores need two examples "
                f"of each, so {2 * len(bundle.class_names)} or more"
            )
        train, evaluation = _subsample(bundle.train, limit, seed), _subsample(evaluation, limit, seed + 1)
        sizes = (len(train), len(evaluation))
        torch.manual_seed(seed)  # untrained candidates draw the same weights on every run
        if source.startswith("run:"):  # only its features are scored: its classes need not be the data's
            check_model_options(source, options)
            model = load_run_model(source, bundle.input_shape, None).module
        else:
            model = build_model(source, options, bundle.input_shape, bundle.class_names, bundle.preprocess).module
        started = time.perf_counter()
        train_f, eval_f = embed(model, train), embed(model, evaluation)
        seconds = {"features": time.perf_counter() - started}
        scores, score_seconds = score_features(train_f, train.y.numpy(), eval_f, evaluation.y.numpy())
        seconds.update(score_seconds)
        results.append(CandidateScore(source, options, int(train_f.shape[1]), scores, seconds))

    for name in SCORES:
        order = sorted(range(len(results)), key=lambda i: -results[i].scores[name])
        for rank, i in enumerate(order, start=1):
            results[i].ranks[name] = rank
    agreement = {}
    if len(results) > 1:
        for a, b in itertools.combinations(SCORES, 2):
            agreement[f"{a}~{b}"] = kendall_tau([r.scores[a] for r in results], [r.scores[b] for r in results])
        agreement["mean"] = float(np.mean(list(agreement.values())))
    best = min(results, key=lambda r: (np.mean(list(r.ranks.values())), r.ranks["linear_probe_accuracy"]))
    return Ranking(data, sizes[0], held_out, sizes[1], results, agreement, best)


def print_ranking(ranking: Ranking) -> None:
    """The scores side by side with their times, which split each used, how they agree, and the winner."""
    from rich.table import Table

    from protege.console import out_console

    table = Table(title=f"candidate models on {ranking.data}")
    table.add_column("model")
    table.add_column("dim", justify="right")
    for name in SCORES:
        table.add_column(name.replace("_accuracy", " acc").replace("_", " "), justify="right")
    table.add_column("mean rank", justify="right")
    for c in sorted(ranking.candidates, key=lambda c: np.mean(list(c.ranks.values()))):
        cells = [f"{c.scores[s]:.4g} [dim]({c.seconds[s]:.2f}s)[/]" for s in SCORES]
        table.add_row(
            f"{c.label()} [dim](features {c.seconds['features']:.1f}s)[/]",
            str(c.feature_dim),
            *cells,
            f"{np.mean(list(c.ranks.values())):.2f}",
        )
    out_console.print(table)
    out_console.print(
        f"LogME and H-score: train split, {ranking.train_examples} examples; kNN (k=5, cosine) and linear probe: "
        f"fitted on those, accuracy on the {ranking.held_out} split ({ranking.held_out_examples} examples)"
    )
    if ranking.agreement:
        pairs = ", ".join(f"{k.replace('_accuracy', '')} {v:+.2f}" for k, v in ranking.agreement.items() if k != "mean")
        out_console.print(f"agreement (Kendall tau between rankings): mean {ranking.agreement['mean']:+.2f}; {pairs}")
    best = ranking.best
    out_console.print(f"best by mean rank: [bold]{best.label()}[/]  →  as a teacher: model: {best.model_block()}")

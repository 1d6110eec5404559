"""Reference implementations of protege's objectives, written from the papers' equations with plain
tensor arithmetic (exp, sum, log, explicit pairs and triplets): no fused kernels, no closed-form
gradients, no fast paths. The property tests compare protege's losses and gradients with these."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def log_softmax(z: Tensor) -> Tensor:
    """log exp(z_c) / Σ_k exp(z_k) over the last dimension, shifted by the row maximum for stability."""
    shifted = z - z.max(dim=-1, keepdim=True).values
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


def kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p ‖ q) per row from log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def soft_target_loss(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """Hinton et al. 2015: T² · mean_i KL(softmax(t_i/T) ‖ softmax(s_i/T))."""
    t = temperature
    return t * t * kl_rows(log_softmax(teacher / t), log_softmax(student / t)).mean()


def cross_entropy(logits: Tensor, target: Tensor, smoothing: float = 0.0) -> Tensor:
    """−Σ_c q_c log p_c averaged over the examples whose class id is not −1, with q the label smoothed
    towards the uniform distribution: (1 − ε)·onehot + ε / C (Szegedy et al. 2016)."""
    labelled = target >= 0
    if not labelled.any():
        return logits.sum() * 0.0
    log_p = log_softmax(logits[labelled])
    classes = logits.shape[-1]
    one_hot = torch.zeros_like(log_p)
    one_hot[torch.arange(len(log_p)), target[labelled]] = 1.0
    q = (1 - smoothing) * one_hot + smoothing / classes
    return -(q * log_p).sum(-1).mean()


def soft_cross_entropy(logits: Tensor, probabilities: Tensor, smoothing: float = 0.0) -> Tensor:
    """−Σ_c q_c log p_c for given target probabilities (mixup), smoothed as above, averaged over examples."""
    q = (1 - smoothing) * probabilities + smoothing / logits.shape[-1]
    return -(q * log_softmax(logits)).sum(-1).mean()


def dkd_terms(student: Tensor, teacher: Tensor, target: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Zhao et al. 2022, eqs. 1-4: the binary KL on [p_g, 1 − p_g] (TCKD) and the KL of the
    distributions over the non-target classes, p_c / (1 − p_g) (NCKD), each times T², batch mean."""
    t = temperature
    p_s, p_t = log_softmax(student / t).exp(), log_softmax(teacher / t).exp()
    tckd, nckd = [], []
    for i, g in enumerate(target.tolist()):
        b_s = torch.stack([p_s[i, g], 1 - p_s[i, g]])
        b_t = torch.stack([p_t[i, g], 1 - p_t[i, g]])
        tckd.append((b_t * (b_t.log() - b_s.log())).sum())
        others = [c for c in range(student.shape[1]) if c != g]
        hat_s, hat_t = p_s[i, others] / (1 - p_s[i, g]), p_t[i, others] / (1 - p_t[i, g])
        nckd.append((hat_t * (hat_t.log() - hat_s.log())).sum())
    return torch.stack(tckd).mean() * t * t, torch.stack(nckd).mean() * t * t


def pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """The Pearson correlation of two vectors, cov(a, b) / (σ_a σ_b), with the 1e-8 the authors' code
    adds to the denominator (a near-constant column of probabilities would divide by ~0)."""
    da, db = a - a.mean(), b - b.mean()
    return (da * db).sum() / ((da * da).sum().sqrt() * (db * db).sum().sqrt() + eps)


def dist_terms(student: Tensor, teacher: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Huang et al. 2022, eqs. 5-7: 1 − Pearson per example (inter-class) and per class across the
    batch (intra-class) on softmax(z / T), averaged, each times T²."""
    t = temperature
    p_s, p_t = log_softmax(student / t).exp(), log_softmax(teacher / t).exp()
    inter = torch.stack([1 - pearson(p_s[i], p_t[i]) for i in range(len(p_s))]).mean()
    intra = torch.stack([1 - pearson(p_s[:, c], p_t[:, c]) for c in range(p_s.shape[1])]).mean()
    return inter * t * t, intra * t * t


def huber(x: Tensor, delta: float = 1.0) -> Tensor:
    """½x² within ``delta`` of zero, δ(|x| − ½δ) beyond, elementwise."""
    absolute = x.abs()
    return torch.where(absolute < delta, 0.5 * x * x, delta * (absolute - 0.5 * delta))


def rkd_distance(student: Tensor, teacher: Tensor) -> Tensor:
    """Park et al. 2019, eq. 4: Huber between the pairwise distances of distinct examples, each set
    normalised by its mean, averaged over ordered pairs."""

    def normalised_distances(x: Tensor) -> Tensor:
        pairs = [(x[i] - x[j]).pow(2).sum().sqrt() for i in range(len(x)) for j in range(len(x)) if i != j]
        d = torch.stack(pairs)
        return d / d.mean()

    return huber(normalised_distances(student.flatten(1)) - normalised_distances(teacher.flatten(1))).mean()


def rkd_angle(student: Tensor, teacher: Tensor) -> Tensor:
    """Park et al. 2019, eq. 5: Huber between cos∠(x_i, x_j, x_k) = ⟨e_ij, e_kj⟩ with unit edge
    vectors e_ij = (x_i − x_j)/‖x_i − x_j‖, over every triplet; a zero edge gives a cosine of 0."""

    def cosines(x: Tensor) -> Tensor:
        values = []
        for j in range(len(x)):
            for i in range(len(x)):
                for k in range(len(x)):
                    a, b = x[i] - x[j], x[k] - x[j]
                    if i == j or k == j:
                        values.append(x.sum() * 0.0)
                    else:
                        values.append((a / a.norm()) @ (b / b.norm()))
        return torch.stack(values)

    return huber(cosines(student.flatten(1)) - cosines(teacher.flatten(1))).mean()


def pkt_loss(student: Tensor, teacher: Tensor, eps: float = 1e-7) -> Tensor:
    """Passalis & Tefas 2018, eqs. 9-13: conditional probabilities from the cosine kernel (cos + 1)/2,
    KL of the student's from the teacher's, averaged over the entries."""

    def conditional(x: Tensor) -> Tensor:
        x = x.flatten(1)
        unit = x / x.pow(2).sum(1, keepdim=True).sqrt()
        kernel = (unit @ unit.T + 1) / 2
        return kernel / kernel.sum(1, keepdim=True)

    p_s, p_t = conditional(student), conditional(teacher)
    return (p_t * ((p_t + eps) / (p_s + eps)).log()).mean()


def attention_transfer(student: Tensor, teacher: Tensor, beta: float) -> Tensor:
    """Zagoruyko & Komodakis 2017, eqs. 2-3 (p = 2): β/2 · mean((Q_s/‖Q_s‖ − Q_t/‖Q_t‖)²), Q the
    channel mean of the squared activations, flattened per example."""

    def attention(x: Tensor) -> Tensor:
        q = (x * x).mean(1).flatten(1)
        return q / q.pow(2).sum(1, keepdim=True).sqrt()

    return beta / 2 * (attention(student) - attention(teacher)).pow(2).mean()


def sigmoid_soft_target_loss(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """T² · mean over labels and examples of KL(Bern(σ(t/T)) ‖ Bern(σ(s/T)))."""
    t = temperature
    p, q = torch.sigmoid(teacher / t), torch.sigmoid(student / t)
    kl = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
    return kl.mean() * t * t


def binary_cross_entropy(logits: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """−[y log σ(z) + (1 − y) log(1 − σ(z))] averaged over the labels, then over the masked examples."""
    p = torch.sigmoid(logits)
    per_label = -(target * p.log() + (1 - target) * (1 - p).log())
    return per_label.mean(-1)[mask].mean()


def regression_loss(outputs: Tensor, target: Tensor, mask: Tensor | None, loss: str, delta: float) -> Tensor:
    """Squared error or Huber per value, averaged over the targets, then over the (masked) examples."""
    error = outputs - target.reshape(outputs.shape)
    per_value = error * error if loss == "mse" else huber(error, delta)
    per_example = per_value.reshape(len(outputs), -1).mean(-1)
    return per_example.mean() if mask is None else per_example[mask].mean()


def nce_loss(scores: Tensor, num_examples: int) -> Tensor:
    """Tian et al. 2020, eqs. 18-19 with h(x) = P(x)/(P(x) + K/M): −E[log h(pos) + Σ_neg log(1 − h(neg))]."""
    k = scores.shape[1] - 1
    noise = k / num_examples
    h = scores / (scores + noise)
    return -(h[:, 0].log() + (1 - h[:, 1:]).log().sum(1)).mean()

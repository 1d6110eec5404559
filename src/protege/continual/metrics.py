"""What the accuracy matrix says: R[i][j] is the test accuracy on experience j after training on
experience i (both from 0). With T experiences:

- average accuracy: mean_j R[T−1][j] (Lopez-Paz & Ranzato 2017, "ACC");
- forgetting of experience j < T−1: max_{l<T−1} R[l][j] − R[T−1][j], averaged over j (Chaudhry et al.
  2018, eq. 2): how far each experience fell from its best;
- backward transfer: mean_{j<T−1} (R[T−1][j] − R[j][j]) (Lopez-Paz & Ranzato 2017, "BWT"; negative when
  learning later experiences hurt earlier ones);
- forward transfer: mean_{j>0} (R[j−1][j] − b_j), b_j the accuracy of the untrained model on j ("FWT").
"""

from __future__ import annotations

from collections.abc import Sequence


def average_accuracy(matrix: Sequence[Sequence[float]]) -> float:
    last = matrix[-1]
    return sum(last) / len(last)


def forgetting(matrix: Sequence[Sequence[float]]) -> float | None:
    """Average forgetting; None for a single experience."""
    t = len(matrix)
    if t < 2:
        return None
    drops = [max(matrix[i][j] for i in range(t - 1)) - matrix[t - 1][j] for j in range(t - 1)]
    return sum(drops) / len(drops)


def backward_transfer(matrix: Sequence[Sequence[float]]) -> float | None:
    t = len(matrix)
    if t < 2:
        return None
    return sum(matrix[t - 1][j] - matrix[j][j] for j in range(t - 1)) / (t - 1)


def forward_transfer(matrix: Sequence[Sequence[float]], untrained: Sequence[float]) -> float | None:
    t = len(matrix)
    if t < 2:
        return None
    return sum(matrix[j - 1][j] - untrained[j] for j in range(1, t)) / (t - 1)


def summarise(matrix: Sequence[Sequence[float]], untrained: Sequence[float]) -> dict[str, float | None]:
    """The four measures of one strategy's matrix (the keys report.json uses)."""
    return {
        "average_accuracy": average_accuracy(matrix),
        "forgetting": forgetting(matrix),
        "backward_transfer": backward_transfer(matrix),
        "forward_transfer": forward_transfer(matrix, untrained),
    }

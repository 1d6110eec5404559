import pytest

from protege.continual.metrics import summarise

MATRIX = [
    [0.9, 0.1, 0.0],
    [0.6, 0.8, 0.2],
    [0.3, 0.7, 0.9],
]


def test_measures_against_a_hand_computation():
    measures = summarise(MATRIX, untrained=[0.1, 0.1, 0.1])
    assert measures["average_accuracy"] == pytest.approx((0.3 + 0.7 + 0.9) / 3)
    # forgetting: experience 1 fell from its best 0.9 to 0.3, experience 2 from 0.8 to 0.7
    assert measures["forgetting"] == pytest.approx((0.6 + 0.1) / 2)
    assert measures["backward_transfer"] == pytest.approx(((0.3 - 0.9) + (0.7 - 0.8)) / 2)
    # forward: R[0][1] - b_1 and R[1][2] - b_2
    assert measures["forward_transfer"] == pytest.approx(((0.1 - 0.1) + (0.2 - 0.1)) / 2)


def test_one_experience_has_no_forgetting():
    measures = summarise([[0.8]], [0.1])
    assert measures["average_accuracy"] == 0.8 and measures["forgetting"] is None

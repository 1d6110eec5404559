"""Text augmentation for distillation (protege.data.text_augment): seeded, changing the words by the stated
amounts, and a masked word read by each encoder as its own mask or unknown token."""

from collections import Counter

import numpy as np
import pytest
from tests.conftest import write_tiny_hf_model

from protege.data.text import PAD_ID, UNKNOWN_ID, TfidfEncoder, WordIds
from protege.data.text_augment import MASK, span_mix, unmasked, word_delete, word_mask
from protege.data.transfer import encode_texts

TEXTS = [" ".join(f"t{k}w{i}" for i in range(20)) for k in range(30)]
"""30 texts of 20 words each, no word shared: where each word of an augmented text came from is plain."""


def _origin(word: str) -> tuple[int, int]:
    """(text, position) of a word of ``TEXTS``."""
    text, position = word[1:].split("w")
    return int(text), int(position)


@pytest.mark.parametrize("augment", [word_mask, word_delete, span_mix])
def test_an_augmentation_is_the_same_for_a_seed_and_another_for_another(augment):
    first = augment(TEXTS, seed=3, num_samples=50)
    assert first == augment(TEXTS, seed=3, num_samples=50) and len(first) == 50
    assert first != augment(TEXTS, seed=4, num_samples=50)


def test_word_mask_masks_words_at_the_probability_and_keeps_the_others_in_place():
    masked = word_mask(TEXTS, seed=0, num_samples=2000, probability=0.15)
    words = [text.split() for text in masked]
    assert all(len(w) == 20 for w in words)  # masking replaces, it never removes
    flat = [word for text in words for word in text]
    rate = flat.count(MASK) / len(flat)
    assert rate == pytest.approx(0.15, abs=0.01)  # 40,000 words: the standard error is 0.0018
    for text in words:
        kept = [(i, word) for i, word in enumerate(text) if word != MASK]
        assert len({_origin(w)[0] for _, w in kept}) <= 1 and all(_origin(w)[1] == i for i, w in kept)
    assert sum(MASK in t for t in word_mask(TEXTS, seed=0, num_samples=200, probability=0.5)) > sum(
        MASK in t for t in word_mask(TEXTS, seed=0, num_samples=200, probability=0.01)
    )


def test_word_delete_drops_words_at_the_probability_and_keeps_the_order_and_a_word():
    shortened = [text.split() for text in word_delete(TEXTS, seed=0, num_samples=2000, probability=0.15)]
    kept = sum(len(words) for words in shortened) / (2000 * 20)
    assert kept == pytest.approx(0.85, abs=0.01)
    for words in shortened:
        origins = [_origin(w) for w in words]
        assert len({text for text, _ in origins}) == 1  # the words of one text
        assert [p for _, p in origins] == sorted(p for _, p in origins)  # in their order
    one_word = word_delete(["alone", "two words"], seed=0, num_samples=100, probability=0.99)
    assert all(text.split() for text in one_word)  # a text never loses every word


def test_span_mix_replaces_a_span_of_one_text_with_a_span_of_another():
    for text in span_mix(TEXTS, seed=0, num_samples=300, fraction=0.3):
        origins = [_origin(w) for w in text.split()]
        counts = Counter(t for t, _ in origins)
        assert sorted(counts.values()) == [6, 14] and len(origins) == 20  # 6 words of a replaced by 6 of b
        (a, _), (b, _) = counts.most_common()
        inserted = [i for i, (t, _) in enumerate(origins) if t == b]
        assert len(inserted) == 6 and inserted == list(range(inserted[0], inserted[0] + 6))  # one span
        taken = [p for t, p in origins if t == b]
        assert taken == list(range(taken[0], taken[0] + 6))  # a span of b, in its order
        own = [p for t, p in origins if t == a]
        assert own == sorted(own) and len(own) == 14
    short = span_mix(["a b", "c d e f"], seed=0, num_samples=20, fraction=0.1)
    assert all(set(t.split()) & {"a", "b"} and set(t.split()) & {"c", "d", "e", "f"} for t in short)


@pytest.mark.parametrize("augment", [word_mask, word_delete, span_mix])
def test_an_option_out_of_range_is_refused_by_the_transfer_set(augment):
    from protege.data.build import load_data
    from protege.data.transfer import build_transfer_set
    from protege.errors import DataError

    option = "fraction" if augment is span_mix else "probability"
    name = augment.__name__
    with pytest.raises(DataError, match=rf"transfer set '{name}': {option}: Input should be greater than 0"):
        build_transfer_set(name, {option: 0}, load_data("digits"), seed=0)


def test_a_masked_word_is_each_encoders_own_unknown_or_mask_token(tmp_path):
    from protege.models.hf import text_encoder

    texts = ["good film", "bad food"]
    masked = [f"good {MASK}", f"{MASK} food"]
    words = WordIds(max_length=4)
    words.fit([*texts, "unk"])  # 'unk' is a training word: the mask word must still be unknown
    ids = encode_texts(words, masked)
    assert ids[0].tolist() == [words.ids["good"], UNKNOWN_ID, PAD_ID, PAD_ID]
    assert ids[1].tolist() == [UNKNOWN_ID, words.ids["food"], PAD_ID, PAD_ID]
    tokens = text_encoder(f"hf:{write_tiny_hf_model(tmp_path / 'bert')}", {"max_length": 6})
    tokens.fit(texts)
    unk = tokens.tokenizer.unk_token_id  # the tiny tokenizer has no mask token
    assert encode_texts(tokens, masked)[0].tolist()[:4] == [2, tokens.tokenizer.convert_tokens_to_ids("good"), unk, 3]
    tokens.tokenizer.add_special_tokens({"mask_token": "[MASK]"})
    assert encode_texts(tokens, masked)[1].tolist()[1] == tokens.tokenizer.mask_token_id
    tfidf = TfidfEncoder()
    tfidf.fit(texts)
    np.testing.assert_array_equal(encode_texts(tfidf, masked), tfidf.transform(["good", "food"]))  # no feature
    assert unmasked(masked, "[M]") == ["good [M]", "[M] food"]

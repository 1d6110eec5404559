"""The text students (protege.models.text_students) and their word ids (protege.data.text.WordIds): shapes,
padding that changes nothing, a hash that is the same in every process, a vocabulary of the training
texts only, and embeddings started from a Hugging Face model's rows."""

import json
import os
import subprocess
import sys

import pytest
import torch
from tests.conftest import write_tiny_hf_model

from protege.data.build import encode_examples, split_examples
from protege.data.text import PAD_ID, UNKNOWN_ID, WordIds
from protege.errors import DataError, ModelError
from protege.models import build_model, builtin_from_card, check_model_options
from protege.models.hf import input_embeddings, model_text_encoder, student_text_encoder
from protege.models.text_students import fasttext, ngram_buckets, set_embeddings, textcnn

TEXTS = ["the film was good", "awful food and a bad night", "Good, good... GOOD!"]


def _students(length: int = 10, classes: int = 3) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [
        fasttext((length,), classes, vocab_size=40, pad_id=0, dim=8, ngrams=3, buckets=50),
        textcnn((length,), classes, vocab_size=40, pad_id=0, dim=8, channels=4, kernel_sizes=[1, 2, 5]),
    ]


def _ids(length: int = 10) -> torch.Tensor:
    ids = torch.randint(1, 40, (5, length), generator=torch.Generator().manual_seed(1))
    for row, n in enumerate([10, 7, 3, 1, 0]):  # texts of 10 tokens down to none
        ids[row, n:] = PAD_ID
    return ids


@pytest.mark.parametrize("student", [0, 1], ids=["fasttext", "textcnn"])
def test_students_have_timms_interface_and_shapes(student):
    model = _students()[student].eval()
    features = model.forward_features(_ids())
    width = 8 if student == 0 else 4 * 3
    assert features.shape == (5, width) and model.head.in_features == width
    assert model(_ids()).shape == (5, 3)
    torch.testing.assert_close(model.forward_head(features), model(_ids()))
    assert model(_ids().float()).shape == (5, 3)  # generic probes feed floats shaped like the ids


@pytest.mark.parametrize("student", [0, 1], ids=["fasttext", "textcnn"])
def test_more_padding_changes_no_output(student):
    model = _students()[student].eval()
    short = _ids()
    longer = torch.cat([short, torch.full((5, 9), PAD_ID)], 1)
    with torch.no_grad():
        torch.testing.assert_close(model(longer), model(short), rtol=0, atol=1e-6)
        # the padding row's values play no part either
        model.embedding.weight[PAD_ID] = 5.0
        torch.testing.assert_close(model(longer), model(short), rtol=0, atol=1e-6)


def test_fasttext_averages_token_and_ngram_rows():
    model = fasttext((4,), 2, vocab_size=10, pad_id=0, dim=3, ngrams=2, buckets=7).eval()
    ids = torch.tensor([[4, 5, 6, 0]])
    grams, present = ngram_buckets(ids, ids != 0, 2, 7)
    assert present.tolist() == [[True, True, False]] and ((grams >= 0) & (grams < 7)).all()
    rows = torch.cat([ids[0, :3], grams[0, :2] + 10])
    expected = model.embedding.weight[rows].mean(0, keepdim=True)
    torch.testing.assert_close(model.forward_features(ids), expected)
    assert model.embedding.num_embeddings == 17
    assert fasttext((4,), 2, vocab_size=10, pad_id=0, ngrams=1).embedding.num_embeddings == 10


def test_ngrams_of_different_lengths_and_orders_fall_in_different_buckets():
    ids = torch.tensor([[4, 5, 4, 5, 5, 4]])
    bigrams, _ = ngram_buckets(ids, ids != 0, 2, 2**20)
    assert bigrams[0, 0] == bigrams[0, 2] and bigrams[0, 0] != bigrams[0, 1]  # (4, 5) twice, (5, 4) apart
    trigrams, _ = ngram_buckets(ids, ids != 0, 3, 2**20)
    assert trigrams[0, 0] != bigrams[0, 0]
    short = torch.tensor([[3]])
    assert ngram_buckets(short, short != 0, 2, 5)[0].shape == (1, 0)  # shorter than n: no n-gram


HASH_IN_A_NEW_PROCESS = """
import json, sys, torch
from protege.data.text import WordIds
from protege.models.text_students import ngram_buckets
encoder = WordIds(max_length=8)
texts = json.loads(sys.argv[1])
encoder.fit(texts)
ids = torch.as_tensor(encoder.transform(texts))
print(json.dumps([ids.tolist(), ngram_buckets(ids, ids != 0, 3, 1000)[0].tolist()]))
"""


def test_word_ids_and_ngram_buckets_are_the_same_in_another_process():
    encoder = WordIds(max_length=8)
    encoder.fit(TEXTS)
    ids = torch.as_tensor(encoder.transform(TEXTS))
    env = {"PYTHONHASHSEED": "123"}  # another string hash: nothing may depend on Python's hash()
    done = subprocess.run(
        [sys.executable, "-c", HASH_IN_A_NEW_PROCESS, json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    there_ids, there_buckets = json.loads(done.stdout)
    assert there_ids == ids.tolist()
    assert there_buckets == ngram_buckets(ids, ids != 0, 3, 1000)[0].tolist()


def test_word_ids_number_frequent_words_first_and_pad_to_max_length():
    encoder = WordIds(max_length=5, max_words=3)
    encoder.fit(TEXTS)
    assert list(encoder.ids) == ["good", "the", "film"]  # 4 times, then first seen among the once-seen
    assert encoder.transform(["GOOD film, unseen"]).tolist() == [[2, 4, UNKNOWN_ID, PAD_ID, PAD_ID]]
    assert encoder.transform(["good " * 9]).tolist() == [[2] * 5]  # cut at max_length
    rare = WordIds(min_count=2)
    rare.fit(TEXTS)
    assert list(rare.ids) == ["good"]
    stored = encoder.describe()["word_ids"]
    assert stored["vocab_size"] == 5 and stored["pad_id"] == PAD_ID and stored["max_length"] == 5
    again = WordIds.described(stored)
    again.fit(["other words entirely"])  # a saved vocabulary is fixed
    assert (
        again.transform(TEXTS).tolist() == encoder.transform(TEXTS).tolist() and again.describe() == encoder.describe()
    )
    assert again.key() != encoder.key() and WordIds(max_length=5, max_words=3).key() == encoder.key()
    with pytest.raises(DataError, match="gives no words"):
        WordIds().fit(["...", ""])


def test_the_vocabulary_holds_only_words_of_the_training_texts(tmp_path):
    lines = ["text,label"] + [f"shared w{i} more,{'ab'[i % 2]}" for i in range(40)]
    (tmp_path / "words.csv").write_text("\n".join(lines) + "\n")
    examples = split_examples(f"csv:{tmp_path / 'words.csv'}", {"text_column": "text"}, seed=0)
    view = encode_examples(examples, model_text_encoder("textcnn", {"max_length": 6}))
    training_words = {word for text in examples.splits.x for word in str(text).split()}
    words = view.preprocess["word_ids"]["words"]
    assert set(words) == training_words and view.train.x.dtype == torch.long
    assert view.input_shape == (6,)
    test_only = [str(t).split()[1] for t in examples.splits.x_test]
    assert test_only and not set(test_only) & set(words)
    assert (view.test.x[:, 1] == UNKNOWN_ID).all()  # each test text's own word is unknown to the student


def test_a_student_on_numeric_data_is_refused():
    with pytest.raises(DataError, match="digits gives numeric inputs, but fasttext reads text"):
        encode_examples(split_examples("digits"), model_text_encoder("fasttext", {}))
    with pytest.raises(ModelError, match="textcnn reads text"):
        build_model("textcnn", {}, (1, 8, 8), ["a", "b"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tokenizer": "bert-base-uncased"}, r"tokenizer must be a Hugging Face source, hf:<model id or folder>"),
        ({"tokenizer": "hf:"}, "tokenizer must be a Hugging Face source"),
        ({"tokenizer": "hf:x", "max_words": 10}, "max_words sets the student's own vocabulary"),
        ({"embeddings_from": "hf:x"}, "embeddings_from needs the student to read that model's token ids"),
        ({"buckets": 0}, "buckets: Input should be greater than or equal to 1"),
        ({"kernel_sizes": []}, "has no option 'kernel_sizes'"),
    ],
)
def test_text_options_that_cannot_work_are_refused(options, message):
    with pytest.raises(ModelError, match=message):
        check_model_options("fasttext", options)


def test_textcnn_options_include_the_text_ones():
    checked = check_model_options("textcnn", {"kernel_sizes": [2, 3], "max_length": "32", "min_count": 2})
    assert checked == {"kernel_sizes": [2, 3], "max_length": 32, "min_count": 2}
    with pytest.raises(ModelError, match="kernel_sizes"):
        check_model_options("textcnn", {"kernel_sizes": []})


def _shared_view(folder, **options):
    """The sentiment-like texts through the tiny hf tokenizer, as a student with ``tokenizer`` reads them."""
    encoder = student_text_encoder(tokenizer=f"hf:{folder}", max_length=12, **options)
    encoder.fit(TEXTS)
    return encoder.describe()


@pytest.mark.parametrize("student", ["fasttext", "textcnn"])
def test_embeddings_from_the_teacher_are_its_rows_id_for_id(tiny_hf, student):
    preprocess = _shared_view(tiny_hf)
    options = {"tokenizer": f"hf:{tiny_hf}", "embeddings_from": f"hf:{tiny_hf}", "dim": 16}
    built = build_model(student, options, (12,), ["a", "b"], preprocess)
    teacher = input_embeddings(f"hf:{tiny_hf}")
    rows = built.module.vocab_size
    assert rows == len(built.module.tokenizer) == teacher.shape[0]
    expected = teacher.clone()
    expected[built.module.pad_id] = 0.0
    torch.testing.assert_close(built.module.embedding.weight[:rows], expected)
    # rebuilt from its card, the architecture is the same and nothing is loaded from the hf folder
    again = builtin_from_card(built.card, "model.json")
    assert again.embedding.weight.shape == built.module.embedding.weight.shape


def test_wider_embeddings_are_projected_onto_their_principal_components(tiny_hf):
    model = textcnn((12,), 2, vocab_size=16, pad_id=0, dim=4)
    weights = input_embeddings(f"hf:{tiny_hf}")
    how = set_embeddings(model, weights, "teacher")
    assert how == "projected from 16 to 4 dimensions (PCA)"
    centred = weights.double() - weights.double().mean(0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    components = vh[:4] * torch.sign(vh[:4].gather(1, vh[:4].abs().argmax(1, keepdim=True)))
    expected = centred @ components.T
    assert torch.allclose(expected.pow(2).sum(0), singular[:4].pow(2))  # the top four directions' variance
    expected[0] = 0.0  # the padding row
    torch.testing.assert_close(model.embedding.weight.detach().double(), expected, rtol=1e-5, atol=1e-6)
    again = textcnn((12,), 2, vocab_size=16, pad_id=0, dim=4)
    set_embeddings(again, weights, "teacher")
    assert torch.equal(again.embedding.weight, model.embedding.weight)  # fixed: no random signs
    assert (model.embedding.weight[0] == 0).all()
    with pytest.raises(ModelError, match="narrower than the student's dim 32; set dim to at most 16"):
        set_embeddings(textcnn((12,), 2, vocab_size=16, pad_id=0, dim=32), weights, "teacher")
    with pytest.raises(ModelError, match="fewer than the student's 40 token ids"):
        set_embeddings(textcnn((12,), 2, vocab_size=40, pad_id=0, dim=4), weights, "teacher")


def test_embeddings_of_another_vocabulary_are_refused(tiny_hf, tmp_path):
    other = write_tiny_hf_model(tmp_path / "reversed", reverse=True)
    with pytest.raises(ModelError, match="has another vocabulary than the student's tokenizer"):
        student_text_encoder(tokenizer=f"hf:{tiny_hf}", embeddings_from=f"hf:{other}")
    same_words = write_tiny_hf_model(tmp_path / "same", hidden=8)  # same tokenizer, another encoder: allowed
    assert student_text_encoder(tokenizer=f"hf:{tiny_hf}", embeddings_from=f"hf:{same_words}") is not None

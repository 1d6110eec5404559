"""Transfer sets of texts (protege.data.transfer, protege.data.unlabeled): a file of texts, a table's text
column, texts derived from the training texts, each kept raw and encoded by every view in one order."""

import json

import pytest
import torch

from protege.data.build import load_data, split_examples
from protege.data.text_augment import MASK
from protege.data.transfer import build_transfer_set
from protege.data.unlabeled import read_text_lines, unlabeled_texts
from protege.data.views import Views
from protege.errors import DataError
from protege.models.hf import model_text_encoder

MORE = ["the food was great", "awful film", "quite good", "very poor food", "the film was fine"]


def _views(csv) -> Views:
    return Views(split_examples(f"csv:{csv}", {"text_column": "text"}, seed=0), model_text_encoder)


def test_a_file_of_n_texts_gives_n_unlabeled_examples_and_a_limit_stops_reading(tmp_path):
    path = tmp_path / "more.txt"
    path.write_text("\n".join(MORE) + "\n", encoding="utf-8")
    assert unlabeled_texts(f"texts:{path}", {}) == MORE
    path.write_text("\ufeff" + "\r\n".join(MORE[:2]) + "\r\n\r\n  \n" + "  ".join(["", MORE[2], ""]) + "\n")
    assert read_text_lines(path) == MORE[:3]  # a byte-order mark, Windows line ends, blank lines and spaces dropped
    path.write_bytes("\n".join(MORE).encode() + b"\n\xff\xfe not UTF-8\n")
    assert read_text_lines(path, limit=3) == MORE[:3]  # read no further than the limit
    with pytest.raises(DataError, match=r"more.txt: line 6 is not UTF-8 \(invalid start byte\)"):
        read_text_lines(path)


def test_a_tables_text_column_needs_no_label_and_a_missing_column_is_one_line(tmp_path):
    (tmp_path / "more.jsonl").write_text("\n".join(json.dumps({"body": t, "id": i}) for i, t in enumerate(MORE)))
    assert unlabeled_texts(f"jsonl:{tmp_path / 'more.jsonl'}", {"text_column": "body"}) == MORE
    assert unlabeled_texts(f"jsonl:{tmp_path / 'more.jsonl'}", {}, limit=2, text_column="body") == MORE[:2]
    (tmp_path / "more.csv").write_text("id,body\n" + "".join(f"{i},{t}\n" for i, t in enumerate(MORE)))
    assert unlabeled_texts(f"csv:{tmp_path / 'more.csv'}", {"text_column": "body"}) == MORE
    missing = r"more.csv: no text column 'bdy' \(did you mean \"body\"\?\); columns: id, body"
    with pytest.raises(DataError, match=missing):
        unlabeled_texts(f"csv:{tmp_path / 'more.csv'}", {"text_column": "bdy"})
    with pytest.raises(DataError, match="data source 'csv' has no option 'text_colum'"):
        unlabeled_texts(f"csv:{tmp_path / 'more.csv'}", {"text_colum": "body"})


def test_the_transfer_texts_reach_every_view_as_the_same_examples_in_the_same_order(tiny_hf, sentiment_csv, tmp_path):
    (tmp_path / "more.txt").write_text("\n".join(MORE) + "\n")
    views = _views(sentiment_csv)
    tokens = views.for_model(f"hf:{tiny_hf}", {"max_length": 12})
    words = views.for_model("fasttext", {"max_length": 16})
    tfidf = views.for_model("mlp", {})
    transfer = build_transfer_set(f"texts:{tmp_path / 'more.txt'}", {}, words, seed=0)
    assert transfer.texts == MORE and len(transfer) == 5
    for view in (tokens, words, tfidf):
        encoded = transfer.for_data(view)
        assert encoded is transfer.for_data(view)  # encoded once per encoder
        expected = torch.as_tensor(view.text_encoder.transform(MORE))
        assert torch.equal(encoded.x, expected) and not encoded.labeled.any()
        assert encoded.x.shape[1:] == view.train.x.shape[1:]
    assert transfer.for_data(words).x.dtype == torch.long and transfer.for_data(tfidf).x.is_floating_point()


def test_texts_derived_from_the_training_texts_are_seeded_and_encoded_per_view(tiny_hf, sentiment_csv):
    views = _views(sentiment_csv)
    tokens, words = views.for_model(f"hf:{tiny_hf}", {"max_length": 16}), views.for_model("fasttext", {})
    options = {"num_samples": 40, "probability": 0.3}
    masked = build_transfer_set("word_mask", options, words, seed=1)
    assert masked.texts == build_transfer_set("word_mask", options, tokens, seed=1).texts  # the raw texts, any view
    assert masked.texts != build_transfer_set("word_mask", options, words, seed=2).texts
    training = {word for text in words.texts for word in str(text).split()}
    assert all(set(text.split()) <= training | {MASK} for text in masked.texts)
    unknown = tokens.text_encoder.tokenizer.unk_token_id
    hidden = sum(text.count(MASK) for text in masked.texts)
    assert hidden > 0 and int((masked.for_data(tokens).x == unknown).sum()) == hidden  # a masked word: [UNK]
    assert int((masked.for_data(words).x == 1).sum()) == hidden  # and the student's unknown id
    assert len(build_transfer_set("span_mix", {"num_samples": 40}, words, seed=0, limit=7)) == 7


def test_a_text_augmentation_of_numeric_data_is_refused_in_one_line():
    with pytest.raises(DataError, match="transfer set 'span_mix' makes new texts of the training texts' words, and "
                       "digits gives numeric inputs; use mixup for numbers, or a text source"):  # fmt: skip
        build_transfer_set("span_mix", {}, load_data("digits"), seed=0)


def test_the_readme_gives_each_text_augmentations_own_defaults():
    import inspect
    import re
    from pathlib import Path

    from protege.data.transfer import DERIVED, FROM_TEXTS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for name in FROM_TEXTS:
        row = re.search(rf"^\| `{name}` \|.*\| (.*) \|$", readme, flags=re.MULTILINE)
        assert row is not None, f"README has no row for {name}"
        documented = {option: value.split(";")[0] for option, value in re.findall(r"`(\w+)` \(([^)]*)\)", row[1])}
        parameters = inspect.signature(DERIVED.get(name)).parameters
        defaults = {option: p.default for option, p in parameters.items() if option not in ("texts", "seed")}
        assert {option: float(value.replace(",", "")) for option, value in documented.items()} == defaults

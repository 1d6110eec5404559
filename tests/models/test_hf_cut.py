"""hf: students cut from the pretrained model: its architecture with fewer or narrower layers, started from
exactly its weights where the shapes fit, and saying in one log line which tensors started fresh."""

import shutil
from pathlib import Path

import pytest
import torch
from tests.conftest import write_tiny_hf_model
from tests.hf_files import sentiment_data, write_tiny_distilbert

import protege.models.hf as hf
from protege.errors import ModelError
from protege.models import build_model, save_model
from protege.models.hf_cut import source_layers


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    """A 4-layer tiny BERT (hidden 16, 2 heads) and the sentiment texts in its tokenizer's ids."""
    tmp = tmp_path_factory.mktemp("deep")
    folder = write_tiny_hf_model(tmp / "deep-bert", layers=4)
    return folder, sentiment_data(tmp, folder)


def _cut(folder, data, logged=None, monkeypatch=None, **options):
    if monkeypatch is not None:
        monkeypatch.setattr(hf, "log", logged.append)
    return build_model(
        f"hf:{folder}", {"max_length": 12, **options}, data.input_shape, data.class_names, data.preprocess
    )


def _teacher(folder):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(folder)).state_dict()


def _layer(state: dict, index: int) -> dict:
    prefix = f"encoder.layer.{index}."
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def _assert_layers_taken(student, teacher: dict, layers: list[int]) -> None:
    own = student.backbone.state_dict()
    for i, j in enumerate(layers):
        taken, source = _layer(own, i), _layer(teacher, j)
        assert taken.keys() == source.keys() and taken
        for name in taken:
            torch.testing.assert_close(taken[name], source[name], rtol=0, atol=0)
    for name in [k for k in own if k.startswith("embeddings.")]:
        torch.testing.assert_close(own[name], teacher[name], rtol=0, atol=0)


def test_fewer_layers_take_one_in_two_of_the_pretrained_layers_as_distilbert(deep, monkeypatch):
    folder, data = deep
    logged: list[str] = []
    built = _cut(folder, data, logged, monkeypatch, num_hidden_layers=2)
    assert built.module.backbone.config.num_hidden_layers == 2 and len(built.module.backbone.encoder.layer) == 2
    _assert_layers_taken(built.module, _teacher(folder), [0, 2])
    assert built.card.options == {"max_length": 12, "num_hidden_layers": 2, "layers_from": [0, 2]}
    assert logged == [
        f"hf:{folder}: cut (num_hidden_layers 4→2), layers from pretrained layers 0, 2; copied every tensor (37)"
    ]


def test_named_layers_are_taken_in_the_order_given(deep, monkeypatch):
    folder, data = deep
    logged: list[str] = []
    built = _cut(folder, data, logged, monkeypatch, layers_from=[3, 0, 1])
    assert built.module.backbone.config.num_hidden_layers == 3  # one layer per name
    _assert_layers_taken(built.module, _teacher(folder), [3, 0, 1])
    assert built.card.options["layers_from"] == [3, 0, 1] and "layers 3, 0, 1" in logged[0]


def test_the_default_spreads_the_layers_taken_over_the_pretrained_ones():
    assert source_layers(12, 6, None, "m") == [0, 2, 4, 6, 8, 10]
    assert source_layers(6, 3, None, "m") == [0, 2, 4]
    assert source_layers(12, 4, None, "m") == [0, 3, 6, 9]
    assert source_layers(6, 4, None, "m") == [0, 1, 2, 3]
    assert source_layers(4, 4, None, "m") == [0, 1, 2, 3]
    assert source_layers(2, 4, [1, 1, 0, 0], "m") == [1, 1, 0, 0]  # named layers may repeat to grow a model
    with pytest.raises(ModelError, match="num_hidden_layers 5 is more than the 4 pretrained layers; name the layer"):
        source_layers(4, 5, None, "m")


def test_a_narrower_model_starts_fresh_and_the_log_says_so(deep, monkeypatch):
    folder, data = deep
    logged: list[str] = []
    built = _cut(folder, data, logged, monkeypatch, num_hidden_layers=2, hidden_size=8)
    teacher = _teacher(folder)
    own = built.module.backbone.state_dict()
    assert all(own[k].shape != teacher[k].shape for k in own if k.endswith(".weight"))  # no module fits
    fresh = _cut(folder, data, num_hidden_layers=2, hidden_size=8, pretrained=False)
    assert fresh.card.options == {"max_length": 12, "num_hidden_layers": 2, "hidden_size": 8, "pretrained": False}
    assert logged == [
        f"hf:{folder}: cut (num_hidden_layers 4→2, hidden_size 16→8), layers from pretrained layers 0, 2; "
        "every tensor (37) started fresh, as their shapes differ"
    ]


def test_a_narrower_feed_forward_keeps_the_attention_and_names_what_started_fresh(deep, monkeypatch):
    folder, data = deep
    logged: list[str] = []
    built = _cut(folder, data, logged, monkeypatch, num_hidden_layers=2, intermediate_size=8)
    teacher, own = _teacher(folder), built.module.backbone.state_dict()
    for i, j in enumerate([0, 2]):
        for name, value in _layer(own, i).items():
            source = _layer(teacher, j)[name]
            if name.startswith(("intermediate.", "output.dense.")):
                assert name.endswith(".bias") or value.shape != source.shape  # fresh, never a slice
            else:
                torch.testing.assert_close(value, source, rtol=0, atol=0)
    assert logged == [
        f"hf:{folder}: cut (num_hidden_layers 4→2, intermediate_size 32→8), layers from pretrained layers 0, 2; "
        "copied 29 tensors (embeddings, encoder.layer.*.attention, encoder.layer.*.output.LayerNorm); "
        "8 started fresh, as their shapes differ (encoder.layer.*.intermediate, encoder.layer.*.output.dense)"
    ]


def test_more_heads_of_the_same_width_keep_every_weight(deep, monkeypatch):
    folder, data = deep
    built = _cut(folder, data, [], monkeypatch, num_attention_heads=4)
    assert built.module.backbone.config.num_attention_heads == 4
    _assert_layers_taken(built.module, _teacher(folder), [0, 1, 2, 3])


def test_a_distilbert_is_cut_through_its_own_config_names(tmp_path, monkeypatch):
    folder = write_tiny_distilbert(tmp_path / "distil")
    data = sentiment_data(tmp_path, folder)
    built = _cut(folder, data, [], monkeypatch, num_hidden_layers=1)
    assert built.module.backbone.config.n_layers == 1
    teacher, own = _teacher(folder), built.module.backbone.state_dict()
    assert {k for k in own} == {k for k in teacher if not k.startswith("transformer.layer.1.")}
    assert all(torch.equal(own[k], teacher[k]) for k in own)
    with pytest.raises(ModelError, match="its distilbert config has no intermediate_size; leave intermediate_size out"):
        _cut(folder, data, intermediate_size=8)


def test_a_saved_cut_model_rebuilds_from_its_own_folder(deep, tmp_path, monkeypatch):
    pretrained, data = deep
    folder = Path(shutil.copytree(pretrained, tmp_path / "pretrained"))
    built = _cut(folder, data, [], monkeypatch, layers_from=[1, 3], intermediate_size=24)
    save_model(built.module, built.card, tmp_path / "model")
    shutil.rmtree(folder)
    loaded = build_model(f"run:{tmp_path / 'model'}", {}, data.input_shape, data.class_names)
    config = loaded.module.backbone.config
    assert config.num_hidden_layers == 2 and config.intermediate_size == 24
    x = data.test.x
    torch.testing.assert_close(loaded.module.eval()(x), built.module.eval()(x), rtol=0, atol=0)

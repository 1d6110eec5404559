"""Which encoder a model's view of the examples is made with (protege.data.views): an image model's input
images (protege.models.image_inputs), a text model's tokenizer or word ids (protege.models.hf), or None."""

from __future__ import annotations

from pathlib import Path

from protege.errors import ModelError
from protege.models.hf import model_text_encoder
from protege.models.image_inputs import ModelInput, model_input_of


def view_encoder(source: str, options: dict):
    """What a model's view of the examples is encoded with (protege.data.views): its input images for an
    image model that asks for them, else its text encoder (a tokenizer, word ids) or None (the default)."""
    return model_input_of(source, options) or model_text_encoder(source, options)


def shared_model_input(models: list[tuple[str, str, dict]]) -> ModelInput | None:
    """The one view of the images that the stages' models (``(stage, source, options)``) ask for, where the
    stages must share one view; models asking for different sizes or crops are refused."""
    asked = [(stage, source, model_input_of(source, options)) for stage, source, options in models]
    asked = [entry for entry in asked if entry[2] is not None]
    for stage, source, view in asked[1:]:
        first_stage, first_source, first = asked[0]
        if view.key() != first.key():
            raise ModelError(
                f"{first_stage} {first_source} reads {first.describe()} and {stage} {source} "
                f"{view.describe()}, and this recipe's stages read one view of the images; give both the same "
                "model.options.preprocess size, interpolation and crop_pct"
            )
    return asked[0][2] if asked else None


def saved_model_encoder(model_dir: Path, trust_remote_code: bool = False):
    """How a saved model read the examples: the input images its card records (protege.models.image_inputs),
    or its saved tokenizer at the length it was trained with (:func:`model_text_encoder`), or None."""
    options = {"trust_remote_code": True} if trust_remote_code is True else {}
    return view_encoder(f"run:{model_dir}", options)

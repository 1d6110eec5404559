"""Property-based checks: random recipes, ``--set`` values, data files (CSV, JSON Lines, npz, images),
tampered model cards and prediction inputs never end in a traceback.

Every input either passes (exit 0) or is refused with one ``protege: error:`` line (exit 2). Runs use
``--dry-run`` where they can, which validates, loads the data and builds the models without training.

The number of examples comes from a hypothesis profile: ``ci`` (the default, a few dozen per target,
so the suite stays fast) or ``fuzz`` (1,000 per target: ``HYPOTHESIS_PROFILE=fuzz``, ``make fuzz``).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protege.cli import main
from protege.models import ModelCard, save_model
from protege.models.builtin import mlp

COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=25, **COMMON)
settings.register_profile("fuzz", max_examples=1000, **COMMON)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
"""Applied to each test below (not loaded globally, so other suites keep their own settings)."""

FIELDS = ["name", "seed", "data", "teacher", "student", "transfer", "evaluate", "source", "options", "model"]
FIELDS += ["train", "objective", "epochs", "lr", "batch_size", "hidden", "temperature", "alpha", "weight"]
SOURCES = ["digits", "mlp", "cnn1d", "cnn2d", "kd", "ce", "fitnet", "mixup", "csv:missing.csv", "run:nowhere"]
SIZES = [-(2**63), -3, -1, 0, 1, 2, 3, 8, 65537, 10**6, 10**12, 2**63]
"""Sizes a tampered file or a typo may hold: negative, zero, tiny, and far beyond any limit."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.sampled_from(SIZES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SOURCES),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
student = st.fixed_dictionaries(
    {"model": st.fixed_dictionaries({"source": st.sampled_from(SOURCES)}, optional={"hidden": values})},
    optional={"train": st.one_of(st.none(), st.dictionaries(st.sampled_from(FIELDS), values, max_size=3)), "x": values},
)
recipes = st.one_of(
    values,
    st.fixed_dictionaries(
        {"data": st.fixed_dictionaries({"source": st.sampled_from(SOURCES)}, optional={"options": values})},
        optional={"student": student, "teacher": student, "seed": values, "evaluate": values},
    ),
)
BASE = {
    "data": {"source": "digits", "val_fraction": 0.0},
    "student": {"model": {"source": "mlp", "hidden": 4}, "train": {"epochs": 1}},
}


def _exit_code(argv: list[str], capsys) -> int:
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("protege: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    event(f"{argv[0]}: exit {code}")  # the statistics of `make fuzz` show how many inputs passed
    return code


def _dry_run(folder: Path, recipe: dict, capsys, *extra: str) -> int:
    path = folder / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    return _exit_code(["run", str(path), "--dry-run", *extra], capsys)


@PROFILE
@given(raw=recipes)
def test_random_recipes_never_end_in_a_traceback(raw, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True))
        _exit_code(["run", str(path), "--dry-run"], capsys)


KEYS = [
    "seed",
    "name",
    "data.source",
    "data.options.num_samples",
    "data.val_fraction",
    "student.model.hidden",
    "student.model.layers",
    "student.model.source",
    "student.train.epochs",
    "student.train.lr",
    "student.objective.name",
    "student.objective.temperature",
    "student.objective.label_smoothing",
    "evaluate.latency_batch_sizes",
    "transfer.source",
]
yaml_texts = st.one_of(
    st.integers(1, 64).map(str),  # plausible values of most KEYS
    st.floats(0.01, 0.99).map(repr),
    st.text(max_size=12),
    st.text(alphabet="[]{}:,'\"!&*#|>@%-? \n\t0123456789.eE+", max_size=12),
    values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()),
    st.sampled_from(["!!binary aGVsbG8=", "!!python/object:os.system", "2020-01-01", "1e400", ".nan", "~", "0x1F"]),
)


@PROFILE
@given(pairs=st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=8), yaml_texts), min_size=1, max_size=3))
def test_random_set_values_never_end_in_a_traceback(pairs, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        # --set=PAIR: argparse reads a separate value that starts with '-' as another option (its usage error)
        overrides = [f"--set={key}={value}" for key, value in pairs]
        _dry_run(Path(tmp), BASE, capsys, *overrides)


cells = st.one_of(st.text(max_size=6), st.floats(allow_nan=True).map(str), st.integers(-3, 3).map(str))
rows = st.lists(st.lists(cells, min_size=0, max_size=4), min_size=0, max_size=8)


@PROFILE
@given(
    header=st.lists(st.sampled_from(["label", "a", "b", "text", "split", ""]), max_size=4),
    body=rows,
    raw_bytes=st.one_of(st.none(), st.binary(max_size=40)),
    options=st.fixed_dictionaries(
        {}, optional={"text_column": st.sampled_from(["text", "a"]), "split_column": st.just("split")}
    ),
)
def test_random_malformed_csv_files_never_end_in_a_traceback(header, body, raw_bytes, options, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        if raw_bytes is not None:
            data.write_bytes(raw_bytes)
        else:
            data.write_text("\n".join(",".join(row) for row in [header, *body]) + "\n")
        recipe = {
            "data": {"source": f"csv:{data}", "options": options, "val_fraction": 0.0},
            "student": {"model": {"source": "mlp", "hidden": 4}, "train": {"epochs": 1}},
        }
        _dry_run(Path(tmp), recipe, capsys)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([10**400, -(10**40), 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["a", "b", "x y", "", "train", "test", "val"]),
    st.text(max_size=5),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
json_rows = st.dictionaries(st.sampled_from(["label", "a", "b", "text", "split"]), json_values, max_size=5)
numbers = st.floats(-9, 9) | st.integers(-9, 9)
plausible_rows = st.fixed_dictionaries({"label": st.sampled_from(["a", "b"]), "a": numbers}, optional={"b": numbers})
json_lines = st.one_of(
    plausible_rows.map(json.dumps),
    json_rows.map(json.dumps),
    json_values.map(json.dumps),
    st.sampled_from(['{"a": 1e400, "label": "x"}', '{"a": NaN, "label": "y"}', "", "{", "[" * 3000 + "]" * 3000]),
    st.binary(max_size=12).map(lambda b: b.decode("latin-1")),
)


@PROFILE
@given(
    lines=st.lists(plausible_rows.map(json.dumps), min_size=8, max_size=24) | st.lists(json_lines, max_size=12),
    odd=st.lists(json_lines, max_size=1),
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]),
    options=st.fixed_dictionaries(
        {}, optional={"text_column": st.sampled_from(["text", "a"]), "split_column": st.just("split")}
    ),
)
def test_random_json_lines_files_never_end_in_a_traceback(lines, odd, encoding, options, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.jsonl"
        data.write_bytes("\n".join(lines + odd).encode(encoding, errors="replace"))
        recipe = {**BASE, "data": {"source": f"jsonl:{data}", "options": options, "val_fraction": 0.0}}
        _dry_run(Path(tmp), recipe, capsys)


DTYPES = [np.float64, np.float32, np.float16, np.int64, np.uint8, np.bool_, np.complex64, "U2", "M8[D]"]


@st.composite
def arrays_for(draw, rows: int) -> np.ndarray:
    """An array of ``rows`` examples (mostly), of any rank and dtype, values up to the float64 extremes."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(
        st.one_of(
            hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
            st.lists(st.integers(0, 4), max_size=3).map(lambda rest: (rows, *rest)),
        )
    )
    if dtype == np.float64:
        extremes = st.floats() | st.sampled_from([1e300, -1e300, 3e39, 1e-320])
        return draw(hnp.arrays(dtype, shape, elements=extremes))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def plausible_inputs(draw, rows: int) -> np.ndarray:
    """Inputs a model could take: (rows, 1 to 3 axes) of small numbers."""
    shape = (rows, *draw(st.lists(st.integers(1, 4), min_size=1, max_size=3) | st.just([1, 8, 8])))  # or digits
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8]))
    return draw(hnp.arrays(dtype, shape, elements=st.integers(0, 9))).astype(dtype)


@st.composite
def npz_contents(draw) -> dict[str, np.ndarray]:
    """The arrays of an npz data source: half of the time plausible, the rest of any rank and dtype."""
    if draw(st.booleans()):  # inputs and labels a model could train on
        rows = draw(st.integers(8, 24))
        contents = {"x": draw(plausible_inputs(rows)), "y": np.arange(rows) % draw(st.integers(2, 4))}
    else:
        rows = draw(st.integers(0, 24))
        labels = hnp.arrays(np.int64, st.just((rows,)), elements=st.integers(0, 3)) | arrays_for(rows)
        contents = {"x": draw(arrays_for(rows)), "y": draw(labels)}
    if draw(st.integers(0, 9)) == 0 and contents["x"].dtype == np.float64 and contents["x"].size:
        contents["x"].flat[0] = draw(st.sampled_from([1e300, -3e39, np.nan, np.inf]))
    extra = st.lists(st.sampled_from(["x_val", "y_val", "x_test", "y_test", "class_names", "z"]), max_size=3)
    for key in draw(st.just([]) | extra):
        contents[key] = draw(arrays_for(draw(st.integers(0, 6))))
    if draw(st.integers(0, 9)) == 0:
        del contents[draw(st.sampled_from(["x", "y"]))]
    return contents


@PROFILE
@given(contents=npz_contents(), transfer=st.booleans())
def test_random_npz_arrays_never_end_in_a_traceback(contents, transfer, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(data, **contents)
        if transfer:  # the same arrays as a transfer set for digits
            teacher = {"model": {"source": "mlp", "hidden": 4}, "train": {"epochs": 1}}
            student = {**BASE["student"], "objective": {"name": "kd"}}
            recipe = {**BASE, "teacher": teacher, "student": student, "transfer": {"source": f"npz:{data}"}}
        else:
            recipe = {**BASE, "data": {"source": f"npz:{data}", "val_fraction": 0.0}}
        _dry_run(Path(tmp), recipe, capsys)


IMAGE_FORMATS = ["PNG", "BMP", "GIF", "TIFF", "JPEG", "WEBP"]
IMAGE_MODES = ["L", "RGB", "RGBA", "P", "1", "I", "F", "LA", "CMYK"]


@st.composite
def image_bytes(draw) -> bytes:
    """A small image in some format and mode, then (often) damaged: bytes flipped, cut short, or replaced."""
    from PIL import Image

    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    mode, format = draw(st.sampled_from(IMAGE_MODES)), draw(st.sampled_from(IMAGE_FORMATS))
    buffer = io.BytesIO()
    try:
        Image.new(mode, size, draw(st.integers(0, 255))).save(buffer, format)
    except (OSError, ValueError, KeyError):  # a format that cannot hold the mode
        Image.new("L", size).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.none() | st.integers(0, len(data)))
    return draw(st.just(bytes(data[:cut])) | st.binary(max_size=30)) if draw(st.booleans()) else bytes(data[:cut])


@PROFILE
@given(
    odd=image_bytes(),
    suffix=st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".tif", ".webp"]),
    options=st.fixed_dictionaries(
        {},
        optional={
            "size": st.lists(st.sampled_from([-1, 0, 1, 4, 9000]), min_size=1, max_size=3),
            "mode": st.sampled_from(["L", "RGB", "RGBA", "P", "CMYK"]),
        },
    ),
)
def test_random_image_files_never_end_in_a_traceback(odd, suffix, options, capsys):
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        for label in ("a", "b"):
            (root / label).mkdir(parents=True)
            for i in range(2):
                Image.new("L", (4, 4), 80 * i).save(root / label / f"{i}.png")
        (root / "b" / f"odd{suffix}").write_bytes(odd)
        recipe = {**BASE, "data": {"source": f"imagefolder:{root}", "options": options, "val_fraction": 0.0}}
        _dry_run(Path(tmp), recipe, capsys)
        image_model = _saved_models()["image"]
        _exit_code(["predict", str(image_model), str(root / "b" / f"odd{suffix}")], capsys)


_MODELS: dict[str, Path] = {}


def _saved_models() -> dict[str, Path]:
    """A digits-shaped MLP, an image MLP and the digits MLP exported as safetensors, made once per session."""
    if not _MODELS:
        import atexit
        import shutil

        from protege.export import export_model

        root = Path(tempfile.mkdtemp(prefix="protege-fuzz-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        names = [str(i) for i in range(10)]
        standardize = {"standardize": {"mean": [0.0] * 64, "std": [1.0] * 64}}
        card = ModelCard("mlp", {"hidden": 4}, [1, 8, 8], names, standardize)
        _MODELS["digits"] = save_model(mlp((1, 8, 8), 10, hidden=4), card, root / "digits" / "model")
        image = ModelCard("mlp", {"hidden": 4}, [1, 4, 4], ["a", "b"], {"image": {"size": [4, 4], "mode": "L"}})
        _MODELS["image"] = save_model(mlp((1, 4, 4), 2, hidden=4), image, root / "image" / "model")
        _MODELS["exported"] = export_model(_MODELS["digits"], "safetensors", output=root / "digits.safetensors").path
    return _MODELS


CARD_KEYS = ["architecture", "options", "input_shape", "class_names", "preprocess", "metrics", "format", "version"]
NESTED = {
    "options": ["hidden", "layers", "residual", "dropout", "width", "depth", "blocks"],
    "preprocess": ["features", "standardize", "image", "tfidf", "tokenizer", "text_column", "future_step"],
    "metrics": ["teacher_mode", "val_accuracy", "epochs"],
}
card_values = st.one_of(
    values,
    st.lists(st.sampled_from(SIZES), max_size=4),
    st.sampled_from(["mlp", "cnn1d", "cnn2d", "resnet", "ensemble", "timm:nope", "torchvision:nope", "hf:nope"]),
    st.fixed_dictionaries({"mean": st.lists(st.floats(), max_size=3), "std": st.lists(st.floats(), max_size=3)}),
    st.fixed_dictionaries({"size": st.lists(st.sampled_from(SIZES), max_size=3), "mode": st.sampled_from(["L", "X"])}),
    st.fixed_dictionaries(
        {
            "vocabulary": st.dictionaries(st.text(max_size=3), st.integers(-2, 70), max_size=3),
            "idf": st.lists(st.floats(), max_size=3),
        }
    ),
)


@st.composite
def tampered_cards(draw, card: dict) -> str:
    """The JSON text of ``card`` after a few edits: fields replaced, deleted or added, nested options and
    preprocessing steps changed; sometimes the text itself damaged."""
    card = json.loads(json.dumps(card))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(CARD_KEYS) | st.text(max_size=4))
        if key in NESTED and isinstance(card.get(key), dict) and draw(st.booleans()):
            inner = draw(st.sampled_from(NESTED[key]) | st.text(max_size=4))
            card[key][inner] = draw(st.sampled_from(SIZES) | card_values)
        elif draw(st.integers(0, 4)) == 0:
            card.pop(key, None)
        else:
            card[key] = draw(card_values)
    text = json.dumps(card)
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=3)) + text[cut + 1 :]
    return text


COMMANDS = ["predict", "export", "evaluate", "teacher"]


def _card_command(command: str, model_dir: Path, folder: Path) -> list[str]:
    if command == "predict":
        np.save(folder / "x.npy", np.zeros((2, 64), dtype=np.float32))
        return ["predict", str(model_dir), str(folder / "x.npy")]
    if command == "export":
        return ["export", str(model_dir), "-f", "safetensors", "-o", str(folder / "out.safetensors")]
    if command == "evaluate":
        return ["evaluate", str(model_dir), "--data", "digits", "--no-latency", "--no-html"]
    recipe = {**BASE, "teacher": {"model": {"source": f"run:{model_dir}"}}}
    recipe["student"] = {**BASE["student"], "objective": {"name": "kd"}}
    (folder / "r.yaml").write_text(yaml.safe_dump(recipe))
    return ["run", str(folder / "r.yaml"), "--dry-run"]


@PROFILE
@given(data=st.data(), command=st.sampled_from(COMMANDS))
def test_tampered_model_cards_never_end_in_a_traceback(data, command, capsys):
    import shutil

    original = _saved_models()["digits"]
    card = json.loads((original / "model.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        shutil.copytree(original, model_dir)
        (model_dir / "model.json").write_text(data.draw(tampered_cards(card)))
        _exit_code(_card_command(command, model_dir, Path(tmp)), capsys)


@PROFILE
@given(data=st.data())
def test_tampered_cards_in_exported_files_never_end_in_a_traceback(data, capsys):
    from safetensors.torch import load_file, save_file

    exported = _saved_models()["exported"]
    card = _header_card(exported)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file(load_file(str(exported)), str(path), metadata={"protege": data.draw(tampered_cards(card))})
        np.save(Path(tmp) / "x.npy", np.zeros((3, 1, 8, 8), dtype=np.float32))
        _exit_code(["predict", str(path), str(Path(tmp) / "x.npy")], capsys)


def _header_card(path: Path) -> dict:
    """The card in an exported safetensors file's header (8 bytes of length, then JSON)."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    return json.loads(json.loads(raw[8 : 8 + length])["__metadata__"]["protege"])


@st.composite
def prediction_files(draw) -> tuple[str, bytes]:
    """An input file for predict: an array of any rank and dtype, a CSV or text file, or damaged bytes."""
    kind = draw(st.sampled_from([".npy", ".npz", ".csv", ".txt", ".npy-bytes"]))
    if kind in (".npy", ".npz"):
        array = draw(arrays_for(draw(st.integers(0, 5))) | hnp.arrays(np.float64, st.just((2, 1, 8, 8))))
        buffer = io.BytesIO()
        if kind == ".npy":
            np.save(buffer, array)
        else:
            np.savez(buffer, **{draw(st.sampled_from(["x", "y", "a"])): array})
        return kind, buffer.getvalue()
    if kind == ".csv":
        header = draw(st.lists(st.sampled_from(["text", "a", "b", "label"]), max_size=3))
        body = draw(rows)
        return kind, ("\n".join(",".join(row) for row in [header, *body]) + "\n").encode()
    if kind == ".txt":
        return kind, draw(st.text(max_size=30)).encode(draw(st.sampled_from(["utf-8", "utf-16"])))
    return ".npy", b"\x93NUMPY" + draw(st.binary(max_size=40))


@PROFILE
@given(file=prediction_files(), top_k=st.sampled_from([-1, 0, 1, 3, 10**6]))
def test_random_prediction_inputs_never_end_in_a_traceback(file, top_k, capsys):
    suffix, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"inputs{suffix}"
        path.write_bytes(data)
        _exit_code(["predict", str(_saved_models()["digits"]), str(path), "--top-k", str(top_k)], capsys)

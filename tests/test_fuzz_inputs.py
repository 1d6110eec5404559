"""Property-based checks: random recipes and random malformed CSV files never end in a traceback.

Every input either passes (exit 0) or is refused with one ``protege: error:`` line (exit 2). The CLI
runs with ``--dry-run``, which validates, loads the data and builds the models without training.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protege.cli import main

FIELDS = ["name", "seed", "data", "teacher", "student", "transfer", "evaluate", "source", "options", "model"]
FIELDS += ["train", "objective", "epochs", "lr", "batch_size", "hidden", "temperature", "alpha", "weight"]
SOURCES = ["digits", "mlp", "cnn1d", "cnn2d", "kd", "ce", "fitnet", "mixup", "csv:missing.csv", "run:nowhere"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
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


def _exit_code(argv: list[str], capsys) -> int:
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("protege: error: ") and "Traceback" not in err, err
    return code


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=recipes)
def test_random_recipes_never_end_in_a_traceback(raw, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True))
        _exit_code(["run", str(path), "--dry-run"], capsys)


cells = st.one_of(st.text(max_size=6), st.floats(allow_nan=True).map(str), st.integers(-3, 3).map(str))
rows = st.lists(st.lists(cells, min_size=0, max_size=4), min_size=0, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
        path = Path(tmp) / "r.yaml"
        path.write_text(yaml.safe_dump(recipe))
        _exit_code(["run", str(path), "--dry-run"], capsys)

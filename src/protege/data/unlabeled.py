"""Unlabeled texts for a transfer set, kept raw so that each model's view encodes them its own way: a
file of texts, one per line (``texts:path``), a CSV or JSON Lines file's or a Hugging Face dataset's text
column (no label column needed), or the inputs of any text source (``bbc_news``, a labelled CSV)."""

from __future__ import annotations

from pathlib import Path

from protege.data.raw import SOURCES, call_source
from protege.data.sources import read_csv_rows, read_jsonl_rows
from protege.errors import DataError, did_you_mean
from protege.options import check_options

TEXT_FILE = "texts"
"""The source kind of a file of texts, one per line (``texts:path``): a transfer set only, as it has no labels."""


def unlabeled_texts(source: str, options: dict, limit: int | None = None, text_column: str | None = None) -> list[str]:
    """The raw texts of a transfer ``source``, the first ``limit`` of them: a file's lines, a table's text
    column (``options.text_column``, else the labelled data's ``text_column``, else ``text``), or the
    inputs of every split of a text source."""
    kind, _, argument = source.partition(":")
    if kind == TEXT_FILE:
        check_options(f"transfer set {source}", {}, options, DataError)
        return read_text_lines(_file(kind, argument), limit)
    if kind == "hf_dataset":
        from protege.data.hf_dataset import dataset_texts

        SOURCES.check_options(kind, options)
        if not argument or not Path(argument).expanduser().exists():
            raise DataError(f"transfer source {kind!r} needs a dataset: write '{kind}:path/to/dataset'")
        column = options.get("text_column") or text_column or "text"
        return dataset_texts(Path(argument).expanduser(), options, column, limit)
    if kind in ("csv", "jsonl"):
        SOURCES.check_options(kind, options)  # the table's own options: a misspelt one is caught, not ignored
        column = options.get("text_column") or text_column or "text"
        return table_texts(kind, _file(kind, argument), column)[:limit]
    raw = call_source(source, **options)
    if raw.text is None:
        raise DataError(f"transfer set {source} holds numeric inputs but the labelled data is text; use a text source")
    texts = [str(text) for part in (raw.x, raw.x_val, raw.x_test) if part is not None for text in part.tolist()]
    return texts[:limit]


def _file(kind: str, argument: str) -> Path:
    if not argument:
        raise DataError(f"transfer source {kind!r} needs a path: write '{kind}:path/to/file'")
    path = Path(argument).expanduser()
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    return path


def read_text_lines(path: Path, limit: int | None = None) -> list[str]:
    """The texts of a UTF-8 file, one per line (spaces around it and blank lines dropped), the first ``limit``
    of them; read and decoded a line at a time, so a limit stops reading a file of any size there."""
    texts: list[str] = []
    try:
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if text := line.decode("utf-8").removeprefix("\ufeff" if number == 1 else "").strip():
                    texts.append(text)
                if limit is not None and len(texts) >= limit:
                    break
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: line {number} is not UTF-8 ({exc.reason}); save the file as UTF-8") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not texts:
        raise DataError(f"{path}: no texts (every line is blank); write one text per line")
    return texts


def table_texts(kind: str, path: Path, column: str) -> list[str]:
    """The ``column`` of every row of a CSV or JSON Lines file, as text (a missing cell is an empty text)."""
    if kind == "csv":
        columns, rows = read_csv_rows(path)
    else:
        rows, _ = read_jsonl_rows(path)
        if not rows:
            raise DataError(f"{path}: no data rows")
        columns = list(rows[0])
    if column not in columns:
        raise DataError(
            f"{path}: no text column {column!r}{did_you_mean(column, columns)}; columns: {', '.join(columns)}; "
            "name it with transfer.options.text_column"
        )
    return [str(value) if (value := row.get(column)) is not None else "" for row in rows]

"""Unusual files at the boundary where they are read: other encodings, numbers beyond a float, arrays of
an unexpected rank, images whose header claims huge dimensions, output paths that cannot be written."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tests.catalogue import npz_data, recipe, saved_model

LATIN_1 = "a,label\n1,caf\xe9\n2,th\xe9\n".encode("latin-1")


def encoded(tmp: Path, name: str, data: bytes, source: str) -> list[str]:
    (tmp / name).write_bytes(data)
    return recipe(tmp, {"data": {"source": f"{source}:{tmp / name}"}})


def written_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def latin_1_recipe(tmp: Path) -> list[str]:
    path = tmp / "r.yaml"
    path.write_bytes(b"name: caf\xe9\ndata: {source: digits}\n")
    return ["run", str(path)]


def png_claiming(width: int, height: int) -> bytes:
    """A 4×4 PNG whose header (with a valid checksum) says ``width``×``height``."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR: after the 8-byte signature, length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def image_folder_with(tmp: Path, odd: bytes, **options) -> list[str]:
    from PIL import Image

    for label in ("a", "b"):
        (tmp / "images" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (4, 4), 60 * i).save(tmp / "images" / label / f"{i}.png")
    (tmp / "images" / "b" / "odd.png").write_bytes(odd)
    return recipe(tmp, {"data": {"source": f"imagefolder:{tmp / 'images'}", "options": options}})


def predict_on(tmp: Path, name: str, array: np.ndarray) -> list[str]:
    np.save(tmp / name, array)
    return ["predict", str(saved_model(tmp, 10)), str(tmp / name)]


def export_to(tmp: Path, output: str) -> list[str]:
    model = saved_model(tmp, 10)
    (tmp / "a-file").write_text("not a folder\n")
    (tmp / "a-folder.onnx").mkdir()
    return ["export", str(model), "-o", str(tmp / output)]


def evaluate_into(tmp: Path, output: str) -> list[str]:
    (tmp / "a-file").write_text("not a folder\n")
    return ["evaluate", str(saved_model(tmp, 10)), "--data", "digits", "--no-latency", "-o", str(tmp / output)]


ROWS = np.arange(20) % 2
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "recipe in Latin-1": (latin_1_recipe, "r.yaml: not a UTF-8 text file (invalid continuation byte at byte 9)"),
    "csv in Latin-1": (lambda t: encoded(t, "d.csv", LATIN_1, "csv"), "d.csv: not a UTF-8 text file"),
    "csv in UTF-16": (
        lambda t: encoded(t, "d.csv", "a,label\n1,x\n".encode("utf-16"), "csv"),
        "save it as UTF-8",
    ),
    "json lines in Latin-1": (
        lambda t: encoded(t, "d.jsonl", b'{"a": 1, "label": "caf\xe9"}\n', "jsonl"),
        "d.jsonl: not a UTF-8 text file",
    ),
    "csv number beyond float32": (
        lambda t: encoded(t, "d.csv", b"a,label\n1,x\n3e39,y\n", "csv"),
        "d.csv: line 3, column 'a': value 3e+39 is not a finite 32-bit float",
    ),
    "csv number beyond float64": (
        lambda t: encoded(t, "d.csv", b"a,label\n1,x\n1e400,y\n", "csv"),
        "d.csv: line 3, column 'a': value inf is not a finite 32-bit float",
    ),
    "json integer with 400 digits": (
        lambda t: encoded(t, "d.jsonl", b'{"a": 1, "label": "x"}\n{"a": 1%s, "label": "y"}\n' % (b"0" * 400), "jsonl"),
        "d.jsonl: line 2, column 'a': value inf is not a finite 32-bit float",
    ),
    "npz value beyond float32": (
        lambda t: npz_data(t, x=np.where(np.eye(20, 3) > 0, 1e300, 1.0), y=ROWS),
        "train input 0 holds 1e+300 (at index (0,)), more than a 32-bit float holds",
    ),
    "npz inputs of rank 0": (lambda t: npz_data(t, x=np.array(3.0), y=ROWS), "x has shape (); give one row"),
    "npz inputs of rank 1": (lambda t: npz_data(t, x=np.arange(20.0), y=ROWS), "x has shape (20,); give one row"),
    "npz labels of rank 2": (
        lambda t: npz_data(t, x=np.ones((20, 3)), y=np.zeros((20, 2), dtype=int)),
        "2 label columns for a classification task; a multi-label task reads them",
    ),
    "npz with more labels than inputs": (
        lambda t: npz_data(t, x=np.ones((15, 3)), y=ROWS),
        "x has 15 examples but y has 20 labels",
    ),
    "npz test split of another shape": (
        lambda t: npz_data(t, x=np.ones((20, 3)), y=ROWS, x_test=np.ones((4, 5)), y_test=ROWS[:4]),
        "x_test has inputs of shape (5,), x (3,)",
    ),
    "npz test inputs without labels": (
        lambda t: npz_data(t, x=np.ones((20, 3)), y=ROWS, x_test=np.ones((4, 3))),
        "x_test is given without y_test; give both or neither",
    ),
    "npz of complex numbers": (
        lambda t: npz_data(t, x=np.ones((20, 3)) * 1j, y=ROWS),
        "train inputs are complex128, not real numbers",
    ),
    "npz inputs without values": (lambda t: npz_data(t, x=np.ones((20, 0)), y=ROWS), "each input holds 0 values"),
    "npz class names of rank 0": (
        lambda t: npz_data(t, x=np.ones((20, 3)), y=ROWS, class_names=np.array("ab")),
        "class_names has shape (); give a list of names",
    ),
    "image header claiming 100000 by 100000 pixels": (
        lambda t: image_folder_with(t, png_claiming(100_000, 100_000)),
        "odd.png: its header claims more pixels than the 67,108,864 protege reads",
    ),
    "image header claiming 9000 by 8000 pixels": (
        lambda t: image_folder_with(t, png_claiming(9000, 8000)),
        "odd.png: its header claims 9000×8000 pixels, more than the 67,108,864 protege reads",
    ),
    "image larger than a model input": (
        lambda t: image_folder_with(t, png_claiming(4000, 4000)),
        "odd.png is 4000×4000 pixels, more values than a model takes (3,145,728); set options.size",
    ),
    "image whose header lies about its pixels": (
        lambda t: image_folder_with(t, png_claiming(4000, 4000), size=[4, 4]),
        "odd.png: not a readable image (image file is truncated",
    ),
    "predict on inputs of rank 0": (
        lambda t: predict_on(t, "x.npy", np.array(1.0)),
        "x.npy: inputs of shape () do not fit the model",
    ),
    "predict on complex inputs": (
        lambda t: predict_on(t, "x.npy", np.ones((2, 64)) * 1j),
        "x.npy: inputs are complex128, not real numbers",
    ),
    "predict on text in Latin-1": (
        lambda t: ["predict", str(saved_model(t, 10)), written_bytes(t / "t.txt", b"caf\xe9\n")],
        "t.txt: not a UTF-8 text file",
    ),
    "export to a folder": (lambda t: export_to(t, "a-folder.onnx"), "a-folder.onnx is a folder; give a file name"),
    "export under a file": (lambda t: export_to(t, "a-file/model.onnx"), "a-file is a file, not a folder"),
    "evaluate into a file": (lambda t: evaluate_into(t, "a-file"), "a-file is a file; give a folder"),
    "evaluate under a file": (lambda t: evaluate_into(t, "a-file/reports"), "a-file is a file, not a folder"),
}

"""The int8 part of a report (docs/report.md, ``quantization.<stage>``, written by ``protege export
--quantize int8``): the float and the int8 ONNX model side by side, as a printed table and report.html's
section. Rendered from the measurements' dict alone."""

from __future__ import annotations

from html import escape

from rich.table import Table

from protege.report.html_parts import section

HEADINGS = ("measure", "float", "int8", "int8 vs float")


def rows(measures: dict) -> list[list[str]]:
    """One row per measure: the test metric, each batch size's latency, the file size."""
    metric = measures["metric"]
    plain, int8 = measures["float"], measures["int8"]
    change = int8[metric] - plain[metric]
    out = [[f"test {metric}", f"{plain[metric]:.4f}", f"{int8[metric]:.4f}", f"{change:+.4f}"]]
    for batch, ms in plain["latency_ms"].items():
        quantized = int8["latency_ms"][batch]
        out.append([f"latency b{batch}", f"{ms:.3f} ms", f"{quantized:.3f} ms", f"{ms / quantized:.2f}× as fast"])
    size, small = plain["file_bytes"], int8["file_bytes"]
    out.append(["file size", _bytes(size), _bytes(small), f"{size / small:.2f}× smaller"])
    if "agreement" in measures:
        out.append(["agreement with float", "", f"{measures['agreement']:.1%}", ""])
    return out


def quantization_table(measures: dict) -> Table:
    """The terminal's table of one int8 export."""
    title = f"int8 · {measures['stage']} · {measures['test_examples']} test examples"
    caption = f"onnxruntime, {measures['threads']} thread(s) · refused beyond a drop of {measures['max_drop']:g}"
    table = Table(title=title, caption=caption)
    for heading in HEADINGS:
        table.add_column(heading, justify="left" if heading == "measure" else "right", no_wrap=True)
    for row in rows(measures):
        table.add_row(*row)
    return table


def html_section(block: dict[str, dict]) -> str:
    """Per quantized stage: what was done, then float and int8 side by side."""
    parts = []
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADINGS)
    for stage, measures in block.items():
        body = "".join(
            "<tr>"
            + "".join(f"<td{' class=text' if i == 0 else ''}>{escape(c)}</td>" for i, c in enumerate(row))
            + "</tr>"
            for row in rows(measures)
        )
        note = (
            f"<p class='note'>{escape(measures['file'])}: {escape(measures['method'])}. Both models run in ONNX "
            f"Runtime on the CPU with {measures['threads']} thread(s), on the {measures['test_examples']} test "
            f"examples; latency is the median of timed blocks after warm-up, the model alone. The int8 file is "
            f"refused when the test {escape(measures['metric'])} drops by more than {measures['max_drop']:g}.</p>"
        )
        parts.append(
            f"<h3>{escape(stage)}</h3>{note}<div class='scroll'><table class='quantization'><thead><tr>{head}"
            f"</tr></thead><tbody>{body}</tbody></table></div>"
        )
    return section("int8 export: float versus int8", "".join(parts))


def _bytes(value: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"

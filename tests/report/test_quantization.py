"""The int8 section of a report, drawn from the measurements' dict alone: float and int8 side by side in
report.html and in the terminal's table, with the ratios computed from the two columns."""

from rich.console import Console

from protege.report.quantization import html_section, quantization_table, rows

MEASURES = {
    "metric": "accuracy",
    "task": "classification",
    "test_examples": 30,
    "method": "onnxruntime dynamic quantization",
    "float": {"accuracy": 0.9, "latency_ms": {"1": 0.02, "64": 0.5}, "file_bytes": 20_000},
    "int8": {"accuracy": 0.875, "latency_ms": {"1": 0.04, "64": 0.25}, "file_bytes": 5_000},
    "drop": 0.025,
    "max_abs_diff": 0.1,
    "agreement": 0.95,
    "stage": "student",
    "file": "student/export/<m>.int8.onnx",
    "max_drop": 0.05,
    "threads": 1,
}


def test_rows_put_float_and_int8_side_by_side():
    assert rows(MEASURES) == [
        ["test accuracy", "0.9000", "0.8750", "-0.0250"],
        ["latency b1", "0.020 ms", "0.040 ms", "0.50× as fast"],
        ["latency b64", "0.500 ms", "0.250 ms", "2.00× as fast"],
        ["file size", "20.0 kB", "5.0 kB", "4.00× smaller"],
        ["agreement with float", "", "95.0%", ""],
    ]


def test_html_section_names_the_file_the_rule_and_escapes():
    page = html_section({"student": MEASURES})
    assert "<h2>int8 export: float versus int8</h2>" in page and "<table class='quantization'>" in page
    assert "student/export/&lt;m&gt;.int8.onnx" in page and "<m>" not in page
    assert "drops by more than 0.05" in page and "<td>0.8750</td>" in page


def test_terminal_table_has_both_columns():
    console = Console(width=120, record=True)
    console.print(quantization_table(MEASURES))
    text = console.export_text()
    assert "int8 · student · 30 test examples" in text and "0.9000" in text and "4.00× smaller" in text

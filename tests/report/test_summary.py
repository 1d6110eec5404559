"""The terminal summary table."""

from protege.report.summary import print_summary


def _report(models):
    return {"recipe": "r", "data": {"source": "digits"}, "models": models}


def _entry(**extra):
    base = {
        "architecture": "mlp",
        "accuracy": 0.9,
        "nll": 0.3,
        "parameters": 1234,
        "flops_per_example": 5e6,
        "latency_ms": {"1": 0.05, "64": 0.5},
        "training": {"train_seconds": 2.0},
    }
    return {**base, **extra}


def test_table_shows_every_model_with_agreement(capsys, monkeypatch):
    monkeypatch.setenv("PROTEGE_QUIET", "0")
    models = {"teacher": _entry(architecture="cnn2d"), "student": _entry(agreement=0.875)}
    print_summary(_report(models), {"teacher": "teacher", "student": "student distilled"})
    out = capsys.readouterr().out
    assert "student distilled" in out and "87.5%" in out and "1,234" in out and "5.00M" in out
    assert "agreement" in out and "0.050 ms" in out


def test_table_without_teacher_has_no_agreement_column(capsys, monkeypatch):
    monkeypatch.setenv("PROTEGE_QUIET", "0")
    print_summary(_report({"student": _entry()}), {"student": "student"})
    out = capsys.readouterr().out
    assert "agreement" not in out and "90.0%" in out


def test_quiet_prints_nothing(capsys, monkeypatch):
    monkeypatch.setenv("PROTEGE_QUIET", "1")
    print_summary(_report({"student": _entry()}), {})
    assert capsys.readouterr().out == ""

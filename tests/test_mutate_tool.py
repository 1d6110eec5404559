"""tools/mutate.py's recheck after new tests: the tests are copied where mutmut reads them, and only the
survivors not listed as equivalent run again, with fresh coverage."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("mutate_tool", ROOT / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutate_tool"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_recheck_copies_the_tests_and_reruns_only_unlisted_survivors(tmp_path, monkeypatch):
    tool = _tool()
    repo, work = tmp_path / "repo", tmp_path / "work"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_new.py").write_text("def test_new(): pass\n", encoding="utf-8")
    mutants = work / "g" / "mutants"
    (mutants / "src" / "p").mkdir(parents=True)
    (work / "g" / "tests").mkdir()
    (work / "g" / "tests" / "test_old.py").write_text("", encoding="utf-8")
    (mutants / "mutmut-stats.json").write_text("{}", encoding="utf-8")
    codes = {"p.x_f__mutmut_1": 0, "p.x_f__mutmut_2": 1, "p.x_g__mutmut_1": 0}
    (mutants / "src" / "p" / "m.py.meta").write_text(json.dumps({"exit_code_by_key": codes}), encoding="utf-8")
    equivalents = tmp_path / "equivalents.toml"
    equivalents.write_text('"p.x_g__mutmut_1" = "a reason"\n', encoding="utf-8")
    calls, fresh = [], []
    monkeypatch.setattr(tool, "ROOT", repo)
    monkeypatch.setattr(tool, "WORK", work)
    monkeypatch.setattr(tool, "EQUIVALENTS", equivalents)
    monkeypatch.setattr(tool, "_mutmut", lambda where, arguments, log: calls.append((where, arguments, log)))
    monkeypatch.setattr(tool, "fresh_check", lambda group: fresh.append(group.name))
    group = tool.Group("g", ("src/p/m.py",), ("tests",), 80.0)
    tool.recheck(group, children=2)
    assert sorted(p.name for p in (work / "g" / "tests").iterdir()) == ["test_new.py"]
    assert calls == [(work / "g", ["run", "--max-children", "2", "p.x_f__mutmut_1"], "mutmut-recheck.log")]
    assert not (mutants / "mutmut-stats.json").exists() and fresh == ["g"]

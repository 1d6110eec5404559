"""Mutation testing of the modules where a wrong line gives a wrong number rather than a crash
(issue 17): mutmut changes one operator, constant or argument at a time and runs the tests that
cover it; a mutant the tests do not notice ("survived") is a line whose correctness nothing checks.

Each group of modules runs in its own scratch copy of the repository (.mutation/<group>/), with
a mutmut configuration written for it, so groups run alone or together and the repository's own
files are never mutated. Mutants listed in tools/mutation_equivalents.toml (with the reason each
cannot change a result) are left out of the score.

    python tools/mutate.py                  # every group, then the summary
    python tools/mutate.py objectives kd    # some groups
    python tools/mutate.py --summary        # the summary of the last runs only
    python tools/mutate.py kd --min-score 90   # exit 1 below 90% (CI runs this)
    python tools/mutate.py --remap-since REV   # renumber the equivalents of functions changed since REV
    python tools/mutate.py transfer --recheck  # after adding tests: the unlisted survivors again
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
EQUIVALENTS = ROOT / "tools" / "mutation_equivalents.toml"


@dataclass(frozen=True)
class Group:
    """Modules mutated together and the tests that may kill their mutants."""

    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    target: float
    """The score (killed / non-equivalent mutants, in %) the issue asks of this group."""


GROUPS = {
    group.name: group
    for group in (
        Group("kd", ("src/protege/objectives/kd.py",), ("tests/objectives",), 90.0),
        Group("objectives", ("src/protege/objectives/*",), ("tests/objectives",), 90.0),
        Group("distill", ("src/protege/distill/*",), ("tests/distill", "tests/test_teachers_and_generations.py"), 90.0),
        Group(
            "engine",
            ("src/protege/engine/step.py", "src/protege/running.py"),
            ("tests/engine", "tests/test_running_sums.py", "tests/test_engine.py"),
            80.0,
        ),
        Group("dataset", ("src/protege/data/dataset.py",), ("tests/data", "tests/test_running_sums.py"), 80.0),
        Group("transfer", ("src/protege/transfer/*",), ("tests/transfer",), 80.0),
        Group(
            "evaluate",
            ("src/protege/evaluate.py", "src/protege/metrics/*"),
            ("tests/test_evaluate.py", "tests/test_metrics.py"),
            80.0,
        ),
    )
}
"""``kd`` is the small subset CI runs; ``objectives`` contains it."""

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}
TIMEOUTS = {-24, 24, 36, 152, 255}


def prepare(group: Group) -> Path:
    """A scratch copy of src/, tests/, README.md and a pyproject.toml whose [tool.mutmut] names this group."""
    work = WORK / group.name
    for folder in ("src", "tests"):
        _copy_afresh(folder, work)
    shutil.copy2(ROOT / "README.md", work / "README.md")  # the documented defaults are checked against it
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    config = {
        "source_paths": ["src/protege"],
        "only_mutate": list(group.modules),
        "pytest_add_cli_args_test_selection": list(group.tests),
        "pytest_add_cli_args": ["-q", "-x", "-p", "no:cacheprovider"],
        "process_isolation": "forkserver",
        "also_copy": ["README.md"],
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    (work / "pyproject.toml").write_text(project + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return work


def _copy_afresh(folder: str, work: Path) -> None:
    """The repository's ``folder`` copied into ``work``, replacing an earlier copy (caches left out)."""
    if (work / folder).exists():
        shutil.rmtree(work / folder)
    shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))


def run(group: Group, children: int) -> None:
    """mutmut over the group, then once more over the mutants it reported as survived: under its fork
    server, a batch run now and then reports a mutant that its tests kill when run by name (seen with
    torch and hypothesis), so a mutant counts as survived only when the second run agrees."""
    work = prepare(group)
    (work / "fresh.json").unlink(missing_ok=True)  # verdicts of an earlier run's survivors
    print(f"mutating {group.name}: {', '.join(group.modules)} (tests: {', '.join(group.tests)})", flush=True)
    _mutmut(work, ["run", "--max-children", str(children)], "mutmut.log")
    survivors = sorted(name for name, status in outcomes(group).items() if status == "survived")
    if survivors:
        print(f"  checking {len(survivors)} survivor(s) again, by name", flush=True)
        # fresh coverage: a test changed since the stats were taken may now reach a survivor's function
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        _mutmut(work, ["run", "--max-children", str(children), *survivors], "mutmut-survivors.log")
    fresh_check(group)


def recheck(group: Group, children: int) -> None:
    """After adding tests: copy the repository's tests into the group's scratch copy (mutmut copies them from
    there into ``mutants/`` at every run, so a copy made anywhere else is overwritten), run the survivors not
    listed as equivalent again by name with fresh coverage, then in fresh interpreters. The sources stay as
    they were mutated; after a source change, run the group again."""
    work = WORK / group.name
    _copy_afresh("tests", work)
    known = equivalents()
    survivors = sorted(name for name, status in outcomes(group).items() if status == "survived" and name not in known)
    print(f"rechecking {group.name}: {len(survivors)} survivor(s) not listed as equivalent", flush=True)
    if survivors:
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        _mutmut(work, ["run", "--max-children", str(children), *survivors], "mutmut-recheck.log")
    fresh_check(group)


def fresh_check(group: Group) -> None:
    """Run each remaining survivor's tests once more in a fresh interpreter with the mutant switched on
    before any import: mutmut's fork server imports the modules first, so a mutant in code that runs at
    import time (a metric built by a factory, a registry filled at import) is never seen by its tests
    there. Verdicts go to ``fresh.json``, which the summary reads."""
    work = WORK / group.name / "mutants"
    stats_file = work / "mutmut-stats.json"
    by_function = (
        json.loads(stats_file.read_text(encoding="utf-8"))["tests_by_mangled_function_name"]
        if stats_file.is_file()
        else {}
    )
    verdicts = {}
    known = equivalents()
    survivors = [name for name, status in sorted(outcomes(group).items()) if status == "survived" and name not in known]
    survivors = [name for name in survivors if not message_only(*change(group, name))]  # equivalent: not re-run
    if survivors:
        print(f"  checking {len(survivors)} survivor(s) in a fresh interpreter each", flush=True)
    for name in survivors:
        env = {**os.environ, "MUTANT_UNDER_TEST": name, "PYTHONPATH": str(work / "src"), "PROTEGE_QUIET": "1",
               "PROTEGE_PROPERTY_EXAMPLES": "8"}  # fmt: skip
        verdicts[name] = "survived"
        for tests in (by_function.get(name.rsplit("__mutmut_", 1)[0]), list(group.tests)):
            command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *(tests or [])]
            if tests and subprocess.run(command, cwd=work, env=env, capture_output=True, check=False).returncode == 1:
                verdicts[name] = "killed"
                break
    (WORK / group.name / "fresh.json").write_text(json.dumps(verdicts, indent=1), encoding="utf-8")


def _mutmut(work: Path, arguments: list[str], log_name: str) -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PROTEGE_QUIET": "1", "PROTEGE_PROPERTY_EXAMPLES": "8"}  # mutmut puts mutants/src first
    with open(work / log_name, "w", encoding="utf-8") as log:
        subprocess.run([str(mutmut), *arguments], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)


def outcomes(group: Group) -> dict[str, str]:
    """Each mutant's status from mutmut's result files (``<module>.py.meta``)."""
    found: dict[str, str] = {}
    for meta in sorted((WORK / group.name / "mutants" / "src").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"].items():
            found[name] = "timeout" if code in TIMEOUTS else STATUS.get(code, "suspicious")
    fresh = WORK / group.name / "fresh.json"
    if fresh.is_file():  # a survivor killed in a fresh interpreter (fresh_check) counts as killed
        found.update(
            {n: v for n, v in json.loads(fresh.read_text(encoding="utf-8")).items() if found.get(n) == "survived"}
        )
    return found


def equivalents() -> dict[str, str]:
    """Mutant name → why it cannot change a result (tools/mutation_equivalents.toml)."""
    if not EQUIVALENTS.is_file():
        return {}
    return dict(tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8")))


STRING = re.compile(r"""(?:[rbfu]{0,2})("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
ASSERTION = re.compile(r"^\s*assert\b")


def change(group: Group, name: str) -> tuple[str, str]:
    """The original and the mutated line of a mutant (``mutmut show``), stripped; empty where none."""
    shown = subprocess.run([str(Path(sys.executable).with_name("mutmut")), "show", name], cwd=WORK / group.name,
                           capture_output=True, text=True, check=False).stdout.splitlines()  # fmt: skip
    removed = [line[1:] for line in shown if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in shown if line.startswith("+") and not line.startswith("+++")]
    return (removed[0].strip() if removed else ""), (added[0].strip() if added else "")


def message_only(original: str, mutated: str) -> bool:
    """An ``assert``'s message text changed and nothing else: the engine's own invariants, never shown to a user."""
    return bool(ASSERTION.match(original)) and STRING.sub('""', original) == STRING.sub('""', mutated)


def summarise(group: Group, known: dict[str, str]) -> dict:
    """Counts per status; survivors listed in the equivalents file or changing only an assertion's
    message are equivalent, the others are listed with their change for triage."""
    found = outcomes(group)
    counts = {status: 0 for status in ("killed", "survived", "timeout", "no tests", "not checked", "suspicious")}
    for status in found.values():
        counts[status] = counts.get(status, 0) + 1
    equivalent, survivors = [], []
    for name in sorted(n for n, status in found.items() if status in ("survived", "no tests")):
        original, mutated = change(group, name)
        if name in known or message_only(original, mutated):
            equivalent.append(name)
        else:
            survivors.append(f"{name}: {original}  ->  {mutated}")
    relevant = len(found) - len(equivalent)
    score = 100.0 * (counts["killed"] + counts["timeout"]) / relevant if relevant else float("nan")
    return {"group": group.name, "mutants": len(found), **counts, "equivalent": len(equivalent),
            "score": score, "target": group.target, "survivors": survivors}  # fmt: skip


def _changes(path: str, code: str, functions: set[str]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each mutant of ``functions`` in ``code``: the lines it removes and the lines it adds."""
    import libcst
    from mutmut.__main__ import mutate_file_contents
    from mutmut.mutation.diff_apply import read_mutant_function, read_original_function

    mutated = mutate_file_contents(path, code)
    module = libcst.parse_module(mutated.code)
    found = {}
    for name in mutated.mutant_names:
        if name.rsplit("__mutmut_", 1)[0] in functions:
            before = libcst.Module([read_original_function(module, name)]).code.splitlines()
            after = libcst.Module([read_mutant_function(module, name)]).code.splitlines()
            found[name] = (tuple(x.strip() for x in before if x not in after),
                           tuple(x.strip() for x in after if x not in before))  # fmt: skip
    return found


def remap(since: str) -> list[str]:
    """Renumber the listed equivalent mutants of every module changed since the git revision ``since``:
    mutmut numbers a function's mutants in order, so an edit above a mutant moves its number. A mutant
    is found again by its change (the lines it removes and adds); one whose change no longer exists
    is dropped. Rewrites the equivalents file and returns what changed, one line each."""
    known = equivalents()
    changed = subprocess.run(["git", "diff", "--name-only", since, "--", "src"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    moved: dict[str, str | None] = {}  # old full name -> new full name, None: dropped
    for path in (p for p in changed if p.endswith(".py") and (ROOT / p).is_file()):
        moved.update(_moved_in(path, since, known))
    lines, report = [], []
    for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines(keepends=True):
        name = line.split('"')[1] if line.startswith('"') else None
        if name not in moved:
            lines.append(line)
        elif moved[name] is None:
            report.append(f"{name}: dropped (its change is gone, or is no longer one mutant)")
        else:
            lines.append(line.replace(f'"{name}"', f'"{moved[name]}"', 1))
            report.append(f"{name} -> {moved[name]}")
    EQUIVALENTS.write_text("".join(lines), encoding="utf-8")
    return report


def _moved_in(path: str, since: str, known: dict[str, str]) -> dict[str, str | None]:
    """The listed mutants of one module whose number changed since ``since`` (None: gone)."""
    module = path.removeprefix("src/").removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    names = [k.removeprefix(module + ".") for k in known if k.startswith(module + ".")]
    names = [n for n in names if "." not in n]  # not a name of a module below this one
    if not names:
        return {}
    functions = {n.rsplit("__mutmut_", 1)[0] for n in names}
    old_code = subprocess.run(["git", "show", f"{since}:{path}"], cwd=ROOT, capture_output=True, text=True).stdout
    old = _changes(path, old_code, functions)
    new = _changes(path, (ROOT / path).read_text(encoding="utf-8"), functions)
    by_change: dict[tuple, list[str]] = {}
    for name, change in new.items():
        by_change.setdefault((name.rsplit("__mutmut_", 1)[0], change), []).append(name)
    moved: dict[str, str | None] = {}
    for name in names:
        found = by_change.get((name.rsplit("__mutmut_", 1)[0], old.get(name)), [])
        if found != [name]:
            moved[f"{module}.{name}"] = f"{module}.{found[0]}" if len(found) == 1 else None
    return moved


def print_summary(rows: list[dict]) -> None:
    header = "| group | mutants | killed | timed out | survived | equivalent | no tests | score | target |"
    print(header + "\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['group']} | {r['mutants']} | {r['killed']} | {r['timeout']} | {r['survived']} | "
              f"{r['equivalent']} | {r['no tests']} | {r['score']:.1f}% | {r['target']:.0f}% |")  # fmt: skip
    for r in rows:
        left = r["survivors"]
        if left:
            print(f"\n{r['group']}: {len(left)} surviving mutant(s) not in {EQUIVALENTS.name}:")
            print("\n".join(f"  {name}" for name in left))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"of {', '.join(GROUPS)}; default: every group but kd")
    parser.add_argument("--summary", action="store_true", help="summarise the last runs without running")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    parser.add_argument("--min-score", type=float, help="exit 1 when a group scores below this (%%)")
    parser.add_argument(
        "--fresh", action="store_true", help="only re-check the last run's survivors in fresh interpreters"
    )
    parser.add_argument(
        "--recheck", action="store_true", help="copy the tests in again and re-run the unlisted survivors by name"
    )
    parser.add_argument("--remap-since", metavar="REV", help="renumber the equivalents of modules changed since REV")
    args = parser.parse_args(argv)
    if args.remap_since:
        print("\n".join(remap(args.remap_since)) or "no equivalent mutant moved")
        return 0
    unknown = [name for name in args.groups if name not in GROUPS]
    if unknown:
        parser.error(f"unknown group {unknown[0]!r}; the groups: {', '.join(GROUPS)}")
    groups = [GROUPS[name] for name in args.groups] or [g for g in GROUPS.values() if g.name != "kd"]
    if args.recheck:
        for group in groups:
            recheck(group, args.children)
    elif args.fresh:
        for group in groups:
            fresh_check(group)
    elif not args.summary:
        for group in groups:
            run(group, args.children)
    known = equivalents()
    rows = [summarise(group, known) for group in groups if (WORK / group.name / "mutants").is_dir()]
    print_summary(rows)
    WORK.mkdir(exist_ok=True)
    (WORK / "summary.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    if args.min_score is not None and any(not r["score"] >= args.min_score for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

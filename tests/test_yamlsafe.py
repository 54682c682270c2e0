"""The strict YAML loader: what no configuration can be is a problem with a line, never a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components.yamlsafe import MAX_DEPTH, load_yaml, load_yaml_file
from tests.conftest import copy_project

ROOT = Path(__file__).resolve().parent.parent


def _nested(levels: int) -> str:
    return "x: " + "[" * levels + "1" + "]" * levels + "\n"


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("a: &a [*a]\n", 1, "a.0"),
        ("top:\n  a: &a {b: [1, *a]}\n", 2, "top.a.b.1"),
    ],
)
def test_a_recursive_alias_is_refused_with_its_place(text: str, line: int, field: str) -> None:
    data, [problem] = load_yaml(text, "f.yaml")
    assert data is None
    assert (problem.line, problem.where, problem.field) == (line, "(YAML)", field)
    assert problem.message == "a recursive alias (it contains itself)"


def test_an_alias_used_twice_side_by_side_is_not_recursive() -> None:
    loaded, problems = load_yaml("a: &a [1]\nb: [*a, *a]\n", "f.yaml")
    assert problems == [] and loaded is not None
    assert loaded.data == {"a": [1], "b": [[1], [1]]}


@pytest.mark.parametrize("levels", [MAX_DEPTH, 5000])  # past the builder's bound; past Python's recursion limit
def test_nesting_deeper_than_the_bound_is_refused(levels: int) -> None:
    data, [problem] = load_yaml(_nested(levels), "f.yaml")
    assert data is None
    assert (problem.where, problem.message) == ("(YAML)", f"nested deeper than {MAX_DEPTH} levels")


def test_nesting_up_to_the_bound_loads() -> None:
    loaded, problems = load_yaml(_nested(MAX_DEPTH - 2), "f.yaml")
    assert problems == [] and loaded is not None


def test_a_file_that_is_not_utf8_is_a_problem_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"a: 1\nb: 2\n# caf\xe9\n")
    data, [problem] = load_yaml_file(path)
    assert data is None
    assert (problem.file, problem.line, problem.where) == (str(path), 3, "(file)")
    assert problem.message == "not UTF-8: byte 0xe9 at offset 15; save the file as UTF-8"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"# caf\xe9\n", ":1: (file): not UTF-8: byte 0xe9 at offset 5"),
        (b"a: &a [*a]\n", ":1: (YAML): a.0: a recursive alias"),
    ],
)
def test_check_reports_an_unloadable_stack_file_with_exit_2(tmp_path: Path, content: bytes, expected: str) -> None:
    project = copy_project(tmp_path / "project", "Pulumi.yaml")
    live = project / "Pulumi.live.yaml"
    live.write_bytes(content + live.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "components", "check", "--project-dir", str(project)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output and "internal error" not in output
    assert any(line.startswith(str(live)) and expected in line for line in output.splitlines()), output

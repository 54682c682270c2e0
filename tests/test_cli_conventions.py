"""Conventions of ``python -m components`` every command keeps (README, "The command line").

Owns: ``--version``; ``check --format json`` (one JSON list of problems on stdout, the
exit codes of the text format); the render's default output directory; plain-text
help (no reST markup such as double backticks or :ref: roles in any ``--help``).
What each command checks or renders is tested with that command (test_cli_check.py,
test_render_engine.py).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import components
from components.cli import build_parser, main
from components.errors import Problem
from tests.conftest import ROOT, copy_project


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def test_version_prints_the_project_name_and_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"release-pipeline {components.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", components.__version__)


# reST a terminal shows as noise: ``literal``, :role:`target`, `link <url>`_.
REST_MARKUP = re.compile(r"``|:[a-z]+:`|`_")


@pytest.mark.parametrize("command", ["", *sorted(_subcommands(build_parser()))])
def test_help_is_plain_text(command: str):
    parser = build_parser() if not command else _subcommands(build_parser())[command]
    text = parser.format_help()
    assert not REST_MARKUP.search(text), text
    assert "`" not in text, text


def test_the_markup_check_would_catch_the_docstring_style():
    # The top-level description used to be the module docstring's first line.
    assert REST_MARKUP.search("Command line of the project: ``python -m components <command>``.")


def test_render_writes_to_out_by_default():
    args = build_parser().parse_args(["render", "--stack", "dev"])
    assert args.out == Path("out")


# --- check --format json ------------------------------------------------------------


def test_json_lists_each_problem_with_file_line_service_field_and_message(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files under the working directory are shown relative to it
    found = [
        Problem(str(tmp_path / "services.yaml"), 7, "service 'web'", "namespace", "must be a DNS-1123 label"),
        Problem(str(tmp_path / "Pulumi.dev.yaml"), 3, "settings", "cluster.name", "bad"),
        "a problem of no file",
    ]
    assert main(["check", "--format", "json"], validator=lambda *_: found) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == [
        {"file": "Pulumi.dev.yaml", "line": 3, "service": None, "where": "settings", "field": "cluster.name",
         "message": "bad"},
        {"file": "services.yaml", "line": 7, "service": "web", "where": "service 'web'", "field": "namespace",
         "message": "must be a DNS-1123 label"},
        {"file": None, "line": None, "service": None, "where": None, "field": None,
         "message": "a problem of no file"},
    ]  # in the order of the text format: by file and line
    assert err == "3 problem(s) in 2 file(s)\n"


def test_json_is_an_empty_list_when_all_is_valid(capsys):
    assert main(["check", "--format", "json"], validator=lambda *_: []) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert err.startswith("OK: ")


def test_json_names_a_hostile_service_name_as_it_is(capsys):
    name = "it's $(rm -rf /) {{x}}\nnext"
    found = [Problem("services.yaml", 2, f"service {name!r}", "name", "must be a DNS-1123 label")]
    assert main(["check", "--format", "json"], validator=lambda *_: found) == 2
    [problem] = json.loads(capsys.readouterr().out)
    assert problem["service"] == name


def test_json_of_a_nameless_service_names_none(capsys):
    found = [Problem("services.yaml", 2, "service #2", "repo", "required")]
    assert main(["check", "--format", "json"], validator=lambda *_: found) == 2
    [problem] = json.loads(capsys.readouterr().out)
    assert (problem["service"], problem["where"]) == (None, "service #2")


def test_json_from_the_command_on_a_broken_project(tmp_path: Path):
    project = copy_project(tmp_path / "project")
    services = project / "services.yaml"
    text = services.read_text(encoding="utf-8")
    name = yaml.safe_load(text)["services"][0]["name"]
    services.write_text(text.replace("    namespace: ", "    namespace: Bad_", 1), encoding="utf-8")
    line = next(i for i, row in enumerate(services.read_text().splitlines(), 1) if "namespace: Bad_" in row)
    proc = subprocess.run(
        [sys.executable, "-m", "components", "check", "--format", "json", "--project-dir", str(project)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    [problem] = json.loads(proc.stdout)
    assert problem["file"] == str(services)
    assert (problem["line"], problem["service"], problem["field"]) == (line, name, "namespace")
    assert problem["message"].startswith("must be a DNS-1123 label")
    assert "Traceback" not in proc.stderr


def test_json_exits_1_on_an_internal_error_with_nothing_on_stdout(capsys):
    def broken(*_):
        raise RuntimeError("validator bug")

    assert main(["check", "--format", "json"], validator=broken) == 1
    assert capsys.readouterr().out == ""

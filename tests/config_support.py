"""Shared by the tests of components.config (tests/test_config_*.py): a minimal good
service (`GOOD`, `SECOND`), its problems (`problems_of`, `with_field`), and a copy of
the project whose stack files a test edits (`project_copy`, `edit`, `add_settings`,
`messages`, `_stack_problems`).

Deliberately not here: the assertions (next to their tests).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from components.config import STACKS, ConfigError, load_stack_settings, parse_services, validate_all
from tests.conftest import copy_project

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
services:
  - name: vbsiv
    repo: Appen/sid_verification_backend_api
    imageRepository: datacollect-vbsiv
    namespace: datacollect
    project: datacollect
    helm:
      repo: Appen-International/datacollect-helm
      path: app/vbsiv
"""

SECOND = """\
  - name: other
    repo: Appen/other
    imageRepository: other
    namespace: datacollect
    project: datacollect
    helm:
      repo: Appen-International/datacollect-helm
      path: app/other
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_services(textwrap.dedent(text), "services.yaml")
    return [str(p) for p in err.value.problems]


def with_field(field: str, value: str) -> str:
    """GOOD with one top-level service field replaced (or added)."""
    lines = [line for line in GOOD.splitlines() if not line.startswith(f"    {field}:")]
    lines.insert(2, f"    {field}: {value}")
    return "\n".join(lines) + "\n"


def project_copy(tmp_path: Path, *, pulumi_yaml: bool = False) -> Path:
    return copy_project(tmp_path, *(["Pulumi.yaml"] if pulumi_yaml else []))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def add_settings(project: Path, stack: str, lines: str) -> Path:
    """Insert setting lines (4-space indented YAML) after `valuesFile` in a stack file."""
    path = project / f"Pulumi.{stack}.yaml"
    edit(path, "    valuesFile: values.yaml\n", "    valuesFile: values.yaml\n" + lines)
    return path


def messages(project: Path, stacks: tuple[str, ...] | list[str] = STACKS) -> list[str]:
    return [str(p) for p in validate_all(stacks, project / "services.yaml", project)]


def _stack_problems(tmp_path: Path, old: str, new: str) -> list[str]:
    """The dev stack file's problems (field: message) once `old` is replaced by `new`."""
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_stack_settings(project, "dev")
    return [f"{p.field}: {p.message}" for p in err.value.problems]

"""Reading the configuration (components.config.loading): YAML with line numbers, every
problem at once, the keys a stack file may hold, the project name and the settings key."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import ConfigError, load_services, load_stack_settings, validate_all
from components.yamlsafe import MAX_EXPANDED_NODES
from tests.config_support import GOOD, ROOT, _stack_problems, edit, messages, problems_of, project_copy, with_field
from tests.conftest import copy_project

# --------------------------- services.yaml: YAML, lines, every problem at once


def test_empty_file_is_an_error() -> None:
    assert problems_of("") == ["services.yaml: (top level): the file is empty"]


def test_unknown_field_is_rejected_with_service_field_and_line() -> None:
    assert problems_of(with_field("colour", "red")) == [
        "services.yaml:3: service 'vbsiv': colour: unknown field"
    ]


def test_unknown_nested_field_is_rejected() -> None:
    text = GOOD.replace("      path: app/vbsiv\n", "      path: app/vbsiv\n      branch: main\n")
    assert problems_of(text) == ["services.yaml:10: service 'vbsiv': helm.branch: unknown field"]


def test_duplicate_yaml_keys_are_rejected() -> None:
    text = GOOD.replace("    namespace: datacollect\n", "    namespace: datacollect\n    namespace: other\n")
    assert problems_of(text) == [
        "services.yaml:6: service #1: namespace: duplicate key 'namespace' (first defined on line 5)"
    ]


def test_alias_expansion_is_bounded() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        ref = f"*l{i - 1}" if i > 1 else "*a"
        lines.append(f"l{i}: &l{i} [{', '.join([ref] * 10)}]")
    [problem] = problems_of("\n".join(lines) + "\n")
    assert f"expands to more than {MAX_EXPANDED_NODES} nodes" in problem


def test_small_aliases_are_fine() -> None:
    text = "x-tests: &tests\n  image: python:3.12.8-slim\n  command: [pytest]\n" + GOOD.replace(
        "services:\n", "services:\n"
    )
    # x-tests is an unknown top-level key: the alias itself is allowed, the key is not.
    assert problems_of(text) == ["services.yaml:1: services file: x-tests: unknown field"]


def test_every_problem_reported_at_once_each_on_its_own_line() -> None:
    text = GOOD.replace("name: vbsiv", "name: Bad_Name").replace(
        "repo: Appen/sid_verification_backend_api", "repo: nope"
    ) + "    colour: red\n"
    problems = problems_of(text)
    assert len(problems) == 3
    assert all("\n" not in p and p.startswith("services.yaml:") for p in problems)


def test_a_services_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        load_services(path)
    offset = len(GOOD.encode()) + len(b"# caf")
    assert [str(p) for p in err.value.problems] == [
        f"{path}:10: (file): not UTF-8: byte 0xe9 at offset {offset}; save the file as UTF-8"
    ]


# ----------------------------------------------------------------- stack files


def test_stack_file_must_name_its_own_environment(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("environment: dev", "environment: live"))
    [problem] = validate_all(["dev"], project / "services.yaml", project)
    assert "settings: environment: is 'live' in the file of stack 'dev'" in str(problem)


def test_unknown_settings_field_has_file_and_line(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.sandbox.yaml"
    path.write_text(path.read_text().replace("    valuesFile:", "    replicas: 3\n    valuesFile:"))
    [problem] = validate_all(["sandbox"], project / "services.yaml", project)
    assert str(problem).startswith(f"{path}:")
    assert "settings: replicas: unknown field" in str(problem)
    assert problem.line == next(
        i for i, line in enumerate(path.read_text().splitlines(), 1) if "replicas: 3" in line
    )


def test_missing_settings_object(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    (project / "Pulumi.dev.yaml").write_text("config:\n  aws:region: us-east-1\n")
    [problem] = validate_all(["dev"], project / "services.yaml", project)
    assert "missing 'config: release-pipeline:settings:'" in str(problem)


@pytest.mark.parametrize("spelled", ["release-pipeline:githubToken", "slackToken"])
def test_a_secret_in_plain_text_in_a_stack_file_is_refused(tmp_path: Path, spelled: str) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    text = path.read_text()
    path.write_text(text.replace("config:\n", f"config:\n  {spelled}: ghp_plain\n", 1))
    with pytest.raises(ConfigError) as err:
        load_stack_settings(project, "dev")
    name = spelled.split(":")[-1]
    assert [str(p) for p in err.value.problems] == [
        f"{path}:{text.splitlines().index('config:') + 2}: secrets: {spelled}: is in plain text in the stack file; "
        f"remove it and run `pulumi config set --secret {name}`, which stores it encrypted as `secure:`"
    ]
    # Encrypted, as `pulumi config set --secret` writes it, it is fine.
    path.write_text(text.replace("config:\n", f"config:\n  {spelled}:\n    secure: AAABAHx0\n", 1))
    assert load_stack_settings(project, "dev").environment == "dev"


@pytest.mark.parametrize("spelled", ["release-pipeline:servicesFile", "servicesFile"])
def test_a_services_file_key_in_a_stack_file_is_refused(tmp_path: Path, spelled: str) -> None:
    # `pulumi up` would read that file while `check` validates services.yaml.
    assert _stack_problems(tmp_path, "config:\n", f"config:\n  {spelled}: other.yaml\n") == [
        f"{spelled}: is not a stack setting: every stack reads services.yaml (the offline render's "
        "--services sets it for a render only)"]


# -------------------------------------------------------- 12: the settings key


def test_the_bare_settings_key_is_read_as_the_projects(tmp_path: Path) -> None:
    project = project_copy(tmp_path, pulumi_yaml=True)
    path = project / "Pulumi.live.yaml"
    edit(path, "  release-pipeline:settings:\n", "  settings:\n")
    assert load_stack_settings(project, "live") == load_stack_settings(ROOT, "live")
    assert messages(project) == []


def test_a_bad_bare_settings_key_is_checked(tmp_path: Path) -> None:
    project = project_copy(tmp_path, pulumi_yaml=True)
    path = project / "Pulumi.live.yaml"
    edit(path, "  release-pipeline:settings:\n", "  settings:\n")
    edit(path, "    branch: main", "    branch: main\n    colour: red")
    [problem] = messages(project, ["live"])
    assert problem.startswith(f"{path}:") and problem.endswith(": settings: colour: unknown field")


def test_settings_set_under_both_keys_are_refused(tmp_path: Path) -> None:
    project = project_copy(tmp_path, pulumi_yaml=True)
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + "  settings: {environment: dev}\n")
    line = len(path.read_text().splitlines())
    assert messages(project, ["dev"]) == [
        f"{path}:{line}: settings: set twice, as 'release-pipeline:settings' and as 'settings' "
        "(Pulumi reads both as 'release-pipeline:settings'); keep one"
    ]


def test_the_project_must_be_named_as_the_program_reads_its_config(tmp_path: Path) -> None:
    project = project_copy(tmp_path, pulumi_yaml=True)
    edit(project / "Pulumi.yaml", "name: release-pipeline\n", "name: release-pipeline-x\n")
    assert messages(project) == [
        f"{project / 'Pulumi.yaml'}:1: project: name: is 'release-pipeline-x'; must be 'release-pipeline': the "
        "program reads its config as 'release-pipeline:<key>' (settings, githubToken, ...), and Pulumi files a "
        "stack's config under the project's name"
    ]

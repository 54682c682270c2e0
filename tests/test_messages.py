"""What a person reads when the configuration is wrong: where, what, and what to do.

Each message names the file and line, says what is wrong in the file's own terms (no
class names of the program), and what to change; `render` reports bad input word for
word as `check` does.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from components import config
from components.config import ConfigError, ServicesFile, parse_services
from tests.conftest import ROOT, SERVICES_FILE, copy_project
from tests.samples import VBSIV

MODEL_NAMES = sorted(
    name for name, value in vars(config).items()
    if inspect.isclass(value) and issubclass(value, BaseModel) and value.__module__ == config.__name__
)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_services(text, "services.yaml")
    return [str(p) for p in caught.value.problems]


def entry(**fields: object) -> str:
    """One services.yaml entry as a person writes it (list item at two spaces)."""
    lines = yaml.safe_dump([VBSIV | fields], sort_keys=False).splitlines()
    return "\n".join("  " + line for line in lines) + "\n"


# ------------------------------------------------------------------- duplicate names


def test_a_duplicate_name_is_reported_at_the_duplicate_with_advice_to_rename() -> None:
    second = entry(imageRepository="other", namespace="elsewhere")
    text = "services:\n" + entry() + second
    second_line = text.splitlines().index("  - name: vbsiv", 2) + 1
    assert problems_of(text) == [
        f"services.yaml:{second_line}: service 'vbsiv': name: 'vbsiv' is already the name of the service on line 2; "
        "a name is the service's own (it names its Sensor, WorkflowTemplates, Rollout and Applications): "
        "rename this one"
    ]


def test_a_duplicate_name_is_one_problem_not_a_deployment_clash_too() -> None:
    # Same namespace and Deployment: only the name is reported, the clash follows from it.
    problems = problems_of("services:\n" + entry() + entry(imageRepository="other"))
    assert len(problems) == 1 and "take over Deployment" not in problems[0]


def test_each_later_duplicate_is_reported_alongside_other_problems() -> None:
    text = "services:\n" + entry() + entry(imageRepository="b") + entry(imageRepository="c", repo="nope")
    problems = problems_of(text)
    names = [number for number, line in enumerate(text.splitlines(), 1) if line == "  - name: vbsiv"]
    assert len(names) == 3
    assert [p.split(": ", 1)[0] for p in problems if "already the name" in p] == [
        f"services.yaml:{number}" for number in names[1:]
    ]
    assert any("repo: must be a GitHub repository" in p for p in problems)


def test_the_model_alone_still_refuses_duplicate_names() -> None:
    data = yaml.safe_load("services:\n" + entry() + entry(imageRepository="other"))
    with pytest.raises(ValueError, match="name used by more than one service: vbsiv"):
        ServicesFile.model_validate(data)


# -------------------------------------------------------- no class names of the program


@pytest.mark.parametrize("text", [
    "services: [vbsiv]\n",
    "services:\n  - vbsiv\n",
    "services:\n" + entry(helm="Appen-International/datacollect-helm"),
    "services:\n" + entry(tests="pytest"),
    "services:\n" + entry(rollout=["canary"]),
    "services:\n" + entry(canary={"dev": ["setWeight"]}),
    "services:\n" + entry(build={"args": "X=1"}),
    "services:\n" + entry(imageUpdater="yes please"),
])
def test_a_wrong_shape_is_said_in_the_files_terms(text: str) -> None:
    for problem in problems_of(text):
        assert "instance of" not in problem, problem
        assert not [name for name in MODEL_NAMES if name in problem], problem


def test_a_service_that_is_a_word_is_told_to_be_a_mapping() -> None:
    assert problems_of("services: [vbsiv]\n") == [
        "services.yaml:1: service #1: must be a mapping of fields (key: value lines below it), not 'vbsiv'"
    ]


def test_settings_of_the_wrong_shape_are_said_in_the_files_terms(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.dev.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  release-pipeline:settings:\n", "  release-pipeline:settings:\n    sizes: big\n"
                                 "    rbac: [admins]\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load_stack_settings(project, "dev")
    problems = [str(p) for p in caught.value.problems]
    assert any("sizes: must be a mapping of fields (key: value lines below it), not 'big'" in p for p in problems)
    for problem in problems:
        assert "instance of" not in problem and not [n for n in MODEL_NAMES if n in problem], problem


# ------------------------------------------------------------------------ images


def test_an_untagged_image_is_told_to_add_a_tag() -> None:
    text = "services:\n" + entry(tests={"image": "python", "command": ["pytest"]})
    line = text.splitlines().index("      image: python") + 1
    [problem] = problems_of(text)
    assert problem == (
        f"services.yaml:{line}: service 'vbsiv': tests.image: 'python' has no tag: add one, like 'python:<version>' "
        "('latest' is refused), or pin a digest with '@sha256:<digest>'"
    )


@pytest.mark.parametrize("image", ["registry.example.com/team/python", "ghcr.io:443/team/tool"])
def test_an_untagged_image_with_a_registry_is_told_to_add_a_tag(image: str) -> None:
    [problem] = problems_of("services:\n" + entry(tests={"image": image, "command": ["pytest"]}))
    assert f"'{image}' has no tag: add one, like '{image}:<version>'" in problem


def test_an_image_that_is_wrong_otherwise_is_explained_without_the_pattern() -> None:
    [problem] = problems_of("services:\n" + entry(tests={"image": "Python:3.12", "command": ["pytest"]}))
    assert "must be a container image pinned by a tag or a digest: a lowercase name" in problem
    assert "^" not in problem and "[a-z" not in problem


# ------------------------------------------------------------- render reports as check


def cli(command: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "components", command, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_render_reports_bad_input_word_for_word_as_check(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", "Pulumi.yaml", "__main__.py")
    services = project / "services.yaml"
    text = SERVICES_FILE.read_text(encoding="utf-8")
    services.write_text(text.replace("name: labeling-api", "name: vbsiv").replace("tests:\n      image: golang:1.23.4",
                                                                               "tests:\n      image: golang"),
                        encoding="utf-8")
    live = project / "Pulumi.live.yaml"
    live.write_text(live.read_text(encoding="utf-8").replace("    branch: main ", "    branch: hotfix "),
                    encoding="utf-8")
    check = cli("check", tmp_path, "--project-dir", "project")
    render = cli("render", tmp_path, "--stack", "all", "--out", "out", "--project-dir", "project")
    assert check.returncode == render.returncode == 2
    reported = [line for line in check.stdout.splitlines() if line]
    assert len(reported) == 3, check.stdout
    # Relative paths with a line each, as an editor or a CI annotation wants them.
    assert [line.split(": ", 1)[0].rsplit(":", 1)[0] for line in reported] == [
        "project/Pulumi.live.yaml", "project/services.yaml", "project/services.yaml",
    ]
    assert all(line.split(": ", 1)[0].rsplit(":", 1)[1].isdigit() for line in reported)
    assert render.stderr.splitlines() == [*reported, "3 problem(s) in 2 file(s)"]
    assert check.stderr.splitlines() == ["3 problem(s) in 2 file(s)"]
    assert not (tmp_path / "out").exists()

"""What a person reads when the configuration is wrong: where, what, and what to do.

Each message names the file and line, says what is wrong in the file's own terms (no
class names of the program), and what to change; `render` reports bad input word for
word as `check` does.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from components import config
from components.config import ConfigError, ServicesFile, load_stack_settings, parse_services
from tests.config_support import GOOD, edit, messages, project_copy, with_field
from tests.conftest import ROOT, SERVICES_FILE, copy_project
from tests.samples import VBSIV

# Every model of the package, whichever of its modules defines it.
MODULES = [importlib.import_module(m.name) for m in pkgutil.iter_modules(config.__path__, f"{config.__name__}.")]
MODEL_NAMES = sorted(
    name for module in MODULES
    for name, value in vars(module).items()
    if inspect.isclass(value) and issubclass(value, BaseModel) and value.__module__ == module.__name__
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


# ------------------------------------------------------------- 9: strict types


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ("    rollout: {port: on}\n", "rollout.port",
         "must be a whole number, not True (YAML reads on/off/yes/no/true/false as booleans)"),
        ("    rollout: {replicas: yes}\n", "rollout.replicas",
         "must be a whole number, not True (YAML reads on/off/yes/no/true/false as booleans)"),
        ("    rollout: {port: '8080'}\n", "rollout.port", "must be a whole number, not '8080'"),
        ("    canary: {dev: [{setWeight: yes}]}\n", "canary.dev.0.setWeight",
         "must be a whole number, not True (YAML reads on/off/yes/no/true/false as booleans)"),
        ("    triggerOnPush: 'yes'\n", "triggerOnPush", "must be true or false (unquoted), not 'yes'"),
        ("    rollout: {trafficRouting: 1}\n", "rollout.trafficRouting", "must be true or false (unquoted), not 1"),
    ],
)
def test_integers_refuse_booleans_and_booleans_refuse_strings(extra: str, field: str, message: str) -> None:
    [problem] = problems_of(GOOD + extra)
    assert problem == f"services.yaml:10: service 'vbsiv': {field}: {message}"


def test_strict_fields_take_their_own_types() -> None:
    text = GOOD + (
        "    triggerOnPush: true\n    environments: [dev, live]\n"
        "    canary: {dev: [{setWeight: 10}, {pause: {duration: 5m}}]}\n"
        "    rollout: {port: 9090, replicas: 2, scaleDown: onsuccess, trafficRouting: true}\n"
        "    imageUpdater: {enabled: true, tagPolicy: {kind: semver, constraint: '~1.2'}}\n"
    )
    service = parse_services(text, "services.yaml").services[0]
    assert (service.rollout.port, service.rollout.replicas, service.trigger_on_push) == (9090, 2, True)
    assert service.canary["dev"][0].set_weight == 10 and service.rollout.scale_down == "onsuccess"


def test_stack_integer_setting_refuses_a_boolean(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    edit(path, "appId: 1000001", "appId: yes")
    assert messages(project, ["dev"]) == [
        f"{path}:26: settings: helmWriter.appId: must be a whole number, not True "
        "(YAML reads on/off/yes/no/true/false as booleans)"
    ]


# ---------------------------------------------------- 13: values said in words


def test_a_long_value_is_not_repeated_in_full() -> None:
    name = "Q" * 1_000_000
    problems = problems_of(GOOD.replace("name: vbsiv", f"name: {name}"))
    assert problems and all(len(p) < 1000 for p in problems)
    assert problems[0].startswith(f"services.yaml:2: service '{'Q' * 99}...: name: must be a DNS-1123 label")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("canary", "{dev: [{pause: {duration: 10 minutes}}]}", "canary.dev.0.pause.duration: must be a duration in "
         "whole seconds, minutes or hours, like 30s, 10m or 2h, not '10 minutes'"),
        ("canary", "{dev: [{pause: {duration: 0s}}]}", "canary.dev.0.pause.duration: must be a duration in "
         "whole seconds, minutes or hours, like 30s, 10m or 2h, not '0s'"),
    ],
)
def test_a_mismatched_pattern_is_explained_in_words_where_it_has_a_name(field: str, value: str, message: str) -> None:
    [problem] = problems_of(with_field(field, value))
    assert problem.endswith(f"service 'vbsiv': {message}")


def test_an_account_id_says_what_it_must_be_and_to_quote_it(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    text = path.read_text()
    account = load_stack_settings(project, "dev").aws.account_id
    for written, message in [
        (account, f"must be text, not {account} (quote it: YAML reads it as a number or a boolean)"),
        ('"12345"', "must be a 12-digit AWS account id, quoted so YAML keeps it a string, not '12345'"),
    ]:
        path.write_text(text.replace(f"accountId: \"{account}\"", f"accountId: {written}", 1))
        assert path.read_text() != text
        with pytest.raises(ConfigError) as err:
            load_stack_settings(project, "dev")
        assert [(p.field, p.message) for p in err.value.problems] == [("aws.accountId", message)]

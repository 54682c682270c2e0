"""Validation rules of services.yaml and the stack settings: one test per rule."""

from __future__ import annotations

import textwrap
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from components.config import (
    STACKS,
    ConfigError,
    Service,
    load_stack_settings,
    parse_services,
    sibling_settings,
    sibling_stack_problems,
    validate_all,
)
from components.yamlsafe import MAX_EXPANDED_NODES
from tests.conftest import SERVICES_FILE, copy_project

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


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_services(textwrap.dedent(text), "services.yaml")
    return [str(p) for p in err.value.problems]


def with_field(field: str, value: str) -> str:
    """GOOD with one top-level service field replaced (or added)."""
    lines = [line for line in GOOD.splitlines() if not line.startswith(f"    {field}:")]
    lines.insert(2, f"    {field}: {value}")
    return "\n".join(lines) + "\n"


def test_the_shipped_services_file_is_valid() -> None:
    """Whatever the teams list there (the tests depend on the tests' own file, not on this one)."""
    services = parse_services((ROOT / "services.yaml").read_text(), "services.yaml")
    assert len({s.name for s in services.services}) == len(services.services)


def test_the_tests_services_file_has_the_shapes_the_tests_rely_on() -> None:
    services = parse_services(SERVICES_FILE.read_text(), "services.yaml")
    vbsiv = next(s for s in services.services if s.name == "vbsiv")
    assert vbsiv.repo == "Appen/sid_verification_backend_api"
    assert vbsiv.image_repository == "datacollect-vbsiv"
    assert (vbsiv.namespace, vbsiv.project) == ("datacollect", "datacollect")
    assert (vbsiv.helm.repo, vbsiv.helm.path) == ("Appen-International/datacollect-helm", "app/vbsiv")
    # The second example shows the monorepo shape: a service in a sub-path.
    assert any(s.path for s in services.services)


def test_good_minimal_service_gets_defaults() -> None:
    service = parse_services(GOOD, "services.yaml").services[0]
    assert service.environments == list(STACKS)
    assert service.path == ""
    assert service.build.dockerfile == "Dockerfile"
    assert service.trigger_on_push is False


def test_empty_list_of_services_is_a_valid_platform() -> None:
    assert parse_services("services: []\n", "services.yaml").services == []


def test_empty_file_is_an_error() -> None:
    assert problems_of("") == ["services.yaml: (top level): the file is empty"]


def test_unknown_field_is_rejected_with_service_field_and_line() -> None:
    assert problems_of(with_field("colour", "red")) == [
        "services.yaml:3: service 'vbsiv': colour: unknown field"
    ]


def test_unknown_nested_field_is_rejected() -> None:
    text = GOOD.replace("      path: app/vbsiv\n", "      path: app/vbsiv\n      branch: main\n")
    assert problems_of(text) == ["services.yaml:10: service 'vbsiv': helm.branch: unknown field"]


@pytest.mark.parametrize("name", ["Vbsiv", "vb_siv", "-vbsiv", "vbsiv-", "a" * 64, ""])
def test_service_name_must_be_a_dns_label(name: str) -> None:
    text = GOOD.replace("name: vbsiv", f"name: '{name}'")
    [problem] = problems_of(text)
    assert ": name: must be a DNS-1123 label" in problem
    assert problem.startswith("services.yaml:2: service ")


def test_namespace_must_be_a_dns_label() -> None:
    [problem] = problems_of(with_field("namespace", "Data_Collect"))
    assert "service 'vbsiv': namespace: must be a DNS-1123 label" in problem


def test_service_names_are_unique() -> None:
    second = GOOD.split("\n", 1)[1].replace("imageRepository: datacollect-vbsiv", "imageRepository: other")
    [problem] = problems_of(GOOD + second)
    # At the second entry's name, with the first one's line and what to do (tests/test_messages.py).
    assert problem.startswith("services.yaml:10: service 'vbsiv': name: 'vbsiv' is already the name of the service "
                              "on line 2; ")
    assert problem.endswith("rename this one")


def test_image_repositories_are_unique() -> None:
    second = GOOD.split("\n", 1)[1].replace("name: vbsiv", "name: other")
    [problem] = problems_of(GOOD + second)
    assert "image repository used by more than one service: datacollect-vbsiv" in problem


@pytest.mark.parametrize("repo", ["sid_verification_backend_api", "a/b/c", "/x", "owner/", "own er/x", "o/.."])
def test_repos_are_owner_slash_name(repo: str) -> None:
    [problem] = problems_of(with_field("repo", f"'{repo}'"))
    assert "service 'vbsiv': repo: must be a GitHub repository as 'owner/name'" in problem


def test_helm_repo_is_owner_slash_name() -> None:
    [problem] = problems_of(GOOD.replace("Appen-International/datacollect-helm", "datacollect-helm"))
    assert "service 'vbsiv': helm.repo: must be a GitHub repository" in problem


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../other", "must not contain '..'"),
        ("services/../../etc", "must not contain '..'"),
        ("/abs/path", "must be a relative path"),
        ("a b", "may contain only"),
    ],
)
def test_paths_are_relative_without_dotdot(path: str, message: str) -> None:
    [problem] = problems_of(with_field("path", f"'{path}'"))
    assert f"service 'vbsiv': path: {message}" in problem


def test_helm_path_is_relative_without_dotdot() -> None:
    [problem] = problems_of(GOOD.replace("path: app/vbsiv", "path: app/../../x"))
    assert "service 'vbsiv': helm.path: must not contain '..'" in problem


def test_canary_weights_strictly_increasing() -> None:
    text = GOOD + "    canary:\n      live:\n        - setWeight: 40\n        - pause: {}\n        - setWeight: 40\n"
    [problem] = problems_of(text)
    assert "service 'vbsiv': canary.live: setWeight values must be strictly increasing" in problem
    assert "(40 is followed by 40)" in problem


@pytest.mark.parametrize("weight", [0, 101, -5])
def test_canary_weights_within_1_to_100(weight: int) -> None:
    text = GOOD + f"    canary:\n      dev:\n        - setWeight: {weight}\n"
    [problem] = problems_of(text)
    assert "canary.dev.0.setWeight" in problem


def test_canary_step_is_weight_or_pause() -> None:
    text = GOOD + "    canary:\n      dev:\n        - setWeight: 10\n          pause: {}\n"
    [problem] = problems_of(text)
    assert "a step is exactly one of 'setWeight' or 'pause'" in problem


def test_environments_are_a_subset_of_the_four() -> None:
    [problem] = problems_of(with_field("environments", "[dev, qa]"))
    assert "service 'vbsiv': environments.1:" in problem
    assert "'dev', 'sandbox', 'integration' or 'live'" in problem


def test_environments_listed_once() -> None:
    [problem] = problems_of(with_field("environments", "[dev, dev]"))
    assert "lists an environment twice" in problem


def test_canary_override_only_for_known_environments() -> None:
    text = GOOD + "    canary:\n      prod:\n        - setWeight: 10\n"
    [problem] = problems_of(text)
    assert "canary.prod" in problem


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


def test_images_must_be_pinned() -> None:
    text = GOOD + "    tests:\n      image: python:latest\n      command: [pytest]\n"
    [problem] = problems_of(text)
    assert "service 'vbsiv': tests.image: must be pinned: the tag 'latest' moves" in problem


def test_every_problem_reported_at_once_each_on_its_own_line() -> None:
    text = GOOD.replace("name: vbsiv", "name: Bad_Name").replace(
        "repo: Appen/sid_verification_backend_api", "repo: nope"
    ) + "    colour: red\n"
    problems = problems_of(text)
    assert len(problems) == 3
    assert all("\n" not in p and p.startswith("services.yaml:") for p in problems)


# ------------------------------------------------------------------ stack settings


def test_all_shipped_stack_files_are_valid() -> None:
    assert validate_all(STACKS, ROOT / "services.yaml", ROOT) == []
    branches = {s: load_stack_settings(ROOT, s).branch for s in STACKS}
    assert branches == {"dev": "development", "sandbox": "sandbox", "integration": "release", "live": "main"}


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


def test_two_stacks_on_one_cluster_are_refused(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.sandbox.yaml"
    path.write_text(path.read_text().replace("name: datacollect-sandbox", "name: datacollect-dev"))
    [problem] = validate_all(STACKS, project / "services.yaml", project)
    assert "same cluster as stack 'dev'" in str(problem)
    assert "fight over CRDs" in str(problem)
    # `pulumi up` of the sandbox stack alone refuses it too, reading the sibling files.
    settings = load_stack_settings(project, "sandbox")
    assert sibling_stack_problems(settings, "sandbox", project)
    # Given the siblings' settings (as the program passes them), it judges those and
    # reads no file again: here the dev file on disk no longer shares the cluster.
    siblings = sibling_settings("sandbox", project)
    dev = project / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text().replace("name: datacollect-dev", "name: datacollect-dev-2"))
    assert sibling_stack_problems(settings, "sandbox", project, siblings)
    assert not sibling_stack_problems(settings, "sandbox", project)


def test_a_stack_reports_the_cross_stack_problems_it_is_part_of_and_no_others(tmp_path: Path) -> None:
    # sandbox and integration share a cluster whose name happens to contain "dev": the
    # problem is filed against one of the two and involves the other, never dev.
    project = copy_project(tmp_path)
    for stack in ("sandbox", "integration"):
        path = project / f"Pulumi.{stack}.yaml"
        text = path.read_text()
        shared = text.replace(load_stack_settings(project, stack).cluster.name, "shared-dev-tools")
        shared = shared.replace(load_stack_settings(project, stack).aws.account_id, "111111111111")
        path.write_text(shared)
    [problem] = [p for p in validate_all(STACKS, project / "services.yaml", project) if "same cluster" in p.message]
    assert "'shared-dev-tools'" in problem.message
    reported = {s: sibling_stack_problems(load_stack_settings(project, s), s, project) for s in STACKS}
    assert [p for p in reported["sandbox"] if "same cluster" in p.message] == [problem]
    assert [p for p in reported["integration"] if "same cluster" in p.message] == [problem]
    assert [p for p in reported["dev"] if "same cluster" in p.message] == []


def test_cluster_needs_exactly_one_of_context_or_kubeconfig(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("      kubeContext: datacollect-dev\n", ""))
    [problem] = validate_all(["dev"], project / "services.yaml", project)
    assert "settings: cluster: set exactly one of 'kubeContext' or 'kubeconfig'" in str(problem)


def test_stack_canary_profile_weights_increase(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.live.yaml"
    path.write_text(path.read_text().replace("setWeight: 60", "setWeight: 30"))
    [problem] = validate_all(["live"], project / "services.yaml", project)
    assert "settings: canary: setWeight values must be strictly increasing" in str(problem)


def test_service_namespace_may_not_be_a_platform_namespace(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    (project / "services.yaml").write_text(GOOD.replace("namespace: datacollect", "namespace: argocd"))
    problems = validate_all(["dev"], project / "services.yaml", project)
    assert ["platform namespace" in str(p) for p in problems] == [True]


def test_missing_settings_object(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    (project / "Pulumi.dev.yaml").write_text("config:\n  aws:region: us-east-1\n")
    [problem] = validate_all(["dev"], project / "services.yaml", project)
    assert "missing 'config: release-pipeline:settings:'" in str(problem)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("    tests:\n      image: python:3.12.8-slim\n      command: [pytest, '{{workflow.name}}']\n",
         "tests.command.1"),
        ("    build:\n      args: {A: '{{workflow.parameters.pr-title}}'}\n", "build.args.A"),
        ("    slackChannel: '#x-{{workflow.name}}'\n", "slackChannel"),
    ],
)
def test_strings_that_reach_a_workflow_step_may_not_hold_argo_templates(extra: str, field: str) -> None:
    [problem] = problems_of(GOOD + extra)
    assert f"service 'vbsiv': {field}: must not contain '{{{{': Argo Workflows would substitute" in problem


def _documented_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """The YAML names of a model's fields, dotted; a field holding one nested model is
    documented through that model's fields."""
    found = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        nested = [t for t in typing.get_args(info.annotation) or (info.annotation,)
                  if isinstance(t, type) and issubclass(t, BaseModel)]
        found += _documented_fields(nested[0], f"{path}.") if len(nested) == 1 else [path]
    return found


def test_every_services_yaml_field_is_in_the_field_table() -> None:
    # docs/adding-a-service.md promises every field (README, Documentation).
    text = (ROOT / "docs" / "adding-a-service.md").read_text(encoding="utf-8")
    table = text[text.index("## Every field"):text.index("## One example per option")]
    fields = _documented_fields(Service)
    assert {"slackThreads", "imageUpdater.tagPolicy", "rollout.trafficRouting", "tests.command"} <= set(fields)
    assert [f for f in fields if f"`{f}`" not in table] == []

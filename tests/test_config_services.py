"""services.yaml (components.config.services, components.config.service_options): one test per
rule of a service or of the whole file, the message asserted (file, line, service, field)."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from components.config import STACKS, Service, parse_services, validate_all
from tests.config_support import GOOD, ROOT, SECOND, problems_of, with_field
from tests.conftest import SERVICES_FILE

# ---------------------------- services.yaml as shipped and as the tests use it


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


# ----------------------------------------------- names, repositories and paths


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


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("      path: app/vbsiv", "      path: ."), "helm.path"),
        (GOOD.replace("      path: app/vbsiv", "      path: app/vbsiv\n      valuesFile: ''"), "helm.valuesFile"),
        (GOOD + "    build: {dockerfile: ./}\n", "build.dockerfile"),
    ],
)
def test_a_path_that_must_name_a_file_or_chart_refuses_the_repository_root(text: str, where: str) -> None:
    assert text != GOOD
    [problem] = problems_of(text)
    assert problem.endswith(f"service 'vbsiv': {where}: must name a file or directory inside the repository, "
                            "not its root ('' or '.')")


# ----------------------------------------------------- canary and environments


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


def test_an_empty_service_canary_is_refused_like_the_stacks() -> None:
    [problem] = problems_of(GOOD + "    canary: {dev: []}\n")
    assert problem == ("services.yaml:10: service 'vbsiv': canary.dev: needs at least one step; leave the "
                       "environment out to use the stack's canary")


def test_a_canary_for_an_environment_the_service_is_not_deployed_to_is_refused() -> None:
    deployed = GOOD + "    environments: [dev, sandbox]\n"
    parse_services(deployed + "    canary: {sandbox: [{setWeight: 50}]}\n", "services.yaml")
    [problem] = problems_of(deployed + "    canary: {live: [{setWeight: 50}], integration: [{setWeight: 10}]}\n")
    assert problem.startswith("services.yaml:")
    assert problem.endswith("service 'vbsiv': canary.integration: the service is not deployed to integration, "
                            "live (environments: dev, sandbox); remove that canary or add the environment")


# ------------------------------------------- values that reach a workflow step


def test_images_must_be_pinned() -> None:
    text = GOOD + "    tests:\n      image: python:latest\n      command: [pytest]\n"
    [problem] = problems_of(text)
    assert "service 'vbsiv': tests.image: must be pinned: the tag 'latest' moves" in problem


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


@pytest.mark.parametrize("channel", ["'   '", "''"])
def test_a_blank_slack_channel_is_refused(channel: str) -> None:
    assert problems_of(with_field("slackChannel", channel)) == [
        "services.yaml:3: service 'vbsiv': slackChannel: must not be empty or only spaces"
    ]


def test_a_slack_channel_is_fine() -> None:
    assert parse_services(with_field("slackChannel", "'#team'"), "services.yaml").services[0].slack_channel == "#team"


# ------------------------------------------------------------ 1, 2: namespaces


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "default"])
def test_service_namespace_is_not_one_of_kubernetes_own(namespace: str) -> None:
    assert problems_of(with_field("namespace", namespace)) == [
        f"services.yaml:3: service 'vbsiv': namespace: {namespace!r} is one of Kubernetes' own namespaces "
        "(default, kube-node-lease, kube-public, kube-system); use a namespace of its own"
    ]


def test_a_namespace_named_like_a_kubernetes_one_is_fine() -> None:
    assert parse_services(with_field("namespace", "kube-tools"), "services.yaml").services[0].namespace == "kube-tools"


# ---------------------------------------------------------- 3: project default


def test_project_default_is_refused() -> None:
    assert problems_of(with_field("project", "default")) == [
        "services.yaml:3: service 'vbsiv': project: 'default' is Argo CD's built-in AppProject, which the "
        "platform must not take over; name the owning team's own project"
    ]


def test_a_project_named_like_default_is_fine() -> None:
    assert parse_services(with_field("project", "defaults"), "services.yaml").services[0].project == "defaults"


# ----------------------------------------------- 4: one Rollout per Deployment


def test_two_rollouts_on_one_deployment_are_refused() -> None:
    second = SECOND + "    rollout: {deployment: vbsiv}\n    environments: [dev, live]\n"
    assert problems_of(GOOD + second) == [
        "services.yaml:1: services file: services 'other' and 'vbsiv' would each take over Deployment "
        "'vbsiv' in namespace 'datacollect' (in dev, live); a Deployment may have one Rollout: "
        "set rollout.deployment (default: the service name)"
    ]


@pytest.mark.parametrize(
    "extra",
    [
        "    rollout: {deployment: vbsiv}\n    namespace: elsewhere\n",  # another namespace
        "    rollout: {deployment: other-api}\n",  # another Deployment
    ],
)
def test_rollouts_on_different_deployments_are_fine(extra: str) -> None:
    second = SECOND.replace("    namespace: datacollect\n", "") if "namespace:" in extra else SECOND
    assert len(parse_services(GOOD + second + extra, "services.yaml").services) == 2


def test_the_same_deployment_in_different_environments_is_fine() -> None:
    text = GOOD + "    environments: [dev]\n" + SECOND + "    rollout: {deployment: vbsiv}\n    environments: [live]\n"
    assert len(parse_services(text, "services.yaml").services) == 2


# ----------------------------------------------------------- 5: DNS-1035 names


@pytest.mark.parametrize("name", ["1vbsiv", "9-api"])
def test_service_name_starts_with_a_letter(name: str) -> None:
    assert problems_of(GOOD.replace("name: vbsiv", f"name: '{name}'")) == [
        f"services.yaml:2: service {name!r}: name: must start with a lowercase letter: it names Kubernetes "
        "Services, which are DNS-1035 labels (lowercase letters, digits and '-', starting with a letter)"
    ]


def test_root_service_starts_with_a_letter() -> None:
    [problem] = problems_of(GOOD + "    rollout: {trafficRouting: true, rootService: 2web}\n")
    assert problem.startswith("services.yaml:10: service 'vbsiv': rollout.rootService: must start with a lowercase")


def test_service_names_with_digits_after_the_first_letter_are_fine() -> None:
    assert parse_services(GOOD.replace("name: vbsiv", "name: v2-api9"), "services.yaml").services[0].name == "v2-api9"


def test_generated_benchmark_services_pass(tmp_path: Path) -> None:
    from tests.test_benchmark import _bench

    path = _bench().write_services(300, tmp_path / "services.yaml")
    assert validate_all(STACKS, path, ROOT) == []


# --------------------------------------------------- 8: GitHub owners and case


def test_owners_that_differ_only_in_case_are_refused() -> None:
    second = SECOND.replace("repo: Appen/other", "repo: appen/other")
    assert problems_of(GOOD + second) == [
        "services.yaml:1: services file: GitHub owner spelled 'Appen' and 'appen': owners are "
        "case-insensitive, spell each one the same way in every repo and helm.repo"
    ]


def test_helm_repository_owner_case_counts_too() -> None:
    second = SECOND.replace("repo: Appen-International/", "repo: appen-international/")
    [problem] = problems_of(GOOD + second)
    assert "GitHub owner spelled 'Appen-International' and 'appen-international'" in problem


def test_owners_spelled_one_way_are_fine() -> None:
    assert len(parse_services(GOOD + SECOND, "services.yaml").services) == 2


@pytest.mark.parametrize(
    ("other", "how"),
    [
        ("Appen/SID_verification_backend_api", "case"),
        ("Appen/sid-verification-backend-api", "punctuation"),
        ("Appen/SID-verification-backend-api", "case and punctuation"),
    ],
)
def test_repositories_that_share_a_slug_say_how_they_differ(other: str, how: str) -> None:
    second = SECOND.replace("repo: Appen/other", f"repo: {other}")
    repos = " and ".join(sorted(["Appen/sid_verification_backend_api", other]))
    assert problems_of(GOOD + second) == [
        f"services.yaml:1: services file: repositories whose names differ only in {how}: {repos}"
    ]


def test_helm_repositories_that_share_a_slug_are_refused() -> None:
    second = SECOND.replace("repo: Appen-International/datacollect-helm", "repo: Appen-International/datacollect_helm")
    assert problems_of(GOOD + second) == [
        "services.yaml:1: services file: helm repositories whose names differ only in punctuation: "
        "Appen-International/datacollect-helm and Appen-International/datacollect_helm"
    ]


# --------------------------------- the field table of docs/adding-a-service.md


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

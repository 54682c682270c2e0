"""Validation rules of services.yaml and the stack settings that keep `pulumi up` and the
cluster from failing on input `check` used to accept: one good and one bad case per rule,
the message asserted (file, service or setting, field, what is allowed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import (
    STACKS,
    ConfigError,
    load_services,
    load_stack_settings,
    parse_services,
    quantity_value,
    service_problems,
    sibling_stack_problems,
    validate_all,
)
from tests.conftest import copy_project
from tests.test_config import GOOD, ROOT, problems_of, with_field

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


def test_the_shipped_project_passes_every_rule() -> None:
    assert validate_all(STACKS, ROOT / "services.yaml", ROOT) == []


# ------------------------------------------------------------ 1, 2: namespaces


def test_platform_namespaces_that_differ_are_fine(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    add_settings(project, "dev", "    namespaces: {build: argo-builds, workflows: argo-wf}\n")
    assert messages(project, ["dev"]) == []


def test_platform_namespaces_must_differ_from_each_other(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    path = add_settings(project, "dev", "    namespaces: {build: argo}\n")
    assert messages(project, ["dev"]) == [
        f"{path}:15: settings: namespaces: build is 'argo' like workflows: "
        "every platform namespace must differ from the others"
    ]


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "default"])
def test_platform_namespace_is_not_one_of_kubernetes_own(tmp_path: Path, namespace: str) -> None:
    project = project_copy(tmp_path)
    path = add_settings(project, "dev", f"    namespaces: {{build: {namespace}}}\n")
    assert messages(project, ["dev"]) == [
        f"{path}:15: settings: namespaces.build: {namespace!r} is one of Kubernetes' own namespaces "
        "(default, kube-node-lease, kube-public, kube-system); use a namespace of its own"
    ]


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "default"])
def test_service_namespace_is_not_one_of_kubernetes_own(namespace: str) -> None:
    assert problems_of(with_field("namespace", namespace)) == [
        f"services.yaml:3: service 'vbsiv': namespace: {namespace!r} is one of Kubernetes' own namespaces "
        "(default, kube-node-lease, kube-public, kube-system); use a namespace of its own"
    ]


def test_a_namespace_named_like_a_kubernetes_one_is_fine() -> None:
    assert parse_services(with_field("namespace", "kube-tools"), "services.yaml").services[0].namespace == "kube-tools"


# ------------------------------------------------------------ 3: project default


def test_project_default_is_refused() -> None:
    assert problems_of(with_field("project", "default")) == [
        "services.yaml:3: service 'vbsiv': project: 'default' is Argo CD's built-in AppProject, which the "
        "platform must not take over; name the owning team's own project"
    ]


def test_a_project_named_like_default_is_fine() -> None:
    assert parse_services(with_field("project", "defaults"), "services.yaml").services[0].project == "defaults"


# ------------------------------------------------------------ 4: one Rollout per Deployment


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


# ------------------------------------------------------------ 5: DNS-1035 names


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


# ------------------------------------------------------------ 6: host names


def test_host_names_within_a_stack_must_differ(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    edit(path, "argocd: argocd.dev.release.example.com", "argocd: workflows.dev.release.example.com")
    assert messages(project, ["dev"]) == [
        f"{path}:28: settings: hostnames: workflows is 'workflows.dev.release.example.com' like argocd: "
        "each host name must differ from the others"
    ]


def test_host_names_across_stacks_must_differ(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    sandbox = project / "Pulumi.sandbox.yaml"
    edit(sandbox, "argocd: argocd.sandbox.release.example.com", "argocd: events.dev.release.example.com")
    expected = (
        f"{sandbox}: settings: hostnames.argocd: same host name as stack 'dev' (hostnames.events): "
        "'events.dev.release.example.com'; every stack needs host names of its own"
    )
    assert messages(project) == [expected]
    # Each of the two stacks' own `pulumi up` reports it; the others do not.
    reported = {s: sibling_stack_problems(load_stack_settings(project, s), s, project) for s in STACKS}
    assert [str(p) for p in reported["sandbox"]] == [expected]
    assert [str(p) for p in reported["dev"]] == [expected]
    assert reported["live"] == reported["integration"] == []


# ------------------------------------------------------------ 7: ECR prefix per account


def test_two_stacks_with_one_ecr_prefix_in_one_account_are_refused(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    assert load_stack_settings(project, "dev").aws == load_stack_settings(project, "sandbox").aws
    add_settings(project, "dev", "    ecr: {repositoryPrefix: shared}\n")
    add_settings(project, "sandbox", "    ecr: {repositoryPrefix: shared}\n")
    expected = (
        f"{project / 'Pulumi.sandbox.yaml'}: settings: ecr.repositoryPrefix: same ECR repository prefix in the "
        "same account and region as stack 'dev': 'shared' in account 111111111111, region us-east-1 (both "
        "would create the same ECR repositories); give each stack its own ecr.repositoryPrefix "
        "(default: the environment name)"
    )
    assert messages(project) == [expected]
    assert [str(p) for p in sibling_stack_problems(load_stack_settings(project, "dev"), "dev", project)] == [expected]


def test_a_prefix_equal_to_another_stacks_default_is_refused(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    add_settings(project, "dev", "    ecr: {repositoryPrefix: sandbox}\n")
    [problem] = messages(project)
    assert "Pulumi.sandbox.yaml: settings: ecr.repositoryPrefix: same ECR repository prefix" in problem
    assert "as stack 'dev': 'sandbox' in account 111111111111" in problem


def test_one_ecr_prefix_in_different_accounts_is_fine(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    live = load_stack_settings(project, "live")
    assert live.aws.account_id != load_stack_settings(project, "dev").aws.account_id
    add_settings(project, "dev", "    ecr: {repositoryPrefix: shared}\n")
    add_settings(project, "live", "    ecr: {repositoryPrefix: shared}\n")
    assert messages(project) == []


# ------------------------------------------------------------ 8: GitHub owners and case


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


# ------------------------------------------------------------ 9: strict types


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


# ------------------------------------------------------------ 10: requests within limits


@pytest.mark.parametrize(
    ("small", "large"),
    [("500m", "1"), ("64Mi", "1Gi"), ("1", "1"), ("1000m", "1"), ("0.5", "500m"), ("1G", "1Gi"), ("1k", "1Ki")],
)
def test_quantities_compare_as_numbers(small: str, large: str) -> None:
    assert quantity_value(small) <= quantity_value(large)


def test_requests_at_most_limits_are_fine(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    add_settings(project, "dev", "    sizes: {argocdServer: {resources: {requests: {cpu: 500m, memory: 1Gi}, "
                                 "limits: {cpu: '1', memory: 1024Mi}}}}\n")
    assert messages(project, ["dev"]) == []


def test_requests_above_limits_are_refused(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    path = add_settings(project, "dev", "    sizes: {argocdServer: {resources: {requests: {cpu: '1', memory: 1Gi}, "
                                        "limits: {cpu: 500m, memory: 64Mi}}}}\n")
    assert messages(project, ["dev"]) == [
        f"{path}:15: settings: sizes.argocdServer.resources: requests.cpu '1' is above limits.cpu '500m'; "
        "requests.memory '1Gi' is above limits.memory '64Mi': a request must be at most its limit"
    ]


def test_event_bus_requests_above_limits_are_refused(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    add_settings(project, "dev", "    eventBus: {resources: {requests: {cpu: 100m, memory: 2Gi}, "
                                 "limits: {cpu: 200m, memory: 1Gi}}}\n")
    [problem] = messages(project, ["dev"])
    assert "settings: eventBus.resources: requests.memory '2Gi' is above limits.memory '1Gi'" in problem


# ------------------------------------------------------------ 11: ingress and ECR values


@pytest.mark.parametrize(
    "key", ["external-dns.alpha.kubernetes.io/hostname", "team", "a.b/c_d.e-f", "x/" + "a" * 63]
)
def test_valid_annotation_keys_are_fine(tmp_path: Path, key: str) -> None:
    project = project_copy(tmp_path)
    add_settings(project, "dev", f"    ingress: {{annotations: {{'{key}': x}}}}\n")
    assert messages(project, ["dev"]) == []


@pytest.mark.parametrize("key", ["bad key!", "-x", "x-", "/x", "Ex.com/x", "a/b/c", "x/" + "a" * 64, ""])
def test_annotation_keys_must_be_kubernetes_keys(tmp_path: Path, key: str) -> None:
    project = project_copy(tmp_path)
    path = add_settings(project, "dev", f"    ingress: {{annotations: {{'{key}': x}}}}\n")
    assert messages(project, ["dev"]) == [
        f"{path}:15: settings: ingress.annotations.{key}.[key]: must be a Kubernetes annotation key: an optional "
        "DNS subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.', starting and "
        "ending with a letter or digit"
    ]


@pytest.mark.parametrize("policy", ["''", "'  '"])
def test_ssl_policy_is_not_empty(tmp_path: Path, policy: str) -> None:
    project = project_copy(tmp_path)
    path = add_settings(project, "dev", f"    ingress: {{sslPolicy: {policy}}}\n")
    assert messages(project, ["dev"]) == [
        f"{path}:15: settings: ingress.sslPolicy: must not be empty or only spaces"
    ]


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:kms:us-east-1:111111111111:key/11111111-2222-3333-4444-555555555555",
        "arn:aws:kms:eu-west-1:111111111111:alias/ecr",
        "arn:aws-us-gov:kms:us-gov-west-1:111111111111:key/mrk-1234abcd",
    ],
)
def test_kms_key_and_alias_arns_are_fine(tmp_path: Path, arn: str) -> None:
    project = project_copy(tmp_path)
    add_settings(project, "dev", f"    ecr: {{kmsKeyArn: '{arn}'}}\n")
    assert load_stack_settings(project, "dev").ecr.kms_key_arn == arn


@pytest.mark.parametrize(
    "arn",
    ["not an arn", "arn:aws:kms:us-east-1:1111:key/x", "arn:aws:s3:us-east-1:111111111111:key/x",
     "arn:aws:kms:us-east-1:111111111111:grant/x", "arn:aws:kms:us-east-1:111111111111:key/"],
)
def test_kms_key_arn_must_be_a_kms_key_or_alias(tmp_path: Path, arn: str) -> None:
    project = project_copy(tmp_path)
    path = add_settings(project, "dev", f"    ecr: {{kmsKeyArn: '{arn}'}}\n")
    assert messages(project, ["dev"]) == [
        f"{path}:15: settings: ecr.kmsKeyArn: must be a KMS key or alias ARN: "
        "arn:aws:kms:<region>:<12-digit account>:key/<key id> or ...:alias/<alias name>"
    ]


# ------------------------------------------------------------ 12: the settings key


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


# ------------------------------------------------------------ 13: smaller rules


@pytest.mark.parametrize("branch", ["release/1.2", "feature/a.b", "dev_2"])
def test_git_branch_names_are_fine(tmp_path: Path, branch: str) -> None:
    project = project_copy(tmp_path)
    departed = f"    branchDeparture: deliberate\n    branch: '{branch}' "
    edit(project / "Pulumi.dev.yaml", "    branch: development ", departed)
    assert load_stack_settings(project, "dev").branch == branch


@pytest.mark.parametrize("branch", ["a..b", "/dev", "dev/", "a//b", "dev.lock", "dev.", "a/.b", ".dev"])
def test_branches_must_be_git_branch_names(tmp_path: Path, branch: str) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    edit(path, "    helmBranch: development ", f"    helmBranch: '{branch}' ")
    assert messages(project, ["dev"]) == [
        f"{path}:13: settings: helmBranch: must be a git branch name: letters, digits, '.', '_', '-' and '/', "
        "with no '..', no empty or '.'-led part between '/' (no leading, trailing or double '/'), not ending "
        "in '.' or '.lock'"
    ]


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


@pytest.mark.parametrize("channel", ["'   '", "''"])
def test_a_blank_slack_channel_is_refused(channel: str) -> None:
    assert problems_of(with_field("slackChannel", channel)) == [
        "services.yaml:3: service 'vbsiv': slackChannel: must not be empty or only spaces"
    ]


def test_a_blank_stack_slack_channel_is_refused(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    edit(path, 'channel: "#releases-dev"', 'channel: " "')
    [problem] = messages(project, ["dev"])
    assert problem.endswith(": settings: slack.channel: must not be empty or only spaces")


def test_a_slack_channel_is_fine() -> None:
    assert parse_services(with_field("slackChannel", "'#team'"), "services.yaml").services[0].slack_channel == "#team"


def test_a_long_value_is_not_repeated_in_full() -> None:
    name = "Q" * 1_000_000
    problems = problems_of(GOOD.replace("name: vbsiv", f"name: {name}"))
    assert problems and all(len(p) < 1000 for p in problems)
    assert problems[0].startswith(f"services.yaml:2: service '{'Q' * 99}...: name: must be a DNS-1123 label")


def test_a_services_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        load_services(path)
    offset = len(GOOD.encode()) + len(b"# caf")
    assert [str(p) for p in err.value.problems] == [
        f"{path}:10: (file): not UTF-8: byte 0xe9 at offset {offset}; save the file as UTF-8"
    ]


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


@pytest.mark.parametrize("component", ["argocdDex", "argocdRedis", "argocdNotifications", "imageUpdater"])
def test_a_component_the_chart_runs_once_cannot_ask_for_more_replicas(tmp_path: Path, component: str) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    size = "{replicas: %d, resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 100m, memory: 128Mi}}}"
    text = path.read_text()
    anchor = "    valuesFile: values.yaml\n"
    assert anchor in text
    path.write_text(text.replace(anchor, f"{anchor}    sizes:\n      {component}: {size % 1}\n", 1))
    assert load_stack_settings(project, "dev").environment == "dev"
    path.write_text(text.replace(anchor, f"{anchor}    sizes:\n      {component}: {size % 2}\n", 1))
    with pytest.raises(ConfigError) as err:
        load_stack_settings(project, "dev")
    [problem] = err.value.problems
    assert (problem.field, problem.message) == (
        f"sizes.{component}", "the chart runs exactly one of these; set replicas to 1 (got 2)")
    assert problem.line == text.splitlines().index(anchor.rstrip("\n")) + 3


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


def test_a_stack_values_file_must_be_a_file(tmp_path: Path) -> None:
    assert _stack_problems(tmp_path, "    valuesFile: values.yaml", "    valuesFile: '.'") == [
        "valuesFile: must name a file or directory inside the repository, not its root ('' or '.')"]


def test_a_team_mapped_to_no_github_team_is_refused(tmp_path: Path) -> None:
    # Its SSO rule would be empty and nobody would get its Argo CD role.
    anchor = "    valuesFile: values.yaml\n"
    assert _stack_problems(tmp_path, anchor, anchor + "    rbac: {teamSlugs: {datacollect: []}}\n") == [
        "rbac.teamSlugs.datacollect: List should have at least 1 item after validation, not 0"]


def test_the_success_rate_query_may_use_only_the_analysis_templates_args(tmp_path: Path) -> None:
    query = 'sum(up{job="{{args.job}}",ns="{{ args.namespace }}",x="{{args.pod}}"})'
    anchor = "    valuesFile: values.yaml\n"
    assert _stack_problems(tmp_path, anchor, anchor + f"    analysis: {{successRateQuery: '{query}'}}\n") == [
        "analysis.successRateQuery: uses {{args.job}}, {{args.pod}}; the AnalysisTemplate declares only "
        "{{args.service}} and {{args.namespace}}"]


@pytest.mark.parametrize("spelled", ["release-pipeline:servicesFile", "servicesFile"])
def test_a_services_file_key_in_a_stack_file_is_refused(tmp_path: Path, spelled: str) -> None:
    # `pulumi up` would read that file while `check` validates services.yaml.
    assert _stack_problems(tmp_path, "config:\n", f"config:\n  {spelled}: other.yaml\n") == [
        f"{spelled}: is not a stack setting: every stack reads services.yaml (the offline render's "
        "--services sets it for a render only)"]


@pytest.mark.parametrize(
    ("path", "helm_path", "loops"),
    [("", "deploy/chart", True), ("services/a", "services/a/chart", True), ("services/a", "charts/a", False)],
)
def test_a_push_triggered_service_whose_promote_commit_would_release_it_again_is_refused(
    path: str, helm_path: str, loops: bool
) -> None:
    services = parse_services(
        "services:\n  - name: a\n    repo: Appen/mono\n    imageRepository: a\n    namespace: team\n"
        f"    project: team\n    path: '{path}'\n    triggerOnPush: true\n"
        f"    helm: {{repo: Appen/Mono, path: {helm_path}}}\n", "services.yaml")
    dev = load_stack_settings(ROOT, "dev")
    assert dev.helm_branch == dev.branch  # as shipped: the chart's branch is the source's
    found = [str(p) for p in service_problems(services, dev, "services.yaml")]
    assert found == ([
        "services.yaml: service 'a': triggerOnPush: every release would start the next: its promote commit to "
        f"'development' of Appen/Mono is a push to the branch it releases from, touching its path "
        f"({path or 'the whole repository'}); keep the chart outside the service's path, or release on merged "
        "pull requests only"] if loops else [])
    # Merged pull requests only: the promote commit (a push, no pull request) starts nothing.
    quiet = parse_services("services:\n" + "".join(
        line + "\n" for line in (
            "  - name: a", "    repo: Appen/mono", "    imageRepository: a", "    namespace: team", "    project: team",
            f"    path: '{path}'", f"    helm: {{repo: Appen/Mono, path: {helm_path}}}")), "services.yaml")
    assert service_problems(quiet, dev, "services.yaml") == []

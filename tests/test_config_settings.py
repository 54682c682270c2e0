"""The stack settings models (components.config.settings and settings_aws, settings_access,
settings_platform, settings_release): one good and one bad case per rule within one stack
file, the message asserted (file, line, setting, what is allowed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import ConfigError, load_stack_settings, quantity_value, validate_all
from tests.config_support import _stack_problems, add_settings, edit, messages, project_copy
from tests.conftest import copy_project

# ---------------------------------------------------------- cluster and canary


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


# --------------------------------------------------------------- 6: host names


def test_host_names_within_a_stack_must_differ(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    edit(path, "argocd: argocd.dev.release.example.com", "argocd: workflows.dev.release.example.com")
    assert messages(project, ["dev"]) == [
        f"{path}:28: settings: hostnames: workflows is 'workflows.dev.release.example.com' like argocd: "
        "each host name must differ from the others"
    ]


# -------------------------------------------------- 10: requests within limits


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


# -------------------------------------------------- 11: ingress and ECR values


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


# ----------------------------------------------------------- 13: smaller rules


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


def test_a_blank_stack_slack_channel_is_refused(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    edit(path, 'channel: "#releases-dev"', 'channel: " "')
    [problem] = messages(project, ["dev"])
    assert problem.endswith(": settings: slack.channel: must not be empty or only spaces")


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

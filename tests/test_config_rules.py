"""The rules across files (components.config.rules): across stacks (cluster, host names, ECR
prefix per account; promoteFrom in tests/test_promotion_grant.py) and between services.yaml
and a stack, as `check` (validate_all) and one stack's `pulumi up` (sibling_stack_problems)
report them."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import (
    STACKS,
    load_stack_settings,
    parse_services,
    service_problems,
    sibling_settings,
    sibling_stack_problems,
    validate_all,
)
from tests.config_support import GOOD, ROOT, add_settings, edit, messages, project_copy
from tests.conftest import copy_project

# --------------------------------------------------------- the shipped project


def test_all_shipped_stack_files_are_valid() -> None:
    assert validate_all(STACKS, ROOT / "services.yaml", ROOT) == []
    branches = {s: load_stack_settings(ROOT, s).branch for s in STACKS}
    assert branches == {"dev": "development", "sandbox": "sandbox", "integration": "release", "live": "main"}


def test_the_shipped_project_passes_every_rule() -> None:
    assert validate_all(STACKS, ROOT / "services.yaml", ROOT) == []


# --------------------------------------------------------------- across stacks


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


# --------------------------------------------------------------- 6: host names


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


# --------------------------------------------------- 7: ECR prefix per account


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


# --------------------------------------- services.yaml with a stack's settings


def test_service_namespace_may_not_be_a_platform_namespace(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    (project / "services.yaml").write_text(GOOD.replace("namespace: datacollect", "namespace: argocd"))
    problems = validate_all(["dev"], project / "services.yaml", project)
    assert ["platform namespace" in str(p) for p in problems] == [True]


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

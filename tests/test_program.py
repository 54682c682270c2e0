"""The whole program, per stack, through the offline render: what it registers and how it changes.

These tests read the render of the real `__main__.py` with the real stack files, so
they catch what unit tests of one component cannot: wiring, naming across
components, what adding or removing a service does to the rest of the stack, and
secrets that leak on the way from one component to another.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from components.config import STACKS
from components.render.mocks import mock_password, mock_private_key
from tests.conftest import ROOT, SERVICES_FILE, RenderStack, run_render_cli

SERVICES = SERVICES_FILE.read_text()

# A third service in the monorepo of `labeling-api`: same repository, namespace,
# team and helm repository as an existing service.
SAME_REPO_SERVICE = """
  - name: checkout
    repo: Appen/datacollect-platform
    path: services/checkout
    imageRepository: datacollect-checkout
    namespace: datacollect
    project: datacollect
    helm:
      repo: Appen-International/datacollect-helm
      path: app/checkout
"""

# A service of a new team in a repository and namespace of its own.
NEW_REPO_SERVICE = """
  - name: payments
    repo: Appen/payments-api
    imageRepository: finance-payments
    namespace: finance
    project: finance
    helm:
      repo: Appen-International/finance-helm
      path: app/payments
"""

Key = tuple[str, str]


def by_key(resources: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(r["type"], r["name"]): r for r in resources}


def owned_by(resources: dict[Key, dict[str, Any]], key: Key, roots: set[str]) -> bool:
    """True if `key` or one of its ancestors is named by one of `roots`.

    A name is "by" a root when the root is one of its dash-separated words in order:
    `checkout-repository` and `access-release-checkout-role` are both checkout's.
    """
    names = {name: r for (_, name), r in resources.items()}
    name: str | None = key[1]
    while name is not None:
        if any(f"-{root}-" in f"-{name}-" for root in roots):
            return True
        name = names[name]["parent"] if name in names else None
    return False


def diff(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> tuple[set[Key], set[Key], set[Key]]:
    """(added, removed, changed) resource keys between two renders."""
    old, new = by_key(before), by_key(after)
    changed = {k for k in old.keys() & new.keys() if old[k] != new[k]}
    return set(new) - set(old), set(old) - set(new), changed


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_file_renders_the_platform_and_every_service(render_stack: RenderStack, stack: str) -> None:
    resources, manifests = render_stack(stack)
    types = {r["type"] for r in resources}
    for expected in (
        "pulumi:providers:aws",
        "pulumi:providers:kubernetes",
        "pulumi:providers:github",
        "kubernetes:core/v1:Namespace",
        "aws:ecr/repository:Repository",
        "aws:iam/role:Role",
        "github:index/repositoryWebhook:RepositoryWebhook",
        "github:index/repositoryDeployKey:RepositoryDeployKey",
        "github:index/repositoryRuleset:RepositoryRuleset",
    ):
        assert expected in types, f"{stack}: no {expected}"
    repositories = sorted(r["inputs"]["name"] for r in resources if r["type"] == "aws:ecr/repository:Repository")
    assert repositories == [f"{stack}/datacollect-labeling-api", f"{stack}/datacollect-vbsiv"]
    assert all(m["metadata"].get("name") for m in manifests)


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_uses_an_explicit_provider(render_stack: RenderStack, stack: str) -> None:
    """Default providers are disabled in every stack file; nothing may rely on one."""
    resources, _ = render_stack(stack)
    config = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    assert 'pulumi:disable-default-providers: ["*"]' in config
    provider_names = {r["name"] for r in resources if r["type"].startswith("pulumi:providers:")}
    assert not {n for n in provider_names if n.startswith("default")}


def test_environment_differences_are_only_data(render_stack: RenderStack) -> None:
    """Renders of dev and live differ, but only in values that come from the stack files."""
    dev, _ = render_stack("dev")
    live, _ = render_stack("live")
    assert {(r["type"], r["name"]) for r in dev} == {(r["type"], r["name"]) for r in live}


def test_adding_a_service_in_a_shared_repository_adds_only_its_own_resources(render_stack: RenderStack) -> None:
    before, _ = render_stack("dev")
    after, _ = render_stack("dev", SERVICES + SAME_REPO_SERVICE)
    added, removed, changed = diff(before, after)
    assert not removed
    assert added, "the new service added nothing"
    new = by_key(after)
    assert {k for k in added if not owned_by(new, k, {"checkout"})} <= ALLOWED_SHARED_ADDITIONS
    # Same repository, namespace, team and helm repository: no shared resource needs to change,
    # except those that list every service (a Role naming each release ServiceAccount, say).
    assert {name for _, name in changed} <= ALLOWED_SHARED_CHANGES


def test_adding_a_service_in_a_new_repository_changes_only_what_it_must(render_stack: RenderStack) -> None:
    before, _ = render_stack("dev")
    after, _ = render_stack("dev", SERVICES + NEW_REPO_SERVICE)
    added, removed, changed = diff(before, after)
    assert not removed
    new = by_key(after)
    # Its own resources, plus one webhook / deploy key / ruleset set per new repository,
    # a namespace and a GitHub provider only if new; nothing else.
    roots = {"payments", "finance", "appen-payments-api", "appen-international-finance-helm"}
    unexpected = {k for k in added if not owned_by(new, k, roots)}
    assert {name for _, name in unexpected} <= {"namespaces-service-finance"} | {
        name for _, name in ALLOWED_SHARED_ADDITIONS
    }
    assert ("kubernetes:core/v1:Namespace", "namespaces-service-finance") in added
    # The EventSource learns the new repository's event and its Ingress the new path;
    # Argo CD's release gets the new team's RBAC lines (policy.csv, Dex teams).
    assert {name for _, name in changed} <= ALLOWED_SHARED_CHANGES | {
        "event-intake-eventsource",
        "event-intake-ingress",
        "platform-argo-cd",
    }


# Shared resources that one service may legitimately add or change (anything that
# lists every service or every team); kept explicit so a new coupling fails here.
ALLOWED_SHARED_ADDITIONS: set[Key] = set()
ALLOWED_SHARED_CHANGES: set[str] = {
    # The team's AppProject ignores the release Roles the platform puts into the
    # team's namespaces (orphanedResources.ignore), one entry per service.
    "access-project-datacollect",
    # What every release ServiceAccount may do alike is one shared Role per namespace
    # (workflows, build) with one RoleBinding whose subjects list every release account;
    # the newest-wins Roles' bindings list the accounts of the services with newest-wins.
    # A new service is one subject more there, not a Role and RoleBinding of its own.
    "access-releases-workflows-rolebinding",
    "access-releases-build-rolebinding",
    "access-releases-newest-wins-workflows-rolebinding",
    "access-releases-newest-wins-build-rolebinding",
}


def test_removing_a_service_deletes_neither_its_images_nor_its_namespace(render_stack: RenderStack) -> None:
    """A removed service's ECR repository and namespace were retain_on_delete in the previous state.

    `pulumi up` drops a retained resource from the state without calling delete, so
    the images (and the running workload in a namespace no longer listed) survive.
    """
    both = SERVICES + NEW_REPO_SERVICE
    before, _ = render_stack("live", both)
    after, _ = render_stack("live")
    added, removed, _ = diff(before, after)
    assert not added
    gone = by_key(before)
    removed_types = {gone[k]["type"] for k in removed}
    assert "aws:ecr/repository:Repository" in removed_types
    for key in removed:
        if gone[key]["type"] in {"aws:ecr/repository:Repository", "kubernetes:core/v1:Namespace"}:
            assert gone[key]["options"]["retain_on_delete"] is True, key
            assert gone[key]["options"]["protect"] is False, key


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_reaches_the_render(render_stack: RenderStack, stack: str) -> None:
    """Every generated secret and every config secret is redacted everywhere it flows."""
    resources, manifests = render_stack(stack)
    text = json.dumps(resources) + json.dumps(manifests)
    secrets = ["offline-placeholder", "PRIVATE KEY"]
    for r in resources:
        if r["type"] == "random:index/randomPassword:RandomPassword":
            secrets.append(mock_password(r["name"], r["inputs"]))
        if r["type"] == "tls:index/privateKey:PrivateKey":
            keys = mock_private_key(r["name"], r["inputs"])
            secrets += [keys["privateKeyOpenssh"], keys["privateKeyPem"]]
    assert len(secrets) > 2, "the stack generates no secret?"
    leaked = [s[:20] for s in secrets if s in text]
    assert not leaked
    assert "[secret]" in text


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_secret_config_values_are_secret_where_they_are_used(render_stack: RenderStack, stack: str) -> None:
    resources, _ = render_stack(stack)
    providers = [r for r in resources if r["type"] == "pulumi:providers:github"]
    assert providers
    assert all(p["inputs"]["token"] == "[secret]" for p in providers)


def test_render_of_the_real_project_is_byte_identical_twice(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        proc = run_render_cli("--stack", "all", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    # Per stack: the two files, and the review view of their embedded documents.
    for stack in STACKS:
        assert {Path(stack, "manifests.yaml"), Path(stack, "resources.json")} <= set(files)
        assert [f for f in files if f.parent == Path(stack, "review")], stack
    assert {f.parts[0] for f in files} == set(STACKS)
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_bad_services_file_exits_2_names_the_problems_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "services.yaml"
    bad.write_text(SERVICES.replace("name: vbsiv", "name: VBSIV").replace("repo: Appen/sid_", "repo: sid_"))
    out = tmp_path / "out"
    proc = run_render_cli("--stack", "all", "--out", str(out), "--services", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = bad.read_text().splitlines()
    name_line = lines.index("  - name: VBSIV") + 1
    assert f"{bad}:{name_line}: service 'VBSIV': name: must be a DNS-1123 label" in proc.stderr
    assert f"{bad}:{name_line + 1}: service 'VBSIV': repo: must be a GitHub repository as 'owner/name'" in proc.stderr
    assert not out.exists()


def test_empty_services_list_renders_a_platform_without_services(render_stack: RenderStack) -> None:
    resources, _ = render_stack("dev", "services: []\n")
    types = {r["type"] for r in resources}
    assert "aws:ecr/repository:Repository" not in types
    assert "kubernetes:core/v1:Namespace" in types


ARGO_CR_TYPE_PREFIX = "kubernetes:argoproj.io/"


@pytest.mark.parametrize("stack", STACKS)
def test_every_argo_custom_resource_depends_on_its_crd_and_controller(
    render_stack: RenderStack, stack: str
) -> None:
    """So a fresh cluster has the CRD first, and a destroy deletes objects before their controller."""
    from components.crds import kind_index

    resources, _ = render_stack(stack)
    index = kind_index()
    custom = [r for r in resources if r["type"].startswith(ARGO_CR_TYPE_PREFIX)]
    assert {r["inputs"]["kind"] for r in custom} >= {"AppProject", "EventBus", "EventSource"}
    for r in custom:
        crd = index[r["inputs"]["kind"]]
        depends_on = set(r["options"]["depends_on"])
        assert crd.logical_name in depends_on, (r["name"], depends_on)
        assert f"platform-{crd.chart.chart}" in depends_on, (r["name"], depends_on)


@pytest.mark.parametrize("stack", STACKS)
def test_crds_are_retained_not_protected(render_stack: RenderStack, stack: str) -> None:
    resources, _ = render_stack(stack)
    crds = [r for r in resources if r["type"] == "kubernetes:yaml/v2:ConfigFile"]
    assert len(crds) >= 15
    for r in crds:
        assert r["options"] == r["options"] | {"retain_on_delete": True, "protect": False}, r["name"]
        assert r["inputs"]["file"].startswith("https://raw.githubusercontent.com/argoproj/")


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_each_application_waits_for_its_teams_app_project(render_stack: RenderStack, stack: str) -> None:
    resources, _ = render_stack(stack)
    projects = {
        r["inputs"]["metadata"]["name"]: r["name"]
        for r in resources
        if r["type"] == "kubernetes:argoproj.io/v1alpha1:AppProject"
    }
    applications = [r for r in resources if r["type"] == "kubernetes:argoproj.io/v1alpha1:Application"]
    assert applications
    for app in applications:
        assert projects[app["inputs"]["spec"]["project"]] in app["options"]["depends_on"], app["name"]


def _project_copy(tmp_path: Path) -> Path:
    """The program and its files, without tests and caches, to edit one file of."""
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(
        ".git", ".venv", "out", "tests", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"))
    return project


def test_a_renamed_project_is_refused_by_the_program_before_it_reads_config(tmp_path: Path) -> None:
    # Under another name Pulumi files every config key elsewhere: `pulumi up` must say
    # so, not that githubToken is missing. The render skips the CLI's own check here.
    from components.render import RenderError, render_stack_isolated

    project = _project_copy(tmp_path)
    pulumi_yaml = project / "Pulumi.yaml"
    pulumi_yaml.write_text(pulumi_yaml.read_text().replace("name: release-pipeline", "name: pipeline", 1))
    with pytest.raises(RenderError) as err:
        render_stack_isolated("dev", project)
    assert err.value.problems[0] == "dev: invalid configuration:"
    assert err.value.problems[1].startswith(f"dev: {pulumi_yaml}:")
    assert "project: name: is 'pipeline'; must be 'release-pipeline'" in err.value.problems[1]
    assert not any("githubToken" in line.split("must be")[0] for line in err.value.problems)


def test_pulumi_up_refuses_a_plain_text_secret_in_its_own_stack_file(tmp_path: Path) -> None:
    # `pulumi up` reads the secret happily; the program refuses the file that holds it
    # in clear (as check and the render do).
    from components.render import RenderError, render_stack_isolated

    project = _project_copy(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("config:\n", "config:\n  slackToken: xoxb-in-clear\n", 1))
    with pytest.raises(RenderError) as err:
        render_stack_isolated("dev", project)
    assert err.value.problems[0] == "dev: invalid configuration:"
    assert err.value.problems[1].startswith(f"dev: {stack_file}:")
    assert err.value.problems[1].endswith(": secrets: slackToken: is in plain text in the stack file; remove it and "
                                          "run `pulumi config set --secret slackToken`, which stores it encrypted "
                                          "as `secure:`")
    assert all("xoxb-in-clear" not in line for line in err.value.problems)

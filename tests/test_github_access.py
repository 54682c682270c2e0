"""Tests of components/github_access.py: pure builders, each component under mocks, whole stacks.

The component tests use the recording harness of tests/harness.py, which reads what the
program sends the engine, secret markers included, the way the offline render does
(docs/architecture.md, "The offline render"). The whole-stack tests use the `render_stack` fixture of
tests/conftest.py and are skipped until it exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_github as github
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_tls as tls
import pytest
from pulumi.runtime.mocks import MockResourceArgs

from components import github_access as ga
from components import intake, names
from components.config import STACKS, HelmWriterSettings, load_stack_settings
from tests.harness import EchoMocks, run_under_mocks

PROJECT_DIR = Path(__file__).resolve().parent.parent
SECRET = "[secret]"
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

WEBHOOK = "github:index/repositoryWebhook:RepositoryWebhook"
DEPLOY_KEY = "github:index/repositoryDeployKey:RepositoryDeployKey"
RULESET = "github:index/repositoryRuleset:RepositoryRuleset"
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
PASSWORD = "random:index/randomPassword:RandomPassword"
K8S_SECRET = "kubernetes:core/v1:Secret"

# Distinctive values for every generated secret, so a test can look for leaks.
FAKE_PASSWORD = "mockhmacsecretvalue0123456789abcdefghij"
FAKE_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nmockprivatekey\n-----END OPENSSH PRIVATE KEY-----\n"
FAKE_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAImockpublickey\n"
FAKE_APP_KEY = "-----BEGIN RSA PRIVATE KEY-----\nmockappkey\n-----END RSA PRIVATE KEY-----\n"
LEAK_MARKERS = ("mockhmacsecretvalue", "mockprivatekey", "mockappkey")


# --------------------------------------------------------------------------- harness


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return SECRET
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fake_outputs(args: MockResourceArgs) -> dict[str, Any]:
    """The outputs the components read (keys, password), with distinctive values."""
    if args.typ == PRIVATE_KEY:
        return {"privateKeyOpenssh": FAKE_PRIVATE, "publicKeyOpenssh": FAKE_PUBLIC}
    if args.typ == PASSWORD:
        return {"result": FAKE_PASSWORD}
    return {}


def run(program: Callable[[], pulumi.Output[Any]], stack: str = "dev") -> list[dict[str, Any]]:
    """Run `program` under mocks; return what it registered, in the render's shape.

    Inputs are read from the raw request, so secrets stay at their own key (the stock
    mock hands `new_resource` inputs already unwrapped, docs/architecture.md, "The offline render").
    """
    return run_under_mocks(program, EchoMocks(_fake_outputs), stack=stack, inputs=_redact)


def of_type(resources: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == type_]


def string_data(resource: dict[str, Any], key: str) -> Any:
    """A Secret's `stringData[key]`; `[secret]` when the whole map is (as pulumi-kubernetes marks it)."""
    data = resource["inputs"].get("stringData")
    return SECRET if data == SECRET else data[key]


def strings(value: Any) -> Iterator[tuple[str, str]]:
    """(path, string) of every string in a nested value."""
    def walk(v: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(v, dict):
            for k, item in v.items():
                yield from walk(item, f"{path}.{k}")
        elif isinstance(v, list):
            for i, item in enumerate(v):
                yield from walk(item, f"{path}[{i}]")
        elif isinstance(v, str):
            yield path, v
    yield from walk(value, "")


SOURCE_REPO = "Appen/Data_Collect-Platform"
HELM_REPO = "Appen-International/datacollect-helm"
EVENTS_HOST = "events.dev.release.example.com"


def source_program(repo: str = SOURCE_REPO) -> pulumi.Output[Any]:
    source = ga.SourceRepository(
        "src",
        ga.SourceRepositoryArgs(
            repo=repo, environment="dev", events_host=EVENTS_HOST,
            events_namespace=pulumi.Output.from_input("argo-events"),
            workflows_namespace=pulumi.Output.from_input("argo"),
        ),
    )
    return pulumi.Output.all(source.webhook_url, source.webhook_secret_name,
                             source.deploy_key_secret_name)


def helm_program(environment: str = "dev", branch: str = "development",
                 app_id: int = 1000001) -> pulumi.Output[Any]:
    helm = ga.HelmRepository(
        "helm",
        ga.HelmRepositoryArgs(
            repo=HELM_REPO, environment=environment, branch=branch,
            writer=HelmWriterSettings(app_id=app_id, installation_id=100000101),
            writer_private_key=pulumi.Output.secret(FAKE_APP_KEY),
            argocd_namespace=pulumi.Output.from_input("argocd"),
            workflows_namespace=pulumi.Output.from_input("argo"),
        ),
    )
    return pulumi.Output.all(helm.ruleset_name, helm.argocd_secret_name, helm.writer_secret_name)


# ----------------------------------------------------------------------- pure builders


def test_secret_names_are_valid_and_derived_from_the_slug() -> None:
    assert names.deploy_key_secret_name(SOURCE_REPO) == "source-appen-data-collect-platform"
    assert names.argocd_secret_name(HELM_REPO) == "repo-appen-international-datacollect-helm"
    assert names.writer_secret_name(HELM_REPO) == "helm-writer-appen-international-datacollect-helm"


def test_git_ssh_url_has_no_credentials() -> None:
    assert ga.git_ssh_url(HELM_REPO) == "git@github.com:Appen-International/datacollect-helm.git"


def test_argocd_repository_data() -> None:
    assert ga.argocd_repository_data(HELM_REPO) == {
        "type": "git", "url": "git@github.com:Appen-International/datacollect-helm.git",
    }


def test_writer_data_holds_ids_only() -> None:
    writer = HelmWriterSettings(app_id=1000004, installation_id=100000401)
    assert ga.writer_data(writer) == {"app-id": "1000004", "installation-id": "100000401"}


def test_branch_ruleset_names_one_branch_and_one_app() -> None:
    spec = ga.branch_ruleset("dev", "development", 1000001)
    assert spec["target"] == "branch"
    assert spec["enforcement"] == "active"
    assert spec["conditions"] == {"ref_name": {"includes": ["refs/heads/development"], "excludes": []}}
    assert spec["bypass_actors"] == [
        {"actor_type": "Integration", "actor_id": 1000001, "bypass_mode": "always"}
    ]
    rules = spec["rules"]
    assert rules["pull_request"]["required_approving_review_count"] >= 1
    assert rules["pull_request"]["dismiss_stale_reviews_on_push"] is True
    assert rules["non_fast_forward"] is True
    assert rules["deletion"] is True
    # Not `update`: it would also block people merging reviewed PRs (decision 0413).
    assert "update" not in rules


def test_ruleset_names_differ_per_environment() -> None:
    assert len({ga.ruleset_name(env) for env in STACKS}) == len(STACKS)


def test_webhook_url_comes_from_intake() -> None:
    assert intake.webhook_url(EVENTS_HOST, SOURCE_REPO) == (
        f"https://{EVENTS_HOST}{intake.endpoint(SOURCE_REPO)}"
    )


# ------------------------------------------------------------------ SourceRepository


@pytest.fixture(scope="module")
def source() -> list[dict[str, Any]]:
    return run(source_program)


def test_source_children_are_parented_and_named_by_role(source: list[dict[str, Any]]) -> None:
    component = [r for r in source if r["type"] == ga.SOURCE_TYPE]
    assert [r["name"] for r in component] == ["src"]
    children = [r for r in source if r["type"] != ga.SOURCE_TYPE]
    assert {r["parent"] for r in children} == {"src"}
    assert all(r["name"].startswith("src-") for r in children)


def test_webhook(source: list[dict[str, Any]]) -> None:
    (hook,) = of_type(source, WEBHOOK)
    inputs = hook["inputs"]
    assert inputs["repository"] == "Data_Collect-Platform"
    assert sorted(inputs["events"]) == ["pull_request", "push"]
    assert inputs["active"] is True
    config = inputs["configuration"]
    assert config["url"] == f"https://{EVENTS_HOST}/github/appen-data-collect-platform"
    assert config["url"] == intake.webhook_url(EVENTS_HOST, SOURCE_REPO)
    assert config["contentType"] == "json"
    assert config["insecureSsl"] is False
    assert config["secret"] == SECRET
    # The HMAC secret is in the cluster before GitHub uses it.
    assert "src-webhook-k8s-secret" in hook["options"]["depends_on"]


def test_webhook_secret_is_generated_without_special_characters(source: list[dict[str, Any]]) -> None:
    (password,) = of_type(source, PASSWORD)
    assert password["inputs"]["length"] >= 32
    assert password["inputs"]["special"] is False


def test_webhook_secret_in_events_namespace(source: list[dict[str, Any]]) -> None:
    (secret,) = [s for s in of_type(source, K8S_SECRET) if s["name"] == "src-webhook-k8s-secret"]
    meta = secret["inputs"]["metadata"]
    assert meta["name"] == intake.webhook_secret_name(SOURCE_REPO)
    assert meta["namespace"] == "argo-events"
    assert string_data(secret, intake.WEBHOOK_SECRET_KEY) == SECRET
    assert "data" not in secret["inputs"]  # never base64 by hand


def test_checkout_key_is_read_only_ed25519(source: list[dict[str, Any]]) -> None:
    (key,) = of_type(source, PRIVATE_KEY)
    assert key["inputs"]["algorithm"] == "ED25519"
    (deploy_key,) = of_type(source, DEPLOY_KEY)
    assert deploy_key["inputs"]["readOnly"] is True
    assert deploy_key["inputs"]["repository"] == "Data_Collect-Platform"
    assert deploy_key["inputs"]["title"] == "release-pipeline dev checkout (read-only)"
    assert deploy_key["inputs"]["key"] == FAKE_PUBLIC.strip()


def test_checkout_secret_is_ssh_auth_in_workflows_namespace(source: list[dict[str, Any]]) -> None:
    (secret,) = [s for s in of_type(source, K8S_SECRET) if s["name"] == "src-checkout-secret"]
    assert secret["inputs"]["type"] == "kubernetes.io/ssh-auth"
    assert secret["inputs"]["metadata"]["name"] == "source-appen-data-collect-platform"
    assert secret["inputs"]["metadata"]["namespace"] == "argo"
    assert string_data(secret, "ssh-privatekey") == SECRET


def test_without_a_build_namespace_there_is_one_checkout_secret(source: list[dict[str, Any]]) -> None:
    checkout = [s for s in of_type(source, K8S_SECRET)
                if s["inputs"]["metadata"]["labels"]["release-pipeline/role"] == "checkout-key"]
    assert [s["name"] for s in checkout] == ["src-checkout-secret"]


def test_build_namespace_gets_the_same_checkout_key() -> None:
    def program() -> pulumi.Output[Any]:
        source = ga.SourceRepository(
            "src",
            ga.SourceRepositoryArgs(
                repo=SOURCE_REPO, environment="dev", events_host=EVENTS_HOST,
                events_namespace=pulumi.Output.from_input("argo-events"),
                workflows_namespace=pulumi.Output.from_input("argo"),
                build_namespace=pulumi.Output.from_input("argo-build"),
            ),
        )
        assert source.build_deploy_key_secret_name is not None
        return pulumi.Output.all(source.deploy_key_secret_name, source.build_deploy_key_secret_name)

    records = run(program)
    checkout = {s["name"]: s for s in of_type(records, K8S_SECRET)
                if s["inputs"]["metadata"]["labels"]["release-pipeline/role"] == "checkout-key"}
    assert sorted(checkout) == ["src-build-checkout-secret", "src-checkout-secret"]
    build, workflows = checkout["src-build-checkout-secret"], checkout["src-checkout-secret"]
    assert build["inputs"]["metadata"]["namespace"] == "argo-build"
    # Same Secret name and key in both namespaces: the templates mount them alike.
    assert build["inputs"]["metadata"]["name"] == workflows["inputs"]["metadata"]["name"]
    assert build["inputs"]["type"] == "kubernetes.io/ssh-auth"
    assert string_data(build, "ssh-privatekey") == SECRET
    # One key pair, one deploy key: the copy is the same key, not a second one.
    assert len(of_type(records, PRIVATE_KEY)) == 1
    assert len(of_type(records, DEPLOY_KEY)) == 1
    for record in records:
        for path, value in strings(record["inputs"]):
            assert not any(m in value for m in LEAK_MARKERS), f"{record['name']}{path}"


def test_source_leaks_no_secret(source: list[dict[str, Any]]) -> None:
    for record in source:
        for path, value in strings(record["inputs"]):
            assert not any(m in value for m in LEAK_MARKERS), f"{record['name']}{path}"


PROVIDER_OF = {
    WEBHOOK: "github", DEPLOY_KEY: "github", RULESET: "github",
    PRIVATE_KEY: "tls", PASSWORD: "random", K8S_SECRET: "kubernetes",
}


def test_children_use_the_providers_passed_in() -> None:
    """Default providers are disabled in every stack: each child must inherit an explicit one."""

    def program() -> pulumi.Output[Any]:
        providers = [
            github.Provider("gh", owner="Appen"), k8s.Provider("k8s"),
            random.Provider("random"), tls.Provider("tls"),
        ]
        opts = pulumi.ResourceOptions(providers=providers)
        source = ga.SourceRepository(
            "src", ga.SourceRepositoryArgs(repo=SOURCE_REPO, environment="dev", events_host=EVENTS_HOST,
                                           events_namespace="argo-events", workflows_namespace="argo"),
            opts=opts,
        )
        helm = ga.HelmRepository(
            "helm", ga.HelmRepositoryArgs(
                repo=HELM_REPO, environment="dev", branch="development",
                writer=HelmWriterSettings(app_id=1, installation_id=2),
                writer_private_key=pulumi.Output.secret(FAKE_APP_KEY),
                argocd_namespace="argocd", workflows_namespace="argo"),
            opts=opts,
        )
        return pulumi.Output.all(source.webhook_url, helm.writer_secret_name)

    children = [r for r in run(program) if r["type"] in PROVIDER_OF]
    assert len(children) == 11
    for child in children:
        assert child["provider"], child["name"]
        assert re.search(rf"[:$]pulumi:providers:{PROVIDER_OF[child['type']]}::", child["provider"]), (
            child["name"]
        )


def test_source_outputs() -> None:
    seen: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        source = ga.SourceRepository(
            "out",
            ga.SourceRepositoryArgs(repo=SOURCE_REPO, environment="dev", events_host=EVENTS_HOST,
                                    events_namespace="argo-events", workflows_namespace="argo"),
        )

        def keep(values: list[Any]) -> None:
            seen["values"] = values

        return pulumi.Output.all(source.webhook_url, source.webhook_secret_name,
                                 source.deploy_key_secret_name).apply(keep)

    run(program)
    assert seen["values"] == [
        intake.webhook_url(EVENTS_HOST, SOURCE_REPO),
        intake.webhook_secret_name(SOURCE_REPO),
        names.deploy_key_secret_name(SOURCE_REPO),
    ]


# -------------------------------------------------------------------- HelmRepository


@pytest.fixture(scope="module")
def helm() -> list[dict[str, Any]]:
    return run(helm_program)


def test_helm_children_are_parented_and_named_by_role(helm: list[dict[str, Any]]) -> None:
    children = [r for r in helm if r["type"] != ga.HELM_TYPE]
    assert {r["parent"] for r in children} == {"helm"}
    assert sorted(r["name"] for r in children) == [
        "helm-argocd-deploy-key", "helm-argocd-key", "helm-argocd-secret",
        "helm-ruleset", "helm-writer-secret",
    ]


def test_ruleset_as_registered(helm: list[dict[str, Any]]) -> None:
    (ruleset,) = of_type(helm, RULESET)
    inputs = ruleset["inputs"]
    assert inputs["repository"] == "datacollect-helm"
    assert inputs["name"] == "release-pipeline-dev-gitops-branch"
    assert inputs["target"] == "branch"
    assert inputs["enforcement"] == "active"
    assert inputs["conditions"]["refName"]["includes"] == ["refs/heads/development"]
    assert inputs["bypassActors"] == [
        {"actorType": "Integration", "actorId": 1000001, "bypassMode": "always"}
    ]
    rules = inputs["rules"]
    assert rules["pullRequest"]["requiredApprovingReviewCount"] >= 1
    assert rules["pullRequest"]["dismissStaleReviewsOnPush"] is True
    assert rules["nonFastForward"] is True
    assert rules["deletion"] is True
    assert "update" not in rules


def test_argocd_repository_secret(helm: list[dict[str, Any]]) -> None:
    (key,) = of_type(helm, PRIVATE_KEY)
    assert key["inputs"]["algorithm"] == "ED25519"
    (deploy_key,) = of_type(helm, DEPLOY_KEY)
    assert deploy_key["inputs"]["readOnly"] is True
    assert deploy_key["inputs"]["title"] == "release-pipeline dev argocd (read-only)"
    (secret,) = [s for s in of_type(helm, K8S_SECRET) if s["name"] == "helm-argocd-secret"]
    meta = secret["inputs"]["metadata"]
    assert meta["name"] == "repo-appen-international-datacollect-helm"
    assert meta["namespace"] == "argocd"
    assert meta["labels"]["argocd.argoproj.io/secret-type"] == "repository"
    assert string_data(secret, "sshPrivateKey") == SECRET
    if secret["inputs"]["stringData"] != SECRET:
        assert string_data(secret, "type") == "git"
        assert string_data(secret, "url") == "git@github.com:Appen-International/datacollect-helm.git"


def test_writer_secret(helm: list[dict[str, Any]]) -> None:
    (secret,) = [s for s in of_type(helm, K8S_SECRET) if s["name"] == "helm-writer-secret"]
    meta = secret["inputs"]["metadata"]
    assert meta["name"] == "helm-writer-appen-international-datacollect-helm"
    assert meta["namespace"] == "argo"
    assert string_data(secret, "private-key") == SECRET
    if secret["inputs"]["stringData"] != SECRET:
        assert string_data(secret, "app-id") == "1000001"
        assert string_data(secret, "installation-id") == "100000101"


def test_helm_leaks_no_secret(helm: list[dict[str, Any]]) -> None:
    for record in helm:
        for path, value in strings(record["inputs"]):
            assert not any(m in value for m in LEAK_MARKERS), f"{record['name']}{path}"


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_ruleset_names_only_its_own_branch_and_app(stack: str) -> None:
    """From the real stack files: one branch, one App, and no other stack's of either."""
    all_settings = {s: load_stack_settings(PROJECT_DIR, s) for s in STACKS}
    mine = all_settings[stack]
    resources = run(lambda: helm_program(mine.environment, mine.helm_branch, mine.helm_writer.app_id),
                    stack=stack)
    (ruleset,) = of_type(resources, RULESET)
    inputs = ruleset["inputs"]
    assert inputs["conditions"]["refName"]["includes"] == [f"refs/heads/{mine.helm_branch}"]
    assert [a["actorId"] for a in inputs["bypassActors"]] == [mine.helm_writer.app_id]
    for other, theirs in all_settings.items():
        if other == stack:
            continue
        assert f"refs/heads/{theirs.helm_branch}" not in inputs["conditions"]["refName"]["includes"]
        assert theirs.helm_writer.app_id not in [a["actorId"] for a in inputs["bypassActors"]]


# ------------------------------------------------------------- whole stacks (fixture)

SHARED_REPO_SERVICES = """\
services:
  - name: api
    repo: Appen/datacollect-platform
    path: services/api
    imageRepository: datacollect-api
    namespace: datacollect
    project: datacollect
    helm: {repo: Appen-International/datacollect-helm, path: app/api}
  - name: worker
    repo: Appen/datacollect-platform
    path: services/worker
    imageRepository: datacollect-worker
    namespace: datacollect
    project: datacollect
    helm: {repo: Appen-International/datacollect-helm, path: app/worker}
  - name: vbsiv
    repo: Appen/sid_verification_backend_api
    imageRepository: datacollect-vbsiv
    namespace: datacollect
    project: datacollect
    helm: {repo: Appen-International/datacollect-helm, path: app/vbsiv}
"""


@pytest.fixture
def render(request: pytest.FixtureRequest) -> Callable[..., tuple[list[dict[str, Any]], Any]]:
    try:
        return request.getfixturevalue("render_stack")  # type: ignore[no-any-return]
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no render_stack fixture yet")


def test_stack_one_webhook_and_key_per_source_repo(render: Callable[..., Any]) -> None:
    resources, _ = render("dev", SHARED_REPO_SERVICES)
    hooks = of_type(resources, WEBHOOK)
    assert sorted(h["inputs"]["repository"] for h in hooks) == [
        "datacollect-platform", "sid_verification_backend_api",
    ]
    checkout_keys = [k for k in of_type(resources, DEPLOY_KEY) if "checkout" in k["inputs"]["title"]]
    assert len(checkout_keys) == 2
    helm_rulesets = of_type(resources, RULESET)
    assert len(helm_rulesets) == 1  # one helm repository


@pytest.mark.parametrize("stack", STACKS)
def test_stack_webhooks_and_keys(render: Callable[..., Any], stack: str) -> None:
    settings = load_stack_settings(PROJECT_DIR, stack)
    resources, _ = render(stack)
    hooks = of_type(resources, WEBHOOK)
    assert hooks
    for hook in hooks:
        config = hook["inputs"]["configuration"]
        assert re.fullmatch(rf"https://{re.escape(settings.hostnames.events)}/github/[a-z0-9-]+",
                            config["url"])
        assert sorted(hook["inputs"]["events"]) == ["pull_request", "push"]
        assert config["insecureSsl"] is False
        assert config["secret"] == SECRET
    for key in of_type(resources, DEPLOY_KEY):
        assert key["inputs"]["readOnly"] is True
    for key in of_type(resources, PRIVATE_KEY):
        assert key["inputs"]["algorithm"] == "ED25519"
    mine = {"webhook-secret": intake.WEBHOOK_SECRET_KEY, "checkout-key": "ssh-privatekey",
            "argocd-repository": "sshPrivateKey", "helm-writer": "private-key"}
    for secret in of_type(resources, K8S_SECRET):
        role = secret["inputs"]["metadata"].get("labels", {}).get("release-pipeline/role")
        if role in mine:
            assert string_data(secret, mine[role]) == SECRET, secret["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_ruleset_is_its_own(render: Callable[..., Any], stack: str) -> None:
    all_settings = {s: load_stack_settings(PROJECT_DIR, s) for s in STACKS}
    resources, _ = render(stack)
    for ruleset in of_type(resources, RULESET):
        inputs = ruleset["inputs"]
        assert inputs["conditions"]["refName"]["includes"] == [
            f"refs/heads/{all_settings[stack].helm_branch}"
        ]
        actors = [(a["actorType"], a["actorId"]) for a in inputs["bypassActors"]]
        assert actors == [("Integration", all_settings[stack].helm_writer.app_id)]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_secret_manifests(render: Callable[..., Any], stack: str) -> None:
    _, manifests = render(stack)
    secrets = [m for m in manifests if m.get("kind") == "Secret"]
    argocd = [m for m in secrets
              if m["metadata"].get("labels", {}).get("argocd.argoproj.io/secret-type") == "repository"]
    assert argocd
    for manifest in argocd:
        data = manifest["stringData"]
        assert data == SECRET or data["sshPrivateKey"] == SECRET
        if data != SECRET and data.get("url") != SECRET:
            assert data["url"].startswith("git@github.com:")
    mine = {"webhook-secret": intake.WEBHOOK_SECRET_KEY, "checkout-key": "ssh-privatekey",
            "argocd-repository": "sshPrivateKey", "helm-writer": "private-key"}
    for manifest in secrets:
        role = manifest["metadata"].get("labels", {}).get("release-pipeline/role")
        if role not in mine:
            continue
        assert "data" not in manifest  # stringData only: never base64 by hand
        data = manifest["stringData"]
        assert data == SECRET or data[mine[role]] == SECRET, manifest["metadata"]["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_no_secret_in_a_url(render: Callable[..., Any], stack: str) -> None:
    resources, _ = render(stack)
    for record in resources:
        for path, value in strings(record["inputs"]):
            if value == SECRET:
                # A whole value redacted (pulumi-kubernetes marks all of a Secret's
                # stringData secret), not a secret spliced into a URL.
                continue
            if "://" in value or path.lower().endswith("url"):
                assert SECRET not in value, f"{record['name']}{path}"
                assert not re.search(r"://[^/@\s]+@", value), f"credentials in {record['name']}{path}"

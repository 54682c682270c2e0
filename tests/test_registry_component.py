"""ServiceRegistry, the component.

Component tests come in two kinds:
- through the recording harness of tests/harness.py (tests/registry_support.py), which
  runs just the component under `pulumi.runtime.set_mocks`, for settings variants the
  stack files do not have (IRSA, KMS, a 63-character service name);
- through the `render_stack` fixture of tests/conftest.py (the real program, a real
  stack), skipped with a reason while that fixture does not exist.
Both see resources in the `resources.json` shape: camelCase inputs, parent by
logical name, options.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components import names
from components.config import EcrSettings, Irsa, PodIdentity, load_stack_settings
from components.registry import (
    IRSA_ROLE_ANNOTATION,
    LOGIN_ACTION,
    irsa_trust_policy,
    lifecycle_policy,
    pod_identity_trust_policy,
)
from tests.conftest import SERVICES_FILE
from tests.registry_support import (
    ACCOUNT,
    EXPECTED_ACTIONS,
    LONG_NAME,
    OIDC_ARN,
    PROJECT_DIR,
    REGION,
    _args,
    _check_repository,
    _one,
    _push_policy_resources,
    _run,
    _service,
)


def test_harness_pod_identity() -> None:
    records, outputs = _run(_args())
    assert all(r["parent"] == "vbsiv" and r["name"].startswith("vbsiv-") for r in records if r["name"] != "vbsiv")

    repo = _one(records, "aws:ecr/repository:Repository")
    _check_repository(repo, "dev/datacollect-vbsiv")
    assert repo["inputs"]["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    repo_arn = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/dev/datacollect-vbsiv"

    lifecycle = _one(records, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert json.loads(lifecycle["inputs"]["policy"]) == lifecycle_policy(EcrSettings())

    role = _one(records, "aws:iam/role:Role")
    assert role["inputs"]["name"] == "release-pipeline-dev-vbsiv-push"
    assert json.loads(role["inputs"]["assumeRolePolicy"]) == pod_identity_trust_policy(
        "datacollect-dev", "argo-build", "builder-vbsiv"
    )
    resources = _push_policy_resources(_one(records, "aws:iam/rolePolicy:RolePolicy"))
    assert set(resources) == EXPECTED_ACTIONS
    assert {a: r for a, r in resources.items() if a != LOGIN_ACTION} == {
        a: [repo_arn] for a in EXPECTED_ACTIONS - {LOGIN_ACTION}
    }

    association = _one(records, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert association["inputs"]["clusterName"] == "datacollect-dev"
    assert association["inputs"]["namespace"] == "argo-build"
    assert association["inputs"]["serviceAccount"] == "builder-vbsiv"
    assert association["inputs"]["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/release-pipeline-dev-vbsiv-push"
    assert association["inputs"].get("disableSessionTags") is False  # the trust conditions need them

    sa = _one(records, "kubernetes:core/v1:ServiceAccount")
    assert sa["inputs"]["metadata"]["name"] == "builder-vbsiv"
    assert sa["inputs"]["metadata"]["namespace"] == "argo-build"
    assert sa["inputs"]["automountServiceAccountToken"] is False
    assert IRSA_ROLE_ANNOTATION not in sa["inputs"]["metadata"].get("annotations", {})

    assert outputs == {
        "repository_url": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dev/datacollect-vbsiv",
        "repository_arn": repo_arn,
        "repository_name": "dev/datacollect-vbsiv",
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/release-pipeline-dev-vbsiv-push",
        "service_account_name": "builder-vbsiv",
    }


def test_harness_irsa_annotates_the_service_account_and_makes_no_association() -> None:
    records, outputs = _run(_args(identity=Irsa(mode="irsa", oidc_provider_arn=OIDC_ARN)))
    assert not [r for r in records if r["type"].startswith("aws:eks/")]
    role = _one(records, "aws:iam/role:Role")
    assert json.loads(role["inputs"]["assumeRolePolicy"]) == irsa_trust_policy(OIDC_ARN, "argo-build", "builder-vbsiv")
    sa = _one(records, "kubernetes:core/v1:ServiceAccount")
    assert sa["inputs"]["metadata"]["annotations"] == {IRSA_ROLE_ANNOTATION: outputs["role_arn"]}
    assert sa["inputs"]["automountServiceAccountToken"] is False


def test_harness_kms_prefix_and_cache_tag_from_settings() -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
    ecr = EcrSettings(kms_key_arn=key, cache_tag="layers")
    records, _ = _run(_args(ecr=ecr, repository_prefix="shared"))
    repo = _one(records, "aws:ecr/repository:Repository")
    _check_repository(repo, "shared/datacollect-vbsiv", cache_tag="layers")
    assert repo["inputs"]["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key}]


def test_harness_63_character_service_name() -> None:
    records, outputs = _run(_args(service=_service(LONG_NAME, "long")), name=LONG_NAME)
    role = _one(records, "aws:iam/role:Role")
    assert len(role["inputs"]["name"]) <= names.IAM_NAME_MAX
    assert names.is_dns1123_label(outputs["service_account_name"])


# ----------------------------------------------------------------- component: real stack

RenderStack = Callable[..., tuple[list[dict[str, Any]], Any]]


@pytest.fixture
def render(request: pytest.FixtureRequest) -> RenderStack:
    try:
        return request.getfixturevalue("render_stack")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no render_stack fixture yet (render engine not merged)")


def _services_text(drop: str | None = None) -> str:
    data = yaml.safe_load(SERVICES_FILE.read_text(encoding="utf-8"))
    data["services"] = [s for s in data["services"] if s["name"] != drop]
    return yaml.safe_dump(data, sort_keys=False)


def _repositories(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["parent"]: r for r in resources if r["type"] == "aws:ecr/repository:Repository"}


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_rendered_repositories_and_push_policy(render: RenderStack, stack: str) -> None:
    settings = load_stack_settings(PROJECT_DIR, stack)
    resources, _ = render(stack)
    repos = _repositories(resources)
    assert repos, "every service deployed to the stack has a repository"
    for service, repo in sorted(repos.items()):
        name = repo["inputs"]["name"]
        assert name.startswith(f"{settings.ecr_prefix}/")
        _check_repository(repo, name, settings.ecr.cache_tag)
        encryption = repo["inputs"]["encryptionConfigurations"][0]["encryptionType"]
        assert encryption == ("KMS" if settings.ecr.kms_key_arn else "AES256")
        role_policy = next(
            r for r in resources if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["parent"] == service
        )
        repo_arn = f"arn:aws:ecr:{settings.aws.region}:{settings.aws.account_id}:repository/{name}"
        for action, arns in _push_policy_resources(role_policy).items():
            assert arns == (["*"] if action == LOGIN_ACTION else [repo_arn])


def test_rendered_builder_identity_matches_the_stack_setting(render: RenderStack) -> None:
    settings = load_stack_settings(PROJECT_DIR, "dev")
    resources, _ = render("dev")
    for service in _repositories(resources):
        sa = next(r for r in resources if r["type"] == "kubernetes:core/v1:ServiceAccount" and r["parent"] == service)
        assert sa["inputs"]["metadata"]["name"] == names.builder_service_account_name(service)
        assert sa["inputs"]["metadata"]["namespace"] == settings.namespaces.build
        assert sa["inputs"]["automountServiceAccountToken"] is False
        associations = [
            r
            for r in resources
            if r["type"] == "aws:eks/podIdentityAssociation:PodIdentityAssociation" and r["parent"] == service
        ]
        assert len(associations) == (1 if isinstance(settings.identity, PodIdentity) else 0)


def test_removing_a_service_deletes_no_ecr_repository(render: RenderStack) -> None:
    before, _ = render("dev", services_text=_services_text())
    after, _ = render("dev", services_text=_services_text(drop="labeling-api"))
    repos_before, repos_after = _repositories(before), _repositories(after)
    # The removed service's repository is simply absent from the new program. On
    # `pulumi up` the engine plans a delete for every resource in state that the program
    # no longer registers, but for a resource whose state says retainOnDelete it only
    # drops it from the state and never calls the provider's Delete: the repository and
    # its images stay in ECR. retain_on_delete must therefore be true in the render
    # *before* the removal, because that is the state the delete is planned from.
    assert repos_before["labeling-api"]["options"]["retain_on_delete"] is True
    assert "labeling-api" not in repos_after
    assert not [r for r in after if r["parent"] == "labeling-api"]
    # The other services' repositories are untouched.
    assert repos_after["vbsiv"] == repos_before["vbsiv"]

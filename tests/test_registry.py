"""ServiceRegistry: lifecycle, push policy and trust builders (pure), and the component.

Component tests come in two kinds:
- through the recording harness of tests/harness.py, which runs just the component under
  `pulumi.runtime.set_mocks`, for settings variants the stack files do not have
  (IRSA, KMS, a 63-character service name);
- through the `render_stack` fixture of tests/conftest.py (the real program, a real
  stack), skipped with a reason while that fixture does not exist.
Both see resources in the `resources.json` shape: camelCase inputs, parent by
logical name, options.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockResourceArgs

from components import names
from components.config import EcrSettings, Irsa, PodIdentity, Service, load_stack_settings
from components.registry import (
    IMAGE_TAG_MUTABILITY,
    IRSA_ROLE_ANNOTATION,
    LOGIN_ACTION,
    PUSH_ACTIONS,
    READ_ACTIONS,
    ServiceRegistry,
    ServiceRegistryArgs,
    irsa_trust_policy,
    lifecycle_policy,
    oidc_issuer,
    pod_identity_trust_policy,
    policy_json,
    push_policy,
    trust_policy,
)
from tests.conftest import SERVICES_FILE
from tests.harness import EchoMocks, run_under_mocks
from tests.samples import vbsiv

PROJECT_DIR = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
ACCOUNT = "222222222222"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.{REGION}.amazonaws.com/id/0123456789ABCDEF"
REPO_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/dev/datacollect-vbsiv"
LONG_NAME = "s" + "x" * 61 + "e"  # 63 characters, the most a service name may have
EXPECTED_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:DescribeImages",
}


def _service(name: str = "vbsiv", image_repository: str = "datacollect-vbsiv") -> Service:
    return vbsiv(name=name, imageRepository=image_repository)


# --------------------------------------------------------------------- lifecycle policy


def _simulate(policy: dict[str, Any], images: list[tuple[str, int, list[str]]], now: int) -> set[str]:
    """Which images ECR would expire: (digest, pushed at day, tags), newest last.

    Implements the documented evaluation rules this policy relies on: rules run lowest
    priority number first; an image that matches the tag selection of a higher-priority
    rule is never expired by a lower-priority one; a rule still *counts* images that
    other rules claimed or expired.
    Ref: https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html
    """

    def selected(selection: dict[str, Any], tags: list[str]) -> bool:
        status = selection["tagStatus"]
        if status == "any":
            return True
        if status == "untagged":
            return not tags
        return bool(tags) and all(p in tags for p in selection["tagPatternList"])  # exact patterns only

    expired: set[str] = set()
    claimed: set[str] = set()
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        sel = rule["selection"]
        matching = [(d, day) for d, day, tags in images if selected(sel, tags)]
        if sel["countType"] == "imageCountMoreThan":
            newest_first = sorted(matching, key=lambda m: -m[1])
            candidates = [d for d, _ in newest_first[sel["countNumber"] :]]
        else:
            candidates = [d for d, day in matching if now - day > sel["countNumber"]]
        expired |= {d for d in candidates if d not in claimed}
        claimed |= {d for d, _ in matching}
    return expired


def test_lifecycle_rules_have_unique_ascending_priorities_and_any_last() -> None:
    rules = lifecycle_policy(EcrSettings())["rules"]
    priorities = [r["rulePriority"] for r in rules]
    assert priorities == sorted(set(priorities)), "unique, listed in the order ECR returns them"
    any_rules = [r for r in rules if r["selection"]["tagStatus"] == "any"]
    assert len(any_rules) == 1
    assert any_rules[0]["rulePriority"] == max(priorities)
    assert [r["selection"]["tagStatus"] for r in rules].count("untagged") == 1


def test_lifecycle_values_come_from_settings() -> None:
    rules = lifecycle_policy(EcrSettings(keep_images=30, untagged_expire_days=3, cache_tag="layers"))["rules"]
    by_status = {r["selection"]["tagStatus"]: r["selection"] for r in rules}
    assert by_status["any"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30}
    assert by_status["untagged"]["countType"] == "sinceImagePushed"
    assert by_status["untagged"]["countUnit"] == "days"
    assert by_status["untagged"]["countNumber"] == 3
    assert by_status["tagged"]["tagPatternList"] == ["layers"]


def test_cache_tag_is_claimed_by_a_rule_before_keep_last() -> None:
    ecr = EcrSettings()
    rules = lifecycle_policy(ecr)["rules"]
    cache = [r for r in rules if r["selection"].get("tagPatternList") == [ecr.cache_tag]]
    assert len(cache) == 1
    keep_last = next(r for r in rules if r["selection"]["tagStatus"] == "any")
    assert cache[0]["rulePriority"] < keep_last["rulePriority"]
    # One tag names one image, so "more than 1" can never expire the cache.
    assert cache[0]["selection"]["countType"] == "imageCountMoreThan"
    assert cache[0]["selection"]["countNumber"] >= 1
    assert "*" not in ecr.cache_tag


def test_simulated_ecr_keeps_an_old_cache_image_and_the_last_n() -> None:
    policy = lifecycle_policy(EcrSettings(keep_images=3, untagged_expire_days=7))
    images = [
        ("cache", 0, ["buildcache"]),  # oldest of all: builds were skipped for a while
        ("old-untagged", 1, []),
        ("r1", 10, ["a" * 40]),
        ("r2", 11, ["b" * 40]),
        ("r3", 12, ["c" * 40]),
        ("r4", 13, ["d" * 40]),
        ("r5", 14, ["e" * 40]),
        ("new-untagged", 14, []),
    ]
    expired = _simulate(policy, images, now=15)
    assert "cache" not in expired
    assert "new-untagged" not in expired  # younger than 7 days: the untagged rule owns it
    assert {"old-untagged", "r1", "r2", "r3"} <= expired
    assert {"r4", "r5"}.isdisjoint(expired)


# --------------------------------------------------------------------------- push policy


def test_push_policy_has_exactly_the_listed_actions() -> None:
    statements = push_policy(REPO_ARN)["Statement"]
    actions = [a for s in statements for a in s["Action"]]
    assert sorted(actions) == sorted(EXPECTED_ACTIONS), "each action once, nothing else"
    assert set(PUSH_ACTIONS) | set(READ_ACTIONS) | {LOGIN_ACTION} == EXPECTED_ACTIONS
    assert all("*" not in a for a in actions)


def test_only_get_authorization_token_is_on_star_everything_else_on_the_repository() -> None:
    for statement in push_policy(REPO_ARN)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, "no NotAction/NotResource/Condition"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if LOGIN_ACTION in statement["Action"]:
            assert statement["Action"] == [LOGIN_ACTION]
            assert resources == ["*"]
        else:
            assert resources == [REPO_ARN]


def test_policy_json_is_deterministic() -> None:
    doc = push_policy(REPO_ARN)
    assert policy_json(doc) == policy_json(json.loads(policy_json(doc)))
    assert policy_json(doc) == json.dumps(doc, sort_keys=True)


# ------------------------------------------------------------------------ trust policies


def test_pod_identity_trust_is_pinned_to_cluster_namespace_and_service_account() -> None:
    (statement,) = pod_identity_trust_policy("datacollect-dev", "argo-build", "builder-vbsiv")["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert statement["Condition"] == {
        "StringEquals": {
            "aws:RequestTag/eks-cluster-name": "datacollect-dev",
            "aws:RequestTag/kubernetes-namespace": "argo-build",
            "aws:RequestTag/kubernetes-service-account": "builder-vbsiv",
        }
    }


def test_irsa_trust_checks_sub_and_aud_of_the_issuer() -> None:
    issuer = f"oidc.eks.{REGION}.amazonaws.com/id/0123456789ABCDEF"
    assert oidc_issuer(OIDC_ARN) == issuer
    (statement,) = irsa_trust_policy(OIDC_ARN, "argo-build", "builder-vbsiv")["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": "system:serviceaccount:argo-build:builder-vbsiv",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }


def test_trust_policy_follows_the_identity_mode() -> None:
    pod = trust_policy(PodIdentity(), "c", "ns", "sa")["Statement"][0]
    irsa = trust_policy(Irsa(mode="irsa", oidc_provider_arn=OIDC_ARN), "c", "ns", "sa")["Statement"][0]
    assert "Service" in pod["Principal"]
    assert "Federated" in irsa["Principal"]


def test_oidc_issuer_rejects_other_arns() -> None:
    with pytest.raises(ValueError):
        oidc_issuer(f"arn:aws:iam::{ACCOUNT}:role/something")


# --------------------------------------------------------------------------------- names


@pytest.mark.parametrize("environment", ["dev", "sandbox", "integration", "live"])
def test_role_name_fits_iam_even_for_a_63_character_service(environment: str) -> None:
    role = names.iam_role_name(environment, LONG_NAME, "push")
    assert len(role) <= names.IAM_NAME_MAX
    assert role != names.iam_role_name(environment, LONG_NAME[:-1] + "f", "push")


def test_builder_service_account_is_a_dns_label_even_for_a_63_character_service() -> None:
    assert names.builder_service_account_name("vbsiv") == "builder-vbsiv"
    long_sa = names.builder_service_account_name(LONG_NAME)
    assert names.is_dns1123_label(long_sa)
    assert long_sa != names.builder_service_account_name(LONG_NAME[:-1] + "f")


# ----------------------------------------------------------------- component: under mocks


def _outputs(args: MockResourceArgs) -> dict[str, Any]:
    """Plausible outputs: ARNs and URLs as AWS shapes them, for one region/account."""
    name = args.inputs.get("name") or args.name
    if args.typ == "aws:ecr/repository:Repository":
        return {
            "arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}",
            "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}",
            "registryId": ACCOUNT,
        }
    if args.typ == "aws:iam/role:Role":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
    return {}


def _id(args: MockResourceArgs) -> str | None:
    """A repository's and a role's id is its name, as in AWS."""
    if args.typ in ("aws:ecr/repository:Repository", "aws:iam/role:Role"):
        return str(args.inputs.get("name") or args.name)
    return None


def _run(args: ServiceRegistryArgs, name: str = "vbsiv") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Register one ServiceRegistry under mocks; return (records, resolved outputs)."""
    outputs: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        registry = ServiceRegistry(name, args)
        keys = ("repository_url", "repository_arn", "repository_name", "role_arn", "service_account_name")
        return pulumi.Output.all(*(getattr(registry, k) for k in keys)).apply(
            lambda values: outputs.update(zip(keys, values, strict=True))
        )

    return run_under_mocks(program, EchoMocks(_outputs, _id)), outputs


def _args(**changes: Any) -> ServiceRegistryArgs:
    values: dict[str, Any] = {
        "service": _service(),
        "environment": "dev",
        "repository_prefix": "dev",
        "ecr": EcrSettings(),
        "identity": PodIdentity(),
        "cluster_name": "datacollect-dev",
        "build_namespace": "argo-build",
    } | changes
    return ServiceRegistryArgs(**values)


def _one(records: list[dict[str, Any]], type_token: str, parent: str | None = None) -> dict[str, Any]:
    found = [r for r in records if r["type"] == type_token and (parent is None or r["parent"] == parent)]
    assert len(found) == 1, f"expected one {type_token}, found {[r['name'] for r in found]}"
    return found[0]


def _push_policy_resources(role_policy: dict[str, Any]) -> dict[str, list[str]]:
    statements = json.loads(role_policy["inputs"]["policy"])["Statement"]
    return {
        a: (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        for s in statements
        for a in s["Action"]
    }


def _check_repository(repo: dict[str, Any], name: str, cache_tag: str = "buildcache") -> None:
    assert repo["options"]["retain_on_delete"] is True
    assert repo["options"]["protect"] is False  # protect would make `pulumi destroy` fail
    inputs = repo["inputs"]
    assert inputs["name"] == name
    assert inputs["imageTagMutability"] == IMAGE_TAG_MUTABILITY
    assert inputs["imageTagMutabilityExclusionFilters"] == [{"filter": cache_tag, "filterType": "WILDCARD"}]
    assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert inputs["forceDelete"] is False


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


# ------------------------------------------------------- build once, promote many


from components.config import Settings  # noqa: E402
from components.registry import (  # noqa: E402
    PROMOTE_READ_ACTIONS,
    promote_source,
    pull_through_cache_policy,
    pull_through_cache_trust_policy,
    upstream_registry_url,
)


def _promoting(**promote_from: str) -> Settings:
    data = load_stack_settings(PROJECT_DIR, "live").model_dump(by_alias=True, exclude_none=True)
    data["promoteFrom"] = {"environment": "integration", **promote_from}
    return Settings.model_validate(data)


REPO_ARN = "arn:aws:ecr:us-east-1:222222222222:repository/live/datacollect-vbsiv"


def test_push_policy_without_a_promote_source_is_the_old_one() -> None:
    assert push_policy(REPO_ARN, None) == push_policy(REPO_ARN)
    assert [s["Sid"] for s in push_policy(REPO_ARN)["Statement"]] == ["RegistryLogin", "PushAndCacheThisRepository"]


def test_same_account_and_region_reads_exactly_the_upstream_repository() -> None:
    source = promote_source(_promoting(), _service())
    assert source is not None and source.same_registry
    assert source.repository == "integration/datacollect-vbsiv"
    assert source.repository_arn == "arn:aws:ecr:us-east-1:222222222222:repository/integration/datacollect-vbsiv"
    extra = push_policy(REPO_ARN, source)["Statement"][2]
    assert extra == {"Sid": "ReadPromoteSource", "Effect": "Allow", "Action": sorted(PROMOTE_READ_ACTIONS),
                     "Resource": [source.repository_arn]}


def test_upstream_prefix_is_the_upstream_stacks_setting() -> None:
    source = promote_source(_promoting(repositoryPrefix="int"), _service())
    assert source is not None and source.repository == "int/datacollect-vbsiv"


@pytest.mark.parametrize("where", [{"accountId": "111111111111"}, {"region": "eu-west-1"}])
def test_another_account_or_region_goes_through_the_pull_through_cache(where: dict[str, str]) -> None:
    settings = _promoting(**where)
    source = promote_source(settings, _service())
    assert source is not None and not source.same_registry
    assert source.repository == "promoted/datacollect-vbsiv"
    assert source.repository_arn == "arn:aws:ecr:us-east-1:222222222222:repository/promoted/datacollect-vbsiv"
    account, region = where.get("accountId", "222222222222"), where.get("region", "us-east-1")
    assert source.upstream_repository_arn == (
        f"arn:aws:ecr:{region}:{account}:repository/integration/datacollect-vbsiv")
    assert upstream_registry_url(settings) == f"{account}.dkr.ecr.{region}.amazonaws.com"
    statement = push_policy(REPO_ARN, source)["Statement"][2]
    assert statement["Resource"] == [source.repository_arn]
    assert "ecr:BatchImportUpstreamImage" in statement["Action"]
    policy = pull_through_cache_policy(settings)
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources == {
        "RegistryLogin": "*",
        "ReadUpstream": [f"arn:aws:ecr:{region}:{account}:repository/integration/*"],
        "FillCache": ["arn:aws:ecr:us-east-1:222222222222:repository/promoted/*"],
    }
    trust = pull_through_cache_trust_policy("222222222222")["Statement"][0]
    assert trust["Principal"] == {"Service": "pullthroughcache.ecr.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "222222222222"}}


def test_no_promote_source_when_off_or_not_deployed_upstream() -> None:
    assert promote_source(load_stack_settings(PROJECT_DIR, "live"), _service()) is None
    live_only = _service().model_copy(update={"environments": ["live"]})
    assert promote_source(_promoting(), live_only) is None


@pytest.mark.parametrize(
    ("promote_from", "message"),
    [
        ({"environment": "live"}, "another stack"),
        ({"environment": "integration", "repositoryPrefix": "live"}, "own repositories"),
        ({"environment": "integration", "accountId": "111111111111", "cachePrefix": "live"}, "cachePrefix"),
    ],
)
def test_promote_from_is_validated(promote_from: dict[str, str], message: str) -> None:
    data = load_stack_settings(PROJECT_DIR, "live").model_dump(by_alias=True, exclude_none=True)
    data["promoteFrom"] = promote_from
    with pytest.raises(ValueError, match=message):
        Settings.model_validate(data)


def test_harness_push_policy_reads_the_promote_source() -> None:
    source = promote_source(_promoting(), _service())
    records, _ = _run(_args(promote_source=source))
    role_policy = _one(records, "aws:iam/rolePolicy:RolePolicy")
    statements = json.loads(role_policy["inputs"]["policy"])["Statement"]
    assert statements[-1]["Resource"] == [source.repository_arn]


# ------------------------------------------- promotion cache: the component under mocks


import ast  # noqa: E402

from components.registry import (  # noqa: E402
    PROMOTION_CACHE_TYPE,
    PULL_THROUGH_CACHE_ACTIONS,
    PULL_THROUGH_PRINCIPAL,
    PULL_THROUGH_UPSTREAM_ACTIONS,
    PromotionCache,
    PromotionCacheArgs,
)

LIVE_ACCOUNT, LIVE_REGION = "222222222222", "us-east-1"  # Pulumi.live.yaml
PTC_ROLE = names.iam_role_name("live", "integration", "ptc")
PTC_ROLE_ARN = f"arn:aws:iam::{LIVE_ACCOUNT}:role/{PTC_ROLE}"


def _ptc_outputs(args: MockResourceArgs) -> dict[str, Any]:
    if args.typ == "aws:iam/role:Role":
        return {"arn": f"arn:aws:iam::{LIVE_ACCOUNT}:role/{args.inputs.get('name') or args.name}"}
    return {}


def _run_cache(settings: Settings, name: str = "promotion-cache") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Register one PromotionCache under mocks; return (records, resolved outputs)."""
    outputs: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        cache = PromotionCache(name, PromotionCacheArgs(settings=settings))
        return pulumi.Output.all(cache.rule_prefix, cache.role_arn).apply(
            lambda values: outputs.update(rule_prefix=values[0], role_arn=values[1])
        )

    return run_under_mocks(program, EchoMocks(_ptc_outputs, _id), stack="live"), outputs


@pytest.mark.parametrize(
    ("where", "account", "region"),
    [
        ({"accountId": "111111111111"}, "111111111111", LIVE_REGION),
        ({"region": "eu-west-1"}, LIVE_ACCOUNT, "eu-west-1"),
    ],
    ids=["other-account", "other-region"],
)
def test_harness_promotion_cache(where: dict[str, str], account: str, region: str) -> None:
    settings = _promoting(**where, repositoryPrefix="int", cachePrefix="from-int")
    assert not settings.promote_same_registry
    records, outputs = _run_cache(settings)

    # The component and exactly its three children, parented and named `<name>-<role>`.
    component = _one(records, PROMOTION_CACHE_TYPE)
    assert component["name"] == "promotion-cache" and component["parent"] is None
    children = {r["name"]: r["type"] for r in records if r is not component}
    assert children == {
        "promotion-cache-role": "aws:iam/role:Role",
        "promotion-cache-policy": "aws:iam/rolePolicy:RolePolicy",
        "promotion-cache-rule": "aws:ecr/pullThroughCacheRule:PullThroughCacheRule",
    }
    assert all(r["parent"] == "promotion-cache" for r in records if r is not component)

    # The rule: `from-int/<repo>` here pulls through to `int/<repo>` in the upstream ECR,
    # with the rule's own role (ECR-to-ECR needs no Secrets Manager credential).
    rule = _one(records, "aws:ecr/pullThroughCacheRule:PullThroughCacheRule", "promotion-cache")
    assert rule["inputs"] == {
        "ecrRepositoryPrefix": "from-int",
        "upstreamRegistryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com",
        "upstreamRepositoryPrefix": "int",
        "customRoleArn": PTC_ROLE_ARN,
    }
    assert "promotion-cache-policy" in rule["options"]["depends_on"], "the role can act before the rule is used"

    # The role: only ECR's pull-through cache, and only on behalf of this (live) account.
    role = _one(records, "aws:iam/role:Role", "promotion-cache")
    assert role["inputs"]["name"] == PTC_ROLE
    (trust,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust == {
        "Sid": "EcrPullThroughCache",
        "Effect": "Allow",
        "Principal": {"Service": PULL_THROUGH_PRINCIPAL},
        "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceAccount": LIVE_ACCOUNT}},
    }
    assert PULL_THROUGH_PRINCIPAL == "pullthroughcache.ecr.amazonaws.com"

    # Its policy: read exactly `int/*` upstream, import and write `from-int/*` here.
    policy = _one(records, "aws:iam/rolePolicy:RolePolicy", "promotion-cache")
    assert policy["inputs"]["role"] == PTC_ROLE  # role.id, the role's name
    assert policy["inputs"]["name"] == "pull-through-cache"
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    assert set(statements) == {"RegistryLogin", "ReadUpstream", "FillCache"}
    assert all(s["Effect"] == "Allow" and set(s) == {"Sid", "Effect", "Action", "Resource"}
               for s in statements.values())
    assert statements["RegistryLogin"]["Action"] == [LOGIN_ACTION]
    assert statements["RegistryLogin"]["Resource"] == "*"
    assert statements["ReadUpstream"]["Action"] == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert statements["ReadUpstream"]["Action"] == sorted(PULL_THROUGH_UPSTREAM_ACTIONS)
    assert statements["ReadUpstream"]["Resource"] == [f"arn:aws:ecr:{region}:{account}:repository/int/*"]
    assert statements["FillCache"]["Action"] == sorted(PULL_THROUGH_CACHE_ACTIONS)
    assert {"ecr:BatchImportUpstreamImage", "ecr:PutImage"} <= set(statements["FillCache"]["Action"])
    assert statements["FillCache"]["Resource"] == [f"arn:aws:ecr:{LIVE_REGION}:{LIVE_ACCOUNT}:repository/from-int/*"]

    assert outputs == {"rule_prefix": "from-int", "role_arn": PTC_ROLE_ARN}


def test_harness_promotion_cache_default_prefixes() -> None:
    records, outputs = _run_cache(_promoting(accountId="111111111111"), name="ptc")
    assert {r["name"] for r in records if r["parent"] == "ptc"} == {"ptc-role", "ptc-policy", "ptc-rule"}
    rule = _one(records, "aws:ecr/pullThroughCacheRule:PullThroughCacheRule", "ptc")
    assert rule["inputs"]["ecrRepositoryPrefix"] == "promoted"
    assert rule["inputs"]["upstreamRepositoryPrefix"] == "integration"
    assert outputs["rule_prefix"] == "promoted"


@pytest.mark.parametrize(
    "where",
    [{}, {"accountId": LIVE_ACCOUNT}, {"region": LIVE_REGION}, {"accountId": LIVE_ACCOUNT, "region": LIVE_REGION}],
    ids=["defaults", "own-account", "own-region", "own-both"],
)
def test_no_promotion_cache_for_the_same_account_and_region(where: dict[str, str]) -> None:
    settings = _promoting(**where)
    assert settings.promote_same_registry  # __main__.py's decision: no PromotionCache
    with pytest.raises(ValueError, match="another account or region"):
        _run_cache(settings)


def test_promote_same_registry_is_false_when_off_or_elsewhere() -> None:
    assert not load_stack_settings(PROJECT_DIR, "live").promote_same_registry
    assert not _promoting(accountId="111111111111").promote_same_registry
    assert not _promoting(region="eu-west-1").promote_same_registry
    assert not _promoting(accountId="111111111111", region=LIVE_REGION).promote_same_registry


def test_main_creates_the_promotion_cache_only_for_another_registry() -> None:
    """__main__.py has no decision function: the guard around `PromotionCache(...)` is the decision."""
    tree = ast.parse((PROJECT_DIR / "__main__.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "PromotionCache"]
    assert len(calls) == 1
    guards = [n for n in ast.walk(tree) if isinstance(n, ast.If) and any(c in ast.walk(n) for c in calls)]
    assert [ast.unparse(g.test) for g in guards] == [
        "settings.promote_from is not None and (not settings.promote_same_registry)"
    ]

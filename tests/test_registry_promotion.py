"""Build once, promote many: the promote source, the pull-through cache and its component.

Pure builders, and `PromotionCache` through the recording harness of tests/harness.py.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockResourceArgs

from components import names
from components.config import Settings, load_stack_settings
from components.registry import (
    LOGIN_ACTION,
    PROMOTE_READ_ACTIONS,
    PROMOTION_CACHE_TYPE,
    PULL_THROUGH_CACHE_ACTIONS,
    PULL_THROUGH_PRINCIPAL,
    PULL_THROUGH_UPSTREAM_ACTIONS,
    PromotionCache,
    PromotionCacheArgs,
    promote_source,
    pull_through_cache_policy,
    pull_through_cache_trust_policy,
    push_policy,
    upstream_registry_url,
)
from tests.harness import EchoMocks, run_under_mocks
from tests.registry_support import (
    PROJECT_DIR,
    _args,
    _id,
    _one,
    _run,
    _service,
)

# ------------------------------------------------------- build once, promote many


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

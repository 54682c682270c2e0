"""ServiceRegistry's pure builders: lifecycle, push policy, trust policies and names.

The component: tests/test_registry_component.py; build once, promote many:
tests/test_registry_promotion.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components import names
from components.config import EcrSettings, Irsa, PodIdentity
from components.registry import (
    LOGIN_ACTION,
    PUSH_ACTIONS,
    READ_ACTIONS,
    irsa_trust_policy,
    lifecycle_policy,
    oidc_issuer,
    pod_identity_trust_policy,
    policy_json,
    push_policy,
    trust_policy,
)
from tests.registry_support import (
    ACCOUNT,
    EXPECTED_ACTIONS,
    LONG_NAME,
    OIDC_ARN,
    REGION,
    REPO_ARN,
)

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

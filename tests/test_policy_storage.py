"""What holds data (`policy/release_policies/storage.py`).

`ecr-immutable-scanned-encrypted` and `retained-on-delete` report the violations they
exist for; retention is judged on the options the engine shows a policy.
"""

from __future__ import annotations

from typing import Any

from tests.policy_support import (
    CONFIG_FILE,
    CRD,
    CTX,
    ECR,
    ROLLOUT,
    SECRET,
    BadCase,
    assert_reports,
    bad_cases,
    ecr_repository,
    policy_messages,
    rp,
)

BAD: list[BadCase] = [
    # ecr-immutable-scanned-encrypted
    ("ecr-mutable", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutability="MUTABLE", imageTagMutabilityExclusionFilters=[]), "MUTABLE", {}, CTX),
    ("ecr-mutability-unset", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutability=None, imageTagMutabilityExclusionFilters=None), "unset", {}, CTX),
    ("ecr-wildcard-exclusion", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutabilityExclusionFilters=[{"filter": "*", "filterType": "WILDCARD"}]),
     "only the build cache tag", {}, CTX),
    ("ecr-two-exclusions", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutabilityExclusionFilters=[{"filter": "buildcache", "filterType": "WILDCARD"},
                                                        {"filter": "latest", "filterType": "WILDCARD"}]),
     "2 filter", {}, CTX),
    ("ecr-latest-excluded", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutabilityExclusionFilters=[{"filter": "latest", "filterType": "WILDCARD"}]),
     "'buildcache'", {}, CTX),
    ("ecr-no-scan", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageScanningConfiguration={"scanOnPush": False}), "scanOnPush", {}, CTX),
    ("ecr-scan-unset", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageScanningConfiguration=None), "scanOnPush", {}, CTX),
    ("ecr-no-encryption", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(encryptionConfigurations=[]), "encryptionConfigurations", {}, CTX),
    # retained-on-delete
    ("ecr-protected", "retained-on-delete", ECR, ecr_repository(), "options.protect",
     {"protect": True, "retain_on_delete": True}, CTX),
    ("ecr-not-retained", "retained-on-delete", ECR, ecr_repository(), "options.retain_on_delete",
     {"protect": False, "retain_on_delete": False}, CTX),
    ("ecr-force-delete", "retained-on-delete", ECR, ecr_repository(forceDelete=True), "forceDelete",
     {"protect": False}, CTX),
    ("crd-file-not-retained", "retained-on-delete", CONFIG_FILE,
     {"file": "https://raw.githubusercontent.com/argoproj/argo-cd/v3.4.4/manifests/crds/application-crd.yaml"},
     "retain_on_delete", {"protect": False, "retain_on_delete": False}, CTX),
    ("crd-protected", "retained-on-delete", CRD, {"metadata": {"name": "workflows.argoproj.io"}},
     "options.protect", {"protect": True}, CTX),
    ("rollout-not-retained", "retained-on-delete", ROLLOUT, {"spec": {}}, "retain_on_delete",
     {"retain_on_delete": False}, CTX),
]


@bad_cases(BAD)
def test_each_policy_reports_its_violation(
    policy: str, resource_type: str, inputs: Any, fragment: str, options: dict, context: rp.Context
) -> None:
    assert_reports(policy, resource_type, inputs, fragment, options, context)


def test_retention_is_judged_on_what_the_engine_shows() -> None:
    # Under Pulumi, options carry no retain_on_delete: the check then judges protect only.
    assert policy_messages("retained-on-delete", ECR, ecr_repository(), {"protect": False}) == []
    assert policy_messages("retained-on-delete", ECR, ecr_repository(), {"protect": True})
    # Only the kinds that hold data are held to it.
    assert policy_messages("retained-on-delete", SECRET, {}, {"protect": False, "retain_on_delete": False}) == []

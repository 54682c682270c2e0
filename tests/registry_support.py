"""Shared by the ServiceRegistry tests: sample ARNs, the expected push actions, a sample
service, and the recording harness that runs one ServiceRegistry under mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockResourceArgs

from components.config import EcrSettings, PodIdentity, Service
from components.registry import (
    IMAGE_TAG_MUTABILITY,
    ServiceRegistry,
    ServiceRegistryArgs,
)
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

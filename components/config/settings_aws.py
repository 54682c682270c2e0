"""Stack settings about AWS: account and region, the EKS cluster, how platform pods get
IAM roles (Pod Identity or IRSA), the ECR repositories, and `promoteFrom` (build once,
promote many: whose repositories an image may be copied from).

Owns: those models and what each refuses on its own. Does not own: the rule that a
`promoteFrom` names its upstream stack's actual registry, nor one cluster per stack
(`components.config.rules`), nor the resources (`components.registry`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from components.config.fields import ACCOUNT_PATTERN, REGION_PATTERN, Environment, Model


class AwsSettings(Model):
    region: Annotated[str, Field(pattern=REGION_PATTERN)] = Field(
        description="AWS region of the stack's cluster and ECR repositories.",
        examples=["eu-west-1"],
    )
    account_id: Annotated[str, Field(pattern=ACCOUNT_PATTERN)] = Field(
        description="AWS account of the stack, quoted.",
        examples=["123456789012"],
    )


class ClusterSettings(Model):
    """The EKS cluster of this stack; exactly one of kubeContext or kubeconfig."""

    name: Annotated[str, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")] = Field(
        description="Name of the stack's EKS cluster.",
        examples=["release-dev"],
    )
    kube_context: str | None = Field(
        default=None,
        description="kubeconfig context that reaches the cluster (exactly one of kubeContext or kubeconfig).",
        examples=["arn:aws:eks:eu-west-1:123456789012:cluster/release-dev"],
    )
    kubeconfig: str | None = Field(
        default=None,
        description="Path of a kubeconfig file, read at deploy time (exactly one of kubeContext or kubeconfig).",
        examples=["~/.kube/release-dev"],
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.kube_context is None) == (self.kubeconfig is None):
            raise ValueError("set exactly one of 'kubeContext' or 'kubeconfig'")
        return self


class PodIdentity(Model):
    """EKS Pod Identity: the agent add-on maps a ServiceAccount to a role."""

    mode: Literal["pod-identity"] = Field(
        default="pod-identity",
        description="EKS Pod Identity: the agent add-on maps each ServiceAccount to its IAM role.",
    )


class Irsa(Model):
    """IAM Roles for Service Accounts through the cluster's OIDC provider."""

    mode: Literal["irsa"] = Field(description="IAM Roles for Service Accounts through the cluster's OIDC provider.")
    oidc_provider_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$")] = Field(
        description="ARN of the cluster's IAM OIDC provider.",
        examples=["arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"],
    )


KMS_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z]{2}(-gov)?-[a-z]+-[0-9]:[0-9]{12}:(key|alias)/[A-Za-z0-9/_+=,.@:-]+")


def _kms_arn(value: str) -> str:
    if len(value) > 2048 or not KMS_ARN.fullmatch(value):
        raise ValueError("must be a KMS key or alias ARN: arn:aws:kms:<region>:<12-digit account>:key/<key id> "
                         "or ...:alias/<alias name>")
    return value


KmsArn = Annotated[str, AfterValidator(_kms_arn)]


class EcrSettings(Model):
    repository_prefix: Annotated[str, Field(pattern=r"^([a-z0-9]+([._-][a-z0-9]+)*)?$")] | None = Field(
        default=None,
        description="Prefix of the stack's ECR repository names; left out, the environment name.",
        examples=["dev"],
    )
    keep_images: int = Field(
        default=200,
        ge=1,
        le=10000,
        description="Images each repository keeps; the lifecycle policy expires older ones.",
    )
    untagged_expire_days: int = Field(default=7, ge=1, le=365, description="Days after which untagged images expire.")
    cache_tag: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")] = Field(
        default="buildcache",
        description="Tag of the BuildKit cache image in each repository.",
    )
    # A KMS key or alias ARN (arn:aws:kms:<region>:<account>:key/... or alias/...);
    # default: AES256 (AWS-owned key).
    kms_key_arn: KmsArn | None = Field(
        default=None,
        description="KMS key or alias that encrypts the repositories; left out, AES256 with an AWS-owned key.",
        examples=["arn:aws:kms:eu-west-1:123456789012:alias/ecr"],
    )


class PromoteFrom(Model):
    """Build once, promote many (off by default; docs/optional-features.md, "Build once, promote many").

    Names the upstream stack whose ECR repositories may already hold the commit being
    released (a fast-forward merge from integration's branch to live's). The build
    Workflow then copies that image, by digest, into this stack's repository instead of
    rebuilding it (`scripts/reuse_image.py`). Which mechanism applies
    (`components.registry`): same account and region, the push role reads the upstream
    repository directly; another account or region, an ECR-to-ECR pull-through cache
    rule in this stack mirrors the upstream repositories under `cachePrefix`; from
    another account, the upstream stack grants this account pull on them
    (`upstream_registry_policy`), having read this stack's file. The fields must name
    the upstream stack's own account, region and repository prefix (a cross-stack rule).
    """

    environment: Environment = Field(
        description="Upstream stack whose image of the same commit is copied instead of rebuilt.",
    )
    # Default: this stack's `aws.accountId` / `aws.region`.
    account_id: Annotated[str, Field(pattern=ACCOUNT_PATTERN)] | None = Field(
        default=None,
        description="The upstream stack's AWS account; left out, this stack's.",
        examples=["210987654321"],
    )
    region: Annotated[str, Field(pattern=REGION_PATTERN)] | None = Field(
        default=None,
        description="The upstream stack's AWS region; left out, this stack's.",
        examples=["eu-central-1"],
    )
    # The upstream stack's `ecr.repositoryPrefix` (default: its environment name).
    repository_prefix: Annotated[str, Field(pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*$")] | None = Field(
        default=None,
        description="The upstream stack's ecr.repositoryPrefix; left out, its environment name.",
        examples=["integration"],
    )
    # Repository namespace of the pull-through cache (another account or region only).
    cache_prefix: Annotated[str, Field(pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*$", max_length=30)] = Field(
        default="promoted",
        description="Repository namespace of the pull-through cache (another account or region only).",
    )

    @property
    def upstream_prefix(self) -> str:
        return self.environment if self.repository_prefix is None else self.repository_prefix

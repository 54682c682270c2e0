"""The image registry of one service in one stack, and the identity that may push to it.

Owns, per service and stack:
- the ECR repository `<prefix>/<imageRepository>` (prefix defaults to the environment,
  so four stacks sharing one AWS account never collide), with scan on push, AES256 or
  KMS encryption, `force_delete=False` and `retain_on_delete=True`: removing a service
  from services.yaml or destroying the stack drops the repository from Pulumi's state
  and leaves it, and every image in it, in AWS (images are data; DESIGN.md section 6);
- its lifecycle policy (keep the last N images, expire untagged ones after D days,
  never expire the build cache);
- the IAM role the build step assumes, through EKS Pod Identity or IRSA (stack
  setting `identity`), with an inline policy that can push to this one repository and
  read what a cache import and a skip-if-tag-exists check need, and nothing else;
- the Kubernetes ServiceAccount `builder-<service>` in the build namespace that carries
  that identity.

Tag mutability: release tags are the full git sha and must stay immutable, so a tag
always names the bytes that were tested and promoted, and a re-run cannot overwrite an
image that is already running. BuildKit's registry layer cache
(`--export-cache type=registry,ref=<repo>:<cacheTag>`) needs one *moving* tag, though.
So the repository is `IMMUTABLE_WITH_EXCLUSION` with exactly one WILDCARD exclusion
filter equal to `ecr.cacheTag` (no `*` in it, so it matches that tag alone): every
other tag is immutable. The alternative, a second mutable repository just for the
cache, would double the repositories and the push role's scope for no gain.

Encryption is fixed when a repository is created; changing `ecr.kmsKeyArn` later asks
for a replacement, which fails on the name the retained repository still holds. That is
the safe failure: choose encryption before the first `pulumi up`.

Does not own: the WorkflowTemplate that runs the build under this ServiceAccount (nor
the Argo executor's own ServiceAccount and RBAC), the namespaces, or who may pull the
images (the cluster's nodes pull through their own role).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import names
from components.config import EcrSettings, Irsa, PodIdentity, Service

TYPE = "release-pipeline:components:ServiceRegistry"

IMAGE_TAG_MUTABILITY = "IMMUTABLE_WITH_EXCLUSION"

# Lifecycle rule priorities, evaluated lowest first. The `tagStatus: any` rule must
# carry the highest number.
# Ref: https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html
CACHE_RULE_PRIORITY = 1
UNTAGGED_RULE_PRIORITY = 2
KEEP_LAST_RULE_PRIORITY = 3

# Ref: https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html
PUSH_ACTIONS: tuple[str, ...] = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
# BuildKit's `--import-cache type=registry` pulls the cache manifest and its layers;
# the build step's "skip if the tag already exists" check is a DescribeImages call.
# Ref: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html
READ_ACTIONS: tuple[str, ...] = (
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
)
# GetAuthorizationToken has no resource-level permissions: it must be on "*" (the
# token only logs in; what it may then do is decided per repository by the actions above).
# Ref: https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html
LOGIN_ACTION = "ecr:GetAuthorizationToken"

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
IRSA_AUDIENCE = "sts.amazonaws.com"
IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"


# --------------------------------------------------------------------------- pure builders




def tag_mutability_exclusions(ecr: EcrSettings) -> list[dict[str, str]]:
    """The one tag that may move: the build layer cache (module docstring)."""
    return [{"filter": ecr.cache_tag, "filterType": "WILDCARD"}]


def lifecycle_policy(ecr: EcrSettings) -> dict[str, Any]:
    """ECR lifecycle policy: keep the last `keepImages`, expire untagged, keep the cache.

    ECR evaluates rules lowest priority number first; an image that matches the tag
    selection of a higher-priority rule cannot be expired by a lower-priority one, and
    the `tagStatus: any` rule must have the highest number. Rule 1 therefore claims the
    cache image (one tag names one image, so "more than 1" never expires it) and the
    "keep last N" rule can no longer reach it. The cache image and recent untagged
    images still count towards N (rules "identify them as if they haven't been
    expired"), so N is the number of images kept, not of release tags.
    Ref: https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html
    (Rules are listed in ascending priority: ECR returns them that way, and another
    order would show a diff on every `pulumi up`.)
    """
    return {
        "rules": [
            {
                "rulePriority": CACHE_RULE_PRIORITY,
                "description": f"Never expire the build cache image '{ecr.cache_tag}'",
                "selection": {
                    "tagStatus": "tagged",
                    # A pattern without '*' matches the tag exactly; tagPrefixList would
                    # also claim a git sha that happens to start with the cache tag.
                    "tagPatternList": [ecr.cache_tag],
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": UNTAGGED_RULE_PRIORITY,
                "description": f"Expire untagged images after {ecr.untagged_expire_days} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": ecr.untagged_expire_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": KEEP_LAST_RULE_PRIORITY,
                "description": f"Keep the last {ecr.keep_images} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": ecr.keep_images,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def push_policy(repository_arn: str) -> dict[str, Any]:
    """Inline policy of the push role: log in anywhere, push and read one repository."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RegistryLogin",
                "Effect": "Allow",
                "Action": [LOGIN_ACTION],
                "Resource": "*",
            },
            {
                "Sid": "PushAndCacheThisRepository",
                "Effect": "Allow",
                "Action": sorted(PUSH_ACTIONS + READ_ACTIONS),
                "Resource": [repository_arn],
            },
        ],
    }


def oidc_issuer(oidc_provider_arn: str) -> str:
    """`arn:aws:iam::<acct>:oidc-provider/<issuer>` -> `<issuer>` (the condition key prefix)."""
    _, sep, issuer = oidc_provider_arn.partition(":oidc-provider/")
    if not sep or not issuer:
        raise ValueError(f"not an IAM OIDC provider ARN: {oidc_provider_arn!r}")
    return issuer


def pod_identity_trust_policy(cluster_name: str, namespace: str, service_account: str) -> dict[str, Any]:
    """Trust policy for EKS Pod Identity, pinned to one cluster, namespace and ServiceAccount.

    The association alone already names the ServiceAccount; the session-tag conditions
    keep any *other* association in the account (another cluster, another namespace)
    from using this role. Pod Identity adds these tags unless session tags are disabled
    on the association, which this component never does.
    Ref: https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html
    Ref: https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EksPodIdentityBuilder",
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-name": cluster_name,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": service_account,
                    }
                },
            }
        ],
    }


def irsa_trust_policy(oidc_provider_arn: str, namespace: str, service_account: str) -> dict[str, Any]:
    """Trust policy for IRSA: only this ServiceAccount's projected token, for STS.

    Ref: https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html
    """
    issuer = oidc_issuer(oidc_provider_arn)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "IrsaBuilder",
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": IRSA_AUDIENCE,
                    }
                },
            }
        ],
    }


def trust_policy(
    identity: PodIdentity | Irsa, cluster_name: str, namespace: str, service_account: str
) -> dict[str, Any]:
    """The push role's trust policy for the stack's identity mode."""
    if isinstance(identity, Irsa):
        return irsa_trust_policy(identity.oidc_provider_arn, namespace, service_account)
    return pod_identity_trust_policy(cluster_name, namespace, service_account)


def policy_json(document: dict[str, Any]) -> str:
    """Stable JSON for a policy document: the same input gives the same bytes."""
    return json.dumps(document, sort_keys=True)


# --------------------------------------------------------------------------- component


@dataclass(frozen=True)
class ServiceRegistryArgs:
    """What one service's registry and push identity are made from."""

    service: Service
    """The service, from services.yaml."""
    environment: str
    """The stack's environment (dev, sandbox, integration, live); part of the role name."""
    repository_prefix: str
    """Prefix of the ECR repository name (stack setting; defaults to the environment)."""
    ecr: EcrSettings
    """Lifecycle, cache tag and encryption settings of the stack."""
    identity: PodIdentity | Irsa
    """How the build pod gets AWS credentials: EKS Pod Identity or IRSA."""
    cluster_name: str
    """The stack's EKS cluster (Pod Identity association and trust condition)."""
    build_namespace: pulumi.Input[str]
    """Namespace where build pods run and the builder ServiceAccount lives."""


class ServiceRegistry(pulumi.ComponentResource):
    """ECR repository, lifecycle policy, push role and builder ServiceAccount of one service."""

    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    repository_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    service_account_name: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        service = args.service
        sa_name = names.builder_service_account_name(service.name)
        tags = {"service": service.name}

        repository = aws.ecr.Repository(
            f"{name}-repository",
            name=names.ecr_repository_name(args.repository_prefix, service.image_repository),
            image_tag_mutability=IMAGE_TAG_MUTABILITY,
            image_tag_mutability_exclusion_filters=[
                aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(filter=f["filter"], filter_type=f["filterType"])
                for f in tag_mutability_exclusions(args.ecr)
            ],
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=args.ecr.kms_key_arn)
                if args.ecr.kms_key_arn
                else aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
            ],
            # Never delete images: not through ECR (force_delete) and not through
            # Pulumi (retain_on_delete; `protect` would make `pulumi destroy` fail).
            force_delete=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=policy_json(lifecycle_policy(args.ecr)),
            opts=pulumi.ResourceOptions(parent=self),
        )

        assume_role_policy = pulumi.Output.from_input(args.build_namespace).apply(
            lambda namespace: policy_json(trust_policy(args.identity, args.cluster_name, namespace, sa_name))
        )
        role = aws.iam.Role(
            f"{name}-push-role",
            name=names.iam_role_name(args.environment, service.name, "push"),
            description=f"Build step of {service.name} ({args.environment}): push to its ECR repository",
            assume_role_policy=assume_role_policy,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-push-policy",
            name="push",
            role=role.id,
            policy=repository.arn.apply(lambda arn: policy_json(push_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self),
        )

        annotations: dict[str, pulumi.Input[str]] = {}
        if isinstance(args.identity, Irsa):
            annotations[IRSA_ROLE_ANNOTATION] = role.arn
        else:
            aws.eks.PodIdentityAssociation(
                f"{name}-pod-identity",
                cluster_name=args.cluster_name,
                namespace=args.build_namespace,
                service_account=sa_name,
                role_arn=role.arn,
                # The trust policy's conditions read these session tags.
                disable_session_tags=False,
                tags=tags,
                # Credentials handed out before the policy exists would fail the push.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
            )

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-builder",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=sa_name,
                namespace=args.build_namespace,
                labels={
                    "app.kubernetes.io/managed-by": "release-pipeline",
                    "app.kubernetes.io/component": "builder",
                    "release-pipeline/service": service.name,
                },
                annotations=annotations or None,
            ),
            # The build pod talks to ECR, never to the Kubernetes API, so it gets no API
            # token. IRSA and Pod Identity inject their own projected tokens and do not
            # need this one. The Argo executor (wait container) does need API access; the
            # WorkflowTemplate gives it its own ServiceAccount (`executor.serviceAccountName`).
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.repository_name = repository.name
        self.role_arn = role.arn
        self.service_account_name = service_account.metadata.name
        self.register_outputs(
            {
                "repository_url": self.repository_url,
                "repository_arn": self.repository_arn,
                "repository_name": self.repository_name,
                "role_arn": self.role_arn,
                "service_account_name": self.service_account_name,
            }
        )

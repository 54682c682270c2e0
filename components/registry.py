"""The image registry of one service in one stack, and the identity that may push to it.

Owns, per service and stack:
- the ECR repository `<prefix>/<imageRepository>` (prefix defaults to the environment,
  so four stacks sharing one AWS account never collide), with scan on push, AES256 or
  KMS encryption, `force_delete=False` and `retain_on_delete=True`: removing a service
  from services.yaml or destroying the stack drops the repository from Pulumi's state
  and leaves it, and every image in it, in AWS (images are data; docs/security-model.md, "Invariants");
- its lifecycle policy (keep the last N images, expire untagged ones after D days,
  never expire the build cache);
- the IAM role the build step assumes, through EKS Pod Identity or IRSA (stack
  setting `identity`), with an inline policy that can push to this one repository and
  read what a cache import and a skip-if-tag-exists check need, and nothing else;
- the Kubernetes ServiceAccount `builder-<service>` in the build namespace that carries
  that identity;
- build once, promote many (`promoteFrom`): in a downstream stack, the pull-through
  cache rule that mirrors the upstream repositories from another account or region
  (`PromotionCache`); in the upstream stack, the repository policy that lets the
  downstream stacks' accounts pull this repository through their caches, for exactly
  the sibling stacks that promote from it (`promotion_downstreams`).

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
the Argo executor's own ServiceAccount and RBAC), the namespaces, or who else may pull
the images (the cluster's nodes pull through their own role; nothing grants another
account anything but the promotion grant above), nor the account-wide registry policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import names
from components.config import EcrSettings, Irsa, PodIdentity, Service, Settings

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


# Build once, promote many (stack setting `promoteFrom`): the push role reads the
# upstream copy of the image; through a pull-through cache it may also make ECR import it.
# Ref: https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-private.html
PROMOTE_READ_ACTIONS: tuple[str, ...] = (
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
)
PULL_THROUGH_IMPORT_ACTIONS: tuple[str, ...] = (
    "ecr:BatchImportUpstreamImage",
    "ecr:CreateRepository",
)
PULL_THROUGH_PRINCIPAL = "pullthroughcache.ecr.amazonaws.com"
# What ECR, acting through the pull-through cache rule's role, does: read the upstream
# registry, write the cache repositories of this one.
PULL_THROUGH_UPSTREAM_ACTIONS: tuple[str, ...] = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
PULL_THROUGH_CACHE_ACTIONS: tuple[str, ...] = (
    "ecr:BatchImportUpstreamImage",
    "ecr:CompleteLayerUpload",
    "ecr:GetImageCopyStatus",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
# What the upstream registry must grant the downstream account for ECR-to-ECR pull
# through cache across accounts, "a registry policy or a repository policy"; not needed
# within one account (same account, another region: the rule's role suffices).
# Ref: https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-private.html
#      ("Creating a resource policy in the upstream Amazon ECR registry")
# A repository policy on each promoted repository, not the registry policy: it grants
# exactly the repositories promoted, and the registry policy is one document per account
# and region that this program would overwrite, whoever else manages it (replication,
# other caches); with the registry's default policy scope it may not even hold the read
# actions (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions.html).
UPSTREAM_GRANT_ACTIONS: tuple[str, ...] = (
    "ecr:BatchGetImage",
    "ecr:BatchImportUpstreamImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetImageCopyStatus",
)


# --------------------------------------------------------------------------- pure builders


def ecr_repository_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:ecr:{region}:{account_id}:repository/{name}"


@dataclass(frozen=True)
class PromoteSource:
    """Where the build step looks for this commit's image before building it (`promoteFrom`).

    Which mechanism applies when:
    - same account and region (`same_registry`): `repository` *is* the upstream stack's
      repository `<upstream prefix>/<imageRepository>`. ECR replication cannot help here
      (it only crosses regions or accounts) and the push role may simply read it, so
      `reuse_image.py` copies the image by digest, and its missing blobs, through the
      ECR API.
    - another account or region: replication would have to be configured in the
      *source* registry (the upstream stack's account) and would copy every upstream
      build, promoted or not, into this account under the upstream's repository names.
      An ECR-to-ECR pull-through cache rule instead lives in *this* stack: pulling
      `<cachePrefix>/<imageRepository>` here makes ECR import
      `<upstream prefix>/<imageRepository>` from the upstream registry, by digest and
      only on demand. `repository` is that cache repository; `reuse_image.py` then
      copies from it, in this registry, exactly as above. In another account, the
      upstream repositories must allow this account to pull (`upstream_registry_policy`,
      applied by the upstream stack from this stack's file).
    """

    repository: str
    """Repository in this account and region that `reuse_image.py` reads."""
    repository_arn: str
    upstream_repository_arn: str
    same_registry: bool


def promote_source(settings: Settings, service: Service) -> PromoteSource | None:
    """The promote source of one service, or None (setting off, or no upstream copy of it)."""
    upstream = settings.promote_from
    if upstream is None or upstream.environment not in service.environments:
        return None
    account = upstream.account_id or settings.aws.account_id
    region = upstream.region or settings.aws.region
    upstream_name = names.ecr_repository_name(upstream.upstream_prefix, service.image_repository)
    upstream_arn = ecr_repository_arn(region, account, upstream_name)
    if settings.promote_same_registry:
        return PromoteSource(upstream_name, upstream_arn, upstream_arn, same_registry=True)
    cache_name = names.ecr_repository_name(upstream.cache_prefix, service.image_repository)
    return PromoteSource(cache_name, ecr_repository_arn(settings.aws.region, settings.aws.account_id, cache_name),
                         upstream_arn, same_registry=False)


def upstream_registry_url(settings: Settings) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com` of the `promoteFrom` registry."""
    upstream = settings.promote_from
    if upstream is None:
        raise ValueError("promoteFrom is not set")
    return (f"{upstream.account_id or settings.aws.account_id}.dkr.ecr."
            f"{upstream.region or settings.aws.region}.amazonaws.com")


def _upstream_repositories_arn(settings: Settings) -> str:
    upstream = settings.promote_from
    assert upstream is not None
    return ecr_repository_arn(upstream.region or settings.aws.region, upstream.account_id or settings.aws.account_id,
                              f"{upstream.upstream_prefix}/*")


def pull_through_cache_trust_policy(account_id: str) -> dict[str, Any]:
    """Trust of the pull-through cache rule's role: ECR's pull-through cache, for this account only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EcrPullThroughCache",
                "Effect": "Allow",
                "Principal": {"Service": PULL_THROUGH_PRINCIPAL},
                "Action": ["sts:AssumeRole"],
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def pull_through_cache_policy(settings: Settings) -> dict[str, Any]:
    """What ECR may do with the rule's role: read the upstream repositories, fill the cache ones."""
    upstream = settings.promote_from
    if upstream is None:
        raise ValueError("promoteFrom is not set")
    cache_arn = ecr_repository_arn(settings.aws.region, settings.aws.account_id, f"{upstream.cache_prefix}/*")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "RegistryLogin", "Effect": "Allow", "Action": [LOGIN_ACTION], "Resource": "*"},
            {"Sid": "ReadUpstream", "Effect": "Allow", "Action": sorted(PULL_THROUGH_UPSTREAM_ACTIONS),
             "Resource": [_upstream_repositories_arn(settings)]},
            {"Sid": "FillCache", "Effect": "Allow", "Action": sorted(PULL_THROUGH_CACHE_ACTIONS),
             "Resource": [cache_arn]},
        ],
    }


@dataclass(frozen=True)
class PromotionDownstream:
    """A sibling stack in another account that promotes this stack's images (`promoteFrom`)."""

    environment: str
    account_id: str


def promotion_downstreams(
    settings: Settings, siblings: Mapping[str, Settings], service: Service
) -> tuple[PromotionDownstream, ...]:
    """The sibling stacks to grant pull on this stack's repository of `service`, by environment.

    A sibling qualifies when its `promoteFrom` names this stack's environment and
    resolves to this stack's own account, region and repository prefix (anything else is
    a configuration problem, `components.config.cross_stack_problems`), it lives in
    another account (within one account no resource policy is needed: the downstream's
    push role, or its cache rule's role in another region, has the identity policy), and
    it deploys `service` too (it never promotes the others).
    """
    return tuple(
        PromotionDownstream(environment, sibling.aws.account_id)
        for environment, sibling in sorted(siblings.items())
        if sibling.promote_from is not None
        and sibling.promote_from.environment == settings.environment
        and sibling.promote_from_registry == settings.ecr_registry
        and sibling.aws.account_id != settings.aws.account_id
        and environment in service.environments
    )


def upstream_registry_policy(downstreams: Sequence[PromotionDownstream]) -> dict[str, Any]:
    """The repository policy of an upstream repository: its downstream accounts may pull it through their caches.

    One statement per downstream stack with that stack's account as principal, as AWS
    documents the grant ("grant the downstream registry owner"; `UPSTREAM_GRANT_ACTIONS`).
    No `Resource`: a repository policy applies to its own repository. Applied by the
    upstream stack (`ServiceRegistry`), which learns its downstream stacks from their files.
    """
    if not downstreams:
        raise ValueError("no downstream stack to grant")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"PromoteTo{d.environment.capitalize()}",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{d.account_id}:root"},
                "Action": sorted(UPSTREAM_GRANT_ACTIONS),
            }
            for d in downstreams
        ],
    }


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


def push_policy(repository_arn: str, source: PromoteSource | None = None) -> dict[str, Any]:
    """Inline policy of the push role: log in anywhere, push and read one repository.

    With a promote source: also read exactly that repository (and, through a
    pull-through cache, make ECR import into it); nothing else upstream.
    """
    statements: list[dict[str, Any]] = [
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
    ]
    if source is not None:
        actions = PROMOTE_READ_ACTIONS if source.same_registry else PROMOTE_READ_ACTIONS + PULL_THROUGH_IMPORT_ACTIONS
        statements.append({
            "Sid": "ReadPromoteSource",
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": [source.repository_arn],
        })
    return {"Version": "2012-10-17", "Statement": statements}


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


def bind_identity(
    parent: pulumi.Resource,
    name: str,
    identity: PodIdentity | Irsa,
    *,
    cluster_name: str,
    namespace: pulumi.Input[str],
    service_account: str,
    role: aws.iam.Role,
    role_policy: aws.iam.RolePolicy,
    tags: dict[str, str],
) -> tuple[dict[str, pulumi.Input[str]], list[pulumi.Resource]]:
    """Bind `role` to one ServiceAccount, as the stack's identity mode says.

    Returns the ServiceAccount annotations (IRSA names the role there) and the
    resources the account's users should wait for (Pod Identity's association).
    Both wait for `role_policy`: credentials handed out before the policy exists
    would fail the first call.
    """
    if isinstance(identity, Irsa):
        return {IRSA_ROLE_ANNOTATION: role.arn}, []
    association = aws.eks.PodIdentityAssociation(
        f"{name}-pod-identity",
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        # The trust policy's conditions read these session tags.
        disable_session_tags=False,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[role_policy]),
    )
    return {}, [association]


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
    promote_source: PromoteSource | None = None
    """Where the build step may find this commit's image already built (`promote_source`)."""
    promotion_downstreams: tuple[PromotionDownstream, ...] = ()
    """Sibling stacks in other accounts that promote this repository's images
    (`promotion_downstreams`); their accounts may pull it. None: no repository policy."""


class ServiceRegistry(pulumi.ComponentResource):
    """ECR repository, lifecycle policy, push role and builder ServiceAccount of one service.

    And, when sibling stacks in other accounts promote its images, the repository policy
    that lets them pull it.
    """

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

        if args.promotion_downstreams:
            # Replaces any policy set on the repository by hand: this stack owns it.
            aws.ecr.RepositoryPolicy(
                f"{name}-promotion-grant",
                repository=repository.name,
                policy=policy_json(upstream_registry_policy(args.promotion_downstreams)),
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
            policy=repository.arn.apply(lambda arn: policy_json(push_policy(arn, args.promote_source))),
            opts=pulumi.ResourceOptions(parent=self),
        )

        annotations, _ = bind_identity(
            self, name, args.identity, cluster_name=args.cluster_name, namespace=args.build_namespace,
            service_account=sa_name, role=role, role_policy=role_policy, tags=tags,
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


PROMOTION_CACHE_TYPE = "release-pipeline:components:PromotionCache"


@dataclass(frozen=True)
class PromotionCacheArgs:
    """The stack-wide pull-through cache of `promoteFrom` in another account or region."""

    settings: Settings
    """The stack's settings; `promoteFrom` set and not in this account and region."""


class PromotionCache(pulumi.ComponentResource):
    """ECR-to-ECR pull-through cache rule mirroring the upstream stack's repositories, and its role.

    Only for `promoteFrom` in another account or region (`PromoteSource`). The rule maps
    `<cachePrefix>/<imageRepository>` here to `<upstream prefix>/<imageRepository>` in the
    upstream registry; ECR assumes the role to read upstream and fill the cache. The
    cache repositories are created by ECR on first pull (not managed here, so a
    destroy leaves them and their images, like the service repositories).
    """

    rule_prefix: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: PromotionCacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(PROMOTION_CACHE_TYPE, name, None, opts)
        settings = args.settings
        upstream = settings.promote_from
        if upstream is None or settings.promote_same_registry:
            raise ValueError("PromotionCache is for promoteFrom in another account or region")
        role = aws.iam.Role(
            f"{name}-role",
            name=names.iam_role_name(settings.environment, upstream.environment, "ptc"),
            description=f"ECR pull-through cache of {upstream.environment}'s images for {settings.environment}",
            assume_role_policy=policy_json(pull_through_cache_trust_policy(settings.aws.account_id)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            name="pull-through-cache",
            role=role.id,
            policy=policy_json(pull_through_cache_policy(settings)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        rule = aws.ecr.PullThroughCacheRule(
            f"{name}-rule",
            ecr_repository_prefix=upstream.cache_prefix,
            upstream_registry_url=upstream_registry_url(settings),
            upstream_repository_prefix=upstream.upstream_prefix,
            custom_role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        self.rule_prefix = rule.ecr_repository_prefix
        self.role_arn = role.arn
        self.register_outputs({"rule_prefix": self.rule_prefix, "role_arn": self.role_arn})

"""The registry's Pulumi components: one service's registry and push identity, and the promotion cache.

Owns: `ServiceRegistry` (per service and stack: the ECR repository
`<prefix>/<imageRepository>` with scan on push, its encryption, kept when the service
or the stack goes; its lifecycle policy; the promotion grant when other accounts promote
from it; the push role with its policy; the builder ServiceAccount `builder-<service>`
in the build namespace carrying that identity, with no Kubernetes API token) and
`PromotionCache` (the stack-wide ECR-to-ECR pull-through cache rule and its role, for
`promoteFrom` in another account or region).

Does not own: the policy documents (`registry.policies`, `registry.identity`), the
WorkflowTemplate that runs the build under this ServiceAccount, the executor's own
ServiceAccount, the namespaces, the account-wide registry policy.

Decisions: docs/decisions/0405-ecr-repositories-retained-encryption-fixed.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import names
from components.config import EcrSettings, Irsa, PodIdentity, Service, Settings
from components.registry.identity import (
    bind_identity,
    trust_policy,
)
from components.registry.policies import (
    IMAGE_TAG_MUTABILITY,
    PromoteSource,
    PromotionDownstream,
    lifecycle_policy,
    policy_json,
    pull_through_cache_policy,
    pull_through_cache_trust_policy,
    push_policy,
    tag_mutability_exclusions,
    upstream_registry_policy,
    upstream_registry_url,
)

TYPE = "release-pipeline:components:ServiceRegistry"


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

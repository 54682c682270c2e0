"""The registry's pure builders: ECR repository settings and the IAM and repository policies.

Owns: tag mutability (immutable, one exclusion for the build-cache tag), the lifecycle
policy (keep the last N images, expire untagged ones, never the cache), the push role's
inline policy (push to one repository, read what a cache import and the skip-if-tag-
exists check need, and with `promoteFrom` read the upstream copy), build once, promote
many (`PromoteSource`, the pull-through cache rule's role and policy, the upstream
repository policy for exactly the downstream stacks in other accounts), and stable
policy JSON.

Does not own: the trust policies and identity binding (`registry.identity`), the
Pulumi resources (`registry.component`).

Decisions: docs/decisions/0404-ecr-immutable-tags-with-one-cache-exclusion.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components import names
from components.config import EcrSettings, Service, Settings

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
    """The one tag that may move: the build layer cache (decision 0404)."""
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


def policy_json(document: dict[str, Any]) -> str:
    """Stable JSON for a policy document: the same input gives the same bytes."""
    return json.dumps(document, sort_keys=True)

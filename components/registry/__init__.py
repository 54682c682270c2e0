"""The image registry of one service in one stack, and the identity that may push to it.

Owns, per service and stack: the ECR repository `<prefix>/<imageRepository>` (prefix
defaults to the environment, so four stacks sharing one AWS account never collide),
its lifecycle policy, the IAM role the build step assumes through EKS Pod Identity or
IRSA with a policy for this one repository, and the builder ServiceAccount
`builder-<service>` carrying that identity; build once, promote many (`promoteFrom`):
the pull-through cache in a downstream stack (`PromotionCache`) and the grant in the
upstream one for exactly the stacks that promote from it (`promotion_downstreams`).

Modules: `policies` (repository settings and policy documents), `identity` (trust
policies, binding a role to a ServiceAccount), `component` (the Pulumi resources).

Does not own: the WorkflowTemplate that runs the build under this ServiceAccount (nor
the Argo executor's own ServiceAccount and RBAC), the namespaces, or who else may pull
the images (the cluster's nodes pull through their own role; nothing grants another
account anything but the promotion grant), nor the account-wide registry policy.

Decisions: docs/decisions/0404-ecr-immutable-tags-with-one-cache-exclusion.md,
docs/decisions/0405-ecr-repositories-retained-encryption-fixed.md.
"""

from components.registry.component import (
    PROMOTION_CACHE_TYPE,
    PromotionCache,
    PromotionCacheArgs,
    ServiceRegistry,
    ServiceRegistryArgs,
)
from components.registry.identity import (
    IRSA_ROLE_ANNOTATION,
    bind_identity,
    irsa_trust_policy,
    oidc_issuer,
    pod_identity_trust_policy,
    trust_policy,
)
from components.registry.policies import (
    IMAGE_TAG_MUTABILITY,
    LOGIN_ACTION,
    PROMOTE_READ_ACTIONS,
    PULL_THROUGH_CACHE_ACTIONS,
    PULL_THROUGH_PRINCIPAL,
    PULL_THROUGH_UPSTREAM_ACTIONS,
    PUSH_ACTIONS,
    READ_ACTIONS,
    UPSTREAM_GRANT_ACTIONS,
    PromoteSource,
    PromotionDownstream,
    lifecycle_policy,
    policy_json,
    promote_source,
    promotion_downstreams,
    pull_through_cache_policy,
    pull_through_cache_trust_policy,
    push_policy,
    upstream_registry_policy,
    upstream_registry_url,
)

__all__ = [
    "IMAGE_TAG_MUTABILITY",
    "IRSA_ROLE_ANNOTATION",
    "LOGIN_ACTION",
    "PROMOTE_READ_ACTIONS",
    "PROMOTION_CACHE_TYPE",
    "PULL_THROUGH_CACHE_ACTIONS",
    "PULL_THROUGH_PRINCIPAL",
    "PULL_THROUGH_UPSTREAM_ACTIONS",
    "PUSH_ACTIONS",
    "READ_ACTIONS",
    "UPSTREAM_GRANT_ACTIONS",
    "PromoteSource",
    "PromotionCache",
    "PromotionCacheArgs",
    "PromotionDownstream",
    "ServiceRegistry",
    "ServiceRegistryArgs",
    "bind_identity",
    "irsa_trust_policy",
    "lifecycle_policy",
    "oidc_issuer",
    "pod_identity_trust_policy",
    "policy_json",
    "promote_source",
    "promotion_downstreams",
    "pull_through_cache_policy",
    "pull_through_cache_trust_policy",
    "push_policy",
    "trust_policy",
    "upstream_registry_policy",
    "upstream_registry_url",
]

"""Who may do what, inside the cluster: Argo CD projects per team and Kubernetes RBAC.

Owns: one Argo CD `AppProject` per team; every ServiceAccount the pipeline's own pods
and the Argo Workflows UI act as (Sensors, executors, release accounts, SSO accounts),
with Roles that let each do its one job in the namespaces where it does it (no
ClusterRole, no ClusterRoleBinding, no `*`); the long-lived token Secrets
(`<sa>.service-account-token`) Argo Workflows reads for the SSO and executor accounts.
Who may do what, account by account: docs/security-model.md.

Modules: `rbac` (constants, object builders, each account's rules), `manifests` (which
object exists in which namespace), `component` (the Pulumi resources).

Does not own: Argo CD's RBAC policy (`policy.csv`), Dex and the Argo Server's SSO
settings (`components.helm_values`); the Sensors and WorkflowTemplates that use these
ServiceAccounts; the builder ServiceAccount `builder-<service>` (`components.registry`).

Decisions: docs/decisions/0400-pipeline-service-accounts-least-privilege.md,
docs/decisions/0401-release-accounts-shared-and-named-roles.md,
docs/decisions/0402-sso-accounts-by-precedence.md,
docs/decisions/0403-appproject-namespaced-blacklist.md,
docs/decisions/0140-sso-rbac-in-the-build-namespace.md.

Ref: https://argo-cd.readthedocs.io/en/stable/user-guide/projects/,
https://argo-workflows.readthedocs.io/en/latest/argo-server-sso/#sso-rbac
"""

from components.access.component import TYPE, Access, AccessArgs
from components.access.manifests import access_manifests
from components.access.rbac import (
    ARGO_API_VERSION,
    ARGO_GROUP,
    IN_CLUSTER,
    NEWEST_WINS_ROLE,
    PRECEDENCE_ADMIN,
    PRECEDENCE_DEFAULT,
    PRECEDENCE_TEAM,
    RBAC_RULE,
    RBAC_RULE_PRECEDENCE,
    RELEASES_ROLE,
    TOKEN_SECRET_SA_ANNOTATION,
    TOKEN_SECRET_TYPE,
    labels,
    role,
    role_binding,
    rule,
    service_account,
    token_secret_name,
)

__all__ = [
    "ARGO_API_VERSION",
    "ARGO_GROUP",
    "IN_CLUSTER",
    "NEWEST_WINS_ROLE",
    "PRECEDENCE_ADMIN",
    "PRECEDENCE_DEFAULT",
    "PRECEDENCE_TEAM",
    "RBAC_RULE",
    "RBAC_RULE_PRECEDENCE",
    "RELEASES_ROLE",
    "TOKEN_SECRET_SA_ANNOTATION",
    "TOKEN_SECRET_TYPE",
    "TYPE",
    "Access",
    "AccessArgs",
    "access_manifests",
    "labels",
    "role",
    "role_binding",
    "rule",
    "service_account",
    "token_secret_name",
]

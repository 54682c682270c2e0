"""RBAC building blocks of `components.access`: constants, object builders and the rules of each account.

Owns: the names and verbs every Role here is made of (`rule`, one PolicyRule with
sorted lists), the plain-dict builders of ServiceAccounts, token Secrets, Roles and
RoleBindings (shared bindings list each subject once, sorted), the labels of every
object of the pipeline's own, and the rules of each account: the Sensors, the
executor, the release accounts (own objects, shared, newest-wins) and the Argo
Workflows SSO accounts with their `rbac-rule` annotations.

Does not own: which account gets which Role in which namespace (`access.manifests`),
the Pulumi resources (`access.component`).

Decisions: docs/decisions/0400-pipeline-service-accounts-least-privilege.md,
docs/decisions/0401-release-accounts-shared-and-named-roles.md,
docs/decisions/0402-sso-accounts-by-precedence.md,
docs/decisions/0403-appproject-namespaced-blacklist.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from components import names
from components.config import Service

PIPELINE = "release-pipeline"

IN_CLUSTER = "https://kubernetes.default.svc"
ARGO_API_VERSION = "argoproj.io/v1alpha1"
RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
ARGO_GROUP = "argoproj.io"
RBAC_GROUP = "rbac.authorization.k8s.io"
CORE_GROUP = ""

# Roles (and their bindings) shared by release accounts in the workflows and build
# namespaces: every release account's, and the newest-wins ones' (decision 0401).
# No per-service Role lives in those namespaces, so no `release-<service>` name clashes.
RELEASES_ROLE = "releases"
NEWEST_WINS_ROLE = "releases-newest-wins"

SSO_DEFAULT = "sso-default"
SSO_ADMIN = "sso-admin"
SSO_READ_ROLE = "sso-read"
SSO_ADMIN_ROLE = "sso-admin"

# Argo Workflows SSO RBAC and service-account token Secrets.
RBAC_RULE = "workflows.argoproj.io/rbac-rule"
RBAC_RULE_PRECEDENCE = "workflows.argoproj.io/rbac-rule-precedence"
PRECEDENCE_DEFAULT = 0
PRECEDENCE_TEAM = 10
PRECEDENCE_ADMIN = 20
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
TOKEN_SECRET_SA_ANNOTATION = "kubernetes.io/service-account.name"
# What the verify step patches onto the Application (the Role allows the patch).
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"

# Verbs, each the least its holder needs (decisions 0400, 0401).
SENSOR_WORKFLOW_VERBS: tuple[str, ...] = ("create", "get")
EXECUTOR_VERBS: tuple[str, ...] = ("create", "patch")
APPLICATION_VERBS: tuple[str, ...] = ("get", "list", "patch", "watch")
ROLLOUT_VERBS: tuple[str, ...] = ("get", "list", "watch")
# Slack threads: `slack_thread.py` records the thread on the Rollout (decision 0401).
SLACK_THREAD_ROLLOUT_VERBS: tuple[str, ...] = ("patch",)
DEPLOYMENT_VERBS: tuple[str, ...] = ("get",)
# What Argo's `resource` template does with the child build Workflow (decision 0401).
BUILD_WORKFLOW_VERBS: tuple[str, ...] = ("create", "get")
# Newest-wins: what `supersede.py` does (decision 0401).
SUPERSEDE_RELEASE_VERBS: tuple[str, ...] = ("get", "list", "patch")
SUPERSEDE_BUILD_VERBS: tuple[str, ...] = ("list", "patch")
APPS_GROUP = "apps"
READ_VERBS: tuple[str, ...] = ("get", "list", "watch")
ADMIN_WORKFLOW_VERBS: tuple[str, ...] = ("create", "delete", "patch", "update")

# Namespaced kinds no team chart may create (decision 0403).
NAMESPACE_RESOURCE_BLACKLIST: tuple[dict[str, str], ...] = (
    {"group": CORE_GROUP, "kind": "LimitRange"},
    {"group": CORE_GROUP, "kind": "ResourceQuota"},
    {"group": ARGO_GROUP, "kind": "*"},
)

Manifest = dict[str, object]




def labels(component: str, **extra: str) -> dict[str, str]:
    """Labels of every object here: who manages it and which part of the pipeline it serves."""
    return {"app.kubernetes.io/managed-by": PIPELINE, "app.kubernetes.io/component": component} | {
        f"{PIPELINE}/{key}": value for key, value in sorted(extra.items())
    }


def rule(group: str, resources: Iterable[str], verbs: Iterable[str],
         resource_names: Iterable[str] = ()) -> dict[str, list[str]]:
    """One RBAC PolicyRule, every list sorted (and `resourceNames` only when given)."""
    result = {"apiGroups": [group], "resources": sorted(resources), "verbs": sorted(verbs)}
    named = sorted(resource_names)
    if named:
        result["resourceNames"] = named
    return result


def sso_team_service_account_name(team: str) -> str:
    """ServiceAccount the Argo Workflows server uses for a team's members."""
    return names.check_k8s_name(names.bounded(f"sso-team-{team}", names.DNS1123_LABEL_MAX))


def token_secret_name(service_account: str) -> str:
    """The name Argo Workflows looks a ServiceAccount's token Secret up by."""
    return names.check_k8s_name(f"{service_account}.service-account-token", label=False)


def service_account(name: str, namespace: str, component: str, *,
                    annotations: Mapping[str, str] | None = None, automount: bool | None = None,
                    **extra_labels: str) -> Manifest:
    metadata: dict[str, object] = {"name": names.check_k8s_name(name), "namespace": namespace,
                                   "labels": labels(component, **extra_labels)}
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    manifest: Manifest = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}
    if automount is not None:
        manifest["automountServiceAccountToken"] = automount
    return manifest


def token_secret(service_account_name: str, namespace: str, component: str) -> Manifest:
    """A long-lived token Secret for a ServiceAccount; the token controller fills it in."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": TOKEN_SECRET_TYPE,
        "metadata": {
            "name": token_secret_name(service_account_name),
            "namespace": namespace,
            "labels": labels(component),
            "annotations": {TOKEN_SECRET_SA_ANNOTATION: service_account_name},
        },
    }


def role(name: str, namespace: str, rules: list[dict[str, list[str]]], component: str,
         **extra_labels: str) -> Manifest:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": {"name": names.check_k8s_name(name), "namespace": namespace,
                     "labels": labels(component, **extra_labels)},
        "rules": rules,
    }


def role_binding(name: str, namespace: str, role_name: str, subject: tuple[str, str], component: str,
                 **extra_labels: str) -> Manifest:
    """Binds one ServiceAccount `(name, namespace)` to a Role of `namespace`."""
    return shared_role_binding(name, namespace, role_name, [subject], component, **extra_labels)


def shared_role_binding(name: str, namespace: str, role_name: str, subjects: Iterable[tuple[str, str]],
                        component: str, **extra_labels: str) -> Manifest:
    """Binds ServiceAccounts `(name, namespace)` to a Role of `namespace`; subjects sorted, each once."""
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": {"name": names.check_k8s_name(name), "namespace": namespace,
                     "labels": labels(component, **extra_labels)},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}
                     for sa_namespace, sa_name in sorted({(ns, sa) for sa, ns in subjects})],
    }


def sensor_rules() -> list[dict[str, list[str]]]:
    """The Sensors may start Workflows (and read them back), nothing else."""
    return [rule(ARGO_GROUP, ["workflows"], SENSOR_WORKFLOW_VERBS)]


def executor_rules() -> list[dict[str, list[str]]]:
    """What every workflow pod's `wait` container needs: its WorkflowTaskResult."""
    return [rule(ARGO_GROUP, ["workflowtaskresults"], EXECUTOR_VERBS)]


def application_rules(service: str, environment: str) -> list[dict[str, list[str]]]:
    """Refresh and follow the service's own Application (Argo CD namespace)."""
    return [rule(ARGO_GROUP, ["applications"], APPLICATION_VERBS, [names.application_name(service, environment)])]


def rollout_rules(service: str, slack_threads: bool = False) -> list[dict[str, list[str]]]:
    """Follow the service's own Rollout (service namespace); with Slack threads, annotate it."""
    verbs = set(ROLLOUT_VERBS) | (set(SLACK_THREAD_ROLLOUT_VERBS) if slack_threads else set())
    return [rule(ARGO_GROUP, ["rollouts"], verbs, [names.rollout_name(service)])]


def service_namespace_rules(service: Service, slack_threads: bool = False) -> list[dict[str, list[str]]]:
    """The verify step in the service's namespace: its Rollout, and the chart's Deployment it references."""
    return [
        *rollout_rules(service.name, slack_threads),
        rule(APPS_GROUP, ["deployments"], DEPLOYMENT_VERBS, [service.deployment]),
    ]


def build_workflow_rules() -> list[dict[str, list[str]]]:
    """Start the child build Workflow and follow it (build namespace; every release account)."""
    return [rule(ARGO_GROUP, ["workflows"], BUILD_WORKFLOW_VERBS)]


def release_workflow_rules() -> list[dict[str, list[str]]]:
    """Every release account in the workflows namespace: its steps' task results."""
    return executor_rules()


def supersede_release_rules() -> list[dict[str, list[str]]]:
    """Newest-wins: list this service's releases and stop them (workflows namespace)."""
    return [rule(ARGO_GROUP, ["workflows"], SUPERSEDE_RELEASE_VERBS)]


def supersede_build_rules() -> list[dict[str, list[str]]]:
    """Newest-wins: list those releases' child builds and stop them (build namespace)."""
    return [rule(ARGO_GROUP, ["workflows"], SUPERSEDE_BUILD_VERBS)]


def sso_read_rules() -> list[dict[str, list[str]]]:
    """Read-only view of the Argo Workflows UI, logs included."""
    return [
        rule(ARGO_GROUP, ["cronworkflows", "workflows", "workflowtemplates"], READ_VERBS),
        rule(CORE_GROUP, ["pods"], READ_VERBS),
        rule(CORE_GROUP, ["pods/log"], ["get"]),
    ]


def sso_admin_rules(*, submit: bool = True) -> list[dict[str, list[str]]]:
    """The read-only view plus submit, resubmit, retry, stop, terminate and delete of Workflows.

    `submit=False` (the build namespace) leaves out `create`: a child build is started by
    its release only, so an admin may stop, retry or delete one but not submit or resubmit
    a build outside a release.
    """
    verbs = ADMIN_WORKFLOW_VERBS if submit else tuple(v for v in ADMIN_WORKFLOW_VERBS if v != "create")
    return [
        *sso_read_rules(),
        rule(ARGO_GROUP, ["workflows"], verbs),
        rule(CORE_GROUP, ["pods"], ["delete"]),
    ]


def team_rbac_rule(organization: str, slugs: Iterable[str]) -> str:
    """`rbac-rule` expression matching members of any of the GitHub teams (Dex `<org>:<slug>` groups)."""
    return " || ".join(f"'{organization}:{slug}' in groups" for slug in sorted(set(slugs)))


def sso_annotations(rule_expression: str, precedence: int) -> dict[str, str]:
    return {RBAC_RULE: rule_expression, RBAC_RULE_PRECEDENCE: str(precedence)}

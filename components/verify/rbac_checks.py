"""What each ServiceAccount of the render must and must not be allowed, asked of the server.

Owns: the expectation table (below, declarative: one row per kind of ServiceAccount,
named by its `app.kubernetes.io/component` label), turning it into concrete
SubjectAccessReviews from the render (which namespaces play which role, which
services, Applications, Rollouts and Deployments exist), and judging the answers:
every "must" allowed, every "must not" denied. A ServiceAccount the render creates
that no row covers is itself a finding, so a new account cannot go unchecked.

The intent comes from docs/security-model.md and components/access/; the rows do
NOT read the render's Roles (that would check the Roles against themselves): they
read only which objects exist.

Does not own: the Roles (components.access, slack_relay, registry), the HTTP call.

Not covered: the ServiceAccounts the Helm charts create (controllers, servers, the
image updater's): the render holds only what the program registers itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from components.verify.apply import Manifest
from components.verify.client import ApiClient, ApiError
from components.verify.report import StackReport

ARGO = "argoproj.io"
CORE = ""
RBAC = "rbac.authorization.k8s.io"
APPS = "apps"


@dataclass(frozen=True)
class Ask:
    """One question: may `verb` `group/resource[/subresource]` (named `name`) in `namespace` role?"""

    allowed: bool
    verb: str
    group: str
    resource: str  # "pods/log" names a subresource
    where: str  # namespace role: events, workflows, build, argocd, rollouts, service, own, other-service, cluster
    name: str = ""  # "application", "other-application", "rollout", "deployment": resolved per service


def must(verb: str, group: str, resource: str, where: str, name: str = "") -> Ask:
    return Ask(True, verb, group, resource, where, name)


def must_not(verb: str, group: str, resource: str, where: str, name: str = "") -> Ask:
    return Ask(False, verb, group, resource, where, name)


# What no account of the program may do anywhere: read Secrets through the API, start
# or exec into pods, grant itself more, or see cluster-scoped objects.
_EVERYWHERE: tuple[Ask, ...] = tuple(
    ask
    for where in ("events", "workflows", "build", "argocd", "rollouts", "service")
    for ask in (
        must_not("get", CORE, "secrets", where),
        must_not("list", CORE, "secrets", where),
        must_not("create", CORE, "pods", where),
        must_not("create", CORE, "pods/exec", where),
        must_not("create", RBAC, "rolebindings", where),
        must_not("escalate", RBAC, "roles", where),
        must_not("create", ARGO, "workflowtemplates", where),
    )
)
EVERYONE_MUST_NOT: tuple[Ask, ...] = (
    *_EVERYWHERE,
    must_not("list", CORE, "namespaces", "cluster"),
    must_not("create", RBAC, "clusterrolebindings", "cluster"),
    must_not("impersonate", CORE, "serviceaccounts", "cluster"),
)

# Component label of the ServiceAccount -> what it must / must not do besides the above.
EXPECTATIONS: dict[str, tuple[Ask, ...]] = {
    # Creates one Workflow per merged PR, in the workflows namespace only.
    "sensor": (
        must("create", ARGO, "workflows", "workflows"),
        must("get", ARGO, "workflows", "workflows"),
        must_not("create", ARGO, "workflows", "build"),
        must_not("create", ARGO, "workflows", "events"),
        must_not("create", ARGO, "workflows", "argocd"),
        must_not("create", ARGO, "workflows", "service"),
        must_not("delete", ARGO, "workflows", "workflows"),
        must_not("update", ARGO, "workflows", "workflows"),
        must_not("list", ARGO, "workflows", "workflows"),
        must_not("create", ARGO, "workflowtaskresults", "workflows"),
    ),
    # The wait container of every step: records step results in its own namespace.
    "executor": (
        must("create", ARGO, "workflowtaskresults", "own"),
        must("patch", ARGO, "workflowtaskresults", "own"),
        must_not("create", ARGO, "workflows", "own"),
        must_not("get", ARGO, "workflows", "own"),
        must_not("create", ARGO, "workflowtaskresults", "events"),
    ),
    # The release Workflow of one service.
    "release": (
        must("create", ARGO, "workflowtaskresults", "workflows"),
        must("create", ARGO, "workflows", "build"),
        must("get", ARGO, "workflows", "build"),
        must("get", ARGO, "applications", "argocd", "application"),
        must("patch", ARGO, "applications", "argocd", "application"),
        must("get", ARGO, "rollouts", "own-service", "rollout"),
        must("get", APPS, "deployments", "own-service", "deployment"),
        must_not("get", ARGO, "applications", "argocd", "other-application"),
        must_not("patch", ARGO, "applications", "argocd", "other-application"),
        must_not("delete", ARGO, "applications", "argocd", "application"),
        must_not("create", ARGO, "applications", "argocd"),
        must_not("update", APPS, "deployments", "own-service", "deployment"),
        must_not("delete", ARGO, "rollouts", "own-service", "rollout"),
        must_not("create", ARGO, "workflows", "events"),
        must_not("delete", ARGO, "workflows", "build"),
    ),
    # Runs team code and BuildKit: no Kubernetes API at all.
    "builder": (
        must_not("create", ARGO, "workflowtaskresults", "build"),
        must_not("create", ARGO, "workflows", "build"),
        must_not("get", ARGO, "workflows", "build"),
        must_not("get", CORE, "configmaps", "build"),
    ),
    # The Argo Workflows UI acting for a signed-in person (read-only; sso-admin below).
    "sso": (
        must("list", ARGO, "workflows", "workflows"),
        must("get", ARGO, "workflows", "workflows"),
        must("list", ARGO, "workflowtemplates", "workflows"),
        must("get", CORE, "pods/log", "workflows"),
        must("list", ARGO, "workflows", "build"),
        must("get", CORE, "pods/log", "build"),
        must_not("create", ARGO, "workflows", "build"),
        must_not("update", ARGO, "workflowtemplates", "workflows"),
        must_not("delete", ARGO, "workflowtemplates", "workflows"),
    ),
    # Replies in a release's Slack thread: reads and annotates Applications, reads Rollouts.
    "slack-relay": (
        must("get", ARGO, "applications", "argocd", "threaded-application"),
        must("patch", ARGO, "applications", "argocd", "threaded-application"),
        must("get", ARGO, "rollouts", "threaded-rollout", "threaded-rollout"),
        must_not("patch", ARGO, "applications", "argocd", "unthreaded-application"),
        must_not("get", ARGO, "rollouts", "unthreaded-rollout", "unthreaded-rollout"),
        must_not("create", ARGO, "workflows", "workflows"),
        must_not("delete", ARGO, "applications", "argocd"),
        must_not("create", ARGO, "applications", "argocd"),
        must_not("patch", ARGO, "rollouts", "service"),
    ),
}
# sso accounts: everyone but the admin must not change Workflows; the admin must.
SSO_READER_MUST_NOT = (
    must_not("create", ARGO, "workflows", "workflows"),
    must_not("delete", ARGO, "workflows", "workflows"),
)
SSO_ADMIN_MUST = (
    must("delete", ARGO, "workflows", "workflows"),
    must("create", ARGO, "workflows", "workflows"),
    must("delete", CORE, "pods", "workflows"),
    # The child builds: stop, retry and delete them, never submit one outside a release.
    must("get", ARGO, "workflows", "build"),
    must("patch", ARGO, "workflows", "build"),
    must("delete", ARGO, "workflows", "build"),
)
SSO_ADMIN_NAME = "sso-admin"
# An Application's or Rollout's notification subscription that the Slack relay serves.
SUBSCRIBE = "notifications.argoproj.io/subscribe."
RELAY_SUBSCRIPTION = ".slack-thread"
THREADED_NAMES = ("threaded-application", "threaded-rollout", "unthreaded-application", "unthreaded-rollout")


@dataclass(frozen=True)
class Account:
    namespace: str
    name: str
    component: str
    service: str  # release/builder accounts: the service; else ""

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> list[str]:
        return ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"]


@dataclass
class Context:
    """What the render holds that the rows refer to."""

    roles: dict[str, list[str]]  # namespace role -> namespace names
    applications: dict[str, str]  # service -> Application name
    rollouts: dict[str, tuple[str, str, str]]  # service -> (namespace, Rollout name, Deployment name)
    # Objects whose notifications go to the Slack relay (a `...slack-thread` subscription), and the others.
    threaded: dict[str, list[tuple[str, str]]]  # "threaded-application" etc. -> [(namespace, name)]


def _labels(manifest: Manifest) -> dict[str, Any]:
    return (manifest.get("metadata") or {}).get("labels") or {}


def context_of(manifests: list[Manifest]) -> Context:
    roles: dict[str, list[str]] = {}
    applications: dict[str, str] = {}
    rollouts: dict[str, tuple[str, str, str]] = {}
    for m in manifests:
        kind, metadata, labels = m["kind"], m["metadata"], _labels(m)
        service = str(labels.get("release-pipeline/service", ""))
        if kind == "Namespace":
            role = str(labels.get("release-pipeline/role", "service"))
            roles.setdefault(role, []).append(metadata["name"])
        elif kind == "Application" and service:
            applications[service] = metadata["name"]
        elif kind == "Rollout" and service:
            workload = ((m.get("spec") or {}).get("workloadRef") or {}).get("name", metadata["name"])
            rollouts[service] = (metadata.get("namespace", ""), metadata["name"], str(workload))
    threaded: dict[str, list[tuple[str, str]]] = {}
    for m in manifests:
        if m["kind"] not in ("Application", "Rollout") or not m["apiVersion"].startswith("argoproj.io/"):
            continue
        annotations = m["metadata"].get("annotations") or {}
        on = any(k.startswith(SUBSCRIBE) and k.endswith(RELAY_SUBSCRIPTION) for k in annotations)
        key = f"{'threaded' if on else 'unthreaded'}-{m['kind'].lower()}"
        threaded.setdefault(key, []).append((m["metadata"].get("namespace", ""), m["metadata"]["name"]))
    return Context({k: sorted(v) for k, v in roles.items()}, applications, rollouts,
                   {k: sorted(v) for k, v in threaded.items()})


def accounts_of(manifests: list[Manifest]) -> list[Account]:
    accounts = []
    for m in manifests:
        if m["kind"] != "ServiceAccount":
            continue
        labels = _labels(m)
        accounts.append(Account(m["metadata"].get("namespace", ""), m["metadata"]["name"],
                                str(labels.get("app.kubernetes.io/component", "")),
                                str(labels.get("release-pipeline/service", ""))))
    return sorted(accounts, key=lambda a: (a.namespace, a.name))


def asks_for(account: Account) -> tuple[Ask, ...] | None:
    rows = EXPECTATIONS.get(account.component)
    if rows is None:
        return None
    if account.component == "sso":
        rows = rows + (SSO_ADMIN_MUST if account.name == SSO_ADMIN_NAME else SSO_READER_MUST_NOT)
    return rows + EVERYONE_MUST_NOT


def resolve(ask: Ask, account: Account, ctx: Context) -> Iterator[dict[str, str]]:
    """The SubjectAccessReview resourceAttributes of one row (none when the render has no such place)."""
    if ask.name in THREADED_NAMES:
        for namespace, name in ctx.threaded.get(ask.name, [])[:1 if ask.name.startswith("un") else None]:
            yield _attributes(ask, namespace, name)
        return
    if ask.where == "cluster":
        namespaces = [""]
    elif ask.where == "own":
        namespaces = [account.namespace]
    elif ask.where == "own-service":
        namespaces = [ctx.rollouts[account.service][0]] if account.service in ctx.rollouts else []
    else:
        namespaces = ctx.roles.get(ask.where, [])[:1] if ask.where != "service" else ctx.roles.get("service", [])
    names = [""]
    if ask.name == "application":
        names = [ctx.applications[account.service]] if account.service in ctx.applications else []
    elif ask.name == "other-application":
        names = sorted(n for s, n in ctx.applications.items() if s != account.service)[:1]
    elif ask.name in ("rollout", "deployment"):
        entry = ctx.rollouts.get(account.service)
        names = [entry[1] if ask.name == "rollout" else entry[2]] if entry else []
    for namespace in namespaces:
        for name in names:
            yield _attributes(ask, namespace, name)


def _attributes(ask: Ask, namespace: str, name: str) -> dict[str, str]:
    resource, _, subresource = ask.resource.partition("/")
    attributes = {"verb": ask.verb, "group": ask.group, "resource": resource}
    if subresource:
        attributes["subresource"] = subresource
    if namespace:
        attributes["namespace"] = namespace
    if name:
        attributes["name"] = name
    return attributes


def shown(attributes: dict[str, str]) -> str:
    what = attributes["resource"] + (f"/{attributes['subresource']}" if "subresource" in attributes else "")
    if attributes.get("group"):
        what = f"{what}.{attributes['group']}"
    if "name" in attributes:
        what = f"{what} {attributes['name']!r}"
    where = f"in namespace {attributes['namespace']}" if "namespace" in attributes else "cluster-wide"
    return f"{attributes['verb']} {what} {where}"


def check_access(client: ApiClient, manifests: list[Manifest], report: StackReport) -> None:
    ctx = context_of(manifests)
    for account in accounts_of(manifests):
        subject = f"ServiceAccount {account.namespace}/{account.name}"
        asks = asks_for(account)
        if asks is None:
            report.rbac.failed += 1
            report.fail("rbac", subject, f"no expectation for component {account.component!r}: add a row to "
                                         "components/verify/rbac_checks.py EXPECTATIONS")
            continue
        for ask in asks:
            for attributes in resolve(ask, account, ctx):
                try:
                    answer = client.access_review(account.user, account.groups, attributes)
                except ApiError as exc:
                    report.rbac.failed += 1
                    report.fail("rbac", subject, f"{shown(attributes)}: no answer ({exc})")
                    continue
                allowed = bool((answer.body.get("status") or {}).get("allowed"))
                if not answer.ok:
                    report.rbac.failed += 1
                    report.fail("rbac", subject, f"{shown(attributes)}: review refused: {answer.reason}")
                elif allowed == ask.allowed:
                    report.rbac.passed += 1
                else:
                    report.rbac.failed += 1
                    verdict = "must be allowed but is denied" if ask.allowed else "must be denied but is allowed"
                    why = (answer.body.get("status") or {}).get("reason", "")
                    report.fail("rbac", subject, f"{shown(attributes)}: {verdict}" + (f" ({why})" if why else ""))

"""Who may do what, inside the cluster: Argo CD projects per team and Kubernetes RBAC.

Owns:
- one Argo CD `AppProject` per team (the `project` of this environment's services) in
  the Argo CD namespace: sources limited to the helm repositories of that team's
  services, destinations limited to that team's namespaces on this cluster, no
  cluster-scoped resource at all, a short blacklist of namespaced kinds (below),
  Applications only from the Argo CD namespace, orphaned resources reported;
- every ServiceAccount the pipeline's own pods and the Argo Workflows UI act as, with
  Roles that let it do its one job, in the namespaces where it does it:

  | ServiceAccount (its namespace)   | may, and only there                                      |
  |----------------------------------|----------------------------------------------------------|
  | `sensor-workflows` (events)      | create, get `workflows` (workflows ns)                   |
  | `workflow-executor` (workflows)  | create, patch `workflowtaskresults` (workflows ns)       |
  | `workflow-executor` (build)      | create, patch `workflowtaskresults` (build ns)           |
  | `release-<service>` (workflows)  | create, patch `workflowtaskresults` (workflows ns);      |
  |                                  | get, list, watch, patch Application `<service>-<env>`    |
  |                                  | (Argo CD ns); get, list, watch (Slack threads: patch)    |
  |                                  | Rollout `<service>` and                                  |
  |                                  | get Deployment `<deployment>` (the service's ns);        |
  |                                  | create, get `workflows` (build ns: the child build)      |
  |                                  | with newest-wins also: get, list, patch `workflows`      |
  |                                  | (workflows ns), list, patch `workflows` (build ns)       |
  | `sso-default` (workflows)        | read workflows, templates, cron workflows, pods, logs    |
  |                                  | (workflows and build ns)                                 |
  | `sso-team-<team>` (workflows)    | the same                                                 |
  | `sso-admin` (workflows)          | the same, plus create/update/patch/delete workflows and  |
  |                                  | delete their pods (retry), in both namespaces            |

  No ClusterRole, no ClusterRoleBinding, and no `*` among any Role's groups,
  resources, verbs or names.

  The release accounts' rules are split by who has them (module "Release"): per
  service, one Role `release-<service>` per namespace holding the rules that name
  its objects (Argo CD namespace: the Application; service namespace: the Rollout
  and the Deployment); shared, Role `releases` in the workflows and in the build
  namespace, bound once to every release account, and Role `releases-newest-wins`
  in the same two namespaces, bound once to the newest-wins services' accounts.
- the long-lived token Secrets (`<sa>.service-account-token`) that Argo Workflows
  reads by that name, for the SSO ServiceAccounts (the Argo Server acts with their
  token) and for the executor ServiceAccounts (the controller mounts the executor's
  token from that Secret into the `wait` container). Kubernetes stopped creating
  them in 1.24.

Does not own: Argo CD's RBAC policy (`policy.csv`), Dex and the Argo Server's SSO
settings (the platform's Helm values); the Sensors and WorkflowTemplates that use
these ServiceAccounts (they take the names from this component); the builder
ServiceAccount `builder-<service>` (`components.registry`).

Decisions
---------
Sensor (`sensor-workflows`): the Sensors' k8s trigger (`operation: create`) makes one
`Create` call; a redelivered webhook meets `AlreadyExists` and the trigger fails
without side effects (Argo Events v1.9, `standard-k8s.go`: no get, list, watch or
update before or after a create). `get` is granted as well, so a Sensor may use the
trigger's `policy.k8s` (it reads the created Workflow back); list and watch are not.
Leader election of a Sensor with a JetStream EventBus runs over NATS, not through
Kubernetes Leases, so the Sensor needs nothing else. `create workflows` is powerful:
a Workflow can run any pod as any ServiceAccount of its namespace. The Workflow
controller's `workflowRestrictions.templateReferencing: Strict` (platform values)
makes it refuse every Workflow that is not a `workflowTemplateRef` and, from Argo
Workflows 4.0.5, every attempt to override the template's ServiceAccount, so
"create a Workflow" is reduced to "start one of the Pulumi-written templates".

Executor (`workflow-executor`): every workflow pod's `wait` container records the
step's outputs as a `WorkflowTaskResult` (create, then patch). Steps that run a
team's code (unit tests, the image build) or need no API at all run with
`automountServiceAccountToken: false` and `executor.serviceAccountName:
workflow-executor`, so their main container holds no Kubernetes token at all.
`create` cannot be limited by name in Kubernetes RBAC, so one executor account per
namespace is as narrow as one per service would be.

Release (`release-<service>`): the pod ServiceAccount of the steps that need the
API — the verify and build steps (each pod its own executor). Its rules that name
none of the service's objects (the task results in the workflows namespace, the
child build in the build namespace, newest-wins' list and patch in both) are the
same for every account that has them, so they are in shared Roles, one per
namespace: `releases`, whose one RoleBinding lists every release account, and
`releases-newest-wins`, whose one RoleBinding lists only the newest-wins services'
accounts (subjects sorted by name). Each account may do exactly what Roles of its
own allowed, and a service adds a subject to the shared bindings instead of four
Roles and four RoleBindings. The rules that name its objects (`resourceNames`) stay
in the service's own Role, one per namespace: the Application (Argo CD namespace),
the Rollout and the Deployment (the service's namespace). For verify it
patches the service's Application to set `argocd.argoproj.io/refresh`, then waits
for the sync and for the Rollout.
Every rule on a named object carries `resourceNames`; `list` and `watch` are granted
next to `get` because `kubectl wait` and watches on one object list and watch with a
`metadata.name` field selector, which Kubernetes authorises against `resourceNames`
(without that selector the request is refused), so they reveal nothing `get` does
not. RBAC cannot limit `patch` to annotations: the account could change its own
Application's spec, within its AppProject's limits (a ValidatingAdmissionPolicy
could pin that down; not done here). `get` on the chart's Deployment (by name) lets
the verify step see that the Rollout references the pod template Argo CD synced.
The release Workflow's `build` step is a `resource` template that runs as this
account (its token automounted for that pod alone): `argoexec resource` creates the
child build Workflow (`kubectl create -f manifest -o json`), then reads it back by
name until `status.phase` meets the success or failure condition, and `kubectl get`s
it once more for the output parameter. So `create` and `get` on `workflows` in the
build namespace, nothing else: no list or watch, no update or delete. Neither can be
limited by name (the child is created with `generateName`, and `create` is never
name-limited), so the account can start any build WorkflowTemplate there; the
controller's `templateReferencing: Strict` keeps that to starting the Pulumi-written
build templates, each of which runs as its own service's builder account.

Slack threads (`slack.threads`, `slackThreads`; scripts/slack_thread.py): the announce,
stage and exit-handler pods record the release's Slack thread as annotations on the
service's Application (`patch`, already granted) and Rollout: only for services with
threads on, `patch` on the Rollout, by name (in the service's own Role). As with the
Application, RBAC cannot limit that to annotations; the token is mounted only in pods
running the pipeline's own script.

Newest-wins (`newestWins`, components.workflows): the `supersede` and `newest-check`
steps list this service's release Workflows and set `spec.shutdown: Stop` on the older
ones (or on their own), and on those releases' child builds. So, only for services with
newest-wins: get, list, patch `workflows` in the workflows namespace and list, patch
`workflows` in the build namespace (the Role `releases-newest-wins` of each, whose
binding lists only those services' accounts; neither exists when no service has
newest-wins). Kubernetes RBAC cannot limit a rule by label (the script selects
`release-pipeline/service=<service>`), nor `list` or `patch` by a name not known in
advance, so the account could list and patch any Workflow in those two
namespaces. What bounds it: the token is mounted only in the supersede, newest-check,
build and verify pods, which run the pipeline's own scripts and argoexec, never team
code; the controller's `templateReferencing: Strict` and its use of the stored
template spec make a patch unable to change what a running Workflow executes (the
damage is stopping or suspending someone's release, visible in the Workflow's
status); `delete` and `create` in the workflows namespace stay ungranted. A
ValidatingAdmissionPolicy could pin patches to `spec.shutdown` of the account's own
service (not done here).

Build namespace: Argo Workflows creates every pod of a Workflow in the Workflow's
own namespace; a template cannot place a pod elsewhere. So `builder-<service>` in
the build namespace can only be used by a Workflow that lives there — the release
Workflow (workflows namespace) must start the build as a child Workflow in the
build namespace (a `resource` step creating a `workflowTemplateRef` to a per-service
build template there). The build namespace's executor account exists for that
Workflow's `wait` containers; the right to create the child Workflow is the release
account's (above).

SSO (Argo Workflows server, `sso.rbac.enabled`): the server maps a signed-in user to
the ServiceAccount with the highest `workflows.argoproj.io/rbac-rule-precedence`
whose `workflows.argoproj.io/rbac-rule` matches, and acts with that account's token.
Dex's GitHub connector puts `<org>:<team-slug>` in `groups` (with `teamNameField:
slug`). Precedences: admin 20 > teams 10 > default 0, so an admin who is also in a
team gets admin rights, and anyone signed in (Dex admits members of the
organisation only) falls back to read-only. Resubmitting or stopping only a team's
own workflows is not expressible in Kubernetes RBAC (no label-scoped rules), so
teams stay read-only; the account per team is kept so the server's audit shows the
team and so a team's rights can change without touching the others. Reading logs
needs `pods` get/list/watch next to `pods/log` (the server finds a workflow's pods
by label and follows them). Admin's retry deletes the failed pods, hence pod delete.
The server acts with the login account's token (the account in the server's own
namespace, the workflows namespace) in every namespace a request names, so the
child builds (build namespace) are visible only if those accounts are bound there
too: the same Roles `sso-read` and `sso-admin` exist in the build namespace, bound
to the same workflows-namespace accounts (RoleBindings named after the account);
there the admin Role has no `create`: builds start from a release only.
Not namespace delegation (`SSO_DELEGATE_RBAC_TO_NAMESPACE`): it would need a second
set of annotated accounts and tokens in the build namespace and a server setting,
for the same rights (docs/decisions/0140-sso-rbac-in-the-build-namespace.md).

AppProject blacklist: `ResourceQuota` and `LimitRange` are capacity policy and apply
to everything in a namespace (namespaces may be shared by teams, and hold the
platform's Rollout), so they are the platform's to set; every `argoproj.io` kind is
the platform's (the Rollout and its analysis are Pulumi's: a team's own Rollout
would bypass the release policy; Workflows, Sensors, Applications in a team
namespace would bypass the pipeline). `NetworkPolicy` stays allowed: charts commonly
ship one to tighten their own traffic, and the platform has no default-deny a team
could loosen. Roles and RoleBindings stay allowed too (charts need them, e.g. for
leader election); they reach only the team's own namespaces. Argo CD never reports
as orphaned what a project denies, so only the release Roles this component puts in
team namespaces are listed in `orphanedResources.ignore`.

Ref: https://argo-cd.readthedocs.io/en/stable/user-guide/projects/
Ref: https://argo-workflows.readthedocs.io/en/latest/argo-server-sso/#sso-rbac
Ref: https://argo-workflows.readthedocs.io/en/latest/service-account-secrets/
Ref: https://argo-workflows.readthedocs.io/en/latest/workflow-rbac/
Ref: https://argo-workflows.readthedocs.io/en/latest/workflow-restrictions/
Ref: https://argoproj.github.io/argo-events/service-accounts/
Ref: https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import names
from components.config import Namespaces as NamespaceNames
from components.config import Service, Settings

TYPE = "release-pipeline:components:Access"
PIPELINE = "release-pipeline"

IN_CLUSTER = "https://kubernetes.default.svc"
ARGO_API_VERSION = "argoproj.io/v1alpha1"
RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
ARGO_GROUP = "argoproj.io"
RBAC_GROUP = "rbac.authorization.k8s.io"
CORE_GROUP = ""

# Roles (and their bindings) shared by release accounts in the workflows and build
# namespaces: every release account's, and the newest-wins ones' (module docstring).
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

# Verbs, each the least its holder needs (module docstring).
SENSOR_WORKFLOW_VERBS: tuple[str, ...] = ("create", "get")
EXECUTOR_VERBS: tuple[str, ...] = ("create", "patch")
APPLICATION_VERBS: tuple[str, ...] = ("get", "list", "patch", "watch")
ROLLOUT_VERBS: tuple[str, ...] = ("get", "list", "watch")
# Slack threads: `slack_thread.py` records the thread on the Rollout (module docstring).
SLACK_THREAD_ROLLOUT_VERBS: tuple[str, ...] = ("patch",)
DEPLOYMENT_VERBS: tuple[str, ...] = ("get",)
# What Argo's `resource` template does with the child build Workflow (module docstring).
BUILD_WORKFLOW_VERBS: tuple[str, ...] = ("create", "get")
# Newest-wins: what `supersede.py` does (module docstring).
SUPERSEDE_RELEASE_VERBS: tuple[str, ...] = ("get", "list", "patch")
SUPERSEDE_BUILD_VERBS: tuple[str, ...] = ("list", "patch")
APPS_GROUP = "apps"
READ_VERBS: tuple[str, ...] = ("get", "list", "watch")
ADMIN_WORKFLOW_VERBS: tuple[str, ...] = ("create", "delete", "patch", "update")

# Namespaced kinds no team chart may create (module docstring).
NAMESPACE_RESOURCE_BLACKLIST: tuple[dict[str, str], ...] = (
    {"group": CORE_GROUP, "kind": "LimitRange"},
    {"group": CORE_GROUP, "kind": "ResourceQuota"},
    {"group": ARGO_GROUP, "kind": "*"},
)

Manifest = dict[str, object]


# ------------------------------------------------------------------ pure builders


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


def teams(services: Iterable[Service]) -> dict[str, list[Service]]:
    """Team (the services' `project`) -> its services, both sorted."""
    by_team: dict[str, list[Service]] = {}
    for service in sorted(services, key=lambda s: s.name):
        by_team.setdefault(service.project, []).append(service)
    return dict(sorted(by_team.items()))


def helm_source_repos(repo: str) -> list[str]:
    """The URLs a helm repository may be given to Argo CD as: HTTPS and SSH (what it is registered as)."""
    owner, name = repo.split("/", 1)
    return sorted({f"https://github.com/{owner}/{name}.git", f"git@github.com:{owner}/{name}.git"})


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


def app_project(team: str, team_services: Sequence[Service], all_services: Sequence[Service],
                settings: Settings) -> Manifest:
    """The AppProject of one team: its helm repos, its namespaces, nothing cluster-wide."""
    namespaces = sorted({s.namespace for s in team_services})
    repos = sorted({url for s in team_services for url in helm_source_repos(s.helm.repo)})
    # Release Roles of every service in these namespaces (other teams' too, when a
    # namespace is shared): Pulumi's, not an Application's, and expected there.
    ignored = [
        {"group": RBAC_GROUP, "kind": kind, "name": names.release_service_account_name(s.name)}
        for s in sorted(all_services, key=lambda s: s.name)
        if s.namespace in namespaces
        for kind in ("Role", "RoleBinding")
    ]
    service_names = ", ".join(s.name for s in team_services)
    return {
        "apiVersion": ARGO_API_VERSION,
        "kind": "AppProject",
        "metadata": {
            "name": names.app_project_name(team),
            "namespace": settings.namespaces.argocd,
            "labels": labels("project", team=team),
        },
        "spec": {
            "description": f"Team {team} in {settings.environment}: {service_names}",
            "sourceRepos": repos,
            "destinations": [{"server": IN_CLUSTER, "namespace": ns} for ns in namespaces],
            "clusterResourceWhitelist": [],
            "namespaceResourceBlacklist": [dict(item) for item in NAMESPACE_RESOURCE_BLACKLIST],
            "sourceNamespaces": [],
            "orphanedResources": {"warn": True, "ignore": ignored},
        },
    }


def _with_role(key: str, name: str, namespace: str, rules: list[dict[str, list[str]]],
               subject: tuple[str, str], component: str, **extra: str) -> dict[str, Manifest]:
    return {
        f"{key}-role": role(name, namespace, rules, component, **extra),
        f"{key}-rolebinding": role_binding(name, namespace, name, subject, component, **extra),
    }


def sensor_manifests(ns: NamespaceNames) -> dict[str, Manifest]:
    subject = (names.SENSOR_SERVICE_ACCOUNT, ns.events)
    return {
        "sensor-serviceaccount": service_account(names.SENSOR_SERVICE_ACCOUNT, ns.events, "sensor"),
        **_with_role("sensor", names.SENSOR_SERVICE_ACCOUNT, ns.workflows, sensor_rules(), subject, "sensor"),
    }


def executor_manifests(ns: NamespaceNames) -> dict[str, Manifest]:
    """The executor account of the workflows and of the build namespace."""
    result: dict[str, Manifest] = {}
    for role_key, namespace in (("workflows", ns.workflows), ("build", ns.build)):
        key = f"executor-{role_key}"
        # Its token reaches pods only as the Secret volume the controller adds for
        # `executor.serviceAccountName`; never automounted.
        result[f"{key}-serviceaccount"] = service_account(
            names.EXECUTOR_SERVICE_ACCOUNT, namespace, "executor", automount=False
        )
        result[f"{key}-token"] = token_secret(names.EXECUTOR_SERVICE_ACCOUNT, namespace, "executor")
        result |= _with_role(key, names.EXECUTOR_SERVICE_ACCOUNT, namespace, executor_rules(),
                             (names.EXECUTOR_SERVICE_ACCOUNT, namespace), "executor")
    return result


def release_manifests(service: Service, settings: Settings) -> dict[str, Manifest]:
    """A service's release ServiceAccount and the Roles on its own objects (Argo CD and service namespaces).

    Only the rules that name the service's objects (`resourceNames`) are per service,
    in one Role per namespace; what every release account may do alike is in the
    shared Roles (`shared_release_manifests`).
    """
    ns = settings.namespaces
    sa = names.release_service_account_name(service.name)
    subject = (sa, ns.workflows)
    key = f"release-{service.name}"
    extra = {"service": service.name}
    # Namespace -> (key suffix, rules): rules that land in one namespace share one Role.
    own: dict[str, tuple[str, list[dict[str, list[str]]]]] = {}
    for suffix, namespace, rules in (
        ("argocd", ns.argocd, application_rules(service.name, settings.environment)),
        ("service", service.namespace, service_namespace_rules(service, service.slack_threads_in(settings))),
    ):
        own.setdefault(namespace, (suffix, []))[1].extend(rules)
    result: dict[str, Manifest] = {
        f"{key}-serviceaccount": service_account(sa, ns.workflows, "release", service=service.name)
    }
    for namespace, (suffix, rules) in own.items():
        result |= _with_role(f"{key}-{suffix}", sa, namespace, rules, subject, "release", **extra)
    return result


def shared_release_manifests(settings: Settings, services: Sequence[Service]) -> dict[str, Manifest]:
    """What release accounts may do alike: one Role and one RoleBinding per namespace and group of accounts.

    `RELEASES_ROLE` (workflows and build namespaces) is bound to every release
    account; `NEWEST_WINS_ROLE` (the same namespaces) only to the accounts of the
    services with newest-wins. Neither exists without an account to bind.
    """
    ns = settings.namespaces
    ordered = sorted(services, key=lambda s: s.name)
    every = [names.release_service_account_name(s.name) for s in ordered]
    newest_wins = [names.release_service_account_name(s.name) for s in ordered if s.newest_wins_in(settings)]
    namespaces = {"workflows": ns.workflows, "build": ns.build}
    groups = (
        ("releases", RELEASES_ROLE, every, {"workflows": release_workflow_rules(), "build": build_workflow_rules()}),
        ("releases-newest-wins", NEWEST_WINS_ROLE, newest_wins,
         {"workflows": supersede_release_rules(), "build": supersede_build_rules()}),
    )
    result: dict[str, Manifest] = {}
    for group_key, role_name, accounts, rules_by_namespace in groups:
        if not accounts:
            continue
        subjects = [(sa, ns.workflows) for sa in accounts]
        for role_key, rules in rules_by_namespace.items():
            namespace = namespaces[role_key]
            key = f"{group_key}-{role_key}"
            result[f"{key}-role"] = role(role_name, namespace, rules, "release")
            result[f"{key}-rolebinding"] = shared_role_binding(role_name, namespace, role_name, subjects, "release")
    return result


def sso_manifests(settings: Settings, team_names: Iterable[str]) -> dict[str, Manifest]:
    """Argo Workflows SSO RBAC: default (read), one per team (read), admin (read + write)."""
    ns = settings.namespaces.workflows
    org = settings.github.organization
    accounts: list[tuple[str, str, dict[str, str], str, dict[str, str]]] = [
        ("sso-default", SSO_DEFAULT, sso_annotations("true", PRECEDENCE_DEFAULT), SSO_READ_ROLE, {}),
        ("sso-admin", SSO_ADMIN,
         sso_annotations(team_rbac_rule(org, [settings.rbac.admin_team]), PRECEDENCE_ADMIN), SSO_ADMIN_ROLE, {}),
    ]
    for team in sorted(team_names):
        accounts.append((
            f"sso-team-{team}", sso_team_service_account_name(team),
            sso_annotations(team_rbac_rule(org, settings.team_slugs(team)), PRECEDENCE_TEAM),
            SSO_READ_ROLE, {"team": team},
        ))
    # The same Roles in the build namespace (the child builds), bound to the same
    # accounts: the server acts with the login account's token in every namespace
    # (module docstring, "SSO").
    granted = (("", ns), ("-build", settings.namespaces.build))
    result: dict[str, Manifest] = {}
    for suffix, namespace in granted:
        result[f"sso-read-role{suffix}"] = role(SSO_READ_ROLE, namespace, sso_read_rules(), "sso")
        result[f"sso-admin-role{suffix}"] = role(SSO_ADMIN_ROLE, namespace, sso_admin_rules(submit=not suffix), "sso")
    for key, sa, rbac, role_name, extra in accounts:
        # The Argo Server uses the token Secret; no pod ever runs as these accounts.
        result[f"{key}-serviceaccount"] = service_account(
            sa, ns, "sso", annotations=rbac, automount=False, **extra
        )
        result[f"{key}-token"] = token_secret(sa, ns, "sso")
        for suffix, namespace in granted:
            result[f"{key}-rolebinding{suffix}"] = role_binding(sa, namespace, role_name, (sa, ns), "sso", **extra)
    return result


def access_manifests(settings: Settings, services: Sequence[Service]) -> dict[str, Manifest]:
    """Every object of this component, by a stable key (the logical name's suffix)."""
    by_team = teams(services)
    result: dict[str, Manifest] = {}
    for team, team_services in by_team.items():
        result[f"project-{team}"] = app_project(team, team_services, services, settings)
    result |= sensor_manifests(settings.namespaces)
    result |= executor_manifests(settings.namespaces)
    for service in sorted(services, key=lambda s: s.name):
        result |= release_manifests(service, settings)
    result |= shared_release_manifests(settings, services)
    result |= sso_manifests(settings, by_team)
    return result


# --------------------------------------------------------------------------- component


@dataclass(frozen=True)
class AccessArgs:
    """What the stack's Argo CD projects and RBAC are made from."""

    settings: Settings
    """The stack's settings: namespaces, environment, GitHub organisation, RBAC teams."""
    services: tuple[Service, ...]
    """This environment's services (`ServicesFile.for_environment`)."""
    platform_namespaces: Mapping[str, pulumi.Input[str]]
    """Platform namespace role (events, workflows, argocd, build, ...) -> its name, as
    `Namespaces.platform` gives it: objects in a namespace wait for the namespace."""
    service_namespaces: Mapping[str, pulumi.Input[str]]
    """Service namespace name -> its name as an Output, as `Namespaces.services` gives it."""
    argo_depends_on: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Argo kind -> what a custom resource of that kind waits for (its CRD and its
    controller's Helm release); `AppProject` is the only kind used here."""


class Access(pulumi.ComponentResource):
    """AppProjects per team, and the ServiceAccounts, Roles and tokens of the pipeline and the UI."""

    sensor_service_account: str
    """ServiceAccount (events namespace) the Sensors run as."""
    executor_service_account: str
    """`executor.serviceAccountName` of every Workflow (workflows and build namespaces)."""
    workflow_service_accounts: dict[str, str]
    """Service -> ServiceAccount (workflows namespace) of its release Workflow's API steps."""
    app_projects: dict[str, str]
    """Team -> its AppProject's name."""
    projects: dict[str, k8s.apiextensions.CustomResource]
    """Team -> its AppProject, for what must be created after it (the team's Applications)."""

    def __init__(self, name: str, args: AccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        settings = args.settings
        services = tuple(sorted(args.services, key=lambda s: s.name))
        platform_names = settings.namespaces.model_dump()
        namespace_outputs: dict[str, pulumi.Input[str]] = {
            platform_names[role_key]: output for role_key, output in args.platform_namespaces.items()
            if role_key in platform_names
        } | dict(args.service_namespaces)

        accounts: dict[tuple[str, str], k8s.core.v1.ServiceAccount] = {}
        self.projects = {}
        for key, manifest in access_manifests(settings, services).items():
            logical = f"{name}-{key}"
            metadata = _metadata(manifest, namespace_outputs)
            kind = manifest["kind"]
            if kind == "ServiceAccount":
                sa = k8s.core.v1.ServiceAccount(
                    logical,
                    metadata=metadata,
                    automount_service_account_token=_automount(manifest),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                accounts[(_str(manifest, "name"), _str(manifest, "namespace"))] = sa
            elif kind == "Secret":
                owner = accounts[(_annotation(manifest, TOKEN_SECRET_SA_ANNOTATION), _str(manifest, "namespace"))]
                k8s.core.v1.Secret(
                    logical,
                    metadata=metadata,
                    type=TOKEN_SECRET_TYPE,
                    # The token controller deletes a token Secret whose account does not
                    # exist; the token it writes in stays secret in Pulumi's state.
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[owner], additional_secret_outputs=["data"]
                    ),
                )
            elif kind == "Role":
                k8s.rbac.v1.Role(
                    logical,
                    metadata=metadata,
                    rules=[_policy_rule(r) for r in manifest["rules"]],  # type: ignore[attr-defined]
                    opts=pulumi.ResourceOptions(parent=self),
                )
            elif kind == "RoleBinding":
                ref = manifest["roleRef"]
                assert isinstance(ref, dict)
                k8s.rbac.v1.RoleBinding(
                    logical,
                    metadata=metadata,
                    role_ref=k8s.rbac.v1.RoleRefArgs(api_group=ref["apiGroup"], kind=ref["kind"], name=ref["name"]),
                    subjects=[
                        k8s.rbac.v1.SubjectArgs(kind=s["kind"], name=s["name"], namespace=s["namespace"])
                        for s in manifest["subjects"]  # type: ignore[attr-defined]
                    ],
                    opts=pulumi.ResourceOptions(parent=self),
                )
            elif kind == "AppProject":
                self.projects[_str(manifest, "name")] = k8s.apiextensions.CustomResource(
                    logical,
                    api_version=ARGO_API_VERSION,
                    kind="AppProject",
                    metadata=metadata,
                    spec=manifest["spec"],
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=list(args.argo_depends_on.get("AppProject", ()))
                    ),
                )
            else:  # pragma: no cover - the builders make only the kinds above
                raise AssertionError(f"unexpected kind {kind!r}")

        self.sensor_service_account = names.SENSOR_SERVICE_ACCOUNT
        self.executor_service_account = names.EXECUTOR_SERVICE_ACCOUNT
        self.workflow_service_accounts = {s.name: names.release_service_account_name(s.name) for s in services}
        self.app_projects = {team: names.app_project_name(team) for team in teams(services)}
        self.register_outputs(
            {
                "sensor_service_account": self.sensor_service_account,
                "executor_service_account": self.executor_service_account,
                "workflow_service_accounts": self.workflow_service_accounts,
                "app_projects": self.app_projects,
            }
        )


def _automount(manifest: Manifest) -> bool | None:
    value = manifest.get("automountServiceAccountToken")
    return value if isinstance(value, bool) else None


def _str(manifest: Manifest, key: str) -> str:
    metadata = manifest["metadata"]
    assert isinstance(metadata, dict)
    value = metadata[key]
    assert isinstance(value, str)
    return value


def _annotation(manifest: Manifest, key: str) -> str:
    metadata = manifest["metadata"]
    assert isinstance(metadata, dict)
    return str(metadata["annotations"][key])


def _metadata(manifest: Manifest, namespaces: Mapping[str, pulumi.Input[str]]) -> k8s.meta.v1.ObjectMetaArgs:
    """ObjectMeta with the namespace as the Namespace resource's Output, so the object waits for it."""
    metadata = manifest["metadata"]
    assert isinstance(metadata, dict)
    namespace = metadata["namespace"]
    return k8s.meta.v1.ObjectMetaArgs(
        name=metadata["name"],
        namespace=namespaces.get(namespace, namespace),
        labels=metadata["labels"],
        annotations=metadata.get("annotations"),
    )


def _policy_rule(data: Mapping[str, list[str]]) -> k8s.rbac.v1.PolicyRuleArgs:
    return k8s.rbac.v1.PolicyRuleArgs(
        api_groups=data["apiGroups"],
        resources=data["resources"],
        verbs=data["verbs"],
        resource_names=data.get("resourceNames"),
    )

"""Who may do what: RBAC, IAM, ECR grants, AppProjects, the UIs and the GitOps writes.

Owns: `no-wildcard-rbac`, `least-privilege-iam`, `ecr-grants-name-principals`,
`scoped-app-projects`, `no-anonymous-uis` and `gitops-writes-scoped`, and the reading of
IAM-style policy documents (their Allow statements, principals and actions).
Does not own: the walkers (`inputs`); an ECR repository's own settings (`storage`).

Decisions: docs/decisions/0380-policy-checks-are-pure-functions.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from release_policies.context import Context
from release_policies.inputs import UNKNOWN, Inputs, Options, as_list, falsy, get_in, is_argo, known, truthy


def _one_or_list(value: Any) -> list[Any]:
    """An IAM policy element that may be one string or a list of them."""
    return [value] if isinstance(value, str) else as_list(value)


def _allow_statements(inputs: Inputs, field: str) -> tuple[list[tuple[str, Mapping[str, Any]]], list[str]]:
    """The Allow statements of the IAM-style policy document in `inputs[field]` (JSON text or
    object), each with where it sits; or the problem that it cannot be read."""
    document = inputs.get(field)
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return [], [f"{field}: not valid JSON, cannot be checked"]
    if not isinstance(document, Mapping):
        return [], []
    statements = document.get("Statement")
    statements = [statements] if isinstance(statements, Mapping) else as_list(statements)
    return [
        (f"{field}.Statement[{index}]", statement)
        for index, statement in enumerate(statements)
        if isinstance(statement, Mapping) and statement.get("Effect") == "Allow"
    ], []


# -------------------------------------------------------------- RBAC and IAM


RBAC_ROLE = re.compile(r"^kubernetes:rbac\.authorization\.k8s\.io/[^:]+:(Cluster)?Role(Patch)?$")


def check_no_wildcard_rbac(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No `*` in a Role's or ClusterRole's verbs, resources, apiGroups or nonResourceURLs."""
    if not RBAC_ROLE.match(resource_type):
        return []
    found = []
    for index, rule in enumerate(as_list(inputs.get("rules"))):
        if not isinstance(rule, Mapping):
            continue
        for field in ("verbs", "resources", "apiGroups", "nonResourceURLs"):
            wild = [v for v in as_list(rule.get(field)) if isinstance(v, str) and "*" in v]
            if wild:
                found.append(f"rules[{index}].{field}: {', '.join(wild)}: wildcards are not allowed; name each one")
    return found


IAM_POLICY_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
# Actions AWS only grants on Resource "*".
IAM_STAR_RESOURCE_ACTIONS = frozenset({"ecr:GetAuthorizationToken"})


def check_least_privilege_iam(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """IAM policies name their actions and resources: no `*` action, `*` resource only for login."""
    field = IAM_POLICY_TYPES.get(resource_type)
    if field is None:
        return []
    statements, found = _allow_statements(inputs, field)
    for where, statement in statements:
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"{where}: NotAction/NotResource grant everything else: name the actions and resources")
        actions = _one_or_list(statement.get("Action"))
        resources = _one_or_list(statement.get("Resource"))
        wild = [a for a in actions if isinstance(a, str) and "*" in a]
        if wild:
            found.append(f"{where}.Action: {', '.join(wild)}: wildcards are not allowed")
        if "*" in resources and not set(actions) <= IAM_STAR_RESOURCE_ACTIONS:
            found.append(
                f"{where}.Resource: '*' is allowed only for {', '.join(sorted(IAM_STAR_RESOURCE_ACTIONS))}"
            )
    return found


# ---------------------------------------------------------------- ECR grants


ECR_RESOURCE_POLICY_TYPES = frozenset(
    {"aws:ecr/repositoryPolicy:RepositoryPolicy", "aws:ecr/registryPolicy:RegistryPolicy"}
)


def _principals(principal: Any) -> Iterator[str]:
    """Every principal string of a statement's `Principal` ("*", or {"AWS": [...], ...})."""
    if isinstance(principal, str):
        yield principal
    elif isinstance(principal, Mapping):
        for value in principal.values():
            yield from (v for v in _one_or_list(value) if isinstance(v, str))


def check_ecr_grants(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """ECR repository and registry policies grant named principals named actions: no `*` principal."""
    if resource_type not in ECR_RESOURCE_POLICY_TYPES:
        return []
    statements, found = _allow_statements(inputs, "policy")
    for where, statement in statements:
        if "NotPrincipal" in statement or "NotAction" in statement:
            found.append(f"{where}: NotPrincipal/NotAction grant everyone or everything else: name them")
        wild = [p for p in _principals(statement.get("Principal")) if "*" in p]
        if wild:
            found.append(f"{where}.Principal: '*' would let any AWS account in: name the accounts or roles")
        actions = _one_or_list(statement.get("Action"))
        wild_actions = [a for a in actions if isinstance(a, str) and "*" in a]
        if wild_actions:
            found.append(f"{where}.Action: {', '.join(wild_actions)}: wildcards are not allowed")
    return found


# --------------------------------------------------------------- AppProjects


def check_scoped_app_projects(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """An AppProject names its repositories and destinations and may create no cluster-scoped object."""
    if not is_argo(resource_type, frozenset({"AppProject"})):
        return []
    spec = inputs.get("spec")
    if not isinstance(spec, Mapping):
        return []
    found = []
    for index, repo in enumerate(as_list(spec.get("sourceRepos"))):
        if isinstance(repo, str) and "*" in repo:
            found.append(f"spec.sourceRepos[{index}]: {repo!r}: wildcards are not allowed; list the repositories")
    for index, namespace in enumerate(as_list(spec.get("sourceNamespaces"))):
        if isinstance(namespace, str) and "*" in namespace:
            found.append(f"spec.sourceNamespaces[{index}]: {namespace!r}: wildcards are not allowed")
    for index, destination in enumerate(as_list(spec.get("destinations"))):
        if not isinstance(destination, Mapping):
            continue
        for field in ("namespace", "server", "name"):
            value = destination.get(field)
            if isinstance(value, str) and "*" in value:
                found.append(f"spec.destinations[{index}].{field}: {value!r}: wildcards are not allowed")
    whitelist = spec.get("clusterResourceWhitelist")
    if known(whitelist) and as_list(whitelist):
        found.append("spec.clusterResourceWhitelist: must be empty: teams deploy no cluster-scoped objects")
    return found


# ------------------------------------------------------------- anonymous UIs


HELM_RELEASE_TYPES = frozenset({"kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"})


def _chart_name(inputs: Inputs) -> str:
    chart = inputs.get("chart")
    return chart.rstrip("/").rsplit("/", 1)[-1] if isinstance(chart, str) else ""


def _args(value: Any) -> list[str]:
    return [a for a in as_list(value) if isinstance(a, str)]


def check_no_anonymous_uis(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """Argo CD without anonymous access or admin user; Argo Workflows without `server` auth;
    the Rollouts dashboard (no login of its own) not exposed."""
    if resource_type not in HELM_RELEASE_TYPES:
        return []
    values = inputs.get("values")
    if not isinstance(values, Mapping):
        return []
    chart = _chart_name(inputs)
    found = []
    if chart == "argo-cd":
        cm = get_in(values, "configs", "cm") or {}
        if truthy(get_in(cm, "users.anonymous.enabled")):
            found.append('values.configs.cm["users.anonymous.enabled"]: must be "false": no anonymous access')
        admin = get_in(cm, "admin.enabled")
        if known(admin) and not falsy(admin):
            found.append(
                'values.configs.cm["admin.enabled"]: must be "false" (the chart enables the local admin by default)'
            )
        if truthy(get_in(values, "configs", "params", "server.disable.auth")):
            found.append('values.configs.params["server.disable.auth"]: must not be true')
        if "--disable-auth" in _args(get_in(values, "server", "extraArgs")):
            found.append("values.server.extraArgs: --disable-auth is not allowed")
    elif chart == "argo-workflows":
        modes = _args(get_in(values, "server", "authModes"))
        if "server" in modes or get_in(values, "server", "authMode") == "server":
            found.append(
                "values.server.authModes: 'server' lets anyone use the server's own ServiceAccount: use sso"
            )
        extra = _args(get_in(values, "server", "extraArgs"))
        joined = " ".join(extra)
        if re.search(r"--auth-mode(=|\s+)server\b", joined):
            found.append("values.server.extraArgs: --auth-mode=server is not allowed: use sso")
    elif chart == "argo-rollouts":
        if truthy(get_in(values, "dashboard", "ingress", "enabled")):
            found.append("values.dashboard.ingress.enabled: the Rollouts dashboard has no login: no Ingress")
        service_type = get_in(values, "dashboard", "service", "type")
        if service_type in ("LoadBalancer", "NodePort"):
            found.append(f"values.dashboard.service.type: {service_type} exposes a dashboard without login")
    return found


# ------------------------------------------------------------- GitOps writes


DEPLOY_KEY = "github:index/repositoryDeployKey:RepositoryDeployKey"
RULESET_TYPES = frozenset(
    {"github:index/repositoryRuleset:RepositoryRuleset", "github:index/organizationRuleset:OrganizationRuleset"}
)
ONE_BRANCH = re.compile(r"^refs/heads/[^*?\[\]~\s]+$")


def check_gitops_writes_scoped(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No write deploy key; a branch ruleset lets one GitHub App push to one branch only."""
    found = []
    if resource_type == DEPLOY_KEY:
        read_only = inputs.get("readOnly")
        if read_only is not True and known(read_only):
            found.append(
                "readOnly: must be true: a deploy key cannot be limited to a branch, so writes go through "
                "one GitHub App per environment"
            )
        return found
    if resource_type not in RULESET_TYPES:
        return []
    actors = as_list(inputs.get("bypassActors"))
    integrations = [a for a in actors if get_in(a, "actorType") == "Integration"]
    if len(integrations) > 1:
        found.append(
            f"bypassActors: {len(integrations)} Integrations: only this environment's GitHub App may bypass "
            "the ruleset of its branch"
        )
    if inputs.get("target") not in ("branch", None, UNKNOWN):
        found.append(f"target: {inputs.get('target')!r}: must be 'branch'")
    enforcement = inputs.get("enforcement")
    if known(enforcement) and enforcement != "active":
        found.append(f"enforcement: {enforcement!r}: must be 'active', or other environments' Apps can push")
    includes = get_in(inputs, "conditions", "refName", "includes")
    if known(includes):
        names = as_list(includes)
        if len(names) != 1 or not (isinstance(names[0], str) and ONE_BRANCH.match(names[0])):
            found.append(
                "conditions.refName.includes: must be exactly one 'refs/heads/<branch>' (no pattern, "
                f"~ALL or ~DEFAULT_BRANCH); found {names!r}"
            )
    return found

"""Every object `components.access` creates, as plain manifests keyed by a stable name.

Owns: one AppProject per team (its helm repositories, its namespaces, nothing
cluster-wide, the namespaced blacklist), and which ServiceAccount, token Secret, Role
and RoleBinding exist in which namespace: the Sensors', the executors' (workflows and
build namespaces), each service's release account with its own Roles (Argo CD and
service namespaces), the shared release Roles (`releases`, `releases-newest-wins`) and
the SSO accounts with their Roles in the workflows and the build namespace.

Does not own: the rules themselves and the object builders (`access.rbac`), the Pulumi
resources (`access.component`).

Decisions: docs/decisions/0401-release-accounts-shared-and-named-roles.md,
docs/decisions/0402-sso-accounts-by-precedence.md,
docs/decisions/0403-appproject-namespaced-blacklist.md,
docs/decisions/0140-sso-rbac-in-the-build-namespace.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from components import names
from components.access.rbac import (
    ARGO_API_VERSION,
    IN_CLUSTER,
    NAMESPACE_RESOURCE_BLACKLIST,
    NEWEST_WINS_ROLE,
    PRECEDENCE_ADMIN,
    PRECEDENCE_DEFAULT,
    PRECEDENCE_TEAM,
    RBAC_GROUP,
    RELEASES_ROLE,
    SSO_ADMIN,
    SSO_ADMIN_ROLE,
    SSO_DEFAULT,
    SSO_READ_ROLE,
    Manifest,
    application_rules,
    build_workflow_rules,
    executor_rules,
    labels,
    release_workflow_rules,
    role,
    role_binding,
    sensor_rules,
    service_account,
    service_namespace_rules,
    shared_role_binding,
    sso_admin_rules,
    sso_annotations,
    sso_read_rules,
    sso_team_service_account_name,
    supersede_build_rules,
    supersede_release_rules,
    team_rbac_rule,
    token_secret,
)
from components.config import Namespaces as NamespaceNames
from components.config import Service, Settings


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
    # (docs/decisions/0140-sso-rbac-in-the-build-namespace.md).
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

"""Access: the AppProjects per team and the Argo Workflows SSO accounts (pure builders).

Builder tests use the dev stack's settings and the small services file of
tests/access_support.py.
"""

from __future__ import annotations

from typing import Any

from components import names
from components.access import (
    IN_CLUSTER,
    PRECEDENCE_ADMIN,
    PRECEDENCE_DEFAULT,
    PRECEDENCE_TEAM,
    RBAC_RULE,
    RBAC_RULE_PRECEDENCE,
)
from tests.access_support import (
    _by_name,
    _manifests,
    _of_kind,
    _services,
    _settings,
)

# ------------------------------------------------------------------------- AppProjects


def test_each_team_gets_one_project_with_only_its_helm_repos_and_namespaces() -> None:
    manifests = _manifests()
    projects = {m["metadata"]["name"]: m for m in _of_kind(manifests, "AppProject").values()}
    assert set(projects) == {"datacollect", "payments"}
    expected = {
        "datacollect": (
            ["Appen-International/datacollect-helm", "Appen-International/labeling-helm"],
            ["datacollect", "labeling"],
        ),
        "payments": (["Appen-International/payments-helm"], ["datacollect", "payments"]),
    }
    for team, (repos, namespaces) in expected.items():
        spec = projects[team]["spec"]
        assert projects[team]["metadata"]["namespace"] == _settings().namespaces.argocd
        assert spec["sourceRepos"] == sorted(
            [f"https://github.com/{r}.git" for r in repos] + [f"git@github.com:{r}.git" for r in repos]
        )
        assert spec["destinations"] == [{"server": IN_CLUSTER, "namespace": ns} for ns in namespaces]
        assert spec["clusterResourceWhitelist"] == []
        assert "clusterResourceBlacklist" not in spec and "namespaceResourceWhitelist" not in spec
        assert spec["sourceNamespaces"] == []
        assert spec["orphanedResources"]["warn"] is True
        assert "roles" not in spec


def test_the_argo_cd_repository_url_is_an_allowed_source() -> None:
    from components.github_access import git_ssh_url

    manifests = _manifests()
    projects = {m["metadata"]["name"]: m for m in _of_kind(manifests, "AppProject").values()}
    for service in _services():
        assert git_ssh_url(service.helm.repo) in projects[service.project]["spec"]["sourceRepos"]


def test_teams_cannot_create_quotas_limits_or_any_argo_object() -> None:
    spec = _manifests()["project-datacollect"]["spec"]
    blacklist = {(item["group"], item["kind"]) for item in spec["namespaceResourceBlacklist"]}
    assert blacklist == {("", "ResourceQuota"), ("", "LimitRange"), ("argoproj.io", "*")}


def test_release_roles_in_a_shared_namespace_are_not_reported_as_orphans() -> None:
    spec = _manifests()["project-payments"]["spec"]
    ignored = {(i["kind"], i["name"]) for i in spec["orphanedResources"]["ignore"]}
    # datacollect is shared: vbsiv's (another team's) release Role lives there too.
    assert ignored == {
        (kind, names.release_service_account_name(s))
        for s in ("billing", "ledger", "vbsiv")
        for kind in ("Role", "RoleBinding")
    }


# ------------------------------------------------------------------------ SSO RBAC


def test_sso_accounts_map_org_teams_with_precedence() -> None:
    settings = _settings(admin_team="platform-admins", team_slugs={"payments": ["payments", "finance-eng"]})
    manifests = _manifests(settings)
    ns = settings.namespaces.workflows
    org = settings.github.organization

    def annotations(name: str) -> dict[str, str]:
        return _by_name(manifests, "ServiceAccount", name, ns)["metadata"]["annotations"]

    assert annotations("sso-default") == {RBAC_RULE: "true", RBAC_RULE_PRECEDENCE: str(PRECEDENCE_DEFAULT)}
    assert annotations("sso-admin") == {
        RBAC_RULE: f"'{org}:platform-admins' in groups", RBAC_RULE_PRECEDENCE: str(PRECEDENCE_ADMIN),
    }
    assert annotations("sso-team-datacollect") == {
        RBAC_RULE: f"'{org}:datacollect' in groups", RBAC_RULE_PRECEDENCE: str(PRECEDENCE_TEAM),
    }
    assert annotations("sso-team-payments") == {
        RBAC_RULE: f"'{org}:finance-eng' in groups || '{org}:payments' in groups",
        RBAC_RULE_PRECEDENCE: str(PRECEDENCE_TEAM),
    }
    assert PRECEDENCE_DEFAULT < PRECEDENCE_TEAM < PRECEDENCE_ADMIN
    sso = [m for m in _of_kind(manifests, "ServiceAccount").values()
           if RBAC_RULE in m["metadata"].get("annotations", {})]
    assert min(int(m["metadata"]["annotations"][RBAC_RULE_PRECEDENCE]) for m in sso) == PRECEDENCE_DEFAULT
    assert [m["metadata"]["name"] for m in sso if m["metadata"]["annotations"][RBAC_RULE] == "true"] == ["sso-default"]


def test_every_sso_account_has_a_token_secret_pointing_at_it() -> None:
    manifests = _manifests()
    ns = _settings().namespaces.workflows
    for name in ("sso-default", "sso-admin", "sso-team-datacollect", "sso-team-payments"):
        account = _by_name(manifests, "ServiceAccount", name, ns)
        assert account["automountServiceAccountToken"] is False
        secret = _by_name(manifests, "Secret", f"{name}.service-account-token", ns)
        assert secret["type"] == "kubernetes.io/service-account-token"
        assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": name}
        assert "data" not in secret and "stringData" not in secret


def test_teams_and_default_read_only_admin_also_writes_workflows() -> None:
    manifests = _manifests()
    ns = _settings().namespaces.workflows
    read = [
        {"apiGroups": ["argoproj.io"], "resources": ["cronworkflows", "workflows", "workflowtemplates"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    assert _by_name(manifests, "Role", "sso-read", ns)["rules"] == read
    assert _by_name(manifests, "Role", "sso-admin", ns)["rules"] == [
        *read,
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "delete", "patch", "update"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
    ]
    for account, role in (("sso-default", "sso-read"), ("sso-team-datacollect", "sso-read"),
                          ("sso-team-payments", "sso-read"), ("sso-admin", "sso-admin")):
        binding = _by_name(manifests, "RoleBinding", account, ns)
        assert binding["roleRef"]["name"] == role
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": ns}]


def test_sso_accounts_read_the_child_builds_in_the_build_namespace() -> None:
    """The server acts with the login account (workflows ns) in every namespace: the
    same Roles and bindings exist in the build namespace (the admin's without submitting
    a build: builds start from a release only), and no second account."""
    manifests = _manifests()
    ns = _settings().namespaces
    assert (_by_name(manifests, "Role", "sso-read", ns.build)["rules"]
            == _by_name(manifests, "Role", "sso-read", ns.workflows)["rules"])
    admin_build = _by_name(manifests, "Role", "sso-admin", ns.build)["rules"]
    admin_workflows = _by_name(manifests, "Role", "sso-admin", ns.workflows)["rules"]
    workflow_verbs = [set(r["verbs"]) for r in admin_build if r["resources"] == ["workflows"]]
    assert {"delete", "patch", "update"} <= set.union(*workflow_verbs)
    assert "create" not in set.union(*workflow_verbs)
    assert [r for r in admin_build if r["resources"] != ["workflows"]] == [
        r for r in admin_workflows if r["resources"] != ["workflows"]]
    for account, role in (("sso-default", "sso-read"), ("sso-team-datacollect", "sso-read"),
                          ("sso-team-payments", "sso-read"), ("sso-admin", "sso-admin")):
        binding = _by_name(manifests, "RoleBinding", account, ns.build)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": ns.workflows}]
    # The login accounts and their tokens stay in the server's namespace only.
    sso_objects = [m for m in manifests.values() if m["kind"] in {"ServiceAccount", "Secret"}
                   and m["metadata"]["labels"]["app.kubernetes.io/component"] == "sso"]
    assert sso_objects and {m["metadata"]["namespace"] for m in sso_objects} == {ns.workflows}


def test_no_services_still_gives_sensor_executor_and_sso_accounts() -> None:
    manifests = _manifests(services=[])
    assert not _of_kind(manifests, "AppProject")
    names_ = {m["metadata"]["name"] for m in _of_kind(manifests, "ServiceAccount").values()}
    assert names_ == {names.SENSOR_SERVICE_ACCOUNT, names.EXECUTOR_SERVICE_ACCOUNT, "sso-default", "sso-admin"}


def test_builders_are_deterministic() -> None:
    assert _manifests() == _manifests()
    assert list(_manifests()) == list(_manifests(services=list(reversed(_services()))))


# ------------------------------------------------------------------------ schemas


def test_every_built_object_validates_against_the_upstream_schemas(upstream_judge: Any) -> None:
    objects = list(_manifests().values())
    assert upstream_judge.errors(objects) == []

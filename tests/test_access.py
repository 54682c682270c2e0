"""Access: AppProjects per team and least-privilege RBAC (pure builders), and the component.

Builder tests use the dev stack's settings and small services files written here
(two teams, a shared namespace, a team with two GitHub slugs). Component tests use
the `render_stack` fixture (the real program, rendered offline) and a tiny local
harness for what the real stacks do not pass yet (`argo_depends_on`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from components import names
from components.access import (
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
    TYPE,
    Access,
    AccessArgs,
    access_manifests,
    token_secret_name,
)
from components.config import RbacSettings, Service, Settings, load_stack_settings, parse_services
from tests.conftest import SERVICES_FILE

PROJECT_DIR = Path(__file__).resolve().parents[1]
WORKFLOW_TASK_RESULTS = {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                         "verbs": ["create", "patch"]}

SERVICES = """
services:
  - name: vbsiv
    repo: Appen/sid_verification_backend_api
    imageRepository: datacollect-vbsiv
    namespace: datacollect
    project: datacollect
    helm: {repo: Appen-International/datacollect-helm, path: app/vbsiv}
  - name: labeling-api
    repo: Appen/datacollect-platform
    path: services/labeling-api
    imageRepository: datacollect-labeling-api
    namespace: labeling
    project: datacollect
    helm: {repo: Appen-International/labeling-helm, path: app/labeling-api}
  - name: billing
    repo: Appen/billing
    imageRepository: billing
    namespace: datacollect
    project: payments
    helm: {repo: Appen-International/payments-helm, path: app/billing}
  - name: ledger
    repo: Appen/ledger
    imageRepository: ledger
    namespace: payments
    project: payments
    helm: {repo: Appen-International/payments-helm, path: app/ledger}
"""


def _settings(**rbac: Any) -> Settings:
    settings = load_stack_settings(PROJECT_DIR, "dev")
    return settings.model_copy(update={"rbac": RbacSettings(**rbac)}) if rbac else settings


def _services(text: str = SERVICES) -> list[Service]:
    return parse_services(text, "services.yaml").for_environment("dev")


def _manifests(settings: Settings | None = None, services: list[Service] | None = None) -> dict[str, Any]:
    return access_manifests(settings or _settings(), _services() if services is None else services)


def _of_kind(manifests: dict[str, Any], kind: str) -> dict[str, Any]:
    return {key: m for key, m in manifests.items() if m["kind"] == kind}


def _by_name(manifests: dict[str, Any], kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = [m for m in manifests.values()
             if m["kind"] == kind and m["metadata"]["name"] == name and m["metadata"]["namespace"] == namespace]
    assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]


# ----------------------------------------------------------------------------- Sensor


def test_the_sensor_role_is_exactly_create_and_get_on_workflows_in_the_workflows_namespace() -> None:
    manifests = _manifests()
    ns = _settings().namespaces
    role = manifests["sensor-role"]
    assert role["metadata"]["namespace"] == ns.workflows
    assert role["rules"] == [{"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get"]}]
    binding = manifests["sensor-rolebinding"]
    assert binding["metadata"]["namespace"] == ns.workflows
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": names.SENSOR_SERVICE_ACCOUNT, "namespace": ns.events}
    ]
    account = manifests["sensor-serviceaccount"]["metadata"]
    assert (account["name"], account["namespace"]) == (names.SENSOR_SERVICE_ACCOUNT, ns.events)


def test_the_sensor_account_is_bound_nowhere_else() -> None:
    manifests = _manifests()
    bindings = [m for m in _of_kind(manifests, "RoleBinding").values()
                if any(s["name"] == names.SENSOR_SERVICE_ACCOUNT for s in m["subjects"])]
    assert [b["metadata"]["name"] for b in bindings] == [names.SENSOR_SERVICE_ACCOUNT]


# -------------------------------------------------------------------- workflow accounts


def test_executor_roles_allow_workflowtaskresults_create_and_patch_and_nothing_else() -> None:
    manifests = _manifests()
    ns = _settings().namespaces
    for namespace in (ns.workflows, ns.build):
        role = _by_name(manifests, "Role", names.EXECUTOR_SERVICE_ACCOUNT, namespace)
        assert role["rules"] == [WORKFLOW_TASK_RESULTS]
        secret = _by_name(manifests, "Secret", token_secret_name(names.EXECUTOR_SERVICE_ACCOUNT), namespace)
        assert secret["type"] == TOKEN_SECRET_TYPE
        assert secret["metadata"]["annotations"] == {TOKEN_SECRET_SA_ANNOTATION: names.EXECUTOR_SERVICE_ACCOUNT}
        account = _by_name(manifests, "ServiceAccount", names.EXECUTOR_SERVICE_ACCOUNT, namespace)
        assert account["automountServiceAccountToken"] is False


# What each account could do before the release accounts' rules were shared: one Role
# per account and namespace, written out here literally (not from the builders), so
# the tests below prove that sharing Roles widened and narrowed nothing.
Atom = tuple[str, str, str, str | None]  # apiGroup, resource, verb, resourceName (None: any)
Permissions = dict[str, set[Atom]]  # namespace -> atoms


def _atoms(rules: list[dict[str, Any]]) -> set[Atom]:
    return {(group, resource, verb, name)
            for r in rules for group in r["apiGroups"] for resource in r["resources"] for verb in r["verbs"]
            for name in r.get("resourceNames", [None])}


def _effective(manifests: dict[str, Any]) -> dict[tuple[str, str], Permissions]:
    """ServiceAccount `(namespace, name)` -> namespace -> the union of the rules of every Role bound to it there."""
    roles = {(m["metadata"]["namespace"], m["metadata"]["name"]): m["rules"]
             for m in _of_kind(manifests, "Role").values()}
    result: dict[tuple[str, str], Permissions] = {}
    for binding in _of_kind(manifests, "RoleBinding").values():
        namespace = binding["metadata"]["namespace"]
        atoms = _atoms(roles[(namespace, binding["roleRef"]["name"])])
        for subject in binding["subjects"]:
            account = result.setdefault((subject["namespace"], subject["name"]), {})
            account.setdefault(namespace, set()).update(atoms)
    return result


def _previous_release(service: Service, settings: Settings, newest_wins: bool, slack_threads: bool) -> Permissions:
    """A release account's four Roles as they were (workflows, Argo CD, service and build namespaces)."""
    ns = settings.namespaces
    workflows = [WORKFLOW_TASK_RESULTS]
    build_verbs = ["create", "get"]
    rollout_verbs = ["get", "list", "watch"]
    if newest_wins:
        workflows.append({"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["get", "list", "patch"]})
        build_verbs = ["create", "get", "list", "patch"]
    if slack_threads:
        rollout_verbs = ["get", "list", "patch", "watch"]
    result: Permissions = {}
    for namespace, rules in (
        (ns.workflows, workflows),
        (ns.argocd, [{"apiGroups": ["argoproj.io"], "resources": ["applications"],
                      "verbs": ["get", "list", "patch", "watch"],
                      "resourceNames": [names.application_name(service.name, settings.environment)]}]),
        (service.namespace, [
            {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": rollout_verbs,
             "resourceNames": [service.name]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"],
             "resourceNames": [service.deployment]},
        ]),
        (ns.build, [{"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": build_verbs}]),
    ):
        result.setdefault(namespace, set()).update(_atoms(rules))
    return result


def _previous_platform(settings: Settings, team_names: list[str]) -> dict[tuple[str, str], Permissions]:
    """The Sensor's, the executors' and the SSO accounts' permissions as they were."""
    ns = settings.namespaces
    read = _atoms([
        {"apiGroups": ["argoproj.io"], "resources": ["cronworkflows", "workflows", "workflowtemplates"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ])
    admin = read | _atoms([
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "delete", "patch", "update"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
    ])
    # In the build namespace the admin stops, retries and deletes builds, never submits one.
    admin_build = read | _atoms([
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["delete", "patch", "update"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
    ])
    return {
        (ns.events, names.SENSOR_SERVICE_ACCOUNT): {ns.workflows: _atoms([
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get"]}])},
        (ns.workflows, names.EXECUTOR_SERVICE_ACCOUNT): {ns.workflows: _atoms([WORKFLOW_TASK_RESULTS])},
        (ns.build, names.EXECUTOR_SERVICE_ACCOUNT): {ns.build: _atoms([WORKFLOW_TASK_RESULTS])},
        # The UI's accounts see (and admin acts on) the child builds too.
        (ns.workflows, "sso-default"): {ns.workflows: read, ns.build: read},
        (ns.workflows, "sso-admin"): {ns.workflows: admin, ns.build: admin_build},
        **{(ns.workflows, f"sso-team-{team}"): {ns.workflows: read, ns.build: read} for team in team_names},
    }


def _with(settings: Settings, *, newest_wins: bool = False, slack_threads: bool = False) -> Settings:
    return settings.model_copy(update={
        "release": settings.release.model_copy(update={"newest_wins": newest_wins}),
        "slack": settings.slack.model_copy(update={"threads": slack_threads}),
    })


def _opt(text: str, service: str, line: str) -> str:
    """`text` with `line` (e.g. `newestWins: true`) added to `service`'s entry."""
    marker = f"  - name: {service}\n"
    assert marker in text
    return text.replace(marker, f"{marker}    {line}\n")


ALL = {"vbsiv", "labeling-api", "billing", "ledger"}
# (stack newest-wins, stack Slack threads, per-service lines, services with newest-wins, with Slack threads)
VARIANTS = [
    (False, False, [], set(), set()),
    (True, False, [], ALL, set()),
    (False, True, [], set(), ALL),
    (True, True, [], ALL, ALL),
    (False, False, [("ledger", "newestWins: true")], {"ledger"}, set()),
    (False, False, [("billing", "slackThreads: true")], set(), {"billing"}),
    (False, False, [("ledger", "newestWins: true"), ("billing", "slackThreads: true"),
                    ("vbsiv", "newestWins: true"), ("vbsiv", "slackThreads: true")],
     {"ledger", "vbsiv"}, {"billing", "vbsiv"}),
    (True, True, [("vbsiv", "newestWins: false"), ("billing", "slackThreads: false")],
     ALL - {"vbsiv"}, ALL - {"billing"}),
]


@pytest.mark.parametrize(("newest_wins", "slack_threads", "lines", "newest_on", "slack_on"), VARIANTS,
                         ids=["off", "stack-newest-wins", "stack-slack-threads", "stack-both",
                              "one-newest-wins", "one-slack-threads", "per-service-mix", "stack-both-two-opt-out"])
def test_every_account_may_do_exactly_what_its_own_roles_allowed_before(
    newest_wins: bool, slack_threads: bool, lines: list[tuple[str, str]], newest_on: set[str], slack_on: set[str]
) -> None:
    text = SERVICES
    for service, line in lines:
        text = _opt(text, service, line)
    settings = _with(_settings(), newest_wins=newest_wins, slack_threads=slack_threads)
    services = _services(text)
    expected = _previous_platform(settings, ["datacollect", "payments"]) | {
        (settings.namespaces.workflows, names.release_service_account_name(s.name)):
            _previous_release(s, settings, s.name in newest_on, s.name in slack_on)
        for s in services
    }
    assert _effective(access_manifests(settings, services)) == expected


def test_each_release_account_has_one_role_of_its_own_per_namespace_and_the_rest_is_shared() -> None:
    settings = _settings()
    ns = settings.namespaces
    for current in (settings, _with(settings, newest_wins=True, slack_threads=True)):
        manifests = access_manifests(current, _services())
        for service in _services():
            sa = names.release_service_account_name(service.name)
            own = {kind: [m for m in _of_kind(manifests, kind).values()
                          if m["metadata"]["labels"].get("release-pipeline/service") == service.name]
                   for kind in ("Role", "RoleBinding")}
            # Two Roles and two RoleBindings per service, whatever its options: the
            # rules that name its Application, and those that name its Rollout and Deployment.
            assert sorted((m["metadata"]["namespace"], m["metadata"]["name"]) for m in own["Role"]) == sorted(
                [(ns.argocd, sa), (service.namespace, sa)])
            assert all(r.get("resourceNames") for m in own["Role"] for r in m["rules"])
            assert sorted((m["metadata"]["namespace"], m["roleRef"]["name"], str(m["subjects"]))
                          for m in own["RoleBinding"]) == sorted(
                (namespace, sa, str([{"kind": "ServiceAccount", "name": sa, "namespace": ns.workflows}]))
                for namespace in (ns.argocd, service.namespace))
            # Every other binding of the account is a shared one, in the workflows or build namespace.
            others = [m for m in _of_kind(manifests, "RoleBinding").values()
                      if m not in own["RoleBinding"] and any(s["name"] == sa for s in m["subjects"])]
            assert {m["metadata"]["namespace"] for m in others} == {ns.workflows, ns.build}
            assert {m["roleRef"]["name"] for m in others} <= {RELEASES_ROLE, NEWEST_WINS_ROLE}
        # No per-service Role in the workflows or build namespace.
        assert not [m for m in _of_kind(manifests, "Role").values()
                    if m["metadata"]["namespace"] in {ns.workflows, ns.build}
                    and "release-pipeline/service" in m["metadata"]["labels"]]


def test_rules_of_one_service_in_one_namespace_are_in_one_role() -> None:
    # Not a valid stack (a service in a platform namespace fails the stack checks), but
    # the builder still gives the account one Role there, holding both sets of rules.
    text = SERVICES.replace("    namespace: payments\n", "    namespace: argocd\n")
    settings = _settings()
    services = _services(text)
    manifests = access_manifests(settings, services)
    sa = names.release_service_account_name("ledger")
    roles = [m for m in _of_kind(manifests, "Role").values() if m["metadata"]["name"] == sa]
    assert [m["metadata"]["namespace"] for m in roles] == ["argocd"]
    assert [r["resources"] for r in roles[0]["rules"]] == [["applications"], ["rollouts"], ["deployments"]]
    ledger = next(s for s in services if s.name == "ledger")
    assert _effective(manifests)[(settings.namespaces.workflows, sa)] == _previous_release(
        ledger, settings, False, False)
    for service in services:
        account = names.release_service_account_name(service.name)
        own = [(m["metadata"]["namespace"], m["metadata"]["name"]) for m in _of_kind(manifests, "Role").values()
               if m["metadata"]["labels"].get("release-pipeline/service") == service.name]
        assert len(own) == len(set(own)) and {name for _, name in own} == {account}


def test_shared_release_roles_bind_every_release_account_sorted_and_newest_wins_only_the_opted_in() -> None:
    settings = _settings()
    ns = settings.namespaces
    text = _opt(_opt(SERVICES, "ledger", "newestWins: true"), "billing", "newestWins: true")
    manifests = access_manifests(settings, _services(text))

    def subjects(*services: str) -> list[dict[str, str]]:
        return [{"kind": "ServiceAccount", "name": names.release_service_account_name(s), "namespace": ns.workflows}
                for s in sorted(services)]

    shared = {key: m for key, m in manifests.items() if key.startswith("releases-")}
    assert set(shared) == {f"{group}-{namespace}-{kind}" for group in ("releases", "releases-newest-wins")
                           for namespace in ("workflows", "build") for kind in ("role", "rolebinding")}
    for group, role_name, accounts, rules in (
        ("releases", RELEASES_ROLE, subjects(*ALL), {
            "workflows": [WORKFLOW_TASK_RESULTS],
            "build": [{"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get"]}]}),
        ("releases-newest-wins", NEWEST_WINS_ROLE, subjects("billing", "ledger"), {
            "workflows": [{"apiGroups": ["argoproj.io"], "resources": ["workflows"],
                           "verbs": ["get", "list", "patch"]}],
            "build": [{"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["list", "patch"]}]}),
    ):
        for role_key, namespace in (("workflows", ns.workflows), ("build", ns.build)):
            role, binding = shared[f"{group}-{role_key}-role"], shared[f"{group}-{role_key}-rolebinding"]
            assert (role["metadata"]["namespace"], role["metadata"]["name"]) == (namespace, role_name)
            assert role["rules"] == rules[role_key]
            assert (binding["metadata"]["namespace"], binding["metadata"]["name"]) == (namespace, role_name)
            assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name}
            assert binding["subjects"] == accounts
            assert "release-pipeline/service" not in role["metadata"]["labels"]
    # Without newest-wins anywhere there is no newest-wins Role; without services, no shared Role.
    assert not [key for key in _manifests() if key.startswith("releases-newest-wins-")]
    assert not [key for key in _manifests(services=[]) if key.startswith("releases-")]


def test_shared_objects_keep_their_keys_and_only_their_subjects_change_when_services_come_and_go() -> None:
    settings = _with(_settings(), newest_wins=True)
    services = _services()
    full = access_manifests(settings, services)
    for subset in (services[:1], services[1:], services[::2]):
        part = access_manifests(settings, subset)
        shared = {key for key in full if key.startswith("releases-")}
        assert {key for key in part if key.startswith("releases-")} == shared
        for key in shared:
            assert {k: v for k, v in part[key].items() if k != "subjects"} == {
                k: v for k, v in full[key].items() if k != "subjects"}
            if key.endswith("-rolebinding"):
                assert part[key]["subjects"] == [s for s in full[key]["subjects"]
                                                 if s["name"] in {names.release_service_account_name(x.name)
                                                                  for x in subset}]
        # Every other object of a service present in both is the same.
        assert {k: v for k, v in part.items() if not k.startswith("releases-") and not k.startswith("project-")} \
            .items() <= full.items()


def test_the_release_account_reads_the_deployment_its_rollout_references() -> None:
    text = SERVICES.replace(
        "helm: {repo: Appen-International/datacollect-helm, path: app/vbsiv}",
        "helm: {repo: Appen-International/datacollect-helm, path: app/vbsiv}\n    rollout: {deployment: vbsiv-web}",
    )
    settings = _settings()
    role = _by_name(_manifests(services=_services(text)), "Role",
                    names.release_service_account_name("vbsiv"), "datacollect")
    assert {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"],
            "resourceNames": ["vbsiv-web"]} in role["rules"]
    # Nothing else on Deployments, and nothing on Workflows outside the build namespace.
    for manifest in _of_kind(_manifests(settings, _services(text)), "Role").values():
        for rule in manifest["rules"]:
            if "deployments" in rule["resources"]:
                assert rule["verbs"] == ["get"] and rule.get("resourceNames")
            if "workflows" in rule["resources"] and "create" in rule["verbs"]:
                assert manifest["metadata"]["namespace"] in {settings.namespaces.workflows,
                                                               settings.namespaces.build}


def test_application_name_is_service_and_environment() -> None:
    assert names.application_name("vbsiv", "live") == "vbsiv-live"


def test_a_63_character_service_still_gets_valid_names() -> None:
    long_name = "s" + "x" * 61 + "e"
    text = SERVICES + f"""
  - name: {long_name}
    repo: Appen/long
    imageRepository: long
    namespace: datacollect
    project: datacollect
    helm: {{repo: Appen-International/datacollect-helm, path: app/long}}
"""
    manifests = _manifests(services=_services(text))
    sa = names.release_service_account_name(long_name)
    assert names.is_dns1123_label(sa) and sa != names.release_service_account_name(long_name[:-1] + "f")
    assert manifests[f"release-{long_name}-argocd-role"]["rules"][0]["resourceNames"] == [f"{long_name}-dev"]


# --------------------------------------------------------------------- every Role


def test_no_wildcard_and_nothing_cluster_wide_in_any_role() -> None:
    manifests = _manifests()
    assert {m["kind"] for m in manifests.values()} == {
        "AppProject", "Role", "RoleBinding", "Secret", "ServiceAccount",
    }
    for key, role in _of_kind(manifests, "Role").items():
        assert role["rules"], key
        for rule in role["rules"]:
            assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, key
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in value for value in rule.get(field, [])), (key, rule)
            assert "escalate" not in rule["verbs"] and "bind" not in rule["verbs"], key
            assert "impersonate" not in rule["verbs"], key
            assert "secrets" not in rule["resources"], key


def test_every_binding_names_an_existing_role_and_account_and_every_account_is_bound() -> None:
    manifests = _manifests()
    roles = {(m["metadata"]["namespace"], m["metadata"]["name"]) for m in _of_kind(manifests, "Role").values()}
    accounts = {(m["metadata"]["namespace"], m["metadata"]["name"])
                for m in _of_kind(manifests, "ServiceAccount").values()}
    bound = set()
    for key, binding in _of_kind(manifests, "RoleBinding").items():
        assert binding["roleRef"]["kind"] == "Role", key
        assert (binding["metadata"]["namespace"], binding["roleRef"]["name"]) in roles, key
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert (subject["namespace"], subject["name"]) in accounts, key
            bound.add((subject["namespace"], subject["name"]))
    assert bound == accounts


def test_object_names_are_unique_per_kind_and_namespace() -> None:
    manifests = _manifests()
    keys = [(m["kind"], m["metadata"]["namespace"], m["metadata"]["name"]) for m in manifests.values()]
    assert len(keys) == len(set(keys))


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


# ------------------------------------------------------------ component: rendered stacks


ACCESS_TYPES = {
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:core/v1:Secret",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "kubernetes:argoproj.io/v1alpha1:AppProject",
}


def _strip(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "status"}


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_rendered_stack_registers_exactly_the_built_objects(render_stack: Any, stack: str) -> None:
    resources, manifests = render_stack(stack)
    component = [r for r in resources if r["type"] == TYPE]
    assert [r["name"] for r in component] == ["access"]
    children = [r for r in resources if r["parent"] == "access"]
    assert {r["type"] for r in children} <= ACCESS_TYPES
    settings = load_stack_settings(PROJECT_DIR, stack)
    services = parse_services(SERVICES_FILE.read_text(), "services.yaml").for_environment(stack)
    built = access_manifests(settings, services)
    assert sorted(r["name"] for r in children) == sorted(f"access-{key}" for key in built)

    def key(m: dict[str, Any]) -> tuple[str, str, str]:
        return m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]

    rendered = {key(m): m for m in manifests}
    for manifest in built.values():
        got = rendered[key(manifest)]
        for field in ("rules", "roleRef", "subjects", "spec", "type", "automountServiceAccountToken"):
            assert got.get(field) == manifest.get(field), (key(manifest), field)
        assert got["metadata"].get("annotations") == manifest["metadata"].get("annotations")
        assert got["metadata"]["labels"] == manifest["metadata"]["labels"]


def test_rendered_token_secrets_wait_for_their_accounts_and_objects_for_their_namespaces(render_stack: Any) -> None:
    resources, _ = render_stack("dev")
    by_name = {r["name"]: r for r in resources if r["parent"] == "access"}
    for name, resource in by_name.items():
        if name.endswith("-token"):
            assert f"{name.removesuffix('-token')}-serviceaccount" in resource["options"]["depends_on"], name
        if resource["type"] != "kubernetes:argoproj.io/v1alpha1:AppProject":
            # The namespace is the Namespace resource's Output: a dependency.
            assert any(d.startswith("namespaces-") for d in resource["options"]["depends_on"]), name
        assert resource["options"]["protect"] is False


def test_rendered_access_objects_validate(render_stack: Any, upstream_judge: Any) -> None:
    _, manifests = render_stack("dev")
    ours = [m for m in manifests if m["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by")
            == "release-pipeline" and m["kind"] in {"AppProject", "Role", "RoleBinding", "ServiceAccount"}]
    assert ours
    assert upstream_judge.errors(ours) == []


# ---------------------------------------------------- component: local harness (depends_on)


class _Harness(MockMonitor):
    """Records (type, name, depends_on) of every registration."""

    def __init__(self) -> None:
        class _Mocks(Mocks):
            def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
                return f"{args.name}-id", dict(args.inputs)

            def call(self, args: MockCallArgs) -> tuple[dict[str, Any], None]:
                return {}, None

        super().__init__(_Mocks())
        self.records: list[dict[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.records.append({
            "type": request.type,
            "name": request.name,
            "inputs": json_format.MessageToDict(request.object),
            "depends_on": sorted(d.rsplit("::", 1)[-1] for d in request.dependencies),
        })
        return response


def test_app_projects_wait_for_the_argo_cd_crd_and_release() -> None:
    monitor = _Harness()
    pulumi.runtime.set_mocks(monitor.mocks, project="release-pipeline", stack="dev", preview=False, monitor=monitor)
    settings = _settings()
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> None:
        crd = pulumi.CustomResource("test:index:Crd", "appproject-crd", {})
        release = pulumi.CustomResource("test:index:Release", "argocd-release", {})
        access = Access(
            "access",
            AccessArgs(
                settings=settings,
                services=tuple(_services()),
                platform_namespaces={"events": "argo-events", "workflows": "argo", "argocd": "argocd",
                                     "build": "argo-build"},
                service_namespaces={},
                argo_depends_on={"AppProject": [crd, release], "Sensor": []},
            ),
        )
        outputs.update(sensor=access.sensor_service_account, accounts=access.workflow_service_accounts,
                       projects=access.app_projects, executor=access.executor_service_account)

    program()
    projects = [r for r in monitor.records if r["type"] == "kubernetes:argoproj.io/v1alpha1:AppProject"]
    assert {r["name"] for r in projects} == {"access-project-datacollect", "access-project-payments"}
    for record in projects:
        assert record["depends_on"] == ["appproject-crd", "argocd-release"]
    others = [r for r in monitor.records if r["type"] in ACCESS_TYPES - {"kubernetes:argoproj.io/v1alpha1:AppProject"}]
    assert others and all(r["depends_on"] in ([], [r["name"].removesuffix("-token") + "-serviceaccount"])
                          for r in others)
    assert outputs == {
        "sensor": names.SENSOR_SERVICE_ACCOUNT,
        "executor": names.EXECUTOR_SERVICE_ACCOUNT,
        "accounts": {s.name: names.release_service_account_name(s.name) for s in _services()},
        "projects": {"datacollect": "datacollect", "payments": "payments"},
    }


def test_with_slack_threads_the_release_account_may_patch_its_rollout_only() -> None:
    settings = _settings()
    on = settings.model_copy(update={"slack": settings.slack.model_copy(update={"threads": True})})
    sa = names.release_service_account_name("vbsiv")
    rollout_rule = {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "resourceNames": ["vbsiv"]}
    off_rules = _by_name(_manifests(settings), "Role", sa, "datacollect")["rules"]
    on_rules = _by_name(_manifests(on), "Role", sa, "datacollect")["rules"]
    assert rollout_rule | {"verbs": ["get", "list", "watch"]} in off_rules
    assert rollout_rule | {"verbs": ["get", "list", "patch", "watch"]} in on_rules
    # Everything else is unchanged (the Application's patch is already there).
    assert [r for r in on_rules if "rollouts" not in r["resources"]] == [
        r for r in off_rules if "rollouts" not in r["resources"]]
    assert {k: v for k, v in _manifests(on).items() if "-service-role" not in k} == {
        k: v for k, v in _manifests(settings).items() if "-service-role" not in k}

"""Access: least-privilege RBAC of the pipeline's own accounts (pure builders).

Builder tests use the dev stack's settings and the small services file of
tests/access_support.py (two teams, a shared namespace, a team with two GitHub slugs).
AppProjects and SSO: tests/test_access_projects_sso.py; the component:
tests/test_access_component.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import names
from components.access import (
    NEWEST_WINS_ROLE,
    RELEASES_ROLE,
    TOKEN_SECRET_SA_ANNOTATION,
    TOKEN_SECRET_TYPE,
    access_manifests,
    token_secret_name,
)
from components.config import Service, Settings
from tests.access_support import (
    SERVICES,
    WORKFLOW_TASK_RESULTS,
    _by_name,
    _manifests,
    _of_kind,
    _services,
    _settings,
)

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

"""Helm values of the Argo charts (pure builders): per setting, per chart, per stack.

Notifications and the Slack relay's webhook: tests/test_helm_values_notifications.py.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import yaml

from components import helm_values as hv
from components.config import STACKS
from tests.helm_values_support import CHARTS, PROJECTS, nested, policy_lines, settings

# --- check_helm_values against the charts' own defaults -----------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_no_unknown_values_keys_in_any_chart(stack: str) -> None:
    from tests.checks.check_helm_values import problems

    for chart, values in hv.chart_values(settings(stack), PROJECTS).items():
        assert problems(CHARTS / chart, values) == [], (stack, chart)


# --- CRDs are Pulumi's --------------------------------------------------------------------


def test_no_chart_installs_crds() -> None:
    values = hv.chart_values(settings(), PROJECTS)
    for chart in ("argo-cd", "argo-workflows", "argo-events"):
        assert values[chart]["crds"]["install"] is False, chart
    assert values["argo-rollouts"]["installCRDs"] is False


# --- sizes: HA and resources come only from settings --------------------------------------


def test_live_runs_the_replicas_its_stack_file_asks_for() -> None:
    live = settings("live")
    values = hv.chart_values(live, PROJECTS)
    sizes = live.sizes
    assert values["argo-cd"]["controller"]["replicas"] == sizes.argocd_controller.replicas == 1
    assert values["argo-cd"]["server"]["replicas"] == sizes.argocd_server.replicas == 3
    assert values["argo-cd"]["repoServer"]["replicas"] == sizes.argocd_repo_server.replicas == 3
    assert values["argo-workflows"]["controller"]["replicas"] == sizes.workflows_controller.replicas
    assert values["argo-workflows"]["server"]["replicas"] == sizes.workflows_server.replicas
    assert values["argo-events"]["controller"]["replicas"] == sizes.events_controller.replicas
    assert values["argo-rollouts"]["controller"]["replicas"] == sizes.rollouts_controller.replicas
    assert values["argo-cd"]["server"]["pdb"] == {"enabled": True, "minAvailable": 1}


def test_replicas_follow_the_sizes_not_the_environment_name() -> None:
    dev, live = settings("dev"), settings("live")
    # live's name with dev's sizes is sized like dev; dev's name with live's sizes like live.
    dev_sized_live = hv.chart_values(nested(live, sizes=dev.sizes), PROJECTS)
    assert dev_sized_live["argo-cd"]["server"]["replicas"] == 1
    assert dev_sized_live["argo-cd"]["server"]["pdb"] == {"enabled": False}
    live_sized_dev = hv.chart_values(nested(dev, sizes=live.sizes), PROJECTS)
    assert live_sized_dev["argo-cd"]["server"]["replicas"] == 3


def test_every_container_gets_requests_and_limits_from_settings() -> None:
    s = settings("live")
    values = hv.chart_values(s, PROJECTS)
    cd, wf, ev, ro = (values[c] for c in ("argo-cd", "argo-workflows", "argo-events", "argo-rollouts"))
    expected = {
        "argo-cd controller": (cd["controller"], s.sizes.argocd_controller),
        "argo-cd server": (cd["server"], s.sizes.argocd_server),
        "argo-cd repo server": (cd["repoServer"], s.sizes.argocd_repo_server),
        "argo-cd copyutil": (cd["repoServer"]["copyutil"], s.sizes.argocd_repo_server),
        "argo-cd applicationset": (cd["applicationSet"], s.sizes.argocd_applicationset),
        "argo-cd dex": (cd["dex"], s.sizes.argocd_dex),
        "argo-cd dex init": (cd["dex"]["initImage"], s.sizes.argocd_dex),
        "argo-cd redis-ha redis": (cd["redis-ha"]["redis"], s.sizes.argocd_redis),
        "argo-cd redis-ha init": (cd["redis-ha"]["init"], s.sizes.argocd_redis),
        "argo-cd redis-ha haproxy": (cd["redis-ha"]["haproxy"], s.sizes.argocd_redis),
        "argo-cd redis-ha haproxy init": (cd["redis-ha"]["haproxy"]["init"], s.sizes.argocd_redis),
        "argo-cd redis secret init": (cd["redisSecretInit"], s.sizes.argocd_redis),
        "argo-cd notifications": (cd["notifications"], s.sizes.argocd_notifications),
        "workflows controller": (wf["controller"], s.sizes.workflows_controller),
        "workflows server": (wf["server"], s.sizes.workflows_server),
        "workflows executor": (wf["executor"], s.sizes.workflows_executor),
        "events controller": (ev["controller"], s.sizes.events_controller),
        "rollouts controller": (ro["controller"], s.sizes.rollouts_controller),
        "rollouts dashboard": (ro["dashboard"], s.sizes.rollouts_dashboard),
    }
    for label, (block, size) in expected.items():
        res = block["resources"]
        assert set(res) == {"requests", "limits"}, label
        assert res["requests"] == {"cpu": size.resources.requests.cpu, "memory": size.resources.requests.memory}
        assert res["limits"] == {"cpu": size.resources.limits.cpu, "memory": size.resources.limits.memory}
    # Off by default; an exporter sidecar would be a container without a size.
    assert "exporter" not in cd["redis"] and "exporter" not in cd["redis-ha"]
    dev = hv.chart_values(settings("dev"), PROJECTS)["argo-cd"]
    assert dev["redis"]["resources"] == hv.resources(settings("dev").sizes.argocd_redis)


# --- Argo CD HA: the chart's HA profile ---------------------------------------------------


def test_live_follows_the_argo_cd_chart_ha_profile() -> None:
    live = settings("live")
    assert live.argocd.ha
    cd = hv.chart_values(live, PROJECTS)["argo-cd"]
    # Redis HA (its subchart's three Redis with Sentinel) replaces the single Redis.
    assert cd["redis-ha"]["enabled"] is True
    assert cd["redis"] == {"enabled": False}
    assert "replicas" not in cd["redis-ha"]  # the subchart's default of 3 (Sentinel quorum)
    # One application controller: a second only shards clusters, and there is one.
    assert cd["controller"]["replicas"] == 1
    for component in ("server", "repoServer", "applicationSet"):
        assert cd[component]["replicas"] >= 2, component
        assert cd[component]["pdb"] == {"enabled": True, "minAvailable": 1}, component


@pytest.mark.parametrize("stack", ["dev", "sandbox", "integration"])
def test_without_ha_argo_cd_runs_its_single_redis(stack: str) -> None:
    s = settings(stack)
    assert not s.argocd.ha
    cd = hv.chart_values(s, PROJECTS)["argo-cd"]
    assert cd["redis"]["enabled"] is True
    assert "redis-ha" not in cd


def _validate(data: dict[str, Any]) -> list[str]:
    from components.config import parse_settings
    from components.errors import ConfigError

    try:
        parse_settings(data, "Pulumi.live.yaml")
    except ConfigError as err:
        return [str(p) for p in err.problems]
    return []


def _live_data() -> dict[str, Any]:
    return settings("live").model_dump(by_alias=True, exclude_none=True, mode="json")


def test_ha_refuses_a_single_server_repo_server_or_applicationset_controller() -> None:
    assert _validate(_live_data()) == []
    data = _live_data()
    data["sizes"]["argocdRepoServer"]["replicas"] = 1
    data["sizes"]["argocdApplicationset"]["replicas"] = 1
    [problem] = _validate(data)
    assert "argocd.ha needs at least 2 replicas" in problem
    assert "sizes.argocdRepoServer.replicas is 1, sizes.argocdApplicationset.replicas is 1" in problem
    data["argocd"]["ha"] = False
    assert _validate(data) == []


def test_a_second_application_controller_is_refused() -> None:
    data = _live_data()
    data["sizes"]["argocdController"]["replicas"] = 2
    [problem] = _validate(data)
    assert "settings: sizes.argocdController: set replicas to 1 (got 2)" in problem
    assert "shard" in problem


# --- Argo CD sign-in and RBAC --------------------------------------------------------------


def test_argocd_is_never_anonymous_has_no_admin_user_and_reads_by_default() -> None:
    for stack in STACKS:
        cd = hv.argocd_values(settings(stack), PROJECTS)
        assert cd["configs"]["cm"]["users.anonymous.enabled"] == "false"
        assert cd["configs"]["cm"]["admin.enabled"] == "false"
        assert cd["configs"]["cm"]["exec.enabled"] == "false"
        assert cd["configs"]["rbac"]["policy.default"] == "role:readonly"
        assert cd["configs"]["rbac"]["scopes"] == "[groups]"
        assert cd["configs"]["cm"]["url"] == f"https://{settings(stack).hostnames.argocd}"


def test_dex_github_connector_from_settings_and_services() -> None:
    s = settings("live")
    config = yaml.safe_load(hv.dex_config(s, PROJECTS))
    (connector,) = config["connectors"]
    assert connector["type"] == "github"
    assert connector["config"]["clientID"] == s.sso.client_id
    # A reference Argo CD resolves from a labelled Secret, never the secret itself.
    assert connector["config"]["clientSecret"] == f"${hv.DEX_GITHUB_SECRET}:{hv.DEX_GITHUB_SECRET_KEY}"
    (org,) = connector["config"]["orgs"]
    assert org["name"] == s.github.organization
    assert org["teams"] == sorted({"platform", "release-managers", "datacollect"})
    assert connector["config"]["teamNameField"] == "slug"


def test_dex_teams_use_the_team_slugs_of_each_project() -> None:
    s = settings("dev")
    s = nested(s, rbac=nested(s.rbac, team_slugs={"datacollect": ["dc-devs", "dc-leads"]}))
    org = yaml.safe_load(hv.dex_config(s, PROJECTS))["connectors"][0]["config"]["orgs"][0]
    # dev: teams sync, so no release-managers team is needed to sign in.
    assert org["teams"] == ["dc-devs", "dc-leads", "platform"]
    lines = policy_lines(s)
    assert "g, Appen:dc-devs, role:team-datacollect" in lines
    assert "g, Appen:dc-leads, role:team-datacollect" in lines


def test_teams_get_and_sync_their_own_project_when_teams_sync() -> None:
    s = settings("dev")
    assert s.rbac.sync_by == "team"
    lines = policy_lines(s, ("datacollect", "search"))
    assert "g, Appen:platform, role:admin" in lines
    for project in ("datacollect", "search"):
        assert f"p, role:team-{project}, applications, get, {project}/*, allow" in lines
        assert f"p, role:team-{project}, applications, sync, {project}/*, allow" in lines
        assert f"g, Appen:{project}, role:team-{project}" in lines
    # Only its own project: no wildcard grants to a team, no release-managers role.
    assert not any(line.startswith("p, role:team-") and "*/*" in line for line in lines)
    assert not any("release-managers" in line for line in lines)


def test_only_release_managers_sync_in_live() -> None:
    s = settings("live")
    assert s.rbac.sync_by == "release-managers"
    lines = policy_lines(s)
    sync = sorted(line for line in lines if ", sync," in line)
    assert sync == ["p, role:release-managers, applications, sync, */*, allow"]
    assert "g, Appen:release-managers, role:release-managers" in lines
    # Teams keep read access to their applications.
    assert "p, role:team-datacollect, applications, get, datacollect/*, allow" in lines


def test_release_managers_team_comes_from_settings() -> None:
    s = settings("live")
    s = nested(s, rbac=nested(s.rbac, release_managers_team="rm-live"))
    lines = policy_lines(s)
    assert "g, Appen:rm-live, role:release-managers" in lines


# --- Argo Workflows server -------------------------------------------------------------------


def test_workflows_server_signs_people_in_through_argocd_dex() -> None:
    s = settings("integration")
    server = hv.workflows_values(s)["server"]
    assert server["authModes"] == ["sso"]
    assert "server" not in server["authModes"]
    sso = server["sso"]
    assert sso["enabled"] is True
    assert sso["issuer"] == f"https://{s.hostnames.argocd}/api/dex"
    assert sso["redirectUrl"] == f"https://{s.hostnames.workflows}/oauth2/callback"
    assert sso["rbac"] == {"enabled": True}
    assert sso["scopes"] == ["groups"]
    assert sso["clientId"] == {"name": hv.WORKFLOWS_SSO_SECRET, "key": hv.WORKFLOWS_SSO_ID_KEY}
    assert sso["clientSecret"] == {"name": hv.WORKFLOWS_SSO_SECRET, "key": hv.WORKFLOWS_SSO_SECRET_KEY}


@pytest.mark.parametrize("stack", STACKS)
def test_workflows_controller_runs_only_template_references_in_the_two_workflow_namespaces(stack: str) -> None:
    s = settings(stack)
    controller = hv.workflows_values(s)["controller"]
    assert controller["workflowRestrictions"] == {"templateReferencing": "Strict"}
    assert controller["workflowNamespaces"] == sorted({s.namespaces.workflows, s.namespaces.build})


def test_workflow_executor_containers_meet_the_restricted_pod_security_standard() -> None:
    executor = hv.workflows_values(settings())["executor"]
    context = executor["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["privileged"] is False
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] != 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    # A fresh dict each time: callers may not change each other's copy.
    assert hv.executor_security_context() is not hv.executor_security_context()


def test_dex_static_client_secret_reaches_dex_only_by_environment_reference() -> None:
    s = settings()
    client = yaml.safe_load(hv.dex_config(s, PROJECTS))["staticClients"][0]
    assert client["id"] == hv.WORKFLOWS_SSO_CLIENT_ID
    assert client["secretEnv"] == hv.WORKFLOWS_SSO_ENV
    assert "secret" not in client
    assert client["redirectURIs"] == [f"https://{s.hostnames.workflows}/oauth2/callback"]
    (env,) = hv.argocd_values(s, PROJECTS)["dex"]["env"]
    assert env == {
        "name": hv.WORKFLOWS_SSO_ENV,
        "valueFrom": {"secretKeyRef": {"name": hv.WORKFLOWS_SSO_SECRET, "key": hv.WORKFLOWS_SSO_SECRET_KEY}},
    }


# --- UIs: Ingress + TLS -----------------------------------------------------------------------


def test_ui_ingresses_use_the_alb_with_tls_on_443_from_settings() -> None:
    s = settings("live")
    cd = hv.argocd_values(s, PROJECTS)["server"]["ingress"]
    wf = hv.workflows_values(s)["server"]["ingress"]
    assert cd["enabled"] and wf["enabled"]
    assert cd["ingressClassName"] == wf["ingressClassName"] == "alb"
    assert cd["hostname"] == s.hostnames.argocd and cd["tls"] is True
    assert wf["hosts"] == [s.hostnames.workflows] and wf["tls"] == [{"hosts": [s.hostnames.workflows]}]
    for alb in (cd["annotations"], wf["annotations"]):
        assert alb["alb.ingress.kubernetes.io/scheme"] == s.ingress.ui_scheme
        assert alb["alb.ingress.kubernetes.io/group.name"] == s.ingress.group_name
        assert alb["alb.ingress.kubernetes.io/ssl-policy"] == s.ingress.ssl_policy
        assert alb["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
        assert yaml.safe_load(alb["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
        # Without an ARN the controller discovers the ACM certificate by TLS host.
        assert "alb.ingress.kubernetes.io/certificate-arn" not in alb


def test_ingress_settings_flow_into_the_annotations() -> None:
    s = settings("dev")
    arn = "arn:aws:acm:us-east-1:111111111111:certificate/abc"
    ingress = nested(
        s.ingress,
        certificate_arn=arn,
        ui_scheme="internet-facing",
        group_name="ui",
        annotations={"external-dns.alpha.kubernetes.io/ttl": "60", "alb.ingress.kubernetes.io/scheme": "internal"},
    )
    annotations = hv.alb_annotations(ingress)
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == arn
    assert annotations["alb.ingress.kubernetes.io/group.name"] == "ui"
    # The settings' own annotations are added, but do not override the fixed ones.
    assert annotations["external-dns.alpha.kubernetes.io/ttl"] == "60"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"


def test_rollouts_dashboard_is_cluster_internal_and_read_only() -> None:
    dashboard = hv.rollouts_values(settings())["dashboard"]
    assert dashboard["enabled"] is True
    assert dashboard["ingress"] == {"enabled": False}
    assert dashboard["service"] == {"type": "ClusterIP"}
    assert dashboard["readonly"] is True


# --- metrics -----------------------------------------------------------------------------------


def _metrics_blocks(values: dict[str, Any]) -> list[dict[str, Any]]:
    cd, ev, ro, wf = (values[c] for c in ("argo-cd", "argo-events", "argo-rollouts", "argo-workflows"))
    blocks = [cd[c]["metrics"] for c in ("controller", "server", "repoServer", "applicationSet", "dex")]
    blocks += [cd["notifications"]["metrics"], ev["controller"]["metrics"], ro["controller"]["metrics"]]
    controller = wf["controller"]
    blocks.append({"enabled": controller["metricsConfig"]["enabled"], "serviceMonitor": controller["serviceMonitor"]})
    return blocks


@pytest.mark.parametrize(
    ("enabled", "service_monitor", "expect_metrics", "expect_monitor"),
    [(True, False, True, False), (True, True, True, True), (False, True, False, False), (False, False, False, False)],
)
def test_metrics_and_service_monitors_follow_settings(
    enabled: bool, service_monitor: bool, expect_metrics: bool, expect_monitor: bool
) -> None:
    s = settings()
    s = nested(s, metrics=nested(s.metrics, enabled=enabled, service_monitor=service_monitor))
    for block in _metrics_blocks(hv.chart_values(s, PROJECTS)):
        assert block["enabled"] is expect_metrics
        assert block["serviceMonitor"]["enabled"] is expect_monitor


# --- secrets ----------------------------------------------------------------------------------


def test_builders_take_no_secret_and_emit_only_references() -> None:
    for builder in (hv.chart_values, hv.argocd_values, hv.workflows_values, hv.events_values, hv.rollouts_values):
        # slack_relay_url: a cluster-internal URL, no secret.
        allowed = {"settings", "projects", "slack_relay_url"}
        assert set(inspect.signature(builder).parameters) <= allowed, builder.__name__
    for stack in STACKS:
        strings = list(hv.walk_strings(hv.chart_values(settings(stack), PROJECTS)))
        # Slack tokens, GitHub secrets and generated passwords have no way in; what
        # names a secret is a reference ($key, $secret:key, secretEnv, secretKeyRef).
        assert not any(word in text for text in strings for word in ("xoxb-", "xoxp-", "offline-placeholder"))
        assert "token: $slack-token\n" in strings


def test_values_are_deterministic() -> None:
    s = settings("live")
    assert yaml.safe_dump(hv.chart_values(s, ("b", "a"))) == yaml.safe_dump(hv.chart_values(s, ("a", "b", "a")))

"""components.slack_relay: the relay's objects (pure builders) and the real program rendered offline.

Nothing of it unless a service has Slack threads on; then exactly the Deployment,
Service, NetworkPolicy, ServiceAccount and least-privilege Roles, all valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components import slack_relay as sr
from components import workflows as wf
from components.config import STACKS, Service, Settings, load_services, load_stack_settings
from tests.conftest import SERVICES_FILE, RenderStack

ROOT = Path(__file__).resolve().parents[1]
SERVICES = SERVICES_FILE.read_text()
CONFIG_MAP = "release-pipeline-scripts-0123456789"


def settings(stack: str = "dev", threads: bool = False) -> Settings:
    base = load_stack_settings(ROOT, stack)
    return base.model_copy(update={"slack": base.slack.model_copy(update={"threads": threads})})


def services(stack: str = "dev") -> list[Service]:
    return list(load_services(SERVICES_FILE).for_environment(settings(stack).environment))


def opted(text: str, flag: str = "true") -> str:
    """services.yaml with `slackThreads: <flag>` on every service of the datacollect namespace."""
    return text.replace("    namespace: datacollect\n", f"    namespace: datacollect\n    slackThreads: {flag}\n")


def by_kind(manifests: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests.values() if m["kind"] == kind]


def test_nothing_when_no_service_has_threads_on() -> None:
    assert sr.relay_manifests(settings(), services(), CONFIG_MAP) == {}
    assert sr.threaded(services(), settings()) == []


def test_the_stack_setting_turns_it_on_for_every_service_and_a_service_may_say_no() -> None:
    on = settings(threads=True)
    everyone = services()
    assert sr.threaded(everyone, on) == sorted(everyone, key=lambda s: s.name)
    first = everyone[0].model_copy(update={"slack_threads": False})
    assert first not in sr.threaded([first, *everyone[1:]], on)


def test_the_pod_runs_the_relay_script_restricted_and_read_only() -> None:
    s = settings(threads=True)
    deployment = sr.deployment(s, CONFIG_MAP)
    assert deployment["metadata"]["namespace"] == s.namespaces.workflows
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == sr.RELEASE_TOOLS.ref(s.tool_images.registry)
    assert container["command"] == ["python3", "/opt/release-pipeline/scripts/slack_relay.py"]
    assert (ROOT / "scripts" / sr.SCRIPT).is_file() and sr.SCRIPT in wf.read_scripts(ROOT / "scripts")
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["SLACK_TOKEN"] == {"secretKeyRef": {"name": "release-notify-slack", "key": "slack-token"}}
    assert env["ENVIRONMENT"] == s.environment and env["APPLICATION_NAMESPACE"] == s.namespaces.argocd
    assert "xox" not in str(deployment)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]} and security["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {v["name"]: v for v in pod["volumes"]} == {
        "scripts": {"name": "scripts", "configMap": {"name": CONFIG_MAP, "defaultMode": wf.SCRIPT_FILE_MODE}},
        "tmp": {"name": "tmp", "emptyDir": {}},
    }
    assert {m["mountPath"] for m in container["volumeMounts"]} == {wf.SCRIPTS_DIR, "/tmp"}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert pod["serviceAccountName"] == sr.RELAY_NAME


def test_only_the_notification_controllers_namespaces_reach_it() -> None:
    s = settings(threads=True)
    policy = sr.network_policy(s)["spec"]
    assert policy["podSelector"] == {"matchLabels": sr.selector()} and policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"port": sr.PORT, "protocol": "TCP"}]
    assert sorted(f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in rule["from"]) == \
        sorted({s.namespaces.argocd, s.namespaces.rollouts})
    assert all(set(f) == {"namespaceSelector"} for f in rule["from"])
    assert sr.service(s)["spec"]["type"] == "ClusterIP"
    assert sr.relay_url(s) == f"http://release-pipeline-slack-relay.{s.namespaces.workflows}.svc:8080/event"


def test_the_account_may_read_and_patch_exactly_the_opted_in_applications_and_read_their_rollouts() -> None:
    s = settings()
    chosen = [sv for sv in services() if sv.namespace == "datacollect"][:2]
    manifests = sr.rbac_manifests(s, chosen)
    roles = {m["metadata"]["namespace"]: m["rules"] for m in by_kind(manifests, "Role")}
    assert roles == {
        s.namespaces.argocd: [{"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["get", "patch"],
                               "resourceNames": sorted(f"{sv.name}-{s.environment}" for sv in chosen)}],
        "datacollect": [{"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get"],
                         "resourceNames": sorted(sv.name for sv in chosen)}],
    }
    for binding in by_kind(manifests, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sr.RELAY_NAME,
                                        "namespace": s.namespaces.workflows}]
        assert binding["roleRef"]["name"] == sr.RELAY_NAME
    assert not any(m["kind"].startswith("Cluster") for m in manifests.values())


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_validates_against_the_upstream_schemas(stack: str, upstream_judge: Any) -> None:
    manifests = sr.relay_manifests(settings(stack, threads=True), services(stack), CONFIG_MAP)
    assert {m["kind"] for m in manifests.values()} == {"Deployment", "Service", "NetworkPolicy", "ServiceAccount",
                                                       "Role", "RoleBinding"}
    assert upstream_judge.errors(list(manifests.values())) == []


# --------------------------------------------------------------- the real program


def _relay_objects(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if m["metadata"].get("labels", {}).get("app.kubernetes.io/component")
            == sr.COMPONENT]


def test_off_by_default_nothing_is_rendered_and_saying_no_changes_nothing(render_stack: RenderStack) -> None:
    resources, manifests = render_stack("dev")
    assert _relay_objects(manifests) == []
    assert not [r for r in resources if sr.TYPE in str(r)]
    # Every service saying `slackThreads: false` is the same render, byte for byte.
    assert render_stack("dev", opted(SERVICES, "false")) == (resources, manifests)


def test_a_service_with_threads_on_gets_the_relay_built_here(render_stack: RenderStack) -> None:
    resources, manifests = render_stack("dev", opted(SERVICES))
    s = settings()
    chosen = [sv for sv in services() if sv.namespace == "datacollect"]
    config_map = next(m["metadata"]["name"] for m in manifests if m["kind"] == "ConfigMap"
                      and m["metadata"]["name"].startswith(wf.SCRIPTS_CONFIG_MAP_PREFIX))
    expected = sr.relay_manifests(s, [sv.model_copy(update={"slack_threads": True}) for sv in chosen], config_map)

    def key(m: dict[str, Any]) -> tuple[str, str, str]:
        return m["kind"], m["metadata"]["namespace"], m["metadata"]["name"]

    rendered = {key(m): m for m in _relay_objects(manifests)}
    assert set(rendered) == {key(m) for m in expected.values()}
    deployment = rendered[("Deployment", s.namespaces.workflows, sr.RELAY_NAME)]
    assert deployment["spec"] == expected["deployment"]["spec"]
    [component] = [r for r in resources if sr.TYPE in str(r.get("type", ""))]
    [pod] = [r for r in resources if r.get("type") == "kubernetes:apps/v1:Deployment"
             and sr.RELAY_NAME in str(r)]
    assert "release-workflows" in str(pod.get("dependencies", pod)) and component


def test_the_rendered_stack_with_threads_on_validates(render_stack: RenderStack, upstream_judge: Any) -> None:
    _, manifests = render_stack("dev", opted(SERVICES))
    assert upstream_judge.errors(_relay_objects(manifests)) == []


def _release_values(resources: list[dict[str, Any]], name: str) -> str:
    [release] = [r for r in resources if r["type"] == "kubernetes:helm.sh/v3:Release" and r["name"] == name]
    return json.dumps(release["inputs"]["values"], sort_keys=True)


def test_controllers_notify_the_relay_only_when_threads_are_on(render_stack: Any) -> None:
    """The platform passes the relay's address to Argo CD and Argo Rollouts notifications."""
    services = SERVICES_FILE.read_text().replace(
        "  - name: vbsiv\n", "  - name: vbsiv\n    slackThreads: true\n", 1
    )
    on, _ = render_stack("dev", services)
    off, _ = render_stack("dev")
    for release in ("platform-argo-cd", "platform-argo-rollouts"):
        assert "service.webhook.slack-thread" in _release_values(on, release), release
        assert "slack-thread" not in _release_values(off, release), release

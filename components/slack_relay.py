"""The Slack relay: where Argo CD's and Argo Rollouts' events join a release's Slack thread.

Owns (once per stack, only when some service has Slack threads on: `slack.threads`,
`slackThreads`): in the workflows namespace, the Deployment and ClusterIP Service
`release-pipeline-slack-relay` running `scripts/slack_relay.py` (release-tools image,
the step scripts ConfigMap mounted), a NetworkPolicy that admits only pods of the
Argo CD and Argo Rollouts namespaces on its port, and its ServiceAccount with exactly
what the relay does: get and patch the opted-in services' Applications `<service>-<env>`
(Argo CD namespace), get their Rollouts `<service>` (their namespaces), by name.

Does not own: the Slack token's Secret (`release-notify-slack`, `components.workflows`,
read through a secretKeyRef); the scripts ConfigMap (`components.workflows`, its name
passed in); the notification controllers' `webhook` service and templates that call
the relay (`components.helm_values`, `relay_url` here); the subscriptions on the
Applications and Rollouts (`components.delivery`).

Decisions: docs/decisions/0417-slack-relay-joins-controller-events-to-the-thread.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import access, names
from components import helm_values as hv
from components.config import Service, Settings
from components.namespaces import object_meta
from components.versions import RELEASE_TOOLS
from components.workflows import SCRIPT_FILE_MODE, SCRIPTS_DIR, SLACK_SECRET_NAME, SLACK_TOKEN_KEY, STEP_UID

TYPE = "release-pipeline:components:SlackRelay"

RELAY_NAME = "release-pipeline-slack-relay"
COMPONENT = "slack-relay"
PORT = 8080
PORT_NAME = "http"
EVENT_PATH = "/event"
HEALTH_PATH = "/healthz"
SCRIPT = "slack_relay.py"
TMP = "/tmp"
APPLICATION_VERBS: tuple[str, ...] = ("get", "patch")
ROLLOUT_VERBS: tuple[str, ...] = ("get",)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

Manifest = dict[str, Any]


# ------------------------------------------------------------------ pure builders


def threaded(services: Iterable[Service], settings: Settings) -> list[Service]:
    """The services with Slack threads on in this stack, by name."""
    return sorted((s for s in services if s.slack_threads_in(settings)), key=lambda s: s.name)


def relay_url(settings: Settings) -> str:
    """What the notification controllers' `slack-thread` webhook calls (cluster DNS)."""
    return f"http://{RELAY_NAME}.{settings.namespaces.workflows}.svc:{PORT}{EVENT_PATH}"


def selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": RELAY_NAME}


def _metadata(name: str, namespace: str) -> dict[str, Any]:
    return {"name": names.check_k8s_name(name), "namespace": namespace,
            "labels": access.labels(COMPONENT) | selector()}


def deployment(settings: Settings, scripts_config_map: str) -> Manifest:
    """The relay: one restricted, read-only pod running slack_relay.py."""
    size = settings.sizes.workflow_step
    probe = {"httpGet": {"path": HEALTH_PATH, "port": PORT_NAME}, "periodSeconds": 20, "timeoutSeconds": 5}
    env = [
        {"name": "SLACK_TOKEN", "valueFrom": {"secretKeyRef": {"name": SLACK_SECRET_NAME, "key": SLACK_TOKEN_KEY}}},
        {"name": "ENVIRONMENT", "value": settings.environment},
        {"name": "APPLICATION_NAMESPACE", "value": settings.namespaces.argocd},
        {"name": "PORT", "value": str(PORT)},
        {"name": "HOME", "value": TMP},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    container = {
        "name": "relay",
        "image": RELEASE_TOOLS.ref(settings.tool_images.registry),
        "command": ["python3", f"{SCRIPTS_DIR}/{SCRIPT}"],
        "env": env,
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": probe | {"failureThreshold": 3},
        "resources": hv.resources(size),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": TMP},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(RELAY_NAME, settings.namespaces.workflows),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector()},
            "template": {
                "metadata": {"labels": access.labels(COMPONENT) | selector()},
                "spec": {
                    "serviceAccountName": RELAY_NAME,
                    # The relay reads and patches objects with its own token.
                    "automountServiceAccountToken": True,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": STEP_UID,
                        "runAsGroup": STEP_UID,
                        "fsGroup": STEP_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "scripts", "configMap": {"name": scripts_config_map,
                                                          "defaultMode": SCRIPT_FILE_MODE}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def service(settings: Settings) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(RELAY_NAME, settings.namespaces.workflows),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(),
            "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def network_policy(settings: Settings) -> Manifest:
    """Only the notification controllers' namespaces reach the relay, on its port."""
    sources = sorted({settings.namespaces.argocd, settings.namespaces.rollouts})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(RELAY_NAME, settings.namespaces.workflows),
        "spec": {
            "podSelector": {"matchLabels": selector()},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: ns}}} for ns in sources],
                "ports": [{"port": PORT, "protocol": "TCP"}],
            }],
        },
    }


def rbac_manifests(settings: Settings, services: Sequence[Service]) -> dict[str, Manifest]:
    """The relay's ServiceAccount, and a Role (and binding) per namespace it reads in."""
    ns = settings.namespaces
    subject = (RELAY_NAME, ns.workflows)
    result: dict[str, Manifest] = {"service-account": access.service_account(RELAY_NAME, ns.workflows, COMPONENT)}
    roles: dict[str, list[dict[str, list[str]]]] = {
        ns.argocd: [access.rule(access.ARGO_GROUP, ["applications"], APPLICATION_VERBS,
                                [names.application_name(s.name, settings.environment) for s in services])],
    }
    by_namespace: dict[str, list[str]] = {}
    for s in services:
        by_namespace.setdefault(s.namespace, []).append(names.rollout_name(s.name))
    for namespace, rollouts in sorted(by_namespace.items()):
        roles.setdefault(namespace, []).append(access.rule(access.ARGO_GROUP, ["rollouts"], ROLLOUT_VERBS, rollouts))
    for namespace, rules in sorted(roles.items()):
        result[f"role-{namespace}"] = access.role(RELAY_NAME, namespace, rules, COMPONENT)
        result[f"role-binding-{namespace}"] = access.role_binding(RELAY_NAME, namespace, RELAY_NAME, subject,
                                                                  COMPONENT)
    return result


def relay_manifests(settings: Settings, services: Iterable[Service], scripts_config_map: str) -> dict[str, Manifest]:
    """Every object of the relay by a stable key; nothing when no service has threads on."""
    opted = threaded(services, settings)
    if not opted:
        return {}
    return {
        **rbac_manifests(settings, opted),
        "deployment": deployment(settings, scripts_config_map),
        "service": service(settings),
        "network-policy": network_policy(settings),
    }


# ---------------------------------------------------------------------- component


@dataclass(frozen=True)
class SlackRelayArgs:
    """What the Slack relay of a stack is made from."""

    settings: Settings
    """The stack's settings: namespaces, environment, tool images, sizes."""
    services: tuple[Service, ...]
    """This environment's services; the relay serves those with Slack threads on."""
    namespaces: Mapping[str, pulumi.Input[str]]
    """Namespace name -> the Namespace resource's name Output (platform and service
    namespaces), so every object waits for its namespace."""
    scripts_config_map: str
    """Name of the step scripts ConfigMap in the workflows namespace (`ReleaseWorkflows.scripts_config_map`)."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What the pod needs first: the scripts ConfigMap and the Slack Secret (`ReleaseWorkflows`)."""


class SlackRelay(pulumi.ComponentResource):
    """The relay Deployment, Service, NetworkPolicy and RBAC; nothing when no service has threads on."""

    url: str | None
    """What the notification controllers' webhook calls; None when nothing is deployed."""

    def __init__(self, name: str, args: SlackRelayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        manifests = relay_manifests(args.settings, args.services, args.scripts_config_map)
        self.url = relay_url(args.settings) if manifests else None
        waits: list[pulumi.Resource] = []
        for key, manifest in manifests.items():
            kind = manifest["kind"]
            logical = f"{name}-{key}"
            metadata = object_meta(manifest, args.namespaces)
            child = pulumi.ResourceOptions(parent=self)
            if kind == "ServiceAccount":
                waits.append(k8s.core.v1.ServiceAccount(logical, metadata=metadata, opts=child))
            elif kind == "Role":
                waits.append(k8s.rbac.v1.Role(logical, metadata=metadata, rules=manifest["rules"], opts=child))
            elif kind == "RoleBinding":
                waits.append(k8s.rbac.v1.RoleBinding(logical, metadata=metadata, role_ref=manifest["roleRef"],
                                                     subjects=manifest["subjects"], opts=child))
            elif kind == "Service":
                k8s.core.v1.Service(logical, metadata=metadata, spec=manifest["spec"], opts=child)
            elif kind == "NetworkPolicy":
                k8s.networking.v1.NetworkPolicy(logical, metadata=metadata, spec=manifest["spec"], opts=child)
        if "deployment" in manifests:
            manifest = manifests["deployment"]
            k8s.apps.v1.Deployment(
                f"{name}-deployment",
                metadata=object_meta(manifest, args.namespaces),
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*waits, *args.depends_on]),
            )
        self.register_outputs({"url": self.url})

"""Helm values of the argo-workflows, argo-events and argo-rollouts charts.

Owns: the Workflow controller (Strict template referencing, the executor's
securityContext and resources, metrics) and the Argo Server behind SSO only; the
Argo Events controller; the Argo Rollouts controller and dashboard, with the
Rollouts notifications.

Does not own: the ServiceAccounts SSO maps people to (`components.access`), the
notification templates (`helm_values.notifications`), the Secrets the values name.
"""

from __future__ import annotations

from components.config import Settings
from components.helm_values.common import (
    ROLLOUTS_CONTROLLER_COMPONENT,
    WORKFLOWS_SSO_ID_KEY,
    WORKFLOWS_SSO_SECRET,
    WORKFLOWS_SSO_SECRET_KEY,
    Values,
    alb_annotations,
    executor_security_context,
    metrics,
    pdb,
    resources,
)
from components.helm_values.notifications import (
    rollouts_notifications,
)

# --- Argo Workflows ----------------------------------------------------------------------


def workflows_values(settings: Settings) -> Values:
    """Values of the argo-workflows chart: controller, and the server behind SSO only.

    People sign in through Argo CD's Dex (`authModes: [sso]`, never `server`, which
    would act as the server's own ServiceAccount for anyone who reaches it). SSO RBAC
    maps them to ServiceAccounts by rbac-rule annotations (made in `components.access`).
    Ref: https://argo-workflows.readthedocs.io/en/stable/argo-server-sso/

    The controller runs only Workflows that reference a WorkflowTemplate
    (`templateReferencing: Strict`): whoever may create a Workflow (the Sensors, the
    release account's child build) can start a Pulumi-written template with arguments,
    not run a pod spec of their own, and (from v4.0.5) not swap its ServiceAccount.
    Ref: https://argo-workflows.readthedocs.io/en/stable/workflow-restrictions/
    Ref: https://argo-workflows.readthedocs.io/en/stable/workflow-pod-security-context/
    """
    sizes = settings.sizes
    host = settings.hostnames.workflows
    monitor = settings.metrics.enabled and settings.metrics.service_monitor
    namespaces = sorted({settings.namespaces.workflows, settings.namespaces.build})
    return {
        "crds": {"install": False, "keep": True},
        "singleNamespace": False,
        # ServiceAccounts and RBAC of workflow pods are least-privilege objects of
        # their own (components.access), not the chart's generic ones.
        "workflow": {"serviceAccount": {"create": False}, "rbac": {"create": False}},
        "controller": {
            "replicas": sizes.workflows_controller.replicas,
            "pdb": pdb(sizes.workflows_controller),
            "resources": resources(sizes.workflows_controller),
            "workflowNamespaces": namespaces,
            "workflowRestrictions": {"templateReferencing": "Strict"},
            "metricsConfig": {"enabled": settings.metrics.enabled},
            "serviceMonitor": {"enabled": monitor},
        },
        "executor": {
            "resources": resources(sizes.workflows_executor),
            "securityContext": executor_security_context(),
        },
        "server": {
            "enabled": True,
            "replicas": sizes.workflows_server.replicas,
            "pdb": pdb(sizes.workflows_server),
            "resources": resources(sizes.workflows_server),
            "secure": True,
            "authModes": ["sso"],
            "sso": {
                "enabled": True,
                "issuer": f"https://{settings.hostnames.argocd}/api/dex",
                "clientId": {"name": WORKFLOWS_SSO_SECRET, "key": WORKFLOWS_SSO_ID_KEY},
                "clientSecret": {"name": WORKFLOWS_SSO_SECRET, "key": WORKFLOWS_SSO_SECRET_KEY},
                "redirectUrl": f"https://{host}/oauth2/callback",
                "rbac": {"enabled": True},
                "scopes": ["groups"],
                "insecureSkipVerify": False,
            },
            "ingress": {
                "enabled": True,
                "ingressClassName": settings.ingress.class_name,
                "annotations": alb_annotations(settings.ingress),
                "hosts": [host],
                "paths": ["/"],
                "pathType": "Prefix",
                "tls": [{"hosts": [host]}],
            },
        },
    }


# --- Argo Events -------------------------------------------------------------------------


def events_values(settings: Settings) -> Values:
    """Values of the argo-events chart: the controller, watching only its own namespace
    (the EventBus, EventSources and Sensors all live there)."""
    size = settings.sizes.events_controller
    return {
        "crds": {"install": False, "keep": True},
        "controller": {
            "replicas": size.replicas,
            "pdb": pdb(size),
            "resources": resources(size),
            "rbac": {"enabled": True, "namespaced": True, "managedNamespace": settings.namespaces.events},
            "metrics": metrics(settings),
        },
        "webhook": {"enabled": False},
    }


# --- Argo Rollouts -------------------------------------------------------------------------


def rollouts_values(settings: Settings, slack_relay_url: str | None = None) -> Values:
    """Values of the argo-rollouts chart.

    The dashboard has no login of its own: it stays cluster-internal (no Ingress) and
    read-only; people reach it with `kubectl port-forward` under their own RBAC, and
    promote or abort with the kubectl plugin (README, "Developer UIs and how to sign in").
    """
    sizes = settings.sizes
    return {
        "installCRDs": False,
        "keepCRDs": True,
        "controller": {
            "component": ROLLOUTS_CONTROLLER_COMPONENT,
            "replicas": sizes.rollouts_controller.replicas,
            "pdb": pdb(sizes.rollouts_controller),
            "resources": resources(sizes.rollouts_controller),
            "metrics": metrics(settings),
        },
        "dashboard": {
            "enabled": True,
            "readonly": True,
            "replicas": sizes.rollouts_dashboard.replicas,
            "pdb": pdb(sizes.rollouts_dashboard),
            "resources": resources(sizes.rollouts_dashboard),
            "service": {"type": "ClusterIP"},
            "ingress": {"enabled": False},
        },
        # Only the traffic router this platform may use (ALB); no RBAC for the others.
        "providerRBAC": {
            "enabled": True,
            "providers": {
                "istio": False,
                "smi": False,
                "ambassador": False,
                "awsLoadBalancerController": True,
                "awsAppMesh": False,
                "traefik": False,
                "apisix": False,
                "contour": False,
                "glooPlatform": False,
                "gatewayAPI": False,
            },
        },
        "notifications": rollouts_notifications(settings, slack_relay_url),
    }

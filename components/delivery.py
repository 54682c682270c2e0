"""Delivery of one service in one environment: its Argo CD Application and its Rollout.

Owns (per service, per stack):
- the Argo CD `Application` `<service>-<env>` (Argo CD namespace): the service's chart
  from this environment's branch of its helm repository, with the values file the
  promote step edits; automated sync with prune, self-heal and retry; Deployment
  `replicas` ignored; the team's AppProject; per-service Slack subscriptions; the
  cascading-delete finalizer only where `settings.release.cascadeDelete` says so;
- the Argo Rollouts `Rollout` `<service>` (service namespace): `workloadRef` to the
  chart's Deployment, the canary steps, Slack subscriptions;
- with `rollout.trafficRouting`: the `<service>-stable` and `<service>-canary` Services
  and ALB traffic routing through the chart's Ingress;
- with `rollout.analysis`: the `AnalysisTemplate` `<service>-success-rate`.

Does not own: the chart, its Deployment, Service(s), Ingress and HPA (the service
team's, synced by the Application); the AppProject (`components.access`); the release
Workflow that promotes and verifies; the notification templates and triggers
(`components.helm_values`); the namespaces.

Decisions: docs/decisions/0406-rollout-is-pulumis-deployment-the-charts.md,
docs/decisions/0407-application-sync-and-deletion.md,
docs/decisions/0408-canary-traffic-routing-and-background-analysis.md,
docs/decisions/0142-canary-steps-and-replicas.md.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import names
from components.access import ARGO_API_VERSION, IN_CLUSTER, labels
from components.config import ANALYSIS_ARGS, CanaryStep, Service, Settings
from components.github_access import git_ssh_url
from components.helm_values import (
    ARGOCD_THREAD_TRIGGERS,
    ARGOCD_TRIGGERS,
    ROLLOUTS_THREAD_TRIGGERS,
    ROLLOUTS_TRIGGERS,
    service_notifications,
)
from components.namespaces import object_meta

TYPE = "release-pipeline:components:ServiceDelivery"

Manifest = dict[str, Any]

CASCADE_FINALIZER = "resources-finalizer.argocd.argoproj.io"
SYNC_OPTIONS: tuple[str, ...] = (
    "CreateNamespace=false",
    "FailOnSharedResource=true",
    "RespectIgnoreDifferences=true",
)
# Failed syncs: 5 more attempts, 10s, 20s, 40s, 80s, 160s apart (at most 3m).
RETRY: dict[str, Any] = {
    "limit": 5,
    "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"},
    "refresh": True,
}
# Charts that still set Deployment replicas: Argo CD neither reports nor reverts the
# zero the Rollouts controller scales them to (`scaleDown: onsuccess`).
IGNORE_DEPLOYMENT_REPLICAS: dict[str, Any] = {
    "group": "apps",
    "kind": "Deployment",
    "jsonPointers": ["/spec/replicas"],
}
DEFAULT_SELECTOR_KEY = "app.kubernetes.io/name"
SERVICE_PORT_NAME = "http"
SUCCESS_RATE_METRIC = "success-rate"
# Pulumi must not revert what the Rollouts controller adds (rollouts-pod-template-hash).
SERVICE_IGNORE_CHANGES: tuple[str, ...] = ("spec.selector",)
# Pulumi's Service await waits for endpoints; the stable/canary Services have none
# until the Rollout (created after them) runs pods, and the canary one often none.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


# ------------------------------------------------------------------------- names


def stable_service_name(service: str) -> str:
    """Service the Rollouts controller points at the stable ReplicaSet (traffic routing)."""
    return names.check_k8s_name(names.bounded(f"{service}-stable", names.DNS1123_LABEL_MAX))


def canary_service_name(service: str) -> str:
    """Service the Rollouts controller points at the canary ReplicaSet (traffic routing)."""
    return names.check_k8s_name(names.bounded(f"{service}-canary", names.DNS1123_LABEL_MAX))


def analysis_template_name(service: str) -> str:
    """AnalysisTemplate (service namespace) of the canary's success rate."""
    return names.check_k8s_name(f"{service}-success-rate", label=False)


# ------------------------------------------------------------------ pure builders


def values_file(service: Service, settings: Settings) -> str:
    """The values file, relative to the chart, that Argo CD reads and promote.py edits."""
    return service.helm.values_file or settings.values_file


def values_path_in_repo(service: Service, settings: Settings) -> str:
    """The same file relative to the helm repository's root: promote.py's `VALUES_FILE`."""
    return str(PurePosixPath(service.helm.path) / values_file(service, settings))


def canary_steps(service: Service, settings: Settings) -> list[CanaryStep]:
    """The service's own steps for this environment, else the environment's profile."""
    return service.canary_in(settings)


def step_manifest(step: CanaryStep) -> dict[str, Any]:
    """`{setWeight: N}`, `{pause: {}}` (wait for a person) or `{pause: {duration: D}}`."""
    if step.set_weight is not None:
        return {"setWeight": step.set_weight}
    assert step.pause is not None  # a CanaryStep is exactly one of the two
    return {"pause": {} if step.pause.duration is None else {"duration": step.pause.duration}}


def analysis_starting_step(steps: Sequence[CanaryStep]) -> int | None:
    """Index of the step after the first `setWeight` (the canary then takes traffic);
    None when that is past the last step (start at once)."""
    for index, step in enumerate(steps):
        if step.set_weight is not None:
            return index + 1 if index + 1 < len(steps) else None
    return None


def pod_selector(service: Service) -> dict[str, str]:
    """The Deployment's pod labels the stable/canary Services select."""
    return dict(sorted((service.rollout.selector or {DEFAULT_SELECTOR_KEY: service.name}).items()))


def _metadata(name: str, namespace: str, component: str, service: Service, settings: Settings,
              notify: tuple[dict[str, str], dict[str, str]] | None = None) -> dict[str, Any]:
    extra_labels, annotations = notify or ({}, {})
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": dict(sorted((labels(component, service=service.name, environment=settings.environment)
                               | extra_labels).items())),
    }
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    return metadata


def _notifications(service: Service, settings: Settings, triggers: tuple[str, ...],
                   thread_triggers: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """Slack subscriptions; with Slack threads on, the relay's webhook instead (helm_values)."""
    if service.slack_threads_in(settings):
        return service_notifications(service.slack_channel, thread_triggers, slack_thread=True)
    return service_notifications(service.slack_channel, triggers)


def application_manifest(service: Service, settings: Settings) -> Manifest:
    """The Argo CD Application of the service in this environment (decision 0407)."""
    metadata = _metadata(
        names.application_name(service.name, settings.environment),
        settings.namespaces.argocd,
        "application",
        service,
        settings,
        _notifications(service, settings, ARGOCD_TRIGGERS, ARGOCD_THREAD_TRIGGERS),
    )
    if settings.release.cascade_delete:
        metadata["finalizers"] = [CASCADE_FINALIZER]
    return {
        "apiVersion": ARGO_API_VERSION,
        "kind": "Application",
        "metadata": metadata,
        "spec": {
            "project": names.app_project_name(service.project),
            "source": {
                "repoURL": git_ssh_url(service.helm.repo),
                "path": service.helm.path,
                "targetRevision": settings.helm_branch,
                "helm": {
                    "releaseName": service.name,
                    "valueFiles": [values_file(service, settings)],
                },
            },
            "destination": {"server": IN_CLUSTER, "namespace": service.namespace},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "retry": copy.deepcopy(RETRY),
                "syncOptions": list(SYNC_OPTIONS),
            },
            "ignoreDifferences": [copy.deepcopy(IGNORE_DEPLOYMENT_REPLICAS)],
        },
    }


def rollout_manifest(service: Service, settings: Settings) -> Manifest:
    """The Rollout of the service: workloadRef to the chart's Deployment, canary steps."""
    options = service.rollout
    steps = canary_steps(service, settings)
    canary: dict[str, Any] = {"steps": [step_manifest(s) for s in steps]}
    if options.traffic_routing:
        alb: dict[str, Any] = {
            "ingress": options.ingress or service.name,
            "servicePort": options.port,
        }
        if options.root_service:
            alb["rootService"] = options.root_service
        canary |= {
            "canaryService": canary_service_name(service.name),
            "stableService": stable_service_name(service.name),
            "trafficRouting": {"alb": alb},
        }
    if options.analysis:
        analysis: dict[str, Any] = {
            "templates": [{"templateName": analysis_template_name(service.name)}],
            "args": [
                {"name": "service", "value": service.name},
                {"name": "namespace", "value": service.namespace},
            ],
        }
        start = analysis_starting_step(steps)
        if start is not None:
            analysis["startingStep"] = start
        canary["analysis"] = analysis
    spec: dict[str, Any] = {
        "workloadRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": service.deployment,
            "scaleDown": options.scale_down,
        },
        "strategy": {"canary": canary},
    }
    replicas = service.replicas_in(settings)
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": ARGO_API_VERSION,
        "kind": "Rollout",
        "metadata": _metadata(
            names.rollout_name(service.name),
            service.namespace,
            "rollout",
            service,
            settings,
            _notifications(service, settings, ROLLOUTS_TRIGGERS, ROLLOUTS_THREAD_TRIGGERS),
        ),
        "spec": spec,
    }


def traffic_service_manifests(service: Service, settings: Settings) -> dict[str, Manifest]:
    """`stable-service` and `canary-service` with traffic routing; nothing without it."""
    if not service.rollout.traffic_routing:
        return {}
    port = service.rollout.port
    result: dict[str, Manifest] = {}
    for role, name in (("canary", canary_service_name(service.name)), ("stable", stable_service_name(service.name))):
        result[f"{role}-service"] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(name, service.namespace, f"{role}-service", service, settings,
                                  ({}, dict(SKIP_AWAIT))),
            "spec": {
                "type": "ClusterIP",
                "selector": pod_selector(service),
                "ports": [{"name": SERVICE_PORT_NAME, "port": port, "targetPort": port, "protocol": "TCP"}],
            },
        }
    return result


def analysis_template_manifest(service: Service, settings: Settings) -> Manifest | None:
    """The Prometheus success-rate AnalysisTemplate, when the service asks for analysis."""
    if not service.rollout.analysis:
        return None
    analysis = settings.analysis
    return {
        "apiVersion": ARGO_API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": _metadata(analysis_template_name(service.name), service.namespace, "analysis",
                              service, settings),
        "spec": {
            "args": [{"name": arg} for arg in ANALYSIS_ARGS],
            "metrics": [
                {
                    "name": SUCCESS_RATE_METRIC,
                    "interval": analysis.interval,
                    "failureLimit": analysis.failure_limit,
                    # Prometheus answers with a vector: its first sample is the ratio.
                    "successCondition": f"result[0] >= {analysis.success_threshold}",
                    "provider": {
                        "prometheus": {
                            "address": analysis.prometheus_address,
                            "query": analysis.success_rate_query,
                        }
                    },
                }
            ],
        },
    }


def delivery_manifests(service: Service, settings: Settings) -> dict[str, Manifest]:
    """Every object of one service's delivery, by role (the logical name's suffix)."""
    result: dict[str, Manifest] = {"application": application_manifest(service, settings)}
    template = analysis_template_manifest(service, settings)
    if template is not None:
        result["analysis-template"] = template
    result |= traffic_service_manifests(service, settings)
    result["rollout"] = rollout_manifest(service, settings)
    return result


# --------------------------------------------------------------------------- component


@dataclass(frozen=True)
class ServiceDeliveryArgs:
    """What one service's Application and Rollout are made from."""

    service: Service
    """The service, as services.yaml describes it."""
    settings: Settings
    """The stack's settings: environment, helm branch, values file, canary, analysis, release."""
    namespace: pulumi.Input[str]
    """The service's namespace, as `Namespaces.services[<namespace>]` gives it (the
    Rollout, Services and AnalysisTemplate wait for it)."""
    argocd_namespace: pulumi.Input[str]
    """The Argo CD namespace, as `Namespaces.platform["argocd"]` gives it."""
    argo_depends_on: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Argo kind -> what a custom resource of that kind waits for (its CRD and its
    controller's release): `platform.depends_for(kind)` for Application, Rollout and
    AnalysisTemplate."""
    app_project: Sequence[pulumi.Resource] = ()
    """The team's AppProject resource: the Application waits for it on create, and is
    deleted before it. Not the whole `Access` component: depending on a component
    depends on all its children, every other service's Roles included."""


class ServiceDelivery(pulumi.ComponentResource):
    """The Argo CD Application and the Argo Rollouts Rollout (with its Services and analysis) of one service."""

    application_name: str
    """Name of the Application (Argo CD namespace)."""
    rollout_name: str
    """Name of the Rollout (service namespace)."""

    def __init__(self, name: str, args: ServiceDeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        service, settings = args.service, args.settings
        manifests = delivery_manifests(service, settings)
        namespaces: dict[str, pulumi.Input[str]] = {
            settings.namespaces.argocd: args.argocd_namespace,
            service.namespace: args.namespace,
        }

        def depends(kind: str) -> list[pulumi.Resource]:
            return list(args.argo_depends_on.get(kind, ()))

        application = manifests["application"]
        k8s.apiextensions.CustomResource(
            f"{name}-application",
            api_version=ARGO_API_VERSION,
            kind="Application",
            metadata=object_meta(application, namespaces),
            spec=application["spec"],
            # Not retained, in any environment: without the cascading finalizer (live)
            # deleting it leaves the chart's objects running (decision 0407).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends("Application"), *args.app_project]),
        )

        # What must exist before the Rollout: its CRD and controller, and what it names.
        rollout_needs: list[pulumi.Resource] = depends("Rollout")
        template = manifests.get("analysis-template")
        if template is not None:
            rollout_needs.append(k8s.apiextensions.CustomResource(
                f"{name}-analysis-template",
                api_version=ARGO_API_VERSION,
                kind="AnalysisTemplate",
                metadata=object_meta(template, namespaces),
                spec=template["spec"],
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True,
                                            depends_on=depends("AnalysisTemplate")),
            ))
        for role in ("canary-service", "stable-service"):
            if role in manifests:
                rollout_needs.append(_service(f"{name}-{role}", manifests[role], namespaces, self))

        rollout = manifests["rollout"]
        k8s.apiextensions.CustomResource(
            f"{name}-rollout",
            api_version=ARGO_API_VERSION,
            kind="Rollout",
            metadata=object_meta(rollout, namespaces),
            spec=rollout["spec"],
            # Deleting the Rollout deletes its ReplicaSets while the Deployment sits at 0.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=rollout_needs),
        )

        self.application_name = application["metadata"]["name"]
        self.rollout_name = rollout["metadata"]["name"]
        self.register_outputs({"application_name": self.application_name, "rollout_name": self.rollout_name})


def _service(logical: str, manifest: Manifest, namespaces: Mapping[str, pulumi.Input[str]],
             parent: pulumi.Resource) -> k8s.core.v1.Service:
    spec = manifest["spec"]
    return k8s.core.v1.Service(
        logical,
        metadata=object_meta(manifest, namespaces),
        spec=k8s.core.v1.ServiceSpecArgs(
            type=spec["type"],
            selector=spec["selector"],
            ports=[
                k8s.core.v1.ServicePortArgs(name=p["name"], port=p["port"], target_port=p["targetPort"],
                                            protocol=p["protocol"])
                for p in spec["ports"]
            ],
        ),
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=True,
                                    ignore_changes=list(SERVICE_IGNORE_CHANGES)),
    )

"""Delivery of one service in one environment: its Argo CD Application and its Rollout.

Owns (per service, per stack):
- the Argo CD `Application` `<service>-<env>` (Argo CD namespace): the service's chart
  from this environment's branch of its helm repository, with the values file the
  promote step edits; automated sync with prune, self-heal and retry; Deployment
  `replicas` ignored (and that respected on sync); the team's AppProject; per-service
  Slack subscriptions; Argo CD's cascading-delete finalizer only where
  `settings.release.cascadeDelete` says so;
- the Argo Rollouts `Rollout` `<service>` (service namespace): `workloadRef` to the
  chart's Deployment, the environment's canary steps (or the service's own), Slack
  subscriptions for paused / aborted / completed;
- with `rollout.trafficRouting`: the `<service>-stable` and `<service>-canary` Services
  and ALB traffic routing through the chart's Ingress;
- with `rollout.analysis`: the `AnalysisTemplate` `<service>-success-rate` (Prometheus,
  from `settings.analysis`), run in the background of the canary so that a failing
  canary is aborted and rolled back by the Rollouts controller.

Does not own: the chart, its Deployment, Service(s), Ingress and HPA (the service
team's, synced by the Application); the AppProject (`components.access`); the release
Workflow that promotes and verifies (its WorkflowTemplate and step scripts); the
notification templates and triggers (`components.helm_values`); the namespaces.

Decisions
---------
Why the Rollout is Pulumi's and the Deployment the chart's (docs/architecture.md, "Who owns what at run time"): the
platform owns release policy (steps, gates, analysis), the team owns the workload.
`workloadRef` joins them; the chart keeps its Deployment at `replicas: 0` and points
its HPA, if any, at the Rollout. Consequences, handled here:

- Retention. Deleting a Rollout garbage-collects its ReplicaSets while the Deployment
  sits at 0: an outage. The Rollout, its Services and its AnalysisTemplate are
  `retain_on_delete` in every environment (never `protect`, which would make
  `pulumi destroy` fail). Removing a service from services.yaml leaves them running;
  decommissioning is a documented manual step (README).
- Service selectors. The Rollouts controller adds `rollouts-pod-template-hash` to the
  stable/canary Services' selectors; Pulumi registers them with
  `ignore_changes=["spec.selector"]` so it never reverts that (a changed
  `rollout.selector` therefore needs the Services replaced by hand, or recreated).
- Replicas. With `workloadRef` the Rollout owns the replica count (Argo Rollouts'
  default is 1, which would collapse every canary step to one canary pod beside one
  stable pod). So `spec.replicas` is always written (`Service.replicas_in`: the
  service's `rollout.replicasByEnvironment.<env>`, its `rollout.replicas`, the
  stack's `release.replicas`, else the fewest pods that honour the canary steps),
  except with `rollout.hpa`: an HPA that targets the Rollout writes `spec.replicas`
  through the scale subresource, so the field is left out entirely and Pulumi never
  owns it (its server-side apply leaves fields it did not set alone). The settings
  refuse `rollout.hpa` next to a replica count (they would fight), and `check`
  refuses a count the replica-weighted steps cannot be carried out with
  (`components.canary`).
- `scaleDown: never` by default: the Deployment is at 0 already and nothing should
  touch it. `onsuccess` is for migrating a Deployment that still runs pods: the
  Rollouts controller scales it to 0 once the Rollout is healthy. For charts that
  still set `replicas`, the Application ignores `/spec/replicas` of Deployments and
  `RespectIgnoreDifferences=true` keeps a sync from writing it back, so Argo CD's
  self-heal does not undo the scale-down.

Application:
- Deleting it. Pulumi deletes the Application when its service leaves services.yaml
  (or on `pulumi destroy`). With the finalizer `resources-finalizer.argocd.argoproj.io`
  (dev, sandbox, integration) Argo CD then deletes what the chart deployed; without it
  (live, `cascadeDelete: false`) the deletion is non-cascading and the chart's objects
  stay. The Application itself is *not* retained in live: the absent finalizer already
  keeps the running service, and a retained Application would keep auto-syncing and
  self-healing a service the platform dropped, in an AppProject that the same change
  may delete, and would outlive the Argo CD that reconciles it after a destroy.
- `helm.releaseName` is the service name, not the Application name (`<service>-<env>`,
  Argo CD's default), so the usual `fullname` helper names the Deployment `<service>`
  in every environment: the Rollout's default `workloadRef`.
- `CreateNamespace=false`: the platform owns namespaces (`components.namespaces`).
  `FailOnSharedResource=true`: two Applications never take turns owning one object.
- `retry.refresh: true`: a retried sync uses the newest revision, so a fix pushed
  while a sync keeps failing is picked up without waiting for the retries to run out.

Canary: replica weight by default (no Services, no traffic routing); steps from
`service.canary[<env>]` when the service sets it, else `settings.canary`. With
`rollout.trafficRouting` the weights are traffic percentages at the ALB: the chart's
Ingress (`rollout.ingress`, default the service name) sends its rule to
`rollout.rootService` (default `<service>-stable`) with port `use-annotation`, and the
Rollouts controller writes the weighted action annotation. The Services are ClusterIP,
so the Ingress must use `alb.ingress.kubernetes.io/target-type: ip`.

Analysis: background analysis (`strategy.canary.analysis`) starting at the step after
the first `setWeight`, so it measures a canary that takes traffic; a failed
AnalysisRun aborts the Rollout (traffic and weight back to stable). The template's
`successCondition` is `result[0] >= <threshold>`: no data (NaN) counts as failure, so
a canary that serves nothing is not promoted on faith.

Ref: https://argoproj.github.io/argo-rollouts/migrating/#reference-deployment-from-rollout
Ref: https://argoproj.github.io/argo-rollouts/features/traffic-management/alb/
Ref: https://argoproj.github.io/argo-rollouts/features/analysis/#background-analysis
Ref: https://argoproj.github.io/argo-rollouts/analysis/prometheus/
Ref: https://argoproj.github.io/argo-rollouts/features/hpa-support/
Ref: https://argo-cd.readthedocs.io/en/stable/user-guide/auto_sync/
Ref: https://argo-cd.readthedocs.io/en/stable/user-guide/sync-options/
Ref: https://argo-cd.readthedocs.io/en/stable/user-guide/diffing/
Ref: https://argo-cd.readthedocs.io/en/stable/user-guide/app_deletion/
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
    """The Argo CD Application of the service in this environment (module docstring)."""
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
            metadata=_object_meta(application, namespaces),
            spec=application["spec"],
            # Not retained, in any environment: without the cascading finalizer (live)
            # deleting it leaves the chart's objects running (module docstring).
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
                metadata=_object_meta(template, namespaces),
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
            metadata=_object_meta(rollout, namespaces),
            spec=rollout["spec"],
            # Deleting the Rollout deletes its ReplicaSets while the Deployment sits at 0.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=rollout_needs),
        )

        self.application_name = application["metadata"]["name"]
        self.rollout_name = rollout["metadata"]["name"]
        self.register_outputs({"application_name": self.application_name, "rollout_name": self.rollout_name})


def _object_meta(manifest: Manifest, namespaces: Mapping[str, pulumi.Input[str]]) -> k8s.meta.v1.ObjectMetaArgs:
    """ObjectMeta with the namespace as the Namespace resource's Output, so the object waits for it."""
    metadata = manifest["metadata"]
    namespace = metadata["namespace"]
    return k8s.meta.v1.ObjectMetaArgs(
        name=metadata["name"],
        namespace=namespaces.get(namespace, namespace),
        labels=metadata["labels"],
        annotations=metadata.get("annotations"),
        finalizers=metadata.get("finalizers"),
    )


def _service(logical: str, manifest: Manifest, namespaces: Mapping[str, pulumi.Input[str]],
             parent: pulumi.Resource) -> k8s.core.v1.Service:
    spec = manifest["spec"]
    return k8s.core.v1.Service(
        logical,
        metadata=_object_meta(manifest, namespaces),
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

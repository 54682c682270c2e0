"""Event intake of one stack: the EventBus, the `github` EventSource and its Ingress.

Owns:
- the JetStream EventBus `default` in the events namespace (replicas, persistence,
  version and resources from `settings.eventBus`; spread across nodes and zones;
  a PodDisruptionBudget that keeps its quorum through node drains);
- the EventSource `github`: one webhook event per source repository (services that
  share a repository share its event), every event verifying GitHub's HMAC signature
  with that repository's own Secret; one port for all of them; replicas and resources
  from `settings.sizes.eventSource`; a PodDisruptionBudget;
- the public Ingress (TLS, AWS Load Balancer Controller) on `settings.hostnames.events`
  that routes exactly the repositories' endpoints, and nothing else, to the
  EventSource's Service;
- when `settings.metrics.serviceMonitor`: PodMonitors for the bus and the EventSource.

Does not own: event names, endpoints, the port, the public URL and the Secret names
(`components.intake`, which the GitHub webhooks use too, so they cannot drift); the
webhook Secrets and the GitHub webhooks (`components.github_access`); the Argo Events
CRDs and controller (passed in as `depends_on`); the Sensors.

Decisions: docs/decisions/0409-github-eventsource-without-api-token.md,
docs/decisions/0410-webhook-secret-rotation-restarts-the-eventsource.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from hera.events.models import Container as EventsContainer
from hera.events.models import (
    EventSource,
    EventSourceSpec,
    GithubEventSource,
    OwnedRepositories,
    WebhookContext,
)
from hera.events.models import Metadata as PodMetadata
from hera.events.models import Service as EventsService
from hera.events.models import Template as PodTemplate
from hera.events.models.io.k8s.api.core.v1 import (
    Affinity,
    Capabilities,
    PodAffinityTerm,
    PodAntiAffinity,
    PodSecurityContext,
    ResourceRequirements,
    SeccompProfile,
    SecretKeySelector,
    SecurityContext,
    ServicePort,
    WeightedPodAffinityTerm,
)
from hera.events.models.io.k8s.apimachinery.pkg.apis.meta.v1 import LabelSelector, ObjectMeta
from hera.events.models.io.k8s.apimachinery.pkg.util.intstr import IntOrString

from components import intake
from components.config import Resources, Settings

TYPE = "release-pipeline:components:EventIntake"

API_VERSION = "argoproj.io/v1alpha1"
EVENTBUS_NAME = "default"
EVENTSOURCE_SERVICE = f"{intake.EVENTSOURCE_NAME}-eventsource-svc"  # named by the controller
INGRESS_NAME = f"{intake.EVENTSOURCE_NAME}-webhooks"
SERVICE_PORT_NAME = "http"
HEALTH_PATH = "/health"  # served on every webhook port by the EventSource itself
METRICS_PORT = 7777  # the EventSource's and the JetStream exporter's container port "metrics"
# Only used upstream to create hooks, which Pulumi does; kept equal to what the
# webhooks send (components.github_access.WEBHOOK_EVENTS, checked by the tests).
GITHUB_EVENTS: tuple[str, ...] = ("pull_request", "push")

# Image users: argo-events images run as 9731; the nats images declare no user, so
# one is given (and fsGroup, so the JetStream volume is writable by it).
EVENTSOURCE_UID = 9731
JETSTREAM_UID = 1000
# The JetStream pod's config reloader and metrics exporter: small, fixed.
SIDECAR_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}

# Labels the Argo Events controllers put on the pods they create.
EVENTSOURCE_POD_LABELS = {
    "controller": "eventsource-controller",
    "eventsource-name": intake.EVENTSOURCE_NAME,
}
EVENTBUS_POD_LABELS = {"controller": "eventbus-controller", "eventbus-name": EVENTBUS_NAME}

ALB = "alb.ingress.kubernetes.io"
MANAGED_BY = {"app.kubernetes.io/managed-by": "release-pipeline"}
ROLE_LABEL = "release-pipeline/role"
RESTART_ANNOTATION = "release-pipeline/webhook-secrets-version"

Manifest = dict[str, Any]


# ------------------------------------------------------------------ pure builders


def source_repos(repos: Iterable[str]) -> list[str]:
    """The distinct source repositories, sorted: one event each."""
    return sorted(set(repos))


def _dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, exclude_none=True)


def _metadata(name: str, namespace: str, role: str) -> Manifest:
    return {"name": name, "namespace": namespace, "labels": MANAGED_BY | {ROLE_LABEL: role}}


def _restricted_container() -> SecurityContext:
    """Container settings the `restricted` Pod Security Standard asks for, and more."""
    return SecurityContext(
        allow_privilege_escalation=False,
        capabilities=Capabilities(drop=["ALL"]),
        read_only_root_filesystem=True,
        run_as_non_root=True,
    )


def _restricted_pod(uid: int, fs_group: bool = False) -> PodSecurityContext:
    return PodSecurityContext(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid if fs_group else None,
        fs_group_change_policy="OnRootMismatch" if fs_group else None,
        seccomp_profile=SeccompProfile(type="RuntimeDefault"),
    )


def _spread(labels: dict[str, str]) -> Affinity:
    """Prefer one pod per node, then per zone (preferred: small dev clusters still schedule)."""
    selector = LabelSelector(match_labels=labels)
    return Affinity(
        pod_anti_affinity=PodAntiAffinity(
            preferred_during_scheduling_ignored_during_execution=[
                WeightedPodAffinityTerm(
                    weight=100,
                    pod_affinity_term=PodAffinityTerm(
                        label_selector=selector, topology_key="kubernetes.io/hostname"
                    ),
                ),
                WeightedPodAffinityTerm(
                    weight=50,
                    pod_affinity_term=PodAffinityTerm(
                        label_selector=selector, topology_key="topology.kubernetes.io/zone"
                    ),
                ),
            ]
        )
    )


def _resources(resources: Resources) -> dict[str, Any]:
    return _dump(ResourceRequirements.model_validate(resources.model_dump()))


def _scrape_annotations(settings: Settings) -> dict[str, str]:
    if not settings.metrics.enabled:
        return {}
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }


def eventbus_manifest(settings: Settings) -> Manifest:
    """The JetStream EventBus `default`.

    Hand-written: hera 7.1 has no EventBus model (it ships the EventSource and Sensor
    types of the Argo Workflows API only). The affinity and security contexts reuse
    hera's Kubernetes models. Checked against the v1.9 swagger by the tests.
    """
    bus = settings.event_bus
    container = {
        "resources": _resources(bus.resources),
        "securityContext": _dump(_restricted_container()),
    }

    def sidecar() -> Manifest:
        return {"resources": SIDECAR_RESOURCES, "securityContext": _dump(_restricted_container())}

    jetstream: Manifest = {
        "version": bus.version,
        "replicas": bus.replicas,
        "persistence": {
            "storageClassName": bus.storage_class,
            "accessMode": "ReadWriteOnce",
            "volumeSize": bus.volume_size,
        },
        "containerTemplate": container,
        "reloaderContainerTemplate": sidecar(),
        "metricsContainerTemplate": sidecar(),
        "securityContext": _dump(_restricted_pod(JETSTREAM_UID, fs_group=True)),
        "affinity": _dump(_spread(EVENTBUS_POD_LABELS)),
    }
    annotations = _scrape_annotations(settings)
    if annotations:
        jetstream["metadata"] = {"annotations": annotations}
    return {
        "apiVersion": API_VERSION,
        "kind": "EventBus",
        "metadata": _metadata(EVENTBUS_NAME, settings.namespaces.events, "eventbus"),
        "spec": {"jetstream": jetstream},
    }


def webhook_server(settings: Settings) -> str:
    """The server part of every webhook URL: intake's URL without the endpoint."""
    probe = "owner/repo"
    return intake.webhook_url(settings.hostnames.events, probe).removesuffix(intake.endpoint(probe))


def github_event(settings: Settings, repo: str) -> GithubEventSource:
    """One repository's event: its endpoint on the shared port, its own HMAC secret."""
    owner, name = repo.split("/", 1)
    return GithubEventSource(
        repositories=[OwnedRepositories(owner=owner, names=[name])],
        webhook=WebhookContext(
            endpoint=intake.endpoint(repo),
            port=str(intake.EVENTSOURCE_PORT),
            method="POST",
            # Upstream's meaning: the server; the hook URL is url + endpoint.
            url=webhook_server(settings),
        ),
        webhook_secret=SecretKeySelector(
            name=intake.webhook_secret_name(repo), key=intake.WEBHOOK_SECRET_KEY
        ),
        events=list(GITHUB_EVENTS),
        active=True,
        content_type="json",
        # No api_token / github_app: Pulumi owns the webhooks. Never `insecure`.
        # `webhook.maxPayloadSize` stays at upstream's 1 MiB, the bus's message limit
        # too (hera types it as a string; v1.9 decodes an integer: hand-write it if needed).
    )


def eventsource_manifest(
    settings: Settings, repos: Iterable[str], restart_token: str | None = None
) -> Manifest:
    """The `github` EventSource: one event per distinct repository, all on one port."""
    size = settings.sizes.event_source
    annotations = _scrape_annotations(settings)
    if restart_token is not None:
        annotations[RESTART_ANNOTATION] = restart_token
    model = EventSource(
        metadata=ObjectMeta.model_validate(
            _metadata(intake.EVENTSOURCE_NAME, settings.namespaces.events, "eventsource")
        ),
        spec=EventSourceSpec(
            event_bus_name=EVENTBUS_NAME,
            replicas=size.replicas,
            service=EventsService(
                ports=[
                    ServicePort(
                        name=SERVICE_PORT_NAME,
                        port=intake.EVENTSOURCE_PORT,
                        target_port=IntOrString(intake.EVENTSOURCE_PORT),
                        protocol="TCP",
                    )
                ]
            ),
            template=PodTemplate(
                metadata=PodMetadata(annotations=annotations) if annotations else None,
                security_context=_restricted_pod(EVENTSOURCE_UID),
                container=EventsContainer(
                    resources=ResourceRequirements.model_validate(size.resources.model_dump()),
                    security_context=_restricted_container(),
                ),
                affinity=_spread(EVENTSOURCE_POD_LABELS),
            ),
            github={intake.event_name(r): github_event(settings, r) for r in source_repos(repos)},
        ),
    )
    # hera's EventSource has no apiVersion/kind fields (they come from the client there).
    return {"apiVersion": API_VERSION, "kind": "EventSource"} | _dump(model)


def alb_annotations(settings: Settings) -> dict[str, str]:
    """AWS Load Balancer Controller annotations of the public intake Ingress.

    Internet-facing (GitHub must reach it), HTTPS only, straight to the pod IPs.
    The settings' annotations (e.g. external-dns, inbound-cidrs) are added; these
    fixed ones win over them.
    """
    ingress = settings.ingress
    fixed = {
        f"{ALB}/scheme": "internet-facing",
        f"{ALB}/target-type": "ip",
        f"{ALB}/listen-ports": json.dumps([{"HTTPS": 443}]),
        f"{ALB}/ssl-policy": ingress.ssl_policy,
        f"{ALB}/group.name": f"{ingress.group_name}-public",
        f"{ALB}/backend-protocol": "HTTP",
        f"{ALB}/healthcheck-path": HEALTH_PATH,
        f"{ALB}/success-codes": "200",
    }
    # Without an ARN the controller finds the ACM certificate by the TLS host name.
    if ingress.certificate_arn:
        fixed[f"{ALB}/certificate-arn"] = ingress.certificate_arn
    return dict(sorted((dict(ingress.annotations) | fixed).items()))


def ingress_manifest(settings: Settings, repos: Iterable[str]) -> Manifest:
    """The Ingress: one Exact path per repository endpoint, TLS on the events host."""
    host = settings.hostnames.events
    paths = [
        {
            "path": intake.endpoint(repo),
            "pathType": "Exact",
            "backend": {
                "service": {"name": EVENTSOURCE_SERVICE, "port": {"number": intake.EVENTSOURCE_PORT}}
            },
        }
        for repo in source_repos(repos)
    ]
    metadata = _metadata(INGRESS_NAME, settings.namespaces.events, "intake")
    metadata["annotations"] = alb_annotations(settings)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": {
            "ingressClassName": settings.ingress.class_name,
            "tls": [{"hosts": [host]}],
            "rules": [{"host": host, "http": {"paths": paths}}],
        },
    }


def disruption_budget(name: str, namespace: str, labels: dict[str, str]) -> Manifest:
    """At most one pod down by eviction: JetStream keeps its quorum, the intake one server."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name, namespace, "disruption-budget"),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(labels)}},
    }


def pod_monitor(name: str, namespace: str, labels: dict[str, str]) -> Manifest:
    """Prometheus Operator PodMonitor for the `metrics` port of the controller-made pods."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _metadata(name, namespace, "metrics"),
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics"}],
        },
    }


def intake_manifests(
    settings: Settings, repos: Iterable[str], restart_token: str | None = None
) -> dict[str, Manifest]:
    """Every object of the event intake, by role (the component's logical-name suffix).

    With no repositories there is nothing to receive: only the bus (and its budget and
    monitor) is built, no EventSource and no public Ingress.
    """
    ns = settings.namespaces.events
    repos = source_repos(repos)
    bus_pods = f"eventbus-{EVENTBUS_NAME}-js"
    objects = {
        "eventbus": eventbus_manifest(settings),
        "eventbus-pdb": disruption_budget(bus_pods, ns, EVENTBUS_POD_LABELS),
    }
    if repos:
        objects["eventsource"] = eventsource_manifest(settings, repos, restart_token)
        objects["eventsource-pdb"] = disruption_budget(
            f"{intake.EVENTSOURCE_NAME}-eventsource", ns, EVENTSOURCE_POD_LABELS
        )
        objects["ingress"] = ingress_manifest(settings, repos)
    if settings.metrics.enabled and settings.metrics.service_monitor:
        objects["eventbus-podmonitor"] = pod_monitor(bus_pods, ns, EVENTBUS_POD_LABELS)
        if repos:
            objects["eventsource-podmonitor"] = pod_monitor(
                f"{intake.EVENTSOURCE_NAME}-eventsource", ns, EVENTSOURCE_POD_LABELS
            )
    return objects


# --------------------------------------------------------------------- component


@dataclass(frozen=True)
class EventIntakeArgs:
    """What the event intake of one stack is built from."""

    settings: Settings
    """The stack's settings (namespaces, hostnames, ingress, event bus, sizes, metrics)."""
    repos: Sequence[str]
    """Source repositories (`owner/name`) of this environment's services; duplicates are fine."""
    namespace: pulumi.Output[str]
    """The events namespace, from the Namespaces component (so it is created first)."""
    argo_depends_on: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Per kind ("EventBus", "EventSource"): its CRD and controller release, created
    before and deleted after (`ArgoPlatform.depends_for`)."""
    restart_token: pulumi.Input[str] | None = None
    """Non-secret value that changes with the webhook Secrets; rolls the EventSource pods."""


class EventIntake(pulumi.ComponentResource):
    """EventBus, `github` EventSource and its public Ingress in the events namespace."""

    eventbus_name: pulumi.Output[str]
    eventsource_name: pulumi.Output[str]
    event_names: list[str]
    event_bus: k8s.apiextensions.CustomResource
    event_source: k8s.apiextensions.CustomResource | None

    def __init__(
        self, name: str, args: EventIntakeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        repos = source_repos(args.repos)
        objects = intake_manifests(args.settings, repos)
        after_crds = pulumi.ResourceOptions(
            parent=self, depends_on=list(args.argo_depends_on.get("EventBus", ()))
        )

        self.event_bus = self._custom(f"{name}-eventbus", objects["eventbus"], args.namespace,
                                      after_crds)
        self._core(f"{name}-eventbus-pdb", objects["eventbus-pdb"], args.namespace)
        self.event_source = None
        if "eventsource" in objects:
            manifest = objects["eventsource"]
            if args.restart_token is not None:  # an Output: added here, not in the builder
                template = manifest["spec"]["template"]
                annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
                annotations[RESTART_ANNOTATION] = args.restart_token
            # After the bus, so it is deleted first: the controller will not delete a
            # bus an EventSource still uses.
            self.event_source = self._custom(
                f"{name}-eventsource", manifest, args.namespace,
                pulumi.ResourceOptions(parent=self,
                                       depends_on=[*args.argo_depends_on.get("EventSource", ()),
                                                   self.event_bus]),
            )
            self._core(f"{name}-eventsource-pdb", objects["eventsource-pdb"], args.namespace)
            self._core(f"{name}-ingress", objects["ingress"], args.namespace,
                       depends_on=[self.event_source])
        for role in ("eventbus-podmonitor", "eventsource-podmonitor"):
            if role in objects:
                self._custom(f"{name}-{role}", objects[role], args.namespace,
                             pulumi.ResourceOptions(parent=self))

        # Outputs that carry the dependency: a Sensor naming them is created after,
        # and deleted before, the objects it uses.
        self.eventbus_name = self.event_bus.urn.apply(lambda _: EVENTBUS_NAME)
        source = self.event_source
        self.eventsource_name = (
            source.urn.apply(lambda _: intake.EVENTSOURCE_NAME)
            if source is not None else pulumi.Output.from_input(intake.EVENTSOURCE_NAME)
        )
        self.event_names = [intake.event_name(r) for r in repos]
        self.register_outputs({
            "eventbus_name": self.eventbus_name,
            "eventsource_name": self.eventsource_name,
            "event_names": self.event_names,
        })

    def _custom(self, logical: str, manifest: Manifest, namespace: pulumi.Output[str],
                opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            logical,
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"] | {"namespace": namespace},
            spec=manifest["spec"],
            opts=opts,
        )

    def _core(self, logical: str, manifest: Manifest, namespace: pulumi.Output[str],
              depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.CustomResource:
        kind = manifest["kind"]
        metadata = manifest["metadata"] | {"namespace": namespace}
        opts = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        if kind == "Ingress":
            return k8s.networking.v1.Ingress(logical, metadata=metadata, spec=manifest["spec"],
                                             opts=opts)
        if kind == "PodDisruptionBudget":
            return k8s.policy.v1.PodDisruptionBudget(logical, metadata=metadata,
                                                     spec=manifest["spec"], opts=opts)
        raise ValueError(f"no resource class for {kind}")

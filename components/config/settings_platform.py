"""Stack settings about the platform's own pods: its namespaces, the size (replicas,
requests and limits) of each component, Argo CD's HA profile, the JetStream EventBus,
and where the project's tool images are pushed.

Owns: those models, Kubernetes quantities compared as numbers (`quantity_value`), and
the per-component replica rules (one Argo CD application controller; one of each
component the charts run once; two EventSources). Does not own: the rule tying
`argocd.ha` to the sizes (`components.config.settings`), nor the Helm values built from
them (`components.helm_values`). Decisions: docs/decisions/0141-argo-cd-ha-profile.md.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from components.config.fields import QUANTITY_PATTERN, DnsLabel, Model, NamespaceName, _refuse_equal_fields

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]


class Namespaces(Model):
    """The platform's namespaces: each its own (the build namespace is privileged, the
    others restricted), none of Kubernetes' own (default, kube-*)."""

    events: NamespaceName = Field(
        default="argo-events",
        description="Namespace of Argo Events: the EventBus, EventSource and Sensors.",
    )
    workflows: NamespaceName = Field(
        default="argo",
        description="Namespace of Argo Workflows and the release workflows.",
    )
    argocd: NamespaceName = Field(default="argocd", description="Namespace of Argo CD.")
    rollouts: NamespaceName = Field(
        default="argo-rollouts",
        description="Namespace of the Argo Rollouts controller and dashboard.",
    )
    build: NamespaceName = Field(
        default="argo-build",
        description="Namespace of the image builds (privileged Pod Security level).",
    )

    @model_validator(mode="after")
    def _each_its_own(self) -> Self:
        _refuse_equal_fields(self, "every platform namespace must differ from the others")
        return self


class Amounts(Model):
    cpu: Quantity = Field(description="CPU, as a Kubernetes quantity.", examples=["250m"])
    memory: Quantity = Field(description="Memory, as a Kubernetes quantity.", examples=["256Mi"])


_QUANTITY_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1), "m": Fraction(1, 1000), "k": Fraction(10**3), "M": Fraction(10**6),
    "G": Fraction(10**9), "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
}


def quantity_value(quantity: str) -> Fraction:
    """A Kubernetes quantity (as `Quantity` admits it) as an exact number: "500m" -> 1/2."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", quantity)
    if match is None or match.group(2) not in _QUANTITY_SUFFIXES:
        raise ValueError(f"not a quantity: {quantity!r}")
    return Fraction(match.group(1)) * _QUANTITY_SUFFIXES[match.group(2)]


class Resources(Model):
    """Requests and limits of a container; a request may not exceed its limit."""

    requests: Amounts = Field(description="What the container is guaranteed.")
    limits: Amounts = Field(description="What the container may use at most; each at least its request.")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        above = [
            f"requests.{kind} {request!r} is above limits.{kind} {limit!r}"
            for kind, request, limit in (
                ("cpu", self.requests.cpu, self.limits.cpu),
                ("memory", self.requests.memory, self.limits.memory),
            )
            if quantity_value(request) > quantity_value(limit)
        ]
        if above:
            raise ValueError(f"{'; '.join(above)}: a request must be at most its limit")
        return self


class Size(Model):
    """Replicas and resources of one long-running platform component."""

    replicas: int = Field(default=1, ge=1, le=10, description="How many run.")
    resources: Resources = Field(description="Requests and limits of the component's container.")


def _size(cpu: str, memory: str, limit_cpu: str, limit_memory: str, replicas: int = 1) -> Size:
    return Size(
        replicas=replicas,
        resources=Resources(
            requests=Amounts(cpu=cpu, memory=memory), limits=Amounts(cpu=limit_cpu, memory=limit_memory)
        ),
    )


class Sizes(Model):
    """Per-component sizes; live raises replicas for HA in its stack file."""

    argocd_controller: Size = Field(
        default=_size("250m", "512Mi", "1", "2Gi"),
        description="Argo CD application controller (exactly one).",
    )
    argocd_server: Size = Field(
        default=_size("50m", "128Mi", "500m", "512Mi"),
        description="Argo CD API server and UI.",
    )
    argocd_repo_server: Size = Field(default=_size("100m", "256Mi", "1", "1Gi"), description="Argo CD repo server.")
    argocd_applicationset: Size = Field(
        default=_size("50m", "64Mi", "250m", "256Mi"),
        description="Argo CD ApplicationSet controller.",
    )
    argocd_dex: Size = Field(
        default=_size("10m", "32Mi", "100m", "128Mi"),
        description="Dex, the SSO of Argo CD and Argo Workflows (exactly one).",
    )
    argocd_redis: Size = Field(
        default=_size("50m", "64Mi", "250m", "256Mi"),
        description="Argo CD's Redis (exactly one; argocd.ha replaces it).",
    )
    argocd_notifications: Size = Field(
        default=_size("20m", "64Mi", "200m", "256Mi"),
        description="Argo CD notifications controller (exactly one).",
    )
    workflows_controller: Size = Field(
        default=_size("100m", "128Mi", "1", "1Gi"),
        description="Argo Workflows controller.",
    )
    workflows_server: Size = Field(
        default=_size("50m", "64Mi", "500m", "256Mi"),
        description="Argo Workflows server and UI.",
    )
    # The init and wait containers Argo Workflows adds to every workflow pod (replicas unused).
    workflows_executor: Size = Field(
        default=_size("10m", "64Mi", "500m", "256Mi"),
        description="The init and wait containers Argo Workflows adds to every workflow pod (replicas unused).",
    )
    # Containers of the release and build workflows (replicas unused): the release-tools
    # steps (checkout, change check, image check, promote, verify, notify), the service's
    # unit tests in its own test image, and the rootless BuildKit build.
    workflow_step: Size = Field(
        default=_size("50m", "128Mi", "1", "512Mi"),
        description="Each release-tools step of the release and build workflows (replicas unused).",
    )
    unit_tests: Size = Field(
        default=_size("500m", "1Gi", "2", "4Gi"),
        description="The service's unit tests in its own test image (replicas unused).",
    )
    image_build: Size = Field(
        default=_size("1", "2Gi", "4", "8Gi"),
        description="The rootless BuildKit image build (replicas unused).",
    )
    events_controller: Size = Field(
        default=_size("50m", "64Mi", "500m", "256Mi"),
        description="Argo Events controller.",
    )
    event_source: Size = Field(
        default=_size("20m", "32Mi", "200m", "128Mi", replicas=2),
        description="The GitHub EventSource (at least two: GitHub does not redeliver by itself).",
    )
    sensor: Size = Field(default=_size("20m", "32Mi", "200m", "128Mi"), description="Each service's Sensor.")
    rollouts_controller: Size = Field(
        default=_size("50m", "64Mi", "500m", "256Mi"),
        description="Argo Rollouts controller.",
    )
    rollouts_dashboard: Size = Field(
        default=_size("10m", "32Mi", "100m", "128Mi"),
        description="Argo Rollouts dashboard.",
    )
    # Argo CD Image Updater: deployed only when a service sets `imageUpdater.enabled`.
    image_updater: Size = Field(
        default=_size("50m", "128Mi", "500m", "512Mi"),
        description="Argo CD Image Updater, deployed when a service enables it (exactly one).",
    )

    @field_validator("argocd_controller")
    @classmethod
    def _one_application_controller(cls, value: Size) -> Size:
        # More application controllers only shard clusters among themselves; the platform
        # deploys to the in-cluster destination alone, so a second one would sit idle.
        if value.replicas != 1:
            raise ValueError(
                f"set replicas to 1 (got {value.replicas}): more Argo CD application controllers only "
                "shard clusters, and this platform has one (the in-cluster destination), so the others "
                "would sit idle; Kubernetes restarts the one controller"
            )
        return value

    @field_validator("argocd_dex", "argocd_redis", "argocd_notifications", "image_updater")
    @classmethod
    def _one_replica(cls, value: Size) -> Size:
        # The charts run these exactly once: they have no replicas value to set.
        if value.replicas != 1:
            raise ValueError(f"the chart runs exactly one of these; set replicas to 1 (got {value.replicas})")
        return value

    @field_validator("event_source")
    @classmethod
    def _two_event_sources(cls, value: Size) -> Size:
        # GitHub does not redeliver a failed delivery by itself: keep two replicas.
        if value.replicas < 2:
            raise ValueError("needs at least 2 replicas (GitHub does not redeliver by itself)")
        return value


class ArgoCdSettings(Model):
    """How Argo CD itself runs (the argo-cd chart)."""

    # The chart's HA profile: the redis-ha subchart (three Redis with Sentinel behind
    # three HAProxy, one per node) instead of the single Redis, and the API server, the
    # repo server and the ApplicationSet controller at 2+ replicas each
    # (`sizes.argocdServer`, `argocdRepoServer`, `argocdApplicationset`).
    ha: bool = Field(
        default=False,
        description=(
            "The argo-cd chart's HA profile: redis-ha and 2+ API server, repo server and ApplicationSet replicas."
        ),
    )


# The replicated Argo CD components of the HA profile: settings field -> its YAML name.
ARGOCD_HA_SIZES: dict[str, str] = {
    "argocd_server": "argocdServer",
    "argocd_repo_server": "argocdRepoServer",
    "argocd_applicationset": "argocdApplicationset",
}
ARGOCD_HA_MIN_REPLICAS = 2


class EventBusSettings(Model):
    """The JetStream EventBus `default`."""

    replicas: int = Field(default=3, ge=3, description="NATS JetStream servers of the EventBus.")
    storage_class: DnsLabel = Field(default="gp3", description="StorageClass of the JetStream volumes.")
    volume_size: Quantity = Field(
        default="10Gi",
        description="Size of each JetStream volume, as a Kubernetes quantity.",
    )
    # Of each nats-server container (the reloader and metrics sidecars get small fixed ones).
    resources: Resources = Field(
        default=Resources(
        requests=Amounts(cpu="100m", memory="256Mi"), limits=Amounts(cpu="1", memory="1Gi")
    ),
        description="Requests and limits of each nats-server container.",
    )
    # Must be one of the versions the argo-events controller lists (chart values
    # `configs.jetstream.versions`).
    version: Literal["2.10.10", "2.9.16", "latest"] = Field(
        default="2.10.10",
        description="JetStream version, one the argo-events controller lists.",
    )


class ToolImages(Model):
    """Where the two images this project builds itself are pushed (docs/operating.md, "Tool images").

    `release-tools` (git, ssh, Python with the step scripts' libraries) and
    `buildkit-ecr` (rootless BuildKit with docker-credential-ecr-login). The tags are
    pinned in `components.versions`; the repositories must have immutable tags.
    """

    registry: Annotated[str, Field(pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")] = Field(
        description="Registry and path the release-tools and buildkit-ecr images are pushed to.",
        examples=["123456789012.dkr.ecr.eu-west-1.amazonaws.com/platform"],
    )

"""A service's release options: how the platform's Rollout takes over its chart's
Deployment (`rollout`: replicas, HPA, traffic routing, analysis) and whether Argo CD
Image Updater follows its ECR repository (`imageUpdater`, off by default).

Owns: those two option models and the tag policies. Does not own: the service itself
(`components.config.services`), nor what is built from them (`components.delivery`,
`components.image_updater`). Decisions: docs/decisions/0142-canary-steps-and-replicas.md.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from components.config.fields import Dns1035Label, DnsLabel, Environment, LabelKey, LabelValue, Model


class RolloutOptions(Model):
    """How the platform's Rollout releases the service (docs/architecture.md, "Who owns what at run time")."""

    # The chart's Deployment the Rollout takes the pod template from (default: the
    # service name). The chart keeps it at `replicas: 0`.
    deployment: DnsLabel | None = Field(
        default=None,
        description=(
            "The chart's Deployment the Rollout takes its pod template from (kept at replicas: 0); left out, the "
            "service name."
        ),
        examples=["web-api"],
    )
    # `never` keeps the Deployment's (zero) pods untouched; `onsuccess` only as an
    # explicit migration setting from a Deployment that still runs pods.
    scale_down: Literal["never", "onsuccess"] = Field(
        default="never",
        description=(
            "Whether the Rollout scales the Deployment down: never, or onsuccess only to migrate from a "
            "Deployment that still runs pods."
        ),
    )
    # Canary by replica weight by default; with traffic routing the platform creates
    # `<service>-stable` / `<service>-canary` Services and splits traffic at the ALB.
    traffic_routing: bool = Field(
        default=False,
        description=(
            "Split traffic at the ALB through <service>-stable and <service>-canary Services instead of by "
            "replica weight."
        ),
    )
    # Port of the service's pods behind the stable/canary Services (traffic routing).
    port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        description="Port of the service's pods behind the stable and canary Services (traffic routing).",
        examples=[8000],
    )
    # Automated analysis (Prometheus success rate, settings `analysis`) during the canary.
    analysis: bool = Field(
        default=False,
        description="Run the automated Prometheus analysis (the stack's analysis settings) during the canary.",
    )
    # Pods the Rollout runs (it owns them; the chart's Deployment stays at 0), in every
    # environment; `replicasByEnvironment` overrides it per environment. Unset: the
    # stack's `release.replicas`, else the fewest that honour the canary steps
    # (components.canary). `check` refuses a count the steps cannot be carried out with.
    replicas: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "Pods the Rollout runs in every environment; left out, the stack's release.replicas, else the fewest "
            "the canary steps need."
        ),
        examples=[4],
    )
    replicas_by_environment: dict[Environment, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default={},
        description="Pods the Rollout runs per environment, overriding replicas.",
        examples=[{"live": 6}],
    )
    # An HPA of the chart targets the Rollout: Pulumi never writes `spec.replicas` (the
    # HPA does), so neither replica field may be set.
    hpa: bool = Field(
        default=False,
        description=(
            "An HPA of the chart targets the Rollout and sets its replica count (then set neither replica field)."
        ),
    )
    # The Deployment's pod labels: the stable/canary Services' selector (default
    # `app.kubernetes.io/name: <service>`).
    selector: dict[LabelKey, LabelValue] = Field(
        default={},
        description="Pod labels the stable and canary Services select; left out, app.kubernetes.io/name: <service>.",
        examples=[{"app": "web"}],
    )
    # Traffic routing: the chart's Ingress the Rollouts controller writes the ALB
    # action to (default: the service name), and the Service its rule points at with
    # port `use-annotation` (default: `<service>-stable`).
    ingress: DnsLabel | None = Field(
        default=None,
        description=(
            "The chart's Ingress the Rollouts controller writes the ALB action to (traffic routing); left out, "
            "the service name."
        ),
        examples=["web-public"],
    )
    root_service: Dns1035Label | None = Field(
        default=None,
        description=(
            "Service the Ingress rule points at with port use-annotation (traffic routing); left out, "
            "<service>-stable."
        ),
        examples=["web"],
    )

    @model_validator(mode="after")
    def _hpa_or_replicas(self) -> Self:
        if self.hpa and (self.replicas is not None or self.replicas_by_environment):
            raise ValueError(
                "hpa: true leaves the replica count to the HPA that targets the Rollout; remove "
                "replicas and replicasByEnvironment (they would fight it), or set hpa: false"
            )
        return self


# 40 lowercase hex digits: the full git sha the pipeline tags its own images with.
SHA_TAG_REGEXP = r"^[0-9a-f]{40}$"
# A semver constraint as the image updater's `imageName: <image>:<constraint>` takes
# it: `1.2.x`, `~1.2`, `^1.4.0`, `2.x-0` (the `-0` admits pre-releases). Kept to one
# term with no spaces or commas, so it cannot change how the image reference parses.
SemverConstraint = Annotated[
    str, Field(pattern=r"^[~^]?v?[0-9xX*]+(\.[0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?$", max_length=64)
]


class ShaTagPolicy(Model):
    """Follow full-git-sha tags (the pipeline's own scheme): the newest build among them."""

    kind: Literal["sha"] = Field(
        default="sha",
        description="Follow full git sha tags, the pipeline's own scheme: the newest build wins.",
    )


class SemverTagPolicy(Model):
    """Follow semantic-version tags within `constraint` (e.g. `1.2.x`, `~1.2`, `^1`)."""

    kind: Literal["semver"] = Field(description="Follow semantic-version tags within constraint.")
    constraint: SemverConstraint = Field(description="Semver constraint the new tag must meet.", examples=["~1.2"])


TagPolicy = Annotated[ShaTagPolicy | SemverTagPolicy, Field(discriminator="kind")]


class ImageUpdaterOptions(Model):
    """Registry-driven updates by Argo CD Image Updater (off by default; README).

    For images pushed to the service's ECR repository by something other than this
    pipeline: the image updater writes the new tag to the same values file and key
    the promote step edits, on this environment's helm branch.
    """

    enabled: bool = Field(
        default=False,
        description="Let Argo CD Image Updater write new image tags pushed by something other than this pipeline.",
    )
    tag_policy: TagPolicy = Field(default=ShaTagPolicy(), description="Which new tags the image updater follows.")
    # Key of the image repository in the values file. The image updater's Helm
    # values write-back always writes the image name next to the tag (the ECR
    # repository URL); default: `repository` beside `helm.imageTagKey`.
    image_name_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")] | None = Field(
        default=None,
        description=(
            "Dotted key of the image repository in the values file; left out, repository beside helm.imageTagKey."
        ),
        examples=["image.repository"],
    )

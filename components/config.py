"""Configuration: the services file and each stack's settings, as typed models.

Owns: the pydantic models of `services.yaml` and of the `release-pipeline:settings`
object in `Pulumi.<env>.yaml`; loading them from files (strict YAML, line numbers) or
from Pulumi config; every validation rule, including the ones that span several stacks
(no two stacks on one cluster); and the list of secret config keys the program reads.

Does not own: secrets. Secret values never enter these models: the program reads them
with `pulumi.Config.require_secret` so they stay `Output`s marked secret.

Field names are camelCase in YAML (as in Kubernetes and Pulumi config) and snake_case
in Python.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components import names
from components.errors import ConfigError, Problem
from components.yamlsafe import Loaded, load_yaml, load_yaml_file

PROJECT = "release-pipeline"
SETTINGS_KEY = "settings"
SERVICES_FILE_KEY = "servicesFile"
Environment = Literal["dev", "sandbox", "integration", "live"]
STACKS: tuple[Environment, ...] = ("dev", "sandbox", "integration", "live")

# Config keys (namespace `release-pipeline`) read with `require_secret`. The offline
# render substitutes a placeholder for each, since `secure:` values cannot be
# decrypted without the stack's secrets provider.
SECRET_CONFIG_KEYS: tuple[str, ...] = (
    "githubToken",  # GitHub provider: webhooks, deploy keys, rulesets on the repos
    "helmWriterPrivateKey",  # this environment's GitHub App key (helm repo writes)
    "slackToken",  # Slack bot token (chat:write) for Argo CD / Rollouts / workflow notices
    "ssoClientSecret",  # GitHub OAuth App client secret for Dex
)


# --------------------------------------------------------------------------- helpers


class Model(BaseModel):
    """Base of every config model: camelCase in YAML, unknown fields rejected."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        str_strip_whitespace=False,
    )


def _dns_label(value: str) -> str:
    if not names.is_dns1123_label(value):
        raise ValueError(
            "must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def _github_repo(value: str) -> str:
    owner_name = value.split("/", 1)
    if not names.GITHUB_REPO.match(value) or owner_name[1] in {".", ".."}:
        raise ValueError("must be a GitHub repository as 'owner/name'")
    return value


def _relative_path(value: str) -> str:
    """A path inside a repository: relative, '/'-separated, no '..', normalised."""
    if value in {"", "."}:
        return ""
    path = PurePosixPath(value)
    if path.is_absolute() or "\\" in value:
        raise ValueError("must be a relative path inside the repository (no leading '/')")
    if ".." in path.parts:
        raise ValueError("must not contain '..'")
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", value):
        raise ValueError("may contain only letters, digits, '_', '-', '.' and '/'")
    return str(path)


def _ecr_name(value: str) -> str:
    if not names.ECR_REPOSITORY.match(value) or len(value) > 200:
        raise ValueError(
            "must be an ECR repository name: lowercase letters, digits, and '.', '_', '-' "
            "or '/' between them, at most 200 characters"
        )
    return value


def _no_argo_template(value: str) -> str:
    if "{{" in value:
        raise ValueError("must not contain '{{': Argo Workflows would substitute into it")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
# A services.yaml or settings string that ends up inside a workflow step (a test
# command, a build argument, a Slack channel): Argo would expand `{{...}}` in it.
NoTemplate = Annotated[str, AfterValidator(_no_argo_template)]
GithubRepo = Annotated[str, AfterValidator(_github_repo)]
RelPath = Annotated[str, AfterValidator(_relative_path)]
EcrName = Annotated[str, AfterValidator(_ecr_name)]
Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]*(s|m|h)$")]
Image = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9._-]+)(@sha256:[a-f0-9]{64})?$|"
        r"^[a-z0-9][a-z0-9._/:-]*@sha256:[a-f0-9]{64}$",
        description="a container image pinned by tag or digest ('latest' is refused)",
    ),
]


def _not_latest(value: str) -> str:
    tag = value.split("@", 1)[0].rsplit("/", 1)[-1]
    if tag.endswith(":latest"):
        raise ValueError("must be pinned: the tag 'latest' moves")
    return value


PinnedImage = Annotated[Image, AfterValidator(_not_latest)]


# ------------------------------------------------------------------------ canary


class Pause(Model):
    """A canary pause: without `duration` it waits for a person to promote."""

    duration: Duration | None = None


class CanaryStep(Model):
    """One Argo Rollouts canary step: exactly one of `setWeight` or `pause`."""

    set_weight: int | None = Field(default=None, ge=1, le=100)
    pause: Pause | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.set_weight is None) == (self.pause is None):
            raise ValueError("a step is exactly one of 'setWeight' or 'pause'")
        return self


def _increasing_weights(steps: list[CanaryStep]) -> list[CanaryStep]:
    weights = [s.set_weight for s in steps if s.set_weight is not None]
    for before, after in pairwise(weights):
        if after <= before:
            raise ValueError(
                f"setWeight values must be strictly increasing within 1..100 "
                f"({before} is followed by {after})"
            )
    return steps


CanarySteps = Annotated[list[CanaryStep], AfterValidator(_increasing_weights)]


# ---------------------------------------------------------------------- services


class SourceTests(Model):
    """The service's unit tests, run in its own test image before the image build."""

    image: PinnedImage
    command: list[NoTemplate] = Field(min_length=1)
    # Extra environment of the test container, e.g. GOPATH=/tmp/go: the container
    # runs as uid 1000 with a read-only root filesystem; only /tmp and /workspace
    # are writable.
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], NoTemplate] = {}
    skip: bool = False


class Build(Model):
    """How the image is built from the service's directory."""

    dockerfile: RelPath = "Dockerfile"
    context: RelPath = ""
    args: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], NoTemplate] = {}


class HelmTarget(Model):
    """Where the service's chart and values live in the GitOps (helm) repository."""

    repo: GithubRepo
    path: RelPath = Field(min_length=1)
    values_file: RelPath | None = None  # default: the stack's `valuesFile`
    image_tag_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")] = (
        "image.tag"
    )


# Kubernetes label keys ([prefix/]name) and values, as a Service selector takes them.
LabelKey = Annotated[
    str,
    Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"),
]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


class RolloutOptions(Model):
    """How the platform's Rollout releases the service (DESIGN.md section 2)."""

    # The chart's Deployment the Rollout takes the pod template from (default: the
    # service name). The chart keeps it at `replicas: 0`.
    deployment: DnsLabel | None = None
    # `never` keeps the Deployment's (zero) pods untouched; `onsuccess` only as an
    # explicit migration setting from a Deployment that still runs pods.
    scale_down: Literal["never", "onsuccess"] = "never"
    # Canary by replica weight by default; with traffic routing the platform creates
    # `<service>-stable` / `<service>-canary` Services and splits traffic at the ALB.
    traffic_routing: bool = False
    # Port of the service's pods behind the stable/canary Services (traffic routing).
    port: int = Field(default=8080, ge=1, le=65535)
    # Automated analysis (Prometheus success rate, settings `analysis`) during the canary.
    analysis: bool = False
    # Pods the Rollout runs (it owns them; the chart's Deployment stays at 0). Leave
    # unset when an HPA targets the Rollout: Pulumi then never writes the field and
    # the HPA (or Argo Rollouts' default of 1) decides.
    replicas: int | None = Field(default=None, ge=1, le=1000)
    # The Deployment's pod labels: the stable/canary Services' selector (default
    # `app.kubernetes.io/name: <service>`).
    selector: dict[LabelKey, LabelValue] = {}
    # Traffic routing: the chart's Ingress the Rollouts controller writes the ALB
    # action to (default: the service name), and the Service its rule points at with
    # port `use-annotation` (default: `<service>-stable`).
    ingress: DnsLabel | None = None
    root_service: DnsLabel | None = None


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

    kind: Literal["sha"] = "sha"


class SemverTagPolicy(Model):
    """Follow semantic-version tags within `constraint` (e.g. `1.2.x`, `~1.2`, `^1`)."""

    kind: Literal["semver"]
    constraint: SemverConstraint


TagPolicy = Annotated[ShaTagPolicy | SemverTagPolicy, Field(discriminator="kind")]


class ImageUpdaterOptions(Model):
    """Registry-driven updates by Argo CD Image Updater (off by default; README).

    For images pushed to the service's ECR repository by something other than this
    pipeline: the image updater writes the new tag to the same values file and key
    the promote step edits, on this environment's helm branch.
    """

    enabled: bool = False
    tag_policy: TagPolicy = ShaTagPolicy()
    # Key of the image repository in the values file. The image updater's Helm
    # values write-back always writes the image name next to the tag (the ECR
    # repository URL); default: `repository` beside `helm.imageTagKey`.
    image_name_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")] | None = None


class Service(Model):
    """One deployable service: where its code is, where its image and chart go."""

    name: DnsLabel
    repo: GithubRepo
    path: RelPath = ""  # sub-path in a monorepo; "" for the repository root
    image_repository: EcrName
    namespace: DnsLabel
    project: DnsLabel  # Argo CD AppProject: the team that owns the service
    helm: HelmTarget
    environments: list[Environment] = Field(default_factory=lambda: list(STACKS), min_length=1)
    tests: SourceTests | None = None
    build: Build = Build()
    canary: dict[Environment, CanarySteps] = {}
    trigger_on_push: bool = False
    slack_channel: Annotated[NoTemplate, Field(min_length=1, max_length=80)] | None = None
    rollout: RolloutOptions = RolloutOptions()
    # Newest-wins releases (components.workflows): a newer merge stops this service's
    # older release in the same environment before it can promote. Unset: the stack's
    # `release.newestWins`.
    newest_wins: bool | None = None
    # One Slack thread per release instead of one message per stage. Unset: the
    # stack's `slack.threads`.
    slack_threads: bool | None = None
    image_updater: ImageUpdaterOptions = ImageUpdaterOptions()

    @property
    def deployment(self) -> str:
        """The chart's Deployment the Rollout references."""
        return self.rollout.deployment or self.name

    def newest_wins_in(self, settings: Settings) -> bool:
        """Whether this service's releases in `settings`' stack are newest-wins."""
        return settings.release.newest_wins if self.newest_wins is None else self.newest_wins

    def slack_threads_in(self, settings: Settings) -> bool:
        """Whether this service's releases in `settings`' stack post one Slack thread each."""
        return settings.slack.threads if self.slack_threads is None else self.slack_threads

    @property
    def image_name_key(self) -> str:
        """Values key the image updater writes the image repository to (beside the tag)."""
        if self.image_updater.image_name_key:
            return self.image_updater.image_name_key
        parent, _, _ = self.helm.image_tag_key.rpartition(".")
        return f"{parent}.repository" if parent else "repository"

    @model_validator(mode="after")
    def _image_name_key_is_not_the_tag_key(self) -> Self:
        if self.image_updater.enabled and self.image_name_key == self.helm.image_tag_key:
            raise ValueError("imageUpdater.imageNameKey must differ from helm.imageTagKey")
        return self

    @field_validator("environments")
    @classmethod
    def _unique_environments(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists an environment twice")
        return value


class ServicesFile(Model):
    """The whole `services.yaml`."""

    services: list[Service]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        problems = []
        for label, key in (("name", "name"), ("image repository", "image_repository")):
            values = [getattr(s, key) for s in self.services]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                problems.append(f"{label} used by more than one service: {', '.join(dupes)}")
        slugs: dict[str, set[str]] = {}
        for s in self.services:
            slugs.setdefault(names.repo_slug(s.repo), set()).add(s.repo)
        clashing = sorted(" and ".join(sorted(r)) for r in slugs.values() if len(r) > 1)
        if clashing:
            problems.append(f"repositories whose names differ only in punctuation: {clashing}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def for_environment(self, environment: str) -> list[Service]:
        """The services deployed in `environment`, sorted by name."""
        return sorted(
            (s for s in self.services if environment in s.environments), key=lambda s: s.name
        )


# ---------------------------------------------------------------------- settings


class AwsSettings(Model):
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")]
    account_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")]


class ClusterSettings(Model):
    """The EKS cluster of this stack; exactly one of kubeContext or kubeconfig."""

    name: Annotated[str, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")]
    kube_context: str | None = None
    kubeconfig: str | None = None  # a path; the file's contents are read at deploy time

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.kube_context is None) == (self.kubeconfig is None):
            raise ValueError("set exactly one of 'kubeContext' or 'kubeconfig'")
        return self


class PodIdentity(Model):
    """EKS Pod Identity: the agent add-on maps a ServiceAccount to a role."""

    mode: Literal["pod-identity"] = "pod-identity"


class Irsa(Model):
    """IAM Roles for Service Accounts through the cluster's OIDC provider."""

    mode: Literal["irsa"]
    oidc_provider_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$")]


class EcrSettings(Model):
    repository_prefix: Annotated[str, Field(pattern=r"^([a-z0-9]+([._-][a-z0-9]+)*)?$")] | None = (
        None  # default: the environment name
    )
    keep_images: int = Field(default=200, ge=1, le=10000)
    untagged_expire_days: int = Field(default=7, ge=1, le=365)
    cache_tag: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")] = "buildcache"
    kms_key_arn: str | None = None  # default: AES256 (AWS-owned key)


class GithubSettings(Model):
    organization: Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")]


class HelmWriterSettings(Model):
    """This environment's GitHub App: the only identity allowed onto its helm branch."""

    app_id: int = Field(gt=0)
    installation_id: int = Field(gt=0)


class Hostnames(Model):
    """Public host names (TLS) of the event intake and the UIs behind SSO.

    The Rollouts dashboard has none: it has no login of its own, so it stays
    cluster-internal (README, "Developer UIs and how to sign in").
    """

    events: str
    argocd: str
    workflows: str

    @field_validator("*")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not names.is_dns1123_subdomain(value) or "." not in value:
            raise ValueError("must be a fully qualified lowercase host name")
        return value


class Namespaces(Model):
    events: DnsLabel = "argo-events"
    workflows: DnsLabel = "argo"
    argocd: DnsLabel = "argocd"
    rollouts: DnsLabel = "argo-rollouts"
    build: DnsLabel = "argo-build"


class SlackSettings(Model):
    """Where release notifications go; the bot token is the config secret `slackToken`."""

    channel: Annotated[NoTemplate, Field(min_length=1, max_length=80)]
    # One Slack thread per release (scripts/slack_thread.py, components.slack_relay) for
    # every service that does not set its own `slackThreads`. Off by default. No channel
    # id setting: chat.postMessage answers with the id, and that is what gets stored.
    threads: bool = False


Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|Ki|Mi|Gi|Ti)?$")]
GithubTeam = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")]


class Amounts(Model):
    cpu: Quantity
    memory: Quantity


class Resources(Model):
    requests: Amounts
    limits: Amounts


class Size(Model):
    """Replicas and resources of one long-running platform component."""

    replicas: int = Field(default=1, ge=1, le=10)
    resources: Resources


def _size(cpu: str, memory: str, limit_cpu: str, limit_memory: str, replicas: int = 1) -> Size:
    return Size(
        replicas=replicas,
        resources=Resources(
            requests=Amounts(cpu=cpu, memory=memory), limits=Amounts(cpu=limit_cpu, memory=limit_memory)
        ),
    )


class Sizes(Model):
    """Per-component sizes; live raises replicas for HA in its stack file."""

    argocd_controller: Size = _size("250m", "512Mi", "1", "2Gi")
    argocd_server: Size = _size("50m", "128Mi", "500m", "512Mi")
    argocd_repo_server: Size = _size("100m", "256Mi", "1", "1Gi")
    argocd_applicationset: Size = _size("50m", "64Mi", "250m", "256Mi")
    argocd_dex: Size = _size("10m", "32Mi", "100m", "128Mi")
    argocd_redis: Size = _size("50m", "64Mi", "250m", "256Mi")
    argocd_notifications: Size = _size("20m", "64Mi", "200m", "256Mi")
    workflows_controller: Size = _size("100m", "128Mi", "1", "1Gi")
    workflows_server: Size = _size("50m", "64Mi", "500m", "256Mi")
    # The init and wait containers Argo Workflows adds to every workflow pod (replicas unused).
    workflows_executor: Size = _size("10m", "64Mi", "500m", "256Mi")
    # Containers of the release and build workflows (replicas unused): the release-tools
    # steps (checkout, change check, image check, promote, verify, notify), the service's
    # unit tests in its own test image, and the rootless BuildKit build.
    workflow_step: Size = _size("50m", "128Mi", "1", "512Mi")
    unit_tests: Size = _size("500m", "1Gi", "2", "4Gi")
    image_build: Size = _size("1", "2Gi", "4", "8Gi")
    events_controller: Size = _size("50m", "64Mi", "500m", "256Mi")
    event_source: Size = _size("20m", "32Mi", "200m", "128Mi", replicas=2)
    sensor: Size = _size("20m", "32Mi", "200m", "128Mi")
    rollouts_controller: Size = _size("50m", "64Mi", "500m", "256Mi")
    rollouts_dashboard: Size = _size("10m", "32Mi", "100m", "128Mi")
    # Argo CD Image Updater: deployed only when a service sets `imageUpdater.enabled`.
    image_updater: Size = _size("50m", "128Mi", "500m", "512Mi")

    @field_validator("event_source")
    @classmethod
    def _two_event_sources(cls, value: Size) -> Size:
        # GitHub does not redeliver a failed delivery by itself: keep two replicas.
        if value.replicas < 2:
            raise ValueError("needs at least 2 replicas (GitHub does not redeliver by itself)")
        return value


AcmArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$")]


class IngressSettings(Model):
    """How hosts are exposed: the AWS Load Balancer Controller by default."""

    class_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")] = "alb"
    # default: the controller discovers the ACM certificate by host name
    certificate_arn: AcmArn | None = None
    ssl_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    group_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")] = "release-pipeline"
    ui_scheme: Literal["internal", "internet-facing"] = "internal"
    annotations: dict[str, str] = {}  # added to every Ingress, e.g. external-dns


class SsoSettings(Model):
    """Argo CD and Argo Workflows sign-in through Dex's GitHub connector.

    The OAuth App's client secret is the config secret `ssoClientSecret`.
    """

    client_id: Annotated[str, Field(min_length=1)]


class RbacSettings(Model):
    """Who may do what in Argo CD and Argo Workflows (GitHub teams of `github.organization`)."""

    admin_team: GithubTeam = "platform"
    sync_by: Literal["team", "release-managers"] = "team"
    release_managers_team: GithubTeam = "release-managers"
    # project (team in services.yaml) -> GitHub team slugs; default: the project name
    team_slugs: dict[DnsLabel, list[GithubTeam]] = {}


class EventBusSettings(Model):
    """The JetStream EventBus `default`."""

    replicas: int = Field(default=3, ge=3)
    storage_class: DnsLabel = "gp3"
    volume_size: Quantity = "10Gi"
    # Of each nats-server container (the reloader and metrics sidecars get small fixed ones).
    resources: Resources = Resources(
        requests=Amounts(cpu="100m", memory="256Mi"), limits=Amounts(cpu="1", memory="1Gi")
    )
    # Must be one of the versions the argo-events controller lists (chart values
    # `configs.jetstream.versions`).
    version: Literal["2.10.10", "2.9.16", "latest"] = "2.10.10"


class ToolImages(Model):
    """Where the two images this project builds itself are pushed (docs/operating.md, "Tool images").

    `release-tools` (git, ssh, Python with the step scripts' libraries) and
    `buildkit-ecr` (rootless BuildKit with docker-credential-ecr-login). The tags are
    pinned in `components.versions`; the repositories must have immutable tags.
    """

    registry: Annotated[str, Field(pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")]


class AnalysisSettings(Model):
    """Canary analysis against Prometheus, for services with `rollout.analysis: true`."""

    prometheus_address: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] = (
        "http://prometheus-operated.monitoring.svc:9090"
    )
    # PromQL returning the success ratio (0..1) of the canary; `{{args.service}}` and
    # `{{args.namespace}}` are filled in by Argo Rollouts.
    success_rate_query: str = (
        'sum(rate(http_requests_total{namespace="{{args.namespace}}",service="{{args.service}}",'
        'code!~"5.."}[2m])) / sum(rate(http_requests_total{namespace="{{args.namespace}}",'
        'service="{{args.service}}"}[2m]))'
    )
    success_threshold: float = Field(default=0.99, gt=0, le=1)
    interval: Duration = "1m"
    failure_limit: int = Field(default=2, ge=0, le=100)


class ReleaseSettings(Model):
    """Behaviour of the release workflow and the Argo CD Application in this environment."""

    # Minutes the verify step waits for Argo CD to sync and the Rollout to settle.
    verify_timeout_minutes: int = Field(default=30, ge=1, le=240)
    # Minutes any one workflow pod may run (activeDeadlineSeconds).
    step_timeout_minutes: int = Field(default=45, ge=1, le=480)
    # Whether deleting an Application deletes what it deployed (Argo CD's cascading
    # finalizer). Off in live: dropping a service never deletes the running service.
    cascade_delete: bool = True
    # Newest-wins releases for every service of this stack that does not set its own
    # `newestWins` (components.workflows). Off by default.
    newest_wins: bool = False


def _grafana_folder(value: str) -> str:
    # One directory level: the sidecar writes the file there and Grafana
    # (`foldersFromFilesStructure`) names the folder after it.
    if value in {".", ".."} or "/" in value or "\\" in value or not value.isprintable():
        raise ValueError("must be one folder name: no '/', '\\', control characters, '.' or '..'")
    return value


class GrafanaDashboard(Model):
    """The release dashboard as a ConfigMap for the Grafana dashboards sidecar (components.dashboards).

    Defaults are those of the kube-prometheus-stack chart (`grafana.sidecar.dashboards`:
    label `grafana_dashboard`, labelValue "1"); the grafana chart's own default
    labelValue "" matches any value, "1" included. The namespace must already exist
    and be one the sidecar searches (`sidecar.dashboards.searchNamespace`): the
    program does not create it.
    """

    namespace: DnsLabel
    label: LabelKey = "grafana_dashboard"
    label_value: LabelValue = "1"
    # Grafana folder; set only where the sidecar honours a folder annotation and
    # Grafana makes folders from it (`sidecar.dashboards.provider.foldersFromFilesStructure`).
    folder: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_grafana_folder)] | None = None
    # The chart's `sidecar.dashboards.folderAnnotation`; unset there, k8s-sidecar reads this one.
    folder_annotation: LabelKey = "k8s-sidecar-target-directory"


class MetricsSettings(Model):
    enabled: bool = True
    service_monitor: bool = False  # needs the Prometheus Operator CRDs
    # Release metrics (outcomes, stage durations, lead time) emitted by the release
    # WorkflowTemplates through the Argo Workflows controller (components.workflows;
    # dashboards/release-pipeline.json). Needs `enabled`. Off by default.
    release_metrics: bool = False
    # dashboards/release-pipeline.json provisioned for Grafana's dashboards sidecar.
    # Needs `releaseMetrics`. Off by default.
    grafana_dashboard: GrafanaDashboard | None = None

    @model_validator(mode="after")
    def _release_metrics_need_the_controllers(self) -> Self:
        if self.release_metrics and not self.enabled:
            raise ValueError("'releaseMetrics' needs 'enabled': the controller serves them on its metrics port")
        return self

    @model_validator(mode="after")
    def _dashboard_needs_release_metrics(self) -> Self:
        if self.grafana_dashboard is not None and not self.release_metrics:
            raise ValueError("'grafanaDashboard' needs 'releaseMetrics': the dashboard shows the release metrics")
        return self


class PromoteFrom(Model):
    """Build once, promote many (off by default; docs/optional-features.md, "Build once, promote many").

    Names the upstream stack whose ECR repositories may already hold the commit being
    released (a fast-forward merge from integration's branch to live's). The build
    Workflow then copies that image, by digest, into this stack's repository instead of
    rebuilding it (`scripts/reuse_image.py`). Which mechanism applies
    (`components.registry`): same account and region, the push role reads the upstream
    repository directly; another account or region, an ECR-to-ECR pull-through cache
    rule in this stack mirrors the upstream repositories under `cachePrefix`; from
    another account, the upstream stack grants this account pull on them
    (`upstream_registry_policy`), having read this stack's file. The fields must name
    the upstream stack's own account, region and repository prefix (a cross-stack rule).
    """

    environment: Environment
    # Default: this stack's `aws.accountId` / `aws.region`.
    account_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")] | None = None
    # The upstream stack's `ecr.repositoryPrefix` (default: its environment name).
    repository_prefix: Annotated[str, Field(pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*$")] | None = None
    # Repository namespace of the pull-through cache (another account or region only).
    cache_prefix: Annotated[str, Field(pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*$", max_length=30)] = "promoted"

    @property
    def upstream_prefix(self) -> str:
        return self.environment if self.repository_prefix is None else self.repository_prefix


class Settings(Model):
    """`release-pipeline:settings` of one stack: everything that differs per environment."""

    environment: Environment
    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")]
    helm_branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")]
    values_file: RelPath = "values.yaml"
    aws: AwsSettings
    cluster: ClusterSettings
    identity: Annotated[PodIdentity | Irsa, Field(discriminator="mode")] = PodIdentity()
    ecr: EcrSettings = EcrSettings()
    github: GithubSettings
    helm_writer: HelmWriterSettings
    hostnames: Hostnames
    namespaces: Namespaces = Namespaces()
    slack: SlackSettings
    canary: CanarySteps = Field(min_length=1)
    ingress: IngressSettings = IngressSettings()
    sso: SsoSettings
    rbac: RbacSettings = RbacSettings()
    event_bus: EventBusSettings = EventBusSettings()
    sizes: Sizes = Sizes()
    metrics: MetricsSettings = MetricsSettings()
    tool_images: ToolImages
    analysis: AnalysisSettings = AnalysisSettings()
    release: ReleaseSettings = ReleaseSettings()
    # Build once, promote many: reuse the upstream stack's image of the same commit. Off.
    promote_from: PromoteFrom | None = None

    def team_slugs(self, project: str) -> list[str]:
        """GitHub team slugs that own `project` (default: the project name)."""
        return self.rbac.team_slugs.get(project, [project])

    @property
    def ecr_prefix(self) -> str:
        return self.environment if self.ecr.repository_prefix is None else self.ecr.repository_prefix

    @property
    def promote_same_registry(self) -> bool:
        """Whether `promoteFrom` names a repository in this stack's own account and region."""
        upstream = self.promote_from
        return upstream is not None and (upstream.account_id or self.aws.account_id) == self.aws.account_id \
            and (upstream.region or self.aws.region) == self.aws.region

    @property
    def ecr_registry(self) -> tuple[str, str, str]:
        """(account, region, repository prefix) of this stack's own ECR repositories."""
        return self.aws.account_id, self.aws.region, self.ecr_prefix

    @property
    def promote_from_registry(self) -> tuple[str, str, str] | None:
        """(account, region, repository prefix) of the repositories `promoteFrom` names, or None."""
        upstream = self.promote_from
        if upstream is None:
            return None
        return (upstream.account_id or self.aws.account_id, upstream.region or self.aws.region,
                upstream.upstream_prefix)

    @model_validator(mode="after")
    def _promote_from_another_repository(self) -> Self:
        upstream = self.promote_from
        if upstream is None:
            return self
        if upstream.environment == self.environment:
            raise ValueError("promoteFrom.environment must be another stack's environment")
        if self.promote_same_registry and upstream.upstream_prefix == self.ecr_prefix:
            raise ValueError("promoteFrom names this stack's own repositories (same account, region and "
                             "repository prefix)")
        if not self.promote_same_registry and upstream.cache_prefix == self.ecr_prefix:
            raise ValueError("promoteFrom.cachePrefix must differ from this stack's ECR repository prefix")
        return self


# ---------------------------------------------------------------------- loading

# Turns a pydantic error location into (where, field) for a Problem.
Describe = Callable[[tuple[str | int, ...]], tuple[str, str]]


def _problems_from(
    err: ValidationError, file: str, loaded: Loaded | None, base: tuple[str | int, ...],
    describe: Describe,
) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where, field = describe(loc)
        line = loaded.line_of(base + loc) if loaded else None
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(Problem(file, line, where, field, message))
    return problems


def _describe_service_loc(
    data: object,
) -> Describe:
    services = data.get("services") if isinstance(data, dict) else None

    def describe(loc: tuple[str | int, ...]) -> tuple[str, str]:
        if len(loc) >= 2 and loc[0] == "services" and isinstance(loc[1], int):
            index = loc[1]
            name = None
            if isinstance(services, list) and index < len(services):
                entry = services[index]
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    name = entry["name"]
            where = f"service {name!r}" if name else f"service #{index + 1}"
            return where, ".".join(str(p) for p in loc[2:])
        return "services file", ".".join(str(p) for p in loc)

    return describe


def parse_services(text: str, file: str) -> ServicesFile:
    """Parse and validate services.yaml text; raise ConfigError with every problem."""
    loaded, problems = load_yaml(text, file)
    if loaded is None:
        raise ConfigError([_name_service(p) for p in problems])
    data = loaded.data
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "services file", "",
                                   "must be a mapping with a 'services' list")])
    try:
        return ServicesFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_problems_from(err, file, loaded, (), _describe_service_loc(data))) from None


def _name_service(problem: Problem) -> Problem:
    """'services.1' (a YAML path) -> 'service #2', as validation errors say it."""
    match = re.fullmatch(r"services\.(\d+)(?:\.(.*))?", problem.where)
    if not match:
        return problem
    field = ".".join(p for p in (match.group(2), problem.field) if p)
    return Problem(problem.file, problem.line, f"service #{int(match.group(1)) + 1}", field,
                   problem.message)


def load_services(path: Path) -> ServicesFile:
    """Read and validate a services file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([Problem(str(path), None, "services file", "",
                                   f"cannot read: {err.strerror}")]) from None
    return parse_services(text, str(path))


def _settings_describe(loc: tuple[str | int, ...]) -> tuple[str, str]:
    return "settings", ".".join(str(p) for p in loc)


def parse_settings(data: object, file: str, loaded: Loaded | None = None,
                   base: tuple[str | int, ...] = ()) -> Settings:
    """Validate a settings object (from a stack file or from Pulumi config)."""
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_problems_from(err, file, loaded, base, _settings_describe)) from None


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def load_stack_settings(project_dir: Path, stack: str) -> Settings:
    """Read `Pulumi.<stack>.yaml` and validate its settings object."""
    path = stack_file(project_dir, stack)
    loaded, problems = load_yaml_file(path)
    if loaded is None:
        raise ConfigError(problems)
    config = loaded.data.get("config") if isinstance(loaded.data, dict) else None
    key = f"{PROJECT}:{SETTINGS_KEY}"
    if not isinstance(config, dict) or key not in config:
        raise ConfigError([Problem(str(path), None, "settings", "",
                                   f"missing 'config: {key}:'")])
    settings = parse_settings(config[key], str(path), loaded, ("config", key))
    if settings.environment != stack:
        raise ConfigError([Problem(str(path), loaded.line_of(("config", key, "environment")),
                                   "settings", "environment",
                                   f"is {settings.environment!r} in the file of stack {stack!r}")])
    return settings


def settings_from_pulumi_config(raw: str | Mapping[str, object], stack: str) -> Settings:
    """Validate the settings object as Pulumi hands it to the program (JSON)."""
    data = json.loads(raw) if isinstance(raw, str) else raw
    return parse_settings(data, f"Pulumi.{stack}.yaml")


def cross_stack_problems(settings: Mapping[str, Settings], project_dir: Path) -> list[Problem]:
    """Rules that span stacks: one cluster per stack, one branch per stack, and a
    `promoteFrom` that names its upstream stack's actual registry."""
    problems = _promote_from_problems(settings, project_dir)
    for label, key in (
        ("cluster", lambda s: (s.aws.account_id, s.aws.region, s.cluster.name)),
        ("branch", lambda s: s.branch),
        ("helm branch", lambda s: s.helm_branch),
    ):
        owners: dict[object, list[str]] = {}
        for stack, s in sorted(settings.items()):
            owners.setdefault(key(s), []).append(stack)
        for value, stacks in sorted(owners.items(), key=lambda kv: kv[1]):
            if len(stacks) > 1:
                why = (
                    " (they would fight over CRDs, cluster roles and Argo CD)"
                    if label == "cluster" else ""
                )
                for stack in stacks[1:]:
                    problems.append(Problem(
                        str(stack_file(project_dir, stack)), None, "settings",
                        label.replace(" ", ""),
                        f"same {label} as stack {stacks[0]!r}: {value!r}{why}",
                        involves=(stacks[0],),
                    ))
    return problems


# Each part of `Settings.promote_from_registry`: the promoteFrom field (YAML, Python),
# the upstream stack's own setting it must equal, how the message names it, its default.
_PROMOTE_FROM_PARTS = (
    ("accountId", "account_id", "aws.accountId", "in account", "this stack's own account"),
    ("region", "region", "aws.region", "in region", "this stack's own region"),
    ("repositoryPrefix", "repository_prefix", "ecr.repositoryPrefix", "under the prefix",
     "the upstream environment's name"),
)


def _promote_from_problems(settings: Mapping[str, Settings], project_dir: Path) -> list[Problem]:
    """A `promoteFrom` must resolve to its upstream stack's account, region and repository prefix.

    The upstream stack grants pull on its repositories only to downstream stacks whose
    `promoteFrom` resolves to exactly them (`components.registry.promotion_downstreams`);
    anything else would make the downstream's cache rule or push role read repositories
    that nobody granted, or that do not exist. Checked where both stack files are known.
    """
    problems = []
    for stack, s in sorted(settings.items()):
        upstream = s.promote_from
        resolved = s.promote_from_registry
        if upstream is None or resolved is None or upstream.environment not in settings:
            continue
        actual = settings[upstream.environment].ecr_registry
        upstream_file = stack_file(project_dir, upstream.environment).name
        for (field, attr, their_field, where, default), got, want in zip(
            _PROMOTE_FROM_PARTS, resolved, actual, strict=True
        ):
            if got == want:
                continue
            shown = f"not set, so {default} {got!r}" if getattr(upstream, attr) is None else f"is {got!r}"
            if want == "":
                # The grants, cache rule and read policies are scoped to `<prefix>/*`:
                # repositories outside any prefix cannot be named that way.
                fix = (f"promoteFrom needs the upstream's repositories under a prefix: set {their_field} "
                       f"in {upstream_file}")
                want_text = "at the top level (no prefix)"
            else:
                fix = f"set promoteFrom.{field} to {want!r}"
                want_text = f"{where} {want!r}"
            problems.append(Problem(
                str(stack_file(project_dir, stack)), None, "settings", f"promoteFrom.{field}",
                f"{shown}, but stack {upstream.environment!r} keeps its ECR repositories {want_text} "
                f"({their_field} in {upstream_file}); {fix}",
                involves=(upstream.environment,),
            ))
    return problems


def service_problems(services: ServicesFile, settings: Settings, file: str) -> list[Problem]:
    """Rules that need both files: names that must fit the stack's limits."""
    problems = []
    platform = set(settings.namespaces.model_dump().values())
    for s in services.for_environment(settings.environment):
        if s.namespace in platform:
            problems.append(Problem(file, None, f"service {s.name!r}", "namespace",
                                    f"{s.namespace!r} is a platform namespace of stack "
                                    f"{settings.environment!r}; use the team's own namespace"))
        repo = names.ecr_repository_name(settings.ecr_prefix, s.image_repository)
        if len(repo) > names.ECR_REPOSITORY_MAX:
            problems.append(Problem(file, None, f"service {s.name!r}", "imageRepository",
                                    f"ECR name {repo!r} is longer than 256 characters"))
    return problems


def validate_all(stacks: Iterable[str], services_path: Path, project_dir: Path) -> list[Problem]:
    """Every problem in the services file and the given stacks' settings, at once."""
    problems: list[Problem] = []
    services = None
    try:
        services = load_services(services_path)
    except ConfigError as err:
        problems += err.problems
    loaded: dict[str, Settings] = {}
    for stack in stacks:
        if stack not in STACKS:
            problems.append(Problem(str(stack_file(project_dir, stack)), None, "stack", "",
                                    f"unknown stack; expected one of {', '.join(STACKS)}"))
            continue
        try:
            loaded[stack] = load_stack_settings(project_dir, stack)
        except ConfigError as err:
            problems += err.problems
    problems += cross_stack_problems(loaded, project_dir)
    if services is not None:
        for settings in loaded.values():
            problems += service_problems(services, settings, str(services_path))
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.where, p.field, p.message))


def sibling_stack_problems(
    settings: Settings, stack: str, project_dir: Path, siblings: Mapping[str, Settings] | None = None
) -> list[Problem]:
    """Cross-stack rules for one stack against the other stack files in the project.

    `pulumi up` sees only its own stack's config; reading the sibling
    `Pulumi.<env>.yaml` files lets it refuse, for example, a second stack on a cluster
    another stack already owns. A sibling file that does not parse is that stack's
    problem, reported when it is deployed, and is skipped here. `siblings`: the
    siblings' settings when the caller has them already (`sibling_settings`).
    """
    if siblings is None:
        siblings = sibling_settings(stack, project_dir)
    all_settings = {stack: settings} | dict(siblings)
    own_file = str(stack_file(project_dir, stack))
    return [p for p in cross_stack_problems(all_settings, project_dir) if p.file == own_file or stack in p.involves]


def sibling_settings(stack: str, project_dir: Path) -> dict[str, Settings]:
    """The settings of the other stack files in the project that exist and parse, by stack.

    What `pulumi up` of one stack may know of the others: used for the cross-stack
    rules above and to learn which stacks promote images from this one. A file that
    does not parse is skipped (that stack's problem, reported when it is deployed).
    """
    siblings: dict[str, Settings] = {}
    for other in STACKS:
        if other == stack or not stack_file(project_dir, other).exists():
            continue
        try:
            siblings[other] = load_stack_settings(project_dir, other)
        except ConfigError:
            continue
    return siblings

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
from fractions import Fraction
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components import canary, config_keys, names
from components.errors import ConfigError, Problem
from components.yamlsafe import Loaded, decode_utf8, load_yaml, load_yaml_file

PROJECT = "release-pipeline"
SETTINGS_KEY = config_keys.SETTINGS
# Longest value (as repr) an error message repeats in full; longer ones end in "...".
SHOWN_MAX = 100
SERVICES_FILE_KEY = "servicesFile"
# Validation context: the caller has reported duplicate service names itself, with lines.
NAMES_CHECKED = "names_checked"
Environment = Literal["dev", "sandbox", "integration", "live"]
STACKS: tuple[Environment, ...] = ("dev", "sandbox", "integration", "live")

# Config keys (namespace `release-pipeline`) read with `require_secret`: githubToken
# (GitHub provider: webhooks, deploy keys, rulesets on the repos), helmWriterPrivateKey
# (this environment's GitHub App key, helm repo writes), slackToken (Slack bot token,
# chat:write, for Argo CD / Rollouts / workflow notices), ssoClientSecret (GitHub OAuth
# App client secret for Dex). The offline render substitutes a placeholder for each,
# since `secure:` values cannot be decrypted without the stack's secrets provider. Any
# other key of the project in a stack file is refused (components.config_keys).
SECRET_CONFIG_KEYS: tuple[str, ...] = config_keys.SECRETS


# --------------------------------------------------------------------------- helpers


class Model(BaseModel):
    """Base of every config model: camelCase in YAML, unknown fields rejected, strict types.

    Strict: an integer field refuses a boolean (YAML 1.1 reads `on`/`yes` as true, which
    lax mode would take as 1) and a boolean field refuses a string ("yes").
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        str_strip_whitespace=False,
        strict=True,
    )


def _dns_label(value: str) -> str:
    if not names.is_dns1123_label(value):
        raise ValueError(
            "must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


# Kubernetes' own namespaces: a platform or service namespace must never take one over
# (the program labels its namespaces with Pod Security levels and retains them on delete).
KUBERNETES_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


def _not_kubernetes_namespace(value: str) -> str:
    if value in KUBERNETES_NAMESPACES:
        raise ValueError(
            f"{value!r} is one of Kubernetes' own namespaces ({', '.join(KUBERNETES_NAMESPACES)}); "
            "use a namespace of its own"
        )
    return value


def _dns1035_label(value: str) -> str:
    if value and not value[0].isalpha():
        raise ValueError(
            "must start with a lowercase letter: it names Kubernetes Services, which are "
            "DNS-1035 labels (lowercase letters, digits and '-', starting with a letter)"
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


def _git_branch(value: str) -> str:
    """A branch name git accepts (git check-ref-format), within what the pattern allows."""
    parts = value.split("/")
    if (
        ".." in value or "@{" in value or value.endswith((".lock", "."))
        or "" in parts or any(p.startswith(".") for p in parts)
    ):
        raise ValueError(
            "must be a git branch name: letters, digits, '.', '_', '-' and '/', with no '..', no empty "
            "or '.'-led part between '/' (no leading, trailing or double '/'), not ending in '.' or '.lock'"
        )
    return value


def _not_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


def _no_argo_template(value: str) -> str:
    if "{{" in value:
        raise ValueError("must not contain '{{': Argo Workflows would substitute into it")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
# A namespace the program creates (and labels, and retains): not one of Kubernetes' own.
NamespaceName = Annotated[DnsLabel, AfterValidator(_not_kubernetes_namespace)]
# A name that becomes (part of) a Kubernetes Service name: DNS-1035, starts with a letter.
Dns1035Label = Annotated[DnsLabel, AfterValidator(_dns1035_label)]
# A services.yaml or settings string that ends up inside a workflow step (a test
# command, a build argument, a Slack channel): Argo would expand `{{...}}` in it.
NoTemplate = Annotated[str, AfterValidator(_no_argo_template)]
GithubRepo = Annotated[str, AfterValidator(_github_repo)]
RelPath = Annotated[str, AfterValidator(_relative_path)]


def _not_the_root(value: str) -> str:
    if value in ("", "."):  # `_relative_path` turns "." into "", and "./" into "."
        raise ValueError("must name a file or directory inside the repository, not its root ('' or '.')")
    return value


# A path that must name something below the repository root: a file, or the chart's directory.
RelPathBelowRoot = Annotated[RelPath, AfterValidator(_not_the_root)]
EcrName = Annotated[str, AfterValidator(_ecr_name)]
GitBranch = Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$", max_length=255), AfterValidator(_git_branch)]
# Patterns whose mismatch is explained in words (`_PATTERN_MESSAGES`), not as the regex.
DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h)$"
REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"
ACCOUNT_PATTERN = r"^[0-9]{12}$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|Ki|Mi|Gi|Ti)?$"
_PATTERN_MESSAGES = {
    DURATION_PATTERN: "must be a duration in whole seconds, minutes or hours, like 30s, 10m or 2h",
    REGION_PATTERN: "must be an AWS region name, like us-east-1 or eu-west-2",
    ACCOUNT_PATTERN: "must be a 12-digit AWS account id, quoted so YAML keeps it a string",
    QUANTITY_PATTERN: "must be a Kubernetes quantity, like 250m or 2 (CPU) or 256Mi or 1Gi (memory)",
}
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
IMAGE_PATTERN = (r"^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9._-]+)(@sha256:[a-f0-9]{64})?$|"
                 r"^[a-z0-9][a-z0-9._/:-]*@sha256:[a-f0-9]{64}$")
Image = Annotated[
    str,
    Field(pattern=IMAGE_PATTERN, description="a container image pinned by tag or digest ('latest' is refused)"),
]


def _image_message(value: object) -> str:
    """Why ``value`` is no pinned image, in words (not the pattern)."""
    text = str(value)
    if "@" not in text and ":" not in text.rsplit("/", 1)[-1]:
        return (f"{_shown(value)} has no tag: add one, like '{text}:<version>' ('latest' is refused), "
                "or pin a digest with '@sha256:<digest>'")
    return (f"must be a container image pinned by a tag or a digest: a lowercase name, then ':<tag>' or "
            f"'@sha256:<digest>', not {_shown(value)}")


def _not_latest(value: str) -> str:
    tag = value.split("@", 1)[0].rsplit("/", 1)[-1]
    if tag.endswith(":latest"):
        raise ValueError("must be pinned: the tag 'latest' moves")
    return value


PinnedImage = Annotated[Image, AfterValidator(_not_latest)]


# ------------------------------------------------------------------------ canary


class Pause(Model):
    """A canary pause: without `duration` it waits for a person to promote."""

    duration: Duration | None = Field(
        default=None,
        description="How long the pause lasts; left out, the rollout waits for a person to promote it.",
        examples=["10m"],
    )


class CanaryStep(Model):
    """One Argo Rollouts canary step: exactly one of `setWeight` or `pause`."""

    set_weight: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Percent of the traffic (or of the pods, without traffic routing) the canary gets.",
        examples=[20],
    )
    pause: Pause | None = Field(
        default=None,
        description="Wait before the next step, for a duration or until a person promotes.",
    )

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


def _some_steps(steps: list[CanaryStep]) -> list[CanaryStep]:
    if not steps:
        raise ValueError("needs at least one step; leave the environment out to use the stack's canary")
    return steps


# ---------------------------------------------------------------------- services


class SourceTests(Model):
    """The service's unit tests, run in its own test image before the image build."""

    image: PinnedImage = Field(
        description="Container image the unit tests run in, pinned by a tag or digest.",
        examples=["python:3.12.8-slim"],
    )
    command: list[NoTemplate] = Field(
        min_length=1,
        description="Command and arguments that run the unit tests in the service's directory.",
        examples=[["pytest", "-q"]],
    )
    # Extra environment of the test container, e.g. GOPATH=/tmp/go: the container
    # runs as uid 1000 with a read-only root filesystem; only /tmp and /workspace
    # are writable.
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], NoTemplate] = Field(
        default={},
        description="Extra environment of the test container (only /tmp and /workspace are writable; uid 1000).",
        examples=[{"GOPATH": "/tmp/go"}],
    )
    skip: bool = Field(default=False, description="Skip the unit tests (the image is still built).")


class Build(Model):
    """How the image is built from the service's directory."""

    dockerfile: RelPathBelowRoot = Field(
        default="Dockerfile",
        description="Dockerfile of the image, relative to the service's path.",
        examples=["docker/Dockerfile"],
    )
    context: RelPath = Field(
        default="",
        description="Build context, relative to the service's path; empty for the path itself.",
        examples=["."],
    )
    args: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], NoTemplate] = Field(
        default={},
        description="Build arguments handed to the image build.",
        examples=[{"PYTHON_VERSION": "3.12"}],
    )


class HelmTarget(Model):
    """Where the service's chart and values live in the GitOps (helm) repository."""

    repo: GithubRepo = Field(
        description="GitOps (helm) repository that holds the service's chart and values, as owner/name.",
        examples=["acme/helm-charts"],
    )
    path: RelPathBelowRoot = Field(
        description="Directory of the service's chart in the helm repository.",
        examples=["charts/web"],
    )
    values_file: RelPathBelowRoot | None = Field(
        default=None,
        description="Values file the promote step edits, relative to the chart; left out, the stack's valuesFile.",
        examples=["values-dev.yaml"],
    )
    image_tag_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")] = Field(
        default="image.tag",
        description="Dotted key of the image tag in the values file.",
    )


# Kubernetes label keys ([prefix/]name) and values, as a Service selector takes them.
LabelKey = Annotated[
    str,
    Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"),
]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


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


class Service(Model):
    """One deployable service: where its code is, where its image and chart go."""

    # Starts with a letter: `<name>-stable` / `<name>-canary` are Kubernetes Services.
    name: Dns1035Label = Field(
        description="The service's name: it names its Sensor, WorkflowTemplates, Rollout and Applications.",
        examples=["web-api"],
    )
    repo: GithubRepo = Field(description="Source repository of the service, as owner/name.", examples=["acme/web-api"])
    path: RelPath = Field(
        default="",
        description="Sub-path of the service in a monorepo; empty for the repository root.",
        examples=["services/web"],
    )
    image_repository: EcrName = Field(
        description="ECR repository of the image, below the stack's ECR repository prefix.",
        examples=["web-api"],
    )
    namespace: NamespaceName = Field(
        description="Kubernetes namespace the service runs in (the team's own, not a platform namespace).",
        examples=["web"],
    )
    project: DnsLabel = Field(
        description="Argo CD AppProject of the team that owns the service.",
        examples=["storefront"],
    )
    helm: HelmTarget = Field(description="Where the service's chart and values live in the GitOps (helm) repository.")
    environments: list[Environment] = Field(
        default_factory=lambda: list(STACKS),
        min_length=1,
        description="Environments the service is deployed to.",
        examples=[["dev", "sandbox"]],
    )
    tests: SourceTests | None = Field(
        default=None,
        description="Unit tests run in their own image before the image build; left out, none.",
    )
    build: Build = Field(default=Build(), description="How the image is built from the service's directory.")
    # An empty list is refused (as the stack's `canary` is): leave the environment out
    # for the stack's profile.
    canary: dict[Environment, Annotated[CanarySteps, AfterValidator(_some_steps)]] = Field(
        default={},
        description="The service's own canary steps per environment; an environment left out uses the stack's canary.",
        examples=[{"live": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]}],
    )
    trigger_on_push: bool = Field(
        default=False,
        description="Release on every push to the stack's branch, not only on merged pull requests.",
    )
    slack_channel: Annotated[NoTemplate, Field(max_length=80), AfterValidator(_not_empty)] | None = Field(
        default=None,
        description="Slack channel for this service's release notices; left out, the stack's slack.channel.",
        examples=["#web-releases"],
    )
    rollout: RolloutOptions = Field(
        default=RolloutOptions(),
        description="How the platform's Rollout releases the service.",
    )
    # Newest-wins releases (components.workflows): a newer merge stops this service's
    # older release in the same environment before it can promote. Unset: the stack's
    # `release.newestWins`.
    newest_wins: bool | None = Field(
        default=None,
        description=(
            "A newer merge stops this service's older release in the same environment; left out, the stack's "
            "release.newestWins."
        ),
    )
    # One Slack thread per release instead of one message per stage. Unset: the
    # stack's `slack.threads`.
    slack_threads: bool | None = Field(
        default=None,
        description=(
            "One Slack thread per release instead of one message per stage; left out, the stack's slack.threads."
        ),
    )
    image_updater: ImageUpdaterOptions = Field(
        default=ImageUpdaterOptions(),
        description="Registry-driven image updates by Argo CD Image Updater (off by default).",
    )

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

    def canary_in(self, settings: Settings) -> list[CanaryStep]:
        """The canary steps in `settings`' stack: the service's own for it, else the stack's."""
        return list(self.canary.get(settings.environment) or settings.canary)

    def replicas_in(self, settings: Settings) -> int | None:
        """The Rollout's `spec.replicas` in `settings`' stack; None when an HPA decides (`rollout.hpa`)."""
        return self.replicas_and_source_in(settings)[0]

    def replicas_and_source_in(self, settings: Settings) -> tuple[int | None, str]:
        """The replica count and which setting gave it (the field a message names)."""
        env = settings.environment
        rollout = self.rollout
        if rollout.hpa:
            return None, "rollout.hpa"
        if env in rollout.replicas_by_environment:
            return rollout.replicas_by_environment[env], f"rollout.replicasByEnvironment.{env}"
        if rollout.replicas is not None:
            return rollout.replicas, "rollout.replicas"
        if settings.release.replicas is not None:
            return settings.release.replicas, f"release.replicas of stack {env!r}"
        weights = [s.set_weight for s in self.canary_in(settings) if s.set_weight is not None]
        return canary.fewest_replicas(weights), "the default (the fewest that honour the canary steps)"

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

    @model_validator(mode="after")
    def _canary_only_where_deployed(self) -> Self:
        for label, what, per_env in (
            ("canary", "canary", self.canary),
            ("rollout.replicasByEnvironment", "replica count", self.rollout.replicas_by_environment),
        ):
            unused = [env for env in STACKS if env in per_env and env not in self.environments]
            if unused:
                raise ValueError(
                    f"{label}.{unused[0]}: the service is not deployed to {', '.join(unused)} (environments: "
                    f"{', '.join(self.environments)}); remove that {what} or add the environment"
                )
        return self

    @field_validator("project")
    @classmethod
    def _not_the_default_project(cls, value: str) -> str:
        if value == "default":
            raise ValueError(
                "'default' is Argo CD's built-in AppProject, which the platform must not take "
                "over; name the owning team's own project"
            )
        return value

    @field_validator("environments")
    @classmethod
    def _unique_environments(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists an environment twice")
        return value


def _repository_clashes(label: str, repos: list[str]) -> list[str]:
    """Distinct repositories that would share one slug (one Pulumi name, one webhook)."""
    slugs: dict[str, set[str]] = {}
    for repo in repos:
        slugs.setdefault(names.repo_slug(repo), set()).add(repo)
    found = []
    for group in sorted(sorted(r) for r in slugs.values() if len(r) > 1):
        if len({r.lower() for r in group}) == 1:
            how = "case"
        elif len({re.sub(r"[^A-Za-z0-9]+", "-", r) for r in group}) == 1:
            how = "punctuation"
        else:
            how = "case and punctuation"
        found.append(f"{label} whose names differ only in {how}: {' and '.join(group)}")
    return found


class ServicesFile(Model):
    """The whole `services.yaml`."""

    services: list[Service] = Field(description="The services.")

    @model_validator(mode="after")
    def _unique(self, info: ValidationInfo) -> Self:
        problems = []
        # parse_services reports a duplicate name at the duplicate's own line instead.
        names_checked = isinstance(info.context, dict) and info.context.get(NAMES_CHECKED)
        unique = (("image repository", "image_repository"),) if names_checked else \
            (("name", "name"), ("image repository", "image_repository"))
        for label, key in unique:
            values = [getattr(s, key) for s in self.services]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                problems.append(f"{label} used by more than one service: {', '.join(dupes)}")
        problems += _repository_clashes("repositories", [s.repo for s in self.services])
        problems += _repository_clashes("helm repositories", [s.helm.repo for s in self.services])
        # GitHub owners are case-insensitive; the program keys its GitHub provider (and the
        # webhooks and deploy keys under it) by the owner as spelled.
        owners: dict[str, set[str]] = {}
        for s in self.services:
            for repo in (s.repo, s.helm.repo):
                owner = repo.split("/", 1)[0]
                owners.setdefault(owner.lower(), set()).add(owner)
        for spellings in sorted(sorted(o) for o in owners.values() if len(o) > 1):
            problems.append(
                f"GitHub owner spelled {' and '.join(repr(o) for o in spellings)}: owners are "
                "case-insensitive, spell each one the same way in every repo and helm.repo"
            )
        # A Rollout takes over its Deployment: one Rollout per Deployment and environment.
        takers: dict[tuple[str, str, str], list[str]] = {}
        for s in self.services:
            for env in s.environments:
                takers.setdefault((s.namespace, s.deployment, env), []).append(s.name)
        shared: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
        for (namespace, deployment, env_name), taking in takers.items():
            if len(set(taking)) > 1:  # one name twice is the duplicate name, reported as such
                shared.setdefault((namespace, deployment, tuple(sorted(taking))), []).append(env_name)
        for (namespace, deployment, taking_names), envs in sorted(shared.items()):
            problems.append(
                f"services {' and '.join(repr(n) for n in taking_names)} would each take over Deployment "
                f"{deployment!r} in namespace {namespace!r} (in {', '.join(e for e in STACKS if e in envs)}); "
                "a Deployment may have one Rollout: set rollout.deployment (default: the service name)"
            )
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
    region: Annotated[str, Field(pattern=REGION_PATTERN)] = Field(
        description="AWS region of the stack's cluster and ECR repositories.",
        examples=["eu-west-1"],
    )
    account_id: Annotated[str, Field(pattern=ACCOUNT_PATTERN)] = Field(
        description="AWS account of the stack, quoted.",
        examples=["123456789012"],
    )


class ClusterSettings(Model):
    """The EKS cluster of this stack; exactly one of kubeContext or kubeconfig."""

    name: Annotated[str, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")] = Field(
        description="Name of the stack's EKS cluster.",
        examples=["release-dev"],
    )
    kube_context: str | None = Field(
        default=None,
        description="kubeconfig context that reaches the cluster (exactly one of kubeContext or kubeconfig).",
        examples=["arn:aws:eks:eu-west-1:123456789012:cluster/release-dev"],
    )
    kubeconfig: str | None = Field(
        default=None,
        description="Path of a kubeconfig file, read at deploy time (exactly one of kubeContext or kubeconfig).",
        examples=["~/.kube/release-dev"],
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.kube_context is None) == (self.kubeconfig is None):
            raise ValueError("set exactly one of 'kubeContext' or 'kubeconfig'")
        return self


class PodIdentity(Model):
    """EKS Pod Identity: the agent add-on maps a ServiceAccount to a role."""

    mode: Literal["pod-identity"] = Field(
        default="pod-identity",
        description="EKS Pod Identity: the agent add-on maps each ServiceAccount to its IAM role.",
    )


class Irsa(Model):
    """IAM Roles for Service Accounts through the cluster's OIDC provider."""

    mode: Literal["irsa"] = Field(description="IAM Roles for Service Accounts through the cluster's OIDC provider.")
    oidc_provider_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$")] = Field(
        description="ARN of the cluster's IAM OIDC provider.",
        examples=["arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"],
    )


KMS_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z]{2}(-gov)?-[a-z]+-[0-9]:[0-9]{12}:(key|alias)/[A-Za-z0-9/_+=,.@:-]+")


def _kms_arn(value: str) -> str:
    if len(value) > 2048 or not KMS_ARN.fullmatch(value):
        raise ValueError("must be a KMS key or alias ARN: arn:aws:kms:<region>:<12-digit account>:key/<key id> "
                         "or ...:alias/<alias name>")
    return value


KmsArn = Annotated[str, AfterValidator(_kms_arn)]


class EcrSettings(Model):
    repository_prefix: Annotated[str, Field(pattern=r"^([a-z0-9]+([._-][a-z0-9]+)*)?$")] | None = Field(
        default=None,
        description="Prefix of the stack's ECR repository names; left out, the environment name.",
        examples=["dev"],
    )
    keep_images: int = Field(
        default=200,
        ge=1,
        le=10000,
        description="Images each repository keeps; the lifecycle policy expires older ones.",
    )
    untagged_expire_days: int = Field(default=7, ge=1, le=365, description="Days after which untagged images expire.")
    cache_tag: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")] = Field(
        default="buildcache",
        description="Tag of the BuildKit cache image in each repository.",
    )
    # A KMS key or alias ARN (arn:aws:kms:<region>:<account>:key/... or alias/...);
    # default: AES256 (AWS-owned key).
    kms_key_arn: KmsArn | None = Field(
        default=None,
        description="KMS key or alias that encrypts the repositories; left out, AES256 with an AWS-owned key.",
        examples=["arn:aws:kms:eu-west-1:123456789012:alias/ecr"],
    )


class GithubSettings(Model):
    organization: Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")] = Field(
        description="GitHub organization whose teams sign in and own projects.",
        examples=["acme"],
    )


class HelmWriterSettings(Model):
    """This environment's GitHub App: the only identity allowed onto its helm branch."""

    app_id: int = Field(
        gt=0,
        description="ID of this environment's GitHub App, the only identity that may push to its helm branch.",
        examples=[123456],
    )
    installation_id: int = Field(
        gt=0,
        description="Installation ID of that GitHub App in the organization.",
        examples=[45678901],
    )


def _refuse_equal_fields(model: Model, rule: str) -> None:
    """Raise when two fields of ``model`` hold the same value, naming each pair."""
    seen: dict[object, str] = {}
    clashes = []
    for field, value in model.model_dump(by_alias=True).items():
        if value in seen:
            clashes.append(f"{field} is {_shown(value)} like {seen[value]}")
        else:
            seen[value] = field
    if clashes:
        raise ValueError(f"{'; '.join(clashes)}: {rule}")


class Hostnames(Model):
    """Public host names (TLS) of the event intake and the UIs behind SSO.

    The Rollouts dashboard has none: it has no login of its own, so it stays
    cluster-internal (README, "Developer UIs and how to sign in"). Each host differs
    from the others (they share one ALB group), and no two stacks use the same host
    (a cross-stack rule).
    """

    events: str = Field(
        description="Public host name of the GitHub webhook intake.",
        examples=["events.dev.example.com"],
    )
    argocd: str = Field(
        description="Public host name of the Argo CD UI (behind SSO).",
        examples=["argocd.dev.example.com"],
    )
    workflows: str = Field(
        description="Public host name of the Argo Workflows UI (behind SSO).",
        examples=["workflows.dev.example.com"],
    )

    @field_validator("*")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not names.is_dns1123_subdomain(value) or "." not in value:
            raise ValueError("must be a fully qualified lowercase host name")
        return value

    @model_validator(mode="after")
    def _each_its_own(self) -> Self:
        _refuse_equal_fields(self, "each host name must differ from the others")
        return self


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


class SlackSettings(Model):
    """Where release notifications go; the bot token is the config secret `slackToken`."""

    channel: Annotated[NoTemplate, Field(max_length=80), AfterValidator(_not_empty)] = Field(
        description="Slack channel release notices go to.",
        examples=["#releases-dev"],
    )
    # One Slack thread per release (scripts/slack_thread.py, components.slack_relay) for
    # every service that does not set its own `slackThreads`. Off by default. No channel
    # id setting: chat.postMessage answers with the id, and that is what gets stored.
    threads: bool = Field(
        default=False,
        description="One Slack thread per release, for every service that does not set its own slackThreads.",
    )


Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]
GithubTeam = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")]


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


def _annotation_key(value: str) -> str:
    prefix, slash, name = value.rpartition("/")
    if (
        (slash and not names.is_dns1123_subdomain(prefix))
        or len(name) > 63
        or not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name)
    ):
        raise ValueError(
            "must be a Kubernetes annotation key: an optional DNS subdomain prefix and '/', then a "
            "name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return value


AnnotationKey = Annotated[str, AfterValidator(_annotation_key)]

AcmArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$")]


class IngressSettings(Model):
    """How hosts are exposed: the AWS Load Balancer Controller by default."""

    class_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")] = Field(
        default="alb",
        description="IngressClass of every Ingress.",
    )
    # default: the controller discovers the ACM certificate by host name
    certificate_arn: AcmArn | None = Field(
        default=None,
        description="ACM certificate of the hosts; left out, the controller discovers it by host name.",
        examples=["arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d"],
    )
    # An ALB security policy name (not empty: the controller refuses an empty one).
    ssl_policy: Annotated[str, AfterValidator(_not_empty)] = Field(
        default="ELBSecurityPolicy-TLS13-1-2-2021-06",
        description="ALB security policy of the HTTPS listeners.",
    )
    group_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")] = Field(
        default="release-pipeline",
        description="ALB group every Ingress of the stack joins (one load balancer).",
    )
    ui_scheme: Literal["internal", "internet-facing"] = Field(
        default="internal",
        description="Whether the UIs' load balancer is internal or internet-facing.",
    )
    # Added to every Ingress, e.g. external-dns; keys are Kubernetes annotation keys.
    annotations: dict[AnnotationKey, str] = Field(
        default={},
        description="Annotations added to every Ingress, e.g. for external-dns.",
        examples=[{"external-dns.alpha.kubernetes.io/ttl": "60"}],
    )


class SsoSettings(Model):
    """Argo CD and Argo Workflows sign-in through Dex's GitHub connector.

    The OAuth App's client secret is the config secret `ssoClientSecret`.
    """

    client_id: Annotated[str, Field(min_length=1)] = Field(
        description="Client ID of the GitHub OAuth App Dex signs in with (its secret is ssoClientSecret).",
        examples=["Iv1.0123456789abcdef"],
    )


class RbacSettings(Model):
    """Who may do what in Argo CD and Argo Workflows (GitHub teams of `github.organization`)."""

    admin_team: GithubTeam = Field(
        default="platform",
        description="GitHub team with admin rights in Argo CD and Argo Workflows.",
    )
    sync_by: Literal["team", "release-managers"] = Field(
        default="team",
        description="Who may sync an Application: its owning team, or only the release managers team.",
    )
    release_managers_team: GithubTeam = Field(
        default="release-managers",
        description="GitHub team that may sync every Application when syncBy is release-managers.",
    )
    # project (team in services.yaml) -> GitHub team slugs; default: the project name
    team_slugs: dict[DnsLabel, Annotated[list[GithubTeam], Field(min_length=1)]] = Field(
        default={},
        description="GitHub team slugs per project (services.yaml project); left out, the project name.",
        examples=[{"storefront": ["storefront-devs", "storefront-leads"]}],
    )


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


# The args of the canary's AnalysisTemplate (components.delivery), which Argo Rollouts
# fills in; the query may use these and no other.
ANALYSIS_ARGS: tuple[str, ...] = ("service", "namespace")


def _analysis_args_only(query: str) -> str:
    unknown = sorted(set(re.findall(r"\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}", query)) - set(ANALYSIS_ARGS))
    if unknown:
        raise ValueError(
            f"uses {', '.join('{{args.' + a + '}}' for a in unknown)}; the AnalysisTemplate declares only "
            f"{' and '.join('{{args.' + a + '}}' for a in ANALYSIS_ARGS)}"
        )
    return query


class AnalysisSettings(Model):
    """Canary analysis against Prometheus, for services with `rollout.analysis: true`."""

    prometheus_address: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="Address of the Prometheus the canary analysis queries.",
    )
    # PromQL returning the success ratio (0..1) of the canary; `{{args.service}}` and
    # `{{args.namespace}}` are filled in by Argo Rollouts.
    success_rate_query: Annotated[str, AfterValidator(_analysis_args_only)] = Field(
        default=(
            'sum(rate(http_requests_total{namespace="{{args.namespace}}",service="{{args.service}}",'
            'code!~"5.."}[2m])) / sum(rate(http_requests_total{namespace="{{args.namespace}}",'
            'service="{{args.service}}"}[2m]))'
        ),
        description=(
            "PromQL giving the canary's success ratio (0 to 1); may use {{args.service}} and {{args.namespace}}."
        ),
    )
    success_threshold: float = Field(
        default=0.99,
        gt=0,
        le=1,
        description="Lowest success ratio a measurement passes with.",
    )
    interval: Duration = Field(default="1m", description="Time between two measurements.")
    failure_limit: int = Field(
        default=2,
        ge=0,
        le=100,
        description="Failed measurements tolerated before the rollout is aborted.",
    )


class ReleaseSettings(Model):
    """Behaviour of the release workflow and the Argo CD Application in this environment."""

    # Minutes the verify step waits for Argo CD to sync and the Rollout to settle.
    verify_timeout_minutes: int = Field(
        default=30,
        ge=1,
        le=240,
        description="Minutes the verify step waits for Argo CD to sync and the Rollout to settle.",
    )
    # Minutes any one workflow pod may run (activeDeadlineSeconds).
    step_timeout_minutes: int = Field(default=45, ge=1, le=480, description="Minutes any one workflow pod may run.")
    # Whether deleting an Application deletes what it deployed (Argo CD's cascading
    # finalizer). Off in live: dropping a service never deletes the running service.
    cascade_delete: bool = Field(
        default=True,
        description="Deleting an Application deletes what it deployed (off in live).",
    )
    # Newest-wins releases for every service of this stack that does not set its own
    # `newestWins` (components.workflows). Off by default.
    newest_wins: bool = Field(
        default=False,
        description="Newest-wins releases for every service that does not set its own newestWins.",
    )
    # Pods of every service's Rollout that sets neither `rollout.replicas` nor its
    # `rollout.replicasByEnvironment` entry. Unset: per service, the fewest that
    # honour its canary steps (components.canary).
    replicas: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "Pods of every Rollout whose service sets no replica count; left out, the fewest its canary steps "
            "need."
        ),
        examples=[3],
    )


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

    namespace: DnsLabel = Field(
        description="Existing namespace the Grafana dashboards sidecar searches.",
        examples=["monitoring"],
    )
    label: LabelKey = Field(default="grafana_dashboard", description="Label the sidecar finds dashboard ConfigMaps by.")
    label_value: LabelValue = Field(default="1", description="Value of that label.")
    # Grafana folder; set only where the sidecar honours a folder annotation and
    # Grafana makes folders from it (`sidecar.dashboards.provider.foldersFromFilesStructure`).
    folder: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_grafana_folder)] | None = Field(
        default=None,
        description="Grafana folder of the dashboard, where the sidecar honours a folder annotation.",
        examples=["Platform"],
    )
    # The chart's `sidecar.dashboards.folderAnnotation`; unset there, k8s-sidecar reads this one.
    folder_annotation: LabelKey = Field(
        default="k8s-sidecar-target-directory",
        description="Annotation the sidecar reads the folder from.",
    )


class MetricsSettings(Model):
    enabled: bool = Field(default=True, description="Serve the controllers' metrics.")
    service_monitor: bool = Field(
        default=False,
        description="Create ServiceMonitors (needs the Prometheus Operator CRDs).",
    )
    # Release metrics (outcomes, stage durations, lead time) emitted by the release
    # WorkflowTemplates through the Argo Workflows controller (components.workflows;
    # dashboards/release-pipeline.json). Needs `enabled`. Off by default.
    release_metrics: bool = Field(
        default=False,
        description="Release metrics (outcomes, stage durations, lead time) from the release workflows; needs enabled.",
    )
    # dashboards/release-pipeline.json provisioned for Grafana's dashboards sidecar.
    # Needs `releaseMetrics`. Off by default.
    grafana_dashboard: GrafanaDashboard | None = Field(
        default=None,
        description="Provision the release dashboard for Grafana's dashboards sidecar; needs releaseMetrics.",
    )

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

    environment: Environment = Field(
        description="Upstream stack whose image of the same commit is copied instead of rebuilt.",
    )
    # Default: this stack's `aws.accountId` / `aws.region`.
    account_id: Annotated[str, Field(pattern=ACCOUNT_PATTERN)] | None = Field(
        default=None,
        description="The upstream stack's AWS account; left out, this stack's.",
        examples=["210987654321"],
    )
    region: Annotated[str, Field(pattern=REGION_PATTERN)] | None = Field(
        default=None,
        description="The upstream stack's AWS region; left out, this stack's.",
        examples=["eu-central-1"],
    )
    # The upstream stack's `ecr.repositoryPrefix` (default: its environment name).
    repository_prefix: Annotated[str, Field(pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*$")] | None = Field(
        default=None,
        description="The upstream stack's ecr.repositoryPrefix; left out, its environment name.",
        examples=["integration"],
    )
    # Repository namespace of the pull-through cache (another account or region only).
    cache_prefix: Annotated[str, Field(pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*$", max_length=30)] = Field(
        default="promoted",
        description="Repository namespace of the pull-through cache (another account or region only).",
    )

    @property
    def upstream_prefix(self) -> str:
        return self.environment if self.repository_prefix is None else self.repository_prefix


class Settings(Model):
    """`release-pipeline:settings` of one stack: everything that differs per environment."""

    environment: Environment = Field(description="The stack's environment; must be the stack's name.")
    # A valid git branch name (no '..', '//', leading/trailing '/', '.lock'); left out, the
    # branch map's (config_keys.BRANCH_MAP); another one needs `branchDeparture: deliberate`.
    branch: GitBranch = Field(
        description=(
            "Branch whose merges this stack releases; left out, the branch map's (another needs branchDeparture)."
        ),
        examples=["main"],
    )
    branch_departure: Literal["deliberate"] | None = Field(
        default=None,
        description="Confirms a branch other than the branch map's is meant.",
    )
    helm_branch: GitBranch = Field(
        description="Branch of the helm repositories the promote step commits to and Argo CD deploys from.",
        examples=["env/dev"],
    )
    values_file: RelPathBelowRoot = Field(
        default="values.yaml",
        description="Values file the promote step edits in each chart, unless a service names its own.",
    )
    aws: AwsSettings = Field(description="AWS account and region of the stack.")
    cluster: ClusterSettings = Field(description="The stack's EKS cluster.")
    identity: Annotated[PodIdentity | Irsa, Field(discriminator="mode")] = Field(
        default=PodIdentity(),
        description="How platform pods get their IAM roles.",
    )
    ecr: EcrSettings = Field(default=EcrSettings(), description="The stack's ECR repositories.")
    github: GithubSettings = Field(description="The GitHub organization.")
    helm_writer: HelmWriterSettings = Field(
        description="This environment's GitHub App, the only identity allowed onto its helm branch.",
    )
    hostnames: Hostnames = Field(description="Public host names of the event intake and the UIs.")
    namespaces: Namespaces = Field(default=Namespaces(), description="The platform's namespaces.")
    slack: SlackSettings = Field(description="Where release notices go.")
    canary: CanarySteps = Field(
        min_length=1,
        description="The stack's canary steps, for every service without its own.",
        examples=[[{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 50}, {"pause": {}}]],
    )
    ingress: IngressSettings = Field(default=IngressSettings(), description="How the hosts are exposed.")
    sso: SsoSettings = Field(description="Sign-in to Argo CD and Argo Workflows through Dex's GitHub connector.")
    rbac: RbacSettings = Field(default=RbacSettings(), description="Who may do what in Argo CD and Argo Workflows.")
    event_bus: EventBusSettings = Field(default=EventBusSettings(), description="The JetStream EventBus.")
    argocd: ArgoCdSettings = Field(default=ArgoCdSettings(), description="How Argo CD itself runs.")
    sizes: Sizes = Field(default=Sizes(), description="Replicas and resources of each platform component.")
    metrics: MetricsSettings = Field(
        default=MetricsSettings(),
        description="Metrics of the controllers and of the releases.",
    )
    tool_images: ToolImages = Field(description="Where the project's own tool images are pushed.")
    analysis: AnalysisSettings = Field(
        default=AnalysisSettings(),
        description="Canary analysis against Prometheus, for services with rollout.analysis.",
    )
    release: ReleaseSettings = Field(
        default=ReleaseSettings(),
        description="Behaviour of the release workflow and the Argo CD Application.",
    )
    # Build once, promote many: reuse the upstream stack's image of the same commit. Off.
    promote_from: PromoteFrom | None = Field(
        default=None,
        description="Build once, promote many: reuse the upstream stack's image of the same commit (off).",
    )

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

    @model_validator(mode="before")
    @classmethod
    def _branch_from_the_map(cls, data: object) -> object:
        return config_keys.with_map_branch(data)

    @model_validator(mode="after")
    def _argocd_ha_replicates_its_servers(self) -> Self:
        if not self.argocd.ha:
            return self
        short = [
            f"sizes.{alias}.replicas is {getattr(self.sizes, key).replicas}"
            for key, alias in ARGOCD_HA_SIZES.items()
            if getattr(self.sizes, key).replicas < ARGOCD_HA_MIN_REPLICAS
        ]
        if short:
            raise ValueError(
                f"argocd.ha needs at least {ARGOCD_HA_MIN_REPLICAS} replicas of the Argo CD API server, repo "
                f"server and ApplicationSet controller, but {', '.join(short)}; raise them or set argocd.ha: false"
            )
        return self

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


def _shown(value: object) -> str:
    """A value as a message repeats it: repr, cut short with an ellipsis when long."""
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX]}..."


# Strict types (Model): what an integer or boolean field says when given something else.
# YAML 1.1 reads on/off/yes/no unquoted as booleans.
_STRICT_TYPE_MESSAGES: dict[str, Callable[[object], str]] = {
    "int_type": lambda got: (
        f"must be a whole number, not {_shown(got)}" + (" (YAML reads on/off/yes/no/true/false as booleans)"
                                                        if isinstance(got, bool) else "")
    ),
    "bool_type": lambda got: f"must be true or false (unquoted), not {_shown(got)}",
    # Never pydantic's "instance of <Class>": the file has mappings, not classes.
    "model_type": lambda got: f"must be a mapping of fields (key: value lines below it), not {_shown(got)}",
    "model_attributes_type": lambda got: f"must be a mapping of fields (key: value lines below it), not {_shown(got)}",
    "dict_type": lambda got: f"must be a mapping (key: value), not {_shown(got)}",
    "string_type": lambda got: f"must be text, not {_shown(got)}" + (
        " (quote it: YAML reads it as a number or a boolean)" if isinstance(got, int | float) else ""
    ),
}


def _problems_from(
    err: ValidationError, file: str, loaded: Loaded | None, base: tuple[str | int, ...],
    describe: Describe, model: type[BaseModel],
) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where, field = describe(loc)
        line = loaded.line_of(base + loc) if loaded else None
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown field" + config_keys.did_you_mean(str(loc[-1]), config_keys.known_fields(model, loc))
        elif e["type"] in _STRICT_TYPE_MESSAGES:
            message = _STRICT_TYPE_MESSAGES[e["type"]](e["input"])
        elif e["type"] == "string_pattern_mismatch" and e.get("ctx", {}).get("pattern") == IMAGE_PATTERN:
            message = _image_message(e["input"])
        elif e["type"] == "string_pattern_mismatch" and e.get("ctx", {}).get("pattern") in _PATTERN_MESSAGES:
            message = f"{_PATTERN_MESSAGES[e['ctx']['pattern']]}, not {_shown(e['input'])}"
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
            where = f"service {_shown(name)}" if name else f"service #{index + 1}"
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
    duplicates = _duplicate_names(data, file, loaded)
    try:
        services = ServicesFile.model_validate(data, context={NAMES_CHECKED: True})
    except ValidationError as err:
        found = _problems_from(err, file, loaded, (), _describe_service_loc(data), ServicesFile)
        raise ConfigError(duplicates + found) from None
    if duplicates:
        raise ConfigError(duplicates)
    return services


def _duplicate_names(data: dict[str, object], file: str, loaded: Loaded) -> list[Problem]:
    """A problem at each later entry that repeats an earlier service's name."""
    entries = data.get("services")
    first_line: dict[str, int | None] = {}
    problems = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        line = loaded.line_of(("services", index, "name"))
        if name not in first_line:
            first_line[name] = line
            continue
        earlier = f"the service on line {first_line[name]}" if first_line[name] else "an earlier service"
        problems.append(Problem(
            file, line, f"service {_shown(name)}", "name",
            f"{name!r} is already the name of {earlier}; a name is the service's own (it names its Sensor, "
            "WorkflowTemplates, Rollout and Applications): rename this one",
        ))
    return problems


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
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError([Problem(str(path), None, "services file", "",
                                   f"cannot read: {err.strerror}")]) from None
    text, problems = decode_utf8(raw, str(path))
    if text is None:
        raise ConfigError(problems)
    return parse_services(text, str(path))


def _settings_describe(loc: tuple[str | int, ...]) -> tuple[str, str]:
    return "settings", ".".join(str(p) for p in loc)


def parse_settings(data: object, file: str, loaded: Loaded | None = None,
                   base: tuple[str | int, ...] = ()) -> Settings:
    """Validate a settings object (from a stack file or from Pulumi config)."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_problems_from(err, file, loaded, base, _settings_describe, Settings)) from None
    return settings


def _on_the_branch_map(settings: Settings, file: str, loaded: Loaded | None = None,
                       base: tuple[str | int, ...] = ()) -> Settings:
    """``settings`` when its branch is the branch map's or departs from it deliberately."""
    departure = config_keys.departure_problem(settings.environment, settings.branch, settings.branch_departure)
    if departure:
        field, message = departure
        line = (loaded.line_of((*base, field)) or loaded.line_of(base)) if loaded else None
        raise ConfigError([Problem(file, line, "settings", field, message)])
    return settings


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def project_name(project_dir: Path) -> str:
    """The project's name from `Pulumi.yaml`, which must be `PROJECT`.

    The program reads its config as `release-pipeline:<key>` (`pulumi.Config(PROJECT)`
    in __main__.py, and the policy pack likewise), while `pulumi config set` and a bare
    key in a stack file use the project's name: any other name would leave the program
    without its settings and secrets. Without a `Pulumi.yaml` (a copy of the stack files
    alone) the name is taken to be `PROJECT`.
    """
    path = project_dir / "Pulumi.yaml"
    if not path.exists():
        return PROJECT
    loaded, problems = load_yaml_file(path)
    if loaded is None:
        raise ConfigError(problems)
    name = loaded.data.get("name") if isinstance(loaded.data, dict) else None
    if name != PROJECT:
        shown = "missing" if name is None else f"is {_shown(name)}"
        raise ConfigError([Problem(
            str(path), loaded.line_of(("name",)) or 1, "project", "name",
            f"{shown}; must be {PROJECT!r}: the program reads its config as '{PROJECT}:<key>' "
            "(settings, githubToken, ...), and Pulumi files a stack's config under the project's name",
        )])
    return name


def _encrypted(value: object) -> bool:
    """A config value as `pulumi config set --secret` writes it: `{secure: <ciphertext>}`."""
    return isinstance(value, dict) and set(value) == {"secure"}


def _misplaced_config(path: Path, loaded: Loaded, config: Mapping[str, object], project: str) -> list[Problem]:
    """Keys that must not be in a stack file: a config secret in plain text, and the
    render's services-file key."""
    misplaced = [
        Problem(str(path), loaded.line_of(("config", spelled)), "secrets", spelled,
                f"is in plain text in the stack file; remove it and run `pulumi config set --secret {name}`, "
                "which stores it encrypted as `secure:`")
        for name in SECRET_CONFIG_KEYS
        for spelled in (f"{project}:{name}", name)
        if spelled in config and not _encrypted(config[spelled])
    ]
    # The render hands `--services` to the program through this key; in a stack file it
    # would point `pulumi up` at another file than the one `check` validates.
    services_keys = (f"{project}:{SERVICES_FILE_KEY}", SERVICES_FILE_KEY)
    misplaced += [
        Problem(str(path), loaded.line_of(("config", spelled)), "settings", spelled,
                "is not a stack setting: every stack reads services.yaml (the offline render's "
                "--services sets it for a render only)")
        for spelled in services_keys
        if spelled in config
    ]
    # Any other key of the project is one the program would never read: a typo, most likely.
    misplaced += config_keys.unknown_key_problems(
        str(path), config, project, lambda spelled: loaded.line_of(("config", spelled)), refused=services_keys,
    )
    return misplaced


def own_stack_file_problems(project_dir: Path, stack: str) -> list[Problem]:
    """What `pulumi up` of `stack` refuses in its own stack file, beyond the settings
    Pulumi hands it: the keys `_misplaced_config` names. A missing or unparsable file
    is left to Pulumi, which reads it first."""
    path = stack_file(project_dir, stack)
    if not path.is_file():
        return []
    loaded, _ = load_yaml_file(path)
    config = loaded.data.get("config") if loaded is not None and isinstance(loaded.data, dict) else None
    if loaded is None or not isinstance(config, dict):
        return []
    return _misplaced_config(path, loaded, config, PROJECT)


def load_stack_settings(project_dir: Path, stack: str) -> Settings:
    """Read `Pulumi.<stack>.yaml` and validate its settings object.

    As Pulumi does, the key `settings` without a namespace is the project's
    (`<project>:settings`); the file may spell it one way, not both.
    """
    project = project_name(project_dir)
    path = stack_file(project_dir, stack)
    loaded, problems = load_yaml_file(path)
    if loaded is None:
        raise ConfigError(problems)
    config = loaded.data.get("config") if isinstance(loaded.data, dict) else None
    key = f"{project}:{SETTINGS_KEY}"
    present = [k for k in (key, SETTINGS_KEY) if isinstance(config, dict) and k in config]
    if not isinstance(config, dict) or not present:
        raise ConfigError([Problem(str(path), None, "settings", "",
                                   f"missing 'config: {key}:'")])
    if len(present) > 1:
        raise ConfigError([Problem(
            str(path), loaded.line_of(("config", SETTINGS_KEY)), "settings", "",
            f"set twice, as '{key}' and as '{SETTINGS_KEY}' (Pulumi reads both as '{key}'); keep one",
        )])
    misplaced = _misplaced_config(path, loaded, config, project)
    if misplaced:
        raise ConfigError(misplaced)
    key = present[0]
    settings = parse_settings(config[key], str(path), loaded, ("config", key))
    if settings.environment != stack:
        raise ConfigError([Problem(str(path), loaded.line_of(("config", key, "environment")),
                                   "settings", "environment",
                                   f"is {settings.environment!r} in the file of stack {stack!r}")])
    return _on_the_branch_map(settings, str(path), loaded, ("config", key))


def settings_from_pulumi_config(raw: str | Mapping[str, object], stack: str) -> Settings:
    """Validate the settings object as Pulumi hands it to the program (JSON)."""
    data = json.loads(raw) if isinstance(raw, str) else raw
    return _on_the_branch_map(parse_settings(data, f"Pulumi.{stack}.yaml"), f"Pulumi.{stack}.yaml")


# Settings no two stacks may share: (what the message calls it, the field, the value
# that must differ, as the message shows it; why).
_PER_STACK: tuple[tuple[str, str, Callable[[Settings], str], str], ...] = (
    ("cluster", "cluster", lambda s: _shown((s.aws.account_id, s.aws.region, s.cluster.name)),
     " (they would fight over CRDs, cluster roles and Argo CD)"),
    ("branch", "branch", lambda s: _shown(s.branch), ""),
    ("helm branch", "helmBranch", lambda s: _shown(s.helm_branch), ""),
    ("ECR repository prefix in the same account and region", "ecr.repositoryPrefix",
     lambda s: f"{_shown(s.ecr_prefix)} in account {s.aws.account_id}, region {s.aws.region}",
     " (both would create the same ECR repositories); give each stack its own ecr.repositoryPrefix "
     "(default: the environment name)"),
)


def cross_stack_problems(settings: Mapping[str, Settings], project_dir: Path) -> list[Problem]:
    """Rules that span stacks: one cluster, branch, helm branch, ECR repository prefix
    (per account and region) and host name per stack, and a `promoteFrom` that names its
    upstream stack's actual registry."""
    problems = _promote_from_problems(settings, project_dir)
    for label, field, key, why in _PER_STACK:
        owners: dict[str, list[str]] = {}
        for stack, s in sorted(settings.items()):
            owners.setdefault(key(s), []).append(stack)
        for value, stacks in sorted(owners.items(), key=lambda kv: kv[1]):
            for stack in stacks[1:]:
                problems.append(Problem(
                    str(stack_file(project_dir, stack)), None, "settings", field,
                    f"same {label} as stack {stacks[0]!r}: {value}{why}",
                    involves=(stacks[0],),
                ))
    # Host names: each is one stack's (webhooks and sign-in callbacks go to one cluster).
    hosts: dict[str, list[tuple[str, str]]] = {}
    for stack, s in sorted(settings.items()):
        for field, host in s.hostnames.model_dump(by_alias=True).items():
            hosts.setdefault(host, []).append((stack, field))
    for host, users in sorted(hosts.items()):
        first_stack, first_field = users[0]
        for stack, field in users[1:]:
            if stack != first_stack:
                problems.append(Problem(
                    str(stack_file(project_dir, stack)), None, "settings", f"hostnames.{field}",
                    f"same host name as stack {first_stack!r} (hostnames.{first_field}): {_shown(host)}; "
                    "every stack needs host names of its own",
                    involves=(first_stack,),
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
        problems += _replica_problems(s, settings, file)
        if _releases_itself(s, settings):
            problems.append(Problem(
                file, None, f"service {s.name!r}", "triggerOnPush",
                f"every release would start the next: its promote commit to {settings.helm_branch!r} of "
                f"{s.helm.repo} is a push to the branch it releases from, touching its path "
                f"({s.path or 'the whole repository'}); keep the chart outside the service's path, "
                "or release on merged pull requests only",
            ))
    return problems


def _replica_problems(service: Service, settings: Settings, file: str) -> list[Problem]:
    """A replica count the service's replica-weighted canary steps cannot be carried out with.

    Only without traffic routing (then the weights are pod counts) and without an HPA
    (its count is not known here); the rule is `components.canary`'s.
    """
    replicas, source = service.replicas_and_source_in(settings)
    if replicas is None or service.rollout.traffic_routing:
        return []
    env = settings.environment
    steps = "the service's canary." + env if env in service.canary else "the stack's canary"
    weights = [s.set_weight for s in service.canary_in(settings) if s.set_weight is not None]
    unhonoured = canary.unhonoured_steps(weights, replicas)
    if not unhonoured:
        return []
    field = source if source.startswith("rollout.") else "rollout.replicas"
    return [Problem(
        file, None, f"service {service.name!r}", field,
        f"in {env}, {replicas} replica{'s' * (replicas != 1)} ({source}) cannot carry out {steps} "
        f"(setWeight {', '.join(str(w) for w in weights)}): {'; '.join(unhonoured)}. Without traffic "
        "routing setWeight w runs ceil(w x replicas / 100) canary pods, so each weight needs a count of "
        f"its own and every weight below 100 must leave a stable pod: give {env} a count that does "
        f"(rollout.replicasByEnvironment.{env}, or rollout.replicas for every environment), the fewest "
        f"being {canary.fewest_replicas(weights)}; or change the steps, or use rollout.trafficRouting",
    )]


def _releases_itself(service: Service, settings: Settings) -> bool:
    """Whether the promote commit of a `triggerOnPush` service would trigger it again:
    the chart lives in the source repository, on the same branch, under the service's path."""
    if not service.trigger_on_push or settings.helm_branch != settings.branch:
        return False
    if service.helm.repo.lower() != service.repo.lower():
        return False
    values = PurePosixPath(service.helm.path, service.helm.values_file or settings.values_file)
    return not service.path or values.is_relative_to(service.path)


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

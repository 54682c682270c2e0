"""The models of `services.yaml`: one `Service` per deployable service (where its code,
image and chart are, its tests and build, its canary and Slack options) and the whole
`ServicesFile` with the rules across its services (unique names and image
repositories, one spelling per GitHub owner and repository, one Rollout per
Deployment).

Owns: what a service may say, and what it resolves to in a stack (`canary_in`,
`replicas_in`, `newest_wins_in`, ...). Does not own: how the Rollout and the image
updater are set up (`components.config.service_options`), reading the file
(`components.config.loading`), nor the rules that need a stack's settings too
(`components.config.rules`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Self

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from components import canary, names
from components.config.fields import (
    STACKS,
    CanaryStep,
    CanarySteps,
    Dns1035Label,
    DnsLabel,
    EcrName,
    Environment,
    GithubRepo,
    Model,
    NamespaceName,
    NoTemplate,
    PinnedImage,
    RelPath,
    RelPathBelowRoot,
    _not_empty,
    _some_steps,
)
from components.config.service_options import ImageUpdaterOptions, RolloutOptions

if TYPE_CHECKING:
    from components.config.settings import Settings

# Validation context: the caller has reported duplicate service names itself, with lines.
NAMES_CHECKED = "names_checked"


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

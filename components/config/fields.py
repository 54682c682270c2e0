"""Building blocks of every config model: the base `Model`, the environments, the
validated field types (DNS labels, repositories, paths, branches, pinned images,
durations, label keys), the canary steps both a service and a stack may set, and how a
message repeats a value (`_shown`).

Owns: what a single value may be, whichever model holds it. Does not own: the models
of services.yaml (`components.config.services`) or of the settings
(`components.config.settings*`), nor how a refusal is worded for the file
(`components.config.messages`).

Names with a leading underscore are private to the package `components.config`. The
validators keep their names: `components.settings_reference.VALIDATOR_WORDS` says each
one in words, by name.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from components import names

Environment = Literal["dev", "sandbox", "integration", "live"]
STACKS: tuple[Environment, ...] = ("dev", "sandbox", "integration", "live")

# Longest value (as repr) an error message repeats in full; longer ones end in "...".
SHOWN_MAX = 100


def _shown(value: object) -> str:
    """A value as a message repeats it: repr, cut short with an ellipsis when long."""
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX]}..."


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
# Patterns whose mismatch is explained in words (`components.config.messages`), not as the regex.
DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h)$"
REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"
ACCOUNT_PATTERN = r"^[0-9]{12}$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|Ki|Mi|Gi|Ti)?$"
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
IMAGE_PATTERN = (r"^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9._-]+)(@sha256:[a-f0-9]{64})?$|"
                 r"^[a-z0-9][a-z0-9._/:-]*@sha256:[a-f0-9]{64}$")
Image = Annotated[
    str,
    Field(pattern=IMAGE_PATTERN, description="a container image pinned by tag or digest ('latest' is refused)"),
]


def _not_latest(value: str) -> str:
    tag = value.split("@", 1)[0].rsplit("/", 1)[-1]
    if tag.endswith(":latest"):
        raise ValueError("must be pinned: the tag 'latest' moves")
    return value


PinnedImage = Annotated[Image, AfterValidator(_not_latest)]


# Kubernetes label keys ([prefix/]name) and values, as a Service selector takes them.
LabelKey = Annotated[
    str,
    Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"),
]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


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

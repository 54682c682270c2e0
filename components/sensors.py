"""The Sensor of each service: which GitHub deliveries start a release, and the Workflow they start.

Owns, per service and stack, the Sensor `<service>` in the events namespace:
- the dependency `merged`: a pull request of the service's repository merged into
  this environment's branch (and, with `trigger_on_push`, the dependency `pushed`: a
  push to that branch), each held by anchored, exact data filters;
- one `k8s` trigger that creates the release Workflow of the contract
  (docs/release-contract.md, section 1) in the workflows namespace, named
  `names.workflow_name_prefix(service, env)` + the commit sha, its arguments either
  held to a shape by a filter or carried base64-encoded;
- the Sensor pod: ServiceAccount `names.SENSOR_SERVICE_ACCOUNT`, resources from
  `settings.sizes.sensor`, the `restricted` Pod Security settings.

Does not own: the EventBus and the `github` EventSource (`components.events`; the
component takes their names as EventIntake Outputs, so a Sensor is created after and
deleted before them), event names (`components.intake`), the ServiceAccount and its
Role that may create Workflows (`components.access`), the WorkflowTemplate the
Workflow refers to, the names (`components.names`).

Decisions: docs/decisions/0411-sensor-filters-anchored-and-exact.md,
docs/decisions/0412-one-release-per-commit-at-least-once.md,
docs/decisions/0100-payload-base64-from-the-sensor.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from hera.events.models import Container as EventsContainer
from hera.events.models import (
    DataFilter,
    EventDependency,
    EventDependencyFilter,
    Sensor,
    SensorSpec,
    TriggerParameter,
    TriggerParameterSource,
    TriggerTemplate,
)
from hera.events.models import Template as PodTemplate
from hera.events.models import Trigger as EventsTrigger
from hera.events.models.io.k8s.api.core.v1 import (
    Capabilities,
    PodSecurityContext,
    ResourceRequirements,
    SeccompProfile,
    SecurityContext,
)
from hera.events.models.io.k8s.apimachinery.pkg.apis.meta.v1 import ObjectMeta
from hera.workflows import models as wf

from components import events, intake, names
from components.config import Service, Settings

TYPE = "release-pipeline:components:ServiceSensor"

API_VERSION = "argoproj.io/v1alpha1"
TRIGGER_NAME = "release"
MERGED = "merged"
PUSHED = "pushed"
# The argo-events image's user (as the EventSource's, components.events.EVENTSOURCE_UID).
SENSOR_UID = 9731

GITHUB_EVENT_HEADER = "headers.X-Github-Event.0"  # canonical header key; values are lists
SHA = f"^[0-9a-f]{{{names.GIT_SHA_LENGTH}}}$"
# A pull request number as gjson prints it (digits, no sign, no exponent).
PR_NUMBER = "^[1-9][0-9]{0,9}$"
# What every encoded argument starts with (docs/decisions/0100-payload-base64-from-the-sensor.md).
ENCODED_PREFIX = "b64:"

SERVICE_LABEL = "release-pipeline/service"
ENVIRONMENT_LABEL = "release-pipeline/environment"

# The release Workflow's arguments, in this order (docs/release-contract.md, section 1).
ARGUMENTS: tuple[str, ...] = ("revision", "pr-number", "pr-title", "author", "repository", "trigger")

# Per dependency: argument -> where its value comes from. A `str` is a gjson path into
# the event data (`dataKey`), only for values a filter holds to a safe shape; `Encoded`
# is a path whose text is carried base64-encoded; a `Constant` is a fixed value. Arguments a dependency does
# not list keep the Workflow's empty default ("" pr-number and pr-title for a push).
# The revision (filtered to 40 hex) is also appended to the Workflow's name.


@dataclass(frozen=True)
class Constant:
    """A fixed argument value (plain text: no template actions)."""

    value: str

    def __post_init__(self) -> None:
        if "{{" in self.value:
            raise ValueError(f"a constant must not contain template actions: {self.value!r}")


@dataclass(frozen=True)
class Encoded:
    """Payload text at a gjson path of plain keys, carried as `ENCODED_PREFIX` + base64."""

    path: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", self.path):
            raise ValueError(f"an encoded path must be dot-separated plain keys: {self.path!r}")

    @property
    def template(self) -> str:
        # `toString`: a forged non-string value is encoded too instead of failing the trigger.
        return f"{ENCODED_PREFIX}{{{{ .Input.{self.path} | toString | b64enc }}}}"


Source = str | Constant | Encoded

PR_REVISION = "body.pull_request.merge_commit_sha"
PR_NUMBER_PATH = "body.pull_request.number"
PUSH_REVISION = "body.after"  # for a merge, equal to the PR's merge_commit_sha
PR_ARGUMENTS: dict[str, Source] = {
    "revision": PR_REVISION,
    "pr-number": PR_NUMBER_PATH,  # filtered to digits; sjson sets it as the string "2"
    "pr-title": Encoded("body.pull_request.title"),
    "author": Encoded("body.pull_request.user.login"),
    "repository": Encoded("body.repository.full_name"),
    "trigger": Constant("pull_request"),
}
PUSH_ARGUMENTS: dict[str, Source] = {
    "revision": PUSH_REVISION,
    "author": Encoded("body.pusher.name"),
    "repository": Encoded("body.repository.full_name"),
    "trigger": Constant("push"),
}
# The arguments carried encoded, and those a filter holds to a shape (decisions 0100, 0411).
ENCODED_ARGUMENTS: tuple[str, ...] = ("pr-title", "author", "repository")
SHAPE_CHECKED_ARGUMENTS: tuple[str, ...] = ("revision", "pr-number")

# Transient API errors (a restarting API server, throttling): three attempts about 2s
# and 4s apart. Hand-written: hera types `duration` as an object and `factor`/`jitter`
# as base64 bytes, while the controller decodes a duration string and JSON numbers.
RETRY_STRATEGY: dict[str, Any] = {"steps": 3, "duration": "2s", "factor": 2, "jitter": 0.2}

Manifest = dict[str, Any]


# ------------------------------------------------------------------ pure builders


def _dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, exclude_none=True)


_GO_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def go_quote_meta(text: str) -> str:
    """Go's `regexp.QuoteMeta`: a backslash before each of `\\.+*?()|[]{}^$`.

    Python's `re.escape` also escapes characters such as space, which Go rejects
    (`\\ ` is an invalid escape in RE2), so it is not used.
    """
    return _GO_META.sub(r"\\\1", text)


def exactly(text: str) -> str:
    """A Go regexp that matches `text` and nothing else."""
    return f"^{go_quote_meta(text)}$"


def repository_pattern(repo: str) -> str:
    """Matches `owner/name` exactly, in any letter case (GitHub names ignore case)."""
    return f"^(?i:{go_quote_meta(repo)})$"


def _string(path: str, pattern: str) -> DataFilter:
    return DataFilter(path=path, type="string", value=[pattern])


def _bool(path: str, value: bool) -> DataFilter:
    # `value` is []string upstream: "true"/"false", never a YAML boolean.
    return DataFilter(path=path, type="bool", value=["true" if value else "false"])


def merged_filters(service: Service, settings: Settings) -> list[DataFilter]:
    """A pull request of the service's repository, merged into the environment's branch."""
    return [
        _string(GITHUB_EVENT_HEADER, exactly("pull_request")),
        _string("body.action", exactly("closed")),
        _bool("body.pull_request.merged", True),
        _string("body.pull_request.base.ref", exactly(settings.branch)),
        _string("body.repository.full_name", repository_pattern(service.repo)),
        _string(PR_REVISION, SHA),
        # A string filter sees what `dataKey` passes on (gjson's text of the value).
        _string(PR_NUMBER_PATH, PR_NUMBER),
    ]


def pushed_filters(service: Service, settings: Settings) -> list[DataFilter]:
    """A push to the environment's branch of the service's repository (not a deletion)."""
    return [
        _string(GITHUB_EVENT_HEADER, exactly("push")),
        _string("body.ref", exactly(f"refs/heads/{settings.branch}")),
        _string("body.repository.full_name", repository_pattern(service.repo)),
        # A deleted branch has `after` = 40 zeros, which is hex: `deleted` decides.
        _bool("body.deleted", False),
        _string(PUSH_REVISION, SHA),
    ]


def _dependency(name: str, service: Service, filters: list[DataFilter]) -> EventDependency:
    return EventDependency(
        name=name,
        event_source_name=intake.EVENTSOURCE_NAME,
        event_name=intake.event_name(service.repo),
        filters=EventDependencyFilter(data=filters),
    )


def workflow_resource(service: Service, settings: Settings) -> Manifest:
    """The Workflow the trigger creates, before the event's values are filled in.

    `metadata.name` is the static prefix; the trigger appends the commit sha.
    """
    env = settings.environment
    workflow = wf.Workflow(
        api_version=API_VERSION,
        kind="Workflow",
        metadata=wf.ObjectMeta(
            name=names.workflow_name_prefix(service.name, env),
            namespace=settings.namespaces.workflows,
            labels={SERVICE_LABEL: service.name, ENVIRONMENT_LABEL: env},
        ),
        spec=wf.WorkflowSpec(
            workflow_template_ref=wf.WorkflowTemplateRef(name=names.release_template_name(service.name)),
            arguments=wf.Arguments(parameters=[wf.Parameter(name=a, value="") for a in ARGUMENTS]),
        ),
    )
    return _dump(workflow)


def _source(dependency: str, source: Source) -> TriggerParameterSource:
    # A template is rendered only when `dependency` fired (see "Payload text" above).
    if isinstance(source, Constant):
        return TriggerParameterSource(dependency_name=dependency, data_template=source.value)
    if isinstance(source, Encoded):
        return TriggerParameterSource(dependency_name=dependency, data_template=source.template)
    return TriggerParameterSource(dependency_name=dependency, data_key=source)


def _parameters(dependency: str, sources: dict[str, Source], revision: str) -> list[TriggerParameter]:
    params = []
    for argument, source in sources.items():
        if isinstance(source, str) and argument not in SHAPE_CHECKED_ARGUMENTS:
            raise ValueError(f"argument {argument!r} is payload text: carry it Encoded, not by dataKey")
        src = _source(dependency, source)
        params.append(TriggerParameter(src=src, dest=f"spec.arguments.parameters.{ARGUMENTS.index(argument)}.value"))
    # The deterministic name: prefix (in the resource) + the filtered 40-hex revision.
    params.append(TriggerParameter(
        src=TriggerParameterSource(dependency_name=dependency, data_key=revision),
        dest="metadata.name",
        operation="append",
    ))
    return params


def _container_security() -> SecurityContext:
    return SecurityContext(
        allow_privilege_escalation=False,
        capabilities=Capabilities(drop=["ALL"]),
        read_only_root_filesystem=True,  # the controller mounts an emptyDir at /tmp
        run_as_non_root=True,
    )


def _pod_security() -> PodSecurityContext:
    return PodSecurityContext(
        run_as_non_root=True,
        run_as_user=SENSOR_UID,
        run_as_group=SENSOR_UID,
        seccomp_profile=SeccompProfile(type="RuntimeDefault"),
    )


def sensor_manifest(service: Service, settings: Settings) -> Manifest:
    """The Sensor `<service>` of one stack (events namespace)."""
    size = settings.sizes.sensor
    dependencies = [_dependency(MERGED, service, merged_filters(service, settings))]
    parameters = _parameters(MERGED, PR_ARGUMENTS, PR_REVISION)
    if service.trigger_on_push:
        dependencies.append(_dependency(PUSHED, service, pushed_filters(service, settings)))
        parameters += _parameters(PUSHED, PUSH_ARGUMENTS, PUSH_REVISION)
    model = Sensor(
        metadata=ObjectMeta(
            name=names.check_k8s_name(service.name),
            namespace=settings.namespaces.events,
            labels=events.MANAGED_BY | {events.ROLE_LABEL: "sensor", SERVICE_LABEL: service.name},
        ),
        spec=SensorSpec(
            event_bus_name=events.EVENTBUS_NAME,
            replicas=size.replicas,
            template=PodTemplate(
                service_account_name=names.SENSOR_SERVICE_ACCOUNT,
                security_context=_pod_security(),
                container=EventsContainer(
                    resources=ResourceRequirements.model_validate(size.resources.model_dump()),
                    security_context=_container_security(),
                ),
            ),
            dependencies=dependencies,
            triggers=[
                EventsTrigger(
                    # Needed for retry_strategy to act at all (decision 0412).
                    at_least_once=True,
                    template=TriggerTemplate(
                        name=TRIGGER_NAME,
                        # One dependency is enough: OR, each fires on its own.
                        conditions=f"{MERGED} || {PUSHED}" if service.trigger_on_push else None,
                    ),
                ),
            ],
        ),
    )
    manifest: Manifest = {"apiVersion": API_VERSION, "kind": "Sensor"} | _dump(model)
    # Hand-written: hera types `source.resource` as base64 bytes (the Go type is raw
    # JSON) and the Backoff fields in shapes the controller does not decode.
    trigger = manifest["spec"]["triggers"][0]
    trigger["template"]["k8s"] = {
        "operation": "create",
        "source": {"resource": workflow_resource(service, settings)},
        "parameters": [_dump(p) for p in parameters],
    }
    trigger["retryStrategy"] = dict(RETRY_STRATEGY)
    return manifest


# --------------------------------------------------------------------- component


@dataclass(frozen=True)
class ServiceSensorArgs:
    """What one service's Sensor is built from."""

    service: Service
    """The service (its name, repository and `trigger_on_push`)."""
    settings: Settings
    """The stack's settings: branch, environment, namespaces, `sizes.sensor`."""
    namespace: pulumi.Input[str]
    """The events namespace, from the Namespaces component (so it is created first)."""
    eventbus_name: pulumi.Input[str]
    """`EventIntake.eventbus_name`: carries the dependency on the EventBus."""
    eventsource_name: pulumi.Input[str]
    """`EventIntake.eventsource_name`: carries the dependency on the EventSource."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Created before the Sensor, deleted after it: the Sensor CRD and the Argo Events
    release (`ArgoPlatform.depends_for("Sensor")`). Not the Access component as a whole:
    that would also wait for the AppProjects, hence for Argo CD. If the Sensor's
    ServiceAccount (made by Access in the same update) is not there yet, its ReplicaSet
    retries creating the pod until it is."""


class ServiceSensor(pulumi.ComponentResource):
    """The Sensor `<service>` that starts the service's release Workflow."""

    sensor_name: str
    sensor: k8s.apiextensions.CustomResource

    def __init__(
        self, name: str, args: ServiceSensorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        manifest = sensor_manifest(args.service, args.settings)
        spec = manifest["spec"]
        # The names as Outputs of the objects they name, so Pulumi orders the Sensor
        # after the EventBus and the EventSource (and deletes it before them: the
        # controller keeps a bus that a Sensor still uses).
        spec["eventBusName"] = args.eventbus_name
        for dependency in spec["dependencies"]:
            dependency["eventSourceName"] = args.eventsource_name
        self.sensor_name = manifest["metadata"]["name"]
        self.sensor = k8s.apiextensions.CustomResource(
            f"{name}-sensor",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"] | {"namespace": args.namespace},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"sensor_name": self.sensor_name})

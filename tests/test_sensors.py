"""Tests of components/sensors.py: the Sensor builder, the component under mocks, whole stacks.

The builder is checked for its shape (names, pod, filters, trigger). Built Sensors the
render does not contain (a branch with regexp metacharacters, the push trigger in every
stack) receive real GitHub payloads of upstream/github-webhooks through Argo Events' own
code (components.upstream_events, via tests/payload_sim.py); argo-events-check validates
every built Sensor; the created Workflow passes `argo lint --offline` against a template.
The rendered Sensors' deliveries are tests/test_sensors_upstream.py's.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components import events, intake, names, sensors
from components.config import STACKS, Service, Settings, load_services, load_stack_settings
from tests.conftest import SERVICES_FILE
from tests.harness import run_under_mocks
from tests.payload_sim import sensor_deliveries
from tests.upstream_events_support import pull_request, push
from tests.upstream_support import argo_lint, beyond_argo_lint, require

PROJECT_DIR = Path(__file__).resolve().parent.parent
SENSOR_TYPE = "kubernetes:argoproj.io/v1alpha1:Sensor"

Manifest = dict[str, Any]


def stack_settings(stack: str = "dev") -> Settings:
    return load_stack_settings(PROJECT_DIR, stack)


def stack_services(stack: str) -> list[Service]:
    return load_services(SERVICES_FILE).for_environment(stack)


def service(repo: str = "Appen/sid_verification_backend_api", name: str = "vbsiv", **extra: Any) -> Service:
    return Service.model_validate({
        "name": name, "repo": repo, "imageRepository": name, "namespace": "team",
        "project": "team", "helm": {"repo": "Appen-International/helm", "path": f"app/{name}"}, **extra,
    })


def with_branch(settings: Settings, branch: str) -> Settings:
    data = settings.model_dump()
    data["branch"] = branch
    return Settings.model_validate(data)


def string_filters(sensor: Manifest) -> list[dict[str, Any]]:
    return [f for d in sensor["spec"]["dependencies"] for f in d["filters"]["data"] if f["type"] == "string"]


def dependency(sensor: Manifest, name: str) -> dict[str, Any]:
    return next(d for d in sensor["spec"]["dependencies"] if d["name"] == name)


def filter_values(sensor: Manifest, dep: str) -> dict[str, list[str]]:
    return {f["path"]: f["value"] for f in dependency(sensor, dep)["filters"]["data"]}


# ------------------------------------------------------------------ pure builder


def test_go_quote_meta_escapes_what_go_escapes_and_nothing_else() -> None:
    assert sensors.go_quote_meta(r"a.b+c*d?e(f)g|h[i]j{k}l^m$n\o") == r"a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o"
    # Python's re.escape would escape these, and Go rejects "\ " (and needs none of them).
    assert sensors.go_quote_meta("feature/x-y_z #1") == "feature/x-y_z #1"
    assert sensors.exactly("release.1") == r"^release\.1$"
    assert sensors.repository_pattern("Appen/my.repo") == r"^(?i:Appen/my\.repo)$"


def test_sensor_names_namespace_bus_and_pod() -> None:
    settings = stack_settings("live")
    sensor = sensors.sensor_manifest(service(), settings)
    assert (sensor["apiVersion"], sensor["kind"]) == ("argoproj.io/v1alpha1", "Sensor")
    assert sensor["metadata"]["name"] == "vbsiv"
    assert sensor["metadata"]["namespace"] == settings.namespaces.events
    spec = sensor["spec"]
    assert spec["eventBusName"] == events.EVENTBUS_NAME
    assert spec["replicas"] == settings.sizes.sensor.replicas
    template = spec["template"]
    assert template["serviceAccountName"] == names.SENSOR_SERVICE_ACCOUNT
    assert template["container"]["resources"] == settings.sizes.sensor.resources.model_dump()
    assert template["securityContext"]["runAsNonRoot"] is True
    assert template["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert template["container"]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def test_merged_dependency_listens_to_the_repository_event() -> None:
    svc = service()
    sensor = sensors.sensor_manifest(svc, stack_settings())
    assert [d["name"] for d in sensor["spec"]["dependencies"]] == ["merged"]
    merged = dependency(sensor, "merged")
    assert merged["eventSourceName"] == intake.EVENTSOURCE_NAME
    assert merged["eventName"] == intake.event_name(svc.repo)
    assert filter_values(sensor, "merged") == {
        "headers.X-Github-Event.0": ["^pull_request$"],
        "body.action": ["^closed$"],
        "body.pull_request.merged": ["true"],
        "body.pull_request.base.ref": ["^development$"],
        "body.repository.full_name": ["^(?i:Appen/sid_verification_backend_api)$"],
        "body.pull_request.merge_commit_sha": ["^[0-9a-f]{40}$"],
        "body.pull_request.number": ["^[1-9][0-9]{0,9}$"],
    }
    assert "conditions" not in sensor["spec"]["triggers"][0]["template"]


@pytest.mark.parametrize("on_push", [False, True])
def test_every_string_filter_is_anchored_and_every_bool_a_string(on_push: bool) -> None:
    sensor = sensors.sensor_manifest(service(trigger_on_push=on_push), with_branch(stack_settings(), "rel.1"))
    for f in string_filters(sensor):
        assert all(v.startswith("^") and v.endswith("$") for v in f["value"]), f
    for d in sensor["spec"]["dependencies"]:
        assert d.get("filtersLogicalOperator", "and") == "and"
        assert d["filters"].get("dataLogicalOperator", "and") == "and"
        for f in d["filters"]["data"]:
            assert all(isinstance(v, str) and v for v in f["value"]), f
            assert "comparator" not in f and "template" not in f
    assert filter_values(sensor, "merged")["body.pull_request.base.ref"] == [r"^rel\.1$"]


def test_push_dependency_only_when_asked() -> None:
    svc = service(trigger_on_push=True)
    sensor = sensors.sensor_manifest(svc, stack_settings("integration"))
    assert [d["name"] for d in sensor["spec"]["dependencies"]] == ["merged", "pushed"]
    assert dependency(sensor, "pushed")["eventName"] == intake.event_name(svc.repo)
    assert filter_values(sensor, "pushed") == {
        "headers.X-Github-Event.0": ["^push$"],
        "body.ref": ["^refs/heads/release$"],
        "body.repository.full_name": ["^(?i:Appen/sid_verification_backend_api)$"],
        "body.deleted": ["false"],
        "body.after": ["^[0-9a-f]{40}$"],
    }
    assert sensor["spec"]["triggers"][0]["template"]["conditions"] == "merged || pushed"


def test_one_k8s_create_trigger_of_the_contract_workflow() -> None:
    settings = stack_settings("sandbox")
    sensor = sensors.sensor_manifest(service(), settings)
    [trigger] = sensor["spec"]["triggers"]
    assert trigger["template"]["name"] == sensors.TRIGGER_NAME
    assert trigger["atLeastOnce"] is True  # without it, retryStrategy never sees an error
    assert trigger["retryStrategy"] == {"steps": 3, "duration": "2s", "factor": 2, "jitter": 0.2}
    assert "policy" not in trigger
    k8s_trigger = trigger["template"]["k8s"]
    assert k8s_trigger["operation"] == "create"
    assert k8s_trigger["source"]["resource"] == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": names.workflow_name_prefix("vbsiv", "sandbox"),
            "namespace": settings.namespaces.workflows,
            "labels": {"release-pipeline/service": "vbsiv", "release-pipeline/environment": "sandbox"},
        },
        "spec": {
            "workflowTemplateRef": {"name": names.release_template_name("vbsiv")},
            "arguments": {"parameters": [{"name": a, "value": ""} for a in
                                         ("revision", "pr-number", "pr-title", "author", "repository", "trigger")]},
        },
    }


ENCODED_TEMPLATE = re.compile(r"^b64:\{\{ \.Input\.[A-Za-z0-9_.]+ \| toString \| b64enc \}\}$")


@pytest.mark.parametrize("on_push", [False, True])
def test_payload_text_is_encoded_and_only_shape_checked_values_go_plain(on_push: bool) -> None:
    sensor = sensors.sensor_manifest(service(trigger_on_push=on_push), stack_settings())
    params = sensor["spec"]["triggers"][0]["template"]["k8s"]["parameters"]
    assert "parameters" not in sensor["spec"]["triggers"][0]  # nothing patches the trigger itself
    argument = {f"spec.arguments.parameters.{i}.value": a for i, a in enumerate(sensors.ARGUMENTS)}
    filtered = {path for d in sensor["spec"]["dependencies"] for path, _ in
                [(f["path"], f["value"]) for f in d["filters"]["data"]]}
    for p in params:
        src = p["src"]
        assert set(src) <= {"dependencyName", "dataKey", "dataTemplate"}, p
        assert ("dataKey" in src) != ("dataTemplate" in src), p
        name = argument.get(p["dest"], p["dest"])
        if "dataKey" in src:
            # Plain only where a filter holds the value to a shape (hex sha, digits).
            assert name in {"revision", "pr-number", "metadata.name"}, p
            assert src["dataKey"] in filtered, p
        elif name == "trigger":
            assert src["dataTemplate"] in {"pull_request", "push"}
        else:
            assert name in {"pr-title", "author", "repository"}, p
            assert ENCODED_TEMPLATE.fullmatch(src["dataTemplate"]), p
    names_ = [p for p in params if p["dest"] == "metadata.name"]
    assert [(p["operation"], p["src"]["dataKey"]) for p in names_] == (
        [("append", "body.pull_request.merge_commit_sha")] + ([("append", "body.after")] if on_push else [])
    )
    # Nothing the payload says reaches the manifest itself.
    assert "{{" not in json.dumps(sensor["spec"]["triggers"][0]["template"]["k8s"]["source"])


def test_constants_cannot_be_templates() -> None:
    with pytest.raises(ValueError, match="template"):
        sensors.Constant("{{ .Input.body.ref }}")


def test_payload_text_cannot_be_taken_plain() -> None:
    with pytest.raises(ValueError, match="payload text"):
        sensors._parameters("merged", {"pr-title": "body.pull_request.title"}, sensors.PR_REVISION)
    with pytest.raises(ValueError, match="plain keys"):
        sensors.Encoded("body.pull_request.title }}{{ .Input")


def test_workflow_name_fits_a_label_for_long_service_names() -> None:
    long_name = "a-very-long-service-name-that-is-fifty-characters"
    sensor = sensors.sensor_manifest(service(name=long_name), stack_settings("integration"))
    prefix = sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"]["metadata"]["name"]
    assert len(prefix + "0" * 40) <= 63
    assert prefix + "0" * 40 == names.workflow_name(long_name, "integration", "0" * 40)


def test_builder_is_deterministic() -> None:
    svc, settings = service(trigger_on_push=True), stack_settings()
    assert json.dumps(sensors.sensor_manifest(svc, settings)) == json.dumps(sensors.sensor_manifest(svc, settings))


# ------------------------------------- deliveries through Argo Events' own code
#
# tests/test_sensors_upstream.py sends the real payloads through the *rendered* Sensors of
# every stack (components.upstream_events: argo-events v1.9.10's filters and k8s trigger).
# Here the same engine runs on *built* Sensors, for what the render does not contain: a
# branch with regexp metacharacters, the push trigger in every stack, text of any content,
# and the created Workflow linted by `argo lint --offline` against a template.


def deliver(sensor: Manifest, svc: Service, settings: Settings, payload: dict[str, Any],
            event: str) -> list[Manifest]:
    """Workflows the built Sensor creates for one delivery to the service's repository event,
    next to the EventBus and EventSource the program builds for the same settings."""
    require("argo-events-check")
    objects = [events.eventbus_manifest(settings), events.eventsource_manifest(settings, [svc.repo]), sensor]
    return sensor_deliveries(objects, intake.event_name(svc.repo), payload, event)[sensor["metadata"]["name"]]


def expected_workflow(svc: Service, settings: Settings, revision: str, arguments: dict[str, str]) -> Manifest:
    return {
        "name": names.workflow_name(svc.name, settings.environment, revision),
        "namespace": settings.namespaces.workflows,
        "template": names.release_template_name(svc.name),
        "labels": {"release-pipeline/service": svc.name, "release-pipeline/environment": settings.environment},
        "arguments": {"revision": revision, **arguments},
    }


def summary(workflow: Manifest) -> Manifest:
    meta = workflow["metadata"]
    return {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "template": workflow["spec"]["workflowTemplateRef"]["name"],
        "labels": {k: v for k, v in meta["labels"].items() if k.startswith("release-pipeline/")},
        "arguments": {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]},
    }


def b64(text: str) -> str:
    """An encoded argument as the Sensor renders it: `b64:` + base64 of the UTF-8 text."""
    return "b64:" + base64.b64encode(text.encode()).decode()


def test_branch_metacharacters_are_literal() -> None:
    svc, settings = service(), with_branch(stack_settings(), "release.1")
    sensor = sensors.sensor_manifest(svc, settings)
    assert len(deliver(sensor, svc, settings, pull_request(base="release.1", repo=svc.repo), "pull_request")) == 1
    # "." is literal: a regexp wildcard would let this one through.
    assert deliver(sensor, svc, settings, pull_request(base="releaseX1", repo=svc.repo), "pull_request") == []
    pushing = sensors.sensor_manifest(service(trigger_on_push=True), settings)
    assert len(deliver(pushing, svc, settings, push(branch="release.1", repo=svc.repo), "push")) == 1
    assert deliver(pushing, svc, settings, push(branch="releaseX1", repo=svc.repo), "push") == []


@pytest.mark.parametrize("text", ["", "é ✓ 漢字", "{{ .Input.body.pull_request.title }}", "x" * 300])
def test_encoded_text_survives_any_content(text: str) -> None:
    """Empty text still renders (upstream refuses an empty template result), Unicode is UTF-8."""
    svc, settings = service(trigger_on_push=True), stack_settings()
    sensor = sensors.sensor_manifest(svc, settings)
    [workflow] = deliver(sensor, svc, settings, pull_request(base="development", repo=svc.repo, title=text),
                         "pull_request")
    assert summary(workflow)["arguments"]["pr-title"] == b64(text)
    pushed = push(branch="development", repo=svc.repo)
    pushed["pusher"]["name"] = text
    [workflow] = deliver(sensor, svc, settings, pushed, "push")
    assert summary(workflow)["arguments"]["author"] == b64(text)


@pytest.mark.parametrize("stack", STACKS)
def test_push_starts_a_release_only_when_enabled(stack: str) -> None:
    settings = stack_settings(stack)
    svc = service(trigger_on_push=True)
    sensor = sensors.sensor_manifest(svc, settings)
    body = push(branch=settings.branch, repo=svc.repo)
    created = deliver(sensor, svc, settings, body, "push")
    assert [summary(w) for w in created] == [expected_workflow(svc, settings, body["after"], {
        "pr-number": "", "pr-title": "", "author": b64(body["pusher"]["name"]), "repository": b64(svc.repo),
        "trigger": "push",
    })]
    # A merged PR still fires, with its own values (no constant of the push leaks in).
    [merged] = deliver(sensor, svc, settings, pull_request(base=settings.branch, repo=svc.repo), "pull_request")
    assert summary(merged)["arguments"]["trigger"] == "pull_request"
    # Off: the same push does nothing.
    assert deliver(sensors.sensor_manifest(service(), settings), svc, settings, body, "push") == []
    # Only this stack's branch, and only as a whole name.
    for other in (s for s in STACKS if stack_settings(s).branch != settings.branch):
        assert deliver(sensor, svc, settings, push(branch=stack_settings(other).branch, repo=svc.repo), "push") == []
    for branch in (f"feature/{settings.branch}", f"{settings.branch}/x", f"refs/heads/{settings.branch}"):
        assert deliver(sensor, svc, settings, push(branch=branch, repo=svc.repo), "push") == [], branch


def _sensor_variants() -> list[tuple[str, Service]]:
    variants: list[tuple[str, Service]] = [(stack, svc) for stack in STACKS for svc in stack_services(stack)]
    return [
        *variants,
        ("dev", service(trigger_on_push=True)),
        ("live", service(repo="Appen/my.repo", trigger_on_push=True)),
    ]


def test_built_sensors_pass_argo_events_validation(tmp_path: Path) -> None:
    """argo-events' own validation (the controller's ValidateSensor and the Sensor pod's checks)
    on every built Sensor, with the EventBus and EventSource built for the same settings."""
    from components import upstream_events

    require("argo-events-check")
    for index, (stack, svc) in enumerate(_sensor_variants()):
        settings = stack_settings(stack)
        objects = [events.eventbus_manifest(settings), events.eventsource_manifest(settings, [svc.repo]),
                   sensors.sensor_manifest(svc, settings)]
        path = tmp_path / f"{index}.yaml"
        path.write_text(yaml.safe_dump_all(objects), encoding="utf-8")
        report = upstream_events.validate(path)
        assert report["findings"] == [], (stack, svc.name, report["findings"])
        assert {"kind": "Sensor", "namespace": settings.namespaces.events, "name": svc.name} in [
            {k: ref.get(k) for k in ("kind", "namespace", "name")} for ref in report["checked"]]


def minimal_release_template(svc: Service, settings: Settings) -> Manifest:
    """Stands in for the release WorkflowTemplate: it declares the contract's six parameters."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": names.release_template_name(svc.name), "namespace": settings.namespaces.workflows},
        "spec": {
            "entrypoint": "release",
            "arguments": {"parameters": [{"name": a} for a in sensors.ARGUMENTS]},
            "templates": [{"name": "release", "container": {"image": "busybox:1.37", "command": ["true"]}}],
        },
    }


@pytest.mark.parametrize("event", ["pull_request", "push"])
def test_created_workflow_lints_against_the_contract_template(event: str) -> None:
    svc, settings = service(trigger_on_push=True), stack_settings()
    payload = (pull_request(base="development", repo=svc.repo) if event == "pull_request"
               else push(branch="development", repo=svc.repo))
    [workflow] = deliver(sensors.sensor_manifest(svc, settings), svc, settings, payload, event)
    template = minimal_release_template(svc, settings)
    done = argo_lint([template, workflow])
    assert done.returncode == 0, done.stdout + done.stderr
    assert beyond_argo_lint(workflow, [template]) == []  # no argument the template does not declare
    # The lint can fail: the same Workflow against a template of another name does.
    renamed = copy.deepcopy(template)
    renamed["metadata"]["name"] += "-other"
    done = argo_lint([renamed, workflow])
    assert done.returncode != 0 and names.release_template_name(svc.name) in done.stdout + done.stderr


# ------------------------------------------------------------ component (mocks)


def run_component(svc: Service) -> list[dict[str, Any]]:
    def program() -> pulumi.Output[Any]:
        settings = stack_settings()
        ns = k8s.core.v1.Namespace("events-ns", metadata={"name": settings.namespaces.events})
        crd = k8s.apiextensions.v1.CustomResourceDefinition(
            "sensors-crd", metadata={"name": "sensors.argoproj.io"},
            spec={"group": "argoproj.io", "names": {"kind": "Sensor", "plural": "sensors"},
                  "scope": "Namespaced", "versions": []},
        )
        intake_ = events.EventIntake("intake", events.EventIntakeArgs(
            settings=settings, repos=[svc.repo], namespace=ns.metadata.name,
        ))
        component = sensors.ServiceSensor(svc.name, sensors.ServiceSensorArgs(
            service=svc, settings=settings, namespace=ns.metadata.name,
            eventbus_name=intake_.eventbus_name, eventsource_name=intake_.eventsource_name,
            depends_on=[crd],
        ))
        return component.sensor.urn

    return run_under_mocks(program)


def test_component_registers_the_built_sensor_after_what_it_uses() -> None:
    svc = service(trigger_on_push=True)
    records = run_component(svc)
    [record] = [r for r in records if r["type"] == SENSOR_TYPE]
    assert record["name"] == "vbsiv-sensor"
    assert record["parent"] == "vbsiv"
    assert next(r for r in records if r["name"] == "vbsiv")["type"] == sensors.TYPE
    # The CRD (passed in), the namespace, and the bus and source (through the name Outputs).
    assert {"sensors-crd", "events-ns", "intake-eventbus", "intake-eventsource"} <= set(record["options"]["depends_on"])
    manifest = sensors.sensor_manifest(svc, stack_settings())
    inputs = record["inputs"]
    assert (inputs["apiVersion"], inputs["kind"]) == ("argoproj.io/v1alpha1", "Sensor")
    assert inputs["metadata"] == manifest["metadata"]
    assert _numbers(inputs["spec"]) == manifest["spec"]


def _numbers(value: Any) -> Any:
    """The wire turns every number into a float; compare with the builder's ints."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# -------------------------------------------------------------- whole stacks


def rendered_sensors(render_stack: Callable[..., Any], stack: str) -> tuple[list[Any], dict[str, Manifest]]:
    resources, manifests = render_stack(stack)
    found = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Sensor"}
    if not found and stack_services(stack):
        pytest.skip("the program does not register the Sensors yet (__main__.py)")
    return resources, found


@pytest.mark.parametrize("stack", STACKS)
def test_stack_has_one_sensor_per_service_as_built(render_stack: Callable[..., Any], stack: str) -> None:
    settings = stack_settings(stack)
    resources, found = rendered_sensors(render_stack, stack)
    services = stack_services(stack)
    assert sorted(found) == sorted(s.name for s in services)
    for svc in services:
        assert found[svc.name] == sensors.sensor_manifest(svc, settings)
    for record in (r for r in resources if r["type"] == SENSOR_TYPE):
        parent = next(r for r in resources if r["name"] == record["parent"])
        assert parent["type"] == sensors.TYPE
        assert {"crds-argo-events-sensors", "platform-argo-events"} <= set(record["options"]["depends_on"])


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_sensors_create_workflows_that_lint_against_the_rendered_templates(
        render_stack: Callable[..., Any], stack: str) -> None:
    """What each rendered Sensor creates from a merged PR, with the stack's real release
    WorkflowTemplates, passes `argo lint --offline`. (tests/test_sensors_upstream.py checks
    which Sensor fires and what it creates; components/verify lints the templates themselves.)"""
    settings = stack_settings(stack)
    _, manifests = render_stack(stack)
    templates = [m for m in manifests if m["kind"] == "WorkflowTemplate"]
    require("argo-events-check")
    created: list[Manifest] = []
    for svc in stack_services(stack):
        body = pull_request(base=settings.branch, repo=svc.repo)
        created += sensor_deliveries(manifests, intake.event_name(svc.repo), body, "pull_request")[svc.name]
    assert len(created) == len(stack_services(stack))
    done = argo_lint([*templates, *created])
    assert done.returncode == 0, done.stdout + done.stderr
    for workflow in created:
        assert beyond_argo_lint(workflow, templates) == [], workflow["metadata"]["name"]


def test_no_string_filter_in_the_module_is_unanchored() -> None:
    """A guard against a future filter written without `exactly()`."""
    source = (PROJECT_DIR / "components" / "sensors.py").read_text(encoding="utf-8")
    for call in re.findall(r"_string\(([^\n]+)\)", source):
        if call.startswith("path: str"):
            continue
        assert re.search(r"exactly\(|repository_pattern\(|SHA\b|PR_NUMBER\b", call), call

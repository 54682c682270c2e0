"""Every stack's Sensors, EventSources and EventBus pass Argo Events' own validation.

``components.upstream_events.validate`` runs tools/eventscheck: strict decoding into
argo-events v1.9.10's Go types, the controllers' ValidateSensor / ValidateEventSource /
ValidateEventBus and their EventBus lookup, the Sensor pod's start-up check of its
dependency expression, and names that point nowhere. Planted defects in a copy of a
render show that each kind of problem is reported, naming the object.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import upstream_events
from components.config import STACKS
from components.render.output import read_stack
from tests.upstream_events_support import rendered, require_tool

Manifest = dict[str, Any]
EVENTS_KINDS = {"Sensor", "EventSource", "EventBus"}


@pytest.fixture(autouse=True)
def _tool() -> None:
    require_tool()


def refs(manifests: list[Manifest]) -> list[dict[str, str]]:
    found = [{"kind": m["kind"], "namespace": m["metadata"].get("namespace", ""), "name": m["metadata"]["name"]}
             for m in manifests if m.get("apiVersion") == "argoproj.io/v1alpha1" and m["kind"] in EVENTS_KINDS]
    return sorted(found, key=lambda r: (r["kind"], r["namespace"], r["name"]))


@pytest.mark.parametrize("stack", STACKS)
def test_every_events_object_of_the_render_passes_upstream_validation(stack: str) -> None:
    out = rendered()
    report = upstream_events.validate(out / stack / "manifests.yaml")
    assert report["argoEvents"] == "v1.9.10"
    assert report["findings"] == []
    _, manifests = read_stack(out / stack)
    # Everything was looked at: the bus, the source, one Sensor per service.
    assert report["checked"] == refs(manifests)
    assert {r["kind"] for r in report["checked"]} == EVENTS_KINDS


# ----------------------------------------------------------------- planted defects


def _sensor(docs: list[Manifest]) -> Manifest:
    return next(d for d in docs if d["kind"] == "Sensor")


def _source(docs: list[Manifest]) -> Manifest:
    return next(d for d in docs if d["kind"] == "EventSource")


def _bus(docs: list[Manifest]) -> Manifest:
    return next(d for d in docs if d["kind"] == "EventBus")


def _first_github_event(docs: list[Manifest]) -> dict[str, Any]:
    github = _source(docs)["spec"]["github"]
    return github[sorted(github)[0]]  # type: ignore[no-any-return]


def condition_on_missing_dependency(docs: list[Manifest]) -> Manifest:
    sensor = _sensor(docs)
    sensor["spec"]["triggers"][0]["template"]["conditions"] = "merged || ghost"
    return sensor


def parameter_from_missing_dependency(docs: list[Manifest]) -> Manifest:
    sensor = _sensor(docs)
    sensor["spec"]["triggers"][0]["template"]["k8s"]["parameters"][0]["src"]["dependencyName"] = "ghost"
    return sensor


def parameter_without_dependency(docs: list[Manifest]) -> Manifest:
    sensor = _sensor(docs)
    del sensor["spec"]["triggers"][0]["template"]["k8s"]["parameters"][0]["src"]["dependencyName"]
    return sensor


def dependency_on_missing_event(docs: list[Manifest]) -> Manifest:
    sensor = _sensor(docs)
    sensor["spec"]["dependencies"][0]["eventName"] = "no-such-repository"
    return sensor


def unquoted_bool_filter_value(docs: list[Manifest]) -> Manifest:
    sensor = _sensor(docs)
    for f in sensor["spec"]["dependencies"][0]["filters"]["data"]:
        if f["type"] == "bool":
            f["value"] = [True]
    return sensor


def misspelt_field(docs: list[Manifest]) -> Manifest:
    sensor = _sensor(docs)
    sensor["spec"]["triggers"][0]["retryStrategy"]["step"] = 3
    return sensor


def sensor_on_missing_bus(docs: list[Manifest]) -> Manifest:
    sensor = _sensor(docs)
    sensor["spec"]["eventBusName"] = "elsewhere"
    return sensor


def bad_filter_comparator(docs: list[Manifest]) -> Manifest:
    sensor = _sensor(docs)
    sensor["spec"]["dependencies"][0]["filters"]["data"][0]["comparator"] = "~="
    return sensor


def webhook_without_endpoint(docs: list[Manifest]) -> Manifest:
    del _first_github_event(docs)["webhook"]["endpoint"]
    return _source(docs)


def github_without_repositories(docs: list[Manifest]) -> Manifest:
    del _first_github_event(docs)["repositories"]
    return _source(docs)


def jetstream_with_two_replicas(docs: list[Manifest]) -> Manifest:
    bus = _bus(docs)
    bus["spec"]["jetstream"]["replicas"] = 2
    return bus


def jetstream_without_version(docs: list[Manifest]) -> Manifest:
    bus = _bus(docs)
    del bus["spec"]["jetstream"]["version"]
    return bus


DEFECTS: list[tuple[Callable[[list[Manifest]], Manifest], str, str]] = [
    (condition_on_missing_dependency, "sensor-startup", "failed to get dependency expression: unknown name ghost"),
    (parameter_from_missing_dependency, "reference", "dependency ghost, which the Sensor does not have"),
    (parameter_without_dependency, "controller", "parameter dependency name can't be empty"),
    (dependency_on_missing_event, "reference", "no EventSource github with event no-such-repository"),
    (unquoted_bool_filter_value, "decode", "cannot unmarshal bool"),
    (misspelt_field, "decode", 'unknown field "step"'),
    (sensor_on_missing_bus, "controller", "eventbus elsewhere not found"),
    (bad_filter_comparator, "controller", "comparator"),
    (webhook_without_endpoint, "controller", "endpoint"),
    (github_without_repositories, "controller", "either repositories or organizations is required"),
    (jetstream_with_two_replicas, "controller", "requires 1 replica or >= 3 replicas"),
    (jetstream_without_version, "controller", "a version for jetstream needs to be specified"),
]


def _write(docs: list[Manifest], path: Path) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("plant", "check", "message"), DEFECTS, ids=[d[0].__name__ for d in DEFECTS])
def test_a_planted_defect_is_reported_naming_the_object(
    plant: Callable[[list[Manifest]], Manifest], check: str, message: str, tmp_path: Path
) -> None:
    _, manifests = read_stack(rendered() / "dev")
    docs = copy.deepcopy(manifests)
    broken = plant(docs)
    report = upstream_events.validate(_write(docs, tmp_path / "manifests.yaml"))
    ref = {"kind": broken["kind"], "namespace": broken["metadata"]["namespace"], "name": broken["metadata"]["name"]}
    assert [f for f in report["findings"] if f["check"] == check and message in f["message"]], report["findings"]
    assert all({k: f[k] for k in ref} == ref for f in report["findings"]), report["findings"]
    assert ref in report["checked"]


def test_findings_exit_1_and_bad_input_exit_2(tmp_path: Path) -> None:
    _, manifests = read_stack(rendered() / "dev")
    docs = copy.deepcopy(manifests)
    jetstream_with_two_replicas(docs)
    binary = str(upstream_events.binary())
    broken = subprocess.run([binary, "validate", str(_write(docs, tmp_path / "m.yaml"))],
                            capture_output=True, text=True, timeout=120, check=False)
    assert broken.returncode == 1, broken.stderr
    missing = subprocess.run([binary, "validate", str(tmp_path / "none.yaml")],
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode == 2 and "cannot read manifests" in missing.stderr
    (tmp_path / "bad.yaml").write_text("a: [\n", encoding="utf-8")
    with pytest.raises(upstream_events.EventsCheckError, match="not valid YAML"):
        upstream_events.validate(tmp_path / "bad.yaml")

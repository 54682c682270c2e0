"""verify against the real kube-apiserver and Argo tools: the program's render holds, planted defects are caught.

One local API server for the module (it takes seconds to start). Every test calls
`verify_stack` with a whole render, which re-applies every object server-side, so a
defect one test plants is undone by the next test's apply (same field manager).
Needs the pinned tools (`make tools`); a missing one fails with that instruction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from components.verify import runner
from components.verify.apiserver import LocalCluster
from components.verify.apply import CRDS_DIR, InputError, load_crds
from components.verify.client import ApiClient
from tests.conftest import RenderStack

Manifests = list[dict[str, Any]]


@pytest.fixture(scope="module")
def inputs() -> runner.Inputs:
    try:
        tools = runner.find_tools()
        crds = load_crds(CRDS_DIR)
    except InputError as exc:
        pytest.fail(f"verify needs the pinned tools and CRDs: {exc}", pytrace=False)
    return runner.Inputs({}, crds, tools)


@pytest.fixture(scope="module")
def api(inputs: runner.Inputs) -> Iterator[ApiClient]:
    with LocalCluster(inputs.tools["kube-apiserver"], inputs.tools["etcd"]) as client:
        yield client


def _find(manifests: Manifests, kind: str, **labels: str) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == kind
                and all((m["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items()))


def test_program_render_holds(api: ApiClient, inputs: runner.Inputs, render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    report = runner.verify_stack(api, "dev", manifests, inputs)
    assert report.findings == []
    assert report.applied == len(manifests) and report.refused == 0
    assert report.rbac.passed > 100 and report.admission.passed > 10
    assert report.lint_checked >= sum(1 for m in manifests if m["kind"] in ("WorkflowTemplate", "Rollout", "Sensor"))


def test_privileged_container_in_a_build_template_is_refused(
    api: ApiClient, inputs: runner.Inputs, render_stack: RenderStack
) -> None:
    _, manifests = render_stack("dev")
    build = _find(manifests, "WorkflowTemplate", **{"app.kubernetes.io/component": "build-workflow"})
    buildkit = next(t for t in build["spec"]["templates"] if t["name"] == "buildkit")
    buildkit["container"]["securityContext"]["privileged"] = True
    report = runner.verify_stack(api, "dev", manifests, inputs)
    subject = f"WorkflowTemplate {build['metadata']['namespace']}/{build['metadata']['name']} template buildkit"
    failed = [f for f in report.findings if f.check == "admission" and f.subject == subject]
    assert failed, report.findings
    assert "privileged containers are not allowed" in failed[0].message


def test_role_letting_the_sensor_read_secrets_is_caught(
    api: ApiClient, inputs: runner.Inputs, render_stack: RenderStack
) -> None:
    _, manifests = render_stack("dev")
    role = next(m for m in manifests if m["kind"] == "Role" and m["metadata"]["name"] == "sensor-workflows")
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]})
    report = runner.verify_stack(api, "dev", manifests, inputs)
    rbac = [str(f) for f in report.findings if f.check == "rbac"]
    namespace = role["metadata"]["namespace"]
    assert f"dev: rbac: ServiceAccount argo-events/sensor-workflows: get secrets in namespace {namespace}: " \
           "must be denied but is allowed" in [line.split(" (")[0] for line in rbac], rbac
    assert all("sensor-workflows" in line for line in rbac)


def test_unknown_field_is_refused_by_strict_validation(
    api: ApiClient, inputs: runner.Inputs, render_stack: RenderStack
) -> None:
    _, manifests = render_stack("dev")
    account = _find(manifests, "ServiceAccount", **{"app.kubernetes.io/component": "sensor"})
    account["automountServiceAccountTokens"] = False  # one letter too many
    rollout = next(m for m in manifests if m["kind"] == "Rollout")
    rollout["spec"]["strategy"]["canary"]["stepz"] = []
    report = runner.verify_stack(api, "dev", manifests, inputs)
    refused = {f.subject: f.message for f in report.findings if f.check == "apply"}
    assert report.refused == 2
    assert _unknown_field("automountServiceAccountTokens", refused["ServiceAccount argo-events/sensor-workflows"])
    rollout_name = f"Rollout {rollout['metadata']['namespace']}/{rollout['metadata']['name']}"
    assert _unknown_field("stepz", refused[rollout_name])


def _unknown_field(field: str, message: str) -> bool:
    """Server-side apply says "field not declared in schema"; strict decoding says "unknown field"."""
    return field in message and ("field not declared in schema" in message or "unknown field" in message)


def test_sensor_workflow_that_the_crd_refuses_is_caught(
    api: ApiClient, inputs: runner.Inputs, render_stack: RenderStack
) -> None:
    _, manifests = render_stack("dev")
    sensor = next(m for m in manifests if m["kind"] == "Sensor")
    workflow = sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"]
    workflow["spec"]["activeDeadlineSeconds"] = "soon"
    report = runner.verify_stack(api, "dev", manifests, inputs)
    subjects = {f.subject for f in report.findings}
    assert f"Sensor argo-events/{sensor['metadata']['name']} trigger release (its Workflow)" in subjects


def test_sensor_argo_events_refuses_is_named(api: ApiClient, inputs: runner.Inputs, render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    sensor = next(m for m in manifests if m["kind"] == "Sensor")
    sensor["spec"]["dependencies"][0]["eventSourceName"] = ""
    report = runner.verify_stack(api, "dev", manifests, inputs)
    lint = [f for f in report.findings if f.check == "lint"]
    subject = f"Sensor argo-events/{sensor['metadata']['name']}"
    assert any(f.subject == subject and "EventSourceName" in f.message for f in lint), report.findings


def test_argo_lint_finding_names_the_template(api: ApiClient, inputs: runner.Inputs, render_stack: RenderStack) -> None:
    """A DAG task naming a template that does not exist: the CRD takes it, `argo lint` does not."""
    _, manifests = render_stack("dev")
    release = _find(manifests, "WorkflowTemplate", **{"app.kubernetes.io/component": "release-workflow"})
    dag = next(t for t in release["spec"]["templates"] if "dag" in t)
    dag["dag"]["tasks"][0]["template"] = "no-such-template"
    report = runner.verify_stack(api, "dev", manifests, inputs)
    subject = f"WorkflowTemplate {release['metadata']['namespace']}/{release['metadata']['name']}"
    lint = [f for f in report.findings if f.check == "lint"]
    assert any(f.subject == subject and "no-such-template" in f.message for f in lint), report.findings
    assert report.refused == 0


def test_rollouts_lint_finding_names_the_rollout(api: ApiClient, inputs: runner.Inputs,
                                                 render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    rollout = next(m for m in manifests if m["kind"] == "Rollout")
    rollout["spec"]["strategy"]["canary"]["steps"].append({"setWeight": 150})
    report = runner.verify_stack(api, "dev", manifests, inputs)
    subject = f"Rollout {rollout['metadata']['namespace']}/{rollout['metadata']['name']}"
    lint = [f for f in report.findings if f.check == "lint" and f.subject == subject]
    assert lint and "SetWeight needs to be between 0 and 100" in lint[0].message, report.findings


def _with_every_option(services: str) -> str:
    """The tests' services file with Slack threads, newest-wins and the image updater on for its first service."""
    marker = "    tests:\n"
    options = "    slackThreads: true\n    newestWins: true\n    imageUpdater:\n      enabled: true\n" \
              "      tagPolicy: {kind: sha}\n"
    assert marker in services
    return services.replace(marker, options + marker, 1)


def test_render_with_every_option_holds(api: ApiClient, inputs: runner.Inputs, render_stack: RenderStack) -> None:
    """Last in the module: the extra objects stay on the server afterwards."""
    from tests.conftest import SERVICES_FILE

    _, manifests = render_stack("dev", _with_every_option(SERVICES_FILE.read_text()))
    kinds = {m["kind"] for m in manifests}
    assert {"ImageUpdater", "Deployment", "NetworkPolicy"} <= kinds
    report = runner.verify_stack(api, "dev", manifests, inputs)
    assert report.findings == []
    assert report.applied == len(manifests)
    relay = [m for m in manifests if m["kind"] == "ServiceAccount" and "slack-relay" in m["metadata"]["name"]]
    assert relay, "the Slack relay's account is rendered and so asked about"

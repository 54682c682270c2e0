"""`components.e2e.child`: the build step's manifest, identity and substitution, on hand-made objects (no server)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.e2e import child
from components.e2e.programs import ProgramError
from tests.conftest import RenderStack

MANIFEST = """apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: svc-build-
  namespace: argo-build
  labels:
    release-pipeline/release-workflow: '{{workflow.name}}'
    release-pipeline/revision: '{{ workflow.parameters.revision }}'
spec:
  workflowTemplateRef:
    name: svc-build
  arguments:
    parameters:
    - name: revision
      value: '{{workflow.parameters.revision}}'
    - name: title
      value: '{{workflow.parameters.pr-title}}'
"""


def _template(**build: Any) -> dict[str, Any]:
    step = {"name": "build", "resource": {"action": "create", "manifest": MANIFEST}, **build}
    return {"metadata": {"name": "svc-release", "namespace": "argo"}, "spec": {
        "serviceAccountName": "release-svc",
        "arguments": {"parameters": [{"name": "revision"}, {"name": "pr-title", "value": "default"}]},
        "templates": [{"name": "tests", "container": {"image": "x"}},
                      {"name": "get", "resource": {"action": "get", "manifest": MANIFEST}}, step]}}


WORKFLOW = {"metadata": {"name": "svc-dev-abc", "namespace": "argo", "uid": "u-1"}, "spec": {
    "workflowTemplateRef": {"name": "svc-release"},
    "arguments": {"parameters": [{"name": "revision", "value": "abc"}, {"name": "pr-title", "value": "b64:JCh4KQ=="}]}}}


def test_only_a_create_of_a_workflow_is_a_build_step() -> None:
    assert [s["name"] for s in child.build_steps(_template())] == ["build"]
    other = _template()
    other["spec"]["templates"][2]["resource"]["manifest"] = MANIFEST.replace("kind: Workflow", "kind: ConfigMap")
    assert child.build_steps(other) == []


def test_the_manifest_gets_the_release_workflows_values_as_the_controller_fills_them() -> None:
    text = child.substitute(MANIFEST, WORKFLOW, _template())
    loaded = yaml.safe_load(text)
    assert loaded["metadata"]["labels"] == {"release-pipeline/release-workflow": "svc-dev-abc",
                                            "release-pipeline/revision": "abc"}
    assert loaded["spec"]["arguments"]["parameters"] == [{"name": "revision", "value": "abc"},
                                                         {"name": "title", "value": "b64:JCh4KQ=="}]
    with pytest.raises(ProgramError, match=r"\{\{steps.x.outputs.result\}\}, which e2e does not resolve"):
        child.substitute(MANIFEST + "# {{steps.x.outputs.result}}\n", WORKFLOW, _template())


def test_the_step_runs_as_the_executor_account_else_the_pods_account() -> None:
    template = _template()
    step = child.build_steps(template)[0]
    assert child.identity(step, WORKFLOW, template) == "release-svc"
    assert child.identity({**step, "serviceAccountName": "own"}, WORKFLOW, template) == "own"
    assert child.identity({**step, "executor": {"serviceAccountName": "exec"}}, WORKFLOW, template) == "exec"
    template["spec"]["executor"] = {"serviceAccountName": "wf-exec"}
    assert child.identity(step, WORKFLOW, template) == "wf-exec"
    assert child.identity(step, WORKFLOW, {"spec": {}}) == "default"


def test_the_programs_release_template_has_one_build_step_running_as_the_release_account(
    render_stack: RenderStack,
) -> None:
    _, manifests = render_stack("dev")
    templates = [m for m in manifests if m["kind"] == "WorkflowTemplate" and m["metadata"]["name"].endswith("-release")]
    assert templates
    for template in templates:
        steps = child.build_steps(template)
        assert len(steps) == 1
        assert child.identity(steps[0], {"spec": {}}, template) == template["spec"]["serviceAccountName"]
        text = child.substitute(steps[0]["resource"]["manifest"], WORKFLOW, template)
        assert "{{" not in text and yaml.safe_load(text)["kind"] == "Workflow"

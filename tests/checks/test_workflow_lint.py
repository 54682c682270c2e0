"""Tests for workflow_lint.py (run: python -m pytest tests/checks/test_workflow_lint.py)."""
from __future__ import annotations

import copy
import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository root: python -m tests.checks.<tool>

from tests.checks.workflow_lint import lint, lint_report

GOOD = yaml.safe_load(r"""
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: svc-release}
spec:
  entrypoint: release
  onExit: notify
  arguments:
    parameters:
      - {name: repo, value: "https://github.com/Codertocat/Hello-World.git"}
      - {name: revision}
      - {name: image, value: registry.example.com/svc}
  templates:
    - name: release
      dag:
        tasks:
          - name: clone
            template: git-clone
            arguments:
              parameters:
                - {name: repo, value: "{{workflow.parameters.repo}}"}
                - {name: revision, value: "{{workflow.parameters.revision}}"}
          - name: build
            template: build
            depends: clone
            arguments:
              parameters:
                - {name: commit, value: "{{tasks.clone.outputs.parameters.commit}}"}
                - {name: image, value: "{{workflow.parameters.image}}"}
          - name: update
            template: update
            depends: build
            arguments:
              parameters:
                - {name: digest, value: "{{tasks.build.outputs.parameters.digest}}"}
    - name: git-clone
      inputs:
        parameters:
          - {name: repo}
          - {name: revision}
      outputs:
        parameters:
          - name: commit
            valueFrom: {path: /tmp/commit}
      container:
        image: alpine/git
        command: [sh, -c]
        args: ["git clone {{inputs.parameters.repo}} /src && cd /src && git checkout {{inputs.parameters.revision}} && git rev-parse HEAD > /tmp/commit"]
    - name: build
      inputs:
        parameters:
          - {name: commit}
          - {name: image}
          - {name: tag, default: latest}
      outputs:
        parameters:
          - name: digest
            globalName: digest
            valueFrom: {path: /tmp/digest}
      script:
        image: gcr.io/kaniko-project/executor:debug
        command: [sh]
        source: |
          echo building {{inputs.parameters.image}}:{{inputs.parameters.tag}} at {{inputs.parameters.commit}} in {{pod.name}}
    - name: update
      inputs:
        parameters:
          - {name: digest}
      container:
        image: alpine
        args: ["deploy {{inputs.parameters.digest}} for {{workflow.name}}"]
    - name: notify
      container:
        image: alpine
        args: ["status={{workflow.status}} digest={{workflow.outputs.parameters.digest}} failures={{workflow.failures}}"]
""")


def tasks(obj):
    return obj["spec"]["templates"][0]["dag"]["tasks"]


def tmpl(obj, name):
    return next(t for t in obj["spec"]["templates"] if t["name"] == name)


def variant(fn):
    o = copy.deepcopy(GOOD)
    fn(o)
    return lint(o)


def test_good_dag_lints_clean():
    assert lint(GOOD) == []


def test_undeclared_input_parameter():
    def fn(o):
        tmpl(o, "update")["container"]["args"] = ["deploy {{inputs.parameters.digest}} to {{inputs.parameters.cluster}}"]
    probs = variant(fn)
    assert len(probs) == 1
    assert "templates.update" in probs[0] and "{{inputs.parameters.cluster}}" in probs[0]


def test_undeclared_input_artifact():
    def fn(o):
        tmpl(o, "update")["container"]["args"] = ["cat {{inputs.artifacts.manifest.path}}"]
    assert any("inputs.artifacts.manifest" in p for p in variant(fn))


def test_missing_dependency():
    def fn(o):
        tasks(o)[2]["depends"] = "biuld"
    probs = variant(fn)
    assert any("dependency 'biuld' not defined" in p for p in probs)

    def with_dependencies_list(o):
        for t in tasks(o):
            if t.pop("depends", None):
                t["dependencies"] = []
        tasks(o)[1]["dependencies"] = ["clone"]
        tasks(o)[2]["dependencies"] = ["buidl"]
    probs = variant(with_dependencies_list)
    assert any("dependency 'buidl' not defined" in p for p in probs)


def test_depends_expression_unknown_task_and_bad_result():
    def fn(o):
        tasks(o)[1]["depends"] = "clone.Succeded || nope"
    probs = variant(fn)
    assert any("task result 'Succeded' for task 'clone' is invalid" in p for p in probs)
    assert any("dependency 'nope' not defined" in p for p in probs)

    def ok_expression(o):
        tasks(o)[2]["depends"] = "(build.Succeeded || build.Skipped) && !clone.Failed"
    assert variant(ok_expression) == []


def test_depends_and_dependencies_cannot_be_mixed():
    def fn(o):
        tasks(o)[2].pop("depends")
        tasks(o)[2]["dependencies"] = ["build"]
    probs = variant(fn)
    assert any("cannot use both 'depends' and 'dependencies'" in p for p in probs)


def test_cycle():
    def fn(o):
        tasks(o)[0]["depends"] = "update"
    probs = variant(fn)
    assert any("dependency cycle detected" in p and "clone" in p and "update" in p for p in probs)


def test_self_cycle():
    def fn(o):
        tasks(o)[0]["depends"] = "clone"
    assert any("cycle" in p for p in variant(fn))


def test_missing_template():
    def fn(o):
        tasks(o)[1]["template"] = "biuld"
    probs = variant(fn)
    assert any("template name 'biuld' undefined" in p for p in probs)


def test_missing_entrypoint_and_onexit():
    def fn(o):
        o["spec"]["entrypoint"] = "main"
        o["spec"]["onExit"] = "cleanup"
    probs = variant(fn)
    assert any("spec.entrypoint: template name 'main' undefined" in p for p in probs)
    assert any("spec.onExit: template name 'cleanup' undefined" in p for p in probs)


def test_workflow_requires_entrypoint():
    o = copy.deepcopy(GOOD)
    o["kind"] = "Workflow"
    o["spec"].pop("entrypoint")
    assert "spec.entrypoint is required" in lint(o)


def test_undeclared_workflow_parameter():
    def fn(o):
        tasks(o)[0]["arguments"]["parameters"][1]["value"] = "{{workflow.parameters.branch}}"
    probs = variant(fn)
    assert any("workflow parameter 'branch' is not declared" in p for p in probs)
    o = copy.deepcopy(GOOD)
    o["kind"] = "Workflow"
    fn(o)
    assert any("failed to resolve {{workflow.parameters.branch}}" in p for p in lint(o))


def test_task_output_references():
    def undeclared_output(o):
        tasks(o)[1]["arguments"]["parameters"][0]["value"] = "{{tasks.clone.outputs.parameters.sha}}"
    assert any("{{tasks.clone.outputs.parameters.sha}}" in p for p in variant(undeclared_output))

    def unknown_task(o):
        tasks(o)[1]["arguments"]["parameters"][0]["value"] = "{{tasks.klone.outputs.parameters.commit}}"
    assert any("klone" in p for p in variant(unknown_task))

    def not_an_ancestor(o):
        tasks(o)[2]["depends"] = "clone"
        tasks(o)[2]["arguments"]["parameters"][0]["value"] = "{{tasks.build.outputs.parameters.digest}}"
    assert any("missing dependency 'build' for parameter 'digest'" in p for p in variant(not_an_ancestor))

    def result_of_container(o):
        tasks(o)[2]["arguments"]["parameters"][0]["value"] = "{{tasks.build.outputs.result}}"
    assert variant(result_of_container) == []       # script templates have outputs.result


def test_workflow_outputs_need_global_name():
    def fn(o):
        tmpl(o, "notify")["container"]["args"] = ["{{workflow.outputs.parameters.image-digest}}"]
    probs = variant(fn)
    assert any("workflow.outputs.parameters.image-digest" in p and "globalName" in p for p in probs)


def test_arguments_vs_inputs():
    def missing_required(o):
        tasks(o)[0]["arguments"]["parameters"].pop(1)
    probs = variant(missing_required)
    assert any("inputs.parameters.revision was not supplied" in p for p in probs)

    def extra_argument(o):
        tasks(o)[2]["arguments"]["parameters"].append({"name": "cluster", "value": "prod"})
    probs = variant(extra_argument)
    assert len(probs) == 1 and "argument parameter 'cluster' is not declared" in probs[0]

    def default_is_enough(o):
        tasks(o)[1]["arguments"]["parameters"] = [p for p in tasks(o)[1]["arguments"]["parameters"] if p["name"] != "tag"]
    assert variant(default_is_enough) == []

    def no_value(o):
        tasks(o)[1]["arguments"]["parameters"][1].pop("value")
    assert any("image.value or valueFrom is required" in p for p in variant(no_value))


def test_template_type_and_names():
    def fn(o):
        tmpl(o, "update")["script"] = {"image": "x", "source": "y"}
        o["spec"]["templates"].append({"name": "update", "suspend": {}})
        o["spec"]["templates"].append({"name": "Bad_Name", "suspend": {}})
        o["spec"]["templates"].append({"name": "empty"})
    probs = variant(fn)
    assert any("multiple template types" in p for p in probs)
    assert any("'update' is not unique" in p for p in probs)
    assert any("'Bad_Name' is invalid" in p for p in probs)
    assert any("templates.empty: template type unspecified" in p for p in probs)


def test_output_parameter_rules():
    def fn(o):
        tmpl(o, "git-clone")["outputs"]["parameters"].append({"name": "bad"})
        tmpl(o, "git-clone")["outputs"]["parameters"].append({"name": "expr", "valueFrom": {"expression": "1"}})
    probs = variant(fn)
    assert any("outputs.parameters.bad does not have valueFrom or value" in p for p in probs)
    assert any("outputs.parameters.expr.path must be specified for container templates" in p for p in probs)


STEPS = yaml.safe_load(r"""
kind: WorkflowTemplate
metadata: {name: steps}
spec:
  entrypoint: main
  arguments: {parameters: [{name: msg, value: hi}]}
  templates:
    - name: main
      steps:
        - - name: a
            template: echo
            arguments: {parameters: [{name: text, value: "{{workflow.parameters.msg}}"}]}
          - name: b
            template: echo
            arguments: {parameters: [{name: text, value: x}]}
        - - name: c
            template: echo
            arguments: {parameters: [{name: text, value: "{{steps.a.outputs.result}}"}]}
            when: "{{steps.b.status}} == Succeeded"
        - - name: d
            template: echo
            withItems: [1, 2]
            arguments: {parameters: [{name: text, value: "{{item}}"}]}
    - name: echo
      inputs: {parameters: [{name: text}]}
      script: {image: alpine, command: [sh], source: "echo {{inputs.parameters.text}}"}
""")


def test_steps_template():
    assert lint(STEPS) == []
    o = copy.deepcopy(STEPS)
    o["spec"]["templates"][0]["steps"][0][1]["arguments"]["parameters"][0]["value"] = "{{steps.a.outputs.result}}"
    probs = lint(o)
    assert any("same parallel step group" in p for p in probs)
    o = copy.deepcopy(STEPS)
    o["spec"]["templates"][0]["steps"][0][0]["arguments"]["parameters"][0]["value"] = "{{steps.c.outputs.result}}"
    assert any("{{steps.c.outputs.result}}" in p for p in lint(o))
    o = copy.deepcopy(STEPS)
    o["spec"]["templates"][0]["steps"][2][0]["arguments"]["parameters"][0]["value"] = "{{item.name}}"
    assert any("{{item.name}}" in p for p in lint(o))


def test_template_ref_external_and_resolved():
    o = copy.deepcopy(GOOD)
    tasks(o)[2].pop("template")
    tasks(o)[2]["templateRef"] = {"name": "deployer", "template": "update"}
    rep = lint_report(o)
    assert rep.problems == []
    assert any("external WorkflowTemplate 'deployer'" in n for n in rep.notes)
    deployer = {"kind": "WorkflowTemplate", "metadata": {"name": "deployer"}, "spec": {"templates": [
        {"name": "update", "inputs": {"parameters": [{"name": "digest"}, {"name": "env"}]}, "container": {"image": "x"}}]}}
    probs = lint(o, [deployer])
    assert probs == ["templates.release.tasks.update: inputs.parameters.env was not supplied "
                     "(template 'update' declares it without value/default)"]
    tasks(o)[2]["templateRef"]["template"] = "deploy"
    assert any("template reference deployer.deploy not found" in p for p in lint(o, [deployer]))
    assert any("not found" in p for p in lint(o, [], strict_refs=True))


def test_workflow_from_template_arguments():
    wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "svc-"},
          "spec": {"workflowTemplateRef": {"name": "svc-release"},
                   "arguments": {"parameters": [{"name": "revision", "value": "abc"}]}}}
    assert lint(wf, [GOOD]) == []
    assert any("external WorkflowTemplate" in n for n in lint_report(wf).notes)
    w2 = copy.deepcopy(wf)
    w2["spec"]["arguments"]["parameters"] = [{"name": "sha", "value": "abc"}]
    probs = lint(w2, [GOOD])
    assert any("revision: no value" in p for p in probs)
    assert any("sha is not declared by WorkflowTemplate 'svc-release'" in p for p in probs)
    w3 = copy.deepcopy(wf)
    w3["spec"]["templates"] = [{"name": "x", "suspend": {}}]
    assert any("Templates is invalid field" in p for p in lint(w3, [GOOD]))


def test_expression_tags():
    def fn(o):
        tmpl(o, "update")["container"]["args"] = ["{{=sprig.trunc(7, inputs.parameters.digest)}}",
                                                  "{{=inputs.parameters['nope']}}"]
    probs = variant(fn)
    assert len(probs) == 1 and "inputs.parameters.nope" in probs[0]


def test_cli(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    bad_obj = copy.deepcopy(GOOD)
    tasks(bad_obj)[1]["template"] = "biuld"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(bad_obj))
    script = "tests.checks.workflow_lint"
    r = subprocess.run([sys.executable, "-m", script, str(good)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "no problems" in r.stdout
    r = subprocess.run([sys.executable, "-m", script, str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "template name 'biuld' undefined" in r.stdout
    # Workflows embedded in Sensors are linted against the templates given alongside
    sensor = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "s"}, "spec": {
        "dependencies": [{"name": "d", "eventSourceName": "github", "eventName": "svc"}],
        "triggers": [{"template": {"name": "build", "argoWorkflow": {"operation": "submit", "source": {"resource": {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "svc-"},
            "spec": {"workflowTemplateRef": {"name": "svc-release"}, "arguments": {"parameters": [{"name": "revision"}]}}}},
            "parameters": [{"src": {"dependencyName": "d", "dataKey": "body.pull_request.merge_commit_sha"},
                            "dest": "spec.arguments.parameters.0.value"}]}}}]}}
    sf = tmp_path / "sensor.yaml"
    sf.write_text(yaml.safe_dump(sensor))
    r = subprocess.run([sys.executable, "-m", script, str(good), str(sf)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout
    sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]["spec"]["arguments"]["parameters"][0]["name"] = "sha"
    sf.write_text(yaml.safe_dump(sensor))
    r = subprocess.run([sys.executable, "-m", script, str(good), str(sf)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "revision: no value" in r.stdout and "sha is not declared" in r.stdout

"""Payload text (`policy/release_policies/payload.py`): `payload-only-through-env`.

The payload parameters substituted anywhere but an `env[].value` (directly, or carried
through another parameter), an encoded one not the whole value of a `*_B64` variable, a
Secret before a substituted value, and a Sensor that carries them plain are reported.
"""

from __future__ import annotations

from typing import Any

from tests.policy_support import (
    CTX,
    SENSOR,
    WORKFLOW_TEMPLATE,
    BadCase,
    _with,
    assert_reports,
    bad_cases,
    release_template,
    rp,
    sensor,
)

BAD: list[BadCase] = [
    # payload-only-through-env
    ("payload-in-script", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.source", 'print("{{workflow.parameters.pr-title}}")\n'),
     "spec.templates[2].script.source", {}, CTX),
    ("payload-in-args", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.args", ["--author", "{{workflow.parameters.author}}"]),
     "spec.templates[2].script.args[1]", {}, CTX),
    ("payload-in-when", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.0.dag.tasks.1.when", "{{workflow.parameters.trigger}} == push"),
     "when", {}, CTX),
    ("payload-expression", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.command", ["echo", "{{=workflow.parameters['pr-number']}}"]),
     "script.command[1]", {}, CTX),
    ("payload-carried-to-input", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.source", "print('{{inputs.parameters.title}}')\n"),
     "inputs.parameters", {}, CTX),
    ("payload-carried-twice", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(_with(release_template(), "spec.templates.2.inputs.parameters", [
         {"name": "title"}, {"name": "headline", "value": "{{inputs.parameters.title}}"}]),
           "spec.templates.2.script.source", "echo {{inputs.parameters.headline}}"),
     "spec.templates[2].script.source", {}, CTX),
    ("payload-all-parameters", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.args", ["{{workflow.parameters.json}}"]),
     "script.args[0]", {}, CTX),
    ("payload-in-manifest", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.1.resource.manifest",
           "kind: ConfigMap\ndata:\n  title: '{{workflow.parameters.pr-title}}'\n"), "resource.manifest", {}, CTX),
    ("payload-in-sensor-workflow", "payload-only-through-env", SENSOR,
     {"spec": {"triggers": [{"template": {"k8s": {"source": {"resource": {"metadata": {
         "labels": {"author": "{{workflow.parameters.author}}"}}}}}}}]}}, "labels.author", {}, CTX),
    ("payload-env-not-marked-encoded", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.env.1.name", "AUTHOR"), "script.env[1]: AUTHOR", {}, CTX),
    ("payload-env-inside-text", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.env.0.value", "title: {{inputs.parameters.title}}"),
     "whole value", {}, CTX),
    ("secret-before-payload", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.env", [
         {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "token"}}},
         {"name": "PR_TITLE_B64", "value": "{{inputs.parameters.title}}"}]), "script.env[0]: TOKEN comes from", {},
     CTX),
    ("secret-before-any-substitution", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.env", [
         {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "token"}}},
         {"name": "STATUS", "value": "{{workflow.status}}"}]), "Secrets go last", {}, CTX),
    ("sensor-plain-title", "payload-only-through-env", SENSOR,
     sensor(**{"pr-title": {"dataKey": "body.pull_request.title"}}), "argument pr-title is payload text", {}, CTX),
    ("sensor-title-template-not-encoded", "payload-only-through-env", SENSOR,
     sensor(**{"pr-title": {"dataTemplate": "{{ .Input.body.pull_request.title }}"}}), "pr-title", {}, CTX),
    ("sensor-plain-unfiltered", "payload-only-through-env", SENSOR,
     sensor(**{"trigger": {"dataKey": "body.action"}}), "no string filter", {}, CTX),
]


@bad_cases(BAD)
def test_each_policy_reports_its_violation(
    policy: str, resource_type: str, inputs: Any, fragment: str, options: dict, context: rp.Context
) -> None:
    assert_reports(policy, resource_type, inputs, fragment, options, context)

"""Payload text from a delivery to a step's process, over the full offline render of every stack.

The invariant (docs/decisions/0100-payload-base64-from-the-sensor.md), checked on every
container of every rendered WorkflowTemplate:
- an encoded payload parameter (pr-title, author, repository) is only ever the whole
  value of an environment variable named `*_B64`;
- a variable from a Secret comes after every variable with a value (Kubernetes expands
  `$(NAME)` in a value only with variables defined earlier in the list);
- no payload parameter in a command, args, script source, expression or manifest.
And end to end: a hostile title and login, as the rendered Sensor encodes them, go
through Argo's `{{...}}` substitution (to a fixed point) and the kubelet's `$(VAR)`
expansion (tests/payload_sim.py) into each step's environment (the Workflow's arguments
created by Argo Events' own code: components.upstream_events), and the script's decoder
gives back exactly the delivered text, while no Secret's value reaches any other
variable.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from components import intake, names
from components import workflows as wf
from components.config import STACKS, load_services, load_stack_settings
from tests.conftest import ROOT, SERVICES_FILE
from tests.payload_sim import argo_substitute, container_environment, k8s_expand, mapping_func_for, sensor_deliveries
from tests.workflows_support import walk

sys.path.insert(0, str(ROOT / "scripts"))
from _common import StepError, payload_text  # the scripts' own decoder

ENCODED = ("pr-title", "author", "repository")
PAYLOAD = ("pr-title", "author", "repository", "pr-number", "trigger")
SECRET_SENTINEL = "SECRET<{name}/{key}>"
HOSTILE_TITLE = ("$(SLACK_TOKEN) $(APP_ID) $(INSTALLATION_ID) $$(SLACK_TOKEN) $ $( {{workflow.name}} "
                 "{{workflow.parameters.revision}} {{=sprig.b64enc('x')}} {{inputs.parameters.stage}} "
                 "\n:x: forged line\r\u202e\x00 é ✓")
HOSTILE_LOGIN = "$(SLACK_TOKEN){{workflow.status}}"
REVISION = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"


def b64(text: str) -> str:
    return "b64:" + base64.b64encode(text.encode()).decode()


def containers(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from template.get("initContainers", [])
    yield from template.get("sidecars", [])
    for key in ("container", "script"):
        if key in template:
            yield template[key]


def release_templates(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == "WorkflowTemplate"]


# ------------------------------------------------------------ the simulators themselves


@pytest.mark.parametrize(("value", "expected"), [
    # Cases in the manner of Kubernetes' expand_test.go (VAR_A=A, VAR_B=B, VAR_C=C, VAR_REF=$(VAR_A), VAR_EMPTY="").
    ("$(VAR_A)", "A"), ("___$(VAR_B)___", "___B___"), ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"), ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"), ("$$$$$$(VAR_A)", "$$$(VAR_A)"),
    ("$$$$$$$(VAR_A)", "$$$A"), ("$(VAR_REF)", "$(VAR_A)"), ("$(VAR_EMPTY)", ""), ("$(UNKNOWN)", "$(UNKNOWN)"),
    ("$(VAR_A", "$(VAR_A"), ("$$$(VAR_A", "$$(VAR_A"), ("f00__(VAR_A)__", "f00__(VAR_A)__"), ("$?_boo_$!", "$?_boo_$!"),
    ("$VAR_A", "$VAR_A"), ("$", "$"), ("foo$", "foo$"), ("$()", "$()"), ("$(VAR_A)$", "A$"),
])
def test_k8s_expansion_follows_upstream(value: str, expected: str) -> None:
    context = {b"VAR_A": b"A", b"VAR_B": b"B", b"VAR_C": b"C", b"VAR_REF": b"$(VAR_A)", b"VAR_EMPTY": b""}
    assert k8s_expand(value.encode(), mapping_func_for(context)).decode() == expected


def test_k8s_expands_only_names_defined_earlier() -> None:
    secret = {("s", "k"): "TOKEN"}
    before = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
              {"name": "TITLE", "value": "x $(TOKEN) $$(TOKEN)"}]
    assert container_environment(before, secret)["TITLE"] == "x TOKEN $(TOKEN)"
    after = list(reversed(before))
    assert container_environment(after, secret)["TITLE"] == "x $(TOKEN) $(TOKEN)"


def test_argo_model_expands_substituted_text_again() -> None:
    known = {"workflow.parameters.pr-title": "{{workflow.name}}", "workflow.name": "wf-1"}
    assert argo_substitute("{{workflow.parameters.pr-title}}", known) == "wf-1"
    assert argo_substitute("{{ =sprig.b64enc('x') }}", known) == "<evaluated sprig.b64enc('x')>"
    assert argo_substitute(b64("{{workflow.name}}"), known) == b64("{{workflow.name}}")


def test_the_decoder_refuses_what_the_sensor_does_not_send() -> None:
    assert payload_text({"T": ""}, "T") == ""
    assert payload_text({"T": b64(HOSTILE_TITLE)}, "T") == HOSTILE_TITLE
    for bad in ("plain text", "b64:***", "b64:" + base64.b64encode(b"\xff").decode(), "b64:QQ"):
        with pytest.raises(StepError, match="T "):
            payload_text({"T": bad}, "T")


# ---------------------------------------------------------------- the rendered invariant


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_container_keeps_payload_encoded_and_secrets_last(render_stack: Any, stack: str) -> None:
    _, manifests = render_stack(stack)
    templates = release_templates(manifests)
    assert templates
    shown = 0
    for manifest in templates:
        for template in manifest["spec"]["templates"]:
            for container in containers(template):
                where = f"{manifest['metadata']['name']}/{template['name']}/{container.get('name', 'main')}"
                env = container.get("env", [])
                last_value = max((i for i, e in enumerate(env) if "value" in e), default=-1)
                for i, var in enumerate(env):
                    if "valueFrom" in var and "secretKeyRef" in var["valueFrom"]:
                        assert i > last_value, f"{where}: {var['name']} (a Secret) before a value it could expand into"
                    value = var.get("value", "")
                    for parameter in ENCODED:
                        tag = f"workflow.parameters.{parameter}"
                        if tag in value:
                            assert value == "{{" + tag + "}}", where
                            assert var["name"].endswith(wf.ENCODED_ENV_SUFFIX), where
                            shown += 1
                for key in ("command", "args", "source"):
                    text = " ".join(container.get(key, [])) if key != "source" else container.get(key, "")
                    assert not re.search(r"parameters\.(" + "|".join(PAYLOAD) + ")", text), (where, key)
            manifest_text = (template.get("resource") or {}).get("manifest", "")
            assert not re.search(r"parameters\.(" + "|".join(PAYLOAD) + ")", manifest_text)
    assert shown  # the notify step at least shows the title and the author


def hostile_delivery(branch: str, repo: str) -> dict[str, Any]:
    """GitHub's merged-PR payload into `branch` of `repo`, with a hostile title and login."""
    body: dict[str, Any] = json.loads((ROOT / "upstream" / "github-webhooks" / "pull_request.closed-merged.json")
                                      .read_text(encoding="utf-8"))
    body["pull_request"].update(merge_commit_sha=REVISION, title=HOSTILE_TITLE)
    body["pull_request"]["base"]["ref"] = branch
    body["pull_request"]["user"]["login"] = HOSTILE_LOGIN
    body["repository"]["full_name"] = repo
    return body


def _through_argo_and_kubelet(template: dict[str, Any], workflow: str, arguments: dict[str, str],
                              secrets: dict[tuple[str, str], str]) -> Iterator[tuple[str, dict[str, str]]]:
    known = {f"workflow.parameters.{k}": v for k, v in arguments.items()}
    known |= {"workflow.name": workflow, "workflow.status": "Failed", "inputs.parameters.stage": "tests",
              "inputs.parameters.state": "passed"}
    for container in containers(template):
        env = [dict(var, value=argo_substitute(var["value"], known)) if "value" in var else var
               for var in container.get("env", [])]
        yield container.get("name", "main"), container_environment(env, secrets)


def _check_release(manifest: dict[str, Any], arguments: dict[str, str], fields: dict[str, str]) -> int:
    """Every container of a release template: decoded payload is exact, no Secret leaks. Returns how many showed it."""
    secrets: dict[tuple[str, str], str] = {}
    for _, value in walk(manifest):
        if isinstance(value, dict) and "secretKeyRef" in value:
            ref = value["secretKeyRef"]
            secrets[(ref["name"], ref["key"])] = SECRET_SENTINEL.format(**ref)
    workflow = manifest["metadata"]["name"] + "-" + REVISION[:8]
    decoded = 0
    for template in manifest["spec"]["templates"]:
        for name, environment in _through_argo_and_kubelet(template, workflow, arguments, secrets):
            own = {e["name"] for c in containers(template) for e in c.get("env", []) if "valueFrom" in e}
            for var, value in environment.items():
                if var not in own:
                    assert "SECRET<" not in value, f"{template['name']}/{name}: {var} holds a Secret's value"
                if var.endswith(wf.ENCODED_ENV_SUFFIX):
                    field = var.removesuffix(wf.ENCODED_ENV_SUFFIX)
                    assert payload_text(environment, var) == fields[field], f"{template['name']}/{var}"
                    decoded += 1
    return decoded


@pytest.mark.parametrize("stack", STACKS)
def test_hostile_text_reaches_every_step_byte_exact_and_no_secret_leaks(render_stack: Any, stack: str) -> None:
    """Each rendered Sensor gets the hostile delivery (Argo Events' own code creates the Workflow),
    its arguments go through Argo's substitution and the kubelet's expansion into every step of
    the release template, and every step's decoder gives back exactly the delivered text."""
    _, manifests = render_stack(stack)
    by_name = {m["metadata"]["name"]: m for m in release_templates(manifests)}
    services = load_services(SERVICES_FILE).for_environment(stack)
    assert services
    branch = load_stack_settings(ROOT, stack).branch
    for svc in services:
        created = sensor_deliveries(manifests, intake.event_name(svc.repo), hostile_delivery(branch, svc.repo),
                                    "pull_request")
        [workflow] = created[svc.name]
        arguments = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
        assert arguments["pr-title"] == b64(HOSTILE_TITLE) and arguments["author"] == b64(HOSTILE_LOGIN)
        assert arguments["repository"] == b64(svc.repo)
        template = by_name[workflow["spec"]["workflowTemplateRef"]["name"]]
        assert template["metadata"]["name"] == names.release_template_name(svc.name)
        fields = {"PR_TITLE": HOSTILE_TITLE, "AUTHOR": HOSTILE_LOGIN}
        assert _check_release(template, arguments, fields) >= 2, template["metadata"]["name"]

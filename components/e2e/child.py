"""The child build Workflow, created as the release's build step would create it.

With no nodes the release Workflow never reaches its build step, so its pod never runs.
What that step does (argo-workflows v4.0.5) is reproduced here, and only that:
- the step is a `resource` template with `action: create` whose manifest is a Workflow;
  the controller substitutes the global variables into the manifest before the step's
  pod is made (`{{workflow.name}}`, `{{workflow.namespace}}`, `{{workflow.parameters.X}}`
  with the release Workflow's argument values, as the Sensor set them): the same here, and
  any other `{{...}}` left in the manifest is reported instead of guessed;
- the step's pod runs `argoexec resource create`, which runs `kubectl create -f
  <manifest> -o json` (`workflow/executor/resource.go`) with the pod's own credentials:
  the executor ServiceAccount's token when the template or Workflow names
  `executor.serviceAccountName`, otherwise the pod's ServiceAccount (the template's
  `serviceAccountName`, else the Workflow's, else `default`). Here: a TokenRequest for
  that ServiceAccount and one POST of the manifest with that token, with the server-side
  field validation kubectl asks for (`fieldValidation=Strict`);
- `setOwnerReference: true` on the template adds the release Workflow as the owner, as
  the controller does.
Then the running controller takes the child and its first pod must be admitted (Pod
Security of the build namespace and its admission policy): `runner` waits for it.

Owns: finding the build step, the substitution, the identity and the create call.
Does not own: the controller, the pod checks.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
from dataclasses import dataclass
from typing import Any

import yaml

from components.e2e.programs import ProgramError, service_account_token
from components.verify.client import ApiClient

_TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
TIMEOUT = 30.0


@dataclass
class Child:
    release: str  # namespace/name of the release Workflow
    step: str  # the template's name
    account: str  # namespace/name of the identity the step runs as
    manifest: dict[str, Any]
    created: dict[str, Any] | None = None
    refusal: str = ""


def _get(client: ApiClient, path: str) -> dict[str, Any]:
    answer = client.call("GET", path)
    if not answer.ok:
        raise ProgramError(f"GET {path}: {answer.reason}")
    return answer.body


def substitute(manifest: str, workflow: dict[str, Any], template: dict[str, Any]) -> str:
    """The manifest with the global variables the controller fills in; ProgramError on any other tag."""
    meta = workflow["metadata"]
    values = {"workflow.name": str(meta["name"]), "workflow.namespace": str(meta.get("namespace", ""))}
    for source in (template.get("spec") or {}, workflow.get("spec") or {}):  # the Workflow's own values win
        for parameter in (source.get("arguments") or {}).get("parameters") or []:
            if "value" in parameter:
                values[f"workflow.parameters.{parameter['name']}"] = str(parameter["value"])

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ProgramError(f"the build step's manifest has {match.group(0)}, which e2e does not resolve")
        return values[match.group(1)]

    return _TAG.sub(replace, manifest)


def build_steps(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The templates that create a Workflow (`resource: {action: create}` with a Workflow manifest)."""
    steps = []
    for step in (template.get("spec") or {}).get("templates") or []:
        resource = step.get("resource") or {}
        if resource.get("action") == "create" and re.search(r"(?m)^kind:\s*Workflow\s*$", resource.get("manifest", "")):
            steps.append(step)
    return steps


def identity(step: dict[str, Any], workflow: dict[str, Any], template: dict[str, Any]) -> str:
    """The ServiceAccount whose token the step's `argoexec resource` uses."""
    specs = [step, workflow.get("spec") or {}, template.get("spec") or {}]
    for spec in specs:
        executor = (spec.get("executor") or {}).get("serviceAccountName")
        if executor:
            return str(executor)
    for spec in specs:
        if spec.get("serviceAccountName"):
            return str(spec["serviceAccountName"])
    return "default"


def plan(client: ApiClient, workflow: dict[str, Any]) -> list[Child]:
    """One Child per build step of the release Workflow's template."""
    meta = workflow["metadata"]
    namespace = str(meta["namespace"])
    name = ((workflow.get("spec") or {}).get("workflowTemplateRef") or {}).get("name")
    if not name:
        return []
    template = _get(client, f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/workflowtemplates/{name}")
    children = []
    for step in build_steps(template):
        text = substitute(step["resource"]["manifest"], workflow, template)
        loaded = yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise ProgramError(f"template {name}, step {step['name']}: the manifest is not one object")
        if step["resource"].get("setOwnerReference"):
            loaded.setdefault("metadata", {}).setdefault("ownerReferences", []).append({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": meta["name"], "uid": meta.get("uid"),
                "controller": True, "blockOwnerDeletion": True})
        children.append(Child(f"{namespace}/{meta['name']}", str(step["name"]),
                              f"{namespace}/{identity(step, workflow, template)}", loaded))
    return children


def create(client: ApiClient, ca_pem: bytes, child: Child) -> None:
    """POST the child's manifest with a token of the step's identity; sets ``created`` or ``refusal``."""
    namespace, account = child.account.split("/", 1)
    token = service_account_token(client, namespace, account)
    target = str((child.manifest.get("metadata") or {}).get("namespace") or namespace)
    path = f"/apis/argoproj.io/v1alpha1/namespaces/{target}/workflows?fieldValidation=Strict"
    context = ssl.create_default_context(cadata=ca_pem.decode())
    connection = http.client.HTTPSConnection(client.host, client.port, context=context, timeout=TIMEOUT)
    try:
        connection.request("POST", path, body=json.dumps(child.manifest).encode(),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                    "Accept": "application/json"})
        response = connection.getresponse()
        status, raw = response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        child.refusal = f"POST {path}: {exc}"
        return
    finally:
        connection.close()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    if 200 <= status < 300 and isinstance(body, dict):
        child.created = body
    else:
        message = body.get("message") if isinstance(body, dict) else None
        child.refusal = " ".join(str(message or f"HTTP {status}").split())

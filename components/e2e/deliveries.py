"""GitHub deliveries for one service, signed as GitHub signs them, and the Workflow each should make.

Everything a case needs is read from the render: the Sensor's dependency names the
EventSource and its event (whose `webhook.endpoint` and `webhookSecret` say where to post
and with which secret), its filters name the branch (`body.pull_request.base.ref`) and
the repository (`body.repository.full_name`), and its trigger names the Workflow
(`metadata.name` + appended merge commit) and its parameters.

Payloads are the real GitHub examples in `upstream/github-webhooks/`
(`pull_request.closed-merged.json` and `pull_request.closed.json`), with the branch,
repository and merge commit set per case, and a hostile title (`$(...)`, `{{...}}`, a
newline) that must arrive in the Workflow's parameter unchanged.

Owns: the cases (which one must create a Workflow), signing (`X-Hub-Signature-256`,
HMAC-SHA256 of the body), posting over the EventSource's socket, and the expected
Workflow of a case. Does not own: running anything, judging the result (`runner`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.client
import json
import re
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2]
WEBHOOKS_DIR = PROJECT_DIR / "upstream" / "github-webhooks"
HOSTILE_TITLE = 'Release $(touch /tmp/pwned) {{workflow.name}} `id`\nsecond line "quoted"'
POST_TIMEOUT = 30.0
_ANCHORED = re.compile(r"^\^(?:\(\?i:)?(.*?)\)?\$$")
_B64_TEMPLATE = re.compile(r"^b64:\{\{\s*\.Input\.([\w.]+)\s*\|\s*toString\s*\|\s*b64enc\s*\}\}$")


class RouteError(Exception):
    """The render does not say how a Sensor is reached (the message names what is missing)."""


@dataclass(frozen=True)
class Route:
    """How one Sensor's deliveries arrive: endpoint, secret, and what its filters accept."""

    sensor: dict[str, Any]
    event_source: str
    endpoint: str
    secret_ref: tuple[str, str]
    branch: str
    repository: str

    @property
    def service(self) -> str:
        return str(self.sensor["metadata"]["name"])


def _literal(pattern: str) -> str | None:
    match = _ANCHORED.match(pattern)
    return match.group(1) if match else None


def route_of(sensor: dict[str, Any], event_sources: dict[str, dict[str, Any]]) -> Route:
    name = f"Sensor {sensor['metadata'].get('namespace')}/{sensor['metadata']['name']}"
    dependencies = (sensor.get("spec") or {}).get("dependencies") or []
    if not dependencies:
        raise RouteError(f"{name}: no dependencies")
    dependency = dependencies[0]
    source = event_sources.get(dependency.get("eventSourceName", ""))
    if source is None:
        raise RouteError(f"{name}: EventSource {dependency.get('eventSourceName')!r} is not in the render")
    github = ((source.get("spec") or {}).get("github") or {}).get(dependency.get("eventName", ""))
    if not isinstance(github, dict):
        raise RouteError(f"{name}: EventSource has no github event {dependency.get('eventName')!r}")
    webhook = github.get("webhook") or {}
    secret = github.get("webhookSecret") or {}
    if not webhook.get("endpoint") or not secret.get("name"):
        raise RouteError(f"{name}: github event {dependency.get('eventName')!r} has no endpoint or webhookSecret")
    filters = {f.get("path"): f.get("value") or [] for f in (dependency.get("filters") or {}).get("data") or []}
    branch = _literal(str((filters.get("body.pull_request.base.ref") or [""])[0]))
    repository = _literal(str((filters.get("body.repository.full_name") or [""])[0]))
    if not branch or not repository:
        raise RouteError(f"{name}: no filter on body.pull_request.base.ref and body.repository.full_name")
    return Route(sensor, source["metadata"]["name"], str(webhook["endpoint"]), (secret["name"], secret["key"]),
                 branch, repository)


@dataclass
class Case:
    """One delivery and what must follow from it."""

    name: str
    route: Route
    body: bytes
    headers: dict[str, str]
    creates: bool  # exactly one Workflow must exist for it afterwards
    sha: str
    status: int | None = None
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _payload(file: str) -> dict[str, Any]:
    return dict(json.loads((WEBHOOKS_DIR / file).read_text(encoding="utf-8")))


def _headers(file: str) -> dict[str, str]:
    table = json.loads((WEBHOOKS_DIR / "headers.json").read_text(encoding="utf-8"))
    return dict(table[file])


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def commit(label: str) -> str:
    """A merge commit SHA (40 hex) of its own for each case, so a Workflow names the case that made it."""
    return hashlib.sha1(label.encode(), usedforsecurity=False).hexdigest()


def delivery(route: Route, label: str, secret: str | None, *, merged: bool = True, branch: str | None = None,
             repository: str | None = None, signature: str | None = None, delivery_id: str | None = None,
             title: str = HOSTILE_TITLE) -> tuple[bytes, dict[str, str], str]:
    """Body and headers of a pull_request `closed` delivery; ``secret`` None sends it unsigned."""
    file = "pull_request.closed-merged.json" if merged else "pull_request.closed.json"
    payload = copy.deepcopy(_payload(file))
    sha = commit(label)
    full_name = repository or route.repository
    owner, _, repo = full_name.partition("/")
    payload["pull_request"]["base"]["ref"] = branch or route.branch
    payload["pull_request"]["merge_commit_sha"] = sha
    payload["pull_request"]["title"] = title
    payload["repository"]["full_name"] = full_name
    payload["repository"]["name"] = repo
    payload["repository"]["owner"]["login"] = owner
    body = json.dumps(payload, sort_keys=True).encode()
    headers = _headers(file)
    headers["X-GitHub-Delivery"] = delivery_id or str(uuid.uuid5(uuid.NAMESPACE_URL, label))
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return body, headers, sha


def standard_cases(route: Route, secret: str) -> list[Case]:
    """The positive case, the negative cases, and a redelivery of the positive one (last)."""
    cases: list[Case] = []

    def add(name: str, creates: bool, **kwargs: Any) -> None:
        label = f"{route.service}:{name}"
        body, headers, sha = delivery(route, label, kwargs.pop("secret", secret), **kwargs)
        cases.append(Case(name, route, body, headers, creates, sha))

    add("unsigned", False, secret=None)
    add("wrongly signed", False, signature=sign(secret + "-wrong", b"other body"))
    add("unmerged PR", False, merged=False)
    add("another branch", False, branch=f"{route.branch}-other")
    add("another repository", False, repository=f"{route.repository.partition('/')[0]}/not-{route.service}")
    add("merged PR", True)
    return cases


def redelivery(case: Case) -> Case:
    """The same delivery again (GitHub's "Redeliver": same body, same delivery id)."""
    return Case(f"{case.name} redelivered", case.route, case.body, dict(case.headers), case.creates, case.sha)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def post(socket_path: Path, path: str, body: bytes, headers: dict[str, str],
         timeout: float = POST_TIMEOUT) -> tuple[int, bytes]:
    connection = _UnixConnection(socket_path, timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def send(case: Case, socket_path: Path) -> None:
    try:
        case.status, _ = post(socket_path, case.route.endpoint, case.body, case.headers)
    except (OSError, http.client.HTTPException) as exc:
        case.error = str(exc)


# --- the Workflow a case must make ------------------------------------------------------


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def expected_workflow(case: Case) -> tuple[str, str, dict[str, str]]:
    """Name, WorkflowTemplate and parameters (decoded) of the Workflow the case must create."""
    trigger = ((case.route.sensor.get("spec") or {}).get("triggers") or [{}])[0]
    k8s = (trigger.get("template") or {}).get("k8s") or {}
    resource = (k8s.get("source") or {}).get("resource") or {}
    event = {"body": json.loads(case.body), "headers": {k: [v] for k, v in case.headers.items()}}
    name = str(resource["metadata"].get("name", ""))
    parameters = [dict(p) for p in ((resource.get("spec") or {}).get("arguments") or {}).get("parameters") or []]
    for item in k8s.get("parameters") or []:
        src = item.get("src") or {}
        if src.get("dataKey"):
            value = _text(_at(event, src["dataKey"]))
        else:
            value = render_template(str(src.get("dataTemplate", "")), event)
        dest = str(item.get("dest", ""))
        if dest == "metadata.name":
            name = name + value if item.get("operation") == "append" else value
            continue
        match = re.fullmatch(r"spec\.arguments\.parameters\.(\d+)\.value", dest)
        if match and int(match.group(1)) < len(parameters):
            parameters[int(match.group(1))]["value"] = value
    template = str(((resource.get("spec") or {}).get("workflowTemplateRef") or {}).get("name", ""))
    return name, template, {str(p["name"]): decode(str(p.get("value", ""))) for p in parameters}


def render_template(template: str, event: dict[str, Any]) -> str:
    """The two dataTemplate forms the program writes: a literal, or `b64:` + base64 of a field."""
    match = _B64_TEMPLATE.match(template)
    if match:
        return "b64:" + base64.b64encode(_text(_at(event, match.group(1))).encode()).decode()
    if "{{" in template:
        raise RouteError(f"dataTemplate {template!r}: not a form the e2e check knows")
    return template


def decode(value: str) -> str:
    """A parameter as the payload had it: `b64:` values decoded."""
    if value.startswith("b64:"):
        try:
            return base64.b64decode(value[4:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return value
    return value

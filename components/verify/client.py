"""The HTTP calls verify makes to the local kube-apiserver.

Owns: one TLS connection setup (CA + admin client certificate), JSON requests with a
timeout on every call, discovery (kind -> resource path, namespaced or not), server-side
apply, and reading a refusal's reason out of a `Status` answer.

Hand-written on the standard library's `http.client` rather than the `kubernetes`
client package: verify needs six calls (discovery, apply, get, create with dryRun,
SubjectAccessReview, readyz), the apply-patch content type and the raw `Status` reason,
which that package wraps; it would be a large dependency for that.

Does not own: what is applied or asked (the check modules), the server's lifetime
(`components.verify.apiserver`).
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIELD_MANAGER = "release-pipeline-verify"
TIMEOUT = 30.0


class ApiError(Exception):
    """No usable answer from the server (connection refused, timeout, not JSON)."""


@dataclass(frozen=True)
class Resource:
    """Where objects of one kind live in the API."""

    group_version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        parts = [base]
        if self.namespaced:
            if not namespace:
                raise ValueError("a namespaced object needs metadata.namespace")
            parts.append(f"namespaces/{urllib.parse.quote(namespace, safe='')}")
        parts.append(self.plural)
        if name:
            parts.append(urllib.parse.quote(name, safe=""))
        return "/".join(parts)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """The server's own words for a refusal (the `Status` message), one line."""
        message = self.body.get("message") if isinstance(self.body, dict) else None
        text = str(message) if message else f"HTTP {self.status}"
        return " ".join(text.split())


class ApiClient:
    """Requests to one API server as the admin user (group system:masters)."""

    def __init__(self, base_url: str, *, ca: Path, cert: Path, key: Path) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 443
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(cert), str(key))
        self._resources: dict[tuple[str, str], Resource] = {}

    def raw(self, method: str, path: str, body: bytes | None = None, *, content_type: str = "application/json",
            timeout: float = TIMEOUT) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
        try:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = content_type
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ApiError(f"{method} {path}: {exc}") from exc
        finally:
            connection.close()

    def call(self, method: str, path: str, body: object | None = None, *,
             content_type: str = "application/json", timeout: float = TIMEOUT) -> Answer:
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
        try:
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            warnings = tuple(response.headers.get_all("Warning") or ())
        except (OSError, http.client.HTTPException) as exc:
            raise ApiError(f"{method} {path}: {exc}") from exc
        finally:
            connection.close()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise ApiError(f"{method} {path}: answer is not JSON ({response.status}): {raw[:200]!r}") from exc
        return Answer(response.status, parsed if isinstance(parsed, dict) else {"items": parsed}, warnings)

    # --- discovery ---------------------------------------------------------------

    def discover(self) -> None:
        """(Re)read which kinds the server serves; call again after CRDs are established."""
        resources: dict[tuple[str, str], Resource] = {}
        versions = ["v1"]
        groups = self.call("GET", "/apis")
        for group in groups.body.get("groups", []):
            versions.extend(v["groupVersion"] for v in group.get("versions", []))
        for group_version in versions:
            path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            answer = self.call("GET", path)
            if not answer.ok:
                continue
            for item in answer.body.get("resources", []):
                if "/" in item["name"]:
                    continue  # subresources
                resources[(group_version, item["kind"])] = Resource(group_version, item["name"], item["namespaced"])
        self._resources = resources

    def resource(self, api_version: str, kind: str) -> Resource | None:
        return self._resources.get((api_version, kind))

    # --- the calls the checks make -----------------------------------------------------

    def apply(self, resource: Resource, manifest: dict[str, Any]) -> Answer:
        """Server-side apply, as `kubectl apply --server-side --force-conflicts` does, with
        strict field validation: an unknown or duplicate field is a refusal, not a warning."""
        metadata = manifest.get("metadata") or {}
        query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"})
        path = f"{resource.path(metadata.get('namespace'), metadata['name'])}?{query}"
        return self.call("PATCH", path, manifest, content_type="application/apply-patch+yaml")

    def get(self, resource: Resource, namespace: str | None, name: str) -> Answer:
        return self.call("GET", resource.path(namespace, name))

    def dry_run_create(self, resource: Resource, manifest: dict[str, Any]) -> Answer:
        """Create with `dryRun=All`: every admission step runs, nothing is stored."""
        namespace = (manifest.get("metadata") or {}).get("namespace")
        query = urllib.parse.urlencode({"dryRun": "All", "fieldValidation": "Strict"})
        return self.call("POST", f"{resource.path(namespace)}?{query}", manifest)

    def access_review(self, user: str, groups: list[str], attributes: dict[str, str]) -> Answer:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
        }
        return self.call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)

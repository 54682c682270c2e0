"""Every Secret, ConfigMap and ServiceAccount an admitted pod names, and whether each exists.

The API server admits a pod whose Secret or ConfigMap is missing; the kubelet then never
starts it (a missing volume source: `FailedMount`; a missing env source:
`CreateContainerConfigError`). With no kubelet here, this check reads each pod the
controller created back from the API server and looks up what it names, in the pod's
namespace:
- `spec.serviceAccountName` (the ServiceAccount; absent means `default`);
- `spec.imagePullSecrets[].name`;
- volumes: `secret.secretName`, `configMap.name`, and `projected.sources[]` `secret` /
  `configMap` (with the `items[].key` each lists);
- in every container, init container and ephemeral container (also those the controller
  adds itself, `init` and `wait`): `env[].valueFrom.secretKeyRef` / `configMapKeyRef`
  (object and key) and `envFrom[].secretRef` / `configMapRef`.
A reference marked `optional: true` may be absent (the kubelet skips it): it is reported
as a note, not a failure. A key is only looked up in an object that exists.

Owns: listing the references of a pod dict and judging them against what the server
holds. Does not own: finding the pods (`controller`), the report format (`runner`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.verify.client import ApiClient, ApiError

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Ref:
    """One object (and, for a key reference, one key) a pod names."""

    kind: str  # "Secret" | "ConfigMap" | "ServiceAccount"
    name: str
    key: str | None
    where: str  # "pod" or "container <name>"
    field: str  # the pod field that names it
    optional: bool


# (kind, name) -> the object's keys (data and binaryData), or None when the object does not exist.
Lookup = Callable[[str, str], "set[str] | None"]


def _optional(value: dict[str, Any]) -> bool:
    return value.get("optional") is True


def _items(kind: str, name: str, source: dict[str, Any], where: str, field: str) -> list[Ref]:
    optional = _optional(source)
    refs = [Ref(kind, name, None, where, field, optional)]
    for item in source.get("items") or []:
        if isinstance(item, dict) and item.get("key"):
            refs.append(Ref(kind, name, str(item["key"]), where, f"{field}.items", optional))
    return refs


def pod_refs(pod: dict[str, Any]) -> list[Ref]:
    """Every reference of ``pod`` (a Pod as the API server returns it), sorted."""
    spec = pod.get("spec") or {}
    refs = [Ref("ServiceAccount", str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"),
                None, "pod", "spec.serviceAccountName", False)]
    for secret in spec.get("imagePullSecrets") or []:
        if (secret or {}).get("name"):
            refs.append(Ref("Secret", str(secret["name"]), None, "pod", "spec.imagePullSecrets", False))
    for volume in spec.get("volumes") or []:
        field = f"volume {volume.get('name')}"
        if isinstance(volume.get("secret"), dict):
            source = volume["secret"]
            refs += _items("Secret", str(source.get("secretName", "")), source, "pod", f"{field} secret")
        if isinstance(volume.get("configMap"), dict):
            source = volume["configMap"]
            refs += _items("ConfigMap", str(source.get("name", "")), source, "pod", f"{field} configMap")
        for index, projected in enumerate((volume.get("projected") or {}).get("sources") or []):
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                source = (projected or {}).get(key)
                if isinstance(source, dict):
                    refs += _items(kind, str(source.get("name", "")), source, "pod",
                                   f"{field} projected.sources[{index}].{key}")
    for group in CONTAINER_LISTS:
        for container in spec.get(group) or []:
            where = f"container {container.get('name')}"
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    source = value_from.get(key)
                    if isinstance(source, dict):
                        refs.append(Ref(kind, str(source.get("name", "")), str(source.get("key", "")), where,
                                        f"env {env.get('name')} {key}", _optional(source)))
            for index, env_from in enumerate(container.get("envFrom") or []):
                for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                    source = (env_from or {}).get(key)
                    if isinstance(source, dict):
                        refs.append(Ref(kind, str(source.get("name", "")), None, where, f"envFrom[{index}] {key}",
                                        _optional(source)))
    return sorted(set(refs), key=lambda r: (r.kind, r.name, r.key or "", r.where, r.field, r.optional))


def check_pod(pod: dict[str, Any], lookup: Lookup) -> tuple[list[str], list[str]]:
    """(problems, notes) for one pod: a missing non-optional object or key is a problem."""
    meta = pod.get("metadata") or {}
    subject = f"pod {meta.get('namespace')}/{meta.get('name')}"
    problems: list[str] = []
    notes: list[str] = []
    for ref in pod_refs(pod):
        keys = lookup(ref.kind, ref.name)
        what = f"{ref.kind} {meta.get('namespace')}/{ref.name}"
        if keys is None and ref.field.endswith(".items"):
            continue  # the volume's own reference says the object is missing
        if keys is None:
            missing = f"{subject}, {ref.where}: {ref.field} names {what}, which does not exist"
        elif ref.key is not None and ref.key not in keys:
            missing = f"{subject}, {ref.where}: {ref.field} names key {ref.key!r} of {what}, which it does not hold"
        else:
            continue
        (notes if ref.optional else problems).append(missing + (" (optional: the kubelet skips it)"
                                                                if ref.optional else ""))
    return sorted(problems), sorted(notes)


def object_keys(kind: str, obj: dict[str, Any]) -> set[str]:
    """The keys a Secret or ConfigMap holds (data, binaryData, and stringData as sent)."""
    if kind == "ServiceAccount":
        return set()
    keys = set(obj.get("data") or {}) | set(obj.get("binaryData") or {}) | set(obj.get("stringData") or {})
    return {str(k) for k in keys}


_PATHS = {"Secret": "secrets", "ConfigMap": "configmaps", "ServiceAccount": "serviceaccounts"}


def server_lookup(client: ApiClient, namespace: str) -> Lookup:
    """A Lookup reading ``namespace`` on the API server (each object read once)."""
    cache: dict[tuple[str, str], set[str] | None] = {}

    def lookup(kind: str, name: str) -> set[str] | None:
        if (kind, name) not in cache:
            keys: set[str] | None = None
            if name and "/" not in name:
                answer = client.call("GET", f"/api/v1/namespaces/{namespace}/{_PATHS[kind]}/{name}")
                if answer.ok:
                    keys = object_keys(kind, answer.body)
                elif answer.status != 404:
                    raise ApiError(f"{kind} {namespace}/{name}: cannot read: {answer.reason}")
            cache[(kind, name)] = keys
        return cache[(kind, name)]

    return lookup


def check_pods(client: ApiClient, pods: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(problems, notes) for each pod, read against its own namespace."""
    problems: list[str] = []
    notes: list[str] = []
    lookups: dict[str, Lookup] = {}
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        namespace = str(pod["metadata"].get("namespace", ""))
        lookup = lookups.setdefault(namespace, server_lookup(client, namespace))
        found, optional = check_pod(pod, lookup)
        problems += found
        notes += optional
    return problems, notes

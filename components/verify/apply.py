"""A stack's render, and the pinned CRDs, applied to the local API server.

Owns: reading `OUT/<stack>/manifests.yaml` (unusable input is an `InputError` naming
the file and document); finding the pinned upstream CRD files (`upstream/crds/<chart>/`,
byte-exact copies at the versions of `components.versions`) and installing them until
Established; the order objects are applied in (Namespaces, CRDs, then ServiceAccounts,
Secrets and ConfigMaps, then RBAC, then admission policies, then everything else, Argo
custom resources last); server-side apply of each object with strict field validation,
recording each refusal with the server's reason.

Does not own: the HTTP calls (`components.verify.client`), what is checked afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.verify.client import ApiClient, ApiError, Resource
from components.verify.report import StackReport

Manifest = dict[str, Any]
PROJECT_DIR = Path(__file__).resolve().parents[2]
CRDS_DIR = PROJECT_DIR / "upstream" / "crds"
ESTABLISH_TIMEOUT = 60.0

# Lower applies first. Anything not named goes between the admission policies and the
# Argo custom resources; within one rank the order is kind, namespace, name.
KIND_RANK = {
    "Namespace": 0,
    "CustomResourceDefinition": 1,
    "ServiceAccount": 2,
    "Secret": 2,
    "ConfigMap": 2,
    "ClusterRole": 3,
    "Role": 3,
    "ClusterRoleBinding": 4,
    "RoleBinding": 4,
    "ValidatingAdmissionPolicy": 5,
    "ValidatingAdmissionPolicyBinding": 6,
}
OTHER_RANK = 7
CUSTOM_RANK = 8  # argoproj.io kinds: they need their CRD (installed before any object)
CUSTOM_GROUP = "argoproj.io"


class InputError(Exception):
    """The render folder cannot be verified (missing, unreadable, not a render)."""


def describe(manifest: Manifest) -> str:
    """'Kind namespace/name' or 'Kind name': how every finding names an object."""
    metadata = manifest.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = metadata.get("name", "?")
    return f"{manifest.get('kind', '?')} {namespace}/{name}" if namespace else f"{manifest.get('kind', '?')} {name}"


def load_manifests(path: Path) -> list[Manifest]:
    """Every document of a render's manifests.yaml, each a Kubernetes object, or InputError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: missing (render the stack first: python -m components render)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not YAML: {' '.join(str(exc).split())}") from exc
    manifests: list[Manifest] = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{path}: document {index}"
        if not isinstance(document, dict):
            raise InputError(f"{where}: not a mapping")
        metadata = document.get("metadata")
        if not (isinstance(document.get("apiVersion"), str) and isinstance(document.get("kind"), str)):
            raise InputError(f"{where}: no apiVersion or kind")
        if not (isinstance(metadata, dict) and isinstance(metadata.get("name"), str) and metadata["name"]):
            raise InputError(f"{where}: no metadata.name")
        if "namespace" in metadata and not isinstance(metadata["namespace"], str):
            raise InputError(f"{where}: metadata.namespace is not a string")
        manifests.append(document)
    if not manifests:
        raise InputError(f"{path}: no objects")
    return manifests


def is_custom(manifest: Manifest) -> bool:
    """Whether the object's kind comes from one of the Argo projects' CRDs (argoproj.io and its subgroups)."""
    group = manifest["apiVersion"].rpartition("/")[0]
    return group == CUSTOM_GROUP or group.endswith(f".{CUSTOM_GROUP}")


def apply_order(manifests: list[Manifest]) -> list[Manifest]:
    def key(manifest: Manifest) -> tuple[int, str, str, str]:
        kind = manifest["kind"]
        rank = KIND_RANK.get(kind, CUSTOM_RANK if is_custom(manifest) else OTHER_RANK)
        metadata = manifest["metadata"]
        return rank, kind, metadata.get("namespace") or "", metadata["name"]

    return sorted(manifests, key=key)


# --- CRDs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CrdSet:
    files: tuple[Path, ...]
    crds: tuple[Manifest, ...]


def load_crds(folder: Path = CRDS_DIR) -> CrdSet:
    """Every CustomResourceDefinition in `folder/<chart>/*.yaml`, or InputError."""
    files = tuple(sorted(folder.glob("*/*.yaml"))) if folder.is_dir() else ()
    if not files:
        raise InputError(f"{folder}: no pinned CRD files (upstream/crds/<chart>/*.yaml)")
    crds: list[Manifest] = []
    for file in files:
        try:
            documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"{file}: cannot read: {' '.join(str(exc).split())}") from exc
        crds.extend(d for d in documents if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")
    return CrdSet(files, tuple(crds))


def needed_crds(crd_set: CrdSet, kinds: set[str]) -> list[Manifest]:
    """The pinned CRDs that define one of ``kinds`` (the full Workflow CRDs take seconds each
    to install: a kind the render does not use is not installed)."""
    return [crd for crd in crd_set.crds if ((crd.get("spec") or {}).get("names") or {}).get("kind") in kinds]


def install_crds(client: ApiClient, crds: list[Manifest], report: StackReport) -> bool:
    """Apply the CRDs and wait until each is Established; False (with findings) if not."""
    client.discover()
    resource = client.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert resource is not None, "the API server serves no CustomResourceDefinition"
    names: list[str] = []
    for crd in crds:
        answer = client.apply(resource, crd)
        if not answer.ok:
            report.fail("apply", describe(crd), f"pinned CRD refused: {answer.reason}")
            continue
        names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + ESTABLISH_TIMEOUT
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            answer = client.get(resource, None, name)
            conditions = (answer.body.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                pending.discard(name)
        if pending:
            time.sleep(0.2)
    for name in sorted(pending):
        report.fail("apply", f"CustomResourceDefinition {name}", f"not Established after {ESTABLISH_TIMEOUT:.0f} s")
    client.discover()
    return not report.findings


# --- the render ------------------------------------------------------------------------


def apply_all(client: ApiClient, manifests: list[Manifest], report: StackReport) -> list[Manifest]:
    """Server-side apply every object in dependency order; returns the objects the server took."""
    applied: list[Manifest] = []
    for manifest in apply_order(manifests):
        resource = client.resource(manifest["apiVersion"], manifest["kind"])
        if resource is None:
            client.discover()  # a CRD in the render itself may have just been applied
            resource = client.resource(manifest["apiVersion"], manifest["kind"])
        if resource is None:
            report.refused += 1
            report.fail("apply", describe(manifest),
                        f"the server does not serve {manifest['apiVersion']} {manifest['kind']}")
            continue
        answer = _apply_one(client, resource, manifest)
        if answer is None:
            report.refused += 1
            report.fail("apply", describe(manifest), "no answer from the API server")
        elif answer.ok:
            report.applied += 1
            applied.append(manifest)
            if manifest["kind"] == "CustomResourceDefinition":
                client.discover()
        else:
            report.refused += 1
            report.fail("apply", describe(manifest), f"refused: {answer.reason}")
    return applied


def _apply_one(client: ApiClient, resource: Resource, manifest: Manifest) -> Any:
    if resource.namespaced and not manifest["metadata"].get("namespace"):
        manifest = {**manifest, "metadata": {**manifest["metadata"], "namespace": "default"}}
    try:
        return client.apply(resource, manifest)
    except ApiError:
        return None

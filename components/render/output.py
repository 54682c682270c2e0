"""Turn what the mock engine recorded into the two files of the offline render.

Owns: the wire-format helpers (secret markers, resource references, numbers),
redaction of secrets to ``"[secret]"`` at their own position, the choice of which
registered resources are Kubernetes objects the stack applies, the stable order of
resources and manifests, the byte-stable serialisation of
``resources.json`` / ``manifests.yaml``, and the review view beside them: each document
embedded in a resource's inputs as one string (IAM and ECR policies, Argo CD's
``policy.csv`` and Dex config, ...) in a file of its own under ``review/``, one line per
rule (docs/architecture.md, "The offline render"; docs/decisions/0230-review-view-of-embedded-documents.md).

Deliberately not here: running the program (``engine``) or inventing outputs
(``mocks``). Nothing in this module imports Pulumi, so it is cheap to use from
tests and checks that only read rendered files.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml

try:
    import orjson
except ImportError:  # pragma: no cover - requirements-dev.txt pins it; json writes the same bytes
    orjson = None  # type: ignore[assignment]

# Ref: pulumi/sdk/python/lib/pulumi/runtime/rpc.py (the same constants the SDK uses
# on the wire; kept here so this module stays import-light).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

REDACTED = "[secret]"
MANIFESTS_FILE = "manifests.yaml"
RESOURCES_FILE = "resources.json"
REVIEW_DIR = "review"

STACK_TYPE = "pulumi:pulumi:Stack"

# Kubernetes resource types the program registers that are *not* objects with a
# manifest of their own: Helm releases and URL-fetched YAML expand only at deploy
# time, so the render cannot (and must not pretend to) show their contents.
_NON_OBJECT_PREFIXES = (
    "kubernetes:helm.sh/",
    "kubernetes:yaml",
    "kubernetes:kustomize",
)

_MANIFEST_HEAD = ("apiVersion", "kind", "metadata")


# --- wire format -------------------------------------------------------------


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def secret(value: Any) -> dict[str, Any]:
    """Wrap a wire value in the engine's secret marker (idempotent)."""
    if is_secret(value):
        return value
    return {SIG_KEY: SECRET_SIG, "value": value}


def urn_name(urn: str) -> str:
    """Logical name of a URN: everything after the third ``::``."""
    return urn.split("::", 3)[-1]


def urn_type(urn: str) -> str:
    """Type token of a URN (the last ``$`` segment of the qualified type)."""
    parts = urn.split("::", 3)
    return parts[2].split("$")[-1] if len(parts) == 4 else ""


def normalize_numbers(value: Any) -> Any:
    """protobuf Struct carries every number as a double: give integers back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_numbers(v) for v in value]
    return value


def has_markers(value: Any) -> bool:
    """Whether a wire value holds anything ``unwrap_secrets`` or ``redact`` would change.

    Most registrations carry no secret, resource reference, asset or unknown: for
    those the monitor skips building the plain and the redacted copies (one walk that
    allocates nothing instead of two that copy everything).
    """
    if isinstance(value, dict):
        return SIG_KEY in value or any(has_markers(v) for v in value.values())
    if isinstance(value, list):
        return any(has_markers(v) for v in value)
    return value == UNKNOWN


def unwrap_secrets(value: Any) -> Any:
    """The plain value a provider would see: secret markers removed, data kept."""
    if is_secret(value):
        return unwrap_secrets(value.get("value"))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def _all_leaves_redacted(value: Any) -> Any:
    # A secret map or list keeps its shape (a Secret's stringData shows which keys
    # it sets) but no scalar inside it is readable.
    if is_secret(value):
        return _all_leaves_redacted(value.get("value"))
    if isinstance(value, dict):
        return {k: _all_leaves_redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_all_leaves_redacted(v) for v in value]
    return REDACTED


def redact(value: Any) -> Any:
    """Readable form of a wire value: secrets become ``"[secret]"`` where they sit."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return _all_leaves_redacted(value.get("value"))
        if sig == RESOURCE_SIG:
            urn = str(value.get("urn", ""))
            return {"resource": urn_name(urn), "type": urn_type(urn)}
        if sig in (ASSET_SIG, ARCHIVE_SIG):
            kept = {k: redact(v) for k, v in value.items() if k != SIG_KEY}
            kept["kind"] = "asset" if sig == ASSET_SIG else "archive"
            return kept
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if value == UNKNOWN:
        return "[unknown]"
    return value


# --- manifests ---------------------------------------------------------------


def is_kubernetes_object(type_token: str) -> bool:
    """True for resource types that are one Kubernetes object the stack applies."""
    if not type_token.startswith("kubernetes:"):
        return False
    return not type_token.startswith(_NON_OBJECT_PREFIXES)


def manifest_from_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A Kubernetes manifest built from a resource's (already redacted) inputs."""
    manifest: dict[str, Any] = {}
    for key in _MANIFEST_HEAD:
        if inputs.get(key) is not None:
            manifest[key] = inputs[key]
    for key, value in inputs.items():
        if key not in manifest and value is not None:
            manifest[key] = value
    return manifest


def _meta(manifest: Mapping[str, Any], key: str) -> str:
    metadata = manifest.get("metadata")
    if isinstance(metadata, dict):
        value = metadata.get(key)
        if isinstance(value, str):
            return value
    return ""


def manifest_sort_key(manifest: Mapping[str, Any]) -> tuple[int, str, str, str, str]:
    """Namespaces, then CRDs, then everything by apiVersion, kind, namespace, name."""
    kind = str(manifest.get("kind", ""))
    rank = {"Namespace": 0, "CustomResourceDefinition": 1}.get(kind, 2)
    return (
        rank,
        str(manifest.get("apiVersion", "")),
        kind,
        _meta(manifest, "namespace"),
        _meta(manifest, "name"),
    )


def extract_manifests(resources: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every Kubernetes object among the resources, in the stable manifest order."""
    manifests = [manifest_from_inputs(res["inputs"]) for res in resources if is_kubernetes_object(str(res["type"]))]
    # The sort key is not unique when the program registers a nameless object twice;
    # the canonical JSON text breaks such ties so the order never depends on timing.
    return sorted(
        manifests,
        key=lambda m: (manifest_sort_key(m), json.dumps(m, sort_keys=True)),
    )


# --- resources ---------------------------------------------------------------


def resource_sort_key(resource: Mapping[str, Any]) -> tuple[str, str, str, str]:
    # Registration order depends on thread scheduling in the SDK, so the file is
    # ordered by identity instead: type, then name, then parent.
    return (
        str(resource["type"]),
        str(resource["name"]),
        str(resource.get("parent") or ""),
        json.dumps(resource, sort_keys=True),
    )


def sort_resources(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(resources, key=resource_sort_key)


# --- serialisation -----------------------------------------------------------


# libyaml's emitter when PyYAML has it: the same bytes as the pure-Python one for these
# documents, about five times faster on a 100-service stack.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _ManifestDumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Safe dumper that prints multi-line strings (scripts, configs) as blocks.

    Never anchors and aliases: a manifest spells every value out (`kubectl` and
    reviewers read it), and the output cannot depend on which values happen to be
    the same Python object. The implicit type of a plain scalar (may "true" or
    "8080" be written unquoted?) is resolved once per distinct value: the same
    labels, names and keys recur thousands of times in a stack.
    """

    _resolved: ClassVar[dict[tuple[Any, ...], str]] = {}

    # YAML 1.1 booleans PyYAML's resolver leaves out: go-yaml v2 (behind kubectl's
    # sigs.k8s.io/yaml) reads a plain `y` or `n` as true or false, so they are quoted.
    _ONE_LETTER_BOOLS: ClassVar[frozenset[str]] = frozenset({"y", "Y", "n", "N"})

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return str(super().resolve(kind, value, implicit))
        key = (value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            if implicit[0] and value in self._ONE_LETTER_BOOLS:
                tag = "tag:yaml.org,2002:bool"
            else:
                tag = str(super().resolve(kind, value, implicit))
            self._resolved[key] = tag
        return tag


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Block style keeps embedded scripts reviewable in a PR diff; the emitter falls
    # back to quoting by itself when a string cannot be a block (trailing spaces).
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ManifestDumper.add_representer(str, _represent_str)


def dump_manifests(manifests: Iterable[Mapping[str, Any]]) -> str:
    docs = [dict(m) for m in manifests]
    if not docs:
        return ""
    return yaml.dump_all(
        docs,
        Dumper=_ManifestDumper,
        sort_keys=True,
        default_flow_style=False,
        explicit_start=True,
        allow_unicode=True,
        width=120,
    )


# orjson writes what `json.dumps(indent=2, sort_keys=True, ensure_ascii=False)` writes,
# about twenty times faster (the standard encoder is pure Python once it indents),
# except for the values below: those files are written by json itself.
_ORJSON_OPTIONS = (orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE) if orjson else 0
_INT64 = range(-(2**63), 2**64)


def _orjson_writes_as_json(value: Any) -> bool:
    """No float orjson spells differently (below 1e-4: "0.00001" for "1e-05"; NaN and
    infinities) and no integer it refuses (beyond 64 bits)."""
    if isinstance(value, dict):
        return all(_orjson_writes_as_json(v) for v in value.values())
    if isinstance(value, list):
        return all(_orjson_writes_as_json(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value) and (value == 0 or abs(value) >= 1e-4)
    if isinstance(value, int) and not isinstance(value, bool):
        return value in _INT64
    return True


def dump_resources(resources: Iterable[Mapping[str, Any]]) -> str:
    data = list(resources)
    if orjson is not None and _orjson_writes_as_json(data):
        return str(orjson.dumps(data, option=_ORJSON_OPTIONS).decode())
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- review view -------------------------------------------------------------

# A JSON document shorter than this reads well on its one line already.
REVIEW_MIN_JSON = 100
# Name suffixes an embedded document keeps as its file's extension (`policy.csv`).
_KNOWN_SUFFIXES = (".csv", ".json", ".yaml", ".yml", ".py", ".sh", ".txt", ".toml", ".conf", ".ini")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME = 200


def _strings(value: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], str]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _strings(value[key], (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, str(index)))
    elif isinstance(value, str):
        yield path, value


def _json_document(text: str) -> Any:
    """The object or list ``text`` holds as JSON, or None."""
    if len(text) < REVIEW_MIN_JSON or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict | list) else None


def _text_suffix(key: str, text: str) -> str:
    if key.lower().endswith(_KNOWN_SUFFIXES):
        return ""
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return ".txt"
    return ".yaml" if isinstance(parsed, dict | list) else ".txt"


def review_documents(resources: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The review view of a stack: file name -> text, for every embedded document.

    Embedded documents are the string inputs that hold a JSON object or list (at least
    ``REVIEW_MIN_JSON`` characters; written with indent 2 and sorted keys, one value
    per line) and, outside Kubernetes objects, the multi-line strings (written as they
    are; `manifests.yaml` already shows those of Kubernetes objects as YAML blocks).
    A file is named ``<resource name>.<input path>[.<ext>]``; when two resources would
    give one name, each gets its type after the resource name, then a count in the
    order of ``resources.json``.
    """
    found: list[tuple[str, str, str]] = []  # (name, type, text)
    for resource in resources:
        kubernetes = is_kubernetes_object(str(resource.get("type", "")))
        for path, text in _strings(resource.get("inputs") or {}, ()):
            document = _json_document(text)
            if document is not None:
                body, suffix = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n", ".json"
            elif "\n" in text.strip("\n") and not kubernetes:
                body, suffix = text if text.endswith("\n") else text + "\n", _text_suffix(path[-1], text)
            else:
                continue
            name = ".".join(_UNSAFE.sub("_", part) for part in (str(resource.get("name", "")), *path)) + suffix
            found.append((name, str(resource.get("type", "")).rsplit(":", 1)[-1], body))
    counts: dict[str, int] = {}
    for name, _, _ in found:
        counts[name] = counts.get(name, 0) + 1
    files: dict[str, str] = {}
    for name, type_name, body in found:
        if counts[name] > 1:
            resource_name, _, rest = name.partition(".")
            name = f"{resource_name}.{_UNSAFE.sub('_', type_name)}.{rest}"
            base, number = name, 1
            while name in files:
                number += 1
                name = f"{base}.{number}"
        if len(name) > _MAX_NAME:
            name = f"{name[:_MAX_NAME - 13]}.{hashlib.sha256(name.encode()).hexdigest()[:12]}"
        files[name] = body
    return files


def write_stack(
    directory: Path,
    resources: list[dict[str, Any]],
    manifests: list[dict[str, Any]],
) -> None:
    """Write one stack's two files, and its review view, into ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    # newline="\n" so the bytes are the same on every platform.
    (directory / RESOURCES_FILE).write_text(dump_resources(resources), encoding="utf-8", newline="\n")
    (directory / MANIFESTS_FILE).write_text(dump_manifests(manifests), encoding="utf-8", newline="\n")
    review = directory / REVIEW_DIR
    review.mkdir(exist_ok=True)
    for name, text in sorted(review_documents(resources).items()):
        (review / name).write_text(text, encoding="utf-8", newline="\n")


def read_stack(directory: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Load a rendered stack back: (resources, manifests)."""
    resources = json.loads((directory / RESOURCES_FILE).read_text(encoding="utf-8"))
    text = (directory / MANIFESTS_FILE).read_text(encoding="utf-8")
    manifests = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    return resources, manifests

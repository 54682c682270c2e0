"""The upstream judges of single objects, shared by the unit tests: one API server per session.

Owns ``Judge`` (the session fixture ``upstream_judge`` in tests/conftest.py hands out one):
``judge.errors(objects)`` returns what upstream code refuses among built or rendered objects:
- Argo Events objects (Sensor, EventSource, EventBus): ``argo-events-check validate``
  (argo-events v1.9.10's own validation, strict decoding: an unknown field is a finding);
- every other kind: a server-side apply with ``dryRun=All`` and strict field validation to
  the session's local kube-apiserver (components/verify: v1.34.4, the pinned CRDs of
  upstream/crds installed as a kind needs them), so the server's schema, CEL rules and
  admission judge it; the namespaces the objects name are created first;
- ``judge.lint(objects)``: ``argo lint --offline`` on WorkflowTemplates and Workflows.
A kind neither the server nor a pinned CRD serves (e.g. a prometheus-operator PodMonitor)
is listed in ``judge.skipped`` (of the last ``errors`` call), not judged, as the stand-in it replaces did.

The server starts on the first test that asks for the fixture (30-50 s), once. Whole
renders are judged by tests/test_verify_*.py (`python -m components verify`), not here.
Does not own: the server, the CRDs, the tools (components/verify, components/toolchain).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import upstream_events
from components.verify.apply import CRDS_DIR, apply_order, install_crds, is_custom, load_crds, needed_crds
from components.verify.client import FIELD_MANAGER, ApiClient, ApiError
from components.verify.report import StackReport

Manifest = dict[str, Any]
EVENTS_KINDS = ("Sensor", "EventSource", "EventBus")


def require(tool: str) -> Path:
    """The built upstream tool, or a skip saying how to build it (a failure under CI)."""
    from components import toolchain

    try:
        return toolchain.tool_path(tool)
    except toolchain.ToolMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI builds every tool first (make test -> make tools): {exc}")
        pytest.skip(str(exc))


def _describe(manifest: Manifest) -> str:
    metadata = manifest.get("metadata") or {}
    where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{manifest.get('kind')} {where}{metadata.get('name')}"


class Judge:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.crds = load_crds(CRDS_DIR)
        self.installed: set[str] = set()
        self.namespaces: set[str] = set()
        self.skipped: set[str] = set()

    def _install(self, kinds: set[str]) -> list[str]:
        wanted = kinds - self.installed
        crds = needed_crds(self.crds, wanted)
        if not crds:
            return []
        report = StackReport("tests")
        install_crds(self.client, crds, report)
        self.installed |= {crd["spec"]["names"]["kind"] for crd in crds}
        return [f"{f.subject}: {f.message}" for f in report.findings]

    def _namespace(self, name: str, manifest: Manifest | None = None) -> list[str]:
        """Create (really: admission of namespaced objects needs it) the namespace; a Namespace
        object of the list is applied as it is, so its pod-security labels take effect."""
        if name in self.namespaces and manifest is None:
            return []
        resource = self.client.resource("v1", "Namespace")
        assert resource is not None
        query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"})
        body = manifest or {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        answer = self.client.call("PATCH", f"{resource.path(None, name)}?{query}", body,
                                  content_type="application/apply-patch+yaml")
        if not answer.ok:
            return [f"Namespace {name}: {answer.reason}"]
        self.namespaces.add(name)
        return []

    def _dry_run_apply(self, manifest: Manifest) -> str | None:
        resource = self.client.resource(manifest["apiVersion"], manifest["kind"])
        if resource is None:
            self.skipped.add(f"{manifest['apiVersion']} {manifest['kind']}")
            return None
        metadata = manifest["metadata"]
        if resource.namespaced:
            metadata = {**metadata, "namespace": metadata.get("namespace") or "default"}
            problem = self._namespace(metadata["namespace"])
            if problem:
                return problem[0]
        namespace = metadata.get("namespace") if resource.namespaced else None
        try:
            if not metadata.get("name"):
                answer = self.client.dry_run_create(resource, {**manifest, "metadata": metadata})
            else:
                query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true",
                                                "fieldValidation": "Strict", "dryRun": "All"})
                answer = self.client.call("PATCH", f"{resource.path(namespace, metadata['name'])}?{query}",
                                          {**manifest, "metadata": metadata},
                                          content_type="application/apply-patch+yaml")
        except ApiError as exc:
            return f"{_describe(manifest)}: no answer: {exc}"
        return None if answer.ok else f"{_describe(manifest)}: {answer.reason}"

    def _events(self, objects: list[Manifest]) -> list[str]:
        require("argo-events-check")
        with tempfile.TemporaryDirectory(prefix="upstream-judge-") as tmp:
            path = Path(tmp) / "events.yaml"
            path.write_text(yaml.safe_dump_all(objects), encoding="utf-8")
            report = upstream_events.validate(path)
        return [f"{f.get('kind')} {f.get('namespace')}/{f.get('name')}: {f.get('check')}: {f.get('message')}"
                for f in report["findings"]]

    def errors(self, objects: Iterable[Manifest]) -> list[str]:
        """What upstream refuses among `objects` (one line per refusal); [] when all hold."""
        objects = list(objects)
        self.skipped = set()
        events = [m for m in objects if m["kind"] in EVENTS_KINDS and m["apiVersion"].startswith("argoproj.io/")]
        others = [m for m in objects if m not in events]
        problems = self._events(events) if events else []
        problems += self._install({m["kind"] for m in others if is_custom(m)})
        self.client.discover()
        unnamed = [m for m in others if not m["metadata"].get("name")]  # generateName: a dry-run create
        for manifest in [*apply_order([m for m in others if m not in unnamed]), *unnamed]:
            if manifest["kind"] == "Namespace" and manifest["apiVersion"] == "v1":
                problems += self._namespace(manifest["metadata"]["name"], manifest)
                continue
            problem = self._dry_run_apply(manifest)
            if problem:
                problems.append(problem)
        return problems

    @staticmethod
    def lint(objects: Iterable[Manifest]) -> subprocess.CompletedProcess[str]:
        """`argo lint --offline` (Argo Workflows' own validation) on the objects, one file each:
        a Workflow's workflowTemplateRef resolves among the files given."""
        return argo_lint(objects)


def argo_lint(objects: Iterable[Manifest]) -> subprocess.CompletedProcess[str]:
    argo = require("argo")
    with tempfile.TemporaryDirectory(prefix="upstream-lint-") as tmp:
        for index, obj in enumerate(objects):
            (Path(tmp) / f"{index}-{obj['kind']}.yaml").write_text(yaml.safe_dump(obj), encoding="utf-8")
        return subprocess.run([str(argo), "lint", "--offline", "--output", "simple", tmp], capture_output=True,
                              text=True, timeout=180, check=False, stdin=subprocess.DEVNULL)


def lint_each(objects: Iterable[Manifest]) -> list[str]:
    """`argo lint --offline` on each object on its own, in one run: each is renamed
    (`-<index>`) so that equal names of variants cannot meet; for objects without
    references to each other (WorkflowTemplates). [] when all are clean, else argo's lines."""
    renamed = []
    for index, obj in enumerate(objects):
        copy = {**obj, "metadata": {**obj["metadata"], "name": f"{obj['metadata']['name'][:50]}-{index}"}}
        renamed.append(copy)
    if not renamed:
        return []
    done = argo_lint(renamed)
    return [] if done.returncode == 0 else [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def beyond_argo_lint(obj: Manifest, templates: Iterable[Manifest] = ()) -> list[str]:
    """The checks of the stand-in tests/checks/workflow_lint.py that `argo lint` does not make
    (its messages marked "[stricter than argo lint]": an undeclared {{workflow.parameters.X}}
    in a WorkflowTemplate, an argument the called template or the referenced WorkflowTemplate
    does not declare, a step or task output used before it exists); argo lint judges the rest."""
    from tests.checks.workflow_lint import STRICT, lint

    given = list(templates)
    return [p for p in lint(obj, given or None, strict_refs=bool(given)) if p.endswith(STRICT)]

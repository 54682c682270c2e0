"""The Argo projects' own linters run on the render.

Owns: writing the objects each tool needs into a temporary folder and reading its
verdict back, per object:
- `argo lint --offline` on every WorkflowTemplate together with the Workflow each
  Sensor's k8s trigger creates (references resolve among the files given);
- `kubectl-argo-rollouts lint` on each Rollout, in one file with the objects of its
  namespace it may reference (Services, Ingresses, AnalysisTemplates);
- `argo-events-check validate` (tools/eventscheck: Argo Events' own validation code) on
  every Sensor, EventSource and EventBus.
Also owns `sensor_workflows`: the Workflow a Sensor's trigger would create, with its
parameters filled with inert values (the sha-like name suffix a real delivery appends).

Does not own: building the tools (`components.toolchain`); what they decide.
"""

from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from components.verify.apply import Manifest, describe
from components.verify.report import StackReport

TOOL_TIMEOUT = 180.0
FAKE_SHA = "0" * 40
EVENTS_KINDS = ("Sensor", "EventSource", "EventBus")
ROLLOUT_NEIGHBOURS = ("Service", "Ingress", "AnalysisTemplate")


def _set(target: Any, dotted: str, value: str, append: bool) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    last = parts[-1]
    if isinstance(target, list):
        index = int(last)
        target[index] = (str(target[index]) + value) if append else value
    else:
        target[last] = (str(target.get(last, "")) + value) if append else value


def sensor_workflows(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """(subject, Workflow) for each k8s trigger of each Sensor that creates a Workflow."""
    for sensor in manifests:
        if sensor["kind"] != "Sensor":
            continue
        for trigger in (sensor.get("spec") or {}).get("triggers") or []:
            k8s = ((trigger.get("template") or {}).get("k8s")) or {}
            resource = ((k8s.get("source") or {}).get("resource"))
            if not isinstance(resource, dict) or resource.get("kind") != "Workflow":
                continue
            workflow = copy.deepcopy(resource)
            for parameter in k8s.get("parameters") or []:
                dest = parameter.get("dest")
                if not isinstance(dest, str):
                    continue
                key = str((parameter.get("src") or {}).get("dataKey", ""))
                value = FAKE_SHA if key.endswith("sha") else "placeholder"
                try:
                    _set(workflow, dest, value, parameter.get("operation") == "append")
                except (KeyError, IndexError, ValueError, TypeError, AttributeError):
                    continue  # a dest the Workflow does not have: argo-events-check judges the trigger
            name = (trigger.get("template") or {}).get("name", "?")
            yield f"{describe(sensor)} trigger {name} (its Workflow)", workflow


def _run(argv: list[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, stdin=subprocess.DEVNULL,
                              check=False)
    except subprocess.TimeoutExpired:
        return -1, f"{Path(argv[0]).name} did not finish in {TOOL_TIMEOUT:.0f} s"
    except OSError as exc:
        return -1, f"cannot run {argv[0]}: {exc}"
    return done.returncode, (done.stdout + done.stderr).strip()


def _write(folder: Path, stem: str, objects: list[Manifest]) -> Path:
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=True), encoding="utf-8")
    return path


def lint_workflows(argo: Path, manifests: list[Manifest], report: StackReport) -> None:
    templates = [m for m in manifests if m["kind"] == "WorkflowTemplate"]
    workflows = list(sensor_workflows(manifests))
    if not templates and not workflows:
        return
    with tempfile.TemporaryDirectory(prefix="verify-argo-lint-") as tmp:
        folder = Path(tmp)
        subjects: dict[str, str] = {}
        for template in templates:
            stem = f"template-{template['metadata'].get('namespace', '')}-{template['metadata']['name']}"
            _write(folder, stem, [template])
            subjects[stem] = describe(template)
        for index, (subject, workflow) in enumerate(workflows):
            stem = f"workflow-{index}"
            _write(folder, stem, [workflow])
            subjects[stem] = subject
        report.lint_checked += len(subjects)
        code, output = _run([str(argo), "lint", "--offline", "--output", "simple", str(folder)])
    if code == 0:
        return
    lines = [line for line in output.splitlines() if line.strip()]
    named = False
    for stem, subject in sorted(subjects.items()):
        mine = [line for line in lines if f"{stem}.yaml" in line]
        for line in mine:
            report.lint_findings += 1
            report.fail("lint", subject, f"argo lint: {line.split(f'{stem}.yaml', 1)[1].lstrip(': ')}")
            named = True
    if not named:
        report.lint_findings += 1
        report.fail("lint", "WorkflowTemplates", f"argo lint exited {code}: {' | '.join(lines[-5:])}")


def lint_rollouts(rollouts_cli: Path, manifests: list[Manifest], report: StackReport) -> None:
    for rollout in (m for m in manifests if m["kind"] == "Rollout"):
        namespace = rollout["metadata"].get("namespace")
        neighbours = [m for m in manifests
                      if m["kind"] in ROLLOUT_NEIGHBOURS and m["metadata"].get("namespace") == namespace]
        report.lint_checked += 1
        with tempfile.TemporaryDirectory(prefix="verify-rollouts-lint-") as tmp:
            path = _write(Path(tmp), "rollout", [rollout, *neighbours])
            code, output = _run([str(rollouts_cli), "lint", "-f", str(path)])
        if code != 0:
            report.lint_findings += 1
            report.fail("lint", describe(rollout), f"kubectl-argo-rollouts lint: {' | '.join(output.splitlines())}")


def lint_events(events_check: Path, manifests: list[Manifest], report: StackReport) -> None:
    objects = [m for m in manifests if m["kind"] in EVENTS_KINDS and m["apiVersion"].startswith("argoproj.io/")]
    if not objects:
        return
    report.lint_checked += len(objects)
    with tempfile.TemporaryDirectory(prefix="verify-events-check-") as tmp:
        path = _write(Path(tmp), "events", objects)
        code, output = _run([str(events_check), "validate", str(path)])
    if code == 0:
        return
    try:
        verdict = json.loads(output[output.index("{"):]) if "{" in output else {}
    except ValueError:
        verdict = {}
    findings = verdict.get("findings") if isinstance(verdict, dict) else None
    if code == 1 and isinstance(findings, list) and findings:
        for finding in findings:
            report.lint_findings += 1
            report.fail("lint", _events_subject(finding), f"argo-events validation: {_events_message(finding)}")
        return
    report.lint_findings += 1
    tail = " | ".join(output.splitlines()[-5:])
    report.fail("lint", "Argo Events objects", f"argo-events-check exited {code}: {tail}")


def _events_subject(finding: Any) -> str:
    if isinstance(finding, dict):
        kind = finding.get("kind", "")
        namespace, name = finding.get("namespace", ""), finding.get("name", "")
        if kind and name:
            return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
        if finding.get("object"):
            return str(finding["object"])
    return "Argo Events objects"


def _events_message(finding: Any) -> str:
    if isinstance(finding, dict):
        for key in ("message", "error", "finding"):
            if finding.get(key):
                return " ".join(str(finding[key]).split())
        return json.dumps(finding, sort_keys=True)
    return " ".join(str(finding).split())

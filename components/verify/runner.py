"""`verify` from start to end: input checks, one local control plane per stack, the checks, the report.

Owns: what makes the input unusable (exit 2, one line, no traceback: no render folder,
a stack not rendered, an unreadable manifests.yaml, no pinned CRDs, a tool neither
provided nor built), the order of the checks within a stack (CRDs, default
ServiceAccounts, apply, RBAC, admission, the Workflows the Sensors create, lint), and
that each stack gets its own etcd and API server, stopped before the next starts.

Does not own: any single check (the sibling modules), the exit code's table
(`components.verify.report`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from components.verify import admission, lint, rbac_checks
from components.verify.apiserver import ClusterError, LocalCluster, stop_on_signals
from components.verify.apply import (
    CRDS_DIR,
    CrdSet,
    InputError,
    Manifest,
    apply_all,
    describe,
    install_crds,
    is_custom,
    load_crds,
    load_manifests,
    needed_crds,
)
from components.verify.client import ApiClient, ApiError
from components.verify.report import EXIT_UNUSABLE, StackReport, print_report

TOOLS = ("kube-apiserver", "etcd", "argo", "kubectl-argo-rollouts", "argo-events-check")


@dataclass(frozen=True)
class Inputs:
    stacks: dict[str, list[Manifest]]
    crds: CrdSet
    tools: dict[str, Path]


def find_tools(names: Sequence[str] = TOOLS) -> dict[str, Path]:
    """Each tool's binary (`components.toolchain.tool_path`), or InputError naming what is missing."""
    from components.toolchain import ToolMissing, tool_path

    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        try:
            found[name] = tool_path(name)
        except ToolMissing as exc:
            missing.append(str(exc))
    if missing:
        raise InputError("; ".join(missing))
    return found


def load_inputs(render_dir: Path, stacks: Sequence[str], crds_dir: Path = CRDS_DIR,
                tool_finder: Callable[[], dict[str, Path]] = find_tools) -> Inputs:
    if not render_dir.is_dir():
        raise InputError(f"--in {render_dir}: not a directory (write one with: python -m components render "
                         f"--stack all --out {render_dir})")
    loaded = {stack: load_manifests(render_dir / stack / "manifests.yaml") for stack in stacks}
    return Inputs(loaded, load_crds(crds_dir), tool_finder())


def ensure_default_accounts(client: ApiClient, manifests: list[Manifest], report: StackReport) -> None:
    """The `default` ServiceAccount of every namespace, which kube-controller-manager makes
    in a real cluster (it does not run here): pods that name no account use it."""
    accounts = client.resource("v1", "ServiceAccount")
    assert accounts is not None
    for namespace in sorted(m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"):
        answer = client.apply(accounts, {"apiVersion": "v1", "kind": "ServiceAccount",
                                         "metadata": {"name": "default", "namespace": namespace}})
        if not answer.ok:
            report.notes.append(f"could not create ServiceAccount {namespace}/default: {answer.reason}")


def check_sensor_workflows(client: ApiClient, manifests: list[Manifest], report: StackReport) -> None:
    """The Workflow each Sensor would create, dry-run created: the full CRD schema and its CEL rules judge it."""
    for subject, workflow in lint.sensor_workflows(manifests):
        resource = client.resource(workflow.get("apiVersion", ""), "Workflow")
        if resource is None:
            report.admission.failed += 1
            report.fail("admission", subject, "the server does not serve Workflows (CRD missing)")
            continue
        try:
            answer = client.dry_run_create(resource, workflow)
        except ApiError as exc:
            report.admission.failed += 1
            report.fail("admission", subject, f"no answer: {exc}")
            continue
        if answer.ok:
            report.admission.passed += 1
        else:
            report.admission.failed += 1
            report.fail("admission", subject, f"refused: {answer.reason}")


def verify_stack(client: ApiClient, stack: str, manifests: list[Manifest], inputs: Inputs) -> StackReport:
    """Every check of one stack against a fresh API server behind ``client``."""
    report = StackReport(stack)
    kinds = {m["kind"] for m in manifests if is_custom(m)}
    kinds |= {workflow["kind"] for _, workflow in lint.sensor_workflows(manifests)}
    crds = needed_crds(inputs.crds, kinds)
    missing = sorted(kinds - {crd["spec"]["names"]["kind"] for crd in crds})
    for kind in missing:
        report.fail("apply", f"kind {kind}", "no pinned CRD in upstream/crds defines it")
    if missing or not install_crds(client, crds, report):
        return report
    applied = apply_all(client, manifests, report)
    ensure_default_accounts(client, applied, report)
    rbac_checks.check_access(client, applied, report)
    admission.check_admission(client, applied, report)
    check_sensor_workflows(client, applied, report)
    lint.lint_workflows(inputs.tools["argo"], manifests, report)
    lint.lint_rollouts(inputs.tools["kubectl-argo-rollouts"], manifests, report)
    lint.lint_events(inputs.tools["argo-events-check"], manifests, report)
    return report


def run(render_dir: Path, stacks: Sequence[str], *, out: TextIO | None = None, err: TextIO | None = None,
        crds_dir: Path = CRDS_DIR, tool_finder: Callable[[], dict[str, Path]] = find_tools) -> int:
    """The whole command; returns the exit code (0 all hold, 1 a check fails, 2 unusable input)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        inputs = load_inputs(render_dir, stacks, crds_dir, tool_finder)
    except InputError as exc:
        print(f"verify: {exc}", file=err)
        return EXIT_UNUSABLE
    reports: list[StackReport] = []
    with stop_on_signals():
        for stack in stacks:
            cluster = LocalCluster(inputs.tools["kube-apiserver"], inputs.tools["etcd"])
            try:
                with cluster as client:
                    print(f"{stack}: local API server on 127.0.0.1:{cluster.port} (pids "
                          f"{' '.join(map(str, cluster.pids))})", file=err, flush=True)
                    reports.append(verify_stack(client, stack, inputs.stacks[stack], inputs))
            except ClusterError as exc:
                print(f"verify: {stack}: cannot start the local API server: {exc}", file=err)
                return EXIT_UNUSABLE
            except ApiError as exc:
                report = StackReport(stack)
                report.fail("apply", "API server", f"stopped answering: {exc}")
                reports.append(report)
    return print_report(reports, out)


__all__ = ["InputError", "describe", "run", "verify_stack"]

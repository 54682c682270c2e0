"""`e2e` from start to end: the render applied, the bus and the programs started, deliveries sent, Workflows judged.

Owns: what makes the input unusable (exit 2, one line: no render folder, a stack not
rendered, no EventBus / EventSource / Sensor, a Sensor whose route cannot be read, a tool
neither provided nor built, the local servers not starting), the order of the run
(API server with the render, known webhook secrets, bus, relays, programs, deliveries,
the controller with the release pods, the child build Workflows and their pods, then
the load bursts with their faults), the checks on the Workflows and the report; and
that everything started is stopped, on return, on an exception and on a signal (each
server and program in its own process group, `components.verify.apiserver`).

Does not own: the pieces (`bus`, `programs`, `sandbox`, `deliveries`, `controller`, `refs`,
`child`, `load`, `kubelet`), the API server
(`components.verify`).
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from components.e2e import child, controller, refs
from components.e2e import deliveries as dl
from components.e2e.bus import Bus
from components.e2e.kubelet import BACKOFF, Kubelet
from components.e2e.load import run_load
from components.e2e.programs import Program, ProgramError, kubeconfig, secret_refs, service_account_token
from components.e2e.sandbox import UnixToTcp, helper_argv
from components.verify.apiserver import ClusterError, LocalCluster, _start, _stop, stop_on_signals
from components.verify.apply import (
    CRDS_DIR,
    InputError,
    Manifest,
    apply_all,
    install_crds,
    load_crds,
    load_manifests,
    needed_crds,
)
from components.verify.client import ApiClient, ApiError
from components.verify.report import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, StackReport
from components.verify.runner import ensure_default_accounts, find_tools

TOOLS = ("kube-apiserver", "etcd", "nats-server", "argo-events", "workflow-controller")
CONTROLLER_TIMEOUT = 90.0
# Every kind of the Argo Workflows CRDs the program installs: the controller watches them all.
WORKFLOW_KINDS = {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow", "WorkflowTaskSet",
                  "WorkflowTaskResult", "WorkflowArtifactGCTask", "WorkflowEventBinding"}
READY_TIMEOUT = 90.0
WORKFLOW_TIMEOUT = 60.0
SETTLE_SECONDS = 8.0
SUBSCRIBED = "started subscribing to events for trigger"
OUTAGE = 3.0  # seconds between a crash and the restart (a pod's restart takes about that)


def _objects(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return sorted((m for m in manifests if m["kind"] == kind),
                  key=lambda m: (m["metadata"].get("namespace") or "", m["metadata"]["name"]))


def plan(manifests: list[Manifest]) -> tuple[Manifest, list[Manifest], list[dl.Route]]:
    """The EventBus, the EventSources and each Sensor's route, or InputError."""
    buses = _objects(manifests, "EventBus")
    sources = _objects(manifests, "EventSource")
    sensors = _objects(manifests, "Sensor")
    if len(buses) != 1 or not ((buses[0].get("spec") or {}).get("jetstream")):
        raise InputError(f"expected one JetStream EventBus in the render, found {len(buses)} EventBus objects")
    if not sources or not sensors:
        raise InputError(f"the render has {len(sources)} EventSources and {len(sensors)} Sensors; e2e needs both")
    try:
        routes = [dl.route_of(sensor, {s["metadata"]["name"]: s for s in sources}) for sensor in sensors]
    except dl.RouteError as exc:
        raise InputError(str(exc)) from exc
    return buses[0], sources, routes


def _secret_values(client: ApiClient, refs: set[tuple[str, str]], namespace: str) -> dict[tuple[str, str], str]:
    """Set a known random value into every referenced Secret (the render has placeholders), read it back."""
    resource = client.resource("v1", "Secret")
    assert resource is not None
    values: dict[tuple[str, str], str] = {}
    for name, key in sorted(refs):
        answer = client.apply(resource, {"apiVersion": "v1", "kind": "Secret",
                                         "metadata": {"name": name, "namespace": namespace},
                                         "stringData": {key: secrets.token_hex(20)}})
        if not answer.ok:
            raise ProgramError(f"Secret {namespace}/{name}: cannot set a known value: {answer.reason}")
        data = (client.get(resource, namespace, name).body.get("data") or {}).get(key)
        if data is not None:
            values[(name, key)] = base64.b64decode(data).decode()
    return values


def _wait_log(program: Program, text: str, count: int, timeout: float) -> None:
    assert program.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if program.process.popen.poll() is not None:
            raise ProgramError(f"{program.name} exited with {program.process.popen.returncode}:\n"
                               f"{program.process.tail(25)}")
        try:
            if program.process.log.read_text(errors="replace").count(text) >= count:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise ProgramError(f"{program.name}: no {text!r} in its log after {timeout:.0f} s:\n{program.process.tail(25)}")


def _wait_webhook(program: Program, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        assert program.process is not None
        if program.process.popen.poll() is not None:
            raise ProgramError(f"{program.name} exited:\n{program.process.tail(25)}")
        try:
            dl.post(program.webhook_socket, "/", b"", {}, timeout=2)
            return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise ProgramError(f"{program.name}: webhook not answering after {timeout:.0f} s ({last})")


def workflows(client: ApiClient) -> list[dict[str, Any]]:
    answer = client.call("GET", "/apis/argoproj.io/v1alpha1/workflows")
    return sorted(answer.body.get("items") or [], key=lambda w: w["metadata"]["name"]) if answer.ok else []


def judge(report: StackReport, cases: list[dl.Case], found: list[dict[str, Any]]) -> None:
    """Each case against the Workflows that exist."""
    for case in cases:
        subject = f"{case.route.service}: {case.name}"
        mine = [w for w in found if w["metadata"]["name"].endswith(case.sha)]
        if not case.creates:
            if mine:
                report.fail("e2e", subject, f"created Workflow {mine[0]['metadata']['name']} (none expected)")
            continue
        if len(mine) != 1:
            report.fail("e2e", subject, f"{len(mine)} Workflows created (exactly one expected)")
            continue
        name, template, parameters = dl.expected_workflow(case)
        workflow = mine[0]
        spec = workflow.get("spec") or {}
        got = {str(p.get("name")): dl.decode(str(p.get("value", "")))
               for p in (spec.get("arguments") or {}).get("parameters") or []}
        problems = []
        if workflow["metadata"]["name"] != name:
            problems.append(f"name {workflow['metadata']['name']!r}, expected {name!r}")
        if (spec.get("workflowTemplateRef") or {}).get("name") != template:
            problems.append(f"template {(spec.get('workflowTemplateRef') or {}).get('name')!r}, expected {template!r}")
        for key in sorted(set(parameters) | set(got)):
            if parameters.get(key) != got.get(key):
                problems.append(f"parameter {key} {got.get(key)!r}, expected {parameters.get(key)!r}")
        for problem in problems:
            report.fail("e2e", subject, problem)


Observer = Callable[[list[dl.Case], list[dict[str, Any]]], None]


def run_stack(client: ApiClient, ca: Path, stack: str, manifests: list[Manifest], tools: dict[str, Path],
              folder: Path, stack_cleanup: ExitStack, err: TextIO, observe: Observer | None = None,
              resources: list[dict[str, Any]] | None = None, load: int = 0,
              crds_dir: Path = CRDS_DIR, faults: tuple[str, ...] = ("none",)) -> StackReport:
    report = StackReport(stack)
    bus_obj, sources, routes = plan(manifests)
    kinds = {m["kind"] for m in manifests if m["apiVersion"].startswith("argoproj.io/")} | WORKFLOW_KINDS
    if not install_crds(client, needed_crds(load_crds(crds_dir), kinds), report):
        return report
    applied = apply_all(client, manifests, report)
    ensure_default_accounts(client, applied, report)
    report.notes.append(f"{stack}: applied {report.applied} objects, {report.refused} refused")
    namespace = bus_obj["metadata"]["namespace"]
    refs = set().union(*(secret_refs(s.get("spec")) for s in [*sources, *(r.sensor for r in routes)]))
    values = _secret_values(client, refs, namespace)
    bus = Bus(tools["nats-server"], folder, bus_obj)
    stack_cleanup.callback(_stop_started, bus)  # before start: a server that never got ready is stopped too
    bus.start()
    secret_resource = client.resource("v1", "Secret")
    assert secret_resource is not None
    answer = client.apply(secret_resource, bus.client_secret())
    if not answer.ok:
        raise ProgramError(f"bus client Secret refused: {answer.reason}")
    api_port = client.port
    for name, port in (("api.sock", api_port), ("bus.sock", bus.port)):
        relay = UnixToTcp(folder / name, port)
        stack_cleanup.callback(relay.close)
    ca_pem = ca.read_bytes()
    programs = [Program("EventSource", s, folder / f"eventsource-{s['metadata']['name']}") for s in sources]
    programs += [Program("Sensor", r.sensor, folder / f"sensor-{r.service}") for r in routes]
    for index, program in enumerate(programs):
        program.folder.mkdir()
        meta = program.obj["metadata"]
        token = service_account_token(client, meta["namespace"], program.account)
        program.prepare(tools["argo-events"], kubeconfig(f"https://127.0.0.1:{api_port}", ca_pem, token),
                        bus.auth_yaml(), bus.config(f"nats://127.0.0.1:{bus.port}"), values)
        stack_cleanup.callback(_stop_started, program)
        program.start(helper_argv(program.folder / "spec.json"), api_port, bus.port, f"{meta['name']}-e2e-{index}")
    print(f"{stack}: nats-server on 127.0.0.1:{bus.port}; {len(programs)} argo-events programs started", file=err,
          flush=True)
    for program in programs:
        if program.kind == "EventSource":
            _wait_webhook(program, READY_TIMEOUT)
        else:
            triggers = len((program.obj.get("spec") or {}).get("triggers") or [])
            _wait_log(program, SUBSCRIBED, triggers, READY_TIMEOUT)
    time.sleep(2.0)  # the durable consumer is made just after that line; DeliverNew misses earlier events
    cases = _send_all(routes, programs, values)
    report.notes.extend(f"{c.route.service}: {c.name}: HTTP {c.status or c.error}" for c in cases)
    _await(client, [c for c in cases if c.creates])
    redeliveries = [dl.redelivery(c) for c in cases if c.creates]
    for case in redeliveries:
        dl.send(case, _socket_for(case.route, programs))
    report.notes.extend(f"{c.route.service}: {c.name}: HTTP {c.status or c.error}" for c in redeliveries)
    time.sleep(SETTLE_SECONDS)
    found = workflows(client)
    judge(report, [*cases, *redeliveries], found)
    if resources is None:
        report.notes.append("no resources.json in the render: the Workflows controller was not run")
    elif found:
        run_controller(client, ca.read_bytes(), tools["workflow-controller"], resources, found, folder,
                       stack_cleanup, report)
    if load:
        sockets = {p.obj["metadata"]["name"]: p.webhook_socket for p in programs if p.kind == "EventSource"}
        sensors = [p for p in programs if p.kind == "Sensor"]
        injectors: dict[str, Callable[[], None] | None] = {
            "none": None,
            "sensor": lambda: _crash_and_restart(sensors, report),
            "bus": lambda: _crash_and_restart_bus(bus, report),
        }
        kubelet = Kubelet(programs)
        kubelet.start()
        try:
            for fault in faults:
                kubelet.during = fault
                recover = (lambda: _crash_and_restart(sensors, report, "after fault bus")) if fault == "bus" else None
                run_load(client, load, routes, values, sockets, report, workflows, fault, injectors[fault], recover)
        finally:
            kubelet.stop()
        for crash in kubelet.crashes:
            text = (f"{crash.program} exited with {crash.code} during the load with fault {crash.during}"
                    f"{': ' + crash.reason if crash.reason else ''}; restarted after {BACKOFF:.0f} s as the kubelet "
                    "would")
            if crash.during == "none":
                report.fail("load", crash.program, text)
            else:
                report.notes.append(text)
    if observe is not None:
        observe([*cases, *redeliveries], found)
    report.notes.extend(f"Workflow {w['metadata'].get('namespace')}/{w['metadata']['name']} created" for w in found)
    for program in programs:
        if program.process and program.process.popen.poll() is not None:
            report.fail("e2e", program.name, f"exited with {program.process.popen.returncode}")
    return report


def run_controller(client: ApiClient, ca_pem: bytes, binary: Path, resources: list[dict[str, Any]],
                   found: list[dict[str, Any]], folder: Path, stack_cleanup: ExitStack, report: StackReport) -> None:
    """The Workflows controller takes the Workflows; each must get its first pod admitted."""
    release = controller.helm_values(resources)
    if release is None:
        report.notes.append("no argo-workflows Helm release in resources.json: the controller was not run")
        return
    namespace, values = release
    resource = client.resource("v1", "ConfigMap")
    assert resource is not None
    answer = client.apply(resource, controller.configmap(namespace, values))
    problems = [] if answer.ok else [f"ConfigMap: {answer.reason}"]
    problems += controller.identity(client, namespace)
    if problems:
        for problem in problems:
            report.fail("controller", "workflow-controller", problem)
        return
    box = folder / "workflow-controller"
    box.mkdir()
    token = service_account_token(client, namespace, controller.ACCOUNT)
    controller.write_box(box / "root", binary, kubeconfig(f"https://127.0.0.1:{client.port}", ca_pem, token))
    (box / "spec.json").write_text(controller.spec(box / "root", namespace, client.port, folder / "api.sock"),
                                   encoding="utf-8")
    holder = Program("Controller", {"metadata": {"namespace": namespace, "name": "workflow-controller"}}, box)
    stack_cleanup.callback(_stop_started, holder)
    holder.process = _start("workflow-controller", [*helper_argv(box / "spec.json")], box / "program.log")
    judge_first_pods(client, found, report, check="controller", label="Workflow")
    build_children(client, ca_pem, found, report)
    if holder.process.popen.poll() is not None:
        report.fail("controller", "workflow-controller", f"exited:\n{holder.process.tail(10)}")
    _stop_started(holder)  # its work is judged; the load that may follow is the event path's alone


def build_children(client: ApiClient, ca_pem: bytes, found: list[dict[str, Any]], report: StackReport) -> None:
    """Each release's build step, done as the step would (`child`); the child's first pod must be admitted."""
    children = [c for workflow in found for c in child.plan(client, workflow)]
    created = []
    for item in children:
        child.create(client, ca_pem, item)
        subject = f"Workflow {item.release}, step {item.step}"
        if item.created is None:
            report.fail("child", subject, f"creating the child Workflow as ServiceAccount {item.account} was refused: "
                                          f"{item.refusal}")
            continue
        meta = item.created["metadata"]
        report.notes.append(f"{subject}: child Workflow {meta['namespace']}/{meta['name']} created as ServiceAccount "
                            f"{item.account}")
        created.append(item.created)
    if not created:
        return
    judge_first_pods(client, created, report, check="child", label="child Workflow")


def judge_first_pods(client: ApiClient, workflows: list[dict[str, Any]], report: StackReport, *, check: str,
                     label: str) -> None:
    """Each Workflow's first pod must be created by the controller and admitted; then its references (`refs`)."""
    seen = controller.wait_first_pods(client, workflows, CONTROLLER_TIMEOUT)
    for name, (phase, message, pods) in sorted(seen.items()):
        if pods:
            report.notes.append(f"{label} {name}: {phase or 'no phase'}, {pods} pod(s) admitted")
        else:
            report.fail(check, f"Workflow {name}", f"no pod admitted ({phase or 'not taken'}: {message or '-'})")
    check_references(client, [pod for w in workflows for pod in controller.pods_of(client, w)], report)


def check_references(client: ApiClient, pods: list[dict[str, Any]], report: StackReport) -> None:
    """Every Secret, ConfigMap and ServiceAccount each admitted pod names exists (`refs`)."""
    problems, notes = refs.check_pods(client, pods)
    for problem in problems:
        report.fail("references", problem.split(":", 1)[0], problem.split(":", 1)[1].strip())
    report.notes.extend(notes)
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        meta = pod["metadata"]
        containers = sorted(c.get("name", "") for group in refs.CONTAINER_LISTS for c in pod["spec"].get(group) or [])
        report.notes.append(f"pod {meta.get('namespace')}/{meta['name']} (containers {', '.join(containers)}): "
                            f"{len(refs.pod_refs(pod))} references to Secrets, ConfigMaps, ServiceAccounts read")


def _crash_and_restart(programs: list[Program], report: StackReport, when: str = "fault sensor") -> None:
    """SIGKILL every program, OUTAGE seconds, start each again (the pods crashed and were restarted)."""
    for program in programs:
        program.kill()
    time.sleep(OUTAGE)
    for program in programs:
        program.restart()
    what = "mid-burst" if when == "fault sensor" else "once the burst's Workflows stopped coming"
    report.notes.append(f"{when}: {len(programs)} Sensor programs killed (SIGKILL) {what} and restarted "
                        f"after {OUTAGE:.0f} s")


def _crash_and_restart_bus(bus: Bus, report: StackReport) -> None:
    bus.kill_and_restart(OUTAGE)
    report.notes.append(f"fault bus: nats-server killed (SIGKILL) mid-burst and restarted after {OUTAGE:.0f} s "
                        "on the same port and JetStream store")


def _stop_started(owner: Bus | Program) -> None:
    if owner.process is not None:
        _stop(owner.process)


def _socket_for(route: dl.Route, programs: list[Program]) -> Path:
    for program in programs:
        if program.kind == "EventSource" and program.obj["metadata"]["name"] == route.event_source:
            return program.webhook_socket
    raise ProgramError(f"no EventSource program for {route.event_source}")


def _send_all(routes: list[dl.Route], programs: list[Program],
              values: dict[tuple[str, str], str]) -> list[dl.Case]:
    cases: list[dl.Case] = []
    for route in routes:
        secret = values.get(route.secret_ref)
        if secret is None:
            raise ProgramError(f"Secret {route.secret_ref[0]} has no key {route.secret_ref[1]}")
        for case in dl.standard_cases(route, secret):
            dl.send(case, _socket_for(route, programs))
            cases.append(case)
    return cases


def _await(client: ApiClient, cases: list[dl.Case], timeout: float = WORKFLOW_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = {w["metadata"]["name"] for w in workflows(client)}
        if all(any(n.endswith(c.sha) for n in names) for c in cases):
            return
        time.sleep(0.5)


def _resources(path: Path) -> list[dict[str, Any]] | None:
    """The render's resources.json (the Helm releases' values), or None when it is absent."""
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(loaded, list):
        raise InputError(f"{path}: not a list of resources")
    return [item for item in loaded if isinstance(item, dict)]


def print_report(report: StackReport, out: TextIO) -> int:
    for finding in sorted(report.findings, key=lambda f: (f.check, f.subject, f.message)):
        print(f"FAIL {finding}", file=out)
    for note in report.notes:
        print(f"note: {note}", file=out)
    print(f"{report.stack}: {'ok' if report.ok else 'FAILED'}", file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


def run(render_dir: Path, stack: str, *, out: TextIO | None = None, err: TextIO | None = None,
        tool_finder: Callable[[], dict[str, Path]] = lambda: find_tools(TOOLS), keep: bool = False,
        observe: Observer | None = None, load: int = 0, faults: tuple[str, ...] = ("none",)) -> int:
    """The whole command; returns the exit code (0 all hold, 1 a check fails, 2 unusable input)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if not render_dir.is_dir():
            raise InputError(f"--in {render_dir}: not a directory (write one with: python -m components render "
                             f"--stack all --out {render_dir})")
        manifests = load_manifests(render_dir / stack / "manifests.yaml")
        plan(manifests)
        resources = _resources(render_dir / stack / "resources.json")
        missing = [name for name in ("unshare", "ip") if shutil.which(name) is None]
        if missing:
            raise InputError(f"{' and '.join(missing)} not found: e2e runs each program in its own network "
                             "namespace (util-linux unshare, iproute2 ip)")
        tools = tool_finder()
    except InputError as exc:
        print(f"e2e: {exc}", file=err)
        return EXIT_UNUSABLE
    folder = Path(tempfile.mkdtemp(prefix="release-pipeline-e2e-"))
    with stop_on_signals():
        try:
            cluster = LocalCluster(tools["kube-apiserver"], tools["etcd"])
            with cluster as client, ExitStack() as cleanup:
                print(f"{stack}: local API server on 127.0.0.1:{cluster.port}; run folder {folder}", file=err,
                      flush=True)
                assert cluster.folder is not None
                report = run_stack(client, cluster.folder / "ca.crt", stack, manifests, tools, folder, cleanup, err,
                                   observe, resources, load, faults=faults)
        except ClusterError as exc:
            print(f"e2e: {stack}: cannot start the local API server: {exc}", file=err)
            return EXIT_UNUSABLE
        except (ProgramError, RuntimeError, ApiError) as exc:
            print(f"e2e: {stack}: {exc}", file=err)
            return EXIT_FAILED
        finally:
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)
    return print_report(report, out)
